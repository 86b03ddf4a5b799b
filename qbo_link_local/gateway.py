"""What API Gateway's HTTP API does around a Lambda integration, as pure functions.

``http_api_event`` turns an HTTP request into the payload format 2.0 event API Gateway sends;
``lambda_response`` turns the handler's answer back into status, headers and body (including the
shortcut where a handler returns a bare JSON value); ``match_route`` picks the route of the stack
manifest (``infra.manifest``) that API Gateway would pick: an exact path before a greedy
``{proxy+}``, a method before ``ANY``.  The local gateway server and the tests share these.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from infra.manifest import FunctionSpec, Route

_TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded", "application/xml")


@dataclass(frozen=True)
class RouteMatch:
    function: FunctionSpec
    route: Route
    path_parameters: dict[str, str]

    @property
    def route_key(self) -> str:
        return f"{self.route.method} {self.route.path}"


def _match_path(pattern: str, path: str) -> dict[str, str] | None:
    want = pattern.strip("/").split("/")
    have = path.strip("/").split("/")
    params: dict[str, str] = {}
    for i, part in enumerate(want):
        if part.startswith("{") and part.endswith("+}"):
            rest = "/".join(have[i:])
            if not rest:
                return None
            params[part[1:-2]] = rest
            return params
        if i >= len(have):
            return None
        if part.startswith("{") and part.endswith("}"):
            if not have[i]:
                return None
            params[part[1:-1]] = have[i]
        elif part != have[i]:
            return None
    return params if len(want) == len(have) else None


def match_route(functions: Iterable[FunctionSpec], method: str, path: str) -> RouteMatch | None:
    """The route API Gateway would choose for ``method path``, or None (its 404)."""
    best: tuple[tuple[int, int, int], RouteMatch] | None = None
    for function in functions:
        for route in function.routes:
            if route.method not in ("ANY", method.upper()):
                continue
            params = _match_path(route.path, path)
            if params is None:
                continue
            greedy = "+}" in route.path
            # exact before greedy, longer literal prefix first, a method before ANY
            rank = (0 if not greedy else 1, -len(route.path), 0 if route.method != "ANY" else 1)
            if best is None or rank < best[0]:
                best = (rank, RouteMatch(function, route, params))
    return best[1] if best else None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str = ""  # the raw query string, without '?'
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    authorizer: Mapping[str, Any] | None = None  # {"iam": {...}} or {"jwt": {"claims": ...}}
    extra: dict[str, Any] = field(default_factory=dict)


def _is_text(content_type: str) -> bool:
    return not content_type or content_type.startswith(_TEXT_TYPES) or "json" in content_type


def _is_utf8(body: bytes) -> bool:
    """A text body that is not UTF-8 cannot travel as a JSON string: API Gateway base64-encodes
    it and sets ``isBase64Encoded``, whatever the content type says."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def http_api_event(request: Request, match: RouteMatch, *, domain: str = "localhost") -> dict[str, Any]:
    """The payload format 2.0 event for ``request`` on ``match``'s route."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    content_type = headers.get("content-type", "")
    text = _is_text(content_type) and _is_utf8(request.body)
    context: dict[str, Any] = {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": domain,
        "domainPrefix": domain.split(".", maxsplit=1)[0],
        "http": {
            "method": request.method.upper(),
            "path": request.path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": match.route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(time.time() * 1000),
    }
    if request.authorizer is not None:
        context["authorizer"] = dict(request.authorizer)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route_key,
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": bool(request.body) and not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    if request.body:
        event["body"] = request.body.decode() if text else base64.b64encode(request.body).decode()
    return event


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def lambda_response(result: Any) -> Response:
    """API Gateway's reading of a handler's answer (payload 2.0): a dict with ``statusCode`` is a
    full response; anything else is a 200 with the value as JSON."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return Response(200, [("content-type", "application/json")], json.dumps(result).encode())
    headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(str(name).lower(), str(v)) for v in values]
    headers += [("set-cookie", str(c)) for c in result.get("cookies") or ()]
    raw = result.get("body")
    body = b"" if raw is None else str(raw).encode()
    if raw is not None and result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    return Response(int(result["statusCode"]), headers, body)


class LocalContext:
    """The Lambda context object the local stack passes to handlers."""

    def __init__(self, function: FunctionSpec) -> None:
        self.function_name = f"qbo-link-{function.name}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + function.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# --- authorizers -----------------------------------------------------------------------------

LOCAL_ACCOUNT_ID = "000000000000"


class UnauthorizedError(Exception):
    """A bearer token API Gateway's JWT authorizer would refuse before any Lambda runs (401)."""


def _b64url_json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError) as error:
        raise UnauthorizedError("the bearer token is not a JWT") from error


def _claim_text(value: Any) -> str:
    # API Gateway hands claims to the integration as strings; a list becomes "[a b]".
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def jwt_claims(token: str) -> dict[str, str]:
    """The claims of a JWT, decoded but NOT verified (the local gateway trusts the caller)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise UnauthorizedError("the bearer token is not a JWT")
    _b64url_json(parts[0])
    claims = _b64url_json(parts[1])
    if not isinstance(claims, dict):
        raise UnauthorizedError("the bearer token's claims are not a JSON object")
    return {str(k): _claim_text(v) for k, v in claims.items()}


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _console_tenant(path: str) -> str:
    """The tenant of a console data call, ``/console/v1/tenants/<tenant>/...``."""
    parts = path.strip("/").split("/")
    return parts[3] if len(parts) > 3 and parts[:3] == ["console", "v1", "tenants"] else ""


def authorizer_for(route: Route, headers: Sequence[tuple[str, str]], path: str = "") -> dict[str, Any] | None:
    """The ``requestContext.authorizer`` API Gateway would add for ``route``, without checking it.

    Public routes get none.  IAM routes get a ``jwt`` context with the claims when the caller sends
    ``Authorization: Bearer <jwt>`` (a deployment with a JWT authorizer), else an ``iam`` context
    naming the access key of a SigV4 ``Authorization`` header (or ``local``).  Nothing is verified:
    locally every caller is trusted.  A bearer token that is not a JWT raises UnauthorizedError.

    Console data calls (``Auth.CONSOLE``, ``path`` their path): with ``Authorization`` none, as
    deployed (the api function verifies the console session); without it, locally, the claims of a
    caller of the path's own tenant, so ``/console/?tenant=<t>`` works with no session at all.
    """
    from infra.manifest import Auth

    if route.auth is Auth.CONSOLE:
        if _header(headers, "authorization") is not None:
            return None
        return {"jwt": {"claims": {"tenant_id": _console_tenant(path)}, "scopes": None}}
    if route.auth is not Auth.IAM:
        return None
    authorization = (_header(headers, "authorization") or "").strip()
    if authorization.lower().startswith("bearer "):
        claims = jwt_claims(authorization[7:].strip())
        scope = claims.get("scope") or claims.get("scp") or ""
        scopes = [s for s in scope.strip("[]").split(" ") if s] or None
        return {"jwt": {"claims": claims, "scopes": scopes}}
    access_key = "local"
    if authorization.startswith("AWS4-HMAC-SHA256") and "Credential=" in authorization:
        access_key = authorization.split("Credential=", 1)[1].split("/", 1)[0].strip() or "local"
    return {
        "iam": {
            "accessKey": access_key,
            "accountId": LOCAL_ACCOUNT_ID,
            "callerId": "local-developer",
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/local-developer",
            "userId": "local-developer",
        }
    }
