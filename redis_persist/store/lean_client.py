"""redis-py's asyncio client with a shorter path for single commands and plain pipelines.

redis-py 8 spends most of a command's CPU outside the socket: taking the connection from the pool
(condition, lock, timeout, observability hooks) and giving it back, each ~40-75 µs. With 60-80 commands per
task and every poll a command, that is a large share of a replica's CPU (bench/README.md, "Lean client").
Single commands and plain pipelines go out on one connection shared by all callers (store/shared_connection.py);
redis-py still parses the replies (response callbacks, errors in place) and the connection's retry policy
still applies (store/connections.py: which errors may be re-sent). Commands that may not share a connection
(blocking reads, WAIT, undecoded replies) run on a stack of connections kept between commands, with the pool's
readiness check before each use; their connections send without a timer when sending cannot wait. MULTI/WATCH
pipelines, Pub/Sub and scripts' loading go through redis-py as before; a client builds its pipelines' RedisJSON
command object once.
"""
from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import NEVER_DECODE, Pipeline
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from redis_persist.store.shared_connection import SharedConnection, can_share

# Connections held between commands; more concurrent commands than this take theirs from the pool and give
# them back. Bounded so one burst does not keep hundreds of sockets out of the pool for good.
KEPT_CONNECTIONS = 64


class _SendsWithoutTimer:
    """A connection that sends a command without `asyncio.wait_for` when the send cannot wait.

    redis-py bounds every send by `socket_timeout` with `asyncio.wait_for`, which on Python 3.11 runs the send as
    a task of its own, with a timer: ~8 % of a task process's CPU with 10,000 tasks waiting (bench/README.md,
    "Sends without a timer"). A send waits only when the writer pauses, which it does once the transport buffers
    more than its high-water mark. With nothing buffered and a command below that mark, the write is taken at
    once and the timeout has nothing to bound. Anything else (a connection to open or closing, data still
    buffered, a large command) goes through redis-py's send, timeout included; the health check runs first as
    redis-py runs it."""

    async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
        writer = self._writer  # type: ignore[attr-defined]
        if not self.is_connected or type(command) is not list:  # type: ignore[attr-defined]
            return await super().send_packed_command(command, check_health)  # type: ignore[misc]
        if check_health:
            await self.check_health()  # type: ignore[attr-defined]
        transport = writer.transport
        if (transport.is_closing() or transport.get_write_buffer_size()
                or sum(map(len, command)) > transport.get_write_buffer_limits()[1]):
            return await super().send_packed_command(command, check_health=False)  # type: ignore[misc]
        try:
            writer.writelines(command)
        except OSError as error:  # as redis-py reports a failed write
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisConnectionError(f"Error while writing to socket. {error}.") from error
        return None


class LeanConnection(_SendsWithoutTimer, Connection):
    """redis-py's TCP connection, sending without a timer when it cannot wait."""


class LeanSSLConnection(_SendsWithoutTimer, SSLConnection):
    """redis-py's TLS connection, sending without a timer when it cannot wait."""


class LeanUnixDomainSocketConnection(_SendsWithoutTimer, UnixDomainSocketConnection):
    """redis-py's Unix socket connection, sending without a timer when it cannot wait."""


class _OneJsonPipeline(Pipeline):
    """A pipeline whose `json()` is built once per client: redis-py builds a new RedisJSON command object, with 13
    reply callbacks set again, at every call. The checkpointer calls it once per pending write it queues
    (a quarter of `aput_writes`'s CPU, bench/README.md, "One round trip per checkpoint"), on a new pipeline
    each time (6 % of a task process's CPU with 10,000 tasks waiting)."""

    _json: Any = None
    _owner: LeanRedis | None = None

    def json(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:  # another encoder or decoder: a command object of its own, as redis-py does
            return super().json(*args, **kwargs)
        if self._json is None:
            self._json = super().json() if self._owner is None else self._owner._json_for(self)
        return self._json

    async def reset(self) -> None:
        """As redis-py resets a pipeline, and dropping the RedisJSON command object: it points back at this pipeline,
        and the cycle would leave both to the garbage collector instead of freeing them at once (almost all the
        cyclic garbage of a task process with thousands of tasks waiting: bench/README.md, "Young collections on a
        timer")."""
        self._json = None
        await super().reset()

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """A plain pipeline (no MULTI, WATCH or scripts to load) goes out on the client's shared connection (or,
        holding a command that may not share it, on a kept connection), as its single commands do; any other
        goes through redis-py's execute."""
        try:
            return await self._execute(raise_on_error)
        finally:
            self._json = None  # see reset: redis-py's execute resets, this client's own path does not

    async def _execute(self, raise_on_error: bool) -> list[Any]:
        stack = self.command_stack
        owner = self._owner
        if (owner is None or not stack or self.is_transaction or self.explicit_transaction or self.watching
                or self.scripts or self.connection is not None):
            return await super().execute(raise_on_error)
        self.command_stack = []
        if owner._shared is not None and all(_shares(args, options) for args, options in stack):
            replies = _Replies(await owner._on_shared_connection([args for args, _ in stack]))
            response = []
            for args, options in stack:  # as redis-py's _execute_pipeline reads them
                try:
                    response.append(await self.parse_response(replies, args[0], **options))  # type: ignore[arg-type]
                except ResponseError as error:
                    response.append(error)
            if raise_on_error:
                self.raise_first_error(stack, response)
            return response
        return await owner._on_kept_connection(lambda conn: self._execute_pipeline(conn, stack, raise_on_error))


def _shares(args: tuple[Any, ...], options: dict[str, Any]) -> bool:
    # A reply to be left undecoded would have to be read differently from the others: not on the shared one.
    return NEVER_DECODE not in options and can_share(args[0])


class _Replies:
    """Stands in for a connection in redis-py's reply handling (`parse_response`): hands out, in order, replies
    the shared connection has read, raising an error reply as redis-py's connection raises it."""

    _resp2_fallback = False  # the shared connection speaks RESP2 only

    def __init__(self, replies: list[Any]) -> None:
        self._replies = iter(replies)

    async def read_response(self, disable_decoding: bool = False, **_: Any) -> Any:
        reply = next(self._replies)
        if isinstance(reply, (ResponseError, RedisConnectionError)):
            raise reply
        if isinstance(reply, list) and reply and isinstance(reply[0], RedisConnectionError):
            raise reply[0]
        return reply


async def _nothing_to_clean(_error: Exception) -> None:
    """The shared connection repairs itself (the next call reconnects): nothing for the retry to undo."""


class LeanRedis(Redis):
    """An asyncio Redis client whose single commands skip the pool's per-command bookkeeping."""

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        """redis-py's pipeline, with `json()` built once per pipeline and plain pipelines sent on a kept
        connection (see _OneJsonPipeline)."""
        pipeline = _OneJsonPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        if not self.single_connection_client:
            pipeline._owner = self
        return pipeline

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: list[AbstractConnection] = []
        self._pipeline_json: Any = None
        pool = self.connection_pool
        self._shared = (SharedConnection(pool) if not self.single_connection_client and SharedConnection.supports(pool)
                        else None)
        self._retry = pool.connection_kwargs.get("retry")

    def _json_for(self, pipeline: Pipeline) -> Any:
        """The RedisJSON command object of one of this client's pipelines: a copy, rebound to the pipeline, of
        one built once. Building it registers its reply callbacks in this client's callbacks, which its
        pipelines share, so they stay in place for every copy."""
        if self._pipeline_json is None:
            self._pipeline_json = Pipeline.json(pipeline)
            self._pipeline_json.client = self._pipeline_json.execute_command = None  # not kept for good
        command = copy.copy(self._pipeline_json)
        command.client = pipeline
        command.execute_command = pipeline.execute_command
        return command

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.connection is not None or self.single_connection_client:
            return await super().execute_command(*args, **options)
        if self._shared is not None and _shares(args, options):  # (never HIMPORT: see can_share)
            replies = _Replies(await self._on_shared_connection([args]))
            return await self.parse_response(replies, args[0], **options)  # type: ignore[arg-type]
        if str(args[0]).upper().startswith("HIMPORT"):  # per-connection state: redis-py's path handles it
            return await super().execute_command(*args, **options)
        return await self._on_kept_connection(lambda conn: self._send_and_parse(conn, args, options))

    async def _on_shared_connection(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The raw replies to `commands`, sent on the shared connection under the connection's retry policy."""
        shared = self._shared
        assert shared is not None
        if not shared.is_ready:
            # Connecting is retried by redis-py's connect itself: outside the retry below, as the pool's checkout was.
            await shared.connect()
        if self._retry is None:
            return await shared.call(commands)
        return await self._retry.call_with_retry(lambda: shared.call(commands), _nothing_to_clean)

    async def _on_kept_connection(self, call: Callable[[AbstractConnection], Awaitable[Any]]) -> Any:
        """call(conn) on a kept connection (or the pool's), under the connection's retry policy."""
        pool = self.connection_pool
        if self._kept:
            conn = self._kept.pop()
            try:
                await pool.ensure_connection(conn)  # what pool.get_connection() checks before handing one out
            except BaseException:
                await pool.release(conn)
                raise
        else:
            conn = await pool.get_connection()
        try:
            result = await conn.retry.call_with_retry(lambda: call(conn), lambda _error: conn.disconnect())
        except BaseException:
            await pool.release(conn)  # an error reply or a broken connection: the pool decides what to keep
            raise
        if len(self._kept) < KEPT_CONNECTIONS:
            self._kept.append(conn)
        else:
            await pool.release(conn)
        return result

    async def _send_and_parse(self, conn: AbstractConnection, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        await conn.send_command(*args)
        return await self.parse_response(conn, args[0], **options)  # ** copies: parse_response pops options

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Give the kept connections back to the pool, then close as redis-py does."""
        kept, self._kept = self._kept, []
        for conn in kept:
            await self.connection_pool.release(conn)
        if self._shared is not None:
            await self._shared.aclose()
        await super().aclose(close_connection_pool)
