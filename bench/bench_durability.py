"""What durability costs per node: AOF everysec, `appendfsync always`, and a replica + WAIT.

    .venv/bin/python bench/bench_durability.py [--tasks 20] [--concurrent 20]

In-process, the service's own checkpointer (FencedRedisSaver) on a module-enabled valkey, `data_pipeline`
(4 nodes, step 0 s), `durability="sync"` as the runner uses. Each mode runs `--tasks` tasks one after the
other (per-node latency = task time / 4) and then `--concurrent` tasks at once (tasks/s), in 5 rounds
that interleave the modes (the machine is shared). Modes:
  everysec         embedded default: AOF, fsync once a second
  always           AOF with `appendfsync always` (fsync on every write)
  replica-no-wait  AOF everysec + one replica (through Sentinel), asynchronous replication
  replica-wait     the same; every checkpoint waits for the replica's ack (REDIS_PERSIST_MIN_REPLICAS=1)
Writes bench/results/bench_durability.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import finish_machine_info, machine_info, percentile, write_result

from redis_persist.embedded import EmbeddedRedis
from redis_persist.engine.graphs import compile_graph
from redis_persist.engine.saver import FENCE_KEY, FencedRedisSaver
from redis_persist.examples.data_pipeline import builder
from redis_persist.replication import ReplicatedRedis
from redis_persist.store import keys
from redis_persist.store.connections import RedisConnections

NODES = 4
ROUNDS = 5


class Mode:
    """One way of running: a Redis URL, and how many replicas each checkpoint waits for."""

    def __init__(self, name: str, url: str, min_replicas: int) -> None:
        self.name = name
        connections = RedisConnections.from_url(url)
        self.saver_client = connections.async_client(max_connections=200, decode_responses=False)
        self.lease_client = connections.async_client(max_connections=200, decode_responses=True)
        self.saver = FencedRedisSaver(self.saver_client, self.lease_client, min_replicas=min_replicas)
        self.per_node_ms: list[float] = []
        self.tasks_per_s: list[float] = []

    async def setup(self) -> None:
        await self.saver.asetup()
        self.graph = compile_graph(builder, self.saver, node_timeout_seconds=None)
        for _ in range(3):  # warm-up
            await self.one()

    async def one(self) -> float:
        task_id = f"{self.name}-{time.time_ns()}"
        await self.lease_client.set(keys.lease(task_id), "bench:1")
        config = {"configurable": {"thread_id": task_id, FENCE_KEY: [task_id, "bench:1"]}}
        started = time.perf_counter()
        await self.graph.ainvoke({"step_seconds": 0}, config, durability="sync")
        return time.perf_counter() - started

    async def round(self, tasks: int, concurrent: int) -> None:
        self.per_node_ms += [await self.one() / NODES * 1000 for _ in range(tasks)]
        started = time.perf_counter()
        await asyncio.gather(*(self.one() for _ in range(concurrent)))
        self.tasks_per_s.append(concurrent / (time.perf_counter() - started))

    def summary(self) -> dict:
        return {
            "per_node_ms_p50": round(percentile(self.per_node_ms, 50), 2),
            "per_node_ms_p90": round(percentile(self.per_node_ms, 90), 2),
            "concurrent_tasks_per_s_median": round(percentile(self.tasks_per_s, 50), 1),
        }

    async def close(self) -> None:
        await self.saver_client.aclose()
        await self.lease_client.aclose()


async def main(tasks: int, concurrent: int) -> None:
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench-durability-") as tmp:
        everysec = EmbeddedRedis(Path(tmp) / "everysec")
        always = EmbeddedRedis(Path(tmp) / "always", extra_args=["--appendfsync", "always"])
        replicated = ReplicatedRedis(Path(tmp) / "replicated", replicas=1)
        try:
            everysec.start()
            always.start()
            replicated.start()
            modes = [
                Mode("everysec", everysec.url, 0),
                Mode("always", always.url, 0),
                Mode("replica-no-wait", replicated.sentinel_url, 0),
                Mode("replica-wait", replicated.sentinel_url, 1),
            ]
            for mode in modes:
                await mode.setup()
            # Rounds interleave the modes, so whatever else the machine does weighs on all of them alike.
            for _ in range(ROUNDS):
                for mode in modes:
                    await mode.round(tasks, concurrent)
            results = {mode.name: mode.summary() for mode in modes}
            for mode in modes:
                await mode.close()
        finally:
            replicated.stop()
            always.stop()
            everysec.stop()
    for name, summary in results.items():
        print(f"{name:16} {summary}")
    write_result("bench_durability", {"tasks_per_round": tasks, "concurrent": concurrent, "rounds": ROUNDS,
                                      "nodes_per_task": NODES, "modes": results,
                                      "machine": finish_machine_info(info)})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.concurrent))
