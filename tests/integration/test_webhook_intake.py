"""The webhook intake's cost and guarantees, in process: the real handler on API Gateway v2 events,
DynamoDB and the SQS FIFO changes queue in moto, every AWS call counted on boto3's event system.

The bound (docs/pull.md, "The receiver"): a delivery of n distinct events from r realms costs
⌈(r + n) / 100⌉ BatchGetItem (one for any delivery with r + n ≤ 100), ⌈a / 10⌉ SendMessageBatch and
⌈a / 25⌉ BatchWriteItem, where a is the number of new changes SQS accepted; nothing per event.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from infra import tables
from shared import wiring
from shared.connections.store import ConnectionStore
from shared.kernel import constants
from shared.pull import notifications
from shared.pull.notifications import (
    EVENT_PREFIX,
    IntakeStoreBusyError,
    RuntimeIntakeStore,
    event_key,
    expected_signature,
)
from tests.integration.connections_fixtures import HttpAnswer, LambdaContext, http_event
from tests.moto_env import counting_calls, mocked_aws

TOKEN = "intake-test-verifier"
NOW = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)


def cloudevent(realm: str, entity_id: str, event_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "intuit.test",
        "type": "qbo.customer.updated.v1",
        "datacontenttype": "application/json",
        "time": "2026-11-22T20:00:00.123456789Z",
        "intuitentityid": entity_id,
        "intuitaccountid": realm,
        "data": {},
    }


def body_of(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()


@dataclass
class World:
    dynamodb: Any
    sqs: Any
    queue_url: str
    dynamodb_calls: Counter[str] = field(default_factory=Counter)
    sqs_calls: Counter[str] = field(default_factory=Counter)
    refuse: set[str] = field(default_factory=set)  # event ids SQS answers with a Failed entry
    after_lookup: Callable[[], object] | None = None  # runs when a BatchGetItem answer arrives

    @property
    def runtime(self) -> Any:
        return self.dynamodb.Table(tables.RUNTIME.default_name)

    def counted_runtime(self) -> Any:
        """The runtime table through a new client, whose calls the counters see."""
        return boto3.resource("dynamodb").Table(tables.RUNTIME.default_name)

    def own(self, realm: str, tenant: str) -> None:
        ConnectionStore(self.dynamodb.Table(tables.CONNECTIONS.default_name), self.runtime).claim_realm(
            realm, tenant
        )

    def deliver(self, raw: bytes, *, signature: str | None = None) -> HttpAnswer:
        """One POST as API Gateway (HTTP API, payload v2) hands it to the function."""
        from functions.webhooks import handler

        event = http_event("POST", "/webhooks/qbo")
        event["headers"] = {
            "content-type": "application/cloudevents+json",
            "intuit-signature": signature if signature is not None else expected_signature(raw, TOKEN),
        }
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode("ascii"), True
        return HttpAnswer.of(handler.lambda_handler(event, LambdaContext()))

    def calls(self) -> tuple[dict[str, int], dict[str, int]]:
        """The DynamoDB and SQS calls since the last look, by operation."""
        made = dict(self.dynamodb_calls), dict(self.sqs_calls)
        self.dynamodb_calls.clear()
        self.sqs_calls.clear()
        return made

    def drain(self) -> list[tuple[str, str]]:
        """Every message in the changes queue as (group id, raw body), removed as read."""
        got: list[tuple[str, str]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return got
            for message in messages:
                got.append((message["Attributes"]["MessageGroupId"], message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def drained_event_ids(self) -> list[str]:
        return sorted(json.loads(body)["event_id"] for _group, body in self.drain())

    def ledger(self) -> dict[str, dict[str, Any]]:
        items = self.runtime.scan()["Items"]
        return {
            str(item[constants.PK])[len(EVENT_PREFIX) :]: item
            for item in items
            if str(item[constants.PK]).startswith(EVENT_PREFIX)
        }

    # botocore hooks, on the clients the handler builds (from boto3's default session)

    def withhold_refused(self, params: dict[str, Any], **_: Any) -> None:
        entries = params.get("Entries", [])
        self._held = [e for e in entries if json.loads(e["MessageBody"])["event_id"] in self.refuse]
        params["Entries"] = [e for e in entries if e not in self._held]

    def report_refused(self, parsed: dict[str, Any], **_: Any) -> None:
        held, self._held = getattr(self, "_held", []), []
        parsed.setdefault("Failed", []).extend(
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "later"} for e in held
        )

    def looked_up(self, **_: Any) -> None:
        if self.after_lookup is not None:
            self.after_lookup()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mocked_aws():
        monkeypatch.setenv(constants.VERIFIER_TOKEN_ENV, TOKEN)
        monkeypatch.delenv(constants.INTUIT_SECRET_ARN_ENV, raising=False)
        monkeypatch.delenv(constants.WEBHOOK_SECRET_ARN_ENV, raising=False)
        dynamodb = boto3.resource("dynamodb")
        for spec in (tables.CONNECTIONS, tables.RUNTIME):
            tables.create_table(dynamodb.meta.client, spec)
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(
            QueueName="qbo-link-changes.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"}
        )["QueueUrl"]
        monkeypatch.setenv(constants.CHANGES_QUEUE_URL_ENV, queue_url)
        wiring.reset()  # the handler's clients are built after the hooks below are registered
        session = boto3.DEFAULT_SESSION
        assert session is not None
        world = World(dynamodb, sqs, queue_url)
        hooks = (
            ("provide-client-params.sqs.SendMessageBatch", world.withhold_refused),
            ("after-call.sqs.SendMessageBatch", world.report_refused),
            ("after-call.dynamodb.BatchGetItem", world.looked_up),
        )
        for name, hook in hooks:
            session.events.register(name, hook)
        try:
            with (
                counting_calls(session.events) as world.dynamodb_calls,
                counting_calls(session.events, "sqs") as world.sqs_calls,
            ):
                yield world
        finally:
            for name, hook in hooks:
                session.events.unregister(name, hook)
            wiring.reset()


# --- the bound ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "realms"),
    [(1, 1), (10, 3), (99, 1), (100, 3), (100, 100)],
    ids=["1-event", "10-events-3-realms", "99-events-1-realm", "100-events-3-realms", "100-realms"],
)
def test_a_delivery_costs_a_constant_number_of_batched_calls(world: World, events: int, realms: int) -> None:
    # Given realms all owned by two tenants except the last one (when there are several)
    names = [f"46208{r:05d}" for r in range(realms)]
    owned = names if realms == 1 else names[:-1]
    for r, realm in enumerate(owned):
        world.own(realm, f"firm-{r % 2}")
    delivery = [cloudevent(names[i % realms], str(i), f"evt-{i:03d}") for i in range(events)]
    accepted = sum(1 for event in delivery if event["intuitaccountid"] in owned)
    # When Intuit delivers them in one POST
    answer = world.deliver(body_of(delivery))
    # Then it is answered with batched calls only, none per event
    assert answer.status == 200
    dynamodb, sqs = world.calls()
    assert dynamodb == {
        "BatchGetItem": math.ceil((realms + events) / 100),
        "BatchWriteItem": math.ceil(accepted / 25),
    }
    assert sqs == {"SendMessageBatch": math.ceil(accepted / 10)}
    assert len(world.drain()) == accepted
    assert len(world.ledger()) == accepted
    # And the same delivery again reads once and writes nothing
    assert world.deliver(body_of(delivery)).status == 200
    assert world.calls() == ({"BatchGetItem": math.ceil((realms + events) / 100)}, {})
    assert world.drain() == []


def test_the_queued_body_is_the_change_workers_contract_byte_for_byte(world: World) -> None:
    world.own("4620816365", "firm-1")
    event = cloudevent("4620816365", "58", "0b7c6a5e-2f7e-4c8e-9d0e-6c1f1e2a3b4c")
    assert world.deliver(body_of([event])).status == 200
    assert world.drain() == [
        (
            "firm-1",
            '{"tenant_id":"firm-1","realm_id":"4620816365","entity":"Customer","entity_id":"58",'
            '"operation":"Update","occurred_at":"2026-11-22T20:00:00.123456+00:00","deleted_id":null,'
            '"event_id":"0b7c6a5e-2f7e-4c8e-9d0e-6c1f1e2a3b4c","source":"webhook"}',
        )
    ]


# --- duplicates, unknown realms, forged and unreadable bodies ----------------------------------


def test_duplicates_within_a_body_and_across_deliveries_are_enqueued_once(world: World) -> None:
    world.own("111", "firm-1")
    first = world.deliver(body_of([cloudevent("111", "1", "e-1"), cloudevent("111", "2", "e-2"),
                                   cloudevent("111", "1", "e-1")]))  # fmt: skip
    assert first.status == 200
    assert world.drained_event_ids() == ["e-1", "e-2"]
    assert world.calls() == ({"BatchGetItem": 1, "BatchWriteItem": 1}, {"SendMessageBatch": 1})
    # A later delivery repeating e-2 enqueues only what is new
    assert (
        world.deliver(body_of([cloudevent("111", "2", "e-2"), cloudevent("111", "3", "e-3")])).status == 200
    )
    assert world.drained_event_ids() == ["e-3"]
    ledger = world.ledger()
    assert sorted(ledger) == ["e-1", "e-2", "e-3"]
    assert {item["state"] for item in ledger.values()} == {"enqueued"}
    for item in ledger.values():  # kept for a week (DynamoDB's TTL removes it)
        assert int(item[constants.TTL_ATTRIBUTE]) - int(item["enqueued_at"]) == 7 * 86400


def test_unknown_realms_are_acknowledged_with_one_read(world: World) -> None:
    answer = world.deliver(body_of([cloudevent("999", str(i), f"e-{i}") for i in range(5)]))
    assert answer.status == 200
    assert world.calls() == ({"BatchGetItem": 1}, {})
    assert world.drain() == []
    assert world.ledger() == {}


def test_a_forged_delivery_is_refused_before_any_call(world: World) -> None:
    world.own("111", "firm-1")
    raw = body_of([cloudevent("111", "1", "e-1")])
    assert world.deliver(raw, signature=expected_signature(raw, "somebody-else")).status == 403
    assert world.deliver(raw, signature="").status == 403
    assert world.calls() == ({}, {})
    assert world.drain() == []


def test_an_unreadable_signed_body_is_kept_and_acknowledged_as_before(world: World) -> None:
    world.own("111", "firm-1")
    assert world.deliver(b"<not json/>").status == 200
    assert world.calls() == ({"PutItem": 1}, {})  # the body kept, nothing else
    # A body with one readable event and one broken one: the body kept, the readable event queued
    raw = body_of([cloudevent("111", "1", "e-1"), {"specversion": "1.0", "type": "nonsense"}])
    assert world.deliver(raw).status == 200
    assert world.calls() == (
        {"PutItem": 1, "BatchGetItem": 1, "BatchWriteItem": 1},
        {"SendMessageBatch": 1},
    )
    assert world.drained_event_ids() == ["e-1"]
    kept = [i for i in world.runtime.scan()["Items"] if str(i[constants.PK]).startswith("WEBHOOKBODY#")]
    assert sorted(bytes(i["body"].value) for i in kept) == sorted([b"<not json/>", raw])


# --- failures -------------------------------------------------------------------------------------


def test_changes_sqs_refused_are_not_recorded_and_the_retry_enqueues_them(world: World) -> None:
    # Given SQS refusing two of twelve new changes
    world.own("111", "firm-1")
    raw = body_of([cloudevent("111", str(i), f"e-{i:02d}") for i in range(12)])
    world.refuse = {"e-03", "e-11"}
    # When Intuit delivers them
    answer = world.deliver(raw)
    # Then the delivery is answered 500, so Intuit retries it, and only the accepted are recorded
    assert (answer.status, answer.json()) == (500, {"error": "retry"})
    accepted = [f"e-{i:02d}" for i in range(12) if i not in (3, 11)]
    assert world.drained_event_ids() == accepted
    assert sorted(world.ledger()) == accepted
    # When Intuit retries and SQS takes everything
    world.refuse = set()
    world.calls()
    assert world.deliver(raw).status == 200
    # Then exactly the two refused changes are enqueued and recorded
    assert world.drained_event_ids() == ["e-03", "e-11"]
    assert len(world.ledger()) == 12
    assert world.calls() == ({"BatchGetItem": 1, "BatchWriteItem": 1}, {"SendMessageBatch": 1})


def test_a_runtime_table_failure_is_answered_500_and_enqueues_nothing(world: World) -> None:
    world.own("111", "firm-1")
    world.runtime.delete()  # every read fails (ResourceNotFoundException)
    answer = world.deliver(body_of([cloudevent("111", "1", "e-1")]))
    assert (answer.status, answer.json()) == (500, {"error": "retry"})
    assert world.drain() == []


# --- concurrency ----------------------------------------------------------------------------------


def test_two_copies_racing_both_enqueue_and_the_fifo_queue_keeps_one(world: World) -> None:
    # Given Intuit's retry of a delivery arriving while the first copy is still being answered:
    # both read the ledger before either recorded anything
    world.own("111", "firm-1")
    raw = body_of([cloudevent("111", str(i), f"e-{i}") for i in range(3)])
    headers = {"content-type": "application/json", "intuit-signature": expected_signature(raw, TOKEN)}
    both_read = threading.Barrier(2, timeout=10)
    world.after_lookup = both_read.wait
    intake = wiring.notification_intake()
    results: list[Any] = []

    def copy() -> None:
        results.append(intake.receive(raw, headers))

    threads = [threading.Thread(target=copy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    # Then both enqueued all three (the ledger filters, it does not claim) ...
    assert [r.enqueued for r in results] == [3, 3]
    assert world.sqs_calls["SendMessageBatch"] == 2
    # ... and the queue's deduplication id (the event id) kept one message per change
    assert world.drained_event_ids() == ["e-0", "e-1", "e-2"]
    assert sorted(world.ledger()) == ["e-0", "e-1", "e-2"]


# --- the runtime-table adapter -------------------------------------------------------------------


class Stingy:
    """DynamoDB under throttling: the first ``times`` answers serve only ``serve`` keys or items and
    hand the rest back as unprocessed (the real client does the work)."""

    def __init__(self, client: Any, name: str, *, serve: int, times: int) -> None:
        self._client, self._name, self._serve, self._times = client, name, serve, times
        self.calls: Counter[str] = Counter()

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls["BatchGetItem"] += 1
        request = RequestItems[self._name]
        keys, rest = request["Keys"], []
        if self._times > 0:
            self._times -= 1
            keys, rest = keys[: self._serve], keys[self._serve :]
        answer: dict[str, Any] = self._client.batch_get_item(
            RequestItems={self._name: {**request, "Keys": keys}}
        )
        answer["UnprocessedKeys"] = {self._name: {**request, "Keys": rest}} if rest else {}
        return answer

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls["BatchWriteItem"] += 1
        puts, rest = RequestItems[self._name], []
        if self._times > 0:
            self._times -= 1
            puts, rest = puts[: self._serve], puts[self._serve :]
        answer: dict[str, Any] = self._client.batch_write_item(RequestItems={self._name: puts})
        answer["UnprocessedItems"] = {self._name: rest} if rest else {}
        return answer


def stingy_store(world: World, *, serve: int, times: int) -> tuple[RuntimeIntakeStore, Stingy, list[float]]:
    client = Stingy(world.runtime.meta.client, world.runtime.name, serve=serve, times=times)
    table = SimpleNamespace(name=world.runtime.name, meta=SimpleNamespace(client=client))
    slept: list[float] = []
    return RuntimeIntakeStore(table, sleep=slept.append), client, slept


def test_unprocessed_keys_and_items_are_asked_again(world: World) -> None:
    world.own("111", "firm-1")
    ids = [f"e-{i:02d}" for i in range(30)]
    # 20 puts in one BatchWriteItem; DynamoDB takes 10 of them, then the other 10
    store, client, slept = stingy_store(world, serve=10, times=1)
    store.record(ids[:20], NOW)
    assert (client.calls, slept) == ({"BatchWriteItem": 2}, [0.025])
    # 32 keys in one BatchGetItem; DynamoDB serves 10, 10 more, then the last 12
    store, client, slept = stingy_store(world, serve=10, times=2)
    known = store.look_up(["111", "222"], ids)
    assert (client.calls, slept) == ({"BatchGetItem": 3}, [0.025, 0.05])
    assert known.owners == {"111": "firm-1"}
    assert known.seen == frozenset(ids[:20])


def test_keys_still_unprocessed_after_every_retry_are_an_error(world: World) -> None:
    store, client, slept = stingy_store(world, serve=1, times=99)
    with pytest.raises(IntakeStoreBusyError, match="BatchGetItem: 2 keys still unprocessed"):
        store.look_up(["111"], [f"e-{i}" for i in range(5)])  # 6 keys, one served per attempt
    assert client.calls == {"BatchGetItem": notifications.BATCH_ATTEMPTS}
    assert slept == [0.025, 0.05, 0.1]
    with pytest.raises(IntakeStoreBusyError, match="BatchWriteItem: 6 items still unprocessed"):
        store.record([f"e-{i}" for i in range(10)], NOW)


def test_more_than_100_keys_are_read_in_as_many_calls_as_needed(world: World) -> None:
    world.own("111", "firm-1")
    store = RuntimeIntakeStore(world.counted_runtime())
    ids = [f"e-{i:03d}" for i in range(150)]
    store.record(ids[::2], NOW)
    world.calls()
    known = store.look_up(["111", "222"], ids)
    assert world.calls() == ({"BatchGetItem": 2}, {})
    assert (known.owners, known.seen) == ({"111": "firm-1"}, frozenset(ids[::2]))


def test_a_claim_left_by_the_earlier_intake_does_not_count_as_seen(world: World) -> None:
    # The claim-based intake wrote ``state = claimed`` before sending; a crash left it there.
    world.runtime.put_item(Item={**event_key("e-1"), "state": "claimed", "claimed_at": 1})
    world.runtime.put_item(Item={**event_key("e-2"), "state": "enqueued", "claimed_at": 1})
    known = RuntimeIntakeStore(world.runtime).look_up([], ["e-1", "e-2"])
    assert known.seen == frozenset({"e-2"})


def test_ids_too_long_for_a_key_still_work(world: World) -> None:
    store = RuntimeIntakeStore(world.runtime)
    long_id = "x" * 3000  # an event id over DynamoDB's 2,048-byte key limit: kept as its hash
    store.record([long_id], NOW)
    known = store.look_up(["9" * 3000], [long_id, "short"])  # nobody can own such a realm
    assert (known.owners, known.seen) == ({}, frozenset({long_id}))
    [(key, item)] = world.ledger().items()
    assert key.startswith("sha256:")
    assert int(item[constants.TTL_ATTRIBUTE]) == int((NOW + timedelta(days=7)).timestamp())
