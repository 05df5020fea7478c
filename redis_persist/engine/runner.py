"""Run one claimed task through its graph from its last checkpoint, emitting events, obeying control."""

from __future__ import annotations

import json
import logging
from contextlib import aclosing
from typing import Any

from langgraph.errors import NodeTimeoutError
from langgraph.types import Command
from redis.exceptions import RedisError

from redis_persist.core.errors import GraphNotFound, LeaseLost
from redis_persist.core.status import TaskStatus
from redis_persist.core.task import Task
from redis_persist.engine.graphs import GraphRegistry
from redis_persist.engine.runs import RunHooks, base_config
from redis_persist.store.events import make_event
from redis_persist.store.tasks import TaskStore

log = logging.getLogger(__name__)
S = TaskStatus
STREAM_MODES = ["tasks", "custom", "checkpoints"]


def _to_json(value: Any) -> str:
    return json.dumps(value, default=str)


def _jsonable(value: Any) -> Any:
    return json.loads(_to_json(value))


class _Paused(Exception):
    """The task reached a node boundary with a pause requested."""


class TaskRunner:
    """Drives LangGraph for one task; every write is fenced by the task's lease token."""

    def __init__(self, store: TaskStore, graphs: GraphRegistry, replica: str, runs: RunHooks | None = None) -> None:
        self._store = store
        self._graphs = graphs
        self._replica = replica
        self._runs = runs  # LangGraph Server runs (tasks on a shared thread); None: plain tasks only

    async def run(self, task_id: str, token: str) -> None:
        """Run until the task completes, fails, pauses, waits for input, or this replica must stop."""
        extra = {"task_id": task_id, "replica": self._replica}
        current_node: str | None = None
        try:
            task = await self._store.get(task_id)
            try:
                loaded = self._graphs.get(task.graph_name)
            except GraphNotFound as error:
                await self._finish(task_id, token, S.FAILED, fields={"error": str(error)},
                                   events=[make_event("error", task_id, error=str(error))])
                return
            graph = loaded.graph
            graph_input, config, extra_modes, run_kwargs = await self._plan(task, token, graph)
            published = self._runs.published_modes(task) if self._runs and task.run_spec else frozenset()
            total = max(len(loaded.nodes), 1)
            completed = list(task.completed_nodes)
            finished_in_step: list[str] = []
            interrupts: list[Any] = []
            values: Any = task.state
            async with aclosing(
                graph.astream(graph_input, config, stream_mode=sorted({*STREAM_MODES, *extra_modes}),
                              durability="sync", **run_kwargs)
            ) as stream:
                async for mode, chunk in stream:
                    if mode in published:
                        await self._runs.publish(task_id, mode, chunk)
                    if mode == "tasks":
                        name = chunk["name"]
                        if name.startswith("__"):
                            continue
                        if "result" in chunk or "error" in chunk:
                            if chunk.get("interrupts"):
                                interrupts.extend(i.get("value") for i in chunk["interrupts"])
                            elif chunk.get("error") is None:
                                finished_in_step.append(name)
                        else:
                            current_node = name
                            await self._store.record(
                                task_id, token, fields={"current_node": name},
                                events=[make_event("node_started", task_id, node=name, replica=self._replica)],
                            )
                    elif mode == "custom":
                        await self._report_progress(task_id, token, current_node, chunk, len(completed), total)
                    elif mode == "checkpoints":
                        values = chunk["values"]
                        done = finished_in_step
                        finished_in_step = []
                        is_pause_requested = await self._record_checkpoint(
                            task_id, token, chunk, done, completed, total)
                        if done:
                            current_node = None
                        if is_pause_requested:
                            raise _Paused
        except _Paused:
            await self._finish(
                task_id, token, S.PAUSED, drop=["pause_requested"],
                events=[make_event("task_paused", task_id, reason="Paused by user", action_required="resume")],
            )
        except NodeTimeoutError as error:
            log.info("node timed out", extra={**extra, "node": error.node})
            await self._finish(
                task_id, token, S.PAUSED,
                fields={"error": f"Node {error.node!r} exceeded its timeout of {error.timeout:g}s"},
                drop=["pause_requested"],
                events=[make_event("task_paused", task_id, reason="Node timeout", node=error.node,
                                   action_required="resume")],
            )
        except LeaseLost:
            log.warning("lease lost; stopping without further writes", extra=extra)
        except RedisError as error:
            # Our lease lapses without renewal... the keeper drops it when the worker sees us end.
            log.error("redis error while running; leaving the task to be re-claimed", extra={**extra, "error": str(error)})
        except Exception as error:  # noqa: BLE001 - a graph may raise anything; the task records it
            message = f"{type(error).__name__}: {error}"
            if current_node:
                message = f"Node {current_node!r} failed: {message}"
            log.info("task failed", extra={**extra, "error": message})
            await self._finish(
                task_id, token, S.FAILED, fields={"error": message},
                events=[make_event("error", task_id, error=message, node=current_node)],
            )
        else:
            if interrupts:
                payload = interrupts[0] if len(interrupts) == 1 else interrupts
                await self._finish(
                    task_id, token, S.WAITING_INPUT, fields={"interrupt": _to_json(payload)},
                    events=[make_event("interrupt", task_id, interrupt=_jsonable(payload), node=current_node)],
                )
            else:
                await self._finish(task_id, token, S.COMPLETED,
                                   fields={"progress": "100", "state": _to_json(values)})

    async def _plan(self, task: Task, token: str, graph: Any) -> tuple[Any, dict[str, Any], list[str], dict[str, Any]]:
        """Graph input, config, extra stream modes and astream options for this attempt of the task."""
        if task.run_spec and self._runs is not None:
            return await self._runs.plan(task, token, graph)
        config = base_config(task, token)
        if task.has_resume_input:
            graph_input: Any = Command(resume=task.resume_input)
        elif await graph.checkpointer.aget_tuple(config) is not None:
            graph_input = None  # continue from the last checkpoint
        else:
            graph_input = task.initial_state
        return graph_input, config, [], {}

    async def _run_ended(self, task_id: str, status: TaskStatus) -> None:
        """Tell the LangGraph run side that a run has ended (its thread may pass to the next run)."""
        if self._runs is None:
            return
        try:
            task = await self._store.get(task_id)
            if task.run_spec:
                await self._runs.ended(task, status)
        except Exception as error:  # noqa: BLE001 - the run has ended either way; the upkeep loop hands the thread on
            log.warning("after-run step failed", extra={"task_id": task_id, "replica": self._replica,
                                                        "error": str(error)})

    async def _record_checkpoint(
        self, task_id: str, token: str, chunk: dict[str, Any], done: list[str], completed: list[str], total: int
    ) -> bool:
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
                make_event("node_completed", task_id, node=node, progress=round(progress, 2),
                           checkpoint_id=fields["checkpoint_id"], replica=self._replica)
                for node in done
            ]
        return await self._store.record(task_id, token, fields=fields, drop=drop, events=events)

    async def _report_progress(
        self, task_id: str, token: str, node: str | None, chunk: Any, completed: int, total: int
    ) -> None:
        payload = _jsonable(chunk) if isinstance(chunk, dict) else {"data": _jsonable(chunk)}
        fields: dict[str, str] = {}
        node_progress = payload.get("progress")
        if isinstance(node_progress, (int, float)) and 0 <= node_progress <= 1:
            overall = min(99.0, 100.0 * (completed + node_progress) / total)
            fields["progress"] = str(overall)
            payload = {**payload, "node_progress": node_progress, "progress": round(overall, 2)}
        await self._store.record(task_id, token, fields=fields,
                                 events=[make_event("progress", task_id, node=node, **payload)])

    async def _finish(
        self,
        task_id: str,
        token: str,
        target: TaskStatus,
        *,
        fields: dict[str, str] | None = None,
        drop: list[str] | None = None,
        events: list[str] | None = None,
    ) -> None:
        try:
            await self._store.transition(
                task_id, target, token=token, sources={S.RUNNING},
                fields={"current_node": "", **(fields or {})}, drop=drop or (), events=events or (),
                release_lease=True,
            )
        except LeaseLost:
            log.warning("lease lost before the task could end", extra={"task_id": task_id, "replica": self._replica})
            return
        await self._run_ended(task_id, target)
