"""ETag / If-None-Match matching of GET /api/tasks/{id} (RFC 9110: weak comparison, lists, "*")."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from redis_persist.api.etag import conditional, etag_of


def test_a_matching_tag_in_any_form_gives_an_empty_304_with_the_tag() -> None:
    tag = etag_of(JSONResponse({"a": 1}).body)
    for header in (tag, f"W/{tag}", f'"x", {tag}', "*"):
        answer = conditional(header, JSONResponse({"a": 1}))
        assert answer.status_code == 304 and answer.body == b"" and answer.headers["etag"] == tag, header


def test_no_or_another_tag_gives_the_full_answer_with_its_tag() -> None:
    for header in (None, "", '"other"', etag_of(b'{"a":2}')):
        answer = conditional(header, JSONResponse({"a": 1}))
        assert answer.status_code == 200 and answer.body == b'{"a":1}'
        assert answer.headers["etag"] == etag_of(b'{"a":1}') and answer.headers["cache-control"] == "no-cache"


def test_the_tag_changes_with_any_byte_of_the_body() -> None:
    assert etag_of(b'{"status":"running"}') != etag_of(b'{"status":"completed"}')
    assert etag_of(b"same") == etag_of(b"same")
