"""Shared helpers of the benchmarks: stats, machine info, result files, SSE following, the embedded Redis.

Process helpers come from redis_persist.testing (not duplicated here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from redis_persist.core.status import SETTLED_STATUSES
from redis_persist.embedded import EmbeddedRedis

REPO = Path(__file__).resolve().parents[1]

RESULTS_DIR = REPO / "bench" / "results"


# --- numbers -----------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), like numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values_s: Sequence[float]) -> dict[str, float | int | None]:
    """p50 / p90 / p99 / max / mean of durations given in seconds, in milliseconds."""
    values = [v * 1000 for v in values_s]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 1),
        "p90_ms": round(percentile(values, 90), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1),
        "min_ms": round(min(values), 1),
        "mean_ms": round(sum(values) / len(values), 1),
    }


def parse_ts(value: str) -> float:
    """An event/record timestamp (ISO 8601 UTC, ms, trailing Z) as epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# --- machine -----------------------------------------------------------------


def _proc_cpu_ticks() -> dict[int, tuple[int, str]]:
    ticks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ticks[int(entry)] = (int(fields[11]) + int(fields[12]), cmd or stat.split("(", 1)[1].split(")")[0])
    return ticks


def busy_processes(sample_seconds: float = 1.0, threshold_pct: float = 5.0) -> list[dict[str, Any]]:
    """Processes (not this one) using more than `threshold_pct` of one core over a short sample."""
    hz = os.sysconf("SC_CLK_TCK")
    before = _proc_cpu_ticks()
    time.sleep(sample_seconds)
    after = _proc_cpu_ticks()
    busy = []
    for pid, (total, cmd) in after.items():
        if pid == os.getpid() or pid not in before:
            continue
        pct = 100.0 * (total - before[pid][0]) / hz / sample_seconds
        if pct >= threshold_pct:
            busy.append({"pid": pid, "cpu_pct": round(pct, 1), "cmd": cmd[:120]})
    return sorted(busy, key=lambda p: -p["cpu_pct"])


def _machine_busy_seconds() -> float:
    """CPU seconds (all cores, all processes) spent not idle since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of its waited-for children (replicas, Redis, nginx and its workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


_START: dict[str, float] = {}


def machine_info() -> dict[str, Any]:
    """Cores, memory, load average and any other busy process right now (the benchmark shares the machine)."""
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    busy = busy_processes()
    _START.update(wall=time.perf_counter(), machine=_machine_busy_seconds(), own=_own_cpu_seconds())
    return {
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "other_busy_processes_at_start": busy,
        "started_at": datetime.now().isoformat(timespec="seconds"),
    }


def finish_machine_info(info: dict[str, Any]) -> dict[str, Any]:
    """Load at the end, and how much CPU other processes used while the benchmark ran (call after clean-up)."""
    wall = time.perf_counter() - _START["wall"]
    machine = _machine_busy_seconds() - _START["machine"]
    own = _own_cpu_seconds() - _START["own"]
    info["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    info["run_wall_s"] = round(wall, 1)
    info["cpu_s_benchmark_and_its_processes"] = round(own, 1)
    info["cpu_s_other_processes"] = round(max(machine - own, 0.0), 1)
    info["other_load_cores_avg"] = round(max(machine - own, 0.0) / wall, 2)
    print(f"machine: {info['cpus']} cores; this benchmark used {own:.1f} CPU-s in {wall:.1f} s, other processes "
          f"{info['cpu_s_other_processes']} CPU-s ({info['other_load_cores_avg']} cores on average)")
    return info


def add_replica_options(parser: argparse.ArgumentParser, workers: int) -> None:
    """--workers, --api-processes, --env NAME=VALUE (repeatable) and --label: how the measured replica runs."""
    parser.add_argument("--workers", type=int, default=workers, help="serve --workers (processes of the replica)")
    parser.add_argument("--api-processes", type=int, default=0,
                        help="serve --api-processes: of the --workers processes, how many serve the API only")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the replica, e.g. REDIS_PERSIST_MAX_TASKS=10 (repeatable)")
    parser.add_argument("--label", default="", help="suffix of the result file's name")


def replica_layout(args: argparse.Namespace) -> list[str]:
    """The `serve` arguments add_replica_options chose."""
    return ["--workers", str(args.workers), "--api-processes", str(args.api_processes)]


def replica_settings(args: argparse.Namespace) -> dict[str, str]:
    """The --env settings add_replica_options collected."""
    return dict(setting.split("=", 1) for setting in args.env)


def replica_suffix(args: argparse.Namespace) -> str:
    """What a result file's name adds for the layout and --label: `_w3_api1_LABEL`, `_w2`, ..."""
    split = f"_api{args.api_processes}" if args.api_processes else ""
    return f"_w{args.workers}{split}{args.label}"


def write_result(name: str, result: dict[str, Any]) -> Path:
    """bench/results/<name>.json (written via a temp file so a killed run leaves no half file)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    print(f"\nwrote {path.relative_to(REPO)}")
    return path


# --- processes ---------------------------------------------------------------


@contextlib.contextmanager
def embedded_redis(prefix: str) -> Iterator[EmbeddedRedis]:
    """A fresh module-enabled Redis in a temp dir (dies with us even on SIGKILL), removed afterwards."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"rp-bench-{prefix}-"))
    server = EmbeddedRedis(run_dir / "redis", die_with_parent=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit so every finally: (process clean-up) runs."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


# --- talking to the service --------------------------------------------------


def async_client(base_url: str, timeout: float = 120.0) -> httpx.AsyncClient:
    """An AsyncClient with no connection cap (each task holds one for its SSE stream), no env proxies."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        trust_env=False,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=2000),
    )


class RawConnection:
    """One kept-alive HTTP/1.1 connection on asyncio streams, for load where the client must stay cheap.

    httpx spends ~2-4 ms of CPU per request on this machine; a benchmark process sending thousands of requests
    then saturates a core of its own and its event loop's queueing shows up as the server's latency. This
    client reads only `Content-Length` answers (all the service's JSON answers are)."""

    def __init__(self, base_url: str) -> None:
        self._host, port = base_url.removeprefix("http://").rstrip("/").split(":")
        self._port = int(port)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawConnection:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()

    async def request(self, method: str, path: str, json_body: Any = None) -> tuple[int, bytes]:
        """Send one request and read its answer: (status code, body)."""
        assert self._reader is not None and self._writer is not None, "use `async with RawConnection(...)`"
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\n"
        body = b""
        if json_body is not None:
            body = json.dumps(json_body).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode() + b"\r\n" + body)
        answer = await self._reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        length = int(answer.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        return status, await self._reader.readexactly(length)


async def create_task(client: httpx.AsyncClient, task_id: str, graph: str, initial_state: dict) -> tuple[float, float]:
    """POST /api/tasks/execute with a client id (also as ?task_id= for nginx); returns (sent, answered) epoch s."""
    body = {"graph_name": graph, "initial_state": initial_state, "task_id": task_id}
    sent = time.time()
    response = await client.post("/api/tasks/execute", params={"task_id": task_id}, json=body)
    answered = time.time()
    if response.status_code != 202:
        raise RuntimeError(f"create {task_id}: HTTP {response.status_code} {response.text[:300]}")
    return sent, answered


async def create_task_raw(connection: RawConnection, task_id: str, graph: str, initial_state: dict) -> float:
    """create_task() on a RawConnection; returns the seconds until the 202 came back."""
    body = {"graph_name": graph, "initial_state": initial_state, "task_id": task_id}
    sent = time.perf_counter()
    status, answer = await connection.request("POST", f"/api/tasks/execute?task_id={task_id}", body)
    if status != 202:
        raise RuntimeError(f"create {task_id}: HTTP {status} {answer[:300]!r}")
    return time.perf_counter() - sent


async def follow_sse(client: httpx.AsyncClient, task_id: str) -> list[tuple[float, dict[str, Any]]]:
    """Every event of the task with the time we received it, until the final status event."""
    received = []
    async with client.stream("GET", f"/api/tasks/{task_id}/events") as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            received.append((time.time(), event))
            if event.get("type") == "status" and event.get("status") in SETTLED_STATUSES:
                break
    return received


def server_times(events: list[dict[str, Any]]) -> dict[str, float | None]:
    """Server-side timestamps (epoch s) of a task's first queued / running and final status events."""
    times: dict[str, float | None] = {"queued": None, "running": None, "final": None}
    for event in events:
        if event.get("type") != "status":
            continue
        ts = parse_ts(event["ts"])
        status = event.get("status")
        if status == "queued" and times["queued"] is None:
            times["queued"] = ts
        elif status == "running" and times["running"] is None:
            times["running"] = ts
        elif status in SETTLED_STATUSES:
            times["final"] = ts
    return times


def run(coro: Any) -> Any:
    """asyncio.run with uvloop when available (the service itself runs on uvloop via uvicorn[standard])."""
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# --- CPU accounting ----------------------------------------------------------


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return kids


class CpuMeter:
    """CPU seconds used by named processes (a process and, optionally, its direct children) between two calls."""

    def __init__(self, processes: dict[str, int], with_children: frozenset[str] = frozenset()) -> None:
        self._pids = {name: [pid, *(_children(pid) if name in with_children else [])]
                      for name, pid in processes.items()}
        self._start = self._read()
        self._wall = time.perf_counter()

    def _read(self) -> dict[str, int]:
        reading = {name: sum(_cpu_ticks(pid) for pid in pids) for name, pids in self._pids.items()}
        reading["bench client (this process)"] = int(time.process_time() * os.sysconf("SC_CLK_TCK"))
        return reading

    def stop(self) -> dict[str, Any]:
        """{name: cpu seconds}, plus the wall time and the share of the machine's cores used in total."""
        hz = os.sysconf("SC_CLK_TCK")
        wall = time.perf_counter() - self._wall
        end = self._read()
        used = {name: round((end[name] - self._start[name]) / hz, 2) for name in end}
        return {"wall_s": round(wall, 2), "cpu_s": used,
                "cores_busy": round(sum(used.values()) / wall, 2) if wall else None}


# --- Redis command counts ----------------------------------------------------


class RedisCommandStats:
    """Redis commands executed between construction and `stop()` (INFO commandstats after CONFIG RESETSTAT).

    Commands run inside Lua scripts are counted too (each EVALSHA and the commands it runs).
    """

    def __init__(self, redis_url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(redis_url, decode_responses=True)
        self._client.config_resetstat()

    def stop(self, per: int) -> dict[str, Any]:
        """Totals and per-`per` (e.g. per task) counts, top commands first."""
        try:
            stats = self._client.info("commandstats")
        finally:
            self._client.close()
        stats.pop("cmdstat_config|resetstat", None)
        calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
        usec = sum(v["usec"] for v in stats.values())
        return {
            "calls": sum(calls.values()),
            "calls_per_task": round(sum(calls.values()) / per, 1),
            "redis_cpu_ms_per_task": round(usec / per / 1000, 2),
            "top_calls_per_task": {k: round(v / per, 1) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:12]},
        }
