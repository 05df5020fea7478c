"""Deleting a thread's checkpoints (a finished task's compaction, a deleted task or thread) from the thread key
registry (engine/saver._OneRoundTripPut.adelete_thread) leaves exactly what the library's RediSearch-driven
delete leaves, touches no other thread, and falls back to the library's way for a registry it cannot trust."""

from __future__ import annotations

import copy
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from langgraph.graph import END, START, StateGraph
from redis.asyncio import Redis

from redis_persist.engine.saver import REGISTRY_COMPLETE
from redis_persist.store import keys
from tests.integration.test_saver_put import _graph, _Ours, _Recording
from tests.integration.test_saver_put import client  # noqa: F401 - the fixture: Redis, with .lean for ours

pytestmark = pytest.mark.asyncio


async def _recording(thread_id: str) -> _Recording:
    recording = _Recording()
    config = {"configurable": {"thread_id": thread_id, "run_id": f"run-of-{thread_id}"}}
    await _graph(recording).ainvoke({"messages": [], "steps": [], "data": {}}, config, subgraphs=True)
    return recording


@pytest.fixture
async def recordings() -> list[_Recording]:
    return [await _recording("thread-1"), await _recording("thread-2")]


async def _filled(saver_class: type[AsyncRedisSaver], redis: Redis, recordings: list[_Recording]) -> AsyncRedisSaver:
    await redis.flushall()
    saver = saver_class(redis_client=redis.lean if saver_class is _Ours else redis)  # type: ignore[attr-defined]
    await saver.asetup()
    for recording in recordings:
        for put in recording.puts:
            await saver.aput(*copy.deepcopy(put))
        for write in recording.recorded_writes:
            await saver.aput_writes(*copy.deepcopy(write))
    return saver


async def _keys(redis: Redis) -> set[str]:
    return {key.decode() async for key in redis.scan_iter(count=1000)}


async def _searches(redis: Redis) -> int:
    return int((await redis.info("commandstats")).get("cmdstat_FT.SEARCH", {}).get("calls", 0))


async def test_deleting_a_thread_leaves_what_the_librarys_delete_leaves(client, recordings) -> None:
    library = await _filled(AsyncRedisSaver, client, recordings)
    await library.adelete_thread("thread-1")
    left_by_library = await _keys(client)

    ours = await _filled(_Ours, client, recordings)
    before = await _keys(client)
    assert keys.checkpoint_keys("thread-1") in before
    assert any(key.startswith("checkpoint_write:thread-1:") for key in before)  # writes to delete
    assert any(key.startswith("write_keys_zset:thread-1:") for key in before)
    searches = await _searches(client)
    await ours.adelete_thread("thread-1")
    assert await _searches(client) == searches, "the registry was complete: no RediSearch query needed"
    left = await _keys(client)
    assert left - {keys.checkpoint_keys("thread-2")} == left_by_library
    assert not [key for key in left if "thread-1" in key]
    assert any(key.startswith("checkpoint:thread-2:") for key in left)
    assert await ours.aget_tuple({"configurable": {"thread_id": "thread-2", "checkpoint_ns": ""}}) is not None
    assert await ours.aget_tuple({"configurable": {"thread_id": "thread-1", "checkpoint_ns": ""}}) is None


async def test_a_registry_without_its_first_checkpoint_is_not_trusted(client, recordings) -> None:
    """A thread begun before the registry existed (here: its completeness mark removed) is deleted the
    library's way, registry and all."""
    ours = await _filled(_Ours, client, recordings[:1])
    await client.srem(keys.checkpoint_keys("thread-1"), REGISTRY_COMPLETE)
    await client.srem(keys.checkpoint_keys("thread-1"), *[key async for key in client.scan_iter("checkpoint:*")])
    searches = await _searches(client)
    await ours.adelete_thread("thread-1")
    assert await _searches(client) > searches
    assert await _keys(client) == set()


class _Counter(TypedDict):
    count: Annotated[int, operator.add]


async def test_a_thread_of_more_checkpoints_than_one_batch_is_deleted_whole(client) -> None:
    graph = StateGraph(_Counter)
    graph.add_node("step", lambda state: {"count": 1})
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda state: END if state["count"] >= 600 else "step")
    await client.flushall()
    saver = _Ours(redis_client=client.lean)  # type: ignore[attr-defined]
    await saver.asetup()
    config: dict[str, Any] = {"configurable": {"thread_id": "long"}, "recursion_limit": 1500}
    assert (await graph.compile(checkpointer=saver).ainvoke({"count": 0}, config))["count"] == 600
    assert await client.scard(keys.checkpoint_keys("long")) > 1000  # more than one script call's batch
    searches = await _searches(client)
    await saver.adelete_thread("long")
    assert await _searches(client) == searches
    assert await _keys(client) == set()
