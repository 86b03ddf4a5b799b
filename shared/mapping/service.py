"""The match tabs: list, link, unlink, clear, automatch, the 6240 pre-check, export, import, onboard.

Collaborators are injected (docs/mappings.md): the app side (``AppCatalog``), the QBO side
(``QboCache``), the links (``LinkStore``), a factory giving the tenant's QBO client (called only by
operations that talk to QBO), the event publisher and the clock.  Every refusal is a
``MappingError`` subclass whose ``field`` names the input at fault, so the API can answer a
precise 4xx.

``mappings_changed`` (tenant, operation, kinds) is called after every operation that can add links
(link, automatch with apply, export, import, onboard), even when it added none: a retry after a
failure that came after the links were made still gets there.  The composition root makes it queue
a recheck of the documents waiting for a mapping (docs/push.md, "Recheck").

Export's writes are ``shared.mapping.export``'s ``Exporter``; linking a pair, the client types a
tenant syncs and the names QBO holds are ``shared.mapping.pairing``'s, shared by both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from shared.adapters.dynamo import InvalidPageTokenError
from shared.kernel import constants
from shared.kernel.clock import Clock
from shared.kernel.events import (
    ACCOUNT_IMPORTED,
    CLIENT_IMPORTED,
    EMPLOYEE_IMPORTED,
    EXPENSE_CODE_IMPORTED,
    SITE_IMPORTED,
    TAX_IMPORTED,
    WORK_CODE_IMPORTED,
    DetailType,
    EventPublisher,
    make_event,
)
from shared.mapping import automatch as matching
from shared.mapping.catalog import (
    ACCOUNT_TYPES_FOR_USE,
    ACCOUNT_USES,
    MAPPING_KINDS,
    AppCatalog,
    AppEntity,
    QboCache,
    QboEntity,
    UpsertOutcome,
)
from shared.mapping.errors import (
    AlreadyLinkedError,
    AppEntityNotFoundError,
    IncompatibleEntityError,
    MappingError,
    NotLinkedError,
    QboEntityNotFoundError,
    UnknownKindError,
    UnsupportedOperationError,
)
from shared.mapping.export import EXPORTABLE_KINDS, TAX_EXPORT_REFUSAL, Exporter, ItemOutcome, QboWriter
from shared.mapping.links import Link, LinkStore
from shared.mapping.pairing import (
    CODE_KINDS,
    PARTY_KINDS,
    ClientTypes,
    MappingSettings,
    link_pair,
    qbo_names,
)
from shared.mapping.versions import VersionLedger

if TYPE_CHECKING:
    from shared.kernel.event_models import Detail

DEFAULT_PAGE_SIZE: Final = constants.MAPPING_PAGE_DEFAULT
MAX_PAGE_SIZE: Final = constants.MAPPING_PAGE_MAX
_PAGE_END: Final = ""  # a side's cursor once it has no more rows (ids are never empty)
# The event an import emits, per kind ("Client Imported", ...).
IMPORT_EVENTS: Final[Mapping[str, DetailType]] = {
    "client": CLIENT_IMPORTED,
    "site": SITE_IMPORTED,
    "employee": EMPLOYEE_IMPORTED,
    "work_code": WORK_CODE_IMPORTED,
    "expense_code": EXPENSE_CODE_IMPORTED,
    "tax": TAX_IMPORTED,
    "account": ACCOUNT_IMPORTED,
}
IMPORTED_ID_PREFIX: Final = "qbo."  # the app id an imported entity is linked under until the app relinks


# --- errors (shared.mapping.errors) ----------------------------------------------------------------


def check_kind(kind: str) -> str:
    if kind not in MAPPING_KINDS:
        raise UnknownKindError(
            f"unknown kind {kind!r}; expected one of {', '.join(MAPPING_KINDS)}", ("path", "kind")
        )
    return kind


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppRow:
    entity: AppEntity
    qbo_id: str | None
    qbo_name: str | None


@dataclass(frozen=True)
class QboRow:
    entity: QboEntity
    app_id: str | None


_Row = TypeVar("_Row", AppRow, QboRow)


@dataclass(frozen=True)
class Overview:
    kind: str
    app: list[AppRow]
    qbo: list[QboRow]
    refreshed_at: datetime | None


@dataclass(frozen=True)
class OverviewPage:
    """One page of a kind's tab: up to ``limit`` rows of each side, ordered by id."""

    overview: Overview
    next_page_token: str | None
    app_total: int
    qbo_total: int


@dataclass(frozen=True)
class LinkView:
    link: Link
    app: AppEntity | None
    qbo: QboEntity | None


@dataclass(frozen=True)
class AutomatchOutcome:
    kind: str
    applied: bool
    proposal: matching.MatchProposal
    linked: list[matching.AppliedMatch] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # app id → why an applied pair was not linked


@dataclass(frozen=True)
class OnboardOutcome:
    refreshed: dict[str, int]
    applied: dict[str, int]
    unmatched: dict[str, int]


# --- the service ---------------------------------------------------------------------------------


class MappingService:
    def __init__(  # noqa: PLR0917 - the collaborators, positionally, as docs/mappings.md lists them
        self,
        catalog: AppCatalog,
        cache: QboCache,
        links: LinkStore,
        qbo_client_factory: Callable[[str], QboWriter],
        events: EventPublisher,
        clock: Clock,
        *,
        tenant_settings: Callable[[str], MappingSettings],
        mappings_changed: Callable[[str, str, Collection[str]], object] | None = None,
        versions: VersionLedger | None = None,
    ) -> None:
        self._catalog = catalog
        self._cache = cache
        self._links = links
        self._qbo = qbo_client_factory
        self._events = events
        self._clock = clock
        self._mappings_changed = mappings_changed
        # The tenant's push settings (client_types, revenue_account_id), as the push service reads them.
        self._client_types = ClientTypes(catalog, tenant_settings)
        self._exporter = Exporter(
            catalog, cache, links, qbo_client_factory, tenant_settings, self._client_types, versions
        )

    def _changed(self, tenant_id: str, operation: str, kinds: Collection[str]) -> None:
        if self._mappings_changed is not None:
            self._mappings_changed(tenant_id, operation, kinds)

    # --- app side ------------------------------------------------------------------------------

    def upsert_app_entity(self, tenant_id: str, kind: str, entity: AppEntity) -> UpsertOutcome:
        check_kind(kind)
        if kind == "account" and entity.type not in ACCOUNT_USES:
            raise MappingError(
                f"an account's type must be one of {', '.join(ACCOUNT_USES)}", ("body", "type")
            )
        if kind == "site" and entity.parent_id is None:
            raise MappingError("a site needs parent_id: the id of its client", ("body", "parent_id"))
        if entity.account_id is not None and kind not in CODE_KINDS:
            raise MappingError(
                "account_id is for work and expense codes (their item's income account)",
                ("body", "account_id"),
            )
        if entity.expense_account_id is not None and kind != "expense_code":
            raise MappingError(
                "expense_account_id is for expense codes (their item's expense account)",
                ("body", "expense_account_id"),
            )
        return self._catalog.upsert(tenant_id, kind, entity)

    # --- reading -------------------------------------------------------------------------------

    def _all_links(self, tenant_id: str, kind: str) -> list[Link]:
        found: list[Link] = []
        token: str | None = None
        while True:
            page = self._links.list(tenant_id, kind, page_token=token, limit=1000)
            found += page.links
            token = page.next_token
            if token is None:
                return found

    def overview(self, tenant_id: str, kind: str, *, hide_linked: bool = False) -> Overview:
        """Both sides with their link state; ``hide_linked`` leaves out what is already linked.
        Clients and sites are those the tenant syncs (its ``client_types``)."""
        check_kind(kind)
        links = self._all_links(tenant_id, kind)
        by_app = {link.app_id: link for link in links}
        by_qbo = {link.qbo_id: link.app_id for link in links}
        app_rows = [
            AppRow(
                e,
                by_app[e.id].qbo_id if e.id in by_app else None,
                by_app[e.id].qbo_name if e.id in by_app else None,
            )
            for e in self._client_types.synced(tenant_id, kind, self._catalog.list(tenant_id, kind))
        ]
        qbo_rows = [QboRow(e, by_qbo.get(e.id)) for e in self._cache.list(tenant_id, kind)]
        if hide_linked:
            app_rows = [row for row in app_rows if row.qbo_id is None]
            qbo_rows = [row for row in qbo_rows if row.app_id is None]
        return Overview(kind, app_rows, qbo_rows, self._cache.stamp(tenant_id, kind).refreshed_at)

    def overview_page(
        self,
        tenant_id: str,
        kind: str,
        *,
        hide_linked: bool = False,
        limit: int = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
        q: str | None = None,
    ) -> OverviewPage:
        """One page of ``overview``: up to ``limit`` rows of each side, ordered by id, from where
        ``page_token`` (opaque, from the previous page) left off.  The cursor holds the last id
        of each side, so entities added or removed between pages neither repeat nor shift rows.
        ``q`` keeps the rows of either side whose name, fully qualified name, e-mail or id holds
        it (case-insensitive); the totals count what it keeps, and a token only goes on with the
        same ``q``."""
        check_kind(kind)
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise MappingError(f"limit must be between 1 and {MAX_PAGE_SIZE}", ("query", "limit"))
        needle = search_key(q)
        app_after, qbo_after = _read_page_token(page_token, kind, hide_linked, needle)
        whole = self.overview(tenant_id, kind, hide_linked=hide_linked)
        if needle:
            whole = replace(whole, app=_found(whole.app, needle), qbo=_found(whole.qbo, needle))
        app_rows, app_next = _page(sorted(whole.app, key=lambda r: r.entity.id), app_after, limit)
        qbo_rows, qbo_next = _page(sorted(whole.qbo, key=lambda r: r.entity.id), qbo_after, limit)
        token = None
        if (app_next, qbo_next) != (_PAGE_END, _PAGE_END):
            token = _write_page_token(kind, hide_linked, app_next, qbo_next, needle)
        return OverviewPage(replace(whole, app=app_rows, qbo=qbo_rows), token, len(whole.app), len(whole.qbo))

    def linked_to_app(self, tenant_id: str, kind: str, app_id: str) -> LinkView:
        check_kind(kind)
        link = self._links.get_by_app(tenant_id, kind, app_id)
        if link is None:
            raise NotLinkedError(f"{kind} {app_id} is not linked", ("path", "app_id"))
        return LinkView(
            link, self._catalog.get(tenant_id, kind, app_id), self._cache.get(tenant_id, kind, link.qbo_id)
        )

    def linked_to_qbo(self, tenant_id: str, kind: str, qbo_id: str) -> LinkView:
        check_kind(kind)
        link = self._links.get_by_qbo(tenant_id, kind, qbo_id)
        if link is None:
            raise NotLinkedError(f"QBO id {qbo_id} ({kind}) is not linked", ("path", "qbo_id"))
        return LinkView(
            link, self._catalog.get(tenant_id, kind, link.app_id), self._cache.get(tenant_id, kind, qbo_id)
        )

    # --- linking -------------------------------------------------------------------------------

    def link(self, tenant_id: str, kind: str, app_id: str, qbo_id: str) -> Link:
        """Link one app entity to one QBO entity (both must be known, and fit each other)."""
        check_kind(kind)
        app = self._catalog.get(tenant_id, kind, app_id)
        if app is None:
            raise AppEntityNotFoundError(f"no {kind} {app_id} in the app catalog", ("path", "app_id"))
        qbo = self._cache.get(tenant_id, kind, qbo_id)
        if qbo is None:
            raise QboEntityNotFoundError(
                f"no QBO {kind} with id {qbo_id} (refresh the QBO lists if it is new)", ("body", "qbo_id")
            )
        check_fit(kind, app, qbo)
        link = link_pair(self._links, tenant_id, kind, app, qbo, source="manual")
        self._changed(tenant_id, "link", (kind,))
        return link

    def unlink(self, tenant_id: str, kind: str, app_id: str) -> Link:
        check_kind(kind)
        removed = self._links.unlink(tenant_id, kind, app_id)
        if removed is None:
            raise NotLinkedError(f"{kind} {app_id} is not linked", ("path", "app_id"))
        return removed

    def clear(self, tenant_id: str, kind: str) -> int:
        check_kind(kind)
        return self._links.clear(tenant_id, kind)

    # --- automatch -----------------------------------------------------------------------------

    def automatch(self, tenant_id: str, kind: str, *, apply: bool) -> AutomatchOutcome:
        """Propose links between unlinked entities; with ``apply``, link the unambiguous pairs only."""
        outcome = self._automatch(tenant_id, kind, apply=apply)
        if apply:
            self._changed(tenant_id, "automatch", (kind,))
        return outcome

    def _automatch(self, tenant_id: str, kind: str, *, apply: bool) -> AutomatchOutcome:
        check_kind(kind)
        overview = self.overview(tenant_id, kind, hide_linked=True)
        apps = [row.entity for row in overview.app if row.entity.active]
        qbos = [row.entity for row in overview.qbo if row.entity.active]
        if kind == "site":
            parents = {link.app_id: link.qbo_id for link in self._all_links(tenant_id, "client")}
            proposal = _propose_sites(apps, qbos, parents)
        else:
            proposal = _propose(kind, apps, qbos)
        if not apply:
            return AutomatchOutcome(kind, False, proposal)
        app_by_id = {e.id: e for e in apps}
        qbo_by_id = {e.id: e for e in qbos}
        linked: list[matching.AppliedMatch] = []
        skipped: dict[str, str] = {}
        for match in proposal.applied:
            try:
                link_pair(
                    self._links,
                    tenant_id,
                    kind,
                    app_by_id[match.app_id],
                    qbo_by_id[match.qbo_id],
                    source="auto",
                )
            except AlreadyLinkedError as error:  # linked by someone else since we read
                skipped[match.app_id] = str(error)
                continue
            linked.append(match)
        return AutomatchOutcome(kind, True, proposal, linked, skipped)

    # --- the 6240 pre-check --------------------------------------------------------------------

    def name_conflicts(self, tenant_id: str, kind: str) -> list[matching.NameRisk]:
        """Unlinked app entities whose export QBO would refuse with 6240 (their name is held by an
        inactive customer, a vendor or an employee)."""
        check_kind(kind)
        if kind not in PARTY_KINDS:
            raise UnsupportedOperationError(
                f"{kind} is not a customer, vendor or employee name: QBO's 6240 does not apply",
                ("path", "kind"),
            )
        linked = {link.app_id for link in self._all_links(tenant_id, kind)}
        synced = self._client_types.synced(tenant_id, kind, self._catalog.list(tenant_id, kind))
        names = {e.id: e.name for e in synced if e.id not in linked}
        return matching.duplicate_name_risks(names, qbo_names(self._cache, tenant_id))

    # --- QBO lists -----------------------------------------------------------------------------

    def refresh(self, tenant_id: str, kinds: Iterable[str] | None = None) -> dict[str, int]:
        """Re-read QBO's lists (all kinds, and vendors for the pre-check, unless ``kinds`` narrows).

        Asked for (by the tenant, or by onboarding), so tax codes come with every TaxRate read
        again: a rate changed in QBO is then seen at once, for one more query."""
        wanted = [check_kind(k) for k in kinds] if kinds is not None else [*MAPPING_KINDS, "vendor"]
        if "vendor" not in wanted and any(k in PARTY_KINDS for k in wanted):
            wanted.append("vendor")
        return self._cache.refresh(tenant_id, wanted, self._qbo(tenant_id), all_rates=True)

    def onboard(self, tenant_id: str) -> OnboardOutcome:
        """Right after a connection: read QBO's lists, then link every unambiguous match."""
        refreshed = self.refresh(tenant_id)
        applied: dict[str, int] = {}
        unmatched: dict[str, int] = {}
        for kind in MAPPING_KINDS:
            outcome = self._automatch(tenant_id, kind, apply=True)
            applied[kind] = len(outcome.linked)
            unmatched[kind] = len(outcome.proposal.unmatched)
        self._changed(tenant_id, "onboard", MAPPING_KINDS)  # once, after every kind
        return OnboardOutcome(refreshed, applied, unmatched)

    # --- export --------------------------------------------------------------------------------

    def export(self, tenant_id: str, kind: str, app_ids: Sequence[str]) -> list[ItemOutcome]:
        """Create each app entity in QBO and link it; one outcome per id, in order
        (``shared.mapping.export``).  Sites become sub-customers of their client's linked customer
        (so clients go first in one request); work and expense codes become Service items, accounts
        accounts of their use's type.

        A code whose item would have no income account refuses the whole request (422
        ``revenue_account_missing``) before anything is created."""
        check_kind(kind)
        if kind == "tax":
            raise UnsupportedOperationError(TAX_EXPORT_REFUSAL, ("path", "kind"))
        if kind not in EXPORTABLE_KINDS:
            raise UnsupportedOperationError(
                f"exporting {kind} entities to QBO is not supported", ("path", "kind")
            )
        outcomes = self._exporter.export(tenant_id, kind, app_ids)
        self._changed(tenant_id, "export", (kind,))
        return outcomes

    # --- import --------------------------------------------------------------------------------

    def import_(self, tenant_id: str, kind: str, qbo_ids: Sequence[str]) -> list[ItemOutcome]:
        """Link each QBO entity to a new app id (``qbo.<id>``) and emit "<Kind> Imported" carrying
        its data, so the app creates its side.  Inactive entities are not imported."""
        check_kind(kind)
        outcomes: list[ItemOutcome] = []
        for qbo_id in dict.fromkeys(qbo_ids):
            qbo = self._cache.get(tenant_id, kind, qbo_id)
            if qbo is None:
                outcomes.append(ItemOutcome(qbo_id, "refused", reason="qbo_entity_not_found"))
                continue
            if not qbo.active:
                outcomes.append(ItemOutcome(qbo_id, "refused", qbo_id=qbo_id, reason="inactive"))
                continue
            existing = self._links.get_by_qbo(tenant_id, kind, qbo_id)
            if existing is not None:
                outcomes.append(ItemOutcome(qbo_id, "already_linked", app_id=existing.app_id, qbo_id=qbo_id))
                continue
            parent_app_id: str | None = None
            if kind == "site":
                parent = (
                    self._links.get_by_qbo(tenant_id, "client", qbo.parent_id or "")
                    if qbo.parent_id
                    else None
                )
                if parent is None:
                    outcomes.append(
                        ItemOutcome(
                            qbo_id,
                            "refused",
                            qbo_id=qbo_id,
                            reason="parent_not_linked",
                            message=f"its parent customer {qbo.parent_id} is not linked to a client",
                        )
                    )
                    continue
                parent_app_id = parent.app_id
            app = AppEntity(
                id=IMPORTED_ID_PREFIX + qbo_id,
                version=0,  # the app's first upsert (version 1 or more) replaces it
                name=qbo.name,
                email=qbo.email,
                type=_account_use(qbo.type) if kind == "account" else None,
                parent_id=parent_app_id,
            )
            self._catalog.upsert(tenant_id, kind, app)
            link_pair(self._links, tenant_id, kind, app, qbo, source="import")
            detail = _imported_detail(kind, app.id, qbo, parent_app_id)
            self._events.publish(make_event(IMPORT_EVENTS[kind], tenant_id, detail, kind, qbo.id))
            outcomes.append(ItemOutcome(qbo_id, "imported", app_id=app.id, qbo_id=qbo_id))
        self._changed(tenant_id, "import", (kind,))
        return outcomes


def _imported_detail(kind: str, app_id: str, qbo: QboEntity, parent_app_id: str | None) -> Detail:
    """The detail of "<Kind> Imported": the new app id and the QBO entity as the cache keeps it."""
    from shared.kernel import event_models

    model = event_models.model_of(IMPORT_EVENTS[kind], "mapping")  # the pull has its own
    fields: dict[str, object] = {"app_id": app_id, "qbo_id": qbo.id, "entity": qbo.model_dump(mode="json")}
    if kind == "site":
        fields["parent_app_id"] = parent_app_id
    return model.model_validate(fields)


# --- rules ---------------------------------------------------------------------------------------


def check_fit(kind: str, app: AppEntity, qbo: QboEntity) -> None:
    """QBO's rules on which entity may play which role."""
    if not qbo.active:
        raise IncompatibleEntityError(f"QBO {kind} {qbo.id} ({qbo.name}) is inactive", ("body", "qbo_id"))
    if kind == "account":
        allowed = ACCOUNT_TYPES_FOR_USE.get(app.type or "", frozenset())
        if qbo.type not in allowed:
            raise IncompatibleEntityError(
                f"account {app.id} is used for {app.type}: QBO account {qbo.id} ({qbo.name}) is of type "
                f"{qbo.type}, expected {' or '.join(sorted(allowed))}",
                ("body", "qbo_id"),
            )


def _account_use(account_type: str | None) -> str | None:
    for use, types in ACCOUNT_TYPES_FOR_USE.items():
        if account_type in types:
            return use
    return None


def _candidate(entity: AppEntity | QboEntity) -> matching.Candidate:
    extras = entity.extra_names if isinstance(entity, QboEntity) else ()
    return matching.Candidate(entity.id, entity.name, entity.email, tuple(extras))


def _propose(kind: str, apps: list[AppEntity], qbos: list[QboEntity]) -> matching.MatchProposal:
    """Automatch for a kind; accounts are matched within each use, against the QBO accounts whose
    type fits it (an A/R account is never proposed for a revenue line)."""
    if kind != "account":
        return matching.propose(
            [_candidate(a) for a in apps],
            [_candidate(q) for q in qbos],
            kind=cast("matching.MatchKind", kind),
        )
    parts = [
        matching.propose(
            [_candidate(a) for a in apps if a.type == use],
            [_candidate(q) for q in qbos if q.type in types],
            kind="account",
        )
        for use, types in ACCOUNT_TYPES_FOR_USE.items()
    ]
    return _merge("account", parts, qbos)


def _propose_sites(
    apps: list[AppEntity], qbos: list[QboEntity], parents: Mapping[str, str]
) -> matching.MatchProposal:
    """Automatch for sites: a site whose client is linked is compared only with the sub-customers
    of that client's QBO customer; a site whose client is not linked, with every sub-customer.
    ``parents``: app client id → linked QBO customer id."""
    groups: dict[str | None, list[AppEntity]] = {}
    for app in apps:
        groups.setdefault(parents.get(app.parent_id or ""), []).append(app)
    # Sites under a linked client first: on a clash their narrower match wins (see _merge).
    order = sorted(groups, key=lambda parent: (parent is None, parent or ""))
    parts = [
        matching.propose(
            [_candidate(a) for a in groups[parent]],
            [_candidate(q) for q in qbos if parent is None or q.parent_id == parent],
            kind="site",
        )
        for parent in order
    ]
    return _merge("site", parts, qbos)


def _merge(kind: str, parts: list[matching.MatchProposal], qbos: list[QboEntity]) -> matching.MatchProposal:
    """One proposal out of proposals over disjoint app groups.  A QBO entity applied in two parts
    stays with the first; the later app entity is held back (``ambiguous_app``) with it as a
    suggestion, so the applied set stays one to one."""
    applied: list[matching.AppliedMatch] = []
    suggestions: dict[str, tuple[matching.Suggestion, ...]] = {}
    held: dict[str, matching.HoldReason] = {}
    unmatched: list[str] = []
    taken: set[str] = set()
    for part in parts:
        suggestions.update(part.suggestions)
        held.update(part.held_back)
        unmatched += part.unmatched
        for match in part.applied:
            if match.qbo_id in taken:
                held[match.app_id] = "ambiguous_app"
                suggestions[match.app_id] = (matching.Suggestion(match.qbo_id, match.score, (match.reason,)),)
                unmatched.append(match.app_id)
                continue
            applied.append(match)
            taken.add(match.qbo_id)
    return matching.MatchProposal(
        kind=kind,
        applied=tuple(applied),
        suggestions=suggestions,
        unmatched=tuple(unmatched),
        unmatched_qbo=tuple(q.id for q in qbos if q.id not in taken),
        held_back=held,
        pairs_scored=sum(part.pairs_scored for part in parts),
    )


# --- paging ----------------------------------------------------------------------------------------


def _page(rows: list[_Row], after: str | None, limit: int) -> tuple[list[_Row], str]:
    """Up to ``limit`` rows after id ``after`` (None: from the start; ``_PAGE_END``: none), and the
    side's next cursor (the last id returned, or ``_PAGE_END`` when nothing is left)."""
    if after == _PAGE_END:
        return [], _PAGE_END
    rest = rows if after is None else [row for row in rows if row.entity.id > after]
    page = rest[:limit]
    return page, page[-1].entity.id if len(rest) > limit else _PAGE_END


def search_key(q: str | None) -> str:
    """The tab's search text as compared: trimmed and case-folded ("" searches nothing)."""
    return (q or "").strip().casefold()


def row_matches(row: AppRow | QboRow, needle: str) -> bool:
    """Whether a tab row's name, fully qualified name, e-mail or id holds ``needle``
    (``search_key``'s form; "" keeps every row)."""
    entity = row.entity
    fields = [entity.id, entity.name, entity.email]
    if isinstance(entity, QboEntity):
        fields.append(entity.fully_qualified_name)
    return any(needle in value.casefold() for value in fields if value)


def _found(rows: list[_Row], needle: str) -> list[_Row]:
    return [row for row in rows if row_matches(row, needle)]


def _search_tag(needle: str) -> str:
    """What a page token keeps of the search: a short digest, so the token stays small."""
    return hashlib.sha256(needle.encode()).hexdigest()[:16]


def _write_page_token(kind: str, hide_linked: bool, app_after: str, qbo_after: str, needle: str = "") -> str:
    cursor: dict[str, Any] = {"k": kind, "h": hide_linked, "a": app_after, "q": qbo_after}
    if needle:
        cursor["s"] = _search_tag(needle)
    raw = json.dumps(cursor, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_page_token(
    token: str | None, kind: str, hide_linked: bool, needle: str = ""
) -> tuple[str | None, str | None]:
    """The (app, QBO) cursors of a page token; (None, None) for the first page."""
    if token is None:
        return None, None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidPageTokenError("page_token is not a token this API gave") from None
    if not isinstance(cursor, dict) or not all(isinstance(cursor.get(k), str) for k in ("k", "a", "q")):
        raise InvalidPageTokenError("page_token is not a token this API gave")
    if cursor["k"] != kind or cursor.get("h") is not hide_linked:
        raise InvalidPageTokenError("page_token belongs to another listing (kind or hide_linked differ)")
    if cursor.get("s") != (_search_tag(needle) if needle else None):
        raise InvalidPageTokenError("page_token belongs to another search (q differs)")
    return str(cursor["a"]), str(cursor["q"])
