"""A chain of BENCH_NODES async nodes (default 5), each the body of ../shared/bench-peer's pipeline graph.

bench_round_trips.py runs it with 5 and with 10 nodes: the difference is the exact cost of 5 more node
boundaries, free of the per-task costs (create, claim, finish).
"""

from __future__ import annotations

import asyncio
import operator
import os
from typing import Annotated, TypedDict

from langgraph.graph import START, StateGraph

NODES = int(os.environ.get("BENCH_NODES", "5"))


class ChainState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def _make_node(name: str):  # type: ignore[no-untyped-def]
    async def node(state: ChainState) -> dict:
        await asyncio.sleep(0)  # yield to the loop, like the peer's pipeline at BENCH_NODE_SLEEP=0
        return {"log": [name]}

    node.__name__ = name
    return node


def build_graph() -> StateGraph:
    builder = StateGraph(ChainState)
    previous = START
    for index in range(NODES):
        name = f"node{index}"
        builder.add_node(name, _make_node(name))
        builder.add_edge(previous, name)
        previous = name
    return builder


graph = build_graph().compile()
