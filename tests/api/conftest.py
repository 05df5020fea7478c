"""The fast tier: the FastAPI app in this process, its lifespan run by asgi-lifespan, driven through httpx's
ASGI transport (httpx-ws's subclass of it, which adds WebSockets) against the session's real Redis.
No subprocess and no socket: for the REST/SSE/WebSocket contract.

What needs a process stays in tests/e2e: kill -9, several replicas, nginx, signals, live SSE streams
(the ASGI transport hands over a response once it is complete), real sockets and their timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx_ws.transport import ASGIWebSocketTransport

from redis_persist.app import create_app
from redis_persist.settings import Settings

# As tests/conftest.py's start_service: a short lease, so nothing waits 15 s for one to expire.
DEFAULT_ENV = {"REDIS_PERSIST_LEASE_TTL_SECONDS": "3"}


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings from exactly these variables, as `redis-persist serve` would read them (ours are not consulted)."""
    prefix = Settings.model_config["env_prefix"]
    variables = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        variables[alias or prefix + name.upper()] = alias or name
    unknown = set(env) - set(variables)
    if unknown:
        raise ValueError(f"not a setting: {sorted(unknown)}")
    # model_validate, not Settings(): the constructor would also read this process's environment.
    return Settings.model_validate({variables[variable]: value for variable, value in env.items()})


@dataclass
class InProcessService:
    """One replica's app (API + worker) running in the test's event loop, and an HTTP client for it."""

    name: str
    settings: Settings
    app: FastAPI
    client: httpx.AsyncClient


StartApp = Callable[..., Awaitable[InProcessService]]


async def _serve(app: FastAPI, ready: asyncio.Future[httpx.AsyncClient], stop: asyncio.Event) -> None:
    """Run the app's lifespan and a client for it until `stop`: entered and left in this one task, as anyio's
    task groups (asgi-lifespan's, httpx-ws's) require, whichever task started the service."""
    try:
        # Shutdown waits for the worker's claim read (up to 1 s) and its hand-back of running tasks: on a loaded
        # machine that can outlast asgi-lifespan's 5 s default.
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
            # httpx's ASGI transport for HTTP, plus WebSockets (httpx-ws); the client enters and closes it.
            transport = ASGIWebSocketTransport(app=manager.app, initial_receive_timeout=10)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc", timeout=10) as client:
                ready.set_result(client)
                await stop.wait()
    except BaseException as error:
        if not ready.done():
            ready.set_exception(error)
        raise


@pytest.fixture
async def start_app(clean_redis: str) -> AsyncIterator[StartApp]:
    """Factory for in-process services on the emptied session Redis; each is shut down (lifespan) at teardown."""
    stop = asyncio.Event()
    running: list[asyncio.Task[None]] = []

    async def start(env: Mapping[str, str] | None = None, name: str = "svc",
                    run_worker: bool = True) -> InProcessService:
        settings = settings_from_env({"REDIS_URL": clean_redis, "SERVICE_NAME": name, **DEFAULT_ENV, **(env or {})})
        app = create_app(settings, run_worker=run_worker)
        ready: asyncio.Future[httpx.AsyncClient] = asyncio.get_running_loop().create_future()
        running.append(asyncio.create_task(_serve(app, ready, stop), name=f"in-process {name}"))
        return InProcessService(name, settings, app, await ready)

    yield start
    stop.set()
    await asyncio.gather(*running)


@pytest.fixture
async def api(start_app: StartApp) -> InProcessService:
    """One in-process service (API + worker) with the default settings."""
    return await start_app()
