"""Startup migration of key names: per-id keys move from `rp:task:ID` to `rp:task:{ID}` (hash tags).

A database written before hash tags keeps its tasks, events, leases, threads, run streams and webhook
deliveries under the old names. Before anything reads them, the first replica to start renames every
such key (RENAMENX keeps its value and TTL) and then writes the schema marker; replicas starting at the
same time wait for it under a short lock. Indexes, streams and sets hold ids, not key names: untouched.
Interrupted half way, the next start renames the rest (a renamed key no longer matches the old name).
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis

from redis_persist.store import keys

log = logging.getLogger(__name__)
SCHEMA_VERSION = "2"  # 1 (no marker): per-id keys were prefix + id; 2: prefix + {id}
LOCK_TTL_SECONDS = 30  # renewed while renaming; a migrating replica that dies frees it this soon


def _old_style_id(prefix: str, name: str) -> str | None:
    """The store id of a key still named the old way (prefix + id), or None if it is tagged already."""
    store_id = name[len(prefix):]
    # API ids cannot contain braces, so an old name never looks like `prefix{...}`.
    return None if store_id.startswith("{") and store_id.endswith("}") else store_id


async def migrate_key_names(redis: Redis, wait_seconds: float = 120) -> int:
    """Rename old per-id keys to their hash-tagged names once per database; returns how many were renamed.

    `redis` must decode responses. Safe to run from every replica at start and to run again.
    """
    if await redis.get(keys.SCHEMA) == SCHEMA_VERSION:
        return 0
    lock = redis.lock(keys.SCHEMA_LOCK, timeout=LOCK_TTL_SECONDS, blocking_timeout=wait_seconds)
    if not await lock.acquire():
        raise TimeoutError(f"another replica held {keys.SCHEMA_LOCK} for {wait_seconds} s: key names not migrated")
    try:
        if await redis.get(keys.SCHEMA) == SCHEMA_VERSION:  # another replica finished while we waited
            return 0
        started = renewed = time.monotonic()
        renamed = 0
        for prefix in keys.PER_ID_PREFIXES:
            async for name in redis.scan_iter(match=f"{prefix}*", count=1000):
                if time.monotonic() - renewed > LOCK_TTL_SECONDS / 3:  # a large database takes a while
                    await lock.reacquire()
                    renewed = time.monotonic()
                store_id = _old_style_id(prefix, name)
                if store_id is None:
                    continue
                if await redis.renamenx(name, keys.tagged(prefix, store_id)):
                    renamed += 1
                elif await redis.exists(name):
                    # Both names exist: something wrote the new name meanwhile (an old replica still running
                    # writes the old one). Keep both and say so rather than overwrite either.
                    log.warning("key exists under its old and its new name; old one kept",
                                extra={"key": name, "task_id": store_id})
        await redis.set(keys.SCHEMA, SCHEMA_VERSION)
        log.info("key names migrated to hash tags",
                 extra={"renamed": renamed, "seconds": round(time.monotonic() - started, 3)})
        return renamed
    finally:
        await lock.release()
