"""Tax per rate, end to end through the real handlers: a Canadian tenant refreshes its mappings (the
tax codes come with their sales rates), pushes documents carrying ``tax_lines``, and the push worker
posts them to the sandbox's CA company with one ``TaxLine`` per rate, so that every agency's amount in
QBO is the app's (docs/push.md, "Tax per rate")."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from tests.integration.push_fixtures import PushWorld, dynamodb_calls, push_world

__all__ = ["dynamodb_calls", "push_world"]

D = Decimal
TENANT = "firm-ca"
# The app's taxes → the CA seed's codes: 2 GST (rate 1), 3 HST ON (rate 2), 4 GST/PST BC (rates 1, 3).
TAXES = {"GST": "2", "HST": "3", "BC": "4"}
# The measured case: an HST line next to a GST/PST BC credit line.
BC_TAX = [
    {"tax_id": "HST", "percent": "13", "amount": "130.00"},
    {"tax_id": "BC", "percent": "5", "amount": "-15.00"},
    {"tax_id": "BC", "percent": "7", "amount": "-21.00"},
]


def connected(push: PushWorld) -> str:
    realm = push.world.connect(TENANT, sandbox_country="CA")
    refreshed = push.api("POST", f"/tenants/{TENANT}/mappings/refresh")
    assert refreshed.status == 200, refreshed.body
    push.links.link(TENANT, "work_code", "W1", "1")
    push.links.link(TENANT, "client", "c1", "1")
    for tax_id, code in TAXES.items():
        push.links.link(TENANT, "tax", tax_id, code)
    client = {"id": "c1", "version": 1, "type": "client", "company_name": "Maple Client"}
    assert push.put(TENANT, "clients", client).status == 202
    return realm


def document(app_id: str, tax_lines: list[dict[str, Any]], version: int = 1) -> dict[str, Any]:
    lines = [("HST", "1000.00"), ("BC", "-300.00")]
    tax_total = sum((D(t["amount"]) for t in tax_lines), D(0))
    return {
        "id": app_id,
        "version": version,
        "number": f"CA-{app_id}",
        "date": "2026-11-20",
        "client_id": "c1",
        "lines": [
            {"line_id": str(i), "kind": "work", "code": "W1", "amount": amount, "tax_id": tax_id}
            for i, (tax_id, amount) in enumerate(lines, start=1)
        ],
        "tax_lines": tax_lines,
        "tax_total": str(tax_total),
        "total": str(sum((D(a) for _, a in lines), D(0)) + tax_total),
    }


def posted(push: PushWorld, realm: str, entity: str, number: str) -> dict[str, Any]:
    [found] = [row for row in push.entities(realm, entity) if row.get("DocNumber") == number]
    return found


def per_agency(push: PushWorld, realm: str, saved: dict[str, Any]) -> dict[str, Decimal]:
    agency_of = {row["Id"]: row["AgencyRef"]["value"] for row in push.entities(realm, "TaxRate")}
    totals: dict[str, Decimal] = {}
    for line in saved["TxnTaxDetail"]["TaxLine"]:
        agency = agency_of[line["TaxLineDetail"]["TaxRateRef"]["value"]]
        totals[agency] = totals.get(agency, D(0)) + D(line["Amount"])
    return totals


def test_each_agency_gets_the_apps_tax_on_invoices_and_credit_memos(
    push_world: PushWorld, dynamodb_calls: Counter[str]
) -> None:
    realm = connected(push_world)

    # When the app pushes an invoice with its tax per rate
    dynamodb_calls.clear()
    answer = push_world.put(TENANT, "invoices", document("i1", BC_TAX))
    assert answer.status == 202, answer.body
    assert answer.json()["state"] == "queued", answer.body
    # (the cached tax codes come in one more BatchGetItem, with the links')
    assert dynamodb_calls == Counter({"GetItem": 3, "BatchGetItem": 3, "TransactWriteItems": 1})
    credit = document("cm1", BC_TAX)
    assert push_world.put(TENANT, "credit-memos", credit).json()["state"] == "queued"
    push_world.drain()

    # Then QBO has the app's amount for every rate, hence for every agency
    for entity, number in (("Invoice", "CA-i1"), ("CreditMemo", "CA-cm1")):
        saved = posted(push_world, realm, entity, number)
        assert D(saved["TotalAmt"]) == D("794.00")
        assert D(saved["TxnTaxDetail"]["TotalTax"]) == D("94.00")
        assert [
            (t["TaxLineDetail"]["TaxRateRef"]["value"], D(t["Amount"]))
            for t in saved["TxnTaxDetail"]["TaxLine"]
        ] == [("2", D(130)), ("1", D(-15)), ("3", D(-21))]
        assert per_agency(push_world, realm, saved) == {"1": D(115), "2": D(-21)}


def test_a_percent_that_is_no_rate_of_the_code_waits_then_goes_when_corrected(push_world: PushWorld) -> None:
    realm = connected(push_world)
    wrong = [BC_TAX[0], {"tax_id": "BC", "percent": "6", "amount": "-36.00"}]

    answer = push_world.put(TENANT, "invoices", document("i2", wrong))

    assert answer.json()["state"] == "needs_attention", answer.body
    assert answer.json()["reasons"] == [
        {"code": "tax_rate_unknown", "details": {"percent": "6", "tax_id": "BC"}}
    ]
    assert push_world.put(TENANT, "invoices", document("i2", BC_TAX, version=2)).json()["state"] == "queued"
    push_world.drain()
    saved = posted(push_world, realm, "Invoice", "CA-i2")
    assert per_agency(push_world, realm, saved) == {"1": D(115), "2": D(-21)}
