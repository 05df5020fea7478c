"""ApiKeyStore: API key records (tenant, role, salted hash — never the secret) and per-key request counters."""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from redis_persist.core.auth import Role
from redis_persist.store import keys
from redis_persist.core.events import utc_now


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored API key, as Redis holds it."""

    key_id: str
    tenant: str
    role: Role
    created_at: str
    salt: str
    secret_hash: str

    def public(self) -> dict[str, str]:
        """What listings show: never the salt or hash."""
        return {"id": self.key_id, "tenant": self.tenant, "role": self.role.label, "created_at": self.created_at}


class ApiKeyStore:
    """Create, read, list and revoke key records; count requests per key and window."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def add(self, key_id: str, tenant: str, role: Role, salt: str, secret_hash: str) -> KeyRecord:
        """Store a new key record."""
        record = KeyRecord(key_id, tenant, role, utc_now(), salt, secret_hash)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.api_key(key_id), mapping={
            "tenant": tenant, "role": role.label, "created_at": record.created_at,
            "salt": salt, "secret_hash": secret_hash,
        })
        pipe.zadd(keys.API_KEYS, {key_id: int(time.time() * 1000)})
        await pipe.execute()
        return record

    async def get(self, key_id: str) -> KeyRecord | None:
        """The record, or None if there is no such (or a revoked) key."""
        raw = await self._redis.hgetall(keys.api_key(key_id))
        if not raw:
            return None
        return KeyRecord(key_id, raw["tenant"], Role.parse(raw["role"]), raw["created_at"], raw["salt"],
                         raw["secret_hash"])

    async def all(self) -> list[KeyRecord]:
        """Every key, oldest first."""
        records = []
        for key_id in await self._redis.zrange(keys.API_KEYS, 0, -1):
            record = await self.get(key_id)
            if record is not None:
                records.append(record)
        return records

    async def remove(self, key_id: str) -> bool:
        """Revoke a key; returns whether it existed."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(keys.api_key(key_id))
        pipe.zrem(keys.API_KEYS, key_id)
        deleted, _ = await pipe.execute()
        return bool(deleted)

    async def count_request(self, key_id: str, window_seconds: int) -> tuple[int, float]:
        """Count one request in the key's current fixed window; returns (count so far, seconds left)."""
        now = time.time()
        window = int(now // window_seconds)
        key = keys.rate(key_id, window)
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, window_seconds + 1)
        count, _ = await pipe.execute()
        return int(count), (window + 1) * window_seconds - now
