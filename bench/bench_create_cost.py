"""Service CPU and latency per `POST /api/tasks/execute` in a burst of creates; optionally against another
checkout of the code in the same run.

    .venv/bin/python bench/bench_create_cost.py [--creates 4000] [--rounds 3] [--concurrency 50] [--base-tree DIR]

One API-only replica (`serve --workers 1 --no-worker`, its own embedded Redis): nothing runs the tasks, so
what is measured is the create alone. Each round, `--concurrency` keep-alive connections of a minimal client
(_common.RawConnection: httpx would spend more CPU per request than the service) create `--creates` tasks
between them, each sending its next create when the last is answered. Reports the service process's CPU
per create (user + system, from /proc) and the latency p50 / p99 of each round. `--base-tree DIR`: a second
replica runs the code in DIR (e.g. a `git worktree` of another commit, put first on its PYTHONPATH) and the
rounds alternate between the two, so load drift on a shared machine reaches both. Writes
bench/results/bench_create_cost[_LABEL].json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from pathlib import Path

from _common import (
    CpuMeter,
    RawConnection,
    create_task_raw,
    embedded_redis,
    exit_on_sigterm,
    finish_machine_info,
    machine_info,
    percentile,
    run,
    write_result,
)

from redis_persist.testing import ServiceProcess


async def burst(base_url: str, creates: int, concurrency: int) -> list[float]:
    """`creates` creates from `concurrency` connections; each create's latency in seconds."""
    remaining = creates
    latencies: list[float] = []

    async def one_connection() -> None:
        nonlocal remaining
        async with RawConnection(base_url) as connection:
            while remaining > 0:
                remaining -= 1
                latencies.append(await create_task_raw(connection, uuid.uuid4().hex, "data_pipeline",
                                                       {"step_seconds": 0}))

    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--base-tree", type=Path, help="also measure the code in this directory, alternating")
    parser.add_argument("--label", default="", help="suffix of the result file")
    args = parser.parse_args()
    exit_on_sigterm()
    machine = machine_info()
    trees = {"this tree": None} | ({"base tree": args.base_tree.resolve()} if args.base_tree else {})
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with contextlib.ExitStack() as stack:
        services = {}
        for name, tree in trees.items():
            redis = stack.enter_context(embedded_redis("create-cost"))
            env = {"PYTHONPATH": str(tree)} if tree else {}
            # cwd too: `python -m` puts the working directory before PYTHONPATH on sys.path.
            service = ServiceProcess(redis.url, env=env, name=f"bench-create-{len(services)}", cwd=tree,
                                     args=["--workers", "1", "--no-worker", "--log-level", "warning"]).start()
            stack.callback(service.stop)
            services[name] = service
        for _ in range(args.rounds):
            for name, service in services.items():
                meter = CpuMeter({"service": service.pid})
                started = time.perf_counter()
                latencies = run(burst(service.url, args.creates, args.concurrency))
                elapsed = time.perf_counter() - started
                used = meter.stop()["cpu_s"]["service"]
                rounds[name].append({
                    "cpu_us_per_create": round(used * 1e6 / args.creates, 1),
                    "creates_per_s": round(args.creates / elapsed, 1),
                    "p50_ms": round(percentile(latencies, 50) * 1e3, 1),
                    "p99_ms": round(percentile(latencies, 99) * 1e3, 1),
                })
    result = {
        "benchmark": "bench_create_cost", "creates_per_round": args.creates, "rounds": rounds,
        "concurrency": args.concurrency, "base_tree": str(args.base_tree) if args.base_tree else None,
        "median": {name: {key: percentile([r[key] for r in rs], 50) for key in rs[0]} for name, rs in rounds.items()},
        "machine": finish_machine_info(machine),
    }
    for name, rs in rounds.items():
        print(f"{name}: " + "; ".join(f"{r['cpu_us_per_create']} us CPU per create, {r['creates_per_s']}/s, "
                                      f"p50 {r['p50_ms']} / p99 {r['p99_ms']} ms" for r in rs))
    write_result("bench_create_cost" + (f"_{args.label}" if args.label else ""), result)


if __name__ == "__main__":
    main()
