"""Where one `serve --workers 1` spends its CPU under the side-by-side load (creates + a poll every 0.1 s).

    .venv/bin/pip install py-spy   # once
    .venv/bin/python bench/profile_polling.py [--tasks 300] [--sleep 0]

Runs ../shared/bench-peer/load.py (`--api tasks`, the peer's 5-node pipeline graph) against one process on an
embedded Redis while py-spy samples it at 100 Hz; prints the share of samples by activity (the categories of
profile_service.py) and of the watched functions, and writes bench/results/profile_polling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from _common import REPO, RESULTS_DIR, embedded_redis, exit_on_sigterm, machine_info, write_result
from profile_service import bucket
from redis_persist.testing import ServiceProcess

PEER_DIR = REPO.parent / "shared" / "bench-peer"
WATCHED = {
    "polls and list pages answered in uvicorn's protocol": "PollingHttpToolsProtocol._answer",
    "requests through the ASGI app": "RequestResponseCycle.run_asgi",
    "POST /api/tasks/execute (whole handler)": "execute (redis_persist/api/tasks.py",
    "checkpoint writes (aput, aput_writes, their lease check)": "_Fenced.aput",
    "TaskRunner (records, events, the graph's stream)": "redis_persist/engine/runner.py",
    "its records (record.lua)": "TaskRunner._record",
    "compaction of a finished task": "redis_persist/engine/compaction.py",
    "Pregel.astream": "astream (",
    "redis-py's per-command path": "call_with_retry",
    "logging": "logging/__init__.py",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--sleep", default="0")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    load_python = Path(os.environ.get("PEER_VENV", "/tmp/peer-venv")) / "bin" / "python"
    if not Path(py_spy).exists() or not load_python.exists():
        sys.exit("needs py-spy (.venv/bin/pip install py-spy) and the peer venv (../shared/bench-peer/peer.sh)")
    exit_on_sigterm()
    machine = machine_info()
    raw = RESULTS_DIR / "profile_polling.collapsed"
    out = RESULTS_DIR / "profile_polling.load.jsonl"
    env = {"REDIS_PERSIST_GRAPHS": json.dumps({"pipeline": f"{PEER_DIR}/graphs/pipeline.py:graph"}),
           "BENCH_NODE_SLEEP": args.sleep}
    with embedded_redis("profile-polling") as redis:
        service = ServiceProcess(redis.url, env=env, name="bench-poll", args=["--log-level", "warning"])
        spy = None
        try:
            service.start()
            spy = subprocess.Popen([py_spy, "record", "-p", str(service.pid), "-r", "100", "-f", "raw",
                                    "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            subprocess.run([str(load_python), str(PEER_DIR / "load.py"), "--api", "tasks", "--graph", "pipeline",
                            "--base-url", service.url, "--tasks", str(args.tasks), "--concurrency",
                            str(args.concurrency), "--poll-interval", "0.1", "--pid", str(service.pid),
                            "--health-path", "/health", "--label", "ours", "--json-out", str(out)],
                           env={**os.environ, "BENCH_NODE_SLEEP": args.sleep}, check=False,
                           stdout=subprocess.DEVNULL)
        finally:
            if spy is not None and spy.poll() is None:
                spy.send_signal(2)
                spy.wait(60)
            service.stop()
            service.log_path.unlink(missing_ok=True)
    load = json.loads(out.read_text().splitlines()[-1])
    buckets: Counter[str] = Counter()
    watched: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        count, stack = int(count_text), stack_text.split(";")
        total += count
        buckets[bucket(stack)] += count
        for name, marker in WATCHED.items():
            if any(marker in frame for frame in stack):
                watched[name] += count
    share = lambda n: round(100.0 * n / max(total, 1), 1)  # noqa: E731
    cpu = load["server_proc"]["server_cpu_s"]
    result = {"benchmark": "profile_polling", "tasks": args.tasks, "node_sleep_s": float(args.sleep),
              "tasks_per_s": load["tasks_per_s"], "server_cpu_s": cpu,
              "server_cpu_ms_per_task": round(cpu * 1000 / args.tasks, 1) if cpu else None,
              "polls_per_task": load.get("polls_per_task_mean"),
              "samples": total, "by_activity_pct": {k: share(v) for k, v in buckets.most_common()},
              "watched_inclusive_pct": {k: share(watched[k]) for k in WATCHED}, "machine": machine}
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    write_result("profile_polling", result)


if __name__ == "__main__":
    main()
