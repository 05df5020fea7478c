"""REDIS_PERSIST_CHECKPOINT_HISTORY=latest: one checkpoint per thread, the same durability, and a clear
422 for what needs earlier checkpoints."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest
import redis
from langgraph_sdk import get_sync_client

from tests.e2e.helpers import GRAPHS_ENV, execute, runs, wait_node_started, wait_status
from tests.support import REPO, TEST_GRAPHS_DIR, ServiceProcess

LATEST = {"REDIS_PERSIST_CHECKPOINT_HISTORY": "latest"}
LG_ENV = {"REDIS_PERSIST_GRAPHS": str(TEST_GRAPHS_DIR / "lg_api.json"), **LATEST}


def _saver_keys(redis_url: str, thread_id: str) -> dict[str, list[str]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        found = {prefix: sorted(client.scan_iter(match=f"{prefix}:{thread_id}:*", count=1000))
                 for prefix in ("checkpoint", "checkpoint_write")}
    finally:
        client.close()
    return found


def test_kill_9_resumes_from_the_one_kept_checkpoint(start_service, clean_redis, tmp_path) -> None:
    run_log = tmp_path / "runs"
    env = {**GRAPHS_ENV, **LATEST, "REDIS_PERSIST_FINISHED_COMPACTION": "false"}  # the completed task keeps it
    first = start_service(env, name="api-1")
    with first.client() as client:
        task_id = execute(client, "counting", {"run_log": str(run_log), "step_seconds": 0.8})
        wait_node_started(client, task_id, "three")
    first.kill()
    second = start_service(env, name="api-1")
    with second.client() as client:
        done = wait_status(client, task_id, "completed", timeout=40)
        checkpoints = client.get(f"/api/tasks/{task_id}/history").json()
    counts = runs(run_log)
    assert counts["one"] == counts["two"] == counts["four"] == 1  # completed before the crash: never again
    assert counts["three"] in (1, 2)
    assert done["attempts"] == 2 and done["completed_nodes"] == ["one", "two", "three", "four"]
    assert len(checkpoints["checkpoints"]) == 1, checkpoints
    saved = _saver_keys(clean_redis, task_id)
    assert len(saved["checkpoint"]) == 1, saved
    # Writes of the last checkpoint and its parent stay; each of the 5 earlier steps left writes too.
    assert len({key.split(":")[3] for key in saved["checkpoint_write"]}) <= 2, saved


def test_human_input_and_time_travel_refused_with_a_clear_422(start_service) -> None:
    service = start_service(LG_ENV, name="latest")
    client = get_sync_client(url=service.url)
    thread = client.threads.create()["thread_id"]
    paused = client.runs.wait(thread, "review", input={"topic": "owls"})
    assert paused["__interrupt__"][0]["value"]["question"] == "approve?"
    done = client.runs.wait(thread, "review", command={"resume": "yes"})
    assert done == {"topic": "owls", "draft": "draft about owls", "verdict": "yes", "published": True}

    history = client.threads.get_history(thread, limit=10)
    assert len(history) == 1 and history[0]["values"] == done  # the one checkpoint kept
    latest_id = history[0]["checkpoint"]["checkpoint_id"]
    older_id = str(uuid.uuid1())
    with httpx.Client(base_url=service.url, timeout=30) as http:
        assert http.get(f"/threads/{thread}/state/{older_id}").status_code == 404
        before = http.get(f"/threads/{thread}/runs").json()
        refused = {
            "run from a past checkpoint": http.post(f"/threads/{thread}/runs", json={
                "assistant_id": "review", "input": {"topic": "x"}, "checkpoint_id": older_id}),
            "rollback": http.post(f"/threads/{thread}/runs", json={
                "assistant_id": "review", "input": {"topic": "x"}, "multitask_strategy": "rollback"}),
            "update of a past checkpoint": http.post(f"/threads/{thread}/state", json={
                "values": {"verdict": "no"}, "checkpoint_id": older_id}),
        }
        for what, response in refused.items():
            assert response.status_code == 422, (what, response.text)
            assert "REDIS_PERSIST_CHECKPOINT_HISTORY=latest" in response.json()["detail"], (what, response.text)
        assert http.get(f"/threads/{thread}/runs").json() == before  # nothing was created
        assert http.get(f"/threads/{thread}/state").json()["checkpoint"]["checkpoint_id"] == latest_id
        # The latest checkpoint itself is still a valid starting point.
        again = http.post(f"/threads/{thread}/runs/wait", json={
            "assistant_id": "review", "input": {"topic": "bats"}, "checkpoint_id": latest_id})
        assert again.status_code == 200, again.text


@pytest.mark.parametrize("value", ["none", "", "2"])
def test_a_bad_history_setting_is_refused(redis_url, value) -> None:
    env = {**ServiceProcess(redis_url).env(), **GRAPHS_ENV, "REDIS_PERSIST_CHECKPOINT_HISTORY": value}
    result = subprocess.run([sys.executable, "-m", "redis_persist", "serve"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "checkpoint_history" in result.stderr, result.stderr
