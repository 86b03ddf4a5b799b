"""Test helpers that talk to a running sandbox the way a QBO client would: over HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

from qbo_sandbox.server import SandboxServer
from qbo_sandbox.settings import SandboxSettings

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
REDIRECT_URI = "http://127.0.0.1:9/callback"


@dataclass
class Connection:
    """A connected realm: its tokens and an HTTP client for its Accounting API."""

    server: SandboxServer
    realm: str
    access_token: str
    refresh_token: str
    http: httpx2.Client

    @property
    def base(self) -> str:
        return f"/v3/company/{self.realm}"

    def get(self, path: str, **params: Any) -> httpx2.Response:
        return self.http.get(f"{self.base}/{path}", params=params or None)

    def post(self, path: str, body: Any = None, **params: Any) -> httpx2.Response:
        return self.http.post(f"{self.base}/{path}", json=body, params=params or None)

    def query(self, text: str) -> httpx2.Response:
        return self.get("query", query=text)

    def close(self) -> None:
        self.http.close()


@contextmanager
def unthrottled_sandbox() -> Iterator[SandboxServer]:
    """A sandbox on a free port with Intuit's rate limits off (many companies, many calls)."""
    server = SandboxServer(SandboxSettings(port=0))
    server.start()
    try:
        answer = httpx2.post(
            f"{server.url}/_sandbox/limits", json={"requests_per_second": 0, "requests_per_minute": 0}
        )
        assert answer.status_code == 200, answer.text
        yield server
    finally:
        server.stop()


def basic_auth(server: SandboxServer) -> str:
    s = server.sandbox.settings
    return "Basic " + base64.b64encode(f"{s.client_id}:{s.client_secret}".encode()).decode()


def authorize(server: SandboxServer, **extra: str) -> dict[str, str]:
    """Run the consent step; returns the callback's query parameters (code, state, realmId)."""
    params = {
        "client_id": server.sandbox.settings.client_id,
        "response_type": "code",
        "scope": ACCOUNTING_SCOPE,
        "redirect_uri": REDIRECT_URI,
        "state": "state-123",
        **extra,
    }
    answer = httpx2.get(f"{server.url}/connect/oauth2", params=params, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(server: SandboxServer, code: str) -> httpx2.Response:
    return httpx2.post(
        f"{server.url}/oauth2/v1/tokens/bearer",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        headers={"Authorization": basic_auth(server), "Accept": "application/json"},
    )


def connect(server: SandboxServer, **extra: str) -> Connection:
    """Authorize (a new seeded US company unless ``extra`` names one) and exchange the code."""
    callback = authorize(server, **extra)
    tokens = exchange(server, callback["code"])
    assert tokens.status_code == 200, tokens.text
    data = tokens.json()
    http = httpx2.Client(
        base_url=server.url,
        headers={
            "Authorization": f"Bearer {data['access_token']}",
            "Accept": "application/json",
        },
        params={"minorversion": "75"},
        timeout=10,
    )
    return Connection(server, callback["realmId"], data["access_token"], data["refresh_token"], http)
