"""Every setting of the service: its environment variable and default, in one class."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from redis_persist.store.connections import RedisTarget


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
    http_keep_alive_seconds: float = Field(
        default=75.0, gt=0, le=3600,
        description="How long an idle HTTP keep-alive connection stays open; longer than any client's or "
        "proxy's own idle limit (httpx 5 s, nginx upstream 60 s), so the server never closes a connection "
        "a client is about to reuse.",
    )
    max_initial_state_bytes: int = Field(default=1_048_576, ge=1, description="Largest accepted initial_state (JSON bytes).")
    finished_ttl_seconds: float = Field(
        default=0, ge=0, description="Finished tasks are removed with their events and checkpoints this long after they end; 0 keeps them."
    )
    events_max_per_task: int = Field(default=10_000, ge=10, description="Events kept per task (oldest trimmed).")
    redis_max_connections: int = Field(default=1000, ge=10, description="Connections in the shared Redis pool.")
    redis_retries: int = Field(
        default=5, ge=0, le=100,
        description="Re-sends of a Redis command after a connection error (backoff 0.1 s, doubling, at most 2 s).",
    )
    redis_health_check_seconds: float = Field(
        default=5.0, ge=0, le=3600,
        description="A pooled connection idle longer than this is PINGed before use; 0 disables.",
    )
    min_replicas: int = Field(
        default=0, ge=0, le=100,
        description="Replicas that must acknowledge each checkpoint (Redis WAIT) before the next node starts; 0: no wait.",
    )
    replica_ack_timeout_seconds: float = Field(
        default=5.0, gt=0, le=3600,
        description="How long a checkpoint waits for min_replicas acknowledgements before the node boundary fails.",
    )
    finished_compaction: bool = Field(
        default=True,
        description="A completed or cancelled task of its own keeps its record, events and a summary of its final "
        "checkpoint; its checkpoints are deleted (history then lists the final one only). false keeps them all.",
    )
    checkpoint_history: Literal["all", "latest"] = Field(
        default="all",
        description="'all' keeps every checkpoint of a thread (history, time travel, rollback); 'latest' keeps "
        "only the newest one per thread (less Redis memory and work; takeover still resumes from it).",
    )

    auth: Literal["api_key", "off"] | None = Field(
        default=None,
        description="'api_key' requires an API key on every route but /health, /metrics and the dashboard page; "
        "'off' runs open. Unset: open, and `serve` refuses a non-loopback address.",
    )
    admin_key: SecretStr | None = Field(
        default=None, description="Bootstrap admin key (tenant 'default'); use it to create the real keys."
    )
    tenant_max_running: int = Field(
        default=0, ge=0, description="Tasks of one tenant running at once across all replicas; 0 = no cap."
    )
    rate_limit_per_minute: int = Field(
        default=0, ge=0, description="Requests one API key may make per minute (429 beyond); 0 = no limit."
    )

    @field_validator("redis_url")
    @classmethod
    def _parse_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        RedisTarget.parse(value)  # raises ValueError naming what is wrong
        return value

    @property
    def is_auth_enabled(self) -> bool:
        return self.auth == "api_key"

    @field_validator("auth", "admin_key", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("admin_key", mode="after")
    @classmethod
    def _strong_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the admin key must be at least 16 characters")
        return value

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
