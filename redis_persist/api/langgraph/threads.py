"""Threads: create, read, patch, delete, search; their state, state updates and history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response

from redis_persist.api.auth import caller_of
from redis_persist.api.langgraph.assistants import control
from redis_persist.api.langgraph.schemas import (
    ID_PATTERN,
    HistoryQuery,
    StateUpdate,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
)

router = APIRouter(tags=["langgraph"])
ThreadId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.post("/threads")
async def create(request: Request, body: Annotated[ThreadCreate | None, Body()] = None) -> dict[str, Any]:
    body = body or ThreadCreate()
    return await control(request).create_thread(body.thread_id, body.metadata, body.if_exists,
                                                caller=caller_of(request))


@router.post("/threads/search")
async def search(request: Request, body: Annotated[ThreadSearch | None, Body()] = None) -> list[dict[str, Any]]:
    body = body or ThreadSearch()
    return await control(request).search_threads(body.metadata, body.values, body.status, body.limit, body.offset,
                                                 caller=caller_of(request))


@router.get("/threads/{thread_id}")
async def get(thread_id: ThreadId, request: Request) -> dict[str, Any]:
    return await control(request).thread(thread_id, caller=caller_of(request))


@router.patch("/threads/{thread_id}")
async def patch(thread_id: ThreadId, body: ThreadPatch, request: Request) -> dict[str, Any]:
    return await control(request).patch_thread(thread_id, body.metadata, caller=caller_of(request))


@router.delete("/threads/{thread_id}", status_code=204)
async def delete(thread_id: ThreadId, request: Request) -> Response:
    await control(request).delete_thread(thread_id, caller=caller_of(request))
    return Response(status_code=204)


@router.get("/threads/{thread_id}/state")
async def state(thread_id: ThreadId, request: Request) -> dict[str, Any]:
    return await control(request).state(thread_id, caller=caller_of(request))


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def state_at(thread_id: ThreadId, checkpoint_id: Annotated[str, Path(pattern=ID_PATTERN)],
                   request: Request) -> dict[str, Any]:
    return await control(request).state(thread_id, checkpoint_id, caller=caller_of(request))


@router.post("/threads/{thread_id}/state/checkpoint")
async def state_at_checkpoint(thread_id: ThreadId, request: Request,
                              body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    checkpoint = body.get("checkpoint") or {}
    return await control(request).state(thread_id, checkpoint.get("checkpoint_id"), caller=caller_of(request))


@router.post("/threads/{thread_id}/state")
async def update_state(thread_id: ThreadId, body: StateUpdate, request: Request) -> dict[str, Any]:
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    return await control(request).update_state(thread_id, body.values, body.as_node, checkpoint_id,
                                               caller=caller_of(request))


@router.post("/threads/{thread_id}/history")
async def history(thread_id: ThreadId, request: Request,
                  body: Annotated[HistoryQuery | None, Body()] = None) -> list[dict[str, Any]]:
    body = body or HistoryQuery()
    before = body.before.get("checkpoint_id") if isinstance(body.before, dict) else body.before
    checkpoint_id = (body.checkpoint or {}).get("checkpoint_id")
    return await control(request).history(thread_id, body.limit, before, checkpoint_id, caller=caller_of(request))


@router.get("/threads/{thread_id}/history")
async def history_get(thread_id: ThreadId, request: Request, limit: int = 10,
                      before: str | None = None) -> list[dict[str, Any]]:
    return await control(request).history(thread_id, max(1, min(limit, 1000)), before, caller=caller_of(request))
