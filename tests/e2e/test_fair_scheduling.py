"""Fair scheduling between tenants: one tenant's burst does not starve another; per-tenant running cap."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis

from redis_persist.core.auth import scoped_id
from redis_persist.store import keys
from tests.e2e.auth_helpers import ADMIN, AUTH_ENV, Key, make_key
from tests.e2e.helpers import GRAPHS_ENV
from tests.support import wait_until

BURST = 120
STEP_SECONDS = 0.25  # counting has four nodes: about one second per task


def _queue(base_url: str, key: Key, state: dict, count: int) -> list[str]:
    def create(_: int) -> str:
        response = httpx.post(f"{base_url}/api/tasks/execute", headers=key.headers, timeout=30,
                              json={"graph_name": "counting", "initial_state": state})
        assert response.status_code == 202, response.text
        return response.json()["task_id"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(create, range(count)))


def _count(base_url: str, key: Key, status: str) -> int:
    response = httpx.get(f"{base_url}/api/tasks", headers=key.headers, params={"status": status, "limit": 500})
    return len(response.json()["tasks"])


def _entered(client: redis.Redis, tenant: str, task_id: str, status: str) -> int | None:
    """When (Redis server ms, from the event's stream id) the task's `status` event for `status` was written."""
    for entry_id, fields in client.xrange(keys.events(scoped_id(tenant, task_id))):
        event = json.loads(fields["e"])
        if event["type"] == "status" and event.get("status") == status:
            return int(entry_id.split("-")[0])
    return None


def test_one_tenants_burst_does_not_starve_another(start_service) -> None:
    service = start_service({**AUTH_ENV, **GRAPHS_ENV, "REDIS_PERSIST_MAX_TASKS": "4"}, name="fair")
    alice = make_key(service.url, "tenant-a", "operator")
    bob = make_key(service.url, "tenant-b", "operator")
    alices = _queue(service.url, alice, {"step_seconds": STEP_SECONDS}, BURST)
    wait_until(lambda: _count(service.url, alice, "running") == 4, 30, "alice's first four tasks to run")
    assert _count(service.url, alice, "queued") > BURST / 2
    [bobs] = _queue(service.url, bob, {"step_seconds": STEP_SECONDS}, 1)
    wait_until(lambda: httpx.get(f"{service.url}/api/tasks/{bobs}", headers=bob.headers).json()["status"]
               == "completed", 30, "bob's task to complete")
    # Counted from the tasks' own status events (server times), not from polls that race the claims.
    with redis.Redis.from_url(service.redis_url, decode_responses=True) as client:
        bob_queued = _entered(client, "tenant-b", bobs, "queued")
        bob_running = _entered(client, "tenant-b", bobs, "running")
        assert bob_queued is not None and bob_running is not None
        started_before_bob = sum(1 for task_id in alices
                                 if bob_queued <= (_entered(client, "tenant-a", task_id, "running") or 0) < bob_running)
    # Without turns between tenants bob would wait for all of alice's backlog (about 30 s at 4 at a time);
    # with turns his task takes the next free slot: at most the four running ones end first.
    assert started_before_bob <= 4, (started_before_bob, bob_running - bob_queued)
    print(f"bob's task started {bob_running - bob_queued} ms after it was queued; {started_before_bob} of alice's "
          "queued tasks started in between")


def test_a_tenant_runs_at_most_its_cap_while_others_use_the_free_slots(start_service, tmp_path) -> None:
    service = start_service({**AUTH_ENV, **GRAPHS_ENV, "REDIS_PERSIST_MAX_TASKS": "4",
                             "REDIS_PERSIST_TENANT_MAX_RUNNING": "2"}, name="capped")
    alice = make_key(service.url, "tenant-a", "operator")
    bob = make_key(service.url, "tenant-b", "operator")
    gate = tmp_path / "gate"

    def gated(key: Key, count: int) -> list[str]:
        ids = []
        for _ in range(count):
            response = httpx.post(f"{service.url}/api/tasks/execute", headers=key.headers,
                                  json={"graph_name": "gated", "initial_state": {"gate": str(gate)}})
            assert response.status_code == 202, response.text
            ids.append(response.json()["task_id"])
        return ids

    gated(alice, 5)
    wait_until(lambda: _count(service.url, alice, "running") == 2, 30, "two of alice's tasks to run")
    gated(bob, 3)
    wait_until(lambda: _count(service.url, bob, "running") == 2, 30, "two of bob's tasks to run")
    # Four slots, two per tenant: both tenants are at their cap and the rest wait their turn.
    assert (_count(service.url, alice, "running"), _count(service.url, alice, "queued")) == (2, 3)
    assert (_count(service.url, bob, "running"), _count(service.url, bob, "queued")) == (2, 1)
    gate.touch()
    wait_until(lambda: _count(service.url, alice, "completed") == 5 and _count(service.url, bob, "completed") == 3,
               120, "every task to complete")
    everything = httpx.get(f"{service.url}/api/tasks", headers=ADMIN, params={"limit": 500}).json()["tasks"]
    assert len(everything) == 8 and {t["status"] for t in everything} == {"completed"}
