"""One Redis connection shared by every concurrent caller: their commands go out together, replies come back in order.

Redis answers the commands of one connection in the order it received them, so callers need not take turns
on a connection: each appends its packed command(s) to one buffer and waits for as many replies. The buffer is
written once per event-loop iteration (whatever was queued since), and one reader hands the replies out in
order. Under load many callers share each write and each read: a command from 50 concurrent callers cost
~29 µs of CPU on a kept connection (one send and one read per command, each read under its own timeout) and
~12 µs here; with 10,000 tasks waiting, ~15 % less CPU in all (bench/README.md, "One shared connection").

The connection itself is redis-py's (its handshake, TLS, AUTH, SELECT, retries while connecting); only the
sending and reading after that are done here, with redis-py's hiredis reader. What must not share a connection
(commands that block it or change its state) is for the caller to keep away: see `can_share`.

Failures keep redis-py's meaning, on which the retry policy in store/connections.py relies: a command that
may have reached Redis fails with redis-py's "Error while reading from ..." or "Timeout reading from ..."
(not re-sent when at-most-once); one that was never written fails with a ConnectionError saying so (safe to
re-send). A caller cancelled while waiting leaves its reply to be read and dropped: nobody else gets it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis._parsers.socket import SERVER_CLOSED_CONNECTION_ERROR as SERVER_CLOSED
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

READ_SIZE = 65536

# Commands that block the connection (a shared one would stall everyone behind them), change its state for the
# commands after them (a database, a transaction, a subscription, a reply mode, a name), or read a client's own
# connection state. They take a connection of their own.
_NOT_SHARED = frozenset({
    "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP",
    "XREAD", "XREADGROUP", "WAIT", "WAITAOF",
    "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR",
    "SELECT", "AUTH", "HELLO", "CLIENT", "RESET", "QUIT", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH",
    "READONLY", "READWRITE", "SYNC", "PSYNC", "REPLCONF", "DEBUG", "SHUTDOWN",
})

_verdicts: dict[Any, bool] = {}  # command name as given -> can_share; asked for every command sent


def can_share(command_name: Any) -> bool:
    """Whether a command may go out on the shared connection (see _NOT_SHARED)."""
    verdict = _verdicts.get(command_name)
    if verdict is None:
        name = command_name.decode() if isinstance(command_name, bytes) else str(command_name)
        name = name.split(" ", 1)[0].upper()
        verdict = name not in _NOT_SHARED and not name.startswith("HIMPORT")
        if len(_verdicts) < 1000:  # names come from code, not from users: a bound all the same
            _verdicts[command_name] = verdict
    return verdict


class _Waiting:
    """One caller's commands on the wire: how many replies it waits for, and those read so far."""

    __slots__ = ("future", "count", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.count = count
        self.replies: list[Any] = []


class SharedConnection:
    """A connection from `pool`, kept for good and shared by all callers of `call` (see the module docstring)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._conn: AbstractConnection | None = None
        self._connecting = asyncio.Lock()
        self._is_broken = False
        self._waiting: deque[_Waiting] = deque()
        self._unsent: list[bytes] = []
        self._unsent_callers = 0  # the last this many of _waiting have not been written yet
        self._flush_scheduled = False
        self._reader_task: asyncio.Task[None] | None = None
        self._deadline: asyncio.Timeout | None = None  # the reader's current read, bounded while replies are due
        self._last_reply_at = 0.0

    @staticmethod
    def supports(pool: ConnectionPool) -> bool:
        """Whether this pool's connections can be shared: RESP2 with redis-py's hiredis parser."""
        kwargs = pool.connection_kwargs
        return (HIREDIS_AVAILABLE and kwargs.get("protocol") in (None, 2, "2")
                and kwargs.get("parser_class", _AsyncHiredisParser) is _AsyncHiredisParser)

    async def call(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send the commands (each as its arguments), return their raw replies in order (an error reply as its
        exception, in its place)."""
        conn = await self._ready()
        if not self._waiting and (conn._reader.at_eof() or conn._reader.exception() is not None):  # type: ignore[union-attr]
            # Closed by Redis, and the reader has not run since: reconnect before sending, as redis-py's pool would.
            self._fail(RedisConnectionError(SERVER_CLOSED))
            conn = await self._ready()
        loop = asyncio.get_running_loop()
        interval = conn.health_check_interval
        if interval and not self._waiting and loop.time() - self._last_reply_at > interval:
            await self._check_health()  # a socket silent for long may be dead: find out before sending on it
            conn = await self._ready()
        packed = conn.pack_commands(commands)  # a bad argument raises here, before anything is queued
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append(_Waiting(future, len(commands)))
        self._unsent.extend(packed)
        self._unsent_callers += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        if self._deadline is not None and self._deadline.when() is None and conn.socket_timeout:
            self._deadline.reschedule(loop.time() + conn.socket_timeout)
        return await future

    @property
    def is_ready(self) -> bool:
        """Connected, and read by the reader task (what `call` would otherwise check first)."""
        return self._conn is not None and not self._is_broken and self._reader_task is not None

    async def connect(self) -> None:
        """Connect now if not connected (redis-py's connect, retried with backoff); raise if Redis cannot be reached."""
        await self._ready()

    async def _check_health(self) -> None:
        self._last_reply_at = asyncio.get_running_loop().time()  # one check at a time, and not of itself
        try:
            await self.call([("PING",)])
        except (RedisConnectionError, RedisTimeoutError) as error:  # nothing of the caller's was sent: safe to resend
            raise RedisConnectionError("the shared Redis connection failed its health check") from error

    async def _ready(self) -> AbstractConnection:
        """The connection, connected (again, after a failure) and read by the reader task."""
        if self.is_ready:
            return self._conn  # type: ignore[return-value]
        async with self._connecting:
            if self._conn is None:
                self._conn = await self._pool.get_connection()
            elif self._is_broken or not self._conn.is_connected:
                await self._conn.disconnect(nowait=True)
                await self._conn.connect()  # redis-py's connect: retried with backoff, handshake included
            self._is_broken = False
            if self._reader_task is None:
                self._last_reply_at = asyncio.get_running_loop().time()
                self._reader_task = asyncio.create_task(self._read(self._conn))
            return self._conn

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._unsent or self._conn is None or self._is_broken:
            return
        data, self._unsent = self._unsent, []
        try:
            self._conn._writer.writelines(data)  # type: ignore[union-attr]  # buffered by the transport: no wait
        except Exception as error:  # noqa: BLE001 - a transport closed under us: fail what is waiting
            self._fail(RedisConnectionError(f"Error while writing to {self._conn._host_error()}: {error}"))
            return
        self._unsent_callers = 0

    async def _read(self, conn: AbstractConnection) -> None:
        parser = conn._parser
        reader, stream = parser._reader, conn._reader  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        waiting = self._waiting
        try:
            async with asyncio.timeout(None) as deadline:
                self._deadline = deadline
                while True:
                    reply = reader.gets()
                    if reply is NOT_ENOUGH_DATA:
                        due = waiting and conn.socket_timeout
                        deadline.reschedule(loop.time() + conn.socket_timeout if due else None)
                        data = await stream.read(READ_SIZE)
                        if not data:
                            raise RedisConnectionError(SERVER_CLOSED)
                        reader.feed(data)
                        continue
                    if not waiting or len(waiting) == self._unsent_callers:
                        raise InvalidResponse(f"Redis sent a reply nobody waits for: {reply!r:.100}")
                    self._last_reply_at = loop.time()
                    head = waiting[0]
                    head.replies.append(reply)
                    if len(head.replies) == head.count:
                        waiting.popleft()
                        if not head.future.done():  # else its caller was cancelled: the replies are dropped
                            head.future.set_result(head.replies)
        except asyncio.CancelledError:
            if self._reader_task is asyncio.current_task():
                self._fail(RedisConnectionError(f"Error while reading from {conn._host_error()} : cancelled"))
            raise
        except TimeoutError:
            self._fail(RedisTimeoutError(f"Timeout reading from {conn._host_error()}"))
        except RedisConnectionError as error:
            self._fail(error if str(error) == SERVER_CLOSED
                       else RedisConnectionError(f"Error while reading from {conn._host_error()} : {error}"))
        except Exception as error:  # noqa: BLE001 - OSError, a protocol error: the connection is out of step
            self._fail(RedisConnectionError(f"Error while reading from {conn._host_error()} : {error!r}"))
        finally:
            if self._reader_task is asyncio.current_task():
                self._deadline = None

    def _fail(self, error: Exception) -> None:
        """The connection is lost or out of step: fail every caller waiting on it; the next caller reconnects.

        Those whose commands were written get `error` (they may have run); the rest were never sent."""
        self._is_broken = True
        waiting, self._waiting = self._waiting, deque()
        unsent, self._unsent_callers, self._unsent = self._unsent_callers, 0, []
        reader, self._reader_task, self._deadline = self._reader_task, None, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if self._conn is not None and self._conn._writer is not None:
            self._conn._writer.transport.abort()  # nothing more goes out on it; _ready reconnects
        not_sent = RedisConnectionError("the shared Redis connection was lost before the command was sent")
        for index, entry in enumerate(waiting):
            if not entry.future.done():
                entry.future.set_exception(not_sent if index >= len(waiting) - unsent else error)

    async def aclose(self) -> None:
        """Fail whatever still waits, and give the connection back to its pool (which closes it with itself)."""
        if self._reader_task is not None or self._waiting:
            self._fail(RedisConnectionError("the client was closed"))
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect(nowait=True)
            await self._pool.release(conn)
