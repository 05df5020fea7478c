"""Run webhooks: delivered at least once, retried, still delivered when the replica that ran the run dies;
URLs that point inside the network are refused with 422 and no run is made."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.e2e.test_langgraph_api import LG_ENV
from tests.support import free_port, wait_until

LOOPBACK_ENV = {**LG_ENV, "REDIS_PERSIST_WEBHOOK_ALLOW_LOOPBACK": "true"}


class Receiver:
    """A loopback HTTP endpoint recording webhook bodies; answers `status` (the test may change it)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                receiver.attempts += 1
                status = receiver.status
                if status == 200:
                    receiver.bodies.append(body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_webhook_delivered_after_retries_and_after_sigkill_of_the_replica(start_service, receiver: Receiver) -> None:
    first = start_service(env=LOOPBACK_ENV, name="api-1")
    client = get_sync_client(url=first.url)
    thread = client.threads.create()["thread_id"]
    receiver.status = 503  # the receiver is down when the run ends
    run = client.runs.create(thread, "slow", input={"step_seconds": 0.1}, webhook=receiver.url)
    client.runs.join(thread, run["run_id"])
    wait_until(lambda: receiver.attempts >= 1, 30, "a first delivery attempt")
    first.kill()  # the replica that ran it dies with the delivery still pending (in Redis)
    receiver.status = 200
    second = start_service(env=LOOPBACK_ENV, name="api-2")
    wait_until(lambda: receiver.bodies, 60, "the webhook to be delivered by the other replica")
    body = receiver.bodies[0]
    assert body["run_id"] == run["run_id"] and body["thread_id"] == thread and body["status"] == "success"
    assert body["values"]["done"] == ["one", "two", "three"]
    assert receiver.attempts >= 2
    assert httpx.get(f"{second.url}/threads/{thread}/runs/{run['run_id']}").json()["status"] == "success"


REFUSED = [
    "/threads",  # relative: would call our own routes
    "http://127.0.0.1:9/hook",  # loopback, not allowed by default
    "http://localhost:9/hook",
    "http://[::1]:9/hook",
    "http://10.1.2.3/hook",  # private
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
    "ftp://127.0.0.1/hook",
]


def test_webhook_to_an_internal_address_is_refused_and_makes_no_run(start_service) -> None:
    service = start_service(env=LG_ENV)
    with httpx.Client(base_url=service.url) as http:
        thread = http.post("/threads", json={}).json()["thread_id"]
        for url in REFUSED:
            response = http.post(f"/threads/{thread}/runs", json={"assistant_id": "slow", "webhook": url})
            assert response.status_code == 422, (url, response.text)
            assert http.post("/runs/wait", json={"assistant_id": "slow", "webhook": url}).status_code == 422
        assert http.get(f"/threads/{thread}/runs").json() == []
        assert http.get("/api/tasks").json()["tasks"] == []


def test_allowed_domains_narrow_webhooks(start_service, receiver: Receiver) -> None:
    service = start_service(env={**LOOPBACK_ENV, "REDIS_PERSIST_WEBHOOK_ALLOWED_DOMAINS": "hooks.example.org"})
    with httpx.Client(base_url=service.url) as http:
        thread = http.post("/threads", json={}).json()["thread_id"]
        response = http.post(f"/threads/{thread}/runs", json={"assistant_id": "slow", "webhook": receiver.url})
        assert response.status_code == 422 and "ALLOWED_DOMAINS" in response.text
