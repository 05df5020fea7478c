"""User JSON (initial_state, resume input): the limits it must meet before anything is written,
and a readable copy of any value already stored, so no record can make a read fail."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from redis_persist.core.errors import InvalidPayload, StateTooLarge

# RedisJSON refuses documents nested deeper than 128 levels and the checkpoint wraps the state in a
# few more; Python's recursive JSON code needs ~1000 frames. 64 leaves both a wide margin.
MAX_NESTING_DEPTH = 64
# The checkpointer serialises with msgpack, which carries 64-bit integers only.
MIN_INT, MAX_INT = -(2**63), 2**64 - 1
# Reads cut anything deeper than this (only records written before the limit existed can be):
# Python's recursion limit is ~1000 frames and a read walks a few frames per level.
READ_MAX_DEPTH = 200
NOT_SHOWN = "<nested too deep: not shown>"
_SURROGATE = re.compile("[\ud800-\udfff]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# orjson reads an integer beyond 64 bits as a float; json.loads keeps it exact. 19 digits fit in 64 bits.
_LONG_NUMBER = re.compile(r"[0-9]{19}")


def _step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _check_string(text: str, where: str, path: str) -> None:
    bad = _SURROGATE.search(text)
    if bad:
        raise InvalidPayload(path, f"{where} is not valid Unicode (lone surrogate U+{ord(bad.group()):04X} "
                                   f"at position {bad.start()})")


def _check_scalar(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise InvalidPayload(path, f"integer out of range (allowed: {MIN_INT} to {MAX_INT})")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidPayload(path, "not a finite number (NaN and Infinity are not JSON)")
    elif isinstance(value, str):
        _check_string(value, "string", path)
    else:
        raise InvalidPayload(path, f"not a JSON value ({type(value).__name__})")


def check_user_json(value: Any, field: str, max_bytes: int) -> str:
    """Raise InvalidPayload / StateTooLarge unless `value` can be stored and read back; returns its JSON.

    Walks the value without recursion, so a hostile nesting depth cannot exhaust the stack. The JSON
    returned is the canonical form (sorted keys, compact) whose size is compared with `max_bytes`.
    """
    stack: list[tuple[Any, str, int]] = [(value, field, 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_NESTING_DEPTH:
                raise InvalidPayload(path, f"nested deeper than {MAX_NESTING_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise InvalidPayload(path, f"object key {key!r} is not a string")
                    _check_string(key, "object key", _step(path, key))
                    stack.append((child, _step(path, key), depth + 1))
            else:
                stack.extend((child, _step(path, index), depth + 1) for index, child in enumerate(item))
        else:
            _check_scalar(item, path)
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"))
    if len(encoded) > max_bytes:  # ensure_ascii: one character is one byte
        raise StateTooLarge(len(encoded), max_bytes, field)
    return encoded


def readable(value: Any, max_depth: int = READ_MAX_DEPTH) -> Any:
    """A copy of `value` that strict JSON can carry: lone surrogates become U+FFFD, NaN/Infinity
    become null (as JSON.stringify does), anything nested deeper than `max_depth` a marker."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dict, list, tuple)):
        if max_depth <= 0:
            return NOT_SHOWN
        if isinstance(value, dict):
            return {readable(key) if isinstance(key, str) else key: readable(child, max_depth - 1)
                    for key, child in value.items()}
        return [readable(child, max_depth - 1) for child in value]
    return value


def load_json(raw: str | bytes) -> Any:
    """json.loads, about three times faster: orjson where it gives the same value, the standard library
    where it might not (possible integers beyond 64 bits; NaN, Infinity or nesting orjson refuses)."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "surrogatepass")
    if len(text) < 19 or _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # not strict JSON, or deeper than orjson goes: the standard library decides
    return json.loads(raw)


def decode_stored(raw: str | None) -> Any:
    """A JSON value read back from Redis; a marker instead of an exception for what cannot be decoded."""
    if not raw:
        return None
    try:
        return load_json(raw)
    except RecursionError:
        return NOT_SHOWN
    except ValueError as error:
        return f"<not decodable: {error}>"
