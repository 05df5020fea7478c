"""Pollers' reads answered in uvicorn's HTTP protocol, before any ASGI layer runs: `GET /api/tasks/{id}`
and a page of `GET /api/tasks` (api/poll_path.py says which requests exactly).

A poller repeats its read every 0.1 s, so its cost per request bounds how many tasks a replica runs
beside its pollers. Through ASGI it pays for the scope, the request cycle, seven middleware layers each
wrapping `send`, a Starlette response object, and two socket writes (uvicorn writes the head and the body
apart). Here the same answer — same caller resolution, same bytes, ETag, 304 and access-log line — is
written with one `write`: 385–400 µs of service CPU per poll instead of 519–550 (bench/README.md, "The poll
path in uvicorn's protocol"). Anything else, and any request this path declines (a missing task, a storage
fault, an unusual header), runs through the app as before, with the caller already resolved so nothing is
counted twice against a rate limit.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

from starlette.responses import Response

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from redis_persist.api.poll_path import PollAnswer

log = logging.getLogger(__name__)


def polling_protocol(answer: PollAnswer) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol class, answering pollers' plain reads with `answer`."""
    return type("PollingHttpToolsProtocol", (PollingHttpToolsProtocol,), {"answer": answer})


class PollingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that answers pollers' plain reads itself (see the module's docstring)."""

    answer: PollAnswer

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        scope = cycle.scope
        may_answer = (app is self.app and scope["method"] == "GET" and cycle.keep_alive
                      and not cycle.waiting_for_100_continue and scope["http_version"] == "1.1")
        answering = self.answer.match(scope) if may_answer else None
        if answering is None:
            super()._start_asgi_task(cycle, app)
            return
        task = self.loop.create_task(self._answer(cycle, app, answering))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _answer(self, cycle: RequestResponseCycle, app: Any,
                      answering: Coroutine[Any, Any, Response | None]) -> None:
        try:
            response = await answering
        except Exception:  # never the poller's problem: the app answers instead, as it always could
            log.exception("poll path failed; the route answers")
            response = None
        if response is None:
            await cycle.run_asgi(app)
            return
        if cycle.flow.write_paused and not cycle.disconnected:
            await cycle.flow.drain()
        if cycle.disconnected:
            return
        status = response.status_code
        head = [STATUS_LINE[status]]
        for name, value in (*cycle.default_headers, *response.raw_headers):
            head += (name, b": ", value, b"\r\n")
        if not cycle.keep_alive:  # the server began shutting down meanwhile: as uvicorn, say so and close
            head.append(b"connection: close\r\n")
        head += (b"\r\n", response.body)
        cycle.response_started = cycle.response_complete = True
        cycle.transport.write(b"".join(head))
        if cycle.access_log and cycle.access_logger.isEnabledFor(logging.INFO):
            cycle.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(cycle.scope), "GET",
                                     get_path_with_query_string(cycle.scope), "1.1", status)
        cycle.message_event.set()
        if not cycle.keep_alive:
            cycle.transport.close()
        cycle.on_response()
