"""Compare the answers of two LangGraph Server API servers (ours and `langgraph dev`) to the same calls.

Both must serve tests/graphs/lg_api.json's graphs (chat, review, slow, route): for the peer, a directory
with tests/graphs/lg_graphs.py and a langgraph.json naming the same graphs, then `langgraph dev` there as
../shared/bench-peer/peer.sh starts it. Prints, per call, the status
codes, the JSON key sets and the SSE event sequences where they differ; values that differ by nature
(ids, times) are not compared.
Usage: python bench/langgraph_shapes.py OURS_URL PEER_URL
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx


def shape(value: Any) -> Any:
    """Keys and types, not values: what a client depends on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def sse(response: httpx.Response) -> list[str]:
    return [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]


def scenario(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        def record(name: str, response: httpx.Response, stream: bool = False) -> Any:
            body = sse(response) if stream else (response.json() if response.content.strip() else None)
            out[name] = (response.status_code, body if stream else shape(body))
            return body

        record("info", http.get("/info"))
        assistants = record("assistants.search", http.post("/assistants/search", json={"graph_id": "chat"}))
        record("assistants.graph", http.get(f"/assistants/{assistants[0]['assistant_id']}/graph"))
        thread = record("threads.create", http.post("/threads", json={"metadata": {"k": "v"}}))
        tid = thread["thread_id"]
        record("runs.stream", http.post(f"/threads/{tid}/runs/stream", json={
            "assistant_id": "chat", "input": {"messages": [{"role": "user", "content": "hi"}]},
            "stream_mode": ["values", "updates", "messages-tuple"]}), stream=True)
        record("threads.get", http.get(f"/threads/{tid}"))
        record("threads.state", http.get(f"/threads/{tid}/state"))
        record("threads.history", http.post(f"/threads/{tid}/history", json={"limit": 2}))
        runs = record("runs.list", http.get(f"/threads/{tid}/runs"))
        record("runs.get", http.get(f"/threads/{tid}/runs/{runs[0]['run_id']}"))
        record("threads.search", http.post("/threads/search", json={"metadata": {"k": "v"}}))
        review = http.post("/threads", json={}).json()["thread_id"]
        record("runs.wait.interrupt", http.post(f"/threads/{review}/runs/wait", json={
            "assistant_id": "review", "input": {"topic": "x"}}))
        record("threads.get.interrupted", http.get(f"/threads/{review}"))
        record("runs.wait.resume", http.post(f"/threads/{review}/runs/wait", json={
            "assistant_id": "review", "command": {"resume": "yes"}}))
        record("state.update", http.post(f"/threads/{review}/state", json={"values": {"topic": "y"},
                                                                        "as_node": "draft"}))
        slow = http.post("/threads", json={}).json()["thread_id"]
        run = record("runs.create", http.post(f"/threads/{slow}/runs", json={
            "assistant_id": "slow", "input": {"step_seconds": 2}}))
        record("runs.create.reject", http.post(f"/threads/{slow}/runs", json={
            "assistant_id": "slow", "multitask_strategy": "reject"}))
        record("threads.delete.busy", http.delete(f"/threads/{slow}"))
        record("runs.cancel", http.post(f"/threads/{slow}/runs/{run['run_id']}/cancel"))
        record("runs.join.cancelled", http.get(f"/threads/{slow}/runs/{run['run_id']}/join"))
        record("runs.cancel.ended", http.post(f"/threads/{slow}/runs/{run['run_id']}/cancel"))
        record("threads.get.missing", http.get("/threads/00000000-0000-0000-0000-000000000000"))
        record("runs.create.bad_assistant", http.post(f"/threads/{slow}/runs", json={"assistant_id": "nope"}))
        record("runs.stateless.wait", http.post("/runs/wait", json={"assistant_id": "slow",
                                                                      "input": {"step_seconds": 0}}))
        record("threads.delete", http.delete(f"/threads/{review}"))

        # on_completion: does a stateless run's thread outlive the run? (values: the thread count after)
        def threads_now() -> int:
            return len(http.post("/threads/search", json={"limit": 1000}).json())

        chat = {"assistant_id": "chat", "input": {"messages": [{"role": "user", "content": "hi"}]}}
        for on_completion in (None, "keep"):
            for route in ("/runs/wait", "/runs/stream"):
                before = threads_now()
                body = chat if on_completion is None else {**chat, "on_completion": on_completion}
                status = http.post(route, json=body).status_code
                out[f"on_completion.{on_completion}{route}"] = (status, threads_now() - before)

        # command and context: the values themselves, as the graph computed them
        def values(name: str, thread: str, body: dict[str, Any]) -> None:
            answer = http.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "route", **body})
            data = answer.json()
            out[name] = (answer.status_code, {k: v for k, v in data.items() if k != "__interrupt__"}
                         if isinstance(data, dict) else data)

        route = http.post("/threads", json={}).json()["thread_id"]
        values("context", route, {"input": {"note": "n1"}, "context": {"user": "ada"}})
        values("command.resume_goto_update", route, {
            "command": {"resume": "go", "goto": "right", "update": {"note": "n2"}}, "context": {"user": "bob"}})
        values("command.goto_send", http.post("/threads", json={}).json()["thread_id"],
               {"command": {"goto": {"node": "right", "input": {"note": "sent"}}}})
        values("context.from_configurable", http.post("/threads", json={}).json()["thread_id"],
               {"input": {}, "config": {"configurable": {"user": "cfg"}}})
        values("context.default", http.post("/threads", json={}).json()["thread_id"], {"input": {}})

        # stream_mode messages vs messages-tuple: the event sequence
        for mode in ("messages", "messages-tuple"):
            thread = http.post("/threads", json={}).json()["thread_id"]
            record(f"stream.{mode}", http.post(f"/threads/{thread}/runs/stream",
                                               json={**chat, "stream_mode": [mode]}), stream=True)
    return out


def main() -> None:
    ours, peer = scenario(sys.argv[1]), scenario(sys.argv[2])
    differences = 0
    for name in ours:
        if ours[name] != peer[name]:
            differences += 1
            print(f"--- {name}\n  ours: {json.dumps(ours[name])}\n  peer: {json.dumps(peer[name])}")
    print(f"{differences} of {len(ours)} calls differ in status or shape")


if __name__ == "__main__":
    main()
