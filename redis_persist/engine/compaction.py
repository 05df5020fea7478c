"""Compaction of finished tasks: a completed or cancelled task keeps its record and events, not its checkpoints.

A task of its own (made by /api/tasks; not a run on a LangGraph thread, whose thread goes on) can never
run again once completed or cancelled, so nothing needs its checkpoints but its history. Compaction keeps
what `GET /api/tasks/{id}/history` shows of the final checkpoint in the task's record and deletes every
checkpoint, write and write registry of the task from the checkpointer (REDIS_PERSIST_FINISHED_COMPACTION).

Safe under failover without a lease: act.lua queues the task for compaction (rp:compact) in the same
atomic step that makes it final; compact.lua stores the summary only while the task is final and of its
own; deleting the checkpoints of a task that is final for good races with nothing but a cancelled run's
last in-flight checkpoint write (the sweep waits a lease time for it). Every step can run again: the
runner compacts a task it completed at once, and any replica's sweep compacts what is still queued after
its grace time (a cancelled task; one whose replica died between the move and the compaction).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from redis_persist.core.errors import TaskNotFound
from redis_persist.store.tasks import TaskStore

log = logging.getLogger(__name__)


def _user_channels(checkpoint: dict[str, Any]) -> dict[str, Any]:
    # LangGraph keeps routing channels (branch:to:x, __start__) beside the state itself.
    values = checkpoint.get("channel_values", {})
    return {k: v for k, v in values.items() if not k.startswith(("branch:", "__"))}


def history_entry(item: CheckpointTuple) -> dict[str, Any]:
    """One checkpoint as `GET /api/tasks/{id}/history` shows it."""
    parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    return {
        "checkpoint_id": item.config["configurable"]["checkpoint_id"],
        "parent_checkpoint_id": parent,
        "step": item.metadata.get("step"),
        "source": item.metadata.get("source"),
        "created_at": item.checkpoint.get("ts"),
        "values": json.loads(json.dumps(_user_channels(item.checkpoint), default=str)),
    }


def final_summary(chunk: dict[str, Any], saved: tuple[str, str] | None) -> dict[str, Any] | None:
    """What compaction keeps of a run's last checkpoint, from LangGraph's `checkpoints` stream chunk of it and
    (id, ts) as the saver saved it (Fence.last_saved); None when they are not of the same checkpoint.

    Equal to history_entry() of that checkpoint without `values`, which are the chunk's (the record's `state`).
    """
    checkpoint_id = chunk["config"]["configurable"]["checkpoint_id"]
    values = chunk.get("values")
    if saved is None or saved[0] != checkpoint_id or not isinstance(values, dict) or any(
            key.startswith(("branch:", "__")) for key in values):
        return None  # history would show other values than the state: read the checkpoint instead
    metadata = chunk.get("metadata") or {}
    return {"checkpoint_id": checkpoint_id,
            "parent_checkpoint_id": ((chunk.get("parent_config") or {}).get("configurable") or {}).get("checkpoint_id"),
            "step": metadata.get("step"), "source": metadata.get("source"), "created_at": saved[1]}


def compacted_history(final_checkpoint: dict[str, Any], state: Any) -> list[dict[str, Any]]:
    """A compacted task's history: its final checkpoint ([] if it had none); `values` default to its state."""
    if not final_checkpoint:
        return []
    return [{**final_checkpoint, "values": final_checkpoint.get("values", state)}]


class FinishedCompaction:
    """Compacts finished tasks of their own: at once for the runner that completed one, else by the sweep."""

    def __init__(self, store: TaskStore, checkpointer: BaseCheckpointSaver) -> None:
        self._store = store
        self._checkpointer = checkpointer

    async def compact(self, task_id: str) -> bool:
        """Compact one task if it is finished and of its own; True if it is compacted now. Idempotent."""
        try:
            task = await self._store.get(task_id)
        except TaskNotFound:
            await self._store.compacted(task_id)
            return False
        if not (task.status.is_final and task.is_own_thread):
            # Not queued by act.lua then (only final moves of tasks of their own are); drop the entry.
            await self._store.compacted(task_id)
            return False
        summary = None
        if task.final_checkpoint is None:
            latest = await self._checkpointer.aget_tuple({"configurable": {"thread_id": task_id, "checkpoint_ns": ""}})
            summary = {}
            if latest is not None:
                summary = history_entry(latest)
                if summary["values"] == task.state:
                    del summary["values"]  # the record holds them already (its `state`)
        if not await self._store.keep_final_checkpoint(task_id, summary):
            return False
        await self._checkpointer.adelete_thread(task_id)
        await self._store.compacted(task_id)
        log.debug("compacted", extra={"task_id": task_id})
        return True

    async def compact_completed(self, task_id: str, summary: dict[str, Any] | None) -> bool:
        """compact() for the runner that has just completed the task and knows its final checkpoint's summary
        (final_summary; None: read it from the checkpointer). compact.lua still checks that it is final."""
        if summary is None:
            return await self.compact(task_id)
        if not await self._store.keep_final_checkpoint(task_id, summary):
            return False
        await self._checkpointer.adelete_thread(task_id)
        await self._store.compacted(task_id)
        return True

    async def compact_due(self, limit: int = 200) -> int:
        """Compact the queued tasks whose grace time has passed; how many were compacted."""
        done = 0
        for task_id in await self._store.due_for_compaction(limit):
            try:
                done += await self.compact(task_id)
            except Exception as error:  # noqa: BLE001 - one task's failure must not stop the sweep; retried next time
                log.warning("compaction failed", extra={"task_id": task_id, "error": f"{type(error).__name__}: {error}"})
        return done
