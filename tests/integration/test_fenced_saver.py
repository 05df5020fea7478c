"""The checkpointer is fenced: without the task's current lease token it writes no checkpoint."""

from __future__ import annotations

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from redis_persist.core.errors import LeaseLost
from redis_persist.engine.graphs import compile_graph
from redis_persist.engine.saver import FENCE_KEY, Fence, fence_clock, fenced_saver
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


def _count_lease_reads(lease_client, lease_id: str) -> list[str]:
    """Spy on the saver's lease client: the keys of the lease GETs it sends (the real GET still runs)."""
    seen: list[str] = []
    real_get = lease_client.get

    async def get(name, *args, **kwargs):
        if name == keys.lease(lease_id):
            seen.append(name)
        return await real_get(name, *args, **kwargs)

    lease_client.get = get
    return seen


@pytest.mark.parametrize("history", ["all", "latest"])
async def test_a_stale_confirmation_is_checked_again_and_refused_once_the_lease_is_gone(clients, history) -> None:
    # A replica woken after a pause (SIGSTOP, VM freeze) holds an old confirmation: it must ask Redis again.
    saver_client, lease_client = clients
    saver = fenced_saver(history, saver_client, lease_client)
    await saver.asetup()
    graph = compile_graph(builder, saver, node_timeout_seconds=None)
    fence = Fence("stale", "replica-a:1")
    fence.confirmed(fence_clock() - 60)  # confirmed a minute ago
    config = {"configurable": {"thread_id": "stale", FENCE_KEY: fence}}
    await lease_client.set(keys.lease("stale"), "replica-a:1")
    await lease_client.delete(keys.lease("stale"))  # ended explicitly (cancel, interrupt, rollback)

    with pytest.raises(LeaseLost):
        await graph.ainvoke({"step_seconds": 0}, config)
    assert await saver.aget_tuple(config) is None


@pytest.mark.parametrize("history", ["all", "latest"])
async def test_an_unconfirmed_fence_is_checked_and_refused_under_another_token(clients, history) -> None:
    saver_client, lease_client = clients
    saver = fenced_saver(history, saver_client, lease_client)
    await saver.asetup()
    graph = compile_graph(builder, saver, node_timeout_seconds=None)
    config = {"configurable": {"thread_id": "taken", FENCE_KEY: Fence("taken", "replica-a:1")}}
    await lease_client.set(keys.lease("taken"), "replica-b:2")  # taken over

    with pytest.raises(LeaseLost):
        await graph.ainvoke({"step_seconds": 0}, config)
    assert await saver.aget_tuple(config) is None


async def test_a_successful_check_confirms_the_fence_for_the_next_writes_only_while_fresh(clients) -> None:
    saver_client, lease_client = clients
    await lease_client.set(keys.lease("fresh"), "replica-a:1")
    reads = _count_lease_reads(lease_client, "fresh")

    # Never fresh: every write checks (a plain [lease id, token] fence behaves the same).
    strict = fenced_saver("all", saver_client, lease_client, confirmation_max_age_seconds=0)
    await strict.asetup()
    graph = compile_graph(builder, strict, node_timeout_seconds=None)
    await graph.ainvoke({"step_seconds": 0},
                        {"configurable": {"thread_id": "fresh-1", FENCE_KEY: Fence("fresh", "replica-a:1")}})
    writes_checked = len(reads)
    assert writes_checked > 4
    reads.clear()
    await graph.ainvoke({"step_seconds": 0}, {"configurable": {"thread_id": "fresh-2", FENCE_KEY: ["fresh", "replica-a:1"]}})
    assert len(reads) == writes_checked

    # Fresh for longer than the run: the first writes check (LangGraph may send a few before the first
    # answer, more on a loaded machine), the run's later writes rely on that confirmation.
    reads.clear()
    saver = fenced_saver("all", saver_client, lease_client, confirmation_max_age_seconds=60)
    graph = compile_graph(builder, saver, node_timeout_seconds=None)
    before = fence_clock()
    fence = Fence("fresh", "replica-a:1")
    await graph.ainvoke({"step_seconds": 0}, {"configurable": {"thread_id": "fresh-3", FENCE_KEY: fence}})
    assert 1 <= len(reads) <= writes_checked - 3, (len(reads), writes_checked)
    assert fence.confirmed_at >= before
