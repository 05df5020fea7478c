"""The poll path in uvicorn's protocol (api/poll_protocol.py): a real uvicorn on a real socket, serving the
real app, answers a plain `GET /api/tasks/{id}` itself, with the bytes the route gives, and hands every
other request (and every poll it cannot answer) to the app."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httptools
import httpx
import pytest
import uvicorn

from redis_persist.api.poll_protocol import polling_protocol
from tests.api.conftest import InProcessService, StartApp
from tests.api.helpers import execute, wait_status, wait_until
from tests.e2e.auth_helpers import ADMIN_KEY, AUTH_ENV
from tests.e2e.helpers import GRAPHS_ENV


class _Reached:
    """Wraps the app: records the path and query of every request that reached it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests.append(scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else ""))
        await self.app(scope, receive, send)


@asynccontextmanager
async def _uvicorn(service: InProcessService) -> AsyncIterator[tuple[str, _Reached]]:
    """uvicorn as `redis-persist serve` runs it (our protocol class), on a socket of its own, in this loop."""
    reached = _Reached(service.app)
    config = uvicorn.Config(reached, lifespan="off", log_config=None,
                            http=polling_protocol(service.app.state.poll_answer))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", reached
    finally:
        server.should_exit = True
        await serving
        listener.close()


@pytest.fixture
async def served(start_app: StartApp) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Factory: an in-process service (start_app) served by a real uvicorn; both stopped at teardown."""
    async with AsyncExitStack() as stack:

        async def serve(env: dict[str, str] | None = None) -> tuple[str, _Reached, InProcessService]:
            service = await start_app({**GRAPHS_ENV, **(env or {})})
            url, reached = await stack.enter_async_context(_uvicorn(service))
            return url, reached, service

        yield serve


def _comparable(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name != "date"}


async def test_a_poll_is_answered_before_the_app_with_the_routes_bytes_etag_and_304(served, caplog) -> None:
    url, reached, service = await served()
    task_id = await execute(service.client, "counting", {"step_seconds": 0})
    await wait_status(service.client, task_id, "completed", timeout=60)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    async with httpx.AsyncClient(base_url=url) as client:
        polled = await client.get(f"/api/tasks/{task_id}")
        revalidated = await client.get(f"/api/tasks/{task_id}", headers={"If-None-Match": polled.headers["etag"]})
        assert reached.requests == []
        routed = await client.get(f"/api/tasks/{task_id}", params={"via": "route"})
        routed_304 = await client.get(f"/api/tasks/{task_id}", params={"via": "route"},
                                      headers={"If-None-Match": polled.headers["etag"]})
    assert reached.requests == [f"/api/tasks/{task_id}?via=route"] * 2
    assert polled.status_code == routed.status_code == 200 and polled.json()["task_id"] == task_id
    assert polled.content == routed.content and _comparable(polled) == _comparable(routed)
    assert revalidated.status_code == routed_304.status_code == 304 and revalidated.content == b""
    assert _comparable(revalidated) == _comparable(routed_304)
    # The same access-log line uvicorn writes for the requests the app answers.
    assert f'"GET /api/tasks/{task_id} HTTP/1.1" 200' in caplog.text
    assert f'"GET /api/tasks/{task_id} HTTP/1.1" 304' in caplog.text


@pytest.mark.parametrize(("request_line", "headers", "status"), [
    ("GET /api/tasks/no-such-task", {}, 404),                       # missing: the route's 404
    ("GET /api/tasks/{id}/history", {}, 200),                         # another route
    ("GET /api/tasks/" + "a" * 65, {}, 422),                          # an id the route refuses
    ("GET /api/tasks/{id}", {"If-None-Match": "x" * 2001}, 422),      # a header the route refuses
    ("GET /api/tasks/{id}", {"Connection": "close"}, 200),            # the app closes the connection
    ("HEAD /api/tasks/{id}", {}, 405),
])
async def test_requests_the_poll_path_does_not_answer_reach_the_app(
        served, request_line: str, headers: dict[str, str], status: int) -> None:
    url, reached, service = await served()
    task_id = await execute(service.client, "counting", {"step_seconds": 0})
    await wait_status(service.client, task_id, "completed", timeout=60)
    method, path = request_line.format(id=task_id).split(" ")
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.request(method, path, headers=headers)
    assert response.status_code == status
    assert reached.requests == [path]


async def _finished_tasks(service: InProcessService, graphs: list[str]) -> list[str]:
    made = [await execute(service.client, graph, {"step_seconds": 0}) for graph in graphs]
    for task_id in made:
        await wait_status(service.client, task_id, "completed", timeout=60)
    return made


async def test_a_page_of_the_task_list_is_answered_before_the_app_with_the_routes_bytes(served) -> None:
    url, reached, service = await served()
    await _finished_tasks(service, ["counting", "data_pipeline", "counting"])
    async with httpx.AsyncClient(base_url=url) as client:
        first = await client.get("/api/tasks", params={"limit": "2"})
        queries = ["", "limit=2", "limit=500", "status=completed", "status=running", "graph_name=counting",
                   "graph_name=no.such-graph_1", f"limit=2&cursor={first.json()['next_cursor']}",
                   "status=completed&graph_name=counting&limit=1", "tenant=default"]
        for query in queries:
            plain = await client.get(f"/api/tasks?{query}" if query else "/api/tasks")
            # An unknown parameter sends the request on to the route, which ignores it.
            routed = await client.get(f"/api/tasks?{query}&via=route" if query else "/api/tasks?via=route")
            assert plain.status_code == routed.status_code == 200, query
            assert plain.content == routed.content and _comparable(plain) == _comparable(routed), query
    assert [path.removesuffix("via=route") for path in reached.requests] == \
        [f"/api/tasks?{query}&" if query else "/api/tasks?" for query in queries]
    assert len(first.json()["tasks"]) == 2 and first.json()["next_cursor"]


@pytest.mark.parametrize(("query", "status"), [
    ("limit=0", 422), ("limit=501", 422), ("limit=050", 200), ("limit=-1", 422), ("limit=2.0", 200),
    ("status=bogus", 422), ("status=", 422), ("cursor=abc", 422), ("cursor=" + "9" * 21, 422),
    ("graph_name=a%20b", 200), ("graph_name=" + "g" * 201, 422), ("limit=5&limit=6", 200), ("limit", 422),
    ("foo=1", 200), ("status=%ED%A0%80", 422), ("tenant=", 200),
])
async def test_list_queries_the_fast_path_does_not_take_reach_the_route(served, query: str, status: int) -> None:
    url, reached, service = await served()
    await _finished_tasks(service, ["counting"])
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get(f"/api/tasks?{query}")
    assert response.status_code == status, response.text
    assert reached.requests == [f"/api/tasks?{query}"]


async def test_pipelined_requests_are_answered_in_order_on_one_connection(served) -> None:
    url, reached, service = await served()
    task_id = await execute(service.client, "counting", {"step_seconds": 0})
    await wait_status(service.client, task_id, "completed", timeout=60)
    paths = [f"/api/tasks/{task_id}", "/api/tasks/no-such-task", f"/api/tasks/{task_id}?via=route",
             f"/api/tasks/{task_id}", f"/api/tasks/{task_id}/history", f"/api/tasks/{task_id}"]
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"".join(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for path in paths))  # one write
    answers = _Responses()
    parser = answers.parser = httptools.HttpResponseParser(answers)
    async with asyncio.timeout(20):
        while len(answers.done) < len(paths):
            parser.feed_data(await reader.read(65536))
    writer.close()
    assert [status for status, _ in answers.done] == [200, 404, 200, 200, 200, 200]
    bodies = [body for _, body in answers.done]
    assert bodies[0] == bodies[2] == bodies[3] == bodies[5] and b'"task_not_found"' in bodies[1]
    assert reached.requests == ["/api/tasks/no-such-task", f"/api/tasks/{task_id}?via=route",
                                f"/api/tasks/{task_id}/history"]


class _Responses:
    """httptools callbacks collecting (status, body) of each response in a stream."""

    def __init__(self) -> None:
        self.done: list[tuple[int, bytes]] = []
        self.body = b""
        self.status = 0
        self.parser: httptools.HttpResponseParser | None = None

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done.append((self.status, self.body))
        self.body = b""


async def test_with_auth_on_a_poll_is_refused_or_answered_as_the_route_would_and_counted_once(served) -> None:
    url, reached, service = await served({**AUTH_ENV, "REDIS_PERSIST_RATE_LIMIT_PER_MINUTE": "7"})
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    created = await service.client.post("/api/tasks/execute", headers=admin,
                                        json={"graph_name": "counting", "initial_state": {"step_seconds": 0}})
    task_id = created.json()["task_id"]

    async def completed() -> bool:  # so the two lists compared below show the same task
        return (await service.client.get(f"/api/tasks/{task_id}", headers=admin)).json()["status"] == "completed"

    await wait_until(completed, 60, f"task {task_id} to complete")
    made = await service.client.post("/api/keys", headers=admin, json={"tenant": "default", "role": "viewer"})
    assert made.status_code == 201, made.text
    viewer = {"X-Api-Key": made.json()["key"]}
    async with httpx.AsyncClient(base_url=url) as client:
        anonymous = await client.get(f"/api/tasks/{task_id}")
        anonymous_routed = await client.get(f"/api/tasks/{task_id}", params={"via": "route"})
        wrong = await client.get(f"/api/tasks/{task_id}", headers={"X-Api-Key": "not-a-key"})
        assert reached.requests == [f"/api/tasks/{task_id}?via=route"]
        assert anonymous.status_code == anonymous_routed.status_code == wrong.status_code == 401
        assert anonymous.content == anonymous_routed.content
        assert _comparable(anonymous) == _comparable(anonymous_routed)
        listed, listed_routed = [await client.get("/api/tasks" + query, headers=admin) for query in ("", "?via=route")]
        refused, refused_routed = [await client.get("/api/tasks" + query) for query in ("", "?via=route")]
        assert reached.requests == [f"/api/tasks/{task_id}?via=route", "/api/tasks?via=route", "/api/tasks?via=route"]
        assert listed.status_code == 200 and listed.json()["tasks"][0]["tenant"] == "default"
        assert listed.content == listed_routed.content and _comparable(listed) == _comparable(listed_routed)
        assert refused.status_code == 401 and refused.content == refused_routed.content
        reached.requests.clear()
        # A key limited to 7 requests a minute: a poll of a missing task goes on to the route (404) with
        # its caller resolved, and is still counted as one request, not two.
        statuses = [(await client.get(path, headers=viewer)).status_code
                    for path in [f"/api/tasks/{task_id}", "/api/tasks/no-such-task"] * 4]
    assert statuses == [200, 404] * 3 + [200, 429]
    assert reached.requests == ["/api/tasks/no-such-task"] * 3  # the 429 is the poll path's own
