"""heap.TimedCollector: garbage in cycles is freed on a timer, with no allocations to set the interpreter's
collector off, and the whole heap is walked only once it has grown (redis_persist/heap.py)."""

from __future__ import annotations

import gc
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator

import pytest

from redis_persist.heap import HEAP_CHECK_EVERY, TimedCollector


class _Node:
    """An object in a reference cycle with itself: only the garbage collector can free it."""

    def __init__(self) -> None:
        self.me = self


def _cycle() -> weakref.ref[_Node]:
    return weakref.ref(_Node())


def _until(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


@pytest.fixture
def collector(collector_off: None) -> Iterator[Callable[..., TimedCollector]]:
    started: list[TimedCollector] = []

    def start(**settings: float) -> TimedCollector:
        timed = TimedCollector(interval=0.005, **settings)
        timed.start()
        started.append(timed)
        return timed

    yield start
    for timed in started:
        timed.stop()


def test_a_young_cycle_is_freed_on_the_timer(collector: Callable[..., TimedCollector]) -> None:
    freed = _cycle()
    assert freed() is not None  # nothing collects it but the timer
    collector()
    _until(lambda: freed() is None, "the timed collector never freed a young cycle")


def test_an_old_cycle_waits_for_the_heap_to_grow(collector: Callable[..., TimedCollector]) -> None:
    node = _Node()
    gc.collect(1)  # alive through the young and middle collections: now in the old generation
    freed = weakref.ref(node)
    del node
    timed = collector(growth=1.5, full_every=0)

    ticks = timed.ticks
    _until(lambda: timed.ticks >= ticks + 3 * HEAP_CHECK_EVERY, "the collector stopped ticking")
    assert freed() is not None  # the heap did not grow: no full collection, only young and middle ones
    assert timed.full_collections == 0

    ballast = [(i,) for i in range(sys.getallocatedblocks())]  # the heap grows by at least its size again
    _until(lambda: timed.full_collections == 1, "the heap doubled and no full collection ran")
    assert freed() is None
    del ballast


def test_full_collections_are_spaced_out_in_time(collector: Callable[..., TimedCollector]) -> None:
    node = _Node()
    gc.collect(1)
    freed = weakref.ref(node)
    del node
    timed = collector(growth=1.5, full_every=3600)

    ballast = [(i,) for i in range(sys.getallocatedblocks())]
    ticks = timed.ticks
    _until(lambda: timed.ticks >= ticks + 3 * HEAP_CHECK_EVERY, "the collector stopped ticking")
    assert freed() is not None  # grown, but the last full collection (the start) was not an hour ago
    assert timed.full_collections == 0
    del ballast


def test_stop_ends_the_thread(collector_off: None) -> None:
    timed = TimedCollector(interval=0.005)
    timed.start()
    assert "gc-collector" in {thread.name for thread in threading.enumerate()}
    timed.stop()
    assert "gc-collector" not in {thread.name for thread in threading.enumerate()}
