"""CPU per Redis command in the service's own client: redis-py's path against LeanRedis, in one process.

    .venv/bin/python bench/bench_redis_command_cost.py [--commands 4000] [--rounds 3]

Both clients are built as the service builds its client (store/connections.py: BlockingConnectionPool, retry
policy, health checks); "redis-py" is a plain `redis.asyncio.Redis` on that same kind of pool. Each round
sends N `HGETALL`s of a 20-field hash from 1 and from 50 concurrent callers (a replica under load has tens
of commands in flight) with each client, alternating; CPU is this process's time (Redis runs in its own
process). Writes bench/results/bench_redis_command_cost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import uvloop
from _common import embedded_redis, exit_on_sigterm, finish_machine_info, machine_info, write_result
from redis.asyncio import Redis
from redis_persist.store.connections import RedisConnections


async def cpu_per_command_us(client: Redis, commands: int, concurrency: int) -> float:
    """This process's CPU per command while `concurrency` callers share `commands` HGETALLs."""
    async def caller(count: int) -> None:
        for _ in range(count):
            await client.hgetall("hash")

    started = time.process_time()
    await asyncio.gather(*(caller(commands // concurrency) for _ in range(concurrency)))
    return (time.process_time() - started) / commands * 1e6


async def measure(url: str, commands: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    connections = RedisConnections.from_url(url)
    lean = connections.async_client(max_connections=1000, decode_responses=True)
    plain = Redis(connection_pool=connections.async_client(max_connections=1000, decode_responses=True).connection_pool)
    await lean.hset("hash", mapping={f"field{i}": "x" * 20 for i in range(20)})
    clients = {"redis-py": plain, "LeanRedis": lean}
    results: dict[str, dict[str, list[float]]] = {name: {"1": [], "50": []} for name in clients}
    for concurrency in (1, 50):
        for client in clients.values():  # warm-up: connections made, code paths hot
            await cpu_per_command_us(client, commands // 4, concurrency)
    for round_number in range(rounds):
        order = list(clients.items()) if round_number % 2 == 0 else list(reversed(clients.items()))
        for concurrency in (1, 50):
            for name, client in order:
                results[name][str(concurrency)].append(await cpu_per_command_us(client, commands, concurrency))
    for client in clients.values():
        await client.aclose()
        await client.connection_pool.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    exit_on_sigterm()
    info = machine_info()
    with embedded_redis("command-cost") as redis:
        results = uvloop.run(measure(redis.url, args.commands, args.rounds))
    summary = {name: {f"concurrency_{c}_us_median": round(statistics.median(values), 1) for c, values in by_c.items()}
               for name, by_c in results.items()}
    for name, by_c in summary.items():
        print(f"{name:10s} " + "  ".join(f"{key}: {value}" for key, value in by_c.items()))
    write_result("bench_redis_command_cost", {
        "benchmark": "bench_redis_command_cost", "commands": args.commands, "rounds": args.rounds,
        "cpu_us_per_command": results, "median": summary, "machine": finish_machine_info(info),
    })


if __name__ == "__main__":
    main()
