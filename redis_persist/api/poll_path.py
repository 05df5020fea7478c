"""`GET /api/tasks/{id}` answered below FastAPI's routing: the one request pollers repeat every 0.1 s.

FastAPI's route matching, parameter validation and dependency solving cost more CPU per request than
reading the task from Redis (bench/README.md, "Poll path"). A plain, successful read of an existing task is
answered here with the same bytes, ETag and headers the route in api/tasks.py gives; anything else — an
unusual query or header, an id the route would refuse, a missing task, a storage fault — goes on to that
route, which owns every error answer. Sits inside AuthMiddleware, so the caller is already resolved.
"""

from __future__ import annotations

import re

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from redis_persist.api.auth import CALLER_SCOPE_KEY
from redis_persist.api.etag import conditional
from redis_persist.api.json_io import ReadableJSONResponse
from redis_persist.api.schemas import TASK_ID_PATTERN
from redis_persist.api.tasks import shows_tenant
from redis_persist.core.errors import RedisPersistError
from redis_persist.engine.control import TaskControl

_TASK_PATH = re.compile(r"/api/tasks/(" + TASK_ID_PATTERN.removeprefix("^").removesuffix("$") + ")")
_IF_NONE_MATCH = b"if-none-match"
_MAX_IF_NONE_MATCH = 2000  # the route's Header(max_length=...): longer ones get its 422


class TaskPollPath:
    """ASGI layer answering a plain `GET /api/tasks/{id}` of an existing task; the rest passes through."""

    def __init__(self, app: ASGIApp, control: TaskControl, node: str) -> None:
        self.app = app
        self.control = control
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _TASK_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "GET" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        if_none_match = None
        for name, value in scope["headers"]:
            if name == _IF_NONE_MATCH:
                if if_none_match is not None or len(value) > _MAX_IF_NONE_MATCH:
                    await self.app(scope, receive, send)  # repeated or over-long: the route decides
                    return
                if_none_match = value.decode("latin-1")
        caller = scope[CALLER_SCOPE_KEY]
        try:
            task = await self.control.get(match.group(1), caller=caller)
        except (RedisPersistError, RedisError):  # missing, forbidden, storage fault: the route gives the error answer
            await self.app(scope, receive, send)
            return
        response = conditional(if_none_match, ReadableJSONResponse(task.public(self.node, shows_tenant(caller))))
        await response(scope, receive, send)
