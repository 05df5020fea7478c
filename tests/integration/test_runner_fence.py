"""The runner's fenced records confirm the lease for the saver; an explicit end of the lease still stops writes.

engine/saver.Fence: a record.lua write that found the lease ours stands in, for a short while, for the
saver's GET before a checkpoint write. These run a real graph, saver and Redis through TaskRunner.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from redis.asyncio import Redis

from redis_persist.core.status import Action, TaskStatus
from redis_persist.engine.graphs import compile_graph
from redis_persist.engine.saver import FENCE_CONFIRMATION_MAX_AGE_SECONDS, FencedRedisSaver
from redis_persist.store import keys
from redis_persist.store.tasks import TaskStore
from tests.integration.counted_chain import counted_chain, run_task, runner_clients

@pytest.fixture
async def clients(clean_redis):
    async with runner_clients(clean_redis) as clients:
        yield clients


async def _run(redis: Redis, saver: FencedRedisSaver, builder: StateGraph) -> tuple[TaskStore, dict[str, str]]:
    await saver.asetup()
    store = TaskStore(redis, events_max_per_task=1000)
    await run_task(store, compile_graph(builder, saver, None))
    return store, await redis.hgetall(keys.task("t1"))


async def test_the_runners_records_stand_in_for_the_savers_lease_reads(clients) -> None:
    redis, saver_client = clients
    lease_reads: list[str] = []
    real_get = redis.get

    async def get(name, *args, **kwargs):  # spy: the real GET still runs
        if name == keys.lease("t1"):
            lease_reads.append(name)
        return await real_get(name, *args, **kwargs)

    redis.get = get
    # Confirmations stay fresh for the whole run, so the count does not depend on how loaded the machine is.
    saver = FencedRedisSaver(saver_client, redis, confirmation_max_age_seconds=60)
    _, record = await _run(redis, saver, counted_chain(Counter()))

    assert record["status"] == TaskStatus.COMPLETED.value
    # 3 nodes: 3 write sets and 4 checkpoints (input + one per node). Only the input checkpoint, written
    # before the runner's first record, needs the GET.
    assert len(lease_reads) == 1


async def test_a_lease_ended_explicitly_during_a_node_stops_the_checkpoint_after_it(clients) -> None:
    redis, saver_client = clients
    runs: Counter[str] = Counter()
    store_for_cancel = TaskStore(redis, events_max_per_task=1000)

    async def cancelled_meanwhile(node: str) -> None:
        if node != "two":
            return
        # A user cancels while `two` runs (act.lua deletes the lease); the node outlasts the confirmation
        # its start gave, as any node doing real work does.
        await store_for_cancel.act("t1", Action.CANCEL)
        await asyncio.sleep(FENCE_CONFIRMATION_MAX_AGE_SECONDS * 2)

    saver = FencedRedisSaver(saver_client, redis)
    store, record = await _run(redis, saver, counted_chain(runs, cancelled_meanwhile))

    assert record["status"] == TaskStatus.CANCELLED.value
    assert runs == {"one": 1, "two": 1}
    assert json.loads(record["completed_nodes"]) == ["one"]
    thread_id = (await store.get("t1")).thread_id
    latest = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    assert "two" not in latest.checkpoint["versions_seen"]  # no checkpoint after the lease ended
