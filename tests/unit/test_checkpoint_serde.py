"""PlainFirstSerializer (engine/checkpoint_serde.py) encodes every value to the bytes the library's own
serializer gives, whether it takes the fast path (plain JSON) or the library's walk."""

from __future__ import annotations

import dataclasses
import enum
from collections import OrderedDict
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.redis.jsonplus_redis import JsonPlusRedisSerializer
from langgraph.types import Interrupt, Send

from redis_persist.engine.checkpoint_serde import PlainFirstSerializer, is_plain_json


@dataclasses.dataclass
class _Summary:
    text: str
    turns: list[int]


class _Colour(enum.StrEnum):
    RED = "red"


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"next": [value]}
    return value


PLAIN = [None, 0, -1.5, "é\u2603", True, {}, [], {"a": [1, 2.5, None, {"b": "c"}], "d": {"e": [[], {}]}},
         float("nan"), 2**70, {1: "non-string key"}, _nested(300)]
NOT_PLAIN = [(1, 2), {1, 2}, b"raw", {"a": [b"nested bytes"]}, HumanMessage("hi", id="h"),
             {"messages": [HumanMessage("hi", id="h"), AIMessage("ok", id="a")], "n": 1},
             Interrupt(value={"question": "ok?"}), Send("node", {"x": 1}), _Summary("s", [1]),
             OrderedDict(a=1), _Colour.RED, {"colour": _Colour.RED}, [1, (2, 3)], {"s": {1}}]


def _outcome(serializer: JsonPlusRedisSerializer, value: Any) -> tuple[str, Any]:
    try:
        return "encoded", serializer.dumps_typed(value)
    except Exception:  # noqa: BLE001 - that the library fails is the answer to match
        # Its error type may differ: nested ~600 deep, the library's recursive walk raises RecursionError
        # where ours reaches orjson's and msgpack's own limits (TypeError). A failed checkpoint write fails
        # the task either way.
        return "raised", None


@pytest.mark.parametrize("value", PLAIN + NOT_PLAIN, ids=lambda value: repr(value)[:40])
def test_the_same_bytes_as_the_librarys_serializer(value: Any) -> None:
    """Same bytes; and where the library's serializer fails (an integer beyond 64 bits, nesting deeper than
    orjson and msgpack go), a failure too."""
    assert _outcome(PlainFirstSerializer(), value) == _outcome(JsonPlusRedisSerializer(), value)


def test_only_exact_json_types_count_as_plain() -> None:
    assert all(is_plain_json(value) for value in PLAIN)
    assert not any(is_plain_json(value) for value in NOT_PLAIN)
