"""Our checkpoint writes store exactly what the library's own AsyncRedisSaver stores: same keys, same
documents, same latest pointers, same reads afterwards. Ours: the one-round-trip `aput`
(engine/saver._OneRoundTripPut) with the serializer every fenced saver uses (engine/checkpoint_serde), on the
client the service gives it (store/lean_client.LeanRedis, whose pipelines build their JSON commands once).

The checkpoints are real: a LangGraph graph with a subgraph (a non-empty checkpoint namespace) and LangChain
messages runs on a recording in-memory saver, and its `aput` calls are replayed into each saver.
"""

from __future__ import annotations

import asyncio
import copy
import json
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from redis.asyncio import Redis

from redis_persist.engine.checkpoint_serde import PlainFirstSerializer
from redis_persist.engine.saver import _OneRoundTripPut
from redis_persist.store.connections import RedisConnections
from redis_persist.store.lean_client import LeanRedis


class _Inner(TypedDict):
    steps: Annotated[list[str], operator.add]


class _State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    steps: Annotated[list[str], operator.add]
    data: dict[str, Any]


def _graph(saver: Any) -> Any:
    inner = StateGraph(_Inner)
    inner.add_node("inner_a", lambda state: {"steps": ["inner_a"]})
    inner.add_edge(START, "inner_a")
    inner.add_edge("inner_a", END)
    outer = StateGraph(_State)
    outer.add_node("ask", lambda state: {"messages": [HumanMessage("héllo \u2603", id="h1")], "steps": ["ask"],
                                         "data": {"n": 1, "f": 2.5, "nested": [[{"x": None}]], "t": True}})
    outer.add_node("sub", inner.compile())
    outer.add_node("answer", lambda state: {"messages": [AIMessage("ok", id="a1")], "steps": ["answer"]})
    outer.add_edge(START, "ask")
    outer.add_edge("ask", "sub")
    outer.add_edge("sub", "answer")
    outer.add_edge("answer", END)
    return outer.compile(checkpointer=saver)


class _Ours(_OneRoundTripPut):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.serde = PlainFirstSerializer()


class _Recording(InMemorySaver):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[tuple[Any, ...]] = []
        self.recorded_writes: list[tuple[Any, ...]] = []

    async def aput_writes(self, config, writes, task_id, task_path=""):  # type: ignore[no-untyped-def]
        plain = {name: value for name, value in config["configurable"].items() if not name.startswith("__")}
        self.recorded_writes.append(copy.deepcopy(({"configurable": plain}, writes, task_id, task_path)))
        return await super().aput_writes(config, writes, task_id, task_path)

    async def aput(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        # LangGraph's own runtime entries (`__pregel_...`) cannot be copied, and no saver reads them.
        plain = {name: value for name, value in config["configurable"].items() if not name.startswith("__")}
        self.puts.append(copy.deepcopy(({"configurable": plain}, checkpoint, metadata, new_versions)))
        return await super().aput(config, checkpoint, metadata, new_versions)


@pytest.fixture
async def recording() -> _Recording:
    recording = _Recording()
    config = {"configurable": {"thread_id": "thread-1", "run_id": "run-1"}}
    await _graph(recording).ainvoke({"messages": [], "steps": [], "data": {}}, config, subgraphs=True)
    namespaces = {put[0]["configurable"]["checkpoint_ns"] for put in recording.puts}
    assert len(recording.puts) >= 5 and "" in namespaces and len(namespaces) >= 2  # the subgraph's too
    assert len(recording.recorded_writes) >= 4
    return recording


@pytest.fixture
def recorded_puts(recording: _Recording) -> list[tuple[Any, ...]]:
    return recording.puts


@pytest.fixture
async def client(clean_redis: str):
    redis = Redis.from_url(clean_redis)
    # Built as the service builds its saver's client: LangGraph writes a step's checkpoint in the background while
    # the next steps run, so a fast graph has many writes in flight, and a plain pool (what LeanRedis.from_url
    # makes) fails past its 100 connections where the service's blocking pool makes callers wait.
    lean = RedisConnections.from_url(clean_redis).async_client(max_connections=100, decode_responses=False)
    assert isinstance(lean, LeanRedis)
    redis.lean = lean  # type: ignore[attr-defined]  # ours writes through it, the library through `redis`
    yield redis
    await lean.aclose()
    await lean.connection_pool.disconnect()  # a client given its pool leaves it open
    await redis.aclose()


async def _stored(redis: Redis) -> dict[str, Any]:
    """Every checkpoint document (checkpoint_ts apart) and latest pointer in Redis, by key."""
    stored: dict[str, Any] = {}
    async for key in redis.scan_iter(match="checkpoint*", count=1000):
        name = key.decode()
        if name.startswith("checkpoint_latest:"):
            stored[name] = (await redis.get(key)).decode()
        elif name.startswith(("checkpoint:", "checkpoint_write:")):
            raw = await redis.execute_command("JSON.GET", key)  # parsed already once redis-py's JSON is loaded
            document = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
            timestamp = document.pop("checkpoint_ts", None)
            assert timestamp is None or isinstance(timestamp, (int, float))
            stored[name] = document
    return stored


async def _replay(saver_class: type[AsyncRedisSaver], redis: Redis, recording: _Recording,
                  ) -> tuple[dict[str, Any], list[Any], list[Any]]:
    await redis.flushall()
    saver = saver_class(redis_client=redis.lean if saver_class is _Ours else redis)  # type: ignore[attr-defined]
    await saver.asetup()
    answers = [await saver.aput(*copy.deepcopy(put)) for put in recording.puts]
    for write in recording.recorded_writes:
        await saver.aput_writes(*copy.deepcopy(write))
    listed = [(item.config, item.checkpoint, item.metadata, item.parent_config, item.pending_writes)
              async for item in saver.alist({"configurable": {"thread_id": "thread-1"}})]
    return await _stored(redis), answers, listed


async def test_our_checkpoint_writes_store_what_the_librarys_store(client, recording) -> None:
    library = await _replay(AsyncRedisSaver, client, recording)
    ours = await _replay(_Ours, client, recording)
    stored, answers, listed = ours
    assert stored == library[0]
    assert answers == library[1]
    assert listed == library[2] and len(listed) == len(recording.puts)
    assert sum(key.startswith("checkpoint_latest:") for key in stored) >= 2
    assert sum(key.startswith("checkpoint_write:") for key in stored) >= len(recording.recorded_writes)


async def test_a_put_cancelled_mid_write_leaves_what_the_library_leaves(client, recorded_puts) -> None:
    """The library, cancelled during its write, still stores the checkpoint marked interrupted (no latest
    pointer, no list fields) and re-raises; ours does the same."""
    results = []
    for saver_class in (AsyncRedisSaver, _Ours):
        await client.flushall()
        redis_client = client.lean if saver_class is _Ours else client
        saver = saver_class(redis_client=redis_client)
        await saver.asetup()
        pipeline_class = type(redis_client.pipeline())  # LeanRedis's pipeline has an execute of its own
        real_execute, cancelled = pipeline_class.execute, []

        async def execute_once_cancelled(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not cancelled:
                cancelled.append(True)
                raise asyncio.CancelledError
            return await real_execute(self, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pipeline_class, "execute", execute_once_cancelled)
            with pytest.raises(asyncio.CancelledError):
                await saver.aput(*copy.deepcopy(recorded_puts[1]))
        results.append(await _stored(client))
    assert results[0] == results[1]
    (document,) = results[1].values()
    assert json.loads(document["metadata"])["interrupted"] is True
