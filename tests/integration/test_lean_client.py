"""store/lean_client.py against a real Redis: a kept connection answers like redis-py's own path, survives being
killed by the server or cut off mid-reply, and never hands one command another command's reply."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis
from redis.exceptions import ResponseError

from redis_persist.store.connections import RedisConnections, sent_at_most_once
from redis_persist.store.lean_client import KEPT_CONNECTIONS, LeanRedis

pytestmark = pytest.mark.asyncio


def _client(url: str) -> LeanRedis:
    client = RedisConnections.from_url(url).async_client(max_connections=100, decode_responses=True)
    assert isinstance(client, LeanRedis)
    return client


async def test_replies_are_parsed_as_redis_py_parses_them(clean_redis: str) -> None:
    client = _client(clean_redis)
    plain = redis.asyncio.Redis.from_url(clean_redis, decode_responses=True)
    try:
        await client.hset("h", mapping={"a": "1", "b": "é"})
        await client.zadd("z", {"x": 1.5, "y": 2})
        commands = (("HGETALL", "h"), ("ZRANGE", "z", 0, -1, "WITHSCORES"), ("EXISTS", "h", "nope"), ("GET", "nope"))
        for command in commands:
            assert await client.execute_command(*command) == await plain.execute_command(*command)
        assert await client.zrevrangebyscore("z", "+inf", "-inf", withscores=True) == [("y", 2.0), ("x", 1.5)]
        assert await client.hgetall("h") == {"a": "1", "b": "é"}
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await client.get("h")
        assert await client.get("nope") is None  # an error reply leaves nothing behind on the connection
    finally:
        await client.aclose()
        await plain.aclose()


async def test_a_kept_connection_the_server_closed_is_replaced_before_sending(clean_redis: str) -> None:
    """Even an at-most-once command (never re-sent once it may have run) gets through after Redis drops the
    connection the client kept: the pool's readiness check runs before each use, as it did for every command."""
    client = _client(clean_redis)
    admin = redis.Redis.from_url(clean_redis)
    try:
        await client.set("k", "before")
        kept_ids = {int(entry["id"]) for entry in admin.client_list() if entry["name"] == ""} - {admin.client_id()}
        assert kept_ids
        kept = list(client._kept)
        for client_id in kept_ids:
            admin.client_kill_filter(_id=client_id)
        # What a Redis restart looks like to the client once its event loop has read the close.
        deadline = asyncio.get_running_loop().time() + 10
        while not all(conn._reader is None or conn._reader.at_eof() for conn in kept):
            assert asyncio.get_running_loop().time() < deadline, "the client never saw its connections close"
            await asyncio.sleep(0.01)
        with sent_at_most_once():
            assert await client.incr("counter") == 1
        assert await client.get("k") == "before"
    finally:
        await client.aclose()
        admin.close()


async def test_a_command_cancelled_mid_reply_does_not_leave_its_reply_for_the_next(clean_redis: str) -> None:
    """(redis-py turns a cancel during a read into a TimeoutError and re-sends: the wait may also just end.)"""
    client = _client(clean_redis)
    try:
        await client.rpush("list", "item")
        for _ in range(10):
            waiting = asyncio.create_task(client.blpop(["empty"], timeout=0.1))
            await asyncio.sleep(0)  # let it send
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                assert await waiting is None
            assert await client.lrange("list", 0, -1) == ["item"]
            assert await client.get("nope") is None
    finally:
        await client.aclose()


async def test_many_concurrent_commands_each_get_their_own_reply(clean_redis: str) -> None:
    client = _client(clean_redis)
    try:
        async def round_trip(index: int) -> None:
            for step in range(20):
                await client.set(f"k{index}", f"{index}-{step}")
                assert await client.get(f"k{index}") == f"{index}-{step}"

        await asyncio.gather(*(round_trip(index) for index in range(3 * KEPT_CONNECTIONS)))
        assert len(client._kept) <= KEPT_CONNECTIONS
    finally:
        await client.aclose()
