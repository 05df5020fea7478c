"""REST routes for tasks and graphs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request

from redis_persist.api.auth import caller_of
from redis_persist.api.schemas import (
    TASK_ID_PATTERN,
    ControlResponse,
    ExecuteRequest,
    ExecuteResponse,
    ResumeRequest,
)
from redis_persist.core.auth import Caller
from redis_persist.core.status import TaskStatus
from redis_persist.engine.control import NO_INPUT, Outcome, TaskControl

router = APIRouter()
TaskId = Annotated[str, Path(pattern=TASK_ID_PATTERN)]


def _control(request: Request) -> TaskControl:
    return request.app.state.services.control


def _node(request: Request) -> str:
    return request.app.state.services.settings.service_name


def _shows_tenant(caller: Caller) -> bool:
    # Admins with keys see every tenant, so each task names its own; auth off keeps today's shape.
    return caller.is_admin and caller.key_id is not None


def _reply(outcome: Outcome) -> ControlResponse:
    return ControlResponse(message=outcome.message, status=outcome.status.value, checkpoint=outcome.checkpoint)


@router.post("/api/tasks/execute", status_code=202, response_model=ExecuteResponse)
async def execute(body: ExecuteRequest, request: Request) -> ExecuteResponse:
    """Start a task; with a client task_id the same body again returns the same task."""
    task, created = await _control(request).execute(body.graph_name, body.initial_state, body.task_id,
                                                    caller=caller_of(request))
    message = "Task queued" if created else "Task already exists (same request)"
    return ExecuteResponse(task_id=task.public_id, status=task.status.value, message=message)


@router.get("/api/tasks")
async def list_tasks(
    request: Request,
    status: TaskStatus | None = None,
    graph_name: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    """Tasks newest first, filtered by status and/or graph, a page at a time."""
    caller = caller_of(request)
    tasks, next_cursor = await _control(request).list(status, graph_name, limit, cursor, caller=caller)
    node, with_tenant = _node(request), _shows_tenant(caller)
    return {"tasks": [task.public(node, with_tenant) for task in tasks], "next_cursor": next_cursor}


@router.get("/api/tasks/{task_id}")
async def get_task(task_id: TaskId, request: Request) -> dict[str, Any]:
    caller = caller_of(request)
    task = await _control(request).get(task_id, caller=caller)
    return task.public(_node(request), _shows_tenant(caller))


@router.post("/api/tasks/{task_id}/pause", status_code=202, response_model=ControlResponse)
async def pause(task_id: TaskId, request: Request) -> ControlResponse:
    return _reply(await _control(request).pause(task_id, caller=caller_of(request)))


@router.post("/api/tasks/{task_id}/resume", status_code=202, response_model=ControlResponse)
async def resume(
    task_id: TaskId, request: Request, body: Annotated[ResumeRequest | None, Body()] = None
) -> ControlResponse:
    answer = body.input if body is not None and "input" in body.model_fields_set else NO_INPUT
    return _reply(await _control(request).resume(task_id, answer, caller=caller_of(request)))


@router.post("/api/tasks/{task_id}/cancel", status_code=202, response_model=ControlResponse)
async def cancel(task_id: TaskId, request: Request) -> ControlResponse:
    return _reply(await _control(request).cancel(task_id, caller=caller_of(request)))


@router.delete("/api/tasks/{task_id}")
async def delete(task_id: TaskId, request: Request) -> dict[str, str]:
    await _control(request).delete(task_id, caller=caller_of(request))
    return {"message": "Task deleted", "task_id": task_id}


@router.get("/api/tasks/{task_id}/history")
async def history(
    task_id: TaskId, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """The task's checkpoints, newest first."""
    checkpoints = await _control(request).history(task_id, limit, caller=caller_of(request))
    return {"task_id": task_id, "checkpoints": checkpoints}


@router.get("/api/graphs")
async def graphs(request: Request) -> dict[str, Any]:
    return {"graphs": [graph.describe() for graph in _control(request).graphs.all()]}
