"""The Task record as the API shows it, built from its Redis hash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis_persist.core.payload import decode_stored
from redis_persist.core.auth import DEFAULT_TENANT, public_id
from redis_persist.core.status import TaskStatus, allowed_actions


_UNSHOWN = ("initial_state", "resume_input", "run_spec", "final_checkpoint")
# The hash fields Task.public() shows, task_id first: what a page of the task list reads (store/tasks.py).
# A Task built from them alone has none of the _UNSHOWN fields.
LISTED_FIELDS = ("task_id", "graph_name", "status", "progress", "current_node", "checkpoint", "checkpoint_id",
                 "state", "interrupt", "error", "attempts", "owner", "created_at", "updated_at",
                 "completed_nodes", "pause_requested", "seq", "tenant", "thread_id")
_STATUS_OF = {status.value: status for status in TaskStatus}  # TaskStatus(value) costs an Enum call per read


@dataclass(frozen=True, slots=True)
class Task:
    """One task: what it runs, where it is, and who runs it."""

    task_id: str
    graph_name: str
    status: TaskStatus
    progress: float = 0.0
    current_node: str | None = None
    checkpoint: str | None = None
    checkpoint_id: str | None = None
    state: Any = None
    interrupt: Any = None
    error: str | None = None
    attempts: int = 0
    owner: str | None = None
    created_at: str = ""
    updated_at: str = ""
    completed_nodes: list[str] = field(default_factory=list)
    is_pause_requested: bool = False
    has_resume_input: bool = False
    seq: int = 0
    tenant: str = DEFAULT_TENANT
    thread_id: str = ""  # the checkpointer thread; a task made by /api/tasks is a thread of its own
    # The stored JSON of the fields below, decoded when asked for: the task's JSON shows none of them, and a
    # page of the task list would otherwise decode 50 final checkpoints to show none.
    _unshown: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Task:
        """Build a Task from the strings stored in its Redis hash."""
        return cls(
            task_id=raw["task_id"],
            graph_name=raw["graph_name"],
            status=_STATUS_OF[raw["status"]],
            progress=float(raw.get("progress") or 0),
            current_node=raw.get("current_node") or None,
            checkpoint=raw.get("checkpoint") or None,
            checkpoint_id=raw.get("checkpoint_id") or None,
            state=decode_stored(raw.get("state")),
            interrupt=decode_stored(raw.get("interrupt")),
            error=raw.get("error") or None,
            attempts=int(raw.get("attempts") or 0),
            owner=raw.get("owner") or None,
            created_at=raw.get("created_at", ""),
            updated_at=raw.get("updated_at", ""),
            completed_nodes=decode_stored(raw.get("completed_nodes")) or [],
            is_pause_requested=raw.get("pause_requested") == "1",
            has_resume_input="resume_input" in raw,
            seq=int(raw.get("seq") or 0),
            tenant=raw.get("tenant") or DEFAULT_TENANT,
            thread_id=raw.get("thread_id") or raw["task_id"],
            _unshown={name: raw[name] for name in _UNSHOWN if name in raw},
        )

    @property
    def initial_state(self) -> dict[str, Any]:
        """The state the task was started with."""
        return decode_stored(self._unshown.get("initial_state")) or {}

    @property
    def resume_input(self) -> Any:
        """The answer waiting for the interrupted node (see has_resume_input); None without one."""
        return decode_stored(self._unshown.get("resume_input"))

    @property
    def run_spec(self) -> dict[str, Any]:
        """LangGraph Server run options; {} for a task made by /api/tasks."""
        return decode_stored(self._unshown.get("run_spec")) or {}

    @property
    def final_checkpoint(self) -> dict[str, Any] | None:
        """Set once a finished task is compacted (engine/compaction.py): its final checkpoint as history shows
        it ({} when it had none); its checkpoints are then gone from the checkpointer."""
        raw = self._unshown.get("final_checkpoint")
        return None if raw is None else decode_stored(raw)

    @property
    def is_own_thread(self) -> bool:
        """Made by /api/tasks: its checkpoints are its own, not a LangGraph thread's shared with other runs."""
        return not self.run_spec and self.thread_id == self.task_id

    @property
    def public_id(self) -> str:
        """The task_id its client sees (the store id without the tenant scope)."""
        return public_id(self.task_id)

    def public(self, node: str, with_tenant: bool = False) -> dict[str, Any]:
        """The task as SPEC.md shows it; `node` is the replica serving the response; admins also see `tenant`."""
        shown = {
            "task_id": self.public_id,
            "graph_name": self.graph_name,
            "status": self.status.value,
            "progress": round(self.progress, 2),
            "current_node": self.current_node,
            "checkpoint": self.checkpoint,
            "checkpoint_id": self.checkpoint_id,
            "state": self.state,
            "interrupt": self.interrupt,
            "error": self.error,
            "attempts": self.attempts,
            "owner": self.owner,
            "node": node,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_nodes": self.completed_nodes,
            "pause_requested": self.is_pause_requested,
            "thread_id": public_id(self.thread_id),
            "allowed_actions": allowed_actions(self.status),
        }
        if with_tenant:
            shown["tenant"] = self.tenant
        return shown
