"""Input that used to break things, over a WebSocket or a live event stream of a real process: each is a clear
error that changes nothing (issue 7). The plain HTTP cases are in tests/api/test_hostile_input.py."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from redis_persist.core.payload import MAX_NESTING_DEPTH
from tests.e2e.helpers import execute, task, wait_status

LIMIT_BYTES = 2000


def _nested(depth: int) -> object:
    """A value `depth` containers deep: [[[...]]]."""
    return json.loads("[" * depth + "]" * depth)


def _post_raw(client: httpx.Client, path: str, raw: str | bytes) -> httpx.Response:
    return client.post(path, content=raw, headers={"content-type": "application/json"})


def _ws(service, task_id: str, after: str | None = None):
    query = f"?after={after}" if after is not None else ""
    return connect(f"ws://127.0.0.1:{service.port}/ws/tasks/{task_id}{query}", max_size=None)


def _reply(ws) -> dict:
    while True:
        message = json.loads(ws.recv(timeout=15))
        if message.get("type") == "reply":
            return message


@pytest.fixture
def service(start_service):
    return start_service({"REDIS_PERSIST_MAX_INITIAL_STATE_BYTES": str(LIMIT_BYTES)})


def test_bad_after_ids_close_the_websocket_with_4422(service) -> None:
    """The WebSocket half of tests/api/test_hostile_input.py's event-id checks."""
    with service.client() as client:
        task_id = execute(client, "data_pipeline", {"step_seconds": 0})
        wait_status(client, task_id, "completed")
    for bad in ["1-", "99999999999999999999999-0", "18446744073709551616"]:
        with _ws(service, task_id, after=bad) as ws:
            assert json.loads(ws.recv(timeout=10))["error"] == "invalid_request"
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd.code == 4422


def test_resume_input_has_the_limits_of_initial_state(service) -> None:
    with service.client() as client:
        task_id = execute(client, "data_pipeline", {"step_seconds": 0, "require_approval": True})
        waiting = wait_status(client, task_id, "waiting_input")
        too_big = client.post(f"/api/tasks/{task_id}/resume", json={"input": "x" * (LIMIT_BYTES + 1)})
        assert too_big.status_code == 413 and too_big.json()["error"] == "state_too_large"
        assert f"limit is {LIMIT_BYTES} bytes" in too_big.json()["detail"]
        assert client.post(f"/api/tasks/{task_id}/resume", json={"input": _nested(MAX_NESTING_DEPTH + 1)}
                           ).json()["error"] == "invalid_payload"
        surrogate = _post_raw(client, f"/api/tasks/{task_id}/resume", '{"input": {"a": ["\\ud800"]}}')
        assert surrogate.status_code == 422 and surrogate.json()["path"] == "input.a[0]"
        assert _post_raw(client, f"/api/tasks/{task_id}/resume", '{"input": ' + "[" * 100_000).status_code == 422
        assert task(client, task_id) == waiting
        with _ws(service, task_id) as ws:
            ws.send(json.dumps({"type": "input", "input": "x" * (LIMIT_BYTES + 1)}))
            assert _reply(ws)["code"] == 413
            ws.send('{"type": "input", "input": "\\udfff"}')
            reply = _reply(ws)
            assert reply["code"] == 422 and reply["path"] == "input"
        assert task(client, task_id) == waiting
        answer = {"approved": True, "note": "\U0001f600"}
        assert client.post(f"/api/tasks/{task_id}/resume", json={"input": answer}).status_code == 202
        assert wait_status(client, task_id, "completed")["state"]["approval"] == answer


def test_websocket_answers_binary_and_undecodable_frames_and_stays_usable(service) -> None:
    with service.client() as client:
        task_id = execute(client, "data_pipeline", {"step_seconds": 0, "require_approval": True})
        wait_status(client, task_id, "waiting_input")
    with _ws(service, task_id) as ws:
        ws.send(b"\x00\x01binary")
        binary = _reply(ws)
        assert binary["ok"] is False and binary["code"] == 422 and "Binary" in binary["error"]
        for bad in ("[" * 100_000, '{"type": "input", "input": ' + "9" * 5000 + "}", '{"type": "\\ud800"}'):
            ws.send(bad)
            reply = _reply(ws)
            assert reply["ok"] is False and reply["code"] == 422, bad[:40]
        ws.send(json.dumps({"type": "input", "input": "approved"}))
        assert _reply(ws)["ok"] is True
    with service.client() as client:
        assert wait_status(client, task_id, "completed")["state"]["approval"] == "approved"


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
