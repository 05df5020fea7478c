"""`serve` takes its startup heap out of the GC's collections and runs them on a timer (redis_persist/heap.py).

Unfrozen, a full collection in a replica walks ~175,000 startup objects: a 100-300 ms pause of every request
and node in flight, several times a minute under load (README, Performance).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from asgi_lifespan import LifespanManager

from redis_persist import cli
from redis_persist.app import create_app
from redis_persist.heap import NO_AUTOMATIC_FULL_COLLECTION, YOUNG_COLLECTION_THRESHOLD

from .conftest import DEFAULT_ENV, settings_from_env


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start and end with nothing frozen and the thresholds as they were, for this test process's own sake."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _collector_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "gc-collector"]


async def test_serve_app_freezes_the_startup_heap_and_collects_on_a_timer(clean_redis: str, unfrozen: None) -> None:
    settings = settings_from_env({"REDIS_URL": clean_redis, "SERVICE_NAME": "heap", **DEFAULT_ENV})
    app = cli._build_app(settings, run_worker=True)  # what `redis-persist serve` runs
    assert gc.get_freeze_count() == 0
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        frozen = gc.get_freeze_count()
        walked = len(gc.get_objects())  # what a full collection walks now: the generations, not the frozen
        # LangGraph, FastAPI, redis-py and the app are loaded: far more than is left to walk.
        assert frozen > 50_000
        assert walked < frozen / 5
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 10, NO_AUTOMATIC_FULL_COLLECTION)
        assert len(_collector_threads()) == 1
    assert _collector_threads() == []  # stopped with the app


async def test_apps_built_for_tests_leave_the_gc_alone(clean_redis: str, unfrozen: None) -> None:
    settings = settings_from_env({"REDIS_URL": clean_redis, "SERVICE_NAME": "heap", **DEFAULT_ENV})
    async with LifespanManager(create_app(settings, run_worker=False), startup_timeout=30, shutdown_timeout=30):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == (700, 10, 10)  # Python's defaults
        assert _collector_threads() == []
