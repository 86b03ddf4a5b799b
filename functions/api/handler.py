"""The tenant API (IAM-authorised): one resolver, one router per feature.

Bad input is a 422 naming every offending field and changes nothing; ``app.get_openapi_json_schema()``
gives the document.  Route modules: ``connection_routes`` (more join with the push and mapping work).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from functions.api import connection_routes, errors, mapping_routes, push_routes
from functions.api.common import body_refusal, tenant_refusal, unknown_tenant_refusal
from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver(enable_validation=True)
app.include_router(connection_routes.router)
app.include_router(push_routes.router)
app.include_router(mapping_routes.router)
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
    # Every route, before the resolver: a JWT caller reaches only its own tenant, and a body no
    # parser can read safely is refused (whether the tenant exists: ``tenant_exists``).
    refused = tenant_refusal(event) or body_refusal(event)
    if refused is not None:
        return refused
    return app.resolve(event, context)
