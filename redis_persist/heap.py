"""The cyclic garbage collector of a replica process, set for a long-lived service's heap."""

from __future__ import annotations

import gc

# Allocations (net of frees) between young collections; Python's default is 700. A full collection is
# considered after every 10 x 10 young ones, so this also sets how often the whole heap is walked.
YOUNG_COLLECTION_THRESHOLD = 7_000


def tune_gc_after_startup() -> None:
    """Collect once, freeze what is alive, and collect the young generation ten times less often.

    - Freeze: a replica process holds ~175,000 GC-tracked objects once LangGraph, FastAPI, redis-py and the
      graphs are loaded, alive as long as the process. A full collection walked them all: 100-140 ms in an
      API process, up to ~325 ms in a worker, pausing every request and node in flight. Frozen, they are no
      longer walked; reference counting still frees them.
    - Threshold: with thousands of tasks in flight a worker's own heap is large (each task's frames, state
      and checkpoints) and with the default threshold a full collection (~0.5 s there) ran every ~3.5 s:
      102 of them, 53 CPU-s, in one 10,000-task run; 6 with this threshold (README, Performance).

    Call once, after startup, from a process's own entry point; not from tests that start many apps in one
    process (what they build would never be walked again).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
