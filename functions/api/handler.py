"""The tenant API (IAM-authorised): the connection routes. More routes join this resolver later.

Every refusal has one shape, the one the generated OpenAPI document describes (Powertools'
``HTTPValidationError``): ``{"statusCode": n, "detail": [{"loc": [...], "msg": ..., "type": ...}]}``,
``loc`` naming where (``body``, ``path``, ``query``) and which field. Bad input is a 422 and
changes nothing; ``app.get_openapi_json_schema()`` gives the document.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from shared.connections import (
    MAX_RETURN_URL_LENGTH,
    TENANT_ID_PATTERN,
    MappingsAlreadyRemovedError,
    NotConnectedError,
    ReturnUrlError,
)
from shared.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver(enable_validation=True)

TenantId = Annotated[str, Path(pattern=TENANT_ID_PATTERN, description="The host app's tenant (firm) id.")]


def _error(description: str) -> OpenAPIResponse:
    """A refusal in the document: the same schema as Powertools' validation errors."""
    schema = {"$ref": "#/components/schemas/HTTPValidationError"}
    return {"description": description, "content": {content_types.APPLICATION_JSON: {"schema": schema}}}


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


def _refusal(status: int, where: tuple[str, ...], kind: str, message: str) -> Response[dict[str, Any]]:
    metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
    body = {"statusCode": status, "detail": [{"loc": list(where), "msg": message, "type": kind}]}
    return Response(status, content_types.APPLICATION_JSON, body)


@app.post(
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


@app.get("/tenants/<tenant_id>/connection", summary="The tenant's connection status")
def connection_status(tenant_id: TenantId) -> dict[str, Any]:
    from shared import wiring

    metrics.add_metric(name="ConnectionStatusReads", unit=MetricUnit.Count, value=1)
    return wiring.connections().connection_status(tenant_id)


@app.delete(
    "/tenants/<tenant_id>/connection",
    summary="Disconnect: revoke at Intuit, delete the tokens, keep or remove the mappings",
    responses={
        200: {"description": "Disconnected (or already was)"},
        404: _error("The tenant never connected"),
        409: _error("Mappings were already removed"),
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


def invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    # Powertools hides pydantic's messages; ours say what is wrong with the field, nothing more.
    detail = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "invalid")), "type": str(e.get("type", ""))}
        for e in error.errors()
    ]
    metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
    return Response(422, content_types.APPLICATION_JSON, {"statusCode": 422, "detail": detail})


def return_url_refused(error: ReturnUrlError) -> Response[dict[str, Any]]:
    return _refusal(422, ("body", "return_url"), "return_url_not_allowed", str(error))


def not_connected(error: NotConnectedError) -> Response[dict[str, Any]]:
    return _refusal(404, ("path", "tenant_id"), "not_connected", str(error))


def mappings_removed(error: MappingsAlreadyRemovedError) -> Response[dict[str, Any]]:
    return _refusal(409, ("query", "mappings"), "mappings_already_removed", str(error))


# Registered by call: Powertools' exception_handler decorator is untyped.
app.exception_handler(RequestValidationError)(invalid_request)
app.exception_handler(ReturnUrlError)(return_url_refused)
app.exception_handler(NotConnectedError)(not_connected)
app.exception_handler(MappingsAlreadyRemovedError)(mappings_removed)


@app.not_found
def not_found(_error: Exception) -> Response[dict[str, Any]]:
    return _refusal(404, ("path",), "not_found", "no such route")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
