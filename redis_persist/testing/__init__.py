"""A local redis-persist cluster without Docker, for tests, scripts/failover_demo.py and bench/.

Real `redis-persist serve` processes (`ServiceProcess`), Debian's nginx running the repository's
nginx/redis-persist.conf (`Nginx`), both together (`LocalCluster`), HTTP helpers that read a task and its
events, and the failover scenario with its report. Needs only the package's own dependencies (no test
extras). The service never imports this package (tests/unit/test_layering.py checks it).
"""

from __future__ import annotations

from redis_persist.embedded import free_port
from redis_persist.testing.cluster import REPLICA_NAMES, LocalCluster
from redis_persist.testing.failover import (
    DATA_PIPELINE_NODES,
    SETTLED_STATUSES,
    FailoverReport,
    TaskOutcome,
    run_failover_scenario,
)
from redis_persist.testing.http import client, execute, get_task, node_runs, read_events, rerun_completed_nodes
from redis_persist.testing.nginx import NGINX_TEMPLATE, Nginx, nginx_binary, render_local_nginx_conf, upstream_servers
from redis_persist.testing.process import ServiceProcess
from redis_persist.testing.waiting import wait_until

__all__ = [
    "DATA_PIPELINE_NODES",
    "NGINX_TEMPLATE",
    "REPLICA_NAMES",
    "SETTLED_STATUSES",
    "FailoverReport",
    "LocalCluster",
    "Nginx",
    "ServiceProcess",
    "TaskOutcome",
    "client",
    "execute",
    "free_port",
    "get_task",
    "nginx_binary",
    "node_runs",
    "read_events",
    "render_local_nginx_conf",
    "rerun_completed_nodes",
    "run_failover_scenario",
    "upstream_servers",
    "wait_until",
]
