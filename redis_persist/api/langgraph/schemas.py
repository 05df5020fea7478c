"""Request bodies of the LangGraph Server API, as its clients (langgraph-sdk, RemoteGraph) send them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Thread and run ids: LangGraph uses UUIDs; any short id of these characters is accepted. No '.': it
# separates the tenant from the id in store ids (core/auth.scoped_id), so a client id must not contain it.
ID_PATTERN = r"^[A-Za-z0-9_:-]{1,128}$"
StreamMode = Literal["values", "updates", "custom", "messages-tuple", "messages", "tasks", "checkpoints", "debug"]


CHECKPOINT_ID_RE = re.compile(ID_PATTERN)


def _checkpoint_ref(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A `checkpoint` object: only its checkpoint_id is read, so that must be an id (or absent)."""
    checkpoint_id = (value or {}).get("checkpoint_id")
    if checkpoint_id is not None and not (isinstance(checkpoint_id, str) and CHECKPOINT_ID_RE.match(checkpoint_id)):
        raise ValueError(f"checkpoint.checkpoint_id must be a string matching {ID_PATTERN}")
    return value


class _Body(BaseModel):
    # Clients send options we do not act on (durability, feedback_keys, ...): accepted and ignored.
    model_config = ConfigDict(extra="ignore")

    @field_validator("checkpoint", check_fields=False)
    @classmethod
    def _valid_checkpoint(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _checkpoint_ref(value)


class CommandBody(_Body):
    resume: Any = None
    update: Any = None
    goto: Any = None


class RunCreate(_Body):
    assistant_id: str = Field(min_length=1, max_length=200)
    input: Any = None
    command: CommandBody | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    checkpoint_id: str | None = Field(default=None, pattern=ID_PATTERN)
    checkpoint: dict[str, Any] | None = None
    webhook: str | None = Field(default=None, max_length=2000)
    stream_resumable: bool = False

    def as_options(self) -> dict[str, Any]:
        """The run options as the engine takes them (command without its unset fields)."""
        options = self.model_dump(exclude={"command"})
        if self.command is not None:
            options["command"] = self.command.model_dump(exclude_unset=True)
        return options


class ThreadCreate(_Body):
    thread_id: str | None = Field(default=None, pattern=ID_PATTERN)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadPatch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadSearch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    values: dict[str, Any] = Field(default_factory=dict)
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class AssistantSearch(_Body):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class StateUpdate(_Body):
    values: Any = None
    as_node: str | None = None
    checkpoint_id: str | None = Field(default=None, pattern=ID_PATTERN)
    checkpoint: dict[str, Any] | None = None


class HistoryQuery(_Body):
    limit: int = Field(default=10, ge=1, le=1000)
    before: dict[str, Any] | Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    checkpoint: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("before")
    @classmethod
    def _valid_before(cls, value: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
        return _checkpoint_ref(value) if isinstance(value, dict) else value


class StateAtCheckpoint(_Body):
    checkpoint: dict[str, Any] | None = None

    def checkpoint_id(self) -> str | None:
        return (self.checkpoint or {}).get("checkpoint_id")
