"""A real `redis-persist serve` process driven over HTTP: run, pause, resume, cancel, answer, fail, retry."""

from __future__ import annotations

import json

import httpx

from tests.e2e.helpers import GRAPHS_ENV, execute, runs, task, wait_node_started, wait_status
from tests.support import node_runs, read_events, wait_until

DATA_NODES = ["fetch", "transform", "validate", "save"]
NODES = ["one", "two", "three", "four"]  # the `counting` test graph


def test_data_pipeline_runs_every_node_once_and_completes(service) -> None:
    with service.client() as client:
        task_id = execute(client, "data_pipeline", {"step_seconds": 0.05})
        done = wait_status(client, task_id, "completed")
    assert done["progress"] == 100
    assert done["checkpoint"] == "save"
    assert done["completed_nodes"] == DATA_NODES
    assert done["state"]["saved"] is True and done["state"]["total"] == 110
    assert done["owner"] == service.name and done["node"] == service.name
    events = read_events(service.url, task_id)
    assert node_runs(events) == {node: 1 for node in DATA_NODES}
    assert [e["status"] for e in events if e["type"] == "status"] == ["queued", "running", "completed"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == len(ids)
    progress = [e["progress"] for e in events if e["type"] == "node_completed"]
    assert progress == [25, 50, 75, 99]  # 100 only once the task is completed


def test_pause_stops_at_the_next_node_boundary_and_resume_continues_from_the_checkpoint(
    start_service, tmp_path
) -> None:
    service = start_service(GRAPHS_ENV)
    run_log = tmp_path / "runs"
    with service.client() as client:
        task_id = execute(client, "counting", {"run_log": str(run_log), "step_seconds": 0.6})
        wait_node_started(client, task_id, "two")
        reply = client.post(f"/api/tasks/{task_id}/pause")
        assert reply.status_code == 202 and reply.json()["status"] == "running"
        in_flight = reply.json()["message"].split("'")[1]  # "...when the running node 'two' completes"
        done_before_pause = NODES[: NODES.index(in_flight) + 1]
        paused = wait_status(client, task_id, "paused")
        assert paused["checkpoint"] == in_flight
        assert paused["completed_nodes"] == done_before_pause
        assert runs(run_log) == {node: 1 for node in done_before_pause}  # no node started after the pause
        assert paused["progress"] == 25 * len(done_before_pause)
        reply = client.post(f"/api/tasks/{task_id}/resume")
        assert reply.status_code == 202 and reply.json() == {
            "message": "Task resumed from its last checkpoint", "status": "queued", "checkpoint": in_flight}
        wait_status(client, task_id, "completed")
    assert runs(run_log) == {"one": 1, "two": 1, "three": 1, "four": 1}
    events = read_events(service.url, task_id)
    paused_events = [e for e in events if e["type"] == "task_paused"]
    assert paused_events and paused_events[0]["reason"] == "Paused by user"


def test_pause_and_cancel_a_queued_task(start_service) -> None:
    service = start_service({"REDIS_PERSIST_MAX_TASKS": "1"})
    with service.client() as client:
        blocker = execute(client, "data_pipeline", {"step_seconds": 1})
        wait_status(client, blocker, "running")
        queued = execute(client, "data_pipeline", {"step_seconds": 0})
        assert task(client, queued)["status"] == "queued"
        reply = client.post(f"/api/tasks/{queued}/pause")
        assert reply.status_code == 202 and reply.json()["status"] == "paused"
        assert client.post(f"/api/tasks/{queued}/cancel").json()["status"] == "cancelled"
        client.post(f"/api/tasks/{blocker}/cancel")
        assert task(client, queued)["attempts"] == 0


def test_cancel_stops_the_running_node_at_once(start_service, tmp_path) -> None:
    service = start_service(GRAPHS_ENV)
    run_log = tmp_path / "runs"
    with service.client() as client:
        task_id = execute(client, "counting", {"run_log": str(run_log), "step_seconds": 30})
        wait_node_started(client, task_id, "one")
        reply = client.post(f"/api/tasks/{task_id}/cancel")
        assert reply.status_code == 202 and reply.json()["status"] == "cancelled"
        cancelled = task(client, task_id)
        assert cancelled["status"] == "cancelled" and cancelled["current_node"] is None
        # The replica stops running it (well before the 30 s node would end).
        wait_until(lambda: 'redis_persist_replica_running_tasks{replica="svc"} 0.0' in client.get("/metrics").text,
                   10, "the replica to stop the cancelled task")
        for action in ("pause", "resume", "cancel"):
            assert client.post(f"/api/tasks/{task_id}/{action}").status_code == 409
    assert runs(run_log) == {"one": 1}


def test_interrupt_waits_for_input_and_resume_with_the_answer_continues(service) -> None:
    with service.client() as client:
        task_id = execute(client, "data_pipeline", {"step_seconds": 0.05, "require_approval": True})
        waiting = wait_status(client, task_id, "waiting_input")
        assert waiting["interrupt"]["question"] == "Approve these records?"
        assert waiting["checkpoint"] == "transform"
        missing = client.post(f"/api/tasks/{task_id}/resume")
        assert missing.status_code == 422 and "input" in missing.json()["detail"]
        assert task(client, task_id)["status"] == "waiting_input"
        reply = client.post(f"/api/tasks/{task_id}/resume", json={"input": {"approved": True, "by": "ana"}})
        assert reply.status_code == 202 and reply.json()["status"] == "queued"
        done = wait_status(client, task_id, "completed")
    assert done["state"]["approval"] == {"approved": True, "by": "ana"}
    assert done["interrupt"] is None
    events = read_events(service.url, task_id)
    assert [e["interrupt"]["question"] for e in events if e["type"] == "interrupt"] == ["Approve these records?"]
    # validate asks, is interrupted, and runs again with the answer: it was the node in flight.
    assert node_runs(events) == {"fetch": 1, "transform": 1, "validate": 2, "save": 1}


def test_a_failing_node_fails_the_task_and_resume_retries_from_the_last_checkpoint(start_service, tmp_path) -> None:
    service = start_service(GRAPHS_ENV)
    run_log = tmp_path / "runs"
    state = {"run_log": str(run_log), "fail_marker": str(tmp_path / "marker"), "step_seconds": 0.05}
    with service.client() as client:
        task_id = execute(client, "flaky", state)
        failed = wait_status(client, task_id, "failed")
        assert "flaky node failed on its first run" in failed["error"]
        assert "flaky" in failed["error"] and failed["checkpoint"] == "before"
        assert client.post(f"/api/tasks/{task_id}/resume").status_code == 202
        done = wait_status(client, task_id, "completed")
    assert done["error"] is None and done["attempts"] == 2
    assert runs(run_log) == {"before": 1, "flaky": 2, "after": 1}
    errors = [e for e in read_events(service.url, task_id) if e["type"] == "error"]
    assert len(errors) == 1 and errors[0]["node"] == "flaky"


def test_a_node_over_its_timeout_pauses_the_task(start_service, tmp_path) -> None:
    service = start_service({**GRAPHS_ENV, "REDIS_PERSIST_NODE_TIMEOUT_SECONDS": "0.5"})
    with service.client() as client:
        task_id = execute(client, "counting", {"step_seconds": 5})
        paused = wait_status(client, task_id, "paused")
        assert "timeout" in paused["error"]
    reasons = [e for e in read_events_until(service.url, task_id, "task_paused")]
    assert reasons[-1]["reason"] == "Node timeout" and reasons[-1]["node"] == "one"
    assert reasons[-1]["action_required"] == "resume"


def read_events_until(base_url: str, task_id: str, event_type: str) -> list[dict]:
    """Events up to and including the first of `event_type` (for tasks that do not end)."""
    seen = []
    with httpx.stream("GET", f"{base_url}/api/tasks/{task_id}/events", timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1]["type"] == event_type:
                    return seen
    return seen
