"""Print the Markdown tables of bench/README.md from bench/results/*.json.

    .venv/bin/python bench/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ms(summary: dict, key: str) -> str:
    value = summary.get(key)
    return "–" if value is None else (f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms")


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def machine_note(result: dict) -> str:
    m = result["machine"]
    return (f"{m['cpus']} cores, {m['mem_gib']} GiB; load avg at start {' '.join(m['loadavg_at_start'])}; "
            f"other processes used {m.get('other_load_cores_avg', '?')} cores on average during the run")


def main() -> None:
    lines = ["| scenario | tasks/s | create p50 / p99 | end-to-end p50 / p99 | notes |", "|---|---|---|---|---|"]
    tasks = load("bench_tasks")
    if tasks:
        for step in ("0", "0.5"):
            r = tasks["service"].get(f"concurrent_step_{step}")
            if r:
                lines.append(row([
                    f"1 replica, 100 at once, step {step} s", f"{r['completed_tasks_per_s']}",
                    f"{ms(r['create_latency'], 'p50_ms')} / {ms(r['create_latency'], 'p99_ms')}",
                    f"{ms(r['end_to_end_latency'], 'p50_ms')} / {ms(r['end_to_end_latency'], 'p99_ms')}",
                    f"median of {tasks['repeat']} runs {r['runs_tasks_per_s']}; service CPU "
                    f"{r['cpu_ms_per_task']['service']} ms/task, Redis {r['cpu_ms_per_task']['redis']} ms/task",
                ]))
        for step in ("0", "0.5"):
            for durability in ("sync", "default"):
                r = tasks["in_process"].get(f"step_{step}_durability_{durability}")
                if r:
                    lines.append(row([
                        f"in-process `ainvoke` ×100, step {step} s, durability {durability}",
                        f"{r['completed_tasks_per_s']}", "–",
                        f"{ms(r['latency'], 'p50_ms')} / {ms(r['latency'], 'p99_ms')}",
                        f"runs {r['runs_tasks_per_s']}; {r['cpu_ms_per_task']['bench client (this process)']} "
                        "ms CPU/task",
                    ]))
        seq = tasks["service"].get("sequential_step_0")
        if seq:
            lines.append(row(["1 replica, one task at a time, step 0 s", "–", "–",
                              f"{ms(seq['end_to_end_latency'], 'p50_ms')} / {ms(seq['end_to_end_latency'], 'p99_ms')}",
                              f"server run time p50 {ms(seq['server_run_time'], 'p50_ms')} for 4 nodes"]))
        r = tasks["in_process"].get("sequential_step_0_durability_sync")
        if r:
            lines.append(row(["in-process `ainvoke`, one at a time, step 0 s, durability sync", "–", "–",
                              f"{ms(r['latency'], 'p50_ms')} / {ms(r['latency'], 'p99_ms')}", ""]))
    cluster = load("bench_cluster")
    if cluster:
        for step in ("0", "0.5"):
            r = cluster.get(f"concurrent_step_{step}")
            if r:
                lines.append(row([
                    f"nginx + 3 replicas, 100 at once, step {step} s", f"{r['completed_tasks_per_s']}",
                    f"{ms(r['create_latency'], 'p50_ms')} / {ms(r['create_latency'], 'p99_ms')}",
                    f"{ms(r['end_to_end_latency'], 'p50_ms')} / {ms(r['end_to_end_latency'], 'p99_ms')}",
                    f"ran on {r['tasks_run_by_replica']}",
                ]))
        for key, r in cluster.items():
            if key.startswith("backlog"):
                lines.append(row([
                    f"nginx + 3 replicas, 1,000 created at once, step 0 s, MAX_TASKS {r['max_tasks_per_replica']}",
                    f"{r['completed_tasks_per_s']}",
                    f"{ms(r['create_latency'], 'p50_ms')} / {ms(r['create_latency'], 'p99_ms')}",
                    f"{ms(r['end_to_end_latency'], 'p50_ms')} / {ms(r['end_to_end_latency'], 'p99_ms')}",
                    f"all created after {r['all_created_after_s']} s; peak queued {r['peak_queued_seen']}",
                ]))
    print("\n".join(lines))
    if cluster and "failover" in cluster:
        f = cluster["failover"]
        print(f"\nFailover: SIGKILL of {f['victim']} running {f['running_per_replica_at_kill'][f['victim']]} of "
              f"{f['tasks']} tasks (step {f['step_seconds']:g} s), lease TTL {f['lease_ttl_s']:g} s: "
              f"re-queued (`replica lost`) after p50 {ms(f['kill_to_requeue'], 'p50_ms')} / max "
              f"{ms(f['kill_to_requeue'], 'max_ms')}; last orphan re-claimed {f['kill_to_last_reclaim_s']} s after "
              f"the kill; final {f['final_statuses']}; completed nodes re-run: "
              f"{len(f['tasks_with_a_completed_node_rerun'])}.")
    events = load("bench_events")
    if events:
        e = events["events"]
        lat = e["node_completed_latency"]
        print(f"\nEvents: {e['tasks']} {e['graph']} tasks (step {e['step_seconds']:g} s), {e['websocket_clients']} "
              f"WebSocket clients: node_completed ts -> received p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, "
              f"max {lat['max_ms']} ms over {lat['n']} events.")
    for name in ("bench_tasks", "bench_cluster", "bench_events"):
        result = load(name)
        if result:
            print(f"\n{name}: {machine_note(result)}")


if __name__ == "__main__":
    main()
