"""Is the API responsive while one replica drains a backlog? (issue 10: "Responsive under backlog")

    .venv/bin/python bench/bench_responsive.py [--tasks 5000] [--creators 50] [--workers 2]

One replica (`serve --workers N`, embedded Redis) gets `--tasks` `data_pipeline` tasks (step 0) created at
once by `--creators` clients; while they are created and until the last one completes, one prober reads
`GET /api/tasks/{id}` (a random created task) and another `GET /api/tasks?limit=50`, back to back, each on
its own kept-alive connection. Prints create / GET / list latency percentiles and writes
bench/results/bench_responsive.json. The issue's goal: create p99 <= 200 ms, GET p99 <= 50 ms,
list p99 <= 100 ms during the drain. GET and list latencies are also reported split at the moment the last
task was created: while the creators were creating, and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
import uuid

import httpx
import redis
from _common import (
    CpuMeter,
    RawConnection,
    add_replica_options,
    async_client,
    create_task,
    create_task_raw,
    embedded_redis,
    exit_on_sigterm,
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

GRAPH = "data_pipeline"


async def create_all(base_url: str, ids: list[str], creators: int, created: list[str], latencies: list[float],
                     raw_client: bool) -> None:
    """`creators` clients create the tasks of `ids` between them, each one request at a time."""
    queue = list(reversed(ids))

    async def creator() -> None:
        async with async_client(base_url) as client:
            while queue:
                task_id = queue.pop()
                sent, answered = await create_task(client, task_id, GRAPH, {"step_seconds": 0})
                latencies.append(answered - sent)
                created.append(task_id)

    async def raw_creator() -> None:
        async with RawConnection(base_url) as connection:
            while queue:
                task_id = queue.pop()
                latencies.append(await create_task_raw(connection, task_id, GRAPH, {"step_seconds": 0}))
                created.append(task_id)

    await asyncio.gather(*((raw_creator if raw_client else creator)() for _ in range(creators)))


async def probe(base_url: str, path_of, stop: asyncio.Event, latencies: list[tuple[float, float]],
                errors: list[str], raw_client: bool) -> None:
    """Send `GET path_of()` back to back until `stop`, recording when each was sent and its latency."""
    async with contextlib.AsyncExitStack() as stack:
        if raw_client:
            connection = await stack.enter_async_context(RawConnection(base_url))
        else:
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=60, trust_env=False))
        while not stop.is_set():
            path = path_of()
            if path is None:
                await asyncio.sleep(0.01)
                continue
            started = time.perf_counter()
            if raw_client:
                status, _ = await connection.request("GET", path)
            else:
                status = (await client.get(path)).status_code
            latencies.append((started, time.perf_counter() - started))
            if status != 200:
                errors.append(f"{path}: {status}")
            await asyncio.sleep(0.02)  # a client polling 50 times a second, not a flood


async def scenario(base_url: str, redis_url: str, args: argparse.Namespace) -> dict:
    prefix = f"rs-{uuid.uuid4().hex[:6]}"
    ids = [f"{prefix}-{i:05d}" for i in range(args.tasks)]
    created: list[str] = []
    create_latencies: list[float] = []
    get_latencies: list[tuple[float, float]] = []
    list_latencies: list[tuple[float, float]] = []
    errors: list[str] = []
    stop = asyncio.Event()
    probes = [
        asyncio.create_task(probe(base_url, lambda: f"/api/tasks/{random.choice(created)}" if created else None,
                                  stop, get_latencies, errors, args.raw_client)),
        asyncio.create_task(probe(base_url, lambda: "/api/tasks?limit=50", stop, list_latencies, errors,
                                  args.raw_client)),
    ]
    direct = redis.Redis.from_url(redis_url, decode_responses=True)
    started, client_cpu_started = time.perf_counter(), time.process_time()
    try:
        await create_all(base_url, ids, args.creators, created, create_latencies, args.raw_client)
        all_created, client_cpu_created = time.perf_counter(), time.process_time()
        created_in = all_created - started
        deadline = time.monotonic() + args.timeout
        while direct.zcard(keys.status_index("completed")) < args.tasks:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {direct.zcard(keys.status_index('completed'))} of {args.tasks} completed")
            await asyncio.sleep(0.2)
        drained_in = time.perf_counter() - started
    finally:
        stop.set()
        await asyncio.gather(*probes)
        direct.close()
    return {
        "created_in_s": round(created_in, 1),
        "drained_in_s": round(drained_in, 1),
        "tasks_per_s": round(args.tasks / drained_in, 1),
        "create": summary_ms(create_latencies),
        # The benchmark process's own CPU (creators and probes) over the burst: near 1.0 means the client, not
        # the service, set the pace and its own queueing is in the latencies.
        "client_cores_while_creating": round((client_cpu_created - client_cpu_started) / created_in, 2),
        "get_task": summary_ms([latency for _, latency in get_latencies]),
        "list_tasks_limit_50": summary_ms([latency for _, latency in list_latencies]),
        # The same, split: while the creators were still creating, and after (the rest of the drain).
        "while_creating": {"get_task": summary_ms([l for sent, l in get_latencies if sent < all_created]),
                           "list_tasks_limit_50": summary_ms([l for sent, l in list_latencies if sent < all_created])},
        "after_created": {"get_task": summary_ms([l for sent, l in get_latencies if sent >= all_created]),
                          "list_tasks_limit_50": summary_ms([l for sent, l in list_latencies if sent >= all_created])},
        "probe_errors": errors[:20],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--creators", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--raw-client", action="store_true",
                        help="creators and probes on _common.RawConnection instead of httpx (a cheaper client)")
    add_replica_options(parser, workers=2)
    args = parser.parse_args()
    exit_on_sigterm()
    info = machine_info()
    with embedded_redis("responsive") as redis_server:
        service = ServiceProcess(redis_server.url, name="api-1", args=replica_layout(args),
                                 env={"REDIS_PERSIST_LEASE_TTL_SECONDS": "15", **replica_settings(args)})
        try:
            service.start()
            meter = CpuMeter({"service": service.process.pid, "redis": redis_server.pid},
                             with_children=frozenset({"service"}))
            result = run(scenario(service.url, redis_server.url, args))
            result["cpu"] = meter.stop()
        finally:
            service.stop()
    result["settings"] = vars(args)
    result["machine"] = finish_machine_info(info)
    for name in ("create", "get_task", "list_tasks_limit_50"):
        s = result[name]
        print(f"{name:20} n={s['n']:6}  p50 {s.get('p50_ms')} ms  p99 {s.get('p99_ms')} ms  max {s.get('max_ms')} ms")
    for phase in ("while_creating", "after_created"):
        for name, s in result[phase].items():
            print(f"  {phase:15} {name:20} n={s['n']:6}  p50 {s.get('p50_ms')} ms  p99 {s.get('p99_ms')} ms")
    print(f"client: {result['client_cores_while_creating']} cores while creating")
    print(f"{args.tasks} tasks created in {result['created_in_s']} s, all completed after {result['drained_in_s']} s "
          f"({result['tasks_per_s']} tasks/s); probe errors: {len(result['probe_errors'])}")
    write_result(f"bench_responsive{replica_suffix(args)}", result)


if __name__ == "__main__":
    main()
