"""Every Redis key name the service uses (the saver's own keys excepted), and each Lua script's KEYS.

Per-task, per-run and per-thread keys carry the store id as a hash tag (`rp:task:{ID}`), so all keys of
one id share a cluster slot. An id may itself contain braces: the full name stays unique, Redis hashes
the first `{...}` only, and every key of one id is built the same way, so they still share a slot (except
for an id starting with `}`: its tag is empty and each name hashes whole; API ids have no braces at all).

Scripts (store/lua/*.lua) touch only keys whose names they receive in KEYS, built here; none builds a
name from an argument or from data it reads. Each script's KEYS is one function below (`for_<script>`),
assembled from these blocks, whose order store/lua/prelude.lua reads (the constants it gets generated
by store/scripts.py from SHARED_KEYS, TASK_BLOCK and THREAD_BLOCK):

- shared_keys(): one status index per TaskStatus (in enum order), then INDEX_ALL, EXPIRY, SEQUENCE,
  TENANTS, COMPACT: every script that moves, creates or queues a task gets them first.
- task_keys(id): the task hash, its events, its lease, then its tenant's running set, work stream and
  task index (the tenant is the store id's scope, core.auth.split_scoped_id; Lua checks it against the
  task's stored tenant before writing).
- thread_keys(id): the thread hash, its runs, its pending runs, INDEX_THREADS, THREADS_WITH_PENDING.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis_persist.core.auth import DEFAULT_TENANT, split_scoped_id
from redis_persist.core.status import TaskStatus

PREFIX = "rp:"
TASK = PREFIX + "task:"  # hash per task
EVENTS = PREFIX + "events:"  # stream per task
LEASE = PREFIX + "lease:"  # string per running task: fencing token, with a TTL
INDEX_ALL = PREFIX + "idx:all"  # zset task_id -> creation sequence
INDEX_STATUS = PREFIX + "idx:status:"  # zset per status
INDEX_GRAPH = PREFIX + "idx:graph:"  # zset per graph name
EXPIRY = PREFIX + "expiry"  # zset task_id -> when (ms) a finished task is to be removed
COMPACT = PREFIX + "compact"  # zset task_id -> when (ms) a finished task's checkpoints are due for compaction
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
SCHEMA = PREFIX + "schema"  # the key-name scheme this database is in (store/migrate.py)
SCHEMA_LOCK = PREFIX + "schema-lock"  # held by the one replica migrating key names


def tagged(prefix: str, store_id: str) -> str:
    """`prefix{store_id}`: the id is the key's hash tag."""
    return f"{prefix}{{{store_id}}}"


def task(task_id: str) -> str:
    return tagged(TASK, task_id)


def events(task_id: str) -> str:
    return tagged(EVENTS, task_id)


def lease(lease_id: str) -> str:
    """A task's lease (lease_id = task id), or a thread's short update lease (thread_update_lease_id)."""
    return tagged(LEASE, lease_id)


def thread_update_lease_id(thread_id: str) -> str:
    return f"thread-update:{thread_id}"


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
# set per checkpointer thread: the saver's keys of that thread (engine/saver.py, REGISTRY_COMPLETE)
CHECKPOINT_KEYS = PREFIX + "checkpoint-keys:"


def thread(thread_id: str) -> str:
    return tagged(THREAD, thread_id)


def thread_runs(thread_id: str) -> str:
    return tagged(THREAD_RUNS, thread_id)


def thread_pending(thread_id: str) -> str:
    return tagged(THREAD_PENDING, thread_id)


def run_stream(run_id: str) -> str:
    return tagged(RUN_STREAM, run_id)


def webhook(run_id: str) -> str:
    return tagged(WEBHOOK, run_id)


def checkpoint_keys(thread_id: str) -> str:
    return tagged(CHECKPOINT_KEYS, thread_id)


def stateless_hold(thread_id: str) -> str:
    return tagged(STATELESS_HOLD, thread_id)


# The per-id key families: tagged(prefix, id). Before hash tags they were prefix + id (store/migrate.py).
PER_ID_PREFIXES = (TASK, EVENTS, LEASE, RUN_STREAM, WEBHOOK, THREAD, THREAD_RUNS, THREAD_PENDING, STATELESS_HOLD)

# ---- Each script's KEYS (the layout is described at the top of this module) ----
SHARED_KEYS = tuple(f"status:{s.value}" for s in TaskStatus) + ("all", "expiry", "seq", "tenants", "compact")
TASK_BLOCK = ("task", "events", "lease", "running", "queue", "tenant_index")
THREAD_BLOCK = ("thread", "runs", "pending", "threads", "threads_pending")


_SHARED_KEYS = (*(status_index(s.value) for s in TaskStatus), INDEX_ALL, EXPIRY, SEQUENCE, TENANTS, COMPACT)


def shared_keys() -> list[str]:
    # Built once: every script call starts with them, and walking the enum each time showed in profiles.
    return [*_SHARED_KEYS]


def task_keys(task_id: str) -> list[str]:
    """TASK_BLOCK of one task ('' = no task: placeholder names no script touches)."""
    tenant = split_scoped_id(task_id)[0]
    return [task(task_id), events(task_id), lease(task_id), tenant_running(tenant), queue(tenant),
            tenant_index(tenant)]


def thread_keys(thread_id: str) -> list[str]:
    return [thread(thread_id), thread_runs(thread_id), thread_pending(thread_id), INDEX_THREADS,
            THREADS_WITH_PENDING]


def for_task(task_id: str) -> list[str]:
    """act.lua, claim.lua, record.lua, compact.lua."""
    return [*shared_keys(), *task_keys(task_id)]


def for_create(task_id: str, graph_name: str) -> list[str]:
    """create.lua and delete.lua: the task and its graph's index."""
    return [*for_task(task_id), graph_index(graph_name)]


for_delete = for_create


def for_renew_leases(task_ids: Iterable[str]) -> list[str]:
    """renew_leases.lua: (lease, task hash) per task."""
    return [key for task_id in task_ids for key in (lease(task_id), task(task_id))]


def for_fair_read(tenants: Iterable[str]) -> list[str]:
    """fair_read.lua: (work stream, running set) per tenant, in turn order."""
    return [key for tenant in tenants for key in (queue(tenant), tenant_running(tenant))]


def for_create_thread(thread_id: str) -> list[str]:
    return [*shared_keys(), *thread_keys(thread_id)]


def for_create_run(thread_id: str, run_id: str, graph_name: str, active_run: str) -> list[str]:
    """create_run.lua: the thread, the new run, its graph index, then the run now holding the thread."""
    return [*for_create_thread(thread_id), *task_keys(run_id), graph_index(graph_name), *task_keys(active_run)]


def for_advance(thread_id: str, active_run: str, next_run: str) -> list[str]:
    """advance.lua: the thread, its active run, the head of its pending list."""
    return [*for_create_thread(thread_id), *task_keys(active_run), *task_keys(next_run)]


def for_delete_thread(thread_id: str, active_run: str, pending_runs: Iterable[str]) -> list[str]:
    """delete_thread.lua: the thread, its active run, then each pending run."""
    return [*for_create_thread(thread_id), *task_keys(active_run),
            *(key for run_id in pending_runs for key in task_keys(run_id))]


def for_lock_for_update(thread_id: str, active_run: str) -> list[str]:
    """lock_for_update.lua: the thread, its update lease, its active run."""
    return [*for_create_thread(thread_id), lease(thread_update_lease_id(thread_id)), *task_keys(active_run)]


def for_claim_webhooks(run_ids: Iterable[str]) -> list[str]:
    """claim_webhooks.lua: the due set, then each delivery's hash."""
    return [WEBHOOKS_DUE, *(webhook(run_id) for run_id in run_ids)]


def for_release_lease(lease_id: str) -> list[str]:
    return [lease(lease_id)]
