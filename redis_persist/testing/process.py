"""One real `redis-persist serve` process on a free port: start (until healthy), SIGTERM, SIGKILL, its log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from redis_persist.embedded import free_port


class ServiceProcess:
    """A real `redis-persist serve` process on a free port."""

    def __init__(self, redis_url: str | None, env: dict[str, str] | None = None, port: int | None = None,
                 args: list[str] | None = None, name: str = "svc", cwd: Path | None = None) -> None:
        self.redis_url = redis_url
        self.port = port or free_port()
        self.extra_env = env or {}
        self.args = args or []
        self.name = name
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        handle, path = tempfile.mkstemp(prefix=f"rp-{name}-", suffix=".log")
        os.close(handle)  # reopened for each start: a restarted process appends to the same log
        self.log_path = Path(path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def env(self) -> dict[str, str]:
        """The process's environment: ours without REDIS_PERSIST_*/REDIS_URL, then the replica's own."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_PERSIST_") and k != "REDIS_URL"}
        env["SERVICE_NAME"] = self.name
        env["PYTHONUNBUFFERED"] = "1"
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        """Start and wait until /health answers 200; fail with the service log otherwise."""
        # One process per replica unless a caller asks for more: callers name replicas and own their processes.
        workers = [] if "--workers" in self.args else ["--workers", "1"]
        cmd = [sys.executable, "-m", "redis_persist", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               *workers, *self.args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(cmd, env=self.env(), cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT)

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            return httpx.get(f"{self.url}/health", timeout=2, trust_env=False).status_code == 200

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
        """The end of the process's output (stdout and stderr)."""
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
        """A client for this process (base URL set; proxies from the environment ignored)."""
        return httpx.Client(base_url=self.url, timeout=10, trust_env=False)
