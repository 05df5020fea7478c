"""The poll path (api/poll_path.py) answers a plain GET /api/tasks/{id}, and a page of GET /api/tasks, exactly
as the FastAPI routes do, and hands everything else to those routes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from redis_persist.api.auth import CALLER_SCOPE_KEY
from redis_persist.api.poll_path import TaskPollPath
from redis_persist.core.auth import OPEN_CALLER
from tests.api.helpers import execute, wait_status
from tests.e2e.helpers import GRAPHS_ENV


async def test_the_poll_path_and_the_route_give_the_same_bytes_etag_and_304(start_app) -> None:
    service = await start_app(GRAPHS_ENV)
    assert TaskPollPath in [middleware.cls for middleware in service.app.user_middleware]
    client = service.client
    task_id = await execute(client, "counting", {"step_seconds": 0})
    await wait_status(client, task_id, "completed", timeout=60)
    plain = await client.get(f"/api/tasks/{task_id}")
    # A query string sends the request on to the route (which ignores unknown parameters).
    routed = await client.get(f"/api/tasks/{task_id}", params={"via": "route"})
    assert plain.status_code == routed.status_code == 200
    assert plain.content == routed.content
    assert {k: plain.headers[k] for k in ("etag", "cache-control", "content-type", "content-length")} == \
           {k: routed.headers[k] for k in ("etag", "cache-control", "content-type", "content-length")}
    for params in ({}, {"via": "route"}):
        again = await client.get(f"/api/tasks/{task_id}", params=params,
                                 headers={"If-None-Match": plain.headers["etag"]})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == plain.headers["etag"]


async def test_errors_keep_the_routes_answers(api) -> None:
    missing = await api.client.get("/api/tasks/no-such-task")
    assert missing.status_code == 404 and missing.json()["error"] == "task_not_found"
    too_long = await api.client.get("/api/tasks/" + "a" * 65)
    assert too_long.status_code == 422
    huge_tag = await api.client.get("/api/tasks/x", headers={"If-None-Match": "x" * 2001})
    assert huge_tag.status_code == 422


class _Recorder:
    """The inner ASGI app: records what reached it and answers 599."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"] + "?" + scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class _WithCaller:
    """What AuthMiddleware does for the poll path: put the resolved caller into the scope."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope[CALLER_SCOPE_KEY] = OPEN_CALLER
        await self.app(scope, receive, send)


@pytest.mark.parametrize(("method", "path", "headers", "answered_here"), [
    ("GET", "/api/tasks/{id}", {}, True),
    ("GET", "/api/tasks/{id}", {"If-None-Match": '"x"'}, True),
    ("GET", "/api/tasks/{id}?a=1", {}, False),
    ("GET", "/api/tasks/no-such-task", {}, False),
    ("GET", "/api/tasks/{id}/history", {}, False),
    ("GET", "/api/tasks/bad%20id", {}, False),
    ("DELETE", "/api/tasks/{id}", {}, False),
    ("GET", "/api/tasks/{id}", {"If-None-Match": "x" * 2001}, False),
    ("GET", "/api/tasks", {}, True),
    ("GET", "/api/tasks?limit=2&status=queued", {}, True),
    ("GET", "/api/tasks?limit=0", {}, False),
    ("GET", "/api/tasks?via=route", {}, False),
    ("POST", "/api/tasks", {}, False),
])
async def test_only_a_plain_read_of_an_existing_task_or_a_list_page_is_answered_below_the_router(
        start_app, method: str, path: str, headers: dict[str, str], answered_here: bool) -> None:
    service = await start_app(GRAPHS_ENV)
    task_id = await execute(service.client, "counting", {"step_seconds": 0})
    inner = _Recorder()
    layer = _WithCaller(TaskPollPath(inner, service.app.state.poll_answer))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=layer), base_url="http://poll") as client:
        response = await client.request(method, path.format(id=task_id), headers=headers)
    assert (response.status_code != 599) is answered_here
    assert (inner.paths == []) is answered_here
    if answered_here:
        shown = response.json()
        assert (shown["tasks"][0] if "tasks" in shown else shown)["task_id"] == task_id
