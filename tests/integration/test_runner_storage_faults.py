"""The runner on a real Redis: the saver's checkpoint write fails once (as redisvl raises it under OOM).

The task must not fail, must not run a completed node again, and must record every node it completed.
A node that raises a Redis error itself is the graph's failure, as any other exception of a node.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from langgraph.graph import StateGraph
from redis.exceptions import OutOfMemoryError, ResponseError
from redisvl.exceptions import RedisVLError

from redis_persist.core.status import TaskStatus
from redis_persist.engine.graphs import compile_graph
from redis_persist.engine.saver import FencedRedisSaver
from redis_persist.engine.storage_faults import StorageFaultCounter
from redis_persist.store import keys
from redis_persist.store.events import EventLog
from redis_persist.store.tasks import TaskStore
from tests.integration.counted_chain import NODES, counted_chain, run_task, runner_clients

OOM = "command not allowed when used memory > 'maxmemory'."


class FaultySaver(FencedRedisSaver):
    """Fails the checkpoint write that follows `fail_after_node`, once, the way redisvl reports OOM."""

    fail_after_node: str | None = None

    async def aput(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        if self.fail_after_node and self.fail_after_node in checkpoint.get("versions_seen", {}):
            self.fail_after_node = None
            try:
                raise OutOfMemoryError(OOM)
            except OutOfMemoryError as error:
                raise RedisVLError(f"Failed to load data: {error}") from error
        return await super().aput(config, checkpoint, metadata, new_versions)


def _chain(runs: Counter[str], raising: str | None = None) -> StateGraph:
    """The counted chain; the node named `raising` fails with a Redis error of the graph's own making."""
    async def inside(node: str) -> None:
        if node == raising:
            raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    return counted_chain(runs, inside)


@pytest.fixture
async def setup(clean_redis):
    async with runner_clients(clean_redis) as (redis, saver_client):
        saver = FaultySaver(saver_client, redis)
        await saver.asetup()
        yield redis, saver, TaskStore(redis, events_max_per_task=1000)


async def _run(setup, builder: StateGraph):  # type: ignore[no-untyped-def]
    """Create, claim and run task t1 on `builder`; returns (task hash, events, storage fault counter)."""
    redis, saver, store = setup
    faults = StorageFaultCounter()
    await run_task(store, compile_graph(builder, saver, None), faults)
    return await redis.hgetall(keys.task("t1")), await EventLog(redis).read("t1"), faults


async def test_a_failed_checkpoint_write_is_waited_out_and_no_completed_node_runs_again(setup) -> None:
    runs: Counter[str] = Counter()
    setup[1].fail_after_node = "two"
    record, events, faults = await _run(setup, _chain(runs))

    assert record["status"] == TaskStatus.COMPLETED.value and "error" not in record
    assert json.loads(record["completed_nodes"]) == NODES
    assert runs["one"] == 1 and runs["three"] == 1 and runs["two"] <= 2  # `two` was in flight
    started = Counter(e["node"] for e in events if e["type"] == "node_started")
    assert started == runs  # no node_started for a node LangGraph restored from its saved writes
    assert [e["node"] for e in events if e["type"] == "node_completed"] == NODES
    [fault] = [e for e in events if e["type"] == "storage_error"]
    assert fault["operation"] == "run" and "maxmemory" in fault["error"] and fault["retries"] == 1
    assert faults.by_operation == {"run": 1}


async def test_a_node_raising_a_redis_error_itself_fails_the_task(setup) -> None:
    runs: Counter[str] = Counter()
    record, events, faults = await _run(setup, _chain(runs, raising="two"))

    assert record["status"] == TaskStatus.FAILED.value
    assert record["error"].startswith("Node 'two' failed: ResponseError: WRONGTYPE")
    assert runs == {"one": 1, "two": 1}
    assert not [e for e in events if e["type"] == "storage_error"] and not faults.by_operation
