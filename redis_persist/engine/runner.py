"""Run one claimed task through its graph from its last checkpoint, emitting events, obeying control."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from langgraph.checkpoint.base import Checkpoint
from langgraph.constants import TAG_HIDDEN
from langgraph.errors import NodeTimeoutError
from langgraph.types import Command

from redis_persist.core.errors import GraphNotFound, LeaseLost
from redis_persist.core.events import EventType, make_event, task_paused
from redis_persist.core.status import Action
from redis_persist.engine.compaction import FinishedCompaction, final_summary
from redis_persist.engine.graphs import GraphRegistry
from redis_persist.engine.runs import RunHooks, base_config
from redis_persist.engine.saver import FENCE_KEY, Fence, fence_clock
from redis_persist.engine.storage_faults import StorageFaultCounter, StorageOutage, storage_fault
from redis_persist.store.tasks import TaskStore

log = logging.getLogger(__name__)
STREAM_MODES = ["tasks", "custom", "checkpoints"]
T = TypeVar("T")


def _to_json(value: Any) -> str:
    return json.dumps(value, default=str)


def _jsonable(value: Any) -> Any:
    return json.loads(_to_json(value))


class _Paused(Exception):
    """The task reached a node boundary with a pause requested."""


# What a saved write says happened to a task rather than what it produced (LangGraph's CONTROL_WRITES).
_OUTCOME_CHANNELS = frozenset({"__error__", "__error_source_node__", "__interrupt__", "__resume__"})


def _restored_task_ids(pending_writes: list[tuple[str, str, Any]]) -> set[str]:
    """Tasks whose output was saved before the last run stopped: LangGraph applies it instead of running them."""
    return {task_ref for task_ref, channel, _ in pending_writes if channel not in _OUTCOME_CHANNELS}


class _Step:
    """The nodes of the current superstep, from LangGraph's `tasks` stream."""

    def __init__(self, restored: set[str]) -> None:
        self._restored = restored
        self._pending: dict[str, str] = {}  # task id -> node, started and not yet ended
        self._finished: list[str] = []

    def started(self, task_ref: str, node: str) -> bool:
        """Note a node's start; False when it will not run (its saved output is applied instead)."""
        self._pending[task_ref] = node
        return task_ref not in self._restored

    def ended(self, task_ref: str) -> None:
        self._pending.pop(task_ref, None)

    def finished(self, node: str) -> None:
        self._finished.append(node)

    def close(self) -> list[str]:
        """At the step's checkpoint: the nodes it completed, restored ones included (they send no result)."""
        done = list(dict.fromkeys([*self._finished, *self._pending.values()]))
        self._pending, self._finished = {}, []
        return done


def _announces_start(graph: Any, config: dict[str, Any]) -> Callable[[str], bool]:
    """Whether a node of `graph`, run with `config`, sends a `tasks` chunk when it starts (not hidden)."""
    if TAG_HIDDEN in (config.get("tags") or ()):
        return lambda name: False
    nodes = graph.nodes
    return lambda name: (not name.startswith("__") and name in nodes
                         and TAG_HIDDEN not in (nodes[name].tags or ()))


def _is_start(mode: str, chunk: Any) -> bool:
    return mode == "tasks" and "result" not in chunk and "error" not in chunk


async def _checkpoints_with_next_start(stream: AsyncIterator[tuple[str, Any]], announces_start: Callable[[str], bool],
                                      ) -> AsyncIterator[tuple[str, Any, Any]]:
    """The graph's stream as (mode, chunk, next start): a `checkpoints` chunk whose step runs one node that
    announces its start (`announces_start(name)`: a `tasks` chunk, which hidden nodes do not send) comes with
    that start, so the runner records both in one write; every other chunk with None.

    LangGraph emits a step's checkpoint and then the start of each of its tasks in one tick, before any of
    them runs (PregelRunner.atick yields first), and emits no start when it stops there instead (interrupt
    before, recursion limit). So reading one chunk ahead after such a checkpoint runs no node before the
    checkpoint is recorded, and a checkpoint the stream ends or fails after is still handed on first.
    """
    held = None
    iterator = aiter(stream)
    while True:
        try:
            mode, chunk = await anext(iterator)
        except StopAsyncIteration:
            if held is not None:
                yield "checkpoints", held, None
            return
        except Exception:
            if held is not None:
                yield "checkpoints", held, None
            raise
        if held is not None:
            checkpoint, held = held, None
            if _is_start(mode, chunk) and chunk["name"] == checkpoint["next"][0]:
                yield "checkpoints", checkpoint, chunk
                continue
            yield "checkpoints", checkpoint, None
        if mode == "checkpoints" and len(chunk.get("next") or ()) == 1 and announces_start(chunk["next"][0]):
            held = chunk
        else:
            yield mode, chunk, None


class TaskRunner:
    """Drives LangGraph for one task; every write is fenced by the task's lease token.

    A storage fault (Redis unreachable, out of memory...) never fails the task: our own writes wait it
    out in place, and a fault inside the graph's checkpoint writes makes the run start again from the
    last checkpoint — the task keeps its lease throughout, so only the node in flight may run again.
    """

    def __init__(self, store: TaskStore, graphs: GraphRegistry, replica: str,
                 storage_faults: StorageFaultCounter, runs: RunHooks | None = None,
                 compaction: FinishedCompaction | None = None) -> None:
        self._store = store
        self._compaction = compaction  # None: finished tasks keep their checkpoints
        self._graphs = graphs
        self._replica = replica
        self._storage_faults = storage_faults
        self._runs = runs  # LangGraph Server runs (tasks on a shared thread); None: plain tasks only
        self._fences: dict[str, Fence | None] = {}  # task id -> the fence its running graph's saver checks
        self._compactions: set[asyncio.Task[None]] = set()  # compactions of completed tasks still under way

    async def run(self, task_id: str, token: str) -> None:
        """Run until the task completes, fails, pauses, waits for input, or this replica must stop."""
        extra = {"task_id": task_id, "replica": self._replica}
        outage = StorageOutage(self._storage_faults)
        try:
            while True:
                try:
                    await self._attempt(task_id, token, outage)
                    return
                except LeaseLost:
                    log.warning("lease lost; stopping without further writes", extra=extra)
                    return
                except Exception as error:
                    if storage_fault(error) is None:
                        raise
                    await self._wait_out(task_id, outage, error, "run")
        finally:
            self._fences.pop(task_id, None)

    async def _record(self, task_id: str, token: str, **changes: Any) -> bool:
        """store.record, and on success tell the graph's fence: record.lua found the lease ours (see Fence)."""
        sent_at = fence_clock()
        is_pause_requested = await self._store.record(task_id, token, **changes)
        fence = self._fences.get(task_id)
        if isinstance(fence, Fence) and list(fence) == [task_id, token]:
            fence.confirmed(sent_at)
        return is_pause_requested

    async def _attempt(self, task_id: str, token: str, outage: StorageOutage) -> None:
        """One run of the graph from the task's last checkpoint; storage faults and LeaseLost propagate."""
        extra = {"task_id": task_id, "replica": self._replica}
        current_node: str | None = None
        failed_node: str | None = None  # a node that raised: the error that follows is the graph's
        task = await self._store.get(task_id)
        try:
            loaded = self._graphs.get(task.graph_name)
        except GraphNotFound as error:
            await self._finish(task_id, token, outage, Action.FAIL, fields={"error": str(error)},
                               events=[make_event(EventType.ERROR, task_id, error=str(error))])
            return
        graph = loaded.graph
        # In WAIT mode the checkpoint this run starts from may be one whose wait timed out: it starts only
        # once a replica holds it (a ReplicaAckTimeout here is a storage fault: run() waits and tries again).
        await graph.checkpointer.await_replicas(task_id)
        total = max(len(loaded.nodes), 1)
        completed = list(task.completed_nodes)
        extra_modes: list[str] = []
        run_kwargs: dict[str, Any] = {}
        if task.run_spec and self._runs is not None:
            # A LangGraph Server run: its thread holds earlier runs' checkpoints, so the run plans its own input.
            graph_input, config, extra_modes, run_kwargs = await self._runs.plan(task, token, graph)
            latest = await graph.checkpointer.aget_tuple(config)
        else:
            config = base_config(task, token)
            self._fences[task_id] = config["configurable"][FENCE_KEY]
            latest = await graph.checkpointer.aget_tuple(config)
            is_caught_up = latest is not None and await self._catch_up(
                task_id, token, outage, latest.checkpoint, loaded.nodes, completed, total)
            if task.has_resume_input and not is_caught_up:
                graph_input = Command(resume=task.resume_input)
            elif latest is not None:
                graph_input = None  # continue from the last checkpoint
            else:
                graph_input = task.initial_state
        self._fences[task_id] = config["configurable"].get(FENCE_KEY)
        published = self._runs.published_modes(task) if self._runs and task.run_spec else frozenset()
        step = _Step(_restored_task_ids(latest.pending_writes if latest is not None else []))
        interrupts: list[Any] = []
        values: Any = task.state
        last_checkpoint: dict[str, Any] | None = None  # the stream's chunk of the newest checkpoint
        try:
            if task.is_pause_requested and latest is not None:
                raise _Paused  # asked while this run waited out a storage fault: nothing is in flight
            async with aclosing(
                graph.astream(graph_input, config, stream_mode=sorted({*STREAM_MODES, *extra_modes}),
                              durability="sync", **run_kwargs)
            ) as stream, aclosing(_checkpoints_with_next_start(stream, _announces_start(graph, config))) as chunks:
                async for mode, chunk, next_start in chunks:
                    if mode in published:
                        await self._runs.publish(task_id, mode, chunk)
                    if next_start is not None and "tasks" in published:
                        await self._runs.publish(task_id, "tasks", next_start)
                    if mode == "tasks":
                        name = chunk["name"]
                        if name.startswith("__"):
                            continue
                        if "result" in chunk or "error" in chunk:
                            step.ended(chunk["id"])
                            if chunk.get("interrupts"):
                                interrupts.extend(i.get("value") for i in chunk["interrupts"])
                            elif chunk.get("error") is None:
                                step.finished(name)
                            else:
                                failed_node = name
                        elif step.started(chunk["id"], name):
                            current_node = name
                            await self._node_started(task_id, token, outage, name)
                    elif mode == "custom":
                        await self._report_progress(
                            task_id, token, outage, current_node, chunk, len(completed), total)
                    elif mode == "checkpoints":
                        values = chunk["values"]
                        last_checkpoint = chunk
                        done = step.close()
                        starting = None  # the next step's node whose start goes with this record
                        if next_start is not None:
                            name = next_start["name"]
                            if not name.startswith("__") and step.started(next_start["id"], name):
                                starting = name
                        is_pause_requested = await self._record_checkpoint(
                            task_id, token, outage, chunk, done, completed, total, starting)
                        if done:
                            current_node = None
                        if is_pause_requested:
                            raise _Paused
                        if starting is not None:
                            current_node = starting
        except _Paused:
            await self._finish(task_id, token, outage, Action.SUSPEND, drop=["pause_requested"],
                               events=[task_paused(task_id)])
        except NodeTimeoutError as error:
            log.info("node timed out", extra={**extra, "node": error.node})
            await self._finish(
                task_id, token, outage, Action.TIME_OUT,
                fields={"error": f"Node {error.node!r} exceeded its timeout of {error.timeout:g}s"},
                drop=["pause_requested"], events=[task_paused(task_id, reason="Node timeout", node=error.node)],
            )
        except LeaseLost:
            raise
        except Exception as error:  # noqa: BLE001 - a graph may raise anything; the task records it
            if failed_node is None and storage_fault(error) is not None:
                raise  # the checkpointer's write failed, not the graph: run() waits and starts again
            node = failed_node or current_node
            message = f"{type(error).__name__}: {error}"
            if node:
                message = f"Node {node!r} failed: {message}"
            log.info("task failed", extra={**extra, "error": message})
            await self._finish(
                task_id, token, outage, Action.FAIL, fields={"error": message},
                events=[make_event(EventType.ERROR, task_id, error=message, node=node)],
            )
        else:
            if interrupts:
                payload = interrupts[0] if len(interrupts) == 1 else interrupts
                await self._finish(
                    task_id, token, outage, Action.INTERRUPT, fields={"interrupt": _to_json(payload)},
                    events=[make_event(EventType.INTERRUPT, task_id, interrupt=_jsonable(payload), node=current_node)],
                )
            else:
                is_completed = await self._finish(task_id, token, outage, Action.COMPLETE,
                                                  fields={"progress": "100", "state": _to_json(values)})
                if is_completed and not task.run_spec:  # by this run: its last checkpoint is the task's final one
                    await self._compact(task_id, last_checkpoint)

    async def _wait_out(self, task_id: str, outage: StorageOutage, error: BaseException, operation: str) -> None:
        """Count a storage fault, say so, and wait (exponential backoff, capped) before the next try."""
        delay = outage.fault(error, operation)
        extra = {"task_id": task_id, "replica": self._replica, "operation": operation,
                 "error": f"{type(error).__name__}: {error}", "retry_in_seconds": round(delay, 2)}
        if outage.retries == 1:
            log.warning("storage fault; the task keeps its lease and waits for storage to recover", extra=extra)
        else:
            log.debug("storage fault persists", extra={**extra, "retries": outage.retries})
        await asyncio.sleep(delay)

    async def _write(
        self, task_id: str, token: str, outage: StorageOutage, operation: str, write: Callable[[], Awaitable[T]]
    ) -> T:
        """One of our own writes, retried in place through storage faults (the graph waits meanwhile).

        The first write that goes through after a fault is the `storage_error` event saying what happened.
        """
        while True:
            try:
                if not outage.is_reported:
                    await self._store.record(task_id, token, events=[
                        make_event(EventType.STORAGE_ERROR, task_id, replica=self._replica, **outage.event_fields())])
                    outage.reported()
                return await write()
            except Exception as error:
                if storage_fault(error) is None:
                    raise
                await self._wait_out(task_id, outage, error, operation)

    async def _catch_up(
        self, task_id: str, token: str, outage: StorageOutage, checkpoint: Checkpoint, nodes: list[str],
        completed: list[str], total: int,
    ) -> bool:
        """Record nodes the last checkpoint holds but the task record missed.

        LangGraph saves a checkpoint before our record of it; a storage fault or crash in between
        (or a node's writes failing only when the run closes) leaves those nodes unrecorded.
        """
        seen = checkpoint.get("versions_seen", {})
        missed = [node for node in nodes if node in seen and node not in completed]
        if not missed:
            return False
        completed.extend(missed)
        progress = min(99.0, 100.0 * len(completed) / total)
        fields = {"checkpoint_id": checkpoint["id"], "checkpoint": ",".join(missed),
                  "completed_nodes": _to_json(completed), "progress": str(progress), "current_node": ""}
        events = [make_event(EventType.NODE_COMPLETED, task_id, node=node, progress=round(progress, 2),
                             checkpoint_id=checkpoint["id"], replica=self._replica) for node in missed]
        await self._write(task_id, token, outage, "checkpoint_record", lambda: self._record(
            task_id, token, fields=fields, drop=["resume_input", "interrupt"], events=events))
        return True  # a node completed after any answer to an interrupt: the answer is consumed

    async def _node_started(self, task_id: str, token: str, outage: StorageOutage, node: str) -> None:
        event = make_event(EventType.NODE_STARTED, task_id, node=node, replica=self._replica)
        await self._write(task_id, token, outage, "node_started", lambda: self._record(
            task_id, token, fields={"current_node": node}, events=[event]))

    async def _record_checkpoint(
        self, task_id: str, token: str, outage: StorageOutage, chunk: dict[str, Any], done: list[str],
        completed: list[str], total: int, starting: str | None = None,
    ) -> bool:
        """Record a checkpoint (and the nodes it completed); with `starting`, the start of the next node too,
        unless a pause is requested. Returns whether one is."""
        fields = {
            "checkpoint_id": chunk["config"]["configurable"]["checkpoint_id"],
            "state": _to_json(chunk["values"]),
        }
        events = []
        drop: list[str] = []
        if done:
            for node in done:
                if node not in completed:
                    completed.append(node)
            progress = min(99.0, 100.0 * len(completed) / total)
            fields |= {
                "checkpoint": ",".join(done),
                "completed_nodes": _to_json(completed),
                "progress": str(progress),
                "current_node": "",
            }
            # The answer to an interrupt has been consumed once a node completes after it.
            drop = ["resume_input", "interrupt"]
            events = [
                make_event(EventType.NODE_COMPLETED, task_id, node=node, progress=round(progress, 2),
                           checkpoint_id=fields["checkpoint_id"], replica=self._replica)
                for node in done
            ]
        go_on: dict[str, Any] = {}
        if starting is not None:
            go_on = {"go_on_fields": {"current_node": starting}, "go_on_events": [
                make_event(EventType.NODE_STARTED, task_id, node=starting, replica=self._replica)]}
        is_pause_requested = await self._write(task_id, token, outage, "checkpoint_record", lambda: self._record(
            task_id, token, fields=fields, drop=drop, events=events, **go_on))
        if done:
            outage.progressed()
        return is_pause_requested

    async def _report_progress(
        self, task_id: str, token: str, outage: StorageOutage, node: str | None, chunk: Any, completed: int,
        total: int,
    ) -> None:
        payload = _jsonable(chunk) if isinstance(chunk, dict) else {"data": _jsonable(chunk)}
        fields: dict[str, str] = {}
        node_progress = payload.get("progress")
        if isinstance(node_progress, (int, float)) and 0 <= node_progress <= 1:
            overall = min(99.0, 100.0 * (completed + node_progress) / total)
            fields["progress"] = str(overall)
            payload = {**payload, "node_progress": node_progress, "progress": round(overall, 2)}
        await self._write(task_id, token, outage, "progress", lambda: self._record(
            task_id, token, fields=fields, events=[make_event(EventType.PROGRESS, task_id, node=node, **payload)]))

    async def _finish(
        self,
        task_id: str,
        token: str,
        outage: StorageOutage,
        action: Action,
        *,
        fields: dict[str, str] | None = None,
        drop: list[str] | None = None,
        events: list[str] | None = None,
    ) -> bool:
        """Apply the action that ends this run; False if the lease was lost first (someone else owns the task)."""
        try:
            await self._write(task_id, token, outage, "finish", lambda: self._store.act(
                task_id, action, token=token, fields={"current_node": "", **(fields or {})}, drop=drop or (),
                events=events or (),
            ))
        except LeaseLost:
            log.warning("lease lost before the task could end", extra={"task_id": task_id, "replica": self._replica})
            return False
        await self._run_ended(task_id, action)
        return True

    async def _compact(self, task_id: str, last_checkpoint: dict[str, Any] | None) -> None:
        """Compact the task just completed (engine/compaction.py); on any failure the sweep does it later.

        Shielded: the worker cancels this run as soon as it sees the task is no longer running (the move to
        completed notifies it too), and the compaction must not be cut short by that every other time.
        """
        if self._compaction is None:
            return
        fence = self._fences.get(task_id)
        saved = fence.last_saved if isinstance(fence, Fence) else None
        summary = final_summary(last_checkpoint, saved) if last_checkpoint is not None else None
        compaction = asyncio.create_task(self._compact_quietly(self._compaction, task_id, summary))
        self._compactions.add(compaction)  # the loop keeps only weak references to tasks
        compaction.add_done_callback(self._compactions.discard)
        await asyncio.shield(compaction)

    async def _compact_quietly(self, compaction: FinishedCompaction, task_id: str,
                               summary: dict[str, Any] | None) -> None:
        try:
            await compaction.compact_completed(task_id, summary)
        except Exception as error:  # noqa: BLE001 - the task has completed either way; it stays queued for the sweep
            log.warning("compaction failed; left to the sweep", extra={"task_id": task_id, "replica": self._replica,
                                                                       "error": f"{type(error).__name__}: {error}"})

    async def _run_ended(self, task_id: str, action: Action) -> None:
        """Tell the LangGraph run side that a run has ended (its thread may pass to the next run)."""
        if self._runs is None:
            return
        try:
            task = await self._store.get(task_id)
            if task.run_spec:
                await self._runs.ended(task, action)
        except Exception as error:  # noqa: BLE001 - the run has ended either way; the upkeep loop hands the thread on
            log.warning("after-run step failed", extra={"task_id": task_id, "replica": self._replica,
                                                        "error": str(error)})
