"""The one table of legal moves, checked against SPEC.md's table; what is derived from it agrees with it."""

from __future__ import annotations

import re
from typing import get_args

from redis_persist.api.schemas import UserAction
from redis_persist.core.status import MOVES, USER_ACTIONS, Action, TaskStatus, allowed_actions
from redis_persist.store import scripts

S = TaskStatus
SPEC_MOVES = {
    (S.QUEUED, S.RUNNING), (S.QUEUED, S.PAUSED), (S.QUEUED, S.CANCELLED),
    (S.RUNNING, S.PAUSED), (S.RUNNING, S.WAITING_INPUT), (S.RUNNING, S.COMPLETED), (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED), (S.RUNNING, S.QUEUED),
    (S.PAUSED, S.QUEUED), (S.FAILED, S.QUEUED), (S.WAITING_INPUT, S.QUEUED),
    (S.PAUSED, S.CANCELLED), (S.WAITING_INPUT, S.CANCELLED), (S.FAILED, S.CANCELLED),
}


def test_the_table_allows_exactly_the_moves_in_the_spec() -> None:
    table_moves = {(source, target) for (source, _), target in MOVES.items() if target not in (None, source)}
    assert table_moves == SPEC_MOVES


def test_each_action_leads_to_one_status() -> None:
    for (source, action), target in MOVES.items():
        assert target in (action.target, source), (source, action)


def test_completed_and_cancelled_are_final() -> None:
    assert {s for s in S if s.is_final} == {S.COMPLETED, S.CANCELLED}
    assert all(action == Action.DELETE for (source, action) in MOVES if source.is_final)


def test_the_lua_scripts_get_the_same_table() -> None:
    lua = scripts.lua_moves()
    from_lua = {(S(status), Action(action), target)
                for status, body in re.findall(r"(\w+) = \{([^{}]*)\}", lua)
                for action, target in re.findall(r"(\w+) = '(\w+)'", body)}
    assert from_lua == {(s, a, t.value if t else scripts.REMOVED) for (s, a), t in MOVES.items()}
    assert "local MOVES = " + lua in scripts.ACT


def test_allowed_actions_use_the_api_vocabulary_in_its_order() -> None:
    assert [a.value for a in USER_ACTIONS] == list(get_args(UserAction)) == ["pause", "resume", "answer", "cancel",
                                                                              "delete"]
    assert allowed_actions(S.RUNNING) == ["pause", "cancel"]
    assert allowed_actions(S.WAITING_INPUT) == ["answer", "cancel", "delete"]
