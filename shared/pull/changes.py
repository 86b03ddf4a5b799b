"""Applying QBO's changes to the app: the change worker's and the sweep's shared logic (Q1–Q4).

Reads (metered, facts §7): a webhook batch of one tenant becomes **one** CDC call for every
entity it names (plus Payment whenever Invoice is named, so a balance change caused by a payment
is recognised), since its oldest notice minus ``NOTICE_MARGIN``.  CDC costs one metered read
whatever the number of entities and ids, and it is the only read that reports deletions; reading
by id (a batch of ``SELECT ... WHERE Id IN``) costs one metered read *per entity* and misses
deleted transactions, so it never beats one CDC call.  Notices for entities we do not apply
(JournalEntry, Deposit, Purchase, ...) cost no read at all: they are ignored and counted (Q4).
Merges need no read either: the notice names both customers.  The client splits a window that
hits the 1,000-object cap and falls back to queries beyond 30 days.

Applying (``ChangeApplier``): each object once, in its latest state; every event id derives from
(entity, Id, SyncToken), so replaying a window publishes the same ids.  Our own writes coming back
are recognised by the SyncToken stored on their link and produce nothing.

``PullService`` wraps both paths (webhook batch, sweep) in an exchange (history) and owns the
cursor rule: the sweep advances a tenant's cursors to the instant it started reading, and only
after every change read was applied.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.clock import Clock
from shared.events import EventPublisher, OutboundEvent, make_event
from shared.links import Link, LinkConflictError, LinkStore
from shared.mapping.catalog import QboCache, belongs_to, qbo_entity
from shared.observability import logger
from shared.pull.cursors import CursorStore
from shared.pull.exchanges import Exchange, ExchangeLog

# --- event types (EventBridge detail-type; docs/pull.md) ----------------------------------------
CLIENT_IMPORTED: Final = "Client Imported"
CLIENT_CHANGED: Final = "Client Changed"
CLIENT_DEACTIVATED: Final = "Client Deactivated"
CLIENT_MERGED: Final = "Client Merged In QBO"
SITE_IMPORTED: Final = "Site Imported"
SITE_CHANGED: Final = "Site Changed"
PAYMENT_RECEIVED: Final = "Payment Received"
PAYMENT_VOIDED: Final = "Payment Voided In QBO"
INVOICE_CHANGED_IN_QBO: Final = "Invoice Changed In QBO"
PAYMENT_CHANGED_IN_QBO: Final = "Payment Changed In QBO"
EXCHANGE_FINISHED: Final = "Exchange Finished"
EVENT_TYPES: Final[tuple[str, ...]] = (
    CLIENT_IMPORTED,
    CLIENT_CHANGED,
    CLIENT_DEACTIVATED,
    CLIENT_MERGED,
    SITE_IMPORTED,
    SITE_CHANGED,
    PAYMENT_RECEIVED,
    PAYMENT_VOIDED,
    INVOICE_CHANGED_IN_QBO,
    PAYMENT_CHANGED_IN_QBO,
    EXCHANGE_FINISHED,
)

# Entities whose changes the app hears about; everything else is ignored and counted (Q4).
APPLIED_ENTITIES: Final[tuple[str, ...]] = ("Customer", "Invoice", "Payment", "Item", "Account")
SWEEP_ENTITIES: Final = APPLIED_ENTITIES
# Read alongside (same CDC call, no extra cost): a payment changes the invoices it pays.
_READ_WITH: Final[Mapping[str, tuple[str, ...]]] = {"Invoice": ("Payment",)}
# A webhook's time and QBO's LastUpdatedTime come from different clocks.
NOTICE_MARGIN: Final = timedelta(minutes=5)
# The sweep re-reads this much before its cursor: harmless (idempotent) and covers clock skew.
SWEEP_OVERLAP: Final = timedelta(minutes=5)
# TaxCode is not served by CDC: the sweep re-reads the whole list (one query) this often, and keeps
# when it last did on the tenant's cursor items (sk = TAX_REFRESH_CURSOR).
TAX_REFRESH_EVERY: Final = timedelta(days=1)
TAX_REFRESH_CURSOR: Final = "TaxCode"
# A tenant without a cursor yet (just connected; its lists were imported by the match tabs).
FIRST_SWEEP_LOOKBACK: Final = timedelta(days=1)

Operation = Literal["Create", "Update", "Delete", "Merge", "Void", "Emailed"]
_ID = re.compile(r"^[^#\x00-\x1f]{1,128}$")
_CENT: Final = Decimal("0.01")


# --- the queue message ---------------------------------------------------------------------------


class Notice(BaseModel):
    """One change QBO told us about: the webhook receiver's SQS message body (group = tenant)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str = Field(pattern=_ID.pattern)
    realm_id: str = Field(pattern=r"^[0-9A-Za-z]{1,64}$")
    entity: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,63}$")
    entity_id: str = Field(pattern=_ID.pattern)
    operation: Operation
    occurred_at: AwareDatetime
    deleted_id: str | None = Field(default=None, pattern=_ID.pattern)
    event_id: str = Field(min_length=1, max_length=256)
    source: Literal["webhook"] = "webhook"


class SweepRequest(BaseModel):
    """The sweep schedule's fan-out message: sweep this tenant (same queue, group = tenant, so it
    is serialised with the tenant's webhook notices)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(pattern=_ID.pattern)
    realm_id: str = Field(pattern=r"^[0-9A-Za-z]{1,64}$")
    source: Literal["sweep"]
    requested_at: AwareDatetime


class NoticeError(ValueError):
    """A message body that is not a notice (it goes to the DLQ, never silently dropped)."""


def _fields(error: ValidationError) -> str:
    return ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in error.errors())


def parse_notice(body: str) -> Notice:
    try:
        notice = Notice.model_validate_json(body)
    except ValidationError as error:
        raise NoticeError(f"not a change notice: {_fields(error)}") from None
    if notice.operation == "Merge" and not notice.deleted_id:
        raise NoticeError("a Merge notice needs deleted_id")
    return notice


def parse_message(body: str) -> Notice | SweepRequest:
    """A changes-queue body: a sweep request (``source: "sweep"``) or a webhook notice."""
    try:
        raw = json.loads(body)
    except ValueError:
        raise NoticeError("not a change notice: body") from None
    if isinstance(raw, dict) and raw.get("source") == "sweep":
        try:
            return SweepRequest.model_validate_json(body)
        except ValidationError as error:
            raise NoticeError(f"not a sweep request: {_fields(error)}") from None
    return parse_notice(body)


def sweep_request_body(tenant_id: str, realm_id: str, requested_at: datetime) -> str:
    request = SweepRequest(tenant_id=tenant_id, realm_id=realm_id, source="sweep", requested_at=requested_at)
    return request.model_dump_json()


# --- ports ----------------------------------------------------------------------------------------


class ChangeReader(Protocol):
    """What the applier and the sweep need of a QBO client (``QboClient.cdc``, ``query_all``)."""

    def cdc(
        self, entities: Sequence[str], changed_since: datetime, *, now: datetime | None = None
    ) -> dict[str, list[dict[str, Any]]]: ...

    def query_all(self, select_without_paging: str, page_size: int = ...) -> Iterator[dict[str, Any]]: ...


@dataclass
class ApplyReport:
    """What one application did.  ``reads``: CDC calls made (a window split at the 1,000 cap adds
    requests inside the client, not counted here); ``ignored``: by QBO entity (Q4) or reason."""

    notices: int = 0
    reads: int = 0
    changes: int = 0
    events: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    cache_refreshed: int = 0
    event_ids: list[str] = field(default_factory=list)

    def count_event(self, event: OutboundEvent) -> None:
        self.events[event.detail_type] += 1
        self.event_ids.append(event.event_id)


# --- helpers --------------------------------------------------------------------------------------


def _ref(row: Mapping[str, Any], name: str) -> str | None:
    ref = row.get(name)
    if isinstance(ref, Mapping) and ref.get("value") is not None:
        return str(ref["value"])
    return None


def money(value: Any) -> str | None:
    """An amount as QBO sent it (Decimal or int) as an exact decimal string with at least two
    decimals ("40.1" -> "40.10", "5" -> "5.00"); more precision than cents is kept, never rounded."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(_CENT)
    return format(amount, "f")


def _token(row: Mapping[str, Any]) -> str:
    return str(row.get("SyncToken", ""))


def _deleted(row: Mapping[str, Any]) -> bool:
    return str(row.get("status", "")).lower() == "deleted"


def _voided(row: Mapping[str, Any]) -> bool:
    """QBO keeps a voided document with zero amounts and "Voided" in its private note."""
    note = str(row.get("PrivateNote") or "")
    total = money(row.get("TotalAmt", 0))
    return "voided" in note.lower() and total is not None and Decimal(total) == 0


def _updated(row: Mapping[str, Any]) -> str | None:
    meta = row.get("MetaData")
    stamp = meta.get("LastUpdatedTime") if isinstance(meta, Mapping) else None
    return str(stamp) if stamp else None


def _customer_detail(row: Mapping[str, Any]) -> dict[str, Any]:
    email = row.get("PrimaryEmailAddr")
    phone = row.get("PrimaryPhone")
    address = row.get("BillAddr")
    return {
        "qbo_id": str(row.get("Id")),
        "sync_token": _token(row),
        "display_name": row.get("DisplayName"),
        "company_name": row.get("CompanyName"),
        "given_name": row.get("GivenName"),
        "family_name": row.get("FamilyName"),
        "email": email.get("Address") if isinstance(email, Mapping) else None,
        "phone": phone.get("FreeFormNumber") if isinstance(phone, Mapping) else None,
        "bill_address": {
            k: address.get(k)
            for k in ("Line1", "Line2", "City", "CountrySubDivisionCode", "PostalCode", "Country")
            if address.get(k)
        }
        if isinstance(address, Mapping)
        else None,
        "active": bool(row.get("Active", True)),
        "updated_at": _updated(row),
    }


# --- applying -------------------------------------------------------------------------------------


class ChangeApplier:
    """Turns QBO objects (CDC's latest states) and merge notices into links, cache rows and events."""

    def __init__(self, links: LinkStore, cache: QboCache, events: EventPublisher, clock: Clock) -> None:
        self._links = links
        self._cache = cache
        self._events = events
        self._clock = clock

    # --- the webhook path ---

    def apply_changes(
        self, tenant_id: str, realm_id: str, client: ChangeReader, notices: Sequence[Notice]
    ) -> ApplyReport:
        """Apply one tenant's notices with as few metered reads as possible (module docstring)."""
        report = ApplyReport(notices=len(notices))
        wanted: list[str] = []
        oldest: datetime | None = None
        for notice in notices:
            if notice.tenant_id != tenant_id or notice.realm_id != realm_id:
                report.ignored["other_realm"] += 1
                continue
            if notice.entity not in APPLIED_ENTITIES:
                report.ignored[notice.entity] += 1
                continue
            if notice.operation == "Merge":
                self._merge(tenant_id, notice, report)
            for entity in (notice.entity, *_READ_WITH.get(notice.entity, ())):
                if entity not in wanted:
                    wanted.append(entity)
            if oldest is None or notice.occurred_at < oldest:
                oldest = notice.occurred_at
        if not wanted or oldest is None:
            return report
        ordered = [e for e in APPLIED_ENTITIES if e in wanted]
        changes = client.cdc(ordered, oldest - NOTICE_MARGIN, now=self._clock.now())
        report.reads += 1
        self.apply_rows(tenant_id, changes, report)
        seen = {(entity, str(row.get("Id"))) for entity, rows in changes.items() for row in rows}
        for notice in notices:
            wanted_row = notice.entity in APPLIED_ENTITIES and notice.operation != "Merge"
            if wanted_row and (notice.entity, notice.entity_id) not in seen:
                report.ignored["not_found"] += 1
        return report

    # --- rows (both paths) ---

    def apply_rows(
        self, tenant_id: str, changes: Mapping[str, Sequence[Mapping[str, Any]]], report: ApplyReport
    ) -> None:
        paid_invoices = {
            ref
            for row in changes.get("Payment", ())
            if not _deleted(row)
            for ref in self._linked_invoices(row)
        }
        for entity in APPLIED_ENTITIES:
            for row in changes.get(entity, ()):
                report.changes += 1
                if entity == "Customer":
                    self._customer(tenant_id, row, report)
                elif entity == "Invoice":
                    self._invoice(tenant_id, row, report, paid_invoices)
                elif entity == "Payment":
                    self._payment(tenant_id, row, report)
                else:
                    self._cached(tenant_id, entity, row, report)
        for entity, rows in changes.items():
            if entity not in APPLIED_ENTITIES and rows:
                report.ignored[entity] += len(rows)

    def _emit(self, report: ApplyReport, event: OutboundEvent) -> None:
        self._events.publish(event)
        report.count_event(event)

    def _event(
        self, kind: str, tenant_id: str, detail: dict[str, Any], entity: str, row: Mapping[str, Any]
    ) -> OutboundEvent:
        return make_event(kind, tenant_id, detail, entity, str(row.get("Id")), _token(row))

    def _echo(self, link: Link | None, row: Mapping[str, Any], report: ApplyReport) -> bool:
        """Our own write coming back: QBO's SyncToken is the one we stored when we wrote it."""
        if link is not None and link.sync_token is not None and link.sync_token == _token(row):
            report.ignored["echo"] += 1
            return True
        return False

    # --- customers and sub-customers (Q1) ---

    def _customer(self, tenant_id: str, row: Mapping[str, Any], report: ApplyReport) -> None:
        if _deleted(row):  # name lists are deactivated, never deleted; a merged-away one may be
            report.ignored["customer_deleted"] += 1
            return
        qbo_id = str(row.get("Id"))
        parent = _ref(row, "ParentRef")
        active = bool(row.get("Active", True))
        if row.get("Job") or parent is not None:
            link = self._links.get_by_qbo(tenant_id, "site", qbo_id)
            if self._echo(link, row, report):
                return
            parent_link = None
            if parent is not None:
                parent_link = self._links.get_by_qbo(tenant_id, "client", parent) or self._links.get_by_qbo(
                    tenant_id, "site", parent
                )
            detail = {
                **_customer_detail(row),
                "site_id": link.app_id if link else None,
                "parent_qbo_id": parent,
                "parent_id": parent_link.app_id if parent_link else None,
                "parent_kind": parent_link.kind if parent_link else None,
                "fully_qualified_name": row.get("FullyQualifiedName"),
            }
            if link is not None:
                self._emit(report, self._event(SITE_CHANGED, tenant_id, detail, "Customer", row))
            elif active:
                self._emit(report, self._event(SITE_IMPORTED, tenant_id, detail, "Customer", row))
            else:
                report.ignored["inactive_unlinked"] += 1
            return
        link = self._links.get_by_qbo(tenant_id, "client", qbo_id)
        if self._echo(link, row, report):
            return
        detail = {**_customer_detail(row), "client_id": link.app_id if link else None}
        if link is not None:
            kind = CLIENT_CHANGED if active else CLIENT_DEACTIVATED
            self._emit(report, self._event(kind, tenant_id, detail, "Customer", row))
        elif active:
            self._emit(report, self._event(CLIENT_IMPORTED, tenant_id, detail, "Customer", row))
        else:
            report.ignored["inactive_unlinked"] += 1

    def _merge(self, tenant_id: str, notice: Notice, report: ApplyReport) -> None:
        """QBO merged ``deleted_id`` into ``entity_id``: the app entity linked to the merged-away
        customer is relinked to the survivor (unless the survivor is linked to another one)."""
        merged, survivor = str(notice.deleted_id), notice.entity_id
        for kind in ("client", "site"):
            link = self._links.get_by_qbo(tenant_id, kind, merged)
            if link is None:
                continue
            taken = self._links.get_by_qbo(tenant_id, kind, survivor)
            relinked = False
            if taken is None or taken.app_id == link.app_id:
                self._links.unlink_qbo(tenant_id, kind, merged)
                try:
                    self._links.link(tenant_id, kind, link.app_id, survivor, source=link.source)
                    relinked = True
                except LinkConflictError:
                    relinked = False
            detail = {
                "kind": kind,
                "app_id": link.app_id,
                "merged_qbo_id": merged,
                "survivor_qbo_id": survivor,
                "relinked": relinked,
                "survivor_linked_to": None if relinked or taken is None else taken.app_id,
            }
            event = make_event(CLIENT_MERGED, tenant_id, detail, "Merge", kind, merged, survivor)
            self._emit(report, event)
            return
        report.ignored["merge_unlinked"] += 1

    # --- documents we pushed (drift) and payments (Q2) ---

    def _linked_invoices(self, payment: Mapping[str, Any]) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        for line in payment.get("Line") or []:
            if not isinstance(line, Mapping):
                continue
            for linked in line.get("LinkedTxn") or []:
                if isinstance(linked, Mapping) and linked.get("TxnType") == "Invoice" and linked.get("TxnId"):
                    found.append((str(linked["TxnId"]), line.get("Amount")))
        return found

    def _drift(
        self, tenant_id: str, kind: str, row: Mapping[str, Any], link: Link, report: ApplyReport
    ) -> None:
        change = "deleted" if _deleted(row) else "voided" if _voided(row) else "changed"
        detail = {
            "kind": kind,
            "app_id": link.app_id,
            "qbo_id": link.qbo_id,
            "change": change,
            "sync_token": _token(row),
            "stored_sync_token": link.sync_token,
            "doc_number": row.get("DocNumber"),
            "total": money(row.get("TotalAmt")),
            "balance": money(row.get("Balance")),
            "updated_at": _updated(row),
        }
        event_type = INVOICE_CHANGED_IN_QBO if kind == "invoice" else PAYMENT_CHANGED_IN_QBO
        entity = "Invoice" if kind == "invoice" else "Payment"
        self._emit(report, self._event(event_type, tenant_id, detail, entity, row))

    def _invoice(
        self, tenant_id: str, row: Mapping[str, Any], report: ApplyReport, paid: set[tuple[str, Any]]
    ) -> None:
        qbo_id = str(row.get("Id"))
        link = self._links.get_by_qbo(tenant_id, "invoice", qbo_id)
        if link is None:
            report.ignored["invoice_unlinked"] += 1  # invoices are created by the app, not pulled
            return
        if self._echo(link, row, report):
            return
        if not _deleted(row) and not _voided(row) and any(ref == qbo_id for ref, _ in paid):
            # Its balance moved because a payment in this same change set applies to it; that
            # payment's own event tells the app.  Not drift.
            report.ignored["invoice_paid"] += 1
            return
        self._drift(tenant_id, "invoice", row, link, report)

    def _payment(self, tenant_id: str, row: Mapping[str, Any], report: ApplyReport) -> None:
        qbo_id = str(row.get("Id"))
        ours = self._links.get_by_qbo(tenant_id, "payment", qbo_id)
        if ours is not None:  # pushed by us
            if not self._echo(ours, row, report):
                self._drift(tenant_id, "payment", row, ours, report)
            return
        if _deleted(row):
            report.ignored["payment_deleted"] += 1  # a tombstone does not name its customer
            return
        customer = _ref(row, "CustomerRef")
        owner = None
        if customer is not None:
            owner = self._links.get_by_qbo(tenant_id, "client", customer) or self._links.get_by_qbo(
                tenant_id, "site", customer
            )
        if owner is None:
            report.ignored["payment_unlinked"] += 1
            return
        applied = []
        for qbo_invoice, amount in self._linked_invoices(row):
            invoice = self._links.get_by_qbo(tenant_id, "invoice", qbo_invoice)
            applied.append(
                {
                    "invoice_id": invoice.app_id if invoice else None,
                    "qbo_invoice_id": qbo_invoice,
                    "amount": money(amount),
                }
            )
        method = row.get("PaymentMethodRef")
        detail = {
            "qbo_id": qbo_id,
            "sync_token": _token(row),
            "client_id": owner.app_id,
            "client_kind": owner.kind,
            "qbo_customer_id": customer,
            "txn_date": row.get("TxnDate"),
            "total": money(row.get("TotalAmt")),
            "unapplied": money(row.get("UnappliedAmt")),
            "currency": _ref(row, "CurrencyRef"),
            "payment_ref_num": row.get("PaymentRefNum"),
            "payment_method": method.get("name") if isinstance(method, Mapping) else None,
            "applied": applied,
            "updated_at": _updated(row),
        }
        kind = PAYMENT_VOIDED if _voided(row) else PAYMENT_RECEIVED
        self._emit(report, self._event(kind, tenant_id, detail, "Payment", row))

    # --- mapping caches (Q3) ---

    def _cached(self, tenant_id: str, entity: str, row: Mapping[str, Any], report: ApplyReport) -> None:
        kinds = ("work_code", "expense_code") if entity == "Item" else ("account",)
        for kind in kinds:
            if belongs_to(kind, row):
                self._cache.put(tenant_id, kind, qbo_entity(kind, row))
                report.cache_refreshed += 1


# --- exchanges: the webhook batch and the sweep ----------------------------------------------------


class TenantGone(Exception):
    """The tenant is no longer connected to the notices' realm."""


@dataclass
class PullService:
    applier: ChangeApplier
    cursors: CursorStore
    exchanges: ExchangeLog
    events: EventPublisher
    clock: Clock
    client_for: Callable[[str], ChangeReader]  # tenant id -> QBO client of its connected company
    realm_of: Callable[[str], str | None]  # tenant id -> connected realm (None: not connected)
    cache: QboCache | None = None  # the mapping caches (the daily TaxCode refresh); None: no refresh
    connected_at_of: Callable[[str], datetime | None] = lambda _tenant_id: None

    def sweep_request(self, request: SweepRequest) -> Exchange | None:
        """Run a fanned-out sweep; a request for a tenant no longer connected to that realm is
        ignored (logged, not an error: redelivering it could never succeed)."""
        realm = self.realm_of(request.tenant_id)
        if realm is None or realm != request.realm_id:
            logger.info(
                "sweep request for a tenant not connected to it", extra={"tenant_id": request.tenant_id}
            )
            return None
        return self.sweep(request.tenant_id, realm, connected_at=self.connected_at_of(request.tenant_id))

    def webhook_batch(self, tenant_id: str, notices: Sequence[Notice]) -> Exchange:
        """Apply one tenant's notices; notices for a realm the tenant is not (or no longer)
        connected to are ignored and counted."""
        realm = self.realm_of(tenant_id)
        exchange = self.exchanges.start(tenant_id, "webhook", realm_id=realm)
        mine = [n for n in notices if realm is not None and n.realm_id == realm]
        stale = len(notices) - len(mine)
        try:
            report = ApplyReport(notices=len(notices))
            if mine and realm is not None:
                report = self.applier.apply_changes(tenant_id, realm, self.client_for(tenant_id), mine)
                report.notices = len(notices)
            if stale:
                report.ignored["not_connected"] += stale
        except Exception as error:
            self._fail(exchange, error)
            raise
        return self._finish(exchange, report)

    def sweep(
        self,
        tenant_id: str,
        realm_id: str,
        entities: Iterable[str] = SWEEP_ENTITIES,
        *,
        connected_at: datetime | None = None,
    ) -> Exchange:
        """CDC from the tenant's oldest cursor (minus the overlap) for ``entities`` in one call; the
        cursors move to the instant reading started, after everything read was applied.  Without a
        cursor yet: from ``connected_at`` (what existed before was imported by the match tabs),
        else ``FIRST_SWEEP_LOOKBACK``."""
        names = list(entities)
        exchange = self.exchanges.start(tenant_id, "sweep", realm_id=realm_id)
        try:
            started = self.clock.now()
            positions = [p for p in self.cursors.get_many(tenant_id, names).values() if p is not None]
            first = connected_at or started - FIRST_SWEEP_LOOKBACK
            since = min(positions) if len(positions) == len(names) else first
            report = ApplyReport()
            changes = self.client_for(tenant_id).cdc(names, since - SWEEP_OVERLAP, now=started)
            report.reads += 1
            self.applier.apply_rows(tenant_id, changes, report)
            self.cursors.advance(tenant_id, names, started, exchange_id=exchange.exchange_id)
            self._refresh_tax_codes(tenant_id, started, exchange, report)
        except Exception as error:
            self._fail(exchange, error)
            raise
        return self._finish(exchange, report)

    def _refresh_tax_codes(
        self, tenant_id: str, started: datetime, exchange: Exchange, report: ApplyReport
    ) -> None:
        """CDC does not serve TaxCode: once per ``TAX_REFRESH_EVERY`` the sweep replaces the tax
        cache with one ``SELECT * FROM TaxCode`` (one metered read), then stamps the marker."""
        if self.cache is None:
            return
        last = self.cursors.get(tenant_id, TAX_REFRESH_CURSOR)
        if last is not None and started - last < TAX_REFRESH_EVERY:
            return
        counts = self.cache.refresh(tenant_id, ["tax"], self.client_for(tenant_id))
        report.reads += 1
        report.cache_refreshed += counts.get("tax", 0)
        self.cursors.advance(tenant_id, [TAX_REFRESH_CURSOR], started, exchange_id=exchange.exchange_id)

    def _finish(self, exchange: Exchange, report: ApplyReport) -> Exchange:
        exchange.notices = report.notices or exchange.notices
        exchange.reads = report.reads
        exchange.changes = report.changes
        exchange.events = dict(report.events)
        exchange.ignored = dict(report.ignored)
        exchange.cache_refreshed = report.cache_refreshed
        self.exchanges.finish(exchange, "succeeded")
        self._announce(exchange)
        return exchange

    def _fail(self, exchange: Exchange, error: Exception) -> None:
        logger.warning(
            "pull exchange failed",
            extra={"tenant_id": exchange.tenant_id, "source": exchange.source, "error": type(error).__name__},
        )
        self.exchanges.finish(exchange, "failed", error=f"{type(error).__name__}: {error}")
        self._announce(exchange)

    def _announce(self, exchange: Exchange) -> None:
        detail = {k: v for k, v in exchange.as_dict().items() if k != "tenant_id"}
        self.events.publish(make_event(EXCHANGE_FINISHED, exchange.tenant_id, detail, exchange.exchange_id))


def build_pull_service() -> PullService:
    """The service as a Lambda uses it, from ``shared.wiring``'s collaborators."""
    from shared import wiring
    from shared.links import LinkStore
    from shared.mapping.catalog import QboCache

    clock = wiring.clock()
    links_table = wiring.dynamodb().Table(wiring.settings().links_table)
    runtime_table = wiring.dynamodb().Table(wiring.settings().runtime_table)

    def realm_of(tenant_id: str) -> str | None:
        connection = wiring.store().get(tenant_id)
        return connection.realm_id if connection is not None and connection.disconnected_at is None else None

    def connected_at_of(tenant_id: str) -> datetime | None:
        connection = wiring.store().get(tenant_id)
        return connection.connected_at if connection is not None else None

    cache = QboCache(links_table, clock)
    return PullService(
        applier=ChangeApplier(LinkStore(links_table, clock), cache, wiring.events(), clock),
        cursors=CursorStore(links_table, clock),
        exchanges=ExchangeLog(runtime_table, clock),
        events=wiring.events(),
        clock=clock,
        client_for=wiring.tenant_qbo_client,
        realm_of=realm_of,
        cache=cache,
        connected_at_of=connected_at_of,
    )
