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
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from shared.adapters.dynamo import AwsServiceError, aws_errors
from shared.connections.errors import (
    ConnectionDeadError,
    NeverConnectedError,
    TokenCryptoError,
    TokenRefreshError,
    VaultError,
)
from shared.connections.health import (
    REFRESHABLE,
    Health,
    HealthChange,
    HealthEvent,
    HealthReason,
    allowed,
    transition,
)
from shared.connections.store import Connection, ConnectionStore, HealthWrite, StoredTokens
from shared.kernel.clock import Clock
from shared.kernel.events import (
    CONNECTION_HARD_EXPIRY_APPROACHING,
    EventPublisher,
    EventPublishError,
    OutboundEvent,
    make_event,
)
from shared.kernel.observability import logger
from shared.qbo.oauth import (
    IntuitOAuth,
    OAuthClientError,
    OAuthFailureError,
    OAuthGrantError,
    TokenSet,
)

TOKEN_PURPOSE: Final = "qbo-oauth-token"  # noqa: S105 - the encryption-context purpose, not a secret
HARD_EXPIRY_WARNING_DAYS: Final = (30, 7)  # Intuit's sample: in-product at T-30, e-mail at T-7
KEEP_ALIVE_AFTER: Final = timedelta(hours=20)  # refresh anything older: every connection daily
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


@dataclass
class KeepAliveReport:
    checked: int = 0  # live connections looked at
    refreshed: int = 0  # refreshed now (by this sweep, or by a worker it waited for)
    fresh: int = 0  # refreshed less than KEEP_ALIVE_AFTER ago: left alone
    failed: int = 0  # retryable failure: health refresh_failing
    dead: int = 0  # invalid_grant: health needs_reconnect
    skipped: int = 0  # no tokens stored
    warnings: int = 0  # hard-expiry warnings published


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
        self._kms = kms_client
        self._key_id = kms_key_id
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
        # tenant -> (token_version, access token): saves a KMS call while the version is unchanged.
        self._plain: dict[str, tuple[int, str]] = {}
        # tenant -> earliest time this process writes last_success_at again.
        self._next_success_write: dict[str, datetime] = {}

    # --- connect -----------------------------------------------------------------------------

    def save_new_tokens(self, tenant_id: str, realm_id: str, tokens: TokenSet) -> None:
        """Store a consent's tokens (connect or reconnect) and make the connection healthy."""
        sealed = self._seal(tenant_id, realm_id, tokens)
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
            self._remember(tenant_id, version, tokens.access_token.get_secret_value())
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
        if self._access_plain(connection) != token:
            return
        self._forget(tenant_id)
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
                return self._access_plain(connection)
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
            refresh_token = self._decrypt(connection, connection.refresh_token_ct)
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
            sealed = self._seal(tenant_id, connection.realm_id, tokens)
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
        self._remember(tenant_id, version + 1, access)
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
        self._forget(tenant_id)
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
        """Refresh every live connection not refreshed for KEEP_ALIVE_AFTER; warn of hard expiry."""
        now = now or self._clock.now()
        report = KeepAliveReport()
        done: set[str] = set()
        for health in sorted(REFRESHABLE):
            for connection in self._store.list_by_health(health):
                if connection.tenant_id in done:
                    continue  # moved between the two index partitions while we swept
                done.add(connection.tenant_id)
                report.checked += 1
                if not connection.has_tokens:
                    report.skipped += 1
                    continue
                latest = self._keep_alive_one(connection, now, report)
                if latest is not None:
                    self._warn_hard_expiry(latest, now, report)
        logger.info("keep-alive finished", **vars(report))
        return report

    def _keep_alive_one(
        self, connection: Connection, now: datetime, report: KeepAliveReport
    ) -> Connection | None:
        last = connection.last_refresh_at
        if last is not None and now - last < KEEP_ALIVE_AFTER:
            report.fresh += 1
            return connection
        try:
            self._obtain(connection.tenant_id, stale_version=connection.token_version)
        except ConnectionDeadError:
            report.dead += 1
            return None
        except (TokenRefreshError, TokenCryptoError, AwsServiceError) as error:
            # One tenant's failure must not stop the sweep for the others.
            logger.warning(
                "keep-alive refresh failed", tenant_id=connection.tenant_id, error=type(error).__name__
            )
            report.failed += 1
            return self._store.get(connection.tenant_id)
        report.refreshed += 1
        return self._store.get(connection.tenant_id)

    def _warn_hard_expiry(self, connection: Connection, now: datetime, report: KeepAliveReport) -> None:
        hard = connection.hard_expires_at
        if hard is None:
            return
        left = hard - now
        for days in sorted(HARD_EXPIRY_WARNING_DAYS):  # the most urgent threshold crossed only
            if left > timedelta(days=days):
                continue
            warned = connection.hard_expiry_warned_days
            if (warned is None or warned > days) and self._store.mark_hard_expiry_warned(
                connection.tenant_id, days, hard
            ):
                self._publish(self._hard_expiry_event(connection, hard, days, left))
                report.warnings += 1
            return

    def _hard_expiry_event(
        self, connection: Connection, hard: datetime, days: int, left: timedelta
    ) -> OutboundEvent:
        detail = {
            "realmId": connection.realm_id,
            "reason": f"hard_expiry_in_{days}_days",
            "thresholdDays": days,
            "daysLeft": max(0, left.days),
            "hardExpiresAt": hard.isoformat(),
            "reconnectUrl": self._oauth.reconnect_url(connection.realm_id),
        }
        return make_event(
            CONNECTION_HARD_EXPIRY_APPROACHING,
            connection.tenant_id,
            detail,
            connection.realm_id,
            str(days),
            str(int(hard.timestamp())),
        )

    # --- disconnect, revoke --------------------------------------------------------------------

    def revoke_and_delete(self, tenant_id: str) -> None:
        """Revoke the grant at Intuit (best effort: a failure is recorded) and drop the tokens."""
        connection = self._store.get(tenant_id)
        if connection is None or connection.refresh_token_ct is None:
            return
        failure: str | None = None
        try:
            self._oauth.revoke(self._decrypt(connection, connection.refresh_token_ct))
        except OAuthFailureError as error:
            failure = f"{error.error}" + (f" (intuit_tid {error.intuit_tid})" if error.intuit_tid else "")
            logger.warning(
                "intuit revoke failed", tenant_id=tenant_id, error=error.error, intuit_tid=error.intuit_tid
            )
        except TokenCryptoError as error:
            failure = f"kms:{error.code}"
            logger.warning("token decrypt failed before revoke", tenant_id=tenant_id, code=error.code)
        self._store.remove_tokens(tenant_id, revoke_error=failure)
        self._forget(tenant_id)

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
        self._forget(tenant_id)
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

    def _access_plain(self, connection: Connection) -> str:
        with self._lock:
            cached = self._plain.get(connection.tenant_id)
        if cached is not None and cached[0] == connection.token_version:
            return cached[1]
        assert connection.access_token_ct is not None  # callers checked has_tokens
        token = self._decrypt(connection, connection.access_token_ct)
        self._remember(connection.tenant_id, connection.token_version, token)
        return token

    def _remember(self, tenant_id: str, version: int, token: str) -> None:
        with self._lock:
            current = self._plain.get(tenant_id)
            if current is None or current[0] <= version:
                self._plain[tenant_id] = (version, token)

    def _forget(self, tenant_id: str) -> None:
        with self._lock:
            self._plain.pop(tenant_id, None)

    @staticmethod
    def context(tenant_id: str, realm_id: str) -> dict[str, str]:
        """The KMS encryption context binding a ciphertext to its tenant and realm."""
        return {"tenant_id": tenant_id, "realm_id": realm_id, "purpose": TOKEN_PURPOSE}

    def _seal(self, tenant_id: str, realm_id: str, tokens: TokenSet) -> StoredTokens:
        return StoredTokens(
            access_token_ct=self._encrypt(tenant_id, realm_id, tokens.access_token.get_secret_value()),
            refresh_token_ct=self._encrypt(tenant_id, realm_id, tokens.refresh_token.get_secret_value()),
            access_expires_at=tokens.access_expires_at,
            refresh_expires_at=tokens.refresh_expires_at,
            hard_expires_at=tokens.hard_expires_at,
        )

    def _encrypt(self, tenant_id: str, realm_id: str, plaintext: str) -> bytes:
        with aws_errors(_crypto_failure(tenant_id, "encrypt"), cause=False):
            answer = self._kms.encrypt(
                KeyId=self._key_id,
                Plaintext=plaintext.encode(),
                EncryptionContext=self.context(tenant_id, realm_id),
            )
        return bytes(answer["CiphertextBlob"])

    def _decrypt(self, connection: Connection, ciphertext: bytes) -> str:
        with aws_errors(_crypto_failure(connection.tenant_id, "decrypt"), cause=False):
            answer = self._kms.decrypt(
                KeyId=self._key_id,
                CiphertextBlob=ciphertext,
                EncryptionContext=self.context(connection.tenant_id, connection.realm_id),
            )
        return bytes(answer["Plaintext"]).decode()

    def _publish(self, event: OutboundEvent) -> None:
        try:
            self._events.publish(event)
        except EventPublishError as error:
            # The state change is stored; losing the notification must not fail a token call.
            logger.error("event publish failed", detail_type=event.detail_type, error=str(error))


def _crypto_failure(tenant_id: str, operation: str) -> Callable[[str, Exception], TokenCryptoError]:
    """What a refused KMS call becomes: the tenant, the operation and KMS's error code."""

    def failure(code: str, _error: Exception) -> TokenCryptoError:
        return TokenCryptoError(tenant_id, operation, code or "unknown")

    return failure


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
