"""Webhook notifications: signature, both payload formats, and the intake with fakes at its ports."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.pull.notifications import (
    ChangeNotice,
    DeliveryLookup,
    IntakeStoreBusyError,
    IntakeStoreError,
    NotificationIntake,
    NotificationQueueError,
    QueuedChange,
    UnparseableNotificationError,
    expected_signature,
    legacy_event_id,
    parse_notifications,
    parse_timestamp,
    read_notifications,
    verify_signature,
)

# Intuit's published test vector (QuickBooks-V3-Java-SDK WebhooksServiceTest.java), exact bytes.
VECTOR_TOKEN = "b5771f19b12ddb4bcdb9f08bdc50bc63878a"
VECTOR_BODY = (
    b'{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[{"name":"Customer",'
    b'"id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"}]}}]}'
)
VECTOR_SIGNATURE = "JC2GUwciPmRBwEO7WvrRmKqu9tGOKL8FFallocTFi8Q="
TOKEN = "unit-test-verifier"
NOW = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)


def cloudevent(
    realm: str, entity: str, verb: str, entity_id: str, event_id: str, **extra: Any
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "intuit.abc",
        "type": f"qbo.{entity}.{verb}.v1",
        "datacontenttype": "application/json",
        "time": "2025-09-10T21:31:25.179851517Z",
        "intuitentityid": entity_id,
        "intuitaccountid": realm,
        "data": {},
        **extra,
    }


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


# --- signature ----------------------------------------------------------------------------------


def test_intuit_test_vector_verifies() -> None:
    assert expected_signature(VECTOR_BODY, VECTOR_TOKEN) == VECTOR_SIGNATURE
    assert verify_signature(VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_TOKEN)


@pytest.mark.parametrize(
    ("body", "signature", "token"),
    [
        (VECTOR_BODY + b" ", VECTOR_SIGNATURE, VECTOR_TOKEN),  # one byte more
        (VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_TOKEN + "x"),  # another token
        (VECTOR_BODY, VECTOR_SIGNATURE[:-2], VECTOR_TOKEN),  # truncated
        (VECTOR_BODY, None, VECTOR_TOKEN),  # missing
        (VECTOR_BODY, "", VECTOR_TOKEN),
        (VECTOR_BODY, "é" + VECTOR_SIGNATURE, VECTOR_TOKEN),  # not ASCII
        (VECTOR_BODY, VECTOR_SIGNATURE, ""),  # no token configured: refuse everything
    ],
)
def test_wrong_or_missing_signatures_are_refused(body: bytes, signature: str | None, token: str) -> None:
    assert not verify_signature(body, signature, token)


# --- legacy -------------------------------------------------------------------------------------


def test_legacy_vector_parses() -> None:
    [notice] = parse_notifications(VECTOR_BODY, "application/json")
    assert notice.realm_id == "1185883450"
    assert (notice.entity, notice.entity_id, notice.operation) == ("Customer", "1", "Create")
    assert notice.occurred_at == datetime(2015, 10, 5, 21, 42, 19, tzinfo=UTC)
    assert notice.deleted_id is None
    assert notice.event_id == legacy_event_id("1185883450", "Customer", "1", "Create", notice.occurred_at)
    # Stable across retries (same bytes) and across offset spellings of the same instant.
    again = VECTOR_BODY.replace(b"14:42:19-0700", b"21:42:19.000Z")
    assert parse_notifications(again)[0].event_id == notice.event_id


def test_legacy_several_realms_and_merge() -> None:
    body = encode(
        {
            "eventNotifications": [
                {
                    "realmId": "111",
                    "dataChangeEvent": {
                        "entities": [
                            {"name": "Customer", "id": "5", "operation": "Merge", "deletedId": "27",
                             "lastUpdated": "2025-09-08T20:52:31.657Z"},
                            {"name": "Invoice", "id": "9", "operation": "Void",
                             "lastUpdated": "2025-09-08T13:52:31-07:00"},
                        ]
                    },
                },
                {"realmId": "222", "dataChangeEvent": {"entities": [
                    {"name": "Payment", "id": "3", "operation": "create",
                     "lastUpdated": "2025-09-08T20:52:31Z"}
                ]}},
            ]
        }
    )  # fmt: skip
    merge, void, payment = parse_notifications(body)
    assert (merge.realm_id, merge.operation, merge.entity_id, merge.deleted_id) == ("111", "Merge", "5", "27")
    assert (void.entity, void.operation) == ("Invoice", "Void")
    assert (payment.realm_id, payment.entity, payment.operation) == ("222", "Payment", "Create")
    assert len({merge.event_id, void.event_id, payment.event_id}) == 3


# --- CloudEvents --------------------------------------------------------------------------------


def test_cloudevents_several_realms_merge_and_spelling() -> None:
    body = encode(
        [
            cloudevent("111", "customer", "created", "1", "e-1"),
            cloudevent("222", "customer", "merged", "5", "e-2", data={"deletedid": "27"}),
            cloudevent("111", "creditmemo", "voided", "8", "e-3"),
            cloudevent("333", "invoice", "emailed", "9", "e-4"),
            cloudevent("111", "payment", "deleted", "4", "e-5"),
        ]
    )
    notices = parse_notifications(body, "application/cloudevents+json")
    assert [(n.realm_id, n.entity, n.operation, n.entity_id, n.event_id) for n in notices] == [
        ("111", "Customer", "Create", "1", "e-1"),
        ("222", "Customer", "Merge", "5", "e-2"),
        ("111", "CreditMemo", "Void", "8", "e-3"),
        ("333", "Invoice", "Emailed", "9", "e-4"),
        ("111", "Payment", "Delete", "4", "e-5"),
    ]
    assert notices[1].deleted_id == "27"
    assert notices[0].occurred_at == datetime(2025, 9, 10, 21, 31, 25, 179851, tzinfo=UTC)


def test_single_structured_cloudevent_is_accepted() -> None:
    body = encode(cloudevent("111", "account", "updated", "7", "e-9"))
    [notice] = parse_notifications(body, "application/cloudevents+json; charset=utf-8")
    assert (notice.entity, notice.operation) == ("Account", "Update")


def test_empty_cloudevents_batch_is_nothing() -> None:
    assert parse_notifications(b"[]") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-10-05T14:42:19-0700", datetime(2015, 10, 5, 21, 42, 19, tzinfo=UTC)),
        ("2015-10-05T14:42:19-07:00", datetime(2015, 10, 5, 21, 42, 19, tzinfo=UTC)),
        ("2025-09-08T20:52:31.657Z", datetime(2025, 9, 8, 20, 52, 31, 657000, tzinfo=UTC)),
        ("2025-09-10T21:31:25.179851517Z", datetime(2025, 9, 10, 21, 31, 25, 179851, tzinfo=UTC)),
        ("2025-09-10T21:31:25+0530", datetime(2025, 9, 10, 16, 1, 25, tzinfo=UTC)),
    ],
)
def test_timestamp_variants(value: str, expected: datetime) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("value", [None, "", "yesterday", "2025-09-10T21:31:25", 12])
def test_bad_timestamps(value: object) -> None:
    with pytest.raises(UnparseableNotificationError):
        parse_timestamp(value)


# --- garbage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"{}",
        b'{"eventNotifications": "x"}',
        b"[1, 2]",
        b'[{"id": "no specversion"}]',
        b"null",
        b'"text"',
    ],
)
def test_garbage_is_unparseable(body: bytes) -> None:
    with pytest.raises(UnparseableNotificationError):
        parse_notifications(body)


def test_bad_elements_are_problems_while_good_ones_flow() -> None:
    body = encode(
        [
            cloudevent("111", "customer", "created", "1", "e-1"),
            cloudevent("111", "customer", "exploded", "2", "e-2"),  # unknown verb
            {**cloudevent("111", "customer", "created", "3", "e-3"), "time": "soon"},
            {**cloudevent("111", "customer", "created", "4", "e-4"), "intuitaccountid": None},
        ]
    )
    notices, problems = read_notifications(body)
    assert [n.event_id for n in notices] == ["e-1"]
    assert len(problems) == 3
    with pytest.raises(UnparseableNotificationError):
        parse_notifications(body)


def test_queue_message_is_the_worker_contract() -> None:
    notice = ChangeNotice(
        realm_id="111",
        entity="Customer",
        entity_id="5",
        operation="Merge",
        occurred_at=datetime(2025, 9, 8, 13, 52, 31, tzinfo=timezone(timedelta(hours=-7))),
        event_id="e-2",
        deleted_id="27",
    )
    change = QueuedChange("firm-1", notice)
    assert json.loads(change.body) == {
        "tenant_id": "firm-1",
        "realm_id": "111",
        "entity": "Customer",
        "entity_id": "5",
        "operation": "Merge",
        "occurred_at": "2025-09-08T20:52:31+00:00",
        "deleted_id": "27",
        "event_id": "e-2",
        "source": "webhook",
    }
    assert change.deduplication_id == "e-2"
    odd = QueuedChange("firm-1", ChangeNotice("1", "Customer", "1", "Create", NOW, "x" * 200))
    assert len(odd.deduplication_id) == 64


# --- the intake, with fakes ---------------------------------------------------------------------


class FakeStore:
    """The runtime table's realm directory and event ledger, counting calls like DynamoDB would."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners
        self.recorded: dict[str, datetime] = {}
        self.look_ups: list[tuple[list[str], list[str]]] = []
        self.records: list[list[str]] = []
        self.fail_lookups = False
        self.fail_records = False
        self.before_answer: Callable[[], None] | None = None  # runs between reading and answering

    def look_up(self, realm_ids: Collection[str], event_ids: Collection[str]) -> DeliveryLookup:
        self.look_ups.append((list(realm_ids), list(event_ids)))
        if self.fail_lookups:
            raise IntakeStoreBusyError("BatchGetItem: 3 keys still unprocessed")
        known = DeliveryLookup(
            owners={r: self.owners[r] for r in realm_ids if r in self.owners},
            seen=frozenset(e for e in event_ids if e in self.recorded),
        )
        if self.before_answer is not None:
            hook, self.before_answer = self.before_answer, None
            hook()
        return known

    def record(self, event_ids: Sequence[str], now: datetime) -> None:
        self.records.append(list(event_ids))
        if self.fail_records:
            raise IntakeStoreError("BatchWriteItem failed: InternalServerError")
        self.recorded.update(dict.fromkeys(event_ids, now))


class FakeQueue:
    """An SQS FIFO queue: a deduplication id it already holds is accepted and dropped."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.batches: list[list[QueuedChange]] = []
        self.refuse = refuse or set()
        self.held: dict[str, QueuedChange] = {}

    def send(self, messages: Sequence[QueuedChange]) -> list[str]:
        self.batches.append(list(messages))
        for m in messages:
            if m.notice.event_id not in self.refuse:
                self.held.setdefault(m.deduplication_id, m)
        return [m.notice.event_id for m in messages if m.notice.event_id in self.refuse]

    @property
    def sent(self) -> list[QueuedChange]:
        return [m for batch in self.batches for m in batch if m.notice.event_id not in self.refuse]


class FakeKept:
    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, list[str]]] = []

    def keep(self, raw: bytes, content_type: str | None, problems: Sequence[str], now: datetime) -> str:
        self.bodies.append((raw, list(problems)))
        return f"kept-{len(self.bodies)}"


class Harness:
    def __init__(self, owners: dict[str, str], refuse: set[str] | None = None) -> None:
        self.store = FakeStore(owners)
        self.queue = FakeQueue(refuse)
        self.kept = FakeKept()
        self.intake = NotificationIntake(
            verifier_token=TOKEN,
            store=self.store,
            queue=self.queue,
            unparseable=self.kept,
            now=lambda: NOW,
        )

    def deliver(self, body: bytes, content_type: str = "application/json") -> Any:
        headers = {"Intuit-Signature": expected_signature(body, TOKEN), "Content-Type": content_type}
        return self.intake.receive(body, headers)


def test_intake_routes_each_event_by_realm_and_batches_by_ten() -> None:
    # Given 23 events over three realms, one of which no tenant owns
    events = [
        cloudevent(("111", "222", "999")[i % 3], "customer", "updated", str(i), f"e-{i}") for i in range(23)
    ]
    h = Harness({"111": "firm-a", "222": "firm-b"})
    # When they arrive in one POST
    result = h.deliver(encode(events), "application/cloudevents+json")
    # Then each known realm's events go to its tenant, ten per SendMessageBatch
    assert result.signature_ok
    assert (result.received, result.enqueued, result.unknown_realm, result.duplicates) == (23, 16, 7, 0)
    assert [len(b) for b in h.queue.batches] == [10, 6]
    assert {(m.tenant_id, m.notice.realm_id) for m in h.queue.sent} == {("firm-a", "111"), ("firm-b", "222")}
    # one look-up for the whole delivery: every realm once, every event id once
    assert [(sorted(realms), len(ids)) for realms, ids in h.store.look_ups] == [(["111", "222", "999"], 23)]
    # one record of what SQS accepted, the unknown realm's events not among them
    assert [sorted(ids) for ids in h.store.records] == [sorted(f"e-{i}" for i in range(23) if i % 3 != 2)]


def test_intake_refuses_a_bad_signature_before_parsing() -> None:
    h = Harness({"111": "firm-a"})
    body = encode([cloudevent("111", "customer", "created", "1", "e-1")])
    result = h.intake.receive(body, {"intuit-signature": expected_signature(body, "forged")})
    assert not result.signature_ok
    assert h.queue.batches == []
    assert h.store.look_ups == []
    assert h.kept.bodies == []
    assert not h.intake.receive(b"garbage", {}).signature_ok
    assert h.kept.bodies == []


def test_intake_processes_a_repeated_delivery_once() -> None:
    h = Harness({"111": "firm-a"})
    body = encode(
        [
            cloudevent("111", "customer", "created", "1", "e-1"),
            cloudevent("111", "customer", "created", "1", "e-1"),
        ]
    )
    first = h.deliver(body)
    second = h.deliver(body)
    assert (first.enqueued, first.duplicates) == (1, 1)
    assert (second.enqueued, second.duplicates) == (0, 2)
    assert len(h.queue.sent) == 1
    # the id is looked up once per delivery, though the body names it twice
    assert [ids for _realms, ids in h.store.look_ups] == [["e-1"], ["e-1"]]
    assert h.store.records == [["e-1"]]  # the second delivery writes nothing


def test_intake_keeps_an_unparseable_signed_body_and_enqueues_the_readable_part() -> None:
    h = Harness({"111": "firm-a"})
    result = h.deliver(b"<xml/>")
    assert result.signature_ok
    assert (result.kept_as, result.unparseable) == ("kept-1", 1)
    assert h.store.look_ups == []  # nothing readable: the body is kept, nothing looked up
    body = encode([cloudevent("111", "customer", "created", "1", "e-1"), {"specversion": "1.0", "type": "?"}])
    partial = h.deliver(body)
    assert (partial.enqueued, partial.unparseable, partial.kept_as) == (1, 1, "kept-2")
    assert h.kept.bodies[1][0] == body


def test_intake_records_only_what_the_queue_accepted() -> None:
    h = Harness({"111": "firm-a"}, refuse={"e-2"})
    body = encode([cloudevent("111", "customer", "created", str(i), f"e-{i}") for i in range(1, 4)])
    with pytest.raises(NotificationQueueError):
        h.deliver(body)
    assert set(h.store.recorded) == {"e-1", "e-3"}  # e-2 comes back with the retry
    h.queue.refuse.clear()
    retry = h.deliver(body)
    assert (retry.enqueued, retry.duplicates) == (1, 2)
    assert [m.notice.event_id for m in h.queue.batches[-1]] == ["e-2"]
    assert set(h.store.recorded) == {"e-1", "e-2", "e-3"}


def test_two_copies_of_a_delivery_racing_are_both_enqueued_and_the_queue_keeps_one() -> None:
    # Given a delivery whose look-up answers "new" while Intuit's retry of it is taken in meanwhile
    h = Harness({"111": "firm-a"})
    body = encode([cloudevent("111", "customer", "created", str(i), f"e-{i}") for i in range(1, 3)])
    retried: list[Any] = []
    h.store.before_answer = lambda: retried.append(h.deliver(body))
    # When the first copy goes on with what it read
    first = h.deliver(body)
    # Then both enqueued both changes (the ledger filters, it does not claim) ...
    assert (first.enqueued, retried[0].enqueued) == (2, 2)
    assert len(h.queue.sent) == 4
    # ... and the FIFO queue's deduplication id (the event id) kept one message per change
    assert sorted(h.queue.held) == ["e-1", "e-2"]
    # a replay after both were recorded is filtered before the queue
    assert h.deliver(body).duplicates == 2
    assert len(h.queue.sent) == 4


def test_intake_with_nothing_to_route_reads_and_writes_nothing() -> None:
    h = Harness({"111": "firm-a"})
    assert h.deliver(b"[]").received == 0
    unknown = h.deliver(encode([cloudevent("999", "customer", "created", "1", "e-1")]))
    assert (unknown.unknown_realm, unknown.enqueued) == (1, 0)
    assert len(h.store.look_ups) == 1  # the empty batch needed no look-up
    assert h.store.records == []
    assert h.queue.batches == []


def test_a_failed_look_up_enqueues_nothing_and_is_raised() -> None:
    h = Harness({"111": "firm-a"})
    h.store.fail_lookups = True
    with pytest.raises(IntakeStoreError):
        h.deliver(encode([cloudevent("111", "customer", "created", "1", "e-1")]))
    assert h.queue.batches == []
    assert h.store.records == []


def test_a_failed_record_keeps_the_answer_and_counts_it() -> None:
    # The changes are queued, so the delivery is taken in; only the filtering of a replay is lost.
    h = Harness({"111": "firm-a"})
    h.store.fail_records = True
    result = h.deliver(encode([cloudevent("111", "customer", "created", "1", "e-1")]))
    assert (result.enqueued, result.unrecorded) == (1, 1)
    assert [m.notice.event_id for m in h.queue.sent] == ["e-1"]
