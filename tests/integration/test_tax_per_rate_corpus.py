"""Every agency's tax in QBO equals the app's, for every Canadian document the app can produce.

A seeded random corpus of CA invoices and credit memos — lines under GST, HST ON, GST/PST BC (two
rates, two agencies), zero-rated and exempt, with quantities and rates, and negative "credit" lines
large enough to make a rate's tax negative while the document's total stays positive — whose tax
the app computes by its own rules (per line or per tax on its total, half up or half even) and
sends per rate as ``tax_lines``.  Each document is built by ``shared.push.payloads`` with the rates
read from the sandbox's CA company through the mapping cache's own conversions, written by the QBO
client's exact JSON encoder and POSTed to the sandbox over real sockets.  QBO's ``TotalAmt``,
``TotalTax``, open amount and the tax of every rate (hence of every agency) must equal the app's:
every difference is collected, and there must be none.

``QBO_LINK_TAX_CORPUS`` sets the corpus size (default: the issue's 1,000 documents, about 4 s).
Sent as before (``TotalTax`` alone, without ``TaxLine``) the same corpus posts 290 of the 1,000 with
a different tax on some rate and 227 with a different tax for some agency; totals agree either way.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from shared.mapping.catalog import qbo_entity, tax_rate, with_sales_rates
from shared.push.models import AppCreditMemo, AppInvoice
from shared.push.payloads import (
    CompanyFacts,
    ResolvedMappings,
    SalesTaxRate,
    credit_memo_payload,
    invoice_payload,
    rate_for_percent,
)
from shared.qbo.client import decode_json, encode_json
from tests.qbo_helpers import Connection, connect, unthrottled_sandbox

D = Decimal
CENT = D("0.01")
ZERO = D("0.00")
CORPUS = int(os.environ.get("QBO_LINK_TAX_CORPUS", "1000"))
SEED = 20261120
CA = CompanyFacts("CA", "CAD", "per_line")
ITEMS = {("work", "W"): "1", ("expense", "E"): "2"}
# The app's taxes → the CA seed's tax codes, and the components the app computes for each.
TAX_CODES = {"GST": "2", "HST": "3", "BC": "4", "EX": "5", "ZR": "6"}
COMPONENTS = {"GST": (D(5),), "HST": (D(13),), "BC": (D(5), D(7)), "EX": (D(0),), "ZR": (D(0),)}
ROUNDINGS = (ROUND_HALF_UP, ROUND_HALF_EVEN)

_numbers = itertools.count(1)


@dataclass(frozen=True)
class Company:
    conn: Connection
    rates: dict[str, tuple[SalesTaxRate, ...]]  # QBO tax code id -> its sales rates
    agency_of: dict[str, str]  # QBO TaxRate id -> agency id


def rows(conn: Connection, statement: str) -> list[dict[str, Any]]:
    answer = conn.query(statement)
    assert answer.status_code == 200, answer.text
    entity = statement.split()[3]
    found: list[dict[str, Any]] = decode_json(answer.content)["QueryResponse"].get(entity, [])
    return found


@pytest.fixture(scope="module")
def company() -> Iterator[Company]:
    """One sandbox and one CA company for the module; the tax codes read as the cache reads them."""
    with unthrottled_sandbox() as server:
        conn = connect(server, sandbox_country="CA")
        try:
            known = {rate.id: rate for row in rows(conn, "SELECT * FROM TaxRate") if (rate := tax_rate(row))}
            codes = [
                with_sales_rates(qbo_entity("tax", row), row, known)
                for row in rows(conn, "SELECT * FROM TaxCode")
            ]
            rates = {
                code.id: tuple(SalesTaxRate(r.id, r.percent) for r in code.rates or ())
                for code in codes
                if code.rates is not None
            }
            agency_of = {rate.id: rate.agency_id or "" for rate in known.values()}
            assert {TAX_CODES[t] for t in TAX_CODES} <= set(rates)
            yield Company(conn, rates, agency_of)
        finally:
            conn.close()


# --- the corpus -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    kind: str  # "invoice" | "credit_memo"
    document: AppInvoice | AppCreditMemo
    mappings: ResolvedMappings


def scaled(rng: random.Random, low: int, high: int, max_places: int) -> Decimal:
    """A decimal in [low, high] with 0..max_places decimals."""
    places = rng.randint(0, max_places)
    scale = 10**places
    return D(rng.randint(low * scale, high * scale)).scaleb(-places)


def app_tax(
    lines: list[dict[str, Any]], *, per_line: bool, rounding: str
) -> dict[tuple[str, Decimal], Decimal]:
    """The app's own tax per (tax, component): per line then summed, or on each tax's total."""

    def rounded(value: Decimal) -> Decimal:
        return value.quantize(CENT, rounding=rounding)

    taxed: dict[tuple[str, Decimal], Decimal] = {}
    if per_line:
        for ln in lines:
            for percent in COMPONENTS[ln["tax_id"]]:
                key = (ln["tax_id"], percent)
                taxed[key] = taxed.get(key, ZERO) + rounded(ln["amount"] * percent / 100)
        return taxed
    totals: dict[str, Decimal] = {}
    for ln in lines:
        totals[ln["tax_id"]] = totals.get(ln["tax_id"], ZERO) + ln["amount"]
    for tax_id, total in totals.items():
        for percent in COMPONENTS[tax_id]:
            taxed[(tax_id, percent)] = rounded(total * percent / 100)
    return taxed


def draw_lines(rng: random.Random) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 6)):
        tax_id = rng.choice(["GST", "HST", "BC", "BC", "HST", "ZR", "EX"])
        if rng.random() < 0.5:
            quantity, unit = scaled(rng, 0, 200, 4), scaled(rng, 0, 3000, 4)
            amount = (quantity * unit).quantize(CENT, rounding=ROUND_HALF_UP)
            lines.append({"tax_id": tax_id, "quantity": quantity, "rate": unit, "amount": amount})
        else:
            lines.append({"tax_id": tax_id, "amount": scaled(rng, 0, 20000, 2)})
    # Credits: negative lines, some larger than everything else under their tax (a rate's tax goes
    # negative), the document's total kept positive by the caller.
    gross = sum((ln["amount"] for ln in lines), ZERO)
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        tax_id = rng.choice(["GST", "HST", "BC", "ZR"])
        amount = (gross * D(rng.randint(1, 60)) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        if amount == 0:
            continue
        if rng.random() < 0.5:
            lines.append({"tax_id": tax_id, "quantity": D(1), "rate": -amount, "amount": -amount})
        else:
            lines.append({"tax_id": tax_id, "quantity": D(-1), "rate": amount, "amount": -amount})
    rng.shuffle(lines)
    return lines


def draw(rng: random.Random, company: Company) -> Example:
    while True:
        lines = draw_lines(rng)
        taxed = app_tax(lines, per_line=rng.random() < 0.5, rounding=rng.choice(ROUNDINGS))
        tax_total = sum(taxed.values(), ZERO)
        subtotal = sum((ln["amount"] for ln in lines), ZERO)
        if subtotal + tax_total >= 0:
            break
    tax_lines = []
    for (tax_id, percent), amount in taxed.items():
        if amount == 0 and rng.random() < 0.5:
            continue  # a rate the app charged nothing at may be left out: it goes as 0
        tax_line: dict[str, Any] = {"tax_id": tax_id, "percent": percent, "amount": amount}
        if rng.random() < 0.3:
            tax_line["taxable_amount"] = sum((ln["amount"] for ln in lines if ln["tax_id"] == tax_id), ZERO)
        tax_lines.append(tax_line)
    if not tax_lines:  # every amount zero and every line left out: still a per-rate document
        (tax_id, percent), amount = next(iter(taxed.items()))
        tax_lines.append({"tax_id": tax_id, "percent": percent, "amount": amount})
    app_lines = []
    for index, ln in enumerate(lines, start=1):
        kind, code = rng.choice(list(ITEMS))
        app_line = {
            "line_id": str(index),
            "kind": kind,
            "code": code,
            "amount": ln["amount"],
            "tax_id": ln["tax_id"],
        }
        if "quantity" in ln:
            app_line["quantity"] = ln["quantity"]
            app_line["rate"] = ln["rate"]
        app_lines.append(app_line)
    kind = rng.choice(["invoice", "credit_memo"])
    data = {
        "id": f"doc-{next(_numbers)}",
        "version": 1,
        "number": f"T{next(_numbers)}",
        "date": "2026-11-20",
        "client_id": "client-1",
        "lines": app_lines,
        "tax_lines": tax_lines,
        "tax_total": tax_total,
        "total": subtotal + tax_total,
    }
    document: AppInvoice | AppCreditMemo = (
        AppInvoice.model_validate(data) if kind == "invoice" else AppCreditMemo.model_validate(data)
    )
    # Credit memos go to another customer: QBO's AutoApplyCredit (on in the seed) would otherwise
    # spend them on the next invoice and its open amount would no longer be its total.
    mappings = ResolvedMappings(
        customer_id="1" if kind == "invoice" else "2",
        items=ITEMS,
        tax_codes=TAX_CODES,
        tax_code_rates=company.rates,
    )
    return Example(kind, document, mappings)


# --- the check --------------------------------------------------------------------------------


def post(conn: Connection, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = conn.http.post(
        f"{conn.base}/{entity}", content=encode_json(body), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = decode_json(answer.content)
    return result


def app_per_rate(example: Example, company: Company) -> dict[str, Decimal]:
    """The app's tax of each QBO rate of the document's codes (a rate it left out is 0)."""
    per_rate: dict[str, Decimal] = {}
    for line in example.document.lines:
        assert line.tax_id is not None
        for rate in company.rates[TAX_CODES[line.tax_id]]:
            per_rate.setdefault(rate.rate_id, ZERO)
    for tax_line in example.document.tax_lines:
        named = rate_for_percent(company.rates[TAX_CODES[tax_line.tax_id]], tax_line.percent)
        assert named is not None
        per_rate[named.rate_id] += tax_line.amount
    return per_rate


def by_agency(per_rate: dict[str, Decimal], company: Company) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for rate_id, amount in per_rate.items():
        agency = company.agency_of[rate_id]
        totals[agency] = totals.get(agency, ZERO) + amount
    return totals


def exact(value: Any) -> Decimal:
    """A JSON number from QBO (int or Decimal) as a Decimal; never through float."""
    assert isinstance(value, int | Decimal), value
    return D(value)


def differences(example: Example, company: Company) -> list[str]:
    """Every way QBO's document differs from the app's (empty when they agree to the cent)."""
    document = example.document
    if isinstance(document, AppInvoice):
        saved = post(company.conn, "invoice", invoice_payload(document, example.mappings, CA))["Invoice"]
        open_amount = saved["Balance"]
    else:
        saved = post(company.conn, "creditmemo", credit_memo_payload(document, example.mappings, CA))[
            "CreditMemo"
        ]
        open_amount = saved["RemainingCredit"]
    found: list[str] = []

    def compare(what: str, qbo: Any, app: Any) -> None:
        if qbo != app:
            found.append(f"{document.number} {what}: QBO {qbo}, app {app}")

    compare("TotalAmt", exact(saved["TotalAmt"]), document.total)
    compare("TotalTax", exact(saved["TxnTaxDetail"]["TotalTax"]), document.tax_total)
    compare("open amount", exact(open_amount), document.total)
    qbo_per_rate: dict[str, Decimal] = {}
    for line in saved["TxnTaxDetail"].get("TaxLine", []):
        rate_id = line["TaxLineDetail"]["TaxRateRef"]["value"]
        qbo_per_rate[rate_id] = qbo_per_rate.get(rate_id, ZERO) + exact(line["Amount"])
    app_rates = app_per_rate(example, company)
    compare("tax per rate", qbo_per_rate, app_rates)
    compare("tax per agency", by_agency(qbo_per_rate, company), by_agency(app_rates, company))
    return found


def test_every_agency_gets_the_apps_tax_on_every_document_of_the_corpus(company: Company) -> None:
    rng = random.Random(SEED)
    found: list[str] = []
    negative_rates = 0
    for _ in range(CORPUS):
        example = draw(rng, company)
        negative_rates += any(amount < 0 for amount in app_per_rate(example, company).values())
        found.extend(differences(example, company))

    assert found == [], f"{len(found)} difference(s) in {CORPUS} documents: {found[:5]}"
    assert negative_rates > CORPUS // 20  # the corpus does hold the credit-heavy cases
