"""Helpers for the auth tests: services with auth on, keys, every route of the app, Redis scans."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from starlette.routing import BaseRoute, Mount, WebSocketRoute

from redis_persist.app import create_app
from redis_persist.settings import Settings

ADMIN_KEY = "test-admin-key-0123456789abcdef"
AUTH_ENV = {"REDIS_PERSIST_AUTH": "api_key", "REDIS_PERSIST_ADMIN_KEY": ADMIN_KEY}
ADMIN = {"X-Api-Key": ADMIN_KEY}


@dataclass(frozen=True)
class Key:
    id: str
    key: str
    tenant: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_key(base_url: str, tenant: str, role: str) -> Key:
    response = httpx.post(f"{base_url}/api/keys", json={"tenant": tenant, "role": role}, headers=ADMIN, timeout=10)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "key", "tenant", "role", "created_at"}
    return Key(body["id"], body["key"], body["tenant"], body["role"])


@dataclass(frozen=True)
class RouteCall:
    kind: str  # "http" or "websocket"
    method: str
    path: str  # with every path parameter filled in


def app_routes() -> list[RouteCall]:
    """Every route the app serves (HTTP methods and WebSockets), path parameters filled with 'x'."""
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0", auth="api_key"), run_worker=False)
    calls: list[RouteCall] = []

    def walk(routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:  # FastAPI's included routers
                walk(included.routes, prefix + route.include_context.prefix)
                continue
            path = prefix + re.sub(r"\{[^}]+\}", "x", getattr(route, "path", ""))
            if isinstance(route, Mount):
                calls.append(RouteCall("http", "GET", path + "/app.js"))
            elif isinstance(route, WebSocketRoute):
                calls.append(RouteCall("websocket", "GET", path))
            else:
                for method in sorted(getattr(route, "methods", None) or {"GET"}):
                    calls.append(RouteCall("http", method, path))

    walk(app.routes, "")
    return calls


def redis_dump(url: str) -> str:
    """Every key and value in Redis as one string, to search for secrets."""
    client = redis.Redis.from_url(url, decode_responses=False)
    parts: list[str] = []
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                value: Any = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "stream":
                value = client.xrange(key)
            elif kind == "ReJSON-RL":
                value = client.execute_command("JSON.GET", key)
            else:
                value = client.dump(key)
            parts.append(f"{key!r} {value!r}")
    finally:
        client.close()
    return "\n".join(parts)
