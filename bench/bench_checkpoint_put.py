"""CPU per checkpoint write: the library's AsyncRedisSaver.aput against ours (engine/saver._OneRoundTripPut,
without and with the serializer our savers use, engine/checkpoint_serde.PlainFirstSerializer); and CPU per
thread deleted afterwards (`adelete_thread`, what compacting a finished task costs): the library's two
RediSearch queries against our thread key registry.

    .venv/bin/python bench/bench_checkpoint_put.py [--tasks 300] [--rounds 3]

The checkpoints are real: `data_pipeline` (the example graph, step 0) runs once on an in-memory saver that
records its `aput` calls; each round replays them, under fresh thread ids, for `--tasks` tasks into each
saver in turn (embedded Redis, one client, awaited one by one as a runner awaits them), then deletes those
tasks' threads. CPU is this process's user + system time around the writes (or deletes) alone; Redis's CPU
is reported apart. Writes
bench/results/bench_checkpoint_put.json.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import time
import uuid
from typing import Any

from _common import CpuMeter, embedded_redis, exit_on_sigterm, finish_machine_info, machine_info, percentile, write_result
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from redis.asyncio import Redis

from redis_persist.engine.checkpoint_serde import PlainFirstSerializer
from redis_persist.engine.saver import _OneRoundTripPut
from redis_persist.examples.data_pipeline import builder


class _Recording(InMemorySaver):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[tuple[Any, ...]] = []

    async def aput(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        plain = {name: value for name, value in config["configurable"].items() if not name.startswith("__")}
        self.puts.append(copy.deepcopy(({"configurable": plain}, checkpoint, metadata, new_versions)))
        return await super().aput(config, checkpoint, metadata, new_versions)


async def _replay(saver: AsyncRedisSaver, puts: list[tuple[Any, ...]], tasks: int) -> tuple[float, list[str]]:
    """CPU seconds of this process to write `tasks` tasks' checkpoints, one awaited after the other; their
    thread ids."""
    work, thread_ids = [], []
    for _ in range(tasks):
        thread_id = uuid.uuid4().hex
        thread_ids.append(thread_id)
        for config, checkpoint, metadata, new_versions in puts:
            config = {"configurable": {**config["configurable"], "thread_id": thread_id}}
            work.append((config, copy.deepcopy(checkpoint), metadata, new_versions))
    started = time.process_time()
    for put in work:
        await saver.aput(*put)
    return time.process_time() - started, thread_ids


async def _delete(saver: AsyncRedisSaver, thread_ids: list[str]) -> float:
    started = time.process_time()
    for thread_id in thread_ids:
        await saver.adelete_thread(thread_id)
    return time.process_time() - started


async def scenario(redis_url: str, redis_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    recording = _Recording()
    graph = builder.compile(checkpointer=recording)
    await graph.ainvoke({"step_seconds": 0}, {"configurable": {"thread_id": "recorded"}})
    client = Redis.from_url(redis_url)
    ours = _OneRoundTripPut(redis_client=client)
    ours.serde = PlainFirstSerializer()
    savers = {"library": AsyncRedisSaver(redis_client=client), "one round trip": _OneRoundTripPut(redis_client=client),
              "ours (+ plain-first serializer)": ours}
    for saver in savers.values():
        await saver.asetup()
    per_put_us: dict[str, list[float]] = {name: [] for name in savers}
    redis_per_put_us: dict[str, list[float]] = {name: [] for name in savers}
    per_delete_us: dict[str, list[float]] = {name: [] for name in savers}
    redis_per_delete_us: dict[str, list[float]] = {name: [] for name in savers}
    writes = args.tasks * len(recording.puts)
    for name, saver in savers.items():  # warm-up
        await _delete(saver, (await _replay(saver, recording.puts, 20))[1])
    for _ in range(args.rounds):
        written = {}
        for name, saver in savers.items():
            redis_meter = CpuMeter({"redis": redis_pid})
            used, written[name] = await _replay(saver, recording.puts, args.tasks)
            per_put_us[name].append(round(used * 1e6 / writes, 1))
            redis_per_put_us[name].append(round(redis_meter.stop()["cpu_s"]["redis"] * 1e6 / writes, 1))
        for name, saver in savers.items():
            redis_meter = CpuMeter({"redis": redis_pid})
            used = await _delete(saver, written[name])
            per_delete_us[name].append(round(used * 1e6 / args.tasks, 1))
            redis_per_delete_us[name].append(round(redis_meter.stop()["cpu_s"]["redis"] * 1e6 / args.tasks, 1))
    await client.aclose()
    return {"checkpoints_per_task": len(recording.puts), "cpu_us_per_put": per_put_us,
            "redis_cpu_us_per_put": redis_per_put_us,
            "median_us": {name: round(percentile(values, 50), 1) for name, values in per_put_us.items()},
            "cpu_us_per_thread_delete": per_delete_us, "redis_cpu_us_per_thread_delete": redis_per_delete_us,
            "delete_median_us": {name: round(percentile(values, 50), 1) for name, values in per_delete_us.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    exit_on_sigterm()
    machine = machine_info()
    with embedded_redis("checkpoint-put") as redis_server:
        result = asyncio.run(scenario(redis_server.url, redis_server.pid, args))
    result |= {"benchmark": "bench_checkpoint_put", "tasks_per_round": args.tasks, "rounds": args.rounds,
               "machine": finish_machine_info(machine)}
    median = result["median_us"]
    print(f"CPU per checkpoint write (median of {args.rounds} rounds, {result['checkpoints_per_task']} per task): "
          + ", ".join(f"{name} {us} us ({us / median['library']:.2f}x)" for name, us in median.items())
          + f"; rounds {result['cpu_us_per_put']}; Redis CPU per write {result['redis_cpu_us_per_put']}")
    deleted = result["delete_median_us"]
    print(f"CPU per thread deleted (median of {args.rounds} rounds): "
          + ", ".join(f"{name} {us} us ({us / deleted['library']:.2f}x)" for name, us in deleted.items())
          + f"; rounds {result['cpu_us_per_thread_delete']}; Redis CPU per delete "
          f"{result['redis_cpu_us_per_thread_delete']}")
    write_result("bench_checkpoint_put", result)


if __name__ == "__main__":
    main()
