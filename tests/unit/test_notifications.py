"""Webhook notifications: signature, both payload formats, and the intake with fakes at its ports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.pull.notifications import (
    ChangeNotice,
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


class FakeRealms:
    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners
        self.lookups: list[str] = []

    def owner_of(self, realm_id: str) -> str | None:
        self.lookups.append(realm_id)
        return self.owners.get(realm_id)


class FakeQueue:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.batches: list[list[QueuedChange]] = []
        self.refuse = refuse or set()

    def send(self, messages: Sequence[QueuedChange]) -> list[str]:
        self.batches.append(list(messages))
        return [m.notice.event_id for m in messages if m.notice.event_id in self.refuse]

    @property
    def sent(self) -> list[QueuedChange]:
        return [m for batch in self.batches for m in batch if m.notice.event_id not in self.refuse]


class FakeLedger:
    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    def claim(self, event_id: str, now: datetime) -> bool:
        if event_id in self.state:
            return False
        self.state[event_id] = "claimed"
        return True

    def confirm(self, event_ids: Sequence[str], now: datetime) -> None:
        self.state.update(dict.fromkeys(event_ids, "enqueued"))

    def release(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            del self.state[event_id]


class FakeKept:
    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, list[str]]] = []

    def keep(self, raw: bytes, content_type: str | None, problems: Sequence[str], now: datetime) -> str:
        self.bodies.append((raw, list(problems)))
        return f"kept-{len(self.bodies)}"


class Harness:
    def __init__(self, owners: dict[str, str], refuse: set[str] | None = None) -> None:
        self.realms = FakeRealms(owners)
        self.queue = FakeQueue(refuse)
        self.ledger = FakeLedger()
        self.kept = FakeKept()
        self.intake = NotificationIntake(
            verifier_token=TOKEN,
            realms=self.realms,
            queue=self.queue,
            ledger=self.ledger,
            unparseable=self.kept,
            now=lambda: NOW,
            workers=4,
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
    assert sorted(h.realms.lookups) == ["111", "222", "999"]  # one lookup per realm, not per event
    assert set(h.ledger.state.values()) == {"enqueued"}


def test_intake_refuses_a_bad_signature_before_parsing() -> None:
    h = Harness({"111": "firm-a"})
    body = encode([cloudevent("111", "customer", "created", "1", "e-1")])
    result = h.intake.receive(body, {"intuit-signature": expected_signature(body, "forged")})
    assert not result.signature_ok
    assert h.queue.batches == []
    assert h.realms.lookups == []
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


def test_intake_keeps_an_unparseable_signed_body_and_enqueues_the_readable_part() -> None:
    h = Harness({"111": "firm-a"})
    result = h.deliver(b"<xml/>")
    assert result.signature_ok
    assert (result.kept_as, result.unparseable) == ("kept-1", 1)
    body = encode([cloudevent("111", "customer", "created", "1", "e-1"), {"specversion": "1.0", "type": "?"}])
    partial = h.deliver(body)
    assert (partial.enqueued, partial.unparseable, partial.kept_as) == (1, 1, "kept-2")
    assert h.kept.bodies[1][0] == body


def test_intake_releases_claims_the_queue_refused() -> None:
    h = Harness({"111": "firm-a"}, refuse={"e-2"})
    body = encode([cloudevent("111", "customer", "created", str(i), f"e-{i}") for i in range(1, 4)])
    with pytest.raises(NotificationQueueError):
        h.deliver(body)
    assert h.ledger.state == {"e-1": "enqueued", "e-3": "enqueued"}  # e-2 comes back with the retry
    h.queue.refuse.clear()
    retry = h.deliver(body)
    assert (retry.enqueued, retry.duplicates) == (1, 2)
