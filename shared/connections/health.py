"""Connection health: a small state machine every health change goes through.

A connection is ``healthy`` while its tokens refresh; ``refresh_failing`` while Intuit (or the
network) fails in a way that may pass; ``needs_reconnect`` once Intuit says the grant is dead
(``invalid_grant``: inactivity, the 5-year cap, a broken rotation chain); ``revoked`` when the user
disconnected the app in QuickBooks; ``disconnected`` when the tenant disconnected in the host app.
Only a new consent (``reconnected``) brings a dead, revoked or disconnected connection back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from shared.kernel.events import CONNECTION_HEALTH_CHANGED, OutboundEvent, make_event


class Health(StrEnum):
    HEALTHY = "healthy"
    REFRESH_FAILING = "refresh_failing"
    NEEDS_RECONNECT = "needs_reconnect"
    REVOKED = "revoked"
    DISCONNECTED = "disconnected"


class HealthEvent(StrEnum):
    """What happened to a connection."""

    REFRESHED = "refreshed"
    REFRESH_FAILED_RETRYABLE = "refresh_failed_retryable"
    GRANT_DEAD = "grant_dead"
    REVOKED_BY_USER = "revoked_by_user"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"


class HealthReason(StrEnum):
    """Why the health is what it is: the ``health_reason`` attribute and the event's ``reason``."""

    CONNECTED = "connected"
    RECONNECTED = "reconnected"
    REFRESHED = "refreshed"
    REFRESH_FAILED = "refresh_failed"
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    REVOKED_BY_USER = "revoked_by_user"
    DISCONNECTED_BY_TENANT = "disconnected_by_tenant"


DEFAULT_REASON: Mapping[HealthEvent, HealthReason] = MappingProxyType(
    {
        HealthEvent.REFRESHED: HealthReason.REFRESHED,
        HealthEvent.REFRESH_FAILED_RETRYABLE: HealthReason.REFRESH_FAILED,
        HealthEvent.GRANT_DEAD: HealthReason.INVALID_GRANT,
        HealthEvent.REVOKED_BY_USER: HealthReason.REVOKED_BY_USER,
        HealthEvent.DISCONNECTED: HealthReason.DISCONNECTED_BY_TENANT,
        HealthEvent.RECONNECTED: HealthReason.RECONNECTED,
    }
)

_E = HealthEvent
_H = Health

# A live grant (healthy, or failing to refresh for now) takes every event the same way.
_LIVE: Mapping[HealthEvent, Health] = MappingProxyType(
    {
        _E.REFRESHED: _H.HEALTHY,
        _E.REFRESH_FAILED_RETRYABLE: _H.REFRESH_FAILING,
        _E.GRANT_DEAD: _H.NEEDS_RECONNECT,
        _E.REVOKED_BY_USER: _H.REVOKED,
        _E.DISCONNECTED: _H.DISCONNECTED,
        _E.RECONNECTED: _H.HEALTHY,
    }
)

# Every (state, event) pair not listed is refused: e.g. a dead grant cannot "refresh" back to
# healthy, and a connection nobody refreshes cannot start failing.
TRANSITIONS: Mapping[Health, Mapping[HealthEvent, Health]] = MappingProxyType(
    {
        _H.HEALTHY: _LIVE,
        _H.REFRESH_FAILING: _LIVE,
        _H.NEEDS_RECONNECT: MappingProxyType(
            {
                _E.GRANT_DEAD: _H.NEEDS_RECONNECT,
                _E.REVOKED_BY_USER: _H.REVOKED,
                _E.DISCONNECTED: _H.DISCONNECTED,
                _E.RECONNECTED: _H.HEALTHY,
            }
        ),
        _H.REVOKED: MappingProxyType(
            {
                _E.REVOKED_BY_USER: _H.REVOKED,
                _E.DISCONNECTED: _H.DISCONNECTED,
                _E.RECONNECTED: _H.HEALTHY,
            }
        ),
        _H.DISCONNECTED: MappingProxyType(
            {
                # Intuit may call the disconnect URL after the tenant already disconnected here.
                _E.REVOKED_BY_USER: _H.DISCONNECTED,
                _E.DISCONNECTED: _H.DISCONNECTED,
                _E.RECONNECTED: _H.HEALTHY,
            }
        ),
    }
)

# States in which the vault refreshes tokens (on demand and in the daily keep-alive).
REFRESHABLE: frozenset[Health] = frozenset({Health.HEALTHY, Health.REFRESH_FAILING})


class InvalidHealthTransitionError(ValueError):
    def __init__(self, current: Health, event: HealthEvent) -> None:
        super().__init__(f"health {current} does not allow {event}")
        self.current = current
        self.event = event


def transition(current: Health, event: HealthEvent) -> Health:
    """The health after ``event``; raises InvalidHealthTransitionError for a refused pair."""
    allowed = TRANSITIONS[current]
    if event not in allowed:
        raise InvalidHealthTransitionError(current, event)
    return allowed[event]


def allowed(current: Health, event: HealthEvent) -> bool:
    return event in TRANSITIONS[current]


@dataclass(frozen=True)
class HealthChange:
    """One change of a connection's health, ready to be stored and published."""

    tenant_id: str
    realm_id: str | None
    previous: Health | None
    current: Health
    reason: str
    at: datetime
    description: str | None = None  # Intuit's error_description (never a token)
    intuit_tid: str | None = None

    def event(self) -> OutboundEvent:
        from shared.kernel.event_models import ConnectionHealthChanged

        previous = self.previous.value if self.previous is not None else None
        detail = ConnectionHealthChanged.model_validate(
            {
                "realm_id": self.realm_id,
                "from": previous,
                "to": self.current.value,
                "reason": self.reason,
                "changed_at": self.at.isoformat(),
                "description": self.description or None,
                "intuit_tid": self.intuit_tid or None,
            }
        )
        return make_event(
            CONNECTION_HEALTH_CHANGED,
            self.tenant_id,
            detail,
            str(previous),
            self.current.value,
            self.reason,
            str(int(self.at.timestamp())),
        )
