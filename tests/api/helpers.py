"""The tests/e2e helpers, for an httpx.AsyncClient on the in-process app: same names, same checks, awaited."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


async def wait_until(predicate: Callable[[], Awaitable[T]], timeout: float = 30.0, message: str = "condition",
                     interval: float = 0.02) -> T:
    """Await `predicate` until it returns something truthy; fail with `message` at the deadline.

    Sleeps between polls hand the event loop to the app's worker, which runs in this loop.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = await predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - retried until the deadline
            last_error = error
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}" +
                         (f" (last error: {last_error!r})" if last_error else ""))


async def execute(client: httpx.AsyncClient, graph: str, state: dict[str, Any] | None = None, **extra: Any) -> str:
    response = await client.post("/api/tasks/execute", json={"graph_name": graph, "initial_state": state or {}, **extra})
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


async def task(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_status(client: httpx.AsyncClient, task_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        current = await task(client, task_id)
        return current if current["status"] in statuses else None

    return await wait_until(reached, timeout, f"task {task_id} to be {statuses}")


async def wait_node_started(client: httpx.AsyncClient, task_id: str, node: str, timeout: float = 30) -> dict[str, Any]:
    async def started() -> dict[str, Any] | None:
        current = await task(client, task_id)
        return current if current["current_node"] == node else None

    return await wait_until(started, timeout, f"{node} to start in {task_id}")


async def read_events(client: httpx.AsyncClient, task_id: str, timeout: float = 30.0,
                      headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """All events of a task through SSE. httpx's ASGI transport returns a response once the app has sent all of
    it, so this is for tasks whose stream ends (final ones); a live stream needs a real socket (tests/e2e)."""
    async with asyncio.timeout(timeout):  # the transport has no timeouts of its own
        response = await client.get(f"/api/tasks/{task_id}/events", headers=headers)
    response.raise_for_status()
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
