"""Graphs for the LangGraph Server API tests: a chat agent on a fake chat model, a graph that asks a human,
and a slow chain for background runs, cancels and multitask strategies. No network."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
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
