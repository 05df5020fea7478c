"""Wiring: builds the Redis clients, stores, checkpointer, graphs, control and worker for one process."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redisvl.exceptions import RedisSearchError

from redis_persist.engine.access import AccessControl
from redis_persist.engine.compaction import FinishedCompaction
from redis_persist.engine.control import TaskControl
from redis_persist.engine.graphs import GraphRegistry
from redis_persist.engine.runner import TaskRunner
from redis_persist.engine.runs import RunHooks
from redis_persist.engine.saver import FencedSaver, fenced_saver
from redis_persist.engine.storage_faults import StorageFaultCounter
from redis_persist.engine.worker import Worker
from redis_persist.settings import Settings
from redis_persist.store.connections import RedisConnections
from redis_persist.store.apikeys import ApiKeyStore
from redis_persist.store.events import EventLog
from redis_persist.store.migrate import migrate_key_names
from redis_persist.store.tasks import TaskStore


@dataclass
class Services:
    """Everything one process needs; built once, passed in, closed once."""

    settings: Settings
    connections: RedisConnections
    redis: Redis
    saver_redis: Redis
    saver: FencedSaver
    control: TaskControl
    worker: Worker | None
    storage_faults: StorageFaultCounter
    access: AccessControl | None = None  # None: auth is off

    @classmethod
    def build(cls, settings: Settings, run_worker: bool) -> Services:
        if settings.redis_url is None:
            raise ValueError("settings.redis_url must be set (the CLI starts the embedded Redis first)")
        connections = RedisConnections.from_url(
            settings.redis_url, settings.redis_retries, settings.redis_health_check_seconds)
        redis = connections.async_client(max_connections=settings.redis_max_connections, decode_responses=True)
        saver_redis = connections.async_client(max_connections=settings.redis_max_connections, decode_responses=False)
        # A cancelled task's runner may still be writing its last checkpoint: the sweep compacts it a lease
        # time later, by when that runner has stopped or its writes fail their fence.
        store = TaskStore(redis, settings.events_max_per_task, settings.finished_ttl_seconds,
                          compaction_grace_seconds=settings.lease_ttl_seconds if settings.finished_compaction else None)
        saver = fenced_saver(settings.checkpoint_history, saver_redis, redis, min_replicas=settings.min_replicas,
                             replica_ack_timeout_seconds=settings.replica_ack_timeout_seconds)
        graphs = GraphRegistry.load(settings.graphs, saver, settings.node_timeout_seconds)
        control = TaskControl(store, EventLog(redis), graphs, saver, settings.max_initial_state_bytes)
        storage_faults = StorageFaultCounter()
        worker: Worker | None = None
        if run_worker:
            compaction = FinishedCompaction(store, saver) if settings.finished_compaction else None
            runner = TaskRunner(store, graphs, settings.service_name, storage_faults, RunHooks.build(redis, settings),
                                compaction=compaction)
            worker = Worker(redis, connections, control, runner, settings.service_name,
                            settings.max_tasks, settings.lease_ttl_seconds,
                            tenant_max_running=settings.tenant_max_running, compaction=compaction)
        access = None
        if settings.is_auth_enabled:
            admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
            access = AccessControl(ApiKeyStore(redis), admin_key, requests_per_minute=settings.rate_limit_per_minute)
        return cls(settings, connections, redis, saver_redis, saver, control, worker, storage_faults, access)

    async def start(self) -> None:
        # Before anything reads a task: a database from before hash tags gets its key names moved.
        await migrate_key_names(self.redis)
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
        await self.connections.aclose()
