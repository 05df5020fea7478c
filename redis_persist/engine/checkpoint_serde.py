"""The checkpointer's serializer, with a fast path for state that is plain JSON already."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.redis.jsonplus_redis import JsonPlusRedisSerializer

_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def is_plain_json(value: Any) -> bool:
    """Whether `value` is built of exact dicts and lists of str, int, float, bool and None only."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
        elif kind not in _PLAIN_SCALARS:
            return False
    return True


class PlainFirstSerializer(JsonPlusRedisSerializer):
    """langgraph-checkpoint-redis's serializer, minus its walk over values that need none.

    Before encoding, the library rebuilds every checkpoint, metadata and pending write node by node
    (`_preprocess_redis_json`: two imports and five type tests per node) to mark the LangGraph and LangChain
    objects in it: 44 % of the CPU of a checkpoint write here (bench/README.md, "One round trip per
    checkpoint"). A value of plain dicts, lists and scalars comes out of that walk as an equal copy, which
    orjson encodes to the same bytes, so such a value is handed on as it is; anything else (tuples, sets,
    bytes, dataclasses, messages, Interrupt, Send, subclasses) takes the library's walk.
    tests/unit/test_checkpoint_serde.py holds the two to the same bytes.
    """

    def _preprocess_redis_json(self, obj: Any, *, encode_bytes: Any = None) -> Any:
        # Every caller encodes the result at once and never changes it: returning `obj` itself is safe.
        if is_plain_json(obj):
            return obj
        return super()._preprocess_redis_json(obj, encode_bytes=encode_bytes)
