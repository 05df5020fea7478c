"""Runs: create (background, streamed, waited), read, list, join, join the stream, cancel, pause, resume."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from redis_persist.api.auth import caller_of
from redis_persist.api.json_io import JSONBodyRoute
from redis_persist.api.langgraph.assistants import control
from redis_persist.api.langgraph.checks import checked_run
from redis_persist.api.live import SSE_EVENT_SCHEMA
from redis_persist.api.schemas import errors
from redis_persist.core.errors import InvalidEventId
from redis_persist.api.langgraph.schemas import ID_PATTERN, RunCreate, StreamMode
from redis_persist.api.langgraph.views import RunControlled, RunView, success
from redis_persist.core.auth import Caller
from redis_persist.engine.runs import STREAM_MODES, WIRE_EVENT
from redis_persist.engine.threads import LangGraphControl
from redis_persist.store.events import is_valid_event_id

router = APIRouter(tags=["langgraph"], route_class=JSONBodyRoute, responses=errors(503))
ThreadId = Annotated[str, Path(pattern=ID_PATTERN)]
RunId = Annotated[str, Path(pattern=ID_PATTERN)]
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
WAIT_HEARTBEAT_SECONDS = 10.0
HOLD_REFRESH_SECONDS = 10.0  # how often a stateless run's reader renews its hold on the temporary thread
CheckedRun = Annotated[RunCreate, Depends(checked_run)]

# What each kind of route may answer, as /openapi.json declares it.
_CREATE_ERRORS = errors(404, 409, 413, 422)
_RUN_ERRORS = errors(404, 422)
_SSE_OK = {200: {"description": "Server-Sent Events in LangGraph's wire format (`event`, `data`, `id`) until the run "
                                "ends; `: heartbeat` comments while idle",
                 "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}}}}
_WAIT_OK = {200: {"description": "The run's output (final values, or the error) once it has ended; leading "
                                 "whitespace while it goes on",
                  "content": {"application/json": {"schema": {}}}}}


def _locations(run: dict[str, Any], tail: str) -> dict[str, str]:
    base = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return {"Location": f"{base}/{tail}", "Content-Location": base}


def _checked_event_id(value: str | None) -> str | None:
    """Last-Event-ID checked before the stream starts: a bad one is a 422, not a stream broken off."""
    if value is not None and not is_valid_event_id(value):
        raise InvalidEventId(value)
    return value


def _sse(lg: LangGraphControl, caller: Caller, thread_id: str, run_id: str, after: str | None,
         headers: dict[str, str] | None = None, only: set[str] | None = None,
         stateless_run: dict[str, Any] | None = None) -> StreamingResponse:
    async def frames() -> AsyncIterator[str]:
        # LangGraph's wire format; every frame carries its Redis id, so any replica can resume after it.
        held_at = time.monotonic()
        async for entry_id, event, data in lg.stream(thread_id, run_id, after, caller=caller):
            if stateless_run and time.monotonic() - held_at > HOLD_REFRESH_SECONDS:
                held_at = time.monotonic()
                await lg.still_reading(stateless_run, caller=caller)
            if not entry_id:
                yield ": heartbeat\n\n"
                continue
            # As LangGraph's server: narrowed to some modes, the stream has no `metadata` event either.
            if only and event.partition("/")[0] not in only:  # messages/partial belongs to "messages"
                continue
            yield f"event: {event}\ndata: {data}\nid: {entry_id}\n\n"
        if stateless_run:  # the whole stream went out: the temporary thread may go (on_completion=delete)
            await lg.output_delivered(stateless_run, caller=caller)

    return StreamingResponse(frames(), media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})})


async def _wait(lg: LangGraphControl, caller: Caller, run: dict[str, Any], stateless: bool = False,
                ) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        # Leading whitespace while the run goes on (JSON allows it) keeps proxies from timing out a long wait.
        waiting = asyncio.create_task(lg.wait_until_ended(run["run_id"], caller=caller))
        try:
            while not waiting.done():
                done, _ = await asyncio.wait({waiting}, timeout=WAIT_HEARTBEAT_SECONDS)
                if not done:
                    if stateless:
                        await lg.still_reading(run, caller=caller)
                    yield "\n"
            yield json.dumps(await lg.run_output(waiting.result()))
        finally:
            waiting.cancel()
        if stateless:  # the answer went out: the temporary thread may go (on_completion=delete)
            await lg.output_delivered(run, caller=caller)

    return StreamingResponse(body(), media_type="application/json", headers=_locations(run, "join"))


@router.post("/threads/{thread_id}/runs", operation_id="create_run", response_model=None,
             responses={**success(RunView), **_CREATE_ERRORS})
async def create(thread_id: ThreadId, body: CheckedRun, request: Request) -> JSONResponse:
    run = await control(request).create_run(thread_id, body.as_options(), caller=caller_of(request))
    return JSONResponse(run, headers=_locations(run, "join"))


@router.post("/threads/{thread_id}/runs/stream", operation_id="create_run_stream", response_class=StreamingResponse,
             responses={**_SSE_OK, **_CREATE_ERRORS})
async def create_and_stream(thread_id: ThreadId, body: CheckedRun, request: Request) -> StreamingResponse:
    lg = control(request)
    run = await lg.create_run(thread_id, body.as_options(), caller=caller_of(request))
    return _sse(lg, caller_of(request), run["thread_id"], run["run_id"], None, _locations(run, "stream"))


@router.post("/threads/{thread_id}/runs/wait", operation_id="create_run_wait", response_class=StreamingResponse,
             responses={**_WAIT_OK, **_CREATE_ERRORS})
async def create_and_wait(thread_id: ThreadId, body: CheckedRun, request: Request) -> StreamingResponse:
    lg, caller = control(request), caller_of(request)
    return await _wait(lg, caller, await lg.create_run(thread_id, body.as_options(), caller=caller))


@router.post("/runs", operation_id="create_stateless_run", response_model=None,
             responses={**success(RunView), **_CREATE_ERRORS})
async def create_stateless(body: CheckedRun, request: Request) -> JSONResponse:
    run = await control(request).create_run(None, body.as_options(), caller=caller_of(request))
    return JSONResponse(run, headers=_locations(run, "join"))


@router.post("/runs/stream", operation_id="create_stateless_run_stream", response_class=StreamingResponse,
             responses={**_SSE_OK, **_CREATE_ERRORS})
async def stream_stateless(body: CheckedRun, request: Request) -> StreamingResponse:
    lg = control(request)
    run = await lg.create_run(None, body.as_options(), caller=caller_of(request), reader_attached=True)
    return _sse(lg, caller_of(request), run["thread_id"], run["run_id"], None, _locations(run, "stream"),
                stateless_run=run)


@router.post("/runs/wait", operation_id="create_stateless_run_wait", response_class=StreamingResponse,
             responses={**_WAIT_OK, **_CREATE_ERRORS})
async def wait_stateless(body: CheckedRun, request: Request) -> StreamingResponse:
    lg, caller = control(request), caller_of(request)
    run = await lg.create_run(None, body.as_options(), caller=caller, reader_attached=True)
    return await _wait(lg, caller, run, stateless=True)


@router.get("/threads/{thread_id}/runs", operation_id="list_runs", response_model=None,
            responses={**success(list[RunView]), **_RUN_ERRORS})
async def list_runs(
    thread_id: ThreadId, request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10, offset: Annotated[int, Query(ge=0)] = 0,
    status: Literal["pending", "running", "error", "success", "timeout", "interrupted"] | None = None,
) -> list[dict[str, Any]]:
    return await control(request).list_runs(thread_id, limit, offset, status, caller=caller_of(request))


@router.get("/threads/{thread_id}/runs/{run_id}", operation_id="get_run", response_model=None,
            responses={**success(RunView), **_RUN_ERRORS})
async def get(thread_id: ThreadId, run_id: RunId, request: Request) -> dict[str, Any]:
    return await control(request).run(thread_id, run_id, caller=caller_of(request))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204, operation_id="delete_run",
               responses=errors(404, 409, 422))
async def delete(thread_id: ThreadId, run_id: RunId, request: Request) -> Response:
    await control(request).delete_run(thread_id, run_id, caller=caller_of(request))
    return Response(status_code=204)


@router.get("/threads/{thread_id}/runs/{run_id}/join", operation_id="join_run", response_class=StreamingResponse,
            responses={**_WAIT_OK, **_RUN_ERRORS})
async def join(thread_id: ThreadId, run_id: RunId, request: Request) -> StreamingResponse:
    lg, caller = control(request), caller_of(request)
    return await _wait(lg, caller, await lg.run(thread_id, run_id, caller=caller))


@router.get("/threads/{thread_id}/runs/{run_id}/stream", operation_id="join_run_stream",
            response_class=StreamingResponse, responses={**_SSE_OK, **_RUN_ERRORS})
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
    return _sse(lg, caller_of(request), thread_id, run_id, _checked_event_id(last_event_id), only=only)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202, operation_id="cancel_run",
             response_class=Response,
             responses={200: {"description": "wait=true: the run has ended", "content": {"application/json": {}}},
                        **errors(404, 409, 422)})
async def cancel(thread_id: ThreadId, run_id: RunId, request: Request, wait: bool = False,
                 action: Literal["interrupt", "rollback"] = "interrupt") -> Response:
    await control(request).cancel_run(thread_id, run_id, action, wait, caller=caller_of(request))
    return JSONResponse({}, status_code=200) if wait else Response(status_code=202)


@router.post("/threads/{thread_id}/runs/{run_id}/pause", status_code=202, operation_id="pause_run",
             response_model=None, responses={202: {"model": RunControlled, "description": "Pause requested"},
                                             **errors(404, 409, 422)})
async def pause(thread_id: ThreadId, run_id: RunId, request: Request) -> dict[str, Any]:
    """Our extension: pause at the next node boundary (continue with .../resume)."""
    return await control(request).pause_run(thread_id, run_id, caller=caller_of(request))


@router.post("/threads/{thread_id}/runs/{run_id}/resume", status_code=202, operation_id="resume_run",
             response_model=None, responses={202: {"model": RunControlled, "description": "Resumed"},
                                             **errors(404, 409, 422)})
async def resume(thread_id: ThreadId, run_id: RunId, request: Request) -> dict[str, Any]:
    """Our extension: continue a paused run from its last checkpoint."""
    return await control(request).resume_run(thread_id, run_id, caller=caller_of(request))
