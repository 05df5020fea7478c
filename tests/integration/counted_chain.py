"""A three-node LangGraph chain that counts each node's runs, for the runner tests."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

NODES = ["one", "two", "three"]


class State(TypedDict, total=False):
    done: Annotated[list[str], operator.add]


def counted_chain(runs: Counter[str], inside: Callable[[str], Awaitable[None]] | None = None) -> StateGraph:
    """one -> two -> three; each node counts itself in `runs`, then awaits `inside(its name)` if given."""
    def step(name: str):  # type: ignore[no-untyped-def]
        async def node(_state: State) -> dict[str, Any]:
            runs[name] += 1
            if inside is not None:
                await inside(name)
            return {"done": [name]}
        return node

    builder = StateGraph(State)
    previous = START
    for name in NODES:
        builder.add_node(name, step(name))
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder
