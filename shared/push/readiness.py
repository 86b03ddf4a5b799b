"""Pure: is an app document ready to post to QBO?  ``Ready``, ``NotReady(reasons)`` or ``Skipped``.

A document that is not ready waits (``needs_attention`` in the posting log) with EVERY reason, not
just the first, and goes by itself once they are fixed; a skipped one is never posted and needs no
attention (it is dated before the tenant's go-live date, for instance).  Reason codes are stable:
the API returns them and host apps may switch on them.

=========================  =========================================================================
code                       meaning (``details``)
=========================  =========================================================================
``push_disabled``          the tenant switched this kind of document off (``document``)
``go_live_pending``        the go-live date is still ahead; documents dated on/after it wait for it
                           (``go_live_date``, ``today``)
``before_go_live``         Skipped: dated before the go-live date (``date``, ``go_live_date``)
``void_not_propagated``    Skipped: voided/deactivated in the app; the tenant does not propagate
                           deletes (``document``)
``inactive_not_linked``    Skipped: a deactivated client that is not in QBO (nothing to deactivate)
``summarised_mode``        Skipped: payments and credit memos are not posted in summarised mode
``master_customer_missing`` summarised mode without a master customer
``client_not_linked``      the client (or a site's parent) has no QBO customer and cannot be created
                           now (``client_id``, ``role``: client/parent, ``cause``: not_linked or
                           unknown_client)
``client_type_excluded``   the client's type does not sync (``client_id``, ``type``)
``item_not_mapped``        a line's work/expense code has no QBO item (``line_id``, ``kind``, ``code``)
``taxable_flag_missing``   US company: a line without ``taxable`` (``line_id``)
``tax_id_missing``         non-US company: a line without ``tax_id`` (``line_id``)
``tax_not_mapped``         non-US company: a line's ``tax_id`` has no QBO tax code (``line_id``,
                           ``tax_id``)
``tax_model_mismatch``     a line carries the other tax model's field: ``tax_id`` in a US company or
                           ``taxable`` elsewhere (``line_id``, ``expected``, ``found``); or a US
                           company's document carries ``tax_lines`` (``expected``: taxable,
                           ``found``: tax_lines)
``tax_rates_unknown``      non-US document with ``tax_lines``: the sales rates of the QBO tax code a
                           line's tax is mapped to are not in the mapping cache yet (``tax_id``,
                           ``qbo_id``); a refresh of the mappings reads them
``tax_rate_unknown``       non-US document with ``tax_lines``: a tax line's ``percent`` is not the
                           rate of exactly one sales rate of its tax's QBO tax code (``tax_id``,
                           ``percent``)
``invoice_not_posted``     a payment or a credit memo applies to an invoice not in QBO yet
                           (``invoice_id``)
``credit_memo_not_posted`` a credit application waits for its credit memo (``credit_memo_id``)
=========================  =========================================================================

A credit memo that names applications waits for its invoices, so that its application goes to QBO
right behind it (a company that applies credits automatically would otherwise spend the open credit
on the customer's next invoice first).

``Ready.steps`` lists work to do first: ``create_customer_first`` (``client_id``) when the tenant
allows customers to be created and the client (or a site's parent, listed first) is not linked.

Client types: the document's client's own ``type`` is the one that counts (a site is judged by its
own type).  In summarised mode the invoice posts against the master customer, so the client need
not be linked and line tax fields are not needed (the journal takes the app's tax total).

Tax per rate.  A US company takes one transaction tax code and computes (or is told) one total, so
a per-rate breakdown cannot be honoured there: rather than drop it silently and let the app believe
each agency got its amount, a US document with ``tax_lines`` waits (``tax_model_mismatch``).
Elsewhere each tax line must name one sales rate of its tax's code by its percent, the rule the
payload builder applies (``shared.push.payloads.rate_for_percent``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any, Literal, Protocol

from shared.push.models import (
    AppClient,
    AppCreditApplication,
    AppCreditMemo,
    AppInvoice,
    AppInvoiceLine,
    AppPayment,
    LineKind,
    TenantSettings,
)
from shared.push.payloads import CompanyFacts, SalesTaxRate, rate_for_percent

PUSH_DISABLED = "push_disabled"
GO_LIVE_PENDING = "go_live_pending"
BEFORE_GO_LIVE = "before_go_live"
VOID_NOT_PROPAGATED = "void_not_propagated"
INACTIVE_NOT_LINKED = "inactive_not_linked"
SUMMARISED_MODE = "summarised_mode"
MASTER_CUSTOMER_MISSING = "master_customer_missing"
CLIENT_NOT_LINKED = "client_not_linked"
CLIENT_TYPE_EXCLUDED = "client_type_excluded"
ITEM_NOT_MAPPED = "item_not_mapped"
TAXABLE_FLAG_MISSING = "taxable_flag_missing"
TAX_ID_MISSING = "tax_id_missing"
TAX_NOT_MAPPED = "tax_not_mapped"
TAX_MODEL_MISMATCH = "tax_model_mismatch"
TAX_RATES_UNKNOWN = "tax_rates_unknown"
TAX_RATE_UNKNOWN = "tax_rate_unknown"
INVOICE_NOT_POSTED = "invoice_not_posted"
CREDIT_MEMO_NOT_POSTED = "credit_memo_not_posted"
CREATE_CUSTOMER_FIRST = "create_customer_first"

MAX_PARENT_DEPTH = 5  # QBO's customer hierarchy depth


class MappingLookup(Protocol):
    """What readiness needs to know about the tenant's links and the app's clients."""

    def customer_for(self, client_id: str) -> str | None: ...

    def item_for(self, kind: LineKind, code: str) -> str | None: ...

    def tax_code_for(self, tax_id: str) -> str | None: ...

    def tax_rates_for(self, tax_id: str) -> Sequence[SalesTaxRate] | None:
        """The sales rates of the QBO tax code ``tax_id`` is mapped to, as the mapping cache has
        them; None when the tax is not mapped or the code's rates are not cached."""
        ...

    def invoice_qbo_id(self, invoice_id: str) -> str | None: ...

    def credit_memo_qbo_id(self, credit_memo_id: str) -> str | None: ...

    def client(self, client_id: str) -> AppClient | None: ...


@dataclass(frozen=True)
class _Coded:
    """A stable code and what it is about (the details frozen)."""

    code: str
    details: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


@dataclass(frozen=True)
class Reason(_Coded):
    """One stable reason code and what it is about."""

    def as_dict(self) -> dict[str, Any]:
        """``{"code", "details"}``, as the API and the posting log show it."""
        return {"code": self.code, "details": dict(self.details)}


@dataclass(frozen=True)
class Step(_Coded):
    """Work the worker does before posting the document itself."""


@dataclass(frozen=True)
class Ready:
    steps: tuple[Step, ...] = ()
    outcome: Literal["ready"] = "ready"


@dataclass(frozen=True)
class NotReady:
    reasons: tuple[Reason, ...]
    outcome: Literal["not_ready"] = "not_ready"

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(reason.code for reason in self.reasons)


@dataclass(frozen=True)
class Skipped:
    reason: Reason
    outcome: Literal["skipped"] = "skipped"


Readiness = Ready | NotReady | Skipped


class _Findings:
    def __init__(self) -> None:
        self.reasons: list[Reason] = []
        self.steps: list[Step] = []

    def reason(self, code: str, /, **details: str) -> None:
        self.reasons.append(Reason(code, details))

    def step(self, code: str, /, **details: str) -> None:
        if all(s.details != details or s.code != code for s in self.steps):
            self.steps.append(Step(code, details))

    def result(self) -> Readiness:
        if self.reasons:
            return NotReady(tuple(self.reasons))
        return Ready(tuple(self.steps))


# --- shared rules -----------------------------------------------------------------------------


def _go_live(document_date: date, settings: TenantSettings, today: date) -> Skipped | Reason | None:
    go_live = settings.go_live_date
    if go_live is None:
        return None
    if document_date < go_live:
        return Skipped(
            Reason(BEFORE_GO_LIVE, {"date": document_date.isoformat(), "go_live_date": go_live.isoformat()})
        )
    if today < go_live:
        return Reason(GO_LIVE_PENDING, {"go_live_date": go_live.isoformat(), "today": today.isoformat()})
    return None


def _unless_skipped(
    document: str, when: date, voided: bool, settings: TenantSettings, today: date
) -> Skipped | Reason | None:
    """A payment's or a credit application's first checks: skipped before the go-live date, when a
    void is not propagated, and in summarised mode (the day's journal carries neither); else the
    go-live reason to add (the go-live date is still ahead), or None."""
    go_live = _go_live(when, settings, today)
    if isinstance(go_live, Skipped):
        return go_live
    if voided and not settings.propagate_deletes:
        return Skipped(Reason(VOID_NOT_PROPAGATED, {"document": document}))
    if settings.posting_mode == "summarised":
        return Skipped(Reason(SUMMARISED_MODE, {"document": document}))
    return go_live


def _client_type(client: AppClient, settings: TenantSettings, found: _Findings) -> None:
    if settings.client_types and client.type not in settings.client_types:
        found.reason(CLIENT_TYPE_EXCLUDED, client_id=client.id, type=client.type)


def _customer(
    client_id: str, settings: TenantSettings, lookup: MappingLookup, found: _Findings, role: str = "client"
) -> None:
    """The client must be linked, or creatable (with its parents first) when the tenant allows it."""
    pending: list[str] = []
    current: str | None = client_id
    current_role = role
    for _ in range(MAX_PARENT_DEPTH + 1):
        if current is None or lookup.customer_for(current) is not None:
            break
        record = lookup.client(current)
        if record is None:
            found.reason(CLIENT_NOT_LINKED, client_id=current, role=current_role, cause="unknown_client")
            return
        if not settings.auto_create_customers:
            found.reason(CLIENT_NOT_LINKED, client_id=current, role=current_role, cause="not_linked")
            return
        pending.append(current)
        current = record.parent_id
        current_role = "parent"
    for client in reversed(pending):  # parents are created before their sites
        found.step(CREATE_CUSTOMER_FIRST, client_id=client)


def _document_client(
    client_id: str, settings: TenantSettings, lookup: MappingLookup, found: _Findings, *, link: bool
) -> None:
    client = lookup.client(client_id)
    if client is not None:
        _client_type(client, settings, found)
    if link:
        _customer(client_id, settings, lookup, found)


def _line_rules(
    line: AppInvoiceLine, facts: CompanyFacts, lookup: MappingLookup, found: _Findings, *, tax: bool
) -> None:
    if lookup.item_for(line.kind, line.code) is None:
        found.reason(ITEM_NOT_MAPPED, line_id=line.line_id, kind=line.kind, code=line.code)
    if not tax:
        return
    if facts.us:
        if line.tax_id is not None:
            found.reason(TAX_MODEL_MISMATCH, line_id=line.line_id, expected="taxable", found="tax_id")
        elif line.taxable is None:
            found.reason(TAXABLE_FLAG_MISSING, line_id=line.line_id)
        return
    if line.taxable is not None:
        found.reason(TAX_MODEL_MISMATCH, line_id=line.line_id, expected="tax_id", found="taxable")
    elif line.tax_id is None:
        found.reason(TAX_ID_MISSING, line_id=line.line_id)
    elif lookup.tax_code_for(line.tax_id) is None:
        found.reason(TAX_NOT_MAPPED, line_id=line.line_id, tax_id=line.tax_id)


def _tax_line_rules(
    document: AppInvoice | AppCreditMemo, facts: CompanyFacts, lookup: MappingLookup, found: _Findings
) -> None:
    if facts.us:
        found.reason(TAX_MODEL_MISMATCH, expected="taxable", found="tax_lines")
        return
    # Every code of the lines needs its rates, not only the ones the tax lines name: the payload
    # sends 0 for the rates the app charged nothing at, or QBO would compute its own tax there.
    for tax_id in dict.fromkeys(line.tax_id for line in document.lines if line.tax_id is not None):
        code = lookup.tax_code_for(tax_id)
        if code is not None and lookup.tax_rates_for(tax_id) is None:
            found.reason(TAX_RATES_UNKNOWN, tax_id=tax_id, qbo_id=code)
    for tax_line in document.tax_lines:
        rates = lookup.tax_rates_for(tax_line.tax_id)
        if rates is not None and rate_for_percent(rates, tax_line.percent) is None:
            found.reason(TAX_RATE_UNKNOWN, tax_id=tax_line.tax_id, percent=str(tax_line.percent))


def _sales_document(
    document: AppInvoice | AppCreditMemo,
    *,
    kind: Literal["invoice", "credit_memo"],
    enabled: bool,
    settings: TenantSettings,
    facts: CompanyFacts,
    lookup: MappingLookup,
    today: date,
) -> Readiness:
    go_live = _go_live(document.date, settings, today)
    if isinstance(go_live, Skipped):
        return go_live
    if document.voided and not settings.propagate_deletes:
        return Skipped(Reason(VOID_NOT_PROPAGATED, {"document": kind}))
    summarised = settings.posting_mode == "summarised"
    if summarised and kind == "credit_memo":
        return Skipped(Reason(SUMMARISED_MODE, {"document": kind}))
    found = _Findings()
    if not enabled:
        found.reason(PUSH_DISABLED, document=kind)
    if go_live is not None:
        found.reasons.append(go_live)
    if summarised and not settings.master_customer_id:
        found.reason(MASTER_CUSTOMER_MISSING)
    _document_client(document.client_id, settings, lookup, found, link=not summarised)
    for line in document.lines:
        _line_rules(line, facts, lookup, found, tax=not summarised)
    if document.tax_lines and not summarised:
        _tax_line_rules(document, facts, lookup, found)
    return found.result()


# --- the documents ----------------------------------------------------------------------------


def evaluate_invoice(
    invoice: AppInvoice,
    settings: TenantSettings,
    facts: CompanyFacts,
    lookup: MappingLookup,
    *,
    today: date,
) -> Readiness:
    """Whether an invoice can be posted now (or, in summarised mode, included in its day's entry)."""
    return _sales_document(
        invoice,
        kind="invoice",
        enabled=settings.push_invoices,
        settings=settings,
        facts=facts,
        lookup=lookup,
        today=today,
    )


def evaluate_credit_memo(
    credit_memo: AppCreditMemo,
    settings: TenantSettings,
    facts: CompanyFacts,
    lookup: MappingLookup,
    *,
    today: date,
) -> Readiness:
    found = _sales_document(
        credit_memo,
        kind="credit_memo",
        enabled=settings.push_credits,
        settings=settings,
        facts=facts,
        lookup=lookup,
        today=today,
    )
    if isinstance(found, Skipped) or credit_memo.voided:
        return found
    waiting = [
        Reason(INVOICE_NOT_POSTED, {"invoice_id": a.invoice_id})
        for a in credit_memo.applications
        if lookup.invoice_qbo_id(a.invoice_id) is None
    ]
    if not waiting:
        return found
    return NotReady((*found.reasons, *waiting) if isinstance(found, NotReady) else tuple(waiting))


def evaluate_credit_application(
    application: AppCreditApplication,
    settings: TenantSettings,
    lookup: MappingLookup,
    *,
    today: date,
) -> Readiness:
    """Whether a credit memo's applications can go to QBO: the memo and every invoice in QBO.

    Taking them back out (the memo's applications removed) is always done; a voided memo's follow
    the memo's void rules."""
    go_live = _unless_skipped("credit_memo", application.date, application.voided, settings, today)
    if isinstance(go_live, Skipped):
        return go_live
    found = _Findings()
    if application.withdrawn:
        return found.result()  # the worker voids what QBO has, or skips what it never had
    if not settings.push_credits:
        found.reason(PUSH_DISABLED, document="credit_memo")
    if go_live is not None:
        found.reasons.append(go_live)
    _document_client(application.client_id, settings, lookup, found, link=True)
    if lookup.credit_memo_qbo_id(application.id) is None:
        found.reason(CREDIT_MEMO_NOT_POSTED, credit_memo_id=application.id)
    for item in application.applications:
        if lookup.invoice_qbo_id(item.invoice_id) is None:
            found.reason(INVOICE_NOT_POSTED, invoice_id=item.invoice_id)
    return found.result()


def evaluate_payment(
    payment: AppPayment,
    settings: TenantSettings,
    facts: CompanyFacts,
    lookup: MappingLookup,
    *,
    today: date,
) -> Readiness:
    """Whether a payment can be posted: its client linked and every invoice it pays already in QBO."""
    del facts  # payments look the same in every tax model; kept for a uniform signature
    go_live = _unless_skipped("payment", payment.date, payment.voided, settings, today)
    if isinstance(go_live, Skipped):
        return go_live
    found = _Findings()
    if not settings.push_payments:
        found.reason(PUSH_DISABLED, document="payment")
    if go_live is not None:
        found.reasons.append(go_live)
    _document_client(payment.client_id, settings, lookup, found, link=True)
    for application in payment.applications:
        if lookup.invoice_qbo_id(application.invoice_id) is None:
            found.reason(INVOICE_NOT_POSTED, invoice_id=application.invoice_id)
    return found.result()


def evaluate_client(client: AppClient, settings: TenantSettings, lookup: MappingLookup) -> Readiness:
    """Whether a client can be created or updated in QBO now.

    A linked client is updated.  An unlinked one is created only when the tenant allows customers
    to be created (otherwise it waits to be linked, ``client_not_linked``); a site needs its parent
    linked, or created first.  A deactivated client is pushed (as ``Active: false``) only when the
    tenant propagates deletes, and never created.
    """
    linked = lookup.customer_for(client.id) is not None
    if not client.active and not linked:
        return Skipped(Reason(INACTIVE_NOT_LINKED, {"client_id": client.id}))
    if not client.active and not settings.propagate_deletes:
        return Skipped(Reason(VOID_NOT_PROPAGATED, {"document": "client"}))
    found = _Findings()
    _client_type(client, settings, found)
    if client.parent_id is not None:
        _customer(client.parent_id, settings, lookup, found, role="parent")
    if not linked and not settings.auto_create_customers:
        found.reason(CLIENT_NOT_LINKED, client_id=client.id, role="client", cause="not_linked")
    return found.result()
