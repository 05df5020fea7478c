"""Every Redis client the service opens, built from REDIS_URL in this one module.

URL forms: `redis://[user:password@]host:port/db`, `rediss://...` (TLS; `ssl_ca_certs=`, `ssl_certfile=`,
`ssl_keyfile=`, `ssl_cert_reqs=` as query parameters) and
`redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]` (Sentinel finds the primary).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
import redis.sentinel
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import AuthenticationError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry as SyncRetry

from redis_persist.store.lean_client import LeanConnection, LeanRedis, LeanSSLConnection, LeanUnixDomainSocketConnection

T = TypeVar("T")
SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
RETRY_BACKOFF_BASE_SECONDS = 0.05
RETRY_BACKOFF_CAP_SECONDS = 2.0

# Why retries are safe here, command by command:
# - An error while *connecting* (refused, timed out, no primary known to Sentinel yet) means nothing was sent:
#   re-sending is always safe.
# - A pooled socket that Redis closed (it restarted, or failed over) is noticed by the pool *before* the
#   command is sent, and replaced. redis-py 8 skips that check while "maintenance notifications" are on
#   (its default with RESP3), which is why the first command after a Redis restart used to fail with
#   "Connection closed by server": we turn them off (we use no Redis Enterprise maintenance events).
# - A socket that died without a word (network cut) is found by the PING of the health check that runs
#   before a command on a connection idle longer than `health_check_seconds`; that PING is retried.
# - The one doubtful case: the connection breaks *after* the command was sent, while reading the reply.
#   The command may have run. Reads, the saver's checkpoint writes (same keys, same values), lease renewal,
#   task creation (idempotent through its request hash) and orphan re-queueing (guarded by status) may run
#   twice. A claim, a status move, a progress/event record, a pause request, a delete and a queue read may
#   not: run twice, a claim leaves a task nobody runs until its lease expires, a move answers 409 for a move
#   that happened, a record appends every event twice, a queue read loses the messages it delivered.
#   Those run inside `sent_at_most_once()`, where a read-side failure is raised to the caller, as before.
_is_at_most_once: contextvars.ContextVar[bool] = contextvars.ContextVar("redis_persist_at_most_once", default=False)


@contextlib.contextmanager
def sent_at_most_once() -> Iterator[None]:
    """Commands in this block are not re-sent once they may have reached Redis (see above)."""
    reset = _is_at_most_once.set(True)
    try:
        yield
    finally:
        _is_at_most_once.reset(reset)


def _may_have_run(error: Exception) -> bool:
    # redis-py's messages for a failure after the command was written: EOF or an error while reading.
    text = str(error)
    return "closed by server" in text or "reading from" in text


def _is_resend_safe(error: Exception) -> bool:
    if isinstance(error, AuthenticationError):
        return False  # a wrong password stays wrong: say so at once
    return not (_is_at_most_once.get() and _may_have_run(error))


def _resend_safe_and(is_retryable: Callable[[Exception], bool] | None) -> Callable[[Exception], bool]:
    """redis-py's own retry test, narrowed to errors after which a re-send is safe."""
    def retryable(error: Exception) -> bool:
        return _is_resend_safe(error) and (is_retryable is None or is_retryable(error))

    return retryable


class _SyncRetry(SyncRetry):
    """Exponential backoff on connection errors, but not on a refused password."""

    def call_with_retry(  # type: ignore[override]
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        return super().call_with_retry(do, fail, _resend_safe_and(is_retryable), with_failure_count)


class _AsyncRetry(AsyncRetry):
    """Exponential backoff on connection errors, except a doubtful re-send of an at-most-once command."""

    async def call_with_retry(  # type: ignore[override]
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        return await super().call_with_retry(do, fail, _resend_safe_and(is_retryable), with_failure_count)


class _BlockingSentinelPool(AsyncSentinelConnectionPool, BlockingConnectionPool):
    """Sentinel finds the primary; past the cap a caller waits for a connection instead of failing."""


@dataclass(frozen=True)
class RedisTarget:
    """What REDIS_URL names: one server, or a Sentinel-managed primary."""

    url: str
    connection_kwargs: dict[str, Any]
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str = ""

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    @property
    def display(self) -> str:
        """The URL without its password, for logs and messages."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()

    @classmethod
    def parse(cls, url: str) -> RedisTarget:
        """Parse REDIS_URL, or raise ValueError saying what is wrong with it."""
        scheme = urlsplit(url).scheme
        if scheme in ("redis", "rediss", "unix"):
            kwargs = dict(parse_url(url))
            kwargs.pop("connection_class", None)
            if scheme == "rediss":
                kwargs["ssl"] = True
            elif scheme == "unix":
                kwargs["unix_socket_path"] = kwargs.pop("path")
            if scheme != "unix" and "host" not in kwargs:
                raise ValueError(f"no host in {url!r}")
            return cls(url, kwargs)
        if scheme == SENTINEL_SCHEME:
            return cls._parse_sentinel(url)
        raise ValueError(f"unsupported scheme {scheme!r} in REDIS_URL: use redis://, rediss://, unix:// "
                         f"or {SENTINEL_SCHEME}://host:port/service_name")

    @classmethod
    def _parse_sentinel(cls, url: str) -> RedisTarget:
        parts = urlsplit(url)
        hosts = parts.netloc.rpartition("@")[2]
        sentinels = []
        for host in filter(None, hosts.split(",")):
            name, _, port = host.rpartition(":") if ":" in host else (host, "", str(DEFAULT_SENTINEL_PORT))
            if not name or not port.isdigit():
                raise ValueError(f"bad Sentinel address {host!r} in REDIS_URL: use host:port")
            sentinels.append((name, int(port)))
        path = [p for p in parts.path.split("/") if p]
        if not sentinels or not path:
            raise ValueError(f"REDIS_URL {url!r}: a Sentinel URL is {SENTINEL_SCHEME}://host:port[,host:port]/service_name[/db]")
        # Query options (socket timeouts, ssl=true for TLS to the servers, ...) parse as for redis://.
        kwargs = dict(parse_url(f"redis://localhost/?{parts.query}")) if parts.query else {}
        for dropped in ("connection_class", "host", "port"):
            kwargs.pop(dropped, None)
        if parts.username:
            kwargs["username"] = unquote(parts.username)
        if parts.password:
            kwargs["password"] = unquote(parts.password)
        if len(path) > 1:
            if not path[1].isdigit():
                raise ValueError(f"bad database {path[1]!r} in REDIS_URL")
            kwargs["db"] = int(path[1])
        if str(kwargs.get("ssl", "")).lower() in ("1", "true", "yes"):
            kwargs["ssl"] = True
        return cls(url, kwargs, tuple(sentinels), unquote(path[0]))


@dataclass
class RedisConnections:
    """Builds every client from one target with one retry policy; closes what it built for Sentinel."""

    target: RedisTarget
    retries: int = 5
    health_check_seconds: float = 5.0
    _sentinel_managers: list[AsyncSentinel] = field(default_factory=list)
    _sync_sentinel_managers: list[redis.sentinel.Sentinel] = field(default_factory=list)

    @classmethod
    def from_url(cls, url: str, retries: int = 5, health_check_seconds: float = 5.0) -> RedisConnections:
        return cls(RedisTarget.parse(url), retries, health_check_seconds)

    def _common(self) -> dict[str, Any]:
        is_tcp = "unix_socket_path" not in self.target.connection_kwargs
        return {
            "health_check_interval": self.health_check_seconds,
            **({"socket_keepalive": True} if is_tcp else {}),
            # Off so the pool replaces sockets Redis closed before sending on them (see the comment above).
            "maint_notifications_config": MaintNotificationsConfig(enabled=False),
            **self.target.connection_kwargs,  # options given in the URL win, as in redis-py
        }

    def _backoff(self) -> ExponentialBackoff:
        return ExponentialBackoff(cap=RETRY_BACKOFF_CAP_SECONDS, base=RETRY_BACKOFF_BASE_SECONDS)

    def async_client(self, *, max_connections: int, decode_responses: bool) -> Redis:
        """An asyncio client on a blocking pool: past `max_connections` callers wait, never fail.

        (The saver's own default pool fails with MaxConnectionsError at ~50 concurrent runs.)
        """
        kwargs = {
            **self._common(),
            "max_connections": max_connections,
            "timeout": None,
            "decode_responses": decode_responses,
            "retry": _AsyncRetry(self._backoff(), self.retries),
        }
        if not self.target.is_sentinel:
            return LeanRedis(connection_pool=BlockingConnectionPool(**_with_connection_class(kwargs)))
        sentinel_kwargs = _sentinel_auth(kwargs)
        manager = AsyncSentinel(list(self.target.sentinels), sentinel_kwargs=sentinel_kwargs)
        self._sentinel_managers.append(manager)
        # Not LeanRedis: the Sentinel pool drops connections to a demoted primary when they come back to it,
        # and connections LeanRedis keeps would not come back (reads from the old primary after a failover).
        return manager.master_for(self.target.service_name, redis_class=Redis,
                                  connection_pool_class=_BlockingSentinelPool, **kwargs)

    def sync_client(self, *, socket_timeout: float | None, socket_connect_timeout: float,
                    retry_for_seconds: float | None = None) -> redis.Redis:
        """A synchronous, decoding client (the lease keeper's thread, the startup check).

        `retry_for_seconds` bounds the backoff of its retries instead of the `retries` count.
        """
        retries = self.retries if retry_for_seconds is None else retries_within(retry_for_seconds)
        kwargs = {
            **self._common(),
            "decode_responses": True,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            # Every command a sync client sends (lease renewal, heartbeats, checks) may run twice.
            "retry": _SyncRetry(self._backoff(), retries),
        }
        if not self.target.is_sentinel:
            return redis.Redis(**kwargs)
        sentinel_kwargs = _sentinel_auth(kwargs)
        sentinel_kwargs["socket_timeout"] = socket_connect_timeout
        manager = redis.sentinel.Sentinel(list(self.target.sentinels), sentinel_kwargs=sentinel_kwargs)
        self._sync_sentinel_managers.append(manager)
        return manager.master_for(self.target.service_name, redis_class=redis.Redis, **kwargs)

    def close_sync(self) -> None:
        """Close the Sentinel clients opened for sync clients (the clients it returned close themselves)."""
        managers, self._sync_sentinel_managers = self._sync_sentinel_managers, []
        for manager in managers:
            manager.close()

    async def aclose(self) -> None:
        """Close every Sentinel client this object opened (clients it returned are closed by their owners)."""
        self.close_sync()
        managers, self._sentinel_managers = self._sentinel_managers, []
        for manager in managers:
            await manager.aclose()


def retries_within(seconds: float) -> int:
    """How many retries the backoff fits in `seconds` (at least one)."""
    backoff = ExponentialBackoff(cap=RETRY_BACKOFF_CAP_SECONDS, base=RETRY_BACKOFF_BASE_SECONDS)
    retries, waited = 0, 0.0
    while waited + backoff.compute(retries + 1) <= seconds:
        retries += 1
        waited += backoff.compute(retries)
    return max(retries, 1)


def _with_connection_class(kwargs: dict[str, Any]) -> dict[str, Any]:
    # An asyncio pool built by hand (not from_url) needs the connection class the URL implies; LeanRedis's pools
    # take the ones that send without a timer when they can.
    kwargs = dict(kwargs)
    if kwargs.pop("ssl", False):
        kwargs["connection_class"] = LeanSSLConnection
    elif "unix_socket_path" in kwargs:
        kwargs["path"] = kwargs.pop("unix_socket_path")
        kwargs["connection_class"] = LeanUnixDomainSocketConnection
    else:
        kwargs["connection_class"] = LeanConnection
    return kwargs


def _sentinel_auth(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Sentinels are reached with the same user, password and TLS settings as the servers."""
    keep = ("username", "password", "ssl", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs",
            "ssl_check_hostname", "socket_connect_timeout")
    return {key: kwargs[key] for key in keep if key in kwargs}
