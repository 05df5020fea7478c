"""Assistants: one default assistant per registered graph, its graph drawing and its schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from redis_persist.api.langgraph.schemas import AssistantSearch
from redis_persist.engine.threads import LangGraphControl

router = APIRouter(tags=["langgraph"])


def control(request: Request) -> LangGraphControl:
    return request.app.state.langgraph


@router.get("/ok")
async def ok() -> dict[str, Any]:
    return {"ok": True}


@router.get("/info")
async def info() -> dict[str, Any]:
    from importlib.metadata import version

    return {"version": version("redis-persist"), "langgraph_py_version": version("langgraph"),
            "flags": {"assistants": True, "crons": False, "langsmith": False},
            "host": {"kind": "redis-persist"}}


@router.post("/assistants/search")
async def search(body: AssistantSearch, request: Request) -> list[dict[str, Any]]:
    return control(request).search_assistants(body.graph_id, body.name, body.metadata, body.limit, body.offset)


@router.post("/assistants/count")
async def count(body: AssistantSearch, request: Request) -> int:
    return len(control(request).search_assistants(body.graph_id, body.name, body.metadata, 10_000, 0))


@router.get("/assistants/{assistant_id}")
async def get(assistant_id: str, request: Request) -> dict[str, Any]:
    return control(request).assistant(assistant_id)


@router.get("/assistants/{assistant_id}/graph")
async def graph(assistant_id: str, request: Request, xray: bool | int = False) -> dict[str, Any]:
    return control(request).assistant_graph(assistant_id, xray)


@router.get("/assistants/{assistant_id}/schemas")
async def schemas(assistant_id: str, request: Request) -> dict[str, Any]:
    return control(request).assistant_schemas(assistant_id)
