"""What every tenant API route module shares: the tenant id parameter and the refusal shape.

Every refusal has one shape, the one the generated OpenAPI document describes (Powertools'
``HTTPValidationError``): ``{"statusCode": n, "detail": [{"loc": [...], "msg": ..., "type": ...}]}``,
``loc`` naming where (``body``, ``path``, ``query``) and which field.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit

from shared.connections import TENANT_ID_PATTERN
from shared.observability import metrics

TENANT_CLAIM = "tenant_id"  # the JWT claim naming the one tenant a tenant-scoped caller may reach

TenantId = Annotated[str, Path(pattern=TENANT_ID_PATTERN, description="The host app's tenant (firm) id.")]


def error_response(description: str) -> OpenAPIResponse:
    """A refusal in the document: the same schema as Powertools' validation errors."""
    schema = {"$ref": "#/components/schemas/HTTPValidationError"}
    return {"description": description, "content": {content_types.APPLICATION_JSON: {"schema": schema}}}


def refusal(status: int, where: tuple[str, ...], kind: str, message: str) -> Response[dict[str, Any]]:
    metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
    body = {"statusCode": status, "detail": [{"loc": list(where), "msg": message, "type": kind}]}
    return Response(status, content_types.APPLICATION_JSON, body)


def jwt_claims(event: dict[str, Any]) -> dict[str, Any] | None:
    """The claims of a caller that came through a JWT authorizer, or None (IAM: the app's backend)."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    jwt = authorizer.get("jwt")
    if jwt is None:
        return None
    claims = jwt.get("claims")
    return claims if isinstance(claims, dict) else {}


def tenant_refusal(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 403 answer for a caller that may not reach this path, or None; checked on the raw event
    before the resolver runs (before validation, before any route reads or changes anything).

    The host app's backend calls with IAM and may reach any tenant; a caller that came through the
    JWT authorizer may reach ``/tenants/<its tenant>/...`` and nothing else (not the tenant list,
    not another tenant).
    """
    claims = jwt_claims(event)
    if claims is None:
        return None
    path = str(event.get("rawPath") or (event.get("requestContext") or {}).get("http", {}).get("path", ""))
    parts = path.strip("/").split("/")
    where: tuple[str, ...]
    if parts[0] != "tenants" or len(parts) < 2 or not parts[1]:
        where, kind, message = ("path",), "tenant_scoped_caller", "a tenant-scoped caller cannot list tenants"
    elif str(claims.get(TENANT_CLAIM, "")) != parts[1]:
        where, kind, message = (
            ("path", "tenant_id"),
            "tenant_mismatch",
            "the caller is not authorized for this tenant",
        )
    else:
        return None
    metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
    body = {"statusCode": 403, "detail": [{"loc": list(where), "msg": message, "type": kind}]}
    return {
        "statusCode": 403,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
