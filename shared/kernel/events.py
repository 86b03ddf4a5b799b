"""Outbound events: what QBO Link tells the host app through EventBridge.

The catalogue below names every event the product emits (its EventBridge detail-type), grouped by
area, each with when it is emitted and the model of its detail (``shared.kernel.event_models``, a
module of its own so that a handler's import does not build thirty pydantic models).  Code passes
these constants (typed ``DetailType``) to ``make_event`` with the detail built through its model: a
detail-type is spelled once, here, and a detail field once, in its model
(``tests/unit/test_events.py`` checks both).  Every event carries the tenant, a stable id (the same
fact published twice has the same id, so consumers can de-duplicate), the schema version of its
detail and the fields documented in docs/events.md, with a JSON Schema per event under
docs/events/schemas/.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, NewType, Protocol, get_args

from shared.kernel import constants

if TYPE_CHECKING:
    from shared.kernel.event_models import Detail

# --- the catalogue --------------------------------------------------------------------------------

DetailType = NewType("DetailType", str)
"""An EventBridge detail-type of the catalogue; only this module makes one."""

Area = Literal["connection", "mapping", "push", "pull"]
AREAS: Final[tuple[Area, ...]] = get_args(Area)


@dataclass(frozen=True)
class Emission:
    """One way an event comes about: the area that emits it, when, and the name of the model of
    its detail in ``shared.kernel.event_models`` (an event two areas emit has two models, told
    apart by their ``origin`` field)."""

    area: Area
    when: str
    model: str


@dataclass(frozen=True)
class EventType:
    detail_type: DetailType
    emissions: tuple[Emission, ...]

    @property
    def areas(self) -> tuple[Area, ...]:
        return tuple(dict.fromkeys(e.area for e in self.emissions))


_CATALOGUE: dict[DetailType, EventType] = {}


def _event(name: str, *emissions: Emission) -> DetailType:
    detail_type = DetailType(name)
    if detail_type in _CATALOGUE:
        raise ValueError(f"detail-type {name!r} is defined twice")
    _CATALOGUE[detail_type] = EventType(detail_type, emissions)
    return detail_type


# connection (shared.connections: callback, flows, vault, keep_alive, onboarding)

CONNECTION_CONNECTED: Final = _event(
    "Connection Connected",
    Emission(
        "connection",
        "a consent completed: the tokens are stored and the company read (a first connection or a reconnect)",
        "ConnectionConnected",
    ),
)
CONNECTION_DISCONNECTED: Final = _event(
    "Connection Disconnected",
    Emission(
        "connection",
        "the host app disconnected the tenant (DELETE /connection, a repeat included)",
        "ConnectionDisconnected",
    ),
)
CONNECTION_HEALTH_CHANGED: Final = _event(
    "Connection Health Changed",
    Emission(
        "connection",
        "a connection's health changed (refresh failing, refreshed again, grant dead, revoked, ...)",
        "ConnectionHealthChanged",
    ),
)
CONNECTION_HARD_EXPIRY_APPROACHING: Final = _event(
    "Connection Hard Expiry Approaching",
    Emission(
        "connection",
        "the keep-alive found the refresh token's 5-year hard expiry within 30, then within 7 days",
        "ConnectionHardExpiryApproaching",
    ),
)
ONBOARDING_FINISHED: Final = _event(
    "Onboarding Finished",
    Emission(
        "connection",
        "the onboarding after a connection read QBO's lists and linked the unambiguous matches",
        "OnboardingFinished",
    ),
)

# mapping (shared.mapping.service: the match tabs' import); the pull emits "Client Imported" and
# "Site Imported" too, with its own detail (below): ``origin`` tells the two apart


def _imported(kind: str, model: str) -> Emission:
    return Emission("mapping", f"a match tab imported a QBO entity as a new app {kind} (qbo.<id>)", model)


CLIENT_IMPORTED: Final = _event(
    "Client Imported",
    _imported("client", "ClientImportedByMapping"),
    Emission("pull", "an active top-level customer nobody linked appeared in QBO", "ClientImportedByPull"),
)
SITE_IMPORTED: Final = _event(
    "Site Imported",
    _imported("site", "SiteImportedByMapping"),
    Emission("pull", "an active sub-customer (job) nobody linked appeared in QBO", "SiteImportedByPull"),
)
EMPLOYEE_IMPORTED: Final = _event("Employee Imported", _imported("employee", "EmployeeImported"))
WORK_CODE_IMPORTED: Final = _event("Work Code Imported", _imported("work code", "WorkCodeImported"))
EXPENSE_CODE_IMPORTED: Final = _event(
    "Expense Code Imported", _imported("expense code", "ExpenseCodeImported")
)
TAX_IMPORTED: Final = _event("Tax Imported", _imported("tax", "TaxImported"))
ACCOUNT_IMPORTED: Final = _event("Account Imported", _imported("account", "AccountImported"))

# push (shared.push: the worker's outcomes)

DOCUMENT_POSTED: Final = _event(
    "Document Posted",
    Emission(
        "push",
        "a version of an app document is in QBO (created or updated; an invoice of a summarised day)",
        "DocumentPosted",
    ),
)
DOCUMENT_FAILED: Final = _event(
    "Document Failed",
    Emission(
        "push",
        "a version of an app document failed for good (QBO refused it, or it was given up)",
        "DocumentFailed",
    ),
)
DOCUMENT_VOIDED: Final = _event(
    "Document Voided",
    Emission("push", "a posted document the app withdrew was voided in QBO", "DocumentVoided"),
)

# pull (shared.pull: the change worker and the sweep)

CLIENT_CHANGED: Final = _event(
    "Client Changed",
    Emission("pull", "a linked top-level customer changed in QBO and is active", "ClientChanged"),
)
CLIENT_DEACTIVATED: Final = _event(
    "Client Deactivated",
    Emission("pull", "a linked top-level customer changed in QBO and is inactive", "ClientDeactivated"),
)
CLIENT_MERGED_IN_QBO: Final = _event(
    "Client Merged In QBO",
    Emission(
        "pull",
        "QBO merged a linked customer into another: the app entity is relinked to the survivor if it can be",
        "ClientMergedInQbo",
    ),
)
SITE_CHANGED: Final = _event(
    "Site Changed",
    Emission(
        "pull", "a linked sub-customer changed in QBO (deactivated included: see active)", "SiteChanged"
    ),
)
PAYMENT_RECEIVED: Final = _event(
    "Payment Received",
    Emission(
        "pull",
        "a payment made in QBO (not by the push) for a linked customer, or its new version",
        "PaymentReceived",
    ),
)
PAYMENT_VOIDED_IN_QBO: Final = _event(
    "Payment Voided In QBO",
    Emission("pull", "such a payment was voided in QBO", "PaymentVoidedInQbo"),
)
CREDIT_APPLIED_IN_QBO: Final = _event(
    "Credit Applied In QBO",
    Emission(
        "pull",
        "a payment made in QBO (by QBO itself or a bookkeeper) spends credit memos of a linked customer",
        "CreditAppliedInQbo",
    ),
)
INVOICE_CHANGED_IN_QBO: Final = _event(
    "Invoice Changed In QBO",
    Emission(
        "pull",
        "an invoice the push posted was changed, voided or deleted in QBO (drift)",
        "InvoiceChangedInQbo",
    ),
)
CREDIT_MEMO_CHANGED_IN_QBO: Final = _event(
    "Credit Memo Changed In QBO",
    Emission(
        "pull",
        "a credit memo the push posted was changed, voided or deleted in QBO (drift)",
        "CreditMemoChangedInQbo",
    ),
)
PAYMENT_CHANGED_IN_QBO: Final = _event(
    "Payment Changed In QBO",
    Emission(
        "pull",
        "a payment the push posted was changed, voided or deleted in QBO (drift)",
        "PaymentChangedInQbo",
    ),
)
EXCHANGE_FINISHED: Final = _event(
    "Exchange Finished",
    Emission(
        "pull",
        "a webhook delivery that read QBO or published something, or a sweep, ended (succeeded or failed)",
        "ExchangeFinished",
    ),
)

CATALOGUE: Final[Mapping[DetailType, EventType]] = MappingProxyType(_CATALOGUE)


def emitted_by(area: Area) -> tuple[DetailType, ...]:
    """The detail-types ``area`` emits, in catalogue order."""
    return tuple(t.detail_type for t in CATALOGUE.values() if area in t.areas)


# --- the envelope ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundEvent:
    detail_type: DetailType
    tenant_id: str
    detail: dict[str, Any]  # the model's fields, as JSON values (``body`` adds the envelope's)
    event_id: str

    def body(self) -> dict[str, Any]:
        """The detail as a subscriber receives it: the tenant, the id and the model's fields."""
        return {"tenant_id": self.tenant_id, "event_id": self.event_id, **self.detail}

    def entry(self, bus_name: str) -> dict[str, Any]:
        return {
            "Source": constants.EVENT_SOURCE,
            "DetailType": self.detail_type,
            "Detail": json.dumps(self.body(), sort_keys=True),
            "EventBusName": bus_name,
        }


_MODELS_MODULE: Final = "shared.kernel.event_models"


def event_id(detail_type: DetailType, tenant_id: str, *identity: str) -> str:
    """The id of a fact: from what the event is about (``identity``), never from when it was sent."""
    seed = "|".join((detail_type, tenant_id, *identity))
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def make_event(detail_type: DetailType, tenant_id: str, detail: Detail, *identity: str) -> OutboundEvent:
    """The event of ``detail_type`` about ``tenant_id``: ``detail`` is built through the event's model
    (``shared.kernel.event_models``; a model of another event is refused), its id derives from
    ``identity``."""
    models = {emission.model for emission in CATALOGUE[detail_type].emissions}
    kind = type(detail)
    if kind.__module__ != _MODELS_MODULE or kind.__name__ not in models:
        raise TypeError(f"{detail_type} takes a detail of {' or '.join(sorted(models))}, not {type(detail)}")
    body = detail.model_dump(mode="json")
    return OutboundEvent(detail_type, tenant_id, body, event_id(detail_type, tenant_id, *identity))


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


def publish_after_commit(events: EventPublisher, event: OutboundEvent) -> bool:
    """Publish an event announcing a change that is already stored; a refusal is logged, not raised
    (a lost notification must not undo the change or fail the call that made it).  False when the
    bus refused it (docs/events.md says what a host app can rely on)."""
    try:
        events.publish(event)
    except EventPublishError as error:
        from shared.kernel.observability import logger

        logger.error("event publish failed", detail_type=event.detail_type, error=str(error))
        return False
    return True


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
