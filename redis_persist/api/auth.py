"""One ASGI layer in front of every route: resolves the caller (key id, tenant, role) of each request and
WebSocket once, refuses missing or bad keys (401), roles below the route's (403) and callers over their
rate (429). Routes read the result with `caller_of`; a route added later is covered without knowing of it.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from redis_persist.api.schemas import errors
from redis_persist.core.auth import OPEN_CALLER, TENANT_PATTERN, Caller, Role, is_open_route, required_role
from redis_persist.engine.access import AccessControl

log = logging.getLogger(__name__)
CALLER_SCOPE_KEY = "redis_persist.caller"
# Browsers cannot set headers on a WebSocket: they offer these two subprotocols instead,
# `new WebSocket(url, ["redis-persist", "api-key." + key])`; the server answers with the first.
WS_PROTOCOL = "redis-persist"
WS_KEY_PROTOCOL_PREFIX = "api-key."
CHALLENGE = 'Bearer realm="redis-persist", charset="UTF-8"'


def caller_of(connection: HTTPConnection) -> Caller:
    """The caller AuthMiddleware resolved for this request or WebSocket."""
    caller = connection.scope.get(CALLER_SCOPE_KEY)
    if caller is None:  # only open routes lack one, and they must not ask
        raise RuntimeError(f"no caller resolved for {connection.url.path}")
    return caller


def presented_key(scope: Scope) -> str | None:
    """The API key from `Authorization: Bearer`, `X-Api-Key`, or (WebSocket) an `api-key.` subprotocol."""
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if headers.get("x-api-key", "").strip():
        return headers["x-api-key"].strip()
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(WS_KEY_PROTOCOL_PREFIX):
            return protocol[len(WS_KEY_PROTOCOL_PREFIX):]
    return None


def _query_tenant(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    match = re.search(r"(?:^|&)tenant=([^&]*)", query)
    return match.group(1) if match else None


class AuthMiddleware:
    """Deny by default: every route but the open ones (core/auth.OPEN_ROUTES) needs a key."""

    def __init__(self, app: ASGIApp, access: AccessControl | None) -> None:
        self.app = app
        self.access = access  # None: auth is off, every caller is OPEN_CALLER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        is_websocket = scope["type"] == "websocket"
        method = "GET" if is_websocket else scope["method"]
        path = scope["path"]
        # Already resolved: the poll path in uvicorn's protocol (api/poll_protocol.py) handed the request on.
        # A scope is the server's, built per request: no client can put a caller into it.
        if CALLER_SCOPE_KEY not in scope and (self.access is None or not (is_open_route(method, path)
                                                                          and not is_websocket)):
            denial = await resolve_caller(self.access, scope, method, path)
            if denial is not None:
                await denial(scope, receive, send)
                return
        if is_websocket:
            send = _answering_protocol(scope, send)
        await self.app(scope, receive, send)


async def resolve_caller(access: AccessControl | None, scope: Scope, method: str, path: str) -> JSONResponse | None:
    """Put the caller into the scope, or return the response that refuses the request (access None: auth off)."""
    if access is None:
        scope[CALLER_SCOPE_KEY] = OPEN_CALLER
        return None
    key = presented_key(scope)
    try:
        caller = await access.authenticate(key) if key else None
        if caller is None:
            detail = "Missing API key" if not key else "Invalid or revoked API key"
            return _error(401, "unauthorized", f"{detail}: send 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'",
                          {"WWW-Authenticate": CHALLENGE})
        needed = required_role(method, path)
        if caller.role < needed:
            return _error(403, "forbidden", f"Role {caller.role.label!r} may not {method} {path} "
                          f"(needs {needed.label!r})")
        retry_after = await access.retry_after(caller)
    except RedisError as error:
        return _error(503, "redis_unavailable", f"Redis unavailable: {error}")
    if retry_after is not None:
        return _error(429, "rate_limited", "Too many requests for this API key",
                      {"Retry-After": str(max(1, math.ceil(retry_after)))})
    tenant = _query_tenant(scope)
    if tenant and caller.is_admin:  # an admin picks the tenant whose tasks it acts on
        if not re.match(TENANT_PATTERN, tenant):
            return _error(422, "invalid_request", f"Invalid tenant {tenant!r}")
        caller = caller.acting_in(tenant)
    scope[CALLER_SCOPE_KEY] = caller
    return None


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "error": code}, status_code=status, headers=headers)


def _answering_protocol(scope: Scope, send: Send) -> Send:
    """A browser that offered our subprotocol must get it back, or it drops the connection."""
    offered = scope.get("subprotocols") or []

    async def wrapped(message: Message) -> None:
        if message["type"] == "websocket.accept" and not message.get("subprotocol") and WS_PROTOCOL in offered:
            message = {**message, "subprotocol": WS_PROTOCOL}
        await send(message)

    return wrapped


def describe(caller: Caller, is_auth_enabled: bool) -> dict[str, Any]:
    """What `GET /api/auth/me` tells a client (the dashboard) about its key."""
    return {"auth": is_auth_enabled, "key_id": caller.key_id, "tenant": caller.tenant, "role": caller.role.label}


def declare_auth_answers(app: FastAPI, is_rate_limited: bool) -> None:
    """With auth on, each guarded route declares in /openapi.json what this layer may answer for it: 401
    always, 403 where a viewer's key is not enough, 429 when a rate limit is set (open routes: nothing)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI keeps this dict and hands it out from now on
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if is_open_route(method.upper(), path):
                    continue
                codes = [401]
                if required_role(method.upper(), path) > Role.VIEWER:
                    codes.append(403)
                if is_rate_limited:
                    codes.append(429)
                for code, answer in errors(*codes).items():
                    operation.setdefault("responses", {})[str(code)] = {
                        "description": answer["description"],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
