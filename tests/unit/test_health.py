"""The connection health state machine: every (state, event) pair of the table."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from shared.connections.health import (
    DEFAULT_REASON,
    REFRESHABLE,
    TRANSITIONS,
    Health,
    HealthChange,
    HealthEvent,
    InvalidHealthTransitionError,
    allowed,
    transition,
)
from shared.kernel.events import CONNECTION_HEALTH_CHANGED

H, E = Health, HealthEvent

# The whole table, written out independently of shared.connections.health:
# (from, event) -> to, or None = refused.
EXPECTED: dict[tuple[Health, HealthEvent], Health | None] = {
    (H.HEALTHY, E.REFRESHED): H.HEALTHY,
    (H.HEALTHY, E.REFRESH_FAILED_RETRYABLE): H.REFRESH_FAILING,
    (H.HEALTHY, E.GRANT_DEAD): H.NEEDS_RECONNECT,
    (H.HEALTHY, E.REVOKED_BY_USER): H.REVOKED,
    (H.HEALTHY, E.DISCONNECTED): H.DISCONNECTED,
    (H.HEALTHY, E.RECONNECTED): H.HEALTHY,
    (H.REFRESH_FAILING, E.REFRESHED): H.HEALTHY,
    (H.REFRESH_FAILING, E.REFRESH_FAILED_RETRYABLE): H.REFRESH_FAILING,
    (H.REFRESH_FAILING, E.GRANT_DEAD): H.NEEDS_RECONNECT,
    (H.REFRESH_FAILING, E.REVOKED_BY_USER): H.REVOKED,
    (H.REFRESH_FAILING, E.DISCONNECTED): H.DISCONNECTED,
    (H.REFRESH_FAILING, E.RECONNECTED): H.HEALTHY,
    (H.NEEDS_RECONNECT, E.REFRESHED): None,
    (H.NEEDS_RECONNECT, E.REFRESH_FAILED_RETRYABLE): None,
    (H.NEEDS_RECONNECT, E.GRANT_DEAD): H.NEEDS_RECONNECT,
    (H.NEEDS_RECONNECT, E.REVOKED_BY_USER): H.REVOKED,
    (H.NEEDS_RECONNECT, E.DISCONNECTED): H.DISCONNECTED,
    (H.NEEDS_RECONNECT, E.RECONNECTED): H.HEALTHY,
    (H.REVOKED, E.REFRESHED): None,
    (H.REVOKED, E.REFRESH_FAILED_RETRYABLE): None,
    (H.REVOKED, E.GRANT_DEAD): None,
    (H.REVOKED, E.REVOKED_BY_USER): H.REVOKED,
    (H.REVOKED, E.DISCONNECTED): H.DISCONNECTED,
    (H.REVOKED, E.RECONNECTED): H.HEALTHY,
    (H.DISCONNECTED, E.REFRESHED): None,
    (H.DISCONNECTED, E.REFRESH_FAILED_RETRYABLE): None,
    (H.DISCONNECTED, E.GRANT_DEAD): None,
    (H.DISCONNECTED, E.REVOKED_BY_USER): H.DISCONNECTED,
    (H.DISCONNECTED, E.DISCONNECTED): H.DISCONNECTED,
    (H.DISCONNECTED, E.RECONNECTED): H.HEALTHY,
}


def test_the_expected_table_covers_every_pair() -> None:
    assert set(EXPECTED) == set(itertools.product(Health, HealthEvent))


@pytest.mark.parametrize(("current", "event"), sorted(EXPECTED))
def test_transition(current: Health, event: HealthEvent) -> None:
    expected = EXPECTED[(current, event)]
    if expected is None:
        with pytest.raises(InvalidHealthTransitionError) as caught:
            transition(current, event)
        assert (caught.value.current, caught.value.event) == (current, event)
        assert not allowed(current, event)
    else:
        assert transition(current, event) is expected
        assert allowed(current, event)


def test_table_has_no_pair_beyond_the_expected_ones() -> None:
    listed = {(s, e): to for s, events in TRANSITIONS.items() for e, to in events.items()}
    assert listed == {k: v for k, v in EXPECTED.items() if v is not None}


def test_only_a_reconnect_revives_a_dead_revoked_or_disconnected_connection() -> None:
    for state in (H.NEEDS_RECONNECT, H.REVOKED, H.DISCONNECTED):
        reviving = [e for e in HealthEvent if allowed(state, e) and transition(state, e) in REFRESHABLE]
        assert reviving == [E.RECONNECTED]


def test_every_event_has_a_default_reason() -> None:
    assert set(DEFAULT_REASON) == set(HealthEvent)
    assert DEFAULT_REASON[E.GRANT_DEAD] == "invalid_grant"
    assert DEFAULT_REASON[E.REVOKED_BY_USER] == "revoked_by_user"


def test_the_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[H.REVOKED][E.REFRESHED] = H.HEALTHY  # type: ignore[index]


def test_health_change_event_says_from_to_and_why_with_a_stable_id() -> None:
    at = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    change = HealthChange(
        "tenant-1",
        "9341",
        H.HEALTHY,
        H.NEEDS_RECONNECT,
        "invalid_grant",
        at,
        description="Token expired",
        intuit_tid="tid-1",
    )
    event = change.event()
    assert event.detail_type == CONNECTION_HEALTH_CHANGED
    assert event.tenant_id == "tenant-1"
    assert event.detail["from"] == "healthy"
    assert event.detail["to"] == "needs_reconnect"
    assert event.detail["reason"] == "invalid_grant"
    assert event.detail["description"] == "Token expired"
    assert event.detail["intuit_tid"] == "tid-1"
    # The same fact published twice carries the same id; another fact does not.
    assert change.event().event_id == event.event_id
    later = HealthChange(
        "tenant-1", "9341", H.HEALTHY, H.NEEDS_RECONNECT, "invalid_grant", at.replace(hour=13)
    )
    assert later.event().event_id != event.event_id


def test_first_health_has_no_previous() -> None:
    change = HealthChange("t", None, None, H.HEALTHY, "connected", datetime(2026, 1, 1, tzinfo=UTC))
    assert change.event().detail["from"] is None
