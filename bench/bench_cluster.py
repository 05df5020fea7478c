"""Through nginx to 3 replicas (redis_persist.testing's LocalCluster): 100 at once, 1,000 queued, a SIGKILL.

    .venv/bin/python bench/bench_cluster.py [--lease-ttl 3] [--backlog 1000] [--failover-tasks 60]

1. 100 data_pipeline tasks created together through nginx (step_seconds 0 and 0.5), each followed over SSE
   through nginx: completed tasks/s, create and end-to-end latency.
2. 1,000 tasks (step_seconds 0) created at once. Each replica runs at most REDIS_PERSIST_MAX_TASKS tasks
   at once (100, the default; then again on a fresh cluster with 10, where most of the 1,000 really wait in
   the queue). Completion is watched on /metrics; afterwards each task's
   record gives its completion time (`updated_at` of a completed task is the time its final status was
   written): completed tasks/s and end-to-end latency (create sent -> completed, same machine's clock).
3. Failover: data_pipeline tasks with step_seconds 2 spread over the replicas; the replica running the most
   is SIGKILLed. From each orphaned task's events: the `queued` status event with reason "replica lost"
   and the next `running` event (new owner). Reports the time from the kill to the last re-queue and to
   the last re-claim, with the lease TTL used, and checks that no completed node ran again.
Writes bench/results/bench_cluster.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from _common import (
    CpuMeter,
    async_client,
    create_task,
    embedded_redis,
    exit_on_sigterm,
    finish_machine_info,
    follow_sse,
    machine_info,
    parse_ts,
    run,
    server_times,
    summary_ms,
    write_result,
)
from redis_persist.testing import LocalCluster, rerun_completed_nodes

GRAPH = "data_pipeline"
MAX_TASKS = 100


def pids_of(cluster: LocalCluster, redis_pid: int) -> dict[str, int]:
    pids = {name: replica.pid for name, replica in cluster.replicas.items() if replica.process.poll() is None}
    return {**pids, "nginx (+workers)": cluster.nginx.process.pid, "redis": redis_pid}


async def concurrent_round(cluster: LocalCluster, redis_pid: int, tasks: int, step: float, prefix: str) -> dict:
    """N tasks created together through nginx, each followed over SSE through nginx."""
    meter = CpuMeter(pids_of(cluster, redis_pid), with_children=frozenset({"nginx (+workers)"}))
    async with async_client(cluster.url) as client:

        async def one(i: int) -> dict:
            task_id = f"{prefix}-{i:04d}"
            sent, answered = await create_task(client, task_id, GRAPH, {"step_seconds": step})
            received = await follow_sse(client, task_id)
            events = [event for _, event in received]
            owner = next((e.get("owner") for e in events if e.get("status") == "running"), None)
            return {"sent": sent, "answered": answered, "done": received[-1][0],
                    "status": received[-1][1].get("status"), "server": server_times(events), "owner": owner}

        start = time.time()
        outcomes = await asyncio.gather(*(one(i) for i in range(tasks)))
    cpu = meter.stop()
    if {o["status"] for o in outcomes} != {"completed"}:
        raise RuntimeError(f"not every task completed: {sorted({o['status'] for o in outcomes})}")
    wall = max(o["done"] for o in outcomes) - start
    owners: dict[str, int] = {}
    for o in outcomes:
        owners[o["owner"]] = owners.get(o["owner"], 0) + 1
    return {
        "tasks": tasks,
        "step_seconds": step,
        "wall_s": round(wall, 3),
        "completed_tasks_per_s": round(tasks / wall, 1),
        "create_latency": summary_ms([o["answered"] - o["sent"] for o in outcomes]),
        "end_to_end_latency": summary_ms([o["done"] - o["sent"] for o in outcomes]),
        "server_queue_wait": summary_ms([o["server"]["running"] - o["server"]["queued"] for o in outcomes]),
        "server_run_time": summary_ms([o["server"]["final"] - o["server"]["running"] for o in outcomes]),
        "tasks_run_by_replica": dict(sorted(owners.items())),
        "cpu": cpu,
    }


async def metric_counts(client: httpx.AsyncClient) -> dict[str, int]:
    """Tasks by status from /metrics (counts over all replicas, from Redis)."""
    text = (await client.get("/metrics")).text
    return {m[1]: int(float(m[2])) for m in re.finditer(r'^redis_persist_tasks\{status="(\w+)"\} (\S+)$', text, re.M)}


async def backlog_round(cluster: LocalCluster, redis_pid: int, tasks: int, step: float, prefix: str,
                        timeout: float, max_tasks: int) -> dict:
    """`tasks` creates at once; wait until all are completed (via /metrics); read their records."""
    meter = CpuMeter(pids_of(cluster, redis_pid), with_children=frozenset({"nginx (+workers)"}))
    async with async_client(cluster.url) as client:
        before = (await metric_counts(client)).get("completed", 0)
        ids = [f"{prefix}-{i:05d}" for i in range(tasks)]
        start = time.time()
        created = await asyncio.gather(*(create_task(client, t, GRAPH, {"step_seconds": step}) for t in ids))
        all_created = time.time()
        peak_queued = 0
        deadline = time.monotonic() + timeout
        while True:
            counts = await metric_counts(client)
            peak_queued = max(peak_queued, counts.get("queued", 0))
            if counts.get("completed", 0) - before >= tasks or counts.get("failed", 0):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"backlog not done in {timeout:.0f} s: {counts}")
            await asyncio.sleep(0.25)
        seen_done = time.time()
        cpu = meter.stop()
        limit = asyncio.Semaphore(50)

        async def record(task_id: str) -> dict:
            async with limit:
                response = await client.get(f"/api/tasks/{task_id}")
                response.raise_for_status()
                return response.json()

        records = await asyncio.gather(*(record(t) for t in ids))
    statuses = {r["status"] for r in records}
    if statuses != {"completed"}:
        raise RuntimeError(f"not every backlog task completed: {statuses}")
    done = [parse_ts(r["updated_at"]) for r in records]
    last_done = max(done)
    owners: dict[str, int] = {}
    for r in records:
        owners[r["owner"]] = owners.get(r["owner"], 0) + 1
    return {
        "tasks": tasks,
        "step_seconds": step,
        "max_tasks_per_replica": max_tasks,
        "peak_queued_seen": peak_queued,
        "all_created_after_s": round(all_created - start, 3),
        "wall_s": round(last_done - start, 3),
        "completed_tasks_per_s": round(tasks / (last_done - start), 1),
        "create_latency": summary_ms([answered - sent for sent, answered in created]),
        "end_to_end_latency": summary_ms([d - sent for d, (sent, _) in zip(done, created, strict=True)]),
        "detected_done_after_s": round(seen_done - start, 3),
        "tasks_run_by_replica": dict(sorted(owners.items())),
        "cpu": cpu,
    }


async def running_by_owner(client: httpx.AsyncClient, prefix: str) -> dict[str, list[dict]]:
    response = await client.get("/api/tasks", params={"status": "running", "limit": 500})
    response.raise_for_status()
    by_owner: dict[str, list[dict]] = {}
    for task in response.json()["tasks"]:
        if task["task_id"].startswith(prefix):
            by_owner.setdefault(task["owner"], []).append(task)
    return by_owner


async def failover_round(cluster: LocalCluster, tasks: int, step: float, prefix: str, timeout: float) -> dict:
    """SIGKILL the replica running the most tasks (once they are past their first node); time the takeover."""
    async with async_client(cluster.url) as client:
        ids = [f"{prefix}-{i:03d}" for i in range(tasks)]
        await asyncio.gather(*(create_task(client, t, GRAPH, {"step_seconds": step}) for t in ids))
        deadline = time.monotonic() + 60
        while True:  # every task running, and a first node checkpointed
            by_owner = await running_by_owner(client, prefix)
            running = [t for ts in by_owner.values() for t in ts]
            if len(running) == tasks and all(t.get("checkpoint") for t in running):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"tasks did not all start: {len(running)} running")
            await asyncio.sleep(0.1)
        victim = max(by_owner, key=lambda name: len(by_owner[name]))
        at_kill = {t["task_id"] for t in by_owner[victim]}
        spread = {name: len(ts) for name, ts in sorted(by_owner.items())}
        cluster.replicas[victim].kill()  # SIGKILL, waited for
        killed_at = time.time()
        print(f"  SIGKILLed {victim} running {len(at_kill)} tasks (spread {spread})")
        deadline = time.monotonic() + timeout
        while True:
            counts = {}
            for task_id in ids:
                status = (await client.get(f"/api/tasks/{task_id}")).json()["status"]
                counts[status] = counts.get(status, 0) + 1
            if counts.get("completed", 0) == tasks or counts.get("failed"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"failover tasks not done in {timeout:.0f} s: {counts}")
            await asyncio.sleep(0.5)
        events = dict(zip(ids, await asyncio.gather(*(follow_sse(client, t) for t in ids)), strict=True))
    requeued, reclaimed, new_owners, reruns, missing = [], [], {}, [], []
    for task_id, received in events.items():
        evs = [e for _, e in received]
        if rerun_completed_nodes(evs):
            reruns.append(task_id)
        lost = next((i for i, e in enumerate(evs) if e.get("status") == "queued"
                     and "replica lost" in (e.get("reason") or "")), None)
        if lost is None:
            if task_id in at_kill:
                missing.append(task_id)
            continue
        claim = next(e for e in evs[lost + 1:] if e.get("status") == "running")
        requeued.append(parse_ts(evs[lost]["ts"]) - killed_at)
        reclaimed.append(parse_ts(claim["ts"]) - killed_at)
        new_owners[claim["owner"]] = new_owners.get(claim["owner"], 0) + 1
    final = {e[-1][1].get("status") for e in events.values()}
    return {
        "tasks": tasks,
        "step_seconds": step,
        "lease_ttl_s": cluster.lease_ttl_seconds,
        "victim": victim,
        "running_per_replica_at_kill": spread,
        "orphaned_tasks": len(requeued),
        "victim_tasks_without_replica_lost_event": missing,
        "kill_to_requeue": summary_ms(requeued),
        "kill_to_reclaim": summary_ms(reclaimed),
        "kill_to_last_reclaim_s": round(max(reclaimed), 3) if reclaimed else None,
        "reclaimed_by": new_owners,
        "final_statuses": sorted(final),
        "tasks_with_a_completed_node_rerun": reruns,
    }


@contextlib.contextmanager
def running_cluster(max_tasks: int, lease_ttl: float) -> Iterator[tuple[LocalCluster, int]]:
    """A fresh embedded Redis, replicas api-1..3 and nginx; everything stopped and removed afterwards."""
    run_dir = Path(tempfile.mkdtemp(prefix="rp-bench-cluster-"))
    with embedded_redis("cluster") as redis:
        cluster = LocalCluster(redis.url, run_dir, lease_ttl_seconds=lease_ttl,
                               extra_env={"REDIS_PERSIST_MAX_TASKS": str(max_tasks)})
        try:
            started = time.perf_counter()
            cluster.start()
            print(f"cluster up in {time.perf_counter() - started:.1f} s: nginx {cluster.url}, "
                  f"REDIS_PERSIST_MAX_TASKS={max_tasks}, lease TTL {lease_ttl:g} s")
            yield cluster, redis.pid
        except BaseException:
            for name, replica in cluster.replicas.items():
                print(f"--- {name} log ---\n{replica.log()[-2000:]}")
            raise
        finally:
            cluster.stop()
            for replica in cluster.replicas.values():
                replica.log_path.unlink(missing_ok=True)
            shutil.rmtree(run_dir, ignore_errors=True)


def print_backlog(r: dict) -> None:
    print(f"{r['tasks']} created at once, step 0, max {r['max_tasks_per_replica']} per replica: "
          f"{r['completed_tasks_per_s']} tasks/s (wall {r['wall_s']} s, all created after {r['all_created_after_s']} s,"
          f" peak queued {r['peak_queued_seen']}); create p50/p99 {r['create_latency']['p50_ms']}/"
          f"{r['create_latency']['p99_ms']} ms; e2e p50/p99 {r['end_to_end_latency']['p50_ms']}/"
          f"{r['end_to_end_latency']['p99_ms']} ms; by replica {r['tasks_run_by_replica']}; cpu {r['cpu']['cpu_s']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease-ttl", type=float, default=3.0, help="REDIS_PERSIST_LEASE_TTL_SECONDS (default 3)")
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--small-max-tasks", type=int, default=10,
                        help="REDIS_PERSIST_MAX_TASKS of the second backlog run, where the tasks really queue")
    parser.add_argument("--failover-tasks", type=int, default=60)
    args = parser.parse_args()
    exit_on_sigterm()
    machine = machine_info()
    result: dict = {"benchmark": "bench_cluster", "graph": GRAPH, "replicas": 3, "machine": machine,
                    "settings": {"REDIS_PERSIST_LEASE_TTL_SECONDS": args.lease_ttl,
                                 "REDIS_PERSIST_MAX_TASKS": MAX_TASKS}}
    tag = os.urandom(2).hex()
    with running_cluster(MAX_TASKS, args.lease_ttl) as (cluster, redis_pid):
        run(concurrent_round(cluster, redis_pid, 6, 0.0, f"warm-{tag}"))
        for step in (0.0, 0.5):
            r = run(concurrent_round(cluster, redis_pid, args.tasks, step, f"c-{tag}-{step:g}".replace(".", "_")))
            result[f"concurrent_step_{step:g}"] = r
            print(f"{args.tasks} at once, step {step:g}s: {r['completed_tasks_per_s']} tasks/s "
                  f"(wall {r['wall_s']} s); create p50/p99 {r['create_latency']['p50_ms']}/"
                  f"{r['create_latency']['p99_ms']} ms; e2e p50/p99 {r['end_to_end_latency']['p50_ms']}/"
                  f"{r['end_to_end_latency']['p99_ms']} ms; by replica {r['tasks_run_by_replica']}; "
                  f"cpu {r['cpu']['cpu_s']}")
        r = result["backlog_step_0"] = run(backlog_round(cluster, redis_pid, args.backlog, 0.0, f"b-{tag}",
                                                         timeout=150, max_tasks=MAX_TASKS))
        print_backlog(r)
        r = run(failover_round(cluster, args.failover_tasks, 2.0, f"f-{tag}", timeout=120))
        result["failover"] = r
        print(f"failover (lease TTL {r['lease_ttl_s']} s): {r['orphaned_tasks']} orphaned tasks of {r['victim']}; "
              f"kill -> re-queue p50/max {r['kill_to_requeue'].get('p50_ms')}/{r['kill_to_requeue'].get('max_ms')}"
              f" ms; kill -> last re-claim {r['kill_to_last_reclaim_s']} s; reclaimed by {r['reclaimed_by']}; "
              f"final {r['final_statuses']}; completed nodes re-run in {len(r['tasks_with_a_completed_node_rerun'])}"
              " tasks")
    with running_cluster(args.small_max_tasks, args.lease_ttl) as (cluster, redis_pid):
        run(concurrent_round(cluster, redis_pid, 6, 0.0, f"warm2-{tag}"))
        r = run(backlog_round(cluster, redis_pid, args.backlog, 0.0, f"q-{tag}", timeout=150,
                              max_tasks=args.small_max_tasks))
        result[f"backlog_step_0_max_tasks_{args.small_max_tasks}"] = r
        print_backlog(r)
    finish_machine_info(machine)
    write_result("bench_cluster", result)


if __name__ == "__main__":
    main()
