"""Test helpers: free ports, polling with a deadline, real service processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from redis_persist.embedded import free_port

__all__ = ["free_port", "wait_until", "ServiceProcess", "read_events", "node_runs", "TEST_GRAPHS_DIR"]

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
TEST_GRAPHS_DIR = Path(__file__).resolve().parent / "graphs"


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, message: str = "condition",
               interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - retried until the deadline
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}" +
                         (f" (last error: {last_error!r})" if last_error else ""))


class ServiceProcess:
    """A real `redis-persist serve` process on a free port."""

    def __init__(self, redis_url: str | None, env: dict[str, str] | None = None, port: int | None = None,
                 args: list[str] | None = None, name: str = "svc") -> None:
        self.redis_url = redis_url
        self.port = port or free_port()
        self.extra_env = env or {}
        self.args = args or []
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"rp-{name}-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_PERSIST_") and k != "REDIS_URL"}
        env["SERVICE_NAME"] = self.name
        env["PYTHONUNBUFFERED"] = "1"
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        """Start and wait until /health answers 200; fail with the service log otherwise."""
        # One process per replica unless a test asks for more: tests name replicas and own their processes.
        workers = [] if "--workers" in self.args else ["--workers", "1"]
        cmd = [sys.executable, "-m", "redis_persist", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               *workers, *self.args]
        self.process = subprocess.Popen(cmd, env=self.env(), cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if healthy():
                    return self
            except RuntimeError:
                raise
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait (graceful: running tasks are handed back to the queue)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


def read_events(base_url: str, task_id: str, timeout: float = 30.0,
                headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """All events of a task, read through SSE until the stream ends (the task is final)."""
    events = []
    with httpx.stream("GET", f"{base_url}/api/tasks/{task_id}/events", timeout=timeout,
                      headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def node_runs(events: list[dict[str, Any]]) -> Counter[str]:
    """How many times each node started, from a task's events."""
    return Counter(e["node"] for e in events if e["type"] == "node_started")
