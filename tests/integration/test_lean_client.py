"""store/lean_client.py against a real Redis: a kept connection answers like redis-py's own path, survives being
killed by the server or cut off mid-reply, and never hands one command another command's reply."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.exceptions import ResponseError

from redis_persist.store.connections import RedisConnections, _may_have_run, sent_at_most_once
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
    shared = client._shared
    assert shared is not None
    while not (shared._is_broken and all(conn._reader is None or conn._reader.at_eof() for conn in kept)):
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


@pytest.mark.parametrize("transaction", [False, True], ids=["plain, this client's path", "MULTI, redis-py's path"])
async def test_a_pipeline_with_json_commands_is_freed_without_the_garbage_collector(
        client: LeanRedis, collector_off: None, transaction: bool) -> None:
    # A task process with thousands of tasks waiting made one such pipeline per pending write; left in a cycle,
    # they were most of what its collections had to find (bench/README.md, "Young collections on a timer").
    for run_again in (False, True):
        pipe = client.pipeline(transaction=transaction)
        pipe.json().set("doc", "$", {"n": 1})
        pipe.json().get("doc", "$.n")
        assert await pipe.execute() == [True, [1]]
        if run_again:  # reused after running, as redis-py allows
            pipe.json().set("doc", "$.n", 2)
            assert await pipe.execute() == [True]
        freed = weakref.ref(pipe)
        del pipe
        assert freed() is None


async def test_a_pipeline_left_by_its_context_is_freed_without_the_garbage_collector(
        client: LeanRedis, collector_off: None) -> None:
    async with client.pipeline(transaction=False) as pipe:
        pipe.json().set("doc", "$", {"n": 1})  # queued, never executed: the context resets it
    freed = weakref.ref(pipe)
    del pipe
    assert freed() is None
    assert await client.exists("doc") == 0


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
    """On a kept connection (commands that may not share one, such as WAIT), as on the shared connection."""
    await client.wait(0, 0)  # the first command opens the connection (its handshake is redis-py's)
    assert type(client._kept[0]) is LeanConnection and client._kept[0].socket_timeout
    wait_fors.clear()
    for step in range(20):
        await client.set("k", step)
        assert await client.wait(0, 0) == 0
        pipe = client.pipeline(transaction=False)
        pipe.incr("k").json().set("j", "$", {"step": step}).wait(0, 0)
        assert await pipe.execute() == [step + 1, True, 0]
    assert wait_fors == [], "a small command on an idle connection went through asyncio.wait_for"
    big = "x" * (4 * 1024 * 1024)  # above the transport's high-water mark: the send may wait for the socket
    pipe = client.pipeline(transaction=False)
    pipe.set("big", big).wait(0, 0)
    await pipe.execute()
    assert wait_fors, "a command that may wait for the socket was sent without its timeout"
    assert await client.strlen("big") == len(big)


class _Proxy:
    """A TCP proxy to Redis whose connections can be stalled (they stop reading what the client sends: a Redis that
    hangs, or a network path that went silent) or cut."""

    def __init__(self) -> None:
        self.url = ""
        self.stalls_new_connections = False
        self._stalled: list[asyncio.Event] = []  # one per client connection: set, it stops reading
        self._writers: list[asyncio.StreamWriter] = []

    def stall(self, new_connections_too: bool = True) -> None:
        for stalled in self._stalled:
            stalled.set()
        self.stalls_new_connections = new_connections_too

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()


@contextlib.asynccontextmanager
async def _proxy(redis_url: str) -> AsyncIterator[_Proxy]:
    target = redis.asyncio.connection.parse_url(redis_url)
    proxy = _Proxy()
    pipes: set[asyncio.Task] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stalled: asyncio.Event | None) -> None:
        try:
            while data := await reader.read(65536):
                if stalled is not None and stalled.is_set():
                    await asyncio.Event().wait()  # never reads again: the client's socket fills up
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(target["host"], target["port"])
        stalled = asyncio.Event()
        if proxy.stalls_new_connections:
            stalled.set()
        proxy._stalled.append(stalled)
        proxy._writers += [writer, upstream_writer]
        for task in (asyncio.create_task(pipe(reader, upstream_writer, stalled)),
                     asyncio.create_task(pipe(upstream_reader, writer, None))):
            pipes.add(task)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy.url = f"redis://127.0.0.1:{port}/{target.get('db', 0)}?socket_timeout=1"
    try:
        yield proxy
    finally:
        server.close()
        proxy.cut()
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def _client_through(proxy: _Proxy, retries: int = 0, health_check_seconds: float = 5.0,
                          ) -> AsyncIterator[LeanRedis]:
    lean = RedisConnections.from_url(proxy.url, retries=retries, health_check_seconds=health_check_seconds)
    client = lean.async_client(max_connections=4, decode_responses=True)
    assert isinstance(client, LeanRedis)
    try:
        yield client
    finally:
        await client.aclose()
        await client.connection_pool.disconnect()


@pytest.mark.parametrize("size", [10, 32 * 1024 * 1024], ids=["small", "larger-than-the-socket-buffers"])
async def test_a_command_to_a_redis_that_stopped_reading_times_out(clean_redis: str, size: int) -> None:
    """Small or too large for the socket: either way the caller gets redis-py's TimeoutError after
    `socket_timeout`, never a hang; and once Redis answers again, so does the client."""
    async with _proxy(clean_redis) as proxy, _client_through(proxy) as lean:
        await lean.set("k", "v")
        proxy.stall()
        started = asyncio.get_running_loop().time()
        with pytest.raises(redis.exceptions.TimeoutError):
            await asyncio.wait_for(lean.set("k", "x" * size), 30)
        assert asyncio.get_running_loop().time() - started < 10
        proxy.stalls_new_connections = False
        assert await lean.get("nope") is None


# --- the shared connection (store/shared_connection.py) ------------------------------------------------------


async def test_concurrent_callers_share_one_connection_and_few_writes(client: LeanRedis, admin: redis.Redis,
                                                                      ) -> None:
    await client.set("warm", 1)
    shared = client._shared
    assert shared is not None and shared._conn is not None
    writer = shared._conn._writer
    writes = 0
    writelines = writer.writelines

    def counted(data):  # type: ignore[no-untyped-def]
        nonlocal writes
        writes += 1
        return writelines(data)

    writer.writelines = counted  # type: ignore[method-assign]

    async def caller(index: int) -> None:
        for step in range(5):
            pipe = client.pipeline(transaction=False)
            pipe.set(f"k{index}", step).incr(f"n{index}")
            assert await pipe.execute() == [True, step + 1]
            assert await client.get(f"k{index}") == str(step)

    await asyncio.gather(*(caller(index) for index in range(500)))
    assert writes <= 50, f"5,000 commands of 500 callers took {writes} writes"
    connections = [entry for entry in admin.client_list() if int(entry["id"]) != admin.client_id()]
    assert len(connections) == 1, "the callers took connections of their own"


async def test_a_caller_cancelled_while_waiting_leaves_its_reply_to_nobody(client: LeanRedis) -> None:
    # Busy for ~100 ms (a script's TIME stands still while it runs: counting it is), then INCR.
    slow = "local n = 0 for i = 1, 30000000 do n = n + 1 end return redis.call('INCR', KEYS[1])"
    await client.set("k", "mine")
    for _ in range(5):
        waiting = asyncio.create_task(client.eval(slow, 1, "counter"))
        await asyncio.sleep(0.01)  # sent, and Redis is running it
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await client.get("k") == "mine"  # not the script's reply, which arrives first
    assert await client.get("counter") == "5"  # each cancelled script ran once: nothing was sent again


async def test_error_replies_stay_in_their_place_among_concurrent_callers(client: LeanRedis) -> None:
    await client.hset("h", "f", "v")

    async def wrong(index: int) -> None:
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await client.get("h")
        pipe = client.pipeline(transaction=False)
        pipe.set(f"s{index}", index).get("h").get(f"s{index}")
        first, error, last = await pipe.execute(raise_on_error=False)
        assert (first, last) == (True, str(index)) and isinstance(error, ResponseError)

    async def right(index: int) -> None:
        assert await client.hget("h", "f") == "v"

    await asyncio.gather(*(coroutine(index) for index in range(100) for coroutine in (wrong, right)))


async def test_a_blocking_command_does_not_hold_up_the_others(client: LeanRedis) -> None:
    blocked = asyncio.create_task(client.blpop(["empty"], timeout=5))
    for step in range(20):
        await client.set("k", step)
        assert await client.get("k") == str(step)
    assert not blocked.done(), "the blocking read should still be waiting"
    await client.rpush("empty", "item")
    assert await asyncio.wait_for(blocked, 5) == ("empty", "item")


async def test_a_reply_asked_for_undecoded_comes_undecoded(client: LeanRedis) -> None:
    from redis.asyncio.client import NEVER_DECODE

    await client.set("k", "é")
    assert await client.execute_command("GET", "k", **{NEVER_DECODE: True}) == "é".encode()
    assert await client.get("k") == "é"


async def test_a_cut_connection_fails_what_may_have_run_and_resends_the_rest(clean_redis: str,
                                                                          plain: redis.asyncio.Redis) -> None:
    """Commands in flight when the connection breaks may have run: an at-most-once one fails with redis-py's
    'Error while reading', any other is sent again on a new connection (store/connections.py's policy)."""
    async with _proxy(clean_redis) as proxy, _client_through(proxy, retries=3) as lean:
        await lean.set("k", "v")
        proxy.stall(new_connections_too=False)

        async def at_most_once() -> int:
            with sent_at_most_once():
                return await lean.incr("counter")

        in_flight = [asyncio.create_task(at_most_once()), asyncio.create_task(lean.get("k"))]
        await asyncio.sleep(0.1)  # both written, neither answered
        proxy.cut()
        once, again = await asyncio.gather(*in_flight, return_exceptions=True)
        assert isinstance(once, redis.exceptions.ConnectionError) and _may_have_run(once)
        assert again == "v"
        assert await plain.get("counter") is None  # (it had not reached Redis: the stalled proxy held it)


async def test_a_silent_connection_is_checked_before_an_at_most_once_command(clean_redis: str,
                                                                            plain: redis.asyncio.Redis) -> None:
    """Idle longer than the health check interval, the connection gets a PING first: a path that went silent
    fails that check (safe to retry), so the command itself goes out once, on a new connection."""
    async with _proxy(clean_redis) as proxy, _client_through(proxy, retries=3, health_check_seconds=0.2) as lean:
        await lean.set("k", "v")
        proxy.stall(new_connections_too=False)
        await asyncio.sleep(0.3)
        with sent_at_most_once():
            assert await lean.incr("counter") == 1
        assert await plain.get("counter") == "1"
