"""A probe of the garbage collector's pauses, for benchmarks: put this directory first on a service's PYTHONPATH
and set GC_PROBE_DIR; each Python process started so then times every collection (gc.callbacks) once it has
frozen its startup heap (a `serve` process, once started), and writes, once a second and at exit,
GC_PROBE_DIR/gc_<pid>.json: its command line and, per generation, the collections, their
total and longest time, and how many took over 20 ms. Not part of the service: `bench_waiting.py --gc-probe`."""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import threading
import time

_DIR = os.environ.get("GC_PROBE_DIR")


def _install(directory: str) -> None:
    stats = {generation: {"collections": 0, "total_s": 0.0, "max_ms": 0.0, "over_20ms": 0} for generation in range(3)}
    started: list[float] = [0.0]
    frozen = [False]

    def on_collection(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        if not frozen[0]:  # still starting: heap.tune_gc_after_startup freezes the startup heap
            # (asked until it has: get_freeze_count walks the whole frozen list, ~15 ms in a `serve` process)
            frozen[0] = gc.get_freeze_count() > 0
            if not frozen[0]:
                return
        one = stats[info["generation"]]
        one["collections"] += 1
        one["total_s"] += took
        one["max_ms"] = max(one["max_ms"], took * 1000)
        one["over_20ms"] += took > 0.02

    def write() -> None:
        path = os.path.join(directory, f"gc_{os.getpid()}.json")
        with open(path + ".tmp", "w") as out:
            json.dump({"argv": sys.argv, "generations": stats}, out)
        os.replace(path + ".tmp", path)

    def keep_writing() -> None:
        while True:
            time.sleep(1)
            write()

    gc.callbacks.append(on_collection)
    atexit.register(write)
    threading.Thread(target=keep_writing, name="gc-probe", daemon=True).start()


if _DIR:
    _install(_DIR)
