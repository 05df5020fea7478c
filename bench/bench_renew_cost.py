"""How long one lease-renewal script call holds Redis: renew_leases.lua for 500 and for 5,000 leases on an
embedded Redis, timed by the server (SLOWLOG) and by the client (round trip).

    .venv/bin/python bench/bench_renew_cost.py

Redis runs nothing else while a script runs, so this is how long every other command, of every replica, waits.
LeaseKeeper renews RENEW_BATCH (500) leases per call.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import redis

from redis_persist.embedded import EmbeddedRedis
from redis_persist.store import keys, scripts

TTL_MS = 15_000


def one_call(client: redis.Redis, leases: int) -> dict[str, float]:
    """Renew `leases` held leases in one script call; the server's and the client's time for it, in ms."""
    held = {f"t{i}": f"replica:{i}" for i in range(leases)}
    for task_id, token in held.items():
        client.set(keys.lease(task_id), token, px=TTL_MS)
    renew = client.register_script(scripts.RENEW_LEASES)
    arguments = {"keys": keys.for_renew_leases(held), "args": [TTL_MS, *held.values()]}
    renew(**arguments)  # loads the script
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    started = time.perf_counter()
    outcomes = renew(**arguments)
    round_trip = time.perf_counter() - started
    assert outcomes == [1] * leases
    server = max(entry["duration"] for entry in client.slowlog_get(10)) / 1000
    return {"leases": leases, "server_ms": round(server, 2), "round_trip_ms": round(round_trip * 1000, 2)}


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        server = EmbeddedRedis(Path(data))
        server.start()
        try:
            client = redis.Redis.from_url(server.url, decode_responses=True)
            for leases in (500, 5000):
                print(one_call(client, leases))
            client.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
