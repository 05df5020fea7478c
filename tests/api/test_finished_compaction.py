"""REDIS_PERSIST_FINISHED_COMPACTION (on by default): a completed or cancelled task of its own keeps its record,
its events and a summary of its final checkpoint; its checkpoints go. What a user reads still answers; a task that
can still run, and a LangGraph thread, keep every checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys

import redis

from redis_persist.engine.compaction import FinishedCompaction, compacted_history, history_entry
from redis_persist.store import keys
from tests.api.helpers import execute, read_events, task, wait_status, wait_until
from tests.support import REPO, TEST_GRAPHS_DIR, ServiceProcess

GRAPHS = {"REDIS_PERSIST_GRAPHS": str(TEST_GRAPHS_DIR / "langgraph.json")}
LG_GRAPHS = {"REDIS_PERSIST_GRAPHS": str(TEST_GRAPHS_DIR / "lg_api.json")}
OFF = {"REDIS_PERSIST_FINISHED_COMPACTION": "false"}


def _keys_of(redis_url: str, store_id: str) -> list[str]:
    """Every key whose name holds the id: ours (`rp:task:{id}`, ...) and the saver's (`checkpoint:id:...`)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return sorted(client.scan_iter(match=f"*{store_id}*", count=1000))
    finally:
        client.close()


def _saver_keys(redis_url: str, store_id: str) -> list[str]:
    return [key for key in _keys_of(redis_url, store_id) if not key.startswith(keys.PREFIX)]


def _queued_for_compaction(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.zrange(keys.COMPACT, 0, -1)
    finally:
        client.close()


async def _compacted(redis_url: str, task_id: str) -> list[str]:
    """Wait until only the task's record and events are left and it is off the compaction queue; its keys."""
    async def only_ours() -> list[str] | None:
        found = _keys_of(redis_url, task_id)
        is_done = found == [keys.events(task_id), keys.task(task_id)] and task_id not in _queued_for_compaction(redis_url)
        return found if is_done else None
    return await wait_until(only_ours, 30, f"task {task_id} to be compacted")


def _compaction(service) -> FinishedCompaction:
    services = service.app.state.services
    return FinishedCompaction(services.control.store, services.saver)


async def test_a_completed_task_keeps_its_record_events_and_final_checkpoint_only(api, redis_url) -> None:
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0}, task_id="kept-1")
    done = await wait_status(client, task_id, "completed")
    assert await _compacted(redis_url, task_id)  # fails if compaction silently stops happening
    assert _queued_for_compaction(redis_url) == []

    after = await task(client, task_id)
    assert {k: v for k, v in after.items() if k != "node"} == {k: v for k, v in done.items() if k != "node"}
    assert after["state"]["saved"] is True and after["progress"] == 100
    history = (await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"]
    assert len(history) == 1
    final = history[0]
    assert final["checkpoint_id"] == after["checkpoint_id"] and final["step"] == 4 and final["source"] == "loop"
    assert final["values"] == after["state"] and final["parent_checkpoint_id"] and final["created_at"]

    events = await read_events(client, task_id)
    assert [e["type"] for e in events[:2]] == ["status", "status"] and events[0]["status"] == "queued"
    assert [e["node"] for e in events if e["type"] == "node_completed"] == ["fetch", "transform", "validate", "save"]
    assert events[-1] == {**events[-1], "type": "status", "status": "completed", "task_id": task_id}
    # A client reconnecting with its last id gets exactly the rest, as before compaction.
    response = await client.get(f"/api/tasks/{task_id}/events", headers={"Last-Event-ID": events[3]["id"]})
    assert [line[4:] for line in response.text.splitlines() if line.startswith("id: ")] == [
        e["id"] for e in events[4:]]
    # A task reads as a thread of its own: its state and history answer from the kept final checkpoint.
    state = (await client.get(f"/threads/{task_id}/state")).json()
    assert state["values"] == after["state"] and state["checkpoint_id"] == after["checkpoint_id"]
    assert state["next"] == [] and state["metadata"] == {"source": "loop", "step": 4}
    thread_history = (await client.get(f"/threads/{task_id}/history")).json()
    assert [s["checkpoint_id"] for s in thread_history] == [after["checkpoint_id"]]
    assert (await client.get(f"/threads/{task_id}")).json()["values"] == after["state"]
    assert (await client.get(f"/threads/{task_id}/state/{final['parent_checkpoint_id']}")).status_code == 404

    # What only a task that can still run needs is gone from the record; an idempotent create still works.
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    assert not {"initial_state", "fence", "current_node"} & set(raw.hkeys(keys.task(task_id)))
    raw.close()
    body = {"graph_name": "data_pipeline", "initial_state": {"step_seconds": 0}, "task_id": task_id}
    again = await client.post("/api/tasks/execute", json=body)
    assert again.status_code == 202 and again.json()["status"] == "completed", again.text
    other = await client.post("/api/tasks/execute", json={**body, "initial_state": {"step_seconds": 1}})
    assert other.status_code == 409

    assert (await client.delete(f"/api/tasks/{task_id}")).status_code == 200
    assert _keys_of(redis_url, task_id) == []


async def test_a_cancelled_task_is_compacted_by_the_sweep(api, redis_url) -> None:
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0, "require_approval": True})
    waiting = await wait_status(client, task_id, "waiting_input")
    assert (await client.post(f"/api/tasks/{task_id}/cancel")).status_code == 202
    await _compacted(redis_url, task_id)  # a lease time after the cancel (3 s here)
    history = (await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"]
    assert [c["checkpoint_id"] for c in history] == [waiting["checkpoint_id"]]
    assert history[0]["values"]["records"] == waiting["state"]["records"]
    assert (await task(client, task_id))["status"] == "cancelled"
    assert (await read_events(client, task_id))[-1]["status"] == "cancelled"


async def test_a_task_that_can_still_run_is_never_compacted(start_app, redis_url, tmp_path) -> None:
    service = await start_app(GRAPHS)
    client, compaction = service.client, _compaction(service)
    waiting = await execute(client, "data_pipeline", {"step_seconds": 0, "require_approval": True})
    await wait_status(client, waiting, "waiting_input")
    failing = await execute(client, "flaky", {"fail_marker": str(tmp_path / "failed"), "run_log": str(tmp_path / "log")})
    await wait_status(client, failing, "failed")
    running = await execute(client, "counting", {"step_seconds": 30, "run_log": str(tmp_path / "log")})
    await wait_status(client, running, "running")
    paused = await execute(client, "counting", {"step_seconds": 30, "run_log": str(tmp_path / "log")})
    assert (await client.post(f"/api/tasks/{paused}/pause")).status_code == 202
    await wait_status(client, paused, "paused", "running")

    for task_id in (waiting, failing, running, paused):
        before = _saver_keys(redis_url, task_id)
        # Even one queued for compaction by mistake (or by a stale entry) is left alone and dropped from the queue.
        client_redis = redis.Redis.from_url(redis_url, decode_responses=True)
        client_redis.zadd(keys.COMPACT, {task_id: 0})
        client_redis.close()
        assert await compaction.compact(task_id) is False
        assert _saver_keys(redis_url, task_id) == before
        assert task_id not in _queued_for_compaction(redis_url)
        assert len((await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"]) == len(
            [k for k in before if k.startswith("checkpoint:")])
    assert any(k.startswith("checkpoint:") for k in _saver_keys(redis_url, waiting))
    assert any(k.startswith("checkpoint:") for k in _saver_keys(redis_url, failing))

    # The failed task resumes from its checkpoints (its first node does not run again), then is compacted.
    assert (await client.post(f"/api/tasks/{failing}/resume")).status_code == 202
    done = await wait_status(client, failing, "completed")
    assert done["completed_nodes"] == ["before", "flaky", "after"]
    assert (tmp_path / "log").read_text().count("before") == 1
    await _compacted(redis_url, failing)
    await client.post(f"/api/tasks/{running}/cancel")
    await client.post(f"/api/tasks/{paused}/cancel")


async def test_the_kept_final_checkpoint_is_the_one_history_showed_before(start_app, redis_url) -> None:
    service = await start_app(OFF)  # compacted by hand below, so the full history can be read first
    client = service.client
    task_id = await execute(client, "ml_pipeline", {"step_seconds": 0})
    await wait_status(client, task_id, "completed")
    full = (await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"]
    state = (await client.get(f"/threads/{task_id}/state")).json()
    assert await _compaction(service).compact(task_id)
    assert await _compacted(redis_url, task_id)
    assert (await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"] == full[:1]
    after = (await client.get(f"/threads/{task_id}/state")).json()
    for field in ("values", "checkpoint", "parent_checkpoint", "checkpoint_id", "parent_checkpoint_id", "created_at",
                  "next", "interrupts"):
        assert after[field] == state[field], field


async def test_the_runner_keeps_the_final_checkpoint_as_the_checkpointer_holds_it(start_app, monkeypatch) -> None:
    # The runner compacts the task it completed at once (the sweep, a lease time = 60 s later, is not what
    # does it here), with a summary from its own run (no read back): compare it with the checkpoint itself,
    # kept here by not letting the compaction delete it.
    api = await start_app({"REDIS_PERSIST_LEASE_TTL_SECONDS": "60"})
    services = api.app.state.services
    deleted: list[str] = []

    async def keep_checkpoints(thread_id: str) -> None:
        deleted.append(thread_id)
    monkeypatch.setattr(services.saver, "adelete_thread", keep_checkpoints)
    task_id = await execute(api.client, "ml_pipeline", {"step_seconds": 0})
    await wait_status(api.client, task_id, "completed")

    async def compacted() -> bool:
        return deleted == [task_id]
    await wait_until(compacted, 30, "the runner's compaction")
    stored = await services.control.store.get(task_id)
    latest = await services.saver.aget_tuple({"configurable": {"thread_id": task_id, "checkpoint_ns": ""}})
    assert compacted_history(stored.final_checkpoint, stored.state) == [history_entry(latest)]


async def test_an_interrupted_compaction_is_finished_by_the_next_one(start_app, redis_url) -> None:
    service = await start_app(OFF)  # nothing compacts by itself here: the test takes each step
    client, compaction = service.client, _compaction(service)
    store = service.app.state.services.control.store
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0})
    done = await wait_status(client, task_id, "completed")
    full = (await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"]
    assert len(full) == 6 and _queued_for_compaction(redis_url) == []

    # A replica dies after the first step (summary stored, checkpoints not yet deleted): reads already agree.
    summary = {k: v for k, v in full[0].items() if k != "values"}
    assert await store.keep_final_checkpoint(task_id, summary)
    assert (await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"] == full[:1]
    assert _saver_keys(redis_url, task_id)

    assert await compaction.compact(task_id)
    assert await compaction.compact(task_id)  # again: nothing left to do, nothing breaks
    assert await _compacted(redis_url, task_id)
    assert (await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"] == full[:1]
    assert (await task(client, task_id))["state"] == done["state"]


async def test_compaction_off_keeps_every_checkpoint(start_app, redis_url) -> None:
    client = (await start_app(OFF)).client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0})
    await wait_status(client, task_id, "completed")
    assert len((await client.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"]) == 6
    assert len([k for k in _saver_keys(redis_url, task_id) if k.startswith("checkpoint:")]) == 6
    assert _queued_for_compaction(redis_url) == []


async def test_a_thread_keeps_its_checkpoints_for_its_next_run(start_app, redis_url) -> None:
    client = (await start_app(LG_GRAPHS)).client
    thread = (await client.post("/threads", json={})).json()["thread_id"]
    for turn in (1, 2):
        response = await client.post(f"/threads/{thread}/runs/wait", json={
            "assistant_id": "chat", "input": {"messages": [{"role": "user", "content": f"hello {turn}"}]}})
        assert response.status_code == 200, response.text
    messages = response.json()["messages"]
    assert [m["content"] for m in messages] == ["hello 1", "turn 1: you said hello 1", "hello 2",
                                                "turn 2: you said hello 2"]
    history = (await client.post(f"/threads/{thread}/history", json={"limit": 20})).json()
    assert len(history) >= 6  # both runs' checkpoints: input, loop per run
    assert _queued_for_compaction(redis_url) == []
    assert len([k for k in _saver_keys(redis_url, thread) if k.startswith("checkpoint:")]) == len(history)


def test_a_bad_compaction_setting_stops_the_service_at_start(redis_url) -> None:
    env = {**ServiceProcess(redis_url).env(), "REDIS_PERSIST_FINISHED_COMPACTION": "sometimes"}
    result = subprocess.run([sys.executable, "-m", "redis_persist", "serve"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "finished_compaction" in result.stderr, result.stderr


def _compact_finished(redis_url: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "redis_persist", "compact-finished"],
                          env={**ServiceProcess(redis_url).env(), **(env or {})}, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


async def test_tasks_finished_while_compaction_was_off_are_compacted_once_queued(start_app, redis_url) -> None:
    """`redis-persist compact-finished` queues what finished without compaction; the replicas' sweeps compact it."""
    off = (await start_app(OFF, name="off")).client
    finished = [await execute(off, "data_pipeline", {"step_seconds": 0}) for _ in range(2)]
    running = await execute(off, "data_pipeline", {"step_seconds": 0, "require_approval": True})
    for task_id in finished:
        await wait_status(off, task_id, "completed")
    await wait_status(off, running, "waiting_input")
    histories = {task_id: (await off.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"] for task_id in finished}

    refused = _compact_finished(redis_url, OFF)
    assert refused.returncode == 2 and "REDIS_PERSIST_FINISHED_COMPACTION is off" in refused.stderr
    assert _queued_for_compaction(redis_url) == []

    queued = _compact_finished(redis_url)
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout) == {"queued": 2}
    assert sorted(_queued_for_compaction(redis_url)) == sorted(finished)  # not the task that can still run
    assert json.loads(_compact_finished(redis_url).stdout) == {"queued": 0}  # queued already

    await start_app(name="on")  # compaction on: its sweep takes the queue
    for task_id in finished:
        await _compacted(redis_url, task_id)
        assert (await off.get(f"/api/tasks/{task_id}/history")).json()["checkpoints"] == histories[task_id][:1]
    assert json.loads(_compact_finished(redis_url).stdout) == {"queued": 0}  # compacted ones are left alone
    assert len([k for k in _saver_keys(redis_url, running) if k.startswith("checkpoint:")]) == 4
