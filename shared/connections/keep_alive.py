"""The daily keep-alive: refresh every live connection not refreshed lately (Intuit expires a
refresh token unused for 100 days) and warn ahead of a grant's 5-year hard expiry.

The refresh itself is the vault's single-flight refresh (``TokenVault``), handed in as a callable;
one tenant's failure is counted and the sweep goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from shared.adapters.dynamo import AwsServiceError
from shared.connections.errors import ConnectionDeadError, TokenCryptoError, TokenRefreshError
from shared.connections.health import REFRESHABLE
from shared.connections.store import Connection, ConnectionStore
from shared.kernel.clock import Clock
from shared.kernel.events import CONNECTION_HARD_EXPIRY_APPROACHING, OutboundEvent, make_event
from shared.kernel.observability import logger
from shared.qbo.oauth import IntuitOAuth

HARD_EXPIRY_WARNING_DAYS: Final = (30, 7)  # Intuit's sample: in-product at T-30, e-mail at T-7
KEEP_ALIVE_AFTER: Final = timedelta(hours=20)  # refresh anything older: every connection daily


@dataclass
class KeepAliveReport:
    checked: int = 0  # live connections looked at
    refreshed: int = 0  # refreshed now (by this sweep, or by a worker it waited for)
    fresh: int = 0  # refreshed less than KEEP_ALIVE_AFTER ago: left alone
    failed: int = 0  # retryable failure: health refresh_failing
    dead: int = 0  # invalid_grant: health needs_reconnect
    skipped: int = 0  # no tokens stored
    warnings: int = 0  # hard-expiry warnings published


class KeepAlive:
    """One sweep over the live connections (``TokenVault.keep_alive``).  ``refresh(tenant_id,
    stale_version)`` replaces the tokens at that version (single-flight); ``publish`` sends an
    event without failing the sweep."""

    def __init__(
        self,
        store: ConnectionStore,
        oauth: IntuitOAuth,
        clock: Clock,
        *,
        refresh: Callable[[str, int], object],
        publish: Callable[[OutboundEvent], None],
    ) -> None:
        self._store = store
        self._oauth = oauth
        self._clock = clock
        self._refresh = refresh
        self._publish = publish

    def run(self, now: datetime | None = None) -> KeepAliveReport:
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
            self._refresh(connection.tenant_id, connection.token_version)
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
        from shared.kernel.event_models import ConnectionHardExpiryApproaching

        detail = ConnectionHardExpiryApproaching.model_validate(
            {
                "realm_id": connection.realm_id,
                "reason": f"hard_expiry_in_{days}_days",
                "threshold_days": days,
                "days_left": max(0, left.days),
                "hard_expires_at": hard.isoformat(),
                "reconnect_url": self._oauth.reconnect_url(connection.realm_id),
            }
        )
        return make_event(
            CONNECTION_HARD_EXPIRY_APPROACHING,
            connection.tenant_id,
            detail,
            connection.realm_id,
            str(days),
            str(int(hard.timestamp())),
        )
