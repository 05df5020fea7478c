"""The embedded Redis forks less than Redis's defaults would: each fork slows a busy server for seconds
(README, "Forks of the embedded Redis")."""

from __future__ import annotations

import redis

from redis_persist.embedded import EmbeddedRedis


def test_the_embedded_redis_rewrites_its_aof_and_collects_its_indexes_less_often(tmp_path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        with redis.Redis.from_url(server.url, decode_responses=True) as client:
            assert client.config_get("auto-aof-rewrite-min-size") == {"auto-aof-rewrite-min-size": str(2**30)}
            assert client.config_get("auto-aof-rewrite-percentage") == {"auto-aof-rewrite-percentage": "100"}
            assert client.config_get("appendonly") == {"appendonly": "yes"}  # still rewritten, only later
            assert client.execute_command("FT.CONFIG", "GET", "FORK_GC_RUN_INTERVAL") == {"FORK_GC_RUN_INTERVAL": "300"}
            assert client.execute_command("FT.CONFIG", "GET", "GC_POLICY") == {"GC_POLICY": "fork"}  # still collected
    finally:
        server.stop()
