"""Redis memory per finished task, and run time, with every checkpoint kept vs only the latest.

    .venv/bin/python bench/bench_memory.py [--tasks 500] [--history all latest]

For each REDIS_PERSIST_CHECKPOINT_HISTORY value: a fresh embedded Redis and one replica (`--workers 1`);
N `data_pipeline` tasks (4 nodes, step 0) created 50 at a time and run to `completed`. Reports Redis
`used_memory` growth per task and its split by key family (MEMORY USAGE over a sample of tasks), and
tasks/s for the whole run. Writes bench/results/bench_memory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter

import redis
from _common import (
    async_client,
    create_task,
    embedded_redis,
    finish_machine_info,
    machine_info,
    run,
    write_result,
)
from redis_persist.testing import ServiceProcess

SAMPLE = 50


def family(key: str) -> str:
    """The key family of one of our or the saver's keys: `rp:task`, `checkpoint_write`, ..."""
    head = key.split(":")
    return ":".join(head[:2]) if head[0] == "rp" else head[0]


async def drain(base_url: str, tasks: int) -> tuple[list[str], float]:
    ids = [uuid.uuid4().hex for _ in range(tasks)]
    started = time.perf_counter()
    semaphore = asyncio.Semaphore(50)
    async with async_client(base_url) as client:
        async def one(task_id: str) -> None:
            async with semaphore:
                await create_task(client, task_id, "data_pipeline", {"step_seconds": 0})
        await asyncio.gather(*(one(t) for t in ids))
        pending = set(ids)
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            for task_id in list(pending)[:200]:
                status = (await client.get(f"/api/tasks/{task_id}")).json()["status"]
                if status == "completed":
                    pending.discard(task_id)
                elif status in ("failed", "cancelled"):
                    raise SystemExit(f"task {task_id} ended {status}")
            await asyncio.sleep(0.2)
        if pending:
            raise SystemExit(f"{len(pending)} tasks did not complete")
    return ids, time.perf_counter() - started


def measure(history: str, tasks: int) -> dict:
    with embedded_redis(f"memory-{history}") as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        service = ServiceProcess(server.url, env={"REDIS_PERSIST_CHECKPOINT_HISTORY": history}, name="api-1",
                                 args=["--workers", "1"])
        service.start()
        try:
            # A first task creates the saver's indexes and our own keys, so they are not counted per task.
            run(drain(service.url, 1))
            before = client.info("memory")["used_memory"]
            ids, seconds = run(drain(service.url, tasks))
            after = client.info("memory")["used_memory"]
        finally:
            service.stop()
        by_family: Counter[str] = Counter()
        keys_per_task: Counter[str] = Counter()
        for task_id in ids[:SAMPLE]:
            for key in client.scan_iter(match=f"*{task_id}*", count=1000):
                by_family[family(key)] += client.memory_usage(key) or 0
                keys_per_task[family(key)] += 1
        client.close()
    return {
        "history": history, "tasks": tasks, "tasks_per_s": round(tasks / seconds, 1),
        "used_memory_per_task_kib": round((after - before) / tasks / 1024, 2),
        "key_bytes_per_task_by_family": {k: round(v / SAMPLE) for k, v in by_family.most_common()},
        "keys_per_task_by_family": {k: round(v / SAMPLE, 1) for k, v in keys_per_task.most_common()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--history", nargs="+", default=["all", "latest"], choices=["all", "latest"])
    args = parser.parse_args()
    info = machine_info()
    results = [measure(history, args.tasks) for history in args.history]
    for result in results:
        print(result)
    write_result("bench_memory", {"runs": results, "machine": finish_machine_info(info)})


if __name__ == "__main__":
    main()
