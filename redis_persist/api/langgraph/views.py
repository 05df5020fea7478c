"""Answer bodies of the LangGraph Server API as /openapi.json declares them (documentation only: the routes
return plain JSON; every view allows more keys, as LangGraph's server adds some between versions)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _View(BaseModel):
    model_config = ConfigDict(extra="allow")


class AssistantView(_View):
    assistant_id: str = Field(description="uuid5 of the graph id, as LangGraph derives it")
    graph_id: str
    name: str
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    version: int
    created_at: str
    updated_at: str
    description: str | None


class ThreadView(_View):
    thread_id: str
    created_at: str | None
    updated_at: str | None
    metadata: dict[str, Any]
    status: Literal["idle", "busy", "interrupted", "error"]
    values: Any = Field(description="the thread's current state values (null before its first run)")
    interrupts: dict[str, Any]
    error: Any
    tenant: str | None = Field(default=None, description="shown to admins with a key only")


class RunView(_View):
    run_id: str
    thread_id: str
    assistant_id: str
    status: Literal["pending", "running", "error", "success", "timeout", "interrupted"]
    metadata: dict[str, Any]
    kwargs: dict[str, Any]
    multitask_strategy: str
    created_at: str
    updated_at: str
    task_status: str = Field(description="our extension: the status of the task behind the run")


class CheckpointRef(_View):
    checkpoint_id: str | None
    thread_id: str | None
    checkpoint_ns: str | None


class ThreadStateView(_View):
    values: Any
    next: list[str]
    tasks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    created_at: str | None
    checkpoint: CheckpointRef | None
    parent_checkpoint: CheckpointRef | None
    interrupts: list[Any]
    checkpoint_id: str | None
    parent_checkpoint_id: str | None


class StateUpdated(_View):
    checkpoint: CheckpointRef | None
    checkpoint_id: str | None


class RunControlled(_View):
    """Our pause/resume extension: what happened to the run's task."""

    message: str
    status: str


def success(model: Any, description: str = "Successful Response") -> dict[int | str, dict[str, Any]]:
    """`responses=` entry declaring a route's 200 body (use with response_model=None)."""
    return {200: {"model": model, "description": description}}
