"""Helpers for the connection-flow tests: API Gateway HTTP API (v2) events, a Lambda context, and a
``World`` that drives the real handlers against moto (in process) and the QBO sandbox (real
sockets), following the browser's redirects by hand."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2

from qbo_sandbox.server import SandboxServer
from shared.connections.vault import TokenVault
from shared.kernel import constants
from shared.kernel.events import OutboundEvent, RecordingPublisher
from shared.kernel.settings import IntuitEnvironment, Settings

REGION = "us-east-1"
RETURN_URL = "https://app.example.com/qbo/settings"
ALLOWED_PREFIXES = ("https://app.example.com/qbo", "https://admin.example.com/")
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
# The sandbox's rate limits switched off (``POST /_sandbox/limits``).
LIMITS_OFF = {"requests_per_minute": 0, "requests_per_second": 0, "concurrent": 0, "batch_per_minute": 0}


def sandbox_settings(server: SandboxServer, state_signing_key: str, **changes: Any) -> Settings:
    """The connector's settings against the sandbox ``server`` (its app's client, a loopback
    redirect), with ``changes`` on top."""
    values: dict[str, Any] = {
        "client_id": server.sandbox.settings.client_id,
        "client_secret": server.sandbox.settings.client_secret,
        "redirect_uri": REDIRECT_URI,
        "return_url_allowlist": ALLOWED_PREFIXES,
        "app_id": "qbo-link-test-app",
        "state_signing_key": state_signing_key,
        "intuit_environment": IntuitEnvironment.LOCAL,
        "local_sandbox_url": server.url,
        "http_timeout_seconds": 10,
        **changes,
    }
    return Settings.model_validate(values)


@dataclass
class LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str = "qbo-link-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:qbo-link-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/qbo-link-test"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def http_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event, as the service sends it."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"host": "api.example.com", "user-agent": "pytest", "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:20:00:00 +0000",
            "timeEpoch": 1795291200000,
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    return event


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: str

    @classmethod
    def of(cls, result: dict[str, Any]) -> HttpAnswer:
        body = result.get("body") or ""
        if result.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        return cls(int(result["statusCode"]), headers, body)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def location(self) -> str:
        return self.headers["location"]

    def location_params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.location).query).items()}


@dataclass
class World:
    server: SandboxServer
    settings: Settings
    events: RecordingPublisher
    key_id: str
    dynamodb: Any
    kms: Any
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=10))
    connected_realm: str | None = None  # a realm connected once for tests that reuse the world

    @property
    def clock(self) -> Any:
        return self.server.sandbox.clock

    # --- our handlers ---

    def api(
        self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None
    ) -> HttpAnswer:
        from functions.api import handler

        return HttpAnswer.of(
            handler.lambda_handler(http_event(method, path, query=query, body=body), LambdaContext())
        )

    def api_raw(self, method: str, path: str, raw_body: str) -> HttpAnswer:
        from functions.api import handler

        event = http_event(method, path, raw_body=raw_body)
        return HttpAnswer.of(handler.lambda_handler(event, LambdaContext()))

    def oauth(self, path: str, query: dict[str, str] | None = None) -> HttpAnswer:
        from functions.oauth import handler

        return HttpAnswer.of(handler.lambda_handler(http_event("GET", path, query=query), LambdaContext()))

    def keep_alive(self) -> dict[str, Any]:
        from functions.schedule import handler

        result: dict[str, Any] = handler.lambda_handler({"source": "aws.scheduler"}, LambdaContext())
        return result

    # --- the browser ---

    def start(self, tenant_id: str, return_url: str = RETURN_URL) -> str:
        answer = self.api("POST", f"/tenants/{tenant_id}/connection", body={"return_url": return_url})
        assert answer.status == 201, answer.body
        url: str = answer.json()["authorization_url"]
        return url

    def consent(self, authorization_url: str, **extra: str) -> dict[str, str]:
        """The user at Intuit: GET the consent URL (plus sandbox steering), return the callback query."""
        url = f"{authorization_url}&{urlencode(extra)}" if extra else authorization_url
        answer = self.http.get(url, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.startswith(REDIRECT_URI), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def callback(self, query: dict[str, str]) -> HttpAnswer:
        return self.oauth("/oauth/callback", query)

    def connect(self, tenant_id: str, return_url: str = RETURN_URL, **extra: str) -> str:
        """The whole happy path; returns the realm id."""
        answer = self.callback(self.consent(self.start(tenant_id, return_url), **extra))
        assert answer.status == 302, answer.body
        params = answer.location_params()
        assert params["status"] == "connected", params
        return params["realmId"]

    def status(self, tenant_id: str) -> dict[str, Any]:
        """The connection status; a tenant that never completed a consent is the API's 404
        ``not_connected``, seen here as not connected, with no realm and no health."""
        answer = self.api("GET", f"/tenants/{tenant_id}/connection")
        if answer.status == 404 and answer.json()["detail"][0]["type"] == "not_connected":
            return {"connected": False, "realm_id": None, "health": None}
        assert answer.status == 200, answer.body
        result: dict[str, Any] = answer.json()
        return result

    # --- the sandbox's side ---

    def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, f"{self.server.url}/_sandbox{path}", json=body)
        assert answer.status_code in {200, 201}, answer.text
        return answer.json()

    def new_company(self, country: str = "US") -> str:
        realm: str = self.sandbox("POST", "/companies", {"country": country})["realmId"]
        return realm

    def grants(self, realm_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.sandbox("GET", f"/oauth/grants?realm_id={realm_id}")["grants"]
        return result

    def live_grants(self, realm_id: str) -> int:
        return sum(1 for g in self.grants(realm_id) if not g["revoked"])

    def token_calls(self, grant_type: str = "authorization_code") -> int:
        return int(self.sandbox("GET", "/counters").get("oauth", {}).get(grant_type, 0))

    # --- our tables ---

    def scan(self, table: str) -> list[dict[str, Any]]:
        client = self.dynamodb.meta.client
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": table}
        while True:
            page = client.scan(**request)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def state_items(self) -> list[dict[str, Any]]:
        return [
            item
            for item in self.scan(self.settings.runtime_table)
            if item[constants.PK].startswith(constants.OAUTH_STATE_PREFIX) and item[constants.SK] == "STATE"
        ]

    def owner_of(self, realm_id: str) -> str | None:
        item = self.dynamodb.Table(self.settings.connections_table).get_item(
            Key={constants.PK: constants.realm_pk(realm_id), constants.SK: constants.REALM_OWNER_SK}
        )
        return item["Item"]["tenant_id"] if "Item" in item else None

    def plaintext_tokens(self, tenant_id: str) -> list[str]:
        """The tenant's stored tokens, decrypted the way only the vault may (to look for leaks)."""
        item = self.dynamodb.Table(self.settings.connections_table).get_item(
            Key={constants.PK: constants.tenant_pk(tenant_id), constants.SK: constants.CONNECTION_SK}
        )["Item"]
        context = TokenVault.context(tenant_id, item["realm_id"])
        return [
            self.kms.decrypt(CiphertextBlob=bytes(item[name].value), EncryptionContext=context)[
                "Plaintext"
            ].decode()
            for name in ("access_token_ct", "refresh_token_ct")
            if name in item
        ]

    def published(self, detail_type: str) -> list[OutboundEvent]:
        return self.events.of_type(detail_type)
