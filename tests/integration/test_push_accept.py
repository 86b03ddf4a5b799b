"""Accepting a document in one write: the posting log stores a new version directly in the state its
readiness decides (``accept(..., judge=...)``) and keeps the summary exact when a worker moves the
document meanwhile (the upsert's cost through the tenant API: tests/integration/test_push.py)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest

from shared.push.posting_log import (
    Attempt,
    AttemptOutcome,
    CompanionRefusedError,
    ConcurrentChangeError,
    InvalidPostingRequestError,
    InvalidTransitionError,
    Judgement,
    Offered,
    Posting,
    PostingEntry,
    PostingLog,
    PostingState,
    Reason,
    StaleVersionError,
    VersionConflictError,
)
from tests.integration.test_posting_log import World, world

__all__ = ["world"]

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


# --- moving what the worker has in hand -------------------------------------------------------------


def attempt_of(entry: PostingEntry, outcome: AttemptOutcome = AttemptOutcome.SUCCEEDED) -> Attempt:
    at = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    return Attempt(
        tenant_id=entry.tenant_id,
        kind=entry.kind,
        app_id=entry.app_id,
        version=entry.version,
        number=0,
        outcome=outcome,
        intuit_tid="tid-1",
        request_id="req-1",
        started_at=at,
        finished_at=at,
    )


def queued(world: World, app_id: str) -> PostingEntry:
    world.log.accept("firm-a", "invoice", app_id, 1, {"id": app_id}, DAY, judge=lambda: (S.QUEUED, ()))
    entry = world.log.get("firm-a", "invoice", app_id)
    assert entry is not None
    return entry


def test_a_move_from_the_entry_in_hand_needs_no_read_and_matches_a_read_one(world: World) -> None:
    entry = queued(world, "i1")
    world.count()
    moved = world.log.transition(
        "firm-a", "invoice", "i1", expected_version=1, to_state=S.IN_FLIGHT, seen=entry
    )
    assert world.count() == Counter({"TransactWriteItems": 1})
    assert moved == world.log.get("firm-a", "invoice", "i1")


def test_a_move_from_an_out_of_date_entry_reads_and_decides_again(world: World) -> None:
    # Given an entry in hand, then an attempt recorded and a newer version accepted behind its back
    entry = queued(world, "i1")
    world.log.record_attempt(
        "firm-a",
        "invoice",
        "i1",
        version=1,
        outcome="throttled",
        started_at=world.clock.at,
        finished_at=world.clock.at,
    )
    stale = world.log.transition(
        "firm-a", "invoice", "i1", expected_version=1, to_state=S.IN_FLIGHT, seen=entry
    )
    assert stale.attempts == 1  # decided on what is stored, not on what was seen
    world.log.accept("firm-a", "invoice", "i1", 2, {"id": "i1"}, DAY, judge=lambda: (S.QUEUED, ()))
    # When the worker moves what it had, Then it learns that its version is stale
    with pytest.raises(StaleVersionError):
        world.log.transition(
            "firm-a", "invoice", "i1", expected_version=1, to_state=S.POSTED, qbo_id="9", seen=stale
        )
    assert world.log.summary("firm-a").by_state == heads_by_state(world.log)


def in_flight_i1(world: World) -> PostingEntry:
    """Invoice i1 queued and taken by a worker."""
    return world.log.transition(
        "firm-a", "invoice", "i1", expected_version=1, to_state=S.IN_FLIGHT, seen=queued(world, "i1")
    )


def post_i1(world: World, entry: PostingEntry, *, return_old: bool = False) -> PostingEntry:
    """Invoice i1 posted as QBO id 77, in one transaction with its successful attempt and a companion
    write: a link item for i1 to 77, only where there is none yet (``return_old``: the refusal
    carries the item that was there)."""
    companion: dict[str, Any] = {
        "TableName": world.table.name,
        "Item": {"pk": "OTHER", "sk": "link-i1", "qbo_id": "77"},
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    if return_old:
        companion["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return world.log.transition(
        "firm-a",
        "invoice",
        "i1",
        expected_version=1,
        to_state=S.POSTED,
        qbo_id="77",
        seen=entry,
        attempt=attempt_of(entry),
        along=[{"Put": companion}],
    )


def test_posted_with_its_attempt_and_a_companion_write_is_one_transaction(world: World) -> None:
    entry = in_flight_i1(world)
    world.count()
    posted = post_i1(world, entry)
    assert world.count() == Counter({"TransactWriteItems": 1})
    assert (posted.state, posted.qbo_id, posted.attempts) == (S.POSTED, "77", 1)
    [attempt] = world.log.attempts("firm-a", "invoice", "i1")
    assert (attempt.number, attempt.outcome, attempt.intuit_tid) == (1, AttemptOutcome.SUCCEEDED, "tid-1")
    assert world.table.get_item(Key={"pk": "OTHER", "sk": "link-i1"})["Item"]["qbo_id"] == "77"


def test_a_refused_companion_write_leaves_everything_as_it_was(world: World) -> None:
    entry = in_flight_i1(world)
    world.table.put_item(Item={"pk": "OTHER", "sk": "link-i1", "qbo_id": "55"})
    with pytest.raises(CompanionRefusedError) as refused:
        post_i1(world, entry, return_old=True)
    assert refused.value.failed[0] is not None
    assert refused.value.failed[0]["qbo_id"] == "55"
    assert world.log.get("firm-a", "invoice", "i1") == entry
    assert world.log.attempts("firm-a", "invoice", "i1") == []


def test_many_documents_start_in_one_transaction_or_not_at_all(world: World) -> None:
    entries = [queued(world, f"i{n}") for n in range(5)]
    world.count()
    moved = world.log.transition_many(
        entries, to_state=S.IN_FLIGHT, request_ids={("invoice", "i0"): "tenant:invoice:i0:v1"}
    )
    assert world.count() == Counter({"TransactWriteItems": 1})
    assert [e.state for e in moved] == [S.IN_FLIGHT] * 5
    assert moved == [world.log.get("firm-a", "invoice", f"i{n}") for n in range(5)]
    assert moved[0].request_id == "tenant:invoice:i0:v1"
    summary = world.log.summary("firm-a").by_state
    assert (summary[S.QUEUED], summary[S.IN_FLIGHT]) == (0, 5)
    # one of them moved meanwhile: nothing moves
    again = [queued(world, f"j{n}") for n in range(3)]
    world.log.transition("firm-a", "invoice", "j1", expected_version=1, to_state=S.NEEDS_ATTENTION)
    with pytest.raises(ConcurrentChangeError):
        world.log.transition_many(again, to_state=S.IN_FLIGHT)
    assert [world.log.get("firm-a", "invoice", f"j{n}").state for n in range(3)] == [  # type: ignore[union-attr]
        S.QUEUED,
        S.NEEDS_ATTENTION,
        S.QUEUED,
    ]
    assert world.log.summary("firm-a").by_state == heads_by_state(world.log)


def test_a_batch_requests_documents_are_posted_together_with_their_attempts_and_links(world: World) -> None:
    started = world.log.transition_many([queued(world, f"i{n}") for n in range(3)], to_state=S.IN_FLIGHT)
    links = [
        {
            "Put": {
                "TableName": world.table.name,
                "Item": {"pk": "LINK", "sk": entry.app_id, "qbo_id": f"q{n}"},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        for n, entry in enumerate(started)
    ]
    postings = [
        Posting(entry, f"q{n}", "0", attempt_of(entry), [links[n]]) for n, entry in enumerate(started)
    ]
    world.count()
    posted = world.log.post_many(postings)
    assert world.count() == Counter({"TransactWriteItems": 1})
    assert [(e.state, e.qbo_id, e.attempts) for e in posted] == [(S.POSTED, f"q{n}", 1) for n in range(3)]
    assert posted == [world.log.get("firm-a", "invoice", f"i{n}") for n in range(3)]
    assert [len(world.log.attempts("firm-a", "invoice", f"i{n}")) for n in range(3)] == [1, 1, 1]
    assert world.table.get_item(Key={"pk": "LINK", "sk": "i2"})["Item"]["qbo_id"] == "q2"
    summary = world.log.summary("firm-a").by_state
    assert (summary[S.IN_FLIGHT], summary[S.POSTED]) == (0, 3)


def test_posting_together_is_all_or_nothing(world: World) -> None:
    started = world.log.transition_many([queued(world, f"i{n}") for n in range(3)], to_state=S.IN_FLIGHT)
    world.table.put_item(Item={"pk": "LINK", "sk": "i1", "qbo_id": "taken"})
    postings = [
        Posting(
            entry,
            f"q{n}",
            "0",
            attempt_of(entry),
            [
                {
                    "Put": {
                        "TableName": world.table.name,
                        "Item": {"pk": "LINK", "sk": entry.app_id, "qbo_id": f"q{n}"},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            ],
        )
        for n, entry in enumerate(started)
    ]
    with pytest.raises(ConcurrentChangeError):
        world.log.post_many(postings)
    assert [world.log.get("firm-a", "invoice", f"i{n}") for n in range(3)] == started
    assert all(world.log.attempts("firm-a", "invoice", f"i{n}") == [] for n in range(3))
    assert world.log.summary("firm-a").by_state == heads_by_state(world.log)


# --- accept_many (the bulk route) ---------------------------------------------------------------


def offer(app_id: str, version: int = 1, **extra: Any) -> Offered:
    return Offered("invoice", app_id, version, {"id": app_id, "version": version}, DAY, **extra)


def test_accept_many_reads_in_batches_and_writes_99_versions_a_transaction(world: World) -> None:
    world.log.accept("firm-a", "invoice", "d0", 2, {"id": "d0", "version": 2}, DAY)  # newer stored
    world.count()
    offers = [offer(f"d{n}", judge=lambda: (S.QUEUED, ())) for n in range(150)]
    answers = world.log.accept_many("firm-a", offers)
    assert [a.status for a in answers if not isinstance(a, Exception)] == ["ignored"] + ["accepted"] * 149
    # 150 heads in two BatchGetItem calls, 149 versions in two transactions (99 + 50) with the summary
    assert world.count() == Counter({"BatchGetItem": 2, "TransactWriteItems": 2})
    assert world.log.summary("firm-a").by_state[S.QUEUED] == 149
    assert heads_by_state(world.log)[S.QUEUED] == 149


def test_accept_many_redoes_a_chunk_that_lost_a_race_one_by_one(world: World) -> None:
    def meanwhile() -> Judgement:  # a newer version of d1 lands between the read and the write
        world.log.accept("firm-a", "invoice", "d1", 5, {"id": "d1", "version": 5}, DAY)
        return (S.QUEUED, ())

    answers = world.log.accept_many("firm-a", [offer("d0", judge=meanwhile), offer("d1"), offer("d2")])
    assert [(a.status, a.version) for a in answers if not isinstance(a, Exception)] == [
        ("accepted", 1),
        ("ignored", 5),
        ("accepted", 1),
    ]
    assert world.log.summary("firm-a").total == 3


def test_accept_many_gives_a_conflict_back_as_that_documents_answer(world: World) -> None:
    world.log.accept("firm-a", "invoice", "d0", 1, {"id": "d0", "version": 1, "memo": "a"}, DAY)
    answers = world.log.accept_many(
        "firm-a", [Offered("invoice", "d0", 1, {"id": "d0", "version": 1, "memo": "b"}, DAY), offer("d1")]
    )
    assert isinstance(answers[0], VersionConflictError)
    assert not isinstance(answers[1], Exception)
    assert answers[1].status == "accepted"
    with pytest.raises(InvalidPostingRequestError):
        world.log.accept_many("firm-a", [offer("d5"), offer("d5")])
