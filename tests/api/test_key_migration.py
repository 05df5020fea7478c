"""Nothing lost on upgrade: a database written with the old key names (`rp:task:ID`, before hash tags)
is renamed at start (store/migrate.py) and its tasks, events and threads read, and run, as before."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from redis_persist.core.events import status_event, utc_now
from redis_persist.core.status import TaskStatus
from redis_persist.store import keys
from redis_persist.store.events import EventLog
from redis_persist.store.migrate import SCHEMA_VERSION, migrate_key_names
from tests.api.helpers import task, wait_status

S = TaskStatus


def _old(prefix: str, store_id: str) -> str:
    return prefix + store_id  # how every per-id key was named before hash tags


async def _write_old_task(redis: Redis, task_id: str, status: S, seq: int, tenant: str = "default") -> None:
    """The hash, events, indexes and (if queued) queue entry the old TaskStore.create wrote, field for field."""
    now = utc_now()
    await redis.hset(_old(keys.TASK, task_id), mapping={
        "task_id": task_id, "tenant": tenant, "graph_name": "data_pipeline",
        "initial_state": json.dumps({"step_seconds": 0}), "progress": "0", "attempts": "0",
        "completed_nodes": "[]", "created_at": now, "updated_at": now, "seq": seq,
        "request_hash": "old-hash", "status": status.value})
    await redis.xadd(_old(keys.EVENTS, task_id), {"e": status_event(task_id, S.QUEUED)})
    if status != S.QUEUED:
        await redis.xadd(_old(keys.EVENTS, task_id), {"e": status_event(task_id, status)})
    await redis.zadd(keys.INDEX_ALL, {task_id: seq})
    await redis.zadd(keys.status_index(status.value), {task_id: seq})
    await redis.zadd(keys.graph_index("data_pipeline"), {task_id: seq})
    await redis.zadd(keys.tenant_index(tenant), {task_id: seq})
    if status == S.QUEUED:
        await redis.xadd(keys.queue(tenant), {"task_id": task_id})


async def _write_old_thread(redis: Redis, thread_id: str, seq: int) -> None:
    now = utc_now()
    await redis.hset(_old(keys.THREAD, thread_id), mapping={
        "thread_id": thread_id, "metadata": json.dumps({"owner": "before-upgrade"}), "seq": seq,
        "created_at": now, "updated_at": now})
    await redis.zadd(keys.INDEX_THREADS, {thread_id: seq})


@pytest.fixture
async def redis(clean_redis: str):
    client = Redis.from_url(clean_redis, decode_responses=True)
    yield client
    await client.aclose()


async def test_a_service_started_on_an_old_database_keeps_its_tasks_events_and_threads(redis, start_app) -> None:
    await _write_old_task(redis, "done-before", S.COMPLETED, seq=1)
    await _write_old_task(redis, "queued-before", S.QUEUED, seq=2)
    await _write_old_thread(redis, "thread-before", seq=3)
    await redis.set(keys.SEQUENCE, 3)

    api = await start_app()  # its start migrates the key names before anything reads a task

    done = await task(api.client, "done-before")
    assert done["status"] == "completed" and done["graph_name"] == "data_pipeline"
    assert [e["status"] for e in await EventLog(redis).read("done-before")] == ["queued", "completed"]
    # The queued one is handed out from the queue as before and runs to the end under its new names.
    await wait_status(api.client, "queued-before", "completed")
    thread = await api.client.get("/threads/thread-before")
    assert thread.status_code == 200 and thread.json()["metadata"] == {"owner": "before-upgrade"}
    listed = await api.client.get("/api/tasks")
    assert {t["task_id"] for t in listed.json()["tasks"]} == {"done-before", "queued-before"}
    assert not [name async for name in redis.scan_iter(match=_old(keys.TASK, "*")) if "{" not in name]
    assert await redis.get(keys.SCHEMA) == SCHEMA_VERSION


async def test_the_migration_is_idempotent_and_finishes_an_interrupted_run(redis) -> None:
    await _write_old_task(redis, "a", S.COMPLETED, seq=1)
    await _write_old_task(redis, "acme.b", S.PAUSED, seq=2, tenant="acme")
    await redis.set(_old(keys.LEASE, "thread-update:t1"), "token", px=60_000)
    assert await migrate_key_names(redis) == 5  # two hashes, two event streams, one lease
    # Interrupted before the marker: the next start renames what is left (here: nothing) and sets it.
    await redis.delete(keys.SCHEMA)
    await _write_old_task(redis, "c", S.FAILED, seq=3)
    assert await migrate_key_names(redis) == 2
    assert await migrate_key_names(redis) == 0  # marked: nothing to do
    for task_id, status in (("a", "completed"), ("acme.b", "paused"), ("c", "failed")):
        assert await redis.hget(keys.task(task_id), "status") == status
        assert await redis.xlen(keys.events(task_id)) == 2
    assert await redis.get(keys.lease(keys.thread_update_lease_id("t1"))) == "token"
    assert await redis.pttl(keys.lease(keys.thread_update_lease_id("t1"))) > 0  # the TTL moved with it
    old_names = [name async for name in redis.scan_iter(match="rp:*") if ":{" not in name
                 and name.startswith(keys.PER_ID_PREFIXES)]
    assert old_names == []
