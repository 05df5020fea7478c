"""Request and response bodies, and the error answers each route declares in /openapi.json."""

from __future__ import annotations

from typing import Any

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from redis_persist.core.status import TaskStatus

TASK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
UserAction = Literal["pause", "resume", "answer", "cancel", "delete"]  # core.status.USER_ACTIONS


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graph_name: str = Field(min_length=1, max_length=200)
    initial_state: dict[str, Any] = Field(default_factory=dict)
    task_id: str | None = Field(default=None, pattern=TASK_ID_PATTERN)


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Any = None


class ExecuteResponse(BaseModel):
    task_id: str
    status: TaskStatus
    message: str


class ControlResponse(BaseModel):
    message: str
    status: TaskStatus
    checkpoint: str | None = None


class TaskView(BaseModel):
    """A task as GET /api/tasks/{id} shows it (core.task.Task.public)."""

    task_id: str
    graph_name: str
    status: TaskStatus
    progress: float
    current_node: str | None
    checkpoint: str | None
    checkpoint_id: str | None
    state: Any
    interrupt: Any
    error: str | None
    attempts: int
    owner: str | None
    node: str
    created_at: str
    updated_at: str
    completed_nodes: list[str]
    pause_requested: bool
    thread_id: str = Field(description="The checkpointer thread: the task's own id, or the LangGraph thread a run "
                                       "belongs to")
    allowed_actions: list[UserAction] = Field(
        description="The user actions legal in the task's status now, in this order: pause (POST .../pause), "
                    "resume (POST .../resume without input: paused, failed), answer (POST .../resume with input: "
                    "waiting_input), cancel (POST .../cancel), delete (DELETE /api/tasks/{id}). "
                    "From the one table of moves (core/status.py); a role may still forbid one.")
    tenant: str | None = Field(default=None, description="The task's tenant; shown to admins only")


class TaskPage(BaseModel):
    tasks: list[TaskView]
    next_cursor: str | None


class DeleteResponse(BaseModel):
    message: str
    task_id: str


class CheckpointView(BaseModel):
    checkpoint_id: str
    parent_checkpoint_id: str | None
    step: int | None
    source: str | None
    created_at: str | None
    values: dict[str, Any]


class HistoryResponse(BaseModel):
    task_id: str
    checkpoints: list[CheckpointView]


class EdgeView(BaseModel):
    source: str
    target: str
    conditional: bool


class GraphView(BaseModel):
    name: str
    nodes: list[str]
    edges: list[EdgeView]


class GraphsResponse(BaseModel):
    graphs: list[GraphView]


class HealthResponse(BaseModel):
    status: str
    service: str
    redis: str


class ValidationIssue(BaseModel):
    """One problem FastAPI found while validating a request (its standard 422 shape)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every error answer: `detail` says what is wrong (a list only for FastAPI's request validation),
    `error` is a stable code; the other fields appear where they apply."""

    detail: str | list[ValidationIssue]
    error: str | None = None
    available_graphs: list[str] | None = Field(default=None, description="graph_not_found: the registered graphs")
    status: str | None = Field(default=None, description="illegal_transition: the task's status")
    path: str | None = Field(default=None, description="invalid_payload: where in the JSON the problem is")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may answer with these error statuses."""
    described = {
        401: "Auth on: missing or unknown API key",
        403: "Auth on: the key's role may not do this",
        404: "Unknown task or graph",
        409: "Illegal move for the task's status, or same task_id with another body",
        413: "initial_state / input over REDIS_PERSIST_MAX_INITIAL_STATE_BYTES",
        422: "Malformed request: body, parameters, nesting depth, invalid Unicode, bad event id",
        429: "Auth on, REDIS_PERSIST_RATE_LIMIT_PER_MINUTE set: over the key's rate (see Retry-After)",
        503: "Redis unavailable",
    }
    return {code: {"model": ErrorResponse, "description": described[code]} for code in codes}
