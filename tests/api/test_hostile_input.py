"""Input that used to break things: each is now a clear 4xx JSON error that changes nothing,
or is accepted and stays readable (issue 7, points 1-6). The idle live stream is in tests/e2e/test_hostile_input.py."""

from __future__ import annotations

import json

import httpx
import pytest
import redis
from httpx_ws import WebSocketDisconnect, aconnect_ws

from redis_persist.core.payload import MAX_NESTING_DEPTH
from redis_persist.store import keys
from tests.api.helpers import execute, task, wait_status

LIMIT_BYTES = 2000


def _nested(depth: int) -> object:
    """A value `depth` containers deep: [[[...]]]."""
    return json.loads("[" * depth + "]" * depth)


def _nested_json(depth: int) -> str:
    """`{"log": [[[...]]]}` with the list `depth` deep, built as text: decoding it here could itself hit the
    recursion limit (closer under pytest-xdist, whose worker stack is deeper)."""
    return '{"log": ' + "[" * depth + "]" * depth + "}"


async def _post_raw(client: httpx.AsyncClient, path: str, raw: str | bytes) -> httpx.Response:
    return await client.post(path, content=raw, headers={"content-type": "application/json"})


def _execute_raw(state_json: str) -> str:
    return '{"graph_name": "data_pipeline", "initial_state": ' + state_json + "}"


def _ws(api, task_id: str, after: str | None = None):
    query = f"?after={after}" if after is not None else ""
    return aconnect_ws(f"/ws/tasks/{task_id}{query}", api.client, max_message_size_bytes=2**24)


async def _reply(ws) -> dict:
    while True:
        message = json.loads(await ws.receive_text(timeout=15))
        if message.get("type") == "reply":
            return message


@pytest.fixture
async def api(start_app):
    return await start_app({"REDIS_PERSIST_MAX_INITIAL_STATE_BYTES": str(LIMIT_BYTES)})


HOSTILE_STATES = {
    "lone surrogate in a list": ('{"log": ["\\ud800"]}', "invalid_payload", "initial_state.log[0]"),
    "lone surrogate in a key": ('{"\\udc00": 1}', "invalid_payload", 'initial_state["\\udc00"]'),
    "one level too deep": (_nested_json(MAX_NESTING_DEPTH), "invalid_payload", None),
    "200 levels deep": (_nested_json(200), "invalid_payload", None),
    # Near Python's recursion limit the body may not even decode: json_invalid or invalid_payload, both 422.
    "950 levels deep": (_nested_json(950), "any", None),
    "100000 levels deep": ("[" * 100_000, None, None),
    "NaN": ('{"x": NaN}', "invalid_payload", "initial_state.x"),
    "Infinity": ('{"x": -Infinity}', "invalid_payload", "initial_state.x"),
    "1e400": ('{"x": 1e400}', "invalid_payload", "initial_state.x"),
    "integer over 64 bits": ('{"x": 18446744073709551616}', "invalid_payload", "initial_state.x"),
    "integer of 5000 digits": ('{"x": ' + "9" * 5000 + "}", None, None),
}


async def test_user_json_that_cannot_be_stored_is_a_422_that_creates_nothing(start_app, redis_url) -> None:
    # API only: a worker's background writes (its heartbeat) would change the key count on their own.
    client = (await start_app({"REDIS_PERSIST_MAX_INITIAL_STATE_BYTES": str(LIMIT_BYTES)}, run_worker=False)).client
    raw = redis.Redis.from_url(redis_url)
    keys_before = raw.dbsize()
    for name, (state_json, error, path) in HOSTILE_STATES.items():
        response = await _post_raw(client, "/api/tasks/execute", _execute_raw(state_json))
        assert response.status_code == 422, (name, response.text[:300])
        assert response.headers["content-type"] == "application/json", name
        body = response.json()
        if error is None:  # the body itself cannot be decoded: FastAPI's json_invalid
            assert body["detail"][0]["type"] == "json_invalid", name
        elif error != "any":
            assert body["error"] == error, name
            assert body["detail"].startswith(path or "initial_state"), (name, body["detail"])
            if path:
                assert body["path"] == path
    deep = (await _post_raw(client, "/api/tasks/execute", _execute_raw(HOSTILE_STATES["200 levels deep"][0]))).json()
    assert f"nested deeper than {MAX_NESTING_DEPTH} levels" in deep["detail"]
    assert (await client.get("/api/tasks")).json() == {"tasks": [], "next_cursor": None}
    assert raw.dbsize() == keys_before
    raw.close()


async def test_json_at_the_limits_is_accepted_and_reads_back_exactly(api) -> None:
    deepest = _nested(MAX_NESTING_DEPTH - 2)  # initial_state -> log -> this: MAX_NESTING_DEPTH levels
    # `log` is a channel of data_pipeline's state: what goes in comes back out in `state`.
    state = {"step_seconds": 0, "log": [deepest, "emoji \U0001f600", "nul \u0000 byte", 2**64 - 1, -(2**63)]}
    client = api.client
    task_id = await execute(client, "data_pipeline", state)
    done = await wait_status(client, task_id, "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["state"]["log"][:5] == state["log"]
    assert (await client.get("/api/tasks")).json()["tasks"][0]["state"] == done["state"]
    assert (await client.get(f"/api/tasks/{task_id}/history")).status_code == 200


async def test_a_record_stored_before_the_checks_stays_readable(api, redis_url) -> None:
    """Records written by an older version (or by a graph) may hold anything: reads still answer JSON."""
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0})
    await wait_status(client, task_id, "completed")
    raw = redis.Redis.from_url(redis_url)
    raw.hset(keys.task(task_id), mapping={
        "state": '{"log": ["\\ud800", NaN, {"\\udfff": Infinity}]}',
        "interrupt": "[" * 5000 + "]" * 5000,
        "initial_state": "[" * 5000 + "]" * 5000,
    })
    raw.close()
    one = await client.get(f"/api/tasks/{task_id}")
    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    shown = one.json()
    assert shown["state"]["log"] == ["\ufffd", None, {"\ufffd": None}]
    assert "not shown" in shown["interrupt"]
    listed = await client.get("/api/tasks")
    assert listed.status_code == 200 and listed.json()["tasks"][0]["state"] == shown["state"]
    events = await client.get(f"/api/tasks/{task_id}/events")
    assert events.status_code == 200
    frames = [json.loads(line.removeprefix("data:")) for line in events.text.splitlines() if line.startswith("data:")]
    assert {"type": "status", "status": "completed"}.items() <= frames[-1].items()


async def test_cursor_and_event_ids_are_checked_before_anything_starts(api) -> None:
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0})
    await wait_status(client, task_id, "completed")
    assert (await client.get("/api/tasks", params={"cursor": "\u00b2"})).status_code == 422
    bad_ids = ["1-", "-1", "1-2-3", "\u00b2", "99999999999999999999999-0", "18446744073709551616",
               "1-18446744073709551616", "yesterday"]
    for bad in bad_ids:
        for request in ({"params": {"after": bad}}, {"headers": {"Last-Event-ID": bad.encode()}}):
            if "headers" in request and not bad.isascii():
                continue  # not sendable as a header
            response = await client.get(f"/api/tasks/{task_id}/events", **request)
            assert response.status_code == 422, (bad, request)
            assert response.json()["error"] == "invalid_request"
    last = f"{2**64 - 1}-{2**64 - 1}"  # valid: nothing can come after it
    assert (await client.get(f"/api/tasks/{task_id}/events", params={"after": last})).text == ""
    everything = (await client.get(f"/api/tasks/{task_id}/events", params={"after": "0"})).text
    assert everything.count("data: ") == (await client.get(f"/api/tasks/{task_id}/events")).text.count("data: ") > 0
    for bad in ["1-", "99999999999999999999999-0", "18446744073709551616"]:
        async with _ws(api, task_id, after=bad) as ws:
            assert json.loads(await ws.receive_text(timeout=10))["error"] == "invalid_request"
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text(timeout=10)
        assert closed.value.code == 4422


async def test_resume_input_has_the_limits_of_initial_state(api) -> None:
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0, "require_approval": True})
    waiting = await wait_status(client, task_id, "waiting_input")
    too_big = await client.post(f"/api/tasks/{task_id}/resume", json={"input": "x" * (LIMIT_BYTES + 1)})
    assert too_big.status_code == 413 and too_big.json()["error"] == "state_too_large"
    assert f"limit is {LIMIT_BYTES} bytes" in too_big.json()["detail"]
    assert (await client.post(f"/api/tasks/{task_id}/resume", json={"input": _nested(MAX_NESTING_DEPTH + 1)})
            ).json()["error"] == "invalid_payload"
    surrogate = await _post_raw(client, f"/api/tasks/{task_id}/resume", '{"input": {"a": ["\\ud800"]}}')
    assert surrogate.status_code == 422 and surrogate.json()["path"] == "input.a[0]"
    assert (await _post_raw(client, f"/api/tasks/{task_id}/resume", '{"input": ' + "[" * 100_000)).status_code == 422
    assert await task(client, task_id) == waiting
    async with _ws(api, task_id) as ws:
        await ws.send_text(json.dumps({"type": "input", "input": "x" * (LIMIT_BYTES + 1)}))
        assert (await _reply(ws))["code"] == 413
        await ws.send_text('{"type": "input", "input": "\\udfff"}')
        reply = await _reply(ws)
        assert reply["code"] == 422 and reply["path"] == "input"
    assert await task(client, task_id) == waiting
    answer = {"approved": True, "note": "\U0001f600"}
    assert (await client.post(f"/api/tasks/{task_id}/resume", json={"input": answer})).status_code == 202
    assert (await wait_status(client, task_id, "completed"))["state"]["approval"] == answer


async def test_websocket_answers_binary_and_undecodable_frames_and_stays_usable(api) -> None:
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0, "require_approval": True})
    await wait_status(client, task_id, "waiting_input")
    async with _ws(api, task_id) as ws:
        await ws.send_bytes(b"\x00\x01binary")
        binary = await _reply(ws)
        assert binary["ok"] is False and binary["code"] == 422 and binary["error"] == "invalid_request" and "Binary" in binary["detail"]
        for bad in ("[" * 100_000, '{"type": "input", "input": ' + "9" * 5000 + "}", '{"type": "\\ud800"}'):
            await ws.send_text(bad)
            reply = await _reply(ws)
            assert reply["ok"] is False and reply["code"] == 422, bad[:40]
        await ws.send_text(json.dumps({"type": "input", "input": "approved"}))
        assert (await _reply(ws))["ok"] is True
    assert (await wait_status(client, task_id, "completed"))["state"]["approval"] == "approved"


async def test_options_and_405_name_every_method_of_a_path(api) -> None:
    client = api.client
    options = await client.request("OPTIONS", "/api/tasks/some-task")
    assert options.status_code == 204
    assert set(options.headers["allow"].split(", ")) == {"GET", "DELETE", "OPTIONS"}
    put = await client.put("/api/tasks/some-task")
    assert put.status_code == 405 and put.json()["error"] == "method_not_allowed"
    assert put.headers["allow"] == options.headers["allow"]
    metrics = (await client.get("/openapi.json")).json()["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert all(media.startswith("text/plain") for media in metrics)
