"""What every tenant API route module shares: the tenant id parameter, the refusal's place in the
OpenAPI document, and the gates that run before the resolver (the caller's tenant, the body, an
unknown tenant).  The refusal shape and every exception's answer: ``functions.api.errors``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from functions.api.errors import raw_refusal, refusal
from functions.api.paths import unversioned
from shared.kernel.constants import TENANT_ID_PATTERN

TENANT_CLAIM = "tenant_id"  # the JWT claim naming the one tenant a tenant-scoped caller may reach

TenantId = Annotated[str, Path(pattern=TENANT_ID_PATTERN, description="The host app's tenant (firm) id.")]


def error_response(description: str) -> OpenAPIResponse:
    """A refusal in the document: the same schema as Powertools' validation errors."""
    schema = {"$ref": "#/components/schemas/HTTPValidationError"}
    return {"description": description, "content": {content_types.APPLICATION_JSON: {"schema": schema}}}


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
    parts = unversioned(path).strip("/").split("/")
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
    return raw_refusal(403, where, kind, message)


def body_refusal(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 400/415/422 answer for a body no route can read safely, or None.

    Checked once for every route before the resolver runs (``functions.api.request_body``): bytes that are
    not UTF-8, a content type that is not JSON, nesting deep enough to exhaust Python's recursion,
    NaN/Infinity, numbers beyond any field's range.  A base64 body API Gateway passed is replaced by
    its text, so every parser after this reads the same checked text.
    """
    from functions.api.request_body import BodyRefusedError, read_json_text

    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    try:
        text = read_json_text(
            event.get("body"), headers.get("content-type"), base64_encoded=bool(event.get("isBase64Encoded"))
        )
    except BodyRefusedError as refused:
        return raw_refusal(refused.status, ("body",), refused.kind, str(refused))
    if text and "content-type" in headers:
        # Media types are case-insensitive; Powertools compares "application/json" as written.
        event["headers"] = {**headers, "content-type": headers["content-type"].strip().lower()}
    if event.get("isBase64Encoded"):
        event["body"] = text
        event["isBase64Encoded"] = False
    return None


def path_tenant(path: str) -> str | None:
    """The tenant of a ``/tenants/<tenant>/...`` path when it is a well-formed tenant id, else None
    (a malformed one is the route's 422)."""
    from shared.connections.errors import InvalidTenantIdError
    from shared.connections.flows import check_tenant_id

    parts = unversioned(path).strip("/").split("/")
    if len(parts) < 2 or parts[0] != "tenants":
        return None
    try:
        return check_tenant_id(parts[1])
    except InvalidTenantIdError:
        return None


# Routes that look the tenant's connection up themselves and answer 404 ``not_connected`` (the
# gate would only repeat their read), and the routes by which the host app makes a tenant known:
# its first consent, its settings, its lists (the app may tell both before the firm connects), and
# a console session (the administrator of a firm not yet connected opens the console to connect).
_SELF_CHECKED = re.compile(
    r"^(?:PUT /tenants/[^/]+/(?:clients|invoices|payments|credit-memos)/[^/]+"
    r"|POST /tenants/[^/]+/postings/recheck"
    r"|POST /tenants/[^/]+/documents"
    r"|(?:POST|DELETE) /tenants/[^/]+/connection"
    r"|POST /tenants/[^/]+/console-sessions"
    r"|(?:PUT|PATCH) /tenants/[^/]+/settings"
    r"|PUT /tenants/[^/]+/catalog/[^/]+/[^/]+)/?$"
)


def unknown_tenant_refusal(
    method: str, path: str, exists: Callable[[str], bool]
) -> Response[dict[str, Any]] | None:
    """The 404 answer for a tenant QBO Link does not know, or None.

    A tenant is known once the host app gave it settings or its lists, or it completed a consent:
    an item in its partition of the connections table (its connection record stays, disconnected
    or not).
    One Query (Limit 1, keys only) on each tenant route but those of ``_SELF_CHECKED``, so a typo
    never reads as an empty tenant.
    """
    tenant_id = path_tenant(path)
    if tenant_id is None or _SELF_CHECKED.match(f"{method.upper()} {unversioned(path)}") or exists(tenant_id):
        return None
    return refusal(
        404, ("path", "tenant_id"), "not_connected", f"tenant {tenant_id!r} has never connected a QBO company"
    )
