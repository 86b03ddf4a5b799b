"""Intuit's browser redirects: the OAuth callback and the app's Disconnect and Reconnect URLs.

Public routes (no IAM): every request is treated as hostile and checked by ``shared.connections.flows``.
Answers are a 302 or a small HTML page, never cached, never carrying a token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.connections.callback import Page, Redirect

app = APIGatewayHttpResolver()

# Never cached (Intuit's security requirements), never framed, no script, no referrer to the app.
_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _browser(answer: Redirect | Page) -> Response[str]:
    from shared.connections.callback import Redirect

    if isinstance(answer, Redirect):
        return Response(302, headers={**_HEADERS, "Location": answer.url}, body="")
    return Response(answer.status_code, "text/html; charset=utf-8", answer.html(), headers=dict(_HEADERS))


def _query(name: str) -> str | None:
    return app.current_event.get_query_string_value(name)


@app.get("/oauth/callback")
def callback() -> Response[str]:
    from shared import wiring
    from shared.connections.callback import CallbackParams

    params = CallbackParams.from_query({k: _query(k) for k in CallbackParams.QUERY_NAMES})
    outcome = wiring.connections().complete_connection(params)
    metrics.add_metric(name=f"OAuthCallback_{outcome.result.value}", unit=MetricUnit.Count, value=1)
    return _browser(outcome.answer)


@app.get("/oauth/disconnect")
def intuit_disconnect() -> Response[str]:
    from shared import wiring

    page = wiring.connections().intuit_disconnected(_query("realmId"))
    metrics.add_metric(name="IntuitDisconnectNotices", unit=MetricUnit.Count, value=1)
    return _browser(page)


@app.get("/oauth/reconnect")
def intuit_reconnect() -> Response[str]:
    from shared import wiring

    answer = wiring.connections().intuit_reconnect(_query("realmId"))
    metrics.add_metric(name="IntuitReconnects", unit=MetricUnit.Count, value=1)
    return _browser(answer)


@app.not_found
def not_found(_error: Exception) -> Response[str]:
    metrics.add_metric(name="UnknownRoutes", unit=MetricUnit.Count, value=1)
    return Response(404, "text/plain; charset=utf-8", "not found", headers=dict(_HEADERS))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
