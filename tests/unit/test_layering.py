"""Imports point one way: api -> engine -> store -> core; core imports nothing of ours or of I/O libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "redis_persist"
FORBIDDEN = {
    "core": {"redis_persist.api", "redis_persist.engine", "redis_persist.store", "redis", "fastapi", "langgraph"},
    "store": {"redis_persist.api", "redis_persist.engine", "fastapi", "langgraph"},
    "engine": {"redis_persist.api", "fastapi", "starlette"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer: str) -> None:
    offenders = []
    for path in (PACKAGE / layer).rglob("*.py"):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def test_service_code_never_imports_the_testing_harness() -> None:
    """redis_persist.testing drives the service from outside (processes, nginx); the service must not need it."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if (PACKAGE / "testing") in path.parents:
            continue
        for name in _imports(path):
            if name == "redis_persist.testing" or name.startswith("redis_persist.testing."):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


# The demo and bench/ run the harness with the service's own dependencies, without the [test] extras.
TEST_ONLY_MODULES = {"tests", "pytest", "fakeredis", "yaml", "websockets", "httpx_ws", "playwright", "schemathesis",
                     "langgraph_sdk", "asgi_lifespan"}


def test_testing_harness_needs_no_test_extras() -> None:
    offenders = []
    for path in (PACKAGE / "testing").rglob("*.py"):
        for name in _imports(path):
            if name.split(".")[0] in TEST_ONLY_MODULES:
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []
