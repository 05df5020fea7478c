"""API keys, roles and tenant isolation on every route, against real services sharing a real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.auth_helpers import (
    ADMIN,
    ADMIN_KEY,
    AUTH_ENV,
    Key,
    app_routes,
    make_key,
    redis_dump,
)
from tests.e2e.helpers import GRAPHS_ENV
from tests.support import REPO, ServiceProcess, read_events, wait_until

OPEN = {("GET", "/health"), ("GET", "/metrics"), ("GET", "/"), ("GET", "/static/app.js"), ("GET", "/openapi.json"),
        ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"), ("HEAD", "/health"),
        ("HEAD", "/metrics"), ("HEAD", "/"), ("HEAD", "/openapi.json"), ("HEAD", "/docs"),
        ("HEAD", "/docs/oauth2-redirect"), ("HEAD", "/redoc")}
WRONG_KEYS = ["not-a-key", "rp_0123456789abcdef_" + "A" * 43, ADMIN_KEY + "x"]


@pytest.fixture
def secured(start_service) -> ServiceProcess:
    return start_service({**AUTH_ENV, **GRAPHS_ENV}, name="secure-1")


def _ws_url(service: ServiceProcess, task_id: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{service.port}/ws/tasks/{task_id}{query}"


def _ws_refused(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        with connect(url, open_timeout=10, **kwargs):
            pass
    return refused.value.response.status_code


def _execute(service: ServiceProcess, key: Key | dict[str, str], graph: str, state: dict, **extra) -> dict:
    headers = key.headers if isinstance(key, Key) else key
    response = httpx.post(f"{service.url}/api/tasks/execute", headers=headers, timeout=10,
                          json={"graph_name": graph, "initial_state": state, **extra})
    assert response.status_code == 202, response.text
    return response.json()


def _get(service: ServiceProcess, key: Key, task_id: str) -> dict:
    response = httpx.get(f"{service.url}/api/tasks/{task_id}", headers=key.headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_route_but_the_open_ones_refuses_a_missing_or_wrong_key(secured) -> None:
    routes = app_routes()
    paths = {route.path for route in routes}
    assert {"/api/tasks/x", "/api/tasks/x/events", "/ws/tasks/x", "/api/keys", "/api/graphs"} <= paths
    # The LangGraph Server routes are enumerated too (they sit in an included router of their own).
    assert {"/threads", "/threads/search", "/threads/x/state", "/threads/x/history", "/threads/x/runs/x/stream",
            "/threads/x/runs/x/cancel", "/runs/wait", "/assistants/search", "/assistants/x", "/info"} <= paths
    with httpx.Client(base_url=secured.url, timeout=10) as client:
        for route in routes:
            if route.kind == "websocket":
                assert _ws_refused(f"ws://127.0.0.1:{secured.port}{route.path}") == 401, route
                for wrong in WRONG_KEYS:
                    assert _ws_refused(f"ws://127.0.0.1:{secured.port}{route.path}",
                                       additional_headers={"X-Api-Key": wrong}) == 401, route
                    assert _ws_refused(f"ws://127.0.0.1:{secured.port}{route.path}",
                                       subprotocols=["redis-persist", f"api-key.{wrong}"]) == 401, route
                continue
            answers = [client.request(route.method, route.path)]
            answers += [client.request(route.method, route.path, headers={"X-Api-Key": wrong}) for wrong in WRONG_KEYS]
            answers += [client.request(route.method, route.path, headers={"Authorization": f"Bearer {wrong}"})
                        for wrong in WRONG_KEYS]
            for response in answers:
                if (route.method, route.path) in OPEN:
                    assert response.status_code in (200, 307), (route, response.status_code)
                else:
                    assert response.status_code == 401, (route, response.status_code, response.text)
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
                    assert response.json()["error"] == "unauthorized"
        metrics = client.get("/metrics").text
        assert ADMIN_KEY not in metrics and "task_id" not in metrics


def test_tenants_cannot_see_or_touch_each_others_tasks(secured, tmp_path) -> None:
    alice = make_key(secured.url, "tenant-a", "operator")
    bob = make_key(secured.url, "tenant-b", "operator")
    gate = tmp_path / "gate"
    running = _execute(secured, alice, "gated", {"gate": str(gate)}, task_id="shared-id")
    assert running["task_id"] == "shared-id"
    wait_until(lambda: _get(secured, alice, "shared-id")["status"] == "running", 30, "alice's task to run")
    paused = _execute(secured, alice, "counting", {"step_seconds": 0.05}, task_id="alices-paused")
    httpx.post(f"{secured.url}/api/tasks/alices-paused/pause", headers=alice.headers)
    wait_until(lambda: _get(secured, alice, "alices-paused")["status"] in ("paused", "completed"), 30, "pause")
    before = {tid: _get(secured, alice, tid) for tid in ("shared-id", "alices-paused")}

    with httpx.Client(base_url=secured.url, headers=bob.headers, timeout=10) as client:
        for task_id in before:
            missing = {"detail": f"Task {task_id!r} not found", "error": "task_not_found"}
            for method, path, body in [
                ("GET", f"/api/tasks/{task_id}", None),
                ("GET", f"/api/tasks/{task_id}/history", None),
                ("GET", f"/api/tasks/{task_id}/events", None),
                ("POST", f"/api/tasks/{task_id}/pause", None),
                ("POST", f"/api/tasks/{task_id}/resume", None),
                ("POST", f"/api/tasks/{task_id}/resume", {"input": "yes"}),
                ("POST", f"/api/tasks/{task_id}/cancel", None),
                ("DELETE", f"/api/tasks/{task_id}", None),
            ]:
                response = client.request(method, path, json=body)
                assert (response.status_code, response.json()) == (404, missing), (method, path, response.text)
            with connect(_ws_url(secured, task_id), additional_headers=bob.headers, open_timeout=10) as ws:
                error = json.loads(ws.recv(timeout=10))
                assert error["type"] == "error" and error["error"] == "task_not_found"
        listed = client.get("/api/tasks").json()["tasks"]
        assert listed == []
        assert client.get("/api/tasks", params={"status": "running"}).json()["tasks"] == []
        # The same client task_id in another tenant is another task.
        bobs = _execute(secured, bob, "counting", {"step_seconds": 0}, task_id="shared-id")
        assert bobs["message"] == "Task queued"
        wait_until(lambda: _get(secured, bob, "shared-id")["status"] == "completed", 30, "bob's task to finish")
        assert [t["task_id"] for t in client.get("/api/tasks").json()["tasks"]] == ["shared-id"]
        assert all(e["task_id"] == "shared-id" for e in read_events(secured.url, "shared-id", headers=bob.headers))

    # Nothing of alice's changed.
    for task_id, was in before.items():
        now = _get(secured, alice, task_id)
        assert {k: v for k, v in now.items() if k not in ("progress", "node")} == {
            k: v for k, v in was.items() if k not in ("progress", "node")}
    assert _get(secured, alice, "shared-id")["graph_name"] == "gated"
    alice_list = httpx.get(f"{secured.url}/api/tasks", headers=alice.headers).json()["tasks"]
    assert sorted(t["task_id"] for t in alice_list) == ["alices-paused", "shared-id"]
    assert all("tenant" not in t for t in alice_list)

    # Admins see every tenant, each task naming its tenant, and act in one with ?tenant=.
    everything = httpx.get(f"{secured.url}/api/tasks", headers=ADMIN).json()["tasks"]
    assert sorted((t["tenant"], t["task_id"]) for t in everything) == [
        ("tenant-a", "alices-paused"), ("tenant-a", "shared-id"), ("tenant-b", "shared-id")]
    as_admin = httpx.get(f"{secured.url}/api/tasks/shared-id", headers=ADMIN, params={"tenant": "tenant-a"}).json()
    assert as_admin["graph_name"] == "gated" and as_admin["tenant"] == "tenant-a"
    assert httpx.get(f"{secured.url}/api/tasks/shared-id", headers=ADMIN).status_code == 404  # default tenant

    # Control actions name the key that did them.
    cancel = httpx.post(f"{secured.url}/api/tasks/shared-id/cancel", headers=alice.headers)
    assert cancel.status_code == 202, cancel.text
    events = read_events(secured.url, "shared-id", headers=alice.headers)
    cancelled = [e for e in events if e["type"] == "status" and e["status"] == "cancelled"]
    assert cancelled and cancelled[-1]["by"] == alice.id
    gate.touch()


def test_websocket_takes_the_key_as_a_header_or_a_browser_subprotocol(secured) -> None:
    alice = make_key(secured.url, "tenant-a", "operator")
    task_id = _execute(secured, alice, "counting", {"step_seconds": 0.05})["task_id"]
    with connect(_ws_url(secured, task_id), additional_headers={"X-Api-Key": alice.key}, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["task_id"] == task_id
    with connect(_ws_url(secured, task_id), subprotocols=["redis-persist", f"api-key.{alice.key}"],
                 open_timeout=10) as ws:
        assert ws.subprotocol == "redis-persist"  # the key itself is never echoed
        assert json.loads(ws.recv(timeout=10))["task_id"] == task_id


def test_viewers_read_but_get_403_for_every_change_and_only_admins_manage_keys(secured) -> None:
    operator = make_key(secured.url, "tenant-a", "operator")
    viewer = make_key(secured.url, "tenant-a", "viewer")
    task_id = _execute(secured, operator, "counting", {"step_seconds": 0.5})["task_id"]
    with httpx.Client(base_url=secured.url, headers=viewer.headers, timeout=10) as client:
        assert client.get(f"/api/tasks/{task_id}").status_code == 200
        assert client.get("/api/graphs").status_code == 200
        assert client.get("/api/auth/me").json() == {"auth": True, "key_id": viewer.id, "tenant": "tenant-a",
                                                       "role": "viewer"}
        for method, path, body in [
            ("POST", "/api/tasks/execute", {"graph_name": "counting", "initial_state": {}}),
            ("POST", f"/api/tasks/{task_id}/pause", None),
            ("POST", f"/api/tasks/{task_id}/resume", None),
            ("POST", f"/api/tasks/{task_id}/cancel", None),
            ("DELETE", f"/api/tasks/{task_id}", None),
            ("GET", "/api/keys", None),
        ]:
            response = client.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"] == "forbidden"
    with connect(_ws_url(secured, task_id), additional_headers=viewer.headers, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "cancel"}))
        reply = next(m for m in (json.loads(ws.recv(timeout=10)) for _ in range(50)) if m["type"] == "reply")
        assert reply["ok"] is False and reply["code"] == 403
    with httpx.Client(base_url=secured.url, headers=operator.headers, timeout=10) as client:
        assert client.get("/api/keys").status_code == 403
        assert client.post("/api/keys", json={"tenant": "tenant-a", "role": "admin"}).status_code == 403
        assert client.get(f"/api/tasks/{task_id}").json()["status"] in ("queued", "running", "completed")


def test_a_revoked_key_is_refused_by_another_replica_within_5_seconds(start_service) -> None:
    first = start_service({**AUTH_ENV, **GRAPHS_ENV}, name="secure-1")
    second = start_service({**AUTH_ENV, **GRAPHS_ENV}, name="secure-2")
    key = make_key(first.url, "tenant-a", "viewer")
    assert httpx.get(f"{second.url}/api/tasks", headers=key.headers).status_code == 200  # now cached there
    listed = httpx.get(f"{first.url}/api/keys", headers=ADMIN).json()["keys"]
    assert {"id": key.id, "tenant": "tenant-a", "role": "viewer"}.items() <= next(
        k for k in listed if k["id"] == key.id).items()
    assert key.key not in json.dumps(listed)
    revoked_at = time.monotonic()
    assert httpx.delete(f"{first.url}/api/keys/{key.id}", headers=ADMIN).status_code == 200
    wait_until(lambda: httpx.get(f"{second.url}/api/tasks", headers=key.headers).status_code == 401, 10,
               "the second replica to refuse the revoked key", interval=0.1)
    assert time.monotonic() - revoked_at < 5
    assert httpx.get(f"{first.url}/api/tasks", headers=key.headers).status_code == 401
    assert httpx.delete(f"{first.url}/api/keys/{key.id}", headers=ADMIN).status_code == 404


def test_no_key_secret_is_ever_written_to_redis(secured, clean_redis) -> None:
    keys = [make_key(secured.url, "tenant-a", role) for role in ("viewer", "operator", "admin")]
    cli = subprocess.run([sys.executable, "-m", "redis_persist", "keys", "create", "--tenant", "tenant-c",
                          "--role", "operator"], env={**ServiceProcess(clean_redis).env()}, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    cli_key = json.loads(cli.stdout)["key"]
    for key in keys:
        assert httpx.get(f"{secured.url}/api/tasks", headers=key.headers).status_code == 200
    task_id = _execute(secured, keys[1], "counting", {"step_seconds": 0})["task_id"]
    assert httpx.get(f"{secured.url}/api/tasks/{task_id}", headers={"X-Api-Key": cli_key}).status_code == 404
    dump = redis_dump(clean_redis)
    assert "apikey" in dump  # the records are there...
    for secret in [key.key.split("_", 2)[2] for key in keys] + [cli_key.split("_", 2)[2], ADMIN_KEY]:
        assert secret not in dump  # ...but never a secret


def test_keys_cli_creates_lists_and_revokes_against_redis_url(secured, clean_redis) -> None:
    env = ServiceProcess(clean_redis).env()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "redis_persist", "keys", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    created = json.loads(run("create", "--tenant", "ops", "--role", "admin").stdout)
    assert httpx.get(f"{secured.url}/api/auth/me", headers={"X-Api-Key": created["key"]}).json()["role"] == "admin"
    listed = [json.loads(line) for line in run("list").stdout.splitlines()]
    assert {"id": created["id"], "tenant": "ops", "role": "admin", "created_at": created["created_at"]} in listed
    assert created["key"] not in json.dumps(listed)
    bad = run("create", "--tenant", "ops", "--role", "superuser")
    assert bad.returncode == 2 and "unknown role" in bad.stderr
    assert run("revoke", created["id"]).returncode == 0
    wait_until(lambda: httpx.get(f"{secured.url}/api/auth/me", headers={"X-Api-Key": created["key"]}).status_code
               == 401, 5, "the revoked key to be refused")
    assert run("revoke", created["id"]).returncode == 1


def test_serve_refuses_a_public_address_without_auth_and_runs_open_on_loopback(start_service, clean_redis) -> None:
    env = ServiceProcess(clean_redis).env()
    refused = subprocess.run([sys.executable, "-m", "redis_persist", "serve", "--host", "0.0.0.0", "--port", "1"],
                             env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "REDIS_PERSIST_AUTH=api_key" in refused.stderr and "REDIS_PERSIST_AUTH=off" in refused.stderr
    open_service = start_service(name="open")
    assert "auth is off" in open_service.log()
    with open_service.client() as client:
        assert client.get("/api/auth/me").json() == {"auth": False, "key_id": None, "tenant": "default",
                                                     "role": "admin"}
        assert client.get("/api/tasks").status_code == 200


def test_a_key_over_its_rate_gets_429_with_retry_after(start_service) -> None:
    service = start_service({**AUTH_ENV, "REDIS_PERSIST_RATE_LIMIT_PER_MINUTE": "5"}, name="limited")
    key = make_key(service.url, "tenant-a", "viewer")
    codes = [httpx.get(f"{service.url}/api/graphs", headers=key.headers) for _ in range(7)]
    assert [r.status_code for r in codes[:5]] == [200] * 5
    limited = codes[-1]
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["error"] == "rate_limited"
    other = make_key(service.url, "tenant-b", "viewer")
    assert httpx.get(f"{service.url}/api/graphs", headers=other.headers).status_code == 200  # per key


def test_keys_cli_uses_the_running_embedded_redis_of_a_data_dir(tmp_path) -> None:
    env = {**AUTH_ENV, "REDIS_PERSIST_DATA_DIR": str(tmp_path / "data")}
    service = ServiceProcess(None, env=env, name="embedded-auth")
    try:
        service.start()
        created = subprocess.run([sys.executable, "-m", "redis_persist", "keys", "create", "--tenant", "solo",
                                  "--role", "viewer"], env=service.env(), cwd=REPO, capture_output=True, text=True,
                                 timeout=60)
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout)["key"]
        me = httpx.get(f"{service.url}/api/auth/me", headers={"X-Api-Key": key})
        assert me.json()["tenant"] == "solo", me.text
        assert httpx.get(f"{service.url}/health").status_code == 200  # its Redis was left alone
    finally:
        service.kill()
