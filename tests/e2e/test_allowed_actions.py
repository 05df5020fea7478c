"""Each task's `allowed_actions` lists exactly the control requests its endpoints accept in its status."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import GRAPHS_ENV, execute, task, wait_status

ACTIONS = ["pause", "resume", "answer", "cancel", "delete"]
SLOTS = len(ACTIONS)  # one running task per action fills the worker; later tasks stay queued


def _request(client: httpx.Client, task_id: str, action: str) -> httpx.Response:
    if action == "delete":
        return client.delete(f"/api/tasks/{task_id}")
    if action == "answer":
        return client.post(f"/api/tasks/{task_id}/resume", json={"input": {"approved": True}})
    return client.post(f"/api/tasks/{task_id}/{action}")


def _accepted(client: httpx.Client, task_ids: list[str], status: str) -> tuple[list[str], list[str]]:
    """(what each task lists, what the endpoints accepted): one task of `status` per action."""
    listed = {tuple(task(client, task_id)["allowed_actions"]) for task_id in task_ids}
    assert {task(client, task_id)["status"] for task_id in task_ids} == {status}
    assert len(listed) == 1, listed  # the same status lists the same actions
    accepted = []
    for task_id, action in zip(task_ids, ACTIONS, strict=True):
        response = _request(client, task_id, action)
        assert response.status_code in (200, 202, 409, 422), (status, action, response.text)
        if response.status_code < 300:
            accepted.append(action)
    return list(listed.pop()), accepted


def test_allowed_actions_are_exactly_the_accepted_requests(start_service, tmp_path) -> None:
    service = start_service({**GRAPHS_ENV, "REDIS_PERSIST_MAX_TASKS": str(SLOTS)})
    gate = str(tmp_path / "never-opened")
    with service.client() as client:
        by_status: dict[str, list[str]] = {
            "completed": [execute(client, "data_pipeline", {"step_seconds": 0}) for _ in ACTIONS],
            "failed": [execute(client, "flaky", {"fail_marker": str(tmp_path / f"marker-{i}")}) for i in range(SLOTS)],
            "waiting_input": [execute(client, "data_pipeline", {"step_seconds": 0, "require_approval": True})
                              for _ in ACTIONS],
        }
        for status, task_ids in by_status.items():
            for task_id in task_ids:
                wait_status(client, task_id, status, timeout=60)
        by_status["running"] = [execute(client, "gated", {"gate": gate}) for _ in ACTIONS]
        for task_id in by_status["running"]:
            wait_status(client, task_id, "running", timeout=60)
        # Every slot is taken by a gated task: these stay queued until something running ends.
        by_status["queued"] = [execute(client, "data_pipeline") for _ in ACTIONS]
        by_status["paused"] = [execute(client, "data_pipeline") for _ in ACTIONS]
        by_status["cancelled"] = [execute(client, "data_pipeline") for _ in ACTIONS]
        for task_id in by_status["paused"]:
            assert client.post(f"/api/tasks/{task_id}/pause").json()["status"] == "paused"
        for task_id in by_status["cancelled"]:
            assert client.post(f"/api/tasks/{task_id}/cancel").json()["status"] == "cancelled"
        page = client.get("/api/tasks", params={"limit": 500}).json()["tasks"]
        assert len(page) == len(ACTIONS) * 7
        assert all(listed["allowed_actions"] == task(client, listed["task_id"])["allowed_actions"] for listed in page)
        # Queued first and running last: an accepted cancel of a running task frees a slot.
        order = ["queued", "paused", "cancelled", "completed", "failed", "waiting_input", "running"]
        outcomes = {status: _accepted(client, by_status[status], status) for status in order}
        for task_id in by_status["running"]:
            client.post(f"/api/tasks/{task_id}/cancel")
    assert {status: listed for status, (listed, _) in outcomes.items()} == {
        status: accepted for status, (_, accepted) in outcomes.items()}
    assert outcomes["running"][0] == ["pause", "cancel"]  # pause is accepted: it takes effect at a node boundary
    assert outcomes["waiting_input"][0] == ["answer", "cancel", "delete"]
