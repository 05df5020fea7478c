"""TaskStore: create, read, list and change tasks; every write is one atomic Lua script."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from redis_persist.core.auth import DEFAULT_TENANT, public_id
from redis_persist.core.errors import IllegalTransition, InvalidRequest, LeaseLost, TaskConflict, TaskNotFound
from redis_persist.core.status import TaskStatus, allowed_sources
from redis_persist.core.task import Task
from redis_persist.store import keys, scripts
from redis_persist.store.connections import sent_at_most_once
from redis_persist.store.events import make_event, utc_now

S = TaskStatus


def _csv(statuses: Iterable[TaskStatus]) -> str:
    return ",".join(sorted(s.value for s in statuses))


def _status_event(task_id: str, status: TaskStatus, **fields: Any) -> str:
    return make_event("status", task_id, status=status.value, **fields)


async def _at_most_once(script: AsyncScript, args: list[Any]) -> Any:
    # Run twice, a claim would skip its own task, a move answer 'illegal' to itself, a record append its
    # events twice: never re-sent once it may have reached Redis (store/connections.py says why).
    with sent_at_most_once():
        return await script(args=args)


class TaskStore:
    """The one door through which a task's record and status change."""

    def __init__(self, redis: Redis, events_max_per_task: int, finished_ttl_seconds: float = 0) -> None:
        self._redis = redis
        self._maxlen = events_max_per_task
        self._finished_ttl_ms = int(finished_ttl_seconds * 1000)
        self._create = redis.register_script(scripts.CREATE)
        self._transition = redis.register_script(scripts.TRANSITION)
        self._claim = redis.register_script(scripts.CLAIM)
        self._record = redis.register_script(scripts.RECORD)
        self._request_pause = redis.register_script(scripts.REQUEST_PAUSE)
        self._requeue_orphan = redis.register_script(scripts.REQUEUE_ORPHAN)
        self._delete = redis.register_script(scripts.DELETE)

    async def create(
        self, task_id: str, graph_name: str, initial_state: dict[str, Any], request_hash: str,
        tenant: str = DEFAULT_TENANT,
    ) -> tuple[Task, bool]:
        """Store a new queued task and enqueue it; returns (task, created). Same id, other body: TaskConflict.

        `task_id` is the store id (already scoped to `tenant`, see core/auth.scoped_id).
        """
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
        events = [_status_event(task_id, S.QUEUED)]
        outcome, _ = await self._create(
            args=[task_id, request_hash, json.dumps(fields), json.dumps(events), self._maxlen, graph_name, tenant]
        )
        if outcome == "conflict":
            raise TaskConflict(
                f"Task {public_id(task_id)!r} already exists with a different graph_name or initial_state"
            )
        return await self.get(task_id), outcome == "created"

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
        """Newest first, at most `limit`; `cursor` continues after the previous page. `tenant`: only its tasks."""
        if cursor is not None and not (cursor.isascii() and cursor.isdigit()):  # isdigit alone takes "²"
            raise InvalidRequest(f"Invalid cursor {cursor!r}")
        if tenant is not None:
            index = keys.tenant_index(tenant)
        elif status is not None:
            index = keys.status_index(status.value)
        elif graph_name is not None:
            index = keys.graph_index(graph_name)
        else:
            index = keys.INDEX_ALL
        needs_status_filter = tenant is not None and status is not None
        needs_graph_filter = graph_name is not None and (status is not None or tenant is not None)
        upper = f"({cursor}" if cursor else "+inf"
        found: list[Task] = []
        batch = max(limit, 50)
        while len(found) < limit:
            page = await self._redis.zrevrangebyscore(index, upper, "-inf", start=0, num=batch, withscores=True)
            if not page:
                return found, None
            pipe = self._redis.pipeline(transaction=False)
            for task_id, _ in page:
                pipe.hgetall(keys.task(task_id))
            for (task_id, score), raw in zip(page, await pipe.execute(), strict=True):
                upper = f"({int(score)}"
                if not raw or (needs_graph_filter and raw.get("graph_name") != graph_name) or (
                    needs_status_filter and status is not None and raw.get("status") != status.value
                ):
                    continue
                found.append(Task.from_hash(raw))
                if len(found) == limit:
                    break
            if len(page) < batch and len(found) < limit:
                return found, None
        last_seq = found[-1].seq
        has_more = bool(await self._redis.zrevrangebyscore(index, f"({last_seq}", "-inf", start=0, num=1))
        return found, str(last_seq) if has_more else None

    async def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        token: str = "",
        fields: Mapping[str, str] | None = None,
        drop: Iterable[str] = (),
        events: Iterable[str] = (),
        sources: Iterable[TaskStatus] | None = None,
        enqueue: bool = False,
        release_lease: bool = False,
        action: str | None = None,
        status_fields: Mapping[str, Any] | None = None,
    ) -> TaskStatus:
        """Move the task to `target` if the table allows it from its current status; returns that status.

        `sources` may narrow the table's legal sources (never widen them). With `token`,
        the move only happens while the caller still holds the task's lease.
        """
        legal = allowed_sources(target)
        chosen = legal if sources is None else legal & frozenset(sources)
        expire_at = ""
        if target.is_final and self._finished_ttl_ms:
            expire_at = str(int(time.time() * 1000) + self._finished_ttl_ms)
        all_events = [_status_event(task_id, target, **(status_fields or {})), *events]
        outcome, current = await _at_most_once(
            self._transition, [
                task_id,
                target.value,
                _csv(chosen),
                token,
                json.dumps(dict(fields or {})),
                json.dumps(list(drop)),
                json.dumps(all_events),
                self._maxlen,
                utc_now(),
                "1" if enqueue else "0",
                "1" if release_lease else "0",
                expire_at,
            ]
        )
        if outcome == "missing":
            raise TaskNotFound(task_id)
        if outcome == "lease_lost":
            raise LeaseLost(task_id)
        if outcome == "illegal":
            raise IllegalTransition(current, target.value, action)
        return TaskStatus(current)

    async def claim(self, task_id: str, replica: str, lease_ttl_ms: int) -> str | None:
        """Move a queued task to running under a new lease; returns its fencing token, or None."""
        outcome, token = await _at_most_once(
            self._claim, [
                task_id,
                replica,
                lease_ttl_ms,
                utc_now(),
                self._maxlen,
                json.dumps([_status_event(task_id, S.RUNNING, owner=replica)]),
                json.dumps([
                    _status_event(task_id, S.PAUSED),
                    make_event("task_paused", task_id, reason="Paused by user", action_required="resume"),
                ]),
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
    ) -> bool:
        """Write a running task's progress and events while holding its lease.

        Returns whether a pause is requested (so the caller needs no extra read at a node boundary).
        """
        reply = await _at_most_once(
            self._record, [
                task_id,
                token,
                json.dumps(dict(fields or {})),
                json.dumps(list(drop)),
                json.dumps(list(events)),
                self._maxlen,
                utc_now(),
            ]
        )
        if reply[0] != "ok":
            raise LeaseLost(task_id)
        return reply[1] == "1"

    async def request_pause(self, task_id: str, by: str | None = None) -> TaskStatus:
        """Pause a queued task now, or flag a running one to pause at its next node boundary.

        Returns the status the task is in after the call. `by`: the key id that asked, for the events.
        """
        deferred = {S.RUNNING}
        at_once = allowed_sources(S.PAUSED) - deferred
        who = {"by": by} if by else {}
        events = [
            _status_event(task_id, S.PAUSED, **who),
            make_event("task_paused", task_id, reason="Paused by user", action_required="resume", **who),
        ]
        outcome, current = await _at_most_once(
            self._request_pause, [task_id, _csv(at_once), _csv(deferred), utc_now(), self._maxlen, json.dumps(events),
                                  json.dumps([make_event("pause_requested", task_id, **who)] if by else [])]
        )
        if outcome == "missing":
            raise TaskNotFound(task_id)
        if outcome == "illegal":
            raise IllegalTransition(current, S.PAUSED.value, "pause")
        return S.PAUSED if outcome == "paused" else S(current)

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

    async def requeue_if_orphaned(self, task_id: str) -> bool:
        """Hand a running task out again if its lease has expired (its replica is gone)."""
        events = [_status_event(task_id, S.QUEUED, reason="replica lost; re-queued from the last checkpoint")]
        return bool(await self._requeue_orphan(args=[task_id, utc_now(), self._maxlen, json.dumps(events)]))

    async def due_for_removal(self, limit: int) -> list[str]:
        """Finished tasks whose retention time has passed."""
        now_ms = int(time.time() * 1000)
        return await self._redis.zrangebyscore(keys.EXPIRY, "-inf", now_ms, start=0, num=limit)

    async def delete(self, task_id: str, deletable: Iterable[TaskStatus]) -> None:
        """Remove the task record, its events and index entries if its status is deletable."""
        outcome, current = await _at_most_once(self._delete, [task_id, _csv(deletable)])
        if outcome == "missing":
            raise TaskNotFound(task_id)
        if outcome == "illegal":
            raise IllegalTransition(current, "deleted", "delete")
