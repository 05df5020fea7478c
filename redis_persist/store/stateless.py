"""StatelessThreads: the temporary threads of stateless runs (`on_completion=delete`), due for deletion.

Each is armed before its run exists, so a replica dying at any point cannot leave it behind; a client
still reading the run's answer or stream holds it (a key that expires) so it is not deleted under them.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from redis_persist.store import keys


def _now_ms() -> int:
    return int(time.time() * 1000)


class StatelessThreads:
    """Which temporary threads to delete once their run has ended and no client reads them any more."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def arm(self, thread_id: str, first_check_in_ms: int, hold_ms: int) -> None:
        """Record that the thread goes once its run has ended, not before `hold_ms` (the run is being created,
        or a client will read its output)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(keys.STATELESS_DUE, {thread_id: _now_ms() + first_check_in_ms})
        pipe.set(keys.stateless_hold(thread_id), "1", px=hold_ms)
        await pipe.execute()

    async def is_armed(self, thread_id: str) -> bool:
        return await self._redis.zscore(keys.STATELESS_DUE, thread_id) is not None

    async def hold(self, thread_id: str, hold_ms: int) -> None:
        """A client still reads the run's output: keep the thread at least `hold_ms` longer."""
        await self._redis.set(keys.stateless_hold(thread_id), "1", px=hold_ms)

    async def release(self, thread_id: str) -> None:
        """The client has read everything: no hold any more."""
        await self._redis.delete(keys.stateless_hold(thread_id))

    async def is_held(self, thread_id: str) -> bool:
        return bool(await self._redis.exists(keys.stateless_hold(thread_id)))

    async def due(self, limit: int) -> list[str]:
        """Threads whose check is due now."""
        return list(await self._redis.zrangebyscore(keys.STATELESS_DUE, "-inf", _now_ms(), start=0, num=limit))

    async def recheck_in(self, thread_id: str, delay_ms: int) -> None:
        await self._redis.zadd(keys.STATELESS_DUE, {thread_id: _now_ms() + delay_ms})

    async def forget(self, thread_id: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(keys.STATELESS_DUE, thread_id)
        pipe.delete(keys.stateless_hold(thread_id))
        await pipe.execute()
