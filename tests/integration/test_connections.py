"""Connect → callback → status → disconnect (both modes) → reconnect, through the real Lambda handlers:
moto in process for DynamoDB, KMS and EventBridge, the QBO sandbox over real sockets for Intuit. The
browser's redirects are followed by hand, so every hop is visible to the assertions."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from moto import mock_aws

from infra import tables
from qbo_sandbox.server import SandboxServer
from shared import wiring
from shared.connections.callback import CallbackOutcome, CallbackParams, CallbackResult
from shared.connections.flows import TENANT_ID_PATTERN, ConnectionFlows
from shared.connections.oauth_state import (
    OAuthState,
    OAuthStateStore,
    StateAlreadyUsedError,
    StateCodec,
    StateExpiredError,
    StateNotFoundError,
)
from shared.connections.store import ConnectionStore
from shared.kernel import constants
from shared.kernel.events import (
    CONNECTION_CONNECTED,
    CONNECTION_DISCONNECTED,
    CONNECTION_HEALTH_CHANGED,
    EventBridgePublisher,
    RecordingPublisher,
)
from shared.kernel.observability import logger
from shared.kernel.settings import IntuitEnvironment, Settings, settings_from_env
from tests.integration.connections_fixtures import (
    ALLOWED_PREFIXES,
    REDIRECT_URI,
    REGION,
    RETURN_URL,
    World,
)
from tests.qbo_helpers import basic_auth

CONNECTED = CONNECTION_CONNECTED
DISCONNECTED = CONNECTION_DISCONNECTED
HEALTH = CONNECTION_HEALTH_CHANGED
SIGNING_KEY = "integration-test-state-signing-key"
ROOT = Path(__file__).resolve().parents[2]


def _settings(server: SandboxServer, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "client_id": server.sandbox.settings.client_id,
        "client_secret": server.sandbox.settings.client_secret,
        "redirect_uri": REDIRECT_URI,
        "return_url_allowlist": ALLOWED_PREFIXES,
        "app_id": "qbo-link-test-app",
        "state_signing_key": SIGNING_KEY,
        "intuit_environment": IntuitEnvironment.LOCAL,
        "local_sandbox_url": server.url,
        "http_timeout_seconds": 10,
        **changes,
    }
    return Settings.model_validate(values)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def world(aws: None, sandbox_server: SandboxServer) -> Iterator[World]:
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    for spec in tables.TABLES:
        tables.create_table(dynamodb.meta.client, spec)
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="qbo-link tokens")["KeyMetadata"]["KeyId"]
    settings = _settings(sandbox_server, kms_key_id=key_id)
    events = RecordingPublisher()
    wiring.reset()
    wiring.override(settings=settings, clock=sandbox_server.sandbox.clock, events=events)
    here = World(sandbox_server, settings, events, key_id, dynamodb, kms)
    try:
        yield here
    finally:
        wiring.reset()
        here.http.close()


@pytest.fixture
def powertools_log() -> Iterator[io.StringIO]:
    """Every line our Powertools logger writes (JSON, as CloudWatch would get it), at DEBUG."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream = handler.setStream(buffer)
    previous_level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield buffer
    finally:
        handler.setStream(previous_stream)
        logger.setLevel(previous_level)


def flows(world: World, **changes: Any) -> ConnectionFlows:
    """The flows as wiring builds them, with some collaborators swapped (fakes at the ports)."""
    parts: dict[str, Any] = {
        "settings": world.settings,
        "store": wiring.store(),
        "vault": wiring.vault(),
        "oauth": wiring.oauth(),
        "states": wiring.states(),
        "events": world.events,
        "clock": world.clock,
        "qbo_client": wiring.qbo_client,
        **changes,
    }
    return ConnectionFlows(**parts)


def state_of(authorization_url: str) -> str:
    return parse_qs(urlsplit(authorization_url).query)["state"][0]


# --- connect ------------------------------------------------------------------------------------


def test_connect_callback_and_status(world: World) -> None:
    # Given a tenant asking to connect
    answer = world.api("POST", "/tenants/firm-1/connection", body={"return_url": RETURN_URL})
    assert answer.status == 201, answer.body
    started = answer.json()
    authorize = urlsplit(started["authorization_url"])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{world.server.url}/connect/oauth2"
    query = parse_qs(authorize.query)
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["scope"] == ["com.intuit.quickbooks.accounting"]
    assert query["response_type"] == ["code"]
    assert StateCodec(SIGNING_KEY).verify(query["state"][0])
    expires = started["state_expires_at"]
    ttl = world.settings.state_ttl_seconds
    assert abs((_instant(expires) - world.clock.now()).total_seconds() - ttl) < 5

    # When the user consents at Intuit and Intuit calls back
    callback = world.callback(world.consent(started["authorization_url"]))

    # Then the browser goes back to the app, told the realm
    assert callback.status == 302
    assert callback.headers["cache-control"] == "no-store"
    assert callback.location.startswith(RETURN_URL + "?")
    realm = callback.location_params()["realmId"]
    assert callback.location_params() == {"status": "connected", "realmId": realm}
    assert world.owner_of(realm) == "firm-1"
    runtime = world.scan(world.settings.runtime_table)
    assert any(i[constants.PK].startswith(constants.GOVERNOR_PREFIX + realm) for i in runtime)  # paced

    # And the status shows the connection and the company's facts, and no token
    status = world.status("firm-1")
    assert status["connected"] is True
    assert status["realm_id"] == realm
    assert status["health"] == "healthy"
    assert status["company_name"] == world.sandbox("GET", f"/companies/{realm}")["name"]
    assert status["company"]["country"] == "US"
    assert status["company"]["currency"] == "USD"
    assert status["company"]["tax_model"] == "us_automated"
    assert status["company"]["fiscal_year_start_month"] in range(1, 13)
    for name in (
        "access_expires_at",
        "refresh_expires_at",
        "hard_expires_at",
        "last_success_at",
        "connected_at",
    ):
        assert status[name] is not None, name
    assert _instant(status["access_expires_at"]) > world.clock.now() + timedelta(minutes=50)
    assert not any(token in json.dumps(status) for token in world.plaintext_tokens("firm-1"))

    # And one event tells the host app, with an id derived from the consent
    (event,) = world.published(CONNECTED)
    assert event.tenant_id == "firm-1"
    assert event.detail["realm_id"] == realm
    assert event.detail["tax_model"] == "us_automated"
    assert event.detail["reconnected"] is False
    assert len(event.event_id) == 32


def test_a_non_us_company_records_per_line_tax_and_its_currency(world: World) -> None:
    realm = world.connect("firm-ca", sandbox_country="CA")
    company = world.status("firm-ca")["company"]
    assert (company["country"], company["currency"], company["tax_model"]) == ("CA", "CAD", "per_line")
    assert world.published(CONNECTED)[0].detail["realm_id"] == realm


def test_tokens_are_never_stored_in_plain_text_nor_logged_nor_answered(
    world: World,
    powertools_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    # Given a connection, its tokens once refreshed by the keep-alive, a status read and a disconnect
    realm = world.connect("firm-1")
    first = world.plaintext_tokens("firm-1")
    world.clock.advance(21 * 3600)
    report = world.keep_alive()
    assert report["refreshed"] == 1
    second = world.plaintext_tokens("firm-1")
    assert len(first) == len(second) == 2
    assert not set(first) & set(second)
    answers = [world.api("GET", "/tenants/firm-1/connection").body]
    answers.append(world.api("DELETE", "/tenants/firm-1/connection", query={"mappings": "keep"}).body)

    # Then no token is anywhere: tables, answers, our JSON logs, library logs, stdout/stderr
    captured = capsys.readouterr()
    ours = powertools_log.getvalue()
    assert "connection callback completed" in ours  # the capture works
    assert realm in ours
    stored = repr(world.scan(world.settings.connections_table)) + repr(
        world.scan(world.settings.runtime_table)
    )
    for token in first + second:
        for place, text in {
            "tables": stored,
            "answers": "".join(answers),
            "our logs": ours,
            "library logs": caplog.text,
            "stdout": captured.out,
            "stderr": captured.err,
        }.items():
            assert token not in text, place


# --- replays ------------------------------------------------------------------------------------


def test_a_replayed_callback_lands_connected_without_exchanging_the_code_again(world: World) -> None:
    query = world.consent(world.start("firm-1"))
    first = world.callback(query)
    realm = first.location_params()["realmId"]
    assert world.token_calls() == 1

    again = world.callback(query)

    assert again.status == 302
    assert again.location_params() == {"status": "connected", "realmId": realm}
    assert world.token_calls() == 1  # a second exchange would make Intuit revoke the grant
    assert world.live_grants(realm) == 1
    assert world.status("firm-1")["health"] == "healthy"
    assert len(world.published(CONNECTED)) == 1


class SlowExchange:
    """Intuit's token endpoint taking its time while ``during`` runs (the browser sending the same
    callback again): the real IntuitOAuth otherwise."""

    def __init__(self, inner: Any, during: Callable[[], CallbackOutcome]) -> None:
        self._inner = inner
        self._during = during
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.second: Future[CallbackOutcome] | None = None

    def exchange_code(self, code: str, code_verifier: str | None = None) -> Any:
        self.second = self.pool.submit(self._during)
        time.sleep(0.5)  # the second callback is now waiting for this one's outcome
        return self._inner.exchange_code(code, code_verifier=code_verifier)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_callback_repeated_during_the_exchange_exchanges_the_code_once(world: World) -> None:
    # Given the browser repeats the callback while the first one is exchanging the code
    params = CallbackParams.from_query(world.consent(world.start("firm-1")))
    slow = SlowExchange(wiring.oauth(), lambda: connections.complete_connection(params))
    connections = flows(world, oauth=slow)

    # When the first completes
    first = connections.complete_connection(params)

    # Then both land connected and Intuit saw one exchange
    assert slow.second is not None
    second = slow.second.result(timeout=30)
    slow.pool.shutdown()
    assert (first.result, first.replayed) == (CallbackResult.CONNECTED, False)
    assert (second.result, second.replayed) == (CallbackResult.CONNECTED, True)
    assert _params(second) == _params(first)
    assert world.token_calls() == 1
    assert world.live_grants(params.realm_id or "") == 1


def test_a_replay_after_a_callback_that_never_finished_starts_nothing(world: World) -> None:
    # Given a state consumed by a callback that died before recording its outcome
    query = world.consent(world.start("firm-1"))
    state_id = StateCodec(SIGNING_KEY).verify(query["state"])
    wiring.states().consume(state_id, int(world.clock.now().timestamp()), 600)

    outcome = flows(world, replay_wait_seconds=0.3).complete_connection(CallbackParams.from_query(query))

    assert outcome.replayed is True
    assert _params(outcome) == {"status": "error", "reason": "state_already_used"}
    assert world.token_calls() == 0
    assert world.status("firm-1")["connected"] is False


def test_a_replayed_denial_repeats_the_denial(world: World) -> None:
    query = world.consent(world.start("firm-1"), sandbox_consent="deny")
    assert world.callback(query).location_params()["status"] == "denied"

    again = world.callback(query)

    assert again.location_params() == {"status": "denied", "reason": "access_denied"}


# --- the state ----------------------------------------------------------------------------------


class SpyStates(OAuthStateStore):
    """The real state store, counting every call that reaches the runtime table."""

    def __init__(self, table: Any) -> None:
        super().__init__(table)
        self.calls: list[str] = []

    def consume(self, state_id: str, now: int, keep_seconds: int) -> OAuthState:
        self.calls.append("consume")
        return super().consume(state_id, now, keep_seconds)

    def get(self, state_id: str) -> OAuthState | None:
        self.calls.append("get")
        return super().get(state_id)


def test_a_forged_state_is_refused_before_any_database_read(world: World) -> None:
    spy = SpyStates(world.dynamodb.Table(world.settings.runtime_table))
    _, forged = StateCodec("an-attackers-own-signing-key").new()
    params = CallbackParams(code="code-1", state=forged, realm_id="9341000000000001")

    outcome = flows(world, states=spy).complete_connection(params)

    assert outcome.result is CallbackResult.INVALID_STATE
    assert outcome.reason == "state_invalid"
    assert spy.calls == []


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ({"code": "c", "realmId": "9341000000000001"}, "no state"),
        ({"code": "c", "state": "state-123", "realmId": "9341000000000001"}, "not valid"),
        ({"code": "c", "state": "A" * 32 + "." + "B" * 43, "realmId": "9341000000000001"}, "not valid"),
    ],
)
def test_a_callback_without_a_valid_state_gets_an_error_page(
    world: World, query: dict[str, str], text: str
) -> None:
    answer = world.callback(query)

    assert answer.status == 400
    assert "location" not in answer.headers  # the return URL is unknown: nowhere safe to go
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-store"
    assert text in answer.body


def test_an_unknown_state_signed_with_our_key_gets_an_error_page(world: World) -> None:
    _, never_stored = StateCodec(SIGNING_KEY).new()
    answer = world.callback({"code": "c", "state": never_stored, "realmId": "9341000000000001"})
    assert answer.status == 400
    assert "not known" in answer.body


def test_an_expired_state_is_refused_and_the_code_never_exchanged(world: World) -> None:
    url = world.start("firm-1")
    world.clock.advance(world.settings.state_ttl_seconds + 1)
    query = world.consent(url)

    first = world.callback(query)
    again = world.callback(query)

    assert (first.status, again.status) == (400, 400)
    assert "expired" in first.body
    assert "expired" in again.body
    assert world.token_calls() == 0
    assert world.status("firm-1")["connected"] is False


def test_a_state_is_single_use_and_keeps_its_outcome(world: World) -> None:
    store = wiring.states()
    codec = StateCodec(SIGNING_KEY)
    now = int(world.clock.now().timestamp())
    state_id, _ = codec.new()
    store.put(OAuthState(state_id, "firm-1", RETURN_URL, created_at=now, expires_at=now + 600))
    (item,) = world.state_items()
    assert item[constants.TTL_ATTRIBUTE] == now + 600  # DynamoDB TTL cleans up eventually

    consumed = store.consume(state_id, now + 1, keep_seconds=600)
    assert (consumed.tenant_id, consumed.return_url, consumed.consumed_at) == ("firm-1", RETURN_URL, now + 1)
    store.record_outcome(state_id, "denied", "access_denied", None)
    with pytest.raises(StateAlreadyUsedError) as used:
        store.consume(state_id, now + 2, keep_seconds=600)
    assert (used.value.state.result, used.value.state.reason) == ("denied", "access_denied")

    expired_id, _ = codec.new()
    store.put(OAuthState(expired_id, "firm-1", RETURN_URL, created_at=now, expires_at=now + 600))
    with pytest.raises(StateExpiredError):
        store.consume(expired_id, now + 600, keep_seconds=600)
    with pytest.raises(StateNotFoundError):
        store.consume(codec.new()[0], now, keep_seconds=600)


# --- denial and Intuit's errors -----------------------------------------------------------------


def test_denied_consent_returns_to_the_app_with_the_reason(world: World) -> None:
    query = world.consent(world.start("firm-1"), sandbox_consent="deny")
    assert query["error"] == "access_denied"

    answer = world.callback(query)

    assert answer.status == 302
    assert answer.location.startswith(RETURN_URL + "?")
    assert answer.location_params() == {"status": "denied", "reason": "access_denied"}
    assert world.token_calls() == 0
    assert world.status("firm-1")["connected"] is False
    assert world.published(CONNECTED) == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("server_error", "server_error"),
        ("invalid_scope", "invalid_scope"),
        ("<script>", "authorization_failed"),
    ],
)
def test_intuit_errors_return_to_the_app_with_a_clear_reason(world: World, error: str, reason: str) -> None:
    state = state_of(world.start("firm-1"))

    answer = world.callback({"state": state, "error": error, "error_description": "<b>details</b>"})

    assert answer.location_params() == {"status": "error", "reason": reason}


def _redeem_elsewhere(world: World, query: dict[str, str], verifier: str | None) -> int:
    """Someone else calling Intuit's token endpoint with the callback's code."""
    form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI}
    if verifier is not None:
        form["code_verifier"] = verifier
    answer = world.http.post(
        f"{world.server.url}/oauth2/v1/tokens/bearer",
        data=form,
        headers={"Authorization": basic_auth(world.server), "Accept": "application/json"},
    )
    return answer.status_code


def test_a_code_already_used_elsewhere_ends_with_a_clear_reason(world: World) -> None:
    query = world.consent(world.start("firm-1"))
    assert _redeem_elsewhere(world, query, StateCodec(SIGNING_KEY).code_verifier(query["state"])) == 200

    answer = world.callback(query)

    assert answer.location_params() == {"status": "error", "reason": "authorization_expired"}
    assert world.owner_of(query["realmId"]) is None


def test_wrong_app_credentials_end_with_a_configuration_reason(
    world: World, sandbox_server: SandboxServer
) -> None:
    wrong = _settings(sandbox_server, kms_key_id=world.key_id, client_secret="not-the-secret")
    wiring.override(settings=wrong)
    query = world.consent(world.start("firm-1"))

    answer = world.callback(query)

    assert answer.location_params() == {"status": "error", "reason": "intuit_configuration"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"code": ""}, "missing_code"),
        ({"realmId": ""}, "missing_realm"),
        ({"realmId": "93-41"}, "missing_realm"),
    ],
)
def test_a_callback_missing_its_code_or_realm_is_refused(
    world: World, change: dict[str, str], reason: str
) -> None:
    query = {**world.consent(world.start("firm-1")), **change}
    assert world.callback(query).location_params() == {"status": "error", "reason": reason}
    assert world.token_calls() == 0


# --- one realm, one tenant ----------------------------------------------------------------------


def test_a_realm_connected_to_another_tenant_is_refused_before_any_exchange(world: World) -> None:
    realm = world.connect("firm-a")

    answer = world.callback(world.consent(world.start("firm-b"), realmId=realm))

    assert answer.location_params() == {"status": "error", "reason": "realm_already_connected"}
    assert world.token_calls() == 1  # firm-a's only: no grant was created for firm-b
    assert world.owner_of(realm) == "firm-a"
    assert world.status("firm-a")["health"] == "healthy"
    assert world.status("firm-b")["connected"] is False


class RacingStore(ConnectionStore):
    """Another tenant claims the realm between our ownership check and our claim."""

    def owner_of(self, realm_id: str) -> str | None:
        return None


def test_a_realm_claimed_during_the_exchange_is_refused_and_the_fresh_grant_revoked(world: World) -> None:
    realm = world.connect("firm-a")
    query = world.consent(world.start("firm-b"), realmId=realm)
    racing = RacingStore(world.dynamodb.Table(world.settings.connections_table))

    outcome = flows(world, store=racing).complete_connection(CallbackParams.from_query(query))

    assert _params(outcome) == {"status": "error", "reason": "realm_already_connected"}
    grants = world.grants(realm)
    assert len(grants) == 2
    assert sum(g["revoked"] for g in grants) == 1  # firm-b's fresh grant, not firm-a's
    assert world.owner_of(realm) == "firm-a"
    assert wiring.vault().access_token("firm-a")  # firm-a still works
    assert world.status("firm-a")["health"] == "healthy"


def test_a_callback_naming_a_realm_the_grant_cannot_read_is_refused(world: World) -> None:
    # Given the user consents for a new company, but the callback is edited to name another one
    other = world.new_company()
    query = world.consent(world.start("firm-1"))
    granted = query["realmId"]

    answer = world.callback({**query, "realmId": other})

    assert answer.location_params() == {"status": "error", "reason": "realm_mismatch"}
    assert world.owner_of(other) is None
    assert world.owner_of(granted) is None
    assert world.live_grants(granted) == 0  # the fresh grant was revoked
    assert world.status("firm-1")["connected"] is False


def test_a_connected_tenant_cannot_switch_to_another_company(world: World) -> None:
    realm = world.connect("firm-1")

    answer = world.callback(world.consent(world.start("firm-1")))  # consents for a new company

    assert answer.location_params() == {"status": "error", "reason": "tenant_connected_to_another_company"}
    assert world.token_calls() == 1
    status = world.status("firm-1")
    assert (status["realm_id"], status["health"]) == (realm, "healthy")


def test_a_connected_tenant_may_consent_again_for_its_company(world: World) -> None:
    realm = world.connect("firm-1")
    before = world.plaintext_tokens("firm-1")

    assert world.connect("firm-1", realmId=realm) == realm

    assert world.status("firm-1")["health"] == "healthy"
    assert set(world.plaintext_tokens("firm-1")).isdisjoint(before)
    assert [e.detail["reconnected"] for e in world.published(CONNECTED)] == [False, True]


# --- disconnect and reconnect ---------------------------------------------------------------------


def test_disconnect_keeping_mappings_then_reconnecting_carries_on(world: World) -> None:
    realm = world.connect("firm-1")

    answer = world.api("DELETE", "/tenants/firm-1/connection", query={"mappings": "keep"})

    assert answer.status == 200, answer.body
    body = answer.json()
    assert (body["realm_id"], body["keep_mappings"], body["already_disconnected"]) == (realm, True, False)
    status = world.status("firm-1")
    assert (status["connected"], status["health"], status["keep_mappings"]) == (False, "disconnected", True)
    assert status["access_expires_at"] is None
    assert world.plaintext_tokens("firm-1") == []
    assert world.live_grants(realm) == 0  # revoked at Intuit
    assert world.owner_of(realm) == "firm-1"  # the company stays this tenant's
    (event,) = world.published(DISCONNECTED)
    assert event.detail["keep_mappings"] is True
    assert [(e.detail["from"], e.detail["to"]) for e in world.published(HEALTH)] == [
        ("healthy", "disconnected")
    ]

    # A repeat changes nothing and publishes the same event (same id) again
    again = world.api("DELETE", "/tenants/firm-1/connection", query={"mappings": "keep"})
    assert again.status == 200
    assert again.json()["already_disconnected"] is True
    assert again.json()["disconnected_at"] == body["disconnected_at"]
    assert {e.event_id for e in world.published(DISCONNECTED)} == {event.event_id}

    # Meanwhile no other tenant can take the company
    refused = world.callback(world.consent(world.start("firm-2"), realmId=realm))
    assert refused.location_params()["reason"] == "realm_already_connected"

    # Reconnecting the same company carries on
    assert world.connect("firm-1", realmId=realm) == realm
    status = world.status("firm-1")
    assert (status["connected"], status["health"], status["keep_mappings"]) == (True, "healthy", None)
    assert world.published(CONNECTED)[-1].detail["reconnected"] is True


def test_disconnect_removing_mappings_releases_the_company(world: World) -> None:
    realm = world.connect("firm-1")

    answer = world.api("DELETE", "/tenants/firm-1/connection", query={"mappings": "remove"})

    assert answer.status == 200, answer.body
    assert answer.json()["keep_mappings"] is False
    assert world.owner_of(realm) is None
    assert world.live_grants(realm) == 0
    assert world.published(DISCONNECTED)[0].detail["keep_mappings"] is False

    # Mappings removed cannot be "kept" afterwards
    conflict = world.api("DELETE", "/tenants/firm-1/connection", query={"mappings": "keep"})
    assert conflict.status == 409
    assert conflict.json()["detail"][0]["loc"] == ["query", "mappings"]

    # Another tenant may now connect the company, and the first may connect another one
    assert world.connect("firm-2", realmId=realm) == realm
    assert world.owner_of(realm) == "firm-2"
    assert world.status("firm-1")["health"] == "disconnected"
    other = world.connect("firm-1")
    assert other != realm
    assert world.status("firm-1")["realm_id"] == other


def test_keep_then_remove_releases_the_company_later(world: World) -> None:
    realm = world.connect("firm-1")
    world.api("DELETE", "/tenants/firm-1/connection", query={"mappings": "keep"})

    answer = world.api("DELETE", "/tenants/firm-1/connection", query={"mappings": "remove"})

    assert answer.status == 200
    assert answer.json()["already_disconnected"] is False
    assert world.owner_of(realm) is None
    assert [e.detail["keep_mappings"] for e in world.published(DISCONNECTED)] == [True, False]


def test_disconnecting_a_tenant_that_never_connected_is_not_found(world: World) -> None:
    answer = world.api("DELETE", "/tenants/firm-9/connection", query={"mappings": "keep"})
    assert answer.status == 404
    assert answer.json()["detail"][0]["type"] == "not_connected"


def test_the_status_of_a_tenant_that_never_connected_is_a_404(world: World) -> None:
    world.start("firm-9")  # a consent started and never completed does not make a tenant

    answer = world.api("GET", "/tenants/firm-9/connection")

    assert answer.status == 404
    assert answer.json()["detail"] == [
        {
            "loc": ["path", "tenant_id"],
            "msg": "tenant 'firm-9' has never connected a QBO company",
            "type": "not_connected",
        }
    ]


def test_the_status_of_a_connected_tenant_names_every_field(world: World) -> None:
    world.connect("firm-1")
    status = world.status("firm-1")
    assert status["connected"] is True
    assert {"company_name", "last_success_at", "refresh_expires_at"} <= status.keys()


# --- Intuit's disconnect and reconnect URLs --------------------------------------------------------


def test_intuits_disconnect_url_marks_a_connection_revoked_in_quickbooks(world: World) -> None:
    realm = world.connect("firm-1")
    world.sandbox("POST", "/oauth/revoke", {"realm_id": realm})  # the user disconnects in QBO

    answer = world.oauth("/oauth/disconnect", {"realmId": realm})

    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-store"
    status = world.status("firm-1")
    assert (status["connected"], status["health"]) == (False, "revoked")
    assert world.published(HEALTH)[-1].detail["to"] == "revoked"


def test_a_disconnect_notice_the_grant_contradicts_changes_nothing(world: World) -> None:
    realm = world.connect("firm-1")

    forged = world.oauth("/oauth/disconnect", {"realmId": realm})
    unknown = world.oauth("/oauth/disconnect", {"realmId": "9341999999999999"})
    bare = world.oauth("/oauth/disconnect")

    assert world.status("firm-1")["health"] == "healthy"
    assert world.published(HEALTH) == []
    assert forged.status == unknown.status == bare.status == 200
    assert forged.body == unknown.body == bare.body  # the page tells a stranger nothing


def test_intuits_reconnect_url_starts_a_consent_that_lands_on_the_tenants_return_url(world: World) -> None:
    return_url = "https://app.example.com/qbo/settings?tab=accounting"
    realm = world.connect("firm-1", return_url)
    world.sandbox("POST", "/oauth/revoke", {"realm_id": realm})
    world.oauth("/oauth/disconnect", {"realmId": realm})

    answer = world.oauth("/oauth/reconnect", {"realmId": realm})

    assert answer.status == 302
    assert answer.headers["cache-control"] == "no-store"
    assert answer.location.startswith(f"{world.server.url}/connect/oauth2?")
    callback = world.callback(world.consent(answer.location, realmId=realm))
    assert callback.location.startswith(return_url + "&")
    assert callback.location_params() == {"tab": "accounting", "status": "connected", "realmId": realm}
    assert world.status("firm-1")["health"] == "healthy"


def test_the_reconnect_url_falls_back_to_the_default_return_url(world: World) -> None:
    realm = world.connect("firm-1")
    world.dynamodb.Table(world.settings.runtime_table).delete_item(
        Key={constants.PK: constants.OAUTH_STATE_PREFIX + "TENANT#firm-1", constants.SK: "RETURN_URL"}
    )

    answer = world.oauth("/oauth/reconnect", {"realmId": realm})
    callback = world.callback(world.consent(answer.location, realmId=realm))

    assert callback.location.startswith(ALLOWED_PREFIXES[0] + "?")


@pytest.mark.parametrize("query", [{}, {"realmId": ""}, {"realmId": "93x1"}, {"realmId": "1" * 33}])
def test_a_reconnect_url_naming_no_valid_company_shows_a_page(world: World, query: dict[str, str]) -> None:
    answer = world.oauth("/oauth/reconnect", query)
    assert answer.status == 400
    assert "location" not in answer.headers
    assert world.state_items() == []


# --- the tenant API's input checks ---------------------------------------------------------------


@pytest.mark.parametrize(
    "return_url",
    [
        "https://app.example.com.evil.com/qbo",
        "https://app.example.com@evil.com/qbo",
        "//evil.com/qbo",
        "javascript:alert(1)",
        "https://app.example.com/qbox",
        "https:/\\evil.com/qbo",
        "https://app.example.com/qbo/../../admin",
    ],
)
def test_a_return_url_outside_the_allow_list_is_refused_and_nothing_stored(
    world: World, return_url: str
) -> None:
    answer = world.api("POST", "/tenants/firm-1/connection", body={"return_url": return_url})

    assert answer.status == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "return_url"]
    assert problem["msg"]
    assert world.state_items() == []


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (("POST", "/tenants/-bad/connection", {"return_url": RETURN_URL}, None), "tenant_id"),
        (("POST", "/tenants/" + "t" * 65 + "/connection", {"return_url": RETURN_URL}, None), "tenant_id"),
        (("GET", "/tenants/t%23x/connection", None, None), "tenant_id"),
        (("POST", "/tenants/firm-1/connection", None, None), "body"),
        (("POST", "/tenants/firm-1/connection", {}, None), "return_url"),
        (("POST", "/tenants/firm-1/connection", {"return_url": 7}, None), "return_url"),
        (("POST", "/tenants/firm-1/connection", {"return_url": RETURN_URL, "tenant": "x"}, None), "tenant"),
        (("DELETE", "/tenants/firm-1/connection", None, None), "mappings"),
        (("DELETE", "/tenants/firm-1/connection", None, {"mappings": "maybe"}), "mappings"),
    ],
)
def test_bad_input_gets_a_422_naming_the_field(
    world: World, request_: tuple[str, str, Any, dict[str, str] | None], field: str
) -> None:
    method, path, body, query = request_

    answer = world.api(method, path, body=body, query=query)

    assert answer.status == 422, answer.body
    problems = answer.json()["detail"]
    assert field in {p["loc"][-1] for p in problems}, problems
    assert all(p["msg"] for p in problems)
    assert world.state_items() == []


def test_a_body_that_is_not_json_gets_a_422(world: World) -> None:
    answer = world.api_raw("POST", "/tenants/firm-1/connection", "{not json")
    assert answer.status == 422
    assert answer.json()["detail"][0]["loc"][0] == "body"


def test_the_openapi_document_describes_the_connection_routes() -> None:
    from functions.api.handler import app

    document = json.loads(app.get_openapi_json_schema())
    route = document["paths"]["/tenants/{tenant_id}/connection"]
    assert set(route) == {"get", "post", "delete"}
    assert {"201", "422"} <= set(route["post"]["responses"])
    assert {"200", "404", "409", "422"} <= set(route["delete"]["responses"])
    (tenant,) = route["post"]["parameters"]
    assert (tenant["name"], tenant["in"], tenant["schema"]["pattern"]) == (
        "tenant_id",
        "path",
        TENANT_ID_PATTERN,
    )
    (mappings,) = [p for p in route["delete"]["parameters"] if p["name"] == "mappings"]
    assert (mappings["in"], mappings["required"], mappings["schema"]["enum"]) == (
        "query",
        True,
        ["keep", "remove"],
    )
    request = document["components"]["schemas"]["StartConnectionRequest"]
    assert request["required"] == ["return_url"]
    assert request["additionalProperties"] is False


def test_an_unknown_route_is_not_found(world: World) -> None:
    assert world.api("GET", "/tenants/firm-1/nothing").status == 404
    assert world.oauth("/oauth/nothing").status == 404


# --- keep-alive -------------------------------------------------------------------------------------


def test_the_keep_alive_refreshes_a_connection_idle_for_a_day(world: World) -> None:
    world.connect("firm-1")
    assert world.keep_alive()["fresh"] == 1

    world.clock.advance(21 * 3600)
    report = world.keep_alive()

    assert (report["checked"], report["refreshed"], report["dead"]) == (1, 1, 0)
    assert all(isinstance(value, int) for value in report.values())
    assert world.token_calls("refresh_token") == 1
    assert world.status("firm-1")["health"] == "healthy"


# --- wiring -----------------------------------------------------------------------------------------


def test_the_default_publisher_delivers_connection_events_to_the_bus(world: World) -> None:
    # Given the stack's bus with a rule forwarding QBO Link's events to a queue
    bus = world.settings.event_bus_name
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName="host-app")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="all", EventBusName=bus, EventPattern=json.dumps({"source": [constants.EVENT_SOURCE]})
    )
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    wiring.reset()
    wiring.override(settings=world.settings, clock=world.clock)  # events: the default
    assert isinstance(wiring.events(), EventBridgePublisher)

    realm = world.connect("firm-1")

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    delivered = [json.loads(m["Body"]) for m in messages]
    (connected,) = [d for d in delivered if d["detail-type"] == CONNECTED]
    assert connected["detail"]["tenant_id"] == "firm-1"
    assert connected["detail"]["realm_id"] == realm
    assert connected["detail"]["version"] == 1


def test_clients_bind_to_aws_endpoint_url_and_are_built_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    wiring.reset()
    wiring.override(settings=world.settings)

    assert wiring.kms().meta.endpoint_url == "http://127.0.0.1:4566"
    assert wiring.dynamodb().meta.client.meta.endpoint_url == "http://127.0.0.1:4566"
    assert wiring.vault() is wiring.vault()
    assert wiring.connections() is wiring.connections()
    first = wiring.store()
    wiring.reset()
    wiring.override(settings=world.settings)
    assert wiring.store() is not first


def test_importing_the_handlers_creates_no_client() -> None:
    code = (
        "import sys\n"
        "import shared.wiring, functions.oauth.handler, functions.schedule.handler\n"
        "names = ('boto3', 'authlib', 'shared.connections.vault', 'httpx2')\n"
        "print(sorted(m for m in names if m in sys.modules))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True, timeout=60
    )
    assert answer.stdout.strip() == "[]"


def test_importing_any_handler_builds_no_event_model() -> None:
    """The events' pydantic models are built when an event is (shared.kernel.event_models), not
    at a cold start's import (docs/packaging.md)."""
    from infra import manifest

    handlers = ", ".join(spec.handler.rpartition(".")[0] for spec in manifest.FUNCTIONS)
    code = f"import sys\nimport {handlers}\nprint('shared.kernel.event_models' in sys.modules)\n"
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True, timeout=60
    )
    assert answer.stdout.strip() == "False"


# --- helpers ------------------------------------------------------------------------------------------


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _params(outcome: CallbackOutcome) -> dict[str, str]:
    assert outcome.redirect_url is not None
    return {k: v[0] for k, v in parse_qs(urlsplit(outcome.redirect_url).query).items()}


# --- attacks on the OAuth flow -------------------------------------------------------------------


class DynamoCalls:
    """Every call the flows send to DynamoDB (through the wiring's one resource)."""

    WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})

    def __init__(self) -> None:
        self.calls: list[str] = []
        wiring.dynamodb().meta.client.meta.events.register("before-call.dynamodb", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if c in self.WRITES]

    def close(self) -> None:
        wiring.dynamodb().meta.client.meta.events.unregister("before-call.dynamodb", self._seen)


def _reconnect_state(world: World, realm_id: str) -> str:
    answer = world.oauth("/oauth/reconnect", {"realmId": realm_id})
    assert answer.status == 302, answer.body
    return state_of(answer.location)


def test_a_used_code_with_a_fresh_reconnect_state_changes_nothing(world: World) -> None:
    # Given a connected tenant and the code its consent used
    query = world.consent(world.start("firm-1"))
    realm = world.callback(query).location_params()["realmId"]
    assert world.token_calls() == 1

    # When someone sends that code again with a fresh state from the public reconnect URL
    replay = world.callback({**query, "state": _reconnect_state(world, realm)})

    # Then the code is not exchanged again (Intuit would revoke the grant) and nothing changes
    assert replay.status == 302
    assert replay.location_params() == {"status": "connected", "realmId": realm}
    assert world.token_calls() == 1
    assert world.live_grants(realm) == 1
    status = world.status("firm-1")
    assert (status["connected"], status["health"]) == (True, "healthy")
    assert len(world.published(CONNECTED)) == 1


def test_a_used_code_with_another_tenants_fresh_state_is_refused(world: World) -> None:
    # Given a code that connected firm-1, whose company was then released
    query = world.consent(world.start("firm-1"))
    world.callback(query)
    assert world.api("DELETE", "/tenants/firm-1/connection", query={"mappings": "remove"}).status == 200

    # When the code comes back under a state of firm-2
    replay = world.callback({**query, "state": state_of(world.start("firm-2"))})

    # Then it is refused as used, without a call to Intuit
    assert replay.location_params() == {"status": "error", "reason": "authorization_code_used"}
    assert world.token_calls() == 1
    assert world.status("firm-2")["connected"] is False


def test_the_code_ledger_keeps_a_keyed_digest_and_never_the_code(world: World) -> None:
    query = world.consent(world.start("firm-1"))
    world.callback(query)

    items = [
        item
        for item in world.scan(world.settings.runtime_table)
        if item[constants.PK].startswith(constants.OAUTH_CODE_PREFIX)
    ]

    assert [item[constants.PK] for item in items] == [
        constants.OAUTH_CODE_PREFIX + StateCodec(SIGNING_KEY).code_digest(query["code"])
    ]
    assert items[0]["result"] == "connected"
    assert int(items[0][constants.TTL_ATTRIBUTE]) > int(world.clock.now().timestamp()) + 86_400
    assert query["code"] not in json.dumps(
        [world.scan(t) for t in (world.settings.runtime_table, world.settings.connections_table)],
        default=repr,
    )


def test_a_code_sent_with_another_tenants_state_connects_nothing(world: World) -> None:
    # Given a consent for firm-1 whose callback has not run yet, and a consent started for firm-2
    first = world.consent(world.start("firm-1"))
    other_state = state_of(world.start("firm-2"))

    # When firm-1's code comes back with firm-2's state
    mixed = world.callback({**first, "state": other_state})

    # Then the code, bound to its own consent (PKCE), does not connect firm-2 to firm-1's company
    assert mixed.location_params() == {"status": "error", "reason": "authorization_expired"}
    assert world.status("firm-2")["connected"] is False
    assert world.owner_of(first["realmId"]) is None
    assert world.live_grants(first["realmId"]) == 0


def test_a_stolen_code_without_its_verifier_is_refused_by_the_token_endpoint(world: World) -> None:
    query = world.consent(world.start("firm-1"))

    assert _redeem_elsewhere(world, query, verifier=None) == 400
    assert _redeem_elsewhere(world, query, StateCodec(SIGNING_KEY).code_verifier("another-state")) == 400

    assert world.callback(query).location_params()["status"] == "connected"


def test_the_reconnect_url_answers_alike_for_connected_and_unknown_realms_and_writes_nothing(
    world: World,
) -> None:
    realm = world.connect("firm-1")
    unknown = "9341999999999999"
    before = [world.scan(t) for t in (world.settings.runtime_table, world.settings.connections_table)]
    dynamo = DynamoCalls()
    try:
        answers = {
            r: [world.oauth("/oauth/reconnect", {"realmId": r}) for _ in range(25)] for r in (realm, unknown)
        }
    finally:
        dynamo.close()

    assert dynamo.calls == []  # no write, and no read either: nothing to time
    assert [world.scan(t) for t in (world.settings.runtime_table, world.settings.connections_table)] == before

    def shape(answer: Any) -> tuple[int, str, str]:
        split = urlsplit(answer.location)
        query = {k: v[0] for k, v in parse_qs(split.query).items() if k not in {"state", "code_challenge"}}
        return (
            answer.status,
            f"{split.scheme}://{split.netloc}{split.path}",
            json.dumps(query, sort_keys=True),
        )

    shapes = {shape(a) for batch in answers.values() for a in batch}
    assert len(shapes) == 1
    states = [state_of(a.location) for batch in answers.values() for a in batch]
    assert len(set(states)) == 50
    assert {len(s) - len(r) for s, r in zip(states, [realm] * 25 + [unknown] * 25, strict=True)} == {
        len(states[0]) - len(realm)
    }


def test_a_reconnect_callback_answers_alike_for_connected_and_unknown_realms(world: World) -> None:
    realm = world.connect("firm-1")
    unknown = "9341999999999999"

    answers = [
        world.callback({"code": "not-a-real-code", "state": _reconnect_state(world, r), "realmId": r})
        for r in (realm, unknown)
    ] + [
        world.callback({"error": "access_denied", "state": _reconnect_state(world, r), "realmId": r})
        for r in (realm, unknown)
    ]

    assert {(a.status, a.body, a.headers.get("location")) for a in answers} == {(400, answers[0].body, None)}
    assert world.status("firm-1")["health"] == "healthy"
    assert world.live_grants(realm) == 1


def test_a_reconnect_state_only_reconnects_its_own_realm(world: World) -> None:
    # Given two connected tenants
    realm_1 = world.connect("firm-1")
    realm_2 = world.connect("firm-2")
    state_for_1 = _reconnect_state(world, realm_1)

    # When a consent for firm-2's company comes back with firm-1's reconnect state,
    # whether the realmId is left alone or rewritten to firm-1's
    honest = world.callback({**world.consent(world.start("firm-2")), "state": state_for_1})
    query = world.consent(world.start("firm-2"))
    rewritten = world.callback({**query, "state": _reconnect_state(world, realm_1), "realmId": realm_1})

    # Then nothing moves: the same neutral page, each tenant on its own company
    assert honest.status == rewritten.status == 400
    assert world.status("firm-1")["realm_id"] == realm_1
    assert world.status("firm-2")["realm_id"] == realm_2
    assert world.owner_of(realm_1) == "firm-1"
    assert world.owner_of(realm_2) == "firm-2"


def test_an_expired_reconnect_state_is_refused(world: World) -> None:
    realm = world.connect("firm-1")
    location = world.oauth("/oauth/reconnect", {"realmId": realm}).location
    world.sandbox("POST", "/clock/advance", {"seconds": world.settings.state_ttl_seconds + 1})

    answer = world.callback(world.consent(location, realmId=realm))

    assert answer.status == 400
    assert "expired" in answer.body
    assert world.token_calls() == 1


def test_a_tampered_reconnect_state_is_refused_before_any_read(world: World) -> None:
    realm = world.connect("firm-1")
    state = _reconnect_state(world, realm)
    other = "9341999999999999"

    answer = world.callback(
        {"code": "c", "state": state.replace(f"R{realm}_", f"R{other}_"), "realmId": other}
    )

    assert answer.status == 400
    assert "not valid" in answer.body


def test_pkce_can_be_turned_off_for_an_authorization_server_that_refuses_it(world: World) -> None:
    off = flows(world, settings=world.settings.model_copy(update={"oauth_pkce": False}))
    assert settings_from_env({"QBO_LINK_OAUTH_PKCE": "false"}).oauth_pkce is False
    assert settings_from_env({}).oauth_pkce is True

    started = off.start_connection("firm-1", RETURN_URL)
    query = parse_qs(urlsplit(started.authorization_url).query)
    assert "code_challenge" not in query
    assert "code_challenge_method" not in query
    outcome = off.complete_connection(CallbackParams.from_query(world.consent(started.authorization_url)))

    assert outcome.result is CallbackResult.CONNECTED  # the sandbox refuses a verifier without a challenge


# --- hostile input on the public OAuth routes ----------------------------------------------------

_HOSTILE_TEXT = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=500, max_size=700),
    st.sampled_from(["", " ", "\x00", "\n", "%00", "../../", "R1_1_0123456789abcdef.x", "9" * 40, "-1"]),
)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_queries_on_the_oauth_routes_never_fail_nor_move_a_connection(
    world: World, data: Any
) -> None:
    # Given a connected tenant (set up once: hypothesis reuses the world across examples)
    if world.connected_realm is None:
        world.connected_realm = world.connect("firm-1")
    realm = world.connected_realm
    codec = StateCodec(SIGNING_KEY)
    expiry = int(world.clock.now().timestamp()) + 300
    state = data.draw(
        st.one_of(
            _HOSTILE_TEXT,
            st.just(codec.new()[1]),  # signed, never stored
            st.just(codec.new_reconnect(realm, expiry)),  # signed, for the connected realm
            st.just(codec.new_reconnect("9341999999999999", expiry)),
        )
    )
    names = ("code", "state", "realmId", "error", "error_description", "junk")
    query = data.draw(st.dictionaries(st.sampled_from(names), _HOSTILE_TEXT, max_size=5))
    query["state"] = state
    if data.draw(st.booleans()):
        query["realmId"] = realm
    path = data.draw(st.sampled_from(["/oauth/callback", "/oauth/reconnect", "/oauth/disconnect"]))
    before = world.scan(world.settings.connections_table), world.state_items()

    answer = world.oauth(path, {k: v.replace("\x00", "") for k, v in query.items()})

    # Then a page or a redirect, never a failure, and the connection is untouched
    assert answer.status in {200, 302, 400}, (path, query, answer.body)
    assert answer.headers["cache-control"] == "no-store"
    assert (world.scan(world.settings.connections_table), world.state_items()) == before


def test_the_same_code_under_two_states_at_once_is_exchanged_once(world: World) -> None:
    # Given a second callback carrying the same code under a fresh state while the first exchanges it
    params = CallbackParams.from_query(world.consent(world.start("firm-1")))
    twin = CallbackParams(code=params.code, state=state_of(world.start("firm-1")), realm_id=params.realm_id)
    slow = SlowExchange(wiring.oauth(), lambda: connections.complete_connection(twin))
    connections = flows(world, oauth=slow)

    first = connections.complete_connection(params)

    # Then the twin waited for the first outcome instead of reaching Intuit
    assert slow.second is not None
    second = slow.second.result(timeout=30)
    slow.pool.shutdown()
    assert (first.result, second.result, second.replayed) == (
        CallbackResult.CONNECTED,
        CallbackResult.CONNECTED,
        True,
    )
    assert world.token_calls() == 1
    assert world.live_grants(params.realm_id or "") == 1
