"""TaskStore, WorkQueue and EventLog: our own Redis code, on fakeredis and on real Redis."""

from __future__ import annotations

import json

import pytest
import redis

from redis_persist.core.errors import IllegalTransition, LeaseLost, TaskConflict, TaskNotFound
from redis_persist.core.status import Action, TaskStatus
from redis_persist.store import keys
from redis_persist.core.events import make_event
from redis_persist.store.events import EventLog
from redis_persist.store.queue import WorkQueue
from redis_persist.store.tasks import TaskStore

S = TaskStatus


@pytest.fixture
def store(redis_client) -> TaskStore:
    return TaskStore(redis_client, events_max_per_task=100)


async def _create(store: TaskStore, task_id: str = "t1", graph: str = "g") -> None:
    await store.create(task_id, graph, {"x": 1}, request_hash=f"hash-{task_id}")


async def test_create_is_atomic_queued_indexed_and_enqueued(store, redis_client) -> None:
    created = await store.create("t1", "g", {"x": 1}, "h")
    assert created.is_new and created.status == S.QUEUED and created.task_id == "t1"
    task = await store.get("t1")
    assert task.status == S.QUEUED and task.initial_state == {"x": 1}
    assert await redis_client.zrange(keys.status_index("queued"), 0, -1) == ["t1"]
    assert [f["task_id"] for _, f in await redis_client.xrange(keys.QUEUE)] == ["t1"]
    await store.claim("t1", "r1", lease_ttl_ms=5000)
    again = await store.create("t1", "g", {"x": 1}, "h")  # the same request: the task as it is now
    assert not again.is_new and again.task_id == "t1" and again.status == S.RUNNING
    with pytest.raises(TaskConflict):
        await store.create("t1", "g", {"x": 2}, "other-hash")
    assert len(await redis_client.xrange(keys.QUEUE)) == 1


async def test_claim_takes_a_lease_and_only_once(store, redis_client) -> None:
    await _create(store)
    token = await store.claim("t1", "r1", lease_ttl_ms=5000)
    assert token == "r1:1"
    assert await redis_client.get(keys.lease("t1")) == token
    assert await store.claim("t1", "r2", lease_ttl_ms=5000) is None
    task = await store.get("t1")
    assert task.status == S.RUNNING and task.owner == "r1" and task.attempts == 1


async def test_writes_with_a_stale_token_are_refused(store, redis_client) -> None:
    await _create(store)
    token = await store.claim("t1", "r1", lease_ttl_ms=5000)
    await store.record("t1", token, fields={"current_node": "a"}, events=[make_event("node_started", "t1")])
    await redis_client.delete(keys.lease("t1"))  # the lease expired
    with pytest.raises(LeaseLost):
        await store.record("t1", token, fields={"current_node": "b"})
    with pytest.raises(LeaseLost):
        await store.act("t1", Action.COMPLETE, token=token)
    assert (await store.get("t1")).current_node == "a"
    assert await store.requeue_if_orphaned("t1")
    new_token = await store.claim("t1", "r2", lease_ttl_ms=5000)
    assert new_token == "r2:2"
    with pytest.raises(LeaseLost):
        await store.record("t1", token, fields={"current_node": "stale"})
    assert (await store.get("t1")).status == S.RUNNING


async def test_hand_back_needs_the_lease_releases_it_and_queues_the_task_again(store, redis_client) -> None:
    await _create(store)
    token = await store.claim("t1", "r1", lease_ttl_ms=5000)
    with pytest.raises(LeaseLost):
        await store.act("t1", Action.HAND_BACK, token="r9:9")
    assert await store.act("t1", Action.HAND_BACK, token=token, drop=["current_node"]) == S.QUEUED
    assert await redis_client.get(keys.lease("t1")) is None
    assert [f["task_id"] for _, f in await redis_client.xrange(keys.QUEUE)] == ["t1", "t1"]
    assert await store.claim("t1", "r2", lease_ttl_ms=5000) == "r2:2"


async def test_requeue_leaves_tasks_with_a_live_lease_alone(store) -> None:
    await _create(store)
    await store.claim("t1", "r1", lease_ttl_ms=5000)
    assert not await store.requeue_if_orphaned("t1")
    assert (await store.get("t1")).status == S.RUNNING


async def test_without_lease_names_the_tasks_a_sweep_may_requeue(store, redis_client) -> None:
    for task_id in ("held", "lost", "also-held"):
        await _create(store, task_id)
        await store.claim(task_id, "r1", lease_ttl_ms=5000)
    await redis_client.delete(keys.lease("lost"))  # its replica is gone
    assert await store.without_lease(["held", "lost", "also-held", "ghost"]) == ["lost", "ghost"]
    assert await store.without_lease([]) == []
    many = [f"t{index}" for index in range(2500)]  # more than one read's batch
    await _create(store, "t1700")
    await store.claim("t1700", "r1", lease_ttl_ms=5000)
    assert await store.without_lease(many) == [task_id for task_id in many if task_id != "t1700"]


async def test_illegal_transitions_change_nothing(store, redis_client) -> None:
    await _create(store)
    before = await redis_client.hgetall(keys.task("t1"))
    events_before = await redis_client.xlen(keys.events("t1"))
    for action in (Action.COMPLETE, Action.FAIL, Action.INTERRUPT, Action.RESUME, Action.ANSWER, Action.DELETE):
        with pytest.raises(IllegalTransition):
            await store.act("t1", action)
    assert await redis_client.hgetall(keys.task("t1")) == before
    assert await redis_client.xlen(keys.events("t1")) == events_before
    with pytest.raises(TaskNotFound):
        await store.act("ghost", Action.CANCEL)


async def test_pause_is_immediate_when_queued_and_deferred_when_running(store) -> None:
    await _create(store, "q")
    assert await store.act("q", Action.PAUSE) == S.PAUSED
    await _create(store, "r")
    token = await store.claim("r", "r1", 5000)
    assert await store.record("r", token) is False
    assert await store.act("r", Action.PAUSE) == S.RUNNING
    assert await store.record("r", token) is True  # the runner learns of it with its next write
    with pytest.raises(IllegalTransition):
        await store.act("q", Action.PAUSE)


async def test_a_pause_requested_before_the_claim_pauses_instead_of_running(store) -> None:
    await _create(store)
    await store.claim("t1", "r1", 5000)
    await store.act("t1", Action.PAUSE)
    await store._redis.delete(keys.lease("t1"))
    assert await store.requeue_if_orphaned("t1")
    assert await store.claim("t1", "r2", 5000) is None
    assert (await store.get("t1")).status == S.PAUSED


async def test_list_pages_newest_first_and_skips_deleted(store) -> None:
    for i in range(7):
        await _create(store, f"t{i}", graph="a" if i % 2 else "b")
    first, cursor = await store.list(None, None, 3, None)
    assert [t.task_id for t in first] == ["t6", "t5", "t4"]
    second, cursor = await store.list(None, None, 3, cursor)
    assert [t.task_id for t in second] == ["t3", "t2", "t1"]
    third, cursor = await store.list(None, None, 3, cursor)
    assert [t.task_id for t in third] == ["t0"] and cursor is None
    await store.act("t3", Action.CANCEL)
    await store.act("t3", Action.DELETE)
    only_a, _ = await store.list(S.QUEUED, "a", 10, None)
    assert [t.task_id for t in only_a] == ["t5", "t1"]


async def test_delete_refuses_running_tasks(store) -> None:
    await _create(store)
    await store.claim("t1", "r1", 5000)
    with pytest.raises(IllegalTransition):
        await store.act("t1", Action.DELETE)


async def test_events_are_ordered_capped_and_replayable(redis_client) -> None:
    store = TaskStore(redis_client, events_max_per_task=10)
    await _create(store)
    token = await store.claim("t1", "r1", 5000)
    for i in range(300):
        await store.record("t1", token, events=[make_event("progress", "t1", step=i)])
    log = EventLog(redis_client)
    events = await log.read("t1")
    assert 10 <= len(events) < 300  # trimmed (approximately) to the cap
    assert [e["step"] for e in events] == list(range(300 - len(events), 300))
    after = await log.read("t1", after=events[-3]["id"])
    assert [e["id"] for e in after] == [e["id"] for e in events[-2:]]
    assert json.loads(json.dumps(events[-1]))["task_id"] == "t1"


async def test_work_queue_hands_out_oldest_first_and_reclaims_unacked(redis_client) -> None:
    store = TaskStore(redis_client, 100)
    for i in range(3):
        await _create(store, f"t{i}")
    dead = WorkQueue(redis_client, "dead-consumer")
    await dead.ensure_group()
    await dead.ensure_group()  # idempotent
    taken = await dead.read(count=2, block_ms=10)
    assert [task_id for _, task_id in taken] == ["t0", "t1"]
    alive = WorkQueue(redis_client, "alive")
    mine = await alive.read(count=5, block_ms=10)
    assert [task_id for _, task_id in mine] == ["t2"]
    await alive.ack(mine[0][0])
    reclaimed = await alive.reclaim_stale(min_idle_ms=0, count=10)
    assert sorted(task_id for _, task_id in reclaimed) == ["t0", "t1"]
    for message_id, _ in reclaimed:
        await alive.ack(message_id)
    await alive.trim_delivered()
    assert await redis_client.xlen(keys.QUEUE) <= 1


async def test_a_task_stored_under_another_tenant_than_its_id_fails_loudly_and_changes_nothing(
        store, redis_client) -> None:
    # The tenant's keys (queue, running set, index) are named from the id's scope: a record saying otherwise
    # would put the task in another tenant's indexes, so the script refuses before writing anything.
    await store.create("acme.t1", "g", {}, "h", tenant="acme")
    await redis_client.hset(keys.task("acme.t1"), "tenant", "other")
    before = await redis_client.hgetall(keys.task("acme.t1"))
    with pytest.raises(redis.ResponseError, match="tenant other"):
        await store.act("acme.t1", Action.CANCEL)
    assert await redis_client.hgetall(keys.task("acme.t1")) == before
    with pytest.raises(ValueError):
        await store.create("acme.t2", "g", {}, "h", tenant="default")  # an id outside its tenant's scope


async def test_delete_names_the_graph_index_it_read_and_retries_if_the_graph_changed(store, redis_client) -> None:
    await store.create("t1", "g", {}, "h")
    await store.act("t1", Action.CANCEL)
    # The script is given the index of the graph the caller saw; another one is refused, not half-deleted.
    assert await store._delete(keys=keys.for_delete("t1", "stale"), args=["t1", "stale"]) == ["retry", "g"]
    assert await redis_client.zscore(keys.graph_index("g"), "t1") is not None
    await store.act("t1", Action.DELETE)
    assert await redis_client.exists(keys.task("t1"), keys.events("t1")) == 0
    assert await redis_client.zscore(keys.graph_index("g"), "t1") is None
