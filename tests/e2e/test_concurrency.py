"""Hundreds of graphs running at once on one replica through the real saver."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.e2e.helpers import GRAPHS_ENV
from tests.support import wait_until

CONCURRENT = 500


def test_500_tasks_run_at_once_without_exhausting_redis_connections(start_service, tmp_path) -> None:
    service = start_service({**GRAPHS_ENV, "REDIS_PERSIST_MAX_TASKS": str(CONCURRENT)}, name="big")
    gate = tmp_path / "gate"
    body = {"graph_name": "gated", "initial_state": {"gate": str(gate), "step_seconds": 0.5}}

    def create(_: int) -> str:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            response = client.post("/api/tasks/execute", json=body)
            assert response.status_code == 202, response.text
            return response.json()["task_id"]

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(create, range(CONCURRENT)))
    assert len(set(ids)) == CONCURRENT

    with service.client() as client:
        def running_now() -> int:
            text = client.get("/metrics").text
            return int(float(re.search(r'redis_persist_replica_running_tasks\{replica="big"\} (\S+)', text)[1]))

        wait_until(lambda: running_now() == CONCURRENT, 120, f"{CONCURRENT} tasks running at once")
        gate.touch()  # all 500 are inside a node now; let them write their checkpoints together

        def statuses() -> dict[str, int]:
            counts = {}
            for status in ("completed", "failed", "running", "queued"):
                page = client.get("/api/tasks", params={"status": status, "limit": 500}).json()["tasks"]
                counts[status] = len(page)
            return counts

        final = wait_until(lambda: (c := statuses())["completed"] == CONCURRENT and c, 180, "every task to complete")
    assert final["failed"] == 0
    assert "MaxConnectionsError" not in service.log() and "Too many connections" not in service.log()
