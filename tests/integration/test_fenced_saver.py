"""The checkpointer is fenced: without the task's current lease token it writes no checkpoint."""

from __future__ import annotations

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from redis_persist.core.errors import LeaseLost
from redis_persist.engine.graphs import compile_graph
from redis_persist.engine.saver import FENCE_KEY, fenced_saver
from redis_persist.examples.data_pipeline import builder
from redis_persist.store import keys


@pytest.fixture
async def clients(clean_redis):
    saver_client = Redis(connection_pool=BlockingConnectionPool.from_url(clean_redis, timeout=None))
    lease_client = Redis.from_url(clean_redis, decode_responses=True)
    yield saver_client, lease_client
    await saver_client.aclose()
    await saver_client.connection_pool.disconnect()  # a pool passed in is not closed by aclose()
    await lease_client.aclose()


@pytest.mark.parametrize("history", ["all", "latest"])
async def test_writes_need_the_current_lease_token(clients, history) -> None:
    saver_client, lease_client = clients
    saver = fenced_saver(history, saver_client, lease_client)
    await saver.asetup()
    graph = compile_graph(builder, saver, node_timeout_seconds=None)
    config = {"configurable": {"thread_id": "fenced"}}

    with pytest.raises(LeaseLost):  # no fence travels with the work
        await graph.ainvoke({"step_seconds": 0}, config)
    assert await saver.aget_tuple(config) is None

    config["configurable"][FENCE_KEY] = ["fenced", "replica-a:1"]
    await lease_client.set(keys.lease("fenced"), "replica-b:2")  # someone else took the task over
    with pytest.raises(LeaseLost):
        await graph.ainvoke({"step_seconds": 0}, config)
    assert await saver.aget_tuple(config) is None

    await lease_client.set(keys.lease("fenced"), "replica-a:1")
    result = await graph.ainvoke({"step_seconds": 0}, config)
    assert result["saved"] is True
    assert (await saver.aget_tuple(config)).checkpoint["channel_values"]["saved"] is True
