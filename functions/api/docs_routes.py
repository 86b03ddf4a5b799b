"""The API's contract, served: ``GET /v1/openapi.json`` and Swagger UI at ``GET /v1/docs``.

Public routes (no tenant, no data): the document is the same for every caller, built once per
container on the first request for it (``functions.api.openapi``), never at import.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit

from functions.api.paths import VERSION_PREFIX
from shared.kernel.observability import metrics

OPENAPI_PATH = f"{VERSION_PREFIX}/openapi.json"
DOCS_PATH = f"{VERSION_PREFIX}/docs"
_CACHE = {"Cache-Control": "public, max-age=300"}


def install(app: APIGatewayHttpResolver) -> None:
    """The two routes, on the resolver whose routes they describe."""

    @app.get(OPENAPI_PATH, summary="This API's OpenAPI 3.1 document")
    def openapi_document() -> Response[str]:
        from functions.api import openapi

        metrics.add_metric(name="ContractReads", unit=MetricUnit.Count, value=1)
        return Response(200, content_types.APPLICATION_JSON, openapi.document_json(app), headers=_CACHE)

    @app.get(DOCS_PATH, summary="Swagger UI for this API (served whole: no CDN)")
    def swagger_ui() -> Response[str]:
        from functions.api import openapi

        metrics.add_metric(name="ContractReads", unit=MetricUnit.Count, value=1)
        page = openapi.swagger_html(app)
        return Response(200, "text/html; charset=utf-8", page, headers=_CACHE, compress=True)
