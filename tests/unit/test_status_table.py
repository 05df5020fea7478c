"""The one table of legal moves, checked against SPEC.md's table."""

from __future__ import annotations

import itertools

import pytest

from redis_persist.core.errors import IllegalTransition
from redis_persist.core.status import TRANSITIONS, TaskStatus, check_transition

S = TaskStatus
SPEC_MOVES = {
    (S.QUEUED, S.RUNNING), (S.QUEUED, S.PAUSED), (S.QUEUED, S.CANCELLED),
    (S.RUNNING, S.PAUSED), (S.RUNNING, S.WAITING_INPUT), (S.RUNNING, S.COMPLETED), (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED), (S.RUNNING, S.QUEUED),
    (S.PAUSED, S.QUEUED), (S.FAILED, S.QUEUED), (S.WAITING_INPUT, S.QUEUED),
    (S.PAUSED, S.CANCELLED), (S.WAITING_INPUT, S.CANCELLED), (S.FAILED, S.CANCELLED),
}


def test_the_table_allows_exactly_the_moves_in_the_spec() -> None:
    table_moves = {(source, target) for target, sources in TRANSITIONS.items() for source in sources}
    assert table_moves == SPEC_MOVES


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_check_transition_agrees_with_the_table(current: TaskStatus, target: TaskStatus) -> None:
    if (current, target) in SPEC_MOVES:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, target)


def test_completed_and_cancelled_are_final() -> None:
    assert {s for s in S if s.is_final} == {S.COMPLETED, S.CANCELLED}
    assert not any(source.is_final for sources in TRANSITIONS.values() for source in sources)
