"""A local redis-persist cluster (replicas + Debian nginx, no Docker) and the failover scenario.

Shared by scripts/failover_demo.py and tests/e2e/test_failover.py.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from redis_persist.core.status import SETTLED_STATUSES
from tests.support import ServiceProcess, free_port, node_runs, read_events, wait_until

log = logging.getLogger("redis_persist.cluster")

REPO_ROOT = Path(__file__).resolve().parents[1]
NGINX_TEMPLATE = REPO_ROOT / "nginx" / "redis-persist.conf"
REPLICA_NAMES = ("api-1", "api-2", "api-3")
DATA_PIPELINE_NODES = ("fetch", "transform", "validate", "save")
NGINX_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str:
    """Path of Debian's nginx (in /usr/sbin, often not on a non-root PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError("nginx is not installed: apt-get update && apt-get install -y nginx")
    return found


def _substitute(pattern: str, replacement: str | Callable[[re.Match], str], text: str, expected: int) -> str:
    new_text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count != expected:
        raise ValueError(f"nginx template: expected {expected} line(s) matching {pattern!r}, found {count}")
    return new_text


def upstream_servers(conf_text: str) -> dict[str, int]:
    """The `server host:port` entries of the template's upstream block, as {host: port}."""
    return {host: int(port) for host, port in re.findall(r"^\s*server\s+([\w.-]+):(\d+)\b", conf_text, re.MULTILINE)}


def render_local_nginx_conf(template: str, *, listen_port: int, upstream_ports: dict[str, int], run_dir: Path) -> str:
    """Turn the compose config into one for this machine: 127.0.0.1 ports, every file under `run_dir`."""
    servers = upstream_servers(template)
    if set(servers) != set(upstream_ports):
        raise ValueError(f"nginx template upstreams {sorted(servers)} != replicas {sorted(upstream_ports)}")
    text = _substitute(r"^(\s*)listen\s+80;", rf"\g<1>listen 127.0.0.1:{listen_port};", template, 1)
    text = _substitute(
        r"^(\s*)server\s+([\w.-]+):\d+",
        lambda match: f"{match[1]}server 127.0.0.1:{upstream_ports[match[2]]}",
        text,
        len(servers),
    )
    text = _substitute(r"^pid\s+[^;]+;", f"daemon off;\npid {run_dir}/nginx.pid;", text, 1)
    text = _substitute(r"^error_log\s+[^;\s]+", f"error_log {run_dir}/error.log", text, 1)
    text = _substitute(r"^(\s*)access_log\s+/dev/stdout", rf"\g<1>access_log {run_dir}/access.log", text, 1)
    # Debian's compiled-in temp paths are under /var/lib/nginx; keep ours private.
    temp_paths = "".join(f"    {kind}_temp_path {run_dir}/temp/{kind};\n" for kind in NGINX_TEMP_KINDS)
    return _substitute(r"^http\s*\{\n", lambda match: match[0] + temp_paths, text, 1)


class Nginx:
    """Debian's nginx running the rendered copy of nginx/redis-persist.conf, every file under `run_dir`."""

    def __init__(self, port: int, upstream_ports: dict[str, int], run_dir: Path):
        self.run_dir = run_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.conf_path = run_dir / "nginx.conf"
        self.conf_text = render_local_nginx_conf(
            NGINX_TEMPLATE.read_text(), listen_port=port, upstream_ports=upstream_ports, run_dir=run_dir
        )
        self.args = [nginx_binary(), "-p", str(run_dir), "-e", str(run_dir / "error.log"), "-c", str(self.conf_path)]
        self.process: subprocess.Popen | None = None

    def write_conf(self) -> None:
        """Write the rendered config and the folders it names."""
        for kind in NGINX_TEMP_KINDS:
            (self.run_dir / "temp" / kind).mkdir(parents=True, exist_ok=True)
        # Workers run as an unprivileged user when we are root: let them reach the temp folders.
        self.run_dir.chmod(0o755)
        self.conf_path.write_text(self.conf_text)

    def check_conf(self) -> subprocess.CompletedProcess:
        """`nginx -t` on the rendered config (raises with nginx's output when it is rejected)."""
        self.write_conf()
        result = subprocess.run([*self.args, "-t"], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"nginx -t rejected {self.conf_path}:\n{result.stdout}{result.stderr}")
        return result

    def start(self, timeout: float = 30.0) -> None:
        """Check the config, start nginx in the foreground (its own session), wait until it answers."""
        self.check_conf()
        with open(self.run_dir / "nginx.out", "ab") as output:
            # Own session: a Ctrl-C meant for the demo does not reach nginx; stop() ends it and its workers.
            self.process = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_until(self.is_healthy, timeout, f"nginx answering on {self.url}", interval=0.05)
        except AssertionError as error:
            self.stop()
            raise RuntimeError(f"{error}\n{self.error_log()}") from None

    def is_healthy(self) -> bool:
        """nginx answers its own /nginx-health."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"nginx is not running:\n{self.error_log()}")
        try:
            return httpx.get(f"{self.url}/nginx-health", timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def error_log(self) -> str:
        """The end of nginx's error log."""
        path = self.run_dir / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (fast shutdown, open streams are cut), then SIGKILL whatever is left of its process group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("nginx ignored SIGTERM for %.0f s; killing it", timeout)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # workers orphaned by a master that died
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()


class LocalCluster:
    """Replicas api-1..3 on free ports, nginx in front of them; a context manager that cleans up."""

    def __init__(
        self,
        redis_url: str,
        run_dir: Path,
        *,
        names: Iterable[str] = REPLICA_NAMES,
        lease_ttl_seconds: float = 3.0,
        extra_env: dict[str, str] | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lease_ttl_seconds = lease_ttl_seconds
        env = {"REDIS_PERSIST_LEASE_TTL_SECONDS": str(lease_ttl_seconds), **(extra_env or {})}
        self.replicas = {name: ServiceProcess(redis_url, env=env, name=name) for name in names}
        self.nginx = Nginx(free_port(), {name: r.port for name, r in self.replicas.items()}, self.run_dir)

    @property
    def url(self) -> str:
        """nginx's base URL."""
        return self.nginx.url

    def start(self, timeout: float = 90.0) -> LocalCluster:
        """Start every replica and nginx; return once all answer their health checks."""
        try:
            with ThreadPoolExecutor(len(self.replicas)) as pool:
                for future in [pool.submit(r.start, timeout) for r in self.replicas.values()]:
                    future.result()
            self.nginx.start()
        except BaseException:
            self.stop()
            raise
        log.info("cluster up: nginx %s -> %s", self.url, {n: r.url for n, r in self.replicas.items()})
        return self

    def stop(self) -> None:
        """Stop nginx and every replica (SIGTERM, each is waited for)."""
        processes = [self.nginx, *self.replicas.values()]
        with ThreadPoolExecutor(len(processes)) as pool:
            for future in [pool.submit(p.stop) for p in processes]:
                future.result()

    def replica_for_upstream(self, upstream_addr: str) -> str | None:
        """Name of the replica that finally answered, from nginx's `X-Upstream` (a list if it skipped some)."""
        last = upstream_addr.split(",")[-1].split(":")
        port = last[-1].strip()
        for name, replica in self.replicas.items():
            if str(replica.port) == port:
                return name
        return None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


# --- talking to the service -------------------------------------------------


def client(base_url: str) -> httpx.Client:
    """An HTTP client for the service (no proxies from the environment)."""
    return httpx.Client(base_url=base_url, timeout=10, trust_env=False)


def execute(http: httpx.Client, task_id: str, graph_name: str, initial_state: dict) -> dict:
    """Create a task with a client id; `?task_id=` lets nginx route the create like the task's other calls."""
    response = http.post(
        "/api/tasks/execute",
        params={"task_id": task_id},
        json={"graph_name": graph_name, "initial_state": initial_state, "task_id": task_id},
    )
    if response.status_code != 202:
        raise RuntimeError(f"execute {task_id}: HTTP {response.status_code} {response.text}")
    return response.json()


def get_task(http: httpx.Client, task_id: str) -> dict:
    """GET /api/tasks/{id} (raises on any status but 200)."""
    response = http.get(f"/api/tasks/{task_id}")
    response.raise_for_status()
    return response.json()


def rerun_completed_nodes(events: list[dict]) -> list[str]:
    """Nodes that started again after a `node_completed` of their own (never allowed)."""
    completed: set[str] = set()
    reruns = []
    for event in events:
        if event.get("type") == "node_completed":
            completed.add(event["node"])
        elif event.get("type") == "node_started" and event["node"] in completed:
            reruns.append(event["node"])
    return reruns


# --- the failover scenario --------------------------------------------------


@dataclass
class TaskOutcome:
    """What happened to one task of the scenario."""

    task_id: str
    status: str
    owner: str | None
    attempts: int | None
    owner_at_kill: str | None
    status_at_kill: str | None
    checkpoint_at_kill: str | None
    node_runs: dict[str, int]
    rerun_completed_nodes: list[str]
    takeover_seconds: float | None = None

    @property
    def was_in_flight_on_victim(self) -> bool:
        return self.owner_at_kill is not None and self.status_at_kill not in SETTLED_STATUSES


@dataclass
class FailoverReport:
    """The outcome of `run_failover_scenario`; `problems` is empty when the contract held."""

    victim: str
    lease_ttl_seconds: float
    outcomes: list[TaskOutcome]
    problems: list[str] = field(default_factory=list)

    @property
    def taken_over(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes if o.was_in_flight_on_victim]

    def table(self) -> str:
        """The per-task table the demo prints."""
        header = ["task", "status", "owner", "attempts", f"at kill ({self.victim})", "takeover", *DATA_PIPELINE_NODES]
        rows = [header]
        for o in self.outcomes:
            at_kill = ""
            if o.was_in_flight_on_victim:
                at_kill = f"{o.status_at_kill} after {o.checkpoint_at_kill}" if o.checkpoint_at_kill else "not checkpointed"
            takeover = f"{o.takeover_seconds:.1f}s" if o.takeover_seconds is not None else ""
            runs = [str(o.node_runs.get(node, 0)) for node in DATA_PIPELINE_NODES]
            rows.append([o.task_id, o.status, str(o.owner), str(o.attempts), at_kill, takeover, *runs])
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)


def run_failover_scenario(
    cluster: LocalCluster,
    *,
    victim: str = "api-1",
    task_count: int = 9,
    step_seconds: float = 1.0,
    timeout: float = 120.0,
    id_prefix: str | None = None,
) -> FailoverReport:
    """Start `task_count` data_pipeline tasks through nginx, SIGKILL `victim` mid-run, and check every task."""
    id_prefix = id_prefix or f"failover-{os.urandom(3).hex()}"
    task_ids = [f"{id_prefix}-{i:02d}" for i in range(1, task_count + 1)]
    with client(cluster.url) as http:
        for task_id in task_ids:
            execute(http, task_id, "data_pipeline", {"step_seconds": step_seconds})
        log.info("started %d tasks through nginx", task_count)

        def victim_has_checkpointed_task() -> dict[str, dict] | None:
            tasks = {task_id: get_task(http, task_id) for task_id in task_ids}
            for task in tasks.values():
                if task.get("owner") == victim and task["status"] == "running" and task.get("checkpoint"):
                    return tasks
            return None

        def owners() -> str:
            tasks = [get_task(http, task_id) for task_id in task_ids]
            return ", ".join(f"{t['task_id']}: {t['status']} on {t.get('owner')}" for t in tasks)

        try:
            wait_until(
                victim_has_checkpointed_task,
                timeout=max(30.0, 8 * step_seconds * len(DATA_PIPELINE_NODES)),
                message=f"{victim} running a task past its first node",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}; tasks: {owners()}") from None
        cluster.replicas[victim].kill()
        killed_at = time.monotonic()
        log.info("SIGKILLed %s (pid %s)", victim, cluster.replicas[victim].pid)

        # Read after the kill: nothing of the victim's can change any more except by takeover.
        at_kill = {task_id: get_task(http, task_id) for task_id in task_ids}
        in_flight = {
            task_id
            for task_id, task in at_kill.items()
            if task.get("owner") == victim and task["status"] not in SETTLED_STATUSES
        }
        log.info("in flight on %s at the kill: %s", victim, sorted(in_flight))
        takeover_seconds: dict[str, float] = {}
        latest: dict[str, dict] = {}

        def all_settled() -> bool:
            for task_id in task_ids:
                latest[task_id] = task = get_task(http, task_id)
                if task_id in in_flight and task_id not in takeover_seconds and task.get("owner") != victim:
                    takeover_seconds[task_id] = time.monotonic() - killed_at
            return all(task["status"] in SETTLED_STATUSES for task in latest.values())

        settled_in_time = True
        try:
            wait_until(all_settled, timeout, "tasks still unsettled", interval=0.2)
        except AssertionError:  # wait_until's deadline
            settled_in_time = False

        outcomes = []
        for task_id in task_ids:
            task = latest[task_id]
            events = read_events(cluster.url, task_id) if task["status"] in SETTLED_STATUSES else []
            outcomes.append(
                TaskOutcome(
                    task_id=task_id,
                    status=task["status"],
                    owner=task.get("owner"),
                    attempts=task.get("attempts"),
                    owner_at_kill=victim if task_id in in_flight else None,
                    status_at_kill=at_kill[task_id]["status"],
                    checkpoint_at_kill=at_kill[task_id].get("checkpoint"),
                    node_runs=dict(node_runs(events)),
                    rerun_completed_nodes=rerun_completed_nodes(events),
                    takeover_seconds=takeover_seconds.get(task_id),
                )
            )

    report = FailoverReport(victim, cluster.lease_ttl_seconds, outcomes)
    if not settled_in_time:
        report.problems.append(f"not every task settled within {timeout:.0f} s of the kill")
    if not in_flight:
        report.problems.append(f"{victim} had no task in flight when it was killed: nothing was failed over")
    takeover_bound = 3 * cluster.lease_ttl_seconds + 5
    for o in outcomes:
        if o.status != "completed":
            report.problems.append(f"{o.task_id}: ended {o.status}, not completed")
        if o.was_in_flight_on_victim and o.owner == victim:
            report.problems.append(f"{o.task_id}: was running on the dead {victim} and nobody took it over")
        if o.was_in_flight_on_victim and (o.takeover_seconds or 0) > takeover_bound:
            report.problems.append(
                f"{o.task_id}: taken over after {o.takeover_seconds:.1f} s (> {takeover_bound:.0f} s)"
            )
        if o.status == "completed":
            missing = [node for node in DATA_PIPELINE_NODES if not o.node_runs.get(node)]
            if missing:
                report.problems.append(f"{o.task_id}: completed without a node_started for {missing}")
        too_often = {node: n for node, n in o.node_runs.items() if n > 2}
        if too_often:
            report.problems.append(f"{o.task_id}: nodes ran more than twice: {too_often}")
        if o.rerun_completed_nodes:
            report.problems.append(f"{o.task_id}: completed nodes ran again: {o.rerun_completed_nodes}")
        if not o.was_in_flight_on_victim and any(n > 1 for n in o.node_runs.values()):
            report.problems.append(f"{o.task_id}: a node ran twice though its replica never died: {o.node_runs}")
    return report
