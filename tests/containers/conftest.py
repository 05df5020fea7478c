"""The compose stack under podman: the fixture that builds and starts it (the `containers` marker is in pyproject.toml)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.containers.compose import ComposeStack
from tests.support import free_port


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    """The whole compose stack (Redis, api-1..3, nginx) under a unique project name, nginx on a free port.

    `up` builds the image once (cached layers are reused); teardown always runs `down -v`.
    """
    started = ComposeStack(f"rp-test-{secrets.token_hex(3)}", free_port())
    try:
        started.up()
        yield started
    finally:
        started.down()
