"""Two-way sync under load, on the change worker's side (moto + the sandbox over real sockets): our
own writes are known before anything is read, a tenant is read once per moment, and each change
is published once.  The writes "of our push" here go through the QBO client and are recorded in the
version ledger exactly as the push worker records them (``VersionLedger.write_actions``)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest

from shared import wiring
from shared.kernel.events import (
    CLIENT_CHANGED,
    CLIENT_IMPORTED,
    CREDIT_APPLIED_IN_QBO,
    EXCHANGE_FINISHED,
    INVOICE_CHANGED_IN_QBO,
    PAYMENT_RECEIVED,
    emitted_by,
)
from shared.mapping.versions import VersionLedger
from shared.pull.changes import ApplyReport, Notice, PullService, PullTiming
from tests.integration.test_changes import TENANT, Pull
from tests.integration.test_changes import pull as pull_fixture  # noqa: F401 - a fixture


@pytest.fixture
def pull(pull_fixture: Pull) -> Pull:  # noqa: F811 - the pull world of test_changes
    return pull_fixture


ITEM_LINE = {
    "DetailType": "SalesItemLineDetail",
    "Amount": 100,
    "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "TaxCodeRef": {"value": "NON"}},
}


def _ledger() -> VersionLedger:
    return wiring.version_ledger()


def _ours(pull: Pull, entity: str, body: dict[str, Any], kind: str, app_id: str) -> dict[str, Any]:
    """A create by our push: QBO's answer, the link and the ledger's record of the write."""
    answer = wiring.tenant_qbo_client(TENANT).create(entity, body, idempotency_key=uuid.uuid4().hex)
    pull.links.link(TENANT, kind, app_id, answer["Id"], sync_token=answer["SyncToken"], source="push")
    _ledger().record_written(TENANT, entity, answer, kind=kind, app_id=app_id)
    return answer


def _update_ours(pull: Pull, entity: str, body: dict[str, Any], kind: str, app_id: str) -> dict[str, Any]:
    answer = wiring.tenant_qbo_client(TENANT).update(entity, body, idempotency_key=uuid.uuid4().hex)
    _ledger().record_written(TENANT, entity, answer, kind=kind, app_id=app_id)
    return answer


def _data_events(pull: Pull) -> list[Any]:
    """What the pull published about changes (not its exchanges, not the connection's events)."""
    wanted = set(emitted_by("pull")) - {EXCHANGE_FINISHED}
    return [e for e in pull.events.events if e.detail_type in wanted]


def _paced(pull: Pull, timing: PullTiming) -> tuple[PullService, list[float]]:
    """The wired service with real pacing, whose waits move the sandbox's clock instead of sleeping."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        pull.world.sandbox("POST", "/clock/advance", {"seconds": seconds})

    return dataclasses.replace(wiring.pull_service(), timing=timing, sleep=sleep), waits


def _notice(pull: Pull, entity: str, row: dict[str, Any], operation: str = "Create") -> dict[str, Any]:
    """QBO's webhook notice of the change that made ``row``: stamped with its LastUpdatedTime."""
    return pull.notice(entity, row["Id"], operation, occurred_at=row["MetaData"]["LastUpdatedTime"])


def _taken(pull: Pull, entity: str, row: dict[str, Any], operation: str = "Create") -> Notice:
    return Notice.model_validate(_notice(pull, entity, row, operation))


# --- own writes --------------------------------------------------------------------------------------


def test_notices_of_our_own_writes_cost_no_read_and_no_event(pull: Pull) -> None:
    # Given a customer and an invoice our push created (recorded in the ledger as it posted them)
    customer = _ours(pull, "Customer", {"DisplayName": "Own Write Gardens"}, "client", "cl-own")
    invoice = _ours(
        pull, "Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [ITEM_LINE]}, "invoice", "inv-own"
    )
    before, published = pull.metered_reads(), len(_data_events(pull))

    # When QBO's webhooks for those writes arrive
    result = pull.deliver(_notice(pull, "Customer", customer), _notice(pull, "Invoice", invoice))

    # Then nothing is read, nothing reaches the app, and no exchange is written
    assert result == {"batchItemFailures": []}
    assert pull.metered_reads() == before
    assert len(_data_events(pull)) == published
    assert pull.history.latest(TENANT) is None

    # And the next exchange that reads counts them as echoes
    pull.sweep()
    latest = pull.history.latest(TENANT)
    assert latest is not None
    assert latest.echoes >= 2
    assert latest.events == {}


def test_a_stale_cdc_row_of_our_document_is_never_drift(pull: Pull) -> None:
    # Given our invoice, updated twice by the push (SyncToken 0 -> 2, both recorded)
    invoice = _ours(
        pull, "Invoice", {"CustomerRef": {"value": "2"}, "Line": [ITEM_LINE]}, "invoice", "inv-stale"
    )
    first = _update_ours(
        pull,
        "Invoice",
        {"Id": invoice["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "v2"},
        "invoice",
        "inv-stale",
    )
    body = {"Id": invoice["Id"], "SyncToken": first["SyncToken"], "sparse": True, "PrivateNote": "v3"}
    second = _update_ours(pull, "Invoice", body, "invoice", "inv-stale")
    assert second["SyncToken"] == "2"

    # When a read that began before the last write hands the applier the row of SyncToken 1, and
    # a row whose SyncToken would sort after "2" as text ("10" < "2") is compared too
    report = ApplyReport()
    stale = {**first, "SyncToken": "1"}
    wiring.pull_service().applier.apply_rows(TENANT, {"Invoice": [stale]}, report)

    # Then it is not drift: older than what we wrote
    assert pull.published(INVOICE_CHANGED_IN_QBO) == []
    assert report.ignored["already_applied"] == 1
    later = {**second, "SyncToken": "10", "TotalAmt": 999}
    wiring.pull_service().applier.apply_rows(TENANT, {"Invoice": [later]}, ApplyReport())
    (drift,) = pull.published(INVOICE_CHANGED_IN_QBO)
    assert drift.detail["sync_token"] == "10"


def test_a_customer_whose_create_answer_was_lost_is_linked_not_imported(pull: Pull) -> None:
    # Given a customer our push created whose answer never came back (commit-then-fail): QBO has
    # it, with our marker in its notes, and nothing of ours records it
    client = wiring.tenant_qbo_client(TENANT)
    created = client.create(
        "Customer",
        {"DisplayName": "Lost Answer Ltd", "Notes": "qbo-link:client:cl-lost"},
        idempotency_key="x",
    )
    before = pull.metered_reads()

    # When its webhook reaches the change worker
    pull.deliver(pull.notice("Customer", created["Id"]))

    # Then the app hears nothing (a "Client Imported" would make it create a duplicate client)...
    assert pull.metered_reads() - before == 1
    assert pull.published(CLIENT_IMPORTED) == []
    # ...and the customer is linked to the app's client, so the push's retry updates it in place
    link = pull.links.get_by_app(TENANT, "client", "cl-lost")
    assert link is not None
    assert link.qbo_id == created["Id"]
    assert link.source == "push"
    latest = pull.history.latest(TENANT)
    assert latest is not None
    assert latest.ignored["echo"] == 1

    # And a bookkeeper's later edit is a change of that client
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 10})
    body = {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "edited"}
    edited = pull.ui("Customer", body, "update")
    pull.deliver(_notice(pull, "Customer", edited, "Update"))
    (changed,) = pull.published(CLIENT_CHANGED)
    assert changed.detail["client_id"] == "cl-lost"


# --- once per change -----------------------------------------------------------------------------


def test_a_replayed_delivery_publishes_nothing_new(pull: Pull) -> None:
    # Given a customer created in QBO, delivered and imported
    created = pull.ui("Customer", {"DisplayName": "Replay Nurseries"})
    notice = _notice(pull, "Customer", created)
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 3})  # Intuit's webhook comes later
    pull.deliver(notice)
    (imported,) = pull.published(CLIENT_IMPORTED)
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 10})
    before = pull.metered_reads()

    # When the same delivery comes again (an Intuit retry, an SQS redelivery), twice
    pull.deliver(notice)
    pull.deliver(notice)

    # Then it costs no read (the cursor covers it) and publishes nothing
    assert pull.metered_reads() == before
    assert pull.published(CLIENT_IMPORTED) == [imported]

    # And a sweep re-reading the window (overlap) publishes nothing either
    pull.sweep()
    assert pull.published(CLIENT_IMPORTED) == [imported]


def test_a_backlog_of_500_notices_costs_one_read(pull: Pull) -> None:
    # Given 500 customers created in QBO while the worker was away: 500 notices in the queue
    notices = [
        pull.notice("Customer", pull.ui("Customer", {"DisplayName": f"Backlog {n:03d}"})["Id"])
        for n in range(500)
    ]
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 30})
    before = pull.metered_reads()

    # When they arrive in FIFO deliveries of 10
    for start in range(0, len(notices), 10):
        assert pull.deliver(*notices[start : start + 10]) == {"batchItemFailures": []}

    # Then the first read covered them all: one metered read, 500 imports, each once
    assert pull.metered_reads() - before == 1
    imported = pull.published(CLIENT_IMPORTED)
    assert len(imported) == 500
    assert len({e.detail["qbo_id"] for e in imported}) == 500
    latest = pull.history.latest(TENANT)
    assert latest is not None
    assert latest.reads == 1


def test_reads_of_a_tenant_are_paced_and_wait_for_our_postings(pull: Pull) -> None:
    timing = PullTiming(min_read_interval=timedelta(seconds=5), gather=timedelta(seconds=2))
    service, waits = _paced(pull, timing)
    before = pull.metered_reads()

    # Given a change in QBO, read at once (nothing was read before)...
    first = pull.ui("Customer", {"DisplayName": "Paced One"})
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 3})  # older than the gather time
    service.webhook_batch(TENANT, [_taken(pull, "Customer", first)])
    assert waits == []
    # ...and a second one just after that read
    second = pull.ui("Customer", {"DisplayName": "Paced Two"})

    # When its notice arrives
    service.webhook_batch(TENANT, [_taken(pull, "Customer", second)])

    # Then the worker waited out the interval since the last read, then read once more
    assert len(waits) == 1
    assert 2 <= waits[0] <= 5
    assert pull.metered_reads() - before == 2
    assert {e.detail["display_name"] for e in pull.published(CLIENT_IMPORTED)} == {
        "Paced One",
        "Paced Two",
    }


def test_a_notice_that_outruns_our_posting_is_still_ours(pull: Pull) -> None:
    # Given our customer written in QBO whose posting is not recorded yet when the webhook arrives
    client = wiring.tenant_qbo_client(TENANT)
    answer = client.create("Customer", {"DisplayName": "Fast Webhook Co"}, idempotency_key="fast")
    timing = PullTiming(min_read_interval=timedelta(seconds=5), gather=timedelta(seconds=2))
    service, waits = _paced(pull, timing)

    def posting_lands(seconds: float) -> None:  # the push worker's transaction lands meanwhile
        waits.append(seconds)
        pull.links.link(TENANT, "client", "cl-fast", answer["Id"], sync_token="0", source="push")
        _ledger().record_written(TENANT, "Customer", answer, kind="client", app_id="cl-fast")

    service = dataclasses.replace(service, sleep=posting_lands)
    before = pull.metered_reads()

    # When its notice is taken at once
    exchange = service.webhook_batch(TENANT, [_taken(pull, "Customer", answer)])

    # Then the worker gave the posting time to land, found it ours, and read nothing
    assert len(waits) == 1
    assert waits[0] <= 2
    assert exchange is None
    assert pull.metered_reads() == before
    assert pull.published(CLIENT_IMPORTED) == []


def test_our_payment_moves_an_invoice_balance_without_drift_or_read(pull: Pull) -> None:
    # Given our invoice and our payment of part of it (the push records the payment, and marks the
    # invoice whose balance it moved)
    invoice = _ours(
        pull, "Invoice", {"CustomerRef": {"value": "2"}, "Line": [ITEM_LINE]}, "invoice", "inv-paid"
    )
    payment = _ours(
        pull,
        "Payment",
        {
            "CustomerRef": {"value": "2"},
            "TotalAmt": 40,
            "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
        "payment",
        "pay-1",
    )
    assert pull.stored("Invoice", invoice["Id"])["SyncToken"] == "1"  # QBO bumped the invoice
    before = pull.metered_reads()

    # When the webhooks for the payment and the invoice's update arrive
    invoice_now = pull.stored("Invoice", invoice["Id"])
    pull.deliver(_notice(pull, "Payment", payment), _notice(pull, "Invoice", invoice_now, "Update"))

    # Then both are ours: no read, no event
    assert pull.metered_reads() == before
    assert _data_events(pull) == []

    # And a read of those rows (the sweep) sees a balance moved, not drift
    pull.sweep()
    assert pull.published(INVOICE_CHANGED_IN_QBO) == []
    assert pull.published(PAYMENT_RECEIVED) == []

    # But a bookkeeper's edit of the invoice's lines is drift, published once
    stored = pull.stored("Invoice", invoice["Id"])
    line = {**ITEM_LINE, "Amount": 150}
    pull.ui(
        "Invoice",
        {"Id": invoice["Id"], "SyncToken": stored["SyncToken"], "sparse": True, "Line": [line]},
        "update",
    )
    edited = pull.stored("Invoice", invoice["Id"])
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 10})
    notice = _notice(pull, "Invoice", edited, "Update")
    pull.deliver(notice)
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 10})
    pull.deliver(notice)
    pull.sweep()
    (drift,) = pull.published(INVOICE_CHANGED_IN_QBO)
    assert drift.detail["app_id"] == "inv-paid"
    assert drift.detail["total"] == "150.00"


def _at_start_of_a_second(pull: Pull) -> None:
    """Move the sandbox's clock to just after a whole second: what follows at once shares it."""
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 1.02 - pull.now().timestamp() % 1})


def test_a_bookkeepers_payment_read_in_its_own_second_is_not_read_again(pull: Pull) -> None:
    # Given our invoice, and later the bookkeeper's payment of it in QBO
    invoice = _ours(
        pull, "Invoice", {"CustomerRef": {"value": "2"}, "Line": [ITEM_LINE]}, "invoice", "inv-bk-paid"
    )
    pull.links.link(TENANT, "client", "cl-2", "2", source="manual")
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 10})
    _at_start_of_a_second(pull)
    payment = pull.ui(
        "Payment",
        {
            "CustomerRef": {"value": "2"},
            "TotalAmt": 40,
            "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    paid = pull.stored("Invoice", invoice["Id"])
    # When its notice is read in the very second it was made (the read cannot cover that second)
    before = pull.metered_reads()
    pull.deliver(_notice(pull, "Payment", payment))
    assert pull.metered_reads() == before + 1
    assert len(pull.published(PAYMENT_RECEIVED)) == 1

    # Then the notices QBO sends later for the same changes cost no read: the invoice's balance
    # moved by another's payment is remembered, and so is the payment's version
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 10})
    pull.deliver(_notice(pull, "Invoice", paid, "Update"))
    pull.deliver(_notice(pull, "Payment", payment))
    assert pull.metered_reads() == before + 1
    assert len(pull.published(PAYMENT_RECEIVED)) == 1
    assert pull.published(INVOICE_CHANGED_IN_QBO) == []


def test_an_update_in_the_second_of_a_create_that_was_read_is_still_news(pull: Pull) -> None:
    # Given a customer the bookkeeper created, read in the second it was made
    _at_start_of_a_second(pull)
    created = pull.ui("Customer", {"DisplayName": "Same Second Gardens"})
    pull.deliver(_notice(pull, "Customer", created))
    assert len(pull.published(CLIENT_IMPORTED)) == 1
    before = pull.metered_reads()
    # When the bookkeeper edits it at once (its Update notice stamped in that second or the next)
    edited = pull.ui(
        "Customer",
        {
            "Id": created["Id"],
            "SyncToken": created["SyncToken"],
            "sparse": True,
            "PrimaryEmailAddr": {"Address": "office@samesecond.example"},
        },
        "update",
    )
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 10})
    pull.deliver(_notice(pull, "Customer", edited, "Update"))
    # Then it is read: a Create we applied does not explain an Update (the customer is still not
    # linked to a client of the app, so its new state comes as another Client Imported)
    assert pull.metered_reads() == before + 1
    imported = pull.published(CLIENT_IMPORTED)
    assert [e.detail["email"] for e in imported] == [None, "office@samesecond.example"]


# --- credits QBO applies by itself ------------------------------------------------------------------


def test_a_credit_quickbooks_applied_by_itself_is_an_event_and_marks_the_invoice(pull: Pull) -> None:
    # Given our open credit memo (AutoApplyCredit on, QBO's default) and then our invoice for the
    # same customer: QBO spends the credit on the invoice with a zero payment of its own
    memo_line = {**ITEM_LINE, "Amount": 30}
    memo = _ours(
        pull, "CreditMemo", {"CustomerRef": {"value": "2"}, "Line": [memo_line]}, "credit_memo", "cm-9"
    )
    invoice = _ours(pull, "Invoice", {"CustomerRef": {"value": "2"}, "Line": [ITEM_LINE]}, "invoice", "inv-9")
    assert invoice["Balance"] == 70  # QBO's answer shows the credit already spent
    pull.links.link(TENANT, "client", "cl-2", "2")
    [auto] = [
        p
        for p in pull.world.sandbox("GET", f"/companies/{pull.realm}/entities/payment")["Payment"]
        if {"TxnId": memo["Id"], "TxnType": "CreditMemo"}
        in [t for ln in p.get("Line") or [] for t in ln["LinkedTxn"]]
    ]

    # When QBO's notice of that payment arrives
    pull.deliver(_notice(pull, "Payment", auto))

    # Then the app hears which of its invoices got which of its credits, once
    (event,) = pull.published(CREDIT_APPLIED_IN_QBO)
    assert event.detail["client_id"] == "cl-2"
    assert event.detail["applied"] == [
        {"invoice_id": "inv-9", "qbo_invoice_id": invoice["Id"], "amount": "30.00"}
    ]
    assert event.detail["credits"] == [
        {"credit_memo_id": "cm-9", "qbo_credit_memo_id": memo["Id"], "amount": "30.00"}
    ]
    assert pull.published(PAYMENT_RECEIVED) == []
    # And the push will read that invoice's balance before paying it
    known = _ledger().get_many(TENANT, [("Invoice", invoice["Id"])])
    assert known[("Invoice", invoice["Id"])].credited


def test_a_preferences_notice_keeps_the_auto_apply_warning_in_step(pull: Pull) -> None:
    status = pull.world.status(TENANT)
    assert [w["code"] for w in status["warnings"]] == ["auto_apply_credit_on"]
    stored = pull.world.sandbox("GET", f"/companies/{pull.realm}/entities/preferences/1")["Preferences"]
    body = {
        "Id": "1",
        "SyncToken": stored["SyncToken"],
        "sparse": True,
        "SalesFormsPrefs": {"AutoApplyCredit": False},
    }
    changed = pull.ui("Preferences", body, "update")
    before = pull.metered_reads()

    pull.deliver(_notice(pull, "Preferences", changed, "Update"))

    assert pull.metered_reads() - before == 1
    assert pull.world.status(TENANT)["warnings"] == []


def test_the_change_function_reports_echoes_coalesced_notices_reads_and_events(
    pull: Pull, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.test_push_metrics import emf_blobs, metric_values

    customer = _ours(pull, "Customer", {"DisplayName": "Metric Echo"}, "client", "cl-metric")
    created = pull.ui("Customer", {"DisplayName": "Metric News"})
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 5})
    capsys.readouterr()

    pull.deliver(_notice(pull, "Customer", customer), _notice(pull, "Customer", created))
    pull.world.sandbox("POST", "/clock/advance", {"seconds": 5})
    pull.deliver(_notice(pull, "Customer", created))  # a replay the read covered

    blobs = emf_blobs(capsys.readouterr().out)
    totals = {
        name: sum(v for _, values in metric_values(blobs, name) for v in values)
        for name in ("ChangeEchoes", "NoticesCoalesced", "ChangeReads", "ChangeEvents")
    }
    # Our write is recognised twice: its notice (no read needed for it) and its row in the read the
    # other notice needed; the replay costs nothing
    assert totals == {"ChangeEchoes": 2, "NoticesCoalesced": 1, "ChangeReads": 1, "ChangeEvents": 1}


def test_a_customer_exported_from_the_match_tab_comes_back_as_an_echo(pull: Pull) -> None:
    from shared.mapping.catalog import AppEntity

    # Given an app client exported to QBO from the match tab
    service = wiring.mappings()
    service.upsert_app_entity(TENANT, "client", AppEntity(id="cl-exp", version=1, name="Exported Orchard"))
    [outcome] = service.export(TENANT, "client", ["cl-exp"])
    assert outcome.status == "created"
    assert outcome.qbo_id is not None
    row = pull.stored("Customer", outcome.qbo_id)
    before = pull.metered_reads()

    # When QBO's webhook of that create arrives
    pull.deliver(_notice(pull, "Customer", row))

    # Then it is ours: no read, no Client Imported
    assert pull.metered_reads() == before
    assert pull.published(CLIENT_IMPORTED) == []
