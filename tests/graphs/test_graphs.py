"""Graphs used by the tests. Each node appends its name to `run_log` (a file) when it starts,
so a test can count executions across processes, crashes and restarts."""

from __future__ import annotations

import asyncio
import operator
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    run_log: str
    step_seconds: float
    block_seconds: float
    fail_marker: str
    gate: str
    done: Annotated[list[str], operator.add]


def _log_start(state: State, node: str) -> None:
    if state.get("run_log"):
        with Path(state["run_log"]).open("a") as handle:
            handle.write(node + "\n")


def _async_step(node: str):
    async def step(state: State) -> dict[str, Any]:
        _log_start(state, node)
        await asyncio.sleep(float(state.get("step_seconds", 0.2)))
        return {"done": [node]}

    step.__name__ = node
    return step


def _chain(*nodes: tuple[str, Any]) -> StateGraph:
    builder = StateGraph(State)
    previous = START
    for name, fn in nodes:
        builder.add_node(name, fn)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder


# counting: four async nodes.
counting = _chain(*[(n, _async_step(n)) for n in ("one", "two", "three", "four")])


async def _fails_once(state: State) -> dict[str, Any]:
    _log_start(state, "flaky")
    marker = Path(state["fail_marker"])
    if not marker.exists():
        marker.write_text("failed once")
        raise ValueError("flaky node failed on its first run")
    return {"done": ["flaky"]}


# flaky: the middle node raises the first time it runs.
flaky = _chain(("before", _async_step("before")), ("flaky", _fails_once), ("after", _async_step("after")))


def _blocking_sync(state: State) -> dict[str, Any]:
    _log_start(state, "blocking_sync")
    time.sleep(float(state.get("block_seconds", 1)))
    return {"done": ["blocking_sync"]}


async def _blocking_loop(state: State) -> dict[str, Any]:
    _log_start(state, "blocking_loop")
    time.sleep(float(state.get("block_seconds", 1)))  # blocks the event loop on purpose
    return {"done": ["blocking_loop"]}


# blocking: a sync node that blocks its thread, then an async node that blocks the event loop.
blocking = _chain(("blocking_sync", _blocking_sync), ("blocking_loop", _blocking_loop), ("last", _async_step("last")))

# compiled: a graph registered already compiled (the service rebinds it to its checkpointer).
compiled = _chain(("only", _async_step("only"))).compile()


async def _wait_for_gate(state: State) -> dict[str, Any]:
    gate = Path(state["gate"])
    while not gate.exists():  # held open by the test until it has seen what it needs
        await asyncio.sleep(0.05)
    return {"done": ["gate"]}


# gated: the first node waits until the file `gate` exists, then the graph finishes.
gated = _chain(("gate", _wait_for_gate), ("after", _async_step("after")))
