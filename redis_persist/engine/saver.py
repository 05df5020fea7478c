"""The Redis checkpointer, fenced: a replica that lost a task's lease cannot write its checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.checkpoint.base import get_checkpoint_metadata
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from redis.asyncio import Redis
from redis.exceptions import RedisError

from redis_persist.core.errors import LeaseLost
from redis_persist.store import keys


FENCE_KEY = "__rp_fence"  # dunder: LangGraph keeps it out of checkpoint metadata


class ReplicaAckTimeout(RedisError):
    """Fewer replicas than required acknowledged a checkpoint in time.

    A RedisError on purpose: the runner treats it like Redis being unreachable and leaves the task to be
    re-claimed from its last checkpoint after the lease time, so the next node never starts on a
    checkpoint that the primary alone holds.
    """


class FencedRedisSaver(AsyncRedisSaver):
    """AsyncRedisSaver whose writes first check that this replica still holds the task's lease.

    The fence travels with the work: `configurable[FENCE_KEY] = [lease id, token]`, put there by whoever
    runs the graph (engine/runs.base_config; a run on a shared thread is fenced by its own lease, not by
    the thread). A write without a fence, or under a token that is no longer the lease's, raises LeaseLost.
    With `min_replicas`, each checkpoint waits (Redis WAIT) until that many replicas have it.
    """

    def __init__(
        self,
        redis_client: Redis,
        lease_client: Redis,
        *,
        min_replicas: int = 0,
        replica_ack_timeout_seconds: float = 5.0,
    ) -> None:
        super().__init__(redis_client=redis_client)
        self._lease_client = lease_client  # decodes responses; the saver's own client does not
        self._min_replicas = min_replicas
        self._ack_timeout_ms = max(1, int(replica_ack_timeout_seconds * 1000))

    async def _check_lease(self, config: dict[str, Any]) -> None:
        configurable = config["configurable"]
        fence = configurable.get(FENCE_KEY)
        if not fence:
            raise LeaseLost(configurable["thread_id"])
        lease_id, token = fence
        if await self._lease_client.get(keys.lease(lease_id)) != token:
            raise LeaseLost(lease_id)

    async def _wait_for_replicas(self, thread_id: str) -> None:
        # WAIT covers the writes of the connection it runs on, and the saver spread the checkpoint over
        # pooled connections. Replication keeps order, so one write here, after the checkpoint's writes
        # finished, then WAIT on the same connection covers them all.
        pipe = self._lease_client.pipeline(transaction=False)
        pipe.set(keys.REPLICATION_PROBE, thread_id)
        pipe.wait(self._min_replicas, self._ack_timeout_ms)
        _, acknowledged = await pipe.execute()
        if acknowledged < self._min_replicas:
            raise ReplicaAckTimeout(
                f"checkpoint of {thread_id!r} reached {acknowledged} replica(s) within {self._ack_timeout_ms} ms; "
                f"REDIS_PERSIST_MIN_REPLICAS={self._min_replicas}"
            )

    async def aput(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        await self._check_lease(config)
        # As LangGraph's own savers do (the Redis one does not): the run's metadata (run_id, graph_id, the
        # client's) goes into the checkpoint, which is how a taken-over run knows it has started already.
        metadata = get_checkpoint_metadata(config, metadata)
        saved = await super().aput(config, checkpoint, metadata, new_versions)
        if self._min_replicas:
            await self._wait_for_replicas(config["configurable"]["thread_id"])
        return saved

    async def aput_writes(self, config, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""):  # type: ignore[no-untyped-def]
        await self._check_lease(config)
        return await super().aput_writes(config, writes, task_id, task_path)
