"""create_app(settings): wires services, routes, health, metrics and the dashboard; no globals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from redis.exceptions import RedisError

from redis_persist.api import apikeys, langgraph, live, tasks
from redis_persist.api.auth import AuthMiddleware, declare_auth_answers
from redis_persist.api.errors import install_error_handlers
from redis_persist.api.poll_path import PollAnswer, TaskPollPath
from redis_persist.api.schemas import HealthResponse
from redis_persist.heap import tune_gc_after_startup
from redis_persist.services import Services
from redis_persist.settings import Settings

WEB_DIR = Path(__file__).parent / "web"


class PrometheusResponse(Response):
    media_type = CONTENT_TYPE_LATEST


def create_app(settings: Settings, run_worker: bool = True, tune_gc: bool = False) -> FastAPI:
    """The ASGI app of one replica: API, live events, dashboard, and (unless disabled) a worker.

    `tune_gc`: once started, freeze the startup heap and run GC collections on a timer (heap.tune_gc_after_startup);
    for the process's own entry point, `serve`."""
    services = Services.build(settings, run_worker)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        collector = tune_gc_after_startup() if tune_gc else None
        try:
            yield
        finally:
            await services.stop()
            if collector is not None:
                collector.stop()

    app = FastAPI(title="redis_persist", lifespan=lifespan)
    app.state.services = services
    install_error_handlers(app)
    # Inner first: the poll path needs the caller the auth layer resolves (Starlette wraps in reverse order).
    # `redis-persist serve` answers most task polls and list pages before this app (api/poll_protocol.py): a
    # middleware added here that changes responses must be mirrored there, or it will miss them.
    app.state.poll_answer = PollAnswer(services.control, settings.service_name, services.access)
    app.add_middleware(TaskPollPath, answer=app.state.poll_answer)
    # Every route, including ones added later, sits behind this one layer (api/auth.py).
    app.add_middleware(AuthMiddleware, access=services.access)
    app.include_router(tasks.router)
    app.include_router(live.router)
    app.include_router(apikeys.router)
    app.include_router(langgraph.router_for(app, services))
    if settings.is_auth_enabled:
        declare_auth_answers(app, settings.rate_limit_per_minute > 0)

    @app.get("/health", response_model=HealthResponse, operation_id="health",
             responses={503: {"model": HealthResponse, "description": "Redis unreachable"}})
    async def health() -> JSONResponse:
        try:
            await services.control.store.ping()
            redis_state, code = "ok", 200
        except (RedisError, OSError) as error:
            redis_state, code = f"unreachable: {error}", 503
        body = {"status": "ok" if code == 200 else "degraded", "service": settings.service_name, "redis": redis_state}
        return JSONResponse(body, status_code=code)

    @app.get("/metrics", response_class=PrometheusResponse, operation_id="metrics",
             responses={200: {"description": "Prometheus text exposition format"}})
    async def metrics() -> Response:
        registry = CollectorRegistry()
        by_status = Gauge("redis_persist_tasks", "Tasks by status (all replicas)", ["status"], registry=registry)
        for status, count in (await services.control.store.count_by_status()).items():
            by_status.labels(status.value).set(count)
        running_here = Gauge("redis_persist_replica_running_tasks", "Tasks this replica runs now",
                             ["replica"], registry=registry)
        running_here.labels(settings.service_name).set(services.worker.running_count if services.worker else 0)
        Gauge("redis_persist_replica_max_tasks", "Tasks this replica may run at once", ["replica"],
              registry=registry).labels(settings.service_name).set(settings.max_tasks if services.worker else 0)
        storage_errors = Counter("redis_persist_storage_errors", "Storage faults (Redis unreachable, out of memory, "
                                 "...) running tasks waited out on this replica, by operation",
                                 ["replica", "operation"], registry=registry)
        for operation, count in services.storage_faults.by_operation.items():
            storage_errors.labels(settings.service_name, operation).inc(count)
        return PrometheusResponse(generate_latest(registry))

    @app.get("/", include_in_schema=False)
    async def dashboard(_request: Request) -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app
