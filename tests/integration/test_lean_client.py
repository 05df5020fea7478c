"""store/lean_client.py against a real Redis: a kept connection answers like redis-py's own path, survives being
killed by the server or cut off mid-reply, and never hands one command another command's reply."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.exceptions import ResponseError

from redis_persist.store.connections import RedisConnections, sent_at_most_once
from redis_persist.store.lean_client import KEPT_CONNECTIONS, LeanConnection, LeanRedis

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def client(clean_redis: str) -> AsyncIterator[LeanRedis]:
    """The service's client for the session's Redis (a LeanRedis), closed after the test."""
    lean = RedisConnections.from_url(clean_redis).async_client(max_connections=100, decode_responses=True)
    assert isinstance(lean, LeanRedis)
    yield lean
    await lean.aclose()
    await lean.connection_pool.disconnect()  # a client given its pool leaves it open


@pytest.fixture
async def plain(clean_redis: str) -> AsyncIterator[redis.asyncio.Redis]:
    """redis-py's own client, to compare with or to change keys from outside."""
    other = redis.asyncio.Redis.from_url(clean_redis, decode_responses=True)
    yield other
    await other.aclose()


@pytest.fixture
def admin(clean_redis: str) -> Iterator[redis.Redis]:
    """A synchronous client for CLIENT LIST / CLIENT KILL."""
    sync = redis.Redis.from_url(clean_redis)
    yield sync
    sync.close()


async def _server_drops_kept_connections(client: LeanRedis, admin: redis.Redis) -> None:
    """Redis closes every connection but `admin`'s; returns once the client has read the close of those it kept
    (what a Redis restart looks like to it)."""
    kept_ids = {int(entry["id"]) for entry in admin.client_list() if entry["name"] == ""} - {admin.client_id()}
    assert kept_ids
    kept = list(client._kept)
    for client_id in kept_ids:
        admin.client_kill_filter(_id=client_id)
    deadline = asyncio.get_running_loop().time() + 10
    while not all(conn._reader is None or conn._reader.at_eof() for conn in kept):
        assert asyncio.get_running_loop().time() < deadline, "the client never saw its connections close"
        await asyncio.sleep(0.01)


async def test_replies_are_parsed_as_redis_py_parses_them(client: LeanRedis, plain: redis.asyncio.Redis) -> None:
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


async def test_a_kept_connection_the_server_closed_is_replaced_before_sending(
    client: LeanRedis, admin: redis.Redis,
) -> None:
    """Even an at-most-once command (never re-sent once it may have run) gets through after Redis drops the
    connection the client kept: the pool's readiness check runs before each use, as it did for every command."""
    await client.set("k", "before")
    await _server_drops_kept_connections(client, admin)
    with sent_at_most_once():
        assert await client.incr("counter") == 1
    assert await client.get("k") == "before"


async def test_a_command_cancelled_mid_reply_does_not_leave_its_reply_for_the_next(client: LeanRedis) -> None:
    """(redis-py turns a cancel during a read into a TimeoutError and re-sends: the wait may also just end.)"""
    await client.rpush("list", "item")
    for _ in range(10):
        waiting = asyncio.create_task(client.blpop(["empty"], timeout=0.1))
        await asyncio.sleep(0)  # let it send
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            assert await waiting is None
        assert await client.lrange("list", 0, -1) == ["item"]
        assert await client.get("nope") is None


async def test_many_concurrent_commands_each_get_their_own_reply(client: LeanRedis) -> None:
    async def round_trip(index: int) -> None:
        for step in range(20):
            await client.set(f"k{index}", f"{index}-{step}")
            assert await client.get(f"k{index}") == f"{index}-{step}"

    await asyncio.gather(*(round_trip(index) for index in range(3 * KEPT_CONNECTIONS)))
    assert len(client._kept) <= KEPT_CONNECTIONS


async def test_a_plain_pipeline_answers_as_redis_pys_and_goes_out_on_a_kept_connection(
    client: LeanRedis, plain: redis.asyncio.Redis,
) -> None:
    taken = 0
    get_connection = client.connection_pool.get_connection

    async def counted_get_connection(*args, **kwargs):
        nonlocal taken
        taken += 1
        return await get_connection(*args, **kwargs)

    client.connection_pool.get_connection = counted_get_connection
    await client.set("s", "text")
    assert taken == 1
    for _ in range(5):
        results = []
        for redis_client in (client, plain):
            pipe = redis_client.pipeline(transaction=False)
            pipe.hset("h", mapping={"a": "1"}).hgetall("h").incr("s").get("nope").json().set("j", "$", {"x": [1]})
            pipe.json().get("j", "$.x")
            results.append(await pipe.execute(raise_on_error=False))
            await redis_client.delete("h", "j")
        ours, theirs = results
        assert [type(item) for item in ours] == [type(item) for item in theirs]
        assert ours[:2] + ours[3:] == theirs[:2] + theirs[3:] == [1, {"a": "1"}, None, True, [[1]]]
        assert isinstance(ours[2], ResponseError)  # INCR of a non-number: the error in its place
    assert taken == 1, "a plain pipeline took a connection from the pool instead of a kept one"
    pipe = client.pipeline(transaction=False)
    pipe.set("k", "v").incr("s").get("k")
    with pytest.raises(ResponseError):
        await pipe.execute()
    assert await client.get("k") == "v"  # every reply was read: the connection is in step


async def test_pipelines_and_commands_in_flight_together_each_get_their_own_replies(client: LeanRedis) -> None:
    async def both(index: int) -> None:
        for step in range(10):
            pipe = client.pipeline(transaction=False)
            pipe.set(f"p{index}", step).get(f"p{index}").lpush(f"l{index}", step)
            assert await pipe.execute() == [True, str(step), step + 1]
            assert await client.llen(f"l{index}") == step + 1

    await asyncio.gather(*(both(index) for index in range(2 * KEPT_CONNECTIONS)))
    assert len(client._kept) <= KEPT_CONNECTIONS


async def test_a_pipeline_after_the_server_dropped_the_kept_connection_gets_through(
    client: LeanRedis, admin: redis.Redis,
) -> None:
    await client.set("k", "before")
    await _server_drops_kept_connections(client, admin)
    pipe = client.pipeline(transaction=False)
    pipe.get("k").incr("counter")
    assert await pipe.execute() == ["before", 1]


async def test_a_transaction_still_fails_when_a_watched_key_changes(
    client: LeanRedis, plain: redis.asyncio.Redis,
) -> None:
    await client.set("w", "1")
    async with client.pipeline(transaction=True) as pipe:
        await pipe.watch("w")
        await plain.set("w", "2")
        pipe.multi()
        pipe.set("w", "3")
        with pytest.raises(redis.WatchError):
            await pipe.execute()
    assert await client.get("w") == "2"
    pipe = client.pipeline(transaction=True)
    pipe.set("w", "4").get("w")
    assert await pipe.execute() == [True, "4"]


async def test_two_pipelines_json_commands_each_go_into_their_own_pipeline(client: LeanRedis) -> None:
    first, second = client.pipeline(transaction=False), client.pipeline(transaction=False)
    first.json().set("a", "$", {"n": 1})
    second.json().set("b", "$", {"n": 2})
    second.json().get("b", "$.n")
    assert await first.execute() == [True]
    assert await client.exists("b") == 0
    assert await second.execute() == [True, [2]]
    assert await client.json().get("a", "$.n") == [1]


@pytest.fixture
def wait_fors(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The timeouts of the `asyncio.wait_for` calls redis-py's connections make, recorded."""
    import redis.asyncio.connection as connection_module

    calls: list[float | None] = []
    original = asyncio.wait_for

    async def recorded(awaitable, timeout):  # type: ignore[no-untyped-def]
        calls.append(timeout)
        return await original(awaitable, timeout)

    monkeypatch.setattr(connection_module.asyncio, "wait_for", recorded)
    return calls


async def test_commands_that_cannot_wait_are_sent_without_a_timer(
    client: LeanRedis, wait_fors: list[float | None],
) -> None:
    await client.set("k", "v")  # the first command opens the connection (its handshake is redis-py's)
    assert type(client._kept[0]) is LeanConnection and client._kept[0].socket_timeout
    wait_fors.clear()
    for step in range(20):
        await client.set("k", step)
        pipe = client.pipeline(transaction=False)
        pipe.incr("k").json().set("j", "$", {"step": step})
        assert await pipe.execute() == [step + 1, True]
    assert wait_fors == [], "a small command on an idle connection went through asyncio.wait_for"
    big = "x" * (4 * 1024 * 1024)  # above the transport's high-water mark: the send may wait for the socket
    await client.set("big", big)
    assert wait_fors, "a command that may wait for the socket was sent without its timeout"
    assert await client.strlen("big") == len(big)


@contextlib.asynccontextmanager
async def _stallable_proxy(redis_url: str) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A TCP proxy to Redis that stops reading what clients send once the event is set (a Redis that hangs)."""
    target = redis.asyncio.connection.parse_url(redis_url)
    stalled = asyncio.Event()
    pipes: set[asyncio.Task] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stall: bool) -> None:
        try:
            while data := await reader.read(65536):
                if stall and stalled.is_set():
                    await asyncio.Event().wait()  # never reads again: the client's socket fills up
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(target["host"], target["port"])
        for task in (asyncio.create_task(pipe(reader, upstream_writer, True)),
                     asyncio.create_task(pipe(upstream_reader, writer, False))):
            pipes.add(task)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/{target.get('db', 0)}?socket_timeout=1", stalled
    finally:
        server.close()
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()


@pytest.mark.parametrize("size", [10, 32 * 1024 * 1024], ids=["small", "larger-than-the-socket-buffers"])
async def test_a_command_to_a_redis_that_stopped_reading_times_out(clean_redis: str, size: int) -> None:
    """Small (sent at once, the reply's wait times out) or too large for the socket (the send's wait times
    out): either way the caller gets redis-py's TimeoutError after `socket_timeout`, never a hang."""
    async with _stallable_proxy(clean_redis) as (url, stalled):
        lean = RedisConnections.from_url(url, retries=0).async_client(max_connections=4, decode_responses=True)
        try:
            await lean.set("k", "v")
            stalled.set()
            started = asyncio.get_running_loop().time()
            with pytest.raises(redis.exceptions.TimeoutError):
                await asyncio.wait_for(lean.set("k", "x" * size), 30)
            assert asyncio.get_running_loop().time() - started < 10
        finally:
            await lean.aclose()
            await lean.connection_pool.disconnect()
