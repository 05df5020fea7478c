"""An idle event stream over a real socket outlives Redis's socket timeout (issue 7). The other inputs that
once broke the service are in tests/api/test_hostile_input.py."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import execute, wait_status

LIMIT_BYTES = 2000


@pytest.fixture
def service(start_service):
    return start_service({"REDIS_PERSIST_MAX_INITIAL_STATE_BYTES": str(LIMIT_BYTES)})


def test_an_idle_event_stream_outlives_the_redis_socket_timeout(service) -> None:
    """redis-py's default socket timeout is 5 s: a longer blocking read used to cut idle SSE streams."""
    with service.client() as client:
        task_id = execute(client, "data_pipeline", {"step_seconds": 0, "require_approval": True})
        wait_status(client, task_id, "waiting_input")
    keep_alives = 0
    with httpx.stream("GET", f"{service.url}/api/tasks/{task_id}/events", timeout=20) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            keep_alives += line == ": keep-alive"
            if keep_alives == 2:  # two idle blocking reads in a row, 8 s: past the 5 s timeout
                break
    assert keep_alives == 2
