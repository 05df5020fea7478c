"""WebSocket over a real socket: a percent-encoded task id in the path. The rest of the WebSocket contract runs
in-process in tests/api/test_live.py."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


@pytest.mark.parametrize(("path", "code"), [("bad id!", 4404)])
def test_unknown_task_closes_with_a_clear_code(service, path: str, code: int) -> None:
    with connect(f"ws://127.0.0.1:{service.port}/ws/tasks/{path.replace(' ', '%20')}") as ws:
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and error["error"] == "task_not_found"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == code
