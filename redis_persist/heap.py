"""The cyclic garbage collector of a replica process, set for a long-lived service's heap."""

from __future__ import annotations

import gc

# Allocations (net of frees) between young collections; Python's default is 700.
YOUNG_COLLECTION_THRESHOLD = 7_000
# Middle-generation collections before a full one is considered; Python's default is 10. Python also waits
# until the objects that survived into the old generation since the last full collection are 25 % of the
# ones it holds, so while a heap grows (thousands of tasks starting) that rule alone gave a full collection
# at every 25 % of growth, each longer than the last.
OLD_COLLECTION_THRESHOLD = 100


def tune_gc_after_startup() -> None:
    """Collect once, freeze what is alive, collect the young generation ten times less often and the whole
    heap at most a tenth as often.

    - Freeze: a replica process holds ~175,000 GC-tracked objects once LangGraph, FastAPI, redis-py and the
      graphs are loaded, alive as long as the process. A full collection walked them all: 100-140 ms in an
      API process, up to ~325 ms in a worker, pausing every request and node in flight. Frozen, they are no
      longer walked; reference counting still frees them.
    - Threshold: with thousands of tasks in flight a worker's own heap is large (each task's frames, state
      and checkpoints) and with the default threshold a full collection (~0.5 s there) ran every ~3.5 s:
      102 of them, 53 CPU-s, in one 10,000-task run; 6 with this threshold (README, Performance).
    - Old threshold: in the same run on a faster machine, each child still ran 7-8 full collections as its
      heap grew to ~450 MB, the last ones 1.1-1.7 s each; with 100, one of ~0.07 s. Garbage that reference
      counting cannot free (cycles) and that lived long enough to reach the old generation waits longer.
      Peak RSS did not grow in that run (README, "Full collections while the heap grows").

    Call once, after startup, from a process's own entry point; not from tests that start many apps in one
    process (what they build would never be walked again).
    """
    gc.collect()
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, OLD_COLLECTION_THRESHOLD)
