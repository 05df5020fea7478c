"""Which errors are storage faults (waited out) and which are the graph's own (the task fails)."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError
from redisvl.exceptions import RedisSearchError, RedisVLError

from redis_persist.engine.storage_faults import MAX_DELAY_SECONDS, StorageFaultCounter, StorageOutage, storage_fault

OOM = "command not allowed when used memory > 'maxmemory'."


def _raised(make):  # type: ignore[no-untyped-def]
    try:
        make()
    except Exception as error:  # noqa: BLE001 - the test inspects whatever was raised
        return error
    raise AssertionError("nothing raised")


def _wrapped_by_redisvl() -> None:
    try:
        raise OutOfMemoryError(OOM)
    except OutOfMemoryError as error:
        raise RedisVLError(f"Failed to load data: {error}") from error


def _raised_while_handling() -> None:
    try:
        raise RedisConnectionError("Connection reset by peer")
    except RedisConnectionError:
        raise RuntimeError("pipeline aborted")  # noqa: B904 - the context is what is being tested


def _graph_oserror() -> None:
    raise FileNotFoundError("input.csv")  # a node's own I/O: not storage


def _socket_error_in_the_redis_client() -> None:
    # As if raised by redis-py's own code (the traceback is what tells it from a node's OSError).
    exec(compile("raise ConnectionResetError(104, 'Connection reset by peer')",
                 "/venv/site-packages/redis/asyncio/connection.py", "exec"))


@pytest.mark.parametrize("make, found", [
    (lambda: OutOfMemoryError(OOM), OutOfMemoryError),
    (lambda: _raised(_wrapped_by_redisvl), OutOfMemoryError),
    (lambda: _raised(_raised_while_handling), RedisConnectionError),
    (lambda: _raised(_socket_error_in_the_redis_client), ConnectionResetError),
], ids=["oom", "redisvl-wrapping-oom", "raised-while-handling", "socket-error-in-redis-client"])
def test_storage_faults_are_found_behind_wrappers(make, found) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(storage_fault(make()), found)


def test_a_graph_error_is_not_a_storage_fault() -> None:
    assert storage_fault(ValueError("bad input")) is None
    assert storage_fault(_raised(_graph_oserror)) is None  # an OSError, but raised by the graph's own code
    assert storage_fault(RedisSearchError("Unexpected error while searching")) is None  # no Redis error behind it


def test_outage_backs_off_exponentially_up_to_a_cap_and_counts_each_fault() -> None:
    counter = StorageFaultCounter()
    outage = StorageOutage(counter)
    delays = [outage.fault(OutOfMemoryError(OOM), "checkpoint") for _ in range(12)]
    assert delays[1] > delays[0] and max(delays) <= MAX_DELAY_SECONDS * 1.2
    assert counter.by_operation == {"checkpoint": 12}
    assert not outage.is_reported
    fields = outage.event_fields()
    assert fields["retries"] == 12 and "maxmemory" in fields["error"] and fields["operation"] == "checkpoint"
    outage.reported()
    outage.progressed()
    assert outage.is_reported and outage.fault(OutOfMemoryError(OOM), "finish") <= 0.3
