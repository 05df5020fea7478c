"""Checks on LangGraph request bodies before anything is written: user JSON (run input, command,
config, context, metadata; thread metadata; state values) meets the same limits as a task's
initial_state (nesting depth, valid Unicode, integer range, size), so bad input is a 4xx, not a 500."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from redis_persist.api.langgraph.schemas import RunCreate, StateUpdate, ThreadCreate, ThreadPatch, ThreadSearch
from redis_persist.core.payload import check_user_json


def _limit(request: Request) -> int:
    return request.app.state.services.settings.max_initial_state_bytes


def _check_fields(request: Request, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        check_user_json(value, name, _limit(request))


async def checked_run(body: RunCreate, request: Request) -> RunCreate:
    """A run-create body whose user JSON can be stored and read back (else 413 / 422)."""
    command = body.command.model_dump(exclude_unset=True) if body.command is not None else None
    _check_fields(request, {"input": body.input, "command": command, "config": body.config,
                            "context": body.context, "metadata": body.metadata})
    return body


async def checked_thread(request: Request, body: ThreadCreate | None = None) -> ThreadCreate | None:
    if body is not None:
        _check_fields(request, {"metadata": body.metadata})
    return body


async def checked_patch(body: ThreadPatch, request: Request) -> ThreadPatch:
    _check_fields(request, {"metadata": body.metadata})
    return body


async def checked_search(request: Request, body: ThreadSearch | None = None) -> ThreadSearch | None:
    if body is not None:
        _check_fields(request, {"metadata": body.metadata, "values": body.values})
    return body


async def checked_update(body: StateUpdate, request: Request) -> StateUpdate:
    _check_fields(request, {"values": body.values})
    return body
