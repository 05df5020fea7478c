"""A primary, replicas and Sentinel: the service follows a failover, and with WAIT loses no completed node."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_persist.replication import ReplicatedRedis
from tests.e2e.helpers import GRAPHS_ENV, execute, runs, storage_errors_total, wait_node_started, wait_status
from tests.support import REPO, ServiceProcess, wait_until

NODES = ["one", "two", "three", "four"]


@pytest.fixture
def replicated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReplicatedRedis]:
    topology = ReplicatedRedis(tmp_path / "redis", replicas=request.param)
    try:
        yield topology.start()
    finally:
        topology.stop()


def _warnings(service: ServiceProcess, topology: ReplicatedRedis) -> str:
    """The service's warnings and Sentinel's events: what a failed assertion needs to tell a failover apart."""
    warnings = [line for line in service.log_path.read_text(errors="replace").splitlines()
                if " WARNING " in line or " ERROR " in line]
    events = [line for line in topology.sentinel_log_path.read_text(errors="replace").splitlines()
              if " # " in line or "+slave" in line]
    return "\n".join([*warnings, "--- Sentinel:", *events])


def _run_through_a_failover(topology: ReplicatedRedis, tmp_path: Path, extra_env: dict[str, str]):
    env = {**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": "5", **extra_env}
    service = ServiceProcess(topology.sentinel_url, env=env, name="api-1")
    try:
        service.start()
        with service.client() as client:
            logs = [tmp_path / f"runs-{n}" for n in range(6)]
            ids = [execute(client, "counting", {"run_log": str(log), "step_seconds": 0.8}) for log in logs]
            for task_id in ids:
                wait_node_started(client, task_id, "two")
            killed = topology.kill_primary()
            wait_until(lambda: topology.primary_port() != killed.port, 30, "Sentinel to promote a replica")
            after = execute(client, "counting", {"step_seconds": 0.1})  # created on the promoted replica
            done = [wait_status(client, task_id, "completed", "failed", timeout=90) for task_id in [*ids, after]]
        assert [t["status"] for t in done] == ["completed"] * 7, _warnings(service, topology)
        assert all(t["completed_nodes"] == NODES for t in done)
        return _warnings(service, topology), [runs(log) for log in logs], killed
    finally:
        service.kill()


@pytest.mark.parametrize("replicated", [1], indirect=True)
def test_the_service_follows_the_promoted_replica(replicated: ReplicatedRedis, tmp_path: Path) -> None:
    warnings, counts, killed = _run_through_a_failover(replicated, tmp_path, {})
    assert replicated.primary_port() != killed.port
    for count in counts:
        # Without WAIT a checkpoint written in the last instant before the kill may not have reached the
        # replica (async replication); then its node runs again. Nothing runs more than twice.
        assert set(count) == set(NODES) and max(count.values()) <= 2, warnings


@pytest.mark.parametrize("replicated", [2], indirect=True)
def test_with_wait_no_completed_node_is_lost_with_the_primary(replicated: ReplicatedRedis, tmp_path: Path) -> None:
    # Two replicas: after the failover one is the primary and the other still acknowledges each checkpoint.
    warnings, counts, _ = _run_through_a_failover(
        replicated, tmp_path, {"REDIS_PERSIST_MIN_REPLICAS": "1", "REDIS_PERSIST_REPLICA_ACK_TIMEOUT_SECONDS": "5"})
    for count in counts:
        # Only the node in flight at the kill may run again; every node completed before it ran once.
        assert set(count) == set(NODES) and sorted(count.values()) in ([1, 1, 1, 1], [1, 1, 1, 2]), (count, warnings)


@pytest.fixture
def wait_mode_service(replicated: ReplicatedRedis) -> Iterator[ServiceProcess]:
    """A started service that waits for 1 replica per checkpoint, for 0.5 s at most; killed afterwards."""
    env = {**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": "3", "REDIS_PERSIST_MIN_REPLICAS": "1",
           "REDIS_PERSIST_REPLICA_ACK_TIMEOUT_SECONDS": "0.5"}
    service = ServiceProcess(replicated.sentinel_url, env=env, name="api-1")
    try:
        yield service.start()
    finally:
        service.kill()


@pytest.mark.parametrize("replicated", [1], indirect=True)
def test_wait_mode_stops_at_the_boundary_while_no_replica_acknowledges(
        replicated: ReplicatedRedis, wait_mode_service: ServiceProcess, tmp_path: Path) -> None:
    replica, service, run_log = replicated.replicas[0], wait_mode_service, tmp_path / "runs"
    replica.stop()  # the only replica is gone: no checkpoint can be acknowledged
    with service.client() as client:
        task_id = execute(client, "counting", {"run_log": str(run_log), "step_seconds": 0.2})
        # The first checkpoint is never acknowledged, so no node completes; the task is not failed either.
        wait_until(lambda: "reached 0 replica(s)" in service.log(), 30, "a checkpoint to wait in vain")
        assert client.get(f"/api/tasks/{task_id}").json()["completed_nodes"] == []
        replica.start()
        done = wait_status(client, task_id, "completed", "failed", timeout=60)
    assert done["status"] == "completed", service.log()
    assert done["completed_nodes"] == NODES


@pytest.mark.parametrize("replicated", [1], indirect=True)
def test_wait_mode_does_not_start_the_next_node_on_a_checkpoint_no_replica_acknowledged(
        replicated: ReplicatedRedis, wait_mode_service: ServiceProcess, tmp_path: Path) -> None:
    replica, service, run_log = replicated.replicas[0], wait_mode_service, tmp_path / "runs"
    with service.client() as client:
        task_id = execute(client, "counting", {"run_log": str(run_log), "step_seconds": 1.0})
        wait_node_started(client, task_id, "one")
        replica.stop()  # node one's checkpoint goes to the primary alone, and its wait times out
        # Three faults: the checkpoint's own wait, then runs that each start by waiting for a replica.
        wait_until(lambda: storage_errors_total(client) >= 3, 30, "the run to wait for a replica three times")
        assert runs(run_log) == Counter({"one": 1}), service.log()
        assert client.get(f"/api/tasks/{task_id}").json()["completed_nodes"] == []
        replica.start()
        done = wait_status(client, task_id, "completed", "failed", timeout=60)
    assert done["status"] == "completed", service.log()
    # Once the replica had node one's checkpoint, the run went on from it: no node ran twice.
    assert runs(run_log) == Counter(dict.fromkeys(NODES, 1)), service.log()


@pytest.mark.parametrize("replicated", [1], indirect=True)
def test_the_command_line_tools_reach_redis_through_sentinel(replicated: ReplicatedRedis) -> None:
    """`keys` and `compact-finished` connect as `serve` does: a redis+sentinel:// REDIS_URL works for them too."""
    env = ServiceProcess(replicated.sentinel_url).env()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "redis_persist", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    created = cli("keys", "create", "--tenant", "team-s", "--role", "viewer")
    assert created.returncode == 0, created.stderr
    key_id = json.loads(created.stdout)["id"]
    listed = cli("keys", "list")
    assert listed.returncode == 0 and key_id in listed.stdout, listed.stderr
    compacted = cli("compact-finished")
    assert compacted.returncode == 0 and json.loads(compacted.stdout) == {"queued": 0}, compacted.stderr
