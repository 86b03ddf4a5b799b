"""The issue's end to end, at full size: 1,000 invoices for 100 linked clients and payments for half of
them, saved by the app in bulk through the tenant API and posted by the push function in QBO batch
requests, while the sandbox injects 429s, 500s, dropped connections and commit-then-fail into 10% of
the QBO calls.  QBO must end up with every invoice once and every payment once, each invoice's total
and balance equal to the app's to the cent (docs/push.md, "Figures").

``QBO_LINK_E2E_INVOICES`` changes the size (``scripts/bench_push.py`` measures costs without faults).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from shared import wiring
from shared.connections.store import Connection
from shared.qbo.client import QboClient
from tests.integration.push_fixtures import PushWorld, dynamodb_calls, fast_client, push_world

__all__ = ["dynamodb_calls", "push_world"]

TENANT = "firm-e2e"
INVOICES = int(os.environ.get("QBO_LINK_E2E_INVOICES", "1000"))
CLIENTS = 100
WAVE = 60  # documents the app saves between two looks of the push function at its queue
FAULT_RATE = 0.10
FAULTS: tuple[dict[str, Any], ...] = (
    {"kind": "status", "status": 429},
    {"kind": "status", "status": 500},
    {"kind": "drop"},
    {"kind": "commit_then_fail", "status": 500},
    {"kind": "commit_then_fail", "status": 0},  # QBO did the work and the connection dropped
)
SEED = 4


def e2e_invoice(n: int, rng: random.Random) -> dict[str, Any]:
    """Two lines with quarter quantities and cent rates, the first taxable at 8.25%."""
    lines: list[dict[str, Any]] = []
    for line_no in (1, 2):
        quantity = Decimal(rng.randint(1, 40)) / 4
        rate = Decimal(rng.randint(1000, 30000)) / 100
        amount = (quantity * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        lines.append(
            {
                "line_id": str(line_no),
                "kind": "work",
                "code": "W1",
                "quantity": str(quantity),
                "rate": str(rate),
                "amount": str(amount),
                "taxable": line_no == 1,
            }
        )
    tax = (Decimal(lines[0]["amount"]) * Decimal("0.0825")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    subtotal = sum(Decimal(line["amount"]) for line in lines)
    return {
        "id": f"e{n}",
        "version": 1,
        "number": f"E-{n:05d}",
        "date": "2026-11-20",
        "client_id": f"k{n % CLIENTS}",
        "lines": lines,
        "tax_total": str(tax),
        "total": str(subtotal + tax),
    }


def impatient_client(connection: Connection) -> QboClient:
    """One attempt per call instead of five: every fault reaches the worker instead of being absorbed
    by the client's own retries, so redelivery, the lookup before a re-create and the requestid must
    keep each document exactly once."""
    client = fast_client(connection)
    client.max_attempts = 1
    return client


@dataclass
class Figures:
    invoices: int
    payments: int
    qbo_requests: int
    batch_requests: int
    faults: int
    redelivered: int
    deliveries: int
    dynamodb: Counter[str]
    seconds: float

    def report(self) -> str:
        documents = self.invoices + self.payments
        ops = sum(self.dynamodb.values())
        return (
            f"e2e: {self.invoices} invoices + {self.payments} payments in {self.seconds:.1f} s; "
            f"{self.qbo_requests} QBO requests ({self.batch_requests} batch, "
            f"{self.qbo_requests / documents:.4f} per document); {self.faults} faults injected "
            f"({self.faults / self.qbo_requests:.1%} of requests); {self.deliveries} deliveries, "
            f"{self.redelivered} messages redelivered; {ops / documents:.1f} DynamoDB operations per "
            f"document {dict(self.dynamodb.most_common())}"
        )


def save_in_waves(push: PushWorld, path: str, documents: list[dict[str, Any]]) -> None:
    """The app saves documents as it goes; the push function drains its queue as Lambda would."""
    for start in range(0, len(documents), WAVE):
        for document in documents[start : start + WAVE]:
            answer = push.put(TENANT, path, document)
            assert answer.status == 202, answer.body
        push.drain(rounds=2_000)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bulk_push_with_faults_on_a_tenth_of_qbo_calls_is_exactly_once_and_to_the_cent(
    push_world: PushWorld, dynamodb_calls: Counter[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a connected tenant whose 100 clients are linked to QBO customers, and its work code to an item
    push = push_world
    realm = push.world.connect(TENANT)
    push.links.link(TENANT, "work_code", "W1", "1")
    for k in range(CLIENTS):
        path = f"/companies/{realm}/entities/Customer"
        customer = push.sandbox("POST", path, {"DisplayName": f"E2E Client {k}"})["Customer"]
        push.links.link(TENANT, "client", f"k{k}", str(customer["Id"]))
    rng = random.Random(SEED)
    invoices = [e2e_invoice(n, rng) for n in range(INVOICES)]
    paid = {doc["id"]: Decimal(doc["total"]) - Decimal(rng.randint(0, 2000)) / 100 for doc in invoices[::2]}
    payments = [
        {
            "id": f"pay{n}",
            "version": 1,
            "client_id": invoices[int(invoice_id[1:])]["client_id"],
            "date": "2026-11-21",
            "amount": str(amount),
            "method": "check",
            "reference": f"CHK-{n:05d}",
            "applications": [{"invoice_id": invoice_id, "amount": str(amount)}],
        }
        for n, (invoice_id, amount) in enumerate(paid.items())
    ]
    # and QBO failing a tenth of its calls, spread over the five kinds of fault, repeatably
    each = 1 - (1 - FAULT_RATE) ** (1 / len(FAULTS))
    for offset, fault in enumerate(FAULTS):
        push.fault(**fault, probability=each, seed=SEED + offset)
    wiring.override(push_qbo_client=impatient_client)
    push.sandbox("DELETE", "/counters")
    dynamodb_calls.clear()

    # When the app saves the invoices, then the payments, and the push function drains its queue
    started = time.perf_counter()
    save_in_waves(push, "invoices", invoices)
    save_in_waves(push, "payments", payments)
    seconds = time.perf_counter() - started
    push.sandbox("DELETE", "/faults")
    counters = push.counters(realm)
    figures = Figures(
        len(invoices),
        len(payments),
        counters["requests"],
        counters["batch_requests"],
        counters["faults_injected"],
        push.redelivered,
        push.deliveries,
        Counter(dynamodb_calls),
        seconds,
    )

    # Then QBO holds every invoice exactly once, with the app's total and the balance its payment left
    ours = [i for i in push.entities(realm, "Invoice") if str(i.get("DocNumber", "")).startswith("E-")]
    by_number = {i["DocNumber"]: i for i in ours}
    assert len(ours) == len(by_number) == INVOICES
    for doc in invoices:
        row = by_number[doc["number"]]
        assert row["TotalAmt"] == Decimal(doc["total"]), doc["id"]
        assert row["Balance"] == Decimal(doc["total"]) - paid.get(doc["id"], Decimal("0.00")), doc["id"]
    # and every payment exactly once, for its amount, applied to its invoice
    qbo_payments = [
        p for p in push.entities(realm, "Payment") if "qbo-link:payment:" in (p.get("PrivateNote") or "")
    ]
    by_marker = {str(p["PrivateNote"]).split()[0]: p for p in qbo_payments}
    assert len(qbo_payments) == len(by_marker) == len(payments)
    invoice_ids = {doc["id"]: by_number[doc["number"]]["Id"] for doc in invoices}
    for payment in payments:
        row = by_marker[f"qbo-link:payment:{payment['id']}"]
        assert row["TotalAmt"] == Decimal(payment["amount"]), payment["id"]
        [line] = row["Line"]
        [linked] = line["LinkedTxn"]
        assert linked["TxnId"] == invoice_ids[payment["applications"][0]["invoice_id"]], payment["id"]
    # and the posting log says so
    summary = push.api("GET", f"/tenants/{TENANT}/postings/summary").json()["by_kind"]
    assert summary["invoice"]["posted"] == INVOICES, summary
    assert summary["payment"]["posted"] == len(payments), summary
    # and the faults really were about a tenth of the calls, and did reach the worker
    assert 0.03 <= figures.faults / figures.qbo_requests <= 0.25, figures.report()
    assert figures.redelivered > 0, figures.report()
    # in batch requests: far fewer QBO requests than documents
    assert figures.qbo_requests < (INVOICES + len(payments)) / 10, figures.report()
    with capsys.disabled():
        print("\n" + figures.report())
