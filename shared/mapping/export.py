"""The export tab's writes: create app entities in QBO and link each to what QBO made of it.

Sites become sub-customers of their client's linked customer, work and expense codes Service items
(with the income, and for expense codes the expense, account their app account is linked to), and
accounts accounts of their use's type.  Each entity is checked first (known, not linked yet, of a
client type the tenant syncs, no name QBO would refuse with 6240); a refusal is an outcome, not an
error, so the rest of the request goes on.  ``shared.mapping.service`` validates the kind and tells
the push side that mappings changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from shared.mapping import automatch as matching
from shared.mapping.catalog import (
    ACCOUNT_TYPE_TO_CREATE,
    QBO_ENTITY,
    AppCatalog,
    AppEntity,
    QboCache,
    belongs_to,
    qbo_entity,
)
from shared.mapping.errors import RevenueAccountMissingError
from shared.mapping.links import LinkStore
from shared.mapping.pairing import (
    CODE_KINDS,
    PARTY_KINDS,
    ClientTypes,
    MappingSettings,
    link_pair,
    name_clash,
    name_key,
    qbo_names,
)
from shared.mapping.versions import VersionLedger
from shared.qbo.errors import DuplicateNameError, QboError

EXPORTABLE_KINDS: Final = frozenset({"client", "site", "employee", "work_code", "expense_code", "account"})
TAX_EXPORT_REFUSAL: Final = (
    "QBO's API cannot create tax codes (a tax rate and its agency are set up in QBO itself): "
    "create the tax in QBO, then refresh and link or import it"
)


@dataclass(frozen=True)
class ItemOutcome:
    """What an export or import did with one entity."""

    id: str
    status: Literal["created", "imported", "already_linked", "refused"]
    app_id: str | None = None
    qbo_id: str | None = None
    reason: str | None = None
    message: str | None = None


class QboWriter(Protocol):
    """What the service needs of a QBO client (``shared.qbo.client.QboClient``)."""

    def query_all(self, select_without_paging: str, page_size: int = ...) -> Iterator[dict[str, Any]]: ...

    def create(self, entity: str, body: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]: ...


@dataclass
class _Names:
    """The names QBO holds for one export request, grown by what the request creates: customers',
    vendors' and employees' (``party``) or items' or accounts' (``held``: name key → QBO id)."""

    party: list[matching.QboName]
    held: dict[str, str]


class Exporter:
    """Creates app entities in QBO and links them (``MappingService.export``)."""

    def __init__(  # noqa: PLR0917 - the mapping service's collaborators, in its order
        self,
        catalog: AppCatalog,
        cache: QboCache,
        links: LinkStore,
        qbo_client_factory: Callable[[str], QboWriter],
        tenant_settings: Callable[[str], MappingSettings],
        client_types: ClientTypes,
        versions: VersionLedger | None,
    ) -> None:
        self._catalog = catalog
        self._cache = cache
        self._links = links
        self._qbo = qbo_client_factory
        self._tenant_settings = tenant_settings
        self._client_types = client_types
        # What an export writes in QBO is recorded as ours, so its webhook costs the pull nothing.
        self._versions = versions

    def export(self, tenant_id: str, kind: str, app_ids: Sequence[str]) -> list[ItemOutcome]:
        """Create each app entity of an exportable ``kind`` in QBO and link it; one outcome per id,
        in order.  A code whose item would have no income account refuses the whole request (422
        ``revenue_account_missing``) before anything is created."""
        ids = list(dict.fromkeys(app_ids))
        apps = {app_id: self._catalog.get(tenant_id, kind, app_id) for app_id in ids}
        item_accounts = (
            self._item_accounts(tenant_id, kind, ids, apps, list(app_ids)) if kind in CODE_KINDS else {}
        )
        names = _Names(
            qbo_names(self._cache, tenant_id) if kind in PARTY_KINDS else [],
            self._held_names(tenant_id, kind),
        )
        client: QboWriter | None = None
        outcomes: list[ItemOutcome] = []
        for app_id in ids:
            app = apps[app_id]
            if app is None:
                outcomes.append(ItemOutcome(app_id, "refused", reason="app_entity_not_found"))
                continue
            body = self._body_or_refusal(tenant_id, kind, app, names, item_accounts.get(app_id))
            if isinstance(body, ItemOutcome):
                outcomes.append(body)
                continue
            client = client or self._qbo(tenant_id)
            outcomes.append(self._create(client, tenant_id, kind, app, body, names))
        return outcomes

    def _body_or_refusal(
        self,
        tenant_id: str,
        kind: str,
        app: AppEntity,
        names: _Names,
        accounts: tuple[str, str | None] | None,
    ) -> dict[str, Any] | ItemOutcome:
        """The QBO create body of one entity, or the outcome that stops it before QBO is asked."""
        app_id = app.id
        existing = self._links.get_by_app(tenant_id, kind, app_id)
        if existing is not None:
            return ItemOutcome(app_id, "already_linked", app_id=app_id, qbo_id=existing.qbo_id)
        not_synced = self._client_types.refusal(tenant_id, kind, app)
        if not_synced is not None:
            return ItemOutcome(app_id, "refused", reason="client_type_not_synced", message=not_synced)
        clash = name_clash(kind, app, names.party, names.held)
        if clash is not None:
            return ItemOutcome(app_id, "refused", reason="duplicate_name", message=clash)
        return self._export_body(tenant_id, kind, app, accounts)

    def _create(  # noqa: PLR0917 - one entity of the request and the request's state
        self,
        client: QboWriter,
        tenant_id: str,
        kind: str,
        app: AppEntity,
        body: Mapping[str, Any],
        names: _Names,
    ) -> ItemOutcome:
        """Create one entity in QBO, link it, record it as ours and cache it."""
        app_id = app.id
        try:
            row = client.create(
                QBO_ENTITY[kind], body, idempotency_key=f"mapping-export:{kind}:{app_id}:v{app.version}"
            )
        except DuplicateNameError as error:
            return ItemOutcome(app_id, "refused", reason="duplicate_name", message=error.message)
        except QboError as error:
            if error.retryable or error.outcome_uncertain:
                raise  # the caller retries: the same idempotency key replays QBO's answer
            return ItemOutcome(app_id, "refused", reason="qbo_refused", message=str(error))
        created = qbo_entity(kind, row)
        # Link before caching: a retry after a failed link must not meet its own name in the
        # pre-check; the same idempotency key replays QBO's answer instead.
        link_pair(self._links, tenant_id, kind, app, created, source="export")
        if self._versions is not None:
            self._versions.record_written(tenant_id, QBO_ENTITY[kind], row, kind=kind, app_id=app_id)
        for cache_kind in sorted(CODE_KINDS) if kind in CODE_KINDS else [kind]:
            if belongs_to(cache_kind, row):  # a new item serves work and expense codes alike
                self._cache.put(tenant_id, cache_kind, qbo_entity(cache_kind, row))
        if kind in PARTY_KINDS:
            names.party.append(
                matching.QboName(created.id, created.name, "Employee" if kind == "employee" else "Customer")
            )
        else:
            names.held[name_key(created.name)] = created.id
        return ItemOutcome(app_id, "created", app_id=app_id, qbo_id=created.id)

    def _held_names(self, tenant_id: str, kind: str) -> dict[str, str]:
        """Items' or accounts' names QBO already holds (cached, active), for the duplicate-name
        check of codes and accounts; customers, vendors and employees go through ``qbo_names``."""
        if kind in PARTY_KINDS:
            return {}
        cache_kinds = sorted(CODE_KINDS) if kind in CODE_KINDS else [kind]
        return {
            name_key(e.name): e.id
            for cache_kind in cache_kinds
            for e in self._cache.list(tenant_id, cache_kind)
        }

    def _item_accounts(
        self,
        tenant_id: str,
        kind: str,
        ids: Sequence[str],
        apps: Mapping[str, AppEntity | None],
        positions: list[str],
    ) -> dict[str, tuple[str, str | None]]:
        """The (income, expense) QBO account ids of each code to create; refuses the request when a
        code has no income account: neither its own linked revenue account nor the tenant's."""
        settings = self._tenant_settings(tenant_id)
        found: dict[str, tuple[str, str | None]] = {}
        for app_id in ids:
            app = apps[app_id]
            if app is None or self._links.get_by_app(tenant_id, kind, app_id) is not None:
                continue  # nothing to create
            income = self._linked_account(tenant_id, app.account_id, "revenue")
            income = income or settings.revenue_account_id
            if income is None:
                own = (
                    f"its account {app.account_id} is not a linked revenue account"
                    if app.account_id
                    else "it names no account_id"
                )
                raise RevenueAccountMissingError(
                    f"set a revenue account first: {kind} {app_id} needs an income account for its "
                    f"QBO item, and {own} and the tenant has no revenue_account_id setting",
                    ("body", "app_ids", str(positions.index(app_id))),
                )
            expense = (
                self._linked_account(tenant_id, app.expense_account_id, "expense")
                if kind == "expense_code"
                else None
            )
            found[app_id] = (income, expense)
        return found

    def _linked_account(self, tenant_id: str, account_id: str | None, use: str) -> str | None:
        """The QBO account linked to app account ``account_id`` if that account has ``use``."""
        if account_id is None:
            return None
        account = self._catalog.get(tenant_id, "account", account_id)
        if account is None or account.type != use:
            return None
        link = self._links.get_by_app(tenant_id, "account", account_id)
        return link.qbo_id if link is not None else None

    def _export_body(
        self, tenant_id: str, kind: str, app: AppEntity, accounts: tuple[str, str | None] | None
    ) -> dict[str, Any] | ItemOutcome:
        """The QBO create body of an app entity, or the refusal that stops it."""
        if kind in CODE_KINDS:
            if accounts is None:  # cannot happen: _item_accounts covered every code to create
                raise RevenueAccountMissingError(
                    f"set a revenue account first ({kind} {app.id})", ("body", "app_ids")
                )
            income, expense = accounts
            item: dict[str, Any] = {
                "Name": app.name,
                "Type": "Service",
                "IncomeAccountRef": {"value": income},
            }
            if expense is not None:
                item["ExpenseAccountRef"] = {"value": expense}
            return item
        if kind == "account":
            account_type = ACCOUNT_TYPE_TO_CREATE.get(app.type or "")
            if account_type is None:
                return ItemOutcome(
                    app.id,
                    "refused",
                    reason="incompatible_entity",
                    message=f"account {app.id} has no use QBO Link creates accounts for "
                    f"({', '.join(ACCOUNT_TYPE_TO_CREATE)}); an Accounts Receivable account is never created",
                )
            return {"Name": app.name, "AccountType": account_type}
        body: dict[str, Any] = {"DisplayName": app.name}
        if kind in ("client", "site") and app.email:
            body["PrimaryEmailAddr"] = {"Address": app.email}
        if kind == "site":
            parent = self._links.get_by_app(tenant_id, "client", app.parent_id or "")
            if parent is None:
                return ItemOutcome(
                    app.id,
                    "refused",
                    reason="parent_not_linked",
                    message=f"client {app.parent_id} is not linked",
                )
            body |= {"Job": True, "BillWithParent": True, "ParentRef": {"value": parent.qbo_id}}
        return body
