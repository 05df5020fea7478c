"""Lua scripts for threads and their runs: one active run per thread, decided atomically on the server.

They start with the task scripts' prelude (store/scripts.py), so a run is created, queued and cancelled
exactly as a task is; thread_prelude.lua adds the thread helpers. A thread is busy while the run holding
it (`active_run`) is queued, running or paused.
"""

from __future__ import annotations

from redis_persist.store.scripts import PRELUDE, load

THREAD_PRELUDE = PRELUDE + load("thread_prelude")
CREATE_THREAD = THREAD_PRELUDE + load("create_thread")
CREATE_RUN = THREAD_PRELUDE + load("create_run")
ADVANCE = THREAD_PRELUDE + load("advance")
DELETE_THREAD = THREAD_PRELUDE + load("delete_thread")
LOCK_FOR_UPDATE = THREAD_PRELUDE + load("lock_for_update")
RELEASE_LEASE = THREAD_PRELUDE + load("release_lease")
CLAIM_WEBHOOKS = THREAD_PRELUDE + load("claim_webhooks")
