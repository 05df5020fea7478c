"""/openapi.json: with auth on, every guarded route (LangGraph's, /api/tasks, /api/keys) declares what the
auth layer may answer (401; 403 where a viewer may not; 429 with a rate limit) and the open ones nothing;
the LangGraph routes' main success bodies name their shape."""

from __future__ import annotations

from typing import Any

import pytest

from redis_persist.app import create_app
from redis_persist.core.auth import Role, is_open_route, required_role
from redis_persist.settings import Settings

ADMIN_KEY = "k" * 32


def _spec(**settings: Any) -> dict[str, Any]:
    return create_app(Settings(redis_url="redis://127.0.0.1:1/0", **settings), run_worker=False).openapi()


def _langgraph_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation) for path, operations in spec["paths"].items()
            for method, operation in operations.items() if "langgraph" in operation.get("tags", [])]


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation) for path, operations in spec["paths"].items()
            for method, operation in operations.items()]


@pytest.mark.parametrize("rate_limit", [0, 60])
def test_with_auth_on_every_guarded_route_declares_the_auth_answers(rate_limit: int) -> None:
    every = _operations(_spec(auth="api_key", admin_key=ADMIN_KEY, rate_limit_per_minute=rate_limit))
    operations = [(m, p, o) for m, p, o in every if not is_open_route(m, p)]
    assert len([1 for _, _, o in operations if "langgraph" in o.get("tags", [])]) > 25
    assert {("GET", "/api/tasks/{task_id}"), ("POST", "/api/tasks/execute"), ("POST", "/api/keys")} <= {
        (m, p) for m, p, _ in operations}
    for method, path, operation in [(m, p, o) for m, p, o in every if is_open_route(m, p)]:
        assert not {"401", "403", "429"} & set(operation["responses"]), (method, path)  # /health, /metrics
    for method, path, operation in operations:
        declared = set(operation["responses"])
        assert "401" in declared, (method, path)
        assert ("403" in declared) == (required_role(method, path) > Role.VIEWER), (method, path)
        assert ("429" in declared) == (rate_limit > 0), (method, path)
        assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"}
    by_route = {(m, p): set(o["responses"]) for m, p, o in operations}
    assert "403" in by_route[("POST", "/threads/{thread_id}/runs")]
    assert "403" in by_route[("POST", "/api/tasks/{task_id}/pause")]
    assert "403" not in by_route[("GET", "/api/tasks")]
    assert "403" not in by_route[("POST", "/threads/search")]  # a viewer may search (a read sent as POST)


def test_with_auth_off_no_route_declares_auth_answers() -> None:
    for method, path, operation in _operations(_spec(auth="off")):
        assert not {"401", "403", "429"} & set(operation["responses"]), (method, path)


def test_success_bodies_name_threads_runs_assistants_and_states() -> None:
    spec = _spec(auth="off")

    def body(method: str, path: str, code: str = "200") -> dict[str, Any]:
        return spec["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]

    ref = "#/components/schemas/"
    assert body("get", "/threads/{thread_id}") == {"$ref": ref + "ThreadView"}
    assert body("post", "/threads/search")["items"] == {"$ref": ref + "ThreadView"}
    assert body("get", "/threads/{thread_id}/runs/{run_id}") == {"$ref": ref + "RunView"}
    assert body("post", "/runs") == {"$ref": ref + "RunView"}
    assert body("get", "/threads/{thread_id}/state") == {"$ref": ref + "ThreadStateView"}
    assert body("post", "/assistants/search")["items"] == {"$ref": ref + "AssistantView"}
    assert body("post", "/threads/{thread_id}/runs/{run_id}/pause", "202") == {"$ref": ref + "RunControlled"}
    thread = spec["components"]["schemas"]["ThreadView"]
    assert thread["properties"]["status"]["enum"] == ["idle", "busy", "interrupted", "error"]
    assert thread["additionalProperties"] is True  # LangGraph's server adds keys between versions
