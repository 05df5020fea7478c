"""The one check of user JSON, the readable copy of stored values, and event-id validation."""

from __future__ import annotations

import json

import pytest

from redis_persist.api.json_io import ReadableJSONResponse, json_text
from redis_persist.core.errors import InvalidPayload, StateTooLarge
from redis_persist.core.payload import (MAX_NESTING_DEPTH, NOT_SHOWN, check_user_json, decode_stored, load_json,
                                        readable)
from redis_persist.store.events import is_valid_event_id


def _nested(depth: int) -> object:
    return json.loads("[" * depth + "]" * depth)


def test_values_within_the_limits_pass_and_come_back_as_canonical_json() -> None:
    value = {"b": [_nested(MAX_NESTING_DEPTH - 2)], "a": ["é", "\U0001f600", 2**64 - 1, -(2**63), 1.5, None, True]}
    encoded = check_user_json(value, "initial_state", 10_000)
    assert json.loads(encoded) == value and encoded.startswith('{"a":')


@pytest.mark.parametrize(("value", "path", "problem"), [
    ({"log": ["ok", "\ud800"]}, "initial_state.log[1]", "lone surrogate U+D800"),
    ({"\udc00": 1}, 'initial_state["\\udc00"]', "object key is not valid Unicode"),
    ({"x y": {"z": float("nan")}}, 'initial_state["x y"].z', "not a finite number"),
    ({"x": float("-inf")}, "initial_state.x", "not a finite number"),
    ({"x": 2**64}, "initial_state.x", "integer out of range"),
    ({"x": -(2**63) - 1}, "initial_state.x", "integer out of range"),
    ({"x": {1, 2}}, "initial_state.x", "not a JSON value"),
])
def test_values_that_cannot_be_stored_and_read_back_name_where(value, path: str, problem: str) -> None:
    with pytest.raises(InvalidPayload) as raised:
        check_user_json(value, "initial_state", 10_000)
    assert raised.value.path == path and problem in str(raised.value)


def test_nesting_is_limited_without_recursion() -> None:
    check_user_json({"x": _nested(MAX_NESTING_DEPTH - 1)}, "input", 10**6)
    with pytest.raises(InvalidPayload, match=f"nested deeper than {MAX_NESTING_DEPTH} levels"):
        check_user_json({"x": _nested(MAX_NESTING_DEPTH)}, "input", 10**6)
    deep: list = []
    for _ in range(100_000):  # far beyond Python's recursion limit
        deep = [deep]
    with pytest.raises(InvalidPayload):
        check_user_json(deep, "input", 10**9)


def test_size_is_measured_on_the_canonical_json() -> None:
    check_user_json({"blob": "x" * 10}, "input", 21)
    with pytest.raises(StateTooLarge, match="input is 22 bytes; the limit is 21 bytes"):
        check_user_json({"blob": "x" * 11}, "input", 21)


def test_readable_copies_make_strict_json_of_anything() -> None:
    stored = {"s": "a\ud800b", "\udfff": [float("nan"), float("inf"), 1], "deep": _nested(300)}
    shown = readable(stored)
    text = json.dumps(shown, allow_nan=False, ensure_ascii=False)
    text.encode()  # valid UTF-8
    assert shown["s"] == "a\ufffdb" and shown["\ufffd"] == [None, None, 1]
    assert NOT_SHOWN in text


@pytest.mark.parametrize("text", [
    '{"a": [1, 2.5, "é", null, true]}',
    "[18446744073709551615, -9223372036854775808]",
    "[18446744073709551616, -9223372036854775809, 123456789012345678901234567890]",  # beyond 64 bits: exact
    '{"n": NaN, "i": -Infinity}',  # not strict JSON: the standard library reads it
    '"\\ud800"',
])
def test_load_json_gives_what_the_standard_library_gives(text: str) -> None:
    expected, got = json.loads(text), load_json(text)
    assert repr(got) == repr(expected)  # repr: NaN != NaN, and 1.0 == 1 would hide a float for an int
    assert repr(load_json(text.encode("utf-8", "surrogatepass"))) == repr(expected)


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, "é", None, True, "\u2028"]},
    {"big": 2**70, "neg": -(2**70)},  # orjson refuses: the standard library renders it
    {1: "int key", None: "null key"},
    {"nan": float("nan"), "inf": [float("inf")]},  # null, as readable() makes of them
    {"lone": "\ud800", "\udfff": 1},  # U+FFFD, as readable() makes of them
])
def test_responses_and_stream_frames_render_as_the_standard_library_does(value: object) -> None:
    expected = json.dumps(readable(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert json.loads(ReadableJSONResponse(value).body) == json.loads(expected)
    assert json.loads(json_text(value)) == json.loads(expected)


def test_decode_stored_never_raises() -> None:
    assert decode_stored(None) is None and decode_stored("") is None
    assert decode_stored('{"a": [1]}') == {"a": [1]}
    assert decode_stored("[" * 100_000 + "]" * 100_000) == NOT_SHOWN
    assert decode_stored("{broken").startswith("<not decodable")


@pytest.mark.parametrize("value", ["0", "0-0", "1795620962375-0", f"{2**64 - 1}-{2**64 - 1}", str(2**64 - 1)])
def test_valid_event_ids(value: str) -> None:
    assert is_valid_event_id(value)


@pytest.mark.parametrize("value", ["", "1-", "-1", "1-2-3", "\u00b2", "1-\u00b2", "１", str(2**64), f"1-{2**64}",
                                   "9" * 23 + "-0", " 1", "1 ", "yesterday"])
def test_invalid_event_ids(value: str) -> None:
    assert not is_valid_event_id(value)
