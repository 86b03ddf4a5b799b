"""The posting log (moto, in process): versions, the state machine, stale workers, attempts, the three
queries with ranges and pages, tenant isolation, the summary, and DynamoDB operations per method."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber

from infra import tables
from shared.push.posting_log import (
    TRANSITIONS,
    AttemptOutcome,
    DocumentNotFoundError,
    DocumentTooLargeError,
    InvalidPageTokenError,
    InvalidPostingRequestError,
    InvalidTransitionError,
    PostingEntry,
    PostingFault,
    PostingLog,
    PostingPage,
    PostingState,
    Reason,
    StaleVersionError,
    VersionConflictError,
)
from tests.moto_env import FixedClock, fresh_table, taken

S = PostingState
INVOICE = {"number": "1001", "total": Decimal("107.50"), "lines": [{"amount": Decimal("100.00")}]}


@dataclass
class World:
    table: Any
    log: PostingLog
    clock: FixedClock
    calls: Counter[str]

    def count(self) -> Counter[str]:
        return taken(self.calls)

    def add(
        self,
        app_id: str,
        txn: date | None = date(2025, 3, 1),
        *,
        tenant: str = "firm-a",
        kind: str = "invoice",
    ) -> None:
        self.log.accept(tenant, kind, app_id, 1, {"id": app_id}, txn)

    def walk(
        self, app_id: str, *states: PostingState, tenant: str = "firm-a", kind: str = "invoice"
    ) -> PostingEntry:
        entry = self.log.get(tenant, kind, app_id)
        assert entry is not None
        for state in states:
            qbo_id = f"q-{app_id}" if state is S.POSTED else None
            entry = self.log.transition(
                tenant, kind, app_id, expected_version=entry.version, to_state=state, qbo_id=qbo_id
            )
        return entry


@pytest.fixture
def world(module_dynamodb: Any) -> Iterator[World]:
    clock = FixedClock()
    with fresh_table(module_dynamodb, tables.POSTINGS) as (table, calls):
        yield World(table, PostingLog(table, clock), clock, calls)


def every_page(fetch: Any) -> tuple[list[str], int]:
    """App ids over all pages of ``fetch(page_token)``, and how many pages it took."""
    ids: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page: PostingPage = fetch(token)
        pages += 1
        ids += [entry.app_id for entry in page.entries]
        token = page.next_token
        if token is None:
            return ids, pages


# --- accept --------------------------------------------------------------------------------------


def test_a_new_document_is_received_with_its_document_kept_exactly(world: World) -> None:
    outcome = world.log.accept("firm-a", "invoice", "inv-1", 1, INVOICE, date(2025, 2, 27))

    assert outcome.accepted
    assert (outcome.version, outcome.previous_version, outcome.qbo_id) == (1, None, None)
    entry = world.log.get("firm-a", "invoice", "inv-1")
    assert entry is not None
    assert entry.state is S.RECEIVED
    assert entry.document == {"number": "1001", "total": "107.50", "lines": [{"amount": "100.00"}]}
    assert (entry.version, entry.txn_date, entry.attempts) == (1, date(2025, 2, 27), 0)
    assert entry.created_at == entry.updated_at == world.clock.at


def test_only_a_strictly_newer_version_replaces_the_stored_one(world: World) -> None:
    world.log.accept("firm-a", "invoice", "inv-1", 3, {"v": 3}, date(2025, 3, 1))

    older = world.log.accept("firm-a", "invoice", "inv-1", 2, {"v": 2}, date(2025, 3, 1))
    equal = world.log.accept("firm-a", "invoice", "inv-1", 3, {"v": 3}, date(2025, 3, 1))
    newer = world.log.accept("firm-a", "invoice", "inv-1", 4, {"v": 4}, date(2025, 3, 2))

    assert (older.status, older.version) == ("ignored", 3)
    assert (equal.status, equal.version) == ("ignored", 3)
    assert (newer.status, newer.version, newer.previous_version) == ("accepted", 4, 3)
    entry = world.log.get("firm-a", "invoice", "inv-1")
    assert entry is not None
    assert (entry.version, entry.document, entry.txn_date) == (4, {"v": 4}, date(2025, 3, 2))
    assert world.log.accept("firm-a", "invoice", "inv-1", 1, {"v": 1}, None).status == "ignored"


def test_the_same_version_with_the_same_body_is_ignored_whatever_the_order_of_its_keys(world: World) -> None:
    world.log.accept("firm-a", "invoice", "inv-1", 3, {"a": 1, "b": {"x": "1.50", "y": [1, 2]}}, None)
    world.count()

    again = world.log.accept("firm-a", "invoice", "inv-1", 3, {"b": {"y": [1, 2], "x": "1.50"}, "a": 1}, None)

    assert (again.status, again.version, again.previous_state) == ("ignored", 3, S.RECEIVED)
    assert world.count() == Counter({"GetItem": 1})  # the head read anyway, nothing written


def test_the_same_version_with_another_body_is_a_conflict_and_changes_nothing(world: World) -> None:
    world.log.accept("firm-a", "invoice", "inv-1", 3, {"v": 3, "total": "10.00"}, date(2025, 3, 1))
    before = world.log.get("firm-a", "invoice", "inv-1")
    summary = world.log.summary("firm-a")
    world.count()
    judged: list[int] = []

    def judge() -> tuple[PostingState, tuple[Reason, ...]]:
        judged.append(1)
        return S.QUEUED, ()

    with pytest.raises(VersionConflictError) as refused:
        world.log.accept(
            "firm-a", "invoice", "inv-1", 3, {"v": 3, "total": "11.00"}, date(2025, 3, 2), judge=judge
        )

    assert (refused.value.kind, refused.value.app_id, refused.value.version) == ("invoice", "inv-1", 3)
    assert refused.value.tenant_id == "firm-a"
    assert "version 3" in str(refused.value)
    assert world.count() == Counter({"GetItem": 1})  # no other read, no write
    assert judged == []
    assert world.log.get("firm-a", "invoice", "inv-1") == before
    assert world.log.summary("firm-a") == summary


def test_an_older_version_is_ignored_whatever_its_body(world: World) -> None:
    world.log.accept("firm-a", "invoice", "inv-1", 3, {"v": 3}, None)

    older = world.log.accept("firm-a", "invoice", "inv-1", 2, {"v": "something else"}, None)

    assert (older.status, older.version) == ("ignored", 3)
    entry = world.log.get("firm-a", "invoice", "inv-1")
    assert entry is not None
    assert (entry.version, entry.document) == (3, {"v": 3})


def test_the_stored_body_is_compared_as_normalise_reads_it(world: World) -> None:
    # A document stored before its model had a field: the retry carries the field's default.
    world.log.accept("firm-a", "invoice", "inv-1", 1, {"v": 1}, None)

    def with_defaults(stored: dict[str, Any]) -> dict[str, Any]:
        return {"memo": None, **stored}

    def retry(document: dict[str, Any]) -> Any:
        return world.log.accept("firm-a", "invoice", "inv-1", 1, document, None, normalise=with_defaults)

    assert retry({"v": 1, "memo": None}).status == "ignored"
    with pytest.raises(VersionConflictError):
        retry({"v": 1, "memo": "x"})


def test_a_new_version_of_a_posted_document_keeps_its_qbo_id_for_an_update_in_place(world: World) -> None:
    world.add("inv-1")
    world.walk("inv-1", S.QUEUED, S.IN_FLIGHT)
    world.log.transition(
        "firm-a", "invoice", "inv-1", expected_version=1, to_state=S.POSTED, qbo_id="130", sync_token="0"
    )
    posted_at = world.clock.at
    world.clock.at += timedelta(days=1)

    outcome = world.log.accept("firm-a", "invoice", "inv-1", 2, {"changed": True}, date(2025, 3, 1))

    assert (outcome.status, outcome.previous_state, outcome.qbo_id) == ("accepted", S.POSTED, "130")
    entry = world.log.get("firm-a", "invoice", "inv-1")
    assert entry is not None
    assert (entry.state, entry.qbo_id, entry.sync_token, entry.posted_at) == (
        S.RECEIVED,
        "130",
        "0",
        posted_at,
    )
    assert entry.attempts == 0
    assert not entry.needs_lookup


def test_a_new_version_over_an_unfinished_call_must_be_looked_up_before_creating(world: World) -> None:
    world.add("inv-1")
    world.walk("inv-1", S.QUEUED, S.IN_FLIGHT)

    world.log.accept("firm-a", "invoice", "inv-1", 2, {"v": 2}, date(2025, 3, 1))

    entry = world.log.get("firm-a", "invoice", "inv-1")
    assert entry is not None
    assert entry.needs_lookup
    entry = world.walk("inv-1", S.QUEUED, S.IN_FLIGHT, S.POSTED)
    assert not entry.needs_lookup


def test_documents_that_cannot_be_stored_are_refused_before_any_write(world: World) -> None:
    cases: list[tuple[Any, ...]] = [
        ("firm#a", "invoice", "inv-1", 1, {}, None),
        ("firm-a", "estimate", "inv-1", 1, {}, None),
        ("firm-a", "invoice", "inv#1", 1, {}, None),
        ("firm-a", "invoice", "inv-1", 0, {}, None),
        ("firm-a", "invoice", "inv-1", True, {}, None),
        ("firm-a", "invoice", "inv-1", 1, {}, datetime(2025, 3, 1, tzinfo=UTC)),
        ("firm-a", "invoice", "inv-1", 1, {"x": object()}, None),
    ]
    for case in cases:
        with pytest.raises(InvalidPostingRequestError):
            world.log.accept(*case)
    with pytest.raises(DocumentTooLargeError):
        world.log.accept("firm-a", "invoice", "inv-1", 1, {"memo": "x" * 400_000}, None)
    assert world.calls.keys() <= {"GetItem"}
    assert world.table.scan()["Items"] == []


# --- transitions --------------------------------------------------------------------------------


PATHS: dict[PostingState, tuple[PostingState, ...]] = {
    S.RECEIVED: (),
    S.NEEDS_ATTENTION: (S.NEEDS_ATTENTION,),
    S.QUEUED: (S.QUEUED,),
    S.IN_FLIGHT: (S.QUEUED, S.IN_FLIGHT),
    S.UNCERTAIN: (S.QUEUED, S.IN_FLIGHT, S.UNCERTAIN),
    S.POSTED: (S.QUEUED, S.IN_FLIGHT, S.POSTED),
    S.FAILED: (S.QUEUED, S.IN_FLIGHT, S.FAILED),
    S.SKIPPED: (S.SKIPPED,),
    S.VOIDED: (S.VOIDED,),
}


def test_every_move_the_state_machine_allows_succeeds_and_every_other_is_refused(
    world: World, module_dynamodb: Any
) -> None:
    for source, path in PATHS.items():
        # A small table per source state: moto copies the whole table on every transaction.
        name = tables.create_table(module_dynamodb.meta.client, tables.POSTINGS, name=f"moves-{source.value}")
        here = World(
            module_dynamodb.Table(name),
            PostingLog(module_dynamodb.Table(name), world.clock),
            world.clock,
            Counter(),
        )
        for target in PostingState:
            app_id = f"{source.value}.{target.value}"
            here.add(app_id)
            assert here.walk(app_id, *path).state is source
            move: dict[str, Any] = {"expected_version": 1, "to_state": target, "qbo_id": "q-1"}
            if target in TRANSITIONS[source]:
                assert here.log.transition("firm-a", "invoice", app_id, **move).state is target
            else:
                with pytest.raises(InvalidTransitionError) as refused:
                    here.log.transition("firm-a", "invoice", app_id, **move)
                assert (refused.value.from_state, refused.value.to_state) == (source, target)
                entry = here.log.get("firm-a", "invoice", app_id)
                assert entry is not None
                assert entry.state is source
        here.table.delete()


def test_posting_stamps_the_qbo_identity_and_the_posting_time(world: World) -> None:
    world.add("inv-1")
    world.walk("inv-1", S.QUEUED, S.IN_FLIGHT)
    fault = PostingFault(code="6000", message="A business validation error has occurred", intuit_tid="tid-1")
    world.log.transition("firm-a", "invoice", "inv-1", expected_version=1, to_state=S.FAILED, error=fault)
    world.walk("inv-1", S.QUEUED)  # retry of a failed entry
    world.log.transition(
        "firm-a", "invoice", "inv-1", expected_version=1, to_state=S.IN_FLIGHT, request_id="r-1"
    )
    world.clock.at += timedelta(minutes=1)

    entry = world.log.transition(
        "firm-a", "invoice", "inv-1", expected_version=1, to_state=S.POSTED, qbo_id="130", sync_token="0"
    )

    assert entry == world.log.get("firm-a", "invoice", "inv-1")
    assert (entry.qbo_id, entry.sync_token, entry.request_id) == ("130", "0", "r-1")
    assert (entry.posted_at, entry.last_error) == (world.clock.at, None)


def test_posted_needs_a_qbo_id(world: World) -> None:
    world.add("inv-1")
    world.walk("inv-1", S.QUEUED, S.IN_FLIGHT)

    with pytest.raises(InvalidPostingRequestError):
        world.log.transition("firm-a", "invoice", "inv-1", expected_version=1, to_state=S.POSTED)


def test_needs_attention_keeps_the_exact_reasons_until_the_document_moves_on(world: World) -> None:
    world.add("inv-1")
    reasons = [Reason(code="client_not_linked", detail="client c-9"), Reason(code="code_not_mapped")]

    entry = world.log.transition(
        "firm-a", "invoice", "inv-1", expected_version=1, to_state=S.NEEDS_ATTENTION, reasons=reasons
    )
    assert entry.reasons == tuple(reasons)
    stored = world.log.get("firm-a", "invoice", "inv-1")
    assert stored is not None
    assert stored.reasons == tuple(reasons)
    assert world.walk("inv-1", S.QUEUED).reasons == ()


def test_a_late_worker_cannot_clobber_a_newer_version_but_its_qbo_id_is_kept(world: World) -> None:
    world.add("inv-1")
    world.walk("inv-1", S.QUEUED, S.IN_FLIGHT)
    world.log.accept("firm-a", "invoice", "inv-1", 2, {"v": 2}, date(2025, 3, 1))

    with pytest.raises(StaleVersionError) as stale:
        world.log.transition(
            "firm-a", "invoice", "inv-1", expected_version=1, to_state=S.POSTED, qbo_id="130", sync_token="0"
        )

    assert (stale.value.expected_version, stale.value.current_version) == (1, 2)
    assert stale.value.carried_over
    entry = world.log.get("firm-a", "invoice", "inv-1")
    assert entry is not None
    assert (entry.version, entry.state, entry.qbo_id, entry.sync_token) == (2, S.RECEIVED, "130", "0")
    assert not entry.needs_lookup  # v2 is an update of QBO invoice 130, no lookup needed


def test_a_late_uncertain_outcome_marks_the_newer_version_for_a_lookup(world: World) -> None:
    world.add("inv-1")
    world.walk("inv-1", S.QUEUED)
    world.log.accept("firm-a", "invoice", "inv-1", 2, {"v": 2}, date(2025, 3, 1))

    with pytest.raises(StaleVersionError) as stale:
        world.log.transition("firm-a", "invoice", "inv-1", expected_version=1, to_state=S.UNCERTAIN)
    assert stale.value.carried_over
    with pytest.raises(StaleVersionError) as refused:
        world.log.transition("firm-a", "invoice", "inv-1", expected_version=1, to_state=S.FAILED)
    assert not refused.value.carried_over

    entry = world.log.get("firm-a", "invoice", "inv-1")
    assert entry is not None
    assert (entry.state, entry.needs_lookup) == (S.RECEIVED, True)


def test_transitions_of_unknown_documents_and_states_are_refused(world: World) -> None:
    with pytest.raises(DocumentNotFoundError):
        world.log.transition("firm-a", "invoice", "nope", expected_version=1, to_state=S.QUEUED)
    world.add("inv-1")
    with pytest.raises(InvalidPostingRequestError):
        world.log.transition("firm-a", "invoice", "inv-1", expected_version=1, to_state="lost")
    with pytest.raises(StaleVersionError):  # a version the log has never seen
        world.log.transition("firm-a", "invoice", "inv-1", expected_version=2, to_state=S.QUEUED)


# --- attempts ------------------------------------------------------------------------------------


def test_attempts_are_numbered_per_version_in_the_order_recorded(world: World) -> None:
    world.add("inv-1")
    start = world.clock.at
    throttled = PostingFault(code="429", message="Too many requests")
    for outcome, status, fault in [
        (AttemptOutcome.TRANSIENT, 503, None),
        (AttemptOutcome.THROTTLED, 429, throttled),
        (AttemptOutcome.SUCCEEDED, 200, None),
    ]:
        world.log.record_attempt(
            "firm-a",
            "invoice",
            "inv-1",
            version=1,
            outcome=outcome,
            started_at=start,
            finished_at=start + timedelta(seconds=1),
            http_status=status,
            fault=fault,
            intuit_tid=f"tid-{status}",
            request_id="req-v1",
        )
    head = world.log.get("firm-a", "invoice", "inv-1")
    assert head is not None
    assert head.attempts == 3
    assert head.last_error == PostingFault(code="429", message="Too many requests", intuit_tid="tid-429")
    assert head.request_id == "req-v1"

    world.log.accept("firm-a", "invoice", "inv-1", 2, {"v": 2}, date(2025, 3, 1))
    world.log.record_attempt(
        "firm-a", "invoice", "inv-1", version=2, outcome="rejected", started_at=start, finished_at=start
    )
    late = world.log.record_attempt(  # a slow worker's call for version 1 is still on record
        "firm-a", "invoice", "inv-1", version=1, outcome="uncertain", started_at=start, finished_at=start
    )

    assert (late.version, late.number) == (1, 4)
    attempts = world.log.attempts("firm-a", "invoice", "inv-1")
    assert [(a.version, a.number, a.outcome.value) for a in attempts] == [
        (1, 1, "transient"),
        (1, 2, "throttled"),
        (1, 3, "succeeded"),
        (1, 4, "uncertain"),
        (2, 1, "rejected"),
    ]
    assert attempts[1].fault == PostingFault(code="429", message="Too many requests", intuit_tid="tid-429")
    assert (attempts[0].http_status, attempts[0].intuit_tid, attempts[0].request_id) == (
        503,
        "tid-503",
        "req-v1",
    )
    assert [a.number for a in world.log.attempts("firm-a", "invoice", "inv-1", version=2)] == [1]
    head = world.log.get("firm-a", "invoice", "inv-1")
    assert head is not None
    assert head.attempts == 1


def test_attempts_need_the_document_and_a_known_outcome(world: World) -> None:
    at = world.clock.at
    with pytest.raises(DocumentNotFoundError):
        world.log.record_attempt(
            "firm-a", "invoice", "nope", version=1, outcome="succeeded", started_at=at, finished_at=at
        )
    world.add("inv-1")
    with pytest.raises(InvalidPostingRequestError):
        world.log.record_attempt(
            "firm-a", "invoice", "inv-1", version=1, outcome="fine", started_at=at, finished_at=at
        )
    with pytest.raises(StaleVersionError):
        world.log.record_attempt(
            "firm-a", "invoice", "inv-1", version=7, outcome="succeeded", started_at=at, finished_at=at
        )
    assert world.log.attempts("firm-a", "invoice", "inv-1") == []


# --- queries -------------------------------------------------------------------------------------


def test_query_by_state_with_transaction_date_ranges_and_pages(world: World) -> None:
    for day in range(1, 13):
        world.add(f"inv-{day:02d}", date(2025, 3, day))
        world.walk(f"inv-{day:02d}", S.QUEUED)
    world.add("cli-1", None, kind="client")
    world.walk("cli-1", S.QUEUED, kind="client")
    world.add("inv-other", date(2025, 3, 5))  # received, not queued

    def queued(frm: date | None = None, to: date | None = None, limit: int = 5) -> tuple[list[str], int]:
        return every_page(
            lambda token: world.log.query_by_state(
                "firm-a", S.QUEUED, txn_from=frm, txn_to=to, page_token=token, limit=limit
            )
        )

    everything, pages = queued()
    assert everything == ["cli-1"] + [f"inv-{d:02d}" for d in range(1, 13)]  # undated first
    assert pages == 3
    assert queued(date(2025, 3, 3), date(2025, 3, 5))[0] == ["inv-03", "inv-04", "inv-05"]
    assert queued(None, date(2025, 3, 2))[0] == ["inv-01", "inv-02"]
    assert queued(date(2025, 3, 11), None)[0] == ["inv-11", "inv-12"]
    received = world.log.query_by_state("firm-a", "received")
    assert [e.app_id for e in received.entries] == ["inv-other"]
    assert received.next_token is None
    with pytest.raises(InvalidPostingRequestError):
        world.log.query_by_state("firm-a", S.QUEUED, txn_from=date(2025, 3, 5), txn_to=date(2025, 3, 1))


def test_query_by_transaction_date_with_kind_and_state_filters(world: World) -> None:
    for day in range(1, 8):
        world.add(f"inv-{day}", date(2025, 4, day))
        world.add(f"pay-{day}", date(2025, 4, day), kind="payment")
    world.walk("inv-2", S.QUEUED, S.IN_FLIGHT, S.POSTED)
    world.add("cli-1", None, kind="client")  # no transaction date: not in this report

    def ids(frm: date | None, to: date | None, **filters: Any) -> list[str]:
        return every_page(
            lambda token: world.log.query_by_txn_date("firm-a", frm, to, page_token=token, limit=4, **filters)
        )[0]

    assert ids(date(2025, 4, 2), date(2025, 4, 3)) == ["inv-2", "pay-2", "inv-3", "pay-3"]
    assert ids(date(2025, 4, 6), None, kinds=["payment"]) == ["pay-6", "pay-7"]
    assert ids(None, None, kinds=["invoice"], states=[S.POSTED]) == ["inv-2"]
    assert len(ids(None, None)) == 14
    with pytest.raises(InvalidPostingRequestError):
        ids(None, None, kinds=["estimate"])


def test_query_by_posted_date_uses_the_day_each_document_was_posted(world: World) -> None:
    for n in range(6):
        world.add(f"inv-{n}", date(2025, 1, 15))
        world.walk(f"inv-{n}", S.QUEUED, S.IN_FLIGHT)
    world.add("pay-0", date(2025, 1, 15), kind="payment")
    world.walk("pay-0", S.QUEUED, S.IN_FLIGHT, kind="payment")
    for n in range(6):  # two postings a day, 1 to 3 March
        world.clock.at = datetime(2025, 3, 1 + n // 2, 10 + n, tzinfo=UTC)
        world.walk(f"inv-{n}", S.POSTED)
    world.walk("pay-0", S.POSTED, kind="payment")  # 3 March, 15:00
    world.add("inv-unposted", date(2025, 3, 2))

    def posted(frm: date | None, to: date | None, **filters: Any) -> list[str]:
        return every_page(
            lambda token: world.log.query_by_posted_date(
                "firm-a", frm, to, page_token=token, limit=2, **filters
            )
        )[0]

    assert posted(date(2025, 3, 2), date(2025, 3, 2)) == ["inv-2", "inv-3"]
    assert posted(date(2025, 3, 3), None) == ["inv-4", "inv-5", "pay-0"]
    assert posted(None, date(2025, 3, 1)) == ["inv-0", "inv-1"]
    assert posted(None, None, kinds=["payment"]) == ["pay-0"]
    assert posted(date(2025, 3, 4), None) == []


def test_the_kind_filters_every_query_and_a_short_page_still_has_a_next_token(world: World) -> None:
    at = datetime(2025, 3, 1, tzinfo=UTC)
    for n in range(4):
        world.add(f"inv-{n}", date(2025, 5, 1 + n))
        world.add(f"pay-{n}", date(2025, 5, 1 + n), kind="payment")
        world.walk(f"inv-{n}", S.QUEUED)
        world.walk(f"pay-{n}", S.QUEUED, kind="payment")
    for n in range(3):
        world.add(f"cli-{n}", None, kind="client")
        world.log.record_attempt(  # attempts share the documents' partition: filtered out
            "firm-a", "client", f"cli-{n}", version=1, outcome="rejected", started_at=at, finished_at=at
        )
    world.walk("cli-1", S.QUEUED, kind="client")

    def ids(fetch: Any) -> tuple[list[str], int]:
        return every_page(fetch)

    queued_payments = ids(
        lambda token: world.log.query_by_state(
            "firm-a", S.QUEUED, kinds=["payment"], page_token=token, limit=2
        )
    )
    assert queued_payments == (["pay-0", "pay-1", "pay-2", "pay-3"], 5)  # pages of 0 to 2 entries
    first = world.log.query_by_state("firm-a", S.QUEUED, kinds=["client"], limit=1)
    assert [e.app_id for e in first.entries] == ["cli-1"]  # undated first
    short = world.log.query_by_state("firm-a", S.QUEUED, kinds=["payment"], limit=1)
    assert short.entries == []  # empty, yet more follows
    assert short.next_token is not None
    clients, pages = ids(lambda token: world.log.query_by_kind("firm-a", "client", page_token=token, limit=2))
    assert clients == ["cli-0", "cli-1", "cli-2"]  # undated ones too, attempts left out
    assert pages == 4  # six items read two a page; the last full page still had a next token
    assert ids(lambda token: world.log.query_by_kind("firm-a", "credit_memo", page_token=token))[0] == []
    token = world.log.query_by_kind("firm-a", "client", limit=1).next_token
    with pytest.raises(InvalidPageTokenError):  # another kind's query, another index's token
        world.log.query_by_kind("firm-a", "invoice", page_token=token)
    with pytest.raises(InvalidPostingRequestError):
        world.log.query_by_kind("firm-a", "estimate")


def test_a_posting_date_range_filters_by_kind_state_and_transaction_date(world: World) -> None:
    for n in range(4):
        world.add(f"inv-{n}", date(2025, 6, 1 + n))
        world.walk(f"inv-{n}", S.QUEUED, S.IN_FLIGHT, S.POSTED)
    world.add("pay-0", date(2025, 6, 2), kind="payment")
    world.walk("pay-0", S.QUEUED, S.IN_FLIGHT, S.POSTED, kind="payment")
    world.walk("inv-3", S.VOIDED)
    today = world.clock.now().date()

    def posted(**filters: Any) -> list[str]:
        return every_page(
            lambda token: world.log.query_by_posted_date(
                "firm-a", today, today, page_token=token, limit=2, **filters
            )
        )[0]

    assert sorted(posted()) == ["inv-0", "inv-1", "inv-2", "inv-3", "pay-0"]
    assert sorted(posted(kinds=["invoice"], states=[S.POSTED])) == ["inv-0", "inv-1", "inv-2"]
    assert sorted(posted(txn=(date(2025, 6, 2), date(2025, 6, 3)))) == ["inv-1", "inv-2", "pay-0"]
    assert sorted(posted(txn=(date(2025, 6, 3), None))) == ["inv-2", "inv-3"]
    assert sorted(posted(txn=(None, date(2025, 6, 1)))) == ["inv-0"]
    with pytest.raises(InvalidPostingRequestError):
        posted(txn=(date(2025, 6, 3), date(2025, 6, 1)))


# --- tenant isolation ------------------------------------------------------------------------------


def test_tenants_with_the_same_document_ids_never_meet(world: World) -> None:
    world.log.accept("firm-a", "invoice", "inv-1", 5, {"owner": "a"}, date(2025, 3, 1))
    world.walk("inv-1", S.QUEUED)
    for n in range(3):
        world.add(f"extra-{n}")
        world.walk(f"extra-{n}", S.QUEUED)

    # Tenant B's version 1 is not "older" than A's version 5: it is another document.
    assert world.log.accept("firm-b", "invoice", "inv-1", 1, {"owner": "b"}, date(2025, 3, 1)).accepted
    entry_b = world.log.get("firm-b", "invoice", "inv-1")
    assert entry_b is not None
    assert (entry_b.document, entry_b.state) == ({"owner": "b"}, S.RECEIVED)
    assert world.log.query_by_state("firm-b", S.QUEUED).entries == []
    assert [e.tenant_id for e in world.log.query_by_txn_date("firm-b", None, None).entries] == ["firm-b"]
    assert world.log.summary("firm-b").by_state[S.QUEUED] == 0
    with pytest.raises(DocumentNotFoundError):
        world.log.transition("firm-b", "invoice", "extra-0", expected_version=1, to_state=S.QUEUED)

    token = world.log.query_by_state("firm-a", S.QUEUED, limit=1).next_token
    assert token is not None
    with pytest.raises(InvalidPageTokenError):
        world.log.query_by_state("firm-b", S.QUEUED, page_token=token)
    with pytest.raises(InvalidPageTokenError):  # nor for another index or state of the same tenant
        world.log.query_by_txn_date("firm-a", None, None, page_token=token)
    with pytest.raises(InvalidPageTokenError):
        world.log.query_by_state("firm-a", S.RECEIVED, page_token=token)
    forged = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    forged["pk"] = "TENANT#firm-b"
    forged_token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
    with pytest.raises(InvalidPageTokenError):
        world.log.query_by_state("firm-a", S.QUEUED, page_token=forged_token)
    entry_a = world.log.get("firm-a", "invoice", "inv-1")
    assert entry_a is not None
    assert (entry_a.version, entry_a.document, entry_a.state) == (5, {"owner": "a"}, S.QUEUED)


# --- summary ---------------------------------------------------------------------------------------


def test_the_summary_counts_documents_by_kind_and_state(world: World) -> None:
    for n in range(4):
        world.add(f"inv-{n}")
    world.add("pay-1", kind="payment")
    world.add("cli-1", None, kind="client")
    world.walk("inv-0", S.QUEUED, S.IN_FLIGHT, S.POSTED)
    world.walk("inv-1", S.NEEDS_ATTENTION, S.NEEDS_ATTENTION)
    world.walk("inv-2", S.QUEUED, S.IN_FLIGHT, S.FAILED)
    world.walk("cli-1", S.QUEUED, kind="client")
    world.log.accept("firm-a", "invoice", "inv-0", 2, {"v": 2}, date(2025, 3, 1))  # posted -> received
    world.log.accept("firm-a", "invoice", "inv-0", 2, {"v": 2}, date(2025, 3, 1))  # ignored: no change

    summary = world.log.summary("firm-a")

    assert summary.by_kind["invoice"][S.RECEIVED] == 2
    assert summary.by_kind["invoice"][S.POSTED] == 0
    assert summary.by_kind["payment"][S.RECEIVED] == 1
    assert {state: count for state, count in summary.by_state.items() if count} == {
        S.RECEIVED: 3,
        S.NEEDS_ATTENTION: 1,
        S.FAILED: 1,
        S.QUEUED: 1,
    }
    assert summary.total == 6
    for state, count in summary.by_state.items():  # the counters agree with the index
        assert len(world.log.query_by_state("firm-a", state).entries) == count
    assert world.log.summary("firm-z").total == 0


def test_a_transaction_that_lost_a_race_on_the_summary_is_retried(world: World) -> None:
    conflict = {"CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]}
    with Stubber(world.table.meta.client) as stub:
        stub.add_response("get_item", {})
        stub.add_client_error(
            "transact_write_items", service_error_code="TransactionCanceledException", modeled_fields=conflict
        )
        stub.add_response("transact_write_items", {})

        outcome = world.log.accept("firm-a", "invoice", "inv-1", 1, INVOICE, date(2025, 3, 1))

        stub.assert_no_pending_responses()
    assert outcome.accepted


# --- cost ------------------------------------------------------------------------------------------


def test_dynamodb_operations_per_method(world: World) -> None:
    log, at = world.log, world.clock.at
    world.count()

    log.accept("firm-a", "invoice", "inv-1", 1, INVOICE, date(2025, 3, 1))
    assert world.count() == Counter({"GetItem": 1, "TransactWriteItems": 1})
    log.accept("firm-a", "invoice", "inv-1", 1, INVOICE, date(2025, 3, 1))
    assert world.count() == Counter({"GetItem": 1})
    log.transition("firm-a", "invoice", "inv-1", expected_version=1, to_state=S.NEEDS_ATTENTION)
    assert world.count() == Counter({"GetItem": 1, "TransactWriteItems": 1})
    log.transition("firm-a", "invoice", "inv-1", expected_version=1, to_state=S.NEEDS_ATTENTION)
    assert world.count() == Counter({"GetItem": 1, "UpdateItem": 1})  # same state: no counters
    log.record_attempt(
        "firm-a", "invoice", "inv-1", version=1, outcome="succeeded", started_at=at, finished_at=at
    )
    assert world.count() == Counter({"UpdateItem": 1, "PutItem": 1})
    log.get("firm-a", "invoice", "inv-1")
    log.summary("firm-a")
    assert world.count() == Counter({"GetItem": 2})
    log.attempts("firm-a", "invoice", "inv-1")
    log.query_by_state("firm-a", S.NEEDS_ATTENTION)
    log.query_by_txn_date("firm-a", None, None)
    log.query_by_posted_date("firm-a", None, None)
    assert world.count() == Counter({"Query": 4})
