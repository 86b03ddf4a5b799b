"""The tenant API (IAM-authorised): one resolver, one router per feature, every route under ``/v1``.

Bad input is a 422 naming every offending field and changes nothing.  The contract is
``functions.api.openapi.document()``, served at ``GET /v1/openapi.json`` with Swagger UI at
``GET /v1/docs`` (``docs_routes``) and checked in as ``docs/openapi.json``.  The tenant routes answer
without the prefix too: deprecated aliases, with a ``Deprecation`` header naming their successor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from functions.api import (
    connection_routes,
    console_routes,
    docs_routes,
    errors,
    mapping_routes,
    push_routes,
)
from functions.api.common import body_refusal, tenant_refusal, unknown_tenant_refusal
from functions.api.console import console_gate, is_console_path, no_store
from functions.api.paths import DEPRECATED_SINCE, VERSION_PREFIX, is_deprecated_alias
from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver(enable_validation=True)
for _router in (connection_routes.router, console_routes.router, push_routes.router, mapping_routes.router):
    app.include_router(_router, prefix=VERSION_PREFIX)
    app.include_router(_router)  # the deprecated alias (``_deprecated``)
docs_routes.install(app)
errors.install(app)  # every refusal: functions.api.errors


def _exists(tenant_id: str) -> bool:
    from shared import wiring

    return wiring.store().exists(tenant_id)


def tenant_exists(resolver: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """After validation (a malformed request is a 422 before anything is read), before the route:
    an unknown tenant is a 404 on every tenant route, never an empty list."""
    event = resolver.current_event
    refused = unknown_tenant_refusal(event.http_method, event.path, _exists)
    return refused if refused is not None else next_middleware(resolver)


app.use(middlewares=[tenant_exists])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Every route, before the resolver: a console path is authenticated and becomes its /v1 route
    # (``functions.api.console``), a JWT caller reaches only its own tenant, and a body no parser can
    # read safely is refused (whether the tenant exists: ``tenant_exists``).
    from_console = is_console_path(str(event.get("rawPath") or ""))
    refused = console_gate(event) or tenant_refusal(event) or body_refusal(event)
    answer = refused if refused is not None else app.resolve(event, context)
    if from_console:
        return no_store(answer)
    path = str(event.get("rawPath") or "")
    return _deprecated(answer, path) if is_deprecated_alias(path) else answer


def _deprecated(answer: dict[str, Any], path: str) -> dict[str, Any]:
    """An unversioned tenant route's answer, marked (RFC 9745's ``Deprecation``, RFC 8288's ``Link``)."""
    headers = dict(answer.get("headers") or {})
    headers["Deprecation"] = DEPRECATED_SINCE
    headers["Link"] = f'<{VERSION_PREFIX}{path}>; rel="successor-version"'
    return {**answer, "headers": headers}
