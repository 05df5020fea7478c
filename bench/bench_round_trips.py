"""Redis commands and round trips per task and per node boundary, split by what they are for.

    .venv/bin/python bench/bench_round_trips.py [--tasks 100] [--label before]

One replica (`--workers 1`) talks to a fresh embedded Redis through a counting proxy (bench/_resp_proxy.py).
It runs N tasks of a chain of async nodes whose bodies only yield (the side-by-side pipeline at node sleep 0),
first with 5 nodes, then with 10: the difference divided by 5 is the exact cost of one node boundary,
free of what a task costs once (create, claim, finish). The benchmark waits for the tasks by reading Redis
directly (not through the proxy, nor the API), so no polling is counted. The lease keeper's renewals and the
worker's idle reads depend on time, not on work: they are listed apart and left out of the per-node figures.
Counts are deterministic for a given code base (a round trip whose pipeline the OS splits may count twice).
Also reports the service's CPU per task (all its processes, not Redis, not the proxy): noisy on a shared
machine, compare only runs made back to back. Writes bench/results/bench_round_trips_<label>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
import uuid
from collections import Counter
from pathlib import Path

import redis
from _common import CpuMeter, async_client, create_task, embedded_redis, finish_machine_info, machine_info, run, write_result
from _resp_proxy import CountingProxy

from redis_persist.embedded import free_port
from redis_persist.engine import saver
from redis_persist.store import keys, scripts, thread_scripts
from redis_persist.testing import ServiceProcess

GRAPH = Path(__file__).with_name("round_trip_graph.py")
BACKGROUND = {"lua:RENEW_LEASES", "queue wait (XREAD)", "connection"}


def _script_names() -> dict[bytes, str]:
    """sha1 of each of our Lua scripts -> its name (EVALSHA carries only the sha)."""
    named = {}
    for module in (scripts, thread_scripts, saver):
        for name, value in vars(module).items():
            if isinstance(value, str) and name.isupper() and ("redis.call" in value):
                named[hashlib.sha1(value.encode()).hexdigest().encode()] = f"lua:{name.lstrip('_')}"
    return named


SCRIPTS = _script_names()
SAVER_PREFIXES = (b"checkpoint", b"write_keys_zset", b"checkpoint_write", b"checkpoint_blob")


def categorise(command: list[bytes]) -> str:
    """What one command is for: lease check, saver write, one of our scripts, events, reads..."""
    name = command[0].upper()
    first_key = command[1] if len(command) > 1 else b""
    if name in (b"EVALSHA", b"EVAL"):
        known = SCRIPTS.get(command[1]) if name == b"EVALSHA" else None
        if known:
            return known
        return "saver script" if len(command) > 3 and command[3].startswith(SAVER_PREFIXES) else "other script"
    if name == b"GET" and first_key.startswith(keys.lease("").encode()):
        return "lease check (GET)"
    if name.startswith((b"JSON.", b"FT.")) or first_key.startswith(SAVER_PREFIXES):
        return f"saver {name.decode().split('.')[0]}"
    if name in (b"PUBLISH", b"SPUBLISH"):
        return "publish"
    if name in (b"XREAD", b"XREADGROUP"):
        return "queue wait (XREAD)"
    if name in (b"XACK", b"XAUTOCLAIM", b"XPENDING", b"XTRIM", b"XINFO", b"XGROUP"):
        return f"queue {name.decode()}"
    if name in (b"CLIENT", b"HELLO", b"SELECT", b"PING", b"INFO", b"SCRIPT", b"SUBSCRIBE", b"PSUBSCRIBE"):
        return "connection"
    if name in (b"HGET", b"HGETALL", b"HMGET") and first_key.startswith(keys.task("").encode()):
        return f"task read {name.decode()}"
    return f"other {name.decode()}"


async def drain(base_url: str, redis_url: str, tasks: int) -> float:
    """Create `tasks` tasks (20 at a time) and wait, reading Redis directly, until all have completed."""
    ids = [uuid.uuid4().hex for _ in range(tasks)]
    started = time.perf_counter()
    semaphore = asyncio.Semaphore(20)
    async with async_client(base_url) as client:
        async def one(task_id: str) -> None:
            async with semaphore:
                await create_task(client, task_id, "chain", {"log": []})
        await asyncio.gather(*(one(t) for t in ids))
    direct = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + 300
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            pipe = direct.pipeline(transaction=False)
            ordered = list(pending)
            for task_id in ordered:
                pipe.hget(keys.task(task_id), "status")
            for task_id, status in zip(ordered, pipe.execute(), strict=True):
                if status == "completed":
                    pending.discard(task_id)
                elif status in ("failed", "cancelled"):
                    raise SystemExit(f"task {task_id} ended {status}")
            await asyncio.sleep(0.05)
        if pending:
            raise SystemExit(f"{len(pending)} tasks did not complete")
    finally:
        direct.close()
    return time.perf_counter() - started


def measure(nodes: int, tasks: int) -> dict:
    with embedded_redis(f"round-trips-{nodes}") as server:
        proxy = CountingProxy(free_port(), ("127.0.0.1", server.port), categorise)
        proxy.start()
        env = {"REDIS_PERSIST_GRAPHS": json.dumps({"chain": f"{GRAPH}:graph"}), "BENCH_NODES": str(nodes)}
        service = ServiceProcess(f"redis://127.0.0.1:{proxy.port}/0", env=env, name="round-trips",
                                 args=["--workers", "1"])
        service.start()
        try:
            run(drain(service.url, server.url, 1))  # indexes, scripts, connections: not counted
            commands_before, trips_before = proxy.snapshot()
            cpu = CpuMeter({"service": service.pid}, with_children=frozenset({"service"}))
            seconds = run(drain(service.url, server.url, tasks))
            service_cpu_s = cpu.stop()["cpu_s"]["service"]
            commands_after, trips_after = proxy.snapshot()
        finally:
            service.stop()
            proxy.stop()
    commands = commands_after - commands_before
    trips = trips_after - trips_before
    return {"nodes": nodes, "tasks": tasks, "seconds": round(seconds, 2),
            "service_cpu_ms_per_task": round(service_cpu_s * 1000 / tasks, 1), "commands": dict(commands),
            "round_trips": dict(trips)}


def _per(counter: dict[str, int], divisor: float) -> dict[str, float]:
    return {k: round(v / divisor, 2) for k, v in sorted(counter.items(), key=lambda kv: -kv[1]) if v}


def _is_background(combo: str) -> bool:
    return all(part in BACKGROUND for part in combo.split("+"))


def summarise(five: dict, ten: dict) -> dict:
    tasks = five["tasks"]
    result: dict = {"service_cpu_ms_per_task": {"5_nodes": five["service_cpu_ms_per_task"],
                                                "10_nodes": ten["service_cpu_ms_per_task"]}}
    for what in ("commands", "round_trips"):
        per_task = {k: v / tasks for k, v in five[what].items() if not _is_background(k)}
        per_task_ten = {k: v / tasks for k, v in ten[what].items() if not _is_background(k)}
        per_node = {k: (per_task_ten.get(k, 0) - per_task.get(k, 0)) / 5 for k in {*per_task, *per_task_ten}}
        result[what] = {
            "per_task_5_nodes": _per(per_task, 1),
            "per_task_5_nodes_total": round(sum(per_task.values()), 2),
            "per_node_boundary": _per({k: v for k, v in per_node.items() if abs(v) >= 0.005}, 1),
            "per_node_boundary_total": round(sum(per_node.values()), 2),
            "background_per_task_5_nodes": _per({k: v for k, v in five[what].items() if _is_background(k)}, tasks),
        }
    return result


def print_table(summary: dict) -> None:
    print(f"service CPU per task (noisy on a shared machine): {summary['service_cpu_ms_per_task']} ms")
    for what in ("commands", "round_trips"):
        part = summary[what]
        print(f"\n{what.replace('_', ' ')}: {part['per_node_boundary_total']} per node boundary, "
              f"{part['per_task_5_nodes_total']} per 5-node task (background left out)")
        print(f"  {'category':<48} {'per node':>9} {'per task':>9}")
        for key in sorted({*part["per_node_boundary"], *part["per_task_5_nodes"]},
                          key=lambda k: -part["per_task_5_nodes"].get(k, 0)):
            print(f"  {key:<48} {part['per_node_boundary'].get(key, 0):>9.2f} {part['per_task_5_nodes'].get(key, 0):>9.2f}")
        print(f"  background (per task, time-dependent): {part['background_per_task_5_nodes']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--label", default="current")
    args = parser.parse_args()
    info = machine_info()
    five = measure(5, args.tasks)
    ten = measure(10, args.tasks)
    summary = summarise(five, ten)
    print_table(summary)
    write_result(f"bench_round_trips_{args.label}", {
        "machine": finish_machine_info(info), "summary": summary, "runs": [five, ten],
        "command": f".venv/bin/python bench/bench_round_trips.py --tasks {args.tasks} --label {args.label}",
    })


if __name__ == "__main__":
    main()
