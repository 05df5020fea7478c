"""Worker: claim queued tasks, run at most max_tasks at once, keep leases, re-queue orphans."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from redis_persist.core.auth import OPEN_CALLER
from redis_persist.core.errors import IllegalTransition, LeaseLost, TaskNotFound
from redis_persist.core.status import Action, TaskStatus
from redis_persist.engine.compaction import FinishedCompaction
from redis_persist.engine.control import TaskControl
from redis_persist.engine.runner import TaskRunner
from redis_persist.engine.storage_faults import storage_fault
from redis_persist.store import keys
from redis_persist.store.connections import RedisConnections
from redis_persist.store.leases import LeaseKeeper
from redis_persist.store.queue import MessageRef, WorkQueue

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 5.0
CLAIM_BATCH = 4
CLAIM_BLOCK_MS = 1000
# Where someone else moves a running task (a cancel; a re-queue once its lease expired), or it is gone: its
# runner stops at once. Every other move out of running is the runner's own (complete, fail, pause,
# interrupt: lease-guarded), and it is left to finish what follows it (thread hand-over, compaction).
STOPPED_BY_OTHERS = frozenset({TaskStatus.CANCELLED, TaskStatus.QUEUED, None})


async def _cancel_until_done(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel until they end. A cancellation can land in library code that swallows it (seen in a blocking
    Redis read and in a task claimed just before a stop); cancelling once would then wait forever."""
    pending = {task for task in tasks if task is not None}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.2)


class Worker:
    """One replica's worker. Owns its loops, its concurrency limit and its leases."""

    def __init__(
        self,
        redis: Redis,
        connections: RedisConnections,
        control: TaskControl,
        runner: TaskRunner,
        replica: str,
        max_tasks: int,
        lease_ttl_seconds: float,
        tenant_max_running: int = 0,
        compaction: FinishedCompaction | None = None,
    ) -> None:
        self._redis = redis
        self._compaction = compaction
        self._control = control
        self._store = control.store
        self._runner = runner
        # The worker owns its leases: the keeper calls back into it when one is lost, and nothing else does.
        self._keeper = LeaseKeeper(connections, replica, lease_ttl_seconds, on_lost=self.on_lease_lost)
        self._replica = replica
        self._queue = WorkQueue(redis, consumer=f"{replica}-{uuid.uuid4().hex[:8]}",
                                tenant_max_running=tenant_max_running)
        self._max_tasks = max_tasks
        self._lease_ttl = lease_ttl_seconds
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    @property
    def running_count(self) -> int:
        return len(self._running)

    def on_lease_lost(self, task_id: str) -> None:
        """Called from the lease thread: stop the task at once, it is someone else's now."""
        loop = self._loop
        loop.call_soon_threadsafe(self._stop_task, task_id)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._queue.ensure_group()
        self._keeper.start()
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="claim"),
            asyncio.create_task(self._sweep_loop(), name="sweep"),
            asyncio.create_task(self._control_loop(), name="control"),
        ]

    async def stop(self) -> None:
        """Stop claiming, stop running tasks and hand them back to the queue at once."""
        # The claim loop ends at its next turn (an idle read wakes when stopping is set), so messages it
        # has read are claimed and handed back below rather than left unacknowledged until reclaimed.
        self._stopping.set()
        self._slot_freed.set()
        claim_loop, *other_loops = self._loops or [None]
        await _cancel_until_done(other_loops)
        if claim_loop is not None:
            await asyncio.wait([claim_loop], timeout=CLAIM_BLOCK_MS / 1000 + 2)
            await _cancel_until_done([claim_loop])
        handover = {task_id: self._keeper.token(task_id) for task_id in self._running}
        await _cancel_until_done(list(self._running.values()))
        for task_id, token in handover.items():
            if token is None:
                continue
            try:
                await self._store.act(
                    task_id, Action.HAND_BACK, token=token, drop=["current_node"],
                    status_fields={"reason": f"replica {self._replica} stopped; re-queued from the last checkpoint"},
                )
            except (LeaseLost, IllegalTransition, TaskNotFound, RedisError) as error:
                log.info("no handover", extra={"task_id": task_id, "error": str(error)})
        self._keeper.stop()

    def _stop_task(self, task_id: str) -> None:
        task = self._running.get(task_id)
        if task is not None:
            task.cancel()

    async def _claim_loop(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            free = self._max_tasks - len(self._running)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                # Small batches, so a burst is shared among replicas instead of landing on the first reader.
                messages = await self._queue.read(count=min(free, CLAIM_BATCH), block_ms=CLAIM_BLOCK_MS,
                                                  wake=self._stopping)
                for message_id, task_id in messages:
                    await self._claim(message_id, task_id)
                backoff = 0.1
            except RedisError as error:
                log.warning("claim loop: redis error, retrying", extra={"replica": self._replica, "error": str(error)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                await self._ensure_group_quietly()

    async def _ensure_group_quietly(self) -> None:
        try:
            await self._queue.ensure_group()  # a restarted Redis without AOF has lost the group
        except RedisError:
            pass

    async def _claim(self, message_id: MessageRef, task_id: str) -> None:
        if task_id in self._running:
            await self._queue.ack(message_id)
            return
        token = await self._store.claim(task_id, self._replica, self._keeper.ttl_ms)
        if token is not None:
            # Held and registered before the next await, so a stop landing in the ack still hands it back.
            self._keeper.hold(task_id, token)
            log.info("claimed", extra={"task_id": task_id, "replica": self._replica})
            task = asyncio.create_task(self._runner.run(task_id, token), name=f"task-{task_id}")
            self._running[task_id] = task
            task.add_done_callback(lambda _t, tid=task_id: self._forget(tid))
        await self._queue.ack(message_id)

    def _forget(self, task_id: str) -> None:
        self._running.pop(task_id, None)
        self._keeper.drop(task_id)
        self._slot_freed.set()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ttl / 3 * random.uniform(0.8, 1.2))
            try:
                await self._sweep()
            except Exception as error:
                # The saver (removing expired or compacted tasks' checkpoints) wraps Redis errors in redisvl's own.
                if storage_fault(error) is None:
                    raise
                log.warning("sweep: redis error", extra={"replica": self._replica, "error": str(error)})

    async def _sweep(self) -> None:
        others = [task_id for task_id in await self._store.running_ids() if task_id not in self._running]
        for task_id in await self._store.without_lease(others):
            if await self._store.requeue_if_orphaned(task_id):
                log.info("re-queued orphan", extra={"task_id": task_id, "replica": self._replica})
        free = self._max_tasks - len(self._running)
        if free > 0:
            for message_id, task_id in await self._queue.reclaim_stale(int(self._lease_ttl * 2000), free):
                await self._claim(message_id, task_id)
        await self._queue.trim_delivered()
        for task_id in await self._store.due_for_removal(limit=500):
            try:
                # Store ids are the default tenant's own ids, so the service itself removes any tenant's task.
                await self._control.delete(task_id, caller=OPEN_CALLER)
            except (TaskNotFound, IllegalTransition):
                pass  # removed by someone else meanwhile
        if self._compaction is not None:
            await self._compaction.compact_due()  # cancelled tasks; completed ones a crash left uncompacted

    async def _control_loop(self) -> None:
        """Stop a task at once when someone else ended it (cancel); pauses wait for a boundary."""
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(keys.CONTROL_CHANNEL)
                backoff = 0.1
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    task_id = message["data"]
                    if task_id in self._running and await self._store.status_of(task_id) in STOPPED_BY_OTHERS:
                        self._stop_task(task_id)
            except RedisError as error:
                log.warning("control loop: redis error", extra={"replica": self._replica, "error": str(error)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                await pubsub.aclose()
