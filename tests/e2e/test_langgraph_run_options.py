"""Run options as LangGraph's server serves them, driven by langgraph-sdk and RemoteGraph against a real service:
`on_completion` of stateless runs, `command` (resume, update, goto), runtime `context`, and
stream_mode "messages" vs "messages-tuple". Expected values are what `langgraph dev` (langgraph-api 0.16.7)
answered to the same calls (bench/langgraph_shapes.py repeats the comparison against a live peer).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from tests.e2e.test_langgraph_api import LG_ENV
from tests.e2e.test_langgraph_webhooks import LOOPBACK_ENV, Receiver, receiver  # noqa: F401 - fixture
from tests.support import ServiceProcess, wait_until


@pytest.fixture
def lg(start_service) -> ServiceProcess:
    return start_service(env=LG_ENV)


def _human(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _thread_of(response: httpx.Response) -> str:
    # Content-Location: /threads/{thread_id}/runs/{run_id}
    return response.headers["content-location"].split("/")[2]


def _no_threads_or_tasks(url: str) -> bool:
    with httpx.Client(base_url=url) as http:
        return http.post("/threads/search", json={"limit": 100}).json() == [] and \
            http.get("/api/tasks").json()["tasks"] == []


# ---- on_completion -----------------------------------------------------------------------------------------


async def test_stateless_runs_delete_their_thread_after_the_answer_unless_kept(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    answer = await client.runs.wait(None, "chat", input=_human("gone after"))  # default: on_completion=delete
    assert answer["messages"][-1]["content"] == "turn 1: you said gone after"  # the whole answer came first
    wait_until(lambda: _no_threads_or_tasks(lg.url), 10, "the temporary thread and its run to be deleted")

    parts = [p async for p in client.runs.stream(None, "review", input={"topic": "x"}, stream_mode="values",
                                                 on_completion="delete")]
    assert parts[-1].data["draft"] == "draft about x"  # interrupted: the thread goes all the same (as the peer)
    wait_until(lambda: _no_threads_or_tasks(lg.url), 10, "the streamed run's thread to be deleted")

    kept = await client.runs.wait(None, "chat", input=_human("keep me"), on_completion="keep")
    threads = await client.threads.search()
    assert len(threads) == 1 and threads[0]["values"]["messages"][-1]["content"] == kept["messages"][-1]["content"]
    runs = await client.runs.list(threads[0]["thread_id"])
    assert [r["status"] for r in runs] == ["success"]
    streamed = [p async for p in client.runs.stream(None, "chat", input=_human("kept too"), on_completion="keep")]
    assert streamed[-1].data["messages"][-1]["content"] == "turn 1: you said kept too"
    assert len(await client.threads.search()) == 2

    with httpx.Client(base_url=lg.url, timeout=30) as http:  # a thread's own run: on_completion changes nothing
        thread = http.post("/threads", json={}).json()["thread_id"]
        body = {"assistant_id": "chat", "input": _human("mine"), "on_completion": "delete"}
        assert http.post(f"/threads/{thread}/runs/wait", json=body).status_code == 200
        assert http.get(f"/threads/{thread}").status_code == 200


async def test_a_stateless_background_run_keeps_its_thread_until_it_has_ended(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    run = await client.runs.create(None, "slow", input={"step_seconds": 1})
    thread = await client.threads.get(run["thread_id"])  # it exists while the run goes on
    assert thread["status"] == "busy"
    result = await client.runs.join(run["thread_id"], run["run_id"])  # joinable while it runs
    assert result["done"] == ["one", "two", "three"]

    async def gone() -> bool:
        try:
            await client.threads.get(run["thread_id"])
        except NotFoundError:
            return True
        return False

    await _await_true(gone, 30, "the ended background run's thread to be deleted")
    with pytest.raises(NotFoundError):
        await client.runs.get(run["thread_id"], run["run_id"])
    assert _no_threads_or_tasks(lg.url)


async def _await_true(predicate: Callable[[], Awaitable[bool]], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def test_a_temporary_thread_stays_until_its_webhook_is_delivered(start_service, receiver: Receiver) -> None:
    service = start_service(env=LOOPBACK_ENV)
    receiver.status = 503  # the receiver is down at first: the delivery is retried
    with httpx.Client(base_url=service.url, timeout=60) as http:
        response = http.post("/runs/wait", json={"assistant_id": "chat", "input": _human("hook"),
                                                 "webhook": receiver.url})
        assert response.status_code == 200 and response.json()["messages"][-1]["content"] == "turn 1: you said hook"
        thread = _thread_of(response)
        wait_until(lambda: receiver.attempts >= 1, 30, "a first (failing) delivery")
        assert http.get(f"/threads/{thread}").status_code == 200  # the webhook still needs the run
        receiver.status = 200
        wait_until(lambda: receiver.bodies, 60, "the webhook delivery")
        assert receiver.bodies[0]["values"]["messages"][-1]["content"] == "turn 1: you said hook"
        wait_until(lambda: http.get(f"/threads/{thread}").status_code == 404, 30, "the thread to go after delivery")


# ---- command and context ------------------------------------------------------------------------------------


def test_command_resume_update_goto_and_context_reach_the_graph(lg: ServiceProcess) -> None:
    client = get_sync_client(url=lg.url)
    thread = client.threads.create()["thread_id"]
    asked = client.runs.wait(thread, "route", input={"note": "n1"}, context={"user": "ada"})
    assert asked["trail"] == ["start for ada"]
    assert asked["__interrupt__"][0]["value"] == {"question": "which way?", "note": "n1"}
    done = client.runs.wait(thread, "route", command={"resume": "go", "goto": "right", "update": {"note": "n2"}},
                            context={"user": "bob"})
    # As on LangGraph's server: the update lands first, `right` runs beside the resumed `ask`, then `left`.
    assert done == {"trail": ["start for ada", "right for bob (note n2)", "left for bob (note n2)"],
                    "note": "n2", "answer": "go"}
    assert client.threads.get_state(thread)["next"] == []

    fresh = client.threads.create()["thread_id"]
    jumped = client.runs.wait(fresh, "route", command={"goto": "right", "update": {"note": "g"}},
                              context={"user": "cy"})
    assert jumped["trail"] == ["right for cy (note g)", "start for cy"] and jumped["note"] == "g"
    sent = client.runs.wait(client.threads.create()["thread_id"], "route",
                            command={"goto": {"node": "right", "input": {"note": "sent"}}})  # a Send
    assert sent["trail"] == ["start for nobody", "right for nobody (note sent)"]
    # An update alone, as [key, value] pairs: LangGraph's server 0.16.7 fails this run (it hands LangGraph
    # goto=None); we apply it as LangGraph itself does (README: differences from LangGraph's server).
    pairs = client.runs.wait(client.threads.create()["thread_id"], "route", command={"update": [["note", "tl"]]})
    assert pairs["note"] == "tl" and pairs["trail"] == ["start for nobody"]


def test_context_defaults_comes_from_configurable_and_drops_unknown_keys(lg: ServiceProcess) -> None:
    client = get_sync_client(url=lg.url)

    def first_step(**options: Any) -> str:
        return client.runs.wait(client.threads.create()["thread_id"], "route", input={}, **options)["trail"][0]

    assert first_step() == "start for nobody"  # the context_schema's defaults
    assert first_step(config={"configurable": {"user": "cfg"}}) == "start for cfg"  # the pre-0.6 way
    assert first_step(context={"user": "dee", "unknown": 1}) == "start for dee"  # undeclared keys dropped
    thread = client.threads.create()["thread_id"]
    with pytest.raises(UnprocessableEntityError):  # LangGraph's server: 400; nothing is created either way
        client.runs.create(thread, "route", input={}, context={"user": "a"}, config={"configurable": {"user": "b"}})
    assert client.runs.list(thread) == []


def test_remote_graph_passes_context_and_commands(lg: ServiceProcess) -> None:
    from langgraph.pregel.remote import RemoteGraph
    from langgraph.types import Command

    remote = RemoteGraph("route", url=lg.url)
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    asked = remote.invoke({"note": "r"}, config, context={"user": "remote"})
    assert asked["trail"] == ["start for remote"]
    done = remote.invoke(Command(resume="ok", update={"note": "r2"}), config, context={"user": "again"})
    assert done["trail"] == ["start for remote", "left for again (note r2)"] and done["answer"] == "ok"


# ---- messages vs messages-tuple -----------------------------------------------------------------------------


async def test_messages_mode_sends_the_message_so_far_and_messages_tuple_the_chunks(lg: ServiceProcess) -> None:
    client = get_client(url=lg.url)
    thread = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(thread, "chat", input=_human("hi there"), stream_mode="messages")]
    events = [p.event for p in parts]
    partial = [p.data[0] for p in parts if p.event == "messages/partial"]
    assert events[:2] == ["metadata", "messages/metadata"] and set(events[2:]) == {"messages/partial"}
    (message_id, described), = parts[1].data.items()
    assert described["metadata"]["langgraph_node"] == "agent"
    assert {m["id"] for m in partial} == {message_id} and {m["type"] for m in partial} == {"ai"}
    contents = [m["content"] for m in partial]
    assert len(contents) > 3 and contents[-1] == "turn 1: you said hi there"
    assert all(later.startswith(earlier) for earlier, later in zip(contents, contents[1:]))  # the message so far

    tuples = [p async for p in client.runs.stream(thread, "chat", input=_human("again"),
                                                  stream_mode="messages-tuple")]
    chunks = [p.data for p in tuples if p.event == "messages"]
    assert {p.event for p in tuples} == {"metadata", "messages"}
    assert {c[0]["type"] for c in chunks} == {"AIMessageChunk"} and chunks[0][1]["langgraph_node"] == "agent"
    assert "".join(c[0]["content"] for c in chunks) == "turn 2: you said again"

    run = await client.runs.create(thread, "chat", input=_human("joined"), stream_mode=["messages", "values"],
                                   stream_resumable=True)
    joined = [p async for p in client.runs.join_stream(thread, run["run_id"], stream_mode="messages")]
    assert {p.event for p in joined} == {"messages/metadata", "messages/partial"}  # narrowed: no metadata
    assert joined[-1].data[0]["content"] == "turn 3: you said joined"
