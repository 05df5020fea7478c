"""Task statuses, the actions that change them, and the one table of legal moves.

`MOVES[(status, action)]` is the status the action leads to. Everything else is derived from it:
the store's Lua scripts get it serialised (store/scripts.py), each task's JSON lists its
`allowed_actions`, and the final statuses are those no action leaves.
"""

from __future__ import annotations

from enum import StrEnum


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


class Action(StrEnum):
    """Every way a task's status changes. The first five are the user's (REST, WebSocket, CLI, dashboard)."""

    PAUSE = "pause"
    RESUME = "resume"  # without input: a paused or failed task runs again from its last checkpoint
    ANSWER = "answer"  # resume with input: a task waiting for input gets its answer
    CANCEL = "cancel"
    DELETE = "delete"
    CLAIM = "claim"  # a worker takes a queued task under a new lease
    SUSPEND = "suspend"  # the runner reached a node boundary with a pause requested
    TIME_OUT = "time_out"  # a node exceeded its timeout
    INTERRUPT = "interrupt"  # the graph called interrupt() and waits for an answer
    COMPLETE = "complete"
    FAIL = "fail"
    HAND_BACK = "hand_back"  # the replica stops and queues its running tasks again
    REQUEUE = "requeue"  # the task's replica is gone (its lease expired): queue it again

    @property
    def target(self) -> TaskStatus | None:
        """Where the action leads (None: the task is removed); the same from every status it is legal in."""
        return _TARGETS[self]


USER_ACTIONS = (Action.PAUSE, Action.RESUME, Action.ANSWER, Action.CANCEL, Action.DELETE)
REMOVED = None  # DELETE leads to no status: the task is gone

S, A = TaskStatus, Action

# (current status, action) -> next status. The only place a legal move is defined. An action that leads
# to the status it starts from is a request the task's runner carries out later (pause while running:
# at the next node boundary).
MOVES: dict[tuple[TaskStatus, Action], TaskStatus | None] = {
    (S.QUEUED, A.CLAIM): S.RUNNING,
    (S.QUEUED, A.PAUSE): S.PAUSED,
    (S.QUEUED, A.CANCEL): S.CANCELLED,
    (S.RUNNING, A.PAUSE): S.RUNNING,
    (S.RUNNING, A.SUSPEND): S.PAUSED,
    (S.RUNNING, A.TIME_OUT): S.PAUSED,
    (S.RUNNING, A.INTERRUPT): S.WAITING_INPUT,
    (S.RUNNING, A.COMPLETE): S.COMPLETED,
    (S.RUNNING, A.FAIL): S.FAILED,
    (S.RUNNING, A.CANCEL): S.CANCELLED,
    (S.RUNNING, A.HAND_BACK): S.QUEUED,
    (S.RUNNING, A.REQUEUE): S.QUEUED,
    (S.PAUSED, A.RESUME): S.QUEUED,
    (S.PAUSED, A.CANCEL): S.CANCELLED,
    (S.PAUSED, A.DELETE): REMOVED,
    (S.WAITING_INPUT, A.ANSWER): S.QUEUED,
    (S.WAITING_INPUT, A.CANCEL): S.CANCELLED,
    (S.WAITING_INPUT, A.DELETE): REMOVED,
    (S.FAILED, A.RESUME): S.QUEUED,
    (S.FAILED, A.CANCEL): S.CANCELLED,
    (S.FAILED, A.DELETE): REMOVED,
    (S.COMPLETED, A.DELETE): REMOVED,
    (S.CANCELLED, A.DELETE): REMOVED,
}


def _targets() -> dict[Action, TaskStatus | None]:
    targets: dict[Action, TaskStatus | None] = {}
    for (source, action), target in MOVES.items():
        if target != source:  # a request keeps the status; the action's move goes elsewhere
            if targets.setdefault(action, target) != target:
                raise ValueError(f"MOVES: {action} leads to two statuses")
    return targets


_TARGETS = _targets()

# No action but DELETE leaves them: they are done for good.
FINAL_STATUSES = frozenset(
    status for status in TaskStatus
    if all(action == A.DELETE for (source, action) in MOVES if source == status)
)


# Nothing happens to a task in these statuses until a user acts: only user actions leave them.
SETTLED_STATUSES = frozenset(
    status for status in TaskStatus
    if all(action in USER_ACTIONS for (source, action) in MOVES if source == status)
)


def is_allowed(status: TaskStatus, action: Action) -> bool:
    """Whether `action` is legal for a task in `status`."""
    return (status, action) in MOVES


def sources_of(action: Action) -> frozenset[TaskStatus]:
    """The statuses in which `action` is legal."""
    return frozenset(source for (source, act), _ in MOVES.items() if act == action)


_ALLOWED_ACTIONS = {status: tuple(action.value for action in USER_ACTIONS if (status, action) in MOVES)
                    for status in TaskStatus}


def allowed_actions(status: TaskStatus) -> list[str]:
    """The user actions legal in `status`, in USER_ACTIONS order (what each task's JSON lists)."""
    return list(_ALLOWED_ACTIONS[status])
