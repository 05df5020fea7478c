"""Several replicas on one Redis: any replica controls any task; API-only and worker-only processes."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest

from tests.e2e.helpers import GRAPHS_ENV, execute, runs, task, wait_node_started, wait_status
from tests.support import REPO, ServiceProcess, read_events, wait_until


@pytest.fixture
def start_worker(clean_redis):
    """Factory for `redis-persist worker` processes (no HTTP); killed at teardown."""
    started: list[subprocess.Popen] = []

    def start(name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        full_env = {**ServiceProcess(clean_redis, name=name).env(), "REDIS_PERSIST_LEASE_TTL_SECONDS": "3",
                    **(env or {})}
        log = tempfile.NamedTemporaryFile(prefix=f"rp-{name}-", suffix=".log", delete=False)
        process = subprocess.Popen([sys.executable, "-m", "redis_persist", "worker"], env=full_env, cwd=REPO,
                                   stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_api_only_replica_and_worker_only_process_split_the_work(start_service, start_worker) -> None:
    api = start_service(GRAPHS_ENV, name="api-only", args=["--no-worker"])
    with api.client() as client:
        task_id = execute(client, "data_pipeline", {"step_seconds": 0.05})
        assert task(client, task_id)["status"] == "queued"  # nobody runs tasks yet
        start_worker("worker-1")
        done = wait_status(client, task_id, "completed", timeout=60)
        assert done["owner"] == "worker-1" and done["node"] == "api-only"
        assert 'redis_persist_replica_max_tasks{replica="api-only"} 0.0' in client.get("/metrics").text


def test_any_replica_pauses_resumes_and_cancels_a_task_running_on_another(start_service, tmp_path) -> None:
    runner = start_service(GRAPHS_ENV, name="api-1")
    # Started before the task exists, so a slow start cannot let the task finish before it is controlled.
    other = start_service(GRAPHS_ENV, name="api-2", args=["--no-worker"])
    run_log = tmp_path / "runs"
    with runner.client() as client:
        task_id = execute(client, "counting", {"run_log": str(run_log), "step_seconds": 2})
        wait_node_started(client, task_id, "one")
    nodes = ["one", "two", "three", "four"]
    with other.client() as client:
        assert task(client, task_id)["owner"] == "api-1" and task(client, task_id)["node"] == "api-2"
        reply = client.post(f"/api/tasks/{task_id}/pause").json()
        assert reply["status"] == "running"
        in_flight = reply["message"].split("'")[1]  # "...when the running node 'two' completes"
        paused = wait_status(client, task_id, "paused")
        assert paused["completed_nodes"] == nodes[: nodes.index(in_flight) + 1]
        assert client.post(f"/api/tasks/{task_id}/resume").status_code == 202
        next_node = nodes[nodes.index(in_flight) + 1]
        wait_node_started(client, task_id, next_node)
        assert client.post(f"/api/tasks/{task_id}/cancel").status_code == 202
    with runner.client() as client:
        wait_until(lambda: 'redis_persist_replica_running_tasks{replica="api-1"} 0.0'
                   in client.get("/metrics").text, 5, "api-1 to stop the task cancelled through api-2")
    assert runs(run_log) == {node: 1 for node in nodes[: nodes.index(next_node) + 1]}


def test_queued_tasks_start_oldest_first_within_the_concurrency_limit(start_service) -> None:
    service = start_service({"REDIS_PERSIST_MAX_TASKS": "2"})
    with service.client() as client:
        ids = [execute(client, "data_pipeline", {"step_seconds": 0.2}) for _ in range(6)]
        for task_id in ids:
            wait_status(client, task_id, "completed", timeout=60)
    started_at = {}
    for task_id in ids:
        running = next(e for e in read_events(service.url, task_id) if e.get("status") == "running")
        started_at[task_id] = running["id"]
    order = sorted(ids, key=lambda i: tuple(map(int, started_at[i].split("-"))))
    assert order == ids
    # Never more than two ran at once: each task after the second started after an earlier one ended.
    ends = sorted(tuple(map(int, next(e for e in read_events(service.url, i)
                                      if e.get("status") == "completed")["id"].split("-"))) for i in ids)
    for index, task_id in enumerate(ids[2:], start=2):
        assert tuple(map(int, started_at[task_id].split("-"))) >= ends[index - 2]


def test_embedded_redis_keeps_tasks_across_a_restart_of_the_service(tmp_path) -> None:
    data_dir = tmp_path / "data"
    env = {"REDIS_PERSIST_DATA_DIR": str(data_dir)}
    first = ServiceProcess(None, env=env, name="solo")
    try:
        first.start()
        with first.client() as client:
            task_id = execute(client, "data_pipeline", {"step_seconds": 0})
            done = wait_status(client, task_id, "completed")
        first.kill()  # kill -9: its embedded Redis follows it (SIGTERM via PDEATHSIG) and keeps its AOF
        second = ServiceProcess(None, env=env, name="solo", port=first.port)
        second.start()
        with second.client() as client:
            assert task(client, task_id)["state"] == done["state"]
            again = execute(client, "data_pipeline", {"step_seconds": 0})
            wait_status(client, again, "completed")
        second.stop()
    finally:
        first.kill()
    assert (data_dir / "appendonlydir").is_dir()
