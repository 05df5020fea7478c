"""Three real replicas behind Debian nginx: routing by task id, a dead replica skipped, its tasks taken over."""

from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect as websocket_connect

from redis_persist.testing import (
    DATA_PIPELINE_NODES,
    LocalCluster,
    client,
    execute,
    get_task,
    read_events,
    run_failover_scenario,
    wait_until,
)


@pytest.fixture
def cluster(clean_redis, tmp_path):
    """api-1..3 (lease TTL 3 s) and nginx in front of them, on the session Redis."""
    with LocalCluster(clean_redis, tmp_path, lease_ttl_seconds=3.0) as started:
        yield started


def test_killed_replica_tasks_finish_elsewhere_from_their_checkpoint(cluster):
    report = run_failover_scenario(cluster, victim="api-1", task_count=9, step_seconds=1.0)

    details = f"\n{report.table()}\nproblems: {report.problems}"
    assert report.problems == [], details
    assert report.taken_over, f"api-1 had no task in flight at the kill{details}"
    for outcome in report.outcomes:
        assert outcome.status == "completed", details
        assert outcome.rerun_completed_nodes == [], details
    for outcome in report.taken_over:
        assert outcome.owner in {"api-2", "api-3"}, details
        assert outcome.attempts >= 2, details
        # Resumed from the checkpoint: the nodes finished before the kill ran once.
        checkpoint = outcome.checkpoint_at_kill
        done = DATA_PIPELINE_NODES[: DATA_PIPELINE_NODES.index(checkpoint) + 1] if checkpoint else ()
        assert all(outcome.node_runs[node] == 1 for node in done), details
    assert any(o.checkpoint_at_kill for o in report.taken_over), f"no taken-over task had a checkpoint{details}"


def _routed(response) -> str:
    assert "x-upstream" in response.headers, dict(response.headers)
    return response.headers["x-upstream"]


def test_nginx_sends_a_task_to_one_replica_and_skips_a_dead_one(cluster):
    task_ids = [f"route-{i:02d}" for i in range(12)]
    home: dict[str, str] = {}
    with client(cluster.url) as http:
        for task_id in task_ids:
            created = http.post(
                "/api/tasks/execute",
                params={"task_id": task_id},
                json={"graph_name": "data_pipeline", "initial_state": {"step_seconds": 0}, "task_id": task_id},
            )
            assert created.status_code == 202, created.text
            home[task_id] = cluster.replica_for_upstream(_routed(created))
        wait_until(
            lambda: all(get_task(http, t)["status"] == "completed" for t in task_ids), 60, "all route-* completed"
        )

        for task_id in task_ids:
            for _ in range(3):
                response = http.get(f"/api/tasks/{task_id}")
                assert response.status_code == 200
                assert cluster.replica_for_upstream(_routed(response)) == home[task_id]
                assert response.json()["node"] == home[task_id], "the replica nginx chose is the one that answered"
        assert len(set(home.values())) >= 2, f"12 task ids all hashed to one replica: {home}"

        victim = home[task_ids[0]]
        cluster.replicas[victim].kill()

        for task_id in task_ids:
            response = http.get(f"/api/tasks/{task_id}")
            assert response.status_code == 200, f"{task_id} after {victim} died: {response.status_code}"
            answered_by = cluster.replica_for_upstream(_routed(response))
            assert response.json()["node"] == answered_by
            if home[task_id] == victim:
                assert answered_by != victim
            else:
                assert answered_by == home[task_id], f"{task_id} moved though {home[task_id]} is alive"

        # New work and live streams still go through.
        execute(http, "route-after-kill", "data_pipeline", {"step_seconds": 0})
        wait_until(lambda: get_task(http, "route-after-kill")["status"] == "completed", 60, "route-after-kill done")
        moved = next(task_id for task_id in task_ids if home[task_id] == victim)
        events = read_events(cluster.url, moved)
        assert [e["status"] for e in events if e["type"] == "status"][-1] == "completed"


def test_nginx_proxies_the_websocket(cluster):
    with client(cluster.url) as http:
        execute(http, "ws-via-nginx", "data_pipeline", {"step_seconds": 0.2})
    ws_url = cluster.url.replace("http://", "ws://") + "/ws/tasks/ws-via-nginx"
    seen = []
    with websocket_connect(ws_url, open_timeout=10) as websocket:
        while not any(e.get("type") == "status" and e.get("status") == "completed" for e in seen):
            seen.append(json.loads(websocket.recv(timeout=30)))
    started = [e["node"] for e in seen if e["type"] == "node_started"]
    assert started == list(DATA_PIPELINE_NODES)
