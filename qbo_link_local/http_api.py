"""The local API Gateway HTTP API: route a request of the gateway server to its handler (404 when
no route of the manifest matches, 401 when its authorizer refuses), invoke it, answer as API Gateway
would (500 for a failed handler or a malformed answer, 503 past the integration timeout)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from infra import manifest
from qbo_link_local.gateway import (
    UnauthorizedError,
    authorizer_for,
    http_api_event,
    lambda_response,
    match_route,
)
from qbo_link_local.logs import note_line
from qbo_link_local.server import api_gateway_error

if TYPE_CHECKING:
    from qbo_link_local.deliveries import OutboundEvents
    from qbo_link_local.gateway import Request, Response
    from qbo_link_local.runtime import Invoker

API_GATEWAY_TIMEOUT_MS: Final = 30_000
# Not a route of the manifest: a page of the local gateway where a connect flow may end when no
# host app is running yet (always in the return-URL allow-list locally).
LANDING_PATH: Final = "/_local/connected"
# Not a route either: the events the stack saw on its bus, for `qbo-link events` (docs/local.md).
EVENTS_PATH: Final = "/_local/events"
EVENTS_PAGE_MAX: Final = 500


def dispatch(request: Request, invoker: Invoker, log: Callable[[str], None]) -> Response:
    match = match_route(manifest.FUNCTIONS, request.method, request.path)
    trigger = f"{request.method} {request.path}"
    if match is None and request.method == "GET" and request.path == LANDING_PATH:
        return landing_page(request.query)
    if match is None:
        log(note_line(datetime.now(UTC), "gateway", f"{trigger}  404 no route"))
        return api_gateway_error(404, "Not Found")
    try:
        authorizer = authorizer_for(match.route, request.headers, request.path)
    except UnauthorizedError as refused:
        log(note_line(datetime.now(UTC), "gateway", f"{trigger}  401 {refused}"))
        return api_gateway_error(401, "Unauthorized")
    host = next((v for k, v in request.headers if k.lower() == "host"), "localhost")
    event = http_api_event(
        dataclasses.replace(request, authorizer=authorizer), match, domain=host.split(":")[0]
    )
    if "request_id" in request.extra:  # the same id as the answer's apigw-requestid header
        event["requestContext"]["requestId"] = request.extra["request_id"]
    call = invoker.call(match.function, event)
    answer: Response
    if call.failed:
        answer = api_gateway_error(500, "Internal Server Error")
    else:
        try:
            answer = lambda_response(call.result)
        except (TypeError, ValueError):
            answer = api_gateway_error(500, "Internal Server Error")
    if call.duration_ms > API_GATEWAY_TIMEOUT_MS:
        answer = api_gateway_error(503, "Service Unavailable")
    invoker.record(
        match.function,
        trigger,
        call,
        str(answer.status),
        ok=not call.failed and answer.status < 500,
        detail={"route": match.route_key, "status": answer.status},
    )
    return answer


def landing_page(query: str) -> Response:
    """Where a local connect flow ends without a host app: what the callback told the app."""
    import html
    from urllib.parse import parse_qsl

    from qbo_link_local.gateway import Response

    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in parse_qsl(query, keep_blank_values=True)
    )
    body = (
        "<!doctype html><title>QBO Link (local)</title><h1>Back from QuickBooks</h1>"
        f"<p>The OAuth callback sent the browser here with:</p><table>{rows}</table>"
    )
    return Response(200, [("content-type", "text/html; charset=utf-8")], body.encode())


def events_page(outbound: OutboundEvents, query: str) -> Response:
    """``GET /_local/events?after=N&last=M``: the events numbered above ``after`` (0: every one
    kept), only the ``last`` M of them when given, at most ``EVENTS_PAGE_MAX``; ``next`` is the
    ``after`` of the next call and ``run`` changes when the stack restarts (numbers start again).
    """
    import json
    from urllib.parse import parse_qs

    from qbo_link_local.gateway import Response

    asked = parse_qs(query)

    def number(name: str) -> int | None:
        values = asked.get(name)
        if not values:
            return None
        if not values[0].isdigit():
            raise ValueError(name)
        return int(values[0])

    try:
        after, last = number("after") or 0, number("last")
    except ValueError as wrong:
        body = json.dumps({"message": f"{wrong} must be a whole number"}).encode()
        return Response(400, [("content-type", "application/json")], body)
    found, latest = outbound.since(after, last)
    page = found[:EVENTS_PAGE_MAX]
    following = page[-1][0] if len(page) < len(found) else latest
    body = json.dumps(
        {"run": outbound.run, "next": following, "events": [{"n": n, "event": e} for n, e in page]}
    ).encode()
    return Response(200, [("content-type", "application/json")], body)
