"""A three-node LangGraph chain that counts each node's runs, and how the runner tests run a graph: the
Redis clients a replica gives its store and its saver, and task t1 created, claimed and run by TaskRunner."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from redis.asyncio import BlockingConnectionPool, Redis

from redis_persist.engine.graphs import GraphRegistry, LoadedGraph
from redis_persist.engine.runner import TaskRunner
from redis_persist.engine.storage_faults import StorageFaultCounter
from redis_persist.store.tasks import TaskStore

NODES = ["one", "two", "three"]


class State(TypedDict, total=False):
    done: Annotated[list[str], operator.add]


def counted_chain(runs: Counter[str], inside: Callable[[str], Awaitable[None]] | None = None) -> StateGraph:
    """one -> two -> three; each node counts itself in `runs`, then awaits `inside(its name)` if given."""
    def step(name: str):  # type: ignore[no-untyped-def]
        async def node(_state: State) -> dict[str, Any]:
            runs[name] += 1
            if inside is not None:
                await inside(name)
            return {"done": [name]}
        return node

    builder = StateGraph(State)
    previous = START
    for name in NODES:
        builder.add_node(name, step(name))
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder


@asynccontextmanager
async def runner_clients(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """(the store's client, decoding replies; the saver's client on a blocking pool), both closed after."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    saver_client = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url, timeout=None))
    try:
        yield redis, saver_client
    finally:
        await saver_client.aclose()
        await saver_client.connection_pool.disconnect()  # a pool passed in is not closed by aclose()
        await redis.aclose()


async def run_task(store: TaskStore, graph: Any, faults: StorageFaultCounter | None = None) -> None:
    """Create task t1 on the compiled `graph` (registered as "chain"), claim it as replica r1, run it to its end."""
    graphs = GraphRegistry({"chain": LoadedGraph("chain", graph, NODES, [])})
    await store.create("t1", "chain", {}, request_hash="h")
    token = await store.claim("t1", "r1", lease_ttl_ms=30_000)
    await TaskRunner(store, graphs, "r1", faults or StorageFaultCounter()).run("t1", token)
