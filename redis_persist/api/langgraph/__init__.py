"""The LangGraph Server API (assistants, threads, runs) so langgraph-sdk clients and RemoteGraph work unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from redis_persist.api.langgraph import assistants, runs, threads
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
    return router
