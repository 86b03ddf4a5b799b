"""IntuitOAuth (authlib on httpx2) and the environments, against the sandbox over real sockets.

Intuit's own hosts are never contacted: production and Intuit-sandbox discovery are served by an
httpx2 MockTransport, which is also how faults the sandbox cannot produce (5xx, garbage) are made.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from qbo_sandbox.server import SandboxServer
from shared.kernel.clock import SystemClock
from shared.kernel.settings import IntuitEnvironment, Settings, SettingsError
from shared.qbo import environment
from shared.qbo.environment import IntuitEndpoints, endpoints_for
from shared.qbo.oauth import (
    ACCOUNTING_SCOPE,
    HARD_EXPIRY_HEADER,
    IntuitOAuth,
    OAuthClientError,
    OAuthGrantError,
    OAuthServiceError,
    TokenSet,
)

REDIRECT = "http://127.0.0.1:8765/callback"
HARD_LIFE = 157_680_000
REFRESH_LIFE = 8_726_400


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_endpoint_cache() -> Iterator[None]:
    environment.clear_endpoint_cache()
    yield
    environment.clear_endpoint_cache()


def make_settings(server: SandboxServer | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "client_id": server.sandbox.settings.client_id if server else "app-client",
        "client_secret": server.sandbox.settings.client_secret if server else "app-secret",
        "redirect_uri": REDIRECT,
        "state_signing_key": "k" * 32,
        "app_id": "app-123",
        "intuit_environment": IntuitEnvironment.LOCAL,
        "http_timeout_seconds": 10,
    }
    if server is not None:
        values["local_sandbox_url"] = server.url
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def settings(sandbox_server: SandboxServer) -> Settings:
    return make_settings(sandbox_server)


@pytest.fixture
def oauth(sandbox_server: SandboxServer, settings: Settings) -> IntuitOAuth:
    return IntuitOAuth(settings, endpoints_for(settings), clock=sandbox_server.sandbox.clock)


def consent(url: str) -> dict[str, str]:
    """Follow the consent redirect by hand, as the browser would; the callback's parameters."""
    answer = httpx2.get(url, follow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def company_info(server: SandboxServer, realm: str, token: str) -> httpx2.Response:
    return httpx2.get(
        f"{server.url}/v3/company/{realm}/companyinfo/{realm}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        params={"minorversion": "75"},
        timeout=10,
    )


def oauth_counters(server: SandboxServer) -> dict[str, int]:
    answer = httpx2.get(f"{server.url}/_sandbox/counters", timeout=10)
    return dict(answer.json().get("oauth", {}))


def mock_oauth(handler: Callable[[httpx2.Request], httpx2.Response]) -> IntuitOAuth:
    settings = make_settings(intuit_environment=IntuitEnvironment.PRODUCTION)
    endpoints = IntuitEndpoints(
        authorization_endpoint=environment.AUTHORIZATION_ENDPOINT,
        token_endpoint=environment.TOKEN_ENDPOINT,
        revocation_endpoint=environment.REVOCATION_ENDPOINT,
        api_base_url=environment.PRODUCTION_API_BASE_URL,
        reconnect_url_template=environment.RECONNECT_URL_TEMPLATE,
    )
    factory = functools.partial(OAuth2Client, transport=httpx2.MockTransport(handler))

    class _Clock:
        def now(self) -> datetime:
            return datetime(2026, 11, 22, tzinfo=UTC)

    return IntuitOAuth(settings, endpoints, clock=_Clock(), http_factory=factory)


# --- the whole flow against the sandbox ---------------------------------------------------------


def test_authorization_url_names_app_scope_redirect_and_state(oauth: IntuitOAuth, settings: Settings) -> None:
    url = oauth.authorization_url("state-abc")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert url.startswith(settings.local_sandbox_url + "/connect/oauth2?")
    assert query == {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": REDIRECT,
        "scope": ACCOUNTING_SCOPE,
        "state": "state-abc",
    }


def test_a_pkce_challenge_binds_the_code_to_its_verifier(oauth: IntuitOAuth) -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
    url = oauth.authorization_url("s-pkce", code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    query = parse_qs(urlsplit(url).query)
    assert (query["code_challenge_method"], query["code_challenge"]) == (
        ["S256"],
        ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"],
    )
    code = consent(url)["code"]

    with pytest.raises(OAuthGrantError):
        oauth.exchange_code(code)  # no verifier: the sandbox, like any RFC 7636 server, refuses
    assert oauth.exchange_code(code, code_verifier=verifier).access_token.get_secret_value()


def test_consent_exchange_refresh_revoke(sandbox_server: SandboxServer, oauth: IntuitOAuth) -> None:
    clock = sandbox_server.sandbox.clock
    # Given a user who consents
    callback = consent(oauth.authorization_url("s-1"))
    assert callback["state"] == "s-1"
    realm = callback["realmId"]

    # When the code is exchanged
    before = clock.now()
    first = oauth.exchange_code(callback["code"])

    # Then the token set carries instants on the sandbox clock, the hard expiry and intuit_tid
    after = clock.now()
    assert before + timedelta(seconds=3600) <= first.access_expires_at <= after + timedelta(seconds=3600)
    assert first.refresh_expires_at >= before + timedelta(seconds=REFRESH_LIFE - 1)
    assert first.hard_expires_at is not None
    assert first.hard_expires_at >= before + timedelta(seconds=HARD_LIFE - 2)
    assert first.intuit_tid
    assert company_info(sandbox_server, realm, first.access_token.get_secret_value()).status_code == 200
    assert oauth_counters(sandbox_server).get("authorization_code") == 1

    # When the refresh token is used: the chain rotates and the new access token works
    second = oauth.refresh(first.refresh_token.get_secret_value())
    assert second.refresh_token.get_secret_value() != first.refresh_token.get_secret_value()
    assert second.access_token.get_secret_value() != first.access_token.get_secret_value()
    assert second.hard_expires_at is not None
    assert abs((second.hard_expires_at - first.hard_expires_at).total_seconds()) <= 2
    assert company_info(sandbox_server, realm, second.access_token.get_secret_value()).status_code == 200
    assert oauth_counters(sandbox_server).get("refresh_token") == 1

    # When the grant is revoked: the access token is refused and refreshing is invalid_grant
    oauth.revoke(second.refresh_token.get_secret_value())
    assert company_info(sandbox_server, realm, second.access_token.get_secret_value()).status_code == 401
    with pytest.raises(OAuthGrantError) as caught:
        oauth.refresh(second.refresh_token.get_secret_value())
    assert caught.value.error == "invalid_grant"
    assert caught.value.intuit_tid
    assert not caught.value.retryable
    assert second.refresh_token.get_secret_value() not in str(caught.value)
    # Revoking again is harmless (RFC 7009), which keeps disconnecting idempotent.
    oauth.revoke(second.refresh_token.get_secret_value())


def test_reused_code_is_a_grant_error(oauth: IntuitOAuth) -> None:
    code = consent(oauth.authorization_url("s"))["code"]
    oauth.exchange_code(code)
    with pytest.raises(OAuthGrantError) as caught:
        oauth.exchange_code(code)
    assert caught.value.description
    assert code not in str(caught.value)


def test_wrong_client_secret_is_a_client_error(sandbox_server: SandboxServer) -> None:
    settings = make_settings(sandbox_server, client_secret="not-the-secret")
    oauth = IntuitOAuth(settings, endpoints_for(settings), clock=sandbox_server.sandbox.clock)
    code = consent(oauth.authorization_url("s"))["code"]
    with pytest.raises(OAuthClientError) as caught:
        oauth.exchange_code(code)
    assert caught.value.error == "invalid_client"
    assert caught.value.intuit_tid
    assert not caught.value.retryable


def test_dead_refresh_token_is_a_grant_error(sandbox_server: SandboxServer, oauth: IntuitOAuth) -> None:
    tokens = oauth.exchange_code(consent(oauth.authorization_url("s"))["code"])
    sandbox_server.sandbox.clock.advance(REFRESH_LIFE + 1)  # unused for ~101 days
    with pytest.raises(OAuthGrantError):
        oauth.refresh(tokens.refresh_token.get_secret_value())


def test_token_set_never_shows_its_tokens(oauth: IntuitOAuth) -> None:
    tokens = oauth.exchange_code(consent(oauth.authorization_url("s"))["code"])
    for text in (repr(tokens), str(tokens), tokens.model_dump_json()):
        assert tokens.access_token.get_secret_value() not in text
        assert tokens.refresh_token.get_secret_value() not in text


def test_reconnect_url(oauth: IntuitOAuth, settings: Settings) -> None:
    url = oauth.reconnect_url("9341")
    assert url.startswith(settings.local_sandbox_url + "/app/connect/oauth2/request?")
    assert parse_qs(urlsplit(url).query) == {"appId": ["app-123"], "realmId": ["9341"], "mode": ["reconnect"]}


# --- the wire, seen from a mock transport --------------------------------------------------------


def token_answer(**extra: Any) -> dict[str, Any]:
    return {
        "access_token": "access-value",
        "refresh_token": "refresh-value",
        "token_type": "bearer",
        "expires_in": 3600,
        "x_refresh_token_expires_in": REFRESH_LIFE,
        **extra,
    }


def test_requests_use_basic_auth_form_body_and_the_hard_expiry_header() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.path.endswith("/revoke"):
            return httpx2.Response(200)
        return httpx2.Response(
            200, json=token_answer(x_refresh_token_hard_expires_in=100), headers={"intuit_tid": "t"}
        )

    oauth = mock_oauth(handler)
    exchanged = oauth.exchange_code("the-code")
    refreshed = oauth.refresh("old-refresh")
    oauth.revoke("refresh-value")

    expected_auth = "Basic " + base64.b64encode(b"app-client:app-secret").decode()
    exchange, refresh, revoke = seen
    for request in (exchange, refresh):
        assert str(request.url) == environment.TOKEN_ENDPOINT
        assert request.headers["authorization"] == expected_auth
        assert request.headers[HARD_EXPIRY_HEADER] == "true"
        assert request.headers["accept"] == "application/json"
    assert parse_qs(exchange.content.decode()) == {
        "grant_type": ["authorization_code"],
        "code": ["the-code"],
        "redirect_uri": [REDIRECT],
    }
    assert parse_qs(refresh.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["old-refresh"],
    }
    assert str(revoke.url) == environment.REVOCATION_ENDPOINT
    assert revoke.headers["authorization"] == expected_auth
    assert json.loads(revoke.content) == {"token": "refresh-value"}
    assert exchanged.hard_expires_at == exchanged.access_expires_at - timedelta(seconds=3500)
    assert refreshed.intuit_tid == "t"


def test_answer_without_hard_expiry_leaves_it_unknown() -> None:
    oauth = mock_oauth(lambda _request: httpx2.Response(200, json=token_answer()))
    assert oauth.refresh("r").hard_expires_at is None


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx2.Response(503, text="<html>busy</html>", headers={"intuit_tid": "t5"}), "http_503"),
        (httpx2.Response(200, text="not json"), "invalid_response"),
        (httpx2.Response(200, json={"token_type": "bearer"}), "invalid_response"),
        (
            httpx2.Response(400, json={"error": "invalid_request", "error_description": "x"}),
            "invalid_request",
        ),
    ],
)
def test_other_failures_are_retryable_service_errors(response: httpx2.Response, error: str) -> None:
    oauth = mock_oauth(lambda _request: response)
    with pytest.raises(OAuthServiceError) as caught:
        oauth.refresh("r")
    assert caught.value.error == error
    assert caught.value.retryable


def test_network_failure_is_a_service_error() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    oauth = mock_oauth(handler)
    with pytest.raises(OAuthServiceError) as caught:
        oauth.refresh("r")
    assert caught.value.error == "network_error"
    with pytest.raises(OAuthServiceError):
        oauth.revoke("r")


def test_revoke_refused_is_classified() -> None:
    oauth = mock_oauth(
        lambda _r: httpx2.Response(401, json={"error": "invalid_client"}, headers={"intuit_tid": "x"})
    )
    with pytest.raises(OAuthClientError) as caught:
        oauth.revoke("r")
    assert caught.value.intuit_tid == "x"


# --- environments ---------------------------------------------------------------------------------


def counting_client(handler: Callable[[httpx2.Request], httpx2.Response]) -> tuple[httpx2.Client, list[str]]:
    urls: list[str] = []

    def wrapped(request: httpx2.Request) -> httpx2.Response:
        urls.append(str(request.url))
        return handler(request)

    return httpx2.Client(transport=httpx2.MockTransport(wrapped)), urls


INTUIT_DOCUMENT = {
    "issuer": "https://oauth.platform.intuit.com/op/v1",
    "authorization_endpoint": "https://appcenter.intuit.com/connect/oauth2/discovered",
    "token_endpoint": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer/discovered",
    "revocation_endpoint": "https://developer.api.intuit.com/v2/oauth2/tokens/revoke/discovered",
}


@pytest.mark.parametrize(
    ("env", "discovery", "api"),
    [
        (
            IntuitEnvironment.PRODUCTION,
            environment.PRODUCTION_DISCOVERY_URL,
            "https://quickbooks.api.intuit.com",
        ),
        (
            IntuitEnvironment.SANDBOX,
            environment.SANDBOX_DISCOVERY_URL,
            "https://sandbox-quickbooks.api.intuit.com",
        ),
    ],
)
def test_intuit_environments_use_their_discovery_document(
    env: IntuitEnvironment, discovery: str, api: str
) -> None:
    http, urls = counting_client(lambda _r: httpx2.Response(200, json=INTUIT_DOCUMENT))
    settings = make_settings(intuit_environment=env)
    endpoints = endpoints_for(settings, http)
    assert urls == [discovery]
    assert endpoints.discovered
    assert endpoints.authorization_endpoint == INTUIT_DOCUMENT["authorization_endpoint"]
    assert endpoints.token_endpoint == INTUIT_DOCUMENT["token_endpoint"]
    assert endpoints.revocation_endpoint == INTUIT_DOCUMENT["revocation_endpoint"]
    assert endpoints.api_base_url == api
    assert endpoints.reconnect_url("app-1", "42") == (
        "https://appcenter.intuit.com/app/connect/oauth2/request?appId=app-1&realmId=42&mode=reconnect"
    )
    # Cached per (environment, URL): a second call does not fetch again.
    assert endpoints_for(settings, http) is endpoints
    assert len(urls) == 1


@pytest.mark.parametrize(
    "answer",
    [
        lambda _r: httpx2.Response(500, text="down"),
        lambda _r: httpx2.Response(200, text="<html>"),
        lambda _r: httpx2.Response(200, json={**INTUIT_DOCUMENT, "token_endpoint": "http://plain.example/t"}),
        lambda _r: httpx2.Response(200, json=["not", "an", "object"]),
    ],
)
def test_discovery_failure_falls_back_to_documented_endpoints(
    answer: Callable[[httpx2.Request], httpx2.Response],
) -> None:
    http, urls = counting_client(answer)
    endpoints = endpoints_for(make_settings(intuit_environment=IntuitEnvironment.PRODUCTION), http)
    assert not endpoints.discovered
    assert endpoints.authorization_endpoint == "https://appcenter.intuit.com/connect/oauth2"
    assert endpoints.token_endpoint == "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    assert endpoints.revocation_endpoint == "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
    assert endpoints.api_base_url == "https://quickbooks.api.intuit.com"
    assert len(urls) == 1


def test_network_failure_during_discovery_falls_back() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("no route", request=request)

    http, _ = counting_client(refuse)
    endpoints = endpoints_for(make_settings(intuit_environment=IntuitEnvironment.SANDBOX), http)
    assert not endpoints.discovered
    assert endpoints.api_base_url == "https://sandbox-quickbooks.api.intuit.com"


def test_local_environment_discovers_the_sandbox(sandbox_server: SandboxServer) -> None:
    settings = make_settings(sandbox_server)
    endpoints = endpoints_for(settings)
    assert endpoints.discovered
    assert endpoints.authorization_endpoint == sandbox_server.url + "/connect/oauth2"
    assert endpoints.token_endpoint == sandbox_server.url + "/oauth2/v1/tokens/bearer"
    assert endpoints.revocation_endpoint == sandbox_server.url + "/v2/oauth2/tokens/revoke"
    assert endpoints.api_base_url == sandbox_server.url
    assert endpoints_for(settings) is endpoints
    # Another sandbox URL is another cache entry.
    other = make_settings(sandbox_server, local_sandbox_url="http://127.0.0.1:9")
    assert endpoints_for(other) is not endpoints


def test_token_set_from_response_computes_instants() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tokens = TokenSet.from_response(token_answer(x_refresh_token_hard_expires_in=86_400), now, "tid")
    assert tokens.access_expires_at == now + timedelta(hours=1)
    assert tokens.refresh_expires_at == now + timedelta(seconds=REFRESH_LIFE)
    assert tokens.hard_expires_at == now + timedelta(days=1)
    assert tokens.intuit_tid == "tid"
    with pytest.raises(OAuthServiceError):
        TokenSet.from_response({"access_token": "a"}, now)


@pytest.mark.parametrize("missing", ["client_id", "client_secret", "redirect_uri"])
def test_oauth_refuses_to_start_without_the_apps_keys_or_callback(missing: str) -> None:
    # Functions that never call Intuit (the sweep) are deployed without the keys; one that does must
    # say which is missing rather than fail later inside a token call.
    settings = make_settings(None, **{missing: ""})
    with pytest.raises(SettingsError, match=missing):
        IntuitOAuth(settings, endpoints_for(settings), clock=SystemClock())
