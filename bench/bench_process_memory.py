"""Resident memory of each process of one idle replica: `serve --workers N` on a fresh embedded Redis.

    .venv/bin/python bench/bench_process_memory.py [--workers 2] [--settle 20] [--rounds 3] [--label x]

Starts the replica from this checkout (cwd = a temp dir, so `python -m` finds the installed package, or
PYTHONPATH's), waits until /health answers and then `--settle` seconds more (the periodic sweeps run once:
measured earlier, a replica grows by ~5 MB in its first seconds), reads VmRSS, RssAnon and RssFile of every
process of its tree, stops it. VmRSS counts pages shared with another process in each of them (as
`../shared/bench-peer/load.py --pid` sums them), so a fork or a restart shares nothing in this sum.
Writes bench/results/process_memory_w<N>[_label].json with every round and the median per role.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import _children, machine_info, write_result
from redis_persist.testing import ServiceProcess


def _status(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _tree(root: int) -> list[int]:
    found = [root]
    for pid in found:  # grows while read: children, then theirs (RediSearch's fork-GC child of the Redis)
        found.extend(_children(pid))
    return found


def _role(pid: int, root: int) -> str:
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    if pid == root:
        return "parent"
    if "valkey" in command:
        return "embedded redis"
    return "serve child"


def one_round(workers: int, settle: float) -> list[dict]:
    with tempfile.TemporaryDirectory() as data:
        service = ServiceProcess(None, env={"REDIS_PERSIST_DATA_DIR": data}, name="mem",
                                 args=["--workers", str(workers), "--log-level", "warning"], cwd=Path(data))
        try:
            service.start()
            time.sleep(settle)
            rows = []
            for pid in _tree(service.pid):
                try:
                    rows.append({"role": _role(pid, service.pid), "pid": pid, **_status(pid)})
                except OSError:
                    continue
        finally:
            service.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    machine = machine_info()
    rounds = []
    for index in range(args.rounds):
        rows = one_round(args.workers, args.settle)
        total = round(sum(row["VmRSS"] for row in rows), 1)
        rounds.append({"processes": rows, "tree_vmrss_mb": total})
        print(f"round {index + 1}: tree {total} MB; " + ", ".join(f"{r['role']} {r['VmRSS']}" for r in rows))
    by_role: dict[str, list[float]] = {}
    for result in rounds:
        for row in result["processes"]:
            by_role.setdefault(row["role"], []).append(row["VmRSS"])
    medians = {role: round(statistics.median(values), 1) for role, values in by_role.items()}
    tree = round(statistics.median(result["tree_vmrss_mb"] for result in rounds), 1)
    print(f"median VmRSS (MB): {medians}; tree {tree}")
    label = f"_{args.label}" if args.label else ""
    write_result(f"process_memory_w{args.workers}{label}", {
        "command": f"bench/bench_process_memory.py --workers {args.workers} --settle {args.settle} "
                   f"--rounds {args.rounds}", "median_vmrss_mb_by_role": medians, "median_tree_vmrss_mb": tree,
        "rounds": rounds, "machine": machine})


if __name__ == "__main__":
    main()
