"""TaskStore.list with many kept tasks: it reads the narrowest index, so a filtered page stays cheap."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from redis_persist.core.auth import scoped_id
from redis_persist.core.status import Action, TaskStatus
from redis_persist.store.tasks import TaskStore

S = TaskStatus


async def _task(store: TaskStore, tenant: str, task_id: str, status: S, graph: str = "g") -> str:
    stored = scoped_id(tenant, task_id)
    await store.create(stored, graph, {}, f"hash-{stored}", tenant)
    if status != S.QUEUED:
        token = await store.claim(stored, "r1", 60_000)
        if status == S.COMPLETED:
            await store.act(stored, Action.COMPLETE, token=token)
    return stored


async def _pages(store: TaskStore, limit: int, **filters) -> list[list[str]]:
    """Every page of a listing, following next_cursor to the end."""
    pages, cursor = [], None
    while True:
        page, cursor = await store.list(filters.get("status"), filters.get("graph"), limit, cursor,
                                        filters.get("tenant"))
        pages.append([t.task_id for t in page])
        if cursor is None:
            return pages


async def test_filters_combine_whichever_index_is_read(redis_client) -> None:
    store = TaskStore(redis_client, 100)
    made = []
    for i in range(12):  # interleaved: tenants a / b, running / completed, graphs g / h
        tenant, status, graph = "ab"[i % 2], (S.RUNNING, S.COMPLETED)[i // 2 % 2], "gh"[i // 4 % 2]
        made.append((await _task(store, tenant, f"t{i}", status, graph), tenant, status, graph))
    for _ in range(30):  # many kept tasks of tenant a: its own index is now larger than the running index
        await _task(store, "a", f"old{_}", S.COMPLETED)
    newest_first = list(reversed(made))

    def expected(tenant=None, status=None, graph=None) -> list[str]:
        return [sid for sid, t, s, g in newest_first
                if tenant in (None, t) and status in (None, s) and graph in (None, g)]

    assert sum(await _pages(store, 2, tenant="a", status=S.RUNNING), []) == expected("a", S.RUNNING)
    assert sum(await _pages(store, 1, tenant="b", status=S.RUNNING), []) == expected("b", S.RUNNING)
    assert sum(await _pages(store, 2, tenant="b", graph="h"), []) == expected("b", graph="h")
    assert sum(await _pages(store, 5, tenant="a", status=S.RUNNING, graph="g"), []) == \
        expected("a", S.RUNNING, "g")
    assert sum(await _pages(store, 3, status=S.RUNNING, graph="h"), []) == expected(status=S.RUNNING, graph="h")
    b_completed = await _pages(store, 2, tenant="b", status=S.COMPLETED)
    assert sum(b_completed, []) == expected("b", S.COMPLETED) and all(len(p) <= 2 for p in b_completed)
    # The last page ends the listing: no cursor to a page that could only be empty.
    page, cursor = await store.list(S.RUNNING, None, len(expected("a", S.RUNNING)), None, "a")
    assert [t.task_id for t in page] == expected("a", S.RUNNING) and cursor is None


@pytest.fixture
async def real_redis(clean_redis: str):
    client = Redis.from_url(clean_redis, decode_responses=True)
    yield client
    await client.aclose()


async def test_a_tenants_running_tasks_do_not_read_its_kept_ones(real_redis) -> None:
    """A tenant's `?status=running` reads the running tasks' records, not each of its 300 finished ones."""
    store = TaskStore(real_redis, 100)
    running = [await _task(store, "a", "r1", S.RUNNING)]
    for i in range(300):
        await _task(store, "a", f"done{i}", S.COMPLETED)
    running.append(await _task(store, "b", "r2", S.RUNNING))
    running.append(await _task(store, "a", "r3", S.RUNNING))
    await real_redis.config_resetstat()
    page, cursor = await store.list(S.RUNNING, None, 50, None, "a")
    assert [t.task_id for t in page] == [running[2], running[0]] and cursor is None
    reads = (await real_redis.info("commandstats")).get("cmdstat_hgetall", {}).get("calls", 0)
    assert reads <= 2, f"{reads} task records read to list 2 running tasks"
