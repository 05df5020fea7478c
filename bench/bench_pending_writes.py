"""CPU per fenced pending write: a lease GET then the library's pipeline, against one script that checks and writes.

    .venv/bin/python bench/bench_pending_writes.py [--writes 5000] [--rounds 2]

The shape of one node's pending write at a node boundary after a long node (the fence's confirmation is stale):
before 2026-12-06 the fenced saver sent a lease `GET`, then the library's pipeline (`JSON.SET` of the write,
`JSON.MERGE` of the checkpoint's `has_writes`, `ZADD` to the write registry); now `engine/saver._PUT_WRITES`
does the check and the same three writes in one script. 50 concurrent callers on the service's client
(`LeanRedis`, shared connection); CPU of this process and of Redis (`INFO cpu`), per write. Writes
bench/results/bench_pending_writes.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import redis
import uvloop
from _common import embedded_redis, exit_on_sigterm, finish_machine_info, machine_info, write_result

from redis_persist.engine.saver import _PUT_WRITES
from redis_persist.store.connections import RedisConnections

CALLERS = 50
DOCUMENT = json.dumps({"thread_id": "thread", "checkpoint_ns": "", "checkpoint_id": "1f0c-checkpoint",
                       "task_id": "8d2f0c2e-6a8b-5c1e-9a8e-0d1c2b3a4f5e", "task_path": "~__pregel_pull, load",
                       "idx": 0, "channel": "rows", "type": "json", "blob": "eyJyb3dzIjogMTAwfQ=="})


def redis_cpu_seconds(client: redis.Redis) -> float:
    info = client.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


async def measure(url: str, writes: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    client = RedisConnections.from_url(url).async_client(max_connections=100, decode_responses=False)
    script = client.register_script(_PUT_WRITES)
    observer = redis.Redis.from_url(url)

    async def get_then_pipeline(i: int) -> None:
        assert await client.get("lease") == b"token"
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("JSON.SET", f"write:{i}", "$", DOCUMENT)
        pipe.execute_command("JSON.MERGE", f"checkpoint:{i % 100}", "$", '{"has_writes":true}')
        pipe.zadd(f"registry:{i % 100}", {f"write:{i}": 0})
        await pipe.execute()

    async def one_script(i: int) -> None:
        assert await script(keys=["lease", f"checkpoint:{i % 100}", f"registry:{i % 100}", f"write:{i}"],
                            args=["token", "1", DOCUMENT]) == 1

    ways: dict[str, Callable[[int], Awaitable[None]]] = {"get_then_pipeline": get_then_pipeline,
                                                         "one_script": one_script}
    results: dict[str, dict[str, list[float]]] = {name: {"client_us": [], "redis_us": []} for name in ways}
    for round_number in range(rounds + 1):  # round 0 warms up: connections, scripts loaded, code paths hot
        order = list(ways.items()) if round_number % 2 else list(reversed(ways.items()))
        for name, way in order:
            await client.flushall()
            await client.set("lease", "token")
            redis_before, client_before = redis_cpu_seconds(observer), time.process_time()

            async def caller(first: int, way: Callable[[int], Awaitable[None]] = way) -> None:
                for i in range(first, writes, CALLERS):
                    await way(i)

            await asyncio.gather(*(caller(first) for first in range(CALLERS)))
            if round_number:
                results[name]["client_us"].append((time.process_time() - client_before) / writes * 1e6)
                results[name]["redis_us"].append((redis_cpu_seconds(observer) - redis_before) / writes * 1e6)
    await client.aclose()
    await client.connection_pool.aclose()
    observer.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    exit_on_sigterm()
    info = machine_info()
    with embedded_redis("pending-writes") as server:
        results = uvloop.run(measure(server.url, args.writes, args.rounds))
    summary = {name: {key: round(statistics.median(values), 1) for key, values in by_key.items()}
               for name, by_key in results.items()}
    for name, by_key in summary.items():
        print(f"{name:18s} client {by_key['client_us']} µs  redis {by_key['redis_us']} µs per write")
    write_result("bench_pending_writes", {
        "benchmark": "bench_pending_writes", "writes": args.writes, "rounds": args.rounds, "callers": CALLERS,
        "cpu_us_per_write": results, "median": summary, "machine": finish_machine_info(info),
    })


if __name__ == "__main__":
    main()
