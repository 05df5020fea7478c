"""Every event a task's log holds: its types and the constructors that build them.

An event is stored as a JSON string (its id is the stream entry id, added when read). Events carry the
task_id the client knows, not the tenant-scoped store id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from redis_persist.core.auth import public_id
from redis_persist.core.status import TaskStatus, allowed_actions


class EventType(StrEnum):
    STATUS = "status"  # the task entered `status` (the only event a status change makes)
    TASK_PAUSED = "task_paused"  # why it paused and what the user can do
    PAUSE_REQUESTED = "pause_requested"  # a running task pauses at its next node boundary
    INPUT_RECEIVED = "input_received"
    NODE_STARTED = "node_started"
    NODE_COMPLETED = "node_completed"
    PROGRESS = "progress"
    INTERRUPT = "interrupt"  # the graph asks for input
    ERROR = "error"
    STORAGE_ERROR = "storage_error"  # Redis was unreachable for a while; the task waited it out


PAUSED_BY_USER = "Paused by user"


def utc_now() -> str:
    """Current time as ISO 8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(event_type: EventType, task_id: str, **fields: Any) -> str:
    """One event as the JSON string stored in the stream."""
    return json.dumps({"type": str(event_type), "task_id": public_id(task_id), "ts": utc_now(), **fields},
                      default=str)


def status_event(task_id: str, status: TaskStatus, **fields: Any) -> str:
    """The task entered `status`; it names what the task accepts from then on, so a live client needs no refetch."""
    return make_event(EventType.STATUS, task_id, status=status.value, allowed_actions=allowed_actions(status),
                      **fields)


def task_paused(task_id: str, reason: str = PAUSED_BY_USER, **fields: Any) -> str:
    return make_event(EventType.TASK_PAUSED, task_id, reason=reason, action_required="resume", **fields)


def is_final_event(event: dict[str, Any]) -> bool:
    """Whether a (decoded) event says the task reached a final status."""
    return event.get("type") == EventType.STATUS and event.get("status") in FINAL_VALUES


FINAL_VALUES = frozenset(status.value for status in TaskStatus if status.is_final)
