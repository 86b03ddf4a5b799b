"""The onboarding after a connection: QBO's lists read and the unambiguous matches linked, recorded
on the connection item and announced by ``Onboarding Finished``.

The work itself is the mapping service's ``onboard`` (``run``, injected by the composition root:
connections and mapping never import each other).  ``Onboarder`` keeps its state on the connection
item (``ConnectionStore``: pending from the consent, running, finished or failed), which the
connection status shows, so a host app knows when mapping is worth opening: right after a connect
QBO's lists are not read yet.

Once per connection: the event's id derives from the realm and the consent's ``connected_at``, and
its detail is built from the stored record, so a repeated onboarding (the event rule's retry, a
second delivery of ``Connection Connected``) publishes the same event under the same id, and never
runs the work again once it finished.  A refused publication raises, so the rule's retry publishes
it again; a failure is recorded and raised, so the retry runs it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.connections.errors import NeverConnectedError
from shared.connections.store import Connection, ConnectionStore, Onboarding, epoch
from shared.kernel.clock import Clock
from shared.kernel.events import ONBOARDING_FINISHED, EventPublisher, OutboundEvent, make_event
from shared.kernel.observability import logger


class OnboardCounts(Protocol):
    """What the mapping service's ``onboard`` reports, per kind."""

    @property
    def refreshed(self) -> Mapping[str, int]: ...  # QBO entities read

    @property
    def applied(self) -> Mapping[str, int]: ...  # links made

    @property
    def unmatched(self) -> Mapping[str, int]: ...  # app entities left unlinked


@dataclass(frozen=True)
class OnboardingOutcome:
    """``onboarding`` as recorded after this run; ``event`` the ``Onboarding Finished`` published
    (None when the tenant connected again meanwhile: that consent's onboarding is another);
    ``repeated`` when it had finished before this run, which then did no work."""

    tenant_id: str
    onboarding: Onboarding | None
    event: OutboundEvent | None
    repeated: bool = False


class Onboarder:
    def __init__(
        self,
        store: ConnectionStore,
        run: Callable[[str], OnboardCounts],
        events: EventPublisher,
        clock: Clock,
    ) -> None:
        self._store = store
        self._run = run
        self._events = events
        self._clock = clock

    def onboard(self, tenant_id: str) -> OnboardingOutcome:
        """Onboard the tenant's current connection, once; raises what the work raised (recorded
        as failed first)."""
        connection = self._store.require(tenant_id)
        connected_at = connection.connected_at
        if connected_at is None:
            raise NeverConnectedError(tenant_id)
        if connection.onboarding is not None and connection.onboarding.state == "finished":
            return self._announce(connection, repeated=True)
        if not self._store.onboarding.start(tenant_id, connected_at, self._clock.now()):
            return self._settled(tenant_id, connected_at)
        try:
            counts = self._run(tenant_id)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            self._store.onboarding.fail(tenant_id, connected_at, self._clock.now(), message)
            logger.warning("onboarding failed", tenant_id=tenant_id, error=message)
            raise
        recorded = {"read": counts.refreshed, "linked": counts.applied, "unmatched": counts.unmatched}
        self._store.onboarding.finish(tenant_id, connected_at, self._clock.now(), recorded)
        return self._settled(tenant_id, connected_at)

    def _settled(self, tenant_id: str, connected_at: datetime) -> OnboardingOutcome:
        """Announce what is recorded now: this run's result, or a concurrent run's that finished
        first (its record stands, and so its event)."""
        current = self._store.require(tenant_id)
        if current.connected_at != connected_at:
            logger.info("onboarding superseded by a new connection", tenant_id=tenant_id)
            return OnboardingOutcome(tenant_id, current.onboarding, None)
        if current.onboarding is None or current.onboarding.state != "finished":
            return OnboardingOutcome(tenant_id, current.onboarding, None)
        return self._announce(current, repeated=False)

    def _announce(self, connection: Connection, *, repeated: bool) -> OnboardingOutcome:
        event = finished_event(connection)
        self._events.publish(event)  # refused: raises, and the retry publishes it again
        return OnboardingOutcome(connection.tenant_id, connection.onboarding, event, repeated)


def onboarding_status(onboarding: Onboarding | None) -> dict[str, Any] | None:
    """The connection status's ``onboarding``: null when none is recorded (never connected, or
    connected before QBO Link recorded onboardings)."""
    if onboarding is None:
        return None

    def instant(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "state": onboarding.state,
        "started_at": instant(onboarding.started_at),
        "finished_at": instant(onboarding.finished_at),
        "failed_at": instant(onboarding.failed_at),
        "read": dict(onboarding.read),
        "linked": dict(onboarding.linked),
        "unmatched": dict(onboarding.unmatched),
        "error": onboarding.error,
    }


def finished_event(connection: Connection) -> OutboundEvent:
    """``Onboarding Finished`` of ``connection``, built from its stored record only: every run
    that announces it gives the same detail and the same id."""
    from shared.kernel.event_models import OnboardingFinished

    onboarding, connected_at = connection.onboarding, connection.connected_at
    if onboarding is None or connected_at is None or onboarding.state != "finished":
        raise ValueError(f"the onboarding of tenant {connection.tenant_id} has not finished")
    started = onboarding.started_at or connected_at
    detail = OnboardingFinished(
        realm_id=connection.realm_id,
        connected_at=connected_at.isoformat(),
        started_at=started.isoformat(),
        finished_at=(onboarding.finished_at or started).isoformat(),
        read=onboarding.read,
        linked=onboarding.linked,
        unmatched=onboarding.unmatched,
    )
    return make_event(
        ONBOARDING_FINISHED, connection.tenant_id, detail, connection.realm_id, str(epoch(connected_at))
    )
