"""Store tests run twice: on fakeredis (fast) and on the real module-enabled Redis (truth)."""

from __future__ import annotations

import fakeredis
import pytest
from redis.asyncio import Redis


@pytest.fixture(params=["fakeredis", "real"])
async def redis_client(request: pytest.FixtureRequest):
    if request.param == "fakeredis":
        client = fakeredis.aioredis.FakeRedis(decode_responses=True)
    else:
        client = Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    await client.flushall(asynchronous=False) if request.param == "real" else await client.flushall()
    yield client
    await client.aclose()
