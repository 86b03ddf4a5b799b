"""The change worker and the sweep against moto (DynamoDB) and the QBO sandbox over real sockets:
changes made "in QBO's UI" (the sandbox control API) reach the app as events, with few metered reads."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import tables
from qbo_sandbox.server import SandboxServer
from shared import wiring
from shared.history.exchanges import ExchangeLog
from shared.kernel import constants
from shared.kernel.events import (
    CLIENT_CHANGED,
    CLIENT_DEACTIVATED,
    CLIENT_IMPORTED,
    CLIENT_MERGED_IN_QBO,
    EXCHANGE_FINISHED,
    INVOICE_CHANGED_IN_QBO,
    PAYMENT_RECEIVED,
    SITE_IMPORTED,
    OutboundEvent,
    RecordingPublisher,
)
from shared.kernel.settings import IntuitEnvironment, Settings
from shared.mapping.catalog import QboCache
from shared.mapping.links import LinkStore
from shared.pull import changes
from shared.pull.cursors import CursorStore
from tests.integration.connections_fixtures import (
    ALLOWED_PREFIXES,
    REDIRECT_URI,
    REGION,
    LambdaContext,
    World,
)
from tests.sqs_records import lambda_record, made_up_record

CHANGES_QUEUE = "qbo-link-changes.fifo"
TENANT = "firm-1"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}
LIMITS_OFF = {"requests_per_minute": 0, "requests_per_second": 0, "concurrent": 0, "batch_per_minute": 0}


class FlakyPublisher(RecordingPublisher):
    """Records events; refuses them while ``broken`` (EventBridge down)."""

    broken: bool = False

    def publish(self, event: OutboundEvent) -> None:
        if self.broken and event.detail_type != EXCHANGE_FINISHED:
            raise RuntimeError("EventBridge is down")
        super().publish(event)


class Pull:
    """The world plus the pull side: notices, the handlers, the sandbox's counters."""

    def __init__(self, world: World, realm: str) -> None:
        self.world = world
        self.realm = realm
        table = world.dynamodb.Table(world.settings.links_table)
        self.links = LinkStore(table, world.clock)
        self.cache = QboCache(table, world.clock)
        self.cursors = CursorStore(table, world.clock)
        self.history = ExchangeLog(world.dynamodb.Table(world.settings.runtime_table), world.clock)

    @property
    def events(self) -> FlakyPublisher:
        assert isinstance(self.world.events, FlakyPublisher)
        return self.world.events

    def published(self, detail_type: str) -> list[OutboundEvent]:
        return self.events.of_type(detail_type)

    def now(self) -> datetime:
        now: datetime = self.world.clock.now()
        return now

    # --- QBO's UI (not metered) ---

    def ui(self, entity: str, body: dict[str, Any], operation: str = "create") -> dict[str, Any]:
        path = f"/companies/{self.realm}/entities/{entity.lower()}?operation={operation}"
        result: dict[str, Any] = self.world.sandbox("POST", path, body)[entity]
        return result

    def stored(self, entity: str, qbo_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.world.sandbox(
            "GET", f"/companies/{self.realm}/entities/{entity.lower()}/{qbo_id}"
        )[entity]
        return result

    def metered_reads(self) -> int:
        return int(self.world.sandbox("GET", f"/counters?realm={self.realm}").get("metered_reads", 0))

    # --- the queue ---

    def notice(self, entity: str, entity_id: str, operation: str = "Create", **extra: Any) -> dict[str, Any]:
        return {
            "tenant_id": TENANT,
            "realm_id": self.realm,
            "entity": entity,
            "entity_id": entity_id,
            "operation": operation,
            "occurred_at": self.now().isoformat(),
            "deleted_id": None,
            "event_id": uuid.uuid4().hex,
            "source": "webhook",
            **extra,
        }

    def deliver(self, *bodies: dict[str, Any] | str) -> dict[str, Any]:
        """The changes handler, given a FIFO delivery of these bodies."""
        from functions.changes import handler

        records = [
            _record(body if isinstance(body, str) else json.dumps(body), n) for n, body in enumerate(bodies)
        ]
        result: dict[str, Any] = handler.lambda_handler({"Records": records}, LambdaContext())
        return result

    def schedule(self) -> dict[str, Any]:
        """The sweep schedule firing now: it only enqueues (one sweep request per tenant)."""
        from functions.sweep import handler

        event = {"source": "aws.events", "detail-type": "Scheduled Event", "time": self.now().isoformat()}
        result: dict[str, Any] = handler.lambda_handler(event, LambdaContext())
        return result

    def queued(self) -> list[dict[str, Any]]:
        """Receive everything on the changes queue (as SQS records); leaves it in flight."""
        sqs = boto3.client("sqs", region_name=REGION)
        url = os.environ[constants.CHANGES_QUEUE_URL_ENV]
        records: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            )
            messages = answer.get("Messages", [])
            if not messages:
                return records
            records += [lambda_record(m, CHANGES_QUEUE) for m in messages]

    def sweep(self) -> dict[str, Any]:
        """A whole scheduled sweep: the schedule fans out, the change worker runs each request.
        Every message is then deleted (a failed one would come back; the tests look at the run)."""
        from functions.changes import handler

        fanned = self.schedule()
        records = self.queued()
        failed: set[str] = set()
        if records:
            result = handler.lambda_handler({"Records": records}, LambdaContext())
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        sqs = boto3.client("sqs", region_name=REGION)
        url = os.environ[constants.CHANGES_QUEUE_URL_ENV]
        for record in records:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
        return {**fanned, "succeeded": len(records) - len(failed), "failed": len(failed)}


def _record(body: str, number: int) -> dict[str, Any]:
    return made_up_record(body, number, TENANT, CHANGES_QUEUE)


@pytest.fixture
def pull(sandbox_server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pull]:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        for spec in tables.TABLES:
            tables.create_table(dynamodb.meta.client, spec)
        queue_url = boto3.client("sqs", region_name=REGION).create_queue(
            QueueName="qbo-link-pull-test.fifo", Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        monkeypatch.setenv(constants.CHANGES_QUEUE_URL_ENV, queue_url)
        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key(Description="qbo-link tokens")["KeyMetadata"]["KeyId"]
        settings = Settings.model_validate(
            {
                "client_id": sandbox_server.sandbox.settings.client_id,
                "client_secret": sandbox_server.sandbox.settings.client_secret,
                "redirect_uri": REDIRECT_URI,
                "return_url_allowlist": ALLOWED_PREFIXES,
                "app_id": "qbo-link-test-app",
                "state_signing_key": "pull-test-state-signing-key",
                "intuit_environment": IntuitEnvironment.LOCAL,
                "local_sandbox_url": sandbox_server.url,
                "http_timeout_seconds": 10,
                "kms_key_id": key_id,
                "changes_queue_url": queue_url,
                # No pacing here: the tests drive deliveries one by one (the waits have their own tests).
                "pull_min_read_interval_seconds": 0,
                "pull_gather_seconds": 0,
            }
        )
        events = FlakyPublisher()
        wiring.reset()
        wiring.override(settings=settings, clock=sandbox_server.sandbox.clock, events=events)
        world = World(sandbox_server, settings, events, key_id, dynamodb, kms)
        try:
            world.sandbox("POST", "/limits", LIMITS_OFF)
            realm = world.connect(TENANT)
            yield Pull(world, realm)
        finally:
            wiring.reset()
            world.http.close()
    assert "AWS_ENDPOINT_URL" not in os.environ


def _qbo_invoice(pull: Pull, customer: str, amount: int = 100) -> dict[str, Any]:
    """An invoice as our push would have created it (through the API), linked with its SyncToken."""
    client = wiring.tenant_qbo_client(TENANT)
    line = {
        "DetailType": "SalesItemLineDetail",
        "Amount": amount,
        "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "TaxCodeRef": {"value": "NON"}},
    }
    invoice = client.create(
        "Invoice", {"CustomerRef": {"value": customer}, "Line": [line]}, idempotency_key=uuid.uuid4().hex
    )
    app_id = f"inv-{invoice['Id']}"
    pull.links.link(TENANT, "invoice", app_id, invoice["Id"], sync_token=invoice["SyncToken"], source="push")
    return invoice


# --- customers --------------------------------------------------------------------------------------


def test_customer_created_in_qbo_is_imported_with_one_read(pull: Pull) -> None:
    # Given a bookkeeper who creates a customer in QBO
    created = pull.ui(
        "Customer",
        {
            "DisplayName": "Harbor Kites",
            "PrimaryEmailAddr": {"Address": "a@hk.test"},
            "BillAddr": {"Line1": "12 Pier Rd", "City": "Portland", "PostalCode": "04101"},
        },
    )
    before = pull.metered_reads()

    # When its webhook notice reaches the worker
    result = pull.deliver(pull.notice("Customer", created["Id"]))

    # Then one metered read brought it, and the app hears "Client Imported"
    assert result == {"batchItemFailures": []}
    assert pull.metered_reads() - before == 1
    (event,) = pull.published(CLIENT_IMPORTED)
    assert event.tenant_id == TENANT
    assert event.detail["qbo_id"] == created["Id"]
    assert event.detail["display_name"] == "Harbor Kites"
    assert event.detail["email"] == "a@hk.test"
    assert event.detail["client_id"] is None
    assert (event.detail["origin"], event.detail["version"]) == ("pull", 1)
    assert event.detail["bill_address"] == {  # snake_case, every field present
        "line1": "12 Pier Rd",
        "line2": None,
        "city": "Portland",
        "country_sub_division_code": None,
        "postal_code": "04101",
        "country": None,
    }

    # And a replayed notice publishes the same event id again (consumers de-duplicate)
    pull.deliver(pull.notice("Customer", created["Id"]))
    assert {e.event_id for e in pull.published(CLIENT_IMPORTED)} == {event.event_id}


def test_our_own_write_coming_back_is_not_echoed(pull: Pull) -> None:
    # Given a linked client that we updated in QBO ourselves (the push), storing QBO's SyncToken
    stored = pull.stored("Customer", "2")
    pull.links.link(TENANT, "client", "cl-2", "2", sync_token=stored["SyncToken"], source="push")
    client = wiring.tenant_qbo_client(TENANT)
    body = {"Id": "2", "SyncToken": stored["SyncToken"], "Notes": "from the app"}
    written = client.update("Customer", body, idempotency_key="cl-2-v2")
    pull.links.record_sync(TENANT, "client", "cl-2", written["SyncToken"], "hash-v2", qbo_id="2")

    # When QBO's webhook for that write arrives
    pull.deliver(pull.notice("Customer", "2", "Update"))

    # Then nothing reaches the app, and the exchange says it saw an echo
    assert pull.published(CLIENT_CHANGED) == []
    latest = pull.history.latest(TENANT)
    assert latest is not None
    assert latest.ignored.get("echo") == 1

    # But an edit made in QBO afterwards is a change (a later second: QBO's LastUpdatedTime has whole
    # seconds, so an edit in the very second of our write looks like it until the next sweep)
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 5})
    pull.ui(
        "Customer", {"Id": "2", "SyncToken": written["SyncToken"], "sparse": True, "Notes": "ui"}, "update"
    )
    pull.deliver(pull.notice("Customer", "2", "Update"))
    (event,) = pull.published(CLIENT_CHANGED)
    assert event.detail["client_id"] == "cl-2"


def test_deactivation_and_sub_customer(pull: Pull) -> None:
    # Given a linked client with no balance and a linked parent
    stored = pull.stored("Customer", "2")
    pull.links.link(TENANT, "client", "cl-2", "2", sync_token=stored["SyncToken"])
    pull.links.link(TENANT, "client", "cl-7", "7")

    # When QBO deactivates one and adds a job under the other
    body = {"Id": "2", "SyncToken": stored["SyncToken"], "sparse": True, "Active": False}
    pull.ui("Customer", body, "update")
    job = pull.ui("Customer", {"DisplayName": "Freeman East Wing", "Job": True, "ParentRef": {"value": "7"}})
    pull.deliver(pull.notice("Customer", "2", "Update"), pull.notice("Customer", job["Id"]))

    # Then the app hears both
    (deactivated,) = pull.published(CLIENT_DEACTIVATED)
    assert deactivated.detail["client_id"] == "cl-2"
    assert deactivated.detail["active"] is False
    (site,) = pull.published(SITE_IMPORTED)
    assert site.detail["qbo_id"] == job["Id"]
    assert site.detail["parent_id"] == "cl-7"
    assert pull.published(CLIENT_IMPORTED) == []


def test_merge_relinks_the_app_client_to_the_survivor(pull: Pull) -> None:
    pull.links.link(TENANT, "client", "cl-3", "3")

    pull.deliver(pull.notice("Customer", "4", "Merge", deleted_id="3"))

    link = pull.links.get_by_app(TENANT, "client", "cl-3")
    assert link is not None
    assert link.qbo_id == "4"
    assert pull.links.get_by_qbo(TENANT, "client", "3") is None
    (event,) = pull.published(CLIENT_MERGED_IN_QBO)
    assert event.detail == {
        "version": 1,
        "kind": "client",
        "app_id": "cl-3",
        "merged_qbo_id": "3",
        "survivor_qbo_id": "4",
        "relinked": True,
        "survivor_linked_to": None,
    }


# --- payments and drift ------------------------------------------------------------------------------


def test_payment_in_qbo_names_the_app_invoice_and_amount(pull: Pull) -> None:
    # Given an invoice we pushed for a linked client
    pull.links.link(TENANT, "client", "cl-2", "2")
    invoice = _qbo_invoice(pull, "2", 100)

    # When the client pays part of it in QBO (both webhooks arrive in one delivery)
    payment = pull.ui(
        "Payment",
        {
            "CustomerRef": {"value": "2"},
            "TotalAmt": "40.10",
            "Line": [{"Amount": "40.10", "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    before = pull.metered_reads()
    pull.deliver(pull.notice("Payment", payment["Id"]), pull.notice("Invoice", invoice["Id"], "Update"))

    # Then one read, one "Payment Received" naming the app's invoice, and no drift for the invoice
    assert pull.metered_reads() - before == 1
    (event,) = pull.published(PAYMENT_RECEIVED)
    assert event.detail["client_id"] == "cl-2"
    assert event.detail["total"] == "40.10"
    assert event.detail["applied"] == [
        {"invoice_id": f"inv-{invoice['Id']}", "qbo_invoice_id": invoice["Id"], "amount": "40.10"}
    ]
    assert pull.published(INVOICE_CHANGED_IN_QBO) == []


def test_invoice_voided_in_qbo_is_drift(pull: Pull) -> None:
    invoice = _qbo_invoice(pull, "2", 100)

    pull.ui("Invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, "void")
    pull.deliver(pull.notice("Invoice", invoice["Id"], "Void"))

    (event,) = pull.published(INVOICE_CHANGED_IN_QBO)
    assert event.detail["app_id"] == f"inv-{invoice['Id']}"
    assert event.detail["change"] == "voided"
    assert event.detail["stored_sync_token"] == invoice["SyncToken"]
    link = pull.links.get_by_app(TENANT, "invoice", f"inv-{invoice['Id']}")
    assert link is not None
    assert link.sync_token == invoice["SyncToken"]  # the app's record is not touched


def test_unknown_transaction_types_are_ignored_and_counted_without_a_read(pull: Pull) -> None:
    before = pull.metered_reads()
    published = len(pull.events.events)

    # When a delivery names only entities the app does not take
    pull.deliver(pull.notice("JournalEntry", "1"), pull.notice("Deposit", "2"))

    # Then nothing is read, nothing is published, and no exchange is written for it
    assert pull.metered_reads() == before
    assert pull.events.events[published:] == []
    assert pull.history.latest(TENANT) is None

    # And the next exchange that reads says what was ignored
    pull.sweep()
    latest = pull.history.latest(TENANT)
    assert latest is not None
    assert latest.source == "sweep"
    assert latest.ignored["JournalEntry"] == 1
    assert latest.ignored["Deposit"] == 1
    assert latest.notices == 2
    assert latest.outcome == "succeeded"


def test_items_and_accounts_refresh_the_mapping_cache(pull: Pull) -> None:
    item = pull.ui("Item", {"Name": "Pruning", "Type": "Service", "IncomeAccountRef": {"value": "1"}})
    pull.deliver(pull.notice("Item", item["Id"]))

    cached = pull.cache.get(TENANT, "work_code", item["Id"])
    assert cached is not None
    assert cached.name == "Pruning"


def test_twenty_notices_cost_at_most_two_metered_reads(pull: Pull) -> None:
    pull.links.link(TENANT, "client", "cl-2", "2")
    notices = []
    for number in range(10):
        created = pull.ui("Customer", {"DisplayName": f"Batch Customer {number}"})
        notices.append(pull.notice("Customer", created["Id"]))
    invoices = [_qbo_invoice(pull, "2", 10 + n) for n in range(5)]
    for invoice in invoices:
        payment = pull.ui(
            "Payment",
            {
                "CustomerRef": {"value": "2"},
                "TotalAmt": 5,
                "Line": [{"Amount": 5, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
            },
        )
        notices += [pull.notice("Payment", payment["Id"]), pull.notice("Invoice", invoice["Id"], "Update")]
    assert len(notices) == 20
    before = pull.metered_reads()

    result = pull.deliver(*notices)

    assert result == {"batchItemFailures": []}
    assert pull.metered_reads() - before == 1  # one CDC call for Customer, Invoice and Payment
    assert len(pull.published(CLIENT_IMPORTED)) == 10
    assert len(pull.published(PAYMENT_RECEIVED)) == 5


# --- the worker's failures ------------------------------------------------------------------------------


def test_a_malformed_message_is_a_batch_item_failure(pull: Pull) -> None:
    good = pull.notice("JournalEntry", "9")
    missing_field = {k: v for k, v in pull.notice("Customer", "1").items() if k != "occurred_at"}
    naive_time = pull.notice("Customer", "1", occurred_at="2026-11-22T10:00:00")

    result = pull.deliver(good, "not json", missing_field, naive_time)

    failures = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failures == {"m-1", "m-2", "m-3"}


def test_a_failed_apply_sends_the_tenants_messages_back(pull: Pull) -> None:
    created = pull.ui("Customer", {"DisplayName": "Retry Corp"})
    pull.events.broken = True

    result = pull.deliver(pull.notice("Customer", created["Id"]))

    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == {"m-0"}
    latest = pull.history.latest(TENANT)
    assert latest is not None
    assert latest.outcome == "failed"
    assert latest.error == "EventsRefusedError: EventBridge refused 1 of 1 events"


# --- the sweep ---------------------------------------------------------------------------------------------


def test_sweep_advances_the_cursor_only_after_apply_and_a_rerun_is_harmless(pull: Pull) -> None:
    # Given a first sweep that sets the cursors, then a customer created in QBO
    first = pull.sweep()
    assert first["succeeded"] == 1
    start = pull.cursors.get(TENANT, changes.CHANGES_CURSOR)
    assert start is not None
    pull.world.sandbox("POST", "/clock/advance", {"minutes": 30})
    created = pull.ui("Customer", {"DisplayName": "Swept Gardens"})
    pull.world.sandbox("POST", "/clock/advance", {"minutes": 30})

    # When a sweep fails to publish, the cursor stays where it was
    pull.events.broken = True
    assert pull.sweep()["failed"] == 1
    assert pull.cursors.get(TENANT, changes.CHANGES_CURSOR) == start
    pull.events.broken = False
    pull.world.sandbox("POST", "/clock/advance", {"minutes": 5})  # the next schedule's bucket

    # Then the next sweep brings the customer and moves every cursor
    before = pull.metered_reads()
    assert pull.sweep()["succeeded"] == 1
    assert pull.metered_reads() - before == 1
    (event,) = pull.published(CLIENT_IMPORTED)
    assert event.detail["qbo_id"] == created["Id"]
    moved = pull.cursors.get(TENANT, changes.CHANGES_CURSOR)
    assert moved is not None
    assert moved > start

    # And a rerun inside the overlap publishes nothing new (same ids at most), for one read
    pull.world.sandbox("POST", "/clock/advance", {"minutes": 5})
    before = pull.metered_reads()
    pull.sweep()
    assert pull.metered_reads() - before == 1
    assert {e.event_id for e in pull.published(CLIENT_IMPORTED)} == {event.event_id}

    # And the history records each run, newest first, pageable
    page = pull.history.history(TENANT, limit=2)
    assert [x.source for x in page.exchanges] == ["sweep", "sweep"]
    assert page.exchanges[0].outcome == "succeeded"
    assert page.next_token is not None
    rest = pull.history.history(TENANT, limit=10, page_token=page.next_token)
    assert [x.outcome for x in rest.exchanges] == ["failed", "succeeded"]
    assert rest.exchanges[0].error == "EventsRefusedError: EventBridge refused 1 of 1 events"
    assert rest.next_token is None


# 70 s alone: a loaded machine has stretched it past the default 120 s.
@pytest.mark.timeout(480)
def test_a_sweep_over_the_cdc_cap_applies_every_change(pull: Pull) -> None:
    # Given a swept tenant, then 1,200 customers created in QBO within one window (> the 1,000 cap)
    pull.sweep()
    pull.world.sandbox("POST", "/clock/advance", {"minutes": 10})
    for number in range(1200):
        if number % 100 == 0:
            pull.world.sandbox("POST", "/clock/advance", {"seconds": 2})
        pull.ui("Customer", {"DisplayName": f"Bulk Customer {number:04d}"})
    before = pull.metered_reads()

    # When the next sweep runs
    assert pull.sweep()["succeeded"] == 1

    # Then every one is imported, once, for a handful of reads
    imported = pull.published(CLIENT_IMPORTED)
    assert len(imported) == 1200
    assert len({e.event_id for e in imported}) == 1200
    reads = pull.metered_reads() - before
    # Measured 7: QboClient halves the whole window while an answer holds the cap, so the cost
    # grows with log2(window / burst); continuing from the newest timestamp seen would cost 3.
    assert 2 <= reads <= 8, reads


def test_a_cursor_older_than_30_days_falls_back_to_queries(pull: Pull) -> None:
    # Given the per-entity cursors an earlier version kept, 40 days old (a tenant whose sweeps were
    # off), which never move back, and no changes cursor yet: the sweep starts from the oldest
    old = pull.now() - timedelta(days=40)
    assert pull.cursors.advance(TENANT, changes.LEGACY_CURSORS, old, exchange_id="test") == 5
    assert pull.cursors.advance(TENANT, ["Customer"], old - timedelta(days=1), exchange_id="test") == 0
    created = pull.ui("Customer", {"DisplayName": "Long Gone Landscaping"})
    before = pull.metered_reads()

    # When the sweep runs
    assert pull.sweep()["succeeded"] == 1

    # Then CDC (refused beyond 30 days) is replaced by one query per entity (+1: the daily TaxCode
    # refresh, never done yet for this tenant), and the change arrives
    assert pull.metered_reads() - before == len(changes.SWEEP_ENTITIES) + 1
    assert created["Id"] in {e.detail["qbo_id"] for e in pull.published(CLIENT_IMPORTED)}
    position = pull.cursors.get(TENANT, changes.CHANGES_CURSOR)
    assert position is not None
    assert position > old


# --- the sweep's fan-out and the daily TaxCode refresh ------------------------------------------------


def _second_tenant(pull: Pull, tenant: str) -> str:
    realm: str = pull.world.connect(tenant)
    return realm


def test_the_schedule_enqueues_one_request_per_connected_tenant_deduplicated(pull: Pull) -> None:
    # Given two connected tenants and a third that disconnected
    other_realm = _second_tenant(pull, "firm-2")
    _second_tenant(pull, "firm-3")
    wiring.connections().disconnect("firm-3", keep_mappings=False)
    before = pull.metered_reads()

    # When the schedule fires at the start of a 5-minute bucket, and is retried within it (the clock
    # first moves to a bucket's start: a retry 30 s later must not cross into the next one)
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 301 - pull.now().timestamp() % 300})
    first = pull.schedule()
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 30})
    retried = pull.schedule()

    # Then one message per connected tenant, grouped by tenant, and the retry added none; no read
    assert first["tenants"] == 2
    assert retried["tenants"] == 2
    records = pull.queued()
    assert pull.metered_reads() == before
    bodies = {r["attributes"]["MessageGroupId"]: json.loads(r["body"]) for r in records}
    assert len(records) == 2
    assert set(bodies) == {TENANT, "firm-2"}
    assert bodies[TENANT]["realm_id"] == pull.realm
    assert bodies["firm-2"] == {
        "tenant_id": "firm-2",
        "realm_id": other_realm,
        "source": "sweep",
        "requested_at": bodies["firm-2"]["requested_at"],
    }
    assert datetime.fromisoformat(bodies["firm-2"]["requested_at"]).tzinfo is not None
    for record in records:
        group = record["attributes"]["MessageGroupId"]
        assert record["attributes"]["MessageDeduplicationId"].startswith(f"sweep#{group}#")

    # And the change worker runs each tenant's sweep from its message and advances its cursors
    from functions.changes import handler

    result = handler.lambda_handler({"Records": records}, LambdaContext())
    assert result == {"batchItemFailures": []}
    for tenant in (TENANT, "firm-2"):
        latest = pull.history.latest(tenant)
        assert latest is not None
        assert (latest.source, latest.outcome) == ("sweep", "succeeded")
        assert pull.cursors.get(tenant, changes.CHANGES_CURSOR) is not None
    assert pull.history.latest("firm-3") is None


def test_a_sweep_request_brings_changes_made_in_qbo(pull: Pull) -> None:
    pull.sweep()
    start = pull.cursors.get(TENANT, changes.CHANGES_CURSOR)
    pull.world.sandbox("POST", "/clock/advance", {"minutes": 30})
    created = pull.ui("Customer", {"DisplayName": "Fanned Out Farms"})
    pull.world.sandbox("POST", "/clock/advance", {"minutes": 30})
    before = pull.metered_reads()

    request = {
        "tenant_id": TENANT,
        "realm_id": pull.realm,
        "source": "sweep",
        "requested_at": pull.now().isoformat(),
    }
    result = pull.deliver(request)

    assert result == {"batchItemFailures": []}
    assert pull.metered_reads() - before == 1
    (event,) = pull.published(CLIENT_IMPORTED)
    assert event.detail["qbo_id"] == created["Id"]
    moved = pull.cursors.get(TENANT, changes.CHANGES_CURSOR)
    assert start is not None
    assert moved is not None
    assert moved > start


def test_a_malformed_sweep_request_is_a_batch_item_failure(pull: Pull) -> None:
    good = {
        "tenant_id": TENANT,
        "realm_id": pull.realm,
        "source": "sweep",
        "requested_at": pull.now().isoformat(),
    }
    no_realm = {k: v for k, v in good.items() if k != "realm_id"}
    naive = {**good, "requested_at": "2026-11-22T10:00:00"}
    extra = {**good, "entity": "Customer"}
    bad_tenant = {**good, "tenant_id": "a#b"}

    result = pull.deliver(good, no_realm, naive, extra, bad_tenant)

    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == {"m-1", "m-2", "m-3", "m-4"}
    latest = pull.history.latest(TENANT)
    assert latest is not None
    assert latest.source == "sweep"


def test_a_sweep_request_for_another_realm_is_ignored(pull: Pull) -> None:
    before = pull.metered_reads()
    request = {
        "tenant_id": TENANT,
        "realm_id": "999999",
        "source": "sweep",
        "requested_at": pull.now().isoformat(),
    }

    assert pull.deliver(request) == {"batchItemFailures": []}
    assert pull.metered_reads() == before
    assert pull.history.latest(TENANT) is None


def test_the_tax_code_cache_is_refreshed_once_a_day(pull: Pull) -> None:
    # Given a tenant whose tax cache is empty
    assert pull.cache.list(TENANT, "tax") == []

    # When the first sweep runs: CDC + one TaxCode query
    before = pull.metered_reads()
    assert pull.sweep()["succeeded"] == 1
    assert pull.metered_reads() - before == 2
    cached = pull.cache.list(TENANT, "tax")
    assert cached
    marker = pull.cursors.get(TENANT, changes.TAX_REFRESH_CURSOR)
    assert marker is not None

    # Then the day's other sweeps (every 6 hours) cost one read each
    for _ in range(3):
        pull.world.sandbox("POST", "/clock/advance", {"hours": 6})
        before = pull.metered_reads()
        assert pull.sweep()["succeeded"] == 1
        assert pull.metered_reads() - before == 1
    assert pull.cursors.get(TENANT, changes.TAX_REFRESH_CURSOR) == marker

    # And a day after the last refresh the tax codes are read again (the cache's stamp moves)
    stamped = pull.cache.stamp(TENANT, "tax").refreshed_at
    pull.world.sandbox("POST", "/clock/advance", {"hours": 6})
    before = pull.metered_reads()
    assert pull.sweep()["succeeded"] == 1
    assert pull.metered_reads() - before == 2
    refreshed = pull.cursors.get(TENANT, changes.TAX_REFRESH_CURSOR)
    assert refreshed is not None
    assert refreshed > marker
    again = pull.cache.stamp(TENANT, "tax").refreshed_at
    assert stamped is not None
    assert again is not None
    assert again > stamped
    latest = pull.history.latest(TENANT)
    assert latest is not None
    assert latest.reads == 2
