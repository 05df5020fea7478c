"""Request and response bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TASK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


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
    status: str
    message: str


class ControlResponse(BaseModel):
    message: str
    status: str
    checkpoint: str | None = None
