"""Lua scripts for threads and their runs: one active run per thread, decided atomically on the server.

They start with the task scripts' prelude (store/scripts.py), so a run is created, queued and cancelled
exactly as a task is; thread_prelude.lua adds the thread helpers. A thread is busy while the run holding
it (`active_run`) is queued, running or paused. As every script, they touch only the keys they are given
(store/keys.py for_<script>): Python reads which run holds the thread (and its pending runs) to name
their keys, and the script answers 'retry' if that changed before it ran (store/threads.py retries).
"""

from __future__ import annotations

from redis_persist.store.scripts import PRELUDE, load

THREAD_PRELUDE = PRELUDE + load("thread_prelude")
CREATE_THREAD, CREATE_RUN, ADVANCE, DELETE_THREAD, LOCK_FOR_UPDATE, RELEASE_LEASE, CLAIM_WEBHOOKS = (
    THREAD_PRELUDE + load(name) for name in (
        "create_thread", "create_run", "advance", "delete_thread", "lock_for_update", "release_lease", "claim_webhooks")
)
