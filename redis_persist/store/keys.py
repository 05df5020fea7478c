"""Every Redis key name and prefix the service uses (the saver's own keys excepted)."""

from __future__ import annotations

PREFIX = "rp:"
TASK = PREFIX + "task:"  # hash per task
EVENTS = PREFIX + "events:"  # stream per task
LEASE = PREFIX + "lease:"  # string per running task: fencing token, with a TTL
INDEX_ALL = PREFIX + "idx:all"  # zset task_id -> creation sequence
INDEX_STATUS = PREFIX + "idx:status:"  # zset per status
INDEX_GRAPH = PREFIX + "idx:graph:"  # zset per graph name
EXPIRY = PREFIX + "expiry"  # zset task_id -> when (ms) a finished task is to be removed
SEQUENCE = PREFIX + "seq"  # counter giving each task its creation sequence
QUEUE = PREFIX + "queue"  # stream of task ids to run
QUEUE_GROUP = "workers"
CONTROL_CHANNEL = PREFIX + "control"  # pub/sub: task ids whose control flags changed
REPLICA = PREFIX + "replica:"  # heartbeat per live replica
REPLICATION_PROBE = PREFIX + "replication-probe"  # written before WAIT so WAIT covers a checkpoint's writes


def task(task_id: str) -> str:
    return TASK + task_id


def events(task_id: str) -> str:
    return EVENTS + task_id


def lease(task_id: str) -> str:
    return LEASE + task_id


def status_index(status: str) -> str:
    return INDEX_STATUS + status


def graph_index(graph_name: str) -> str:
    return INDEX_GRAPH + graph_name
