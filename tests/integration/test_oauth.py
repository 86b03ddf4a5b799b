"""Intuit's OAuth 2.0 as the sandbox emulates it, driven over real sockets."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from qbo_sandbox.faults import QboFault
from qbo_sandbox.server import SandboxServer
from qbo_sandbox.wire import Request

ACCOUNTING = "com.intuit.quickbooks.accounting"
REDIRECT = "http://127.0.0.1:8765/callback"
TOKEN = "/oauth2/v1/tokens/bearer"
REVOKE = "/v2/oauth2/tokens/revoke"
HARD_HEADER = {"x-include-refresh-token-hard-expires-in": "true"}
REFRESH_LIFE = 8_726_400
HARD_LIFE = 157_680_000
INTUIT_DISCOVERY_FIELDS = {
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "scopes_supported",
    "token_endpoint_auth_methods_supported",
    "claims_supported",
}


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def http(sandbox_server: SandboxServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=sandbox_server.url, timeout=10) as client:
        yield client


def creds(server: SandboxServer) -> tuple[str, str]:
    return server.sandbox.settings.client_id, server.sandbox.settings.client_secret


def authorize(http: httpx2.Client, server: SandboxServer, **overrides: str | None) -> httpx2.Response:
    params: dict[str, str | None] = {
        "client_id": server.sandbox.settings.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": ACCOUNTING,
        "state": "state-123",
    }
    params.update(overrides)
    return http.get("/connect/oauth2", params={k: v for k, v in params.items() if v is not None})


def callback(response: httpx2.Response, redirect_uri: str = REDIRECT) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri.split("?", maxsplit=1)[0] + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def new_code(http: httpx2.Client, server: SandboxServer, **overrides: str | None) -> tuple[str, str]:
    params = callback(authorize(http, server, **overrides))
    return params["code"], params["realmId"]


def exchange(
    http: httpx2.Client,
    server: SandboxServer,
    code: str,
    redirect_uri: str = REDIRECT,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    return http.post(
        TOKEN,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        auth=creds(server),
        headers=headers,
    )


def refresh(
    http: httpx2.Client, server: SandboxServer, refresh_token: str, headers: dict[str, str] | None = None
) -> httpx2.Response:
    return http.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=creds(server),
        headers=headers,
    )


def connect(http: httpx2.Client, server: SandboxServer) -> tuple[dict[str, Any], str]:
    code, realm = new_code(http, server)
    response = exchange(http, server, code)
    assert response.status_code == 200, response.text
    return response.json(), realm


def assert_oauth_error(response: httpx2.Response, error: str, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"
    assert response.headers.get("intuit_tid")
    return str(body.get("error_description", ""))


def api_request(token: str | None, realm: str) -> Request:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return Request("GET", f"/v3/company/{realm}/companyinfo/{realm}", {}, headers, b"")


def auth_fault(server: SandboxServer, token: str | None, realm: str) -> QboFault | None:
    try:
        server.sandbox.oauth.authenticate(api_request(token, realm), realm)
    except QboFault as fault:
        return fault
    return None


def advance(server: SandboxServer, seconds: float) -> None:
    server.sandbox.clock.advance(seconds)


# --- discovery --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/openid_configuration",
        "/.well-known/openid-configuration",
        "/.well-known/openid_sandbox_configuration/",
        "/.well-known/openid-sandbox-configuration",
    ],
)
def test_discovery_names_the_sandbox_endpoints(
    http: httpx2.Client, sandbox_server: SandboxServer, path: str
) -> None:
    response = http.get(path)

    assert response.status_code == 200
    doc = response.json()
    assert set(doc) == INTUIT_DISCOVERY_FIELDS
    base = sandbox_server.url
    assert doc["authorization_endpoint"] == base + "/connect/oauth2"
    assert doc["token_endpoint"] == base + TOKEN
    assert doc["revocation_endpoint"] == base + REVOKE
    assert doc["issuer"] == base + "/op/v1"
    assert doc["response_types_supported"] == ["code"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    assert http.get(urlsplit(doc["jwks_uri"]).path).json() == {"keys": []}


# --- the whole flow with a real OAuth client --------------------------------------------------


def test_full_flow_with_authlib(sandbox_server: SandboxServer) -> None:
    doc = httpx2.get(sandbox_server.url + "/.well-known/openid_sandbox_configuration").json()
    client_id, secret = creds(sandbox_server)
    with OAuth2Client(
        client_id=client_id,
        client_secret=secret,
        scope=ACCOUNTING,
        redirect_uri=REDIRECT,
        token_endpoint_auth_method="client_secret_basic",
    ) as client:
        url, state = client.create_authorization_url(doc["authorization_endpoint"])
        consent = client.request("GET", url, withhold_token=True)
        realm = callback(consent)["realmId"]

        token = client.fetch_token(
            doc["token_endpoint"], authorization_response=consent.headers["location"], state=state
        )
        assert token["token_type"] == "bearer"
        assert auth_fault(sandbox_server, token["access_token"], realm) is None
        company = sandbox_server.sandbox.company(realm)
        assert company is not None
        assert company.country == "US"

        rotated = client.refresh_token(doc["token_endpoint"])
        assert rotated["refresh_token"] != token["refresh_token"]
        assert rotated["access_token"] != token["access_token"]

        revoked = client.revoke_token(doc["revocation_endpoint"], token=rotated["refresh_token"])
        assert revoked.status_code == 200

        with pytest.raises(OAuthError) as failure:
            client.refresh_token(doc["token_endpoint"])
        assert failure.value.error == "invalid_grant"
        assert auth_fault(sandbox_server, rotated["access_token"], realm) is not None


# --- authorize --------------------------------------------------------------------------------


def test_authorize_redirects_with_code_state_and_realm(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    redirect = REDIRECT + "?tenant=t1"

    params = callback(authorize(http, sandbox_server, redirect_uri=redirect, state="xyz"), redirect)

    assert set(params) == {"tenant", "code", "state", "realmId"}
    assert params["tenant"] == "t1"
    assert params["state"] == "xyz"
    assert 20 <= len(params["code"]) <= 512
    assert sandbox_server.sandbox.company(params["realmId"]) is not None
    # Another consent gets another company and an unrelated code.
    again = callback(authorize(http, sandbox_server, state=None))
    assert "state" not in again
    assert again["realmId"] != params["realmId"]
    assert again["code"] != params["code"]


@pytest.mark.parametrize("client_id", [None, "", "someone-else", "cliént"])
def test_authorize_unknown_client_is_an_error_page_without_redirect(
    http: httpx2.Client, sandbox_server: SandboxServer, client_id: str | None
) -> None:
    response = authorize(http, sandbox_server, client_id=client_id)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert sandbox_server.sandbox.companies == {}


@pytest.mark.parametrize(
    "redirect_uri",
    [
        None,
        "https://evil.example.com/callback",
        "https://app.example.com/callback/extra",
        "http://127.0.0.1:8765/callback#fragment",
    ],
)
def test_authorize_unregistered_redirect_uri_is_not_followed(
    http: httpx2.Client, sandbox_server: SandboxServer, redirect_uri: str | None
) -> None:
    sandbox_server.sandbox.settings.redirect_uris.append("https://app.example.com/callback")

    response = authorize(http, sandbox_server, redirect_uri=redirect_uri)

    assert response.status_code == 400
    assert "location" not in response.headers


def test_authorize_exact_redirect_uri_entry_matches(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    sandbox_server.sandbox.settings.redirect_uris = ["https://app.example.com/callback"]

    params = callback(
        authorize(http, sandbox_server, redirect_uri="https://app.example.com/callback"),
        "https://app.example.com/callback",
    )

    assert "code" in params


@pytest.mark.parametrize(
    ("response_type", "error"), [(None, "invalid_request"), ("token", "unsupported_response_type")]
)
def test_authorize_bad_response_type_redirects_with_error(
    http: httpx2.Client, sandbox_server: SandboxServer, response_type: str | None, error: str
) -> None:
    params = callback(authorize(http, sandbox_server, response_type=response_type))

    assert params["error"] == error
    assert params["state"] == "state-123"
    assert "code" not in params


@pytest.mark.parametrize(
    "scope",
    [None, "", "openid", f"openid {ACCOUNTING}", "com.intuit.quickbooks.payment", f"{ACCOUNTING} bogus"],
)
def test_authorize_bad_scope_redirects_with_invalid_scope(
    http: httpx2.Client, sandbox_server: SandboxServer, scope: str | None
) -> None:
    params = callback(authorize(http, sandbox_server, scope=scope))

    assert params["error"] == "invalid_scope"
    assert params["error_description"]
    assert params["state"] == "state-123"
    assert "code" not in params
    assert sandbox_server.sandbox.companies == {}


def test_authorize_accepts_accounting_with_payment_scope(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    code, realm = new_code(http, sandbox_server, scope=f"{ACCOUNTING} com.intuit.quickbooks.payment")

    assert exchange(http, sandbox_server, code).status_code == 200
    [grant] = sandbox_server.sandbox.oauth.controls.grants(realm)
    assert grant["scopes"] == [ACCOUNTING, "com.intuit.quickbooks.payment"]


def test_consent_denied_by_query_parameter(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    params = callback(authorize(http, sandbox_server, sandbox_consent="deny"))

    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"
    assert "code" not in params
    assert "realmId" not in params
    assert sandbox_server.sandbox.companies == {}


def test_consent_denied_by_control_endpoint_for_the_next_n(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    armed = http.post("/_sandbox/oauth/deny-consents", json={"count": 2})
    assert armed.status_code == 200
    assert armed.json() == {"deny_next": 2}

    outcomes = [callback(authorize(http, sandbox_server)) for _ in range(3)]

    assert [p.get("error") for p in outcomes] == ["access_denied", "access_denied", None]
    assert "code" in outcomes[2]
    assert len(sandbox_server.sandbox.companies) == 1


def test_deny_consents_can_be_cancelled(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    http.post("/_sandbox/oauth/deny-consents", json={"count": 5})
    http.post("/_sandbox/oauth/deny-consents", json={"count": 0})

    assert "code" in callback(authorize(http, sandbox_server))


def test_consent_to_an_existing_realm_or_a_new_company_of_a_country(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    existing = sandbox_server.sandbox.create_company()

    chosen = callback(authorize(http, sandbox_server, realmId=existing.realm_id))
    canadian = callback(authorize(http, sandbox_server, sandbox_country="CA"))
    unknown = callback(authorize(http, sandbox_server, realmId="123"))
    bad_country = callback(authorize(http, sandbox_server, sandbox_country="FR"))

    assert chosen["realmId"] == existing.realm_id
    ca_company = sandbox_server.sandbox.company(canadian["realmId"])
    assert ca_company is not None
    assert ca_company.country == "CA"
    assert unknown["error"] == "invalid_request"
    assert bad_country["error"] == "invalid_request"
    assert len(sandbox_server.sandbox.companies) == 2


# --- code exchange ----------------------------------------------------------------------------


def test_code_exchange_answers_intuits_token_response(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    code, realm = new_code(http, sandbox_server)

    response = exchange(http, sandbox_server, code)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers.get("intuit_tid")
    body = response.json()
    assert set(body) == {
        "token_type",
        "expires_in",
        "refresh_token",
        "x_refresh_token_expires_in",
        "access_token",
    }
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert REFRESH_LIFE - 2 <= body["x_refresh_token_expires_in"] <= REFRESH_LIFE
    assert body["access_token"] != body["refresh_token"]
    assert auth_fault(sandbox_server, body["access_token"], realm) is None


def test_code_exchange_accepts_client_secret_post(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    code, _ = new_code(http, sandbox_server)
    client_id, secret = creds(sandbox_server)

    response = http.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "client_secret": secret,
        },
    )

    assert response.status_code == 200
    assert "access_token" in response.json()


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.mark.parametrize(
    "authorization",
    [
        basic("qbo-link-sandbox-client", "wrong-secret"),
        basic("someone-else", "qbo-link-sandbox-secret"),
        basic("qbo-link-sandbox-client", ""),
        None,
        "Basic not-base64!",
        "Bearer abc",
    ],
)
def test_token_endpoint_rejects_a_wrong_client(
    http: httpx2.Client, sandbox_server: SandboxServer, authorization: str | None
) -> None:
    code, _ = new_code(http, sandbox_server)
    headers = {"authorization": authorization} if authorization is not None else {}

    response = http.post(
        TOKEN,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=headers,
    )

    assert_oauth_error(response, "invalid_client", status=401)
    assert "www-authenticate" in response.headers
    # The code was not spent by the refused call.
    assert exchange(http, sandbox_server, code).status_code == 200


def test_two_client_authentication_methods_are_refused(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    code, _ = new_code(http, sandbox_server)
    client_id, secret = creds(sandbox_server)

    response = http.post(
        TOKEN,
        auth=(client_id, secret),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_secret": secret,
        },
    )

    assert_oauth_error(response, "invalid_request")


def test_reused_code_is_invalid_grant_and_revokes_the_first_pair(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    code, realm = new_code(http, sandbox_server)
    first = exchange(http, sandbox_server, code).json()

    again = exchange(http, sandbox_server, code)

    assert "already" in assert_oauth_error(again, "invalid_grant")
    assert_oauth_error(refresh(http, sandbox_server, first["refresh_token"]), "invalid_grant")
    fault = auth_fault(sandbox_server, first["access_token"], realm)
    assert fault is not None
    assert fault.status == 401
    [grant] = sandbox_server.sandbox.oauth.controls.grants(realm)
    assert grant["revoked"] is True
    assert grant["revoked_reason"] == "authorization code reused"


def test_unknown_code_is_invalid_grant(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    response = exchange(http, sandbox_server, "AB11not-a-code")

    assert_oauth_error(response, "invalid_grant")


def test_code_expires_after_ten_minutes(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    fresh, _ = new_code(http, sandbox_server)
    stale, _ = new_code(http, sandbox_server)

    advance(sandbox_server, 599)
    assert exchange(http, sandbox_server, fresh).status_code == 200
    advance(sandbox_server, 2)

    assert "expired" in assert_oauth_error(exchange(http, sandbox_server, stale), "invalid_grant")


def test_code_is_bound_to_its_redirect_uri(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    code, _ = new_code(http, sandbox_server)

    wrong = exchange(http, sandbox_server, code, redirect_uri="http://127.0.0.1:8765/other")
    missing = http.post(
        TOKEN, data={"grant_type": "authorization_code", "code": code}, auth=creds(sandbox_server)
    )

    assert "redirect_uri" in assert_oauth_error(wrong, "invalid_grant")
    assert_oauth_error(missing, "invalid_request")
    assert exchange(http, sandbox_server, code).status_code == 200


# --- PKCE (RFC 7636) ---------------------------------------------------------------------------

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def exchange_with_verifier(
    http: httpx2.Client, server: SandboxServer, code: str, verifier: str | None
) -> httpx2.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        form["code_verifier"] = verifier
    return http.post(TOKEN, data=form, auth=creds(server))


def test_a_code_with_an_s256_challenge_needs_its_verifier(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    code, _ = new_code(http, sandbox_server, code_challenge=CHALLENGE, code_challenge_method="S256")

    missing = exchange_with_verifier(http, sandbox_server, code, None)
    wrong = exchange_with_verifier(http, sandbox_server, code, VERIFIER[::-1])
    right = exchange_with_verifier(http, sandbox_server, code, VERIFIER)

    assert "PKCE" in assert_oauth_error(missing, "invalid_grant")
    assert "PKCE" in assert_oauth_error(wrong, "invalid_grant")
    assert right.status_code == 200, right.text  # the failed tries did not use the code up


def test_a_plain_challenge_is_its_own_verifier(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    code, _ = new_code(http, sandbox_server, code_challenge=VERIFIER)

    assert_oauth_error(exchange_with_verifier(http, sandbox_server, code, CHALLENGE), "invalid_grant")
    assert exchange_with_verifier(http, sandbox_server, code, VERIFIER).status_code == 200


def test_a_verifier_for_a_code_issued_without_a_challenge_is_refused(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    code, _ = new_code(http, sandbox_server)

    assert_oauth_error(exchange_with_verifier(http, sandbox_server, code, VERIFIER), "invalid_grant")
    assert exchange(http, sandbox_server, code).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"code_challenge": CHALLENGE, "code_challenge_method": "S512"},
        {"code_challenge": "short", "code_challenge_method": "S256"},
        {"code_challenge": CHALLENGE + "!", "code_challenge_method": "S256"},
        {"code_challenge_method": "S256"},
    ],
)
def test_a_bad_pkce_challenge_redirects_with_invalid_request(
    http: httpx2.Client, sandbox_server: SandboxServer, params: dict[str, str]
) -> None:
    answer = callback(authorize(http, sandbox_server, **params))

    assert answer["error"] == "invalid_request"
    assert "code" not in answer


# --- token endpoint: malformed requests -------------------------------------------------------


def test_unsupported_and_missing_grant_type(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    unsupported = http.post(TOKEN, data={"grant_type": "client_credentials"}, auth=creds(sandbox_server))
    missing = http.post(TOKEN, data={"code": "x"}, auth=creds(sandbox_server))

    assert_oauth_error(unsupported, "unsupported_grant_type")
    assert_oauth_error(missing, "invalid_request")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"grant_type": "refresh_token", "refresh_token": "x"}', "application/json"),
        (b"grant_type=refresh_token&grant_type=authorization_code", "application/x-www-form-urlencoded"),
        (b"grant_type", "application/x-www-form-urlencoded"),
        (b"grant_type=\xff\xfe", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_token_request_is_invalid_request(
    http: httpx2.Client, sandbox_server: SandboxServer, content: bytes, content_type: str
) -> None:
    response = http.post(
        TOKEN, content=content, headers={"content-type": content_type}, auth=creds(sandbox_server)
    )

    assert_oauth_error(response, "invalid_request")


def test_token_endpoint_only_answers_post(http: httpx2.Client) -> None:
    assert http.get(TOKEN).status_code == 405


# --- refresh ----------------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_token_has_a_24_hour_grace(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    first, realm = connect(http, sandbox_server)
    second = refresh(http, sandbox_server, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert auth_fault(sandbox_server, second["access_token"], realm) is None

    advance(sandbox_server, 24 * 3600 - 60)
    within_grace = refresh(http, sandbox_server, first["refresh_token"])
    assert within_grace.status_code == 200
    assert within_grace.json()["refresh_token"] not in (first["refresh_token"], second["refresh_token"])

    advance(sandbox_server, 61)
    assert_oauth_error(refresh(http, sandbox_server, first["refresh_token"]), "invalid_grant")
    assert refresh(http, sandbox_server, second["refresh_token"]).status_code == 200


def test_refresh_token_dies_after_its_rolling_life_unused(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    tokens, _ = connect(http, sandbox_server)

    advance(sandbox_server, REFRESH_LIFE - 60)
    renewed = refresh(http, sandbox_server, tokens["refresh_token"])
    assert renewed.status_code == 200
    # Rolling: the new token gets the full life again.
    assert REFRESH_LIFE - 2 <= renewed.json()["x_refresh_token_expires_in"] <= REFRESH_LIFE

    advance(sandbox_server, REFRESH_LIFE + 1)
    assert "expired" in assert_oauth_error(
        refresh(http, sandbox_server, renewed.json()["refresh_token"]), "invalid_grant"
    )


def test_hard_expiry_is_sent_only_when_asked(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    code, _ = new_code(http, sandbox_server)
    with_header = exchange(http, sandbox_server, code, headers=HARD_HEADER).json()
    assert HARD_LIFE - 2 <= with_header["x_refresh_token_hard_expires_in"] <= HARD_LIFE

    advance(sandbox_server, 1000)
    counted_down = refresh(http, sandbox_server, with_header["refresh_token"], headers=HARD_HEADER).json()
    without = refresh(http, sandbox_server, counted_down["refresh_token"]).json()
    declined = refresh(
        http,
        sandbox_server,
        without["refresh_token"],
        headers={"x-include-refresh-token-hard-expires-in": "false"},
    ).json()

    assert HARD_LIFE - 1002 <= counted_down["x_refresh_token_hard_expires_in"] <= HARD_LIFE - 1000
    assert "x_refresh_token_hard_expires_in" not in without
    assert "x_refresh_token_hard_expires_in" not in declined


def test_hard_expiry_ends_the_grant_even_when_refreshed_regularly(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    tokens, _ = connect(http, sandbox_server)
    elapsed = 0
    step = 100 * 86400
    while elapsed + step < HARD_LIFE - 3600:
        advance(sandbox_server, step)
        elapsed += step
        tokens = refresh(http, sandbox_server, tokens["refresh_token"], headers=HARD_HEADER).json()

    # Close to the cap the rolling life is cut to what the hard limit leaves.
    remaining = tokens["x_refresh_token_hard_expires_in"]
    assert remaining < REFRESH_LIFE
    assert tokens["x_refresh_token_expires_in"] == remaining

    advance(sandbox_server, remaining + 1)
    description = assert_oauth_error(refresh(http, sandbox_server, tokens["refresh_token"]), "invalid_grant")
    assert "5-year" in description


# --- revoke -----------------------------------------------------------------------------------


def test_revoke_with_json_body_revokes_the_whole_grant(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    first, realm = connect(http, sandbox_server)
    second = refresh(http, sandbox_server, first["refresh_token"]).json()

    response = http.post(REVOKE, json={"token": first["access_token"]}, auth=creds(sandbox_server))

    assert response.status_code == 200
    assert response.headers.get("intuit_tid")
    for token in (first["refresh_token"], second["refresh_token"]):
        assert "revoked" in assert_oauth_error(refresh(http, sandbox_server, token), "invalid_grant")
    for access in (first["access_token"], second["access_token"]):
        fault = auth_fault(sandbox_server, access, realm)
        assert fault is not None
        assert fault.errors[0].detail == "Token revoked"


def test_revoke_with_form_body(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    tokens, realm = connect(http, sandbox_server)

    response = http.post(REVOKE, data={"token": tokens["refresh_token"]}, auth=creds(sandbox_server))

    assert response.status_code == 200
    assert auth_fault(sandbox_server, tokens["access_token"], realm) is not None


def test_revoke_unknown_token_is_200_and_bad_requests_are_refused(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    tokens, realm = connect(http, sandbox_server)

    unknown = http.post(REVOKE, json={"token": "AB11unknown"}, auth=creds(sandbox_server))
    no_token = http.post(REVOKE, json={}, auth=creds(sandbox_server))
    bad_json = http.post(
        REVOKE, content=b"{", headers={"content-type": "application/json"}, auth=creds(sandbox_server)
    )
    wrong_client = http.post(REVOKE, json={"token": tokens["refresh_token"]}, auth=("x", "y"))

    assert unknown.status_code == 200
    assert_oauth_error(no_token, "invalid_request")
    assert_oauth_error(bad_json, "invalid_request")
    assert_oauth_error(wrong_client, "invalid_client", status=401)
    assert auth_fault(sandbox_server, tokens["access_token"], realm) is None


# --- the Accounting API's gate ----------------------------------------------------------------


def test_access_token_expires_after_an_hour(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    tokens, realm = connect(http, sandbox_server)

    advance(sandbox_server, 3599)
    assert auth_fault(sandbox_server, tokens["access_token"], realm) is None
    advance(sandbox_server, 1)
    fault = auth_fault(sandbox_server, tokens["access_token"], realm)

    assert fault is not None
    body = fault.body(sandbox_server.sandbox.clock.now())
    assert fault.status == 401
    assert body["fault"]["type"] == "AUTHENTICATION"
    assert body["fault"]["error"][0]["code"] == "3200"
    assert body["fault"]["error"][0]["detail"] == "Token expired"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Authorization header is missing"),
        ("Basic abc", "Authorization header must carry a Bearer token"),
        ("Bearer", "Authorization header must carry a Bearer token"),
        ("Bearer not-a-token", "Token invalid"),
    ],
)
def test_authenticate_refuses_missing_or_unknown_tokens(
    http: httpx2.Client, sandbox_server: SandboxServer, header: str | None, detail: str
) -> None:
    _, realm = connect(http, sandbox_server)
    headers = {"authorization": header} if header is not None else {}

    with pytest.raises(QboFault) as failure:
        sandbox_server.sandbox.oauth.authenticate(Request("GET", "/v3/x", {}, headers, b""), realm)

    assert failure.value.status == 401
    assert failure.value.code == "3200"
    assert failure.value.errors[0].detail == detail


def test_authenticate_refuses_a_token_of_another_realm(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    tokens, realm = connect(http, sandbox_server)
    other = sandbox_server.sandbox.create_company().realm_id

    fault = auth_fault(sandbox_server, tokens["access_token"], other)

    assert fault is not None
    assert fault.status == 403
    assert fault.code == "3100"
    assert auth_fault(sandbox_server, tokens["access_token"], realm) is None


# --- control API ------------------------------------------------------------------------------


def test_control_expire_access_tokens_of_one_realm_or_all(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    one, realm_one = connect(http, sandbox_server)
    two, realm_two = connect(http, sandbox_server)

    scoped = http.post("/_sandbox/oauth/expire-access-tokens", json={"realm_id": realm_one})
    assert scoped.json() == {"expired": 1}
    assert auth_fault(sandbox_server, one["access_token"], realm_one) is not None
    assert auth_fault(sandbox_server, two["access_token"], realm_two) is None

    everything = http.post("/_sandbox/oauth/expire-access-tokens")
    assert everything.json() == {"expired": 1}
    assert auth_fault(sandbox_server, two["access_token"], realm_two) is not None
    # The refresh token still works: only the access tokens expired.
    assert refresh(http, sandbox_server, one["refresh_token"]).status_code == 200


def test_control_revoke_realm_simulates_a_disconnect(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    tokens, realm = connect(http, sandbox_server)
    other, other_realm = connect(http, sandbox_server)

    response = http.post("/_sandbox/oauth/revoke", json={"realm_id": realm})

    assert response.json() == {"revoked": 1}
    assert_oauth_error(refresh(http, sandbox_server, tokens["refresh_token"]), "invalid_grant")
    assert auth_fault(sandbox_server, tokens["access_token"], realm) is not None
    assert auth_fault(sandbox_server, other["access_token"], other_realm) is None
    [grant] = http.get("/_sandbox/oauth/grants", params={"realm_id": realm}).json()["grants"]
    assert grant["revoked"] is True
    assert grant["refresh_tokens"][0]["status"] == "revoked"


def test_control_shortens_a_refresh_tokens_life(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    tokens, _ = connect(http, sandbox_server)

    response = http.post(
        "/_sandbox/oauth/refresh-token-life",
        json={"refresh_token": tokens["refresh_token"], "expires_in": 60},
    )

    assert response.status_code == 200
    [entry] = response.json()["grant"]["refresh_tokens"]
    assert 59 <= entry["expires_in"] <= 60
    advance(sandbox_server, 61)
    assert_oauth_error(refresh(http, sandbox_server, tokens["refresh_token"]), "invalid_grant")


def test_control_shortens_a_grants_hard_expiry(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    tokens, realm = connect(http, sandbox_server)
    [grant] = sandbox_server.sandbox.oauth.controls.grants(realm)

    response = http.post(
        "/_sandbox/oauth/refresh-token-life", json={"grant_id": grant["grant_id"], "hard_expires_in": 86400}
    )

    assert response.status_code == 200
    assert 86399 <= response.json()["grant"]["hard_expires_in"] <= 86400
    renewed = refresh(http, sandbox_server, tokens["refresh_token"], headers=HARD_HEADER).json()
    assert 86398 <= renewed["x_refresh_token_hard_expires_in"] <= 86400
    assert renewed["x_refresh_token_expires_in"] == renewed["x_refresh_token_hard_expires_in"]
    advance(sandbox_server, 86401)
    assert_oauth_error(refresh(http, sandbox_server, renewed["refresh_token"]), "invalid_grant")


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("/_sandbox/oauth/deny-consents", b"{not json", "not valid JSON"),
        ("/_sandbox/oauth/deny-consents", b"[1]", "JSON object"),
        ("/_sandbox/oauth/deny-consents", b"{}", "count is required"),
        ("/_sandbox/oauth/deny-consents", b'{"count": -1}', "count must be a non-negative integer"),
        ("/_sandbox/oauth/deny-consents", b'{"count": true}', "count must be a non-negative integer"),
        ("/_sandbox/oauth/deny-consents", b'{"count": 1, "extra": 2}', "unknown field(s): extra"),
        ("/_sandbox/oauth/revoke", b"{}", "realm_id is required"),
        ("/_sandbox/oauth/expire-access-tokens", b'{"realm_id": 5}', "realm_id must be a non-empty string"),
        (
            "/_sandbox/oauth/refresh-token-life",
            b'{"expires_in": 5}',
            "exactly one of refresh_token and grant_id",
        ),
        ("/_sandbox/oauth/refresh-token-life", b'{"grant_id": "g"}', "expires_in, hard_expires_in"),
        ("/_sandbox/oauth/refresh-token-life", b'{"grant_id": "g", "expires_in": 99999999}', "between 0 and"),
        ("/_sandbox/oauth/tokens", b'{"realm_id": "1", "include_hard_expiry": "yes"}', "true or false"),
    ],
)
def test_control_rejects_bad_input_with_a_precise_message(
    http: httpx2.Client, path: str, content: bytes, message: str
) -> None:
    response = http.post(path, content=content, headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/_sandbox/oauth/revoke", {"realm_id": "404"}),
        ("/_sandbox/oauth/expire-access-tokens", {"realm_id": "404"}),
        ("/_sandbox/oauth/refresh-token-life", {"grant_id": "nope", "expires_in": 5}),
        ("/_sandbox/oauth/refresh-token-life", {"refresh_token": "nope", "expires_in": 5}),
        ("/_sandbox/oauth/tokens", {"realm_id": "404"}),
    ],
)
def test_control_unknown_targets_are_404(http: httpx2.Client, path: str, payload: dict[str, Any]) -> None:
    response = http.post(path, json=payload)

    assert response.status_code == 404
    assert response.json()["error"].startswith("unknown")


def test_control_grants_listing_never_shows_token_values(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    first, realm = connect(http, sandbox_server)
    second = refresh(http, sandbox_server, first["refresh_token"]).json()
    connect(http, sandbox_server)

    response = http.get("/_sandbox/oauth/grants", params={"realm_id": realm})

    assert response.status_code == 200
    text = response.text
    for value in (
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        second["refresh_token"],
    ):
        assert value not in text
    [grant] = response.json()["grants"]
    assert grant["realm_id"] == realm
    assert {"grant_id", "created_at", "hard_expires_at", "revoked", "revoked_at"} <= set(grant)
    assert [t["status"] for t in grant["refresh_tokens"]] == ["grace", "active"]
    assert [t["status"] for t in grant["access_tokens"]] == ["active", "active"]
    assert len(http.get("/_sandbox/oauth/grants").json()["grants"]) == 2
    assert http.get("/_sandbox/oauth/grants", params={"realm_id": "404"}).status_code == 404
    assert http.get("/_sandbox/oauth/grants", params={"realm": realm}).status_code == 400


def test_control_mints_tokens_without_the_browser_flow(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    realm = sandbox_server.sandbox.create_company().realm_id

    response = http.post("/_sandbox/oauth/tokens", json={"realm_id": realm, "include_hard_expiry": True})

    assert response.status_code == 200
    tokens = response.json()
    assert "x_refresh_token_hard_expires_in" in tokens
    assert auth_fault(sandbox_server, tokens["access_token"], realm) is None
    assert refresh(http, sandbox_server, tokens["refresh_token"]).status_code == 200
    assert sandbox_server.sandbox.counters.oauth == {"refresh_token": 1}


# --- counters, concurrency and persistence ----------------------------------------------------


def test_counters_count_token_calls_per_grant_type(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    tokens, _ = connect(http, sandbox_server)
    rotated = refresh(http, sandbox_server, tokens["refresh_token"]).json()
    refresh(http, sandbox_server, rotated["refresh_token"])
    refresh(http, sandbox_server, "unknown")
    http.post(TOKEN, data={"grant_type": "password"}, auth=creds(sandbox_server))
    http.post(REVOKE, json={"token": rotated["refresh_token"]}, auth=creds(sandbox_server))

    assert dict(sandbox_server.sandbox.counters.oauth) == {
        "authorization_code": 1,
        "refresh_token": 3,
        "other": 1,
        "revoke": 1,
    }


def test_concurrent_refreshes_with_one_token_all_succeed_within_grace(
    sandbox_server: SandboxServer,
) -> None:
    with httpx2.Client(base_url=sandbox_server.url, timeout=10) as http:
        tokens, realm = connect(http, sandbox_server)
    workers = 8
    barrier = threading.Barrier(workers)

    def worker(_: int) -> httpx2.Response:
        with httpx2.Client(base_url=sandbox_server.url, timeout=10) as client:
            barrier.wait(timeout=10)
            return refresh(client, sandbox_server, tokens["refresh_token"])

    with ThreadPoolExecutor(workers) as pool:
        responses = list(pool.map(worker, range(workers)))

    assert [r.status_code for r in responses] == [200] * workers
    assert len({r.json()["refresh_token"] for r in responses}) == workers
    assert sandbox_server.sandbox.counters.oauth["refresh_token"] == workers
    [grant] = sandbox_server.sandbox.oauth.controls.grants(realm)
    assert len(grant["refresh_tokens"]) == workers + 1


def test_dump_and_load_keep_grants_without_token_values(
    http: httpx2.Client, sandbox_server: SandboxServer
) -> None:
    tokens, realm = connect(http, sandbox_server)
    sandbox = sandbox_server.sandbox
    state = json.loads(json.dumps(sandbox.dump()))
    assert tokens["refresh_token"] not in json.dumps(state)
    assert tokens["access_token"] not in json.dumps(state)

    sandbox.reset()
    assert auth_fault(sandbox_server, tokens["access_token"], realm) is not None
    sandbox.load(state)

    assert auth_fault(sandbox_server, tokens["access_token"], realm) is None
    assert refresh(http, sandbox_server, tokens["refresh_token"]).status_code == 200


def test_reset_forgets_tokens_and_pending_denials(http: httpx2.Client, sandbox_server: SandboxServer) -> None:
    tokens, _ = connect(http, sandbox_server)
    http.post("/_sandbox/oauth/deny-consents", json={"count": 3})

    sandbox_server.sandbox.reset()

    assert_oauth_error(refresh(http, sandbox_server, tokens["refresh_token"]), "invalid_grant")
    assert sandbox_server.sandbox.oauth.controls.grants() == []
    assert "code" in callback(authorize(http, sandbox_server))
