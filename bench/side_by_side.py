"""LangGraph's own server vs redis-persist, same load, one run: writes the tasks/s ratio to bench/results/.

Runs `../shared/bench-peer/side_by_side.sh` (the peer `langgraph dev`, in-memory, then our `serve` with an
embedded Redis; N tasks, C in flight, clients poll every 0.1 s; see that folder's README) and keeps its
summary. Compare ratios from one run, never absolute numbers across runs: both servers and the load
generator share this machine's cores with whatever else runs on it (the load average is recorded).

    .venv/bin/python bench/side_by_side.py --sleep 0.2 --tasks 1000 --concurrency 100 [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from pathlib import Path

from _common import REPO, machine_info, write_result

PEER_DIR = REPO.parent / "shared" / "bench-peer"
SUMMARY = re.compile(r"^(peer|ours): (?P<tps>[\d.]+|None) tasks/s, ok (?P<ok>\d+), failures (?P<fail>\d+), "
                     r"e2e p99 (?P<p99>[\d.]+|None) s, server cpu (?P<cpu>[\d.]+|None) s")
RATIO = re.compile(r"^ratio tasks/s ours/peer = (?P<ratio>[\d.]+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sleep", default="0.2", help="each node's await in seconds (BENCH_NODE_SLEEP)")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--workers", default="0", help="our `serve --workers` (0: one per core)")
    parser.add_argument("--peer-dir", type=Path, default=PEER_DIR)
    args = parser.parse_args()

    machine = machine_info()
    serve_args = f"--workers {args.workers} --log-level warning"
    command = [str(args.peer_dir / "side_by_side.sh"), str(REPO), args.sleep, str(args.tasks), str(args.concurrency)]
    print(f"SERVE_ARGS='{serve_args}' {' '.join(command)}   (load average {machine['loadavg_at_start']})")
    started = time.monotonic()
    output = subprocess.run(command, env={**os.environ, "SERVE_ARGS": serve_args}, capture_output=True,
                            text=True, check=False).stdout
    print(output)
    sides = {}
    ratio = None
    for line in output.splitlines():
        if found := SUMMARY.match(line):
            cpu = None if found["cpu"] == "None" else float(found["cpu"])
            sides[found.group(1)] = {
                "tasks_per_s": None if found["tps"] == "None" else float(found["tps"]),
                "completed_ok": int(found["ok"]), "failures": int(found["fail"]),
                "e2e_p99_s": None if found["p99"] == "None" else float(found["p99"]),
                "server_cpu_s": cpu,
                "server_cpu_ms_per_task": round(cpu * 1000 / args.tasks, 1) if cpu is not None else None,
            }
        elif found := RATIO.match(line):
            ratio = float(found["ratio"])
    machine["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    machine["run_wall_s"] = round(time.monotonic() - started, 1)
    result = {"command": f"SERVE_ARGS='{serve_args}' {' '.join(command)}", "node_sleep_s": float(args.sleep),
              "tasks": args.tasks, "concurrency": args.concurrency, "workers": args.workers,
              "ratio_tasks_per_s_ours_over_peer": ratio, **sides, "machine": machine, "raw_output": output}
    write_result(f"side_by_side_sleep{args.sleep}_n{args.tasks}_w{args.workers}", result)
    print(f"ratio {ratio} at load average {machine['loadavg_at_start']} -> {machine['loadavg_at_end']}")


if __name__ == "__main__":
    main()
