"""Event latency: a node completing -> a WebSocket client receiving its `node_completed` event.

    .venv/bin/python bench/bench_events.py [--tasks 100] [--graph ml_pipeline] [--step 0.5]

One `redis-persist serve` (embedded Redis). N tasks are created together; right after its 202 each task
gets its own WebSocket client on ws://.../ws/tasks/{id}, which reads until the task's final status event.
For every event: latency = time received - the event's `ts` (ISO 8601 UTC with ms, set by the runner just
before the event is appended, which is right after the node's checkpoint). Same machine, same clock;
`ts` has millisecond resolution. Events older than the client's connection (replayed history, not live)
are counted but left out. Writes bench/results/bench_events.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import websockets

from _common import (
    SETTLED_STATUSES,
    CpuMeter,
    async_client,
    create_task,
    embedded_redis,
    exit_on_sigterm,
    finish_machine_info,
    machine_info,
    parse_ts,
    run,
    summary_ms,
    write_result,
)
from redis_persist.testing import ServiceProcess


async def watch(ws_url: str, task_id: str) -> tuple[float, list[tuple[float, dict]]]:
    """Connect, then every event with its receive time until the final status event."""
    received = []
    async with websockets.connect(f"{ws_url}/ws/tasks/{task_id}", open_timeout=60, max_size=None) as socket:
        connected = time.time()
        async for raw in socket:
            now = time.time()
            event = json.loads(raw)
            received.append((now, event))
            if event.get("type") == "status" and event.get("status") in SETTLED_STATUSES:
                break
    return connected, received


async def events_round(base_url: str, graph: str, tasks: int, step: float, prefix: str,
                       pids: dict[str, int]) -> dict:
    ws_url = base_url.replace("http://", "ws://")
    meter = CpuMeter(pids)
    async with async_client(base_url) as client:

        async def one(i: int) -> tuple[float, list[tuple[float, dict]]]:
            task_id = f"{prefix}-{i:04d}"
            await create_task(client, task_id, graph, {"step_seconds": step})
            return await watch(ws_url, task_id)

        outcomes = await asyncio.gather(*(one(i) for i in range(tasks)))
    cpu = meter.stop()
    by_type: dict[str, list[float]] = {}
    replayed = 0
    finals = set()
    for connected, received in outcomes:
        finals.add(received[-1][1].get("status"))
        for at, event in received:
            ts = parse_ts(event["ts"])
            if ts < connected - 0.001:  # written before we were connected: history, not live
                replayed += 1
                continue
            by_type.setdefault(event["type"], []).append(at - ts)
    if finals != {"completed"}:
        raise RuntimeError(f"not every task completed: {finals}")
    return {
        "graph": graph,
        "tasks": tasks,
        "websocket_clients": tasks,
        "step_seconds": step,
        "node_completed_latency": summary_ms(by_type.get("node_completed", [])),
        "latency_by_event_type": {kind: summary_ms(values) for kind, values in sorted(by_type.items())},
        "replayed_events_excluded": replayed,
        "cpu": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--graph", default="ml_pipeline")
    parser.add_argument("--step", type=float, default=0.5)
    args = parser.parse_args()
    exit_on_sigterm()
    machine = machine_info()
    result: dict = {"benchmark": "bench_events", "machine": machine}
    tag = os.urandom(2).hex()
    with embedded_redis("events") as redis:
        service = ServiceProcess(redis.url, name="bench-events")
        try:
            service.start()
            pids = {"service": service.pid, "redis": redis.pid}
            run(events_round(service.url, args.graph, 3, args.step, f"warm-{tag}", pids))
            r = run(events_round(service.url, args.graph, args.tasks, args.step, f"ev-{tag}", pids))
            result["events"] = r
            lat = r["node_completed_latency"]
            print(f"{args.tasks} {args.graph} tasks (step {args.step:g}s), {args.tasks} WebSocket clients: "
                  f"node_completed -> client p50/p99/max {lat['p50_ms']}/{lat['p99_ms']}/{lat['max_ms']} ms "
                  f"over {lat['n']} events ({r['replayed_events_excluded']} replayed events left out)")
            for kind, s in r["latency_by_event_type"].items():
                print(f"  {kind:15s} n={s['n']:5d} p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms  max {s['max_ms']} ms")
            print(f"  cpu {r['cpu']['cpu_s']}")
        except BaseException:
            print(f"--- service log ---\n{service.log()}")
            raise
        finally:
            service.stop()
            service.log_path.unlink(missing_ok=True)
    finish_machine_info(machine)
    write_result("bench_events", result)


if __name__ == "__main__":
    main()
