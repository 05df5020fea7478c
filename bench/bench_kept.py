"""Flat with history: throughput and list / GET latency with 100,000 finished tasks kept, vs an empty Redis.

    .venv/bin/python bench/bench_kept.py [--kept 100000] [--sample 500] [--tasks 1000] [--in-flight 100]
                                         [--workers 1] [--rounds 1]

Issue 10's goal: with 100,000 finished tasks kept in Redis, throughput within 10 % of an empty Redis, and
`GET /api/tasks?limit=50` p99 <= 20 ms there.

Seeding (the kept Redis): `--sample` real `data_pipeline` tasks (step 0) run through a real replica, then
each is cloned until `--kept` finished tasks exist (bench/_clone_tasks.py: every key the task has, ours and
the saver's, under a new id, with every id and checkpoint id in names and values rewritten; the JSON
documents written with JSON.SET so RediSearch indexes them). Cloning was chosen over running 100,000 tasks
(~40 min here) or a faster in-process seeding path (still one graph run per task, and a second code path
that could drift from what a replica writes): a clone is byte-for-byte what a replica wrote, ids aside.
Clones are checked through the API before measuring: a clone's `GET /api/tasks/{id}`, its event replay
(SSE), its checkpoint history (the saver's RediSearch query by thread id) and its LangGraph thread state
(the saver's latest-checkpoint lookup) must equal its template's, ids aside.

Measuring, for each `--workers` value and round, on a fresh empty Redis and on the kept one (rounds
alternate which goes first), each with a fresh replica (`serve --workers N`): `--warmup` tasks first (so
both Redis have a full page of 50 to list), then `--idle-seconds` of probes alone, then the drain: `--tasks`
tasks created by `--in-flight` closed-loop clients, each creating a task and polling `GET /api/tasks/{id}`
every 0.1 s until it is settled (the side-by-side load), while the probes keep running. Probes, each back
to back with a 20 ms pause: `GET /api/tasks?limit=50`, `?status=completed&limit=50`,
`?status=running&limit=50` and `GET /api/tasks/{id}` of a random finished task (a kept one on the kept
Redis). tasks/s = tasks / (first create sent -> last completion seen). Also: every filter combination of
TaskStore.list timed in-process on both Redis, Redis CPU per command during the drain, and how long a
replica took to become healthy. Writes bench/results/bench_kept_<kept><--label>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from typing import Any

import httpx
import redis
from _clone_tasks import UUID_RE, clone_tasks, read_templates
from _common import (
    async_client,
    embedded_redis,
    exit_on_sigterm,
    finish_machine_info,
    follow_sse,
    machine_info,
    run,
    summary_ms,
    write_result,
)

from redis.asyncio import Redis as AsyncRedis

from redis_persist.core.auth import DEFAULT_TENANT
from redis_persist.core.status import SETTLED_STATUSES, TaskStatus
from redis_persist.store.tasks import TaskStore
from redis_persist.testing import ServiceProcess

GRAPH = "data_pipeline"
POLL_SECONDS = 0.1
PROBES = {
    "list": "/api/tasks?limit=50",
    "list_completed": "/api/tasks?status=completed&limit=50",
    "list_running": "/api/tasks?status=running&limit=50",
}


# --- load --------------------------------------------------------------------


async def closed_loop(base_url: str, ids: list[str], in_flight: int) -> dict[str, Any]:
    """`in_flight` clients; each creates a task, polls it every 0.1 s until settled, then takes the next."""
    todo = list(reversed(ids))
    polls: list[float] = []
    creates: list[float] = []
    outcomes: dict[str, str] = {}
    last_done = 0.0

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal last_done
        while todo:
            task_id = todo.pop()
            sent = time.perf_counter()
            response = await client.post("/api/tasks/execute", params={"task_id": task_id},
                                         json={"graph_name": GRAPH, "initial_state": {"step_seconds": 0},
                                               "task_id": task_id})
            creates.append(time.perf_counter() - sent)
            if response.status_code != 202:
                raise RuntimeError(f"create {task_id}: HTTP {response.status_code} {response.text[:300]}")
            while True:
                await asyncio.sleep(POLL_SECONDS)
                started = time.perf_counter()
                response = await client.get(f"/api/tasks/{task_id}")
                polls.append(time.perf_counter() - started)
                status = response.json()["status"]
                if status in SETTLED_STATUSES:
                    outcomes[task_id] = status
                    last_done = time.perf_counter()
                    break

    async with async_client(base_url) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(in_flight)))
    wall = last_done - started
    failed = sum(1 for status in outcomes.values() if status != "completed")
    return {"tasks": len(ids), "in_flight": in_flight, "wall_s": round(wall, 2),
            "tasks_per_s": round(len(ids) / wall, 2), "not_completed": failed,
            "create": summary_ms(creates), "poll_get": summary_ms(polls)}


async def probe(base_url: str, path_of, stop: asyncio.Event, latencies: list[float], errors: list[str]) -> None:
    """`GET path_of()` back to back (20 ms apart) until `stop`, recording each answer's latency."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60, trust_env=False) as client:
        while not stop.is_set():
            path = path_of()
            started = time.perf_counter()
            response = await client.get(path)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors.append(f"{path}: {response.status_code}")
            await asyncio.sleep(0.02)


async def measure(base_url: str, redis_url: str, finished_ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, idle probes, then the drain with the probes running."""
    warmup = [uuid.uuid4().hex for _ in range(args.warmup)]
    result: dict[str, Any] = {"warmup": await closed_loop(base_url, warmup, min(50, args.warmup))}
    targets = finished_ids or warmup
    paths = {**PROBES, "get": None}
    errors: list[str] = []
    for phase in ("idle", "drain"):
        latencies: dict[str, list[float]] = {name: [] for name in paths}
        stop = asyncio.Event()
        probes = [asyncio.create_task(probe(
            base_url, (lambda p=path: p) if path else (lambda: f"/api/tasks/{random.choice(targets)}"),
            stop, latencies[name], errors)) for name, path in paths.items()]
        try:
            if phase == "idle":
                await asyncio.sleep(args.idle_seconds)
            else:
                ids = [uuid.uuid4().hex for _ in range(args.tasks)]
                costs = RedisCosts(redis_url)
                result["drain"] = await closed_loop(base_url, ids, args.in_flight)
                result["drain"]["redis"] = costs.stop(args.tasks)
        finally:
            stop.set()
            await asyncio.gather(*probes)
        result[f"{phase}_probes"] = {name: summary_ms(values) for name, values in latencies.items()}
    result["probe_errors"] = errors[:20]
    return result


class RedisCosts:
    """What Redis spent between construction and stop(): per command calls and microseconds per call, forks."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, decode_responses=True)
        self._client.config_resetstat()
        self._forks = self._client.info("stats")["total_forks"]

    def stop(self, tasks: int) -> dict[str, Any]:
        try:
            stats = self._client.info("commandstats")
            forks = self._client.info("stats")["total_forks"] - self._forks
            persistence = self._client.info("persistence")
        finally:
            self._client.close()
        stats.pop("cmdstat_config|resetstat", None)
        usec = sum(v["usec"] for v in stats.values())
        top = sorted(stats.items(), key=lambda kv: -kv[1]["usec"])[:10]
        return {"redis_cpu_ms_per_task": round(usec / tasks / 1000, 2), "forks": forks,
                "aof_rewrite_in_progress": persistence["aof_rewrite_in_progress"],
                "top_commands_by_time": {name.removeprefix("cmdstat_"): {
                    "calls_per_task": round(v["calls"] / tasks, 1), "usec_per_call": v["usec_per_call"]}
                    for name, v in top}}


def settle_aof(url: str) -> float:
    """Rewrite the AOF now and wait for it, so no rewrite left over from seeding runs during a measurement."""
    client = redis.Redis.from_url(url, decode_responses=True)
    started = time.perf_counter()
    try:
        while client.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.5)
        client.bgrewriteaof()
        time.sleep(0.5)
        while client.info("persistence")["aof_rewrite_in_progress"] or \
                client.info("persistence")["aof_rewrite_scheduled"]:
            time.sleep(0.5)
    finally:
        client.close()
    return time.perf_counter() - started


# Every filter combination of TaskStore.list (what GET /api/tasks runs; with auth on, a tenant's key lists
# its own tenant's tasks): (status, graph_name, tenant).
LIST_PATHS = {
    "all": (None, None, None),
    "status=completed": (TaskStatus.COMPLETED, None, None),
    "status=running": (TaskStatus.RUNNING, None, None),
    "graph": (None, GRAPH, None),
    "graph+status=running": (TaskStatus.RUNNING, GRAPH, None),
    "tenant": (None, None, DEFAULT_TENANT),
    "tenant+status=completed": (TaskStatus.COMPLETED, None, DEFAULT_TENANT),
    "tenant+status=running": (TaskStatus.RUNNING, None, DEFAULT_TENANT),
    "tenant+graph": (None, GRAPH, DEFAULT_TENANT),
    "tenant+graph+status=running": (TaskStatus.RUNNING, GRAPH, DEFAULT_TENANT),
}


async def store_list_paths(redis_url: str, repeat: int = 20) -> dict[str, Any]:
    """Each list path of TaskStore, in this process (no HTTP): latency of a first page of 50."""
    client = AsyncRedis.from_url(redis_url, decode_responses=True)
    store = TaskStore(client, events_max_per_task=10_000)
    out = {}
    try:
        for name, (status, graph, tenant) in LIST_PATHS.items():
            latencies = []
            for _ in range(repeat):
                started = time.perf_counter()
                page, _ = await store.list(status, graph, 50, None, tenant)
                latencies.append(time.perf_counter() - started)
            out[name] = {**summary_ms(latencies), "tasks": len(page)}
    finally:
        await client.aclose()
    return out


def redis_memory(url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        info = client.info("memory")
        search = {name: int(client.ft(name).info()["num_docs"]) for name in client.execute_command("FT._LIST")}
        return {"used_memory_mib": round(info["used_memory"] / 2**20, 1), "keys": client.dbsize(),
                "search_docs": search}
    finally:
        client.close()


def one_replica(redis_url: str, workers: int, finished_ids: list[str], args: argparse.Namespace,
                check: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    service = ServiceProcess(redis_url, name="api-1", args=["--workers", str(workers), "--log-level", "warning"])
    try:
        started = time.perf_counter()
        service.start(timeout=180)
        healthy_after = time.perf_counter() - started
        if check:
            run(verify_clones(service.url, check))
        return {"replica_healthy_after_s": round(healthy_after, 2),
                **run(measure(service.url, redis_url, finished_ids, args))}
    except BaseException:
        print(f"--- service log (tail) ---\n{service.log()[-5000:]}")
        raise
    finally:
        service.stop()
        service.log_path.unlink(missing_ok=True)


# --- seeding -----------------------------------------------------------------


def seed(redis_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """`--sample` real tasks through a replica, then clones up to `--kept` finished tasks."""
    started = time.perf_counter()
    template_ids = [f"tmpl-{n:05d}" for n in range(args.sample)]
    service = ServiceProcess(redis_url, name="seed", args=["--workers", "1", "--log-level", "warning"])
    service.start()
    try:
        sample = run(closed_loop(service.url, template_ids, 100))
    finally:
        service.stop()
        service.log_path.unlink(missing_ok=True)
    if sample["not_completed"]:
        raise SystemExit(f"{sample['not_completed']} sample tasks did not complete")
    ran_in = time.perf_counter() - started
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        templates = read_templates(client, template_ids)
        clone_started = time.perf_counter()
        clones = clone_tasks(client, templates, args.kept - args.sample, "kept")
        cloned_in = time.perf_counter() - clone_started
    finally:
        client.close()
    aof_s = settle_aof(redis_url)
    memory = redis_memory(redis_url)
    print(f"seeded {args.kept:,} finished tasks: {args.sample} run in {ran_in:.0f} s, {len(clones):,} cloned in "
          f"{cloned_in:.0f} s, AOF rewritten in {aof_s:.0f} s; Redis used_memory {memory['used_memory_mib']:,} MiB, "
          f"{memory['keys']:,} keys, "
          f"RediSearch docs {memory['search_docs']}")
    pairs = [(template_ids[n % args.sample], clones[n]) for n in random.sample(range(len(clones)), min(5, len(clones)))]
    return {"sample_run": sample, "sample_run_s": round(ran_in, 1), "cloned": len(clones),
            "clone_s": round(cloned_in, 1), "aof_rewrite_s": round(aof_s, 1),
            "clones_per_s": round(len(clones) / cloned_in, 1),
            "keys_per_task": {kind: sum(1 for k in templates[0].keys if k[0] == kind)
                              for kind in sorted({k[0] for k in templates[0].keys})},
            "redis_after_seeding": memory, "verified_pairs": pairs, "ids": template_ids + clones}


def _normalised(value: Any, own_id: str) -> str:
    """JSON text with the task's id and every UUID (checkpoint / LangGraph task ids) replaced by placeholders.

    UUIDs become `<uuid N>` in order of first appearance, so two tasks compare equal when they differ by
    ids only, and a clone that kept its template's checkpoint ids would not.
    """
    text = json.dumps(value, sort_keys=True).replace(own_id, "<task>")
    seen: dict[str, str] = {}
    return UUID_RE.sub(lambda m: seen.setdefault(m.group(), f"<uuid {len(seen)}>"), text)


async def _views(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    task = (await client.get(f"/api/tasks/{task_id}")).raise_for_status().json()
    events = [event for _, event in await follow_sse(client, task_id)]
    history = (await client.get(f"/api/tasks/{task_id}/history")).raise_for_status().json()
    state = (await client.get(f"/threads/{task_id}/state")).raise_for_status().json()
    for volatile in ("updated_at", "created_at"):
        task.pop(volatile, None)
    for event in events:
        event.pop("ts", None)
    return {"task": task, "events": events, "history": history, "state": state}


async def verify_clones(base_url: str, pairs: list[tuple[str, str]]) -> None:
    """Each clone answers like its template (ids aside) and with ids of its own."""
    async with async_client(base_url, timeout=30) as client:
        for template_id, clone_id in pairs:
            template, clone = await _views(client, template_id), await _views(client, clone_id)
            assert clone["task"]["status"] == "completed" and clone["task"]["state"]["saved"] is True, clone["task"]
            assert clone["task"]["task_id"] == clone_id and clone["state"]["checkpoint"]["thread_id"] == clone_id
            assert clone["state"]["checkpoint_id"] == clone["task"]["checkpoint_id"] \
                == clone["history"]["checkpoints"][0]["checkpoint_id"], clone
            template_uuids = set(UUID_RE.findall(json.dumps(template)))
            assert not template_uuids & set(UUID_RE.findall(json.dumps(clone))), "a clone shares ids with its template"
            for part in ("task", "events", "history", "state"):
                assert _normalised(clone[part], clone_id) == _normalised(template[part], template_id), part
            assert len(clone["history"]["checkpoints"]) >= 1 and clone["events"][-1]["status"] == "completed"
    print(f"verified {len(pairs)} clones against their templates: task, event replay, checkpoint history, "
          f"thread state")


# --- report ------------------------------------------------------------------


def ratio(kept: float, empty: float) -> float:
    return round(kept / empty, 3) if empty else float("nan")


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median tasks/s of each side over the rounds, and each round's kept/empty ratio."""
    ratios = [ratio(r["kept"]["drain"]["tasks_per_s"], r["empty"]["drain"]["tasks_per_s"]) for r in rounds]
    return {
        "tasks_per_s_empty": statistics.median(r["empty"]["drain"]["tasks_per_s"] for r in rounds),
        "tasks_per_s_kept": statistics.median(r["kept"]["drain"]["tasks_per_s"] for r in rounds),
        "ratio_kept_over_empty_per_round": ratios, "ratio_median": round(statistics.median(ratios), 3),
    }


def print_table(workers: int, rounds: list[dict[str, Any]]) -> None:
    for n, r in enumerate(rounds):
        print(f"\n--workers {workers}, round {n + 1}        {'empty':>22} {'kept':>22}")
        cells = [r[side]["drain"]["tasks_per_s"] for side in ("empty", "kept")]
        print(f"  tasks/s (drain)          {cells[0]:>22} {cells[1]:>22}")
        for phase in ("idle", "drain"):
            for name in (*PROBES, "get"):
                cells = [f"{r[side][f'{phase}_probes'][name].get('p50_ms')} / "
                         f"{r[side][f'{phase}_probes'][name].get('p99_ms')} ms" for side in ("empty", "kept")]
                print(f"  {phase:5} {name:18} p50/p99 {cells[0]:>22} {cells[1]:>22}")
        cells = [f"{r[side]['drain']['poll_get']['p50_ms']} / {r[side]['drain']['poll_get']['p99_ms']} ms"
                 for side in ("empty", "kept")]
        print(f"  drain poll GET     p50/p99 {cells[0]:>22} {cells[1]:>22}")
        cells = [f"{r[side]['drain']['redis']['redis_cpu_ms_per_task']} ms" for side in ("empty", "kept")]
        print(f"  drain Redis CPU per task   {cells[0]:>22} {cells[1]:>22}")
        for command in ("json.set", "ft.search", "evalsha"):
            cells = [f"{r[side]['drain']['redis']['top_commands_by_time'].get(command, {}).get('usec_per_call')} us"
                     for side in ("empty", "kept")]
            print(f"  drain {command:9} per call    {cells[0]:>22} {cells[1]:>22}")
        for name in LIST_PATHS:
            cells = [f"{r[side]['store_list_paths'][name]['p50_ms']} ms ({r[side]['store_list_paths'][name]['tasks']})"
                     for side in ("empty", "kept")]
            print(f"  store.list {name:27} {cells[0]:>14} {cells[1]:>22}")
        cells = [f"{r[side]['replica_healthy_after_s']} s" for side in ("empty", "kept")]
        print(f"  replica healthy after      {cells[0]:>22} {cells[1]:>22}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kept", type=int, default=100_000, help="finished tasks in the kept Redis")
    parser.add_argument("--sample", type=int, default=500, help="of which run for real (the rest are clones)")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks of the measured drain")
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="serve --workers values to measure")
    parser.add_argument("--rounds", type=int, default=1, help="empty/kept pairs per --workers value")
    parser.add_argument("--label", default="", help="suffix of the result file's name, so a run keeps the last one's")
    args = parser.parse_args()
    if not 0 < args.sample <= args.kept:
        parser.error("--sample must be between 1 and --kept")
    exit_on_sigterm()
    info = machine_info()
    result: dict[str, Any] = {"benchmark": "bench_kept", "settings": vars(args), "machine": info}
    with embedded_redis("kept") as kept_redis:
        seeding = seed(kept_redis.url, args)
        kept_ids = seeding.pop("ids")
        result["seeding"] = seeding
        check = [tuple(pair) for pair in seeding["verified_pairs"]]
        for workers in args.workers:
            rounds = []
            for n in range(args.rounds):
                def on_empty() -> dict[str, Any]:
                    with embedded_redis("empty") as empty_redis:
                        empty = one_replica(empty_redis.url, workers, [], args)
                        empty["redis_after"] = redis_memory(empty_redis.url)
                        empty["store_list_paths"] = run(store_list_paths(empty_redis.url))
                    return empty

                def on_kept() -> dict[str, Any]:
                    kept = one_replica(kept_redis.url, workers, kept_ids, args, check=check)
                    kept["redis_after"] = redis_memory(kept_redis.url)
                    kept["store_list_paths"] = run(store_list_paths(kept_redis.url))
                    return kept

                # Alternate which side goes first, so a trend in the machine's other load favours neither.
                if n % 2 == 0:
                    empty, kept = on_empty(), on_kept()
                else:
                    kept, empty = on_kept(), on_empty()
                check = None
                rounds.append({"empty": empty, "kept": kept, "first": "empty" if n % 2 == 0 else "kept"})
                print_table(workers, rounds[-1:])
            result[f"workers_{workers}"] = {"summary": summarise(rounds), "rounds": rounds}
            print(f"\n--workers {workers}: {result[f'workers_{workers}']['summary']}")
    finish_machine_info(info)
    write_result(f"bench_kept_{args.kept}{args.label}", result)


if __name__ == "__main__":
    main()
