"""The README's first command: ``qbo-link demo`` boots the local stack, connects, onboards, pushes a
month of work over HTTP and checks QuickBooks' state in the sandbox.  And the checks themselves: each
one fails when QuickBooks' state is off (a cent, a duplicate, a payment applied elsewhere)."""

from __future__ import annotations

import copy
import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console

from qbo_link_cli.scenario import Check, Scenario, build_scenario, check_qbo

TODAY = date(2026, 11, 22)


@pytest.mark.slow
def test_the_demo_runs_the_main_job_and_every_check_holds() -> None:
    from qbo_link_cli.demo import run_demo

    buffer = io.StringIO()
    kept: list[str] = []

    def wait() -> None:  # --keep: the stack still answers while the demo waits for Ctrl-C
        import re

        import httpx2

        url = re.search(r"console\s+(http://\S+)", buffer.getvalue())
        assert url is not None
        kept.append(str(httpx2.get(url.group(1), timeout=10).status_code))

    code = run_demo(console=Console(file=buffer, width=140, highlight=False), keep=True, wait=wait)
    out = buffer.getvalue()
    assert code == 0, out
    assert "✘" not in out
    passed = sum(1 for line in out.splitlines() if line.startswith("✔ "))
    assert f"All {passed} checks passed" in out
    assert "/console/?tenant=demo-landscaping" in out
    assert kept == ["200"]
    assert passed >= 15
    for title in ("connected", "automatch", "needs attention", "fixed", "exactly once", "totals to the cent"):
        assert f"✔ {title} — " in out, title
    lines = [line.split() for line in out.splitlines()]
    # The totals table: each kind the same in both systems, to the cent
    invoices = next(words for words in lines if words[:2] == ["invoice", "40"])
    assert invoices[2] == invoices[3]
    assert invoices[4] == "0.00"
    payments = next(words for words in lines if words[:2] == ["payment", "20"])
    assert payments[2] == payments[3]
    # The posting log summary: everything posted, the credit memo's application too
    assert ["credit_application", "1", "1"] in lines
    assert ["all", "74", "74"] in lines
    assert any(line.startswith("Latest exchange: ") and "succeeded" in line for line in out.splitlines())


# --- the checks, against a QuickBooks state built to agree with the app, then spoiled ------------


def _agreeing_state(scenario: Scenario) -> tuple[dict[str, list[dict[str, Any]]], dict[tuple[str, str], str]]:
    """What QuickBooks would hold if every document had been posted right."""
    ids: dict[tuple[str, str], str] = {}
    customers = []
    for n, client in enumerate(scenario.clients, 100):
        qbo_id = scenario.expected_links.get(client["id"], str(n))
        ids[("client", client["id"])] = qbo_id
        row: dict[str, Any] = {"Id": qbo_id, "DisplayName": client["display_name"]}
        if client.get("parent_id"):
            row.update({"Job": True, "ParentRef": {"value": ids[("client", client["parent_id"])]}})
        customers.append(row)
    applied = scenario.applied()
    invoices = []
    for n, invoice in enumerate(scenario.invoices, 500):
        ids[("invoice", invoice["id"])] = str(n)
        total = Decimal(invoice["total"])
        invoices.append(
            {
                "Id": str(n),
                "DocNumber": invoice["number"],
                "PrivateNote": f"qbo-link:invoice:{invoice['id']}",
                "TotalAmt": total,
                "Balance": total - applied.get(invoice["id"], Decimal("0.00")),
            }
        )
    payments = []
    for n, payment in enumerate(scenario.payments, 900):
        ids[("payment", payment["id"])] = str(n)
        lines = [
            {
                "Amount": Decimal(a["amount"]),
                "LinkedTxn": [{"TxnId": ids[("invoice", a["invoice_id"])], "TxnType": "Invoice"}],
            }
            for a in payment["applications"]
        ]
        payments.append({"Id": str(n), "TotalAmt": Decimal(payment["amount"]), "Line": lines})
    memos = [
        {
            "Id": "990",
            "PrivateNote": f"qbo-link:credit_memo:{m['id']}",
            "TotalAmt": Decimal(m["total"]),
            "RemainingCredit": 0,
        }
        for m in scenario.credit_memos
    ]
    state = {"Customer": customers, "Invoice": invoices, "Payment": payments, "CreditMemo": memos}
    return state, ids


def _failed(checks: list[Check]) -> set[str]:
    return {c.title for c in checks if not c.ok}


def test_the_checks_hold_for_a_quickbooks_that_agrees_with_the_app() -> None:
    scenario = build_scenario(TODAY)
    state, ids = _agreeing_state(scenario)
    checks = check_qbo(scenario, state, ids)
    assert _failed(checks) == set()
    assert len(checks) == 7


def test_the_scenario_is_the_realistic_set_the_demo_promises() -> None:
    scenario = build_scenario(TODAY)
    assert len(scenario.clients) == 12
    assert sum(1 for c in scenario.clients if c.get("parent_id")) == 2
    assert len(scenario.invoices) == 40
    assert len(scenario.payments) == 20
    assert len(scenario.credit_memos) == 1
    lines = [line for invoice in scenario.invoices for line in invoice["lines"]]
    assert any(line["taxable"] for line in lines)
    assert any(not line["taxable"] for line in lines)
    assert any(Decimal(i["tax_total"]) > 0 for i in scenario.invoices)
    totals = {i["id"]: Decimal(i["total"]) for i in scenario.invoices}
    assert any(v < totals[k] for k, v in scenario.applied().items())  # partial payments
    assert any(len(p["applications"]) == 2 for p in scenario.payments)
    assert [len(m["applications"]) for m in scenario.credit_memos] == [1]  # applied to an open invoice
    assert len(scenario.waiting_invoices()) == 3
    assert build_scenario(TODAY).invoices == scenario.invoices  # deterministic


@pytest.mark.parametrize(
    ("spoil", "fails"),
    [
        ("a cent off", {"totals to the cent"}),
        ("a duplicate invoice", {"exactly once"}),
        ("a payment not applied", {"balances after payments", "payments applied"}),
        ("a site under another customer", {"sites"}),
        ("a matched client created again", {"clients"}),
        ("no credit memo", {"credit memo"}),
        ("a credit memo left unapplied", {"credit memo", "balances after payments"}),
    ],
)
def test_each_check_fails_when_quickbooks_disagrees(spoil: str, fails: set[str]) -> None:
    scenario = build_scenario(TODAY)
    state, ids = _agreeing_state(scenario)
    state = copy.deepcopy(state)
    invoice = state["Invoice"][7]
    if spoil == "a cent off":
        invoice["TotalAmt"] += Decimal("0.01")
    elif spoil == "a duplicate invoice":
        state["Invoice"].append({**invoice, "Id": "999"})
    elif spoil == "a payment not applied":
        paid = ids[("invoice", scenario.payments[0]["applications"][0]["invoice_id"])]
        row = next(r for r in state["Invoice"] if r["Id"] == paid)
        row["Balance"] = row["TotalAmt"]
        state["Payment"][0]["Line"] = []
    elif spoil == "a site under another customer":
        site = next(r for r in state["Customer"] if r.get("Job"))
        site["ParentRef"] = {"value": "2"}
    elif spoil == "a matched client created again":
        state["Customer"].append({"Id": "777", "DisplayName": scenario.clients[0]["display_name"]})
    elif spoil == "no credit memo":
        state["CreditMemo"] = []
    elif spoil == "a credit memo left unapplied":
        memo = scenario.credit_memos[0]
        state["CreditMemo"][0]["RemainingCredit"] = Decimal(memo["total"])
        credited = ids[("invoice", memo["applications"][0]["invoice_id"])]
        next(r for r in state["Invoice"] if r["Id"] == credited)["Balance"] += Decimal(memo["total"])
    assert _failed(check_qbo(scenario, state, ids)) == fails
