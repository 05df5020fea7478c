"""AccessControl over the key store, tenant scoping in TaskStore, and the fair WorkQueue (fakeredis and real)."""

from __future__ import annotations

import pytest

from redis_persist.core.auth import Role, scoped_id
from redis_persist.engine.access import AccessControl
from redis_persist.store import keys
from redis_persist.store.apikeys import ApiKeyStore
from redis_persist.store.queue import WorkQueue
from redis_persist.store.tasks import TaskStore


async def test_keys_authenticate_until_revoked_and_store_no_secret(redis_client) -> None:
    access = AccessControl(ApiKeyStore(redis_client), admin_key="bootstrap-admin-key-123", cache_seconds=0)
    record, key = await access.create_key("acme", "operator")
    caller = await access.authenticate(key)
    assert (caller.key_id, caller.tenant, caller.role, caller.all_tenants) == (record.key_id, "acme",
                                                                                Role.OPERATOR, False)
    stored = await redis_client.hgetall(keys.api_key(record.key_id))
    secret = key.split("_", 2)[2]
    assert secret not in str(stored) and set(stored) == {"tenant", "role", "created_at", "salt", "secret_hash"}
    assert await access.authenticate(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    admin = await access.authenticate("bootstrap-admin-key-123")
    assert admin.is_admin and admin.all_tenants
    assert [r.key_id for r in await access.list_keys()] == [record.key_id]
    assert await access.revoke_key(record.key_id) is True
    assert await access.authenticate(key) is None
    assert await access.revoke_key(record.key_id) is False


async def test_a_cached_key_stays_valid_only_for_the_cache_time(redis_client) -> None:
    reader = AccessControl(ApiKeyStore(redis_client), None, cache_seconds=60)
    writer = AccessControl(ApiKeyStore(redis_client), None)
    record, key = await writer.create_key("acme", "viewer")
    assert await reader.authenticate(key) is not None
    await writer.revoke_key(record.key_id)  # another replica revokes
    assert await reader.authenticate(key) is not None  # still cached here: why the cache is short
    fresh = AccessControl(ApiKeyStore(redis_client), None, cache_seconds=0)
    assert await fresh.authenticate(key) is None


@pytest.mark.parametrize(("tenant", "role"), [("bad.tenant", "viewer"), ("acme", "root")])
async def test_bad_key_requests_are_refused(redis_client, tenant: str, role: str) -> None:
    from redis_persist.core.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        await AccessControl(ApiKeyStore(redis_client), None).create_key(tenant, role)


async def _create(store: TaskStore, tenant: str, task_id: str) -> None:
    await store.create(scoped_id(tenant, task_id), "g", {}, f"hash-{tenant}-{task_id}", tenant)


async def test_tenant_listing_and_per_tenant_queues(redis_client) -> None:
    store = TaskStore(redis_client, 100)
    await _create(store, "default", "d1")
    await _create(store, "a", "t1")
    await _create(store, "b", "t1")
    assert [t.task_id for t in (await store.list(None, None, 10, None, "a"))[0]] == ["a.t1"]
    assert {t.task_id for t in (await store.list(None, None, 10, None))[0]} == {"d1", "a.t1", "b.t1"}
    assert [f["task_id"] for _, f in await redis_client.xrange(keys.QUEUE)] == ["d1"]
    assert [f["task_id"] for _, f in await redis_client.xrange(keys.queue("a"))] == ["a.t1"]
    assert await redis_client.smembers(keys.TENANTS) == {"a", "b"}


async def test_fair_queue_takes_turns_between_tenants(redis_client) -> None:
    store = TaskStore(redis_client, 100)
    for i in range(6):
        await _create(store, "a", f"a{i}")
    await _create(store, "b", "b0")
    await _create(store, "b", "b1")
    queue = WorkQueue(redis_client, "c1")
    await queue.ensure_group()
    first = [task_id for _, task_id in await queue.read(count=4, block_ms=0)]
    assert first == ["a.a0", "b.b0", "a.a1", "b.b1"]
    rest = [task_id for _, task_id in await queue.read(count=10, block_ms=0)]
    assert rest == ["a.a2", "a.a3", "a.a4", "a.a5"]
    await _create(store, "a", "late-a")
    await _create(store, "b", "late-b")
    # The last turn went to a, so b goes first now.
    assert [task_id for _, task_id in await queue.read(count=1, block_ms=0)] == ["b.late-b"]
    assert [task_id for _, task_id in await queue.read(count=1, block_ms=10)] == ["a.late-a"]
    assert await queue.read(count=1, block_ms=10) == []


async def test_fair_queue_skips_a_tenant_at_its_running_cap(redis_client) -> None:
    store = TaskStore(redis_client, 100)
    for i in range(3):
        await _create(store, "a", f"a{i}")
    await _create(store, "b", "b0")
    queue = WorkQueue(redis_client, "c1", tenant_max_running=1)
    await queue.ensure_group()
    taken = await queue.read(count=4, block_ms=0)
    assert [task_id for _, task_id in taken] == ["a.a0", "b.b0"]  # one each: the cap, not the slots
    assert await store.claim("a.a0", "replica", 10_000) is not None  # a0 runs: a is at its cap
    assert await queue.read(count=4, block_ms=10) == []
    for ref, _ in taken:
        await queue.ack(ref)
