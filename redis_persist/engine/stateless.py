"""Stateless runs' temporary threads (`on_completion=delete`, LangGraph's default): deleted after the run.

As LangGraph's server, a stateless run (`POST /runs`, `/runs/stream`, `/runs/wait`) runs on a new thread
that is deleted, with the run, once the run has ended — unless `on_completion=keep`. Nothing is lost on the
way: the thread goes only when its run has ended, its webhook (if any) was delivered, and no client reads its
answer or stream any more (that client's route deletes it right after the last byte; if that client's
replica died, the upkeep deletes it once the client's hold has expired).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from redis_persist.core.errors import IllegalTransition, ResourceNotFound, TaskNotFound
from redis_persist.engine.runs import RUN_ENDED
from redis_persist.store.stateless import StatelessThreads
from redis_persist.store.tasks import TaskStore
from redis_persist.store.threads import ThreadStore
from redis_persist.store.webhooks import WebhookQueue

log = logging.getLogger(__name__)
RECHECK_MS = 2_000  # how often the upkeep looks at a temporary thread whose run goes on
HOLD_MS = 60_000  # a client reading the run's output keeps the thread this long (refreshed while it reads)
ENDED_GRACE_MS = 5_000  # the upkeep leaves a thread this long after its run ended (a reader may be attaching)
CREATING_HOLD_MS = 10_000  # a thread armed but not (yet) stored is being created: not "deleted already"


class StatelessCleanup:
    """Arms, holds and deletes the temporary threads of stateless runs."""

    def __init__(self, threads: ThreadStore, tasks: TaskStore, webhooks: WebhookQueue, stateless: StatelessThreads,
                 delete_thread: Callable[[str], Awaitable[None]]) -> None:
        self._threads = threads
        self._tasks = tasks
        self._webhooks = webhooks
        self._stateless = stateless
        self._delete_thread = delete_thread  # by store id: the thread, its runs, streams and checkpoints

    async def arm(self, thread_id: str, reader_attached: bool) -> None:
        """Before the run exists: its thread goes once it has ended (held for the client of stream/wait)."""
        await self._stateless.arm(thread_id, RECHECK_MS, HOLD_MS if reader_attached else CREATING_HOLD_MS)

    async def disarm(self, thread_id: str) -> None:
        await self._stateless.forget(thread_id)

    async def still_reading(self, thread_id: str) -> None:
        """The client of a stream/wait still reads: keep the thread."""
        if await self._stateless.is_armed(thread_id):
            await self._stateless.hold(thread_id, HOLD_MS)

    async def delivered(self, thread_id: str) -> None:
        """The client has read the run's whole output: delete the thread now if nothing else needs it."""
        if await self._stateless.is_armed(thread_id):
            await self._stateless.release(thread_id)  # if it must stay (a webhook), the upkeep deletes it later
            await self._delete_if_done(thread_id, grace_ms=0, ignore_hold=True)

    async def delete_due(self) -> None:
        """Upkeep: delete every due temporary thread whose run has ended and that nobody reads."""
        for thread_id in await self._stateless.due(limit=100):
            await self._delete_if_done(thread_id, grace_ms=ENDED_GRACE_MS, ignore_hold=False)

    async def _delete_if_done(self, thread_id: str, grace_ms: int, ignore_hold: bool) -> None:
        wait_ms = await self._must_wait_ms(thread_id, grace_ms, ignore_hold)
        if wait_ms:
            await self._stateless.recheck_in(thread_id, wait_ms)
            return
        try:
            await self._delete_thread(thread_id)
        except ResourceNotFound:
            pass  # deleted already (by its client, another replica, or DELETE /threads)
        except IllegalTransition:  # a run got onto it meanwhile: look again later
            await self._stateless.recheck_in(thread_id, RECHECK_MS)
            return
        await self._stateless.forget(thread_id)
        log.info("stateless thread deleted after its run", extra={"thread_id": thread_id})

    async def _must_wait_ms(self, thread_id: str, grace_ms: int, ignore_hold: bool) -> int:
        """0 when the thread may go now; else how long to wait before looking again."""
        if not ignore_hold and await self._stateless.is_held(thread_id):
            return RECHECK_MS
        try:
            raw = await self._threads.get_thread(thread_id)
        except ResourceNotFound:
            return 0
        run_ids = await self._threads.run_ids(thread_id, 100, 0)
        for run_id in run_ids:
            if await self._webhooks.is_pending(run_id):
                return RECHECK_MS
        active = raw.get("active_run")
        if not active:
            return 0 if run_ids else RECHECK_MS  # no run yet: it is being created
        try:
            task = await self._tasks.get(active)
        except TaskNotFound:
            return 0
        if task.status not in RUN_ENDED:
            return RECHECK_MS
        ended_ms_ago = (datetime.now(UTC) - datetime.fromisoformat(task.updated_at)).total_seconds() * 1000
        return max(0, int(grace_ms - ended_ms_ago))
