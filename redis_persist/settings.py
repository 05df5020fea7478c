"""Every setting of the service: its environment variable and default, in one class."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings, read from `REDIS_URL`, `SERVICE_NAME` and `REDIS_PERSIST_*`."""

    model_config = SettingsConfigDict(env_prefix="REDIS_PERSIST_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        description="Redis server to use; unset starts an embedded one.",
    )
    service_name: str = Field(
        default_factory=socket.gethostname,
        validation_alias="SERVICE_NAME",
        description="Name of this replica; must be unique among replicas.",
    )
    data_dir: Path = Field(
        default=Path(".redis-persist-data"),
        description="Where the embedded Redis keeps its AOF.",
    )
    graphs: str | None = Field(
        default=None,
        description="Extra graphs: a JSON object name -> 'module:attr' or a langgraph.json path.",
    )
    max_tasks: int = Field(default=100, ge=1, description="Tasks one replica runs at once.")
    lease_ttl_seconds: float = Field(
        default=15.0, gt=0.5, le=3600, description="Time after which a dead replica's tasks are taken over."
    )
    node_timeout_seconds: float | None = Field(
        default=3600.0,
        gt=0,
        description="Wall-clock limit of one async node attempt; the task pauses when exceeded. Empty disables.",
    )
    max_initial_state_bytes: int = Field(default=1_048_576, ge=1, description="Largest accepted initial_state (JSON bytes).")
    finished_ttl_seconds: float = Field(
        default=0, ge=0, description="Finished tasks are removed with their events and checkpoints this long after they end; 0 keeps them."
    )
    events_max_per_task: int = Field(default=10_000, ge=10, description="Events kept per task (oldest trimmed).")
    redis_max_connections: int = Field(default=1000, ge=10, description="Connections in the shared Redis pool.")

    webhook_allow_loopback: bool = Field(
        default=False, description="Let run webhooks target loopback addresses (local use and tests)."
    )
    webhook_allowed_domains: str = Field(
        default="", description="Comma-separated hosts (`*.example.com` wildcards) run webhooks may target; empty: any public host."
    )
    webhook_max_attempts: int = Field(default=10, ge=1, description="Delivery attempts of one run webhook (backoff doubles from 1 s).")

    @field_validator("node_timeout_seconds", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        return None if value in ("", "none", "None", "0", 0) else value
