"""Storage faults: tell Redis trouble apart from a graph's own errors, count it, and pace the retries.

A storage fault (Redis unreachable, out of memory, read-only, loading...) is never the graph's fault:
the runner keeps the task's lease and tries again from the last checkpoint instead of failing it.
"""

from __future__ import annotations

import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

from redis.exceptions import RedisError

FIRST_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 10.0
# Code whose OSError is a storage fault; the same error raised by a graph's own code is the graph's.
_STORAGE_CODE = ("/redis/", "/redisvl/", "/langgraph/checkpoint/redis/", "/redis_persist/store/")


def _raised_in_storage_code(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return any(marker in frame.filename for frame in frames for marker in _STORAGE_CODE)


def storage_fault(error: BaseException) -> BaseException | None:
    """The Redis failure behind `error` — itself or one it wraps (`__cause__`/`__context__`) — else None.

    redisvl raises RedisVLError / RedisSearchError `from` the redis error; the saver lets both through.
    A bare OSError counts only when raised inside the Redis client or the saver.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, RedisError):
            return current
        if isinstance(current, OSError) and _raised_in_storage_code(current):
            return current
        pending += [current.__context__, current.__cause__]
    return None


@dataclass
class StorageFaultCounter:
    """Storage faults this process met while running tasks, by operation (exposed at /metrics)."""

    by_operation: Counter[str] = field(default_factory=Counter)

    def count(self, operation: str) -> None:
        self.by_operation[operation] += 1


@dataclass
class StorageOutage:
    """One task's current run of storage faults: backoff pacing and what its `storage_error` event says."""

    counter: StorageFaultCounter
    delay_seconds: float = FIRST_DELAY_SECONDS
    retries: int = 0
    first_error: str = ""
    operation: str = ""
    started_at: float | None = None
    is_reported: bool = True

    def fault(self, error: BaseException, operation: str) -> float:
        """Note a fault; returns how long to wait before trying again (exponential, capped, jittered)."""
        self.counter.count(operation)
        if self.started_at is None:
            self.started_at = time.monotonic()
            self.first_error = f"{type(error).__name__}: {error}"
            self.operation = operation
            self.is_reported = False
        self.retries += 1
        delay = self.delay_seconds * random.uniform(0.8, 1.2)
        self.delay_seconds = min(self.delay_seconds * 2, MAX_DELAY_SECONDS)
        return delay

    def event_fields(self) -> dict[str, object]:
        """What the `storage_error` event of this outage says."""
        waited = time.monotonic() - self.started_at if self.started_at is not None else 0.0
        return {"error": self.first_error, "operation": self.operation, "retries": self.retries,
                "waited_seconds": round(waited, 2)}

    def reported(self) -> None:
        """The event is written: the outage is over as far as writes go."""
        self.is_reported = True
        self.started_at = None
        self.retries = 0

    def progressed(self) -> None:
        """The graph got past a checkpoint again: the next fault starts from the shortest wait."""
        self.delay_seconds = FIRST_DELAY_SECONDS
