"""Live events: Server-Sent Events and the WebSocket (events out, control messages in)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from redis_persist.api.auth import caller_of
from redis_persist.api.errors import error_body
from redis_persist.api.json_io import decode_json, json_text
from redis_persist.api.schemas import TASK_ID_PATTERN, errors
from redis_persist.core.auth import Caller
from redis_persist.core.errors import InvalidEventId, InvalidRequest, RedisPersistError, TaskNotFound
from redis_persist.core.events import is_final_event
from redis_persist.core.status import FINAL_STATUSES
from redis_persist.engine.control import NO_INPUT, TaskControl
from redis_persist.store.events import is_valid_event_id

router = APIRouter()
# Below redis-py's default socket timeout (5 s): a longer XREAD BLOCK on an idle task raised TimeoutError
# and cut every SSE / WebSocket stream of a paused, waiting or failed task after 5 s.
BLOCK_MS = 4_000
FINAL_RECHECK_SECONDS = 15
PAGE = 500

async def follow(control: TaskControl, task_id: str, after: str | None) -> AsyncIterator[dict[str, Any] | None]:
    """The task's events after `after`, then live ones; yields None as a keep-alive while idle.

    Ends after the event that makes the task final, or when the task is final/deleted and idle.
    """
    last = after
    while True:
        page = await control.events.read(task_id, after=last, count=PAGE)
        for event in page:
            last = event["id"]
            yield event
            if is_final_event(event):
                return
        if len(page) < PAGE:
            break
    while True:
        events = await control.events.wait(task_id, last or "0", BLOCK_MS)
        if not events:
            status = await control.store.status_of(task_id)
            if status is None or status in FINAL_STATUSES:
                return
            yield None
            continue
        for event in events:
            last = event["id"]
            yield event
            if is_final_event(event):
                return


def _checked_after(value: str | None) -> str | None:
    if value is not None and not is_valid_event_id(value):
        raise InvalidEventId(value)
    return value


# One Server-Sent Event (OpenAPI before 3.2 lets `schema` of text/event-stream describe each event).
SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "description": "the event id (send it back as Last-Event-ID)"},
        "event": {"type": "string", "description": "the event type"},
        "data": {"type": "string", "contentMediaType": "application/json", "description": "the event as JSON"},
    },
}
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Server-Sent Events, history then live, until the task is final; `: keep-alive` "
                         "comments while idle",
          "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}}},
    **errors(404, 422, 503),
}


@router.get("/api/tasks/{task_id}/events", operation_id="task_events", response_class=StreamingResponse,
            responses=SSE_RESPONSES)
async def sse(
    task_id: Annotated[str, Path(pattern=TASK_ID_PATTERN)],
    request: Request,
    last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
    after: Annotated[str | None, Query(description="resume after this event id (Last-Event-ID wins)")] = None,
) -> StreamingResponse:
    """Server-Sent Events: history after Last-Event-ID (or ?after=), then live, until the task is final."""
    control: TaskControl = request.app.state.services.control
    start = _checked_after(last_event_id or after)
    stored_id = (await control.get(task_id, caller=caller_of(request))).task_id

    async def frames() -> AsyncIterator[str]:
        async for event in follow(control, stored_id, start):
            if event is None:
                yield ": keep-alive\n\n"
            else:
                yield f"id: {event['id']}\nevent: {event['type']}\ndata: {json_text(event)}\n\n"

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _refusal(request: str | None, code: int, error: str, detail: str) -> dict[str, Any]:
    """A control message's failure, shaped as the REST error body: `error` names it, `detail` explains it."""
    return {"type": "reply", "ok": False, "request": request, "code": code, "error": error, "detail": detail}


BINARY_FRAME_REPLY = _refusal(None, 422, "invalid_request", "Binary frames are not accepted: send JSON as a text frame")


async def _handle_message(control: TaskControl, task_id: str, raw: str, caller: Caller) -> dict[str, Any]:
    try:
        message = decode_json(raw)
    except json.JSONDecodeError as error:
        return _refusal(None, 422, "json_invalid", f"Invalid JSON: {error}")
    kind = message.get("type") if isinstance(message, dict) else None
    if kind not in {"pause", "resume", "cancel", "input"}:
        return _refusal(kind if isinstance(kind, str) else None, 422, "invalid_request",
                        'Expected {"type": "pause"|"resume"|"cancel"} or {"type": "input", "input": ...}')
    try:
        if kind == "pause":
            outcome = await control.pause(task_id, caller=caller)
        elif kind == "cancel":
            outcome = await control.cancel(task_id, caller=caller)
        elif kind == "resume":
            outcome = await control.resume(task_id, message["input"] if "input" in message else NO_INPUT,
                                          caller=caller)
        else:
            if "input" not in message:
                raise InvalidRequest('An "input" message needs an "input" field')
            outcome = await control.resume(task_id, message["input"], caller=caller)
    except RedisPersistError as error:
        code, body = error_body(error)
        return {"type": "reply", "ok": False, "request": kind, "code": code, **body}
    except RedisError as error:
        return _refusal(kind, 503, "redis_unavailable", f"Redis unavailable: {error}")
    return {"type": "reply", "ok": True, "request": kind, "status": outcome.status.value, "message": outcome.message}


@router.websocket("/ws/tasks/{task_id}")
async def websocket(websocket: WebSocket, task_id: str, after: str | None = None) -> None:
    """History after `after`, then live events; control messages in, replies out."""
    control: TaskControl = websocket.app.state.services.control
    caller = caller_of(websocket)
    await websocket.accept()
    try:
        if not re.fullmatch(TASK_ID_PATTERN.strip("^$"), task_id):
            raise TaskNotFound(task_id)
        start = _checked_after(after)
        stored_id = (await control.get(task_id, caller=caller)).task_id
    except RedisPersistError as error:
        code, body = error_body(error)
        await websocket.send_text(json_text({"type": "error", **body}))
        await websocket.close(code=4000 + code, reason=str(error)[:120])
        return
    send_lock = asyncio.Lock()

    async def send(payload: dict[str, Any]) -> None:
        async with send_lock:
            await websocket.send_text(json_text(payload))

    async def pump_events() -> None:
        last = start
        while True:
            async for event in follow(control, stored_id, last):
                if event is not None:
                    last = event["id"]
                    await send(event)
            # The task is final (or gone): keep the socket open for the client, look again rarely.
            await asyncio.sleep(FINAL_RECHECK_SECONDS)

    async def read_messages() -> None:
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(frame.get("code", 1000))
            if frame.get("text") is not None:
                await send(await _handle_message(control, task_id, frame["text"], caller))
            else:  # a binary frame: answered like any other bad message, the socket stays open
                await send(BINARY_FRAME_REPLY)

    tasks = [asyncio.create_task(pump_events()), asyncio.create_task(read_messages())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if error is not None and not isinstance(error, (WebSocketDisconnect, RedisError)):
                raise error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
