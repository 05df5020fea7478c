"""A LangGraph Server run survives SIGKILL of its replica: another replica takes it over from its last
checkpoint, and a client joining (or re-joining the stream) on that replica gets the whole run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
from langgraph_sdk import get_sync_client

from tests.e2e.test_langgraph_api import LG_ENV, _sse
from tests.support import wait_until


def test_run_survives_sigkill_of_its_replica(start_service, tmp_path: Path) -> None:
    replicas = {name: start_service(env=LG_ENV, name=name) for name in ("api-1", "api-2")}
    run_log = tmp_path / "runs.log"
    client = get_sync_client(url=replicas["api-1"].url)
    thread = client.threads.create()["thread_id"]
    run = client.runs.create(thread, "slow", input={"step_seconds": 2, "run_log": str(run_log)},
                             stream_mode=["updates"], stream_resumable=True)
    wait_until(lambda: "two" in run_log.read_text().split() if run_log.exists() else False, 30,
               "node two to start")
    owner = httpx.get(f"{replicas['api-1'].url}/api/tasks/{run['run_id']}").json()["owner"]
    replicas[owner].kill()
    survivor = replicas["api-2" if owner == "api-1" else "api-1"]

    result = get_sync_client(url=survivor.url).runs.join(thread, run["run_id"])
    assert result["done"] == ["one", "two", "three"]
    runs = Counter(run_log.read_text().split())
    assert runs["one"] == 1 and runs["three"] == 1 and runs["two"] <= 2  # only the node in flight ran again
    task = httpx.get(f"{survivor.url}/api/tasks/{run['run_id']}").json()
    assert task["status"] == "completed" and task["owner"] == survivor.name and task["attempts"] == 2

    with httpx.Client(base_url=survivor.url, timeout=30) as http:
        frames = _sse(http, f"/threads/{thread}/runs/{run['run_id']}/stream")
    updates = [f["data"] for f in frames if f["event"] == "updates"]
    assert frames[0]["event"] == "metadata"
    assert [node for node in ("one", "two", "three") if any(f'"{node}"' in u for u in updates)] == \
        ["one", "two", "three"]
