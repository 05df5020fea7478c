"""Redis out of memory mid-run: a storage fault is never the graph's fault, and no task is lost or fails."""

from __future__ import annotations

import time

import pytest
import redis

from redis_persist.embedded import EmbeddedRedis
from redis_persist.store import keys
from tests.e2e.helpers import GRAPHS_ENV, execute, runs, storage_errors_total, task, wait_status
from tests.support import ServiceProcess, read_events, wait_until

NODES = ["one", "two", "three", "four"]  # the `counting` test graph
LEASE_TTL_SECONDS = 3
TASKS = 12


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own: its maxmemory is lowered below what it uses."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_tasks_wait_out_redis_out_of_memory_and_complete_without_failing(own_redis, tmp_path) -> None:
    service = ServiceProcess(own_redis.url, name="api-1",
                             env={**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": str(LEASE_TTL_SECONDS)})
    admin = redis.Redis.from_url(own_redis.url, decode_responses=True)
    try:
        service.start()
        with service.client() as client:
            logs = {}
            for index in range(TASKS):
                run_log = tmp_path / f"runs-{index}"
                # Staggered step lengths, so the fault lands at different points of different tasks.
                state = {"run_log": str(run_log), "step_seconds": 0.3 + 0.05 * index}
                logs[execute(client, "counting", state)] = run_log
            wait_until(lambda: sum(task(client, t)["checkpoint"] is not None for t in logs) >= TASKS // 2,
                       30, "half of the tasks to pass their first node")

            used = int(admin.info("memory")["used_memory"])
            admin.config_set("maxmemory", used // 2)  # noeviction: every write that needs memory now fails
            try:
                refused = client.post("/api/tasks/execute", json={"graph_name": "counting", "initial_state": {}})
                assert refused.status_code == 503, refused.text
                wait_until(lambda: storage_errors_total(client) > 0, 20, "the service to meet the fault")
                in_fault = {t: task(client, t) for t in logs}
                # The fault lasts longer than a lease: leases must still be renewed (PEXPIRE works under OOM).
                time.sleep(LEASE_TTL_SECONDS * 1.5)
                assert all(admin.exists(keys.lease(t)) for t, before in in_fault.items()
                           if before["status"] == "running"), "a lease lapsed during the fault"
                assert not [t for t in logs if task(client, t)["status"] == "failed"]
            finally:
                admin.config_set("maxmemory", 0)

            done = {t: wait_status(client, t, "completed", "failed", timeout=60) for t in logs}
            assert {t: d["status"] for t, d in done.items() if d["status"] != "completed"} == {}
            assert storage_errors_total(client) > 0
        for task_id, finished in done.items():
            assert finished["completed_nodes"] == NODES and finished["error"] is None
            assert finished["attempts"] == 1, "the task was taken from its replica during the fault"
            counts = runs(logs[task_id])
            assert set(counts) == set(NODES)
            # Only the node in flight when the fault hit may have run again, and only once more.
            assert sorted(counts.values())[:-1] == [1, 1, 1] and counts.most_common(1)[0][1] <= 2, counts
        faulted = {t: [e for e in read_events(service.url, t) if e["type"] == "storage_error"] for t in logs}
        faulted = {t: events for t, events in faulted.items() if events}
        assert faulted, "no task recorded a storage_error event"
        for events in faulted.values():
            assert "maxmemory" in events[0]["error"] and events[0]["retries"] >= 1
    finally:
        service.kill()
        admin.close()
