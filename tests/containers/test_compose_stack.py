"""The Dockerfile built and docker-compose-redis-persist.yml run for real (podman): the seed's failover.

One compose project (Redis stand-in with AOF, api-1..3, nginx) on a free loopback port: tasks started
through nginx survive `stop api-1` (graceful hand-over) and `kill` of a replica (SIGKILL, lease takeover),
each finishing from its checkpoint with no completed node run twice; `down -v` leaves nothing.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import httpx
import pytest

from redis_persist.core.status import SETTLED_STATUSES
from redis_persist.testing import DATA_PIPELINE_NODES, execute, get_task, rerun_completed_nodes
from tests.containers.compose import ComposeStack
from tests.support import free_port, node_runs, read_events, wait_until

pytestmark = [pytest.mark.containers, pytest.mark.timeout(1800)]

REPLICAS = ("api-1", "api-2", "api-3")
LEASE_TTL_SECONDS = 15  # the compose file's REDIS_PERSIST_LEASE_TTL_SECONDS
STEP_SECONDS = 2.0  # 4 nodes: a task runs ~8 s, long enough to be caught mid-run
STOP_BURSTS = 3  # bursts of 9 tasks started until api-1 runs one (see the stop test)


@dataclass
class Snapshot:
    """The victim's tasks just before it was stopped or killed."""

    tasks: dict[str, dict]

    def running_on(self, replica: str) -> dict[str, dict]:
        return {i: t for i, t in self.tasks.items() if t.get("owner") == replica and t["status"] == "running"}


def _start_tasks(stack: ComposeStack, prefix: str, count: int) -> list[str]:
    task_ids = [f"{prefix}-{secrets.token_hex(2)}-{i:02d}" for i in range(count)]
    with stack.client() as http:
        for task_id in task_ids:
            execute(http, task_id, "data_pipeline", {"step_seconds": STEP_SECONDS})
    return task_ids


def _wait_for_checkpointed_task_on(stack: ComposeStack, candidates: tuple[str, ...], task_ids: list[str],
                                   seconds: float = 90) -> tuple[str, Snapshot]:
    """The first of `candidates` seen running one of the tasks past its first node, and the tasks then.

    Any candidate will do: which replica claims which task is the queue's business, and on a loaded machine
    one replica can miss a burst of nine entirely."""
    last: list[Snapshot] = []
    with stack.client() as http:

        def victim_mid_task() -> tuple[str, Snapshot] | None:
            snapshot = Snapshot({task_id: get_task(http, task_id) for task_id in task_ids})
            last[:] = [snapshot]
            for victim in candidates:
                if any(task.get("checkpoint") for task in snapshot.running_on(victim).values()):
                    return victim, snapshot
            return None

        try:
            return wait_until(victim_mid_task, seconds, f"one of {candidates} running a task past its first node",
                              interval=0.2)
        except AssertionError as error:
            seen = [(t["task_id"], t["status"], t.get("owner"), t.get("checkpoint")) for t in last[0].tasks.values()]
            raise AssertionError(f"{error}; the tasks: {seen}") from None


def _wait_all_completed(stack: ComposeStack, task_ids: list[str], timeout: float) -> dict[str, dict]:
    with stack.client() as http:
        latest: dict[str, dict] = {}

        def all_final() -> bool:
            latest.update({task_id: get_task(http, task_id) for task_id in task_ids})
            return all(task["status"] in SETTLED_STATUSES for task in latest.values())

        try:
            wait_until(all_final, timeout, "every task final", interval=0.5)
        except AssertionError as error:
            raise AssertionError(f"{error}: {[(t['task_id'], t['status'], t.get('owner')) for t in latest.values()]}")
        return latest


def _check_resumed_from_checkpoints(stack: ComposeStack, victim: str, snapshot: Snapshot, final: dict[str, dict]):
    """Every task completed; the victim's moved on from their checkpoint; no completed node ran again."""
    moved = []
    for task_id, task in final.items():
        events = read_events(stack.url, task_id, headers={"X-Api-Key": stack.admin_key})
        runs = node_runs(events)
        details = f"{task_id}: {task['status']} on {task.get('owner')}, attempts {task.get('attempts')}, runs {dict(runs)}"
        assert task["status"] == "completed", details
        assert rerun_completed_nodes(events) == [], details
        assert all(runs[node] >= 1 for node in DATA_PIPELINE_NODES), details
        before = snapshot.tasks[task_id]
        was_mid_run_on_victim = task_id in snapshot.running_on(victim)
        if was_mid_run_on_victim and task.get("owner") != victim:
            moved.append(task_id)
            assert task["owner"] in set(REPLICAS) - {victim}, details
            assert task["attempts"] >= 2, details
        if not was_mid_run_on_victim:
            assert all(runs[node] == 1 for node in DATA_PIPELINE_NODES), details
        # Resumed from the checkpoint: what was done before the stop ran once.
        checkpoint = before.get("checkpoint")
        done = DATA_PIPELINE_NODES[: DATA_PIPELINE_NODES.index(checkpoint) + 1] if checkpoint else ()
        assert all(runs[node] == 1 for node in done), details
    assert moved, f"no task of {victim} was mid-run at the stop: {snapshot.running_on(victim)}"
    return moved


def _wait_healthy(stack: ComposeStack, service: str) -> None:
    wait_until(lambda: stack.is_healthy(service), 120, f"{service} healthy again", interval=1)


def test_the_stack_answers_through_nginx(stack):
    with stack.client() as http:
        health = http.get("/health")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok" and health.json()["redis"] == "ok"
        assert health.json()["service"] in REPLICAS
        assert "x-upstream" in health.headers, "nginx answered"
        graphs = http.get("/api/graphs").json()["graphs"]
        assert {"data_pipeline", "ml_pipeline"} <= {graph["name"] for graph in graphs}
    for service in ("redis", *REPLICAS, "nginx"):
        assert stack.is_healthy(service), f"{service}'s healthcheck fails:\n{stack.logs(service)[-3000:]}"
    assert stack.inspect("api-1")["Config"]["User"] == "app", "the service runs as the image's non-root user"
    appendonly = stack.podman("exec", stack.container("redis"), "redis-cli", "config", "get", "appendonly").stdout
    assert appendonly.split() == ["appendonly", "yes"]


def test_stop_api1_mid_task_hands_its_tasks_over_and_start_brings_it_back(stack):
    """The seed's scenario: `stop api-1` mid-task, `start api-1`, resume, check the checkpoint."""
    with stack.client() as http:
        # A task paused at a checkpoint before the stop, resumed after the start.
        paused_id = f"paused-{secrets.token_hex(2)}"
        execute(http, paused_id, "data_pipeline", {"step_seconds": 1.0})
        wait_until(lambda: get_task(http, paused_id).get("checkpoint"), 60, f"{paused_id} past its first node")
        assert http.post(f"/api/tasks/{paused_id}/pause").status_code == 202
        paused = wait_until(
            lambda: (task := get_task(http, paused_id))["status"] == "paused" and task, 60, f"{paused_id} paused"
        )

    # The seed's scenario stops api-1, so api-1 must be caught mid-task. Which replica claims which task is the
    # queue's business: in one CI run api-2 and api-3 claimed all nine of a burst. Another burst, then.
    task_ids: list[str] = []
    for burst in range(STOP_BURSTS):
        task_ids += _start_tasks(stack, f"stop{burst}", 9)
        try:
            victim, snapshot = _wait_for_checkpointed_task_on(stack, ("api-1",), task_ids, seconds=45)
            break
        except AssertionError:
            if burst == STOP_BURSTS - 1:
                raise
    stopped_at = time.monotonic()
    stack.compose("stop", victim)
    stop_seconds = time.monotonic() - stopped_at
    state = stack.inspect(victim)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0, f"not a graceful exit: {state}\n{stack.logs(victim)[-3000:]}"
    assert stop_seconds < 30, f"stop took {stop_seconds:.1f} s (grace period 30 s)"

    # SIGTERM hands the tasks back at once: they move well before the 15 s lease would expire.
    in_flight = list(snapshot.running_on(victim))
    with stack.client() as http:
        wait_until(
            lambda: all(
                (task := get_task(http, task_id))["status"] == "completed" or task.get("owner") != victim
                for task_id in in_flight
            ),
            LEASE_TTL_SECONDS - 5,
            f"{victim}'s tasks running elsewhere before its lease expired",
            interval=0.2,
        )

    final = _wait_all_completed(stack, task_ids, 120)
    _check_resumed_from_checkpoints(stack, victim, snapshot, final)

    stack.compose("start", victim)
    _wait_healthy(stack, victim)
    with stack.client() as http:
        assert get_task(http, paused_id)["checkpoint"] == paused["checkpoint"], "the paused task kept its checkpoint"
        assert http.post(f"/api/tasks/{paused_id}/resume").status_code == 202
        wait_until(lambda: get_task(http, paused_id)["status"] == "completed", 60, f"{paused_id} completed")
    runs = node_runs(read_events(stack.url, paused_id, headers={"X-Api-Key": stack.admin_key}))
    assert all(runs[node] == 1 for node in DATA_PIPELINE_NODES), f"{paused_id} resumed from its checkpoint: {runs}"


def test_killed_replica_tasks_finish_elsewhere_after_its_lease(stack):
    # The victim is whichever replica is first seen mid-task. It used to be api-2 always, and in one CI run on a
    # loaded machine no task was seen mid-run on api-2 within 90 s (not reproduced alone; a timeout now lists
    # every task's status and owner).
    task_ids = _start_tasks(stack, "kill", 9)
    victim, snapshot = _wait_for_checkpointed_task_on(stack, REPLICAS, task_ids)
    stack.compose("kill", victim)  # SIGKILL: no hand-over, the lease has to expire
    state = stack.inspect(victim)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137, state

    final = _wait_all_completed(stack, task_ids, 3 * LEASE_TTL_SECONDS + 60)
    _check_resumed_from_checkpoints(stack, victim, snapshot, final)

    stack.compose("start", victim)
    _wait_healthy(stack, victim)


def test_health_and_dashboard_answer_through_nginx_after_the_failovers(stack):
    for service in REPLICAS:
        assert stack.is_healthy(service), f"{service}:\n{stack.logs(service)[-3000:]}"
    with stack.client() as http:
        # The restarted replicas came back on new addresses: nginx follows them and uses all three again.
        answered_by: set[str] = set()

        def every_replica_answered() -> bool:
            health = http.get("/health")
            assert health.status_code == 200, health.text
            answered_by.add(health.json()["service"])
            return answered_by == set(REPLICAS)

        wait_until(every_replica_answered, 30, f"/health through nginx from every replica (so far {answered_by})")
        dashboard = http.get("/")
        assert dashboard.status_code == 200
        assert dashboard.headers["content-type"].startswith("text/html")
        assert "<html" in dashboard.text.lower()
    # The stack ships with API keys on: without one, nginx passes on the replicas' 401.
    with httpx.Client(base_url=stack.url, timeout=10, trust_env=False) as anonymous:
        refused = anonymous.get("/api/tasks")
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")


def test_down_removes_everything(stack):
    assert stack.leftovers(), "the stack is up before down"
    stack.down()
    assert stack.leftovers() == {}


BROKEN_ENVS = {
    # A common mistake: the host's URL, which inside the container points at nothing.
    "wrong-redis-url": ("REDIS_URL: redis://127.0.0.1:6390",
                        "redis-persist: cannot reach Redis at redis://127.0.0.1:6390", 1),
    # Auth left unset on a replica that listens on every interface: refused, never served open.
    "auth-unset": ("REDIS_PERSIST_AUTH: ''", "redis-persist: refusing to serve 0.0.0.0 without authentication", 2),
}


@pytest.mark.parametrize("case", sorted(BROKEN_ENVS))
def test_a_broken_env_stops_the_replica_with_a_clear_message(stack, tmp_path, case):
    """A broken compose env: the container exits with the service's own message, visible in `logs`."""
    setting, message, exit_code = BROKEN_ENVS[case]
    broken = ComposeStack(f"rp-test-bad-{secrets.token_hex(3)}", free_port())
    override = tmp_path / f"{case}.yml"
    override.write_text(f"services:\n  api-1:\n    environment:\n      {setting}\n")
    try:
        broken.compose("-f", str(override), "up", "-d", "--no-deps", "api-1")

        def exited_with_the_message() -> bool:
            state = broken.inspect("api-1")
            exited_once = state["RestartCount"] >= 1 or (
                state["State"]["Status"] == "exited" and state["State"]["ExitCode"] == exit_code
            )
            return exited_once and message in broken.compose("logs", "api-1").stdout

        wait_until(exited_with_the_message, 60, "api-1 to exit with the message", interval=1)
        assert not broken.is_healthy("api-1")
    finally:
        broken.down()
    assert broken.leftovers() == {}
