"""Debian's nginx running a copy of the repository's nginx/redis-persist.conf rendered for this machine:
127.0.0.1 ports instead of compose host names, every file (pid, logs, temp folders) under one run folder."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from redis_persist.testing.waiting import wait_until

log = logging.getLogger("redis_persist.cluster")

# The deployment's config, read from the source checkout (compose mounts the same file into its nginx).
NGINX_TEMPLATE = Path(__file__).resolve().parents[2] / "nginx" / "redis-persist.conf"
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

    def __init__(self, port: int, upstream_ports: dict[str, int], run_dir: Path, template: Path = NGINX_TEMPLATE):
        self.run_dir = run_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.conf_path = run_dir / "nginx.conf"
        self.conf_text = render_local_nginx_conf(
            template.read_text(), listen_port=port, upstream_ports=upstream_ports, run_dir=run_dir
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
