"""store/connections.py: REDIS_URL forms, and which commands are re-sent after a connection breaks."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from redis_persist.settings import Settings
from redis_persist.store.connections import RedisConnections, RedisTarget, sent_at_most_once
from redis_persist.store.lean_client import LeanRedis


def test_plain_tls_and_acl_urls() -> None:
    target = RedisTarget.parse("rediss://app:p%40ss@redis.example:6380/2?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required")
    assert target.connection_kwargs == {
        "host": "redis.example", "port": 6380, "db": 2, "username": "app", "password": "p@ss", "ssl": True,
        "ssl_ca_certs": "/ca.pem", "ssl_cert_reqs": "required",
    }
    assert not target.is_sentinel
    assert target.display == "rediss://app:***@redis.example:6380/2?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"


def test_sentinel_url() -> None:
    target = RedisTarget.parse("redis+sentinel://app:pw@10.0.0.1:26379,10.0.0.2/cache/3?socket_timeout=2")
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379))
    assert target.service_name == "cache"
    assert target.connection_kwargs == {"username": "app", "password": "pw", "db": 3, "socket_timeout": 2.0}


@pytest.mark.parametrize(("url", "complaint"), [
    ("http://localhost:6379", "unsupported scheme 'http'"),
    ("redis+sentinel://localhost:26379", "service_name"),
    ("redis+sentinel://localhost:port/mymaster", "bad Sentinel address"),
    ("redis://localhost:6379/0?socket_timeout=soon", "socket_timeout"),
])
def test_a_bad_redis_url_is_refused_at_start(url: str, complaint: str, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(ValidationError, match=complaint):
        Settings()


@pytest.fixture
def server_that_hangs_up() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server that reads one command per connection (after the handshake), then closes it unanswered."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    handshake = data.count(b"SETINFO")  # redis-py names itself on connect: answer that
                    if not handshake:
                        received.append(data)
                        break
                    conn.sendall(b"+OK\r\n" * handshake)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], received
    listener.close()


async def test_a_command_that_may_have_run_is_resent_only_when_safe(server_that_hangs_up) -> None:
    port, received = server_that_hangs_up
    # protocol=2 and no health check: the fake server does not speak the HELLO / PING handshake.
    connections = RedisConnections(RedisTarget.parse(f"redis://127.0.0.1:{port}/0?protocol=2"),
                                   retries=2, health_check_seconds=0)
    client = connections.async_client(max_connections=2, decode_responses=True)
    try:
        with pytest.raises(RedisConnectionError, match="closed by server"):
            await client.get("idempotent")
        assert sum(b"idempotent" in data for data in received) == 3  # the first try and 2 retries

        with sent_at_most_once(), pytest.raises(RedisConnectionError, match="closed by server"):
            await client.incr("not-idempotent")
        assert sum(b"not-idempotent" in data for data in received) == 1  # never re-sent
    finally:
        await client.aclose()


async def test_connecting_is_retried_even_for_at_most_once_commands() -> None:
    port = socket.create_server(("127.0.0.1", 0))
    port_number = port.getsockname()[1]
    port.close()  # nothing listens: every connect is refused, nothing is ever sent
    connections = RedisConnections(RedisTarget.parse(f"redis://127.0.0.1:{port_number}/0"), retries=2,
                                   health_check_seconds=0)
    client = connections.async_client(max_connections=2, decode_responses=True)
    attempts = 0
    original = client.connection_pool.connection_class._connect

    async def counting_connect(self):  # type: ignore[no-untyped-def]
        nonlocal attempts
        attempts += 1
        return await original(self)

    client.connection_pool.connection_class._connect = counting_connect
    try:
        with sent_at_most_once(), pytest.raises(RedisConnectionError, match="connecting to"):
            await client.incr("x")
        assert attempts > 1
    finally:
        client.connection_pool.connection_class._connect = original
        await client.aclose()


def test_only_a_single_server_gets_the_lean_client() -> None:
    """A Sentinel pool must see each connection come back to drop those to a demoted primary; the connections
    LeanRedis keeps never come back, so after a failover they would read from the old primary."""
    single = RedisConnections.from_url("redis://localhost:6379").async_client(max_connections=10, decode_responses=True)
    sentinel = RedisConnections.from_url("redis+sentinel://localhost:26379/mymaster").async_client(
        max_connections=10, decode_responses=True)
    assert isinstance(single, LeanRedis)
    assert not isinstance(sentinel, LeanRedis)


def test_blocking_and_connection_state_commands_do_not_share_a_connection() -> None:
    from redis_persist.store.shared_connection import can_share

    for name in ("GET", "EVALSHA", "JSON.SET", b"HGETALL", "FT.SEARCH", "SCRIPT LOAD"):
        assert can_share(name), name
    for name in ("BLPOP", "blpop", b"XREADGROUP", "WAIT", "CLIENT SETNAME", "MULTI", "WATCH", "SELECT",
                 "SUBSCRIBE", "HIMPORT PREPARE"):
        assert not can_share(name), name
        assert not can_share(name), name  # and again, from what it remembers
