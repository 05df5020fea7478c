"""WebhookQueue: pending webhook deliveries of runs, kept in Redis so any replica delivers them."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from redis_persist.store import keys, thread_scripts


def _now_ms() -> int:
    return int(time.time() * 1000)


class WebhookQueue:
    """One pending delivery per run: armed when the run is created, delivered once the run has ended."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(thread_scripts.CLAIM_WEBHOOKS)

    async def arm(self, run_id: str, url: str, first_check_in_ms: int) -> None:
        """Record that the run's end must be POSTed to `url` (before the run can start)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.webhook(run_id), mapping={"url": url, "attempts": 0})
        pipe.zadd(keys.WEBHOOKS_DUE, {run_id: _now_ms() + first_check_in_ms})
        await pipe.execute()

    async def due_now(self, run_id: str) -> None:
        """The run has ended: try its delivery at once (if one is armed)."""
        if await self._redis.exists(keys.webhook(run_id)):
            await self._redis.zadd(keys.WEBHOOKS_DUE, {run_id: _now_ms()})

    async def claim_due(self, hold_ms: int, limit: int) -> list[tuple[str, str, int]]:
        """(run id, url, attempt number) of deliveries due now; each is held `hold_ms` from other replicas."""
        now = _now_ms()
        due = await self._redis.zrangebyscore(keys.WEBHOOKS_DUE, "-inf", now, start=0, num=limit)
        if not due:
            return []
        reply = await self._claim(keys=keys.for_claim_webhooks(due), args=[now, hold_ms, *due])
        return [(reply[i], reply[i + 1], int(reply[i + 2])) for i in range(0, len(reply), 3)]

    async def retry_in(self, run_id: str, delay_ms: int) -> None:
        await self._redis.zadd(keys.WEBHOOKS_DUE, {run_id: _now_ms() + delay_ms})

    async def recheck_in(self, run_id: str, delay_ms: int) -> None:
        """The run has not ended yet: look again later without counting an attempt."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hincrby(keys.webhook(run_id), "attempts", -1)
        pipe.zadd(keys.WEBHOOKS_DUE, {run_id: _now_ms() + delay_ms})
        await pipe.execute()

    async def is_pending(self, run_id: str) -> bool:
        """Whether the run's webhook is still to be delivered."""
        return bool(await self._redis.exists(keys.webhook(run_id)))

    async def done(self, run_id: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(keys.webhook(run_id))
        pipe.zrem(keys.WEBHOOKS_DUE, run_id)
        await pipe.execute()
