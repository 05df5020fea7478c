"""Many waiting tasks: N tasks in flight on one replica whose nodes each `await asyncio.sleep(S)`.

    .venv/bin/python bench/bench_waiting.py [--tasks 10000] [--sleep 10] [--workers 1] [--raw-client [--spread S]]
        [--gc-probe] [--redis-config NAME=VALUE] [--search-config NAME=VALUE] [--restart-redis]

The shape of LLM-bound agents: almost all time is spent awaiting. One replica (REDIS_PERSIST_MAX_TASKS =
N, so every task runs at once), `data_pipeline` (4 nodes) with `step_seconds` = S, created 100 requests
in flight at a time. Reports: completed / failed, the node-boundary overhead (from a node's `node_completed`
event to the next node's, minus the S the next node sleeps: its pending writes, checkpoint and record, and
the wait for the event loop on both sides of it; from the event stream ids, which are Redis server times in
ms) over every task, and apart for each boundary (node 1 -> 2, 2 -> 3, 3 -> 4) and by when the slow ones
(> 100 ms) happened (in seconds since the first node ended); the Redis's forks (AOF rewrites and RediSearch's
fork GC) and, with --restart-redis, how long it then takes to restart; the service's peak RSS (all its processes, sampled every 0.5 s) and the time until the
last task completed. Writes bench/results/bench_waiting.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import redis
from _common import (
    RawConnection,
    add_replica_options,
    async_client,
    create_task,
    create_task_raw,
    embedded_redis,
    finish_machine_info,
    machine_info,
    replica_layout,
    replica_settings,
    replica_suffix,
    run,
    summary_ms,
    write_result,
)

from redis_persist.store import keys
from redis_persist.testing import ServiceProcess

GC_PROBE = Path(__file__).resolve().parent / "gc_probe"


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the supervisor's worker processes)."""
    total = 0
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except FileNotFoundError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total


async def create_all(base_url: str, ids: list[str], sleep: float, raw_client: bool, spread: float = 0) -> float:
    """Create every task (100 at a time); with `spread` > 0, the i-th no sooner than i * spread / N seconds in."""
    started = time.perf_counter()
    if raw_client:
        pending = enumerate(ids)

        async def creator() -> None:
            async with RawConnection(base_url) as connection:
                for index, task_id in pending:
                    if (wait := started + index * spread / len(ids) - time.perf_counter()) > 0:
                        await asyncio.sleep(wait)
                    await create_task_raw(connection, task_id, "data_pipeline", {"step_seconds": sleep})
        await asyncio.gather(*(creator() for _ in range(100)))
        return time.perf_counter() - started
    semaphore = asyncio.Semaphore(100)
    async with async_client(base_url) as client:
        async def one(task_id: str) -> None:
            async with semaphore:
                await create_task(client, task_id, "data_pipeline", {"step_seconds": sleep})
        await asyncio.gather(*(one(t) for t in ids))
    return time.perf_counter() - started


def boundary_gaps(client: redis.Redis, task_id: str, sleep: float) -> list[tuple[float, float]]:
    """(when, seconds) for each node beyond the first: how long it took beyond its `sleep`, from the previous
    node's completion to its own (`when`, server time), read from the task's event stream. (Not
    `node_completed` -> `node_started`: the runner writes a node's start with the checkpoint before it, in one
    call, so those two share a timestamp.)"""
    gaps, completed_at = [], None
    for entry_id, fields in client.xrange(keys.events(task_id)):
        event = json.loads(fields["e"])
        if event["type"] == "node_completed":
            at = int(entry_id.split("-")[0]) / 1000
            if completed_at is not None:
                gaps.append((at, at - completed_at - sleep))
            completed_at = at
    return gaps


def tail_by_time(gaps: list[tuple[float, float]], over: float = 0.1, bucket: float = 1.0) -> dict[str, int]:
    """How many gaps over `over` seconds ended in each `bucket`-second window since the first node ended:
    whether the tail comes from the run's start (tasks still starting) or from every wave."""
    if not gaps:
        return {}
    first = min(at for at, _ in gaps)
    windows = Counter(int((at - first) // bucket * bucket) for at, gap in gaps if gap > over)
    return {f"{start}-{start + int(bucket)}s": count for start, count in sorted(windows.items())}


def gc_pauses(probe_dir: str) -> list[dict]:
    """What bench/gc_probe recorded in the replica's `serve` and `worker` processes once started (not in its
    supervisor or the graph check it runs first), rounded."""
    found = []
    for path in sorted(Path(probe_dir).glob("gc_*.json")):
        record = json.loads(path.read_text())
        if record["argv"][0].endswith("supervise.py") or not {"serve", "worker"} & set(record["argv"]):
            continue  # the supervisor, or the graph check
        found.append({"process": " ".join(record["argv"][:3]), **{f"generation_{generation}": {
            "collections": one["collections"], "total_s": round(one["total_s"], 2),
            "max_ms": round(one["max_ms"], 1), "over_20ms": one["over_20ms"]}
            for generation, one in record["generations"].items()}})
    shutil.rmtree(probe_dir, ignore_errors=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--sleep", type=float, default=10.0)
    add_replica_options(parser, workers=1)
    parser.add_argument("--raw-client", action="store_true",
                        help="create over kept raw HTTP/1.1 connections (bench/_common.RawConnection) instead of "
                             "httpx, whose ~2-4 ms of CPU per request competes with the replica for the cores")
    parser.add_argument("--gc-probe", action="store_true",
                        help="time the garbage collector's pauses in the replica's processes (bench/gc_probe) and "
                             "report them per process")
    parser.add_argument("--spread", type=float, default=0.0, metavar="SECONDS",
                        help="with --raw-client: create at an even pace over this long (e.g. one node's sleep, so "
                             "node boundaries arrive evenly instead of in waves); 0: as fast as the replica answers")
    parser.add_argument("--redis-config", action="append", default=[], metavar="NAME=VALUE",
                        help="CONFIG SET on the benchmark's Redis before the replica starts (repeatable), e.g. "
                             "auto-aof-rewrite-percentage=0")
    parser.add_argument("--search-config", action="append", default=[], metavar="NAME=VALUE",
                        help="FT.CONFIG SET on the benchmark's Redis before the replica starts (repeatable), e.g. "
                             "FORK_GC_RUN_INTERVAL=300")
    parser.add_argument("--restart-redis", action="store_true",
                        help="after the run, restart the Redis and report how long it took to load its AOF")
    args = parser.parse_args()
    if args.spread and not args.raw_client:
        parser.error("--spread needs --raw-client")
    info = machine_info()
    ids = [uuid.uuid4().hex for _ in range(args.tasks)]
    with embedded_redis("waiting") as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        for setting in args.redis_config:
            client.config_set(*setting.split("=", 1))
        for setting in args.search_config:
            client.execute_command("FT.CONFIG", "SET", *setting.split("=", 1))
        env = {"REDIS_PERSIST_MAX_TASKS": str(args.tasks), "REDIS_PERSIST_EVENTS_MAX_PER_TASK": "100",
               **replica_settings(args)}
        probe_dir = tempfile.mkdtemp(prefix="gc-probe-") if args.gc_probe else None
        if probe_dir:
            env |= {"GC_PROBE_DIR": probe_dir, "PYTHONPATH": os.pathsep.join(
                [str(GC_PROBE), *filter(None, [os.environ.get("PYTHONPATH")])])}
        service = ServiceProcess(server.url, env=env, name="api-1", args=replica_layout(args))
        service.start()
        peak = {"rss_kib": 0}
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.5):
                peak["rss_kib"] = max(peak["rss_kib"], rss_kib(service.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        try:
            create_seconds = run(create_all(service.url, ids, args.sleep, args.raw_client, args.spread))
            deadline = time.monotonic() + args.sleep * 4 * 20 + 600
            while time.monotonic() < deadline:
                done = client.zcard(keys.status_index("completed"))
                failed = client.zcard(keys.status_index("failed"))
                if done + failed >= args.tasks:
                    break
                time.sleep(1)
            all_done = time.perf_counter() - started
            redis_info = {**client.info("persistence"), **client.info("stats"), **client.info("memory")}
            redis_at_end = {name: redis_info.get(name) for name in (
                "total_forks", "latest_fork_usec", "aof_rewrites", "aof_current_size", "used_memory_rss")}
            # With --redis-config latency-monitor-threshold=MS: Redis's own slow events (fork, aof-write, command...)
            redis_at_end["latency_latest"] = client.execute_command("LATENCY", "LATEST")
        finally:
            sampling.set()
            sampler.join()
            service.stop()
        by_task = [boundary_gaps(client, task_id, args.sleep) for task_id in ids]
        client.close()
        if args.restart_redis:  # what a Redis restart now costs: loading the AOF the run left
            server.stop()
            restart_started = time.perf_counter()
            server.start(timeout_seconds=600)
            redis_at_end["restart_s"] = round(time.perf_counter() - restart_started, 1)
    result = {
        "tasks": args.tasks, "node_sleep_s": args.sleep, "workers": args.workers,
        "api_processes": args.api_processes, "settings": args.env, "redis_config": args.redis_config,
        "search_config": args.search_config,
        "raw_client": args.raw_client,
        "spread_s": args.spread,
        "completed": done, "failed": failed, "create_all_s": round(create_seconds, 1),
        "last_completed_after_s": round(all_done, 1),
        "ideal_s": args.sleep * 4,
        "node_boundary_overhead": summary_ms([gap for gaps in by_task for _, gap in gaps]),
        "node_boundary_overhead_by_boundary": {
            f"{k}->{k + 1}": summary_ms([gaps[k - 1][1] for gaps in by_task if len(gaps) >= k]) for k in (1, 2, 3)},
        "boundaries_over_100ms_by_time": tail_by_time([gap for gaps in by_task for gap in gaps]),
        "peak_rss_mib": round(peak["rss_kib"] / 1024, 1),
        "redis_at_end": redis_at_end,
        **({"gc_pauses": gc_pauses(probe_dir)} if probe_dir else {}),
        "machine": finish_machine_info(info),
    }
    print(json.dumps(result, indent=2))
    # Named without the layout for the default one process, as its earlier results were.
    suffix = replica_suffix(args) if args.api_processes or args.workers != 1 else args.label
    write_result(f"bench_waiting_{args.tasks}{suffix}", result)


if __name__ == "__main__":
    main()
