"""Domain errors to HTTP, in one place; also FastAPI's own 405 and 422 answers."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from redisvl.exceptions import RedisVLError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from redis_persist.api.json_io import ReadableJSONResponse
from redis_persist.core import errors
from redis_persist.core.payload import MAX_NESTING_DEPTH, readable
from redis_persist.engine.storage_faults import storage_fault

STATUS_CODES: dict[type[errors.RedisPersistError], int] = {
    errors.TaskNotFound: 404,
    errors.GraphNotFound: 404,
    errors.IllegalTransition: 409,
    errors.TaskConflict: 409,
    errors.StateTooLarge: 413,
    errors.InvalidRequest: 422,
    errors.InvalidPayload: 422,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.ResourceNotFound: 404,
}

ERROR_CODES: dict[type[errors.RedisPersistError], str] = {
    errors.TaskNotFound: "task_not_found",
    errors.GraphNotFound: "graph_not_found",
    errors.IllegalTransition: "illegal_transition",
    errors.TaskConflict: "task_conflict",
    errors.StateTooLarge: "state_too_large",
    errors.InvalidRequest: "invalid_request",
    errors.InvalidPayload: "invalid_payload",
    errors.Unauthorized: "unauthorized",
    errors.Forbidden: "forbidden",
    errors.ResourceNotFound: "not_found",
}


def error_body(error: errors.RedisPersistError) -> tuple[int, dict[str, object]]:
    """(HTTP status, JSON body) for a domain error; also used for WebSocket replies."""
    # The closest listed class decides, so a subclass (InvalidEventId) answers like its parent.
    kind = next((cls for cls in type(error).__mro__ if cls in STATUS_CODES), type(error))
    body: dict[str, object] = {"detail": str(error), "error": ERROR_CODES.get(kind, "error")}
    if isinstance(error, errors.GraphNotFound):
        body["available_graphs"] = error.available
    if isinstance(error, errors.IllegalTransition):
        body["status"] = error.current
    if isinstance(error, errors.InvalidPayload):
        body["path"] = error.path
    return STATUS_CODES.get(kind, 400), body


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (Starlette's 405 names only the first route's).

    Asks the router itself, method by method, so nested routers count too.
    """
    routes = request.app.router.routes
    allowed = {"OPTIONS"}
    for method in HTTP_METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            allowed.add(method)
    return sorted(allowed)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.RedisPersistError)
    async def _domain(_request: Request, error: errors.RedisPersistError) -> Response:
        status, body = error_body(error)
        return ReadableJSONResponse(body, status_code=status)

    @app.exception_handler(RedisError)
    async def _redis(_request: Request, error: RedisError) -> Response:
        return _redis_unavailable(error)

    @app.exception_handler(RedisVLError)
    async def _redis_behind_the_saver(_request: Request, error: RedisVLError) -> Response:
        # The checkpointer (history, delete) wraps Redis errors in redisvl's; other redisvl errors are bugs.
        fault = storage_fault(error)
        if fault is None:
            raise error
        return _redis_unavailable(fault)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> Response:
        # FastAPI's own answer echoes the input as is: a lone surrogate or deep nesting in it made it a 500.
        detail = jsonable_encoder(readable(list(error.errors()), max_depth=MAX_NESTING_DEPTH))
        return ReadableJSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, _error: HTTPException) -> Response:
        headers = {"Allow": ", ".join(allowed_methods(request))}
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=headers)
        return ReadableJSONResponse({"detail": "Method Not Allowed", "error": "method_not_allowed"},
                                    status_code=405, headers=headers)


def _redis_unavailable(error: BaseException) -> Response:
    return ReadableJSONResponse({"detail": f"Redis unavailable: {error}", "error": "redis_unavailable"},
                                status_code=503)
