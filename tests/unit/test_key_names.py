"""store/keys.py: per-id keys carry the store id as a hash tag; scripts get their keys only from here."""

from __future__ import annotations

import re

from redis.crc import key_slot

from redis_persist.store import keys, scripts

PER_ID = (keys.task, keys.events, keys.lease, keys.run_stream, keys.webhook, keys.thread, keys.thread_runs,
          keys.thread_pending, keys.stateless_hold)


def _slots(store_id: str) -> set[int]:
    return {key_slot(family(store_id).encode()) for family in PER_ID}


def test_every_key_of_one_id_shares_a_slot_and_the_id_is_the_tag() -> None:
    assert keys.task("acme.t1") == "rp:task:{acme.t1}"
    assert _slots("acme.t1") == {key_slot(b"acme.t1")}
    assert len(_slots("t1") | _slots("t2")) == 2


def test_ids_with_braces_still_give_distinct_names_and_one_slot_per_id() -> None:
    ids = ["a}b", "a}c", "{x", "{x}", "x}", "a{b}c", "}x", "}"]
    for family in PER_ID:
        names = [family(store_id) for store_id in ids]
        assert len(set(names)) == len(ids), family.__name__  # never two ids on one key
    for store_id in ids[:-2]:
        assert len(_slots(store_id)) == 1, store_id  # Redis hashes the first {...}: the same in each family
    # The one exception: an id starting with '}' makes the tag empty ("{}"), so Redis hashes each whole name.
    # Still distinct keys (correct on one server); only a cluster would split them. No API id has braces.
    assert len(_slots("}x")) > 1
    # "a}b" and "a}c" both hash "a": distinct keys that merely share a slot (which is harmless).
    assert keys.task("a}b") != keys.task("a}c") and _slots("a}b") == _slots("a}c")


def test_the_lua_builds_no_key_names() -> None:
    # A name built in Lua would start from a prefix ('rp:...') or the old table `K`; every key comes in KEYS
    # (tests/integration/test_script_keys.py checks what the scripts really touch on a real Redis).
    for path in sorted(scripts.LUA_DIR.glob("*.lua")):
        source = path.read_text()
        assert not re.search(r"\bK\.", source), path.name
        assert keys.PREFIX not in source, path.name


def test_the_prelude_maps_every_status_to_its_index_key() -> None:
    for position, name in enumerate(keys.SHARED_KEYS, start=1):
        assert keys.shared_keys()[position - 1] == (
            keys.status_index(name.removeprefix("status:")) if name.startswith("status:") else
            {"all": keys.INDEX_ALL, "expiry": keys.EXPIRY, "seq": keys.SEQUENCE, "tenants": keys.TENANTS,
             "compact": keys.COMPACT}[name])
    assert "queued = KEYS[1]" in scripts.PRELUDE and "%" not in scripts.lua_status_index()
