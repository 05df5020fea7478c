"""The service driven over HTTP: run, pause, resume, cancel, answer, fail, retry."""

from __future__ import annotations

from tests.api.helpers import execute, read_events, task, wait_node_started, wait_status, wait_until
from tests.e2e.helpers import GRAPHS_ENV, runs
from tests.support import node_runs

DATA_NODES = ["fetch", "transform", "validate", "save"]
NODES = ["one", "two", "three", "four"]  # the `counting` test graph


async def test_data_pipeline_runs_every_node_once_and_completes(api) -> None:
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0.05})
    done = await wait_status(client, task_id, "completed")
    assert done["progress"] == 100
    assert done["checkpoint"] == "save"
    assert done["completed_nodes"] == DATA_NODES
    assert done["state"]["saved"] is True and done["state"]["total"] == 110
    assert done["owner"] == api.name and done["node"] == api.name
    events = await read_events(client, task_id)
    assert node_runs(events) == {node: 1 for node in DATA_NODES}
    assert [e["status"] for e in events if e["type"] == "status"] == ["queued", "running", "completed"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == len(ids)
    progress = [e["progress"] for e in events if e["type"] == "node_completed"]
    assert progress == [25, 50, 75, 99]  # 100 only once the task is completed


async def test_pause_stops_at_the_next_node_boundary_and_resume_continues_from_the_checkpoint(
    start_app, tmp_path
) -> None:
    client = (await start_app(GRAPHS_ENV)).client
    run_log = tmp_path / "runs"
    task_id = await execute(client, "counting", {"run_log": str(run_log), "step_seconds": 0.6})
    await wait_node_started(client, task_id, "two")
    reply = await client.post(f"/api/tasks/{task_id}/pause")
    assert reply.status_code == 202 and reply.json()["status"] == "running"
    in_flight = reply.json()["message"].split("'")[1]  # "...when the running node 'two' completes"
    done_before_pause = NODES[: NODES.index(in_flight) + 1]
    paused = await wait_status(client, task_id, "paused")
    assert paused["checkpoint"] == in_flight
    assert paused["completed_nodes"] == done_before_pause
    assert runs(run_log) == {node: 1 for node in done_before_pause}  # no node started after the pause
    assert paused["progress"] == 25 * len(done_before_pause)
    reply = await client.post(f"/api/tasks/{task_id}/resume")
    assert reply.status_code == 202 and reply.json() == {
        "message": "Task resumed from its last checkpoint", "status": "queued", "checkpoint": in_flight}
    await wait_status(client, task_id, "completed")
    assert runs(run_log) == {"one": 1, "two": 1, "three": 1, "four": 1}
    events = await read_events(client, task_id)
    paused_events = [e for e in events if e["type"] == "task_paused"]
    assert paused_events and paused_events[0]["reason"] == "Paused by user"


async def test_pause_and_cancel_a_queued_task(start_app) -> None:
    client = (await start_app({"REDIS_PERSIST_MAX_TASKS": "1"})).client
    blocker = await execute(client, "data_pipeline", {"step_seconds": 1})
    await wait_status(client, blocker, "running")
    queued = await execute(client, "data_pipeline", {"step_seconds": 0})
    assert (await task(client, queued))["status"] == "queued"
    reply = await client.post(f"/api/tasks/{queued}/pause")
    assert reply.status_code == 202 and reply.json()["status"] == "paused"
    assert (await client.post(f"/api/tasks/{queued}/cancel")).json()["status"] == "cancelled"
    await client.post(f"/api/tasks/{blocker}/cancel")
    assert (await task(client, queued))["attempts"] == 0


async def test_cancel_stops_the_running_node_at_once(start_app, tmp_path) -> None:
    client = (await start_app(GRAPHS_ENV)).client
    run_log = tmp_path / "runs"
    task_id = await execute(client, "counting", {"run_log": str(run_log), "step_seconds": 30})
    await wait_node_started(client, task_id, "one")
    reply = await client.post(f"/api/tasks/{task_id}/cancel")
    assert reply.status_code == 202 and reply.json()["status"] == "cancelled"
    cancelled = await task(client, task_id)
    assert cancelled["status"] == "cancelled" and cancelled["current_node"] is None

    # The replica stops running it (well before the 30 s node would end).
    async def stopped() -> bool:
        return 'redis_persist_replica_running_tasks{replica="svc"} 0.0' in (await client.get("/metrics")).text

    await wait_until(stopped, 10, "the replica to stop the cancelled task")
    for action in ("pause", "resume", "cancel"):
        assert (await client.post(f"/api/tasks/{task_id}/{action}")).status_code == 409
    assert runs(run_log) == {"one": 1}


async def test_interrupt_waits_for_input_and_resume_with_the_answer_continues(api) -> None:
    client = api.client
    task_id = await execute(client, "data_pipeline", {"step_seconds": 0.05, "require_approval": True})
    waiting = await wait_status(client, task_id, "waiting_input")
    assert waiting["interrupt"]["question"] == "Approve these records?"
    assert waiting["checkpoint"] == "transform"
    missing = await client.post(f"/api/tasks/{task_id}/resume")
    assert missing.status_code == 422 and "input" in missing.json()["detail"]
    assert (await task(client, task_id))["status"] == "waiting_input"
    reply = await client.post(f"/api/tasks/{task_id}/resume", json={"input": {"approved": True, "by": "ana"}})
    assert reply.status_code == 202 and reply.json()["status"] == "queued"
    done = await wait_status(client, task_id, "completed")
    assert done["state"]["approval"] == {"approved": True, "by": "ana"}
    assert done["interrupt"] is None
    events = await read_events(client, task_id)
    assert [e["interrupt"]["question"] for e in events if e["type"] == "interrupt"] == ["Approve these records?"]
    # validate asks, is interrupted, and runs again with the answer: it was the node in flight.
    assert node_runs(events) == {"fetch": 1, "transform": 1, "validate": 2, "save": 1}


async def test_a_failing_node_fails_the_task_and_resume_retries_from_the_last_checkpoint(start_app, tmp_path) -> None:
    client = (await start_app(GRAPHS_ENV)).client
    run_log = tmp_path / "runs"
    state = {"run_log": str(run_log), "fail_marker": str(tmp_path / "marker"), "step_seconds": 0.05}
    task_id = await execute(client, "flaky", state)
    failed = await wait_status(client, task_id, "failed")
    assert "flaky node failed on its first run" in failed["error"]
    assert "flaky" in failed["error"] and failed["checkpoint"] == "before"
    assert (await client.post(f"/api/tasks/{task_id}/resume")).status_code == 202
    done = await wait_status(client, task_id, "completed")
    assert done["error"] is None and done["attempts"] == 2
    assert runs(run_log) == {"before": 1, "flaky": 2, "after": 1}
    errors = [e for e in await read_events(client, task_id) if e["type"] == "error"]
    assert len(errors) == 1 and errors[0]["node"] == "flaky"
