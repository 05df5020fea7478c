"""Graphs for the LangGraph Server API tests: a chat agent on a fake chat model, a graph that asks a human,
a slow chain for background runs, cancels and multitask strategies, and a graph with a runtime
context for commands (update/goto/resume) and `context`. No network."""

from __future__ import annotations

import asyncio
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt


async def _agent(state: MessagesState) -> dict[str, Any]:
    # A fresh fake model per call: it streams its one answer word by word, as a real chat model streams tokens.
    said = state["messages"][-1].content
    turn = sum(1 for m in state["messages"] if m.type == "human")
    model = GenericFakeChatModel(messages=iter([AIMessage(content=f"turn {turn}: you said {said}")]))
    return {"messages": [await model.ainvoke(state["messages"])]}


_chat = StateGraph(MessagesState)
_chat.add_node("agent", _agent)
_chat.add_edge(START, "agent")
_chat.add_edge("agent", END)
# chat: one agent node answering every human message; state grows turn by turn.
chat = _chat


class ReviewState(TypedDict, total=False):
    topic: str
    draft: str
    verdict: str
    published: bool


async def _draft(state: ReviewState) -> dict[str, Any]:
    get_stream_writer()({"progress": 0.5, "note": "drafting"})
    return {"draft": f"draft about {state.get('topic', 'nothing')}"}


async def _review(state: ReviewState) -> dict[str, Any]:
    verdict = interrupt({"question": "approve?", "draft": state["draft"]})
    return {"verdict": verdict}


async def _publish(state: ReviewState) -> dict[str, Any]:
    return {"published": state.get("verdict") == "yes"}


_review_builder = StateGraph(ReviewState)
for _name, _fn in (("draft", _draft), ("review", _review), ("publish", _publish)):
    _review_builder.add_node(_name, _fn)
_review_builder.add_edge(START, "draft")
_review_builder.add_edge("draft", "review")
_review_builder.add_edge("review", "publish")
_review_builder.add_edge("publish", END)
# review: draft -> review (asks a human with interrupt()) -> publish.
review = _review_builder


class SlowState(TypedDict, total=False):
    step_seconds: float
    run_log: str
    done: Annotated[list[str], operator.add]


def _slow_step(node: str):
    async def step(state: SlowState) -> dict[str, Any]:
        if state.get("run_log"):
            with Path(state["run_log"]).open("a") as handle:
                handle.write(node + "\n")
        await asyncio.sleep(float(state.get("step_seconds", 0.2)))
        return {"done": [node]}

    return step


_slow = StateGraph(SlowState)
_previous = START
for _node in ("one", "two", "three"):
    _slow.add_node(_node, _slow_step(_node))
    _slow.add_edge(_previous, _node)
    _previous = _node
_slow.add_edge(_previous, END)
# slow: three async nodes of step_seconds each; each run appends its nodes to `done`.
slow = _slow


@dataclass
class RouteContext:
    """Runtime context (LangGraph's `context_schema`): who runs the graph, passed per run as `context`."""

    user: str = "nobody"


class RouteState(TypedDict, total=False):
    trail: Annotated[list[str], operator.add]
    note: str
    answer: str


def _route_start(state: RouteState, runtime: Runtime[RouteContext]) -> dict[str, Any]:
    return {"trail": [f"start for {runtime.context.user}"]}


def _route_ask(state: RouteState) -> dict[str, Any]:
    return {"answer": interrupt({"question": "which way?", "note": state.get("note")})}


def _route_left(state: RouteState, runtime: Runtime[RouteContext]) -> dict[str, Any]:
    return {"trail": [f"left for {runtime.context.user} (note {state.get('note')})"]}


def _route_right(state: RouteState, runtime: Runtime[RouteContext]) -> dict[str, Any]:
    return {"trail": [f"right for {runtime.context.user} (note {state.get('note')})"]}


_route = StateGraph(RouteState, context_schema=RouteContext)
for _name, _fn in (("start", _route_start), ("ask", _route_ask), ("left", _route_left), ("right", _route_right)):
    _route.add_node(_name, _fn)
_route.add_edge(START, "start")
_route.add_edge("start", "ask")
_route.add_edge("ask", "left")
_route.add_edge("left", END)
_route.add_edge("right", END)
# route: start -> ask (interrupt) -> left; `right` is reached only by a Command(goto="right").
# Every node that writes the trail names the runtime context's user, so `context` is visible in the state.
route = _route
