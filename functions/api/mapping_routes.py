"""Tenant API: the mapping routes (the match tabs; docs/mappings.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from functions.api.common import TenantId, error_response
from shared.kernel import constants
from shared.kernel.constants import MAPPING_PAGE_DEFAULT as DEFAULT_PAGE_SIZE
from shared.kernel.constants import MAPPING_PAGE_MAX as MAX_PAGE_SIZE
from shared.kernel.observability import metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

    from shared.mapping.export import ItemOutcome
    from shared.mapping.links import Link
    from shared.mapping.service import LinkView, MappingService

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves Router.__init__ untyped

Kind = Annotated[
    Literal["client", "site", "employee", "work_code", "expense_code", "tax", "account"],
    Path(description="What is mapped: client, site, employee, work_code, expense_code, tax, account."),
]
AppId = Annotated[str, Path(pattern=constants.APP_ID_PATTERN, description="The app's id of the entity.")]
QboId = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,64}$", description="QBO's id of the entity.")]
_MAX_IDS = 100


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(
        ge=1,
        description="Only grows: an older version, or the same one with the same fields, is ignored; "
        "the same version with other fields is a 409 version_conflict.",
    )
    name: str = Field(min_length=1, max_length=500)
    email: str | None = Field(default=None, max_length=320)
    type: str | None = Field(
        default=None,
        max_length=100,
        description="Clients: their client/contact type. Accounts: revenue, deposit or expense.",
    )
    parent_id: str | None = Field(
        default=None, pattern=constants.APP_ID_PATTERN, description="A site's client."
    )
    active: bool = True
    account_id: str | None = Field(
        default=None,
        pattern=constants.APP_ID_PATTERN,
        description="Work and expense codes: the app account (revenue) giving the item's income account.",
    )
    expense_account_id: str | None = Field(
        default=None,
        pattern=constants.APP_ID_PATTERN,
        description="Expense codes: the app account (expense) giving the item's expense account.",
    )


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    qbo_id: str = Field(pattern=r"^[A-Za-z0-9]{1,64}$")


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_ids: list[Annotated[str, Field(pattern=constants.APP_ID_PATTERN)]] = Field(
        min_length=1, max_length=_MAX_IDS
    )


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    qbo_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")]] = Field(
        min_length=1, max_length=_MAX_IDS
    )


# --- collaborators -------------------------------------------------------------------------------


def _service() -> MappingService:
    from shared import wiring

    return wiring.mappings()


def _count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _link_json(link: Link) -> dict[str, Any]:
    return link.model_dump(mode="json")


def _view_read(view: LinkView) -> dict[str, Any]:
    """A link read by either side: counted, and answered with both entities."""
    _count("MappingReads")
    return {
        "link": _link_json(view.link),
        "app": view.app.model_dump(mode="json") if view.app else None,
        "qbo": view.qbo.model_dump(mode="json") if view.qbo else None,
    }


_NOT_LINKED: dict[int, OpenAPIResponse] = {404: error_response("Not linked")}


# --- routes --------------------------------------------------------------------------------------


@router.put(
    "/tenants/<tenant_id>/catalog/<kind>/<app_id>",
    summary="Tell QBO Link about one app entity (upsert; the version only grows)",
    responses={422: error_response("Invalid entity")},
)
def upsert_catalog_entry(
    tenant_id: TenantId, kind: Kind, app_id: AppId, entry: CatalogEntry
) -> dict[str, Any]:
    from shared import wiring
    from shared.mapping.catalog import AppEntity

    entity = AppEntity(id=app_id, **entry.model_dump())
    outcome = _service().upsert_app_entity(tenant_id, kind, entity)
    # The app may give its lists before the firm connects: the tenant is known from then on, so
    # reading them back is not the unknown tenant's 404.
    wiring.store().make_known(tenant_id, wiring.clock().now())
    _count("CatalogUpserts")
    return {"entity": outcome.entity.model_dump(mode="json"), "stored": outcome.stored}


@router.get(
    "/tenants/<tenant_id>/mappings/<kind>",
    summary="Both sides of a kind with their link state, a page at a time",
    responses={422: error_response("Invalid limit, search or page token")},
)
def list_mappings(  # noqa: PLR0917 - the query parameters
    tenant_id: TenantId,
    kind: Kind,
    hide_linked: Annotated[bool, Query(description="Leave out what is already linked.")] = False,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="At most this many rows of each side.")
    ] = DEFAULT_PAGE_SIZE,
    page_token: Annotated[
        str | None, Query(max_length=2048, description="next_page_token of the previous page.")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Keep the rows of either side whose name, fully qualified name, e-mail or id "
            "holds this text (case-insensitive); the totals count what it keeps. Pass the same q "
            "with page_token.",
        ),
    ] = None,
) -> dict[str, Any]:
    page = _service().overview_page(
        tenant_id, kind, hide_linked=hide_linked, limit=limit, page_token=page_token, q=q
    )
    overview = page.overview
    _count("MappingReads")
    return {
        "kind": overview.kind,
        "qbo_refreshed_at": overview.refreshed_at.isoformat() if overview.refreshed_at else None,
        "app": [
            {
                **row.entity.model_dump(mode="json"),
                "linked_qbo_id": row.qbo_id,
                "linked_qbo_name": row.qbo_name,
            }
            for row in overview.app
        ],
        "qbo": [{**row.entity.model_dump(mode="json"), "linked_app_id": row.app_id} for row in overview.qbo],
        "app_total": page.app_total,
        "qbo_total": page.qbo_total,
        "next_page_token": page.next_page_token,
    }


@router.get(
    "/tenants/<tenant_id>/mappings/<kind>/app/<app_id>",
    summary="What an app entity is linked to",
    responses=_NOT_LINKED,
)
def linked_to_app(tenant_id: TenantId, kind: Kind, app_id: AppId) -> dict[str, Any]:
    return _view_read(_service().linked_to_app(tenant_id, kind, app_id))


@router.get(
    "/tenants/<tenant_id>/mappings/<kind>/qbo/<qbo_id>",
    summary="What a QBO entity is linked to",
    responses=_NOT_LINKED,
)
def linked_to_qbo(tenant_id: TenantId, kind: Kind, qbo_id: QboId) -> dict[str, Any]:
    return _view_read(_service().linked_to_qbo(tenant_id, kind, qbo_id))


@router.put(
    "/tenants/<tenant_id>/mappings/<kind>/app/<app_id>",
    summary="Link an app entity to a QBO entity (one to one)",
    responses={
        404: error_response("Unknown app or QBO entity"),
        409: error_response("Either side is already linked (the message names the partner)"),
        422: error_response("The QBO entity cannot play this role"),
    },
)
def link(tenant_id: TenantId, kind: Kind, app_id: AppId, request: LinkRequest) -> dict[str, Any]:
    created = _service().link(tenant_id, kind, app_id, request.qbo_id)
    _count("MappingsLinked")
    return _link_json(created)


@router.delete(
    "/tenants/<tenant_id>/mappings/<kind>/app/<app_id>",
    summary="Unlink an app entity",
    responses={404: error_response("Not linked")},
)
def unlink(tenant_id: TenantId, kind: Kind, app_id: AppId) -> dict[str, Any]:
    removed = _service().unlink(tenant_id, kind, app_id)
    _count("MappingsUnlinked")
    return {"unlinked": _link_json(removed)}


@router.delete("/tenants/<tenant_id>/mappings/<kind>", summary="Remove every link of a kind")
def clear(tenant_id: TenantId, kind: Kind) -> dict[str, Any]:
    removed = _service().clear(tenant_id, kind)
    _count("MappingClears")
    _count("MappingsUnlinked", removed)
    return {"kind": kind, "removed": removed}


@router.post(
    "/tenants/<tenant_id>/mappings/<kind>/automatch",
    summary="Propose matches between unlinked entities; apply=true links the unambiguous ones",
)
def run_automatch(
    tenant_id: TenantId,
    kind: Kind,
    apply: Annotated[bool, Query(description="Link the unambiguous one-to-one matches.")] = False,
) -> dict[str, Any]:
    outcome = _service().automatch(tenant_id, kind, apply=apply)
    proposal = outcome.proposal
    _count("AutomatchRuns")
    if apply:
        _count("MappingsAutoLinked", len(outcome.linked))
    return {
        "kind": kind,
        "applied": apply,
        "matches": [asdict(m) for m in proposal.applied],
        "linked": [asdict(m) for m in outcome.linked],
        "skipped": outcome.skipped,
        "suggestions": {app: [asdict(s) for s in found] for app, found in proposal.suggestions.items()},
        "held_back": dict(proposal.held_back),
        "unmatched": list(proposal.unmatched),
        "unmatched_qbo": list(proposal.unmatched_qbo),
    }


@router.get(
    "/tenants/<tenant_id>/mappings/<kind>/name-conflicts",
    summary="6240 pre-check: app names held by an inactive customer, a vendor or an employee",
)
def name_conflicts(tenant_id: TenantId, kind: Kind) -> dict[str, Any]:
    risks = _service().name_conflicts(tenant_id, kind)
    _count("NameConflictChecks")
    return {"kind": kind, "conflicts": [asdict(r) for r in risks]}


@router.post(
    "/tenants/<tenant_id>/mappings/<kind>/export",
    summary="Create app entities in QBO and link them (sites become sub-customers, codes Service items)",
    responses={422: error_response("Taxes cannot be created in QBO; a code has no revenue account")},
)
def export(tenant_id: TenantId, kind: Kind, request: ExportRequest) -> dict[str, Any]:
    started_at = _now()
    outcomes = _service().export(tenant_id, kind, request.app_ids)
    created = sum(o.status == "created" for o in outcomes)
    _count("MappingExports")
    _count("MappingsExported", created)
    _record_transfer(tenant_id, "export", kind, started_at, made=created, outcomes=outcomes)
    return {"kind": kind, "results": [asdict(o) for o in outcomes]}


@router.post(
    "/tenants/<tenant_id>/mappings/<kind>/import",
    summary="Link QBO entities to new app ids and emit an event carrying each one's data",
)
def import_(tenant_id: TenantId, kind: Kind, request: ImportRequest) -> dict[str, Any]:
    started_at = _now()
    outcomes = _service().import_(tenant_id, kind, request.qbo_ids)
    imported = sum(o.status == "imported" for o in outcomes)
    _count("MappingImports")
    _count("MappingsImported", imported)
    _record_transfer(tenant_id, "import", kind, started_at, made=imported, outcomes=outcomes)
    return {"kind": kind, "results": [asdict(o) for o in outcomes]}


def _now() -> datetime:
    from shared import wiring

    return wiring.clock().now()


def _record_transfer(
    tenant_id: str,
    source: Literal["export", "import"],
    kind: str,
    started_at: datetime,
    *,
    made: int,
    outcomes: Sequence[ItemOutcome],
) -> None:
    """The transfer in the exchange history (docs/mappings.md): the administrator sees each export
    and import with what became of its entities.  Only a transfer that ran is recorded: a refused
    request (422) changes nothing, the history included."""
    from shared import wiring

    counts: Counter[str] = Counter(o.status for o in outcomes)
    wiring.exchange_log().record(
        tenant_id, source, started_at, trigger=kind, changes=made, events=dict(counts)
    )


@router.post("/tenants/<tenant_id>/mappings/refresh", summary="Re-read the QBO lists of every kind")
def refresh(tenant_id: TenantId) -> dict[str, Any]:
    counts = _service().refresh(tenant_id)
    _count("QboListRefreshes")
    return {"refreshed": counts}


@router.post(
    "/tenants/<tenant_id>/mappings/onboard",
    summary="Read the QBO lists and link every unambiguous match (right after connecting)",
)
def onboard(tenant_id: TenantId) -> dict[str, Any]:
    outcome = _service().onboard(tenant_id)
    _count("MappingOnboardings")
    return asdict(outcome)
