"""TaskStore: create, read, list and change tasks; every write is one atomic Lua script."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from redis_persist.core.auth import DEFAULT_TENANT, public_id, split_scoped_id
from redis_persist.core.errors import IllegalTransition, InvalidRequest, LeaseLost, TaskConflict, TaskNotFound
from redis_persist.core.events import status_event, task_paused, utc_now
from redis_persist.core.status import Action, TaskStatus
from redis_persist.core.task import LISTED_FIELDS, Task
from redis_persist.store import keys, scripts
from redis_persist.store.connections import sent_at_most_once

S = TaskStatus
_LEASE_READ_BATCH = 1000  # lease keys per MGET: one read never holds Redis for long


@dataclass(frozen=True, slots=True)
class Created:
    """What `TaskStore.create` answers: the store id, the task's status and whether this call created it."""

    task_id: str
    status: TaskStatus
    is_new: bool

    @property
    def public_id(self) -> str:
        """The task_id its client sees."""
        return public_id(self.task_id)


async def _at_most_once(script: AsyncScript, script_keys: list[str], args: list[Any]) -> Any:
    # Run twice, a claim would skip its own task, a move answer 'illegal' to itself, a record append its
    # events twice: never re-sent once it may have reached Redis (store/connections.py says why).
    with sent_at_most_once():
        return await script(keys=script_keys, args=args)


class TaskStore:
    """The one door through which a task's record and status change."""

    def __init__(self, redis: Redis, events_max_per_task: int, finished_ttl_seconds: float = 0,
                 compaction_grace_seconds: float | None = None) -> None:
        """`compaction_grace_seconds`: None leaves finished tasks' checkpoints alone; else a finished task of
        its own is queued for compaction (engine/compaction.py) this long after it ends, for the sweep."""
        self._redis = redis
        self._maxlen = events_max_per_task
        self._finished_ttl_ms = int(finished_ttl_seconds * 1000)
        self._compaction_grace_ms = None if compaction_grace_seconds is None else int(compaction_grace_seconds * 1000)
        self._create = redis.register_script(scripts.CREATE)
        self._act = redis.register_script(scripts.ACT)
        self._claim = redis.register_script(scripts.CLAIM)
        self._record = redis.register_script(scripts.RECORD)
        self._delete = redis.register_script(scripts.DELETE)
        self._compact = redis.register_script(scripts.COMPACT)
        self._read_tasks = redis.register_script(scripts.READ_TASKS)

    async def create(
        self, task_id: str, graph_name: str, initial_state: dict[str, Any], request_hash: str,
        tenant: str = DEFAULT_TENANT,
    ) -> Created:
        """Store a new queued task and enqueue it. Same id and body again: the task as it is, not new.
        Same id, other body: TaskConflict.

        `task_id` is the store id (already scoped to `tenant`, see core/auth.scoped_id).
        """
        if split_scoped_id(task_id)[0] != tenant:  # the tenant's keys are named after the id's scope
            raise ValueError(f"store id {task_id!r} is not scoped to tenant {tenant!r}")
        now = utc_now()
        fields = {
            "task_id": task_id,
            "tenant": tenant,
            "graph_name": graph_name,
            "initial_state": json.dumps(initial_state),
            "progress": "0",
            "attempts": "0",
            "completed_nodes": "[]",
            "created_at": now,
            "updated_at": now,
        }
        events = [status_event(task_id, S.QUEUED)]
        # The script answers the status, so a create is one round trip (no read of the hash after it).
        outcome, status = await self._create(
            keys=keys.for_create(task_id, graph_name),
            args=[task_id, request_hash, json.dumps(fields), json.dumps(events), self._maxlen],
        )
        if outcome == "conflict":
            raise TaskConflict(
                f"Task {public_id(task_id)!r} already exists with a different graph_name or initial_state"
            )
        return Created(task_id, S(status), outcome == "created")

    async def get(self, task_id: str) -> Task:
        """The task, or TaskNotFound."""
        raw = await self._redis.hgetall(keys.task(task_id))
        if not raw:
            raise TaskNotFound(task_id)
        return Task.from_hash(raw)

    async def list(
        self, status: TaskStatus | None, graph_name: str | None, limit: int, cursor: str | None,
        tenant: str | None = None,
    ) -> tuple[list[Task], str | None]:
        """Newest first, at most `limit`; `cursor` continues after the previous page. `tenant`: only its tasks.

        Reads the smallest index that one of the filters names (every index is scored by creation
        sequence, so the cursor works on any of them) and applies the other filters to what it reads:
        the tenant from the id itself, status and graph from the task's hash. So a tenant's running tasks
        cost the running tasks, not every task the tenant ever kept.
        """
        if cursor is not None and not (cursor.isascii() and cursor.isdigit()):  # isdigit alone takes "²"
            raise InvalidRequest(f"Invalid cursor {cursor!r}")
        index = await self._narrowest_index(status, graph_name, tenant)
        scope = tenant if tenant is not None and index != keys.tenant_index(tenant) else None
        status_value = status.value if status is not None and index != keys.status_index(status.value) else None
        graph = graph_name if graph_name is not None and index != keys.graph_index(graph_name) else None
        # Filters on the hash may drop rows: then read at least 50 at a time. Without, `limit` rows suffice
        # unless some were deleted since the index was read (the loop reads on).
        batch = limit if status_value is None and graph is None else max(limit, 50)
        # Ids of other tenants are skipped without reading their hash: read the index in larger pages.
        page_size = batch if scope is None else max(limit, 500)
        upper = f"({cursor}" if cursor else "+inf"
        found: list[Task] = []
        while True:
            page = await self._redis.zrevrangebyscore(index, upper, "-inf", start=0, num=page_size + 1,
                                                      withscores=True)
            more_in_index = len(page) > page_size
            page = page[:page_size]
            wanted = [(at, task_id) for at, (task_id, _) in enumerate(page)
                      if scope is None or split_scoped_id(task_id)[0] == scope]
            for first in range(0, len(wanted), batch):
                chunk = wanted[first:first + batch]
                rows = await self._read_hashes([task_id for _, task_id in chunk], LISTED_FIELDS)
                for (at, _), raw in zip(chunk, rows, strict=True):
                    if not raw or (status_value is not None and raw.get("status") != status_value) or (
                        graph is not None and raw.get("graph_name") != graph
                    ):
                        continue  # deleted since the index was read, or filtered out
                    found.append(Task.from_hash(raw))
                    if len(found) == limit:
                        has_more = more_in_index or at < len(page) - 1
                        return found, str(found[-1].seq) if has_more else None
            if not more_in_index:
                return found, None
            upper = f"({int(page[-1][1])}"

    async def _read_hashes(self, task_ids: list[str], fields: tuple[str, ...] = ()) -> list[dict[str, str]]:
        """Each task's hash ({} once deleted), in one script call: one reply to parse, not one per task. With
        `fields`, those only: a list page skips what it never shows, such as a compacted task's final
        checkpoint, in Redis, on the wire and in the parser."""
        rows = await self._read_tasks(keys=[keys.task(task_id) for task_id in task_ids], args=fields)
        if not fields:
            return [dict(zip(flat[::2], flat[1::2], strict=True)) for flat in rows]
        return [{field: value for field, value in zip(fields, values, strict=True) if value is not None}
                if values[0] is not None else {} for values in rows]

    async def _narrowest_index(self, status: TaskStatus | None, graph_name: str | None, tenant: str | None) -> str:
        """The index of the one filter given, or the smallest of those given; INDEX_ALL without filters."""
        named = []
        if tenant is not None:
            named.append(keys.tenant_index(tenant))
        if status is not None:
            named.append(keys.status_index(status.value))
        if graph_name is not None:
            named.append(keys.graph_index(graph_name))
        if len(named) <= 1:
            return named[0] if named else keys.INDEX_ALL
        pipe = self._redis.pipeline(transaction=False)
        for index in named:
            pipe.zcard(index)
        sizes = await pipe.execute()
        return min(zip(sizes, range(len(named)), named))[2]

    async def act(
        self,
        task_id: str,
        action: Action,
        *,
        token: str | None = None,
        fields: Mapping[str, str] | None = None,
        drop: Iterable[str] = (),
        events: Iterable[str] = (),
        request_events: Iterable[str] = (),
        status_fields: Mapping[str, Any] | None = None,
    ) -> TaskStatus | None:
        """Apply `action` if core.status.MOVES allows it from the task's current status; returns the status now.

        The move writes the status event (with `status_fields`), `fields`, `events` and drops `drop`, in one
        atomic step. With `token`, only while the caller still holds the task's lease. An action that keeps
        the status (pause while running) is recorded as a request, with `request_events`. DELETE removes the
        task (returns None). Raises TaskNotFound, LeaseLost or IllegalTransition.
        """
        target = action.target
        if target is None:
            await self._remove(task_id)
            return None
        expire_at = compact_at = ""
        now_ms = int(time.time() * 1000)
        if target.is_final and self._finished_ttl_ms:
            expire_at = str(now_ms + self._finished_ttl_ms)
        if target.is_final and self._compaction_grace_ms is not None:
            compact_at = str(now_ms + self._compaction_grace_ms)
        guard = "lease" if token is not None else "orphan" if action == Action.REQUEUE else ""
        outcome, current = await _at_most_once(
            self._act, keys.for_task(task_id), [
                task_id,
                action.value,
                guard,
                token or "",
                json.dumps(dict(fields or {})),
                json.dumps(list(drop)),
                json.dumps([status_event(task_id, target, **(status_fields or {})), *events]),
                json.dumps(list(request_events)),
                self._maxlen,
                utc_now(),
                expire_at,
                compact_at,
            ]
        )
        if outcome == "missing":
            raise TaskNotFound(task_id)
        if outcome == "lease_lost":
            raise LeaseLost(task_id)
        if outcome == "illegal":
            raise IllegalTransition(current, target.value, action.value)
        return TaskStatus(current) if outcome == "requested" else target

    async def claim(self, task_id: str, replica: str, lease_ttl_ms: int) -> str | None:
        """Action.CLAIM: a queued task runs under a new lease; returns its fencing token, or None.

        A task whose pause was requested before it was handed out (it was re-queued meanwhile) takes
        Action.PAUSE instead and None is returned.
        """
        outcome, token = await _at_most_once(
            self._claim, keys.for_task(task_id), [
                task_id,
                replica,
                lease_ttl_ms,
                utc_now(),
                self._maxlen,
                json.dumps([status_event(task_id, S.RUNNING, owner=replica)]),
                json.dumps([status_event(task_id, S.PAUSED), task_paused(task_id)]),
            ]
        )
        return token if outcome == "ok" else None

    async def record(
        self,
        task_id: str,
        token: str,
        fields: Mapping[str, str] | None = None,
        drop: Iterable[str] = (),
        events: Iterable[str] = (),
        go_on_fields: Mapping[str, str] | None = None,
        go_on_events: Iterable[str] = (),
    ) -> bool:
        """Write a running task's progress and events while holding its lease; then, if given and no pause is
        requested, `go_on_fields` and `go_on_events` (what the run does next, e.g. the next node's start).

        Returns whether a pause is requested (so the caller needs no extra read at a node boundary).
        """
        args = [task_id, token, json.dumps(dict(fields or {})), json.dumps(list(drop)), json.dumps(list(events)),
                self._maxlen, utc_now()]
        if go_on_fields is not None:
            args += [json.dumps(dict(go_on_fields)), json.dumps(list(go_on_events))]
        reply = await _at_most_once(self._record, keys.for_task(task_id), args)
        if reply[0] != "ok":
            raise LeaseLost(task_id)
        return reply[1] == "1"

    async def status_of(self, task_id: str) -> TaskStatus | None:
        """The task's status, or None if it does not exist."""
        raw = await self._redis.hget(keys.task(task_id), "status")
        return TaskStatus(raw) if raw else None

    async def count_by_status(self) -> dict[TaskStatus, int]:
        """How many tasks are in each status, across all replicas."""
        pipe = self._redis.pipeline(transaction=False)
        for status in TaskStatus:
            pipe.zcard(keys.status_index(status.value))
        return dict(zip(TaskStatus, await pipe.execute(), strict=True))

    async def ping(self) -> None:
        """Raise a RedisError if Redis does not answer."""
        await self._redis.ping()

    async def running_ids(self) -> list[str]:
        """Ids of every task whose status is running."""
        return await self._redis.zrange(keys.status_index(S.RUNNING.value), 0, -1)

    async def without_lease(self, task_ids: list[str]) -> list[str]:
        """Those of `task_ids` whose lease is gone, read in batches: the candidates for requeue_if_orphaned.

        A sweep asks this of every running task another process runs; a lease that is still there makes the
        requeue refuse anyway, and one script call per such task grew with every task in flight in the cluster
        (5,000 a sweep per process with 10,000 running). A lease that ends just after this read is found by the
        next sweep, as one that ended just after a refused requeue was."""
        gone: list[str] = []
        for start in range(0, len(task_ids), _LEASE_READ_BATCH):
            batch = task_ids[start:start + _LEASE_READ_BATCH]
            leases = await self._redis.mget([keys.lease(task_id) for task_id in batch])
            gone += [task_id for task_id, lease in zip(batch, leases, strict=True) if lease is None]
        return gone

    async def requeue_if_orphaned(self, task_id: str) -> bool:
        """Action.REQUEUE: hand a running task out again if its lease has expired (its replica is gone)."""
        try:
            await self.act(task_id, Action.REQUEUE, drop=["current_node"],
                           status_fields={"reason": "replica lost; re-queued from the last checkpoint"})
        except (TaskNotFound, IllegalTransition):
            return False
        return True

    async def due_for_removal(self, limit: int) -> list[str]:
        """Finished tasks whose retention time has passed."""
        now_ms = int(time.time() * 1000)
        return await self._redis.zrangebyscore(keys.EXPIRY, "-inf", now_ms, start=0, num=limit)

    async def due_for_compaction(self, limit: int) -> list[str]:
        """Finished tasks whose checkpoints are due for compaction (their grace time has passed)."""
        now_ms = int(time.time() * 1000)
        return await self._redis.zrangebyscore(keys.COMPACT, "-inf", now_ms, start=0, num=limit)

    async def queue_uncompacted(self, page_size: int = 500) -> int:
        """Queue for compaction every completed or cancelled task of its own that still has its checkpoints
        (it finished while compaction was off, or before it existed); how many were queued.

        Compacted tasks (they keep a final_checkpoint), thread runs and tasks queued already are left alone;
        the workers' sweeps do the compacting, a few hundred per sweep, beside the live work.
        """
        queued = 0
        for status in (S.COMPLETED, S.CANCELLED):
            index, start = keys.status_index(status.value), 0
            while ids := await self._redis.zrange(index, start, start + page_size - 1):
                start += page_size
                now_ms = int(time.time() * 1000)
                due = {}
                for task_id, raw in zip(ids, await self._read_hashes(ids), strict=True):
                    if raw and Task.from_hash(raw).is_own_thread and "final_checkpoint" not in raw:
                        due[task_id] = now_ms
                if due:
                    queued += await self._redis.zadd(keys.COMPACT, due, nx=True)
        return queued

    async def keep_final_checkpoint(self, task_id: str, summary: dict[str, Any] | None) -> bool:
        """First step of a compaction: store `summary` (the final checkpoint as history shows it) in the record.

        Only for a finished task of its own; False (and off the compaction queue) for any other or a missing
        one. `summary` None keeps the one already stored (a compaction that was interrupted ran again).
        """
        outcome = await self._compact(keys=keys.for_task(task_id),
                                      args=[task_id, "" if summary is None else json.dumps(summary)])
        return outcome == "ok"

    async def compacted(self, task_id: str) -> None:
        """Last step of a compaction: the task's checkpoints are gone; take it off the compaction queue."""
        await self._redis.zrem(keys.COMPACT, task_id)

    async def _remove(self, task_id: str) -> None:
        """Action.DELETE: remove the task record, its events and index entries."""
        graph_name = await self._redis.hget(keys.task(task_id), "graph_name") or ""
        for _ in range(3):
            outcome, current = await _at_most_once(
                self._delete, keys.for_delete(task_id, graph_name), [task_id, graph_name])
            if outcome != "retry":
                break
            graph_name = current  # the stored graph_name changed since it was read: name its index and retry
        else:
            raise RuntimeError(f"task {task_id!r}: its graph_name keeps changing; not deleted")
        if outcome == "missing":
            raise TaskNotFound(task_id)
        if outcome == "illegal":
            raise IllegalTransition(current, "deleted", Action.DELETE.value)
