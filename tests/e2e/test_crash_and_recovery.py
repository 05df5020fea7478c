"""Processes die, stop and lose Redis: no task is lost, stuck, or runs a completed node twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from redis_persist.embedded import EmbeddedRedis
from tests.e2e.helpers import GRAPHS_ENV, execute, runs, task, wait_node_started, wait_status
from tests.support import REPO, ServiceProcess, read_events, wait_until


def test_kill_9_and_restart_resumes_from_the_last_checkpoint(start_service, tmp_path) -> None:
    run_log = tmp_path / "runs"
    first = start_service(GRAPHS_ENV, name="api-1")
    with first.client() as client:
        task_id = execute(client, "counting", {"run_log": str(run_log), "step_seconds": 0.8})
        wait_node_started(client, task_id, "three")
    first.kill()
    second = start_service(GRAPHS_ENV, name="api-1")
    with second.client() as client:
        done = wait_status(client, task_id, "completed", timeout=40)
    counts = runs(run_log)
    assert counts["one"] == counts["two"] == counts["four"] == 1  # completed before the crash: never again
    assert counts["three"] in (1, 2)  # the node in flight may run again
    assert done["attempts"] == 2 and done["completed_nodes"] == ["one", "two", "three", "four"]
    requeued = [e for e in read_events(second.url, task_id) if e["type"] == "status" and e["status"] == "queued"]
    assert len(requeued) == 2 and "replica lost" in requeued[1]["reason"]


def test_a_task_created_just_before_a_crash_is_not_lost(start_service, tmp_path) -> None:
    first = start_service(GRAPHS_ENV, name="api-1")
    with first.client() as client:
        ids = [execute(client, "counting", {"step_seconds": 0.3}) for _ in range(5)]
    first.kill()
    second = start_service(GRAPHS_ENV, name="api-2")
    with second.client() as client:
        for task_id in ids:
            wait_status(client, task_id, "completed", timeout=40)


def test_graceful_stop_hands_running_tasks_back_at_once(start_service, tmp_path) -> None:
    run_log = tmp_path / "runs"
    long_lease = {**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": "120"}
    # Both replicas run before the task exists (a slow start cannot outlast the task); the owner is stopped.
    replicas = {name: start_service(long_lease, name=name) for name in ("api-1", "api-2")}
    with replicas["api-1"].client() as client:
        task_id = execute(client, "counting", {"run_log": str(run_log), "step_seconds": 3})
        wait_node_started(client, task_id, "one")
        owner = task(client, task_id)["owner"]
    survivor = next(r for name, r in replicas.items() if name != owner)
    replicas[owner].stop()
    # With a 120 s lease, only the hand-over at SIGTERM lets the survivor finish within the deadline.
    with survivor.client() as client:
        handed_over = task(client, task_id)
        assert handed_over["status"] in ("queued", "running")
        done = wait_status(client, task_id, "completed", timeout=30)
    assert done["owner"] == survivor.name
    # Only the node in flight when the owner stopped runs again.
    counts = runs(run_log)
    in_flight = ["one", "two", "three", "four"][len(handed_over["completed_nodes"])]
    assert counts == {node: 2 if node == in_flight else 1 for node in ["one", "two", "three", "four"]}


def test_blocking_nodes_keep_their_lease_and_never_run_twice(start_service, tmp_path) -> None:
    run_log = tmp_path / "runs"
    # Each node blocks for 2.5 lease times. A 2 s lease (renewed every 0.67 s by the keeper's thread)
    # rather than 1 s: on a loaded 2-core CI box a 1 s lease was lost between renewals, node or no node.
    short_lease = {**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": "2"}
    first = start_service(short_lease, name="api-1")
    with first.client() as client:
        task_id = execute(client, "blocking", {"run_log": str(run_log), "block_seconds": 5, "step_seconds": 0})
        wait_node_started(client, task_id, "blocking_sync")
        start_service(short_lease, name="api-2")  # ready to take over if api-1 ever lost the lease
        done = wait_status(client, task_id, "completed", timeout=40)
    assert runs(run_log) == {"blocking_sync": 1, "blocking_loop": 1, "last": 1}
    assert done["attempts"] == 1 and done["owner"] == "api-1"


def test_a_replica_that_lost_its_lease_writes_nothing_more(start_service, tmp_path) -> None:
    run_log = tmp_path / "runs"
    short_lease = {**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": "1"}
    # Both replicas run before the task exists, so a slow start cannot let the task finish unobserved;
    # whichever claims it is the one whose process is then frozen.
    replicas = {name: start_service(short_lease, name=name) for name in ("api-1", "api-2")}
    with replicas["api-1"].client() as client:
        task_id = execute(client, "counting", {"run_log": str(run_log), "step_seconds": 1.5})
        wait_node_started(client, task_id, "two")
        owner = task(client, task_id)["owner"]
    frozen, survivor = replicas[owner], next(r for name, r in replicas.items() if name != owner)
    frozen.signal(signal.SIGSTOP)
    try:
        with survivor.client() as client:
            wait_until(lambda: task(client, task_id)["owner"] == survivor.name, 20,
                       f"{survivor.name} to take the task over")
    finally:
        frozen.signal(signal.SIGCONT)
    with survivor.client() as client:
        done = wait_status(client, task_id, "completed", timeout=40)
        assert done["owner"] == survivor.name
    events = read_events(survivor.url, task_id)
    takeover = next(i for i, e in enumerate(events) if e["type"] == "status" and e.get("owner") == survivor.name)
    assert all(e.get("replica") != frozen.name for e in events[takeover:]), f"{frozen.name} wrote after losing its lease"
    assert runs(run_log)["one"] == 1
    # The frozen replica is alive again and still serves requests.
    with frozen.client() as client:
        assert task(client, task_id)["status"] == "completed"


def test_service_refuses_an_unreachable_redis_with_a_clear_message(tmp_path) -> None:
    env = ServiceProcess("redis://127.0.0.1:1/0").env()
    result = subprocess.run([sys.executable, "-m", "redis_persist", "serve", "--port", "1"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in result.stderr


def test_invalid_settings_are_refused_with_a_clear_message(redis_url) -> None:
    env = {**ServiceProcess(redis_url).env(), "REDIS_PERSIST_MAX_TASKS": "many", "REDIS_PERSIST_GRAPHS": "{}"}
    result = subprocess.run([sys.executable, "-m", "redis_persist", "serve"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "max_tasks" in result.stderr and "'many'" in result.stderr
    env = {**ServiceProcess(redis_url).env(), "REDIS_PERSIST_GRAPHS": '{"x": "no_such_module:graph"}'}
    result = subprocess.run([sys.executable, "-m", "redis_persist", "serve"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no_such_module" in result.stderr


def test_min_replicas_without_a_replicated_redis_is_refused(tmp_path) -> None:
    env = {**ServiceProcess(None).env(), "REDIS_PERSIST_MIN_REPLICAS": "1",
           "REDIS_PERSIST_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "redis_persist", "serve", "--port", "1"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "REDIS_PERSIST_MIN_REPLICAS needs a replicated Redis" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before starting the embedded Redis


def test_health_is_503_while_redis_is_down_and_tasks_survive_a_redis_restart(tmp_path) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis")
    redis_server.start()
    service = ServiceProcess(redis_server.url, env={**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": "2"})
    try:
        service.start()
        with service.client() as client:
            task_id = execute(client, "counting", {"step_seconds": 0.5})
            wait_node_started(client, task_id, "two")
            redis_server.stop()  # SIGTERM: Redis writes its AOF and exits
            down = client.get("/health")
            assert down.status_code == 503 and down.json()["redis"].startswith("unreachable")
            redis_server.start()
            wait_until(lambda: client.get("/health").status_code == 200, 20, "health to recover")
            done = wait_status(client, task_id, "completed", timeout=60)
        assert done["completed_nodes"] == ["one", "two", "three", "four"]
        assert service.process.poll() is None
    finally:
        service.kill()
        redis_server.stop()


def test_after_a_redis_kill_9_and_restart_no_task_waits_out_a_lease(tmp_path) -> None:
    """Stale pooled connections are replaced, not failed on: nothing is re-claimed, nothing pays a lease."""
    lease_ttl = 10
    redis_server = EmbeddedRedis(tmp_path / "redis")
    redis_server.start()
    env = {**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": str(lease_ttl), "REDIS_PERSIST_MAX_TASKS": "4"}
    service = ServiceProcess(redis_server.url, env=env)
    try:
        service.start()
        with service.client() as client:
            # 4 run at once, 4 wait queued: claims, node records and checkpoints all happen after the restart.
            ids = [execute(client, "counting", {"step_seconds": 0.6}) for _ in range(8)]
            for task_id in ids[:4]:
                wait_node_started(client, task_id, "two")
            os.kill(redis_server.pid, signal.SIGKILL)
            redis_server.stop()  # reaps it
            redis_server = EmbeddedRedis(tmp_path / "redis", port=redis_server.port)
            redis_server.start()  # same port, same AOF
            restarted = time.monotonic()
            done = [wait_status(client, task_id, "completed", "failed", timeout=4 * lease_ttl) for task_id in ids]
            elapsed = time.monotonic() - restarted
        assert [t["status"] for t in done] == ["completed"] * 8
        # Each task was claimed once and ran on: a failed write would have left it to a re-claim.
        assert [t["attempts"] for t in done] == [1] * 8, service.log()
        # About 2 s of work remained for the running tasks and 2.4 s for the queued ones; a lost write costs
        # a whole lease (10 s) before the task is re-claimed.
        assert elapsed < lease_ttl, f"tasks took {elapsed:.1f}s after the restart:\n{service.log()}"
    finally:
        service.kill()
        redis_server.stop()
