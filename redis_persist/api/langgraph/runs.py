"""Runs: create (background, streamed, waited), read, list, join, join the stream, cancel, pause, resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from redis_persist.api.auth import caller_of
from redis_persist.api.langgraph.assistants import control
from redis_persist.api.langgraph.schemas import ID_PATTERN, RunCreate, StreamMode
from redis_persist.core.auth import Caller
from redis_persist.engine.runs import STREAM_MODES, WIRE_EVENT
from redis_persist.engine.threads import LangGraphControl

router = APIRouter(tags=["langgraph"])
ThreadId = Annotated[str, Path(pattern=ID_PATTERN)]
RunId = Annotated[str, Path(pattern=ID_PATTERN)]
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
WAIT_HEARTBEAT_SECONDS = 10.0


def _locations(run: dict[str, Any], tail: str) -> dict[str, str]:
    base = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return {"Location": f"{base}/{tail}", "Content-Location": base}


def _sse(lg: LangGraphControl, caller: Caller, thread_id: str, run_id: str, after: str | None,
         headers: dict[str, str] | None = None, only: set[str] | None = None) -> StreamingResponse:
    async def frames() -> AsyncIterator[str]:
        # LangGraph's wire format; every frame carries its Redis id, so any replica can resume after it.
        async for entry_id, event, data in lg.stream(thread_id, run_id, after, caller=caller):
            if not entry_id:
                yield ": heartbeat\n\n"
                continue
            if only and event != "metadata" and event not in only:
                continue
            yield f"event: {event}\ndata: {data}\nid: {entry_id}\n\n"

    return StreamingResponse(frames(), media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})})


async def _wait(lg: LangGraphControl, caller: Caller, run: dict[str, Any]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        # Leading whitespace while the run goes on (JSON allows it) keeps proxies from timing out a long wait.
        waiting = asyncio.create_task(lg.wait_until_ended(run["run_id"], caller=caller))
        try:
            while not waiting.done():
                done, _ = await asyncio.wait({waiting}, timeout=WAIT_HEARTBEAT_SECONDS)
                if not done:
                    yield "\n"
            yield json.dumps(await lg.run_output(waiting.result()))
        finally:
            waiting.cancel()

    return StreamingResponse(body(), media_type="application/json", headers=_locations(run, "join"))


@router.post("/threads/{thread_id}/runs")
async def create(thread_id: ThreadId, body: RunCreate, request: Request) -> JSONResponse:
    run = await control(request).create_run(thread_id, body.as_options(), caller=caller_of(request))
    return JSONResponse(run, headers=_locations(run, "join"))


@router.post("/threads/{thread_id}/runs/stream")
async def create_and_stream(thread_id: ThreadId, body: RunCreate, request: Request) -> StreamingResponse:
    lg = control(request)
    run = await lg.create_run(thread_id, body.as_options(), caller=caller_of(request))
    return _sse(lg, caller_of(request), run["thread_id"], run["run_id"], None, _locations(run, "stream"))


@router.post("/threads/{thread_id}/runs/wait")
async def create_and_wait(thread_id: ThreadId, body: RunCreate, request: Request) -> StreamingResponse:
    lg, caller = control(request), caller_of(request)
    return await _wait(lg, caller, await lg.create_run(thread_id, body.as_options(), caller=caller))


@router.post("/runs")
async def create_stateless(body: RunCreate, request: Request) -> JSONResponse:
    run = await control(request).create_run(None, body.as_options(), caller=caller_of(request))
    return JSONResponse(run, headers=_locations(run, "join"))


@router.post("/runs/stream")
async def stream_stateless(body: RunCreate, request: Request) -> StreamingResponse:
    lg = control(request)
    run = await lg.create_run(None, body.as_options(), caller=caller_of(request))
    return _sse(lg, caller_of(request), run["thread_id"], run["run_id"], None, _locations(run, "stream"))


@router.post("/runs/wait")
async def wait_stateless(body: RunCreate, request: Request) -> StreamingResponse:
    lg, caller = control(request), caller_of(request)
    return await _wait(lg, caller, await lg.create_run(None, body.as_options(), caller=caller))


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: ThreadId, request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10, offset: Annotated[int, Query(ge=0)] = 0,
    status: Literal["pending", "running", "error", "success", "timeout", "interrupted"] | None = None,
) -> list[dict[str, Any]]:
    return await control(request).list_runs(thread_id, limit, offset, status, caller=caller_of(request))


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get(thread_id: ThreadId, run_id: RunId, request: Request) -> dict[str, Any]:
    return await control(request).run(thread_id, run_id, caller=caller_of(request))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete(thread_id: ThreadId, run_id: RunId, request: Request) -> Response:
    await control(request).delete_run(thread_id, run_id, caller=caller_of(request))
    return Response(status_code=204)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join(thread_id: ThreadId, run_id: RunId, request: Request) -> StreamingResponse:
    lg, caller = control(request), caller_of(request)
    return await _wait(lg, caller, await lg.run(thread_id, run_id, caller=caller))


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(thread_id: ThreadId, run_id: RunId, request: Request,
                      last_event_id: Annotated[str | None, Header()] = None,
                      stream_mode: Annotated[list[StreamMode | Literal[""]] | None, Query()] = None,
                      ) -> StreamingResponse:
    """Join a run's stream (from Last-Event-ID); `stream_mode` narrows it to some of the run's modes."""
    # langgraph-sdk's join_stream without stream_mode sends `stream_mode=` (empty): all of the run's modes.
    stream_mode = [m for m in stream_mode or [] if m]
    lg = control(request)
    await lg.run(thread_id, run_id, caller=caller_of(request))  # 404 before the stream starts
    only = {WIRE_EVENT.get(STREAM_MODES[m], STREAM_MODES[m]) for m in stream_mode} if stream_mode else None
    return _sse(lg, caller_of(request), thread_id, run_id, last_event_id, only=only)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202)
async def cancel(thread_id: ThreadId, run_id: RunId, request: Request, wait: bool = False,
                 action: Literal["interrupt", "rollback"] = "interrupt") -> Response:
    await control(request).cancel_run(thread_id, run_id, action, wait, caller=caller_of(request))
    return JSONResponse({}, status_code=200) if wait else Response(status_code=202)


@router.post("/threads/{thread_id}/runs/{run_id}/pause", status_code=202)
async def pause(thread_id: ThreadId, run_id: RunId, request: Request) -> dict[str, Any]:
    """Our extension: pause at the next node boundary (continue with .../resume)."""
    return await control(request).pause_run(thread_id, run_id, caller=caller_of(request))


@router.post("/threads/{thread_id}/runs/{run_id}/resume", status_code=202)
async def resume(thread_id: ThreadId, run_id: RunId, request: Request) -> dict[str, Any]:
    """Our extension: continue a paused run from its last checkpoint."""
    return await control(request).resume_run(thread_id, run_id, caller=caller_of(request))
