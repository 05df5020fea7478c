"""The cyclic garbage collector of a replica process, set for a long-lived service's heap."""

from __future__ import annotations

import gc
import sys
import threading
import time

# Allocations (net of frees) between young collections the interpreter starts itself; Python's default is 700.
# With the collector below running, these are the exception (a burst between two of its collections).
YOUNG_COLLECTION_THRESHOLD = 7_000
# The interpreter never starts a full collection itself: the collector below does, when the heap has grown.
NO_AUTOMATIC_FULL_COLLECTION = 2**31 - 1
# How often the collector walks the young and middle generations.
COLLECTION_INTERVAL_SECONDS = 0.05
# A full collection once the heap (allocated blocks) has grown this much since the last one, and no sooner than
# this after it (or after startup).
HEAP_GROWTH_FOR_FULL_COLLECTION = 1.5
SECONDS_BETWEEN_FULL_COLLECTIONS = 300.0
# Counting the heap's blocks visits every memory pool (~0.5 ms for 1 GB): once a second, not at every collection.
HEAP_CHECK_EVERY = 20


class TimedCollector:
    """Collects the young and middle generations every COLLECTION_INTERVAL_SECONDS, from its own thread, and the
    whole heap when it has grown by half since the last full collection (at most every 5 minutes).

    Python starts a young collection after 700 (here 7,000) allocations net of frees. With thousands of tasks
    waiting, a node boundary frees about what it allocates (the previous step's state), so the count crawls while
    the young generation fills with every boundary's new state: young collections of 40-90 ms and middle ones of
    up to 400 ms, pausing every task in the process (bench/README.md, "Young collections on a timer"). On a
    timer, each walks what 50 ms allocated: a few ms at most. Young and middle go together, so a surviving object
    is walked once, not twice, before it reaches the old generation; it is then freed by reference counting when
    its task moves on. Only garbage in cycles waits for a full collection, which walks the whole heap: with 5,000
    tasks starting in a process, 0.25 s once its heap had doubled and 0.75 s once it had doubled again, each
    finding almost nothing (Python's own rule, the old generation grown by 25 %, gives one at every quarter of
    growth). Here one runs when the heap has grown by half since the last, and at most every 5 minutes: garbage
    in cycles can grow the heap by half, or by what 5 minutes make, before it is freed.

    A thread, not a task on the event loop: it collects even while a node holds the loop.
    """

    def __init__(self, interval: float = COLLECTION_INTERVAL_SECONDS, growth: float = HEAP_GROWTH_FOR_FULL_COLLECTION,
                 full_every: float = SECONDS_BETWEEN_FULL_COLLECTIONS) -> None:
        self._interval = interval
        self._growth = growth
        self._full_every = full_every
        self.ticks = 0  # timed collections so far
        self.full_collections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gc-collector", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        heap_after_full, full_at = sys.getallocatedblocks(), time.monotonic()
        while not self._stop.wait(self._interval):
            gc.collect(1)
            self.ticks += 1
            if (self.ticks % HEAP_CHECK_EVERY == 0 and time.monotonic() - full_at >= self._full_every
                    and sys.getallocatedblocks() > self._growth * heap_after_full):
                gc.collect()
                self.full_collections += 1
                heap_after_full, full_at = sys.getallocatedblocks(), time.monotonic()


def tune_gc_after_startup() -> TimedCollector:
    """Collect once, freeze what is alive, and leave the collections to a TimedCollector (started, returned: stop
    it at shutdown).

    - Freeze: a replica process holds ~175,000 GC-tracked objects once LangGraph, FastAPI, redis-py and the
      graphs are loaded, alive as long as the process. A full collection walked them all: 100-140 ms in an
      API process, up to ~325 ms in a worker, pausing every request and node in flight. Frozen, they are no
      longer walked; reference counting still frees them.
    - Collections on a timer, full ones when the heap has grown by half: see TimedCollector. The interpreter's own
      young collections stay, rarer (YOUNG_COLLECTION_THRESHOLD), for bursts between two timed ones.

    Call once, after startup, from a process's own entry point; not from tests that start many apps in one
    process (what they build would never be walked again).
    """
    gc.collect()
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, NO_AUTOMATIC_FULL_COLLECTION)
    collector = TimedCollector()
    collector.start()
    return collector
