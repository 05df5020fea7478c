"""A kept-alive connection the client reuses after a pause still gets its answer (no lost creates)."""

from __future__ import annotations

import http.client
import json
import time

# httpx keeps an idle connection for 5 s and reuses it until then; nginx keeps upstream ones for 60 s.
CLIENT_IDLE_SECONDS = 6


def test_a_create_sent_on_a_connection_idle_longer_than_clients_keep_theirs_is_answered(service) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        connection.request("GET", "/health")
        assert connection.getresponse().read() and connection.sock is not None
        first_socket = connection.sock
        # The idle time is the scenario itself: a server that closes idle connections as soon as clients
        # may still reuse them (uvicorn's default 5 s) resets this request, and the client cannot tell
        # whether the task was created.
        time.sleep(CLIENT_IDLE_SECONDS)
        body = json.dumps({"graph_name": "data_pipeline", "initial_state": {"step_seconds": 0}})
        connection.request("POST", "/api/tasks/execute", body=body, headers={"content-type": "application/json"})
        response = connection.getresponse()
        assert response.status == 202, response.read()
        assert connection.sock is first_socket  # answered on the reused connection, not a new one
    finally:
        connection.close()
