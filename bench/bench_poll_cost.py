"""Service CPU per `GET /api/tasks/{id}` (or per list page): the poll path against FastAPI's route, in one
process, alternating.

    .venv/bin/python bench/bench_poll_cost.py [--requests 6000] [--rounds 4] [--concurrency 50] [--pace 0.1] [--list]

One replica (`--workers 1`, embedded Redis), one completed `data_pipeline` task. Each round sends N GETs of
that task from C keep-alive connections twice: plain (answered in uvicorn's protocol by api/poll_protocol.py)
and with `?via=route`
(a query string sends the request on to the FastAPI route, which ignores the parameter and answers the same
bytes). CPU is the service process's user + system time from /proc; alternating rounds in the same process
keep load drift on a shared machine out of the comparison. `--raw-client`: a minimal HTTP client instead of
httpx. `--pace S`: each connection waits S seconds before
each GET, as the side-by-side pollers do (0.1), so requests arrive one by one instead of in batches the event
loop amortises. `--list`: 50 completed tasks, and `GET /api/tasks?limit=50` instead (api/poll_path.py answers
that too). Writes bench/results/bench_poll_cost[_LABEL].json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import httpx
from _common import (
    CpuMeter,
    RawConnection,
    async_client,
    embedded_redis,
    exit_on_sigterm,
    finish_machine_info,
    machine_info,
    percentile,
    write_result,
)
from redis_persist.testing import ServiceProcess


async def hammer(base_url: str, path: str, requests: int, concurrency: int, pace: float) -> float:
    """Send `requests` GETs of `path` from `concurrency` connections; the wall time it took."""
    async with async_client(base_url, timeout=30) as client:
        async def one_connection() -> None:
            for _ in range(requests // concurrency):
                if pace:
                    await asyncio.sleep(pace)
                response = await client.get(path)
                if response.status_code != 200:
                    raise SystemExit(f"GET {path}: {response.status_code} {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
        return time.perf_counter() - started


async def hammer_raw(base_url: str, path: str, requests: int, concurrency: int, pace: float) -> float:
    """hammer() with _common.RawConnection: the client's own CPU (httpx uses ~2 ms per request here) then
    takes less of the 2 cores from the service being measured."""
    async def one_connection() -> None:
        async with RawConnection(base_url) as connection:
            for _ in range(requests // concurrency):
                if pace:
                    await asyncio.sleep(pace)
                status, body = await connection.request("GET", path)
                if status != 200:
                    raise SystemExit(f"GET {path}: {status} {body[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pace", type=float, default=0.0, help="seconds each connection waits before each GET")
    parser.add_argument("--label", default="", help="suffix of the result file")
    parser.add_argument("--raw-client", action="store_true", help="a minimal HTTP client instead of httpx")
    parser.add_argument("--list", action="store_true", help="a page of 50 tasks instead of one task")
    args = parser.parse_args()
    exit_on_sigterm()
    machine = machine_info()
    per_request_us: dict[str, list[float]] = {"poll path": [], "route": []}
    with embedded_redis("poll-cost") as redis:
        service = ServiceProcess(redis.url, name="bench-poll-cost", args=["--log-level", "warning"]).start()
        try:
            task_ids = [uuid.uuid4().hex for _ in range(50 if args.list else 1)]
            for task_id in task_ids:
                httpx.post(f"{service.url}/api/tasks/execute", json={
                    "task_id": task_id, "graph_name": "data_pipeline", "initial_state": {"step_seconds": 0}})
            deadline = time.monotonic() + 60
            while any(httpx.get(f"{service.url}/api/tasks/{task_id}").json()["status"] != "completed"
                      for task_id in task_ids):
                if time.monotonic() > deadline:
                    raise SystemExit("the tasks did not complete")
                time.sleep(0.1)
            paths = ({"poll path": "/api/tasks?limit=50", "route": "/api/tasks?limit=50&via=route"} if args.list else
                     {"poll path": f"/api/tasks/{task_ids[0]}", "route": f"/api/tasks/{task_ids[0]}?via=route"})
            for _ in range(args.rounds):
                for name, path in paths.items():
                    meter = CpuMeter({"service": service.pid})
                    asyncio.run((hammer_raw if args.raw_client else hammer)(service.url, path, args.requests,
                                                                             args.concurrency, args.pace))
                    used = meter.stop()["cpu_s"]["service"]
                    per_request_us[name].append(round(used * 1e6 / args.requests, 1))
        finally:
            service.stop()
            service.log_path.unlink(missing_ok=True)
    result = {
        "benchmark": "bench_poll_cost", "requests_per_round": args.requests, "rounds": args.rounds,
        "concurrency": args.concurrency, "pace_s": args.pace, "request": "list of 50" if args.list else "one task",
        "client": "raw" if args.raw_client else "httpx", "cpu_us_per_request": per_request_us,
        "median_us": {name: round(percentile(values, 50), 1) for name, values in per_request_us.items()},
        "machine": finish_machine_info(machine),
    }
    median = result["median_us"]
    what = "list page" if args.list else "GET"
    print(f"service CPU per {what} (median of {args.rounds} rounds): poll path {median['poll path']} us, "
          f"route {median['route']} us ({median['poll path'] / median['route']:.2f}x); rounds {per_request_us}")
    write_result("bench_poll_cost" + (f"_{args.label}" if args.label else ""), result)


if __name__ == "__main__":
    main()
