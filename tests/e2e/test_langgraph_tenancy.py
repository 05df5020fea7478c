"""Tenants on the LangGraph Server API: threads and runs belong to the tenant of the key that made them.

Driven by LangGraph's own client (langgraph-sdk, which sends `X-Api-Key`) against a real service with
API keys on and a real Redis: another tenant gets the same 404 as for a missing thread or run, searches
show only the caller's tenant, the same thread_id in two tenants is two threads (two checkpoint
histories), viewers read but may not change anything, admins see every tenant.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.e2e.auth_helpers import ADMIN, ADMIN_KEY, AUTH_ENV, Key, make_key
from tests.support import TEST_GRAPHS_DIR, ServiceProcess, wait_until

LG_AUTH_ENV = {**AUTH_ENV, "REDIS_PERSIST_GRAPHS": str(TEST_GRAPHS_DIR / "lg_api.json")}


@pytest.fixture
def secured_lg(start_service) -> ServiceProcess:
    return start_service(LG_AUTH_ENV, name="secure-lg")


def _human(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _contents(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"]]


def _task(service: ServiceProcess, key: Key, task_id: str) -> httpx.Response:
    return httpx.get(f"{service.url}/api/tasks/{task_id}", headers=key.headers, timeout=10)


async def _refused_404(call: Any) -> None:
    # The SDK raises NotFoundError for most calls, a plain HTTPStatusError for join (its base class).
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await call
    assert refused.value.response.status_code == 404, refused.value.response.text


async def test_another_tenant_gets_404_for_every_thread_and_run_and_the_same_thread_id_is_two_threads(
    secured_lg: ServiceProcess,
) -> None:
    service = secured_lg
    alice = make_key(service.url, "tenant-a", "operator")
    bob = make_key(service.url, "tenant-b", "operator")
    a = get_client(url=service.url, api_key=alice.key)
    b = get_client(url=service.url, api_key=bob.key)

    thread = await a.threads.create(thread_id="shared", metadata={"owner": "alice"})
    assert thread["thread_id"] == "shared" and "tenant" not in thread
    said = await a.runs.wait("shared", "chat", input=_human("hello from alice"))
    assert _contents(said) == ["hello from alice", "turn 1: you said hello from alice"]
    finished = (await a.runs.list("shared"))[0]
    assert finished["thread_id"] == "shared"
    busy = await a.threads.create(thread_id="alice-busy")
    long_run = await a.runs.create(busy["thread_id"], "slow", input={"step_seconds": 30})
    # The run is a task of alice's tenant under its plain id: /api/tasks finds it with her key only.
    wait_until(lambda: _task(service, alice, long_run["run_id"]).json()["status"] == "running", 30,
               "alice's long run to start")
    assert _task(service, alice, finished["run_id"]).json()["thread_id"] == "shared"
    alice_state = await a.threads.get_state("shared")
    assert alice_state["checkpoint"]["thread_id"] == "shared"
    assert alice_state["metadata"]["run_id"] == finished["run_id"]
    # Store ids are tenant-scoped ("tenant-a.shared"); no response shows the scope.
    for shown in [alice_state, await a.threads.get("shared"), await a.threads.get_history("shared"),
                  await a.runs.list("shared"), _task(service, alice, finished["run_id"]).json()]:
        assert "tenant-a." not in json.dumps(shown), shown

    # Bob: every thread and run route answers as if alice's did not exist.
    for thread_id, run_id in [("shared", finished["run_id"]), ("alice-busy", long_run["run_id"])]:
        await _refused_404(b.threads.get(thread_id))
        await _refused_404(b.threads.get_state(thread_id))
        await _refused_404(b.threads.get_history(thread_id))
        await _refused_404(b.threads.update(thread_id, metadata={"owner": "bob"}))
        await _refused_404(b.threads.update_state(thread_id, {"messages": []}))
        await _refused_404(b.runs.list(thread_id))
        await _refused_404(b.runs.get(thread_id, run_id))
        await _refused_404(b.runs.join(thread_id, run_id))
        await _refused_404(b.runs.cancel(thread_id, run_id))
        await _refused_404(b.runs.delete(thread_id, run_id))
        await _refused_404(b.runs.create(thread_id, "chat", input=_human("mine now")))
        with pytest.raises(httpx.HTTPStatusError) as refused:
            async for _part in b.runs.join_stream(thread_id, run_id):
                pass
        assert refused.value.response.status_code == 404
        await _refused_404(b.threads.delete(thread_id))
        for action in ("pause", "resume"):
            response = httpx.post(f"{service.url}/threads/{thread_id}/runs/{run_id}/{action}",
                                  headers=bob.headers, timeout=10)
            assert response.status_code == 404, (action, response.text)
        assert _task(service, bob, run_id).status_code == 404
    # The same 404 body as for a thread that exists nowhere.
    missing = httpx.get(f"{service.url}/threads/nowhere", headers=bob.headers, timeout=10).json()
    foreign = httpx.get(f"{service.url}/threads/shared", headers=bob.headers, timeout=10).json()
    assert foreign == {**missing, "detail": missing["detail"].replace("nowhere", "shared")}
    assert await b.threads.search() == []
    assert await b.threads.search(metadata={"owner": "alice"}) == []
    assert httpx.get(f"{service.url}/api/tasks", headers=bob.headers, timeout=10).json()["tasks"] == []

    # The same thread_id in bob's tenant is another thread, with checkpoints of its own.
    await b.threads.create(thread_id="shared", metadata={"owner": "bob"})
    bobs = await b.runs.wait("shared", "chat", input=_human("hello from bob"))
    assert _contents(bobs) == ["hello from bob", "turn 1: you said hello from bob"]
    stateless = await b.runs.wait(None, "chat", input=_human("no thread"))
    assert _contents(stateless) == ["no thread", "turn 1: you said no thread"]
    again = await a.runs.wait("shared", "chat", input=_human("alice again"))
    assert _contents(again) == ["hello from alice", "turn 1: you said hello from alice", "alice again",
                                "turn 2: you said alice again"]
    assert _contents((await b.threads.get_state("shared"))["values"]) == _contents(bobs)
    assert [t["metadata"]["owner"] for t in await b.threads.search(metadata={"owner": "bob"})] == ["bob"]
    assert {t["thread_id"] for t in await a.threads.search(limit=100)} == {"shared", "alice-busy"}
    # Only "shared": the stateless run's temporary thread went with the run (on_completion=delete).
    assert [t["thread_id"] for t in await b.threads.search(limit=100)] == ["shared"]

    # Alice's runs were untouched by all of bob's attempts; she still controls them.
    assert (await a.runs.get("alice-busy", long_run["run_id"]))["status"] == "running"
    await a.runs.cancel("alice-busy", long_run["run_id"], wait=True)
    assert (await a.runs.get("alice-busy", long_run["run_id"]))["status"] == "interrupted"
    assert _task(service, alice, long_run["run_id"]).json()["status"] == "cancelled"
    alice_tasks = httpx.get(f"{service.url}/api/tasks", headers=alice.headers, timeout=10).json()["tasks"]
    assert {t["thread_id"] for t in alice_tasks} == {"shared", "alice-busy"}


async def test_a_runs_stream_rejoins_within_its_tenant_with_last_event_id(secured_lg: ServiceProcess) -> None:
    service = secured_lg
    alice = make_key(service.url, "tenant-a", "operator")
    bob = make_key(service.url, "tenant-b", "operator")
    a = get_client(url=service.url, api_key=alice.key)
    thread = (await a.threads.create())["thread_id"]
    run = await a.runs.create(thread, "slow", input={"step_seconds": 0.2}, stream_mode=["updates"])
    parts = [p async for p in a.runs.join_stream(thread, run["run_id"])]
    assert parts[0].event == "metadata" and parts[0].data["run_id"] == run["run_id"]
    assert [list(p.data) for p in parts if p.event == "updates"] == [["one"], ["two"], ["three"]]

    url = f"{service.url}/threads/{thread}/runs/{run['run_id']}/stream"
    with httpx.stream("GET", url, headers=alice.headers, timeout=30) as response:
        ids = [line[4:] for line in response.iter_lines() if line.startswith("id: ")]
    after_first = {**alice.headers, "Last-Event-ID": ids[1]}
    with httpx.stream("GET", url, headers=after_first, timeout=30) as response:
        rest = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [list(data) for data in rest] == [["two"], ["three"]]
    refused = httpx.get(url, headers={**bob.headers, "Last-Event-ID": ids[1]}, timeout=30)
    assert refused.status_code == 404


async def test_viewers_read_threads_and_runs_but_get_403_for_changes_and_admins_see_every_tenant(
    secured_lg: ServiceProcess,
) -> None:
    service = secured_lg
    alice = make_key(service.url, "tenant-a", "operator")
    bob = make_key(service.url, "tenant-b", "operator")
    watcher = make_key(service.url, "tenant-a", "viewer")
    a = get_client(url=service.url, api_key=alice.key)
    b = get_client(url=service.url, api_key=bob.key)
    viewer = get_client(url=service.url, api_key=watcher.key)
    await a.threads.create(thread_id="shared", metadata={"owner": "alice"})
    await a.runs.wait("shared", "chat", input=_human("hi"))
    await b.threads.create(thread_id="shared", metadata={"owner": "bob"})
    run = (await a.runs.list("shared"))[0]

    # A viewer reads everything of its tenant, including the reads the SDK sends as POST...
    assert (await viewer.threads.get("shared"))["metadata"]["owner"] == "alice"
    assert _contents((await viewer.threads.get_state("shared"))["values"]) == ["hi", "turn 1: you said hi"]
    assert len(await viewer.threads.get_history("shared")) >= 2
    assert [t["metadata"]["owner"] for t in await viewer.threads.search()] == ["alice"]
    assert [x["graph_id"] for x in await viewer.assistants.search(graph_id="chat")] == ["chat"]
    every_graph = await viewer.assistants.search(limit=100)
    assert {"chat", "review", "slow"} <= {x["graph_id"] for x in every_graph}
    assert await viewer.assistants.count() == len(every_graph)
    assert (await viewer.runs.get("shared", run["run_id"]))["status"] == "success"
    assert _contents(await viewer.runs.join("shared", run["run_id"]))[-1] == "turn 1: you said hi"
    # ...and may change nothing.
    for change in [lambda: viewer.runs.create("shared", "chat", input=_human("no")),
                   lambda: viewer.runs.wait(None, "chat", input=_human("no")),
                   lambda: viewer.threads.create(thread_id="viewers"),
                   lambda: viewer.threads.update("shared", metadata={"owner": "viewer"}),
                   lambda: viewer.threads.update_state("shared", {"messages": []}),
                   lambda: viewer.runs.cancel("shared", run["run_id"]),
                   lambda: viewer.runs.delete("shared", run["run_id"]),
                   lambda: viewer.threads.delete("shared")]:
        # The SDK raises PermissionDeniedError for most calls, a plain HTTPStatusError for wait.
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await change()
        assert refused.value.response.status_code == 403, refused.value.response.text
        assert refused.value.response.json()["error"] == "forbidden"
    assert _contents((await a.threads.get_state("shared"))["values"]) == ["hi", "turn 1: you said hi"]

    # An admin's search spans every tenant, each thread naming its tenant; ids resolve in ?tenant=.
    admin = get_client(url=service.url, api_key=ADMIN_KEY)
    everything = await admin.threads.search(limit=100)
    assert sorted((t["tenant"], t["thread_id"], t["metadata"]["owner"]) for t in everything) == [
        ("tenant-a", "shared", "alice"), ("tenant-b", "shared", "bob")]
    await _refused_404(admin.threads.get("shared"))  # the admin key's own (default) tenant has none
    in_a = httpx.get(f"{service.url}/threads/shared/state", params={"tenant": "tenant-a"}, headers=ADMIN, timeout=10)
    assert _contents(in_a.json()["values"]) == ["hi", "turn 1: you said hi"]
    in_b = httpx.get(f"{service.url}/threads/shared", params={"tenant": "tenant-b"}, headers=ADMIN, timeout=10)
    assert (in_b.json()["metadata"]["owner"], in_b.json()["values"]) == ("bob", None)


def test_remote_graph_and_the_sdk_with_an_api_key_and_401_for_a_wrong_or_missing_key(
    secured_lg: ServiceProcess, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langgraph.pregel.remote import RemoteGraph
    from langgraph_sdk import get_sync_client
    from langgraph_sdk.errors import AuthenticationError

    for name in ("LANGGRAPH_API_KEY", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # the SDK falls back to these when api_key is None
    service = secured_lg
    alice = make_key(service.url, "tenant-a", "operator")

    # RemoteGraph sends the key as X-Api-Key on every call it makes (create the thread, stream, get state).
    remote = RemoteGraph("chat", url=service.url, api_key=alice.key)
    config = {"configurable": {"thread_id": "remote-keyed"}}
    assert remote.invoke(_human("keyed"), config)["messages"][-1]["content"] == "turn 1: you said keyed"
    assert _contents(remote.get_state(config).values) == ["keyed", "turn 1: you said keyed"]
    mine = get_sync_client(url=service.url, api_key=alice.key)
    assert mine.threads.get("remote-keyed")["thread_id"] == "remote-keyed"  # in alice's tenant
    # A stateless run with a key: its temporary thread is the tenant's, and goes after the answer.
    assert _contents(mine.runs.wait(None, "chat", input=_human("gone")))[-1] == "turn 1: you said gone"
    wait_until(lambda: [t["thread_id"] for t in mine.threads.search()] == ["remote-keyed"], 10,
               "the stateless run's thread to be deleted")

    wrong = RemoteGraph("chat", url=service.url, api_key="not-a-key")
    with pytest.raises(httpx.HTTPStatusError) as refused:
        wrong.invoke(_human("x"), {"configurable": {"thread_id": "intruder"}})
    assert refused.value.response.status_code == 401
    assert refused.value.response.json()["error"] == "unauthorized"
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(AuthenticationError):
        get_sync_client(url=service.url, api_key="not-a-key").threads.search()
    missing = httpx.post(f"{service.url}/threads/search", json={}, timeout=10)
    assert missing.status_code == 401 and "Missing API key" in missing.json()["detail"]
    assert [t["thread_id"] for t in mine.threads.search()] == ["remote-keyed"]  # nothing made by the refused calls
