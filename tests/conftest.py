"""Shared fixtures: a real module-enabled Redis for the session, real service processes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import redis

from redis_persist.embedded import EmbeddedRedis
from tests.support import ServiceProcess


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """valkey-server with RedisJSON + RediSearch from the PyPI wheels; fails with its log if it cannot start."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), die_with_parent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The session Redis, emptied first (synchronous FLUSHALL: see SPEC.md's lazy-free hazard)."""
    client = redis.Redis.from_url(redis_url)
    client.flushall(asynchronous=False)
    client.close()
    return redis_url


@pytest.fixture
def start_service(clean_redis: str) -> Iterator:
    """Factory for real `redis-persist serve` processes; every one is stopped at teardown."""
    started: list[ServiceProcess] = []

    def start(env: dict[str, str] | None = None, name: str = "svc", args: list[str] | None = None,
              redis_url: str | None = clean_redis) -> ServiceProcess:
        defaults = {"REDIS_PERSIST_LEASE_TTL_SECONDS": "3"}
        service = ServiceProcess(redis_url, env={**defaults, **(env or {})}, name=name, args=args)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.kill()


@pytest.fixture
def service(start_service) -> ServiceProcess:
    """One started service (API + worker) on the session Redis."""
    return start_service()


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The interpreter's own garbage collections off for the test: what is freed is freed by reference counting
    alone, or by a collection the test itself runs."""
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()
