"""Credit memos applied as the app says, and QuickBooks' "automatically apply credits", through the
real handlers (tenant API, push queue in moto, push worker) against the QBO sandbox over sockets.

The sandbox's companies start with ``SalesFormsPrefs.AutoApplyCredit`` on, QuickBooks' default: a new
invoice of a customer with an open credit memo is paid by that credit at once, by a zero-amount
payment QBO makes itself."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from shared import wiring
from tests.integration.push_fixtures import PushWorld, push_world
from tests.integration.test_push import TENANT, connected, invoice, invoices_numbered, state_of

__all__ = ["push_world"]

D = Decimal


def credit_memo(
    app_id: str = "cm1", version: int = 1, *, amount: str = "30.00", applications: Any = (), **extra: Any
) -> dict[str, Any]:
    return {
        "id": app_id,
        "version": version,
        "number": f"CM-{app_id}",
        "date": "2026-11-20",
        "client_id": "c1",
        "lines": [
            {
                "line_id": "1",
                "kind": "work",
                "code": "W1",
                "description": "Goodwill credit",
                "amount": amount,
                "taxable": False,
            }
        ],
        "tax_total": "0.00",
        "total": amount,
        "applications": list(applications),
        **extra,
    }


def payment(app_id: str, amount: str, applications: dict[str, str]) -> dict[str, Any]:
    return {
        "id": app_id,
        "version": 1,
        "client_id": "c1",
        "date": "2026-11-22",
        "amount": amount,
        "applications": [{"invoice_id": i, "amount": a} for i, a in applications.items()],
    }


def set_auto_apply(push: PushWorld, realm: str, on: bool) -> None:
    stored = push.sandbox("GET", f"/companies/{realm}/entities/preferences/1")["Preferences"]
    body = {
        "Id": "1",
        "SyncToken": stored["SyncToken"],
        "sparse": True,
        "SalesFormsPrefs": {"AutoApplyCredit": on},
    }
    push.sandbox("POST", f"/companies/{realm}/entities/preferences?operation=update", body)


def memo_row(push: PushWorld, realm: str, number: str) -> dict[str, Any]:
    [row] = [m for m in push.entities(realm, "CreditMemo") if m.get("DocNumber") == number]
    return row


def our_payments(push: PushWorld, realm: str, marker: str) -> list[dict[str, Any]]:
    return [p for p in push.entities(realm, "Payment") if marker in (p.get("PrivateNote") or "")]


def test_a_credit_memo_is_applied_to_the_invoices_the_app_names(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")

    # Given a credit memo applying 20 to i1 and 10 to i2, sent before those invoices
    early = push_world.put(TENANT, "credit-memos", credit_memo(applications=[
        {"invoice_id": "i1", "amount": "20.00"}, {"invoice_id": "i2", "amount": "10.00"}
    ]))  # fmt: skip
    assert early.status == 202
    reasons = {r["details"].get("invoice_id") for r in early.json()["reasons"]}
    assert reasons == {"i1", "i2"}  # the memo waits for its invoices
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.put(TENANT, "invoices", invoice("i2"))

    # When the queue drains (no recheck call)
    push_world.drain()

    # Then the memo and its application are in QBO, and each invoice owes what the app says
    assert state_of(push_world, "credit_memo", "cm1") == "posted"
    assert state_of(push_world, "credit_application", "cm1") == "posted"
    [i1] = invoices_numbered(push_world, realm, "A-i1")
    [i2] = invoices_numbered(push_world, realm, "A-i2")
    assert (i1["Balance"], i2["Balance"]) == (D("80.00"), D("90.00"))
    assert memo_row(push_world, realm, "CM-cm1")["RemainingCredit"] == D("0.00")
    [applied] = our_payments(push_world, realm, "qbo-link:credit_application:cm1")
    assert applied["TotalAmt"] == D("0")
    links = {(line["LinkedTxn"][0]["TxnType"], line["Amount"]) for line in applied["Line"]}
    assert links == {("Invoice", D("20.00")), ("Invoice", D("10.00")), ("CreditMemo", D("30.00"))}

    # And QuickBooks applied nothing by itself: the credit was never left open
    memo_id = memo_row(push_world, realm, "CM-cm1")["Id"]
    spending = [
        p["Id"]
        for p in push_world.entities(realm, "Payment")
        for line in p.get("Line") or []
        if {"TxnId": memo_id, "TxnType": "CreditMemo"} in (line.get("LinkedTxn") or [])
    ]
    assert spending == [applied["Id"]]


def test_a_changed_application_updates_it_in_place_and_a_removed_one_comes_back_out(
    push_world: PushWorld,
) -> None:
    realm = connected(push_world, c1_as="1")
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.put(TENANT, "invoices", invoice("i2"))
    push_world.drain()
    push_world.put(
        TENANT, "credit-memos", credit_memo(applications=[{"invoice_id": "i1", "amount": "30.00"}])
    )
    push_world.drain()
    [first] = our_payments(push_world, realm, "qbo-link:credit_application:cm1")

    # When the app moves the credit to i2
    moved = credit_memo(version=2, applications=[{"invoice_id": "i2", "amount": "30.00"}])
    push_world.put(TENANT, "credit-memos", moved)
    push_world.drain()

    # Then the same QBO payment now applies it there
    [second] = our_payments(push_world, realm, "qbo-link:credit_application:cm1")
    assert second["Id"] == first["Id"]
    [i1] = invoices_numbered(push_world, realm, "A-i1")
    [i2] = invoices_numbered(push_world, realm, "A-i2")
    assert (i1["Balance"], i2["Balance"]) == (D("100.00"), D("70.00"))

    # And when the app takes the application back, the credit is open again (its payment voided)
    push_world.put(TENANT, "credit-memos", credit_memo(version=3))
    push_world.drain()
    assert state_of(push_world, "credit_application", "cm1") == "voided"
    [i2] = invoices_numbered(push_world, realm, "A-i2")
    assert i2["Balance"] == D("100.00")
    assert memo_row(push_world, realm, "CM-cm1")["RemainingCredit"] == D("30.00")


def test_a_voided_credit_memo_takes_its_application_out_first(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    push_world.api("PUT", f"/tenants/{TENANT}/settings", body={"propagate_deletes": True})
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.put(
        TENANT, "credit-memos", credit_memo(applications=[{"invoice_id": "i1", "amount": "30.00"}])
    )
    push_world.drain()

    push_world.put(TENANT, "credit-memos", credit_memo(version=2, voided=True, applications=[]))
    push_world.drain()

    assert state_of(push_world, "credit_memo", "cm1") == "voided"
    assert state_of(push_world, "credit_application", "cm1") == "voided"
    [i1] = invoices_numbered(push_world, realm, "A-i1")
    assert i1["Balance"] == D("100.00")


def test_a_credit_quickbooks_applied_by_itself_never_gets_the_apps_payment_refused(
    push_world: PushWorld,
) -> None:
    realm = connected(push_world, c1_as="1")
    # Given an open credit memo (the app names no invoice) and AutoApplyCredit on (QBO's default)
    push_world.put(TENANT, "credit-memos", credit_memo())
    push_world.drain()
    assert memo_row(push_world, realm, "CM-cm1")["RemainingCredit"] == D("30.00")

    # When the app's next invoice for that customer is posted, QBO spends the credit on it
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.drain()
    [i1] = invoices_numbered(push_world, realm, "A-i1")
    assert i1["Balance"] == D("70.00")

    # And the app, which did not know, pays the whole invoice
    answer = push_world.put(TENANT, "payments", payment("p1", "100.00", {"i1": "100.00"}))
    assert answer.status == 202
    push_world.drain()

    # Then the payment is posted for what QBO holds open; the rest stays unapplied on the customer
    assert state_of(push_world, "payment", "p1") == "posted"
    [paid] = our_payments(push_world, realm, "qbo-link:payment:p1")
    assert paid["TotalAmt"] == D("100.00")
    assert paid["UnappliedAmt"] == D("30.00")
    [i1] = invoices_numbered(push_world, realm, "A-i1")
    assert i1["Balance"] == D("0.00")  # as the app believes: paid
    entry = push_world.log.get(TENANT, "payment", "p1")
    assert entry is not None
    [note] = entry.notes
    assert note.code == "applied_less_than_asked"
    attempts = push_world.log.attempts(TENANT, "payment", "p1")
    assert [a.outcome.value for a in attempts] == ["succeeded"]  # never refused

    # And the firm is told to turn the preference off
    status = push_world.api("GET", f"/tenants/{TENANT}/connection").json()
    assert [w["code"] for w in status["warnings"]] == ["auto_apply_credit_on"]


def test_without_auto_apply_an_open_credit_stays_open(push_world: PushWorld) -> None:
    realm = connected(push_world)
    set_auto_apply(push_world, realm, on=False)
    push_world.links.link(TENANT, "client", "c1", "1")
    push_world.put(TENANT, "credit-memos", credit_memo())
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.put(TENANT, "payments", payment("p1", "100.00", {"i1": "100.00"}))
    push_world.drain()

    [i1] = invoices_numbered(push_world, realm, "A-i1")
    assert i1["Balance"] == D("0.00")
    assert memo_row(push_world, realm, "CM-cm1")["RemainingCredit"] == D("30.00")
    entry = push_world.log.get(TENANT, "payment", "p1")
    assert entry is not None
    assert entry.notes == ()


def test_the_app_cannot_apply_more_than_the_credit(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    answer = push_world.put(
        TENANT,
        "credit-memos",
        credit_memo(
            applications=[{"invoice_id": "i1", "amount": "20.00"}, {"invoice_id": "i1", "amount": "20.00"}]
        ),
    )
    assert answer.status == 422
    fields = {tuple(d["loc"]) for d in answer.json()["detail"]}
    assert fields == {("body", "applications[1]", "invoice_id"), ("body", "applications")}
    assert push_world.log.get(TENANT, "credit_memo", "cm1") is None


def test_a_refusal_for_a_credit_not_known_yet_is_answered_by_reading_what_is_open(
    push_world: PushWorld,
) -> None:
    # Given an invoice QBO spent an open credit on, which the ledger does not know about (QBO's
    # create answer need not show it, and the change worker has not read it yet)
    realm = connected(push_world, c1_as="1")
    push_world.put(TENANT, "credit-memos", credit_memo())
    push_world.drain()
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.drain()
    ledger = wiring.version_ledger()
    [i1] = invoices_numbered(push_world, realm, "A-i1")
    known = ledger.get_many(TENANT, [("Invoice", i1["Id"])])[("Invoice", i1["Id"])]
    assert known.credited
    ledger.record_applied(TENANT, [dataclasses.replace(known, credited=False)])

    # When the app pays the whole invoice
    push_world.put(TENANT, "payments", payment("p1", "100.00", {"i1": "100.00"}))
    push_world.drain()

    # Then QBO's refusal made the worker read what is open and post the payment for that
    attempts = push_world.log.attempts(TENANT, "payment", "p1")
    assert [a.outcome.value for a in attempts] == ["rejected", "succeeded"]
    assert state_of(push_world, "payment", "p1") == "posted"
    [paid] = our_payments(push_world, realm, "qbo-link:payment:p1")
    assert (paid["TotalAmt"], paid["UnappliedAmt"]) == (D("100.00"), D("30.00"))
