"""`serve --workers 2`: one replica, two processes on one port; a SIGKILLed process is a failover like any other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import GRAPHS_ENV, execute, runs, task, wait_status
from tests.support import free_port, read_events, wait_until
from redis_persist.testing import ServiceProcess, rerun_completed_nodes

NODES = ["one", "two", "three", "four"]


def _children(parent_pid: int) -> dict[str, int]:
    """SERVICE_NAME -> pid of the supervisor's `serve` children (the embedded Redis, if any, has no name)."""
    found = {}
    for pid in Path(f"/proc/{parent_pid}/task/{parent_pid}/children").read_text().split():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            if entry.startswith(b"SERVICE_NAME="):
                found[entry.split(b"=", 1)[1].decode()] = int(pid)
    return found


def test_two_processes_share_the_tasks_and_a_killed_one_is_a_failover(start_service, tmp_path) -> None:
    # At most 4 tasks per process: 16 tasks cannot all land on whichever process claims fastest.
    service = start_service({**GRAPHS_ENV, "REDIS_PERSIST_MAX_TASKS": "4"}, name="multi", args=["--workers", "2"])
    names = wait_until(lambda: set(_children(service.pid)) == {"multi-1", "multi-2"} and _children(service.pid),
                       10, "two named worker processes")
    logs = {i: tmp_path / f"runs-{i}" for i in range(16)}
    with service.client() as client:
        ids = {execute(client, "counting", {"run_log": str(log), "step_seconds": 0.6}): log for log in logs.values()}

        def running_on_both() -> dict[str, str] | None:
            owners = {task_id: task(client, task_id) for task_id in ids}
            by_owner = {t["owner"] for t in owners.values() if t["status"] == "running"}
            return {i: t["owner"] for i, t in owners.items() if t["status"] == "running"} \
                if {"multi-1", "multi-2"} <= by_owner else None

        owner_at_kill = wait_until(running_on_both, 30, "tasks running in both processes")
        os.kill(names["multi-1"], signal.SIGKILL)
        victims = [task_id for task_id, owner in owner_at_kill.items() if owner == "multi-1"]
        done = {task_id: wait_status(client, task_id, "completed", "failed", timeout=90) for task_id in ids}

    assert victims
    for task_id, final in done.items():
        assert final["status"] == "completed" and final["completed_nodes"] == NODES, final
        events = read_events(service.url, task_id)
        assert rerun_completed_nodes(events) == [], (task_id, events)
        counts = runs(ids[task_id])
        # Only the node in flight at the kill may run twice; every other node ran exactly once.
        assert sum(counts.values()) <= len(NODES) + 1 and all(counts[node] >= 1 for node in NODES), counts
    for task_id in victims:
        assert done[task_id]["attempts"] >= 2, done[task_id]  # re-claimed after multi-1's lease ran out
    # The supervisor starts the dead process again under the same name, and stays up.
    wait_until(lambda: (now := _children(service.pid)).keys() == {"multi-1", "multi-2"}
               and now["multi-1"] != names["multi-1"], 30, "multi-1 restarted")
    assert service.process.poll() is None


def test_sigterm_stops_every_process_and_hands_tasks_back(start_service, tmp_path) -> None:
    service = start_service({**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": "120"}, name="multi",
                            args=["--workers", "2"])
    children = wait_until(lambda: len(_children(service.pid)) == 2 and _children(service.pid), 10, "two processes")
    with service.client() as client:
        ids = [execute(client, "counting", {"step_seconds": 5}) for _ in range(6)]
        wait_until(lambda: all(task(client, t)["status"] == "running" for t in ids), 30, "all running")
    service.stop()
    assert service.process.returncode == 0, service.log()
    for pid in children.values():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    # A lease of 120 s: only the graceful hand-over re-queues them at once.
    other = start_service(GRAPHS_ENV, name="other")
    with other.client() as client:
        assert all(task(client, task_id)["status"] in ("queued", "running") for task_id in ids)
        for task_id in ids:
            wait_status(client, task_id, "completed", timeout=60)


def test_api_processes_serve_the_api_while_the_others_run_the_tasks(start_service, tmp_path) -> None:
    service = start_service({**GRAPHS_ENV, "REDIS_PERSIST_MAX_TASKS": "3"}, name="split",
                            args=["--workers", "3", "--api-processes", "1"])
    names = wait_until(lambda: set(_children(service.pid)) == {"split-1", "split-2", "split-3"}
                       and _children(service.pid), 10, "three named processes")
    logs = {i: tmp_path / f"runs-{i}" for i in range(6)}
    with service.client() as client:
        ids = {execute(client, "counting", {"run_log": str(log), "step_seconds": 0.6}): log for log in logs.values()}
        owners = wait_until(lambda: (running := {t: now["owner"] for t in ids
                                                 if (now := task(client, t))["status"] == "running"})
                            and {"split-2", "split-3"} <= set(running.values()) and running, 30,
                            "tasks running in both task processes")
        os.kill(names["split-2"], signal.SIGKILL)
        victims = [task_id for task_id, owner in owners.items() if owner == "split-2"]
        done = {task_id: wait_status(client, task_id, "completed", "failed", timeout=90) for task_id in ids}
        metrics = client.get("/metrics").text

    assert "split-1" not in owners.values()
    # The API process runs nothing, and answers while a task process is down and restarted.
    assert 'redis_persist_replica_running_tasks{replica="split-1"} 0.0' in metrics, metrics
    for task_id, final in done.items():
        assert final["status"] == "completed" and final["completed_nodes"] == NODES, final
        assert final["owner"] in ("split-2", "split-3"), final
        assert rerun_completed_nodes(read_events(service.url, task_id)) == []
        assert sum(runs(ids[task_id]).values()) <= len(NODES) + 1
    assert victims and all(done[task_id]["attempts"] >= 2 for task_id in victims)
    wait_until(lambda: (now := _children(service.pid)).keys() == {"split-1", "split-2", "split-3"}
               and now["split-2"] != names["split-2"], 30, "split-2 restarted")


def test_api_processes_must_leave_a_process_to_run_tasks(redis_url) -> None:
    env = ServiceProcess(redis_url).env()
    for args, why in [(["--workers", "2", "--api-processes", "2"], "--api-processes 2 needs --workers above it"),
                      (["--workers", "1", "--api-processes", "1"], "--api-processes 1 needs --workers above it"),
                      (["--workers", "2", "--api-processes", "1", "--no-worker"], "--no-worker runs no tasks"),
                      (["--api-processes", "-1"], "Invalid value for '--api-processes'")]:
        result = subprocess.run([sys.executable, "-m", "redis_persist", "serve", "--port", "1", *args], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and why in result.stderr, (args, result.stderr)


def test_a_replica_with_a_graph_it_cannot_load_refuses_to_start_once(redis_url, tmp_path) -> None:
    # The supervisor has the graphs loaded in a child of its own (it keeps no LangGraph in memory): its refusal
    # must still be the one clear exit 2, before any `serve` child starts (not a crash loop of N of them).
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('this graph module is broken')\n")
    env = {**ServiceProcess(redis_url).env(), "REDIS_PERSIST_GRAPHS": json.dumps({"broken": f"{broken}:graph"})}
    result = subprocess.run([sys.executable, "-m", "redis_persist", "serve", "--port", str(free_port()),
                             "--workers", "2"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "cannot load graphs" in result.stderr and "this graph module is broken" in result.stderr
    assert "replica started" not in result.stderr and "worker process" not in result.stderr


def _embedded_redis_pid(parent_pid: int) -> int:
    for pid in Path(f"/proc/{parent_pid}/task/{parent_pid}/children").read_text().split():
        if b"valkey-server" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return int(pid)
    raise AssertionError(f"no embedded Redis under {parent_pid}")


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_the_embedded_redis_of_a_multi_process_replica_stops_last_and_keeps_the_tasks(tmp_path) -> None:
    # The parent exec's into a lean supervisor after its checks (redis_persist/supervise.py): the embedded Redis
    # it started must still be stopped gracefully on SIGTERM, follow it on SIGKILL, and keep its AOF.
    data_dir = tmp_path / "data"
    env = {**GRAPHS_ENV, "REDIS_PERSIST_DATA_DIR": str(data_dir)}
    first = ServiceProcess(None, env=env, name="multi", args=["--workers", "2"])
    second = ServiceProcess(None, env=env, name="multi", args=["--workers", "2"], port=first.port)
    try:
        first.start()
        with first.client() as client:
            task_id = execute(client, "counting", {"step_seconds": 0})
            done = wait_status(client, task_id, "completed")
        redis_pid = _embedded_redis_pid(first.pid)
        children = wait_until(lambda: len(_children(first.pid)) == 2 and _children(first.pid), 10, "two processes")
        first.stop()
        assert first.process.returncode == 0, first.log()
        assert _gone(redis_pid) and all(_gone(pid) for pid in children.values())
        assert not (data_dir / "embedded-redis.pid").exists()
        assert "ready to exit" in (data_dir / "redis.log").read_text()  # SIGTERM (AOF flushed), not SIGKILL

        second.start()
        with second.client() as client:
            assert task(client, task_id)["state"] == done["state"]
        redis_pid = _embedded_redis_pid(second.pid)
        children = wait_until(lambda: len(_children(second.pid)) == 2 and _children(second.pid), 10, "two processes")
        second.kill()  # a crashed replica: its Redis (SIGTERM) and its children (SIGKILL) follow it
        wait_until(lambda: _gone(redis_pid) and all(_gone(pid) for pid in children.values()), 30,
                   "the embedded Redis and the children stopped")
    finally:
        first.kill()
        second.kill()
