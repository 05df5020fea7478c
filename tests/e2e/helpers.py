"""Small helpers for end-to-end tests against a real service process."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.support import TEST_GRAPHS_DIR, wait_until

GRAPHS_ENV = {"REDIS_PERSIST_GRAPHS": str(TEST_GRAPHS_DIR / "langgraph.json")}


def execute(client: httpx.Client, graph: str, state: dict[str, Any] | None = None, **extra: Any) -> str:
    response = client.post("/api/tasks/execute", json={"graph_name": graph, "initial_state": state or {}, **extra})
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    response = client.get(f"/api/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_status(client: httpx.Client, task_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        current = task(client, task_id)
        return current if current["status"] in statuses else None

    return wait_until(reached, timeout, f"task {task_id} to be {statuses}")


def wait_node_started(client: httpx.Client, task_id: str, node: str, timeout: float = 30) -> dict[str, Any]:
    return wait_until(lambda: (t := task(client, task_id))["current_node"] == node and t,
                      timeout, f"{node} to start in {task_id}")


def runs(run_log: Path) -> Counter[str]:
    """Node executions recorded by the test graphs."""
    return Counter(run_log.read_text().split()) if run_log.exists() else Counter()


def storage_errors_total(client: httpx.Client) -> float:
    """Sum of the storage-error counter over its label sets, from /metrics."""
    text = client.get("/metrics").text
    return sum(float(value) for value in re.findall(r"^redis_persist_storage_errors_total\{[^}]*\} (\S+)$", text, re.M))
