"""Accepting a document in one write: the posting log stores a new version directly in the state its
readiness decides (``accept(..., judge=...)``) and keeps the summary exact when a worker moves the
document meanwhile (the upsert's cost through the tenant API: tests/integration/test_push.py)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from shared.posting_log import InvalidTransitionError, PostingLog, PostingState, Reason
from tests.integration.test_posting_log import World, dynamodb, world

__all__ = ["dynamodb", "world"]

S = PostingState
DAY = date(2025, 3, 1)


def heads_by_state(log: PostingLog, tenant: str = "firm-a") -> dict[PostingState, int]:
    counts: dict[PostingState, int] = {}
    for state in PostingState:
        counts[state] = len(log.query_by_state(tenant, state, limit=1000).entries)
    return counts


def test_a_judged_version_lands_in_its_state_with_its_reasons_in_one_transaction(world: World) -> None:
    # When a new document is accepted with a judgement
    world.count()
    reason = Reason(code="item_not_mapped", detail='{"code": "W9"}')
    outcome = world.log.accept(
        "firm-a", "invoice", "i1", 1, {"id": "i1"}, DAY, judge=lambda: (S.NEEDS_ATTENTION, [reason])
    )
    # Then it is stored in that state, once, and only that state is counted
    assert (outcome.status, outcome.state, outcome.reasons) == ("accepted", S.NEEDS_ATTENTION, (reason,))
    assert world.count() == Counter({"GetItem": 1, "TransactWriteItems": 1})
    entry = world.log.get("firm-a", "invoice", "i1")
    assert entry is not None
    assert (entry.state, entry.reasons) == (S.NEEDS_ATTENTION, (reason,))
    assert world.log.summary("firm-a").by_state[S.NEEDS_ATTENTION] == 1
    assert world.log.summary("firm-a").by_state[S.RECEIVED] == 0
    # and a newer version judged ready replaces the reasons and moves the count
    world.log.accept("firm-a", "invoice", "i1", 2, {"id": "i1"}, DAY, judge=lambda: (S.QUEUED, ()))
    entry = world.log.get("firm-a", "invoice", "i1")
    assert entry is not None
    assert (entry.state, entry.reasons) == (S.QUEUED, ())
    summary = world.log.summary("firm-a").by_state
    assert (summary[S.NEEDS_ATTENTION], summary[S.QUEUED]) == (0, 1)


def test_an_ignored_version_is_never_judged(world: World) -> None:
    world.log.accept("firm-a", "invoice", "i1", 3, {"id": "i1"}, DAY)
    judged: list[int] = []

    def judge() -> tuple[PostingState, tuple[Reason, ...]]:
        judged.append(1)
        return S.QUEUED, ()

    assert world.log.accept("firm-a", "invoice", "i1", 3, {"id": "i1"}, DAY, judge=judge).status == "ignored"
    assert world.log.accept("firm-a", "invoice", "i1", 2, {"id": "i1"}, DAY, judge=judge).status == "ignored"
    assert judged == []


def test_a_judgement_outside_the_state_machine_is_refused_and_writes_nothing(world: World) -> None:
    with pytest.raises(InvalidTransitionError):
        world.log.accept("firm-a", "invoice", "i1", 1, {"id": "i1"}, DAY, judge=lambda: (S.POSTED, ()))
    assert world.log.get("firm-a", "invoice", "i1") is None
    assert world.log.summary("firm-a").total == 0


def test_a_worker_moving_the_document_meanwhile_keeps_the_summary_exact(world: World) -> None:
    # Given version 1 queued
    world.log.accept("firm-a", "invoice", "i1", 1, {"id": "i1"}, DAY, judge=lambda: (S.QUEUED, ()))
    moved: list[PostingState] = []

    def judge_while_a_worker_starts() -> tuple[PostingState, tuple[Reason, ...]]:
        # between the accept's read and its write, a worker takes version 1
        if not moved:
            world.log.transition("firm-a", "invoice", "i1", expected_version=1, to_state=S.IN_FLIGHT)
            moved.append(S.IN_FLIGHT)
        return S.QUEUED, ()

    # When version 2 is accepted
    outcome = world.log.accept(
        "firm-a", "invoice", "i1", 2, {"id": "i1"}, DAY, judge=judge_while_a_worker_starts
    )
    # Then it replaced the in-flight version (and remembers to look it up), and every count is right
    assert (outcome.previous_state, outcome.state) == (S.IN_FLIGHT, S.QUEUED)
    entry = world.log.get("firm-a", "invoice", "i1")
    assert entry is not None
    assert (entry.version, entry.state, entry.needs_lookup) == (2, S.QUEUED, True)
    summary = world.log.summary("firm-a").by_state
    assert summary == heads_by_state(world.log)
    assert (summary[S.QUEUED], summary[S.IN_FLIGHT]) == (1, 0)
