"""The tenant API (IAM-authorised): one resolver, one router per feature.

Bad input is a 422 naming every offending field and changes nothing; ``app.get_openapi_json_schema()``
gives the document.  Route modules: ``connection_routes`` (more join with the push and mapping work).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.metrics import MetricUnit

from functions.api import connection_routes, mapping_routes, push_routes
from functions.api.common import body_refusal, refusal, tenant_refusal, unknown_tenant_refusal
from shared.connections.errors import MappingsAlreadyRemovedError, NotConnectedError, ReturnUrlError
from shared.kernel.observability import logger, metrics
from shared.push.errors import PushQueueError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver(enable_validation=True)
app.include_router(connection_routes.router)
app.include_router(push_routes.router)
app.include_router(mapping_routes.router)


def invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    # Powertools hides pydantic's messages; ours say what is wrong with the field, nothing more.
    detail = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "invalid")), "type": str(e.get("type", ""))}
        for e in error.errors()
    ]
    metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
    return Response(422, content_types.APPLICATION_JSON, {"statusCode": 422, "detail": detail})


def unsupported_media_type(error: RequestUnsupportedContentType) -> Response[dict[str, Any]]:
    # A body route called with no body and a content type other than JSON (a body is checked
    # before: common.body_refusal); Powertools' own 415 leaves out the message.
    del error
    return refusal(415, ("body",), "unsupported_media_type", "send application/json")


def return_url_refused(error: ReturnUrlError) -> Response[dict[str, Any]]:
    return refusal(422, ("body", "return_url"), "return_url_not_allowed", str(error))


def not_connected(error: NotConnectedError) -> Response[dict[str, Any]]:
    return refusal(404, ("path", "tenant_id"), "not_connected", str(error))


def mappings_removed(error: MappingsAlreadyRemovedError) -> Response[dict[str, Any]]:
    return refusal(409, ("query", "mappings"), "mappings_already_removed", str(error))


def queue_unavailable(error: PushQueueError) -> Response[dict[str, Any]]:
    # Push and mapping routes alike: what the request changed is kept, and its retry sends again.
    logger.warning("push queue unavailable", extra={"error": str(error)})
    return refusal(503, ("queue",), "queue_unavailable", str(error))


# Registered by call: Powertools' exception_handler decorator is untyped.
app.exception_handler(RequestValidationError)(invalid_request)
app.exception_handler(RequestUnsupportedContentType)(unsupported_media_type)
app.exception_handler(ReturnUrlError)(return_url_refused)
app.exception_handler(NotConnectedError)(not_connected)
app.exception_handler(MappingsAlreadyRemovedError)(mappings_removed)
app.exception_handler(PushQueueError)(queue_unavailable)


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


@app.not_found
def not_found(_error: Exception) -> Response[dict[str, Any]]:
    return refusal(404, ("path",), "not_found", "no such route")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Every route, before the resolver: a JWT caller reaches only its own tenant, and a body no
    # parser can read safely is refused (whether the tenant exists: ``tenant_exists``).
    refused = tenant_refusal(event) or body_refusal(event)
    if refused is not None:
        return refused
    return app.resolve(event, context)
