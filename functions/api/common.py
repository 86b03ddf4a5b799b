"""What every tenant API route module shares: the tenant id parameter and the refusal shape.

Every refusal has one shape, the one the generated OpenAPI document describes (Powertools'
``HTTPValidationError``): ``{"statusCode": n, "detail": [{"loc": [...], "msg": ..., "type": ...}]}``,
``loc`` naming where (``body``, ``path``, ``query``) and which field.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit

from shared.connections import TENANT_ID_PATTERN
from shared.observability import metrics

TenantId = Annotated[str, Path(pattern=TENANT_ID_PATTERN, description="The host app's tenant (firm) id.")]


def error_response(description: str) -> OpenAPIResponse:
    """A refusal in the document: the same schema as Powertools' validation errors."""
    schema = {"$ref": "#/components/schemas/HTTPValidationError"}
    return {"description": description, "content": {content_types.APPLICATION_JSON: {"schema": schema}}}


def refusal(status: int, where: tuple[str, ...], kind: str, message: str) -> Response[dict[str, Any]]:
    metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
    body = {"statusCode": status, "detail": [{"loc": list(where), "msg": message, "type": kind}]}
    return Response(status, content_types.APPLICATION_JSON, body)
