"""The token vault and the connections table: moto (DynamoDB + KMS, in process) and the QBO
sandbox over real sockets for Intuit's OAuth.  Each ``TokenVault`` built by ``World.lambda_``
has its own boto3 session and lease owner, as a separate Lambda would.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx2
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from botocore.exceptions import ClientError
from moto import mock_aws

from infra import tables
from qbo_sandbox.server import SandboxServer
from shared.connections.errors import NeverConnectedError
from shared.connections.health import Health
from shared.connections.store import CompanyRecord, ConnectionStore, RealmTakenError
from shared.connections.vault import (
    ConnectionDeadError,
    TokenCryptoError,
    TokenRefreshError,
    TokenVault,
)
from shared.kernel.events import (
    CONNECTION_HARD_EXPIRY_APPROACHING,
    CONNECTION_HEALTH_CHANGED,
    RecordingPublisher,
)
from shared.kernel.settings import IntuitEnvironment, Settings
from shared.qbo.environment import endpoints_for
from shared.qbo.oauth import IntuitOAuth, OAuthGrantError, TokenSet

REDIRECT = "http://127.0.0.1:8765/callback"
REGION = "us-east-1"
DAY = 86_400


# --- the world: moto + sandbox ------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


class OneAtATime:
    """A boto3 resource or client whose calls take turns.  moto's in-process backends are not
    thread-safe (a read may iterate a dict another thread's write is changing), where DynamoDB and
    KMS are; the worlds' "Lambdas" are threads, so they reach moto through one lock, as separate
    Lambdas reach AWS through its own serialisation of each item."""

    def __init__(self, target: Any, lock: threading.Lock) -> None:
        self._target = target
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return one_at_a_time


@dataclass
class World:
    server: SandboxServer
    settings: Settings
    table_name: str
    key_id: str
    events: RecordingPublisher = field(default_factory=RecordingPublisher)
    moto_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def clock(self) -> Any:
        return self.server.sandbox.clock

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(region_name=REGION)

    def store(self) -> ConnectionStore:
        return ConnectionStore(self.session().resource("dynamodb").Table(self.table_name))

    def oauth(self, http_factory: Callable[..., Any] | None = None) -> IntuitOAuth:
        return IntuitOAuth(
            self.settings, endpoints_for(self.settings), clock=self.clock, http_factory=http_factory
        )

    def lambda_(self, oauth: Any = None, **options: Any) -> TokenVault:
        """A vault as one Lambda instance would build it."""
        session = self.session()
        table = OneAtATime(session.resource("dynamodb").Table(self.table_name), self.moto_lock)
        return TokenVault(
            ConnectionStore(table),
            OneAtATime(session.client("kms"), self.moto_lock),
            self.key_id,
            oauth or self.oauth(),
            self.events,
            self.clock,
            **options,
        )

    def kms(self) -> Any:
        return self.session().client("kms")

    def raw_items(self) -> list[dict[str, Any]]:
        client = self.session().client("dynamodb")
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self.table_name}
        while True:
            page = client.scan(**request)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- the sandbox's side ---

    def counters(self) -> dict[str, int]:
        return dict(httpx2.get(f"{self.server.url}/_sandbox/counters", timeout=10).json().get("oauth", {}))

    def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = httpx2.post(f"{self.server.url}/_sandbox{path}", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def company_info(self, realm: str, token: str) -> int:
        answer = httpx2.get(
            f"{self.server.url}/v3/company/{realm}/companyinfo/{realm}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            params={"minorversion": "75"},
            timeout=10,
        )
        return answer.status_code

    def connect(self, vault: TokenVault, tenant_id: str) -> tuple[str, TokenSet]:
        """The connect flow as shared/connections/flows.py runs it: consent, exchange, claim, save."""
        oauth = self.oauth()
        location = httpx2.get(oauth.authorization_url("st"), follow_redirects=False, timeout=10).headers[
            "location"
        ]
        callback = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        tokens = oauth.exchange_code(callback["code"])
        realm = callback["realmId"]
        store = self.store()
        store.claim_realm(realm, tenant_id)
        store.put_connection(tenant_id, realm, connected_at=self.clock.now())
        vault.save_new_tokens(tenant_id, realm, tokens)
        return realm, tokens

    def health_events(self) -> list[dict[str, Any]]:
        return [e.detail for e in self.events.of_type(CONNECTION_HEALTH_CHANGED)]


@pytest.fixture
def world(aws: None, sandbox_server: SandboxServer) -> World:
    settings = Settings(
        client_id=sandbox_server.sandbox.settings.client_id,
        client_secret=sandbox_server.sandbox.settings.client_secret,
        redirect_uri=REDIRECT,
        state_signing_key="k" * 32,
        app_id="app-1",
        intuit_environment=IntuitEnvironment.LOCAL,
        local_sandbox_url=sandbox_server.url,
        http_timeout_seconds=10,
    )
    session = boto3.session.Session(region_name=REGION)
    table_name = tables.create_table(session.client("dynamodb"), tables.CONNECTIONS)
    key_id = session.client("kms").create_key(Description="qbo-link tokens")["KeyMetadata"]["KeyId"]
    httpx2.post(
        f"{sandbox_server.url}/_sandbox/limits", json={"requests_per_second": 0, "concurrent": 0}, timeout=10
    )
    return World(sandbox_server, settings, table_name, key_id)


def failing_oauth(world: World, status: int = 503) -> IntuitOAuth:
    """Intuit's token endpoint answering ``status`` (a transport the sandbox cannot fake)."""
    transport = httpx2.MockTransport(
        lambda _r: httpx2.Response(status, text="down", headers={"intuit_tid": "t-503"})
    )
    return world.oauth(functools.partial(OAuth2Client, transport=transport))


class HookedOAuth:
    """The real IntuitOAuth with something happening *during* the token call (a racing Lambda)."""

    def __init__(self, inner: IntuitOAuth, before_refresh: Callable[[], object]) -> None:
        self._inner = inner
        self._before = before_refresh
        self.endpoints = inner.endpoints

    def refresh(self, refresh_token: str) -> TokenSet:
        self._before()
        return self._inner.refresh(refresh_token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# --- connect, encryption at rest --------------------------------------------------------------


def test_save_new_tokens_encrypts_versions_and_marks_healthy(world: World) -> None:
    vault = world.lambda_()
    realm, tokens = world.connect(vault, "t1")

    connection = world.store().get("t1")
    assert connection is not None
    assert connection.realm_id == realm
    assert connection.health is Health.HEALTHY
    assert connection.health_reason == "connected"
    assert connection.token_version == 1
    assert connection.access_token_ct
    assert connection.refresh_token_ct
    assert connection.hard_expires_at is not None
    assert connection.refresh_expires_at is not None
    assert connection.last_refresh_at is not None
    # The stored token is the one Intuit gave, and it is used without a refresh.
    other = world.lambda_()
    assert other.access_token("t1") == tokens.access_token.get_secret_value()
    assert world.counters().get("refresh_token", 0) == 0
    assert world.health_events() == []  # a first connection is announced by the connect flow


def substrings(value: str, size: int = 16) -> set[str]:
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def test_a_scan_of_the_tokens_table_finds_no_token_in_plain_text(world: World) -> None:
    # Given a connection whose tokens were refreshed once (two generations of tokens)
    vault = world.lambda_()
    _, first = world.connect(vault, "t1")
    world.clock.advance(3600)
    vault.access_token("t1")
    connection = world.store().get("t1")
    assert connection is not None
    context = {"tenant_id": "t1", "realm_id": connection.realm_id, "purpose": "qbo-oauth-token"}
    refreshed_refresh = (
        world.kms()
        .decrypt(CiphertextBlob=connection.refresh_token_ct, EncryptionContext=context)["Plaintext"]
        .decode()
    )
    secrets_ = [
        first.access_token.get_secret_value(),
        first.refresh_token.get_secret_value(),
        vault.access_token("t1"),
        refreshed_refresh,
    ]
    assert len(set(secrets_)) == 4

    # When every attribute of every item is collected (strings, numbers, binaries, maps)
    haystack: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                haystack.append(str(k))
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)
        elif isinstance(value, bytes):
            haystack.append(value.decode("latin-1"))
        else:
            haystack.append(str(value))

    items = world.raw_items()
    assert any("access_token_ct" in item for item in items)
    collect(items)
    text = "\x00".join(haystack)

    # Then no token, nor any 16-character piece of one, is in it
    for secret in secrets_:
        assert secret not in text
        leaked = [piece for piece in substrings(secret) if piece in text]
        assert leaked == []


def test_kms_encryption_context_is_enforced(world: World) -> None:
    vault = world.lambda_()
    realm, tokens = world.connect(vault, "t1")
    ciphertext = world.store().get("t1").refresh_token_ct  # type: ignore[union-attr]
    kms = world.kms()
    context = {"tenant_id": "t1", "realm_id": realm, "purpose": "qbo-oauth-token"}

    plain = kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=context)["Plaintext"]
    assert plain.decode() == tokens.refresh_token.get_secret_value()
    for wrong in (
        {**context, "tenant_id": "t2"},
        {**context, "realm_id": "999"},
        {**context, "purpose": "other"},
        {},
    ):
        with pytest.raises(ClientError) as caught:
            kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=wrong)
        assert caught.value.response["Error"]["Code"] == "InvalidCiphertextException"


def test_ciphertext_moved_to_another_tenant_cannot_be_decrypted(world: World) -> None:
    vault = world.lambda_()
    world.connect(vault, "t1")
    world.connect(vault, "t2")
    # An attacker (or a bug) copies t1's ciphertexts onto t2's item.
    client = world.session().client("dynamodb")
    item1 = client.get_item(
        TableName=world.table_name, Key={"pk": {"S": "TENANT#t1"}, "sk": {"S": "CONNECTION"}}
    )
    client.update_item(
        TableName=world.table_name,
        Key={"pk": {"S": "TENANT#t2"}, "sk": {"S": "CONNECTION"}},
        UpdateExpression="SET access_token_ct = :a",
        ExpressionAttributeValues={":a": item1["Item"]["access_token_ct"]},
    )
    with pytest.raises(TokenCryptoError) as caught:
        world.lambda_().access_token("t2")
    assert caught.value.code == "InvalidCiphertextException"


# --- single-flight refresh -------------------------------------------------------------------------


def test_twenty_workers_at_expiry_make_exactly_one_refresh(world: World) -> None:
    # Given a connection and 20 Lambdas, and the access token expiring now
    realm, tokens = world.connect(world.lambda_(), "t1")
    workers = [world.lambda_() for _ in range(20)]
    world.clock.advance(3600)
    assert world.company_info(realm, tokens.access_token.get_secret_value()) == 401
    barrier = threading.Barrier(len(workers))
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(index: int, vault: TokenVault) -> None:
        barrier.wait()
        try:
            results[index] = vault.access_token("t1")
        except BaseException as error:  # collected for the assertion below
            errors.append(error)

    # When all of them need a token at once
    threads = [threading.Thread(target=work, args=(i, v)) for i, v in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then exactly one token-endpoint call was made, and every worker's token works
    assert errors == []
    assert len(results) == 20
    assert world.counters().get("refresh_token") == 1
    assert {world.company_info(realm, token) for token in results.values()} == {200}
    assert len(set(results.values())) == 1
    connection = world.store().get("t1")
    assert connection is not None
    assert connection.token_version == 2
    assert connection.lease_owner is None
    assert connection.health is Health.HEALTHY


def test_a_refresh_token_rotated_by_another_worker_is_picked_up(world: World) -> None:
    # Given two Lambdas that both used the connection (each holding version 1 in memory)
    first_lambda, second_lambda = world.lambda_(), world.lambda_()
    realm, tokens = world.connect(first_lambda, "t1")
    original = tokens.access_token.get_secret_value()
    assert first_lambda.access_token("t1") == second_lambda.access_token("t1") == original

    # When the first refreshes (rotating the refresh token)
    world.clock.advance(3600)
    rotated = first_lambda.access_token("t1")

    # Then the second uses the rotated tokens without a refresh of its own
    assert second_lambda.access_token("t1") == rotated != original
    assert world.counters().get("refresh_token") == 1
    # and its report of a 401 on the old token does not cause another refresh
    second_lambda.token_rejected("t1", original)
    assert world.counters().get("refresh_token") == 1
    # and the next refresh (by the second) starts from the rotated refresh token
    world.clock.advance(3600)
    again = second_lambda.access_token("t1")
    assert world.company_info(realm, again) == 200
    assert world.counters().get("refresh_token") == 2
    assert world.store().get("t1").token_version == 3  # type: ignore[union-attr]


def test_invalid_grant_after_another_worker_rotated_uses_the_new_token(world: World) -> None:
    # Given lambda A, whose refresh call is slow: its lease expires, lambda B refreshes meanwhile,
    # and the refresh token A sends has died by the time Intuit sees it
    realm, tokens = world.connect(world.lambda_(), "t1")
    lambda_b = world.lambda_(lease_seconds=30)
    stored_by_b: list[str] = []

    def meanwhile() -> None:
        world.clock.advance(31)  # A's lease expires
        stored_by_b.append(lambda_b.access_token("t1"))
        world.control(
            "/oauth/refresh-token-life",
            {"refresh_token": tokens.refresh_token.get_secret_value(), "expires_in": 0},
        )

    lambda_a = world.lambda_(HookedOAuth(world.oauth(), meanwhile), lease_seconds=30)
    world.clock.advance(3600)

    # When A gets invalid_grant
    token = lambda_a.access_token("t1")

    # Then A re-read the row, saw B's rotation, and used B's token: no one declared the grant dead
    assert token == stored_by_b[0]
    assert world.company_info(realm, token) == 200
    assert world.counters().get("refresh_token") == 2
    connection = world.store().get("t1")
    assert connection is not None
    assert connection.health is Health.HEALTHY
    assert connection.token_version == 2
    assert world.health_events() == []


def test_invalid_grant_with_nothing_rotated_marks_needs_reconnect(world: World) -> None:
    realm, tokens = world.connect(world.lambda_(), "t1")
    vault = world.lambda_()
    world.control(
        "/oauth/refresh-token-life",
        {"refresh_token": tokens.refresh_token.get_secret_value(), "expires_in": 0},
    )
    world.clock.advance(3600)

    with pytest.raises(ConnectionDeadError) as caught:
        vault.access_token("t1")

    assert caught.value.health is Health.NEEDS_RECONNECT
    assert caught.value.reason == "invalid_grant"
    connection = world.store().get("t1")
    assert connection is not None
    assert connection.health is Health.NEEDS_RECONNECT
    assert connection.health_reason == "invalid_grant"
    assert connection.lease_owner is None
    [event] = world.health_events()
    assert (event["from"], event["to"], event["reason"]) == ("healthy", "needs_reconnect", "invalid_grant")
    assert event["description"]
    assert event["intuit_tid"]
    # A dead connection is not refreshed again (no more token-endpoint calls) until reconnected.
    with pytest.raises(ConnectionDeadError):
        world.lambda_().access_token("t1")
    assert world.counters().get("refresh_token") == 1
    assert [c.tenant_id for c in world.store().list_by_health(Health.NEEDS_RECONNECT)] == ["t1"]

    # When the tenant reconnects, the connection is healthy again and says so
    new_realm, fresh = world.connect(vault, "t1")
    assert vault.access_token("t1") == fresh.access_token.get_secret_value()
    assert world.company_info(new_realm, fresh.access_token.get_secret_value()) == 200
    last = world.health_events()[-1]
    assert (last["from"], last["to"], last["reason"]) == ("needs_reconnect", "healthy", "reconnected")
    assert realm != new_realm  # this consent chose a new sandbox company


def test_retryable_failures_set_refresh_failing_then_recover(world: World) -> None:
    world.connect(world.lambda_(), "t1")
    broken = world.lambda_(failing_oauth(world))
    world.clock.advance(3600)

    for attempt in (1, 2):
        with pytest.raises(TokenRefreshError) as caught:
            broken.access_token("t1")
        assert caught.value.error == "http_503"
        assert caught.value.intuit_tid == "t-503"
        connection = world.store().get("t1")
        assert connection is not None
        assert connection.health is Health.REFRESH_FAILING
        assert connection.refresh_failures == attempt
        assert connection.lease_owner is None
    assert [(e["from"], e["to"], e["reason"]) for e in world.health_events()] == [
        ("healthy", "refresh_failing", "refresh_failed")
    ]

    # When Intuit answers again
    token = world.lambda_().access_token("t1")

    connection = world.store().get("t1")
    assert connection is not None
    assert connection.health is Health.HEALTHY
    assert connection.refresh_failures == 0
    assert world.health_events()[-1]["to"] == "healthy"
    assert world.company_info(connection.realm_id, token) == 200


def test_token_rejected_forces_one_refresh(world: World) -> None:
    realm, tokens = world.connect(world.lambda_(), "t1")
    vault = world.lambda_()
    old = vault.access_token("t1")
    world.control("/oauth/expire-access-tokens", {"realm_id": realm})  # QBO now answers 401
    assert world.company_info(realm, old) == 401

    vault.token_rejected("t1", old)
    new = vault.access_token("t1")
    assert new != old
    assert world.company_info(realm, new) == 200
    # The same 401 reported again (by a slow worker) does not refresh twice.
    world.lambda_().token_rejected("t1", old)
    assert world.counters().get("refresh_token") == 1
    assert tokens.access_token.get_secret_value() == old


def test_provider_is_what_the_qbo_client_uses(world: World) -> None:
    realm, _ = world.connect(world.lambda_(), "t1")
    provider = world.lambda_().provider("t1")
    token = provider.access_token()
    world.control("/oauth/expire-access-tokens", {"realm_id": realm})
    provider.token_rejected(token)
    assert world.company_info(realm, provider.access_token()) == 200


def test_a_refresh_does_not_resurrect_a_connection_disconnected_meanwhile(world: World) -> None:
    world.connect(world.lambda_(), "t1")
    store = world.store()
    vault = world.lambda_(
        HookedOAuth(world.oauth(), lambda: store.mark_disconnected("t1", True, world.clock.now()))
    )
    world.clock.advance(3600)

    with pytest.raises(ConnectionDeadError) as caught:
        vault.access_token("t1")

    assert caught.value.health is Health.DISCONNECTED
    connection = store.get("t1")
    assert connection is not None
    assert connection.health is Health.DISCONNECTED
    assert connection.token_version == 1  # the refreshed tokens were not stored


def test_lease_holder_that_died_is_taken_over_after_the_lease_expires(world: World) -> None:
    world.connect(world.lambda_(), "t1")
    store = world.store()
    world.clock.advance(3600)
    now = world.clock.now()
    assert store.acquire_lease(
        "t1", "dead-lambda", expected_version=1, now=now, until=now + timedelta(seconds=30)
    )
    waits: list[float] = []

    def wait(seconds: float) -> None:  # the lease expires while this worker waits
        waits.append(seconds)
        world.clock.advance(10)

    token = world.lambda_(wait=wait).access_token("t1")
    assert waits  # it waited for the holder first
    assert world.counters().get("refresh_token") == 1
    assert world.store().get("t1").token_version == 2  # type: ignore[union-attr]
    assert token


def test_waiting_is_bounded(world: World) -> None:
    world.connect(world.lambda_(), "t1")
    store = world.store()
    world.clock.advance(3600)
    now = world.clock.now()
    store.acquire_lease("t1", "stuck", expected_version=1, now=now, until=now + timedelta(hours=1))
    waits: list[float] = []
    with pytest.raises(TokenRefreshError) as caught:
        world.lambda_(wait=waits.append, lease_seconds=2).access_token("t1")
    assert caught.value.error == "lease_wait_timeout"
    assert sum(waits) >= 2
    assert world.counters().get("refresh_token", 0) == 0


# --- keep-alive and the long horizon -------------------------------------------------------------


def test_keep_alive_for_101_days_keeps_the_connection_healthy(world: World) -> None:
    vault = world.lambda_()
    realm, _ = world.connect(vault, "t1")

    for _ in range(101):
        world.clock.advance(DAY)
        report = vault.keep_alive()
        assert (report.checked, report.refreshed, report.dead, report.failed) == (1, 1, 0, 0)

    connection = world.store().get("t1")
    assert connection is not None
    assert connection.health is Health.HEALTHY
    assert world.counters().get("refresh_token") == 101
    assert world.company_info(realm, vault.access_token("t1")) == 200
    assert world.health_events() == []


def test_without_keep_alive_101_days_end_in_needs_reconnect_and_an_event_says_why(world: World) -> None:
    vault = world.lambda_()
    world.connect(vault, "t1")

    world.clock.advance(101 * DAY)
    report = vault.keep_alive()

    assert (report.checked, report.refreshed, report.dead) == (1, 0, 1)
    connection = world.store().get("t1")
    assert connection is not None
    assert connection.health is Health.NEEDS_RECONNECT
    [event] = world.health_events()
    assert event["to"] == "needs_reconnect"
    assert event["reason"] == "invalid_grant"
    assert "expired" in event["description"].lower()
    with pytest.raises(ConnectionDeadError):
        vault.access_token("t1")
    status = vault.status("t1")
    assert status["health"] == "needs_reconnect"
    assert status["reason"] == "invalid_grant"
    assert "realmId=" in status["reconnect_url"]


def test_keep_alive_leaves_recent_and_dead_connections_alone(world: World) -> None:
    vault = world.lambda_()
    world.connect(vault, "fresh")
    world.connect(vault, "gone")
    world.store().mark_disconnected("gone", False, world.clock.now())
    world.clock.advance(19 * 3600)

    report = vault.keep_alive()

    assert (report.checked, report.fresh, report.refreshed) == (1, 1, 0)
    assert world.counters().get("refresh_token", 0) == 0


def test_hard_expiry_warnings_once_per_threshold(world: World) -> None:
    vault = world.lambda_()
    realm, tokens = world.connect(vault, "t1")
    world.control(
        "/oauth/refresh-token-life",
        {"refresh_token": tokens.refresh_token.get_secret_value(), "hard_expires_in": 40 * DAY},
    )

    warning_days: list[int] = []
    for day in range(1, 41):
        world.clock.advance(DAY)
        if vault.keep_alive().warnings:
            warning_days.append(day)
        assert vault.keep_alive().warnings == 0  # a second run the same day sends nothing new

    events = world.events.of_type(CONNECTION_HARD_EXPIRY_APPROACHING)
    assert [e.detail["threshold_days"] for e in events] == [30, 7]
    assert warning_days == [10, 33]  # 30 days left after day 10, 7 after day 33
    assert events[0].detail["reason"] == "hard_expiry_in_30_days"
    assert events[1].detail["realm_id"] == realm
    assert "mode=reconnect" in events[1].detail["reconnect_url"]
    assert len({e.event_id for e in events}) == 2
    # At the hard expiry itself Intuit refuses the refresh: needs_reconnect, with the reason.
    connection = world.store().get("t1")
    assert connection is not None
    assert connection.health is Health.NEEDS_RECONNECT
    assert world.health_events()[-1]["reason"] == "invalid_grant"


def test_connection_created_close_to_its_hard_expiry_gets_only_the_urgent_warning(world: World) -> None:
    vault = world.lambda_()
    realm, tokens = world.connect(vault, "t1")
    crafted = tokens.model_copy(update={"hard_expires_at": world.clock.now() + timedelta(days=5)})
    vault.save_new_tokens("t1", realm, crafted)

    report = vault.keep_alive()

    assert (report.fresh, report.warnings) == (1, 1)
    [event] = world.events.of_type(CONNECTION_HARD_EXPIRY_APPROACHING)
    assert event.detail["threshold_days"] == 7
    assert event.detail["days_left"] == 4
    # The same fact computed again has the same id (consumers de-duplicate by it).
    assert vault.status("t1")["hard_expires_in_days"] == 4
    assert vault.keep_alive().warnings == 0


# --- disconnect, revoke, status, bookkeeping -------------------------------------------------------


def test_revoke_and_delete(world: World) -> None:
    vault = world.lambda_()
    realm, tokens = world.connect(vault, "t1")
    access = vault.access_token("t1")

    vault.revoke_and_delete("t1")

    assert world.company_info(realm, access) == 401  # the grant is revoked at Intuit
    with pytest.raises(OAuthGrantError):
        world.oauth().refresh(tokens.refresh_token.get_secret_value())
    item = next(i for i in world.raw_items() if i["pk"]["S"] == "TENANT#t1")
    assert not {"access_token_ct", "refresh_token_ct", "lease_owner"} & set(item)
    assert "revoke_error" not in item
    with pytest.raises(ConnectionDeadError):
        vault.access_token("t1")
    vault.revoke_and_delete("t1")  # idempotent
    assert world.counters().get("revoke") == 1


def test_revoke_failure_at_intuit_is_recorded_not_fatal(world: World) -> None:
    world.connect(world.lambda_(), "t1")
    world.lambda_(failing_oauth(world, status=500)).revoke_and_delete("t1")
    connection = world.store().get("t1")
    assert connection is not None
    assert not connection.has_tokens
    assert connection.revoke_error is not None
    assert "http_500" in connection.revoke_error


def test_disconnect_and_revoked_by_user(world: World) -> None:
    vault = world.lambda_()
    world.connect(vault, "t1")
    world.connect(vault, "t2")
    store = world.store()

    assert store.mark_disconnected("t1", True, world.clock.now()) is Health.HEALTHY
    connection = store.get("t1")
    assert connection is not None
    assert (connection.health, connection.keep_mappings) == (Health.DISCONNECTED, True)
    assert connection.disconnected_at is not None
    with pytest.raises(NeverConnectedError):
        store.mark_disconnected("nobody", False, world.clock.now())

    vault.mark_revoked("t2")
    revoked = store.get("t2")
    assert revoked is not None
    assert revoked.health is Health.REVOKED
    assert not revoked.has_tokens
    last = world.health_events()[-1]
    assert (last["from"], last["to"], last["reason"]) == ("healthy", "revoked", "revoked_by_user")
    with pytest.raises(ConnectionDeadError) as caught:
        vault.access_token("t2")
    assert caught.value.health is Health.REVOKED


def test_status_shows_health_and_lifetimes_never_tokens(world: World) -> None:
    vault = world.lambda_()
    realm, tokens = world.connect(vault, "t1")
    vault.record_success("t1", world.clock.now())

    status = vault.status("t1")

    assert status["tenant_id"] == "t1"
    assert status["realm_id"] == realm
    assert status["connected"] is True
    assert status["health"] == "healthy"
    assert status["reason"] == "connected"
    assert status["last_success_at"] is not None
    assert status["last_refresh_at"] is not None
    for name in ("access_expires_at", "refresh_expires_at", "hard_expires_at"):
        assert datetime.fromisoformat(status[name]) > world.clock.now()
    assert status["hard_expires_in_days"] >= 5 * 365 - 1
    assert "reconnect_url" not in status
    text = repr(status)
    assert tokens.access_token.get_secret_value() not in text
    assert tokens.refresh_token.get_secret_value() not in text
    assert vault.status("nobody")["connected"] is False


def test_record_success_writes_at_most_once_a_minute(world: World) -> None:
    world.connect(world.lambda_(), "t1")
    first, second = world.lambda_(), world.lambda_()
    start = world.clock.now().replace(microsecond=0)

    def last_success() -> datetime | None:
        return world.store().get("t1").last_success_at  # type: ignore[union-attr]

    first.record_success("t1", start)
    assert last_success() == start
    first.record_success("t1", start + timedelta(seconds=30))  # throttled in memory
    second.record_success("t1", start + timedelta(seconds=40))  # throttled by the table
    assert last_success() == start
    first.record_success("t1", start + timedelta(seconds=59))
    assert last_success() == start
    second.record_success("t1", start + timedelta(seconds=61))
    assert last_success() == start + timedelta(seconds=61)


def test_logs_never_carry_tokens(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    vault = world.lambda_()
    _, tokens = world.connect(vault, "t1")
    world.clock.advance(3600)
    refreshed = vault.access_token("t1")
    with pytest.raises(TokenRefreshError):
        world.lambda_(failing_oauth(world)).token_rejected("t1", refreshed)
    vault.revoke_and_delete("t1")

    logged = "\n".join(repr(vars(record)) for record in caplog.records)
    assert "qbo tokens refreshed" in logged  # the logger did write, with its structured fields
    assert "intuit_tid" in logged
    for secret in (
        tokens.access_token.get_secret_value(),
        tokens.refresh_token.get_secret_value(),
        refreshed,
    ):
        assert secret not in logged
        assert [piece for piece in substrings(secret) if piece in logged] == []


# --- the connections table beyond tokens ---------------------------------------------------------


def test_realm_ownership_is_one_to_one(world: World) -> None:
    store = world.store()
    store.claim_realm("9341", "t1")
    store.claim_realm("9341", "t1")  # the same tenant again: fine
    with pytest.raises(RealmTakenError) as caught:
        store.claim_realm("9341", "t2")
    assert (caught.value.realm_id, caught.value.owner_tenant) == ("9341", "t1")
    assert store.owner_of("9341") == "t1"
    assert store.release_realm("9341", "t2") is False  # not the owner: nothing changes
    assert store.owner_of("9341") == "t1"
    assert store.release_realm("9341", "t1") is True
    assert store.owner_of("9341") is None
    store.claim_realm("9341", "t2")
    assert store.owner_of("9341") == "t2"


def test_connection_item_company_and_listing(world: World) -> None:
    store = world.store()
    now = world.clock.now()
    store.put_connection("t1", "100", connected_at=now)
    store.put_connection("t2", "200", connected_at=now, company=CompanyRecord(name="B", country="CA"))
    store.update_company(
        "t1",
        CompanyRecord(name="A", legal_name="A Ltd", country="US", currency="USD", tax_model="us_automated"),
    )
    with pytest.raises(NeverConnectedError):
        store.update_company("nobody", CompanyRecord(name="x"))
    store.claim_realm("100", "t1")

    one = store.get("t1")
    assert one is not None
    assert one.company == CompanyRecord(
        name="A", legal_name="A Ltd", country="US", currency="USD", tax_model="us_automated"
    )
    assert one.health is None
    assert not one.has_tokens
    assert sorted(c.tenant_id for c in store.all_connections()) == ["t1", "t2"]
    assert list(store.list_by_health(Health.HEALTHY)) == []
    assert store.get("nobody") is None

    vault = world.lambda_()
    world.connect(vault, "t3")
    assert [c.tenant_id for c in store.list_by_health(Health.HEALTHY)] == ["t3"]
