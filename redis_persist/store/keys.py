"""Every Redis key name and prefix the service uses (the saver's own keys excepted)."""

from __future__ import annotations

from redis_persist.core.auth import DEFAULT_TENANT

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
REPLICATION_PROBE = PREFIX + "replication-probe"  # written before WAIT so WAIT covers a checkpoint's writes
TENANTS = PREFIX + "tenants"  # set of tenants that have (had) a work queue of their own
INDEX_TENANT = PREFIX + "idx:tenant:"  # zset per tenant: its task ids -> creation sequence
RUNNING_TENANT = PREFIX + "idx:running:"  # zset per tenant: its running task ids
API_KEY = PREFIX + "apikey:"  # hash per API key: tenant, role, salt, salted hash (never the secret)
API_KEYS = PREFIX + "apikeys"  # zset key id -> creation time (ms)
RATE = PREFIX + "rate:"  # counter per key and time window, with a TTL


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


def tenant_index(tenant: str) -> str:
    return INDEX_TENANT + tenant


def tenant_running(tenant: str) -> str:
    return RUNNING_TENANT + tenant


def queue(tenant: str) -> str:
    """The tenant's work stream; the default tenant keeps the original single stream."""
    return QUEUE if tenant == DEFAULT_TENANT else f"{QUEUE}:{tenant}"


def api_key(key_id: str) -> str:
    return API_KEY + key_id


def rate(key_id: str, window: int) -> str:
    return f"{RATE}{key_id}:{window}"
# LangGraph Server API: threads, their runs, run output streams and webhook deliveries.
THREAD = PREFIX + "thread:"  # hash per thread
THREAD_RUNS = PREFIX + "thread-runs:"  # zset per thread: run (task) id -> creation sequence
THREAD_PENDING = PREFIX + "thread-pending:"  # list per thread: enqueued runs waiting for the thread
INDEX_THREADS = PREFIX + "idx:threads"  # zset thread_id -> creation sequence
THREADS_WITH_PENDING = PREFIX + "threads-pending"  # set of threads whose pending list is not empty
RUN_STREAM = PREFIX + "run-stream:"  # stream per run: the LangGraph stream chunks the run asked for
WEBHOOKS_DUE = PREFIX + "webhooks"  # zset run id -> when (ms) its webhook delivery is next tried
WEBHOOK = PREFIX + "webhook:"  # hash per pending delivery: url, body, attempts
STATELESS_DUE = PREFIX + "stateless"  # zset stateless thread id -> when (ms) to look whether to delete it
STATELESS_HOLD = PREFIX + "stateless-hold:"  # key per stateless thread a client is still reading (expires)


def thread(thread_id: str) -> str:
    return THREAD + thread_id


def thread_runs(thread_id: str) -> str:
    return THREAD_RUNS + thread_id


def thread_pending(thread_id: str) -> str:
    return THREAD_PENDING + thread_id


def run_stream(run_id: str) -> str:
    return RUN_STREAM + run_id


def webhook(run_id: str) -> str:
    return WEBHOOK + run_id


# The names the Lua scripts build keys from (the table `K` of store/lua/prelude.lua): `K.task .. id` is task(id).
LUA_NAMES = {
    "task": TASK, "events": EVENTS, "lease": LEASE, "all": INDEX_ALL, "status": INDEX_STATUS,
    "graph": INDEX_GRAPH, "tenant": INDEX_TENANT, "running": RUNNING_TENANT, "expiry": EXPIRY,
    "seq": SEQUENCE, "queue": QUEUE, "tenants": TENANTS, "control": CONTROL_CHANNEL,
    "thread": THREAD, "thread_runs": THREAD_RUNS, "thread_pending": THREAD_PENDING, "threads": INDEX_THREADS,
    "threads_pending": THREADS_WITH_PENDING, "webhooks": WEBHOOKS_DUE, "webhook": WEBHOOK,
}


def stateless_hold(thread_id: str) -> str:
    return STATELESS_HOLD + thread_id
