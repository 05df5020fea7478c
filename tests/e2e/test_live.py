"""WebSocket: history then live events, control messages with replies, reconnect without gaps or repeats."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.helpers import execute, task, wait_status


def _ws_url(service, task_id: str, after: str | None = None) -> str:
    query = f"?after={after}" if after else ""
    return f"ws://127.0.0.1:{service.port}/ws/tasks/{task_id}{query}"


def _receive_until(ws, predicate, timeout: float = 30) -> list[dict]:
    seen = []
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        seen.append(message)
        if predicate(message):
            return seen


def test_websocket_streams_events_and_takes_control_messages(service) -> None:
    with service.client() as client:
        task_id = execute(client, "data_pipeline", {"step_seconds": 1, "require_approval": True})
    with connect(_ws_url(service, task_id)) as ws:
        _receive_until(ws, lambda m: m.get("type") == "node_started" and m["node"] == "transform")
        ws.send(json.dumps({"type": "pause"}))
        reply = _receive_until(ws, lambda m: m.get("type") == "reply")[-1]
        assert reply["ok"] and reply["request"] == "pause" and reply["status"] == "running"
        _receive_until(ws, lambda m: m.get("type") == "task_paused")
        ws.send(json.dumps({"type": "resume"}))
        assert _receive_until(ws, lambda m: m.get("type") == "reply")[-1]["status"] == "queued"
        interrupt = _receive_until(ws, lambda m: m.get("type") == "interrupt")[-1]
        assert interrupt["interrupt"]["question"] == "Approve these records?"
        for bad in ("not json", json.dumps([1]), json.dumps({"type": "explode"}), json.dumps({"type": "input"})):
            ws.send(bad)
            reply = _receive_until(ws, lambda m: m.get("type") == "reply")[-1]
            assert reply["ok"] is False and reply["error"], bad
        ws.send(json.dumps({"type": "pause"}))  # waiting_input cannot pause
        reply = _receive_until(ws, lambda m: m.get("type") == "reply")[-1]
        assert reply["ok"] is False and reply["code"] == 409 and reply["status"] == "waiting_input"
        ws.send(json.dumps({"type": "input", "input": "approved"}))
        assert _receive_until(ws, lambda m: m.get("type") == "reply")[-1]["ok"]
        _receive_until(ws, lambda m: m.get("type") == "status" and m["status"] == "completed")
        ws.send(json.dumps({"type": "cancel"}))  # finished meanwhile: a clear 409, the socket stays up
        reply = _receive_until(ws, lambda m: m.get("type") == "reply")[-1]
        assert reply["ok"] is False and reply["code"] == 409
    with service.client() as client:
        assert task(client, task_id)["state"]["approval"] == "approved"


def test_reconnecting_with_the_last_id_misses_nothing_and_repeats_nothing(service) -> None:
    with service.client() as client:
        task_id = execute(client, "ml_pipeline", {"step_seconds": 0.3})
        received = []
        with connect(_ws_url(service, task_id)) as ws:
            received += _receive_until(ws, lambda m: m.get("type") == "node_completed")
        with connect(_ws_url(service, task_id, after=received[-1]["id"])) as ws:
            received += _receive_until(ws, lambda m: m.get("type") == "progress")
        with connect(_ws_url(service, task_id, after=received[-1]["id"])) as ws:
            received += _receive_until(ws, lambda m: m.get("status") == "completed")
        wait_status(client, task_id, "completed")
    with connect(_ws_url(service, task_id)) as ws:
        everything = _receive_until(ws, lambda m: m.get("status") == "completed")
    assert [m["id"] for m in received] == [m["id"] for m in everything]


@pytest.mark.parametrize(("path", "code"), [("ghost", 4404), ("bad id!", 4404)])
def test_unknown_task_closes_with_a_clear_code(service, path: str, code: int) -> None:
    with connect(f"ws://127.0.0.1:{service.port}/ws/tasks/{path.replace(' ', '%20')}") as ws:
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and error["error"] == "task_not_found"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == code


def test_bad_after_id_closes_with_422(service) -> None:
    with service.client() as client:
        task_id = execute(client, "data_pipeline", {"step_seconds": 0})
    with connect(_ws_url(service, task_id, after="yesterday")) as ws:
        assert json.loads(ws.recv(timeout=10))["error"] == "invalid_request"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4422
