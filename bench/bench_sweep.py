"""CPU and Redis commands of one orphan sweep over running tasks another process holds: a requeue attempt per
task (act.lua, refused while the lease is there) against the leases read first (TaskStore.without_lease).

    .venv/bin/python bench/bench_sweep.py [--tasks 5000] [--orphans 10] [--rounds 5]

The shape of `bench_waiting.py --tasks 10000 --workers 2`: each process sweeps every lease time / 3 (5 s by
default) over the ~5,000 tasks the other one runs. Tasks are created and claimed by "other" with a long lease
(embedded Redis, the service's own client); `--orphans` of them lose their lease before each round, and both
ways must requeue exactly those. CPU is this process's; Redis's time is its commandstats. Writes
bench/results/bench_sweep.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import uvloop
from _common import RedisCommandStats, embedded_redis, exit_on_sigterm, finish_machine_info, machine_info, write_result

from redis_persist.store import keys
from redis_persist.store.connections import RedisConnections
from redis_persist.store.tasks import TaskStore

LONG_LEASE_MS = 3_600_000


async def one_by_one(store: TaskStore, running: list[str]) -> list[str]:
    """The sweep before: a requeue attempt per running task."""
    return [task_id for task_id in running if await store.requeue_if_orphaned(task_id)]


async def leases_first(store: TaskStore, running: list[str]) -> list[str]:
    """The sweep now: the leases read in batches, a requeue attempt per lease gone."""
    return [task_id for task_id in await store.without_lease(running) if await store.requeue_if_orphaned(task_id)]


async def measure(url: str, tasks: int, orphans: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    client = RedisConnections.from_url(url).async_client(max_connections=100, decode_responses=True)
    store = TaskStore(client, events_max_per_task=100)
    ids = [f"sweep-{index}" for index in range(tasks)]
    for task_id in ids:
        await store.create(task_id, "g", {}, request_hash=task_id)
        assert await store.claim(task_id, "other", lease_ttl_ms=LONG_LEASE_MS) is not None
    sweeps: dict[str, Callable[[TaskStore, list[str]], Awaitable[list[str]]]] = {
        "one by one": one_by_one, "leases first": leases_first}
    results: dict[str, dict[str, list[float]]] = {name: {"cpu_ms": [], "redis_commands": [], "redis_ms": []}
                                                  for name in sweeps}
    for round_number in range(rounds):
        order = list(sweeps.items()) if round_number % 2 == 0 else list(reversed(sweeps.items()))
        for name, sweep in order:
            lost, ids = ids[:orphans], ids[orphans:]  # fresh ones each time: requeued tasks leave `running`
            await client.delete(*(keys.lease(task_id) for task_id in lost))
            running = await store.running_ids()
            stats = RedisCommandStats(url)
            started = time.process_time()
            requeued = await sweep(store, running)
            cpu = time.process_time() - started
            counted = stats.stop(per=1)
            assert sorted(requeued) == sorted(lost), (name, requeued, lost)
            results[name]["cpu_ms"].append(round(cpu * 1000, 1))
            results[name]["redis_commands"].append(counted["calls"])
            results[name]["redis_ms"].append(counted["redis_cpu_ms_per_task"])
    await client.aclose()
    await client.connection_pool.disconnect()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--orphans", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    exit_on_sigterm()
    info = machine_info()
    with embedded_redis("sweep") as redis:
        results = uvloop.run(measure(redis.url, args.tasks, args.orphans, args.rounds))
    for name, measured in results.items():
        print(f"{name:13s} CPU {statistics.median(measured['cpu_ms'])} ms, Redis "
              f"{statistics.median(measured['redis_ms'])} ms and {statistics.median(measured['redis_commands'])} "
              f"commands per sweep (median of {args.rounds}; rounds {measured})")
    write_result("bench_sweep", {"benchmark": "bench_sweep", "tasks": args.tasks, "orphans": args.orphans,
                                 "rounds": args.rounds, "results": results, "machine": finish_machine_info(info)})


if __name__ == "__main__":
    main()
