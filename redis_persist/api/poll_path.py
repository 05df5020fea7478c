"""`GET /api/tasks/{id}` answered below FastAPI's routing: the one request pollers repeat every 0.1 s.

FastAPI's route matching, parameter validation and dependency solving cost more CPU per request than
reading the task from Redis (bench/README.md, "Poll path"). A plain, successful read of an existing task is
answered here with the same bytes, ETag and headers the route in api/tasks.py gives; anything else — an
unusual query or header, an id the route would refuse, a missing task, a storage fault — goes on to that
route, which owns every error answer. `PollAnswer` is used twice: by uvicorn's protocol before any ASGI
layer (api/poll_protocol.py, served replicas), and by `TaskPollPath` inside the auth layer (the requests the
protocol leaves to the app, and in-process clients).
"""

from __future__ import annotations

import re

from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from redis_persist.api.auth import CALLER_SCOPE_KEY, resolve_caller
from redis_persist.api.etag import conditional
from redis_persist.api.json_io import ReadableJSONResponse
from redis_persist.api.schemas import TASK_ID_PATTERN
from redis_persist.api.tasks import shows_tenant
from redis_persist.core.errors import RedisPersistError
from redis_persist.engine.access import AccessControl
from redis_persist.engine.control import TaskControl

_TASK_PATH = re.compile(r"/api/tasks/(" + TASK_ID_PATTERN.removeprefix("^").removesuffix("$") + ")")
_IF_NONE_MATCH = b"if-none-match"
_MAX_IF_NONE_MATCH = 2000  # the route's Header(max_length=...): longer ones get its 422


class PollAnswer:
    """The answer to a plain `GET /api/tasks/{id}` of an existing task, or None for the route to give."""

    def __init__(self, control: TaskControl, node: str, access: AccessControl | None) -> None:
        self.control = control
        self.node = node
        self.access = access  # None: auth is off

    @staticmethod
    def task_id_of(path: str) -> str | None:
        """The task id if `path` is a task's, else None (the method and query are the caller's to check)."""
        match = _TASK_PATH.fullmatch(path)
        return match.group(1) if match else None

    async def respond(self, scope: Scope, task_id: str) -> Response | None:
        """The response to this GET of `task_id` (a refusal by the auth layer included), or None: let the app
        answer."""
        if_none_match = None
        for name, value in scope["headers"]:
            if name == _IF_NONE_MATCH:
                if if_none_match is not None or len(value) > _MAX_IF_NONE_MATCH:
                    return None  # repeated or over-long: the route decides
                if_none_match = value.decode("latin-1")
        if CALLER_SCOPE_KEY not in scope:
            refusal = await resolve_caller(self.access, scope, "GET", scope["path"])
            if refusal is not None:
                return refusal
        caller = scope[CALLER_SCOPE_KEY]
        try:
            task = await self.control.get(task_id, caller=caller)
        except (RedisPersistError, RedisError):  # missing, forbidden, storage fault: the route gives the error answer
            return None
        return conditional(if_none_match, ReadableJSONResponse(task.public(self.node, shows_tenant(caller))))


class TaskPollPath:
    """ASGI layer answering a plain `GET /api/tasks/{id}` of an existing task; the rest passes through."""

    def __init__(self, app: ASGIApp, answer: PollAnswer) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_plain_get = scope["type"] == "http" and scope["method"] == "GET" and not scope.get("query_string")
        task_id = self.answer.task_id_of(scope["path"]) if is_plain_get else None
        if task_id is None:
            await self.app(scope, receive, send)
            return
        response = await self.answer.respond(scope, task_id)
        if response is None:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
