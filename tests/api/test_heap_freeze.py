"""`serve` takes its startup heap out of the GC's full collections (redis_persist/heap.py).

Unfrozen, a full collection in a replica walks ~175,000 startup objects: a 100-300 ms pause of every request
and node in flight, several times a minute under load (README, Performance).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from asgi_lifespan import LifespanManager

from redis_persist import cli
from redis_persist.app import create_app

from .conftest import DEFAULT_ENV, settings_from_env


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start and end with nothing frozen, so this test process's own collections stay as they were."""
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_serve_app_freezes_the_startup_heap_once_started(clean_redis: str, unfrozen: None) -> None:
    settings = settings_from_env({"REDIS_URL": clean_redis, "SERVICE_NAME": "heap", **DEFAULT_ENV})
    app = cli._build_app(settings, run_worker=True)  # what `redis-persist serve` runs
    assert gc.get_freeze_count() == 0
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        frozen = gc.get_freeze_count()
        walked = len(gc.get_objects())  # what a full collection walks now: the generations, not the frozen
        # LangGraph, FastAPI, redis-py and the app are loaded: far more than is left to walk.
        assert frozen > 50_000
        assert walked < frozen / 5


async def test_apps_built_for_tests_do_not_freeze(clean_redis: str, unfrozen: None) -> None:
    settings = settings_from_env({"REDIS_URL": clean_redis, "SERVICE_NAME": "heap", **DEFAULT_ENV})
    async with LifespanManager(create_app(settings, run_worker=False), startup_timeout=30, shutdown_timeout=30):
        assert gc.get_freeze_count() == 0
