"""A node boundary is one write: the runner records a checkpoint and the start of the node after it together
(engine/runner._checkpoints_with_next_start), still before that node runs, and never the start of a node that
does not run (a pause asked for, an interrupt before it) or of a hidden node (whose start LangGraph does not
announce: its checkpoint is recorded alone, first). A real graph, saver and Redis through TaskRunner."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from langgraph.constants import TAG_HIDDEN
from langgraph.graph import END, START, StateGraph
from redis.asyncio import Redis

from redis_persist.core.status import Action, TaskStatus
from redis_persist.engine.graphs import compile_graph
from redis_persist.engine.saver import FencedRedisSaver
from redis_persist.store import keys
from redis_persist.store.tasks import TaskStore
from tests.integration.counted_chain import NODES, State, counted_chain, run_task, runner_clients

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def setup(clean_redis):
    async with runner_clients(clean_redis) as (redis, saver_client):
        saver = FencedRedisSaver(saver_client, redis)
        await saver.asetup()
        store = TaskStore(redis, events_max_per_task=1000)
        records: list[dict[str, Any]] = []
        real_record = store.record

        async def counted_record(*args: Any, **kwargs: Any) -> bool:
            records.append(kwargs)
            return await real_record(*args, **kwargs)

        store.record = counted_record  # type: ignore[method-assign]
        yield redis, saver, store, records


async def _events(redis: Redis) -> list[tuple[str, str | None]]:
    entries = await redis.xrange(keys.events("t1"))
    return [(event["type"], event.get("node")) for event in (json.loads(fields["e"]) for _, fields in entries)
            if event["type"] in ("node_started", "node_completed")]


async def _latest_checkpoint_id(saver: FencedRedisSaver, redis: Redis) -> str:
    thread_id = await redis.hget(keys.task("t1"), "thread_id") or "t1"
    latest = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    return latest.config["configurable"]["checkpoint_id"]


async def test_each_start_goes_with_the_checkpoint_before_it_and_is_recorded_before_the_node_runs(setup) -> None:
    redis, saver, store, records = setup
    seen: dict[str, tuple[str | None, bool, tuple[str, str | None]]] = {}

    async def inside(name: str) -> None:
        task = await redis.hgetall(keys.task("t1"))
        seen[name] = (task.get("current_node"), task.get("checkpoint_id") == await _latest_checkpoint_id(saver, redis),
                      (await _events(redis))[-1])

    runs: Counter[str] = Counter()
    await run_task(store, compile_graph(counted_chain(runs, inside), saver, None))
    assert (await store.get("t1")).status == TaskStatus.COMPLETED
    for name in NODES:  # while each node ran: its start recorded, with the checkpoint it runs from
        assert seen[name] == (name, True, ("node_started", name)), seen
    assert await _events(redis) == [(kind, name) for name in NODES for kind in ("node_started", "node_completed")]
    # The input checkpoint alone (its step starts no node of ours), then one write per node boundary (the
    # checkpoint and the next node's start), then the last checkpoint: 5 writes where there were 8.
    assert [bool(record.get("go_on_events")) for record in records] == [False, True, True, True, False]
    assert runs == Counter(NODES)


async def test_a_pause_at_a_boundary_records_no_start_of_the_node_that_does_not_run(setup) -> None:
    redis, saver, store, records = setup

    async def pause_during_two(name: str) -> None:
        if name == "two":
            await store.act("t1", Action.PAUSE)

    runs: Counter[str] = Counter()
    await run_task(store, compile_graph(counted_chain(runs, pause_during_two), saver, None))
    task = await store.get("t1")
    assert task.status == TaskStatus.PAUSED
    assert runs == {"one": 1, "two": 1}
    assert await _events(redis) == [("node_started", "one"), ("node_completed", "one"),
                                    ("node_started", "two"), ("node_completed", "two")]
    assert not (await redis.hget(keys.task("t1"), "current_node"))
    assert records[-1].get("go_on_events"), "the start of three was offered with the checkpoint and refused"


async def test_a_hidden_nodes_checkpoint_is_recorded_before_it_runs(setup) -> None:
    redis, saver, store, _ = setup
    seen: dict[str, bool] = {}

    async def inside(name: str) -> None:
        task = await redis.hgetall(keys.task("t1"))
        seen[name] = task.get("checkpoint_id") == await _latest_checkpoint_id(saver, redis)

    def step(name: str):  # type: ignore[no-untyped-def]
        async def node(_state: State) -> dict[str, Any]:
            await inside(name)
            return {"done": [name]}
        return node

    builder = StateGraph(State)
    for name in NODES:
        builder.add_node(name, step(name))
    builder.add_edge(START, "one")
    builder.add_edge("one", "two")
    builder.add_edge("two", "three")
    builder.add_edge("three", END)
    graph = compile_graph(builder, saver, None)
    graph.nodes["two"].tags = [TAG_HIDDEN]  # LangGraph sends no `tasks` chunk when it starts
    await run_task(store, graph)
    assert (await store.get("t1")).status == TaskStatus.COMPLETED
    assert seen == {"one": True, "two": True, "three": True}
    assert ("node_started", "two") not in await _events(redis)


async def test_an_interrupt_before_a_node_records_no_start_of_it(setup) -> None:
    redis, saver, store, _ = setup
    runs: Counter[str] = Counter()
    graph = counted_chain(runs).compile(checkpointer=saver, interrupt_before=["two"])
    await run_task(store, graph)
    assert runs == {"one": 1}
    assert await _events(redis) == [("node_started", "one"), ("node_completed", "one")]
