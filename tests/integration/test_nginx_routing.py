"""nginx/redis-persist.conf routes by task id: real nginx in front of three stub upstreams that say who they are.

Here, not in unit/: every test starts Debian's nginx."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from redis_persist.testing import REPLICA_NAMES, Nginx, free_port


class _StubReplica(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        super().finish()
        self.server.open_connections.discard(self.connection)

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"node": self.server.replica_name, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


def _start_stub(name: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _StubReplica)
    server.replica_name = name
    server.daemon_threads = True
    server.open_connections = set()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def _kill_stub(server: ThreadingHTTPServer) -> None:
    """Stop listening and drop every open connection, as a killed process would."""
    server.shutdown()
    server.server_close()
    for connection in list(server.open_connections):
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def test_nginx_accepts_the_rendered_local_conf(tmp_path):
    nginx = Nginx(free_port(), {name: free_port() for name in REPLICA_NAMES}, tmp_path)
    result = nginx.check_conf()
    assert "test is successful" in result.stderr


@pytest.fixture
def routed(tmp_path):
    """(http client to nginx, {name: stub server}) for nginx in front of three stubs."""
    stubs = {name: _start_stub(name) for name in REPLICA_NAMES}
    nginx = Nginx(free_port(), {name: stub.server_address[1] for name, stub in stubs.items()}, tmp_path)
    nginx.start()
    try:
        with httpx.Client(base_url=nginx.url, timeout=10, trust_env=False) as http:
            yield http, stubs
    finally:
        nginx.stop()
        for stub in stubs.values():
            _kill_stub(stub)


def _node(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["node"]


def _calls_for(http: httpx.Client, task_id: str) -> list[httpx.Response]:
    return [
        http.get(f"/api/tasks/{task_id}"),
        http.get(f"/api/tasks/{task_id}/events"),
        http.get(f"/api/tasks/{task_id}/history"),
        http.post(f"/api/tasks/{task_id}/pause"),
        http.get(f"/ws/tasks/{task_id}", params={"after": "0-0"}),
        http.post("/api/tasks/execute", params={"task_id": task_id}, json={"task_id": task_id}),
        http.get("/api/tasks", params={"task_id": task_id}),
    ]


def test_every_call_about_a_task_reaches_the_same_replica(routed):
    http, _ = routed
    homes = {}
    for i in range(12):
        task_id = f"route-{i}"
        nodes = {_node(response) for response in _calls_for(http, task_id)}
        assert len(nodes) == 1, f"{task_id} was served by {nodes}"
        homes[task_id] = nodes.pop()
    assert len(set(homes.values())) >= 2, f"12 task ids all hashed to one replica: {homes}"


def test_x_upstream_names_the_replica_that_answered(routed):
    http, stubs = routed
    response = http.get("/api/tasks/some-task")
    port = stubs[_node(response)].server_address[1]
    assert response.headers["x-upstream"] == f"127.0.0.1:{port}"


def test_requests_without_a_task_id_are_spread(routed):
    http, _ = routed
    nodes = {_node(http.post("/api/tasks/execute", json={})) for _ in range(30)}
    assert len(nodes) >= 2, "execute without ?task_id= must not all hash to the task called 'execute'"


def test_a_dead_replica_is_skipped_and_only_its_ids_move(routed):
    http, stubs = routed
    task_ids = [f"move-{i}" for i in range(24)]
    before = {task_id: _node(http.get(f"/api/tasks/{task_id}")) for task_id in task_ids}
    victim = before[task_ids[0]]
    _kill_stub(stubs[victim])

    after = {task_id: _node(http.get(f"/api/tasks/{task_id}")) for task_id in task_ids}

    assert victim not in after.values()
    for task_id in task_ids:
        if before[task_id] != victim:
            assert after[task_id] == before[task_id], f"{task_id} moved though its replica is alive"


def _thread_calls(http: httpx.Client, thread_id: str) -> list[httpx.Response]:
    run = f"/threads/{thread_id}/runs/run-1"
    return [
        http.get(f"/threads/{thread_id}"),
        http.get(f"/threads/{thread_id}/state"),
        http.post(f"/threads/{thread_id}/history", json={}),
        http.post(f"/threads/{thread_id}/runs/stream", json={}),
        http.post(f"/threads/{thread_id}/runs/wait", json={}),
        http.get(run),
        http.get(f"{run}/stream"),
        http.get(f"{run}/join"),
        http.post(f"{run}/cancel"),
    ]


def test_every_call_about_a_thread_reaches_the_same_replica(routed):
    http, _ = routed
    homes = {}
    for i in range(12):
        thread_id = f"thread:{i}"  # LangGraph thread ids may hold ':'
        nodes = {_node(response) for response in _thread_calls(http, thread_id)}
        assert len(nodes) == 1, f"{thread_id} was served by {nodes}"
        homes[thread_id] = nodes.pop()
    assert len(set(homes.values())) >= 2, f"12 thread ids all hashed to one replica: {homes}"
    # A task made by /api/tasks reads as a thread of the same id: both doors hash alike.
    assert _node(http.get("/api/tasks/thread-7")) == _node(http.get("/threads/thread-7/state"))


def test_thread_collections_and_stateless_runs_are_spread(routed):
    http, _ = routed
    for path in ("/threads/search", "/runs/stream", "/runs/wait", "/threads"):
        nodes = {_node(http.post(path, json={})) for _ in range(30)}
        assert len(nodes) >= 2, f"{path} must not hash to one key (a thread called {path.rsplit('/', 1)[-1]!r})"
