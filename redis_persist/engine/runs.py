"""LangGraph Server runs inside the task runner: how a run starts on its thread, what it streams, what follows its end.

A run is a task with a `thread_id` and a `run_spec` (the run options a client sent). The runner asks
RunHooks for the graph input and config, hands it every stream chunk the run asked for, and tells it
when the run has ended, so the thread can pass to its next pending run.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from langgraph.pregel import Pregel
from langgraph.types import Command, Send
from redis.asyncio import Redis

from redis_persist.core.auth import public_id
from redis_persist.core.status import Action, TaskStatus
from redis_persist.core.task import Task
from redis_persist.engine import lgjson
from redis_persist.engine.message_events import MessageEvents
from redis_persist.engine.saver import FENCE_KEY, Fence
from redis_persist.settings import Settings
from redis_persist.store.threads import RunStreamLog, ThreadStore
from redis_persist.store.webhooks import WebhookQueue

log = logging.getLogger(__name__)
S = TaskStatus
# Client stream mode -> LangGraph stream mode (the wire event keeps LangGraph's server name, see WIRE_EVENT).
STREAM_MODES = {
    "values": "values",
    "updates": "updates",
    "custom": "custom",
    "messages-tuple": "messages",
    "messages": "messages",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
    "debug": "debug",
}
WIRE_EVENT = {"messages": "messages"}
RUN_ENDED = frozenset({S.COMPLETED, S.FAILED, S.WAITING_INPUT, S.CANCELLED})
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")  # LangGraph's: assistant id = uuid5(ns, graph)
RUN_STATUS = {  # task status -> LangGraph run status
    S.QUEUED: "pending",
    S.RUNNING: "running",
    S.PAUSED: "pending",
    S.WAITING_INPUT: "success",  # the graph interrupted: the run ended well, the thread is "interrupted"
    S.COMPLETED: "success",
    S.FAILED: "error",
    S.CANCELLED: "interrupted",
}


def assistant_id_of(graph_name: str) -> str:
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_name))


def run_uuid(run_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(run_id)
    except ValueError:
        return None


def command_of(body: dict[str, Any]) -> Command:
    """A run's `command` as LangGraph's server maps it: goto names or {node, input} sends, update pairs as tuples."""
    goto = body.get("goto")
    if goto is not None and not isinstance(goto, list):
        goto = [goto]
    update = body.get("update")
    if isinstance(update, list) and all(isinstance(t, list | tuple) and len(t) == 2 and isinstance(t[0], str)
                                        for t in update):
        update = [tuple(t) for t in update]
    sends = [it if isinstance(it, str) else Send(it["node"], it["input"]) for it in goto] if goto else None
    return Command(update=update, goto=sends or (), resume=body.get("resume"))


def run_context(spec: dict[str, Any], configurable: dict[str, Any], graph: Pregel) -> dict[str, Any]:
    """The runtime context a run gets, as LangGraph's server builds it.

    The client's `context`, else its `configurable` (the pre-0.6 way to pass the same values); keys the
    graph's context_schema does not declare are dropped, so a dataclass or TypedDict schema accepts it.
    """
    context = dict(spec.get("context") or configurable)
    try:
        properties = (graph.get_context_jsonschema() or {}).get("properties") or {}
    except Exception:  # noqa: BLE001 - a graph without a describable schema gets the context unfiltered
        properties = {}
    return {k: v for k, v in context.items() if k in properties} if properties else context


def base_config(task: Task, token: str) -> dict[str, Any]:
    """Config every run of a task gets: its thread and its fence (the lease token rides with the work)."""
    return {"configurable": {"thread_id": task.thread_id, FENCE_KEY: Fence(task.task_id, token)}}


def run_json(task: Task) -> dict[str, Any]:
    """A run as LangGraph's server shows it (with the ids its client knows, not the tenant-scoped store ids)."""
    spec = task.run_spec
    metadata = {**(spec.get("metadata") or {}), "graph_id": task.graph_name,
                "assistant_id": spec.get("assistant_id", assistant_id_of(task.graph_name))}
    kwargs = {k: spec.get(k) for k in ("input", "command", "config", "context", "stream_mode",
                                       "interrupt_before", "interrupt_after", "webhook", "checkpoint_id")}
    return {"run_id": task.public_id, "thread_id": public_id(task.thread_id),
            "assistant_id": spec.get("assistant_id", assistant_id_of(task.graph_name)),
            "metadata": metadata, "status": RUN_STATUS[task.status], "kwargs": kwargs,
            "multitask_strategy": spec.get("multitask_strategy", "reject"),
            "created_at": task.created_at, "updated_at": task.updated_at,
            # Our extension: the task behind the run (pause/resume/cancel it under /api/tasks as well).
            "task_status": task.status.value}


class RunHooks:
    """The LangGraph-run side of the runner: plan a run's start, record its stream, follow up its end."""

    @classmethod
    def build(cls, redis: Redis, settings: Settings) -> RunHooks:
        threads = ThreadStore(redis, settings.events_max_per_task, settings.finished_ttl_seconds)
        return cls(threads, RunStreamLog(redis), WebhookQueue(redis), settings.finished_ttl_seconds)

    def __init__(self, threads: ThreadStore, streams: RunStreamLog, webhooks: WebhookQueue,
                 finished_ttl_seconds: float = 0) -> None:
        self._threads = threads
        self._streams = streams
        self._webhooks = webhooks
        self._stream_ttl_seconds = finished_ttl_seconds  # retention of finished tasks covers their streams
        self._message_events = MessageEvents()
        self._whole_messages: set[str] = set()  # runs that asked for "messages" (not "messages-tuple")

    async def plan(self, task: Task, token: str, graph: Pregel) -> tuple[Any, dict[str, Any], list[str], dict[str, Any]]:
        """(graph input, config, extra stream modes, astream kwargs) for a run starting or continuing."""
        spec = task.run_spec
        config = base_config(task, token)
        user_config = spec.get("config") or {}
        configurable = {k: v for k, v in (user_config.get("configurable") or {}).items() if not k.startswith("__")}
        context = run_context(spec, configurable, graph)
        if spec.get("context"):  # as LangGraph's server: the context is mirrored into configurable
            configurable = {k: v for k, v in spec["context"].items() if not k.startswith("__")}
        config["configurable"] = {**configurable, **config["configurable"], "run_id": task.task_id,
                                  "graph_id": task.graph_name, "assistant_id": spec.get("assistant_id")}
        config["metadata"] = {**(spec.get("metadata") or {}), "graph_id": task.graph_name,
                              "assistant_id": spec.get("assistant_id"), "thread_id": task.thread_id,
                              "run_id": task.task_id, "run_attempt": task.attempts}
        if isinstance(user_config.get("recursion_limit"), int):
            config["recursion_limit"] = user_config["recursion_limit"]
        if (as_uuid := run_uuid(task.task_id)) is not None:
            config["run_id"] = as_uuid
        latest = await graph.checkpointer.aget_tuple(
            {"configurable": {"thread_id": task.thread_id, "checkpoint_ns": ""}})
        # The run wrote a checkpoint already: it is being taken over (or resumed) and continues from there.
        has_started = latest is not None and (latest.metadata or {}).get("run_id") == task.task_id
        if task.has_resume_input:
            graph_input: Any = Command(resume=task.resume_input)  # answered through /api/tasks
        elif has_started:
            graph_input = None
        else:
            checkpoint_id = spec.get("checkpoint_id") or await self._before_rolled_back_run(task, graph)
            if checkpoint_id:
                config["configurable"]["checkpoint_id"] = checkpoint_id
            command = spec.get("command")
            graph_input = command_of(command) if command else spec.get("input")
        kwargs: dict[str, Any] = {}
        for key in ("interrupt_before", "interrupt_after"):
            if spec.get(key):
                kwargs[key] = spec[key]
        kwargs["context"] = context
        modes = sorted({STREAM_MODES[m] for m in spec.get("stream_mode", [])})
        return graph_input, config, modes, kwargs

    async def _before_rolled_back_run(self, task: Task, graph: Pregel) -> str | None:
        """The checkpoint the thread had before the run this one rolled back (None: no rollback)."""
        rolled_back = await self._threads.rollback_of(task.task_id)
        if not rolled_back:
            return None
        before = None
        async for item in graph.checkpointer.alist({"configurable": {"thread_id": task.thread_id}}):
            if item.config["configurable"].get("checkpoint_ns", "") != "":
                continue  # the saver does not filter namespaces (SPEC.md hazard)
            if (item.metadata or {}).get("run_id") == rolled_back:
                before = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        return before

    def published_modes(self, task: Task) -> frozenset[str]:
        """The LangGraph stream modes the run (starting on this replica now) publishes."""
        asked = task.run_spec.get("stream_mode", [])
        # As LangGraph's server: "messages-tuple" wins if both are asked for.
        if "messages" in asked and "messages-tuple" not in asked:
            self._whole_messages.add(task.task_id)
            self._message_events.start(task.task_id)
        return frozenset(STREAM_MODES[m] for m in asked)

    async def publish(self, task_id: str, mode: str, chunk: Any) -> None:
        """Record one stream chunk of the run (read back by SSE, on any replica)."""
        if mode == "messages" and task_id in self._whole_messages:
            for event, data in self._message_events.events(task_id, chunk):
                await self._streams.append(task_id, event, lgjson.dumps(data))
            return
        await self._streams.append(task_id, WIRE_EVENT.get(mode, mode), lgjson.dumps(chunk))

    async def ended(self, task: Task, action: Action) -> None:
        """The run's `action` took it out of running: if for good (or until a human answers), close its
        stream and free its thread."""
        self._whole_messages.discard(task.task_id)
        self._message_events.forget(task.task_id)
        if action.target not in RUN_ENDED:
            return
        await self._streams.end(task.task_id, self._stream_ttl_seconds)
        await self._threads.advance(task.thread_id)
        if task.run_spec.get("webhook"):
            await self._webhooks.due_now(task.task_id)
