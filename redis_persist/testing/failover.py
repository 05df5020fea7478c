"""The failover scenario: data_pipeline tasks through nginx, SIGKILL of one replica mid-run, every task checked.

Shared by scripts/failover_demo.py and tests/e2e/test_failover.py.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from redis_persist.core.status import SETTLED_STATUSES
from redis_persist.testing.cluster import LocalCluster
from redis_persist.testing.http import client, execute, get_task, node_runs, read_events, rerun_completed_nodes
from redis_persist.testing.waiting import wait_until

log = logging.getLogger("redis_persist.cluster")

DATA_PIPELINE_NODES = ("fetch", "transform", "validate", "save")


@dataclass
class TaskOutcome:
    """What happened to one task of the scenario."""

    task_id: str
    status: str
    owner: str | None
    attempts: int | None
    owner_at_kill: str | None
    status_at_kill: str | None
    checkpoint_at_kill: str | None
    node_runs: dict[str, int]
    rerun_completed_nodes: list[str]
    takeover_seconds: float | None = None

    @property
    def was_in_flight_on_victim(self) -> bool:
        return self.owner_at_kill is not None and self.status_at_kill not in SETTLED_STATUSES


@dataclass
class FailoverReport:
    """The outcome of `run_failover_scenario`; `problems` is empty when the contract held."""

    victim: str
    lease_ttl_seconds: float
    outcomes: list[TaskOutcome]
    problems: list[str] = field(default_factory=list)

    @property
    def taken_over(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes if o.was_in_flight_on_victim]

    def table(self) -> str:
        """The per-task table the demo prints."""
        header = ["task", "status", "owner", "attempts", f"at kill ({self.victim})", "takeover", *DATA_PIPELINE_NODES]
        rows = [header]
        for o in self.outcomes:
            at_kill = ""
            if o.was_in_flight_on_victim:
                at_kill = f"{o.status_at_kill} after {o.checkpoint_at_kill}" if o.checkpoint_at_kill else "not checkpointed"
            takeover = f"{o.takeover_seconds:.1f}s" if o.takeover_seconds is not None else ""
            runs = [str(o.node_runs.get(node, 0)) for node in DATA_PIPELINE_NODES]
            rows.append([o.task_id, o.status, str(o.owner), str(o.attempts), at_kill, takeover, *runs])
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)


def run_failover_scenario(
    cluster: LocalCluster,
    *,
    victim: str = "api-1",
    task_count: int = 9,
    step_seconds: float = 1.0,
    timeout: float = 120.0,
    id_prefix: str | None = None,
) -> FailoverReport:
    """Start `task_count` data_pipeline tasks through nginx, SIGKILL `victim` mid-run, and check every task."""
    id_prefix = id_prefix or f"failover-{os.urandom(3).hex()}"
    task_ids = [f"{id_prefix}-{i:02d}" for i in range(1, task_count + 1)]
    with client(cluster.url) as http:
        for task_id in task_ids:
            execute(http, task_id, "data_pipeline", {"step_seconds": step_seconds})
        log.info("started %d tasks through nginx", task_count)

        def victim_has_checkpointed_task() -> dict[str, dict] | None:
            tasks = {task_id: get_task(http, task_id) for task_id in task_ids}
            for task in tasks.values():
                if task.get("owner") == victim and task["status"] == "running" and task.get("checkpoint"):
                    return tasks
            return None

        def owners() -> str:
            tasks = [get_task(http, task_id) for task_id in task_ids]
            return ", ".join(f"{t['task_id']}: {t['status']} on {t.get('owner')}" for t in tasks)

        try:
            wait_until(
                victim_has_checkpointed_task,
                timeout=max(30.0, 8 * step_seconds * len(DATA_PIPELINE_NODES)),
                message=f"{victim} running a task past its first node",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}; tasks: {owners()}") from None
        cluster.replicas[victim].kill()
        killed_at = time.monotonic()
        log.info("SIGKILLed %s (pid %s)", victim, cluster.replicas[victim].pid)

        # Read after the kill: nothing of the victim's can change any more except by takeover.
        at_kill = {task_id: get_task(http, task_id) for task_id in task_ids}
        in_flight = {
            task_id
            for task_id, task in at_kill.items()
            if task.get("owner") == victim and task["status"] not in SETTLED_STATUSES
        }
        log.info("in flight on %s at the kill: %s", victim, sorted(in_flight))
        takeover_seconds: dict[str, float] = {}
        latest: dict[str, dict] = {}

        def all_settled() -> bool:
            for task_id in task_ids:
                latest[task_id] = task = get_task(http, task_id)
                if task_id in in_flight and task_id not in takeover_seconds and task.get("owner") != victim:
                    takeover_seconds[task_id] = time.monotonic() - killed_at
            return all(task["status"] in SETTLED_STATUSES for task in latest.values())

        settled_in_time = True
        try:
            wait_until(all_settled, timeout, "tasks still unsettled", interval=0.2)
        except AssertionError:  # wait_until's deadline
            settled_in_time = False

        outcomes = []
        for task_id in task_ids:
            task = latest[task_id]
            events = read_events(cluster.url, task_id) if task["status"] in SETTLED_STATUSES else []
            outcomes.append(
                TaskOutcome(
                    task_id=task_id,
                    status=task["status"],
                    owner=task.get("owner"),
                    attempts=task.get("attempts"),
                    owner_at_kill=victim if task_id in in_flight else None,
                    status_at_kill=at_kill[task_id]["status"],
                    checkpoint_at_kill=at_kill[task_id].get("checkpoint"),
                    node_runs=dict(node_runs(events)),
                    rerun_completed_nodes=rerun_completed_nodes(events),
                    takeover_seconds=takeover_seconds.get(task_id),
                )
            )

    report = FailoverReport(victim, cluster.lease_ttl_seconds, outcomes)
    if not settled_in_time:
        report.problems.append(f"not every task settled within {timeout:.0f} s of the kill")
    if not in_flight:
        report.problems.append(f"{victim} had no task in flight when it was killed: nothing was failed over")
    takeover_bound = 3 * cluster.lease_ttl_seconds + 5
    for o in outcomes:
        if o.status != "completed":
            report.problems.append(f"{o.task_id}: ended {o.status}, not completed")
        if o.was_in_flight_on_victim and o.owner == victim:
            report.problems.append(f"{o.task_id}: was running on the dead {victim} and nobody took it over")
        if o.was_in_flight_on_victim and (o.takeover_seconds or 0) > takeover_bound:
            report.problems.append(
                f"{o.task_id}: taken over after {o.takeover_seconds:.1f} s (> {takeover_bound:.0f} s)"
            )
        if o.status == "completed":
            missing = [node for node in DATA_PIPELINE_NODES if not o.node_runs.get(node)]
            if missing:
                report.problems.append(f"{o.task_id}: completed without a node_started for {missing}")
        too_often = {node: n for node, n in o.node_runs.items() if n > 2}
        if too_often:
            report.problems.append(f"{o.task_id}: nodes ran more than twice: {too_often}")
        if o.rerun_completed_nodes:
            report.problems.append(f"{o.task_id}: completed nodes ran again: {o.rerun_completed_nodes}")
        if not o.was_in_flight_on_victim and any(n > 1 for n in o.node_runs.values()):
            report.problems.append(f"{o.task_id}: a node ran twice though its replica never died: {o.node_runs}")
    return report
