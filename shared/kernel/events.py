"""Outbound events: what QBO Link tells the host app through EventBridge.

Every event carries the tenant, a stable id (the same fact published twice has the same id, so
consumers can de-duplicate) and a detail documented in docs/events.md.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from shared.kernel import constants


@dataclass(frozen=True)
class OutboundEvent:
    detail_type: str
    tenant_id: str
    detail: dict[str, Any]
    event_id: str

    def entry(self, bus_name: str) -> dict[str, Any]:
        body = {"tenantId": self.tenant_id, "eventId": self.event_id, **self.detail}
        return {
            "Source": constants.EVENT_SOURCE,
            "DetailType": self.detail_type,
            "Detail": json.dumps(body, default=str, sort_keys=True),
            "EventBusName": bus_name,
        }


def make_event(detail_type: str, tenant_id: str, detail: dict[str, Any], *identity: str) -> OutboundEvent:
    """An event whose id is derived from what it is about (``identity``), not from when it was sent."""
    seed = "|".join((detail_type, tenant_id, *identity))
    event_id = hashlib.sha256(seed.encode()).hexdigest()[:32]
    return OutboundEvent(detail_type, tenant_id, detail, event_id)


class EventPublisher(Protocol):
    def publish(self, event: OutboundEvent) -> None: ...


PUT_EVENTS_MAX: Final = 10  # EventBridge PutEvents takes at most 10 entries a call


def publish_all(publisher: EventPublisher, events: Sequence[OutboundEvent]) -> list[OutboundEvent]:
    """Publish ``events`` in as few calls as the publisher allows; returns the ones refused (the
    others went out).  A publisher without ``publish_many`` gets them one by one."""
    many = getattr(publisher, "publish_many", None)
    if many is not None:
        refused: list[OutboundEvent] = many(events)
        return refused
    failed: list[OutboundEvent] = []
    for event in events:
        try:
            publisher.publish(event)
        except Exception:  # reported back to the caller, which raises for them all
            failed.append(event)
    return failed


class EventBridgePublisher:
    """Publishes to the stack's bus; a failed entry raises so the caller's retry covers it."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, event: OutboundEvent) -> None:
        answer = self._client.put_events(Entries=[event.entry(self._bus)])
        if answer.get("FailedEntryCount"):
            failure = answer["Entries"][0]
            raise EventPublishError(
                f"EventBridge refused {event.detail_type}: "
                f"{failure.get('ErrorCode')} {failure.get('ErrorMessage')}"
            )

    def publish_many(self, events: Sequence[OutboundEvent]) -> list[OutboundEvent]:
        """PutEvents in calls of ``PUT_EVENTS_MAX``; returns the entries EventBridge refused."""
        refused: list[OutboundEvent] = []
        for start in range(0, len(events), PUT_EVENTS_MAX):
            chunk = list(events[start : start + PUT_EVENTS_MAX])
            answer = self._client.put_events(Entries=[event.entry(self._bus) for event in chunk])
            if answer.get("FailedEntryCount"):
                results = answer.get("Entries") or []
                refused += [e for e, r in zip(chunk, results, strict=False) if r.get("ErrorCode")]
        return refused


class EventPublishError(RuntimeError):
    pass


@dataclass
class RecordingPublisher:
    """Keeps events in memory: for tests and the local stack's event log."""

    events: list[OutboundEvent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def publish(self, event: OutboundEvent) -> None:
        with self.lock:
            self.events.append(event)

    def publish_many(self, events: Sequence[OutboundEvent]) -> list[OutboundEvent]:
        refused: list[OutboundEvent] = []
        for event in events:
            try:
                self.publish(event)  # a subclass may refuse some (a test's broken bus)
            except Exception:  # reported back, as EventBridge reports failed entries
                refused.append(event)
        return refused

    def of_type(self, detail_type: str) -> list[OutboundEvent]:
        with self.lock:
            return [e for e in self.events if e.detail_type == detail_type]
