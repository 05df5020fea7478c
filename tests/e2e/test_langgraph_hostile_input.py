"""Hostile input on the LangGraph Server routes: each is a clear 4xx JSON error that changes nothing
(the user JSON of runs, threads and state updates meets the limits of a task's initial_state)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from redis_persist.core.payload import MAX_NESTING_DEPTH

LIMIT_BYTES = 2000
TOO_DEEP = json.dumps(json.loads("[" * (MAX_NESTING_DEPTH + 1) + "]" * (MAX_NESTING_DEPTH + 1)))


@pytest.fixture
def service(start_service):
    return start_service({"REDIS_PERSIST_MAX_INITIAL_STATE_BYTES": str(LIMIT_BYTES)})


def _post_raw(client: httpx.Client, path: str, raw: str) -> httpx.Response:
    return client.post(path, content=raw.encode("utf-8", "surrogatepass"), headers={"content-type": "application/json"})


def _thread(client: httpx.Client) -> str:
    response = client.post("/threads", json={})
    assert response.status_code == 200, response.text
    return response.json()["thread_id"]


HOSTILE_RUNS = {
    "lone surrogate in input": ('{"assistant_id": "data_pipeline", "input": {"log": "\\ud800"}}', 422, "input.log"),
    "lone surrogate in a metadata key": ('{"assistant_id": "data_pipeline", "metadata": {"\\udc00": 1}}', 422, None),
    "input nested too deep": ('{"assistant_id": "data_pipeline", "input": {"x": ' + TOO_DEEP + "}}", 422, None),
    "integer beyond 64 bits in config": ('{"assistant_id": "data_pipeline", "config": {"n": ' + "9" * 30 + "}}",
                                         422, "config.n"),
    "command resume too large": ('{"assistant_id": "data_pipeline", "command": {"resume": "' + "x" * LIMIT_BYTES
                                 + '"}}', 413, None),
    "not JSON at all": ("{\x00", 422, None),
    "checkpoint id not a string": ('{"assistant_id": "data_pipeline", "checkpoint": {"checkpoint_id": 5}}', 422, None),
}


def test_hostile_run_bodies_are_refused_before_any_run_exists(service) -> None:
    with service.client() as client:
        thread_id = _thread(client)
        routes = [f"/threads/{thread_id}/runs{tail}" for tail in ("", "/wait", "/stream")] + ["/runs"]
        for name, (raw, status, path) in HOSTILE_RUNS.items():
            for route in routes:
                response = _post_raw(client, route, raw)
                assert response.status_code == status, (name, route, response.text)
                assert response.headers["content-type"].startswith("application/json")
                if path is not None:
                    assert response.json()["path"] == path, name
        assert client.get(f"/threads/{thread_id}/runs").json() == []
        assert client.get("/api/tasks").json()["tasks"] == []  # no run anywhere (stateless ones are tasks too)


def test_thread_metadata_and_state_values_have_the_same_limits(service) -> None:
    with service.client() as client:
        thread_id = str(uuid.uuid4())
        response = _post_raw(client, "/threads", '{"thread_id": "' + thread_id + '", "metadata": {"a": "\\udfff"}}')
        assert response.status_code == 422 and response.json()["path"] == "metadata.a"
        assert client.get(f"/threads/{thread_id}").status_code == 404  # not created

        existing = _thread(client)
        response = client.patch(f"/threads/{existing}", content='{"metadata": {"deep": ' + TOO_DEEP + "}}",
                                headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert client.get(f"/threads/{existing}").json()["metadata"] == {}

        response = client.post(f"/threads/{existing}/state", json={"values": {"log": "y" * LIMIT_BYTES}})
        assert response.status_code == 413, response.text


def test_a_bad_last_event_id_is_a_422_before_the_stream_starts(service) -> None:
    with service.client() as client:
        thread_id = _thread(client)
        run = client.post(f"/threads/{thread_id}/runs",
                          json={"assistant_id": "data_pipeline", "input": {"step_seconds": 0}}).json()
        # 2**64 passed the stream's own digit check and then made Redis fail with the stream already begun.
        for bad in ("abc", "1-2-3", "18446744073709551616", "1-18446744073709551616"):
            response = client.get(f"/threads/{thread_id}/runs/{run['run_id']}/stream", headers={"Last-Event-ID": bad})
            assert response.status_code == 422, (bad, response.text)
            assert response.json()["error"] == "invalid_request"


def test_state_values_the_graph_cannot_take_are_a_422_that_changes_nothing(service) -> None:
    with service.client() as client:
        thread_id = _thread(client)
        run = client.post(f"/threads/{thread_id}/runs/wait",
                          json={"assistant_id": "data_pipeline", "input": {"step_seconds": 0}})
        assert run.status_code == 200, run.text
        before = client.get(f"/threads/{thread_id}/state").json()
        # Found by the OpenAPI fuzzer: a list where the state schema wants an object was a 500.
        response = client.post(f"/threads/{thread_id}/state", json={"values": [None, None]})
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_request"
        assert client.get(f"/threads/{thread_id}/state").json()["checkpoint_id"] == before["checkpoint_id"]
