"""The REST contract: bad input changes nothing, idempotent create, listing, history, delete, SSE replay."""

from __future__ import annotations

import redis

from tests.api.helpers import execute, read_events, task, wait_status


async def _count_tasks(client) -> int:
    return len((await client.get("/api/tasks", params={"limit": 500})).json()["tasks"])


async def test_bad_requests_get_clear_errors_and_change_nothing(start_app) -> None:
    client = (await start_app({"REDIS_PERSIST_MAX_INITIAL_STATE_BYTES": "1000"})).client
    unknown = await client.post("/api/tasks/execute", json={"graph_name": "nope", "initial_state": {}})
    assert unknown.status_code == 404
    assert unknown.json()["available_graphs"] == ["data_pipeline", "ml_pipeline"]
    assert "data_pipeline" in unknown.json()["detail"]
    malformed = await client.post("/api/tasks/execute", content=b"{not json",
                                  headers={"content-type": "application/json"})
    assert malformed.status_code == 422
    for body in (
        {"graph_name": 5, "initial_state": {}},
        {"graph_name": "data_pipeline", "initial_state": [1, 2]},
        {"initial_state": {}},
        {"graph_name": "data_pipeline", "task_id": "bad id!"},
        {"graph_name": "data_pipeline", "surprise": 1},
    ):
        response = await client.post("/api/tasks/execute", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"]
    too_big = await client.post("/api/tasks/execute", json={"graph_name": "data_pipeline",
                                                            "initial_state": {"blob": "x" * 2000}})
    assert too_big.status_code == 413 and "limit is 1000 bytes" in too_big.json()["detail"]
    assert await _count_tasks(client) == 0
    for method, path in (("GET", "/api/tasks/ghost"), ("POST", "/api/tasks/ghost/pause"),
                         ("POST", "/api/tasks/ghost/resume"), ("POST", "/api/tasks/ghost/cancel"),
                         ("DELETE", "/api/tasks/ghost"), ("GET", "/api/tasks/ghost/history"),
                         ("GET", "/api/tasks/ghost/events")):
        response = await client.request(method, path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "task_not_found"
    assert (await client.get("/api/tasks", params={"status": "sleeping"})).status_code == 422
    assert (await client.get("/api/tasks", params={"cursor": "abc"})).status_code == 422
    assert (await client.get("/api/tasks", params={"limit": 0})).status_code == 422
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0})
    done = await wait_status(client, task_id, "completed")
    bad_resume = await client.post(f"/api/tasks/{task_id}/resume", json={"input": 1, "extra": 2})
    assert bad_resume.status_code == 422
    bad_event_id = await client.get(f"/api/tasks/{task_id}/events", headers={"Last-Event-ID": "yesterday"})
    assert bad_event_id.status_code == 422
    assert await task(client, task_id) == {**done, "node": done["node"]}


async def test_illegal_moves_are_409_and_leave_the_task_unchanged(api) -> None:
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0})
    done = await wait_status(client, task_id, "completed")
    for action in ("pause", "resume", "cancel"):
        response = await client.post(f"/api/tasks/{task_id}/{action}")
        assert response.status_code == 409, action
        assert response.json()["status"] == "completed"
        assert "completed" in response.json()["detail"]
    assert (await client.post(f"/api/tasks/{task_id}/resume", json={"input": "yes"})).status_code == 409
    assert await task(client, task_id) == done

    running = await execute(client, "data_pipeline", {"step_seconds": 5})
    await wait_status(client, running, "running")
    assert (await client.post(f"/api/tasks/{running}/resume")).status_code == 409
    assert (await client.delete(f"/api/tasks/{running}")).status_code == 409
    assert (await client.post(f"/api/tasks/{running}/cancel")).status_code == 202
    paused_twice = await execute(client, "data_pipeline", {"step_seconds": 5})
    await client.post(f"/api/tasks/{paused_twice}/cancel")
    assert (await client.post(f"/api/tasks/{paused_twice}/pause")).status_code == 409


async def test_client_task_id_makes_create_idempotent(api) -> None:
    body = {"graph_name": "data_pipeline", "initial_state": {"step_seconds": 0}, "task_id": "order-42"}
    client = api.client
    first = await client.post("/api/tasks/execute", json=body)
    again = await client.post("/api/tasks/execute", json=body)
    assert first.status_code == again.status_code == 202
    assert first.json()["task_id"] == again.json()["task_id"] == "order-42"
    assert "already exists" in again.json()["message"]
    other = await client.post("/api/tasks/execute", json={**body, "initial_state": {"step_seconds": 1}})
    assert other.status_code == 409
    assert await _count_tasks(client) == 1
    await wait_status(client, "order-42", "completed")
    done = await task(client, "order-42")
    assert done["attempts"] == 1
    assert done["thread_id"] == "order-42"  # a task of /api/tasks is a checkpointer thread of its own
    listed = (await client.get("/api/tasks")).json()["tasks"]
    assert [t["thread_id"] for t in listed] == ["order-42"]


async def test_list_is_newest_first_with_filters_and_cursor_pages(api) -> None:
    client = api.client
    ids = [await execute(client, graph, {"step_seconds": 0}) for graph in
           ["data_pipeline", "ml_pipeline", "data_pipeline", "ml_pipeline", "data_pipeline"]]
    for task_id in ids:
        await wait_status(client, task_id, "completed")
    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/tasks", params=params)).json()
        pages.append([t["task_id"] for t in body["tasks"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [ids[::-1][0:2], ids[::-1][2:4], ids[::-1][4:5]]
    ml = (await client.get("/api/tasks", params={"graph_name": "ml_pipeline"})).json()["tasks"]
    assert [t["task_id"] for t in ml] == [ids[3], ids[1]]
    both = (await client.get("/api/tasks", params={"graph_name": "data_pipeline", "status": "completed",
                                                    "limit": 2})).json()
    assert [t["task_id"] for t in both["tasks"]] == [ids[4], ids[2]]
    rest = (await client.get("/api/tasks", params={"graph_name": "data_pipeline", "status": "completed",
                                                    "cursor": both["next_cursor"]})).json()
    assert [t["task_id"] for t in rest["tasks"]] == [ids[0]] and rest["next_cursor"] is None
    assert (await client.get("/api/tasks", params={"status": "running"})).json() == {"tasks": [], "next_cursor": None}


async def test_history_is_newest_first_and_delete_removes_checkpoints_and_events(start_app, redis_url) -> None:
    # Every checkpoint kept: a finished task is otherwise compacted (tests/api/test_finished_compaction.py).
    client = (await start_app({"REDIS_PERSIST_FINISHED_COMPACTION": "false"})).client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0})
    await wait_status(client, task_id, "completed")
    checkpoints = (await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"]
    steps = [c["step"] for c in checkpoints]
    assert steps == sorted(steps, reverse=True) and steps[0] == 4
    assert checkpoints[0]["values"]["saved"] is True
    assert checkpoints[0]["checkpoint_id"] == (await task(client, task_id))["checkpoint_id"]
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert any([task_id.encode() in key async for key in raw.scan_iter("checkpoint*", count=1000)])
        assert (await client.delete(f"/api/tasks/{task_id}")).status_code == 200
        assert (await client.get(f"/api/tasks/{task_id}")).status_code == 404
        assert not any([task_id.encode() in key async for key in raw.scan_iter("*", count=1000)])
    finally:
        await raw.aclose()
    assert (await client.get("/api/tasks")).json()["tasks"] == []


async def test_sse_replays_after_last_event_id_without_gaps_or_repeats(api) -> None:
    client = api.client
    task_id = await execute(client, "ml_pipeline", {"step_seconds": 0.05})
    await wait_status(client, task_id, "completed")
    events = await read_events(client, task_id)
    assert [e["node_progress"] for e in events if e["type"] == "progress"] == [0.2, 0.4, 0.6, 0.8, 1.0]
    response = await client.get(f"/api/tasks/{task_id}/events", headers={"Last-Event-ID": events[4]["id"]})
    ids = [line[4:] for line in response.text.splitlines() if line.startswith("id: ")]
    assert ids == [e["id"] for e in events[5:]]
    assert events[-1]["status"] == "completed"


async def test_graphs_health_and_metrics(api) -> None:
    client = api.client
    graphs = {g["name"]: g for g in (await client.get("/api/graphs")).json()["graphs"]}
    assert graphs["data_pipeline"]["nodes"] == ["fetch", "transform", "validate", "save"]
    assert graphs["ml_pipeline"]["nodes"] == ["load_data", "preprocess", "train", "evaluate"]
    assert {"source": "fetch", "target": "transform", "conditional": False} in graphs["data_pipeline"]["edges"]
    assert (await client.get("/health")).json() == {"status": "ok", "service": "svc", "redis": "ok"}
    await execute(client, "data_pipeline", {"step_seconds": 0})
    metrics = (await client.get("/metrics")).text
    assert 'redis_persist_tasks{status="' in metrics
    assert (await client.get("/")).status_code == 200
