"""ETag / If-None-Match for pollers: an unchanged task is answered 304 with no body."""

from __future__ import annotations

import hashlib

from fastapi import Response

NOT_MODIFIED = {304: {"description": "Not Modified: the response would be the one whose ETag was sent in "
                                     "If-None-Match (the task has not changed); no body"}}


def etag_of(body: bytes) -> str:
    """A strong ETag of a rendered body: equal bodies, equal tags; the tag changes with any byte."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _matches(if_none_match: str | None, tag: str) -> bool:
    # RFC 9110 13.1.2: "*" or a list of entity tags, compared weakly (a W/ prefix is ignored).
    if not if_none_match:
        return False
    candidates = [c.strip().removeprefix("W/") for c in if_none_match.split(",")]
    return "*" in candidates or tag in candidates


def conditional(if_none_match: str | None, response: Response) -> Response:
    """`response` with its ETag, or a 304 carrying that ETag if the client already holds that body."""
    tag = etag_of(bytes(response.body))
    headers = {"ETag": tag, "Cache-Control": "no-cache"}  # no-cache: may be stored, but revalidate each time
    if _matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    # Appended as MutableHeaders.update would (the response has neither), without its per-header scan.
    response.raw_headers += [(b"etag", tag.encode("latin-1")), (b"cache-control", b"no-cache")]
    return response
