"""Tenant API: the connection routes (the operator's tenant list; start, status, disconnect)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from functions.api.common import TenantId, error_response, jwt_claims
from functions.api.console import console_return_prefix
from functions.api.errors import refusal
from shared.kernel.constants import MAX_RETURN_URL_LENGTH
from shared.kernel.observability import metrics

if TYPE_CHECKING:
    from shared.connections.store import Connection

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves Router.__init__ untyped


class StartConnectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    return_url: str = Field(
        min_length=1,
        max_length=MAX_RETURN_URL_LENGTH,
        description="Where the browser lands after consent; must lie under an allowed return URL prefix.",
    )


class StartConnectionResponse(BaseModel):
    authorization_url: str = Field(description="Send the user's browser here: Intuit's consent page.")
    state_expires_at: datetime = Field(description="The consent must complete before this instant.")


class TenantRow(BaseModel):
    tenant_id: str
    realm_id: str
    company_name: str | None
    country: str | None
    health: str | None = Field(
        description="healthy, refresh_failing, needs_reconnect, revoked, disconnected."
    )
    health_reason: str | None
    connected: bool = Field(description="Tokens held and usable (healthy or refresh_failing).")
    connected_at: datetime | None
    disconnected_at: datetime | None


class TenantsPage(BaseModel):
    tenants: list[TenantRow]
    next_page_token: str | None = Field(description="Pass as page_token for the next page; null at the end.")


class DisconnectResponse(BaseModel):
    tenant_id: str
    realm_id: str
    keep_mappings: bool
    disconnected_at: datetime
    already_disconnected: bool = Field(description="True when this repeated an earlier disconnect.")


def _tenant_row(connection: Connection) -> TenantRow:
    company = connection.company
    return TenantRow(
        tenant_id=connection.tenant_id,
        realm_id=connection.realm_id,
        company_name=company.name if company else None,
        country=company.country if company else None,
        health=connection.health.value if connection.health else None,
        health_reason=connection.health_reason,
        connected=connection.refreshable,
        connected_at=connection.connected_at,
        disconnected_at=connection.disconnected_at,
    )


@router.get(
    "/tenants",
    summary="Every tenant's connection (operators: the host app's backend, never a tenant's token)",
    responses={
        403: error_response("A tenant-scoped caller (JWT) may not list other tenants"),
        422: error_response("Invalid limit or page token"),
    },
)
def list_tenants(
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many tenants.")] = 100,
    page_token: Annotated[
        str | None, Query(max_length=4096, description="next_page_token of the previous page.")
    ] = None,
) -> Response[Any]:
    from shared import wiring

    if jwt_claims(router.current_event.raw_event) is not None:  # also refused by common.tenant_refusal
        return refusal(403, ("path",), "tenant_scoped_caller", "a tenant-scoped caller cannot list tenants")
    connections, next_token = wiring.store().page(limit, page_token)  # a bad token: errors.install
    metrics.add_metric(name="TenantListReads", unit=MetricUnit.Count, value=1)
    body = TenantsPage(tenants=[_tenant_row(c) for c in connections], next_page_token=next_token)
    return Response(200, content_types.APPLICATION_JSON, body)


@router.post(
    "/tenants/<tenant_id>/connection",
    status_code=201,
    summary="Start connecting the tenant's QuickBooks Online company",
    responses={201: {"description": "Consent URL created"}},
)
def start_connection(
    tenant_id: TenantId, request: StartConnectionRequest
) -> Response[StartConnectionResponse]:
    from shared import wiring

    # Through the console: its own URL on this API is a return URL too (functions.api.console).
    console = console_return_prefix(router.current_event.raw_event)
    started = wiring.connections().start_connection(
        tenant_id, request.return_url, also_allowed=(console,) if console else ()
    )
    metrics.add_metric(name="ConnectionsStarted", unit=MetricUnit.Count, value=1)
    body = StartConnectionResponse(
        authorization_url=started.authorization_url, state_expires_at=started.state_expires_at
    )
    return Response(201, content_types.APPLICATION_JSON, body)


@router.get("/tenants/<tenant_id>/connection", summary="The tenant's connection status")
def connection_status(tenant_id: TenantId) -> dict[str, Any]:
    from shared import wiring

    metrics.add_metric(name="ConnectionStatusReads", unit=MetricUnit.Count, value=1)
    return wiring.connections().connection_status(tenant_id)


@router.delete(
    "/tenants/<tenant_id>/connection",
    summary="Disconnect: revoke at Intuit, delete the tokens, keep or remove the mappings",
    responses={
        200: {"description": "Disconnected (or already was)"},
        404: error_response("The tenant never connected"),
        409: error_response("Mappings were already removed"),
    },
)
def disconnect(
    tenant_id: TenantId,
    mappings: Annotated[
        Literal["keep", "remove"],
        Query(description="keep: reconnecting later carries on; remove: start over."),
    ],
) -> DisconnectResponse:
    from shared import wiring

    outcome = wiring.connections().disconnect(tenant_id, keep_mappings=mappings == "keep")
    metrics.add_metric(name="ConnectionsDisconnected", unit=MetricUnit.Count, value=1)
    return DisconnectResponse(
        tenant_id=outcome.tenant_id,
        realm_id=outcome.realm_id,
        keep_mappings=outcome.keep_mappings,
        disconnected_at=outcome.disconnected_at,
        already_disconnected=outcome.already_disconnected,
    )
