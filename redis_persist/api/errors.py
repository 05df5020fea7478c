"""Domain errors to HTTP, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from redis_persist.core import errors

STATUS_CODES: dict[type[errors.RedisPersistError], int] = {
    errors.TaskNotFound: 404,
    errors.GraphNotFound: 404,
    errors.IllegalTransition: 409,
    errors.TaskConflict: 409,
    errors.StateTooLarge: 413,
    errors.InvalidRequest: 422,
    errors.ResourceNotFound: 404,
}

ERROR_CODES: dict[type[errors.RedisPersistError], str] = {
    errors.TaskNotFound: "task_not_found",
    errors.GraphNotFound: "graph_not_found",
    errors.IllegalTransition: "illegal_transition",
    errors.TaskConflict: "task_conflict",
    errors.StateTooLarge: "state_too_large",
    errors.InvalidRequest: "invalid_request",
    errors.ResourceNotFound: "not_found",
}


def error_body(error: errors.RedisPersistError) -> tuple[int, dict[str, object]]:
    """(HTTP status, JSON body) for a domain error; also used for WebSocket replies."""
    kind = type(error)
    body: dict[str, object] = {"detail": str(error), "error": ERROR_CODES.get(kind, "error")}
    if isinstance(error, errors.GraphNotFound):
        body["available_graphs"] = error.available
    if isinstance(error, errors.IllegalTransition):
        body["status"] = error.current
    return STATUS_CODES.get(kind, 400), body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.RedisPersistError)
    async def _domain(_request: Request, error: errors.RedisPersistError) -> JSONResponse:
        status, body = error_body(error)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RedisError)
    async def _redis(_request: Request, error: RedisError) -> JSONResponse:
        return JSONResponse({"detail": f"Redis unavailable: {error}", "error": "redis_unavailable"}, status_code=503)
