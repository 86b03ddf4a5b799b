"""Applying QBO's changes to the app: the change worker's and the sweep's shared logic (Q1–Q4).

One read per tenant per moment.  Each tenant has one changes cursor: the instant its last CDC read
started, everything before which has been applied.  A read (one CDC call for every entity we apply,
one metered read whatever their number) goes from the cursor, less a small clock-skew margin, to now
and moves the cursor only once everything it returned was applied.  A webhook delivery reads only
when one of its notices is news:

* a notice the cursor already covers (its change happened before the last read began, less the
  skew margin) costs nothing: a backlog of 500 notices is one read, not fifty;
* a notice of our own write costs nothing either: the push worker records QBO's answer to every
  write in the version ledger (``shared.mapping.versions``) in the transaction that records the posting,
  so the notice is recognised by its entity, id and time before anything is read;
* a read waits until the oldest news is ``gather`` old, so that the changes made around it (a
  bookkeeper enters several things at a time) and our own postings still being recorded are all
  settled by that one read, and is never closer to the previous read than ``min_read_interval``
  (the notices arriving meanwhile are then covered by that one read).

Notices for entities we do not apply (JournalEntry, Deposit, Purchase, ...) are ignored and counted
(Q4).  Merges need no read: the notice names both customers.  The client splits a window that hits
the 1,000-object cap and falls back to queries beyond 30 days.  Deliveries that read nothing write
no exchange: their counts wait on the cursor item for the next exchange that reads.

Applying (``ChangeApplier``), batched: one BatchGetItem of the ledger for a whole CDC answer; a row
the ledger already covers (SyncToken not greater, as numbers) is dropped — our echo, a replay, an
overlap or a stale row; a document whose SyncToken grew but whose content did not is a balance moved
by a payment or a credit, not drift; the rest get their links in two BatchGetItem calls, their events
are published in batches, and the ledger records what was applied, so a change is published once.
Every event id derives from (entity, Id, SyncToken), so a re-publication after a crash between
publishing and recording carries the same id.

``PullService`` wraps both paths (webhook deliveries, sweep) in an exchange (history) and owns the
cursor rule.  The documents and payments of an answer are ``shared.pull.documents``'s
(``DocumentChanges``); the row readers and what an answer produces are ``shared.pull.rows``'.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.history.exchanges import Exchange, ExchangeLog
from shared.kernel.clock import Clock
from shared.kernel.events import (
    CLIENT_CHANGED,
    CLIENT_DEACTIVATED,
    CLIENT_IMPORTED,
    CLIENT_MERGED_IN_QBO,
    EXCHANGE_FINISHED,
    SITE_CHANGED,
    SITE_IMPORTED,
    EventPublisher,
    OutboundEvent,
    make_event,
    publish_all,
)
from shared.kernel.observability import logger
from shared.kernel.reasons import Reason
from shared.mapping.catalog import QboCache, belongs_to, qbo_entity
from shared.mapping.links import Link, LinkConflictError, LinkError, LinkStore
from shared.mapping.versions import TOUCH_TOLERANCE, KnownVersion, VersionLedger, is_deleted, sync_token
from shared.pull.cursors import CursorState, CursorStore
from shared.pull.documents import DocumentChanges
from shared.pull.rows import (
    DOCUMENTS,
    ROW_ID,
    Applied,
    last_updated,
    linked_txns,
    older_or_same,
    own_mark,
    ref_value,
    row_event,
    row_id,
    token_of,
)

# Entities whose changes the app hears about (one CDC call reads them all); everything else is
# ignored and counted (Q4).
APPLIED_ENTITIES: Final[tuple[str, ...]] = ("Customer", "Invoice", "CreditMemo", "Payment", "Item", "Account")
SWEEP_ENTITIES: Final = APPLIED_ENTITIES
# The tenant's one changes cursor (sk in the cursor partition), and the per-entity cursors earlier
# versions kept: the oldest of them is where a tenant without the new cursor starts.
CHANGES_CURSOR: Final = "Changes"
LEGACY_CURSORS: Final[tuple[str, ...]] = ("Customer", "Invoice", "Payment", "Item", "Account")
# TaxCode is not served by CDC: the sweep re-reads the whole list (one query) this often, and keeps
# when it last did on the tenant's cursor items (sk = TAX_REFRESH_CURSOR).
TAX_REFRESH_EVERY: Final = timedelta(days=1)
TAX_REFRESH_CURSOR: Final = "TaxCode"
# A tenant without a cursor yet (just connected; its lists were imported by the match tabs).
FIRST_SWEEP_LOOKBACK: Final = timedelta(days=1)

Operation = Literal["Create", "Update", "Delete", "Merge", "Void", "Emailed"]


@dataclass(frozen=True)
class PullTiming:
    """How often a tenant may be read, and the margins around it (settings ``pull_*``).

    ``min_read_interval``: two reads of a tenant are at least this far apart (the notices arriving
    in between share the second read).  ``gather``: a read waits until the oldest notice it is for is
    this old, so that one read settles the changes made around it and our own postings still being
    recorded in the ledger are judged ours.  ``skew``: the clock margin between QBO's timestamps and
    ours (a read starts this much before the cursor; a notice is covered only when its whole second
    lies this much before the cursor).  ``touch_tolerance``: seconds after our payment within which
    QBO's stamp on the invoice it settles is still ours.  A change reaches the app at most
    ``max(gather, min_read_interval)`` after it reaches the worker, plus the read itself."""

    min_read_interval: timedelta = timedelta(seconds=8)
    gather: timedelta = timedelta(seconds=6)
    skew: timedelta = timedelta(milliseconds=500)
    touch_tolerance: float = TOUCH_TOLERANCE

    @property
    def longest_wait(self) -> timedelta:
        return max(self.min_read_interval, self.gather)

    def covers(self, occurred_at: datetime, position: datetime | None) -> bool:
        """Whether a read that began at ``position`` saw a change QBO stamped ``occurred_at``: its
        whole second (QBO's LastUpdatedTime has whole seconds), and the skew margin, lie before."""
        if position is None:
            return False
        second_end = math.floor(occurred_at.timestamp()) + 1
        return second_end + self.skew.total_seconds() <= position.timestamp()


# --- the queue message ---------------------------------------------------------------------------


class Notice(BaseModel):
    """One change QBO told us about: the webhook receiver's SQS message body (group = tenant)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str = Field(pattern=ROW_ID.pattern)
    realm_id: str = Field(pattern=r"^[0-9A-Za-z]{1,64}$")
    entity: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,63}$")
    entity_id: str = Field(pattern=ROW_ID.pattern)
    operation: Operation
    occurred_at: AwareDatetime
    deleted_id: str | None = Field(default=None, pattern=ROW_ID.pattern)
    event_id: str = Field(min_length=1, max_length=256)
    source: Literal["webhook"] = "webhook"


class SweepRequest(BaseModel):
    """The sweep schedule's fan-out message: sweep this tenant (same queue, group = tenant, so it
    is serialised with the tenant's webhook notices)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(pattern=ROW_ID.pattern)
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


class DocumentNotes(Protocol):
    """Where the applier notes what QBO did to one of the app's documents by itself (the posting
    log's ``add_note``); False when no such document was posted."""

    def add_note(self, tenant_id: str, kind: str, app_id: str, note: Reason) -> bool: ...


class ChangeReader(Protocol):
    """What the applier and the sweep need of a QBO client (``QboClient.cdc``, ``query_all``)."""

    def cdc(
        self, entities: Sequence[str], changed_since: datetime, *, now: datetime | None = None
    ) -> dict[str, list[dict[str, Any]]]: ...

    def query_all(self, select_without_paging: str, page_size: int = ...) -> Iterator[dict[str, Any]]: ...

    def preferences(self) -> dict[str, Any]: ...


class CompanyPreferences(Protocol):
    """Where a tenant's company preferences are kept (``shared.connections.company.CompanyPreferences``)."""

    def preferences_changed(self, tenant_id: str, preferences: Mapping[str, Any]) -> bool: ...


@dataclass
class ApplyReport:
    """What one application did.  ``reads``: CDC calls made (a window split at the 1,000 cap adds
    requests inside the client, not counted here); ``echoes``: our own writes recognised (notices
    and rows); ``coalesced``: notices the cursor already covered; ``ignored``: by QBO entity (Q4)
    or reason."""

    notices: int = 0
    reads: int = 0
    changes: int = 0
    echoes: int = 0
    coalesced: int = 0
    events: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    # What made a webhook delivery read: its news notices, by "Entity Operation".
    read_for: Counter[str] = field(default_factory=Counter)
    cache_refreshed: int = 0
    event_ids: list[str] = field(default_factory=list)

    def count_event(self, event: OutboundEvent) -> None:
        self.events[event.detail_type] += 1
        self.event_ids.append(event.event_id)

    def echo(self, reason: str = "echo") -> None:
        self.echoes += 1
        self.ignored[reason] += 1


# --- helpers --------------------------------------------------------------------------------------


# QBO's address fields and their names in an event.
_ADDRESS: Final = {
    "Line1": "line1",
    "Line2": "line2",
    "City": "city",
    "CountrySubDivisionCode": "country_sub_division_code",
    "PostalCode": "postal_code",
    "Country": "country",
}


def _text(value: Any) -> str | None:
    """A QBO value for a text field of an event: an empty one as null."""
    return str(value) if value not in (None, "") else None


def _customer_detail(row: Mapping[str, Any]) -> dict[str, Any]:
    email = row.get("PrimaryEmailAddr")
    phone = row.get("PrimaryPhone")
    address = row.get("BillAddr")
    return {
        "qbo_id": str(row.get("Id")),
        "sync_token": token_of(row),
        "display_name": row.get("DisplayName"),
        "company_name": row.get("CompanyName"),
        "given_name": row.get("GivenName"),
        "family_name": row.get("FamilyName"),
        "email": email.get("Address") if isinstance(email, Mapping) else None,
        "phone": phone.get("FreeFormNumber") if isinstance(phone, Mapping) else None,
        "bill_address": {name: _text(address.get(key)) for key, name in _ADDRESS.items()}
        if isinstance(address, Mapping)
        else None,
        "active": bool(row.get("Active", True)),
        "updated_at": last_updated(row),
    }


# --- applying -------------------------------------------------------------------------------------


class EventsRefusedError(RuntimeError):
    """EventBridge refused some events: the changes that made them were not recorded and come back."""


class ChangeApplier:
    """Turns QBO objects (CDC's latest states) and merge notices into links, cache rows and events."""

    def __init__(
        self,
        links: LinkStore,
        cache: QboCache,
        events: EventPublisher,
        clock: Clock,
        versions: VersionLedger,
        *,
        postings: DocumentNotes | None = None,
    ) -> None:
        self._links = links
        self._cache = cache
        self._events = events
        self._clock = clock
        self._versions = versions
        self._postings = postings  # notes on documents QBO changed by itself

    # --- rows (both paths) ---

    def apply_rows(
        self, tenant_id: str, changes: Mapping[str, Sequence[Mapping[str, Any]]], report: ApplyReport
    ) -> None:
        """Apply one CDC answer: see the module docstring for the order and the DynamoDB calls."""
        rows = [
            (entity, row)
            for entity in APPLIED_ENTITIES
            for row in changes.get(entity, ())
            if row_id(row) is not None
        ]
        for entity, found in changes.items():
            if entity not in APPLIED_ENTITIES and found:
                report.ignored[entity] += len(found)
        report.changes += len(rows)
        known = self._versions.get_many(tenant_id, ((entity, str(row["Id"])) for entity, row in rows))
        out = Applied()
        news: list[tuple[str, Mapping[str, Any], KnownVersion | None]] = []
        for entity, row in rows:
            version = known.get((entity, str(row["Id"])))
            if version is not None and version.covers(row):
                if version.own and (is_deleted(row) or sync_token(row) == version.sync_token):
                    report.echo()
                else:
                    report.ignored["already_applied"] += 1  # a replay, an overlap or a stale row
                continue
            if version is not None and not is_deleted(row) and version.same_content(row):
                # A later version saying the same: a payment or a credit moved its balance.  Ours
                # (the push marked the document touched) is not recorded again; another's (the
                # bookkeeper's payment) is, so that its own webhook notice costs no read.
                report.ignored["balance_moved"] += 1
                if not version.moved_by_us(row):
                    out.record(version.applied(row))
                continue
            news.append((entity, row, version))
        links = self._links.get_many_by_qbo(tenant_id, {p for e, row, _ in news for p in _wanted(e, row)})
        paid = {
            ref
            for entity, row, _ in news
            if entity == "Payment" and not is_deleted(row)
            for ref, _ in linked_txns(row, "Invoice")
        }
        documents = DocumentChanges(tenant_id, links, paid, report, out)
        for entity, row, version in news:
            if entity == "Customer":
                self._customer(tenant_id, row, version, links, report, out)
            elif entity in DOCUMENTS and entity != "Payment":
                documents.document(entity, row, version)
            elif entity == "Payment":
                documents.payment(row, version)
            else:
                self._cached(tenant_id, entity, row, version, report, out)
        for key in sorted(out.credited):
            base = next((v for v in reversed(out.versions) if v.key == key), None) or known.get(key)
            out.record(dataclasses.replace(base or KnownVersion(key[0], key[1], None), credited=True))
        self._publish_and_record(tenant_id, out, report)

    def _publish_and_record(self, tenant_id: str, out: Applied, report: ApplyReport) -> None:
        refused = {event.event_id for event in publish_all(self._events, out.events)}
        for event in out.events:
            if event.event_id not in refused:
                report.count_event(event)
        done = [
            version for version in out.versions if not refused.intersection(out.waits_on.get(version.key, ()))
        ]
        self._versions.record_applied(tenant_id, done)
        if self._postings is not None:
            for kind, app_id, note, event_id in out.notes:
                if event_id not in refused:
                    self._postings.add_note(tenant_id, kind, app_id, note)
        if refused:
            raise EventsRefusedError(f"EventBridge refused {len(refused)} of {len(out.events)} events")

    # --- customers and sub-customers (Q1) ---

    def _customer(  # noqa: PLR0917 - the row, what is known of it, and where results go
        self,
        tenant_id: str,
        row: Mapping[str, Any],
        version: KnownVersion | None,
        links: Mapping[tuple[str, str], Link],
        report: ApplyReport,
        out: Applied,
    ) -> None:
        if is_deleted(row):  # name lists are deactivated, never deleted; a merged-away one may be
            report.ignored["customer_deleted"] += 1
            return
        qbo_id = str(row.get("Id"))
        parent = ref_value(row, "ParentRef")
        active = bool(row.get("Active", True))
        site = bool(row.get("Job")) or parent is not None
        kind = "site" if site else "client"
        link = links.get((kind, qbo_id))
        if link is None and self._own_customer(tenant_id, row, report, out):
            return
        if link is not None and version is None and older_or_same(row, link.sync_token):
            report.echo()  # linked and written before the ledger existed: its SyncToken says ours
            out.record(KnownVersion.of_row("Customer", row, kind=kind, app_id=link.app_id))
            return
        applied = (version or KnownVersion("Customer", qbo_id, None)).applied(
            row, kind=kind, app_id=link.app_id if link else None
        )
        detail = _customer_detail(row)
        if site:
            parent_link = None
            if parent is not None:
                parent_link = links.get(("client", parent)) or links.get(("site", parent))
            detail.update(
                site_id=link.app_id if link else None,
                parent_qbo_id=parent,
                parent_id=parent_link.app_id if parent_link else None,
                parent_kind=parent_link.kind if parent_link else None,
                fully_qualified_name=row.get("FullyQualifiedName"),
            )
            event_type = SITE_CHANGED if link is not None else SITE_IMPORTED if active else None
        else:
            detail["client_id"] = link.app_id if link else None
            if link is not None:
                event_type = CLIENT_CHANGED if active else CLIENT_DEACTIVATED
            else:
                event_type = CLIENT_IMPORTED if active else None
        out.record(applied)
        if event_type is None:
            report.ignored["inactive_unlinked"] += 1
            return
        out.emit(row_event(event_type, tenant_id, detail, "Customer", row), applied)

    def _own_customer(
        self, tenant_id: str, row: Mapping[str, Any], report: ApplyReport, out: Applied
    ) -> bool:
        """A customer carrying our marker but no link: our create, whose answer was lost or is not
        recorded yet.  It is linked now (never imported: the host app would create a duplicate)."""
        mark = own_mark("Customer", row)
        if mark is None:
            return False
        kind, app_id = mark
        qbo_id = str(row.get("Id"))
        try:
            self._links.link(
                tenant_id,
                kind,
                app_id,
                qbo_id,
                qbo_name=row.get("DisplayName"),
                sync_token=token_of(row),
                source="push",
            )
        except LinkConflictError:
            # The app client is linked to another customer: a duplicate an uncertain create left.
            report.ignored["own_duplicate"] += 1
        except LinkError:
            report.ignored["own_unlinkable"] += 1
        report.echo()
        written = KnownVersion.of_row("Customer", row, kind=kind, app_id=app_id)
        out.record(
            KnownVersion(
                entity="Customer",
                qbo_id=qbo_id,
                sync_token=written.sync_token,
                own=True,
                updated_at=written.updated_at,
                written_at=written.updated_at,
                written_op="Create",
                kind=kind,
                app_id=app_id,
            )
        )
        return True

    def merge(self, tenant_id: str, notice: Notice, report: ApplyReport) -> None:
        """QBO merged ``deleted_id`` into ``entity_id``: the app entity linked to the merged-away
        customer is relinked to the survivor (unless the survivor is linked to another one).  A
        replay finds the merged-away customer unlinked and does nothing."""
        from shared.kernel.event_models import ClientMergedInQbo

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
            detail = ClientMergedInQbo.model_validate(
                {
                    "kind": kind,
                    "app_id": link.app_id,
                    "merged_qbo_id": merged,
                    "survivor_qbo_id": survivor,
                    "relinked": relinked,
                    "survivor_linked_to": None if relinked or taken is None else taken.app_id,
                }
            )
            event = make_event(CLIENT_MERGED_IN_QBO, tenant_id, detail, "Merge", kind, merged, survivor)
            self._events.publish(event)
            report.count_event(event)
            return
        report.ignored["merge_unlinked"] += 1

    # --- mapping caches (Q3) ---

    def _cached(  # noqa: PLR0917 - the row, what is known of it, and where results go
        self,
        tenant_id: str,
        entity: str,
        row: Mapping[str, Any],
        version: KnownVersion | None,
        report: ApplyReport,
        out: Applied,
    ) -> None:
        kinds = ("work_code", "expense_code") if entity == "Item" else ("account",)
        for kind in kinds:
            if belongs_to(kind, row):
                self._cache.put(tenant_id, kind, qbo_entity(kind, row))
                report.cache_refreshed += 1
        out.record((version or KnownVersion(entity, str(row.get("Id")), None)).applied(row))


def _wanted(entity: str, row: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (kind, QBO id) links applying ``row`` needs."""
    qbo_id = str(row.get("Id"))
    wanted: set[tuple[str, str]] = set()
    if entity == "Customer":
        wanted |= {("client", qbo_id), ("site", qbo_id)}
        parent = ref_value(row, "ParentRef")
        if parent is not None and ROW_ID.match(parent):
            wanted |= {("client", parent), ("site", parent)}
    elif entity in DOCUMENTS:
        wanted.add((DOCUMENTS[entity][0], qbo_id))
    if entity == "Payment":
        customer = ref_value(row, "CustomerRef")
        if customer is not None and ROW_ID.match(customer):
            wanted |= {("client", customer), ("site", customer)}
        wanted |= {("invoice", ref) for ref, _ in linked_txns(row, "Invoice") if ROW_ID.match(ref)}
        wanted |= {("credit_memo", ref) for ref, _ in linked_txns(row, "CreditMemo") if ROW_ID.match(ref)}
    return wanted


# --- exchanges: webhook deliveries and the sweep ----------------------------------------------------

_IGNORED: Final = "ignored__"


def _pending_counts(report: ApplyReport) -> dict[str, int]:
    """What a delivery that read nothing saw, as the cursor's pending counters."""
    counts = {"notices": report.notices, "echoes": report.echoes, "coalesced": report.coalesced}
    counts.update({_IGNORED + reason: count for reason, count in report.ignored.items()})
    return counts


def _take_pending(pending: Mapping[str, int], report: ApplyReport) -> None:
    """Fold the counters earlier deliveries left on the cursor into this exchange's report."""
    for name, count in pending.items():
        if name == "notices":
            report.notices += count
        elif name == "echoes":
            report.echoes += count
        elif name == "coalesced":
            report.coalesced += count
        elif name.startswith(_IGNORED):
            report.ignored[name[len(_IGNORED) :]] += count


@dataclass
class PullService:
    applier: ChangeApplier
    cursors: CursorStore
    exchanges: ExchangeLog
    events: EventPublisher
    clock: Clock
    client_for: Callable[[str], ChangeReader]  # tenant id -> QBO client of its connected company
    realm_of: Callable[[str], str | None]  # tenant id -> connected realm (None: not connected)
    versions: VersionLedger
    cache: QboCache | None = None  # the mapping caches (the daily TaxCode refresh); None: no refresh
    connected_at_of: Callable[[str], datetime | None] = lambda _tenant_id: None
    timing: PullTiming = field(default_factory=PullTiming)
    sleep: Callable[[float], None] = time.sleep
    company: CompanyPreferences | None = None  # kept in step when QBO's Preferences change
    observer: Callable[[ApplyReport], None] | None = None  # the function's metrics, per delivery

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

    def webhook_batch(self, tenant_id: str, notices: Sequence[Notice]) -> Exchange | None:
        """Take one delivery of a tenant's notices; read only if one of them is news (module doc).

        Returns the exchange when the delivery read QBO or published something, else None (its
        counts are noted on the cursor for the next exchange)."""
        realm = self.realm_of(tenant_id)
        mine = [n for n in notices if realm is not None and n.realm_id == realm]
        report = ApplyReport(notices=len(notices))
        if len(mine) < len(notices):
            report.ignored["not_connected"] += len(notices) - len(mine)
        cursor = self.cursors.state(tenant_id, CHANGES_CURSOR)
        merges = [n for n in mine if n.entity == "Customer" and n.operation == "Merge"]
        preferences = self.company is not None and any(n.entity == "Preferences" for n in mine)
        news = self._news(tenant_id, cursor, [n for n in mine if n.entity != "Preferences"], report)
        if news:
            news = self._settled(tenant_id, cursor, news, report)
        if not news and not merges and not preferences:
            self.cursors.note(tenant_id, CHANGES_CURSOR, _pending_counts(report))
            self._observe(report)
            return None
        assert realm is not None  # news and merges come from notices of the connected realm
        exchange = self.exchanges.start(tenant_id, "webhook", realm_id=realm)
        try:
            if preferences and self.company is not None:
                # CDC does not carry Preferences: one read of them when QBO says they changed
                fresh = self.client_for(tenant_id).preferences()
                report.reads += 1
                if self.company.preferences_changed(tenant_id, fresh):
                    report.ignored["preferences_changed"] += 1
            for notice in merges:
                self.applier.merge(tenant_id, notice, report)
            if news:
                report.read_for.update(f"{n.entity} {n.operation}" for n in news)
                connected_at = self.connected_at_of(tenant_id)
                self._catch_up(tenant_id, cursor, exchange, report, connected_at=connected_at)
        except Exception as error:
            self._fail(exchange, error, report)
            raise
        return self._finish(exchange, report)

    def _news(
        self, tenant_id: str, cursor: CursorState, notices: Sequence[Notice], report: ApplyReport
    ) -> list[Notice]:
        """The notices that need a read: not for an ignored entity, not covered by the cursor, not
        our own write (one BatchGetItem of the ledger)."""
        relevant = []
        for notice in notices:
            if notice.entity not in APPLIED_ENTITIES:
                report.ignored[notice.entity] += 1
            elif self.timing.covers(notice.occurred_at, cursor.position):
                report.coalesced += 1  # the last read began after this change: it was applied
            else:
                relevant.append(notice)
        return self._not_ours(tenant_id, relevant, report)

    def _not_ours(self, tenant_id: str, notices: Sequence[Notice], report: ApplyReport) -> list[Notice]:
        if not notices:
            return []
        known = self.versions.get_many(tenant_id, ((n.entity, n.entity_id) for n in notices))
        news = []
        for notice in notices:
            version = known.get((notice.entity, notice.entity_id))
            known_as = None
            if notice.operation != "Merge" and version is not None:
                known_as = version.explains(notice.occurred_at, notice.operation, self.timing.touch_tolerance)
            if known_as == "own":
                report.echo()
            elif known_as == "applied":
                report.coalesced += 1  # a version at least this recent was applied: a replay
            else:
                news.append(notice)
        return news

    def _settled(
        self, tenant_id: str, cursor: CursorState, news: list[Notice], report: ApplyReport
    ) -> list[Notice]:
        """Wait before a read: until the oldest news is ``gather`` old and ``min_read_interval`` has
        passed since the last read; then judge the notices again (one more BatchGetItem: our own
        postings have landed meanwhile)."""
        now = self.clock.now()
        due = min(notice.occurred_at for notice in news) + self.timing.gather
        # ...and late enough to cover every notice in hand (their whole second, and the skew)
        newest = max(math.floor(notice.occurred_at.timestamp()) + 1 for notice in news)
        due = max(due, datetime.fromtimestamp(newest, UTC) + self.timing.skew)
        if cursor.position is not None:
            due = max(due, cursor.position + self.timing.min_read_interval)
        wait = min((due - now).total_seconds(), self.timing.longest_wait.total_seconds())
        if wait <= 0:
            return news
        self.sleep(wait)
        return self._not_ours(tenant_id, news, report)

    def sweep(
        self,
        tenant_id: str,
        realm_id: str,
        *,
        connected_at: datetime | None = None,
    ) -> Exchange:
        """Read from the tenant's cursor to now (one CDC call for every applied entity) and apply
        everything; then, once a day, the tax codes.  Without a cursor yet: from the oldest cursor an
        earlier version kept, else ``connected_at`` (what existed before was imported by the match
        tabs), else ``FIRST_SWEEP_LOOKBACK``."""
        exchange = self.exchanges.start(tenant_id, "sweep", realm_id=realm_id)
        report = ApplyReport()
        try:
            cursor = self.cursors.state(tenant_id, CHANGES_CURSOR)
            started = self._catch_up(tenant_id, cursor, exchange, report, connected_at=connected_at)
            self._refresh_tax_codes(tenant_id, started, exchange, report)
        except Exception as error:
            self._fail(exchange, error, report)
            raise
        return self._finish(exchange, report)

    def _catch_up(
        self,
        tenant_id: str,
        cursor: CursorState,
        exchange: Exchange,
        report: ApplyReport,
        *,
        connected_at: datetime | None,
    ) -> datetime:
        """One read from the cursor (less the skew margin) to now, applied, then the cursor moved to
        the instant the read started (never before everything read was applied)."""
        started = self.clock.now()
        since = cursor.position or self._first_position(tenant_id, started, connected_at)
        client = self.client_for(tenant_id)
        changes = client.cdc(list(APPLIED_ENTITIES), since - self.timing.skew, now=started)
        report.reads += 1
        self.applier.apply_rows(tenant_id, changes, report)
        _take_pending(cursor.pending, report)
        self.cursors.advance(
            tenant_id, [CHANGES_CURSOR], started, exchange_id=exchange.exchange_id, taken=cursor.pending
        )
        return started

    def _first_position(self, tenant_id: str, started: datetime, connected_at: datetime | None) -> datetime:
        legacy = [p for p in self.cursors.get_many(tenant_id, LEGACY_CURSORS).values() if p is not None]
        if len(legacy) == len(LEGACY_CURSORS):
            return min(legacy)
        return connected_at or started - FIRST_SWEEP_LOOKBACK

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

    def _observe(self, report: ApplyReport) -> None:
        if self.observer is not None:
            self.observer(report)

    def _finish(self, exchange: Exchange, report: ApplyReport) -> Exchange:
        self._observe(report)
        self._copy(exchange, report)
        self.exchanges.finish(exchange, "succeeded")
        self._announce(exchange)
        return exchange

    @staticmethod
    def _copy(exchange: Exchange, report: ApplyReport) -> None:
        exchange.notices = report.notices or exchange.notices
        exchange.reads = report.reads
        exchange.changes = report.changes
        exchange.echoes = report.echoes
        exchange.coalesced = report.coalesced
        exchange.events = dict(report.events)
        exchange.ignored = dict(report.ignored)
        exchange.read_for = dict(report.read_for)
        exchange.cache_refreshed = report.cache_refreshed

    def _fail(self, exchange: Exchange, error: Exception, report: ApplyReport) -> None:
        logger.warning(
            "pull exchange failed",
            extra={"tenant_id": exchange.tenant_id, "source": exchange.source, "error": type(error).__name__},
        )
        self._copy(exchange, report)
        self.exchanges.finish(exchange, "failed", error=f"{type(error).__name__}: {error}")
        self._announce(exchange)

    def _announce(self, exchange: Exchange) -> None:
        from shared.kernel.event_models import ExchangeFinished

        detail = ExchangeFinished.model_validate(
            {k: v for k, v in exchange.as_dict().items() if k != "tenant_id"}
        )
        self.events.publish(make_event(EXCHANGE_FINISHED, exchange.tenant_id, detail, exchange.exchange_id))
