"""Wiring: builds the Redis clients, stores, checkpointer, graphs, control and worker for one process."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis
from redisvl.exceptions import RedisSearchError

from redis_persist.engine.control import TaskControl
from redis_persist.engine.graphs import GraphRegistry
from redis_persist.engine.runner import TaskRunner
from redis_persist.engine.runs import RunHooks
from redis_persist.engine.saver import FencedRedisSaver
from redis_persist.engine.worker import Worker
from redis_persist.settings import Settings
from redis_persist.store.events import EventLog
from redis_persist.store.leases import LeaseKeeper
from redis_persist.store.tasks import TaskStore


def _pool(url: str, max_connections: int, decode: bool) -> BlockingConnectionPool:
    # Blocking with no timeout: past the cap a caller waits for a connection instead of
    # failing with MaxConnectionsError, which is what the saver's default pool does at ~50 runs.
    return BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=None, decode_responses=decode,
        health_check_interval=30, socket_keepalive=True,
    )


@dataclass
class Services:
    """Everything one process needs; built once, passed in, closed once."""

    settings: Settings
    redis: Redis
    saver_redis: Redis
    saver: FencedRedisSaver
    control: TaskControl
    worker: Worker | None

    @classmethod
    def build(cls, settings: Settings, run_worker: bool) -> Services:
        if settings.redis_url is None:
            raise ValueError("settings.redis_url must be set (the CLI starts the embedded Redis first)")
        redis = Redis(connection_pool=_pool(settings.redis_url, settings.redis_max_connections, decode=True))
        saver_redis = Redis(connection_pool=_pool(settings.redis_url, settings.redis_max_connections, decode=False))
        store = TaskStore(redis, settings.events_max_per_task, settings.finished_ttl_seconds)
        keeper: LeaseKeeper | None = None
        worker: Worker | None = None
        if run_worker:
            keeper = LeaseKeeper(settings.redis_url, settings.service_name, settings.lease_ttl_seconds,
                                 on_lost=lambda task_id: worker.on_lease_lost(task_id) if worker else None)
        saver = FencedRedisSaver(saver_redis, redis, keeper.token if keeper else (lambda _thread_id: None))
        graphs = GraphRegistry.load(settings.graphs, saver, settings.node_timeout_seconds)
        control = TaskControl(store, EventLog(redis), graphs, saver, settings.max_initial_state_bytes)
        if keeper is not None:
            runner = TaskRunner(store, graphs, settings.service_name, RunHooks.build(redis, settings))
            worker = Worker(redis, control, runner, keeper, settings.service_name,
                            settings.max_tasks, settings.lease_ttl_seconds)
        return cls(settings, redis, saver_redis, saver, control, worker)

    async def start(self) -> None:
        for attempt in range(1, 6):
            try:
                await self.saver.asetup()
                break
            except RedisSearchError as error:
                # Replicas starting together race to create the saver's indexes (check, then create):
                # another replica made it; run setup again, which now finds it.
                if "already exists" not in str(error).lower() or attempt == 5:
                    raise
        if self.worker is not None:
            await self.worker.start()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
        await self.redis.aclose()
        await self.saver_redis.aclose()
        await self.redis.connection_pool.disconnect()
        await self.saver_redis.connection_pool.disconnect()
