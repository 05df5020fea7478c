"""A LangGraph Server run survives SIGKILL of its replica: another replica takes it over from its last
checkpoint, and a client joining (or re-joining the stream) on that replica gets the whole run."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
from langgraph_sdk import get_sync_client

from tests.e2e.test_langgraph_api import LG_ENV, _sse
from tests.support import wait_until


def _follow(url: str, thread: str, run_id: str, frames: list[dict[str, str]]) -> None:
    """Read the run's stream into `frames` until the connection ends (the replica dies)."""
    current: dict[str, str] = {}
    try:
        with httpx.stream("GET", f"{url}/threads/{thread}/runs/{run_id}/stream", timeout=60) as response:
            for line in response.iter_lines():
                if not line:
                    if current.get("id"):
                        frames.append(current)
                    current = {}
                    continue
                field, _, value = line.partition(": ")
                current[field] = value
    except httpx.HTTPError:
        pass  # cut off by the kill


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
    # A client follows the run's stream on the replica that runs it...
    before: list[dict[str, str]] = []
    reader = threading.Thread(target=_follow, args=(replicas[owner].url, thread, run["run_id"], before))
    reader.start()
    wait_until(lambda: any(f.get("event") == "updates" for f in before), 30, "the first update on the stream")
    replicas[owner].kill()
    reader.join(30)
    survivor = replicas["api-2" if owner == "api-1" else "api-1"]
    # ... and, cut off, re-joins on the survivor from the last id it saw: it misses nothing.
    with httpx.Client(base_url=survivor.url, timeout=60) as http:
        after = _sse(http, f"/threads/{thread}/runs/{run['run_id']}/stream", last_event_id=before[-1]["id"])
    followed = [f for f in before + after if f.get("event") == "updates"]
    assert [n for n in ("one", "two", "three") if any(f'"{n}"' in f["data"] for f in followed)] == \
        ["one", "two", "three"]
    ids = [f["id"] for f in before + after]
    assert len(ids) == len(set(ids))  # nothing delivered twice across the re-join

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
