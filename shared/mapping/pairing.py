"""What the mapping operations share: linking a pair, the client types a tenant syncs (M3) and the
names QBO already holds (its 6240 duplicate-name refusal).

``shared.mapping.service`` (link, automatch, import, the pre-check) and ``shared.mapping.export``
(export) both go through these, so a link, a client-type refusal or a name clash reads the same
whichever operation meets it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Protocol

from shared.mapping import automatch as matching
from shared.mapping.catalog import QBO_ENTITY, AppCatalog, AppEntity, QboCache, QboEntity
from shared.mapping.errors import AlreadyLinkedError, NotLinkedError
from shared.mapping.links import Link, LinkConflictError, LinkSource, LinkStore

PARTY_KINDS: Final = frozenset({"client", "site", "employee"})
CODE_KINDS: Final = frozenset({"work_code", "expense_code"})
# Kinds the tenant's client_types setting narrows (M3): clients by their type, sites by their client's.
CLIENT_TYPE_KINDS: Final = frozenset({"client", "site"})
# QBO entities whose DisplayName must be unique across all three (6240).
NAME_CACHE_KINDS: Final[tuple[tuple[str, matching.QboNameEntity], ...]] = (
    ("client", "Customer"),
    ("site", "Customer"),
    ("vendor", "Vendor"),
    ("employee", "Employee"),
)


def link_pair(
    links: LinkStore, tenant_id: str, kind: str, app: AppEntity, qbo: QboEntity, *, source: LinkSource
) -> Link:
    """Link ``app`` to ``qbo`` and read the link back; a clash with another link becomes
    ``AlreadyLinkedError`` naming the side at fault."""
    try:
        links.link(
            tenant_id, kind, app.id, qbo.id, qbo_name=qbo.name, sync_token=qbo.sync_token, source=source
        )
    except LinkConflictError as conflict:
        where = ("path", "app_id") if conflict.app_partner is not None else ("body", "qbo_id")
        raise AlreadyLinkedError(
            str(conflict), where, app_partner=conflict.app_partner, qbo_partner=conflict.qbo_partner
        ) from None
    link = links.get_by_app(tenant_id, kind, app.id)
    if link is None:  # unlinked again in the instant since
        raise NotLinkedError(f"{kind} {app.id} was unlinked meanwhile", ("path", "app_id"))
    return link


# --- client types (M3) ---------------------------------------------------------------------------


class MappingSettings(Protocol):
    """What mapping reads of a tenant's settings (the push settings satisfy it): which client types
    sync, and the revenue account new items fall back on."""

    @property
    def client_types(self) -> frozenset[str]: ...

    @property
    def revenue_account_id(self) -> str | None: ...


class ClientTypes:
    """Which app clients and sites a tenant syncs, by its ``client_types`` setting: the listing and
    the pre-check leave the others out, an export refuses them.  The settings are read on each
    call (the push settings store decides what it caches)."""

    def __init__(self, catalog: AppCatalog, tenant_settings: Callable[[str], MappingSettings]) -> None:
        self._catalog = catalog
        self._tenant_settings = tenant_settings

    def synced(self, tenant_id: str, kind: str, entities: list[AppEntity]) -> list[AppEntity]:
        """The app entities of ``kind`` the tenant syncs: clients whose type is in ``client_types``
        and sites whose client is (a site whose client is not in the catalog is kept); every
        entity of the other kinds, and of every kind when ``client_types`` is empty."""
        if kind not in CLIENT_TYPE_KINDS:
            return entities
        types = self._tenant_settings(tenant_id).client_types
        if not types:
            return entities
        if kind == "client":
            return [e for e in entities if e.type in types]
        left_out = {c.id for c in self._catalog.list(tenant_id, "client") if c.type not in types}
        return [e for e in entities if e.parent_id not in left_out]

    def refusal(self, tenant_id: str, kind: str, app: AppEntity) -> str | None:
        """Why an app client or site is not synced under the tenant's client types, or None."""
        if kind not in CLIENT_TYPE_KINDS:
            return None
        types = self._tenant_settings(tenant_id).client_types
        if not types:
            return None
        if kind == "client":
            client: AppEntity | None = app
        else:
            client = self._catalog.get(tenant_id, "client", app.parent_id or "")
        if client is None or client.type in types:
            return None
        return (
            f"client {client.id} is of type {client.type!r}; the tenant syncs only "
            f"{', '.join(sorted(types))} (client_types setting)"
        )


# --- names QBO holds (6240) ----------------------------------------------------------------------


def qbo_names(cache: QboCache, tenant_id: str) -> list[matching.QboName]:
    """The cached names of QBO's customers, vendors and employees, inactive ones included."""
    return [
        matching.QboName(e.id, e.name, entity, e.active)
        for cache_kind, entity in NAME_CACHE_KINDS
        for e in cache.list(tenant_id, cache_kind)
    ]


def name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def name_clash(
    kind: str, app: AppEntity, names: list[matching.QboName], held: Mapping[str, str]
) -> str | None:
    """Why QBO would refuse the app entity's name (6240), or None.  Customers, vendors and
    employees share one name space (inactive ones included); items share theirs, accounts theirs."""
    if kind in PARTY_KINDS:
        risks = matching.duplicate_name_risks({app.id: app.name}, names, include_active_customers=True)
        if not risks:
            return None
        users = ", ".join(f"{c.entity} {c.id}{'' if c.active else ' (inactive)'}" for c in risks[0].conflicts)
        return f"{app.name!r} is used by {users}"
    qbo_id = held.get(name_key(app.name))
    if qbo_id is None:
        return None
    return f"{app.name!r} is used by QBO {QBO_ENTITY[kind]} {qbo_id}"
