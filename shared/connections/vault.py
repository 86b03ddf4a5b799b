"""The token vault: QBO tokens encrypted with KMS, refreshed once however many Lambdas need them.

Intuit rotates the refresh token on refresh, and a refresh with a token already replaced gets
``invalid_grant`` (https://help.developer.intuit.com/s/article/Validity-of-Refresh-Token;
two workers racing: https://github.com/intuit/oauth-jsclient/issues/138),
so a refresh is single-flight across every Lambda: a conditional lease on the connection item,
one token-endpoint call, the new tokens persisted (conditional on our lease and the version we
read) before the new access token is used.  Workers that lose the lease wait and
re-read.  Before a grant is declared dead on ``invalid_grant`` the row is read again, because
another worker may have rotated it.  A daily keep-alive refreshes every live connection (the
100-day inactivity expiry) and warns ahead of the 5-year hard expiry
(https://blogs.a.intuit.com/2025/11/12/important-changes-to-refresh-token-policy).

Plaintext tokens exist only in memory: ``access_token()`` returns one, nothing else does, and
nothing is logged but ids, versions, error codes and ``intuit_tid``.

The KMS sealing and the in-memory access token are ``shared.connections.sealing``'s; the daily
sweep is ``shared.connections.keep_alive``'s, refreshing through this vault.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from shared.adapters.dynamo import AwsServiceError
from shared.connections.errors import (
    ConnectionDeadError,
    NeverConnectedError,
    TokenCryptoError,
    TokenRefreshError,
    VaultError,
)
from shared.connections.health import Health, HealthChange, HealthEvent, HealthReason, allowed, transition
from shared.connections.keep_alive import HARD_EXPIRY_WARNING_DAYS, KeepAlive, KeepAliveReport
from shared.connections.sealing import TokenSealer, encryption_context
from shared.connections.store import Connection, ConnectionStore, HealthWrite
from shared.kernel.clock import Clock
from shared.kernel.events import EventPublisher, OutboundEvent, publish_after_commit
from shared.kernel.observability import logger
from shared.qbo.oauth import IntuitOAuth, OAuthClientError, OAuthFailureError, OAuthGrantError, TokenSet

SUCCESS_WRITE_INTERVAL_SECONDS: Final = 60
MAX_ROUNDS: Final = 100  # read-decide-act rounds of one token request; waits are bounded separately
SUCCESS_RETRY_SECONDS: Final = 10  # after another Lambda won the minute's write

__all__ = [
    "ConnectionDeadError",
    "KeepAliveReport",
    "TokenCryptoError",
    "TokenProvider",
    "TokenRefreshError",
    "TokenVault",
    "VaultError",
]


class TokenProvider(Protocol):
    """What the QBO client needs: a current access token, and a way to say it was refused (401)."""

    def access_token(self) -> str: ...

    def token_rejected(self, token: str) -> None: ...


class _TenantTokens:
    def __init__(self, vault: TokenVault, tenant_id: str) -> None:
        self._vault = vault
        self.tenant_id = tenant_id

    def access_token(self) -> str:
        return self._vault.access_token(self.tenant_id)

    def token_rejected(self, token: str) -> None:
        self._vault.token_rejected(self.tenant_id, token)


class TokenVault:
    def __init__(  # noqa: PLR0917 - the collaborators, positionally, as docs/connections.md lists them
        self,
        store: ConnectionStore,
        kms_client: Any,
        kms_key_id: str,
        oauth: IntuitOAuth,
        events: EventPublisher,
        clock: Clock,
        *,
        lease_seconds: int = 30,
        refresh_margin_seconds: int = 300,
        wait: Callable[[float], None] = time.sleep,
        owner_id: str | None = None,
    ) -> None:
        self._store = store
        self._sealer = TokenSealer(kms_client, kms_key_id)
        self._oauth = oauth
        self._events = events
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)
        self._margin = timedelta(seconds=refresh_margin_seconds)
        # A loser waits at most this long (summed sleeps) for the lease holder, then gives up.
        self._max_wait = float(lease_seconds) + 5.0
        self._wait = wait
        self.owner_id = owner_id or uuid.uuid4().hex
        self._random = random.SystemRandom()
        self._lock = threading.Lock()
        # tenant -> earliest time this process writes last_success_at again.
        self._next_success_write: dict[str, datetime] = {}
        self._keep_alive = KeepAlive(store, oauth, clock, refresh=self._refresh_stale, publish=self._publish)

    # --- connect -----------------------------------------------------------------------------

    def save_new_tokens(self, tenant_id: str, realm_id: str, tokens: TokenSet) -> None:
        """Store a consent's tokens (connect or reconnect) and make the connection healthy."""
        sealed = self._sealer.seal(tenant_id, realm_id, tokens)
        for _ in range(5):
            previous = self._store.get(tenant_id)
            before = previous.health if previous is not None else None
            now = self._clock.now()
            if before is None:
                write = HealthWrite(Health.HEALTHY, HealthReason.CONNECTED, now, changed=True)
            else:
                after = transition(before, HealthEvent.RECONNECTED)
                write = HealthWrite(after, HealthReason.RECONNECTED, now, changed=after != before)
            version = self._store.save_tokens(
                tenant_id,
                realm_id,
                sealed,
                expected_version=previous.token_version if previous is not None else 0,
                health=write,
            )
            if version is None:
                continue  # a refresh committed meanwhile: read again and write over it
            self._sealer.remember(tenant_id, version, tokens.access_token.get_secret_value())
            logger.info("qbo tokens saved", tenant_id=tenant_id, realm_id=realm_id, token_version=version)
            if before is not None and write.changed:
                self._publish(
                    HealthChange(tenant_id, realm_id, before, write.health, write.reason, now).event()
                )
            return
        raise VaultError(f"tokens of tenant {tenant_id} kept changing while saving a new consent")

    # --- tokens for the QBO client -------------------------------------------------------------

    def provider(self, tenant_id: str) -> TokenProvider:
        return _TenantTokens(self, tenant_id)

    def access_token(self, tenant_id: str) -> str:
        """A valid access token, refreshed (once, across every worker) when it is about to expire."""
        return self._obtain(tenant_id, stale_version=None)

    def token_rejected(self, tenant_id: str, token: str) -> None:
        """QBO answered 401 to ``token``: refresh, unless another worker already replaced it."""
        connection = self._usable(self._store.require(tenant_id))
        if self._sealer.access_plain(connection) != token:
            return
        self._sealer.forget(tenant_id)
        self._obtain(tenant_id, stale_version=connection.token_version)

    def _obtain(self, tenant_id: str, *, stale_version: int | None) -> str:
        """The single-flight loop.  ``stale_version``: tokens at this version must be replaced."""
        connection = self._store.require(tenant_id)
        failures_seen = connection.refresh_failures
        waited, attempt = 0.0, 0
        for _ in range(MAX_ROUNDS):
            connection = self._usable(connection)
            now = self._clock.now()
            stale = stale_version is not None and connection.token_version <= stale_version
            if not stale and self._fresh(connection, now):
                return self._sealer.access_plain(connection)
            lease_free = connection.lease_until is None or connection.lease_until <= now
            if lease_free and self._store.acquire_lease(
                tenant_id,
                self.owner_id,
                expected_version=connection.token_version,
                now=now,
                until=now + self._lease,
            ):
                token = self._refresh_under_lease(connection)
                if token is not None:
                    return token
            elif waited >= self._max_wait:
                raise TokenRefreshError(tenant_id, "lease_wait_timeout", "another worker holds the lease")
            else:
                delay = min(1.0, 0.05 * 2**attempt) * self._random.uniform(0.5, 1.0)
                self._wait(delay)
                waited += delay
                attempt += 1
            latest = self._store.require(tenant_id)
            if (
                latest.token_version == connection.token_version
                and latest.refresh_failures > failures_seen
                and latest.lease_owner is None
            ):
                # The worker we waited for failed; do not pile more calls onto a failing Intuit.
                raise TokenRefreshError(tenant_id, "refresh_failed", "another worker's refresh failed")
            connection = latest
        raise TokenRefreshError(tenant_id, "refresh_contention", "the tokens kept changing under this worker")

    def _refresh_under_lease(self, connection: Connection) -> str | None:
        """Refresh with the lease held; the access token, or None to go round the loop again."""
        tenant_id, version = connection.tenant_id, connection.token_version
        try:
            assert connection.refresh_token_ct is not None  # _usable checked
            refresh_token = self._sealer.decrypt(connection, connection.refresh_token_ct)
            tokens = self._oauth.refresh(refresh_token)
        except OAuthGrantError as error:
            return self._grant_refused(connection, error)
        except OAuthFailureError as error:
            raise self._refresh_failed(connection, error) from None
        except (TokenCryptoError, AwsServiceError):
            self._store.release_lease(tenant_id, self.owner_id)
            raise
        now = self._clock.now()
        before = connection.health or Health.HEALTHY
        after = transition(before, HealthEvent.REFRESHED)
        write = HealthWrite(after, HealthReason.REFRESHED, now, changed=after != before)
        # Persist before use.  If this fails the new refresh token is lost, but the one stored
        # stays valid for 24 h after its replacement, so the next refresh still works (Intuit's
        # Node client's README, "Refresh access_token": https://github.com/intuit/oauth-jsclient).
        try:
            sealed = self._sealer.seal(tenant_id, connection.realm_id, tokens)
            committed = self._store.commit_refresh(
                tenant_id, self.owner_id, sealed, expected_version=version, health=write
            )
        except (TokenCryptoError, AwsServiceError):
            self._store.release_lease(tenant_id, self.owner_id)
            raise
        if not committed:
            logger.warning("refresh lease lost before commit", tenant_id=tenant_id, token_version=version)
            return None
        logger.info(
            "qbo tokens refreshed",
            tenant_id=tenant_id,
            token_version=version + 1,
            intuit_tid=tokens.intuit_tid,
        )
        access = tokens.access_token.get_secret_value()
        self._sealer.remember(tenant_id, version + 1, access)
        if write.changed:
            change = HealthChange(tenant_id, connection.realm_id, before, after, write.reason, now)
            self._publish(change.event())
        return access

    def _grant_refused(self, connection: Connection, error: OAuthGrantError) -> str | None:
        tenant_id = connection.tenant_id
        latest = self._store.require(tenant_id)
        if latest.token_version != connection.token_version:
            # Another worker rotated the chain while we called Intuit with the old token.
            self._store.release_lease(tenant_id, self.owner_id)
            logger.info(
                "invalid_grant after rotation elsewhere; using the stored tokens", tenant_id=tenant_id
            )
            return None
        before = connection.health or Health.HEALTHY
        after = transition(before, HealthEvent.GRANT_DEAD)
        now = self._clock.now()
        write = HealthWrite(after, HealthReason.INVALID_GRANT, now, changed=after != before)
        if not self._store.mark_grant_dead(
            tenant_id, expected_version=connection.token_version, health=write
        ):
            return None  # the row moved (reconnect, disconnect): read it again
        self._sealer.forget(tenant_id)
        logger.warning(
            "qbo grant is dead", tenant_id=tenant_id, error=error.error, intuit_tid=error.intuit_tid
        )
        change = HealthChange(
            tenant_id,
            connection.realm_id,
            before,
            after,
            write.reason,
            now,
            description=error.description,
            intuit_tid=error.intuit_tid,
        )
        self._publish(change.event())
        raise ConnectionDeadError(tenant_id, after, write.reason)

    def _refresh_failed(self, connection: Connection, error: OAuthFailureError) -> TokenRefreshError:
        """Record a failed refresh (health refresh_failing, lease freed); the error to raise."""
        tenant_id = connection.tenant_id
        before = connection.health or Health.HEALTHY
        after = transition(before, HealthEvent.REFRESH_FAILED_RETRYABLE)
        reason = (
            HealthReason.INVALID_CLIENT
            if isinstance(error, OAuthClientError)
            else HealthReason.REFRESH_FAILED
        )
        now = self._clock.now()
        write = HealthWrite(after, reason, now, changed=after != before)
        recorded = self._store.record_refresh_failure(
            tenant_id, self.owner_id, expected_version=connection.token_version, health=write
        )
        logger.warning(
            "qbo token refresh failed", tenant_id=tenant_id, error=error.error, intuit_tid=error.intuit_tid
        )
        if recorded and write.changed:
            change = HealthChange(
                tenant_id,
                connection.realm_id,
                before,
                after,
                reason,
                now,
                description=error.description,
                intuit_tid=error.intuit_tid,
            )
            self._publish(change.event())
        return TokenRefreshError(tenant_id, error.error, error.description, error.intuit_tid)

    # --- keep-alive ----------------------------------------------------------------------------

    def keep_alive(self, now: datetime | None = None) -> KeepAliveReport:
        """Refresh every live connection not refreshed for KEEP_ALIVE_AFTER; warn of hard expiry
        (``shared.connections.keep_alive``)."""
        return self._keep_alive.run(now)

    def _refresh_stale(self, tenant_id: str, stale_version: int) -> str:
        return self._obtain(tenant_id, stale_version=stale_version)

    # --- disconnect, revoke --------------------------------------------------------------------

    def revoke_and_delete(self, tenant_id: str) -> None:
        """Revoke the grant at Intuit (best effort: a failure is recorded) and drop the tokens."""
        connection = self._store.get(tenant_id)
        if connection is None or connection.refresh_token_ct is None:
            return
        failure: str | None = None
        try:
            self._oauth.revoke(self._sealer.decrypt(connection, connection.refresh_token_ct))
        except OAuthFailureError as error:
            failure = f"{error.error}" + (f" (intuit_tid {error.intuit_tid})" if error.intuit_tid else "")
            logger.warning(
                "intuit revoke failed", tenant_id=tenant_id, error=error.error, intuit_tid=error.intuit_tid
            )
        except TokenCryptoError as error:
            failure = f"kms:{error.code}"
            logger.warning("token decrypt failed before revoke", tenant_id=tenant_id, code=error.code)
        self._store.remove_tokens(tenant_id, revoke_error=failure)
        self._sealer.forget(tenant_id)

    def mark_revoked(self, tenant_id: str, reason: str = HealthReason.REVOKED_BY_USER) -> None:
        """The user disconnected the app in QuickBooks (Intuit's disconnect URL): tokens are dead."""
        connection = self._store.get(tenant_id)
        if connection is None:
            raise NeverConnectedError(tenant_id)
        before = connection.health
        if before is not None and not allowed(before, HealthEvent.REVOKED_BY_USER):
            return
        after = transition(before, HealthEvent.REVOKED_BY_USER) if before is not None else Health.REVOKED
        now = self._clock.now()
        write = HealthWrite(after, reason, now, changed=after != before)
        self._store.remove_tokens(tenant_id, health=write)
        self._sealer.forget(tenant_id)
        if write.changed:
            self._publish(HealthChange(tenant_id, connection.realm_id, before, after, reason, now).event())

    # --- status, bookkeeping -------------------------------------------------------------------

    def status(self, tenant_id: str) -> dict[str, Any]:
        """What the status route shows; never a token."""
        connection = self._store.get(tenant_id)
        if connection is None:
            return {"tenant_id": tenant_id, "connected": False, "health": None, "reason": None}
        now = self._clock.now()
        hard = connection.hard_expires_at
        answer: dict[str, Any] = {
            "tenant_id": tenant_id,
            "realm_id": connection.realm_id,
            "connected": connection.refreshable,
            "health": connection.health.value if connection.health else None,
            "reason": connection.health_reason,
            "health_changed_at": _iso(connection.health_changed_at),
            "access_expires_at": _iso(connection.access_expires_at),
            "refresh_expires_at": _iso(connection.refresh_expires_at),
            "hard_expires_at": _iso(hard),
            "hard_expires_in_days": max(0, (hard - now).days) if hard is not None else None,
            "last_refresh_at": _iso(connection.last_refresh_at),
            "last_success_at": _iso(connection.last_success_at),
            "refresh_failures": connection.refresh_failures,
            "connected_at": _iso(connection.connected_at),
            "disconnected_at": _iso(connection.disconnected_at),
        }
        if connection.health in (Health.NEEDS_RECONNECT, Health.REVOKED) or (
            hard is not None and hard - now <= timedelta(days=max(HARD_EXPIRY_WARNING_DAYS))
        ):
            answer["reconnect_url"] = self._oauth.reconnect_url(connection.realm_id)
        return answer

    def record_success(self, tenant_id: str, at: datetime) -> None:
        """Note a successful QBO call; written at most once a minute per tenant."""
        with self._lock:
            next_write = self._next_success_write.get(tenant_id)
            if next_write is not None and at < next_write:
                return
            # Claimed before writing so concurrent calls in this process do not all write.
            self._next_success_write[tenant_id] = at + timedelta(seconds=SUCCESS_RETRY_SECONDS)
        if self._store.record_success(tenant_id, at, min_interval_seconds=SUCCESS_WRITE_INTERVAL_SECONDS):
            with self._lock:
                self._next_success_write[tenant_id] = at + timedelta(seconds=SUCCESS_WRITE_INTERVAL_SECONDS)

    # --- helpers -------------------------------------------------------------------------------

    def _usable(self, connection: Connection) -> Connection:
        if not connection.refreshable:
            raise ConnectionDeadError(
                connection.tenant_id,
                connection.health,
                connection.health_reason if connection.has_tokens else "no_tokens",
            )
        return connection

    def _fresh(self, connection: Connection, now: datetime) -> bool:
        expires = connection.access_expires_at
        return expires is not None and expires - now > self._margin

    @staticmethod
    def context(tenant_id: str, realm_id: str) -> dict[str, str]:
        """The KMS encryption context binding a ciphertext to its tenant and realm."""
        return encryption_context(tenant_id, realm_id)

    def _publish(self, event: OutboundEvent) -> None:
        publish_after_commit(self._events, event)  # the state change is stored already


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
