"""allowed_actions: what a task's JSON says a client may do now, derived from the status table."""

from __future__ import annotations

import pytest

from redis_persist.core.status import TaskStatus, allowed_actions
from redis_persist.core.task import Task

S = TaskStatus


@pytest.mark.parametrize(("status", "pause_requested", "expected"), [
    (S.QUEUED, False, ["pause", "cancel"]),
    (S.RUNNING, False, ["pause", "cancel"]),
    (S.RUNNING, True, ["cancel"]),
    (S.PAUSED, False, ["resume", "cancel", "delete"]),
    (S.WAITING_INPUT, False, ["answer", "cancel", "delete"]),
    (S.FAILED, False, ["resume", "cancel", "delete"]),
    (S.COMPLETED, False, ["delete"]),
    (S.CANCELLED, False, ["delete"]),
])
def test_allowed_actions_follow_the_status_table(status, pause_requested, expected) -> None:
    assert allowed_actions(status, pause_requested) == expected


def test_the_task_json_carries_allowed_actions() -> None:
    task = Task.from_hash({"task_id": "t1", "graph_name": "g", "status": "running", "pause_requested": "1"})
    assert task.public("replica-a")["allowed_actions"] == ["cancel"]
