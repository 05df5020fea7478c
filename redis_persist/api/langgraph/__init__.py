"""The LangGraph Server API (assistants, threads, runs) so langgraph-sdk clients and RemoteGraph work unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from redis_persist.api.langgraph import assistants, runs, threads
from redis_persist.api.schemas import errors
from redis_persist.core.auth import Role, required_role
from redis_persist.engine.threads import LangGraphControl
from redis_persist.services import Services

UPKEEP_SECONDS = 0.5


def router_for(app: FastAPI, services: Services) -> APIRouter:
    """Every LangGraph Server route, with the upkeep loop (pending runs of threads) as its lifespan."""
    app.state.langgraph = LangGraphControl.build(services.control, services.redis, services.settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        upkeep = asyncio.create_task(app.state.langgraph.background(stop, UPKEEP_SECONDS), name="langgraph-upkeep")
        try:
            yield
        finally:
            stop.set()
            await upkeep

    router = APIRouter(lifespan=lifespan)
    for module in (assistants, threads, runs):
        router.include_router(module.router)
    if services.settings.is_auth_enabled:
        _declare_auth_answers(app, services.settings.rate_limit_per_minute > 0)
    return router


def _declare_auth_answers(app: FastAPI, is_rate_limited: bool) -> None:
    """With auth on, each LangGraph route declares in /openapi.json what the auth layer (api/auth.py) may
    answer for it: 401 always, 403 where a viewer's key is not enough, 429 when a rate limit is set."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI keeps this dict and hands it out from now on
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if "langgraph" not in operation.get("tags", []):
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
