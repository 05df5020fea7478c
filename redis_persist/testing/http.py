"""Talking to a running service over HTTP: create and read tasks, read a task's events, count node runs."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx


def client(base_url: str) -> httpx.Client:
    """An HTTP client for the service (no proxies from the environment)."""
    return httpx.Client(base_url=base_url, timeout=10, trust_env=False)


def execute(http: httpx.Client, task_id: str, graph_name: str, initial_state: dict) -> dict:
    """Create a task with a client id; `?task_id=` lets nginx route the create like the task's other calls."""
    response = http.post(
        "/api/tasks/execute",
        params={"task_id": task_id},
        json={"graph_name": graph_name, "initial_state": initial_state, "task_id": task_id},
    )
    if response.status_code != 202:
        raise RuntimeError(f"execute {task_id}: HTTP {response.status_code} {response.text}")
    return response.json()


def get_task(http: httpx.Client, task_id: str) -> dict:
    """GET /api/tasks/{id} (raises on any status but 200)."""
    response = http.get(f"/api/tasks/{task_id}")
    response.raise_for_status()
    return response.json()


def read_events(base_url: str, task_id: str, timeout: float = 30.0,
                headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """All events of a task, read through SSE until the stream ends (the task is final)."""
    events = []
    with httpx.stream("GET", f"{base_url}/api/tasks/{task_id}/events", timeout=timeout,
                      headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def node_runs(events: list[dict[str, Any]]) -> Counter[str]:
    """How many times each node started, from a task's events."""
    return Counter(e["node"] for e in events if e["type"] == "node_started")


def rerun_completed_nodes(events: list[dict[str, Any]]) -> list[str]:
    """Nodes that started again after a `node_completed` of their own (never allowed)."""
    completed: set[str] = set()
    reruns = []
    for event in events:
        if event.get("type") == "node_completed":
            completed.add(event["node"])
        elif event.get("type") == "node_started" and event["node"] in completed:
            reruns.append(event["node"])
    return reruns
