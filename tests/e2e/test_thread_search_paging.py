"""POST /threads/search with many kept threads: it reads the thread index a page at a time, newest first."""

from __future__ import annotations

import httpx
import pytest
import redis

from tests.e2e.test_langgraph_api import LG_ENV
from tests.support import ServiceProcess

THREADS = 150


@pytest.fixture
def lg(start_service) -> ServiceProcess:
    return start_service(env=LG_ENV)


def _numbers(answer: httpx.Response) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [thread["metadata"]["n"] for thread in answer.json()]


def test_search_reads_only_the_pages_it_needs(lg: ServiceProcess, clean_redis: str) -> None:
    with httpx.Client(base_url=lg.url, timeout=30) as http:
        for n in range(THREADS):
            assert http.post("/threads", json={"metadata": {"n": n, "even": n % 2 == 0}}).status_code == 200
        direct = redis.Redis.from_url(clean_redis, decode_responses=True)
        try:
            direct.config_resetstat()
            assert _numbers(http.post("/threads/search", json={"limit": 5})) == [149, 148, 147, 146, 145]
            reads = direct.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0)
        finally:
            direct.close()
        assert reads <= 110, f"{reads} hashes read for the 5 newest of {THREADS} threads"
        # Answers that need more than one page of the index: across a page boundary, and the oldest match.
        assert _numbers(http.post("/threads/search", json={"limit": 10, "offset": 95})) == list(range(54, 44, -1))
        assert _numbers(http.post("/threads/search", json={"metadata": {"n": 3}})) == [3]
        assert _numbers(http.post("/threads/search", json={"metadata": {"even": True}, "limit": 3,
                                                           "offset": 60})) == [28, 26, 24]
        assert _numbers(http.post("/threads/search", json={"limit": 10, "offset": THREADS})) == []
