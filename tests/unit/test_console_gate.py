"""The api function's console gate (functions/api/console.py) and the console-session route: a session
opens exactly its tenant's /v1 routes under /console; anything else is a 401 or a 403 in the API's
one error shape, before any route runs (no AWS reachable: the connection flows are a stub)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from functions.api import handler
from infra import manifest as stack
from qbo_link_local.gateway import LocalContext, Request, http_api_event, match_route
from shared.connections.console_session import ConsoleSessionCodec
from shared.connections.errors import ReturnUrlError
from shared.connections.oauth_state import check_return_url
from shared.kernel.settings import Settings

KEY = "unit-test-state-signing-key-0123456789"
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())
DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"
ALLOWLIST = ("https://app.example.com/qbo",)


class _Clock:
    def now(self) -> datetime:
        return NOW


class _Flows:
    """The connection flows, as far as these routes reach them."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, tuple[str, ...]]] = []

    def connection_status(self, tenant_id: str) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "connected": True}

    def start_connection(self, tenant_id: str, return_url: str, also_allowed: tuple[str, ...] = ()) -> Any:
        from shared.connections.flows import StartedConnection

        check_return_url(return_url, (*ALLOWLIST, *also_allowed))  # what the flows check
        self.started.append((tenant_id, return_url, tuple(also_allowed)))
        return StartedConnection("https://appcenter.intuit.com/connect/oauth2?state=s", NOW)


@pytest.fixture
def flows(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Flows]:
    from shared import wiring

    stub = _Flows()
    wiring.reset()
    wiring.override(settings=Settings(state_signing_key=SecretStr(KEY)), clock=_Clock())
    monkeypatch.setattr(handler, "_exists", lambda _tenant: True)
    monkeypatch.setattr(wiring, "connections", lambda: stub)
    yield stub
    wiring.reset()


def _token(tenant_id: str = "firm-a", now: int = EPOCH, ttl: int = 3600, key: str = KEY) -> str:
    return ConsoleSessionCodec(key).mint(tenant_id, now, ttl)[0]


def _call(
    method: str,
    path: str,
    *,
    token: str | None = None,
    claims: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    match = match_route(stack.FUNCTIONS, method, path)
    assert match is not None, path
    headers = [("content-type", "application/json")]
    if token is not None:
        headers.append(("authorization", f"Bearer {token}"))
    authorizer = {"jwt": {"claims": claims, "scopes": None}} if claims is not None else None
    raw = json.dumps(body).encode() if body is not None else b""
    request = Request(method, path, headers=headers, body=raw, authorizer=authorizer)
    event = http_api_event(request, match, domain=DOMAIN)
    result: dict[str, Any] = handler.lambda_handler(event, LocalContext(stack.API))
    return result


def _problem(answer: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(answer["body"])
    assert body["statusCode"] == answer["statusCode"]
    [problem] = body["detail"]
    return dict(problem)


def test_the_console_data_route_goes_to_the_api_function_with_the_console_auth() -> None:
    match = match_route(stack.FUNCTIONS, "GET", "/console/v1/tenants/firm-a/connection")
    assert match is not None
    assert match.function is stack.API
    assert match.route.auth is stack.Auth.CONSOLE


def test_a_session_opens_its_tenants_routes_without_cache_or_deprecation(flows: _Flows) -> None:
    answer = _call("GET", "/console/v1/tenants/firm-a/connection", token=_token())

    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"tenant_id": "firm-a", "connected": True}
    assert answer["headers"]["Cache-Control"] == "no-store"
    assert "Deprecation" not in answer["headers"]


def test_a_session_reaches_no_other_tenant(flows: _Flows) -> None:
    answer = _call("GET", "/console/v1/tenants/firm-b/connection", token=_token("firm-a"))
    assert answer["statusCode"] == 403
    assert _problem(answer)["type"] == "tenant_mismatch"
    assert answer["headers"]["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/console/v1/tenants/", "/console/v1/tenants/%20"])
def test_a_session_cannot_list_tenants(flows: _Flows, path: str) -> None:
    event_path = path
    match = match_route(stack.FUNCTIONS, "GET", "/console/v1/tenants/x")
    assert match is not None
    headers = [("authorization", f"Bearer {_token()}")]
    event = http_api_event(Request("GET", event_path, headers=headers), match, domain=DOMAIN)
    answer = handler.lambda_handler(event, LocalContext(stack.API))
    assert answer["statusCode"] == 403


@pytest.mark.parametrize(
    ("token", "kind", "challenge"),
    [
        (None, "session_missing", "Bearer"),
        ("", "session_missing", "Bearer"),
        ("not-a-token", "session_invalid", 'Bearer error="invalid_token"'),
        (_token(now=EPOCH - 3600), "session_expired", 'Bearer error="invalid_token"'),
        (_token(key="an-attackers-own-signing-key-xyz"), "session_invalid", 'Bearer error="invalid_token"'),
        (_token()[:-2] + "AA", "session_invalid", 'Bearer error="invalid_token"'),
    ],
    ids=["missing", "empty", "malformed", "expired", "other-key", "tampered"],
)
def test_no_valid_session_is_a_401_in_the_one_error_shape(
    flows: _Flows, token: str | None, kind: str, challenge: str
) -> None:
    answer = _call("GET", "/console/v1/tenants/firm-a/connection", token=token)

    assert answer["statusCode"] == 401
    assert answer["headers"]["WWW-Authenticate"] == challenge
    assert answer["headers"]["Cache-Control"] == "no-store"
    problem = _problem(answer)
    assert problem["loc"] == ["header", "authorization"]
    assert problem["type"] == kind
    assert token is None or not token or token not in answer["body"]


def test_a_jwt_callers_claims_are_taken_instead_of_a_session(flows: _Flows) -> None:
    """The JWT API's console route: API Gateway verified the host's own tenant JWT."""
    own = _call("GET", "/console/v1/tenants/firm-a/connection", claims={"tenant_id": "firm-a"})
    other = _call("GET", "/console/v1/tenants/firm-b/connection", claims={"tenant_id": "firm-a"})

    assert own["statusCode"] == 200
    assert other["statusCode"] == 403
    assert _problem(other)["type"] == "tenant_mismatch"


def test_the_iam_route_never_takes_a_session_token(flows: _Flows) -> None:
    """A session token sent to the plain /v1 route is not a credential there (IAM decides)."""
    answer = _call("GET", "/v1/tenants/firm-a/connection", token=_token("firm-a"))
    assert answer["statusCode"] == 200  # the IAM caller: no tenant confinement, no session read
    assert "Cache-Control" not in answer["headers"]


# --- minting --------------------------------------------------------------------------------------


def test_the_backend_mints_a_session_for_the_fragment(flows: _Flows) -> None:
    from functions.api.answers import ConsoleSessionAnswer

    answer = _call("POST", "/v1/tenants/firm-a/console-sessions", body={"ttl_seconds": 600})

    assert answer["statusCode"] == 201
    body = ConsoleSessionAnswer.model_validate(json.loads(answer["body"])).model_dump()
    assert body["tenant_id"] == "firm-a"
    assert body["expires_at"] == "2027-03-01T12:10:00Z"
    assert body["path"] == f"/console/#tenant=firm-a&session={body['token']}"
    session = ConsoleSessionCodec(KEY).verify(body["token"], EPOCH)
    assert (session.tenant_id, session.expires_at) == ("firm-a", EPOCH + 600)
    opened = _call("GET", "/console/v1/tenants/firm-a/connection", token=body["token"])
    assert opened["statusCode"] == 200


def test_the_ttl_defaults_to_an_hour(flows: _Flows) -> None:
    answer = _call("POST", "/v1/tenants/firm-a/console-sessions", body={})
    assert json.loads(answer["body"])["expires_at"] == "2027-03-01T13:00:00Z"


@pytest.mark.parametrize("ttl", [59, 43201, 0, -1, "soon", 3600.5])
def test_a_ttl_out_of_bounds_is_a_422(flows: _Flows, ttl: Any) -> None:
    answer = _call("POST", "/v1/tenants/firm-a/console-sessions", body={"ttl_seconds": ttl})
    assert answer["statusCode"] == 422
    assert _problem(answer)["loc"] == ["body", "ttl_seconds"]


def test_a_jwt_caller_mints_for_its_own_tenant_only(flows: _Flows) -> None:
    own = _call("POST", "/v1/tenants/firm-a/console-sessions", body={}, claims={"tenant_id": "firm-a"})
    other = _call("POST", "/v1/tenants/firm-b/console-sessions", body={}, claims={"tenant_id": "firm-a"})
    assert own["statusCode"] == 201
    assert other["statusCode"] == 403


def test_a_console_session_cannot_mint_another(flows: _Flows) -> None:
    answer = _call("POST", "/console/v1/tenants/firm-a/console-sessions", body={}, token=_token())
    assert answer["statusCode"] == 403
    assert _problem(answer)["type"] == "console_cannot_mint"


# --- connecting from the console -------------------------------------------------------------------


def test_the_console_may_return_to_its_own_url_on_this_api(flows: _Flows) -> None:
    url = f"https://{DOMAIN}/console/?tenant=firm-a"
    answer = _call("POST", "/console/v1/tenants/firm-a/connection", token=_token(), body={"return_url": url})
    assert answer["statusCode"] == 201, answer["body"]
    assert flows.started == [("firm-a", url, (f"https://{DOMAIN}/console/",))]


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/console/",
        f"https://{DOMAIN}.evil/console/",
        f"http://{DOMAIN}/console/",
        f"https://{DOMAIN}:8443/console/",
        f"https://{DOMAIN}/consolex/",
        f"https://{DOMAIN}/v1/tenants/firm-a/connection",
        f"https://{DOMAIN}/console/../oauth/callback",
        f"https://user@{DOMAIN}/console/",
    ],
)
def test_a_look_alike_of_the_console_url_is_refused(flows: _Flows, url: str) -> None:
    answer = _call("POST", "/console/v1/tenants/firm-a/connection", token=_token(), body={"return_url": url})
    assert answer["statusCode"] == 422
    assert _problem(answer)["type"] == "return_url_not_allowed"


def test_the_console_url_is_no_return_url_for_the_backends_own_calls(flows: _Flows) -> None:
    answer = _call("POST", "/v1/tenants/firm-a/connection", body={"return_url": f"https://{DOMAIN}/console/"})
    assert answer["statusCode"] == 422
    with pytest.raises(ReturnUrlError):
        check_return_url(f"https://{DOMAIN}/console/", ALLOWLIST)
