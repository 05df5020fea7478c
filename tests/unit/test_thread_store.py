"""ThreadStore: one active run per thread, multitask strategies and hand-over, decided atomically in Redis."""

from __future__ import annotations

import pytest

from redis_persist.core.errors import IllegalTransition, ResourceNotFound
from redis_persist.core.status import Action, TaskStatus
from redis_persist.store import keys
from redis_persist.store.tasks import TaskStore
from redis_persist.store.threads import ThreadStore

S = TaskStatus


async def _run(threads: ThreadStore, run_id: str, strategy: str = "enqueue", thread: str = "t1",
               if_not_exists: str = "reject") -> tuple[str, str]:
    return await threads.create_run(run_id, thread, "slow", strategy, if_not_exists,
                                    {"run_spec": "{}", "initial_state": "{}"}, {"graph_id": "slow"})


async def _queued(redis_client) -> list[str]:
    return [fields["task_id"] for _, fields in await redis_client.xrange(keys.QUEUE)]


async def test_runs_on_a_free_thread_start_and_a_busy_thread_queues_or_rejects(redis_client) -> None:
    threads, tasks = ThreadStore(redis_client, 100), TaskStore(redis_client, 100)
    with pytest.raises(ResourceNotFound):
        await _run(threads, "r0")
    assert await redis_client.exists(keys.task("r0")) == 0
    await threads.create_thread("t1", {}, "raise")
    assert await _run(threads, "r1") == ("created", "")
    with pytest.raises(IllegalTransition):
        await _run(threads, "r2", "reject")
    assert await redis_client.exists(keys.task("r2")) == 0  # a refused run leaves nothing behind
    assert await _run(threads, "r3", "enqueue") == ("pending", "r1")
    assert await _queued(redis_client) == ["r1"]
    assert await threads.advance("t1") is None  # r1 still holds the thread
    await tasks.claim("r1", "replica", 10_000)
    await tasks.act("r1", Action.COMPLETE)
    assert await threads.advance("t1") == "r3"
    assert await _queued(redis_client) == ["r1", "r3"]
    assert await threads.threads_with_pending_runs() == []
    assert await threads.run_ids("t1", 10, 0) == ["r3", "r1"]


async def test_interrupt_cancels_the_active_run_in_the_same_step(redis_client) -> None:
    threads, tasks = ThreadStore(redis_client, 100), TaskStore(redis_client, 100)
    await _run(threads, "r1", thread="t2", if_not_exists="create")
    await tasks.claim("r1", "replica", 10_000)
    assert await _run(threads, "r2", "interrupt", thread="t2") == ("created", "r1")
    assert (await tasks.get("r1")).status == S.CANCELLED
    assert await redis_client.exists(keys.lease("r1")) == 0  # its writes are fenced off from now on
    assert (await tasks.get("r2")).status == S.QUEUED


async def test_a_thread_with_an_active_or_waiting_run_cannot_be_deleted(redis_client) -> None:
    threads, tasks = ThreadStore(redis_client, 100), TaskStore(redis_client, 100)
    await threads.create_thread("t3", {"a": 1}, "raise")
    assert await threads.create_thread("t3", {}, "do_nothing") is False
    await _run(threads, "r1", thread="t3")
    await _run(threads, "r2", thread="t3")  # pending behind r1
    with pytest.raises(IllegalTransition):
        await threads.delete_thread("t3")
    await tasks.act("r1", Action.CANCEL)
    with pytest.raises(IllegalTransition):
        await threads.delete_thread("t3")  # r2 still waits for the thread
    await tasks.act("r2", Action.CANCEL)
    assert sorted(await threads.delete_thread("t3")) == ["r1", "r2"]
    with pytest.raises(ResourceNotFound):
        await threads.get_thread("t3")


async def test_thread_scripts_refuse_a_stale_view_of_the_active_run_and_change_nothing(redis_client) -> None:
    # Python names the keys of the run it saw holding the thread; if another run took the thread since,
    # the script answers 'retry' (ThreadStore reads again and retries) instead of touching the wrong run.
    threads, tasks = ThreadStore(redis_client, 100), TaskStore(redis_client, 100)
    await _run(threads, "r1", thread="t5", if_not_exists="create")
    await _run(threads, "r2", "enqueue", thread="t5")
    before = {key: await redis_client.hgetall(key) for key in (keys.thread("t5"), keys.task("r1"), keys.task("r2"))}
    busy = "paused,queued,running"
    stale = "r0"  # not the run holding t5
    assert (await threads._create_run(keys=keys.for_create_run("t5", "r3", "slow", stale), args=[
        "r3", "t5", "interrupt", "{}", "[]", 100, "reject", "{}", "now", busy, "[]", "", stale]))[0] == "retry"
    assert await threads._advance(keys=keys.for_advance("t5", stale, "r2"), args=["t5", busy, stale, "r2"]) == [
        "retry"]
    assert await threads._advance(keys=keys.for_advance("t5", "r1", ""), args=["t5", busy, "r1", ""]) == ["retry"]
    assert await threads._delete_thread(keys=keys.for_delete_thread("t5", "r1", []), args=["t5", busy, "r1"]) == [
        "retry"]
    assert (await threads._lock_for_update(keys=keys.for_lock_for_update("t5", stale),
                                           args=["t5", busy, "tok", 1000, stale]))[0] == "retry"
    assert {key: await redis_client.hgetall(key) for key in before} == before
    assert await redis_client.exists(keys.task("r3")) == 0
    # With a fresh view, the same calls go through ThreadStore as before.
    await tasks.act("r1", Action.COMPLETE, token=await tasks.claim("r1", "replica", 10_000))
    assert await threads.advance("t5") == "r2"
