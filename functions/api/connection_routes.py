"""Tenant API: the connection routes (start, status, disconnect)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from functions.api.common import TenantId, error_response
from shared.connections import MAX_RETURN_URL_LENGTH
from shared.observability import metrics

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


class DisconnectResponse(BaseModel):
    tenant_id: str
    realm_id: str
    keep_mappings: bool
    disconnected_at: datetime
    already_disconnected: bool = Field(description="True when this repeated an earlier disconnect.")


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

    started = wiring.connections().start_connection(tenant_id, request.return_url)
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
