"""100 data_pipeline tasks at once against one `redis-persist serve`, and the same graph in-process.

    .venv/bin/python bench/bench_tasks.py [--tasks 100] [--steps 0,0.5]

For each step_seconds: N creates fired together (httpx AsyncClient + asyncio.gather); each task's SSE
stream is followed until its final status event. Reports completed tasks/s (N / first create sent -> last
completion received), create latency (the 202 round trip) and end-to-end latency (create sent -> final
status event received), plus server-side splits from the event timestamps (queue wait, run time).

Upper limit: the same builder compiled in this process with AsyncRedisSaver(redis_client=Redis on a
BlockingConnectionPool(timeout=None)), N concurrent `ainvoke`s with distinct thread_ids, with
durability="sync" (what the service uses) and LangGraph's default ("async").
Writes bench/results/bench_tasks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from _common import (
    CpuMeter,
    RedisCommandStats,
    async_client,
    create_task,
    embedded_redis,
    exit_on_sigterm,
    finish_machine_info,
    follow_sse,
    machine_info,
    run,
    server_times,
    summary_ms,
    write_result,
)
from redis_persist.testing import ServiceProcess

GRAPH = "data_pipeline"
NODES = 4


async def service_round(base_url: str, tasks: int, step: float, prefix: str, pids: dict[str, int],
                        redis_url: str | None = None) -> dict:
    """N tasks created together; each followed over SSE until final."""
    commands = RedisCommandStats(redis_url) if redis_url else None
    meter = CpuMeter(pids)
    async with async_client(base_url) as client:

        async def one(i: int) -> dict:
            task_id = f"{prefix}-{i:04d}"
            sent, answered = await create_task(client, task_id, GRAPH, {"step_seconds": step})
            received = await follow_sse(client, task_id)
            done_at, final = received[-1]
            events = [event for _, event in received]
            return {"task_id": task_id, "sent": sent, "answered": answered, "done": done_at,
                    "status": final.get("status"), "server": server_times(events)}

        start = time.time()
        outcomes = await asyncio.gather(*(one(i) for i in range(tasks)))
    cpu = meter.stop()
    redis_commands = commands.stop(tasks) if commands else None
    end = max(o["done"] for o in outcomes)
    statuses = {o["status"] for o in outcomes}
    if statuses != {"completed"}:
        raise RuntimeError(f"not every task completed: {statuses}")
    wall = end - start
    srv = [o["server"] for o in outcomes]
    return {
        "tasks": tasks,
        "step_seconds": step,
        "wall_s": round(wall, 3),
        "completed_tasks_per_s": round(tasks / wall, 1),
        "create_latency": summary_ms([o["answered"] - o["sent"] for o in outcomes]),
        "end_to_end_latency": summary_ms([o["done"] - o["sent"] for o in outcomes]),
        # server clock: queued (create) -> running (claimed) -> final status written
        "server_queue_wait": summary_ms([s["running"] - s["queued"] for s in srv]),
        "server_run_time": summary_ms([s["final"] - s["running"] for s in srv]),
        "final_event_delivery": summary_ms([o["done"] - o["server"]["final"] for o in outcomes]),
        "cpu": cpu,
        "cpu_ms_per_task": {k: round(1000 * v / tasks, 1) for k, v in cpu["cpu_s"].items()},
        "redis_commands": redis_commands,
    }


async def sequential_round(base_url: str, tasks: int, step: float, prefix: str) -> dict:
    """One task at a time: the unloaded latency of a task (and a warm-up)."""
    latencies, run_times = [], []
    async with async_client(base_url) as client:
        for i in range(tasks):
            task_id = f"{prefix}-{i:04d}"
            sent, _ = await create_task(client, task_id, GRAPH, {"step_seconds": step})
            received = await follow_sse(client, task_id)
            latencies.append(received[-1][0] - sent)
            srv = server_times([event for _, event in received])
            run_times.append(srv["final"] - srv["running"])
    return {"tasks": tasks, "step_seconds": step, "end_to_end_latency": summary_ms(latencies),
            "server_run_time": summary_ms(run_times)}


async def in_process(redis_url: str, tasks: int, step: float, durability: str | None, prefix: str,
                     pids: dict[str, int], sequential: bool = False) -> dict:
    """The same graph and saver setup without the service: N concurrent ainvokes."""
    from langgraph.checkpoint.redis.aio import AsyncRedisSaver
    from redis.asyncio import BlockingConnectionPool, Redis

    from redis_persist.examples.data_pipeline import builder

    pool = BlockingConnectionPool.from_url(redis_url, max_connections=1000, timeout=None)
    client = Redis(connection_pool=pool)
    try:
        saver = AsyncRedisSaver(redis_client=client)
        await saver.asetup()
        graph = builder.compile(checkpointer=saver)
        kwargs = {"durability": durability} if durability else {}

        async def one(i: int) -> float:
            config = {"configurable": {"thread_id": f"{prefix}-{i:04d}"}}
            t0 = time.perf_counter()
            result = await graph.ainvoke({"step_seconds": step}, config, **kwargs)
            assert result.get("saved") is True, result
            return time.perf_counter() - t0

        await one(-1)  # warm-up (imports, first compile of the saver's scripts)
        commands = RedisCommandStats(redis_url)
        meter = CpuMeter(pids)
        start = time.perf_counter()
        if sequential:
            latencies = [await one(i) for i in range(tasks)]
        else:
            latencies = await asyncio.gather(*(one(i) for i in range(tasks)))
        wall = time.perf_counter() - start
        cpu = meter.stop()
        redis_commands = commands.stop(tasks)
    finally:
        await client.aclose()
        await pool.disconnect()
    return {
        "tasks": tasks,
        "step_seconds": step,
        "durability": durability or "async (LangGraph default)",
        "one_at_a_time": sequential,
        "wall_s": round(wall, 3),
        "completed_tasks_per_s": round(tasks / wall, 1),
        "latency": summary_ms(latencies),
        "cpu": cpu,
        "cpu_ms_per_task": {k: round(1000 * v / tasks, 1) for k, v in cpu["cpu_s"].items()},
        "redis_commands": redis_commands,
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median tasks/s (the other runs stay in the JSON under "runs")."""
    ordered = sorted(runs, key=lambda r: r["completed_tasks_per_s"])
    return {**ordered[len(ordered) // 2], "runs_tasks_per_s": [r["completed_tasks_per_s"] for r in runs],
            "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--steps", default="0,0.5", help="comma-separated step_seconds values")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per setting; the median round is reported")
    args = parser.parse_args()
    steps = [float(s) for s in args.steps.split(",")]
    exit_on_sigterm()
    machine = machine_info()
    result: dict = {"benchmark": "bench_tasks", "graph": GRAPH, "nodes": NODES, "repeat": args.repeat,
                    "machine": machine, "service": {}, "in_process": {}}
    tag = os.urandom(2).hex()
    with embedded_redis("tasks") as redis:
        service = ServiceProcess(redis.url, name="bench-api")
        try:
            service.start()
            pids = {"service": service.pid, "redis": redis.pid}
            print(f"service {service.url} (pid {service.pid}), redis {redis.url}")
            seq = run(sequential_round(service.url, 20, 0.0, f"seq-{tag}"))
            result["service"]["sequential_step_0"] = seq
            print(f"one task at a time, step 0: e2e p50 {seq['end_to_end_latency']['p50_ms']} ms, "
                  f"server run p50 {seq['server_run_time']['p50_ms']} ms")
            for step in steps:
                runs = [run(service_round(service.url, args.tasks, step,
                                          f"svc-{tag}-{step:g}-{n}".replace(".", "_"), pids, redis.url))
                        for n in range(args.repeat)]
                r = result["service"][f"concurrent_step_{step:g}"] = median_run(runs)
                print(f"service, {args.tasks} tasks, step {step:g}s: {r['completed_tasks_per_s']} tasks/s "
                      f"(runs {r['runs_tasks_per_s']}); create p50/p99 {r['create_latency']['p50_ms']}/"
                      f"{r['create_latency']['p99_ms']} ms; e2e p50/p99 {r['end_to_end_latency']['p50_ms']}/"
                      f"{r['end_to_end_latency']['p99_ms']} ms; server run p50 {r['server_run_time']['p50_ms']} ms; "
                      f"cpu ms/task {r['cpu_ms_per_task']}; redis cmds/task {r['redis_commands']['calls_per_task']}")
        except BaseException:
            print(f"--- service log ---\n{service.log()}")
            raise
        finally:
            service.stop()
            service.log_path.unlink(missing_ok=True)
        for step in steps:
            for durability in ("sync", None):
                runs = [run(in_process(redis.url, args.tasks, step, durability,
                                       f"inproc-{tag}-{step:g}-{durability}-{n}".replace(".", "_"),
                                       {"redis": redis.pid}))
                        for n in range(args.repeat)]
                r = result["in_process"][f"step_{step:g}_durability_{durability or 'default'}"] = median_run(runs)
                print(f"in-process, {args.tasks} ainvokes, step {step:g}s, durability {r['durability']}: "
                      f"{r['completed_tasks_per_s']} tasks/s (runs {r['runs_tasks_per_s']}); "
                      f"p50/p99 {r['latency']['p50_ms']}/{r['latency']['p99_ms']} ms; "
                      f"cpu ms/task {r['cpu_ms_per_task']}; redis cmds/task {r['redis_commands']['calls_per_task']}")
        r = result["in_process"]["sequential_step_0_durability_sync"] = run(
            in_process(redis.url, 20, 0.0, "sync", f"inproc-{tag}-seq", {"redis": redis.pid}, sequential=True))
        print(f"in-process, one ainvoke at a time, step 0, durability sync: p50 {r['latency']['p50_ms']} ms")
    finish_machine_info(machine)
    write_result("bench_tasks", result)


if __name__ == "__main__":
    main()
