"""AccessControl: resolves a presented API key to a Caller, manages keys, counts requests per key."""

from __future__ import annotations

import hmac
import re
import time

from redis_persist.core.auth import (
    DEFAULT_TENANT,
    TENANT_PATTERN,
    Caller,
    Role,
    make_key,
    parse_key,
    secret_matches,
)
from redis_persist.core.errors import InvalidRequest
from redis_persist.store.apikeys import ApiKeyStore, KeyRecord

BOOTSTRAP_KEY_ID = "bootstrap-admin"
RATE_WINDOW_SECONDS = 60
CACHE_LIMIT = 10_000


class AccessControl:
    """Keys live in Redis as salted hashes; lookups are cached briefly so a revocation is seen within
    `cache_seconds` by every replica (kept well under the promised 5 s)."""

    def __init__(
        self,
        keys: ApiKeyStore,
        admin_key: str | None,
        cache_seconds: float = 2.0,
        requests_per_minute: int = 0,
    ) -> None:
        self._keys = keys
        self._admin_key = admin_key
        self._cache_seconds = cache_seconds
        self._requests_per_minute = requests_per_minute
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}

    async def authenticate(self, presented: str) -> Caller | None:
        """The caller a key stands for, or None if the key is unknown, revoked or wrong."""
        if self._admin_key and hmac.compare_digest(presented.encode(), self._admin_key.encode()):
            return Caller(BOOTSTRAP_KEY_ID, DEFAULT_TENANT, Role.ADMIN, all_tenants=True)
        parsed = parse_key(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        record = await self._lookup(key_id)
        if record is None or not secret_matches(record.salt, secret, record.secret_hash):
            return None
        return Caller(key_id, record.tenant, record.role, all_tenants=record.role >= Role.ADMIN)

    async def _lookup(self, key_id: str) -> KeyRecord | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self._keys.get(key_id)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()  # random ids from a scanner must not grow memory without bound
        self._cache[key_id] = (now + self._cache_seconds, record)
        return record

    async def create_key(self, tenant: str, role: str) -> tuple[KeyRecord, str]:
        """A new key for `tenant` with `role`; returns (record, the key itself — shown only now)."""
        if not re.match(TENANT_PATTERN, tenant):
            raise InvalidRequest(f"Invalid tenant {tenant!r}: expected {TENANT_PATTERN}")
        try:
            parsed_role = Role.parse(role)
        except ValueError as error:
            raise InvalidRequest(str(error)) from None
        new = make_key()
        record = await self._keys.add(new.key_id, tenant, parsed_role, new.salt, new.secret_hash)
        return record, new.key

    async def list_keys(self) -> list[KeyRecord]:
        """Every key (records only; secrets are never stored)."""
        return await self._keys.all()

    async def revoke_key(self, key_id: str) -> bool:
        """Revoke a key; returns whether it existed. Other replicas refuse it once their cache entry ends."""
        self._cache.pop(key_id, None)
        return await self._keys.remove(key_id)

    async def retry_after(self, caller: Caller) -> float | None:
        """Seconds to wait if the caller's key is over its request rate, else None."""
        if not self._requests_per_minute or caller.key_id is None:
            return None
        count, seconds_left = await self._keys.count_request(caller.key_id, RATE_WINDOW_SECONDS)
        return seconds_left if count > self._requests_per_minute else None
