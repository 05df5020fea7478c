"""Where one `redis-persist serve` spends its CPU while running 100 data_pipeline tasks at once (step 0).

    .venv/bin/pip install py-spy   # once
    .venv/bin/python bench/profile_service.py [--rounds 3]

py-spy samples the service process (100 Hz; it pauses the process for each sample) while bench_tasks' 100-concurrent round runs
`--rounds` times; prints the share of samples by top-level activity and the hottest functions, and keeps
the collapsed stacks in bench/results/profile_service.collapsed (load into speedscope.app or flamegraph.pl).
Writes bench/results/profile_service.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from _common import RESULTS_DIR, embedded_redis, exit_on_sigterm, run, write_result
from bench_tasks import service_round
from redis_persist.testing import ServiceProcess

# What a sample is spent on: the innermost frame of the stack that matches one of these (first match wins
# within a frame). E.g. redis-py code under FencedRedisSaver.aput counts as the checkpoint saver.
CATEGORIES = [
    ("lease keeper thread", ("redis_persist/store/leases.py",)),
    ("checkpoint saver (langgraph-checkpoint-redis, redisvl, our lease check)",
     ("AsyncRedisSaver", "FencedRedisSaver", "JsonPlusRedisSerializer", "redisvl/", "AsyncSearchIndex")),
    ("our task store: Lua scripts record/claim/create/act", ("redis_persist/store/",)),
    ("task runner (our loop over astream)", ("redis_persist/engine/runner.py",)),
    ("graph execution (LangGraph Pregel, nodes)", ("pregel/", "langgraph/", "redis_persist/examples/")),
    ("worker claim/sweep/control loops", ("redis_persist/engine/worker.py",)),
    ("SSE / WebSocket event streams", ("redis_persist/api/live.py",)),
    ("REST handlers + control", ("redis_persist/api/", "redis_persist/engine/control.py")),
    ("HTTP server (uvicorn, starlette, fastapi)", ("uvicorn/", "starlette/", "fastapi/", "httptools")),
    ("logging", ("logging/", "redis_persist/logs.py")),
]
MARKERS = {
    "redis-py (commands, pool, parsing, sockets)": ("redis/asyncio/", "redis/_parsers/", "redis/event.py",
                                                    "redis/utils.py", "redis/commands/", "redis/client.py"),
    "socket writes (StreamWriter.writelines)": ("StreamWriter.writelines",),
    "BlockingConnectionPool.get_connection/release": ("BlockingConnectionPool.", "ConnectionPool.release"),
    "serialisation (JsonPlusRedisSerializer, json)": ("json",),
}


# Functions whose inclusive share (samples with the function anywhere on the stack) is reported.
WATCHED = [
    "FencedRedisSaver.aput", "FencedRedisSaver.aput_writes", "FencedRedisSaver._check_lease",
    "AsyncRedisSaver.aget_tuple", "TaskStore.record", "TaskStore.create",
    "TaskStore.get", "TaskStore.claim", "TaskStore.act", "TaskControl.execute", "EventLog.wait",
    "Pregel.astream", "BlockingConnectionPool.get_connection", "BlockingConnectionPool.release",
    "LeaseKeeper._run",
]


def bucket(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, markers in CATEGORIES:
            if any(marker in frame for marker in markers):
                return name
    return "event loop itself (callbacks with no owner on the stack)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    exit_on_sigterm()
    raw = RESULTS_DIR / "profile_service.collapsed"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    tag = os.urandom(2).hex()
    with embedded_redis("profile") as redis:
        service = ServiceProcess(redis.url, name="bench-profile")
        spy = None
        try:
            service.start()
            pids = {"service": service.pid, "redis": redis.pid}
            run(service_round(service.url, 10, 0.0, f"warm-{tag}", pids))
            spy = subprocess.Popen([py_spy, "record", "-p", str(service.pid), "-r", "100",
                                    "-f", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            rounds = [run(service_round(service.url, 100, 0.0, f"p{n}-{tag}", pids)) for n in range(args.rounds)]
        finally:
            if spy is not None and spy.poll() is None:
                spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
                try:
                    spy.wait(30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait()
            service.stop()
            service.log_path.unlink(missing_ok=True)
    buckets: Counter[str] = Counter()
    leaf_files: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    watched: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        count = int(count_text)
        stack = stack_text.split(";")
        total += count
        buckets[bucket(stack)] += count
        for frame in set(stack):
            inclusive[frame] += count
        for name in {frame.split(" (")[0] for frame in stack} & set(WATCHED):
            watched[name] += count
        self_time[stack[-1]] += count
        for name, marker in MARKERS.items():
            if any(m in frame for frame in stack for m in marker):
                leaf_files[name] += count
    share = lambda n: round(100.0 * n / total, 1)  # noqa: E731
    result = {
        "benchmark": "profile_service",
        "rounds": [{k: r[k] for k in ("completed_tasks_per_s", "wall_s", "cpu")} for r in rounds],
        "samples": total,
        "by_activity_pct": {k: share(v) for k, v in buckets.most_common()},
        "stacks_touching_pct": {k: share(v) for k, v in leaf_files.most_common()},
        "watched_inclusive_pct": {k: share(watched[k]) for k in WATCHED},
        "top_self_pct": {k: share(v) for k, v in self_time.most_common(25)},
        "top_inclusive_pct": {k: share(v) for k, v in inclusive.most_common(60)},
    }
    print(f"{total} samples; tasks/s per round: {[r['completed_tasks_per_s'] for r in rounds]}")
    for title, key in (("by activity (innermost owner on the stack)", "by_activity_pct"),
                       ("stacks touching", "stacks_touching_pct"),
                       ("functions anywhere on the stack", "watched_inclusive_pct"), ("self", "top_self_pct")):
        print(f"\n{title}:")
        for name, pct in list(result[key].items())[:25]:
            print(f"  {pct:5.1f}%  {name}")
    write_result("profile_service", result)


if __name__ == "__main__":
    main()
