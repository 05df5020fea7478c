"""`serve --workers N`: N `serve` processes for one replica, on one port, sharing one Redis.

One Python process is one event loop, so one replica used one core however many the machine has. The
supervisor starts N children, each a complete `serve --workers 1` (API + worker + its own lease keeper) named
`SERVICE_NAME-1` .. `SERVICE_NAME-N` (each holds its own leases, so each needs its own name), all listening
on HOST:PORT with SO_REUSEPORT: the kernel spreads new connections over them. The embedded Redis (REDIS_URL
unset) is started once, here, and passed to the children as REDIS_URL. With `--api-processes K` the first K
children serve the API alone (`serve --no-worker`) and the rest run tasks alone (`worker`, no HTTP).

A child that dies is a failover like any other (its leases run out, another process takes its tasks over)
and is started again. SIGTERM/SIGINT to the supervisor stops every child gracefully (each hands its running
tasks back to the queue). The children die with the supervisor (PR_SET_PDEATHSIG SIGKILL): a SIGKILLed
supervisor is a crashed replica, as a SIGKILLed single process was.

Keep this module's imports to the standard library: `serve` runs the supervisor in the lean program
redis_persist.supervise (it exec's into it after its checks), whose memory is what this module imports.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("redis_persist.supervisor")
PR_SET_PDEATHSIG = 1
RESTART_DELAY_SECONDS = 1.0
CRASH_LOOP_SECONDS = 10.0  # a child that dies sooner than this after its start counts towards a crash loop
CRASH_LOOP_LIMIT = 5
STOP_TIMEOUT_SECONDS = 60.0


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def reuse_port_socket(host: str, port: int, listen: bool) -> socket.socket:
    """A TCP socket bound to HOST:PORT with SO_REUSEPORT (listening if `listen`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        if listen:
            sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class _Child:
    index: int
    name: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0


@dataclass
class Supervisor:
    """Starts, watches, restarts and stops the N children of one replica."""

    workers: int
    host: str
    port: int
    service_name: str
    redis_url: str
    log_level: str = "info"
    no_worker: bool = False  # every child serves the API alone
    # The first `api_only` children serve the API alone and the others run tasks alone (`worker`: no HTTP);
    # 0: every child does both.
    api_only: int = 0
    _children: list[_Child] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or a crash loop (exit 1). The port must be free (checked here)."""
        # Bound (not listening) for the whole run: fails at once if another server listens on the port, and
        # keeps the port ours while a child restarts. Connections only go to the children's listening sockets.
        try:
            reserved = reuse_port_socket(self.host, self.port, listen=False)
        except OSError as error:
            log.error("cannot bind", extra={"host": self.host, "port": self.port, "error": str(error)})
            return 1
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._children = [_Child(i, f"{self.service_name}-{i}") for i in range(1, self.workers + 1)]
            for child in self._children:
                self._start(child)
            log.info("replica started", extra={"replica": self.service_name, "workers": self.workers,
                                               "children": {c.name: c.process.pid for c in self._children if c.process}})
            return self._watch()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            reserved.close()

    def _on_signal(self, _signum: int, _frame: object) -> None:
        self._stopping.set()

    def _command(self, child: _Child) -> list[str]:
        module = [sys.executable, "-m", "redis_persist"]
        if self.api_only and child.index > self.api_only:
            return [*module, "worker", "--log-level", self.log_level]
        no_worker = ["--no-worker"] if self.no_worker or self.api_only else []
        return [*module, "serve", "--workers", "1", "--reuse-port", "--host", self.host, "--port", str(self.port),
                "--log-level", self.log_level, *no_worker]

    def _start(self, child: _Child) -> None:
        env = {**os.environ, "SERVICE_NAME": child.name, "REDIS_URL": self.redis_url}
        command = self._command(child)
        # Own process group: a terminal's Ctrl-C reaches the supervisor only, which stops the children in order.
        child.process = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent, process_group=0)
        child.started_at = time.monotonic()

    def _watch(self) -> int:
        while not self._stopping.wait(0.2):
            for child in self._children:
                process = child.process
                if process is None or process.poll() is None:
                    continue
                lived = time.monotonic() - child.started_at
                child.quick_deaths = child.quick_deaths + 1 if lived < CRASH_LOOP_SECONDS else 0
                log.warning("worker process exited; its tasks are taken over when their leases expire",
                            extra={"replica": child.name, "pid": process.pid, "returncode": process.returncode,
                                   "lived_seconds": round(lived, 1)})
                if process.returncode == 2 and lived < CRASH_LOOP_SECONDS:
                    return 2  # refused its settings: every restart would too
                if child.quick_deaths >= CRASH_LOOP_LIMIT:
                    log.error("worker process keeps exiting at start; stopping the replica",
                              extra={"replica": child.name, "returncode": process.returncode})
                    return 1
                if self._stopping.wait(RESTART_DELAY_SECONDS):
                    break
                self._start(child)
                log.info("worker process restarted", extra={"replica": child.name, "pid": child.process.pid})
        return 0

    def _stop_all(self) -> None:
        running = [c.process for c in self._children if c.process is not None and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)  # graceful: each hands its running tasks back to the queue
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
