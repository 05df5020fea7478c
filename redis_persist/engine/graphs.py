"""GraphRegistry: load graphs by 'module:attr' or 'path/file.py:attr' and compile them with the saver."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.types import TimeoutPolicy

from redis_persist.core.errors import GraphLoadError, GraphNotFound

BUILT_IN_GRAPHS = {
    "data_pipeline": "redis_persist.examples.data_pipeline:builder",
    "ml_pipeline": "redis_persist.examples.ml_pipeline:builder",
}


@dataclass(frozen=True, slots=True)
class LoadedGraph:
    name: str
    graph: Pregel
    nodes: list[str]
    edges: list[dict[str, Any]]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "nodes": self.nodes, "edges": self.edges}


def parse_graph_setting(value: str | None) -> tuple[dict[str, str], Path]:
    """Turn REDIS_PERSIST_GRAPHS (a JSON object or a langgraph.json path) into (specs, base dir)."""
    if not value:
        return {}, Path.cwd()
    text = value.strip()
    if text.startswith("{"):
        try:
            specs = json.loads(text)
        except json.JSONDecodeError as error:
            raise GraphLoadError(f"REDIS_PERSIST_GRAPHS is not valid JSON: {error}") from error
        base = Path.cwd()
    else:
        path = Path(text)
        if not path.is_file():
            raise GraphLoadError(f"REDIS_PERSIST_GRAPHS: no such file {text!r}")
        try:
            document = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise GraphLoadError(f"{text} is not valid JSON: {error}") from error
        specs = document.get("graphs") if isinstance(document, dict) else None
        base = path.resolve().parent
    if not isinstance(specs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in specs.items()):
        raise GraphLoadError('REDIS_PERSIST_GRAPHS must map graph names to "module:attribute" strings')
    return specs, base


def import_attribute(spec: str, base_dir: Path) -> Any:
    """Import the object named by 'package.module:attr' or 'relative/file.py:attr'."""
    location, sep, attribute = spec.rpartition(":")
    if not sep or not location or not attribute:
        raise GraphLoadError(f"{spec!r} is not of the form 'module:attribute'")
    try:
        if location.endswith(".py") or "/" in location:
            path = (base_dir / location).resolve()
            module_name = f"redis_persist_user_graph_{abs(hash(str(path)))}"
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            if module_spec is None or module_spec.loader is None or not path.is_file():
                raise GraphLoadError(f"{spec!r}: no such file {path}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(location)
    except GraphLoadError:
        raise
    except Exception as error:
        raise GraphLoadError(f"{spec!r}: cannot import {location!r}: {error}") from error
    try:
        return getattr(module, attribute)
    except AttributeError as error:
        raise GraphLoadError(f"{spec!r}: {location!r} has no attribute {attribute!r}") from error


def _supports_timeout(runnable: Any, name: str) -> bool:
    # LangGraph can only cancel async nodes; it refuses a timeout on a sync one.
    from langgraph.pregel._utils import validate_timeout_supported

    try:
        validate_timeout_supported(runnable, name=name)
    except ValueError:
        return False
    return True


def compile_graph(obj: Any, checkpointer: BaseCheckpointSaver, node_timeout_seconds: float | None) -> Pregel:
    """Compile a StateGraph builder, or rebind a compiled graph, to our checkpointer."""
    if isinstance(obj, StateGraph):
        if node_timeout_seconds:
            policy = TimeoutPolicy(run_timeout=node_timeout_seconds)
            for name, spec in obj.nodes.items():
                if spec.timeout is None and _supports_timeout(spec.runnable, name):
                    spec.timeout = policy
        return obj.compile(checkpointer=checkpointer)
    if isinstance(obj, Pregel):
        return obj.copy(update={"checkpointer": checkpointer})
    raise GraphLoadError(f"{type(obj).__name__} is neither a StateGraph nor a compiled LangGraph graph")


def _describe(graph: Pregel) -> tuple[list[str], list[dict[str, Any]]]:
    drawable = graph.get_graph()
    nodes = [node_id for node_id in drawable.nodes if not node_id.startswith("__")]
    edges = [
        {"source": edge.source, "target": edge.target, "conditional": edge.conditional}
        for edge in drawable.edges
    ]
    return nodes, edges


class GraphRegistry:
    """The graphs this service can run, each compiled once with the Redis checkpointer."""

    def __init__(self, graphs: dict[str, LoadedGraph]) -> None:
        self._graphs = graphs

    @classmethod
    def load(
        cls, setting: str | None, checkpointer: BaseCheckpointSaver, node_timeout_seconds: float | None
    ) -> GraphRegistry:
        user_specs, base_dir = parse_graph_setting(setting)
        graphs: dict[str, LoadedGraph] = {}
        for name, spec in {**BUILT_IN_GRAPHS, **user_specs}.items():
            compiled = compile_graph(import_attribute(spec, base_dir), checkpointer, node_timeout_seconds)
            nodes, edges = _describe(compiled)
            graphs[name] = LoadedGraph(name, compiled, nodes, edges)
        return cls(graphs)

    def names(self) -> list[str]:
        return sorted(self._graphs)

    def get(self, name: str) -> LoadedGraph:
        """The graph called `name`, or GraphNotFound naming the available ones."""
        try:
            return self._graphs[name]
        except KeyError:
            raise GraphNotFound(name, self.names()) from None

    def all(self) -> list[LoadedGraph]:
        return [self._graphs[name] for name in self.names()]
