"""JSON for LangGraph values as LangGraph's server writes them: messages and models dumped, interrupts as dicts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump") and callable(obj.model_dump) and not isinstance(obj, type):
        return obj.model_dump()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if hasattr(obj, "_asdict") and callable(obj._asdict):
        return obj._asdict()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)}
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode(errors="replace")
    return str(obj)


def dumps(value: Any) -> str:
    """`value` as JSON text; anything JSON cannot hold is converted the way LangGraph's server converts it."""
    return json.dumps(_tuples_to_lists(value), default=_default, separators=(",", ":"))


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (dicts, lists, strings, numbers)."""
    return json.loads(dumps(value))


def _tuples_to_lists(value: Any) -> Any:
    # NamedTuples (e.g. PregelTask) must become objects, which json would otherwise write as arrays.
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: _tuples_to_lists(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {k: _tuples_to_lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tuples_to_lists(v) for v in value]
    return value
