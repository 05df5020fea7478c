"""The LangGraph Server API, driven by LangGraph's own client (langgraph-sdk, sync and async) against a real service."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.api.helpers import wait_until as poll_until
from tests.support import TEST_GRAPHS_DIR, ServiceProcess, wait_until

LG_ENV = {"REDIS_PERSIST_GRAPHS": str(TEST_GRAPHS_DIR / "lg_api.json")}
CHAT_ASSISTANT = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "chat"))


@pytest.fixture
def lg(start_service) -> ServiceProcess:
    return start_service(env=LG_ENV)


def _human(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _contents(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"]]


async def test_assistants_search_get_graph_and_schemas(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    found = await client.assistants.search(graph_id="chat")
    assert [a["assistant_id"] for a in found] == [CHAT_ASSISTANT]  # LangGraph's id: uuid5 of the graph id
    assert (await client.assistants.get(CHAT_ASSISTANT))["graph_id"] == "chat"
    assert (await client.assistants.get("chat"))["assistant_id"] == CHAT_ASSISTANT
    drawing = await client.assistants.get_graph(CHAT_ASSISTANT)
    assert {n["id"] for n in drawing["nodes"]} == {"__start__", "agent", "__end__"}
    schemas = await client.assistants.get_schemas(CHAT_ASSISTANT)
    assert "messages" in schemas["input_schema"]["properties"]
    with pytest.raises(NotFoundError):
        await client.assistants.get(str(uuid.uuid4()))


async def test_multi_turn_conversation_on_a_thread(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    thread = await client.threads.create(metadata={"user": "ada"})
    first = await client.runs.wait(thread["thread_id"], "chat", input=_human("hello"))
    assert _contents(first) == ["hello", "turn 1: you said hello"]
    second = await client.runs.wait(thread["thread_id"], CHAT_ASSISTANT, input=_human("and again"))
    assert _contents(second) == ["hello", "turn 1: you said hello", "and again", "turn 2: you said and again"]
    stored = await client.threads.get(thread["thread_id"])
    assert stored["status"] == "idle"
    assert stored["metadata"]["user"] == "ada" and stored["metadata"]["graph_id"] == "chat"
    assert _contents(stored["values"]) == _contents(second)
    runs = await client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["success", "success"]
    # Every run is a task too: the same engine behind /api/tasks.
    task = httpx.get(f"{lg.url}/api/tasks/{runs[0]['run_id']}").json()
    assert task["status"] == "completed" and task["thread_id"] == thread["thread_id"]
    assert [t["thread_id"] for t in await client.threads.search(metadata={"user": "ada"})] == [thread["thread_id"]]


async def test_stream_values_updates_custom_and_message_tokens(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    thread = await client.threads.create()
    parts = [part async for part in client.runs.stream(
        thread["thread_id"], "chat", input=_human("stream me"), stream_mode=["values", "updates", "messages-tuple"])]
    events = [p.event for p in parts]
    assert events[0] == "metadata" and events[-1] == "values"
    tokens = [p.data[0]["content"] for p in parts if p.event == "messages"]
    assert len(tokens) > 3  # the fake chat model streams word by word
    assert "".join(tokens) == "turn 1: you said stream me"
    assert parts[-1].data["messages"][-1]["content"] == "turn 1: you said stream me"
    update = next(p.data for p in parts if p.event == "updates")
    assert update["agent"]["messages"][0]["type"] == "ai"

    review = await client.threads.create()
    parts = [p async for p in client.runs.stream(review["thread_id"], "review", input={"topic": "cats"},
                                                 stream_mode=["custom", "updates"])]
    assert {"progress": 0.5, "note": "drafting"} in [p.data for p in parts if p.event == "custom"]


def test_interrupt_then_resume_with_command_sync_client(lg: ServiceProcess) -> None:
    client = get_sync_client(url=lg.url)
    thread = client.threads.create()
    paused = client.runs.wait(thread["thread_id"], "review", input={"topic": "owls"})
    assert paused["__interrupt__"][0]["value"] == {"question": "approve?", "draft": "draft about owls"}
    assert client.threads.get(thread["thread_id"])["status"] == "interrupted"
    state = client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["review"] and state["interrupts"][0]["value"]["question"] == "approve?"
    done = client.runs.wait(thread["thread_id"], "review", command={"resume": "yes"})
    assert done == {"topic": "owls", "draft": "draft about owls", "verdict": "yes", "published": True}
    assert client.threads.get(thread["thread_id"])["status"] == "idle"


async def test_background_run_join_and_cancel(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "slow", input={"step_seconds": 0.1})
    assert run["status"] in {"pending", "running"}
    result = await client.runs.join(thread["thread_id"], run["run_id"])
    assert result["done"] == ["one", "two", "three"]
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"

    long_run = await client.runs.create(thread["thread_id"], "slow", input={"step_seconds": 30})
    wait_until(lambda: httpx.get(f"{lg.url}/api/tasks/{long_run['run_id']}").json()["status"] == "running",
               30, "the long run to start")
    assert (await client.threads.get(thread["thread_id"]))["status"] == "busy"
    await client.runs.cancel(thread["thread_id"], long_run["run_id"], wait=True)
    assert (await client.runs.get(thread["thread_id"], long_run["run_id"]))["status"] == "interrupted"
    assert (await client.threads.get(thread["thread_id"]))["status"] in {"idle", "interrupted"}


async def test_multitask_strategies(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    thread = (await client.threads.create())["thread_id"]
    first = await client.runs.create(thread, "slow", input={"step_seconds": 1})
    with pytest.raises(ConflictError):
        await client.runs.create(thread, "slow", input={"step_seconds": 0}, multitask_strategy="reject")
    assert [r["run_id"] for r in await client.runs.list(thread)] == [first["run_id"]]  # refused: nothing made
    queued = await client.runs.create(thread, "slow", input={"step_seconds": 0}, multitask_strategy="enqueue")
    result = await client.runs.join(thread, queued["run_id"])
    assert result["done"] == ["one", "two", "three"] * 2  # ran after the first, on its state
    assert (await client.runs.get(thread, first["run_id"]))["status"] == "success"

    busy = await client.runs.create(thread, "slow", input={"step_seconds": 30})
    replacement = await client.runs.create(thread, "slow", input={"step_seconds": 0}, multitask_strategy="interrupt")
    await client.runs.join(thread, replacement["run_id"])
    assert (await client.runs.get(thread, busy["run_id"]))["status"] == "interrupted"
    assert (await client.runs.get(thread, replacement["run_id"]))["status"] == "success"

    before = (await client.threads.get_state(thread))["values"]["done"]
    doomed = await client.runs.create(thread, "slow", input={"step_seconds": 1})
    wait_until(lambda: httpx.get(f"{lg.url}/api/tasks/{doomed['run_id']}").json()["completed_nodes"] == ["one"],
               30, "the doomed run to complete a node")
    rolled = await client.runs.create(thread, "slow", input={"step_seconds": 0}, multitask_strategy="rollback")
    result = await client.runs.join(thread, rolled["run_id"])
    assert result["done"] == before + ["one", "two", "three"]  # nothing of the rolled-back run remains
    with pytest.raises(NotFoundError):
        await client.runs.get(thread, doomed["run_id"])
    runs = await client.runs.list(thread, limit=100)
    assert doomed["run_id"] not in [r["run_id"] for r in runs] and len(runs) == 5


async def test_update_state_and_run_from_a_past_checkpoint(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, "chat", input=_human("first"))
    await client.runs.wait(thread, "chat", input=_human("second"))
    history = await client.threads.get_history(thread, limit=50)
    after_first = next(h for h in history if _contents(h["values"]) == ["first", "turn 1: you said first"]
                       and not h["next"])
    forked = await client.runs.wait(thread, "chat", input=_human("other"), checkpoint_id=after_first["checkpoint_id"])
    assert _contents(forked) == ["first", "turn 1: you said first", "other", "turn 2: you said other"]
    past = await client.threads.get_state(thread, checkpoint_id=after_first["checkpoint_id"])
    assert _contents(past["values"]) == ["first", "turn 1: you said first"]

    update = await client.threads.update_state(thread, {"messages": [{"role": "user", "content": "noted"}]},
                                               as_node="agent")
    state = await client.threads.get_state(thread)
    assert state["checkpoint"]["checkpoint_id"] == update["checkpoint"]["checkpoint_id"]
    assert _contents(state["values"])[-1] == "noted"
    assert state["next"] == []  # written as the agent: nothing left to run


async def test_bad_requests_change_nothing(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    missing = str(uuid.uuid4())
    with pytest.raises(NotFoundError):
        await client.threads.get(missing)
    with pytest.raises(NotFoundError):
        await client.runs.create(missing, "chat", input=_human("x"))
    thread = (await client.threads.create())["thread_id"]
    with pytest.raises(NotFoundError):
        await client.runs.get(thread, missing)
    with httpx.Client(base_url=lg.url) as http:
        assert http.post(f"/threads/{thread}/runs", json={"assistant_id": "nope"}).status_code == 422
        assert http.post(f"/threads/{thread}/runs", json={"assistant_id": "chat",
                                                          "multitask_strategy": "bogus"}).status_code == 422
        assert http.post(f"/threads/{thread}/runs", content=b"{not json").status_code == 422
        assert http.post(f"/threads/{thread}/runs", json={"assistant_id": "chat",
                                                          "stream_mode": "events"}).status_code == 422
        assert http.get(f"/threads/{thread}/runs").json() == []
        assert http.get("/api/tasks").json()["tasks"] == []
    running = await client.runs.create(thread, "slow", input={"step_seconds": 30})
    with httpx.Client(base_url=lg.url) as http:
        response = http.delete(f"/threads/{thread}")
        assert response.status_code == 409, response.text
    assert (await client.threads.get(thread))["status"] == "busy"
    await client.runs.cancel(thread, running["run_id"], wait=True)
    await client.threads.delete(thread)
    with pytest.raises(NotFoundError):
        await client.threads.get(thread)
    with httpx.Client(base_url=lg.url) as http:
        assert http.get(f"/api/tasks/{running['run_id']}").status_code == 404  # its runs went with it


async def test_stream_rejoined_with_last_event_id_misses_nothing(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    thread = (await client.threads.create())["thread_id"]
    run = await client.runs.create(thread, "slow", input={"step_seconds": 0.3}, stream_mode=["updates"],
                                   stream_resumable=True)
    with httpx.Client(base_url=lg.url, timeout=30) as http:
        frames = _sse(http, f"/threads/{thread}/runs/{run['run_id']}/stream")
        assert [f["event"] for f in frames] == ["metadata", "updates", "updates", "updates"]
        rest = _sse(http, f"/threads/{thread}/runs/{run['run_id']}/stream", last_event_id=frames[1]["id"])
    assert rest == frames[2:]
    # The SDK's join_stream, narrowed to one of the run's modes, from an id: the same frames.
    parts = [p async for p in client.runs.join_stream(thread, run["run_id"], stream_mode="updates",
                                                      last_event_id=frames[1]["id"])]
    assert [p.data for p in parts] == [json.loads(f["data"]) for f in frames[2:]]


def _sse(http: httpx.Client, path: str, last_event_id: str | None = None) -> list[dict[str, str]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    frames, current = [], {}
    with http.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line:
                if current:
                    frames.append(current)
                current = {}
                continue
            field, _, value = line.partition(": ")
            current[field] = value
    return frames


def test_remote_graph_invoke_stream_and_as_a_node(lg: ServiceProcess) -> None:
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.pregel.remote import RemoteGraph

    remote = RemoteGraph("chat", url=lg.url)
    thread = str(uuid.uuid4())  # RemoteGraph creates the thread on first use (if_not_exists=create)
    config = {"configurable": {"thread_id": thread}}
    first = remote.invoke(_human("hi remote"), config)
    assert first["messages"][-1]["content"] == "turn 1: you said hi remote"
    second = remote.invoke(_human("still there?"), config)
    assert len(second["messages"]) == 4  # the remote thread kept the conversation
    assert [chunk for chunk in remote.stream(_human("chunks"), config, stream_mode="updates")][-1]["agent"]

    parent = StateGraph(MessagesState)
    parent.add_node("remote_chat", remote)
    parent.add_edge(START, "remote_chat")
    result = parent.compile().invoke(_human("as a node"))
    assert result["messages"][-1].content == "turn 1: you said as a node"


async def test_stateless_runs(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    result = await client.runs.wait(None, "chat", input=_human("no thread"))
    assert _contents(result) == ["no thread", "turn 1: you said no thread"]
    parts = [p async for p in client.runs.stream(None, "review", input={"topic": "x"}, stream_mode="updates")]
    assert parts[0].event == "metadata" and "draft" in parts[1].data


async def test_pause_and_resume_a_run_at_a_node_boundary(lg: ServiceProcess, tmp_path) -> None:
    client = get_client(url=lg.url)
    thread = (await client.threads.create())["thread_id"]
    run_log = tmp_path / "runs.log"
    run = await client.runs.create(thread, "slow", input={"step_seconds": 1, "run_log": str(run_log)})
    wait_until(lambda: run_log.exists() and "one" in run_log.read_text(), 30, "node one to start")
    with httpx.Client(base_url=lg.url) as http:
        paused = http.post(f"/threads/{thread}/runs/{run['run_id']}/pause")
        assert paused.status_code == 202, paused.text
        wait_until(lambda: http.get(f"/api/tasks/{run['run_id']}").json()["status"] == "paused", 30, "the pause")
        task = http.get(f"/api/tasks/{run['run_id']}").json()
        assert task["completed_nodes"] == ["one"]
        assert (await client.runs.get(thread, run["run_id"]))["status"] == "pending"
        assert (await client.threads.get(thread))["status"] == "busy"  # a paused run keeps its thread
        # The task door works on the same run: resume it under /api/tasks.
        assert http.post(f"/api/tasks/{run['run_id']}/resume").status_code == 202
    result = await client.runs.join(thread, run["run_id"])
    assert result["done"] == ["one", "two", "three"]
    assert run_log.read_text().split().count("one") == 1


def test_a_long_wait_keeps_its_connection_alive(lg: ServiceProcess) -> None:
    with httpx.Client(base_url=lg.url, timeout=60) as http:
        thread = http.post("/threads", json={}).json()["thread_id"]
        body = {"assistant_id": "slow", "input": {"step_seconds": 4}}
        with http.stream("POST", f"/threads/{thread}/runs/wait", json=body) as response:
            assert response.status_code == 200
            text = "".join(response.iter_text())
    assert text.startswith("\n")  # whitespace while the run went on, so no proxy times the wait out
    assert json.loads(text)["done"] == ["one", "two", "three"]


async def test_interrupt_before_then_continue_and_task_level_stream_modes(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    thread = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(thread, "slow", input={"step_seconds": 0},
                                                 interrupt_before=["two"],
                                                 stream_mode=["tasks", "checkpoints", "debug"])]
    events = {p.event for p in parts}
    assert {"metadata", "tasks", "checkpoints", "debug"} <= events
    started = [p.data["name"] for p in parts if p.event == "tasks" and "input" in p.data]
    assert started == ["one"]  # stopped before "two"
    state = await client.threads.get_state(thread)
    assert state["next"] == ["two"] and state["values"]["done"] == ["one"]
    assert (await client.threads.get(thread))["status"] == "interrupted"
    result = await client.runs.wait(thread, "slow", input=None)  # no input: carry on from where it stopped
    assert result["done"] == ["one", "two", "three"]


async def test_a_task_from_api_tasks_reads_as_a_thread_with_one_run(lg: ServiceProcess) -> None:
    with httpx.Client(base_url=lg.url) as http:
        created = http.post("/api/tasks/execute", json={"graph_name": "slow", "initial_state": {"step_seconds": 0}})
        task_id = created.json()["task_id"]
        wait_until(lambda: http.get(f"/api/tasks/{task_id}").json()["status"] == "completed", 30, "the task")
    client = get_client(url=lg.url)
    thread = await client.threads.get(task_id)
    assert thread["values"]["done"] == ["one", "two", "three"] and thread["status"] == "idle"
    runs = await client.runs.list(task_id)
    assert [(r["run_id"], r["status"]) for r in runs] == [(task_id, "success")]
    # A finished task is compacted (README: Memory per task): its history comes down to its final checkpoint.
    async def compacted() -> list | None:
        history = await client.threads.get_history(task_id, limit=100)
        return history if len(history) == 1 else None
    history = await poll_until(compacted, 30, "the finished task to be compacted", interval=0.1)
    assert history[0]["values"]["done"] == ["one", "two", "three"] and history[0]["next"] == []
