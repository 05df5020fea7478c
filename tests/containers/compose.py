"""Drive scripts/containers.sh and podman for the container tests: one compose project, its containers."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_SH = REPO_ROOT / "scripts" / "containers.sh"
CONTAINERS_CONF = REPO_ROOT / "scripts" / "containers" / "containers.conf"
COMPOSE_PROJECT_LABEL = "io.podman.compose.project"


class ComposeStack:
    """One compose project of docker-compose-redis-persist.yml, run by scripts/containers.sh with podman."""

    def __init__(self, project: str, port: int):
        self.project = project
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.admin_key = secrets.token_urlsafe(32)
        self.env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": project,
            "PORT": str(port),
            "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF)),
            # The replicas run with API keys on, as the compose file ships them.
            "REDIS_PERSIST_ADMIN_KEY": self.admin_key,
        }

    def script(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run scripts/containers.sh ARGS; raise with its output when it fails."""
        # Files, not pipes: a daemon podman starts (aardvark-dns) could inherit a pipe and hold it open.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            returncode = subprocess.run(
                ["bash", str(CONTAINERS_SH), *args],
                env=self.env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout,
            ).returncode
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(args, returncode, out.read(), err.read())
        if result.returncode != 0:
            raise RuntimeError(
                f"containers.sh {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
            )
        return result

    def up(self) -> None:
        """Prepare what is missing, build the image, start the stack; returns once /health answers via nginx."""
        # A cold first run installs podman, builds the base images and the image: minutes.
        result = self.script("up", timeout=1500)
        assert result.stdout.strip().splitlines()[-1] == self.url, result.stdout

    def down(self) -> None:
        """`down -v`: containers, network and volumes of this project."""
        self.script("down", timeout=300)

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """podman-compose ARGS on this project (leading `-f FILE` options add override files)."""
        return self.script("compose", *args, timeout=timeout)

    def container(self, service: str) -> str:
        """The container podman-compose made for `service`."""
        return f"{self.project}_{service}_1"

    def podman(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run podman with the same containers.conf as the script."""
        return subprocess.run(
            ["podman", *args], env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout, check=check,
        )

    def inspect(self, service: str) -> dict:
        """`podman inspect` of the service's container."""
        return json.loads(self.podman("inspect", self.container(service)).stdout)[0]

    def is_healthy(self, service: str) -> bool:
        """Run the container's healthcheck now (podman schedules none without systemd)."""
        return self.podman("healthcheck", "run", self.container(service), check=False).returncode == 0

    def logs(self, service: str) -> str:
        """The container's output (stdout and stderr)."""
        result = self.podman("logs", self.container(service), check=False)
        return result.stdout + result.stderr

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes and networks of this project that still exist."""
        label = f"label={COMPOSE_PROJECT_LABEL}={self.project}"
        found = {
            "containers": self.podman("ps", "--all", "--filter", label, "--format", "{{.Names}}").stdout.split(),
            "volumes": self.podman("volume", "ls", "--filter", label, "--format", "{{.Name}}").stdout.split(),
            "networks": [
                name
                for name in self.podman("network", "ls", "--format", "{{.Name}}").stdout.split()
                if name.startswith(f"{self.project}_")
            ],
        }
        return {kind: names for kind, names in found.items() if names}

    def client(self) -> httpx.Client:
        """An HTTP client for nginx's published port."""
        return httpx.Client(base_url=self.url, timeout=10, trust_env=False,
                            headers={"X-Api-Key": self.admin_key})
