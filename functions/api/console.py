"""The console's way in: ``/console/v1/tenants/<tenant>/...`` is the ``/v1`` route of the same path,
called by the console's browser code (docs/console.md, "Access and security").

``console_gate`` runs first on every event.  A console path is authenticated here, since the IAM
API's console route has no authorizer: a caller that came through a JWT authorizer (the JWT API's
console route) keeps its claims; any other presents ``Authorization: Bearer <console session>``,
which becomes the claims ``{"tenant_id": <the session's tenant>}``, a tenant-scoped caller exactly
like a JWT one.  The path then loses its ``/console`` prefix, so the resolver serves the ``/v1``
route and ``common.tenant_refusal`` confines the caller to its tenant (another tenant, the tenant
list: 403).  No session, or one that is forged, malformed or expired: 401 with
``WWW-Authenticate: Bearer``.  A session is never minted from the console (403): only the host app's
backend mints one.  Every answer to a console path carries ``Cache-Control: no-store``.

The gate also marks the event (``requestContext.qboLinkConsole``, which no caller can set: API
Gateway builds the request context) with the console's own URL on this API, the one return URL a
connect flow started from the console may use besides the allow-list.
"""

from __future__ import annotations

import re
from typing import Any, Final

from functions.api.common import TENANT_CLAIM, jwt_claims
from functions.api.errors import raw_refusal

CONSOLE_API_PREFIX: Final = "/console/v1/"
CONSOLE_PAGE_PATH: Final = "/console/"
MARK: Final = "qboLinkConsole"
_MINTING: Final = re.compile(r"^/v1/tenants/[^/]+/console-sessions/?$")
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
_HOST: Final = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


def is_console_path(path: str) -> bool:
    return path.startswith(CONSOLE_API_PREFIX)


def _bearer(event: dict[str, Any]) -> str | None:
    for name, value in (event.get("headers") or {}).items():
        if str(name).lower() == "authorization":
            scheme, _, token = str(value).strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _unauthorized(kind: str, message: str, *, invalid: bool) -> dict[str, Any]:
    answer = raw_refusal(401, ("header", "authorization"), kind, message)
    # RFC 6750 §3: a request without credentials gets the bare challenge; a bad token says so.
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    answer["headers"] = {**answer["headers"], "WWW-Authenticate": challenge}
    return answer


def _session_tenant(event: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """(the tenant of the request's console session, None), or (None, the 401 answer)."""
    from shared import wiring
    from shared.connections.console_session import ConsoleSessionError
    from shared.connections.oauth_state import epoch

    token = _bearer(event)
    if token is None:
        message = "open the console from the app: no console session was sent"
        return None, _unauthorized("session_missing", message, invalid=False)
    try:
        session = wiring.console_sessions().verify(token, epoch(wiring.clock().now()))
    except ConsoleSessionError as refused:
        return None, _unauthorized(f"session_{refused.kind}", str(refused), invalid=True)
    return session.tenant_id, None


def console_url(event: dict[str, Any]) -> str | None:
    """``https://<this API's domain>/console/``: the console as served by the API the request came
    through.  None on loopback, whose port API Gateway's domain name lacks (the local stack puts its
    own console URL in the allow-list instead)."""
    domain = str((event.get("requestContext") or {}).get("domainName") or "").lower()
    if not _HOST.fullmatch(domain) or domain in _LOOPBACK or ".." in domain:
        return None
    return f"https://{domain}{CONSOLE_PAGE_PATH}"


def console_gate(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 401/403 answer for a console path that may not go on, else None; a console path that may
    go on is rewritten in place to its ``/v1`` route, with the caller's claims."""
    path = str(event.get("rawPath") or "")
    if not is_console_path(path):
        return None
    context = event.setdefault("requestContext", {})
    if jwt_claims(event) is None:
        tenant_id, refused = _session_tenant(event)
        if refused is not None:
            return refused
        context["authorizer"] = {"jwt": {"claims": {TENANT_CLAIM: tenant_id}, "scopes": None}}
    inner = path.removeprefix("/console")
    if _MINTING.match(inner):
        return raw_refusal(
            403, ("path",), "console_cannot_mint", "console sessions are minted by the app's backend only"
        )
    event["rawPath"] = inner
    http = context.get("http")
    if isinstance(http, dict):
        http["path"] = inner
    context[MARK] = {"console_url": console_url(event)}
    return None


def console_return_prefix(event: dict[str, Any]) -> str | None:
    """The console URL the gate found for this request, when it came through the console path."""
    mark = (event.get("requestContext") or {}).get(MARK)
    return mark.get("console_url") if isinstance(mark, dict) else None


def no_store(answer: dict[str, Any]) -> dict[str, Any]:
    """A console answer: per tenant and per session, never kept by a browser or a proxy."""
    return {**answer, "headers": {**(answer.get("headers") or {}), "Cache-Control": "no-store"}}
