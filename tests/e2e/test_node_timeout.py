"""A node over its timeout pauses the task: its event stream stays open (the task is not final), so this reads
it over a real socket from a real `redis-persist serve` process. The rest of the lifecycle is in tests/api."""

from __future__ import annotations

import json

import httpx

from tests.e2e.helpers import GRAPHS_ENV, execute, wait_status


def test_a_node_over_its_timeout_pauses_the_task(start_service, tmp_path) -> None:
    service = start_service({**GRAPHS_ENV, "REDIS_PERSIST_NODE_TIMEOUT_SECONDS": "0.5"})
    with service.client() as client:
        task_id = execute(client, "counting", {"step_seconds": 5})
        paused = wait_status(client, task_id, "paused")
        assert "timeout" in paused["error"]
    reasons = [e for e in read_events_until(service.url, task_id, "task_paused")]
    assert reasons[-1]["reason"] == "Node timeout" and reasons[-1]["node"] == "one"
    assert reasons[-1]["action_required"] == "resume"


def read_events_until(base_url: str, task_id: str, event_type: str) -> list[dict]:
    """Events up to and including the first of `event_type` (for tasks that do not end)."""
    seen = []
    with httpx.stream("GET", f"{base_url}/api/tasks/{task_id}/events", timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1]["type"] == event_type:
                    return seen
    return seen
