"""Lease renewal: a lease released by its task's own end is told apart from a lease really lost."""

from __future__ import annotations

import logging

import pytest
import redis

from redis_persist.core.status import Action, TaskStatus
from redis_persist.store import keys, leases, scripts
from redis_persist.store.connections import RedisConnections
from redis_persist.store.leases import LEASE_HELD, LEASE_LOST, LEASE_RELEASED, LeaseKeeper
from redis_persist.store.tasks import TaskStore

S = TaskStatus
TTL_MS = 5000


@pytest.fixture
def store(redis_client) -> TaskStore:
    return TaskStore(redis_client, events_max_per_task=100)


async def _running(store: TaskStore, task_id: str, replica: str = "r1") -> str:
    await store.create(task_id, "g", {}, request_hash=f"hash-{task_id}")
    token = await store.claim(task_id, replica, lease_ttl_ms=TTL_MS)
    assert token is not None
    return token


async def test_renewal_says_held_released_or_lost(store, redis_client) -> None:
    tokens = {task_id: await _running(store, task_id) for task_id in ("held", "ended", "expired", "orphaned", "taken")}
    await store.act("ended", Action.COMPLETE, token=tokens["ended"])
    await redis_client.delete(keys.lease("expired"))  # not renewed in time; still `running`
    await redis_client.delete(keys.lease("orphaned"))
    assert await store.requeue_if_orphaned("orphaned")  # another replica's sweep re-queued it
    await redis_client.delete(keys.lease("taken"))
    await store.requeue_if_orphaned("taken")
    assert await store.claim("taken", "r2", lease_ttl_ms=TTL_MS) is not None  # and another replica runs it
    await redis_client.pexpire(keys.lease("held"), 100)

    renew = redis_client.register_script(scripts.RENEW_LEASES)
    outcomes = await renew(keys=keys.for_renew_leases(tokens), args=[TTL_MS, *tokens.values()])

    assert dict(zip(tokens, outcomes, strict=True)) == {
        "held": LEASE_HELD, "ended": LEASE_RELEASED, "expired": LEASE_LOST, "orphaned": LEASE_LOST, "taken": LEASE_LOST}
    assert await redis_client.pttl(keys.lease("held")) > 1000


@pytest.fixture
def keeper(redis_url):
    stopped: list[str] = []
    keeper = LeaseKeeper(RedisConnections.from_url(redis_url), "r1", lease_ttl_seconds=5, on_lost=stopped.append)
    keeper.stopped = stopped  # type: ignore[attr-defined]
    yield keeper  # not started: each test runs one renewal round itself
    keeper._client.close()


@pytest.mark.parametrize("redis_client", ["real"], indirect=True)
async def test_a_task_that_ended_just_before_renewal_is_not_reported_as_a_lost_lease(
    store, keeper, caplog
) -> None:
    token = await _running(store, "t1")
    keeper.hold("t1", token)
    await store.act("t1", Action.COMPLETE, token=token)  # the worker has not dropped it yet
    with caplog.at_level(logging.DEBUG, logger="redis_persist.store.leases"):
        keeper._renew_all()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert keeper.token("t1") is None and keeper.stopped == ["t1"]


@pytest.mark.parametrize("redis_client", ["real"], indirect=True)
async def test_a_lease_really_lost_is_reported_and_the_task_stopped(store, keeper, redis_client, caplog) -> None:
    token = await _running(store, "t1")
    keeper.hold("t1", token)
    await redis_client.delete(keys.lease("t1"))
    with caplog.at_level(logging.WARNING, logger="redis_persist.store.leases"):
        keeper._renew_all()
    assert [r.getMessage() for r in caplog.records] == ["lease lost"]
    assert keeper.stopped == ["t1"]


@pytest.mark.parametrize("redis_client", ["real"], indirect=True)
async def test_leases_are_renewed_while_redis_is_out_of_memory(store, keeper, redis_client, redis_url) -> None:
    token = await _running(store, "t1")
    keeper.hold("t1", token)
    await redis_client.pexpire(keys.lease("t1"), 200)
    admin = redis.Redis.from_url(redis_url)
    admin.config_set("maxmemory", 1)  # noeviction: SET, HSET, XADD... are refused
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            admin.set("probe", "x")
        keeper._renew_all()
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
    assert await redis_client.pttl(keys.lease("t1")) > 1000 and keeper.stopped == []


@pytest.mark.parametrize("redis_client", ["real"], indirect=True)
async def test_a_task_claimed_here_again_keeps_its_new_lease(store, keeper, redis_client) -> None:
    old = await _running(store, "t1")
    await store.act("t1", Action.SUSPEND, token=old)
    await store.act("t1", Action.RESUME)  # resumed...
    new = await store.claim("t1", "r1", lease_ttl_ms=TTL_MS)  # ...and claimed by this replica again
    keeper.hold("t1", new)
    renew = redis_client.register_script(scripts.RENEW_LEASES)
    # A renewal round whose snapshot still had the old lease gets this answer for it:
    assert await renew(keys=keys.for_renew_leases(["t1"]), args=[TTL_MS, old]) == [LEASE_LOST]
    keeper._lose("t1", old)
    assert keeper.token("t1") == new and keeper.stopped == []


@pytest.mark.parametrize("redis_client", ["real"], indirect=True)
async def test_many_leases_are_renewed_a_batch_per_script_call(store, keeper, redis_client, monkeypatch) -> None:
    # Redis runs nothing else while a script runs: one call for thousands of leases stalled every replica.
    monkeypatch.setattr(leases, "RENEW_BATCH", 2)
    tokens = {f"t{i}": await _running(store, f"t{i}") for i in range(5)}
    for task_id, token in tokens.items():
        keeper.hold(task_id, token)
        await redis_client.pexpire(keys.lease(task_id), 200)
    calls: list[int] = []
    script = keeper._renew

    def counted(keys: list[str], args: list[str | int]) -> list[int]:
        calls.append(len(args) - 1)
        return script(keys=keys, args=args)

    monkeypatch.setattr(keeper, "_renew", counted)
    keeper._renew_all()
    assert calls == [2, 2, 1]
    assert all([await redis_client.pttl(keys.lease(task_id)) > 1000 for task_id in tokens])
    assert keeper.stopped == [] and all(keeper.token(task_id) == token for task_id, token in tokens.items())


@pytest.mark.parametrize("redis_client", ["real"], indirect=True)
async def test_a_batch_that_fails_keeps_the_batches_renewed_before_it(store, keeper, redis_client, monkeypatch,
                                                                      caplog) -> None:
    monkeypatch.setattr(leases, "RENEW_BATCH", 2)
    tokens = {f"t{i}": await _running(store, f"t{i}") for i in range(4)}
    for task_id, token in tokens.items():
        keeper.hold(task_id, token)
        await redis_client.pexpire(keys.lease(task_id), 200)
    script = keeper._renew
    answered: list[int] = []

    def second_fails(keys: list[str], args: list[str | int]) -> list[int]:
        if answered:
            raise redis.exceptions.ConnectionError("Redis went away")
        answered.append(1)
        return script(keys=keys, args=args)

    monkeypatch.setattr(keeper, "_renew", second_fails)
    with caplog.at_level(logging.WARNING, logger="redis_persist.store.leases"):
        keeper._renew_all()
    assert [r.getMessage() for r in caplog.records] == ["lease renewal failed"]
    assert [await redis_client.pttl(keys.lease(task_id)) > 1000 for task_id in tokens] == [True, True, False, False]
    assert keeper.stopped == []  # the last two were renewed less than a lease time ago: not given up yet
