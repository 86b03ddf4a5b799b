"""The connection flows: start, Intuit's callback, disconnect, status, and Intuit's own disconnect and
reconnect URLs.

Pure of Lambda types: ``functions/oauth`` and ``functions/api`` parse events and call these. Every
collaborator (connection store, token vault, OAuth client, runtime table, QBO client factory, event
publisher, clock) is injected, so the flows run the same in Lambda, in the local stack and in tests.

Security choices, in one place (docs/connections.md repeats them):

- The OAuth ``state`` is ``<random id>.<HMAC-SHA256(signing key, id)>``: a forged or mangled state is
  refused before any database read. The id names a runtime-table item (tenant, return URL, expiry)
  that is consumed by one conditional update: single use, and its expiry is checked by us (DynamoDB
  TTL is lazy). A consumed item is kept for one more TTL so a replayed callback is recognised.
- A code is exchanged at most once, ever: a keyed digest of it is written with a conditional put
  *before* the exchange (a second redemption makes Intuit revoke the grant). A replayed callback
  repeats the first callback's outcome; a used code under another state changes nothing.
- Each consent carries a PKCE challenge (RFC 7636, S256) whose verifier is derived from its state,
  so a code only turns into tokens under the state it was issued with (where the server enforces
  PKCE; Intuit does not document it, the local sandbox does).
- Intuit's public reconnect URL mints a signed, stateless state naming its realm: no read or write
  per anonymous call, the same answer for connected and unknown realms, and at the callback it only
  reconnects the tenant holding that realm, with a code for that realm.
- The ``realmId`` of a callback is a URL parameter, so it is checked before it is trusted: the fresh
  tokens must be able to read that company's CompanyInfo before the realm is claimed.
- One realm, one tenant (the realm-owner item), and one company per tenant: while a tenant holds its
  realm (connected, or disconnected with "keep mappings"), a consent for another company is refused.
- Return URLs must match the allow-list by scheme, host, port and path boundary; no user info, no
  backslash, no dot segments, no control characters: no open redirect.

The state, its records and the return URLs are ``shared.connections.oauth_state``'s, the callback
``shared.connections.callback``'s and the company facts ``shared.connections.company``'s; the names
callers have always imported from here are re-exported.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from shared.connections.callback import (
    REALM_ID,
    RECONNECT_TITLE,
    CallbackOutcome,
    CallbackParams,
    OAuthCallback,
    Page,
    QboClientFactory,
    Redirect,
)
from shared.connections.company import (
    company_warnings,
)
from shared.connections.errors import InvalidTenantIdError, MappingsAlreadyRemovedError, NeverConnectedError
from shared.connections.health import Health, HealthChange, HealthReason
from shared.connections.oauth_state import (
    OAuthState,
    OAuthStateStore,
    StateCodec,
    check_return_url,
    epoch,
)
from shared.connections.onboarding import onboarding_status
from shared.connections.store import ConnectionStore
from shared.connections.vault import ConnectionDeadError, TokenVault, VaultError
from shared.kernel import constants
from shared.kernel.clock import Clock
from shared.kernel.events import (
    CONNECTION_DISCONNECTED,
    EventPublisher,
    OutboundEvent,
    make_event,
    publish_after_commit,
)
from shared.kernel.observability import logger
from shared.kernel.settings import Settings
from shared.qbo.errors import QboError
from shared.qbo.oauth import IntuitOAuth

__all__ = [
    "TENANT_ID_PATTERN",
    "ConnectionFlows",
    "DisconnectOutcome",
    "StartedConnection",
    "check_tenant_id",
]

TENANT_ID_PATTERN: Final = constants.TENANT_ID_PATTERN
_TENANT_ID = re.compile(TENANT_ID_PATTERN)


# --- tenant ids (the errors are in shared.connections.errors) ------------------------------------


def check_tenant_id(tenant_id: str) -> str:
    if not _TENANT_ID.fullmatch(tenant_id):
        raise InvalidTenantIdError(
            "tenant_id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return tenant_id


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedConnection:
    authorization_url: str
    state_expires_at: datetime


@dataclass(frozen=True)
class DisconnectOutcome:
    tenant_id: str
    realm_id: str
    keep_mappings: bool
    disconnected_at: datetime
    already_disconnected: bool


_NEUTRAL_DISCONNECT_PAGE: Final = Page(
    200,
    "QuickBooks Online disconnected",
    "If you disconnected QuickBooks Online, the app now shows the connection as disconnected. "
    "You can reconnect from the app at any time.",
)


class ConnectionFlows:
    """Start, complete, inspect and end a tenant's QBO connection."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: ConnectionStore,
        vault: TokenVault,
        oauth: IntuitOAuth,
        states: OAuthStateStore,
        events: EventPublisher,
        clock: Clock,
        qbo_client: QboClientFactory,
        forget_mappings: Callable[[str], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        replay_wait_seconds: float = 5.0,
    ) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault
        self._oauth = oauth
        self._states = states
        self._events = events
        self._clock = clock
        self._qbo_client = qbo_client
        self._forget_mappings = forget_mappings
        self._sleep = sleep
        self._replay_wait = replay_wait_seconds
        self._codec = StateCodec(settings.state_signing_key.get_secret_value())
        self._callback = OAuthCallback(
            settings=settings,
            store=store,
            vault=vault,
            oauth=oauth,
            states=states,
            clock=clock,
            qbo_client=qbo_client,
            codec=self._codec,
            publish=self._publish,
            sleep=sleep,
            replay_wait_seconds=replay_wait_seconds,
        )

    # --- start ------------------------------------------------------------------------------------

    def start_connection(
        self, tenant_id: str, return_url: str, also_allowed: Sequence[str] = ()
    ) -> StartedConnection:
        """An Intuit consent URL whose state is bound to ``tenant_id`` and ``return_url``.

        ``return_url`` must lie under an entry of the allow-list or of ``also_allowed`` (the
        console's own URL, for a flow started from the console).
        A tenant that is already connected may start again: the consent renews its grant for the
        same company. Another company is refused at the callback while the tenant holds its realm.
        """
        check_tenant_id(tenant_id)
        check_return_url(return_url, (*self._settings.return_url_allowlist, *also_allowed))
        now = epoch(self._clock.now())
        state_id, state = self._codec.new()
        expires_at = now + self._settings.state_ttl_seconds
        self._states.put(OAuthState(state_id, tenant_id, return_url, created_at=now, expires_at=expires_at))
        logger.info("connection started", tenant_id=tenant_id)
        return StartedConnection(self._consent_url(state), datetime.fromtimestamp(expires_at, UTC))

    def _consent_url(self, state: str) -> str:
        challenge = self._codec.code_challenge(state) if self._settings.oauth_pkce else None
        return self._oauth.authorization_url(state, code_challenge=challenge)

    # --- callback ---------------------------------------------------------------------------------

    def complete_connection(self, params: CallbackParams) -> CallbackOutcome:
        """Intuit's redirect after consent (rules: the module docstring; ``shared.connections.callback``)."""
        return self._callback.complete(params)

    # --- disconnect -------------------------------------------------------------------------------

    def disconnect(self, tenant_id: str, keep_mappings: bool) -> DisconnectOutcome:
        """Revoke at Intuit, delete the tokens, mark the connection disconnected; idempotent.

        ``keep_mappings``: the tenant keeps its realm, so a later consent for the same company
        carries on with every mapping (and no other tenant can take the company meanwhile).
        Otherwise the realm is released (another tenant may connect it) and the event tells the
        mapping owners to clear the tenant's mappings. A repeat does no new work and publishes the
        same event again (same id), so a crash between the steps loses nothing. "Keep" may become
        "remove" later; "remove" cannot become "keep" (MappingsAlreadyRemovedError).
        """
        check_tenant_id(tenant_id)
        current = self._store.get(tenant_id)
        if current is None:
            raise NeverConnectedError(tenant_id, f"tenant {tenant_id} has no QuickBooks Online connection")
        repeat = current.health is Health.DISCONNECTED and current.keep_mappings in {keep_mappings, None}
        if current.health is Health.DISCONNECTED and current.keep_mappings is False and keep_mappings:
            raise MappingsAlreadyRemovedError(
                "this connection was disconnected with its mappings removed; they cannot be kept now"
            )
        self._vault.revoke_and_delete(tenant_id)
        if not keep_mappings:
            self._store.release_realm(current.realm_id, tenant_id)
            if self._forget_mappings is not None:
                # Idempotent: a repeated "remove" (or a retry after a crash) clears what is left.
                self._forget_mappings(tenant_id)
        if repeat and current.disconnected_at is not None:
            at = current.disconnected_at
        else:
            at = self._clock.now().replace(microsecond=0)  # as stored: a repeat answers the same
            previous = self._store.mark_disconnected(tenant_id, keep_mappings, at)
            if previous is not None and previous is not Health.DISCONNECTED:
                reason = HealthReason.DISCONNECTED_BY_TENANT
                change = HealthChange(tenant_id, current.realm_id, previous, Health.DISCONNECTED, reason, at)
                self._publish(change.event())
        mode = "keep" if keep_mappings else "remove"
        from shared.kernel.event_models import ConnectionDisconnected

        detail = ConnectionDisconnected(
            realm_id=current.realm_id, keep_mappings=keep_mappings, disconnected_at=at.isoformat()
        )
        self._publish(
            make_event(
                CONNECTION_DISCONNECTED,
                tenant_id,
                detail,
                current.realm_id,
                str(epoch(at)),
                mode,
            )
        )
        logger.info("connection disconnected", tenant_id=tenant_id, realm_id=current.realm_id, mappings=mode)
        return DisconnectOutcome(tenant_id, current.realm_id, keep_mappings, at, already_disconnected=repeat)

    # --- status -----------------------------------------------------------------------------------

    def connection_status(self, tenant_id: str) -> dict[str, Any]:
        """Connected or not, realm, company, health, token expiries, last successful call; no token."""
        check_tenant_id(tenant_id)
        answer: dict[str, Any] = dict.fromkeys(_STATUS_FIELDS)
        answer.update(self._vault.status(tenant_id))
        current = self._store.get(tenant_id)
        if current is not None:
            company = current.company
            answer["company"] = company.model_dump() if company is not None else None
            answer["company_name"] = company.name if company is not None else None
            answer["keep_mappings"] = current.keep_mappings
            answer["warnings"] = company_warnings(company)
            answer["onboarding"] = onboarding_status(current.onboarding)
        answer["warnings"] = answer["warnings"] or []
        answer["connected"] = bool(answer["connected"])
        return answer

    # --- Intuit's disconnect and reconnect URLs -----------------------------------------------------

    def intuit_disconnected(self, realm_id: str | None) -> Page:
        """Intuit sends the user here after they disconnected the app in QuickBooks.

        The request proves nothing (anyone can call it), so the grant itself is asked: a QBO call
        with the tenant's tokens. Only when Intuit refuses them (refresh says invalid_grant) is
        the connection marked revoked. The page is the same whatever happened, so the URL tells a
        stranger nothing about which companies are connected.
        """
        if not realm_id or not REALM_ID.fullmatch(realm_id):
            return _NEUTRAL_DISCONNECT_PAGE
        tenant_id = self._store.owner_of(realm_id)
        current = self._store.get(tenant_id) if tenant_id is not None else None
        if tenant_id is None or current is None or current.realm_id != realm_id or not current.refreshable:
            return _NEUTRAL_DISCONNECT_PAGE
        try:
            self._qbo_client(realm_id, self._vault.provider(tenant_id)).company_info()
        except ConnectionDeadError:
            self._vault.mark_revoked(tenant_id)
            logger.info("intuit disconnect confirmed", tenant_id=tenant_id, realm_id=realm_id)
        except (VaultError, QboError) as error:  # Intuit or KMS failing now: no verdict, no change
            logger.warning("intuit disconnect not verifiable now", tenant_id=tenant_id, error=str(error))
        else:
            logger.info("intuit disconnect notice not confirmed: the grant works", tenant_id=tenant_id)
        return _NEUTRAL_DISCONNECT_PAGE

    def intuit_reconnect(self, realm_id: str | None) -> Redirect | Page:
        """Intuit's reconnect link (public, anonymous): a consent whose signed state names the realm.

        The answer is the same redirect for every well-formed realm id, connected or not, and costs
        no database read or write: the state carries its realm and expiry under our key. At the
        callback it reconnects the tenant holding that realm, and only with a code for that realm.
        """
        if not realm_id or not REALM_ID.fullmatch(realm_id):
            return Page(400, RECONNECT_TITLE, "This reconnect link is incomplete: it names no company.")
        expires_at = epoch(self._clock.now()) + self._settings.state_ttl_seconds
        return Redirect(self._consent_url(self._codec.new_reconnect(realm_id, expires_at)))

    def _publish(self, event: OutboundEvent) -> None:
        publish_after_commit(self._events, event)  # the connection change is stored already


_STATUS_FIELDS: Final = (
    "tenant_id",
    "connected",
    "realm_id",
    "company_name",
    "company",
    "health",
    "reason",
    "health_changed_at",
    "access_expires_at",
    "refresh_expires_at",
    "hard_expires_at",
    "hard_expires_in_days",
    "last_refresh_at",
    "last_success_at",
    "refresh_failures",
    "connected_at",
    "disconnected_at",
    "keep_mappings",
    "warnings",
    "onboarding",
)
