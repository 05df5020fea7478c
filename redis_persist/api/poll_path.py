"""The two reads pollers repeat, answered below FastAPI's routing: `GET /api/tasks/{id}` and a page of
`GET /api/tasks`.

FastAPI's route matching, parameter validation and dependency solving cost more CPU per request than
reading a task from Redis (bench/README.md, "Poll path"). A plain, successful read is answered here with the
same bytes (and, for a task, ETag and headers) the routes in api/tasks.py give; anything else — an unusual
query or header, an id or parameter the route would refuse, a missing task, a storage fault — goes on to
the route, which owns every error answer. `PollAnswer` is used twice: by uvicorn's protocol before any ASGI
layer (api/poll_protocol.py, served replicas), and by `TaskPollPath` inside the auth layer (the requests the
protocol leaves to the app, and in-process clients).
"""

from __future__ import annotations

import re
from collections.abc import Coroutine
from typing import Any

from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from redis_persist.api.auth import CALLER_SCOPE_KEY, resolve_caller
from redis_persist.api.etag import conditional
from redis_persist.api.json_io import ReadableJSONResponse
from redis_persist.api.schemas import TASK_ID_PATTERN
from redis_persist.api.tasks import shows_tenant
from redis_persist.core.errors import RedisPersistError
from redis_persist.core.status import TaskStatus
from redis_persist.engine.access import AccessControl
from redis_persist.engine.control import TaskControl

_TASK_PATH = re.compile(r"/api/tasks/(" + TASK_ID_PATTERN.removeprefix("^").removesuffix("$") + ")")
_LIST_PATH = "/api/tasks"
_IF_NONE_MATCH = b"if-none-match"
_MAX_IF_NONE_MATCH = 2000  # the route's Header(max_length=...): longer ones get its 422
# A list query this path takes: known names, each once, values of plain characters (nothing to unquote);
# the route answers any other, ignoring unknown names or refusing bad values as it always has.
_LIST_PARAMS = frozenset({"status", "graph_name", "limit", "cursor", "tenant"})
_PLAIN_VALUE = re.compile(rb"[A-Za-z0-9_.\-]{1,200}")
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")  # the route's 1..500, without leading zeros or signs
_STATUSES = frozenset(status.value for status in TaskStatus)
_MAX_CURSOR = 20  # the route's Query(max_length=20)


def _list_query(query_string: bytes) -> dict[str, str] | None:
    """The parameters of a task-list query the route would take as they are, else None."""
    params: dict[str, str] = {}
    if query_string:
        for pair in query_string.split(b"&"):
            name, has_value, value = pair.partition(b"=")
            key = name.decode("latin-1")
            if not has_value or key not in _LIST_PARAMS or key in params or not _PLAIN_VALUE.fullmatch(value):
                return None
            params[key] = value.decode("ascii")
    limit, status, cursor = params.get("limit"), params.get("status"), params.get("cursor")
    if limit is not None and not (_LIMIT.fullmatch(limit) and int(limit) <= 500):
        return None
    if status is not None and status not in _STATUSES:
        return None
    if cursor is not None and not (cursor.isdigit() and len(cursor) <= _MAX_CURSOR):
        return None
    return params


class PollAnswer:
    """The answer to a plain read of an existing task or of a page of the task list, or None for the route."""

    def __init__(self, control: TaskControl, node: str, access: AccessControl | None) -> None:
        self.control = control
        self.node = node
        self.access = access  # None: auth is off

    def match(self, scope: Scope) -> Coroutine[Any, Any, Response | None] | None:
        """For a GET this path may answer, the coroutine answering it (a refusal by the auth layer included;
        None from it: let the app answer); None for any other request. The caller checks the method."""
        path, query = scope["path"], scope["query_string"]
        if path == _LIST_PATH:
            params = _list_query(query)
            return None if params is None else self._list(scope, params)
        if query:
            return None
        found = _TASK_PATH.fullmatch(path)
        return None if found is None else self._task(scope, found.group(1))

    async def _caller(self, scope: Scope) -> Response | None:
        if CALLER_SCOPE_KEY not in scope:
            return await resolve_caller(self.access, scope, "GET", scope["path"])
        return None

    async def _task(self, scope: Scope, task_id: str) -> Response | None:
        if_none_match = None
        for name, value in scope["headers"]:
            if name == _IF_NONE_MATCH:
                if if_none_match is not None or len(value) > _MAX_IF_NONE_MATCH:
                    return None  # repeated or over-long: the route decides
                if_none_match = value.decode("latin-1")
        if (refusal := await self._caller(scope)) is not None:
            return refusal
        caller = scope[CALLER_SCOPE_KEY]
        try:
            task = await self.control.get(task_id, caller=caller)
        except (RedisPersistError, RedisError):  # missing, forbidden, storage fault: the route gives the error answer
            return None
        return conditional(if_none_match, ReadableJSONResponse(task.public(self.node, shows_tenant(caller))))

    async def _list(self, scope: Scope, params: dict[str, str]) -> Response | None:
        if (refusal := await self._caller(scope)) is not None:
            return refusal
        caller = scope[CALLER_SCOPE_KEY]
        status = params.get("status")
        try:
            tasks, next_cursor = await self.control.list(
                None if status is None else TaskStatus(status), params.get("graph_name"),
                int(params.get("limit", "50")), params.get("cursor"), caller=caller)
        except (RedisPersistError, RedisError):  # forbidden, storage fault: the route gives the error answer
            return None
        with_tenant = shows_tenant(caller)
        return ReadableJSONResponse({"tasks": [task.public(self.node, with_tenant) for task in tasks],
                                     "next_cursor": next_cursor})


class TaskPollPath:
    """ASGI layer answering the plain reads PollAnswer takes; the rest passes through."""

    def __init__(self, app: ASGIApp, answer: PollAnswer) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answering = self.answer.match(scope) if scope["type"] == "http" and scope["method"] == "GET" else None
        response = None if answering is None else await answering
        if response is None:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
