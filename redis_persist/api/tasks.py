"""REST routes for tasks and graphs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response

from redis_persist.api.auth import caller_of
from redis_persist.api.etag import NOT_MODIFIED, conditional
from redis_persist.api.json_io import JSONBodyRoute, ReadableJSONResponse
from redis_persist.api.schemas import (
    TASK_ID_PATTERN,
    ControlResponse,
    DeleteResponse,
    ExecuteRequest,
    ExecuteResponse,
    GraphsResponse,
    HistoryResponse,
    ResumeRequest,
    TaskPage,
    TaskView,
    errors,
)
from redis_persist.core.auth import Caller
from redis_persist.core.status import TaskStatus
from redis_persist.engine.control import NO_INPUT, Outcome, TaskControl

router = APIRouter(route_class=JSONBodyRoute, responses=errors(503))
TaskId = Annotated[str, Path(pattern=TASK_ID_PATTERN)]

# OpenAPI links: what a client (or a stateful fuzzer) can call next with the task_id of a 202.
_TASK_ID_FROM_BODY = {"task_id": "$response.body#/task_id"}
TASK_LINKS = {
    name: {"operationId": operation, "parameters": _TASK_ID_FROM_BODY}
    for name, operation in [("GetTask", "get_task"), ("PauseTask", "pause_task"), ("ResumeTask", "resume_task"),
                            ("CancelTask", "cancel_task"), ("DeleteTask", "delete_task"),
                            ("TaskHistory", "task_history"), ("TaskEvents", "task_events")]
}


def _control(request: Request) -> TaskControl:
    return request.app.state.services.control


def _node(request: Request) -> str:
    return request.app.state.services.settings.service_name


def shows_tenant(caller: Caller) -> bool:
    """Whether answers name each task's tenant."""
    # Admins with keys see every tenant, so each task names its own; auth off keeps today's shape.
    return caller.is_admin and caller.key_id is not None


def _reply(outcome: Outcome) -> ControlResponse:
    return ControlResponse(message=outcome.message, status=outcome.status, checkpoint=outcome.checkpoint)


@router.post("/api/tasks/execute", status_code=202, response_model=ExecuteResponse, operation_id="execute_task",
             responses={202: {"links": TASK_LINKS}, **errors(404, 409, 413, 422)})
async def execute(body: ExecuteRequest, request: Request) -> ExecuteResponse:
    """Start a task; with a client task_id the same body again returns the same task."""
    created = await _control(request).execute(body.graph_name, body.initial_state, body.task_id,
                                              caller=caller_of(request))
    message = "Task queued" if created.is_new else "Task already exists (same request)"
    return ExecuteResponse(task_id=created.public_id, status=created.status, message=message)


@router.get("/api/tasks", response_model=TaskPage, operation_id="list_tasks", responses=errors(422))
async def list_tasks(
    request: Request,
    status: TaskStatus | None = None,
    graph_name: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
) -> ReadableJSONResponse:
    """Tasks newest first, filtered by status and/or graph, a page at a time."""
    caller = caller_of(request)
    tasks, next_cursor = await _control(request).list(status, graph_name, limit, cursor, caller=caller)
    node, with_tenant = _node(request), shows_tenant(caller)
    return ReadableJSONResponse({"tasks": [task.public(node, with_tenant) for task in tasks],
                                 "next_cursor": next_cursor})


@router.get("/api/tasks/{task_id}", response_model=TaskView, operation_id="get_task",
            responses={**NOT_MODIFIED, **errors(404, 422)})
async def get_task(
    task_id: TaskId, request: Request,
    if_none_match: Annotated[str | None, Header(max_length=2000, description="ETag of a previous answer")] = None,
) -> Response:
    """The task; with If-None-Match holding the ETag of the current answer, 304 and no body."""
    caller = caller_of(request)
    task = await _control(request).get(task_id, caller=caller)
    return conditional(if_none_match, ReadableJSONResponse(task.public(_node(request), shows_tenant(caller))))


@router.post("/api/tasks/{task_id}/pause", status_code=202, response_model=ControlResponse, operation_id="pause_task",
             responses=errors(404, 409, 422))
async def pause(task_id: TaskId, request: Request) -> ControlResponse:
    return _reply(await _control(request).pause(task_id, caller=caller_of(request)))


@router.post("/api/tasks/{task_id}/resume", status_code=202, response_model=ControlResponse,
             operation_id="resume_task", responses=errors(404, 409, 413, 422))
async def resume(
    task_id: TaskId, request: Request, body: Annotated[ResumeRequest | None, Body()] = None
) -> ControlResponse:
    answer = body.input if body is not None and "input" in body.model_fields_set else NO_INPUT
    return _reply(await _control(request).resume(task_id, answer, caller=caller_of(request)))


@router.post("/api/tasks/{task_id}/cancel", status_code=202, response_model=ControlResponse,
             operation_id="cancel_task", responses=errors(404, 409, 422))
async def cancel(task_id: TaskId, request: Request) -> ControlResponse:
    return _reply(await _control(request).cancel(task_id, caller=caller_of(request)))


@router.delete("/api/tasks/{task_id}", response_model=DeleteResponse, operation_id="delete_task",
               responses=errors(404, 409, 422))
async def delete(task_id: TaskId, request: Request) -> DeleteResponse:
    await _control(request).delete(task_id, caller=caller_of(request))
    return DeleteResponse(message="Task deleted", task_id=task_id)


@router.get("/api/tasks/{task_id}/history", response_model=HistoryResponse, operation_id="task_history",
            responses=errors(404, 422))
async def history(
    task_id: TaskId, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> ReadableJSONResponse:
    """The task's checkpoints, newest first."""
    checkpoints = await _control(request).history(task_id, limit, caller=caller_of(request))
    return ReadableJSONResponse({"task_id": task_id, "checkpoints": checkpoints})


@router.get("/api/graphs", response_model=GraphsResponse, operation_id="list_graphs")
async def graphs(request: Request) -> dict[str, Any]:
    return {"graphs": [graph.describe() for graph in _control(request).graphs.all()]}
