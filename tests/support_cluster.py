"""The local cluster and the failover scenario, for tests: re-exported from redis_persist.testing."""

from __future__ import annotations

from pathlib import Path

from redis_persist.testing import (
    DATA_PIPELINE_NODES,
    NGINX_TEMPLATE,
    REPLICA_NAMES,
    SETTLED_STATUSES,
    FailoverReport,
    LocalCluster,
    Nginx,
    ServiceProcess,
    TaskOutcome,
    client,
    execute,
    free_port,
    get_task,
    nginx_binary,
    node_runs,
    read_events,
    render_local_nginx_conf,
    rerun_completed_nodes,
    run_failover_scenario,
    upstream_servers,
    wait_until,
)

__all__ = [
    "DATA_PIPELINE_NODES",
    "NGINX_TEMPLATE",
    "REPLICA_NAMES",
    "REPO_ROOT",
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

REPO_ROOT = Path(__file__).resolve().parents[1]
