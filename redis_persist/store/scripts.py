"""Lua scripts: every change of a task's status is one atomic step on the Redis server.

The Lua lives in store/lua/*.lua. Every script starts with prelude.lua, into which this module writes
the key names of store/keys.py (the Lua table `K`) and the table of moves of core/status.py (`MOVES`),
so neither is copied by hand. The prelude's `move()` is the only code that writes a task's status.
Events arrive as ready-made JSON strings so Lua never re-encodes user data.
"""

from __future__ import annotations

from pathlib import Path

from redis_persist.core.auth import DEFAULT_TENANT
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


def lua_keys() -> str:
    """store.keys.LUA_NAMES as a Lua table literal: K.task .. id is keys.task(id)."""
    return "{" + ", ".join(f"{name} = '{value}'" for name, value in keys.LUA_NAMES.items()) + "}"


def load(name: str) -> str:
    """The Lua source of store/lua/<name>.lua."""
    return (LUA_DIR / f"{name}.lua").read_text()


PRELUDE = (load("prelude").replace("%KEYS%", lua_keys()).replace("%DEFAULT%", DEFAULT_TENANT)
           .replace("%MOVES%", lua_moves()))
# One script per file, each after the prelude.
CREATE, ACT, CLAIM, RECORD, RENEW_LEASES, DELETE, FAIR_READ = (
    PRELUDE + load(name) for name in ("create", "act", "claim", "record", "renew_leases", "delete", "fair_read")
)
