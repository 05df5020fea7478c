"""Task statuses and the one table of legal moves between them."""

from __future__ import annotations

from enum import StrEnum

from redis_persist.core.errors import IllegalTransition


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_INPUT = "waiting_input"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.CANCELLED})

S = TaskStatus

# target status -> the statuses it may be entered from. The only place a legal move is defined.
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.RUNNING: frozenset({S.QUEUED}),  # a worker claims it
    S.PAUSED: frozenset({S.QUEUED, S.RUNNING}),  # pause; node timeout
    S.WAITING_INPUT: frozenset({S.RUNNING}),  # the graph called interrupt()
    S.COMPLETED: frozenset({S.RUNNING}),
    S.FAILED: frozenset({S.RUNNING}),
    # running -> queued: its replica died and the task is handed out again.
    # paused/failed -> queued: resume; waiting_input -> queued: resume with input.
    S.QUEUED: frozenset({S.RUNNING, S.PAUSED, S.FAILED, S.WAITING_INPUT}),
    S.CANCELLED: frozenset({S.QUEUED, S.RUNNING, S.PAUSED, S.WAITING_INPUT, S.FAILED}),
}


# DELETE /api/tasks/{id} removes a task that no worker is about to run or running.
DELETABLE = frozenset(S) - {S.QUEUED, S.RUNNING}


def allowed_actions(status: TaskStatus, pause_requested: bool) -> list[str]:
    """The controls a client may use on a task now, in the order pause, resume, answer, cancel, delete."""
    may = {
        "pause": status in TRANSITIONS[S.PAUSED] and not pause_requested,
        # Into queued from a rest state: paused/failed by resume, waiting_input by answer (not hand-back).
        "resume": status in TRANSITIONS[S.QUEUED] - {S.RUNNING, S.WAITING_INPUT},
        "answer": status == S.WAITING_INPUT,
        "cancel": status in TRANSITIONS[S.CANCELLED],
        "delete": status in DELETABLE,
    }
    return [action for action, is_allowed in may.items() if is_allowed]


def allowed_sources(target: TaskStatus) -> frozenset[TaskStatus]:
    """Statuses from which `target` may be entered."""
    return TRANSITIONS[target]


def check_transition(current: TaskStatus, target: TaskStatus) -> None:
    """Raise IllegalTransition unless current -> target is in the table."""
    if current not in TRANSITIONS[target]:
        raise IllegalTransition(current.value, target.value)
