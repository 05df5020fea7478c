"""TaskStore.list with many kept tasks: it reads the narrowest index, so a filtered page stays cheap."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from redis_persist.core.auth import scoped_id
from redis_persist.core.status import Action, TaskStatus
from redis_persist.store import keys
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
    stats = await real_redis.info("commandstats")
    reads = sum(stats.get(f"cmdstat_{command}", {}).get("calls", 0) for command in ("hgetall", "hmget", "hget"))
    assert reads <= 2, f"{reads} task records read to list 2 running tasks"


async def test_a_page_reads_only_the_records_it_shows_and_reads_on_past_deleted_ones(real_redis) -> None:
    """An unfiltered page of `limit` reads `limit` records, the shown fields only; a record deleted after
    the index was read is skipped and the page filled from the next ones."""
    store = TaskStore(real_redis, 100)
    made = [await _task(store, "default", f"t{i}", S.COMPLETED) for i in range(6)]
    await real_redis.config_resetstat()
    page, cursor = await store.list(None, None, 1, None)
    assert [t.task_id for t in page] == [made[5]] and cursor == str(page[0].seq)
    stats = await real_redis.info("commandstats")
    assert stats.get("cmdstat_hmget", {}).get("calls", 0) == 1 and "cmdstat_hgetall" not in stats
    await real_redis.delete(keys.task(made[4]), keys.task(made[3]))  # the index still names them
    page, cursor = await store.list(None, None, 2, None)
    assert [t.task_id for t in page] == [made[5], made[2]] and cursor == str(page[1].seq)
    page, cursor = await store.list(None, None, 2, cursor)
    assert [t.task_id for t in page] == [made[1], made[0]] and cursor is None


async def test_a_listed_task_shows_what_reading_it_alone_shows(real_redis) -> None:
    """The list reads only LISTED_FIELDS: every field a task's JSON shows must be among them."""
    store = TaskStore(real_redis, 100)
    made = [await _task(store, "default", "queued", S.QUEUED), await _task(store, "default", "running", S.RUNNING),
            await _task(store, "a", "done", S.COMPLETED)]
    await real_redis.hset(keys.task(made[1]), mapping={  # every field a record can hold, shown or not
        "current_node": "n2", "checkpoint": "n1", "checkpoint_id": "c-1", "progress": "40.5",
        "state": '{"x": [1, 2.5, "\\u00e9"]}', "interrupt": '{"question": "ok?"}', "error": "boom",
        "completed_nodes": '["n1"]', "pause_requested": "1", "resume_input": '"yes"',
        "final_checkpoint": '{"big": true}', "run_spec": '{"assistant_id": "x"}', "initial_state": '{"a": 1}'})
    page, _ = await store.list(None, None, 10, None)
    assert len(page) == len(made)
    for listed in page:
        for with_tenant in (False, True):
            alone = await store.get(listed.task_id)
            assert listed.public("node-1", with_tenant) == alone.public("node-1", with_tenant)
