"""JSON in and out of the API: request bodies whose JSON cannot be decoded are a 422, and responses,
SSE frames and WebSocket messages are rendered so that no stored value can make them fail."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from redis_persist.core.payload import readable


def _orjson(payload: Any) -> bytes | None:
    """`payload` as compact UTF-8 JSON by orjson; None where the standard library must decide.

    orjson refuses lone surrogates, integers beyond 64 bits, non-string keys and deep nesting; it writes
    NaN and Infinity as null, which is what readable() makes of them. Otherwise its bytes are json.dumps's
    (compact, ensure_ascii=False), floats aside, which it writes in shortest form (1e-7 for 1e-07).
    """
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None


class ReadableJSONResponse(JSONResponse):
    """JSON response that renders any value: strict first, then a readable copy (see core.payload.readable)."""

    def render(self, content: Any) -> bytes:
        fast = _orjson(content)
        if fast is not None:
            return fast
        try:
            return super().render(content)
        except (UnicodeEncodeError, ValueError, RecursionError):
            return super().render(readable(content))


def json_text(payload: Any) -> str:
    """`payload` as strict JSON text (valid UTF-8, no NaN) for an SSE frame or a WebSocket message."""
    fast = _orjson(payload)
    if fast is not None:
        return fast.decode()
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
        text.encode()
        return text
    except (UnicodeEncodeError, ValueError, RecursionError):
        return json.dumps(readable(payload), ensure_ascii=False, allow_nan=False)


def decode_json(raw: str | bytes) -> Any:
    """json.loads that reports too deep nesting or an over-long number as a JSONDecodeError."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("JSON nested too deep to decode", "", 0) from None
    except ValueError as error:  # not UTF-8, an integer with more than 4300 digits
        raise json.JSONDecodeError(str(error), "", 0) from None


class _JSONBodyRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class JSONBodyRoute(APIRoute):
    """FastAPI route whose body parser turns every undecodable JSON body into FastAPI's 422 json_invalid.

    FastAPI answers 400 "There was an error parsing the body" to any parser exception other than
    JSONDecodeError (RecursionError for `[[[[...`, ValueError for a 5000-digit number).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_json_body(request: Request) -> Response:
            return await handler(_JSONBodyRequest(request.scope, request.receive))

        return with_json_body
