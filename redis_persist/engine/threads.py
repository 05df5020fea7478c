"""LangGraphControl: assistants, threads, thread state and runs as LangGraph's server models them.

Each run is a task (TaskStore) with a thread_id and a run_spec; the thread is the checkpointer's thread.
Everything here raises domain errors only; api/langgraph turns requests into these calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from langgraph.errors import InvalidUpdateError
from langgraph.pregel import Pregel
from langgraph.types import StateSnapshot
from redis.asyncio import Redis

from redis_persist.core.auth import Caller, public_id, scoped_id, split_scoped_id
from redis_persist.core.errors import Forbidden, InvalidRequest, ResourceNotFound, TaskNotFound
from redis_persist.core.status import Action, TaskStatus
from redis_persist.core.task import Task
from redis_persist.engine import lgjson
from redis_persist.engine.control import TaskControl
from redis_persist.engine.compaction import compacted_history
from redis_persist.engine.graphs import LoadedGraph
from redis_persist.engine.runs import RUN_ENDED, STREAM_MODES, assistant_id_of, run_json
from redis_persist.engine.saver import FENCE_KEY
from redis_persist.engine.stateless import StatelessCleanup
from redis_persist.engine.webhooks import RECHECK_MS, WebhookClient, WebhookDeliverer, WebhookPolicy
from redis_persist.settings import Settings
from redis_persist.core.events import utc_now
from redis_persist.store.stateless import StatelessThreads
from redis_persist.store.threads import BUSY, STREAM_END, RunStreamLog, ThreadStore
from redis_persist.store.webhooks import WebhookQueue

log = logging.getLogger(__name__)
S = TaskStatus
STRATEGIES = ("reject", "enqueue", "interrupt", "rollback")
SYSTEM_CREATED_AT = "1970-01-01T00:00:00+00:00"
UPDATE_LOCK_MS = 30_000
WAIT_BLOCK_MS = 1_000
HEARTBEAT_IDLE_READS = 10  # one SSE comment per 10 s of silence
SEARCH_PAGE = 100  # threads read per round trip by search_threads


def _require(caller: Caller, action: str) -> None:
    # The HTTP layer checks roles per route already; this holds for every other entry point too.
    if not caller.may(action):
        raise Forbidden(f"Role {caller.role.label!r} may not {action}")


def _shows_tenant(caller: Caller) -> bool:
    # As /api/tasks: an admin with a key sees every tenant, so each thread names its own; auth off keeps the shape.
    return caller.all_tenants and caller.key_id is not None


def _public_ids(metadata: Any) -> Any:
    # The runner writes store ids (tenant-scoped) into checkpoint metadata; the client knows its own ids.
    if isinstance(metadata, dict):
        return {k: public_id(v) if k in ("thread_id", "run_id") and isinstance(v, str) else v
                for k, v in metadata.items()}
    return metadata


def _checkpoint_ref(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable", {})
    thread_id = configurable.get("thread_id")
    return {"checkpoint_id": configurable.get("checkpoint_id"),
            "thread_id": public_id(thread_id) if isinstance(thread_id, str) else thread_id,
            "checkpoint_ns": configurable.get("checkpoint_ns", "")}


def snapshot_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """A StateSnapshot as LangGraph's server returns a thread state."""
    checkpoint = _checkpoint_ref(snapshot.config)
    parent = _checkpoint_ref(snapshot.parent_config)
    tasks = [{"id": t.id, "name": t.name, "path": list(t.path), "error": str(t.error) if t.error else None,
              "interrupts": lgjson.jsonable(list(t.interrupts)), "checkpoint": None, "state": None,
              "result": lgjson.jsonable(t.result) if t.result is not None else None} for t in snapshot.tasks]
    return {
        "values": lgjson.jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": tasks,
        "metadata": _public_ids(lgjson.jsonable(snapshot.metadata or {})),
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": lgjson.jsonable(list(snapshot.interrupts)),
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }


def compacted_snapshot_json(thread_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A compacted finished task's final checkpoint (engine/compaction.py) as a thread state: it has no next step."""
    def ref(checkpoint_id: str | None) -> dict[str, Any] | None:
        return _checkpoint_ref({"configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}}
                               if checkpoint_id else None)
    return {"values": entry["values"], "next": [], "tasks": [],
            "metadata": {"source": entry.get("source"), "step": entry.get("step")},
            "created_at": entry.get("created_at"), "checkpoint": ref(entry["checkpoint_id"]),
            "parent_checkpoint": ref(entry.get("parent_checkpoint_id")), "interrupts": [],
            "checkpoint_id": entry["checkpoint_id"], "parent_checkpoint_id": entry.get("parent_checkpoint_id")}


class LangGraphControl:
    """The LangGraph Server model on top of TaskControl: one engine, two doors.

    Threads and runs belong to a tenant exactly as tasks do: every thread or run call names its `caller`,
    client ids map to store ids with core/auth.scoped_id (so the checkpointer's thread is tenant-scoped too),
    another tenant's thread or run is ResourceNotFound like a missing one, and responses show public ids.
    """

    @classmethod
    def build(cls, tasks: TaskControl, redis: Redis, settings: Settings) -> LangGraphControl:
        """Wire the thread store, run streams and webhook queue on the shared Redis client."""
        domains = [d.strip() for d in settings.webhook_allowed_domains.split(",") if d.strip()]
        return cls(tasks, ThreadStore(redis, settings.events_max_per_task, settings.finished_ttl_seconds),
                   RunStreamLog(redis), WebhookQueue(redis),
                   WebhookPolicy(settings.webhook_allow_loopback, domains), settings.webhook_max_attempts,
                   StatelessThreads(redis))

    def __init__(self, tasks: TaskControl, threads: ThreadStore, streams: RunStreamLog, webhooks: WebhookQueue,
                 webhook_policy: WebhookPolicy, webhook_max_attempts: int, stateless: StatelessThreads) -> None:
        self.tasks = tasks
        self.threads = threads
        self.streams = streams
        self._webhooks = webhooks
        self._webhook_policy = webhook_policy
        self._deliverer = WebhookDeliverer(webhooks, webhook_policy, webhook_max_attempts, self.webhook_payload)
        self._graphs = tasks.graphs
        self._checkpointer = tasks._checkpointer  # noqa: SLF001 - the same saver, shared on purpose
        self._stateless = StatelessCleanup(threads, tasks.store, webhooks, stateless, self._delete_stored_thread)

    # ---- assistants -------------------------------------------------------------------------------------

    def assistant(self, assistant_id: str) -> dict[str, Any]:
        """The default assistant of a graph, by its id or by the graph's name."""
        return self._assistant_json(self.graph_of(assistant_id))

    def graph_of(self, assistant_id: str) -> LoadedGraph:
        for loaded in self._graphs.all():
            if assistant_id in (loaded.name, assistant_id_of(loaded.name)):
                return loaded
        raise ResourceNotFound("assistant", assistant_id)

    def search_assistants(self, graph_id: str | None, name: str | None, metadata: dict[str, Any],
                          limit: int, offset: int) -> list[dict[str, Any]]:
        found = [self._assistant_json(g) for g in self._graphs.all()
                 if (graph_id is None or g.name == graph_id) and (name is None or name in g.name)]
        found = [a for a in found if _contains(a["metadata"], metadata)]
        return found[offset:offset + limit]

    def _assistant_json(self, loaded: LoadedGraph) -> dict[str, Any]:
        return {"assistant_id": assistant_id_of(loaded.name), "graph_id": loaded.name, "config": {}, "context": {},
                "metadata": {"created_by": "system"}, "name": loaded.name, "created_at": SYSTEM_CREATED_AT,
                "updated_at": SYSTEM_CREATED_AT, "version": 1, "description": None}

    def assistant_graph(self, assistant_id: str, xray: bool | int = False) -> dict[str, Any]:
        drawable = lgjson.jsonable(self.graph_of(assistant_id).graph.get_graph(xray=xray).to_json())
        for node in drawable.get("nodes", []):
            if isinstance(node.get("data"), dict) and "name" in node["data"]:
                node["data"] = {"name": node["data"]["name"]}  # as LangGraph's server: no import paths
        return drawable

    def assistant_schemas(self, assistant_id: str) -> dict[str, Any]:
        loaded = self.graph_of(assistant_id)
        graph = loaded.graph
        return {"graph_id": loaded.name,
                "input_schema": _schema(graph.get_input_jsonschema),
                "output_schema": _schema(graph.get_output_jsonschema),
                "state_schema": _schema(lambda: graph.get_input_jsonschema()),
                "config_schema": _schema(graph.get_config_jsonschema),
                "context_schema": _schema(getattr(graph, "get_context_jsonschema", lambda: None))}

    # ---- threads ----------------------------------------------------------------------------------------

    async def create_thread(self, thread_id: str | None, metadata: dict[str, Any], if_exists: str, *,
                            caller: Caller) -> dict[str, Any]:
        """A new thread in the caller's tenant (the same client thread_id in two tenants is two threads)."""
        _require(caller, "execute")
        thread_id = thread_id or str(uuid.uuid4())
        await self.threads.create_thread(scoped_id(caller.tenant, thread_id), metadata, if_exists)
        return await self.thread(thread_id, caller=caller)

    async def thread(self, thread_id: str, *, caller: Caller) -> dict[str, Any]:
        """The thread as LangGraph's server shows it, with its current values and status."""
        _require(caller, "read")
        return await self._thread_json(await self._thread_or_task(scoped_id(caller.tenant, thread_id)), caller)

    async def patch_thread(self, thread_id: str, metadata: dict[str, Any], *, caller: Caller) -> dict[str, Any]:
        _require(caller, "execute")
        stored_id = scoped_id(caller.tenant, thread_id)
        raw = await self.threads.get_thread(stored_id)
        merged = {**json.loads(raw.get("metadata") or "{}"), **metadata}
        await self.threads.set_thread_fields(stored_id, {"metadata": json.dumps(merged)})
        return await self.thread(thread_id, caller=caller)

    async def delete_thread(self, thread_id: str, *, caller: Caller) -> None:
        """Remove a thread with its runs and checkpoints; 409 while a run holds it."""
        _require(caller, "delete")
        await self._delete_stored_thread(scoped_id(caller.tenant, thread_id))

    async def _delete_stored_thread(self, thread_id: str) -> None:
        for run_id in await self.threads.delete_thread(thread_id):
            try:
                await self.tasks.store.act(run_id, Action.DELETE)
            except TaskNotFound:
                pass
            await self.streams.delete(run_id)
        await self._checkpointer.adelete_thread(thread_id)

    async def search_threads(self, metadata: dict[str, Any], values: dict[str, Any], status: str | None,
                             limit: int, offset: int, *, caller: Caller) -> list[dict[str, Any]]:
        """The caller's threads (an admin's: every tenant's) newest first, filtered."""
        _require(caller, "read")
        found: list[dict[str, Any]] = []
        before = None
        # A page of the index at a time, so the newest threads cost what they hold, not what the index holds.
        while len(found) < offset + limit:
            page = await self.threads.thread_ids(SEARCH_PAGE, before)
            if not page:
                break
            before = page[-1][1]
            thread_ids = [t for t, _ in page if caller.all_tenants or split_scoped_id(t)[0] == caller.tenant]
            for raw in await self.threads.threads(thread_ids):
                if not _contains(self._metadata(raw), metadata):
                    continue
                thread = await self._thread_json(raw, caller)
                if (status is None or thread["status"] == status) and _contains(thread["values"] or {}, values):
                    found.append(thread)
                if len(found) >= offset + limit:
                    break
        return found[offset:offset + limit]

    async def _thread_or_task(self, thread_id: str) -> dict[str, str]:
        """The thread's fields (`thread_id`: its store id); a task made by /api/tasks reads as a thread of its own."""
        try:
            return await self.threads.get_thread(thread_id)
        except ResourceNotFound:
            try:
                task = await self.tasks.store.get(thread_id)
            except TaskNotFound:
                raise ResourceNotFound("thread", public_id(thread_id)) from None
            if task.run_spec or task.thread_id != thread_id:
                raise ResourceNotFound("thread", public_id(thread_id)) from None
            found = {"thread_id": thread_id, "graph_id": task.graph_name,
                     "assistant_id": assistant_id_of(task.graph_name), "active_run": task.task_id,
                     "created_at": task.created_at, "updated_at": task.updated_at, "metadata": "{}", "is_task": "1"}
            if task.final_checkpoint is not None:  # compacted: its checkpoints are gone, its history is this
                found["compacted_history"] = json.dumps(compacted_history(task.final_checkpoint, task.state))
            return found

    @staticmethod
    def _compacted_states(raw: dict[str, str]) -> list[dict[str, Any]] | None:
        """A compacted task's states (its final checkpoint, or none), or None for anything else."""
        if "compacted_history" not in raw:
            return None
        return [compacted_snapshot_json(raw["thread_id"], entry) for entry in json.loads(raw["compacted_history"])]

    def _metadata(self, raw: dict[str, str]) -> dict[str, Any]:
        metadata = json.loads(raw.get("metadata") or "{}")
        if raw.get("graph_id"):
            metadata |= {"graph_id": raw["graph_id"], "assistant_id": raw.get("assistant_id")}
        return metadata

    async def _thread_json(self, raw: dict[str, str], caller: Caller) -> dict[str, Any]:
        tenant, thread_id = split_scoped_id(raw["thread_id"])
        snapshot = await self._snapshot(raw, None)
        status, error = await self._thread_status(raw, snapshot)
        interrupts: dict[str, Any] = {}
        if snapshot is not None:
            for task in snapshot.tasks:
                if task.interrupts:
                    interrupts[task.id] = lgjson.jsonable(list(task.interrupts))
        shown = {
            "thread_id": thread_id,
            "created_at": raw.get("created_at"),
            "updated_at": raw.get("updated_at"),
            "state_updated_at": raw.get("updated_at"),
            "metadata": self._metadata(raw),
            "status": status,
            "config": {"configurable": {}},
            "values": lgjson.jsonable(snapshot.values) if snapshot is not None and snapshot.values else None,
            "error": error,
            "interrupts": interrupts,
        }
        compacted = self._compacted_states(raw)
        if compacted:
            shown["values"] = compacted[0]["values"]
        if _shows_tenant(caller):
            shown["tenant"] = tenant
        return shown

    async def _thread_status(self, raw: dict[str, str], snapshot: StateSnapshot | None) -> tuple[str, Any]:
        active = raw.get("active_run")
        if active:
            status = await self.tasks.store.status_of(active)
            if status in BUSY:
                return "busy", None
            if status == S.FAILED:
                task = await self.tasks.store.get(active)
                return "error", task.error
        if snapshot is not None and (snapshot.next or snapshot.interrupts):
            return "interrupted", None
        return "idle", None

    # ---- state ------------------------------------------------------------------------------------------

    def _thread_graph(self, raw: dict[str, str]) -> Pregel | None:
        name = raw.get("graph_id")
        if not name:
            return None
        return self._graphs.get(name).graph

    async def _snapshot(self, raw: dict[str, str], checkpoint_id: str | None) -> StateSnapshot | None:
        graph = self._thread_graph(raw)
        if graph is None:
            return None
        config: dict[str, Any] = {"configurable": {"thread_id": raw["thread_id"], "checkpoint_ns": ""}}
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        snapshot = await graph.aget_state(config)
        return snapshot if snapshot.created_at is not None or snapshot.values else None

    async def state(self, thread_id: str, checkpoint_id: str | None = None, *, caller: Caller) -> dict[str, Any]:
        """The thread's state at its latest (or the given) checkpoint."""
        _require(caller, "read")
        raw = await self._thread_or_task(scoped_id(caller.tenant, thread_id))
        compacted = self._compacted_states(raw)
        if compacted is not None:
            found = [s for s in compacted if checkpoint_id in (None, s["checkpoint_id"])]
            if found:
                return found[0]
        snapshot = await self._snapshot(raw, checkpoint_id)
        if snapshot is None:
            if checkpoint_id:
                raise ResourceNotFound("checkpoint", checkpoint_id)
            return {"values": {}, "next": [], "tasks": [], "metadata": {}, "created_at": None, "checkpoint": None,
                    "parent_checkpoint": None, "interrupts": [], "checkpoint_id": None, "parent_checkpoint_id": None}
        return snapshot_json(snapshot)

    async def history(self, thread_id: str, limit: int, before: str | None,
                      checkpoint_id: str | None = None, *, caller: Caller) -> list[dict[str, Any]]:
        _require(caller, "read")
        thread_id = scoped_id(caller.tenant, thread_id)
        raw = await self._thread_or_task(thread_id)
        compacted = self._compacted_states(raw)
        if compacted is not None:
            return [s for s in compacted if checkpoint_id in (None, s["checkpoint_id"])
                    and not (before and s["checkpoint_id"] >= before)][:limit]
        graph = self._thread_graph(raw)
        if graph is None:
            return []
        config: dict[str, Any] = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        found = []
        # The saver ignores `before` (SPEC.md hazard), so it is applied here: checkpoint ids sort by time.
        async for snapshot in graph.aget_state_history(config):
            current = snapshot.config["configurable"]["checkpoint_id"]
            if before and current >= before:
                continue
            found.append(snapshot_json(snapshot))
            if len(found) >= limit:
                break
        return found

    async def update_state(self, thread_id: str, values: Any, as_node: str | None,
                           checkpoint_id: str | None = None, *, caller: Caller) -> dict[str, Any]:
        """Write values as if `as_node` had returned them; refused (409) while a run holds the thread."""
        _require(caller, "execute")
        client_thread_id, thread_id = thread_id, scoped_id(caller.tenant, thread_id)
        raw = await self.threads.get_thread(thread_id)
        graph = self._thread_graph(raw)
        if graph is None:
            raise InvalidRequest(f"Thread {client_thread_id!r} has no graph yet: start a run on it first")
        if as_node is not None and as_node not in graph.nodes:
            raise InvalidRequest(f"Node {as_node!r} not found in graph {raw['graph_id']!r}")
        await self._checkpointer.require_checkpoint(thread_id, checkpoint_id, "Updating the state of a past checkpoint")
        token = uuid.uuid4().hex
        lease_id = await self.threads.lock_for_update(thread_id, token, UPDATE_LOCK_MS)
        try:
            config: dict[str, Any] = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "",
                                                       FENCE_KEY: [lease_id, token]}}
            if checkpoint_id:
                config["configurable"]["checkpoint_id"] = checkpoint_id
            try:
                new_config = await graph.aupdate_state(config, values, as_node=as_node)
            except (ValueError, KeyError, TypeError, InvalidUpdateError) as error:  # values the graph cannot take
                raise InvalidRequest(f"Cannot update state: {error}") from error
        finally:
            await self.threads.release_lease(lease_id, token)
        await self.threads.set_thread_fields(thread_id, {})
        checkpoint = _checkpoint_ref(new_config)
        return {"checkpoint": checkpoint, "configurable": checkpoint,
                "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None}

    # ---- runs -------------------------------------------------------------------------------------------

    async def create_run(self, thread_id: str | None, body: dict[str, Any], *, caller: Caller,
                         reader_attached: bool = False) -> dict[str, Any]:
        """Create a run (a task of the caller's tenant on the thread) under its multitask strategy.

        `thread_id` None: stateless (a new thread, deleted after the run unless `on_completion=keep`;
        `reader_attached`: the caller streams or waits for the output, so the thread stays until it has it).
        The run's task and thread carry the tenant, so its work goes through the tenant's fair queue and
        counts against the tenant's running cap.
        """
        _require(caller, "execute")
        try:
            loaded = self.graph_of(body["assistant_id"])
        except ResourceNotFound:
            names = ", ".join(self._graphs.names())
            raise InvalidRequest(f"Invalid assistant: {body['assistant_id']!r}. Must be either a valid assistant "
                                 f"UUID or one of the registered graphs: {names}") from None
        stream_mode = body.get("stream_mode") or ["values"]
        if isinstance(stream_mode, str):
            stream_mode = [stream_mode]
        unknown = [m for m in stream_mode if m not in STREAM_MODES]
        if unknown:
            raise InvalidRequest(f"Unsupported stream_mode {unknown}; supported: {sorted(STREAM_MODES)}")
        strategy = body.get("multitask_strategy") or "enqueue"
        if body.get("input") is not None and body.get("command") is not None:
            raise InvalidRequest("Pass either input or command, not both")
        if (body.get("config") or {}).get("configurable") and body.get("context"):
            raise InvalidRequest("Cannot specify both configurable and context. Prefer setting context alone "
                                 "(as LangGraph's server, which answers 400 where we answer 422)")
        checkpoint_id = body.get("checkpoint_id") or (body.get("checkpoint") or {}).get("checkpoint_id")
        webhook = body.get("webhook")
        if webhook:
            await self._webhook_policy.check(webhook)
        if strategy == "rollback":
            self._checkpointer.require_history("multitask_strategy=rollback")
        if_not_exists = body.get("if_not_exists") or "reject"
        temporary = thread_id is None and body.get("on_completion") != "keep"
        if thread_id is None:
            thread_id, if_not_exists = str(uuid.uuid4()), "create"
        thread_id = scoped_id(caller.tenant, thread_id)
        await self._checkpointer.require_checkpoint(thread_id, checkpoint_id, "A run from a past checkpoint")
        run_id = scoped_id(caller.tenant, str(uuid.uuid4()))
        assistant_id = assistant_id_of(loaded.name)
        # As LangGraph's server: a run inherits its thread's metadata (the run's own keys win).
        try:
            inherited = json.loads((await self.threads.get_thread(thread_id)).get("metadata") or "{}")
        except ResourceNotFound:
            inherited = {}
        config = body.get("config") or {}
        spec = {
            "assistant_id": assistant_id, "input": body.get("input"), "command": body.get("command"),
            "config": config, "context": body.get("context") or {}, "stream_mode": stream_mode,
            "interrupt_before": body.get("interrupt_before"), "interrupt_after": body.get("interrupt_after"),
            "checkpoint_id": checkpoint_id, "metadata": {**inherited, **(body.get("metadata") or {})},
            "multitask_strategy": strategy, "webhook": body.get("webhook"),
            "on_completion": body.get("on_completion"), "stream_resumable": bool(body.get("stream_resumable")),
        }
        task_fields = {"tenant": caller.tenant, "run_spec": json.dumps(spec), "initial_state": json.dumps(
            body.get("input") if isinstance(body.get("input"), dict) else {})}
        thread_fields = {"graph_id": loaded.name, "assistant_id": assistant_id}
        # The stream's first event exists before the run can start, so every reader (and replay) sees it.
        await self.streams.append(run_id, "metadata", json.dumps({"run_id": public_id(run_id), "attempt": 1}))
        if webhook:
            # Armed before the run exists: a replica dying right after the run ends cannot lose it.
            await self._webhooks.arm(run_id, webhook, RECHECK_MS)
        if temporary:  # likewise: its deletion cannot be lost, nor happen before the run has ended
            await self._stateless.arm(thread_id, reader_attached)
        try:
            _outcome, previous = await self.threads.create_run(
                run_id, thread_id, loaded.name, strategy, if_not_exists, task_fields, thread_fields)
        except Exception:
            await self.streams.delete(run_id)
            await self._webhooks.done(run_id)
            if temporary:
                await self._stateless.disarm(thread_id)
            raise
        if strategy == "rollback" and previous:
            await self._forget_run(previous)
        return run_json(await self._run_task(thread_id, run_id))

    async def _forget_run(self, run_id: str) -> None:
        # Rollback removes the interrupted run; it is final already, so deleting it cannot race its runner.
        try:
            if await self.tasks.store.status_of(run_id) != S.CANCELLED:
                return  # not interrupted (the thread was free): the run stays
            await self.tasks.store.act(run_id, Action.DELETE)
        except Exception:  # noqa: BLE001 - best effort: the run stays listed as interrupted
            return
        await self.streams.delete(run_id)

    async def run(self, thread_id: str, run_id: str, *, caller: Caller) -> dict[str, Any]:
        _require(caller, "read")
        return run_json(await self._run_task(*self._scoped(caller, thread_id, run_id)))

    @staticmethod
    def _scoped(caller: Caller, thread_id: str, run_id: str) -> tuple[str, str]:
        return scoped_id(caller.tenant, thread_id), scoped_id(caller.tenant, run_id)

    async def _run_task(self, thread_id: str, run_id: str) -> Task:
        """The run's task by store ids; a run of another thread (or tenant) is not found."""
        try:
            task = await self.tasks.store.get(run_id)
        except TaskNotFound:
            raise ResourceNotFound("run", public_id(run_id)) from None
        if task.thread_id != thread_id:
            raise ResourceNotFound("run", public_id(run_id))
        return task

    async def list_runs(self, thread_id: str, limit: int, offset: int, status: str | None, *,
                        caller: Caller) -> list[dict[str, Any]]:
        _require(caller, "read")
        thread_id = scoped_id(caller.tenant, thread_id)
        raw = await self._thread_or_task(thread_id)
        runs = []
        run_ids = [thread_id] if raw.get("is_task") else await self.threads.run_ids(
            thread_id, 10_000 if status else limit, 0 if status else offset)
        for run_id in run_ids:
            try:
                runs.append(run_json(await self.tasks.store.get(run_id)))
            except TaskNotFound:
                continue
        if status:
            runs = [r for r in runs if r["status"] == status][offset:offset + limit]
        return runs

    async def cancel_run(self, thread_id: str, run_id: str, action: str, wait: bool, *, caller: Caller) -> None:
        """Stop the run now (interrupt), or stop it and remove it (rollback)."""
        _require(caller, "cancel")
        client_run_id = run_id
        thread_id, run_id = self._scoped(caller, thread_id, run_id)
        task = await self._run_task(thread_id, run_id)
        if task.status in RUN_ENDED:  # as LangGraph's server: only a pending or running run can be cancelled
            raise ResourceNotFound("run to cancel", client_run_id)
        if action == "rollback":
            self._checkpointer.require_history("Cancelling with action=rollback")
            await self.threads.mark_rolled_back(thread_id, run_id)
        await self.tasks.cancel(client_run_id, caller=caller)
        await self.streams.end(run_id)
        await self.threads.advance(thread_id)
        if wait:
            await self._wait_until_ended(run_id, timeout=60)
        if action == "rollback":
            await self._forget_run(run_id)

    async def delete_run(self, thread_id: str, run_id: str, *, caller: Caller) -> None:
        _require(caller, "delete")
        thread_id, run_id = self._scoped(caller, thread_id, run_id)
        await self._run_task(thread_id, run_id)
        await self.tasks.store.act(run_id, Action.DELETE)
        await self.streams.delete(run_id)

    async def wait_until_ended(self, run_id: str, timeout: float | None = None, *, caller: Caller) -> Task:
        """Block until the caller's run has ended (success, error, interrupted); returns its task."""
        _require(caller, "read")
        return await self._wait_until_ended(scoped_id(caller.tenant, run_id), timeout)

    async def _wait_until_ended(self, run_id: str, timeout: float | None = None) -> Task:
        deadline = None if timeout is None else time.monotonic() + timeout
        last = "$"
        while True:
            task = await self.tasks.store.get(run_id)
            if task.status in RUN_ENDED:
                return task
            if deadline is not None and time.monotonic() > deadline:
                return task
            events = await self.tasks.events.wait(run_id, last if last != "$" else "0", WAIT_BLOCK_MS)
            if events:
                last = events[-1]["id"]

    async def run_output(self, task: Task) -> Any:
        """What /wait and /join return: the thread's values (with __interrupt__), or the run's error."""
        if task.status == S.FAILED:
            return {"__error__": {"error": (task.error or "Error").split(":")[0], "message": task.error}}
        raw = await self.threads.get_thread(task.thread_id)
        snapshot = await self._snapshot(raw, None)
        if snapshot is None:
            return None
        values = lgjson.jsonable(snapshot.values)
        if snapshot.interrupts and isinstance(values, dict):
            values["__interrupt__"] = lgjson.jsonable(list(snapshot.interrupts))
        return values

    async def stream(self, thread_id: str, run_id: str, after: str | None, *,
                     caller: Caller) -> AsyncIterator[tuple[str, str, str]]:
        """(id, event, data JSON) of the run's stream after `after`, live until the run has ended.

        While the run is quiet, yields ("", "", "") every HEARTBEAT_IDLE_READS reads so proxies keep the
        connection open (a paused run can be quiet for hours).
        """
        _require(caller, "read")
        thread_id, run_id = self._scoped(caller, thread_id, run_id)
        await self._run_task(thread_id, run_id)
        last = after or "0"
        idle_reads = 0
        while True:
            entries = await self.streams.read(run_id, last, WAIT_BLOCK_MS)
            idle_reads = 0 if entries else idle_reads + 1
            if idle_reads >= HEARTBEAT_IDLE_READS:
                idle_reads = 0
                yield "", "", ""
            for entry_id, mode, data in entries:
                last = entry_id
                if mode == STREAM_END:
                    if await self._has_ended(run_id):
                        return
                    continue
                yield entry_id, mode, data
            if not entries and await self._has_ended(run_id):
                # Ended without a marker (e.g. cancelled from /api/tasks): drain what is left, then stop.
                for entry_id, mode, data in await self.streams.read(run_id, last, None):
                    if mode != STREAM_END:
                        yield entry_id, mode, data
                return

    async def _has_ended(self, run_id: str) -> bool:
        status = await self.tasks.store.status_of(run_id)
        return status is None or status in RUN_ENDED

    async def advance_pending(self) -> None:
        """Hand threads whose active run has ended to their next pending run (after a lost replica, say)."""
        for thread_id in await self.threads.threads_with_pending_runs():
            await self.threads.advance(thread_id)

    async def pause_run(self, thread_id: str, run_id: str, *, caller: Caller) -> dict[str, Any]:
        await self._run_task(*self._scoped(caller, thread_id, run_id))
        outcome = await self.tasks.pause(run_id, caller=caller)
        return {"message": outcome.message, "status": outcome.status.value}

    async def resume_run(self, thread_id: str, run_id: str, *, caller: Caller) -> dict[str, Any]:
        await self._run_task(*self._scoped(caller, thread_id, run_id))
        outcome = await self.tasks.resume(run_id, caller=caller)
        return {"message": outcome.message, "status": outcome.status.value}

    async def still_reading(self, run: dict[str, Any], *, caller: Caller) -> None:
        """The client of a stateless stream/wait still reads its output: its temporary thread stays."""
        await self._stateless.still_reading(scoped_id(caller.tenant, run["thread_id"]))

    async def output_delivered(self, run: dict[str, Any], *, caller: Caller) -> None:
        """The client has the run's whole output: a stateless run's temporary thread goes now."""
        await self._stateless.delivered(scoped_id(caller.tenant, run["thread_id"]))

    async def _final_values(self, task: Task) -> Any:
        """The run's final values as LangGraph's server sends them (messages as objects, not their text)."""
        try:
            raw = await self.threads.get_thread(task.thread_id)
        except ResourceNotFound:
            return task.state
        if raw.get("active_run") != task.task_id:  # a later run moved the thread on: the run's own record
            return task.state
        snapshot = await self._snapshot(raw, None)
        return lgjson.jsonable(snapshot.values) if snapshot is not None else task.state

    async def webhook_payload(self, run_id: str) -> dict[str, Any] | None:
        """What a run's webhook receives (as LangGraph's server sends it), or None while the run goes on."""
        task = await self.tasks.store.get(run_id)
        if task.status not in RUN_ENDED:
            return None
        payload = {**run_json(task), "run_started_at": task.created_at, "run_ended_at": task.updated_at,
                   "values": await self._final_values(task)}
        if task.status == S.FAILED:
            payload["error"] = {"error": (task.error or "Error").split(":")[0], "message": task.error}
        return payload

    async def background(self, stop: asyncio.Event, interval: float) -> None:
        """Periodic upkeep on every replica until `stop` is set: pending runs of threads, webhook deliveries."""
        client = WebhookClient()
        try:
            while not stop.is_set():
                for step in (self.advance_pending, lambda: self._deliverer.deliver_due(client),
                             self._stateless.delete_due):
                    try:
                        await step()
                    except Exception as error:  # noqa: BLE001 - upkeep retries on its next round
                        log.warning("langgraph upkeep failed", extra={"error": str(error)})
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except TimeoutError:
                    pass
        finally:
            await client.aclose()


def _contains(document: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(key in document and document[key] == value for key, value in (wanted or {}).items())


def _schema(produce: Any) -> Any:
    try:
        return lgjson.jsonable(produce())
    except Exception:  # noqa: BLE001 - a graph without a describable schema gets none, as LangGraph's server does
        return None


__all__ = ["LangGraphControl", "assistant_id_of", "snapshot_json", "utc_now"]
