"""Every Lua script touches only keys it received in KEYS (the rule Redis sets for scripts; issue 11.3).

The real Redis's MONITOR shows each EVALSHA (with its KEYS) followed by the commands its script ran; the
server's own COMMAND GETKEYS says which arguments of each command are keys. A script building a key name
from an argument or from data it read (`'rp:task:' .. id`) would touch a key it was not given: caught here.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import re
import threading

import pytest
import redis
from redis.asyncio import Redis

from redis_persist.core.errors import IllegalTransition
from redis_persist.core.events import status_event
from redis_persist.core.status import Action, TaskStatus
from redis_persist.store import keys, scripts, thread_scripts
from redis_persist.store.connections import RedisConnections
from redis_persist.store.leases import LeaseKeeper
from redis_persist.store.queue import WorkQueue
from redis_persist.store.tasks import TaskStore
from redis_persist.store.threads import ThreadStore
from redis_persist.store.webhooks import WebhookQueue

S = TaskStatus
ALL_SCRIPTS = {
    name: getattr(module, name)
    for module, names in ((scripts, ("CREATE", "ACT", "CLAIM", "RECORD", "RENEW_LEASES", "DELETE", "FAIR_READ",
                                    "COMPACT", "READ_TASKS")),
                          (thread_scripts, ("CREATE_THREAD", "CREATE_RUN", "ADVANCE", "DELETE_THREAD",
                                            "LOCK_FOR_UPDATE", "RELEASE_LEASE", "CLAIM_WEBHOOKS")))
    for name in names
}
_LINE = re.compile(r"^[\d.]+ \[\d+ ([^\]]+)\] (.*)$")
_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
DONE = "script-keys-monitor-done"


def _args(quoted: str) -> list[str]:
    """MONITOR's quoted arguments (escaped as Redis's sdscatrepr does) back to strings."""
    return [codecs.escape_decode(arg.encode())[0].decode("utf-8", "replace") for arg in _ARG.findall(quoted)]


class ScriptWatch:
    """Records MONITOR lines in a thread until stopped."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, decode_responses=True)
        self.lines: list[tuple[str, list[str]]] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ScriptWatch:
        self._thread.start()
        assert self._ready.wait(10), "MONITOR did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._client.echo(DONE)
        self._thread.join(10)
        self._client.close()

    def _watch(self) -> None:
        with self._client.monitor() as monitor:
            self._ready.set()
            while True:
                match = _LINE.match(monitor.connection.read_response())
                if match is None:
                    continue
                source, args = match.group(1), _args(match.group(2))
                if args[:2] == ["ECHO", DONE]:
                    return
                self.lines.append(("lua" if source == "lua" else "client", args))

    def undeclared(self, probe: redis.Redis) -> list[str]:
        """Each key a script's command touched that was not in that script's KEYS."""
        problems: list[str] = []
        declared: set[str] | None = None
        for source, args in self.lines:
            if source == "client":
                is_script = args and args[0].upper() in ("EVALSHA", "EVAL")
                declared = set(args[3:3 + int(args[2])]) if is_script else None
                continue
            for key in _keys_of(probe, args):
                if declared is None or key not in declared:
                    problems.append(f"{' '.join(args)[:120]!r} touches {key!r}")
        return problems

    def scripts_run(self) -> set[str]:
        return {args[1] for source, args in self.lines if source == "client" and args[0].upper() == "EVALSHA"}


def _keys_of(probe: redis.Redis, args: list[str]) -> list[str]:
    try:
        return probe.execute_command("COMMAND GETKEYS", *args)
    except redis.ResponseError as error:
        if "no key arguments" in str(error):  # PUBLISH: a channel, not a key
            return []
        raise


@pytest.fixture
def probe(clean_redis: str):
    client = redis.Redis.from_url(clean_redis, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def aredis(clean_redis: str):
    client = Redis.from_url(clean_redis, decode_responses=True)
    yield client
    await client.aclose()


async def test_the_check_catches_a_script_that_builds_a_key_name(clean_redis, aredis, probe) -> None:
    built = aredis.register_script("redis.call('SET', KEYS[1], 1) return redis.call('GET', 'rp:task:' .. ARGV[1])")
    with ScriptWatch(clean_redis) as watch:
        await built(keys=["rp:task:{given}"], args=["built"])
    assert watch.undeclared(probe) == ["'GET rp:task:built' touches 'rp:task:built'"]


async def _lease_round(keeper: LeaseKeeper) -> None:
    await asyncio.to_thread(keeper._renew_all)  # one renewal round, as its thread runs them


async def test_every_script_touches_only_its_keys(clean_redis, aredis, probe) -> None:
    tasks = TaskStore(aredis, 100, finished_ttl_seconds=60, compaction_grace_seconds=0)
    threads = ThreadStore(aredis, 100, 60)
    queue, hooks = WorkQueue(aredis, "c1", tenant_max_running=5), WebhookQueue(aredis)
    keeper = LeaseKeeper(RedisConnections.from_url(clean_redis), "r1", lease_ttl_seconds=5, on_lost=lambda _: None)
    await queue.ensure_group()

    async def run(run_id: str, strategy: str, thread: str = "th1", if_not_exists: str = "reject") -> tuple:
        return await threads.create_run(run_id, thread, "g", strategy, if_not_exists,
                                        {"tenant": "acme", "run_spec": "{}", "initial_state": "{}"}, {})

    with ScriptWatch(clean_redis) as watch:
        # Tasks of two tenants, read fairly, run, paused, resumed, finished, renewed and deleted.
        await tasks.create("t1", "g", {}, "h1")
        await tasks.create("acme.t2", "g", {}, "h2", tenant="acme")
        assert [task.task_id for task in (await tasks.list(None, None, 50, None))[0]] == ["acme.t2", "t1"]
        assert len(await queue.read(10, 0)) == 2
        token = await tasks.claim("t1", "r1", 10_000)
        assert token is not None
        keeper.hold("t1", token)
        await _lease_round(keeper)
        assert await tasks.record("t1", token, {"progress": "50"}, events=[status_event("t1", S.RUNNING)]) is False
        await tasks.act("t1", Action.PAUSE)  # a request while running
        await tasks.act("t1", Action.SUSPEND, token=token, drop=["pause_requested"])
        await _lease_round(keeper)  # released: the task left running under this lease
        await tasks.act("t1", Action.RESUME)
        token = await tasks.claim("t1", "r1", 10_000)
        await tasks.act("t1", Action.COMPLETE, token=token)
        assert await tasks.keep_final_checkpoint("t1", {"checkpoint_id": "c1"})  # compaction's first step
        await tasks.act("t1", Action.DELETE)
        token = await tasks.claim("acme.t2", "r1", 10_000)
        await aredis.delete(keys.lease("acme.t2"))  # its replica is gone
        assert await tasks.requeue_if_orphaned("acme.t2")

        # Threads of tenant acme: enqueue, hand-over past a cancelled pending run, interrupt, rollback, update lock.
        await threads.create_thread("acme.th1", {}, "raise")
        assert await run("acme.r1", "enqueue", "acme.th1") == ("created", "")
        assert (await run("acme.r2", "enqueue", "acme.th1"))[0] == "pending"
        assert (await run("acme.r3", "enqueue", "acme.th1"))[0] == "pending"
        await tasks.act("acme.r2", Action.CANCEL)
        assert await threads.advance("acme.th1") is None  # r1 still holds it
        await tasks.act("acme.r1", Action.COMPLETE, token=await tasks.claim("acme.r1", "r1", 10_000))
        assert await threads.advance("acme.th1") == "acme.r3"  # r2 (cancelled) dropped on the way
        assert await run("acme.r4", "interrupt", "acme.th1") == ("created", "acme.r3")
        assert await run("acme.r5", "rollback", "acme.th1") == ("created", "acme.r4")
        with pytest.raises(IllegalTransition):
            await threads.lock_for_update("acme.th1", "lock", 5_000)
        await tasks.act("acme.r5", Action.COMPLETE, token=await tasks.claim("acme.r5", "r1", 10_000))
        lease_id = await threads.lock_for_update("acme.th1", "lock", 5_000)
        await threads.release_lease(lease_id, "lock")
        await hooks.arm("acme.r5", "http://127.0.0.1:1/hook", 0)
        assert [(run_id, attempt) for run_id, _, attempt in await hooks.claim_due(1_000, 10)] == [("acme.r5", 1)]
        assert await threads.delete_thread("acme.th1")
        assert await run("acme.r6", "enqueue", "acme.th2", if_not_exists="create") == ("created", "")
    keeper._client.close()

    assert watch.undeclared(probe) == []
    ran = watch.scripts_run()
    missing = [name for name, text in ALL_SCRIPTS.items() if hashlib.sha1(text.encode()).hexdigest() not in ran]
    assert missing == []  # every script was exercised
