"""data_pipeline: fetch -> transform -> validate -> save, each node taking `step_seconds`.

With `require_approval: true`, `validate` asks a human through `interrupt()`.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class PipelineState(TypedDict, total=False):
    step_seconds: float
    require_approval: bool
    records: list[int]
    total: int
    approval: Any
    saved: bool
    log: Annotated[list[str], operator.add]


async def _work(state: PipelineState) -> None:
    await asyncio.sleep(float(state.get("step_seconds", 1.0)))


async def fetch(state: PipelineState) -> dict[str, Any]:
    await _work(state)
    return {"records": list(range(1, 11)), "log": ["fetch"]}


async def transform(state: PipelineState) -> dict[str, Any]:
    await _work(state)
    return {"records": [r * 2 for r in state.get("records", [])], "log": ["transform"]}


async def validate(state: PipelineState) -> dict[str, Any]:
    approval = None
    if state.get("require_approval"):
        # Asking first means the node's own work runs once, after the answer.
        approval = interrupt({"question": "Approve these records?", "records": state.get("records", [])})
    await _work(state)
    return {"total": sum(state.get("records", [])), "approval": approval, "log": ["validate"]}


async def save(state: PipelineState) -> dict[str, Any]:
    await _work(state)
    return {"saved": True, "log": ["save"]}


builder = StateGraph(PipelineState)
builder.add_sequence([fetch, transform, validate, save])
builder.add_edge(START, "fetch")
builder.add_edge("save", END)
