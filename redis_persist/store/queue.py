"""WorkQueue: task ids handed out to workers oldest first through a stream consumer group."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from redis_persist.store import keys
from redis_persist.store.connections import sent_at_most_once


class WorkQueue:
    """Enqueueing happens inside the task scripts; this reads, acks and reclaims."""

    def __init__(self, redis: Redis, consumer: str) -> None:
        self._redis = redis
        self._consumer = consumer

    async def ensure_group(self) -> None:
        """Create the consumer group (and stream) unless it exists."""
        try:
            await self._redis.xgroup_create(keys.QUEUE, keys.QUEUE_GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read(self, count: int, block_ms: int) -> list[tuple[str, str]]:
        """Up to `count` new (message id, task id) pairs, waiting up to `block_ms`."""
        # Re-sent after it ran, the first read's messages would sit unseen in our pending list until reclaimed.
        with sent_at_most_once():
            reply = await self._redis.xreadgroup(
                keys.QUEUE_GROUP, self._consumer, {keys.QUEUE: ">"}, count=count, block=block_ms
            )
        return [(msg_id, fields["task_id"]) for _, entries in reply or [] for msg_id, fields in entries]

    async def ack(self, message_id: str) -> None:
        await self._redis.xack(keys.QUEUE, keys.QUEUE_GROUP, message_id)

    async def reclaim_stale(self, min_idle_ms: int, count: int) -> list[tuple[str, str]]:
        """Take over messages a vanished consumer read but never acknowledged."""
        _, entries, _ = await self._redis.xautoclaim(
            keys.QUEUE, keys.QUEUE_GROUP, self._consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count
        )
        return [(msg_id, fields["task_id"]) for msg_id, fields in entries if fields]

    async def trim_delivered(self) -> None:
        """Drop messages every consumer is done with, so the stream does not grow forever."""
        groups = await self._redis.xinfo_groups(keys.QUEUE)
        group = next((g for g in groups if g["name"] == keys.QUEUE_GROUP), None)
        if group is None:
            return
        oldest_needed = group["last-delivered-id"]
        pending = await self._redis.xpending(keys.QUEUE, keys.QUEUE_GROUP)
        if pending["pending"]:
            oldest_needed = min(oldest_needed, pending["min"], key=_stream_id_order)
        await self._redis.xtrim(keys.QUEUE, minid=oldest_needed, approximate=False)


def _stream_id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
