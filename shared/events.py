"""Outbound events: what QBO Link tells the host app through EventBridge.

Every event carries the tenant, a stable id (the same fact published twice has the same id, so
consumers can de-duplicate) and a detail documented in docs/events.md.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from shared import constants


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

    def of_type(self, detail_type: str) -> list[OutboundEvent]:
        with self.lock:
            return [e for e in self.events if e.detail_type == detail_type]


def utcnow() -> datetime:
    return datetime.now(UTC)
