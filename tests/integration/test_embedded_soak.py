"""Soak: thousands of tasks created, finished, deleted and expired on the embedded valkey + RedisJSON,
then a restart from the AOF. SPEC.md records a heap-corruption crash of this pair while freeing JSON
values; this proves the server stays up with the settings we start it with."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis

from redis_persist.embedded import EmbeddedRedis
from redis_persist.store import keys
from tests.e2e.helpers import GRAPHS_ENV
from tests.support import ServiceProcess, wait_until

TASKS = 2000


def test_embedded_redis_survives_thousands_of_tasks_and_restarts_from_its_aof(tmp_path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    service = ServiceProcess(server.url, name="soak", env={
        **GRAPHS_ENV, "REDIS_PERSIST_FINISHED_TTL_SECONDS": "2", "REDIS_PERSIST_MAX_TASKS": "200",
        "REDIS_PERSIST_LEASE_TTL_SECONDS": "3"})
    raw = redis.Redis.from_url(server.url)
    try:
        service.start()

        # One keep-alive client per creating thread: a connection per task made the soak slow and bursty.
        local = threading.local()
        clients: list[httpx.Client] = []

        def client_of_this_thread() -> httpx.Client:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=service.url, timeout=60)
                clients.append(local.client)
            return local.client

        def create(index: int) -> str:
            client = client_of_this_thread()
            response = client.post("/api/tasks/execute", json={"graph_name": "compiled", "initial_state": {
                "step_seconds": 0, "run_log": ""}})
            assert response.status_code == 202, response.text
            task_id = response.json()["task_id"]
            if index % 2:  # half are deleted by hand as soon as they finish, the rest expire
                wait_until(lambda: _delete_when_done(client, task_id), 120, f"{task_id} to be deleted", interval=0.1)
            return task_id

        try:
            with ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(create, range(TASKS)))
        finally:
            for client in clients:
                client.close()
        assert len(set(ids)) == TASKS
        wait_until(lambda: raw.zcard(keys.INDEX_ALL) == 0, 180, "every task to be deleted or expired")
        wait_until(lambda: not list(raw.scan_iter("checkpoint*", count=1000)), 30, "checkpoints removed")
        assert server.pid is not None and service.process.poll() is None
        # Unfinished tasks do not expire and must come back after a restart from the AOF.
        with httpx.Client(base_url=service.url, timeout=30) as client:
            kept = [client.post("/api/tasks/execute", json={"graph_name": "gated", "initial_state": {
                "gate": str(tmp_path / "never")}}).json()["task_id"] for _ in range(20)]
            for task_id in kept:
                wait_until(lambda: client.get(f"/api/tasks/{task_id}").json()["status"] == "running", 30, "running")
        service.stop()  # hands the 20 running tasks back to the queue
        raw.close()
        server.stop()
        server.start()  # loads the AOF
        raw = redis.Redis.from_url(server.url)
        assert raw.zcard(keys.INDEX_ALL) == 20
        assert {raw.hget(keys.task(t), "status") for t in kept} == {b"queued"}
        assert raw.xlen(keys.QUEUE) >= 20
        assert raw.ping()
    finally:
        service.kill()
        raw.close()
        server.stop()
    log = server.log_tail(200)
    assert "crashed" not in log.lower() and "sigabrt" not in log.lower(), log


def _delete_when_done(client: httpx.Client, task_id: str) -> bool:
    """DELETE is a 409 while the task runs; 404 means it expired first."""
    return client.delete(f"/api/tasks/{task_id}").status_code in (200, 404)
