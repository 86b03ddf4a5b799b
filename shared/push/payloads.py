"""Pure builders: an app document + its resolved mappings + the company's facts → a QBO JSON body.

Contracts: docs/push.md ("Payload rules").  Money stays ``Decimal`` all the way into the body (the
QBO client writes a ``Decimal`` as an exact JSON number); dates are ISO strings.  Nothing here
reads a store or calls QBO: whatever a payload needs is resolved beforehand and handed over as
:class:`ResolvedMappings` and :class:`CompanyFacts`; ``shared.push.readiness`` says whether it can
be resolved.

Tax, so that QBO's ``TotalAmt`` equals the app's ``total`` to the cent whatever rounding the app
uses (per line or on the total, half up or half even): the app's ``tax_total`` always goes as an
explicit ``TxnTaxDetail.TotalTax`` (QBO honours it in every country instead of computing its own).
US lines carry ``TAX``/``NON`` from the ``taxable`` flag, other countries the QBO tax code mapped
from each line's ``tax_id`` with ``GlobalTaxCalculation: TaxExcluded`` (the app's amounts are net).

Tax per agency (non-US).  A bare ``TotalTax`` leaves QBO to split it across the rates of the
document's codes, and GST and PST are owed to different agencies; outside the US the documented
place for the amount of each rate is ``TxnTaxDetail.TaxLine``.  So a document with ``tax_lines``
also sends one ``TaxLine`` per QBO TaxRate with the app's own amount: each tax line's percent
picks the rate among the sales rates of its tax's code (:func:`rate_for_percent`, the rule
readiness applies too), amounts of one rate shared by several codes are added up, and every other
rate of the lines' codes goes with 0 (the app's breakdown is complete: QBO must not compute one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from shared.mapping.markers import MarkerKind, marker
from shared.push.models import (
    DISPLAY_NAME_MAX,
    PRIVATE_NOTE_MAX,
    AppAddress,
    AppClient,
    AppCreditApplication,
    AppCreditMemo,
    AppInvoice,
    AppInvoiceLine,
    AppPayment,
)

Payload = dict[str, Any]
TaxModel = Literal["us_automated", "us_manual", "per_line"]
_SPACES = re.compile(r"\s+")
ZERO = Decimal("0.00")


class PayloadError(ValueError):
    """The document cannot be turned into a QBO body with what was resolved (a readiness gap)."""


class MissingMappingError(PayloadError):
    """A code, tax or invoice the payload needs has no QBO counterpart in the resolved mappings."""


@dataclass(frozen=True)
class SalesTaxRate:
    """One sales rate of a QBO tax code: the TaxRate's id and its percentage (``RateValue``)."""

    rate_id: str
    percent: Decimal


def rate_for_percent(rates: Iterable[SalesTaxRate], percent: Decimal) -> SalesTaxRate | None:
    """The one rate of ``rates`` at ``percent`` (by value: 5 equals 5.00), or None when no rate or
    more than one has it: a percent that fits two rates does not say which agency is owed the tax."""
    found = [rate for rate in rates if rate.percent == percent]
    return found[0] if len(found) == 1 else None


class ExistingEntity(NamedTuple):
    """What the link store remembers of a QBO entity: the pair a sparse update needs."""

    id: str
    sync_token: str


@dataclass(frozen=True)
class CompanyFacts:
    """The connected company as the connection records it (CompanyInfo + Preferences)."""

    country: str  # ISO 3166 alpha-2, as CompanyInfo.Country
    currency: str  # home currency, ISO 4217
    tax_model: TaxModel

    def __post_init__(self) -> None:
        us = self.country == "US"
        if us != (self.tax_model in ("us_automated", "us_manual")):
            raise ValueError(f"tax model {self.tax_model!r} does not fit a company in {self.country!r}")

    @property
    def us(self) -> bool:
        return self.tax_model != "per_line"


def _frozen_map(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class ResolvedMappings:
    """The QBO side of everything one document refers to, looked up before the payload is built.

    ``items`` maps a line's (kind, code) to a QBO Item id; ``tax_codes`` an app tax id to a QBO
    TaxCode id (non-US); ``tax_code_rates`` a QBO TaxCode id to its sales rates (non-US documents
    with ``tax_lines``); ``invoices`` an app invoice id to the QBO Invoice id (payments).
    ``txn_tax_code_id`` is the US transaction-level tax code (``TxnTaxCodeRef``) when the tenant
    mapped a default one; ``revenue_account_id`` None keeps each item's own income account;
    ``deposit_account_id`` None means Undeposited Funds.
    """

    customer_id: str
    customer_name: str | None = None
    items: Mapping[tuple[str, str], str] = field(default_factory=dict)
    tax_codes: Mapping[str, str] = field(default_factory=dict)
    tax_code_rates: Mapping[str, tuple[SalesTaxRate, ...]] = field(default_factory=dict)
    txn_tax_code_id: str | None = None
    revenue_account_id: str | None = None
    deposit_account_id: str | None = None
    invoices: Mapping[str, str] = field(default_factory=dict)
    payment_method_id: str | None = None
    credit_memo_id: str | None = None  # a credit application's QBO CreditMemo
    # A payment's most per QBO invoice id, when QBO is known to hold less open on that invoice than
    # the app applies (a credit QBO applied by itself): the rest stays unapplied on the customer.
    open_balances: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Frozen all the way down: a builder must not be able to change what another one sees.
        object.__setattr__(self, "items", _frozen_map(self.items))
        object.__setattr__(self, "tax_codes", _frozen_map(self.tax_codes))
        object.__setattr__(
            self, "tax_code_rates", _frozen_map({c: tuple(r) for c, r in self.tax_code_rates.items()})
        )
        object.__setattr__(self, "invoices", _frozen_map(self.invoices))
        object.__setattr__(self, "open_balances", _frozen_map(self.open_balances))


@dataclass(frozen=True)
class JournalAccounts:
    """The accounts of a summarised day (QBO ids): A/R, tax payable, and where revenue goes.

    A line's revenue account is ``revenue_account_id`` when the tenant set one, else the income
    account of the line's item (``item_income_accounts``, from the imported items).
    """

    master_customer_id: str
    receivable_account_id: str
    tax_payable_account_id: str
    revenue_account_id: str | None = None
    item_income_accounts: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_income_accounts", _frozen_map(self.item_income_accounts))


# --- markers ----------------------------------------------------------------------------------


def _private_note(kind: MarkerKind, app_id: str, memo: str | None) -> str:
    note = marker(kind, app_id)
    if memo:
        note = f"{note}\n{memo}"
    return note[:PRIVATE_NOTE_MAX]


# --- shared pieces ----------------------------------------------------------------------------


def _ref(value: str, name: str | None = None) -> dict[str, str]:
    ref = {"value": value}
    if name:
        ref["name"] = name
    return ref


def _with_existing(body: Payload, existing: tuple[str, str] | None) -> Payload:
    """A create body as is, or the same body as a sparse update of the stored entity."""
    if existing is None:
        return body
    entity_id, sync_token = existing
    return {"Id": entity_id, "SyncToken": sync_token, "sparse": True, **body}


def void_payload(existing: tuple[str, str]) -> Payload:
    """The body of ``POST /{entity}?operation=void`` (invoice, payment, credit memo)."""
    entity_id, sync_token = existing
    return {"Id": entity_id, "SyncToken": sync_token}


def _date(value: date) -> str:
    return value.isoformat()


# --- customers --------------------------------------------------------------------------------


def display_name(client: AppClient) -> str:
    """The client's QBO DisplayName.

    The app's ``display_name``, else its company name, else the person's name.  QBO refuses ``:``
    in a DisplayName (it separates levels in FullyQualifiedName), so each becomes ``-``; runs of
    whitespace become one space and the result is cut to QBO's 500 characters.
    """
    person = " ".join(part for part in (client.first_name, client.last_name) if part)
    raw = client.display_name or client.company_name or person
    text = _SPACES.sub(" ", raw.replace(":", "-")).strip()
    return text[:DISPLAY_NAME_MAX].rstrip()


def _address(address: AppAddress) -> Payload:
    fields = (
        ("Line1", address.line1),
        ("Line2", address.line2),
        ("Line3", address.line3),
        ("City", address.city),
        ("CountrySubDivisionCode", address.region),
        ("PostalCode", address.postal_code),
        ("Country", address.country),
    )
    return {key: value for key, value in fields if value is not None}


def customer_payload(
    client: AppClient, parent_qbo_id: str | None, existing: tuple[str, str] | None
) -> Payload:
    """A QBO Customer (a sub-customer with ``Job``/``ParentRef`` when ``parent_qbo_id`` is given).

    The marker goes in ``Notes`` on create only, so an update never overwrites a bookkeeper's
    notes.  ``tax_exempt`` is not sent: the app's own tax travels on each document (TAX/NON or
    tax codes plus an explicit total), and a US customer marked non-taxable would also need an
    exemption reason the app does not have.
    """
    if client.parent_id is not None and parent_qbo_id is None:
        raise MissingMappingError(
            f"client {client.id!r} is a site of {client.parent_id!r}, which is not linked"
        )
    body: Payload = {"DisplayName": display_name(client)}
    if client.company_name:
        body["CompanyName"] = client.company_name
    if client.first_name:
        body["GivenName"] = client.first_name
    if client.last_name:
        body["FamilyName"] = client.last_name
    if client.email:
        body["PrimaryEmailAddr"] = {"Address": client.email}
    if client.phone:
        body["PrimaryPhone"] = {"FreeFormNumber": client.phone}
    if client.mobile:
        body["Mobile"] = {"FreeFormNumber": client.mobile}
    if client.billing_address is not None:
        body["BillAddr"] = _address(client.billing_address)
    if client.shipping_address is not None:
        body["ShipAddr"] = _address(client.shipping_address)
    if parent_qbo_id is not None:
        body["Job"] = True
        body["ParentRef"] = {"value": parent_qbo_id}
    body["Active"] = client.active
    if existing is None:
        body["Notes"] = marker("site" if client.parent_id else "client", client.id)
    return _with_existing(body, existing)


# --- invoices and credit memos ----------------------------------------------------------------


def _item_id(line: AppInvoiceLine, mappings: ResolvedMappings) -> str:
    item = mappings.items.get((line.kind, line.code))
    if item is None:
        raise MissingMappingError(
            f"line {line.line_id!r}: {line.kind} code {line.code!r} is not mapped to an item"
        )
    return item


def _tax_code(line: AppInvoiceLine, mappings: ResolvedMappings, facts: CompanyFacts) -> str:
    if facts.us:
        if line.taxable is None:
            raise PayloadError(f"line {line.line_id!r} has no taxable flag (a US company needs one)")
        return "TAX" if line.taxable else "NON"
    if line.tax_id is None:
        raise PayloadError(f"line {line.line_id!r} has no tax_id (a {facts.country} company needs one)")
    code = mappings.tax_codes.get(line.tax_id)
    if code is None:
        raise MissingMappingError(f"line {line.line_id!r}: tax {line.tax_id!r} is not mapped to a tax code")
    return code


def _sales_line(line: AppInvoiceLine, mappings: ResolvedMappings, facts: CompanyFacts) -> Payload:
    detail: Payload = {"ItemRef": {"value": _item_id(line, mappings)}}
    if line.quantity is not None:
        detail["Qty"] = line.quantity
    if line.rate is not None:
        detail["UnitPrice"] = line.rate
    detail["TaxCodeRef"] = {"value": _tax_code(line, mappings, facts)}
    if mappings.revenue_account_id is not None:
        detail["ItemAccountRef"] = {"value": mappings.revenue_account_id}
    out: Payload = {}
    if line.description:
        out["Description"] = line.description
    out.update({"Amount": line.amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail})
    return out


@dataclass
class _RateTax:
    rate: SalesTaxRate
    amount: Decimal = ZERO
    taxable: Decimal = ZERO


def _code_rates(tax_id: str, mappings: ResolvedMappings) -> tuple[SalesTaxRate, ...]:
    code = mappings.tax_codes.get(tax_id)
    if code is None:
        raise MissingMappingError(f"tax {tax_id!r} is not mapped to a tax code")
    rates = mappings.tax_code_rates.get(code)
    if rates is None:
        raise MissingMappingError(f"the sales rates of tax code {code!r} (tax {tax_id!r}) are not known")
    return rates


def _tax_lines(document: AppInvoice | AppCreditMemo, mappings: ResolvedMappings) -> list[Payload]:
    """One ``TaxLine`` per QBO TaxRate of the lines' codes, with the app's amount for that rate.

    A rate's ``NetAmountTaxable`` adds up, over the app's taxes whose code has the rate, the tax
    line's ``taxable_amount`` when the app gave one, else the amounts of the lines of that tax.
    """
    line_totals: dict[str, Decimal] = {}
    for line in document.lines:
        if line.tax_id is not None:
            line_totals[line.tax_id] = line_totals.get(line.tax_id, ZERO) + line.amount
    by_rate: dict[str, _RateTax] = {}
    given: dict[tuple[str, str], Decimal | None] = {}  # (tax id, rate id) -> taxable_amount
    for tax_line in document.tax_lines:
        rate = rate_for_percent(_code_rates(tax_line.tax_id, mappings), tax_line.percent)
        if rate is None:
            raise PayloadError(
                f"tax {tax_line.tax_id!r}: no single sales rate of its tax code is {tax_line.percent} %"
            )
        by_rate.setdefault(rate.rate_id, _RateTax(rate)).amount += tax_line.amount
        given[(tax_line.tax_id, rate.rate_id)] = tax_line.taxable_amount
    for tax_id, lines_total in line_totals.items():
        for rate in _code_rates(tax_id, mappings):
            taxable = given.get((tax_id, rate.rate_id))
            by_rate.setdefault(rate.rate_id, _RateTax(rate)).taxable += (
                lines_total if taxable is None else taxable
            )
    return [
        {
            "Amount": tax.amount,
            "DetailType": "TaxLineDetail",
            "TaxLineDetail": {
                "TaxRateRef": {"value": tax.rate.rate_id},
                "PercentBased": True,
                "TaxPercent": tax.rate.percent,
                "NetAmountTaxable": tax.taxable,
            },
        }
        for tax in by_rate.values()
    ]


def _sales_body(
    kind: MarkerKind,
    document: AppInvoice | AppCreditMemo,
    mappings: ResolvedMappings,
    facts: CompanyFacts,
) -> Payload:
    body: Payload = {
        "CustomerRef": _ref(mappings.customer_id, mappings.customer_name),
        "DocNumber": document.number,
        "TxnDate": _date(document.date),
        "CurrencyRef": {"value": facts.currency},
        "PrivateNote": _private_note(kind, document.id, document.memo),
        "Line": [_sales_line(line, mappings, facts) for line in document.lines],
    }
    tax: Payload = {}
    if facts.us and mappings.txn_tax_code_id is not None:
        tax["TxnTaxCodeRef"] = {"value": mappings.txn_tax_code_id}
    tax["TotalTax"] = document.tax_total
    if document.tax_lines:
        if facts.us:
            raise PayloadError("a US company takes one transaction tax code: tax_lines cannot be sent")
        tax["TaxLine"] = _tax_lines(document, mappings)
    body["TxnTaxDetail"] = tax
    if not facts.us:
        body["GlobalTaxCalculation"] = "TaxExcluded"
    return body


def invoice_payload(
    invoice: AppInvoice,
    mappings: ResolvedMappings,
    facts: CompanyFacts,
    existing: tuple[str, str] | None = None,
) -> Payload:
    """A QBO Invoice; with ``existing`` (Id, SyncToken) a sparse update of that invoice."""
    body = _sales_body("invoice", invoice, mappings, facts)
    if invoice.due_date is not None:
        body["DueDate"] = _date(invoice.due_date)
    return _with_existing(body, existing)


def credit_memo_payload(
    credit_memo: AppCreditMemo,
    mappings: ResolvedMappings,
    facts: CompanyFacts,
    existing: tuple[str, str] | None = None,
) -> Payload:
    """A QBO CreditMemo; with ``existing`` a sparse update."""
    return _with_existing(_sales_body("credit_memo", credit_memo, mappings, facts), existing)


# --- payments ---------------------------------------------------------------------------------


def payment_payload(
    payment: AppPayment,
    mappings: ResolvedMappings,
    facts: CompanyFacts,
    existing: tuple[str, str] | None = None,
) -> Payload:
    """A QBO Payment applied with one ``LinkedTxn`` line per invoice it pays.

    What the lines do not apply stays on the payment as ``UnappliedAmt`` (a customer credit): the
    payment's whole amount always goes to QBO, and an application is cut to ``open_balances`` where
    QBO holds less open on the invoice than the app applies (never a refused payment).
    """
    lines: list[Payload] = []
    for application in payment.applications:
        invoice_id = mappings.invoices.get(application.invoice_id)
        if invoice_id is None:
            raise MissingMappingError(f"invoice {application.invoice_id!r} has not been posted to QBO")
        amount = application.amount
        if invoice_id in mappings.open_balances:
            amount = max(min(amount, mappings.open_balances[invoice_id]), ZERO)
        if amount > 0:
            lines.append({"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]})
    body: Payload = {
        "CustomerRef": _ref(mappings.customer_id, mappings.customer_name),
        "TotalAmt": payment.amount,
        "TxnDate": _date(payment.date),
        "CurrencyRef": {"value": facts.currency},
        "PrivateNote": _private_note("payment", payment.id, None),
        "Line": lines,
    }
    if payment.reference:
        body["PaymentRefNum"] = payment.reference
    if mappings.payment_method_id is not None:
        body["PaymentMethodRef"] = {"value": mappings.payment_method_id}
    if mappings.deposit_account_id is not None:
        body["DepositToAccountRef"] = {"value": mappings.deposit_account_id}
    return _with_existing(body, existing)


def credit_application_payload(
    application: AppCreditApplication,
    mappings: ResolvedMappings,
    facts: CompanyFacts,
    existing: tuple[str, str] | None = None,
) -> Payload:
    """A credit memo applied to invoices as QBO itself records it: a Payment of zero with one line
    per invoice (the amount it pays) and one line spending that much of the credit memo."""
    if mappings.credit_memo_id is None:
        raise MissingMappingError(f"credit memo {application.id!r} has not been posted to QBO")
    lines: list[Payload] = []
    for item in application.applications:
        invoice_id = mappings.invoices.get(item.invoice_id)
        if invoice_id is None:
            raise MissingMappingError(f"invoice {item.invoice_id!r} has not been posted to QBO")
        lines.append({"Amount": item.amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]})
    if not lines:
        raise PayloadError(f"credit memo {application.id!r} applies to no invoice")
    lines.append(
        {
            "Amount": application.total,
            "LinkedTxn": [{"TxnId": mappings.credit_memo_id, "TxnType": "CreditMemo"}],
        }
    )
    body: Payload = {
        "CustomerRef": _ref(mappings.customer_id, mappings.customer_name),
        "TotalAmt": ZERO,
        "TxnDate": _date(application.date),
        "CurrencyRef": {"value": facts.currency},
        "PrivateNote": _private_note("credit_application", application.id, None),
        "Line": lines,
    }
    return _with_existing(body, existing)


# --- summarised mode --------------------------------------------------------------------------


def journal_doc_number(day: date) -> str:
    return f"QL-{day:%Y%m%d}"


def _journal_line(amount: Decimal, posting: Literal["Debit", "Credit"], account: str, text: str) -> Payload:
    if amount < 0:  # a negative credit is a debit (and the other way round)
        amount = -amount
        posting = "Credit" if posting == "Debit" else "Debit"
    return {
        "Description": text,
        "Amount": amount,
        "DetailType": "JournalEntryLineDetail",
        "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": account}},
    }


def _revenue_account(line: AppInvoiceLine, mappings: ResolvedMappings, accounts: JournalAccounts) -> str:
    if accounts.revenue_account_id is not None:
        return accounts.revenue_account_id
    item = _item_id(line, mappings)
    account = accounts.item_income_accounts.get(item)
    if account is None:
        raise MissingMappingError(f"item {item!r} of line {line.line_id!r} has no known income account")
    return account


def journal_entry_for_day(
    day: date,
    invoices: Iterable[AppInvoice],
    mappings: Mapping[str, ResolvedMappings],
    facts: CompanyFacts,
    accounts: JournalAccounts,
    *,
    existing: tuple[str, str] | None = None,
) -> Payload:
    """Summarised mode: one JournalEntry for every (non-voided) invoice dated ``day``.

    Debit A/R with the master customer as entity for the day's total; credit each revenue account
    with the sum of its lines and tax payable with the sum of the app's tax.  The lines come from
    the app's own amounts, so the entry balances to the cent by construction (every invoice's total
    is its lines plus its tax).  ``mappings`` is keyed by app invoice id.
    """
    included = _day_invoices(day, invoices)
    revenue: dict[str, Decimal] = {}
    tax_total = ZERO
    grand_total = ZERO
    for invoice in included:
        resolved = mappings.get(invoice.id)
        if resolved is None:
            raise MissingMappingError(f"invoice {invoice.id!r} has no resolved mappings")
        for line in invoice.lines:
            account = _revenue_account(line, resolved, accounts)
            revenue[account] = revenue.get(account, ZERO) + line.amount
        tax_total += invoice.tax_total
        grand_total += invoice.total
    label = f"{len(included)} invoice(s) of {day.isoformat()}"
    lines: list[Payload] = []
    if grand_total != 0:
        receivable = _journal_line(grand_total, "Debit", accounts.receivable_account_id, f"Sales: {label}")
        receivable["JournalEntryLineDetail"]["Entity"] = {
            "Type": "Customer",
            "EntityRef": {"value": accounts.master_customer_id},
        }
        lines.append(receivable)
    for account, amount in revenue.items():
        if amount != 0:
            lines.append(_journal_line(amount, "Credit", account, f"Revenue: {label}"))
    if tax_total != 0:
        lines.append(_journal_line(tax_total, "Credit", accounts.tax_payable_account_id, f"Tax: {label}"))
    if not lines:
        raise PayloadError(f"the invoices of {day} add up to nothing to post")
    _check_balanced(lines)
    body: Payload = {
        "DocNumber": journal_doc_number(day),
        "TxnDate": _date(day),
        "CurrencyRef": {"value": facts.currency},
        "PrivateNote": _private_note("journal_day", day.isoformat(), None),
        "Line": lines,
    }
    return _with_existing(body, existing)


def _day_invoices(day: date, invoices: Iterable[AppInvoice]) -> list[AppInvoice]:
    """The day's invoices that go into its journal entry (the voided ones stay out); every invoice
    given must be dated ``day``, and at least one must remain."""
    included: list[AppInvoice] = []
    for invoice in invoices:
        if invoice.date != day:
            raise PayloadError(f"invoice {invoice.id!r} is dated {invoice.date}, not {day}")
        if not invoice.voided:
            included.append(invoice)
    if not included:
        raise PayloadError(f"no invoice to summarise on {day}")
    return included


def _check_balanced(lines: Sequence[Payload]) -> None:
    debits = sum(
        (ln["Amount"] for ln in lines if ln["JournalEntryLineDetail"]["PostingType"] == "Debit"), ZERO
    )
    credits = sum(
        (ln["Amount"] for ln in lines if ln["JournalEntryLineDetail"]["PostingType"] == "Credit"), ZERO
    )
    if debits != credits:  # cannot happen with validated invoices; a guard against model drift
        raise PayloadError(f"journal entry out of balance: debits {debits} != credits {credits}")
