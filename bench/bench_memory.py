"""Redis memory per task: finished tasks compacted (the default) or not, every checkpoint kept or the latest.

    .venv/bin/python bench/bench_memory.py [--tasks 300] [--configs all:on all:off latest:on latest:off]

Each config is `REDIS_PERSIST_CHECKPOINT_HISTORY:REDIS_PERSIST_FINISHED_COMPACTION` (on/off), run on a fresh
embedded Redis with one replica (`--workers 1`). Per config:

- finished: N `data_pipeline` tasks (4 nodes, step 0), created 50 at a time, run to `completed`;
- waiting: N tasks with `require_approval`, which stop at `validate`'s interrupt (`waiting_input`, 3 nodes
  done): the cost of a task that is not finished (its checkpoints are all kept while it can still run).

Reports Redis `used_memory` growth per task (without client and AOF buffers, which come and go with
traffic) after RediSearch's garbage collection (FT.DEBUG GC_FORCEINVOKE on
the saver's indexes, so deleted checkpoints' index entries are counted as freed, as they are within 5 minutes
in a live embedded Redis: FORK_GC_RUN_INTERVAL 300, redis_persist/embedded.py), split into our and the saver's keys by family (MEMORY USAGE over a sample of tasks), the
saver's RediSearch indexes (FT.INFO: index, doc table, key table) and the rest (our sorted-set indexes, the
key space). Per checkpoint: what compaction frees per finished task divided by the checkpoints it held.
Writes bench/results/bench_memory.json.
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
SAVER_INDEXES = ("checkpoint", "checkpoint_write")
SAVER_FAMILIES = ("checkpoint", "checkpoint_write", "write_keys_zset", "checkpoint_latest")


def family(key: str) -> str:
    """The key family of one of our or the saver's keys: `rp:task`, `checkpoint_write`, ..."""
    head = key.split(":")
    return ":".join(head[:2]) if head[0] == "rp" else head[0]


async def drain(base_url: str, tasks: int, until: str = "completed", approval: bool = False) -> tuple[list[str], float]:
    ids = [uuid.uuid4().hex for _ in range(tasks)]
    started = time.perf_counter()
    semaphore = asyncio.Semaphore(50)
    state = {"step_seconds": 0, "require_approval": approval}
    async with async_client(base_url) as client:
        async def one(task_id: str) -> None:
            async with semaphore:
                await create_task(client, task_id, "data_pipeline", state)
        await asyncio.gather(*(one(t) for t in ids))
        pending = set(ids)
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            for task_id in list(pending)[:200]:
                status = (await client.get(f"/api/tasks/{task_id}")).json()["status"]
                if status == until:
                    pending.discard(task_id)
                elif status in ("failed", "cancelled", "completed"):
                    raise SystemExit(f"task {task_id} ended {status}")
            await asyncio.sleep(0.2)
        if pending:
            raise SystemExit(f"{len(pending)} tasks did not reach {until}")
    return ids, time.perf_counter() - started


def index_bytes(client: redis.Redis) -> int:
    """Memory of the saver's RediSearch indexes (inverted index, doc table, key table), after a GC pass."""
    total = 0.0
    for index in SAVER_INDEXES:
        try:
            client.execute_command("FT.DEBUG", "GC_FORCEINVOKE", index)
        except redis.ResponseError:
            pass  # an index without garbage, or a build without FT.DEBUG: measured as it is
        info = client.ft(index).info()
        total += sum(float(info.get(k, 0)) for k in ("total_index_memory_sz_mb", "doc_table_size_mb",
                                                      "key_table_size_mb"))
    return int(total * 1024 * 1024)


def used_memory(client: redis.Redis) -> tuple[int, int]:
    """used_memory without client and AOF buffers (they come and go with traffic), and the saver's indexes."""
    indexes = index_bytes(client)  # first: its GC pass frees memory used_memory should not count
    memory = client.info("memory")
    buffers = sum(memory.get(k, 0) for k in ("mem_clients_normal", "mem_clients_slaves", "mem_aof_buffer"))
    return memory["used_memory"] - buffers, indexes


def by_family(client: redis.Redis, ids: list[str]) -> tuple[Counter[str], Counter[str]]:
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for task_id in ids[:SAMPLE]:
        for key in client.scan_iter(match=f"*{task_id}*", count=1000):
            sizes[family(key)] += client.memory_usage(key, samples=0) or 0
            counts[family(key)] += 1
    return sizes, counts


def per_task(before: tuple[int, int], after: tuple[int, int], sizes: Counter[str], counts: Counter[str],
             tasks: int) -> dict:
    used = (after[0] - before[0]) / tasks
    indexes = (after[1] - before[1]) / tasks
    keys = sum(sizes.values()) / SAMPLE
    return {
        "used_memory_per_task_kib": round(used / 1024, 2),
        "saver_index_bytes_per_task": round(indexes),
        "key_bytes_per_task": round(keys),
        "other_bytes_per_task": round(used - indexes - keys),  # our zset indexes, key space, allocator
        "key_bytes_per_task_by_family": {k: round(v / SAMPLE) for k, v in sizes.most_common()},
        "keys_per_task_by_family": {k: round(v / SAMPLE, 1) for k, v in counts.most_common()},
    }


def wait_compacted(client: redis.Redis, ids: list[str]) -> None:
    """Completed tasks are compacted by their runner right after the move; wait for the last few."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not any(client.exists(f"checkpoint_latest:{t}:__empty__") for t in ids[-SAMPLE:]):
            return
        time.sleep(0.2)
    raise SystemExit("finished tasks were not compacted within 60 s")


def measure(history: str, compaction: str, tasks: int) -> dict:
    env = {"REDIS_PERSIST_CHECKPOINT_HISTORY": history,
           "REDIS_PERSIST_FINISHED_COMPACTION": "true" if compaction == "on" else "false"}
    with embedded_redis(f"memory-{history}-{compaction}") as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        service = ServiceProcess(server.url, env=env, name="api-1", args=["--workers", "1"])
        service.start()
        try:
            # A first task creates the saver's indexes and our own keys, so they are not counted per task.
            run(drain(service.url, 1))
            run(drain(service.url, 1, "waiting_input", approval=True))
            before = used_memory(client)
            ids, seconds = run(drain(service.url, tasks))
            if compaction == "on":
                wait_compacted(client, ids)
            after = used_memory(client)
            waiting_ids, _ = run(drain(service.url, tasks, "waiting_input", approval=True))
            after_waiting = used_memory(client)
        finally:
            service.stop()
        finished = per_task(before, after, *by_family(client, ids), tasks)
        waiting = per_task(after, after_waiting, *by_family(client, waiting_ids), tasks)
        client.close()
    return {"history": history, "compaction": compaction, "tasks": tasks, "tasks_per_s": round(tasks / seconds, 1),
            "finished": finished, "waiting_input": waiting}


def per_checkpoint(results: list[dict]) -> dict[str, float]:
    """What compaction frees per finished task, per checkpoint (with its writes) it held, by history mode."""
    found = {}
    for history in {r["history"] for r in results}:
        on = next((r for r in results if r["history"] == history and r["compaction"] == "on"), None)
        off = next((r for r in results if r["history"] == history and r["compaction"] == "off"), None)
        if on and off:
            checkpoints = off["finished"]["keys_per_task_by_family"].get("checkpoint", 0)
            freed = (off["finished"]["used_memory_per_task_kib"] - on["finished"]["used_memory_per_task_kib"]) * 1024
            found[history] = round(freed / checkpoints) if checkpoints else None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--configs", nargs="+", default=["all:on", "all:off", "latest:on", "latest:off"],
                        help="HISTORY:COMPACTION pairs, e.g. all:on")
    args = parser.parse_args()
    info = machine_info()
    results = [measure(*config.split(":"), args.tasks) for config in args.configs]
    for result in results:
        print(result)
    bytes_per_checkpoint = per_checkpoint(results)
    print({"bytes_per_checkpoint": bytes_per_checkpoint})
    write_result("bench_memory", {"runs": results, "bytes_per_checkpoint": bytes_per_checkpoint,
                                  "machine": finish_machine_info(info)})


if __name__ == "__main__":
    main()
