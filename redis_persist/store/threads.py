"""ThreadStore: LangGraph Server threads, their runs (tasks with a thread_id) and each run's output stream."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis

from redis_persist.core.auth import DEFAULT_TENANT, public_id, split_scoped_id
from redis_persist.core.errors import IllegalTransition, InvalidRequest, ResourceNotFound, TaskConflict
from redis_persist.core.status import TaskStatus
from redis_persist.store import keys, thread_scripts
from redis_persist.core.events import status_event, utc_now

S = TaskStatus
# A thread is held by its active run while that run may still write to it.
BUSY = frozenset({S.QUEUED, S.RUNNING, S.PAUSED})
BUSY_CSV = ",".join(sorted(s.value for s in BUSY))
STREAM_END = "__end__"  # stream entry a run leaves when it stops producing output
# A thread script answers 'retry' when the run holding the thread (or its pending list) changed between
# Python reading it (to name its keys) and the script running; another run moved meanwhile: try again.
RETRIES = 5


class ThreadContended(TaskConflict):
    """The thread's runs kept changing under a script for RETRIES tries (a 409: the client may try again)."""


def _thread_not_found(thread_id: str) -> ResourceNotFound:
    return ResourceNotFound("thread", public_id(thread_id))  # the id its client knows


class ThreadStore:
    """Threads and the one-active-run rule; runs themselves are tasks in TaskStore."""

    def __init__(self, redis: Redis, events_max_per_task: int, finished_ttl_seconds: float = 0) -> None:
        self._redis = redis
        self._maxlen = events_max_per_task
        self._finished_ttl_ms = int(finished_ttl_seconds * 1000)
        self._create_thread = redis.register_script(thread_scripts.CREATE_THREAD)
        self._create_run = redis.register_script(thread_scripts.CREATE_RUN)
        self._advance = redis.register_script(thread_scripts.ADVANCE)
        self._delete_thread = redis.register_script(thread_scripts.DELETE_THREAD)
        self._lock_for_update = redis.register_script(thread_scripts.LOCK_FOR_UPDATE)
        self._release_lease = redis.register_script(thread_scripts.RELEASE_LEASE)

    async def create_thread(self, thread_id: str, metadata: dict[str, Any], if_exists: str) -> bool:
        """Store a new thread; returns False if it existed and if_exists is 'do_nothing'."""
        fields = {"thread_id": thread_id, "metadata": json.dumps(metadata)}
        outcome = await self._create_thread(keys=keys.for_create_thread(thread_id),
                                            args=[thread_id, json.dumps(fields), utc_now(), if_exists])
        if outcome == "conflict":
            raise TaskConflict(f"Thread {public_id(thread_id)!r} already exists")
        return outcome == "created"

    async def get_thread(self, thread_id: str) -> dict[str, str]:
        """The thread's stored fields, or ResourceNotFound."""
        raw = await self._redis.hgetall(keys.thread(thread_id))
        if not raw:
            raise _thread_not_found(thread_id)
        return raw

    async def set_thread_fields(self, thread_id: str, fields: dict[str, str]) -> None:
        """Overwrite some fields of an existing thread (metadata, graph)."""
        if not await self._redis.exists(keys.thread(thread_id)):
            raise _thread_not_found(thread_id)
        await self._redis.hset(keys.thread(thread_id), mapping={**fields, "updated_at": utc_now()})

    async def thread_ids(self, count: int, before: int | None = None) -> list[tuple[str, int]]:
        """Up to `count` (thread id, creation sequence), newest first, created before sequence `before`."""
        upper = "+inf" if before is None else f"({before}"
        page = await self._redis.zrevrangebyscore(keys.INDEX_THREADS, upper, "-inf", start=0, num=count,
                                                  withscores=True)
        return [(thread_id, int(score)) for thread_id, score in page]

    async def threads(self, thread_ids: Iterable[str]) -> list[dict[str, str]]:
        """The stored fields of each thread that still exists, in the given order."""
        pipe = self._redis.pipeline(transaction=False)
        ids = list(thread_ids)
        for thread_id in ids:
            pipe.hgetall(keys.thread(thread_id))
        return [raw for raw in await pipe.execute() if raw]

    async def run_ids(self, thread_id: str, limit: int, offset: int) -> list[str]:
        """The thread's runs, newest first."""
        return await self._redis.zrevrange(keys.thread_runs(thread_id), offset, offset + limit - 1)

    async def create_run(
        self,
        run_id: str,
        thread_id: str,
        graph_name: str,
        strategy: str,
        if_not_exists: str,
        task_fields: dict[str, str],
        thread_fields: dict[str, str],
    ) -> tuple[str, str]:
        """Create a run as a queued task on the thread under `strategy`; returns (outcome, previous active run).

        outcome: 'created' (queued to run now) or 'pending' (waits for the thread). 'reject' on a busy thread
        raises IllegalTransition; an unknown thread without if_not_exists='create' raises ResourceNotFound.
        """
        now = utc_now()
        expire_at = str(int(time.time() * 1000) + self._finished_ttl_ms) if self._finished_ttl_ms else ""
        events = [status_event(run_id, S.QUEUED, thread_id=public_id(thread_id))]
        cancel_events = [status_event("", S.CANCELLED,
                                    reason=f"interrupted by run {public_id(run_id)} ({strategy})")]
        fields = {"task_id": run_id, "graph_name": graph_name, "thread_id": thread_id, "progress": "0",
                  "attempts": "0", "completed_nodes": "[]", "created_at": now, "updated_at": now, **task_fields}
        if split_scoped_id(run_id)[0] != fields.get("tenant", DEFAULT_TENANT):
            raise ValueError(f"run id {run_id!r} is not scoped to its tenant {fields.get('tenant')!r}")
        async def attempt() -> list[str]:
            seen = await self._active_run(thread_id)
            return await self._create_run(
                keys=keys.for_create_run(thread_id, run_id, graph_name, seen),
                args=[run_id, thread_id, strategy, json.dumps(fields), json.dumps(events), self._maxlen,
                      if_not_exists, json.dumps(thread_fields), now, BUSY_CSV, json.dumps(cancel_events),
                      expire_at, seen])

        outcome, active = await self._until_settled(
            attempt, f"thread {public_id(thread_id)!r}: its active run kept changing; run not created")
        if outcome == "no_thread":
            raise _thread_not_found(thread_id)
        if outcome == "busy":
            raise IllegalTransition("busy", S.QUEUED.value,
                                    f"start a run: thread {public_id(thread_id)!r} is busy with run {public_id(active)!r}")
        return outcome, active

    async def _until_settled(self, attempt: Callable[[], Awaitable[list[str]]], failure: str) -> list[str]:
        """Run `attempt` (read the thread, then its script) until the script does not answer 'retry'."""
        for _ in range(RETRIES):
            reply = await attempt()
            if reply[0] != "retry":
                return reply
        raise ThreadContended(failure)

    async def _active_run(self, thread_id: str) -> str:
        return await self._redis.hget(keys.thread(thread_id), "active_run") or ""

    async def advance(self, thread_id: str) -> str | None:
        """Start the thread's oldest pending run if the thread is free; returns its id.

        Pending runs no longer queued (cancelled while waiting) are dropped on the way, one per script call.
        """
        retries = 0
        while retries < RETRIES:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hget(keys.thread(thread_id), "active_run")
            pipe.lindex(keys.thread_pending(thread_id), 0)
            active, head = (value or "" for value in await pipe.execute())
            reply = await self._advance(keys=keys.for_advance(thread_id, active, head),
                                        args=[thread_id, BUSY_CSV, active, head])
            if reply[0] == "started":
                return reply[1]
            if reply[0] == "idle":
                return None
            retries += reply[0] == "retry"
        return None  # others keep moving the thread; whoever moved it last advances it (and the sweep)

    async def threads_with_pending_runs(self) -> list[str]:
        return list(await self._redis.smembers(keys.THREADS_WITH_PENDING))

    async def delete_thread(self, thread_id: str) -> list[str]:
        """Remove the thread unless a run holds or awaits it; returns the ids of its runs (to delete next)."""
        async def attempt() -> list[str]:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hget(keys.thread(thread_id), "active_run")
            pipe.lrange(keys.thread_pending(thread_id), 0, -1)
            active, pending = await pipe.execute()
            return await self._delete_thread(keys=keys.for_delete_thread(thread_id, active or "", pending),
                                             args=[thread_id, BUSY_CSV, active or "", *pending])

        reply = await self._until_settled(attempt, f"thread {public_id(thread_id)!r}: its runs kept changing; not deleted")
        if reply[0] == "missing":
            raise _thread_not_found(thread_id)
        if reply[0] == "busy":
            raise IllegalTransition("busy", "deleted",
                                    f"delete thread {public_id(thread_id)!r}: run {public_id(reply[1])!r} is active")
        return list(reply[1:])

    async def lock_for_update(self, thread_id: str, token: str, ttl_ms: int) -> str:
        """Take the thread's short update lease (fails if a run holds the thread); returns its lease id."""
        async def attempt() -> list[str]:
            seen = await self._active_run(thread_id)
            return await self._lock_for_update(keys=keys.for_lock_for_update(thread_id, seen),
                                               args=[thread_id, BUSY_CSV, token, ttl_ms, seen])

        outcome, active = await self._until_settled(
            attempt, f"thread {public_id(thread_id)!r}: its active run kept changing; not locked")
        if outcome == "missing":
            raise _thread_not_found(thread_id)
        if outcome == "busy":
            raise IllegalTransition("busy", "updated",
                                    f"update thread {public_id(thread_id)!r}: it is busy {public_id(active)}".strip())
        return keys.thread_update_lease_id(thread_id)

    async def mark_rolled_back(self, thread_id: str, run_id: str) -> None:
        """The thread's next run starts from before this run's checkpoints."""
        await self._redis.hset(keys.thread(thread_id), "rollback_of", run_id)

    async def rollback_of(self, run_id: str) -> str | None:
        """The run this run replaces by rollback, if any."""
        return await self._redis.hget(keys.task(run_id), "rollback_of")

    async def release_lease(self, lease_id: str, token: str) -> None:
        await self._release_lease(keys=keys.for_release_lease(lease_id), args=[token])


class RunStreamLog:
    """Each run's LangGraph stream chunks, in a Redis Stream: replayable from any id, on any replica."""

    def __init__(self, redis: Redis, max_entries: int = 100_000) -> None:
        self._redis = redis
        self._max_entries = max_entries

    async def append(self, run_id: str, mode: str, data_json: str) -> str:
        """Add one chunk (`data_json` is already JSON text); returns its id."""
        return await self._redis.xadd(keys.run_stream(run_id), {"m": mode, "d": data_json},
                                      maxlen=self._max_entries, approximate=True)

    async def end(self, run_id: str, ttl_seconds: float = 0) -> None:
        """Mark where the run stopped producing output (readers then check the run's status).

        With `ttl_seconds`, the stream is removed that long after (as finished tasks are by retention).
        """
        await self.append(run_id, STREAM_END, "null")
        if ttl_seconds > 0:
            await self._redis.expire(keys.run_stream(run_id), max(1, int(ttl_seconds)))

    async def read(self, run_id: str, after: str | None, block_ms: int | None) -> list[tuple[str, str, str]]:
        """(id, mode, data_json) entries after `after` ('0' for all); blocks up to block_ms when given."""
        if after is not None and not _is_stream_id(after):
            raise InvalidRequest(f"Invalid Last-Event-ID {after!r}")
        start = after or "0"
        if block_ms is None:
            entries = await self._redis.xrange(keys.run_stream(run_id), min=f"({start}" if after else "-",
                                               max="+", count=1000)
        else:
            reply = await self._redis.xread({keys.run_stream(run_id): start}, block=block_ms, count=1000)
            entries = [entry for _, batch in reply for entry in batch]
        return [(entry_id, fields["m"], fields["d"]) for entry_id, fields in entries]

    async def delete(self, run_id: str) -> None:
        await self._redis.delete(keys.run_stream(run_id))


def _is_stream_id(value: str) -> bool:
    head, _, tail = value.partition("-")
    return head.isdigit() and (tail == "" or tail.isdigit())
