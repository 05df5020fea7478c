"""ml_pipeline: load_data -> preprocess -> train -> evaluate; `train` reports fine-grained progress."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

TRAIN_EPOCHS = 5


class MLState(TypedDict, total=False):
    step_seconds: float
    samples: int
    epochs_done: int
    accuracy: float
    log: Annotated[list[str], operator.add]


def _step(state: MLState) -> float:
    return float(state.get("step_seconds", 1.0))


async def load_data(state: MLState) -> dict[str, Any]:
    await asyncio.sleep(_step(state))
    return {"samples": 1000, "log": ["load_data"]}


async def preprocess(state: MLState) -> dict[str, Any]:
    await asyncio.sleep(_step(state))
    return {"samples": state.get("samples", 0) - 10, "log": ["preprocess"]}


async def train(state: MLState) -> dict[str, Any]:
    write = get_stream_writer()
    for epoch in range(1, TRAIN_EPOCHS + 1):
        await asyncio.sleep(_step(state) / TRAIN_EPOCHS)
        write({"progress": epoch / TRAIN_EPOCHS, "message": f"epoch {epoch}/{TRAIN_EPOCHS}"})
    return {"epochs_done": TRAIN_EPOCHS, "log": ["train"]}


async def evaluate(state: MLState) -> dict[str, Any]:
    await asyncio.sleep(_step(state))
    return {"accuracy": 0.93, "log": ["evaluate"]}


builder = StateGraph(MLState)
builder.add_sequence([load_data, preprocess, train, evaluate])
builder.add_edge(START, "load_data")
builder.add_edge("evaluate", END)
