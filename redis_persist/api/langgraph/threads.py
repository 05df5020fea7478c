"""Threads: create, read, patch, delete, search; their state, state updates and history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from redis_persist.api.auth import caller_of
from redis_persist.api.json_io import JSONBodyRoute
from redis_persist.api.schemas import errors
from redis_persist.api.langgraph.assistants import control
from redis_persist.api.langgraph.checks import checked_patch, checked_search, checked_thread, checked_update
from redis_persist.api.langgraph.views import StateUpdated, ThreadStateView, ThreadView, success
from redis_persist.api.langgraph.schemas import (
    ID_PATTERN,
    HistoryQuery,
    StateAtCheckpoint,
    StateUpdate,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
)

router = APIRouter(tags=["langgraph"], route_class=JSONBodyRoute, responses=errors(503))
ThreadId = Annotated[str, Path(pattern=ID_PATTERN)]
# Bodies whose user JSON is checked (api/langgraph/checks.py) before the route runs.
NewThread = Annotated[ThreadCreate | None, Depends(checked_thread)]
Search = Annotated[ThreadSearch | None, Depends(checked_search)]
Patch = Annotated[ThreadPatch, Depends(checked_patch)]
Update = Annotated[StateUpdate, Depends(checked_update)]


@router.post("/threads", operation_id="create_thread", response_model=None,
             responses={**success(ThreadView), **errors(409, 413, 422)})
async def create(request: Request, body: NewThread = None) -> dict[str, Any]:
    body = body or ThreadCreate()
    return await control(request).create_thread(body.thread_id, body.metadata, body.if_exists,
                                                caller=caller_of(request))


@router.post("/threads/search", operation_id="search_threads", response_model=None,
             responses={**success(list[ThreadView]), **errors(413, 422)})
async def search(request: Request, body: Search = None) -> list[dict[str, Any]]:
    body = body or ThreadSearch()
    return await control(request).search_threads(body.metadata, body.values, body.status, body.limit, body.offset,
                                                 caller=caller_of(request))


@router.get("/threads/{thread_id}", operation_id="get_thread", response_model=None,
            responses={**success(ThreadView), **errors(404, 422)})
async def get(thread_id: ThreadId, request: Request) -> dict[str, Any]:
    return await control(request).thread(thread_id, caller=caller_of(request))


@router.patch("/threads/{thread_id}", operation_id="patch_thread", response_model=None,
              responses={**success(ThreadView), **errors(404, 409, 413, 422)})
async def patch(thread_id: ThreadId, body: Patch, request: Request) -> dict[str, Any]:
    return await control(request).patch_thread(thread_id, body.metadata, caller=caller_of(request))


@router.delete("/threads/{thread_id}", status_code=204, operation_id="delete_thread",
               responses=errors(404, 409, 422))
async def delete(thread_id: ThreadId, request: Request) -> Response:
    await control(request).delete_thread(thread_id, caller=caller_of(request))
    return Response(status_code=204)


@router.get("/threads/{thread_id}/state", operation_id="get_thread_state", response_model=None,
            responses={**success(ThreadStateView), **errors(404, 422)})
async def state(thread_id: ThreadId, request: Request) -> dict[str, Any]:
    return await control(request).state(thread_id, caller=caller_of(request))


@router.get("/threads/{thread_id}/state/{checkpoint_id}", operation_id="get_thread_state_at",
            response_model=None, responses={**success(ThreadStateView), **errors(404, 422)})
async def state_at(thread_id: ThreadId, checkpoint_id: Annotated[str, Path(pattern=ID_PATTERN)],
                   request: Request) -> dict[str, Any]:
    return await control(request).state(thread_id, checkpoint_id, caller=caller_of(request))


@router.post("/threads/{thread_id}/state/checkpoint", operation_id="get_thread_state_at_checkpoint",
             response_model=None, responses={**success(ThreadStateView), **errors(404, 422)})
async def state_at_checkpoint(thread_id: ThreadId, request: Request,
                              body: Annotated[StateAtCheckpoint, Body()]) -> dict[str, Any]:
    return await control(request).state(thread_id, body.checkpoint_id(), caller=caller_of(request))


@router.post("/threads/{thread_id}/state", operation_id="update_thread_state", response_model=None,
             responses={**success(StateUpdated), **errors(404, 409, 413, 422)})
async def update_state(thread_id: ThreadId, body: Update, request: Request) -> dict[str, Any]:
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    return await control(request).update_state(thread_id, body.values, body.as_node, checkpoint_id,
                                               caller=caller_of(request))


@router.post("/threads/{thread_id}/history", operation_id="thread_history", response_model=None,
             responses={**success(list[ThreadStateView]), **errors(404, 422)})
async def history(thread_id: ThreadId, request: Request,
                  body: Annotated[HistoryQuery | None, Body()] = None) -> list[dict[str, Any]]:
    body = body or HistoryQuery()
    before = body.before.get("checkpoint_id") if isinstance(body.before, dict) else body.before
    checkpoint_id = (body.checkpoint or {}).get("checkpoint_id")
    return await control(request).history(thread_id, body.limit, before, checkpoint_id, caller=caller_of(request))


@router.get("/threads/{thread_id}/history", operation_id="thread_history_get", response_model=None,
            responses={**success(list[ThreadStateView]), **errors(404, 422)})
async def history_get(thread_id: ThreadId, request: Request, limit: int = 10,
                      before: Annotated[str | None, Query(pattern=ID_PATTERN)] = None) -> list[dict[str, Any]]:
    return await control(request).history(thread_id, max(1, min(limit, 1000)), before, caller=caller_of(request))
