"""The Redis checkpointer, fenced: a replica that lost a task's lease cannot write its checkpoints."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from langgraph.checkpoint.base import get_checkpoint_metadata
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from langgraph.checkpoint.redis.ashallow import AsyncShallowRedisSaver
from langgraph.checkpoint.redis.key_registry import WRITE_KEYS_ZSET_PREFIX
from langgraph.checkpoint.redis.util import to_storage_safe_id, to_storage_safe_str
from redis.asyncio import Redis
from redis.exceptions import RedisError

from redis_persist.core.errors import InvalidRequest, LeaseLost
from redis_persist.engine.checkpoint_serde import PlainFirstSerializer
from redis_persist.store import keys


FENCE_KEY = "__rp_fence"  # dunder: LangGraph keeps it out of checkpoint metadata
# How long a confirmation that the lease is ours stands in for the check before a checkpoint write.
# Far below any lease time (> 0.5 s), and of the order of the event-loop stall that can anyway separate
# a check from the write it guards: see Fence.
FENCE_CONFIRMATION_MAX_AGE_SECONDS = 0.2


def fence_clock() -> float:
    """Seconds on a clock that never goes back and, unlike CLOCK_MONOTONIC, keeps counting through a suspend."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Fence(list):  # type: ignore[type-arg]
    """`[lease id, token]` in a run's config, plus when the lease was last seen to be ours.

    A list, so it reads, unpacks and serialises like the plain `[lease id, token]` fences it replaces.
    The runner owns it: it puts it into the config (the saver gets it from there, never by looking it up)
    and, after each of its fenced Lua writes (record.lua checks the lease and the running status on the
    server, atomically with the write), notes when that write was *sent*. The saver notes its own GETs.

    Why a recent confirmation may stand in for the GET before a checkpoint write: the GET never made the
    write atomic with the check either, only recent — the write goes out after the GET's answer, later by
    whatever the event loop does in between. A confirmation sent at time t proves the lease was ours at
    some moment after t. Within `max_age` (FENCE_CONFIRMATION_MAX_AGE_SECONDS, 0.2 s) of t:
    - expiry cannot have ended it: the lease lives a whole lease time (> 0.5 s) after it was last set
      or renewed, and both happened before the confirmation ran;
    - a takeover needs the lease gone first (claim.lua sets it only where nobody holds it), so it is
      covered by the same argument plus the explicit ends below;
    - an explicit end (cancel, interrupt or rollback by a new run on the thread: act.lua, create_run.lua,
      delete.lua) also publishes on the control channel, which cancels the runner; a checkpoint write
      already past its check may still land, within max_age of the end as it could before within the
      GET-to-write gap; a run that rolls back finds the thread's checkpoint before the rolled-back run by
      lineage (engine/runs.py), which a late sibling checkpoint does not change;
    - a paused process (SIGSTOP, a VM freeze, a suspend) wakes with an old confirmation on this clock and
      checks again with a GET, which a lease it lost meanwhile fails.
    """

    def __init__(self, lease_id: str, token: str) -> None:
        super().__init__([lease_id, token])
        self.confirmed_at = float("-inf")
        # (checkpoint id, its `ts`) of the last checkpoint this run saved: what a finished task's compaction
        # keeps of it (engine/compaction.py), without reading it back.
        self.last_saved: tuple[str, str] | None = None

    def confirmed(self, sent_at: float) -> None:
        """The lease was ours when a check sent at `sent_at` (fence_clock) ran on the server."""
        self.confirmed_at = max(self.confirmed_at, sent_at)

    def is_fresh(self, max_age: float) -> bool:
        """Whether the last confirmation was sent less than `max_age` seconds ago."""
        return fence_clock() - self.confirmed_at < max_age


class ReplicaAckTimeout(RedisError):
    """Fewer replicas than required acknowledged a checkpoint (or a run's first read) in time.

    A RedisError on purpose: the runner treats it like Redis being unreachable and starts the run again
    once storage recovers, and every run starts with `await_replicas`, so the next node never starts on a
    checkpoint that the primary alone holds.
    """


class _Fenced:
    """Mixed into a Redis saver: its writes first check that this replica still holds the task's lease.

    The fence travels with the work: `configurable[FENCE_KEY] = [lease id, token]`, put there by whoever
    runs the graph (engine/runs.base_config; a run on a shared thread is fenced by its own lease, not by
    the thread). A write without a fence, or under a token that is no longer the lease's, raises LeaseLost.
    A `Fence` confirmed less than FENCE_CONFIRMATION_MAX_AGE_SECONDS ago needs no GET (see Fence for why).
    With `min_replicas`, each checkpoint waits (Redis WAIT) until that many replicas have it.
    """

    keeps_history = True

    async def require_checkpoint(self, thread_id: str, checkpoint_id: str | None, purpose: str) -> None:
        """Refuse (422) a past checkpoint this saver no longer has: 'latest' keeps only the newest."""
        if checkpoint_id is None or self.keeps_history:
            return
        latest = await self.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})  # type: ignore[attr-defined]
        if latest is None or latest.config["configurable"]["checkpoint_id"] != checkpoint_id:
            raise InvalidRequest(
                f"{purpose} needs checkpoint {checkpoint_id!r}, and this service keeps only each thread's latest "
                "checkpoint (REDIS_PERSIST_CHECKPOINT_HISTORY=latest)")

    def require_history(self, purpose: str) -> None:
        """Refuse (422) what needs a thread's earlier checkpoints when only the latest is kept."""
        if not self.keeps_history:
            raise InvalidRequest(f"{purpose} needs earlier checkpoints, and this service keeps only each thread's "
                                 "latest checkpoint (REDIS_PERSIST_CHECKPOINT_HISTORY=latest)")

    def __init__(
        self,
        redis_client: Redis,
        lease_client: Redis,
        *,
        min_replicas: int = 0,
        replica_ack_timeout_seconds: float = 5.0,
        confirmation_max_age_seconds: float = FENCE_CONFIRMATION_MAX_AGE_SECONDS,
    ) -> None:
        super().__init__(redis_client=redis_client)  # type: ignore[call-arg]
        self.serde = PlainFirstSerializer()  # the library's, with a fast path for plain JSON values
        self._lease_client = lease_client  # decodes responses; the saver's own client does not
        self._min_replicas = min_replicas
        self._ack_timeout_ms = max(1, int(replica_ack_timeout_seconds * 1000))
        self._confirmation_max_age = confirmation_max_age_seconds

    async def _check_lease(self, config: dict[str, Any]) -> None:
        configurable = config["configurable"]
        fence = configurable.get(FENCE_KEY)
        if not fence:
            raise LeaseLost(configurable["thread_id"])
        if isinstance(fence, Fence) and fence.is_fresh(self._confirmation_max_age):
            return
        lease_id, token = fence
        sent_at = fence_clock()
        if await self._lease_client.get(keys.lease(lease_id)) != token:
            raise LeaseLost(lease_id)
        if isinstance(fence, Fence):
            fence.confirmed(sent_at)

    async def await_replicas(self, thread_id: str) -> None:
        """With min_replicas, wait until that many replicas hold everything written so far; else nothing.

        A run calls it before it reads the checkpoint it starts from: a checkpoint whose own wait timed out
        (ReplicaAckTimeout) is still on the primary, and the next node must not start on it until a replica
        has it too. Raises ReplicaAckTimeout, a storage fault, when they do not acknowledge in time.
        """
        if self._min_replicas:
            await self._wait_for_replicas(thread_id, "the writes before a run of")

    async def _wait_for_replicas(self, thread_id: str, what: str = "checkpoint of") -> None:
        # WAIT covers the writes of the connection it runs on, and the saver spread the checkpoint over
        # pooled connections. Replication keeps order, so one write here, after the checkpoint's writes
        # finished, then WAIT on the same connection covers them all.
        pipe = self._lease_client.pipeline(transaction=False)
        pipe.set(keys.REPLICATION_PROBE, thread_id)
        pipe.wait(self._min_replicas, self._ack_timeout_ms)
        _, acknowledged = await pipe.execute()
        if acknowledged < self._min_replicas:
            raise ReplicaAckTimeout(
                f"{what} {thread_id!r} reached {acknowledged} replica(s) within {self._ack_timeout_ms} ms; "
                f"REDIS_PERSIST_MIN_REPLICAS={self._min_replicas}"
            )

    async def aput(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        await self._check_lease(config)
        # As LangGraph's own savers do (the Redis one does not): the run's metadata (run_id, graph_id, the
        # client's) goes into the checkpoint, which is how a taken-over run knows it has started already.
        metadata = get_checkpoint_metadata(config, metadata)
        saved = await super().aput(config, checkpoint, metadata, new_versions)  # type: ignore[misc]
        if self._min_replicas:
            await self._wait_for_replicas(config["configurable"]["thread_id"])
        fence = config["configurable"][FENCE_KEY]
        if isinstance(fence, Fence):
            fence.last_saved = (checkpoint["id"], checkpoint.get("ts", ""))
        return saved

    async def aput_writes(self, config, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""):  # type: ignore[no-untyped-def]
        await self._check_lease(config)
        return await super().aput_writes(config, writes, task_id, task_path)  # type: ignore[misc]


def _checkpoint_ts(checkpoint_id: str) -> float:
    # As the library's aput: a ULID id carries its time; LangGraph's UUIDv6 ids do not, so it is now.
    try:
        from ulid import ULID  # the library imports it here too: python-ulid is not among its requirements

        return ULID.from_str(checkpoint_id).timestamp
    except Exception:  # noqa: BLE001 - whatever the parser raises (or no ulid at all), the library uses now
        return time.time() * 1000


# The thread key registry (`rp:checkpoint-keys:{thread}`, a set) lists every checkpoint, latest pointer and
# write registry (the library's per-checkpoint zset of write keys) of a thread; REGISTRY_COMPLETE is in it
# once it has listed them from the thread's first checkpoint on. A registry without it (a thread begun by an
# older version, or written by the library's own path) is not trusted: its thread is deleted the library's way.
REGISTRY_COMPLETE = "rp:complete"
_REGISTRY_BATCH = 1000  # members deleted per script call: one call never holds Redis for long
# Deletes up to ARGV[3] of a thread's registered keys (a write registry with the writes it lists); answers
# how many members are left (0: all gone, the registry too), or -1 when the registry is not complete.
# The one script that deletes keys whose names it reads, not receives: the saver's own, like _PRUNE_WRITES.
_DELETE_REGISTERED = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return -1 end
local zset_prefix = ARGV[2]
for _, key in ipairs(redis.call('SPOP', KEYS[1], tonumber(ARGV[3]))) do
  if key == ARGV[1] then
    redis.call('SADD', KEYS[1], key)
  else
    if string.sub(key, 1, #zset_prefix) == zset_prefix then
      local writes = redis.call('ZRANGE', key, 0, -1)
      for i = 1, #writes, 500 do redis.call('DEL', unpack(writes, i, math.min(i + 499, #writes))) end
    end
    redis.call('DEL', key)
  end
end
local left = redis.call('SCARD', KEYS[1]) - 1
if left == 0 then redis.call('DEL', KEYS[1]) end
return left
"""


class _OneRoundTripPut(AsyncRedisSaver):
    """AsyncRedisSaver whose `aput` writes the checkpoint and its thread's latest pointer in one pipeline.

    The library's `aput` (langgraph-checkpoint-redis 0.5) stores the same document through RedisVL's
    `SearchIndex.load` and then sets the pointer in a second round trip; RedisVL's path costs more CPU than
    the write itself (a JSON command object and a signature inspection per call): 1.1–1.6 ms against
    0.65–0.8 ms per checkpoint in-process (bench/README.md, "One round trip per checkpoint"). Same keys, same
    document, same order of writes, same handling of a cancellation; a TTL policy or cluster mode (neither
    of which this service sets) takes the library's path. tests/integration/test_saver_put.py compares the
    two byte for byte, so a library upgrade that changes its layout fails there, not in production.

    The same pipeline lists the checkpoint's keys in the thread key registry (REGISTRY_COMPLETE above), so
    `adelete_thread` (a finished task's compaction, a deleted task or thread) deletes the keys it lists
    instead of finding them with two RediSearch queries capped at 10,000 results each.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._delete_registered = self._redis.register_script(_DELETE_REGISTERED)

    async def aput(self, config, checkpoint, metadata, new_versions, stream_mode: str = "values"):  # type: ignore[no-untyped-def]
        configurable = config["configurable"]
        if self.cluster_mode or self.ttl_config:
            return await super().aput(config, checkpoint, metadata, new_versions, stream_mode)
        if configurable.get("thread_ts"):  # the library's path writes keys the registry would not list
            saved = await super().aput(config, checkpoint, metadata, new_versions, stream_mode)
            await self._redis.srem(keys.checkpoint_keys(configurable["thread_id"]), REGISTRY_COMPLETE)
            return saved
        run_id = configurable.get("run_id", metadata.get("run_id"))
        thread_id, checkpoint_ns = configurable["thread_id"], configurable["checkpoint_ns"]
        config_checkpoint_id = configurable.get("checkpoint_id")
        checkpoint_id = config_checkpoint_id or checkpoint.get("id", "")
        parent_checkpoint_id = None
        if checkpoint.get("id") and config_checkpoint_id and checkpoint["id"] != config_checkpoint_id:
            parent_checkpoint_id, checkpoint_id = config_checkpoint_id, checkpoint["id"]
        safe_thread_id, safe_ns = to_storage_safe_id(thread_id), to_storage_safe_str(checkpoint_ns)
        safe_checkpoint_id = to_storage_safe_id(checkpoint_id)
        document = {
            "thread_id": safe_thread_id,
            "run_id": to_storage_safe_id(run_id) if run_id else "",
            "checkpoint_ns": safe_ns,
            "checkpoint_id": safe_checkpoint_id,
            "parent_checkpoint_id": to_storage_safe_id(parent_checkpoint_id) if parent_checkpoint_id else "",
            "checkpoint_ts": _checkpoint_ts(checkpoint_id) if checkpoint_id else None,
            "checkpoint": self._dump_checkpoint(checkpoint.copy()),
            "metadata": self._dump_metadata(metadata),
            "has_writes": False,
        }
        if "source" in metadata and "step" in metadata:  # top-level, for the library's list filters
            document["source"], document["step"] = metadata["source"], metadata["step"]
        checkpoint_key = self._make_redis_checkpoint_key_cached(thread_id, checkpoint_ns, checkpoint_id)
        latest_key = self._make_redis_checkpoint_latest_key(thread_id, checkpoint_ns)
        registry = keys.checkpoint_keys(thread_id)
        # The root namespace's checkpoint without a parent is the thread's first.
        is_first = not checkpoint_ns and not config_checkpoint_id
        registered = self._registered(thread_id, checkpoint_ns, checkpoint_id, checkpoint_key, latest_key, is_first)
        pipe = self._redis.pipeline(transaction=False)
        if registered:  # listed before they are written: a key is never written without being listed
            pipe.execute_command("SADD", registry, *registered)
        # json.dumps, as redis-py's JSON.SET encodes the document RedisVL hands it.
        pipe.execute_command("JSON.SET", checkpoint_key, "$", json.dumps(document))
        pipe.execute_command("SET", latest_key, checkpoint_key)
        try:
            await pipe.execute()
        except asyncio.CancelledError:
            if stream_mode in ("values", "messages"):
                await self._save_interrupted(checkpoint_key, document, metadata, stream_mode, registry, registered)
            raise
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns,
                                 "checkpoint_id": checkpoint_id}}

    def _registered(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, checkpoint_key: str,
                    latest_key: str, is_first: bool) -> list[str]:
        """What the thread key registry lists of one checkpoint: its key, its write registry (whose writes
        `aput_writes` lists there), the namespace's latest pointer; and REGISTRY_COMPLETE for the thread's first
        checkpoint, from which on the registry lists every key. Nothing without the library's write registry
        (a saver not set up), whose writes the thread key registry could not reach."""
        if self._key_registry is None:
            return []
        zset_key = self._key_registry.make_write_keys_zset_key(thread_id, checkpoint_ns, checkpoint_id)
        return [checkpoint_key, zset_key, latest_key, *([REGISTRY_COMPLETE] if is_first else [])]

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and write registry of the thread, as the library does, from the
        thread key registry when it is complete (else, and in cluster or TTL mode, the library's way)."""
        if self.cluster_mode or self.ttl_config:
            await super().adelete_thread(thread_id)
            return
        registry = keys.checkpoint_keys(thread_id)
        args = [REGISTRY_COMPLETE, WRITE_KEYS_ZSET_PREFIX + ":", _REGISTRY_BATCH]
        left = 1
        while left > 0:
            left = await self._delete_registered(keys=[registry], args=args)
        if left < 0:
            await super().adelete_thread(thread_id)
            await self._redis.delete(registry)

    async def _save_interrupted(self, checkpoint_key: str, document: dict[str, Any], metadata: Any,
                                stream_mode: str, registry: str, registered: list[str]) -> None:
        # What the library's aput does when cancelled mid-write: store the checkpoint without its time and
        # list fields, marked interrupted, and leave the latest pointer alone; a failure here is dropped.
        # (Its parent id comes from checkpoint["parent_checkpoint_id"], which LangGraph never sets: "".)
        interrupted = {name: document[name] for name in ("thread_id", "run_id", "checkpoint_ns", "checkpoint_id")}
        interrupted |= {"parent_checkpoint_id": "", "checkpoint": document["checkpoint"],
                        "metadata": self._dump_metadata({**metadata, "interrupted": True, "stream_mode": stream_mode}),
                        "has_writes": False}
        try:
            pipe = self._redis.pipeline(transaction=False)
            if registered:
                pipe.execute_command("SADD", registry, *registered)
            pipe.execute_command("JSON.SET", checkpoint_key, "$", json.dumps(interrupted))
            await pipe.execute()
        except Exception:  # noqa: BLE001, S110 - as the library: the cancellation is what propagates
            pass


class FencedRedisSaver(_Fenced, _OneRoundTripPut):
    """Every checkpoint of a thread kept (`REDIS_PERSIST_CHECKPOINT_HISTORY=all`): history and time travel."""


# Deletes a shallow thread's registered writes that belong to neither of two checkpoints. Write keys end
# in `:<checkpoint id>:<task id>:<idx>`, so a plain substring test on `:<id>:` tells whose they are.
_PRUNE_WRITES = """
local stale = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if not string.find(member, ARGV[1], 1, true) and not string.find(member, ARGV[2], 1, true) then
    stale[#stale + 1] = member
  end
end
for i = 1, #stale, 500 do
  local last = math.min(i + 499, #stale)
  redis.call('DEL', unpack(stale, i, last))
  redis.call('ZREM', KEYS[1], unpack(stale, i, last))
end
return #stale
"""


class FencedShallowRedisSaver(_Fenced, AsyncShallowRedisSaver):
    """Only each thread's latest checkpoint kept (`REDIS_PERSIST_CHECKPOINT_HISTORY=latest`).

    A takeover needs nothing more: it continues from the latest checkpoint and its pending writes.
    The library's shallow saver keeps every checkpoint's writes until the thread is deleted (and loads
    them all as the latest one's pending writes); here each new checkpoint drops the writes of all
    checkpoints but itself and its parent (kept: an interrupt's writes may belong to the parent).
    """

    keeps_history = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prune_writes = self._lease_client.register_script(_PRUNE_WRITES)

    async def aget_tuple(self, config):  # type: ignore[no-untyped-def]
        # The library answers its one checkpoint whatever id was asked for; an older id is gone.
        found = await super().aget_tuple(config)
        wanted = config["configurable"].get("checkpoint_id")
        if found is not None and wanted and found.config["configurable"]["checkpoint_id"] != wanted:
            return None
        return found

    async def alist(self, config, **kwargs):  # type: ignore[no-untyped-def]
        # The library's list leaves out the channel values (stored inline); read each one whole.
        async for item in super().alist(config, **kwargs):
            yield await self.aget_tuple(item.config) or item

    async def aput(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        saved = await super().aput(config, checkpoint, metadata, new_versions)
        configurable = config["configurable"]
        parent_id = configurable.get("checkpoint_id") or checkpoint["id"]
        registry = (f"write_keys_zset:{configurable['thread_id']}:"
                    f"{to_storage_safe_str(configurable.get('checkpoint_ns', ''))}:shallow")
        await self._prune_writes(keys=[registry], args=[f":{checkpoint['id']}:", f":{parent_id}:"])
        return saved


FencedSaver = FencedRedisSaver | FencedShallowRedisSaver


def fenced_saver(history: str, *args: Any, **kwargs: Any) -> FencedSaver:
    """The fenced saver for a `checkpoint_history` setting: 'all' or 'latest'."""
    saver_class = FencedShallowRedisSaver if history == "latest" else FencedRedisSaver
    return saver_class(*args, **kwargs)
