"""Assistants: one default assistant per registered graph, its graph drawing and its schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from redis_persist.api.json_io import JSONBodyRoute
from redis_persist.api.schemas import errors
from redis_persist.api.langgraph.schemas import AssistantSearch
from redis_persist.api.langgraph.views import AssistantView, success
from redis_persist.engine.threads import LangGraphControl

router = APIRouter(tags=["langgraph"], route_class=JSONBodyRoute, responses=errors(503))


def control(request: Request) -> LangGraphControl:
    return request.app.state.langgraph


@router.get("/ok", operation_id="lg_ok")
async def ok() -> dict[str, Any]:
    return {"ok": True}


@router.get("/info", operation_id="lg_info")
async def info() -> dict[str, Any]:
    from importlib.metadata import version

    return {"version": version("redis-persist"), "langgraph_py_version": version("langgraph"),
            "flags": {"assistants": True, "crons": False, "langsmith": False},
            "host": {"kind": "redis-persist"}}


@router.post("/assistants/search", operation_id="search_assistants", response_model=None,
             responses={**success(list[AssistantView]), **errors(422)})
async def search(body: AssistantSearch, request: Request) -> list[dict[str, Any]]:
    return control(request).search_assistants(body.graph_id, body.name, body.metadata, body.limit, body.offset)


@router.post("/assistants/count", operation_id="count_assistants", responses=errors(422))
async def count(body: AssistantSearch, request: Request) -> int:
    return len(control(request).search_assistants(body.graph_id, body.name, body.metadata, 10_000, 0))


@router.get("/assistants/{assistant_id}", operation_id="get_assistant", response_model=None,
            responses={**success(AssistantView), **errors(404, 422)})
async def get(assistant_id: str, request: Request) -> dict[str, Any]:
    return control(request).assistant(assistant_id)


@router.get("/assistants/{assistant_id}/graph", operation_id="get_assistant_graph", responses=errors(404, 422))
async def graph(assistant_id: str, request: Request, xray: bool | int = False) -> dict[str, Any]:
    return control(request).assistant_graph(assistant_id, xray)


@router.get("/assistants/{assistant_id}/schemas", operation_id="get_assistant_schemas",
            responses=errors(404, 422))
async def schemas(assistant_id: str, request: Request) -> dict[str, Any]:
    return control(request).assistant_schemas(assistant_id)
