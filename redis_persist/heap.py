"""The process's long-lived heap, taken out of the cyclic garbage collector's full collections."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once, then move every object alive now into the GC's permanent generation.

    A replica process holds ~175,000 GC-tracked objects once LangGraph, FastAPI, redis-py and the graphs
    are loaded; they live as long as the process. Python's full collection walks all of them: ~100-140 ms on
    this 2-core box, several times a minute under load (each request or node leaves a few survivors, and a
    full collection runs when those reach a quarter of the heap). Every request and node in flight waits out
    that pause. Frozen, they are no longer walked; objects created later are collected as before, and
    reference counting still frees frozen ones. Call once, after startup, from a process's own entry point
    (not from tests that start many apps in one process: what they build would never be walked again).
    """
    gc.collect()
    gc.freeze()
