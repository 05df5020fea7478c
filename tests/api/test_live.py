"""WebSocket: history then live events, control messages with replies, reconnect without gaps or repeats."""

from __future__ import annotations

import json

import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws

from tests.api.helpers import execute, task, wait_status


def _ws_url(task_id: str, after: str | None = None) -> str:
    query = f"?after={after}" if after else ""
    return f"/ws/tasks/{task_id}{query}"


async def _receive_until(ws, predicate, timeout: float = 30) -> list[dict]:
    seen = []
    while True:
        message = json.loads(await ws.receive_text(timeout=timeout))
        seen.append(message)
        if predicate(message):
            return seen


async def test_websocket_streams_events_and_takes_control_messages(api) -> None:
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 1, "require_approval": True})
    async with aconnect_ws(_ws_url(task_id), client) as ws:
        await _receive_until(ws, lambda m: m.get("type") == "node_started" and m["node"] == "transform")
        await ws.send_text(json.dumps({"type": "pause"}))
        reply = (await _receive_until(ws, lambda m: m.get("type") == "reply"))[-1]
        assert reply["ok"] and reply["request"] == "pause" and reply["status"] == "running"
        await _receive_until(ws, lambda m: m.get("type") == "task_paused")
        await ws.send_text(json.dumps({"type": "resume"}))
        assert (await _receive_until(ws, lambda m: m.get("type") == "reply"))[-1]["status"] == "queued"
        interrupt = (await _receive_until(ws, lambda m: m.get("type") == "interrupt"))[-1]
        assert interrupt["interrupt"]["question"] == "Approve these records?"
        # Each refusal is shaped like the REST error body: `error` names it, `detail` explains it.
        for bad, error in (("not json", "json_invalid"), (json.dumps([1]), "invalid_request"),
                           (json.dumps({"type": "explode"}), "invalid_request"),
                           (json.dumps({"type": "input"}), "invalid_request")):
            await ws.send_text(bad)
            reply = (await _receive_until(ws, lambda m: m.get("type") == "reply"))[-1]
            assert reply["ok"] is False and reply["code"] == 422, bad
            assert reply["error"] == error and reply["detail"], (bad, reply)
        await ws.send_text(json.dumps({"type": "pause"}))  # waiting_input cannot pause
        reply = (await _receive_until(ws, lambda m: m.get("type") == "reply"))[-1]
        assert reply["ok"] is False and reply["code"] == 409 and reply["status"] == "waiting_input"
        assert reply["error"] == "illegal_transition" and "waiting_input" in reply["detail"]
        await ws.send_text(json.dumps({"type": "input", "input": "approved"}))
        assert (await _receive_until(ws, lambda m: m.get("type") == "reply"))[-1]["ok"]
        await _receive_until(ws, lambda m: m.get("type") == "status" and m["status"] == "completed")
        await ws.send_text(json.dumps({"type": "cancel"}))  # finished meanwhile: a clear 409, the socket stays up
        reply = (await _receive_until(ws, lambda m: m.get("type") == "reply"))[-1]
        assert reply["ok"] is False and reply["code"] == 409
    assert (await task(client, task_id))["state"]["approval"] == "approved"


async def test_reconnecting_with_the_last_id_misses_nothing_and_repeats_nothing(api) -> None:
    client = api.client
    task_id = await execute(client, "ml_pipeline", {"step_seconds": 0.3})
    received = []
    async with aconnect_ws(_ws_url(task_id), client) as ws:
        received += await _receive_until(ws, lambda m: m.get("type") == "node_completed")
    async with aconnect_ws(_ws_url(task_id, after=received[-1]["id"]), client) as ws:
        received += await _receive_until(ws, lambda m: m.get("type") == "progress")
    async with aconnect_ws(_ws_url(task_id, after=received[-1]["id"]), client) as ws:
        received += await _receive_until(ws, lambda m: m.get("status") == "completed")
    await wait_status(client, task_id, "completed")
    async with aconnect_ws(_ws_url(task_id), client) as ws:
        everything = await _receive_until(ws, lambda m: m.get("status") == "completed")
    assert [m["id"] for m in received] == [m["id"] for m in everything]


# ("bad id!", 4404), a percent-encoded path, is in tests/e2e/test_live.py: wsproto, under httpx-ws's in-process
# transport, refuses the decoded space before the app sees it.
@pytest.mark.parametrize(("path", "code"), [("ghost", 4404)])
async def test_unknown_task_closes_with_a_clear_code(api, path: str, code: int) -> None:
    async with aconnect_ws(f"/ws/tasks/{path.replace(' ', '%20')}", api.client) as ws:
        error = json.loads(await ws.receive_text(timeout=10))
        assert error["type"] == "error" and error["error"] == "task_not_found"
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=10)
    assert closed.value.code == code


async def test_bad_after_id_closes_with_422(api) -> None:
    task_id = await execute(api.client, "data_pipeline", {"step_seconds": 0})
    async with aconnect_ws(_ws_url(task_id, after="yesterday"), api.client) as ws:
        assert json.loads(await ws.receive_text(timeout=10))["error"] == "invalid_request"
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=10)
    assert closed.value.code == 4422
