"""EventLog: each task's ordered, replayable event log, one Redis Stream per task."""

from __future__ import annotations

import re
from typing import Any

from redis.asyncio import Redis

from redis_persist.core.payload import load_json
from redis_persist.store import keys


def _decode(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    return {"id": entry_id, **load_json(fields["e"])}


MAX_ID_PART = 2**64 - 1
LAST_POSSIBLE_ID = f"{MAX_ID_PART}-{MAX_ID_PART}"
_EVENT_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")


def is_valid_event_id(value: str) -> bool:
    """Whether `value` is a stream entry id Redis accepts: `ms-seq` or `ms`, each an unsigned 64-bit int."""
    match = _EVENT_ID.fullmatch(value)
    return match is not None and all(int(part) <= MAX_ID_PART for part in match.groups() if part is not None)


class EventLog:
    """Reads a task's events; appends happen inside the task scripts, atomically with status."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def read(self, task_id: str, after: str | None = None, count: int = 1000) -> list[dict[str, Any]]:
        """Events with an id greater than `after` (all when None), oldest first."""
        if after == LAST_POSSIBLE_ID:  # nothing can follow it, and Redis rejects it as an exclusive start
            return []
        start = f"({after}" if after else "-"
        entries = await self._redis.xrange(keys.events(task_id), min=start, max="+", count=count)
        return [_decode(entry_id, fields) for entry_id, fields in entries]

    async def wait(self, task_id: str, after: str, block_ms: int) -> list[dict[str, Any]]:
        """Block up to `block_ms` for events after `after` ("0" for all); [] on timeout."""
        reply = await self._redis.xread({keys.events(task_id): after}, block=block_ms, count=500)
        return [_decode(entry_id, fields) for _, entries in reply for entry_id, fields in entries]
