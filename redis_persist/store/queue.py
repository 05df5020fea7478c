"""WorkQueue: task ids handed out to workers through stream consumer groups, one stream per tenant.

Within a tenant the oldest task goes first; between tenants with queued work the worker takes turns
(round-robin), so one tenant's burst does not starve another. An optional cap limits how many tasks of
one tenant run at once across all replicas.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from redis_persist.core.auth import DEFAULT_TENANT
from redis_persist.store import keys, scripts
from redis_persist.store.connections import sent_at_most_once


class MessageRef(NamedTuple):
    """Where a handed-out message lives, so it can be acknowledged."""

    stream: str
    message_id: str


class WorkQueue:
    """Enqueueing happens inside the task scripts; this reads (fairly), acks and reclaims."""

    def __init__(self, redis: Redis, consumer: str, tenant_max_running: int = 0) -> None:
        self._redis = redis
        self._consumer = consumer
        self._tenant_cap = tenant_max_running
        self._grouped: set[str] = set()  # streams whose consumer group this process has made sure of
        self._last_served: str | None = None
        self._fair_read = redis.register_script(scripts.FAIR_READ)

    async def ensure_group(self) -> None:
        """Create the consumer group (and stream) of every tenant's queue unless it exists."""
        self._grouped.clear()
        await self._streams()

    async def _ensure_group(self, stream: str) -> None:
        try:
            await self._redis.xgroup_create(stream, keys.QUEUE_GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._grouped.add(stream)

    async def _streams(self) -> list[tuple[str, str]]:
        """(stream, tenant) of every queue, default first, each with its consumer group."""
        tenants = sorted(await self._redis.smembers(keys.TENANTS))
        streams = [(keys.queue(DEFAULT_TENANT), DEFAULT_TENANT)] + [(keys.queue(t), t) for t in tenants]
        for stream, _ in streams:
            if stream not in self._grouped:
                await self._ensure_group(stream)
        return streams

    def _in_turn(self, streams: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The streams starting with the one after the last served, so tenants take turns."""
        names = [stream for stream, _ in streams]
        if self._last_served not in names:
            return streams
        start = names.index(self._last_served) + 1
        return streams[start:] + streams[:start]

    async def read(
        self, count: int, block_ms: int, wake: asyncio.Event | None = None,
    ) -> list[tuple[MessageRef, str]]:
        """Up to `count` new (message ref, task id) pairs, tenants in turn, waiting up to `block_ms`
        (or until `wake` is set: a stopping worker need not sit out the wait)."""
        streams = await self._streams()
        taken, last_ids = await self._take(streams, count)
        if taken or block_ms <= 0:
            return taken
        # Nothing to take: wait for a new message on any queue (from each stream's current end, so a
        # message added meanwhile is not missed), then take once more.
        if await self._wait_for_message(last_ids, block_ms, wake):
            taken, _ = await self._take(await self._streams(), count)
        return taken

    async def _wait_for_message(self, last_ids: dict[str, str], block_ms: int, wake: asyncio.Event | None) -> bool:
        if wake is None:
            return bool(await self._redis.xread(last_ids, count=1, block=block_ms))
        # XREAD only looks (it consumes nothing), so abandoning it when woken loses no message.
        read = asyncio.ensure_future(self._redis.xread(last_ids, count=1, block=block_ms))
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({read, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            read.cancel()
            # Awaited so no read outlives the worker; one that swallows the cancel ends within block_ms.
            await asyncio.gather(read, return_exceptions=True)
        return not read.cancelled() and bool(read.result())  # result() re-raises the read's own error

    async def _take(
        self, streams: list[tuple[str, str]], count: int
    ) -> tuple[list[tuple[MessageRef, str]], dict[str, str]]:
        args: list[str | int] = [keys.QUEUE_GROUP, self._consumer, count, self._tenant_cap]
        tenants = [tenant for _, tenant in self._in_turn(streams)]
        # Re-sent after it ran, the first read's messages would sit unseen in our pending list until reclaimed.
        with sent_at_most_once():
            reply = await self._fair_read(keys=keys.for_fair_read(tenants), args=args)
        if reply and reply[0] == "idle":
            return [], dict(zip(reply[1::2], reply[2::2], strict=True))
        taken = [(MessageRef(reply[i], reply[i + 1]), reply[i + 2]) for i in range(1, len(reply), 3)]
        if taken:
            self._last_served = taken[-1][0].stream
        return taken, {}

    async def ack(self, message: MessageRef) -> None:
        await self._redis.xack(message.stream, keys.QUEUE_GROUP, message.message_id)

    async def reclaim_stale(self, min_idle_ms: int, count: int) -> list[tuple[MessageRef, str]]:
        """Take over messages a vanished consumer read but never acknowledged."""
        reclaimed: list[tuple[MessageRef, str]] = []
        for stream, _ in await self._streams():
            if len(reclaimed) >= count:
                break
            _, entries, _ = await self._redis.xautoclaim(
                stream, keys.QUEUE_GROUP, self._consumer, min_idle_time=min_idle_ms, start_id="0-0",
                count=count - len(reclaimed),
            )
            reclaimed += [(MessageRef(stream, msg_id), fields["task_id"]) for msg_id, fields in entries if fields]
        return reclaimed

    async def trim_delivered(self) -> None:
        """Drop messages every consumer is done with, so the streams do not grow forever."""
        for stream, _ in await self._streams():
            groups = await self._redis.xinfo_groups(stream)
            group = next((g for g in groups if g["name"] == keys.QUEUE_GROUP), None)
            if group is None:
                continue
            oldest_needed = group["last-delivered-id"]
            pending = await self._redis.xpending(stream, keys.QUEUE_GROUP)
            if pending["pending"]:
                oldest_needed = min(oldest_needed, pending["min"], key=_stream_id_order)
            await self._redis.xtrim(stream, minid=oldest_needed, approximate=False)


def _stream_id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
