"""Replicas api-1..3 of `redis-persist serve` on free ports with nginx in front: the compose stack, no Docker."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from redis_persist.embedded import free_port
from redis_persist.testing.nginx import Nginx
from redis_persist.testing.process import ServiceProcess

log = logging.getLogger("redis_persist.cluster")

# The replica names of docker-compose-redis-persist.yml and of nginx/redis-persist.conf's upstream block.
REPLICA_NAMES = ("api-1", "api-2", "api-3")


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
