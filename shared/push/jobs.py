"""What the push worker and its collaborators work on: a ``Job`` is one document of a delivery on
its way to QBO (the posting log's entry in hand, the parsed document, the QBO entity it becomes,
how to build its payload, and what is known of it in QBO), a ``TenantRun`` is one tenant's part of
a delivery (its connection, company facts, settings, QBO client and store lookups), and a
``BatchReport`` says which messages come back and what became of the documents.  ``job_for``
decides a document's job from its entry: its payload builder (with the mappings it refers to), the
QBO id it updates, and whether it must be looked up in QBO first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from shared.connections.store import Connection
from shared.connections.vault import VaultError
from shared.kernel.reasons import Reason
from shared.push.models import (
    AppClient,
    AppCreditApplication,
    AppCreditMemo,
    AppInvoice,
    AppPayment,
    TenantSettings,
)
from shared.push.payloads import (
    CompanyFacts,
    PayloadError,
    ResolvedMappings,
    credit_application_payload,
    credit_memo_payload,
    customer_payload,
    invoice_payload,
    payment_payload,
)
from shared.push.posting_log import PostingEntry, PostingFault, PostingState
from shared.push.service import AppDocument, StoreLookup, reason_of
from shared.qbo.client import QboClient
from shared.qbo.errors import QboError

Body = dict[str, Any]
Builder = Callable[[tuple[str, str] | None], Body]
ENTITIES: Final = {
    "client": "Customer",
    "invoice": "Invoice",
    "payment": "Payment",
    "credit_memo": "CreditMemo",
    "credit_application": "Payment",
}
MAPPING_MISSING: Final = "mapping_missing"
WORK_STATES: Final = frozenset({PostingState.QUEUED, PostingState.UNCERTAIN, PostingState.IN_FLIGHT})


@dataclass
class Job:
    entry: PostingEntry
    document: AppDocument
    entity: str
    link_kind: str
    build: Builder
    existing_id: str | None
    sync_token: str | None
    lookup: bool
    done: bool = False
    retry: bool = False
    capped: bool = False  # a payment sent again with what QBO holds open

    @property
    def key(self) -> tuple[str, str]:
        return (self.entry.kind, self.entry.app_id)

    @property
    def idempotency_key(self) -> str:
        e = self.entry
        return f"{e.tenant_id}:{e.kind}:{e.app_id}:v{e.version}"

    @property
    def voids(self) -> bool:
        if isinstance(self.document, AppCreditApplication):
            return self.document.withdrawn  # voided memo, or its applications taken back
        return not isinstance(self.document, AppClient) and self.document.voided

    @property
    def creates(self) -> bool:
        return self.existing_id is None and not self.lookup and not self.voids

    @property
    def batchable(self) -> bool:
        """A create, or an update whose SyncToken is known: either can go in a batch request."""
        if self.retry or self.lookup or self.voids:
            return False
        return self.existing_id is None or self.sync_token is not None


@dataclass
class TenantRun:
    tenant_id: str
    connection: Connection
    facts: CompanyFacts
    settings: TenantSettings
    client: QboClient
    lookup: StoreLookup
    posted: int = 0
    # QBO's open balance of invoices read in this delivery (by QBO id), still to be applied
    open_balances: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class BatchReport:
    """Which messages must come back (by index) and what happened to the documents."""

    failed: set[int] = field(default_factory=set)
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


# --- a document's job ---------------------------------------------------------------------------


def job_for(ctx: TenantRun, entry: PostingEntry, document: AppDocument) -> Job:
    """The job of a document about to be sent; ``PayloadError`` when its payload cannot be built
    (a readiness gap: found now, not mid-batch)."""
    if isinstance(document, AppClient):
        return _customer_job(ctx, entry, document)
    kind, build = _builder(ctx, entry, document)
    if not (isinstance(document, AppCreditApplication) and document.withdrawn):
        build(None)  # a payload that cannot be built is a readiness gap: found now, not mid-batch
    existing_id, token = entry.qbo_id, entry.sync_token
    if existing_id is None:
        link = ctx.lookup.link(kind, document.id)
        if link is not None:
            existing_id, token = link.qbo_id, link.sync_token
    unknown = needs_lookup(entry) and existing_id is None  # linked: QBO has it, no lookup needed
    return Job(entry, document, ENTITIES[kind], kind, build, existing_id, token, unknown)


def _customer_job(ctx: TenantRun, entry: PostingEntry, client: AppClient) -> Job:
    lookup = ctx.lookup
    existing_id, token = entry.qbo_id, entry.sync_token
    link_kind = "site" if client.parent_id else "client"
    link = lookup.customer_link(client.id)
    if existing_id is None and link is not None:
        existing_id, token = link.qbo_id, link.sync_token
    parent = lookup.customer_for(client.parent_id) if client.parent_id else None

    def build_customer(existing: tuple[str, str] | None) -> Body:
        return customer_payload(client, parent, existing)

    # Linked already (the change worker links a customer of ours whose create answer was lost, by
    # the marker in its notes): update it, no lookup needed.
    unknown = needs_lookup(entry) and existing_id is None
    return Job(entry, client, "Customer", link_kind, build_customer, existing_id, token, unknown)


def _builder(ctx: TenantRun, entry: PostingEntry, document: AppDocument) -> tuple[str, Builder]:
    """The document's kind and payload builder, with the mappings it refers to resolved now."""
    assert not isinstance(document, AppClient)
    mappings = mappings_for(document, ctx.settings, ctx.facts, ctx.lookup)
    facts = ctx.facts
    if isinstance(document, AppInvoice):
        invoice = document
        return "invoice", lambda existing: invoice_payload(invoice, mappings, facts, existing)
    if isinstance(document, AppCreditMemo):
        memo = document
        return "credit_memo", lambda existing: credit_memo_payload(memo, mappings, facts, existing)
    if isinstance(document, AppCreditApplication):
        application = document
        return "credit_application", lambda existing: credit_application_payload(
            application, mappings, facts, existing
        )
    payment = document
    if entry.qbo_id is None:  # a new payment takes what QBO holds open, if it is known
        mappings = capped(payment, mappings, ctx.open_balances)
    return "payment", payment_builder(payment, mappings, facts)


def payment_builder(payment: AppPayment, mappings: ResolvedMappings, facts: CompanyFacts) -> Builder:
    def build(existing: tuple[str, str] | None) -> Body:
        return payment_payload(payment, mappings, facts, existing)

    return build


def retry_marker(entry: PostingEntry, document: AppDocument) -> Job:
    """A job that waits for its customer: never sent, its message comes back."""

    def never(_existing: tuple[str, str] | None) -> Body:
        raise AssertionError("a job waiting for its customer is never sent")

    return Job(entry, document, ENTITIES[entry.kind], entry.kind, never, None, None, False, retry=True)


def needs_lookup(entry: PostingEntry) -> bool:
    return entry.qbo_id is None and (entry.needs_lookup or entry.state is PostingState.UNCERTAIN)


def qbo_name(job: Job, answer: Body) -> str | None:
    """What the link remembers of the QBO entity: a customer's DisplayName, a document's DocNumber."""
    name = answer.get("DisplayName") if job.entity == "Customer" else answer.get("DocNumber")
    return str(name) if name else None


def fault_of(error: QboError | VaultError) -> PostingFault:
    if isinstance(error, QboError):
        return PostingFault(
            code=error.code or (str(error.status) if error.status else type(error).__name__),
            message=error.message[:1000],
            detail=error.detail[:2000] or None,
            element=error.element or None,
            intuit_tid=error.intuit_tid,
        )
    return PostingFault(code=type(error).__name__, message=str(error)[:1000])


def mappings_for(
    document: AppInvoice | AppCreditMemo | AppPayment | AppCreditApplication,
    settings: TenantSettings,
    facts: CompanyFacts,
    lookup: StoreLookup,
) -> ResolvedMappings:
    """Everything the payload refers to; what is missing stays out (the builder names it)."""
    customer = lookup.customer_link(document.client_id)
    customer_id = customer.qbo_id if customer else ""
    if not customer_id:
        raise PayloadError(f"client {document.client_id!r} is not linked to a QBO customer")
    if isinstance(document, AppPayment | AppCreditApplication):
        invoices = {
            a.invoice_id: qbo for a in document.applications if (qbo := lookup.invoice_qbo_id(a.invoice_id))
        }
        if isinstance(document, AppCreditApplication):
            memo = lookup.credit_memo_qbo_id(document.id)
            return ResolvedMappings(customer_id=customer_id, invoices=invoices, credit_memo_id=memo)
        return ResolvedMappings(
            customer_id=customer_id, invoices=invoices, deposit_account_id=settings.deposit_account_id
        )
    items: dict[tuple[str, str], str] = {}
    taxes: dict[str, str] = {}
    for line in document.lines:
        item = lookup.item_for(line.kind, line.code)
        if item is not None:
            items[(line.kind, line.code)] = item
        if not facts.us and line.tax_id is not None and (tax := lookup.tax_code_for(line.tax_id)):
            taxes[line.tax_id] = tax
    return ResolvedMappings(
        customer_id=customer_id,
        items=items,
        tax_codes=taxes,
        # Only a document with tax_lines sends tax per rate (and needs its codes' rates).
        tax_code_rates=lookup.tax_code_rates(taxes) if document.tax_lines else {},
        revenue_account_id=settings.revenue_account_id,
    )


def capped(
    payment: AppPayment, mappings: ResolvedMappings, open_balances: dict[str, Decimal]
) -> ResolvedMappings:
    """The payment's mappings with what each invoice known to ``open_balances`` can still take;
    what this payment applies is taken off, so two payments of one delivery never apply the same
    open amount twice."""
    caps: dict[str, Decimal] = {}
    for application in payment.applications:
        qbo = mappings.invoices.get(application.invoice_id)
        if qbo is None or qbo not in open_balances:
            continue
        allowed = max(min(application.amount, open_balances[qbo]), Decimal("0.00"))
        caps[qbo] = allowed
        open_balances[qbo] -= allowed
    if not caps:
        return mappings
    return dataclasses.replace(mappings, open_balances=caps)


# --- a payment QBO applied less of than asked -------------------------------------------------

APPLIED_LESS_THAN_ASKED: Final = "applied_less_than_asked"


def applied_less(job: Job, answer: Body, lookup: StoreLookup) -> list[Reason]:
    """Notes for a payment QBO applied less of than the app asked (a credit QBO applied to the
    invoice by itself took the rest): what each invoice got; the rest is unapplied on the customer."""
    payment = job.document
    if not isinstance(payment, AppPayment):
        return []
    applied = _applied(answer)
    notes = []
    for application in payment.applications:
        qbo = lookup.invoice_qbo_id(application.invoice_id)
        got = applied.get(qbo or "", Decimal("0.00"))
        if got < application.amount:
            details = {
                "invoice_id": application.invoice_id,
                "asked": str(application.amount),
                "applied": str(got.quantize(Decimal("0.01"))),
                "unapplied": str((application.amount - got).quantize(Decimal("0.01"))),
            }
            notes.append(reason_of(APPLIED_LESS_THAN_ASKED, details))
    return notes


def _applied(answer: Body) -> dict[str, Decimal]:
    """What a Payment QBO answered applies to each invoice (by QBO id)."""
    applied: dict[str, Decimal] = {}
    lines: list[Any] = answer.get("Line") or []
    for line in lines:
        for linked in line.get("LinkedTxn") or [] if isinstance(line, dict) else []:
            if isinstance(linked, dict) and linked.get("TxnType") == "Invoice":
                key = str(linked.get("TxnId"))
                applied[key] = applied.get(key, Decimal("0.00")) + Decimal(str(line.get("Amount", 0)))
    return applied
