"""TaskControl: execute, pause, resume, cancel, answer, delete — the one entry point for REST, WebSocket and CLI."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from redis_persist.core.auth import Caller, scoped_id
from redis_persist.core.errors import Forbidden, InvalidRequest
from redis_persist.core.payload import check_user_json
from redis_persist.core.events import EventType, make_event, task_paused
from redis_persist.core.status import Action, TaskStatus
from redis_persist.core.task import Task
from redis_persist.engine.compaction import compacted_history, history_entry
from redis_persist.engine.graphs import GraphRegistry
from redis_persist.store.events import EventLog
from redis_persist.store.tasks import Created, TaskStore

S = TaskStatus
NO_INPUT = object()  # resume called without an "input" key (None is a valid answer)


def _require(caller: Caller, action: str) -> None:
    # The HTTP layer checks roles per route already; this holds for every other entry point too.
    if not caller.may(action):
        raise Forbidden(f"Role {caller.role.label!r} may not {action}")


def _by(caller: Caller) -> dict[str, str]:
    """Who did a control action, for its event (nothing when auth is off)."""
    return {"by": caller.key_id} if caller.key_id else {}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a control call did: the status now and a sentence for the user."""

    status: TaskStatus
    message: str
    checkpoint: str | None = None


class TaskControl:
    """Validates requests and turns them into store calls; raises domain errors only.

    Every call names its `caller` (no default, so no entry point can forget it): ids resolve inside the
    caller's tenant and the caller's role must allow the action.
    """

    def __init__(
        self,
        store: TaskStore,
        events: EventLog,
        graphs: GraphRegistry,
        checkpointer: BaseCheckpointSaver,
        max_initial_state_bytes: int,
    ) -> None:
        self.store = store
        self.events = events
        self.graphs = graphs
        self._checkpointer = checkpointer
        self._max_state_bytes = max_initial_state_bytes

    async def execute(
        self, graph_name: str, initial_state: dict[str, Any], task_id: str | None = None, *, caller: Caller,
    ) -> Created:
        """Create a queued task in the caller's tenant (idempotent with a client task_id)."""
        _require(caller, "execute")
        self.graphs.get(graph_name)
        encoded = check_user_json(initial_state, "initial_state", self._max_state_bytes)
        request_hash = hashlib.sha256(f"{graph_name}\n{encoded}".encode()).hexdigest()
        stored_id = scoped_id(caller.tenant, task_id or uuid.uuid4().hex)
        return await self.store.create(stored_id, graph_name, initial_state, request_hash, caller.tenant)

    async def get(self, task_id: str, *, caller: Caller) -> Task:
        """The caller's task `task_id` (another tenant's task is TaskNotFound, like a missing one)."""
        _require(caller, "read")
        return await self.store.get(scoped_id(caller.tenant, task_id))

    async def list(
        self, status: TaskStatus | None, graph_name: str | None, limit: int, cursor: str | None, *, caller: Caller,
    ) -> tuple[list[Task], str | None]:
        """The caller's tasks (an admin's: every tenant's) newest first, a page at a time."""
        _require(caller, "read")
        tenant = None if caller.all_tenants else caller.tenant
        return await self.store.list(status, graph_name, limit, cursor, tenant)

    async def pause(self, task_id: str, *, caller: Caller) -> Outcome:
        """Pause now if queued; if running, at the next node boundary."""
        _require(caller, "pause")
        task_id = scoped_id(caller.tenant, task_id)
        who = _by(caller)
        status = await self.store.act(
            task_id, Action.PAUSE, status_fields=who, events=[task_paused(task_id, **who)],
            request_events=[make_event(EventType.PAUSE_REQUESTED, task_id, **who)],
        )
        task = await self.store.get(task_id)
        if status == S.PAUSED:
            return Outcome(S.PAUSED, "Task paused", task.checkpoint)
        node = f" {task.current_node!r}" if task.current_node else ""
        return Outcome(status, f"Pause requested: the task pauses when the running node{node} completes",
                       task.checkpoint)

    async def resume(self, task_id: str, answer: Any = NO_INPUT, *, caller: Caller) -> Outcome:
        """Queue a paused or failed task again (Action.RESUME), or answer a task waiting for input (Action.ANSWER)."""
        _require(caller, "resume" if answer is NO_INPUT else "answer")
        if answer is not NO_INPUT:
            check_user_json(answer, "input", self._max_state_bytes)
        task_id = scoped_id(caller.tenant, task_id)
        task = await self.store.get(task_id)
        if answer is NO_INPUT:
            if task.status == S.WAITING_INPUT:
                raise InvalidRequest('This task waits for input: resume it with {"input": ...}')
            await self.store.act(task_id, Action.RESUME, drop=["pause_requested", "error"], status_fields=_by(caller))
            return Outcome(S.QUEUED, "Task resumed from its last checkpoint", task.checkpoint)
        await self.store.act(
            task_id, Action.ANSWER, fields={"resume_input": json.dumps(answer)}, drop=["pause_requested"],
            events=[make_event(EventType.INPUT_RECEIVED, task_id, input=answer)], status_fields=_by(caller),
        )
        return Outcome(S.QUEUED, "Input accepted; the task continues from its last checkpoint", task.checkpoint)

    async def cancel(self, task_id: str, *, caller: Caller) -> Outcome:
        """Cancel now; a running node is stopped at once."""
        _require(caller, "cancel")
        await self.store.act(scoped_id(caller.tenant, task_id), Action.CANCEL,
                             drop=["pause_requested", "current_node"], status_fields=_by(caller))
        return Outcome(S.CANCELLED, "Task cancelled")

    async def delete(self, task_id: str, *, caller: Caller) -> None:
        """Remove a task that is not queued or running, with its events and checkpoints."""
        _require(caller, "delete")
        task_id = scoped_id(caller.tenant, task_id)
        await self.store.act(task_id, Action.DELETE)
        await self._checkpointer.adelete_thread(task_id)

    async def history(self, task_id: str, limit: int, *, caller: Caller) -> list[dict[str, Any]]:
        """The task's checkpoints, newest first; a compacted finished task's final one only."""
        _require(caller, "read")
        task_id = scoped_id(caller.tenant, task_id)
        task = await self.store.get(task_id)
        if task.final_checkpoint is not None:
            return compacted_history(task.final_checkpoint, task.state)[:limit]
        config = {"configurable": {"thread_id": task_id}}
        return [history_entry(item) async for item in self._checkpointer.alist(config, limit=limit)]
