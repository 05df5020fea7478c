"""Creates under a big backlog: does every create get an HTTP answer, and are lease warnings real?

    .venv/bin/python bench/bench_backlog.py [--backlog 5000] [--users 40] [--seconds 60] [--keep-alive S]

One replica drains a backlog of N `data_pipeline` tasks (step 0, created 100 at a time) while U clients
each create a task, stay idle for just under httpx's keep-alive expiry (4.5-5.0 s, `--idle`) and create
the next one on the same kept-alive connection: the pattern that lost answers while the server's idle
keep-alive timeout (uvicorn's default, 5 s) equalled the client's. Every create carries a client task id,
so a create without an answer is checked afterwards: was the task created or not?
`--keep-alive S` sets REDIS_PERSIST_HTTP_KEEP_ALIVE_SECONDS (5 reproduces the old default).
Counts answers by kind and the replica's "lease lost" warnings. Writes bench/results/bench_backlog.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections import Counter

import httpx
from _common import (
    async_client,
    create_task,
    embedded_redis,
    exit_on_sigterm,
    finish_machine_info,
    machine_info,
    run,
    write_result,
)
from redis_persist.testing import ServiceProcess

GRAPH = "data_pipeline"


async def fill_backlog(base_url: str, tasks: int, prefix: str, outcomes: Counter[str]) -> float:
    """Create `tasks` tasks, 100 requests in flight at a time; returns how long it took."""
    start = time.perf_counter()
    semaphore = asyncio.Semaphore(100)
    async with async_client(base_url) as client:

        async def one(i: int) -> None:
            async with semaphore:
                try:
                    await create_task(client, f"{prefix}-{i:05d}", GRAPH, {"step_seconds": 0})
                    outcomes["202"] += 1
                except (httpx.HTTPError, RuntimeError) as error:
                    outcomes[type(error).__name__] += 1

        await asyncio.gather(*(one(i) for i in range(tasks)))
    return time.perf_counter() - start


async def idle_user(base_url: str, user: int, deadline: float, idle: tuple[float, float], prefix: str,
                    outcomes: Counter[str], unanswered: list[dict]) -> None:
    """Create, idle for about the keep-alive time, create again on the same connection, until the deadline."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)  # keepalive_expiry: httpx's 5 s
    async with httpx.AsyncClient(base_url=base_url, timeout=120, trust_env=False, limits=limits) as client:
        n = 0
        while time.monotonic() < deadline:
            task_id = f"{prefix}-u{user:02d}-{n:03d}"
            n += 1
            body = {"graph_name": GRAPH, "initial_state": {"step_seconds": 0}, "task_id": task_id}
            try:
                response = await client.post("/api/tasks/execute", json=body)
                outcomes[str(response.status_code)] += 1
            except httpx.HTTPError as error:
                outcomes[type(error).__name__] += 1
                unanswered.append({"task_id": task_id, "error": f"{type(error).__name__}: {error}"})
            await asyncio.sleep(random.uniform(*idle))


async def scenario(base_url: str, args: argparse.Namespace) -> dict:
    prefix = f"bl-{uuid.uuid4().hex[:6]}"
    backlog_outcomes: Counter[str] = Counter()
    user_outcomes: Counter[str] = Counter()
    unanswered: list[dict] = []
    deadline = time.monotonic() + args.seconds
    users = [idle_user(base_url, u, deadline, (args.idle_min, args.idle_max), prefix, user_outcomes, unanswered)
             for u in range(args.users)]
    fill_seconds, *_ = await asyncio.gather(fill_backlog(base_url, args.backlog, prefix, backlog_outcomes), *users)
    async with async_client(base_url) as client:
        for item in unanswered:  # the client cannot tell: did the create happen?
            item["created"] = (await client.get(f"/api/tasks/{item['task_id']}")).status_code == 200
        statuses = (await client.get("/metrics")).text
    return {"backlog_created_in_s": round(fill_seconds, 1), "backlog_outcomes": dict(backlog_outcomes),
            "idle_user_outcomes": dict(user_outcomes), "unanswered": unanswered,
            "tasks_by_status": [line for line in statuses.splitlines() if line.startswith("redis_persist_tasks{")]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--idle-min", type=float, default=4.5)
    parser.add_argument("--idle-max", type=float, default=5.0)
    parser.add_argument("--keep-alive", type=float, default=None, help="server idle keep-alive seconds")
    args = parser.parse_args()
    exit_on_sigterm()
    info = machine_info()
    env = {"REDIS_PERSIST_LEASE_TTL_SECONDS": "15"}
    if args.keep_alive is not None:
        env["REDIS_PERSIST_HTTP_KEEP_ALIVE_SECONDS"] = str(args.keep_alive)
    with embedded_redis("backlog") as redis_server:
        service = ServiceProcess(redis_server.url, env=env, name="api-1")
        try:
            service.start()
            result = run(scenario(service.url, args))
        finally:
            service.stop()
        log_text = service.log_path.read_text(errors="replace")
    result["lease_lost_warnings"] = log_text.count("WARNING redis_persist.store.leases: lease lost")
    result["settings"] = {**vars(args), "server_keep_alive_s": args.keep_alive or "default"}
    result["machine"] = finish_machine_info(info)
    lost = [u for u in result["unanswered"] if not u["created"]]
    print(f"backlog of {args.backlog} created in {result['backlog_created_in_s']} s: {result['backlog_outcomes']}")
    print(f"idle users: {result['idle_user_outcomes']}; without an answer: {len(result['unanswered'])} "
          f"(task not created: {len(lost)}); 'lease lost' warnings: {result['lease_lost_warnings']}")
    write_result(f"bench_backlog_keepalive_{args.keep_alive or 'default'}".replace(".", "_"), result)


if __name__ == "__main__":
    main()
