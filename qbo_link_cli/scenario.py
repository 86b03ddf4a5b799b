"""The demo's firm and what it bills, and the checks QuickBooks' state must pass afterwards.

The firm is a landscaping business (the sandbox's seeded US company is "Craig's Design and
Landscaping Services") whose field-service app keeps its clients, work codes and invoices.  Some of
its clients and work codes already exist in QuickBooks (onboarding's automatch links them), some are
new (QBO Link creates them), one work code has no QuickBooks item at all (its invoices wait in
``needs_attention`` until the demo exports it).  Everything is deterministic: the same documents,
amounts and dates relative to the day the demo runs.

``check_qbo`` compares what the app sent with what the sandbox holds, to the cent: one QBO document
per app document, totals, balances after payments, sites under their parents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

from shared.push.models import round_half_up

TENANT: Final = "demo-landscaping"
TAX_RATE: Final = Decimal("0.08")  # the app's own sales tax (the sandbox's California rate is 8 % too)
UNMAPPED_CODE: Final = "wc-irrigation"
ZERO: Final = Decimal("0.00")


@dataclass(frozen=True)
class WorkCode:
    app_id: str
    name: str
    rate: Decimal
    taxable: bool = False


@dataclass(frozen=True)
class Check:
    title: str
    ok: bool
    detail: str


@dataclass
class Scenario:
    """The app's side: catalog entries and the documents to push, as the tenant API takes them."""

    tenant: str
    accounts: list[dict[str, Any]]  # catalog entries (kind account), each with its "id"
    work_codes: list[dict[str, Any]]  # catalog entries (kind work_code)
    clients: list[dict[str, Any]]  # client documents (sites have parent_id)
    invoices: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    credit_memos: list[dict[str, Any]]
    expected_links: dict[str, str] = field(default_factory=dict)  # client app id -> seeded QBO customer

    @property
    def documents(self) -> int:
        return len(self.clients) + len(self.invoices) + len(self.payments) + len(self.credit_memos)

    @property
    def postings(self) -> int:
        """The posting log's entries once all is posted: each document, and each credit memo
        application (QBO Link posts it as its own zero-amount payment)."""
        return self.documents + sum(len(m.get("applications", ())) for m in self.credit_memos)

    def applied(self) -> dict[str, Decimal]:
        """Per invoice id: the sum of the payments and credit memos applied to it."""
        applied: dict[str, Decimal] = {}
        for document in [*self.payments, *self.credit_memos]:
            for application in document.get("applications", ()):
                invoice = application["invoice_id"]
                applied[invoice] = applied.get(invoice, ZERO) + Decimal(application["amount"])
        return applied

    def waiting_invoices(self) -> list[str]:
        """The invoices with a line of the work code QuickBooks has no item for."""
        return [
            invoice["id"]
            for invoice in self.invoices
            if any(line["code"] == UNMAPPED_CODE for line in invoice["lines"])
        ]

    def waiting_payments(self) -> list[str]:
        waiting = set(self.waiting_invoices())
        return [p["id"] for p in self.payments if any(a["invoice_id"] in waiting for a in p["applications"])]


# --- the firm ------------------------------------------------------------------------------------

# (app id, display name, e-mail, seeded QBO customer id or None for a new client, parent app id)
_CLIENTS: Final = (
    ("c-amy", "Amy's Bird Sanctuary", "Birds@Intuit.com", "1", None),
    ("c-bill", "Bill's Windsurf Shop", "Surf@Intuit.com", "2", None),
    ("c-cool", "Cool Cars", "Cool_Cars@intuit.com", "3", None),
    ("c-dukes", "Dukes Basketball Camp", "Dukes_bball@intuit.com", "5", None),
    ("c-freeman", "Freeman Sporting Goods", "Sporting_goods@intuit.com", "7", None),
    ("s-twin-lane", "55 Twin Lane", None, "9", "c-freeman"),
    ("c-geeta", "Geeta Kalapatapu", "Geeta@Kalapatapu.com", "10", None),
    ("c-pye", "Pye's Cakes", None, "15", None),
    # Not the same name as QuickBooks' "Gevelber Photography": automatch only suggests it (the demo
    # confirms the suggestion, as a bookkeeper would on the match tab).
    ("c-gevelber", "Gevelber Photography Studio", "Photography@intuit.com", "11", None),
    ("c-harbor", "Harbor & Pine Legal LLP", "billing@harborpine.example", None, None),
    ("c-lindqvist", "Lindqvist Dental", "office@lindqvist-dental.example", None, None),
    ("s-lindqvist-north", "Lindqvist Dental - North Clinic", None, None, "c-lindqvist"),
)

_WORK_CODES: Final = (
    WorkCode("wc-design", "Design", Decimal("75.00")),
    WorkCode("wc-installation", "Installation", Decimal("50.00")),
    WorkCode("wc-gardening", "Gardening", Decimal("42.50")),
    WorkCode("wc-trimming", "Trimming", Decimal("35.00")),
    WorkCode("wc-maintenance", "Maintenance & Repair", Decimal("62.75")),
    WorkCode("wc-lighting", "Lighting", Decimal("18.40"), taxable=True),
    WorkCode("wc-rocks", "Rocks", Decimal("12.95"), taxable=True),
    WorkCode(UNMAPPED_CODE, "Irrigation Audit", Decimal("95.00")),
)
_REVENUE_ACCOUNT: Final = {"id": "acct-services", "name": "Services", "type": "revenue"}
_INVOICES: Final = 40
_WAITING_EVERY: Final = 13  # every 13th invoice bills an irrigation audit: 3 of 40
_QUANTITIES: Final = (Decimal("1"), Decimal("2.5"), Decimal("4"), Decimal("1.25"), Decimal("6"), Decimal("3"))


def _invoice(index: int, client_id: str, day: date) -> dict[str, Any]:
    lines: list[dict[str, Any]] = []
    codes = [_WORK_CODES[(index + k * 3) % 7] for k in range(1 + index % 3)]
    if index % _WAITING_EVERY == 5:
        codes.append(_WORK_CODES[-1])
    for number, code in enumerate(codes, 1):
        quantity = _QUANTITIES[(index + number) % len(_QUANTITIES)]
        amount = round_half_up(quantity * code.rate)
        lines.append(
            {
                "line_id": str(number),
                "kind": "work",
                "code": code.app_id,
                "description": f"{code.name} — visit {index + 1}",
                "quantity": str(quantity),
                "rate": str(code.rate),
                "amount": str(amount),
                "taxable": code.taxable,
            }
        )
    subtotal = sum((Decimal(line["amount"]) for line in lines), ZERO)
    taxable = sum((Decimal(line["amount"]) for line in lines if line["taxable"]), ZERO)
    tax = round_half_up(taxable * TAX_RATE)
    return {
        "id": f"inv-{5001 + index}",
        "version": 1,
        "number": f"L-{5001 + index}",
        "date": day.isoformat(),
        "due_date": (day + timedelta(days=30)).isoformat(),
        "client_id": client_id,
        "lines": lines,
        "tax_total": str(tax),
        "total": str(subtotal + tax),
        "memo": "Thank you for your business.",
    }


def build_scenario(today: date, tenant: str = TENANT) -> Scenario:
    """The firm's catalog and documents, dated in the 40 days before ``today``."""
    billable = [c[0] for c in _CLIENTS]
    start = today - timedelta(days=_INVOICES)
    invoices = [
        _invoice(i, billable[(i * 5) % len(billable)], start + timedelta(days=i)) for i in range(_INVOICES)
    ]
    payments = _payments(invoices, today)
    assert {i["id"] for i in invoices} >= {a["invoice_id"] for p in payments for a in p["applications"]}
    work_codes = [
        {"id": code.app_id, "version": 1, "name": code.name, "account_id": _REVENUE_ACCOUNT["id"]}
        for code in _WORK_CODES
    ]
    return Scenario(
        tenant=tenant,
        accounts=[{**_REVENUE_ACCOUNT, "version": 1}],
        work_codes=work_codes,
        clients=_clients(),
        invoices=invoices,
        payments=payments,
        credit_memos=[_credit_memo(invoices, payments, today)],
        expected_links={c[0]: c[3] for c in _CLIENTS if c[3] is not None},
    )


def _clients() -> list[dict[str, Any]]:
    clients = []
    for app_id, name, email, _qbo, parent in _CLIENTS:
        client: dict[str, Any] = {"id": app_id, "version": 1, "type": "client", "display_name": name}
        if parent is None:
            client["company_name"] = name
        else:
            client["parent_id"] = parent
        if email:
            client["email"] = email
        clients.append(client)
    return clients


def _payments(invoices: Sequence[Mapping[str, Any]], today: date) -> list[dict[str, Any]]:
    """Every other of the first 40 invoices paid, some in part; the last payment settles two."""
    payments = []
    for n in range(20):
        invoice = invoices[n * 2]
        total = Decimal(invoice["total"])
        if n % 4 == 1:  # a partial payment: half, to the cent
            amount = round_half_up(total / 2)
        elif n % 7 == 3:  # a round partial amount
            amount = min(total, Decimal("100.00"))
        else:
            amount = total
        applications = [{"invoice_id": invoice["id"], "amount": str(amount)}]
        paid_date = date.fromisoformat(invoice["date"]) + timedelta(days=3)
        payments.append(
            {
                "id": f"pay-{7001 + n}",
                "version": 1,
                "client_id": invoice["client_id"],
                "date": min(paid_date, today).isoformat(),
                "amount": str(amount),
                "method": "Check" if n % 2 else "Visa",
                "reference": f"R{7001 + n}",
                "applications": applications,
            }
        )
    # One payment settles two invoices of the same client at once.
    first, second = invoices[3], next(i for i in invoices[4:] if i["client_id"] == invoices[3]["client_id"])
    both = Decimal(first["total"]) + Decimal(second["total"])
    payments[-1] = {
        **payments[-1],
        "client_id": first["client_id"],
        "amount": str(both),
        "applications": [
            {"invoice_id": first["id"], "amount": first["total"]},
            {"invoice_id": second["id"], "amount": second["total"]},
        ],
    }
    return payments


def _credit_memo(
    invoices: Sequence[Mapping[str, Any]], payments: Sequence[Mapping[str, Any]], today: date
) -> dict[str, Any]:
    """A 75.00 goodwill credit, applied to the latest invoice with 75.00 still open (one that does
    not wait), as the app says: QBO Link applies it with a zero-amount payment, so QuickBooks'
    "automatically apply credits" cannot spend it elsewhere first."""
    paid: dict[str, Decimal] = {}
    for payment in payments:
        for application in payment["applications"]:
            paid[application["invoice_id"]] = paid.get(application["invoice_id"], ZERO) + Decimal(
                application["amount"]
            )
    target = next(
        i
        for n, i in reversed(list(enumerate(invoices)))
        if n % _WAITING_EVERY != 5 and Decimal(i["total"]) - paid.get(i["id"], ZERO) >= 75
    )
    return {
        "id": "cm-9001",
        "version": 1,
        "number": "CM-9001",
        "date": (today - timedelta(days=2)).isoformat(),
        "client_id": target["client_id"],
        "lines": [
            {
                "line_id": "1",
                "kind": "work",
                "code": "wc-design",
                "description": "Design revision not delivered",
                "quantity": "1",
                "rate": "75.00",
                "amount": "75.00",
                "taxable": False,
            }
        ],
        "tax_total": "0.00",
        "total": "75.00",
        "memo": "Goodwill credit",
        "applications": [{"invoice_id": target["id"], "amount": "75.00"}],
    }


# --- the checks ----------------------------------------------------------------------------------


def _money(value: Any) -> Decimal:
    return round_half_up(Decimal(str(value)))


def _ours(rows: Sequence[Mapping[str, Any]], marker_kind: str, app_id: str) -> list[Mapping[str, Any]]:
    marker = f"qbo-link:{marker_kind}:{app_id}"
    return [row for row in rows if marker in str(row.get("PrivateNote", ""))]


def check_qbo(
    scenario: Scenario,
    qbo: Mapping[str, Sequence[Mapping[str, Any]]],
    qbo_ids: Mapping[tuple[str, str], str],
) -> list[Check]:
    """What the sandbox holds (``qbo``: entity name -> rows) against what the app sent.

    ``qbo_ids``: (kind, app id) -> the QBO id the posting log recorded."""
    return [
        *_check_clients(scenario, qbo, qbo_ids),
        *_check_invoices(scenario, qbo),
        _check_payments(scenario, qbo, qbo_ids),
        _check_credit_memos(scenario, qbo),
    ]


def _check_clients(
    scenario: Scenario,
    qbo: Mapping[str, Sequence[Mapping[str, Any]]],
    qbo_ids: Mapping[tuple[str, str], str],
) -> list[Check]:
    """One customer per client (the seeded ones reused, not copied); sites under their parent."""
    customers = {row["Id"]: row for row in qbo.get("Customer", ())}
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for row in customers.values():
        by_name.setdefault(str(row.get("DisplayName", "")).casefold(), []).append(row)
    missing = [c["id"] for c in scenario.clients if qbo_ids.get(("client", c["id"])) not in customers]
    doubled = [
        c["display_name"] for c in scenario.clients if len(by_name.get(c["display_name"].casefold(), [])) > 1
    ]
    relinked = {
        app: qbo_ids.get(("client", app))
        for app, seeded in scenario.expected_links.items()
        if qbo_ids.get(("client", app)) != seeded
    }
    clients = Check(
        "clients",
        not missing and not doubled and not relinked,
        f"{len(scenario.clients)} clients in QBO once each: {len(scenario.expected_links)} matched to "
        f"existing customers, {len(scenario.clients) - len(scenario.expected_links)} created"
        + (f"; missing {missing}" if missing else "")
        + (f"; duplicated {doubled}" if doubled else "")
        + (f"; linked elsewhere {relinked}" if relinked else ""),
    )
    wrong_parent = []
    for site in (c for c in scenario.clients if c.get("parent_id")):
        row = customers.get(qbo_ids.get(("client", site["id"]), ""), {})
        parent = qbo_ids.get(("client", site["parent_id"]))
        if (row.get("ParentRef") or {}).get("value") != parent or not row.get("Job"):
            wrong_parent.append(site["id"])
    sites = sum(1 for c in scenario.clients if c.get("parent_id"))
    return [
        clients,
        Check(
            "sites",
            not wrong_parent,
            f"{sites} sites are sub-customers of their client's customer"
            + (f"; wrong: {wrong_parent}" if wrong_parent else ""),
        ),
    ]


def _check_invoices(scenario: Scenario, qbo: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Check]:
    """Exactly one QBO invoice per app invoice, to the cent, balance = total - payments applied."""
    invoices = list(qbo.get("Invoice", ()))
    applied = scenario.applied()
    counts: dict[str, int] = {}
    totals_off: list[str] = []
    balances_off: list[str] = []
    app_sum = qbo_sum = ZERO
    for invoice in scenario.invoices:
        found = _ours(invoices, "invoice", invoice["id"])
        counts[invoice["id"]] = len(found)
        if len(found) != 1:
            continue
        row = found[0]
        total = Decimal(invoice["total"])
        app_sum += total
        qbo_sum += _money(row["TotalAmt"])
        if _money(row["TotalAmt"]) != total or row.get("DocNumber") != invoice["number"]:
            totals_off.append(f"{invoice['number']} app {total} QBO {_money(row['TotalAmt'])}")
        expected_balance = total - applied.get(invoice["id"], ZERO)
        if _money(row.get("Balance", 0)) != expected_balance:
            balances_off.append(
                f"{invoice['number']} expected {expected_balance} QBO {_money(row.get('Balance', 0))}"
            )
    not_once = {k: v for k, v in counts.items() if v != 1}
    partial = sum(
        1
        for k, v in applied.items()
        if v < Decimal(next(i["total"] for i in scenario.invoices if i["id"] == k))
    )
    return [
        Check(
            "exactly once",
            not not_once,
            f"{len(scenario.invoices)} invoices, each in QBO exactly once"
            + (f"; not once: {not_once}" if not_once else ""),
        ),
        Check(
            "totals to the cent",
            not totals_off and app_sum == qbo_sum,
            f"invoices total {app_sum} in the app and {qbo_sum} in QBO, each invoice equal (tax included)"
            + (f"; off: {totals_off[:3]}" if totals_off else ""),
        ),
        Check(
            "balances after payments",
            not balances_off,
            f"{len(applied)} paid invoices ({partial} partly) show the right open balance"
            + (f"; off: {balances_off[:3]}" if balances_off else ""),
        ),
    ]


def _check_payments(
    scenario: Scenario,
    qbo: Mapping[str, Sequence[Mapping[str, Any]]],
    qbo_ids: Mapping[tuple[str, str], str],
) -> Check:
    """One QBO payment per app payment, the right amount, applied to the invoices it pays."""
    payments = list(qbo.get("Payment", ()))
    invoice_ids = {i["id"]: qbo_ids.get(("invoice", i["id"])) for i in scenario.invoices}
    payments_off = []
    for payment in scenario.payments:
        wanted_id = qbo_ids.get(("payment", payment["id"]))
        row = next((r for r in payments if r["Id"] == wanted_id), {})
        if not row or _money(row["TotalAmt"]) != Decimal(payment["amount"]):
            payments_off.append(payment["id"])
            continue
        linked = sorted(
            (t["TxnId"], _money(line["Amount"]))
            for line in row.get("Line", ())
            for t in line.get("LinkedTxn", ())
            if t.get("TxnType") == "Invoice"
        )
        wanted = sorted((invoice_ids[a["invoice_id"]], Decimal(a["amount"])) for a in payment["applications"])
        if linked != wanted:
            payments_off.append(payment["id"])
    ids = [qbo_ids.get(("payment", p["id"])) for p in scenario.payments]
    return Check(
        "payments applied",
        not payments_off and len(set(ids)) == len(ids),
        f"{len(scenario.payments)} payments, one QBO payment each, applied to the invoices they pay"
        + (f"; wrong: {payments_off}" if payments_off else ""),
    )


def _check_credit_memos(scenario: Scenario, qbo: Mapping[str, Sequence[Mapping[str, Any]]]) -> Check:
    """One QBO credit memo per app credit memo, its remaining credit what the app did not apply."""
    memos = list(qbo.get("CreditMemo", ()))
    memos_off = []
    for memo in scenario.credit_memos:
        rows = _ours(memos, "credit_memo", memo["id"])
        spent = sum((Decimal(a["amount"]) for a in memo.get("applications", ())), ZERO)
        left = Decimal(memo["total"]) - spent
        if [(_money(r["TotalAmt"]), _money(r.get("RemainingCredit", 0))) for r in rows] != [
            (Decimal(memo["total"]), left)
        ]:
            memos_off.append(memo["id"])
    return Check(
        "credit memo",
        not memos_off,
        f"{len(scenario.credit_memos)} credit memo in QBO once, for "
        f"{sum(Decimal(m['total']) for m in scenario.credit_memos)}, applied to the invoice the app names"
        + (f"; wrong: {memos_off}" if memos_off else ""),
    )
