"""Lua scripts: every change of a task's status is one atomic step on the Redis server.

The Lua lives in store/lua/*.lua. Every script starts with prelude.lua, into which this module writes
the KEYS layout of store/keys.py (which KEYS position holds each status index and each key of a task's
or thread's block) and the table of moves of core/status.py (`MOVES`), so neither is copied by hand.
A script touches only the keys it is given in KEYS (keys.for_<script> builds them); it never builds a
key name itself. The prelude's `move()` is the only code that writes a task's status.
Events arrive as ready-made JSON strings so Lua never re-encodes user data.
"""

from __future__ import annotations

from pathlib import Path

from redis_persist.core.auth import DEFAULT_TENANT, SCOPE_SEPARATOR
from redis_persist.core.status import MOVES, TaskStatus
from redis_persist.store import keys

LUA_DIR = Path(__file__).with_name("lua")
REMOVED = "deleted"  # what MOVES' None (the task is removed) is called in Lua


def lua_moves() -> str:
    """core.status.MOVES as a Lua table literal: MOVES[status][action] -> next status."""
    by_status: dict[str, list[str]] = {status.value: [] for status in TaskStatus}
    for (status, action), target in MOVES.items():
        by_status[status.value].append(f"{action.value} = '{target.value if target else REMOVED}'")
    rows = ", ".join(f"{status} = {{{', '.join(moves)}}}" for status, moves in by_status.items())
    return "{" + rows + "}"


def _shared_positions() -> dict[str, int]:
    return {name: position for position, name in enumerate(keys.SHARED_KEYS, start=1)}


def lua_status_index() -> str:
    """STATUS_INDEX[status] -> the KEYS entry keys.shared_keys() puts that status's index in."""
    positions = _shared_positions()
    return "{" + ", ".join(f"{s.value} = KEYS[{positions['status:' + s.value]}]" for s in TaskStatus) + "}"


def lua_shared() -> str:
    """SHARED.all, .expiry, .seq, .tenants, .compact -> their KEYS entries."""
    rows = [f"{name} = KEYS[{n}]" for name, n in _shared_positions().items() if not name.startswith("status:")]
    return "{" + ", ".join(rows) + "}"


def lua_names(names: tuple[str, ...]) -> str:
    return "{" + ", ".join(f"'{name}'" for name in names) + "}"


def load(name: str) -> str:
    """The Lua source of store/lua/<name>.lua."""
    return (LUA_DIR / f"{name}.lua").read_text()


PRELUDE = (load("prelude").replace("%DEFAULT%", DEFAULT_TENANT).replace("%SEPARATOR%", SCOPE_SEPARATOR)
           .replace("%CONTROL%", keys.CONTROL_CHANNEL).replace("%STATUS_INDEX%", lua_status_index())
           .replace("%SHARED%", lua_shared()).replace("%SHARED_SIZE%", str(len(keys.SHARED_KEYS)))
           .replace("%TASK_BLOCK%", lua_names(keys.TASK_BLOCK))
           .replace("%THREAD_BLOCK%", lua_names(keys.THREAD_BLOCK)).replace("%MOVES%", lua_moves()))
# One script per file, each after the prelude.
CREATE, ACT, CLAIM, RECORD, RENEW_LEASES, DELETE, FAIR_READ, COMPACT = (
    PRELUDE + load(name)
    for name in ("create", "act", "claim", "record", "renew_leases", "delete", "fair_read", "compact")
)
# Reads only: no prelude.
READ_TASKS = load("read_tasks")
