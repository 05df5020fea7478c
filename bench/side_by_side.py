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
import threading
import time
import urllib.request
from pathlib import Path

from _common import REPO, machine_info, write_result

PEER_DIR = REPO.parent / "shared" / "bench-peer"
SUMMARY = re.compile(r"^(peer|ours): (?P<tps>[\d.]+|None) tasks/s, ok (?P<ok>\d+), failures (?P<fail>\d+), "
                     r"e2e p99 (?P<p99>[\d.]+|None) s, server cpu (?P<cpu>[\d.]+|None) s")
OUR_PORT = 18710  # side_by_side.sh's port for redis-persist


class OurCpu(threading.Thread):
    """CPU and peak RSS of our whole process tree (supervisor, children, embedded Redis) from our first healthy
    answer on, with the embedded Redis apart.

    load.py's `server cpu` counts the supervisor process alone, which does no work with --workers > 1, and its
    peak RSS is the whole tree's: the replica's processes and the embedded Redis, which stands in for the Redis
    that replicas share when REDIS_URL is set. Peak PSS too (once a second): summed VmRSS counts the pages the
    processes share (libpython, extension modules) once per process.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.baseline: dict[int, float] | None = None
        self.last: dict[int, tuple[float, str]] = {}
        self.peak_rss_kb = {"service": 0, "redis": 0, "tree": 0}
        self.peak_pss_kb = {"service": 0, "redis": 0, "tree": 0}
        self._samples = 0
        self.done = threading.Event()

    @staticmethod
    def _cpu(pid: int) -> tuple[float, str] | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), cmd

    @staticmethod
    def _kb(path: str, field: str) -> int:
        """A `field:  N kB` line of a /proc file; 0 once the process is gone."""
        try:
            text = Path(path).read_text()
        except OSError:
            return 0
        found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
        return int(found[1]) if found else 0

    @classmethod
    def _rss_kb(cls, pid: int) -> int:
        return cls._kb(f"/proc/{pid}/status", "VmRSS")

    @classmethod
    def _pss_kb(cls, pid: int) -> int:
        """Proportional set size: each page shared with other processes (libpython and the extension modules both
        children map, say) counted as its share, so a sum over processes counts every page once."""
        return cls._kb(f"/proc/{pid}/smaps_rollup", "Pss")

    def _sample_rss(self, pids: list[int]) -> None:
        self._samples += 1
        with_pss = self._samples % 4 == 1  # a page-table walk of each process: once a second, not every 0.25 s
        for measure, peaks, wanted in ((self._rss_kb, self.peak_rss_kb, True),
                                       (self._pss_kb, self.peak_pss_kb, with_pss)):
            if not wanted:
                continue
            service = redis = 0
            for pid in pids:
                if "valkey" in self.last.get(pid, (0.0, ""))[1]:
                    redis += measure(pid)
                else:
                    service += measure(pid)
            for part, kb in (("service", service), ("redis", redis), ("tree", service + redis)):
                peaks[part] = max(peaks[part], kb)

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        root = None
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
                cmd = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(name))
            if b"serve" in cmd and str(OUR_PORT).encode() in cmd and b"--reuse-port" not in cmd:
                root = int(name)
        tree, stack = [], [root] if root else []
        while stack:
            tree.append(pid := stack.pop())
            stack.extend(parents.get(pid, []))
        return tree

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{OUR_PORT}/health", timeout=0.5) as answer:
                return answer.status == 200
        except OSError:
            return False

    def run(self) -> None:
        while not self.done.wait(0.25):
            pids = self._tree()
            for pid in pids:
                if (sample := self._cpu(pid)) is not None:
                    cpu, cmd = sample
                    # An exited process not yet reaped reads an empty command line (seen at the end of runs,
                    # when the embedded Redis then counted as the service): keep the one read before.
                    self.last[pid] = (cpu, cmd or self.last.get(pid, (0.0, ""))[1])
            if self.baseline is None and self.last and self._healthy():
                self.baseline = {pid: cpu for pid, (cpu, _) in self.last.items()}
            if self.baseline is not None:
                self._sample_rss(pids)

    def totals(self) -> dict[str, float]:
        base = self.baseline or {}
        service = sum(cpu - base.get(pid, 0.0) for pid, (cpu, cmd) in self.last.items() if "valkey" not in cmd)
        redis = sum(cpu - base.get(pid, 0.0) for pid, (cpu, cmd) in self.last.items() if "valkey" in cmd)
        processes = {f"{pid} {cmd[:120]}": round(cpu - base.get(pid, 0.0), 2) for pid, (cpu, cmd) in self.last.items()}
        peaks = {f"peak_{kind}_mb_{part}": round(kb / 1024, 1)
                 for kind, kbs in (("rss", self.peak_rss_kb), ("pss", self.peak_pss_kb)) for part, kb in kbs.items()}
        return {"service_cpu_s": round(service, 2), "redis_cpu_s": round(redis, 2), "cpu_s_by_process": processes,
                **peaks}


RATIO = re.compile(r"^ratio tasks/s ours/peer = (?P<ratio>[\d.]+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sleep", default="0.2", help="each node's await in seconds (BENCH_NODE_SLEEP)")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--workers", default="0", help="our `serve --workers` (0: one per core)")
    parser.add_argument("--api-processes", type=int, default=0,
                        help="our `serve --api-processes` (of --workers, how many serve the API only)")
    parser.add_argument("--peer-dir", type=Path, default=PEER_DIR)
    parser.add_argument("--label", default="", help="suffix of the result file (keeps an earlier run's)")
    args = parser.parse_args()

    machine = machine_info()
    serve_args = f"--workers {args.workers} --api-processes {args.api_processes} --log-level warning"
    command = [str(args.peer_dir / "side_by_side.sh"), str(REPO), args.sleep, str(args.tasks), str(args.concurrency)]
    print(f"SERVE_ARGS='{serve_args}' {' '.join(command)}   (load average {machine['loadavg_at_start']})")
    started = time.monotonic()
    our_cpu = OurCpu()
    our_cpu.start()
    output = subprocess.run(command, env={**os.environ, "SERVE_ARGS": serve_args}, capture_output=True,
                            text=True, check=False).stdout
    our_cpu.done.set()
    our_cpu.join()
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
    if "ours" in sides:
        cpu = our_cpu.totals()
        sides["ours"].update(cpu, service_cpu_ms_per_task=round(cpu["service_cpu_s"] * 1000 / args.tasks, 1),
                             redis_cpu_ms_per_task=round(cpu["redis_cpu_s"] * 1000 / args.tasks, 1))
        print(f"ours, whole process tree while under load: service {cpu['service_cpu_s']} CPU-s "
              f"({sides['ours']['service_cpu_ms_per_task']} ms/task), embedded Redis {cpu['redis_cpu_s']} CPU-s; "
              f"peak RSS: replica processes {cpu['peak_rss_mb_service']} MB, embedded Redis "
              f"{cpu['peak_rss_mb_redis']} MB, together {cpu['peak_rss_mb_tree']} MB; peak PSS: "
              f"{cpu['peak_pss_mb_service']}, {cpu['peak_pss_mb_redis']}, {cpu['peak_pss_mb_tree']} MB")
    machine["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    machine["run_wall_s"] = round(time.monotonic() - started, 1)
    result = {"command": f"SERVE_ARGS='{serve_args}' {' '.join(command)}", "node_sleep_s": float(args.sleep),
              "tasks": args.tasks, "concurrency": args.concurrency, "workers": args.workers,
              "api_processes": args.api_processes,
              "ratio_tasks_per_s_ours_over_peer": ratio, **sides, "machine": machine, "raw_output": output}
    split = f"_api{args.api_processes}" if args.api_processes else ""
    label = f"_{args.label}" if args.label else ""
    write_result(f"side_by_side_sleep{args.sleep}_n{args.tasks}_w{args.workers}{split}{label}", result)
    print(f"ratio {ratio} at load average {machine['loadavg_at_start']} -> {machine['loadavg_at_end']}")


if __name__ == "__main__":
    main()
