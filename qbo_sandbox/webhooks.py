"""Intuit webhooks: the sandbox tells a receiver about changes the way QBO does.

Every journalled change of every company reaches :meth:`WebhookDispatcher.on_change`, which only
queues an event (it runs under the company lock).  A background thread groups queued events into
POSTs (legacy ``eventNotifications`` or a CloudEvents array), signs the raw body with the verifier
token (``intuit-signature``) and retries a failed POST on Intuit's schedule, holding every later
event behind it so a receiver sees events in the order they happened.

Durations in the configuration are sandbox seconds: real seconds times ``settings.time_scale``, so
a time scale of 1000 turns Intuit's six-hour retry into 21.6 real seconds.  Event timestamps come
from the virtual clock instead (they are the change times).

Control endpoints live under ``/_sandbox/webhooks``; docs/sandbox.md describes their bodies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qbo_sandbox.wire import Request, Response, Router, dumps

if TYPE_CHECKING:
    from qbo_sandbox.company import Change, Company
    from qbo_sandbox.sandbox import Sandbox

log = logging.getLogger("qbo_sandbox.webhooks")

SIGNATURE_HEADER = "intuit-signature"

# Delay before each retry after a failed attempt; the last value repeats for ever (Intuit blog,
# 2025-10-14: 0s, 10s, 20s, 30s, 5m, 20m, 2h, 4h, 6h, then every 6h).
INTUIT_RETRY_SCHEDULE: tuple[float, ...] = (0, 10, 20, 30, 300, 1200, 7200, 14400, 21600)

# Intuit caps a notification at 100 events.
MAX_EVENTS_PER_POST = 100

# At high time scales a 3-second deadline shrinks to milliseconds, which loopback jitter alone
# would miss; below this many real seconds a receiver is never declared late.
MIN_REAL_DEADLINE = 0.1

# A receiver that stays down while the sandbox keeps changing must not exhaust memory.
MAX_PENDING_EVENTS = 100_000
MAX_LOG_ENTRIES = 1_000

OPERATIONS = ("Create", "Update", "Delete", "Void", "Merge", "Emailed")
PAST_TENSE = {
    "Create": "created",
    "Update": "updated",
    "Delete": "deleted",
    "Void": "voided",
    "Merge": "merged",
    "Emailed": "emailed",
}

# Entities Intuit sends webhooks for (the table of https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks);
# changes of any other entity (TaxCode, TaxRate, CompanyInfo, ...) produce no event, as in QBO.
WEBHOOK_ENTITIES = frozenset(
    {
        "Account", "Bill", "BillPayment", "Budget", "Class", "CreditMemo", "Currency", "Customer",
        "Department", "Deposit", "Employee", "Estimate", "Invoice", "Item", "JournalCode",
        "JournalEntry", "Payment", "PaymentMethod", "Preferences", "Purchase", "PurchaseOrder",
        "RefundReceipt", "SalesReceipt", "TaxAgency", "Term", "TimeActivity", "Transfer", "Vendor",
        "VendorCredit",
    }
)  # fmt: skip
_ENTITY_BY_LOWER = {name.lower(): name for name in WEBHOOK_ENTITIES}
_OPERATION_BY_LOWER = {name.lower(): name for name in OPERATIONS}


# --- signature ----------------------------------------------------------------------------------


def sign(body: bytes, verifier_token: str) -> str:
    """``intuit-signature``: base64(HMAC-SHA256(key=verifier token, message=raw body))."""
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, signature: str, verifier_token: str) -> bool:
    """Constant-time check of an ``intuit-signature`` value, as a receiver should do it."""
    return hmac.compare_digest(sign(body, verifier_token), signature)


# --- events and payloads ------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str  # stable across retries: the CloudEvents ``id``
    realm: str
    entity: str
    entity_id: str
    operation: str
    at: datetime  # aware, in the company's time zone (legacy ``lastUpdated`` shows its offset)
    deleted_id: str | None = None
    queued_at: float = 0.0  # scaled monotonic seconds, for the batch window


def legacy_payload(events: list[WebhookEvent]) -> dict[str, Any]:
    """``{"eventNotifications": [...]}``, one notification per realm in order of first appearance."""
    by_realm: dict[str, list[dict[str, str]]] = {}
    for event in events:
        entity = {
            "name": event.entity,
            "id": event.entity_id,
            "operation": event.operation,
            "lastUpdated": event.at.isoformat(timespec="milliseconds"),
        }
        if event.deleted_id is not None:
            entity["deletedId"] = event.deleted_id
        by_realm.setdefault(event.realm, []).append(entity)
    return {
        "eventNotifications": [
            {"realmId": realm, "dataChangeEvent": {"entities": entities}}
            for realm, entities in by_realm.items()
        ]
    }


def cloudevents_payload(events: list[WebhookEvent], source: str) -> list[dict[str, Any]]:
    """A JSON array with one CloudEvent per change, realms mixed in change order."""
    return [
        {
            "specversion": "1.0",
            "id": event.event_id,
            "source": source,
            "type": f"qbo.{event.entity.lower()}.{PAST_TENSE[event.operation]}.v1",
            "datacontenttype": "application/json",
            "time": utc_z(event.at),
            "intuitentityid": event.entity_id,
            "intuitaccountid": event.realm,
            "data": {} if event.deleted_id is None else {"deletedid": event.deleted_id},
        }
        for event in events
    ]


def utc_z(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def app_source(app_id: str) -> str:
    """A stable CloudEvents ``source`` per app, shaped like Intuit's ("intuit." + 44 base64 chars)."""
    return "intuit." + base64.b64encode(hashlib.sha256(app_id.encode("utf-8")).digest()).decode()


def render(events: list[WebhookEvent], fmt: str, source: str) -> bytes:
    if fmt == "legacy":
        return dumps(legacy_payload(events))
    return dumps(cloudevents_payload(events, source))


# --- configuration ------------------------------------------------------------------------------


def _canonical(values: list[str] | None, known: dict[str, str], what: str) -> list[str] | None:
    if values is None:
        return None
    result: list[str] = []
    for value in values:
        name = known.get(value.lower())
        if name is None:
            raise ValueError(f"{value!r} is not a webhook {what}; use one of {sorted(known.values())}")
        if name not in result:
            result.append(name)
    return result


class WebhookConfig(BaseModel):
    """What the app's webhooks page holds, plus the sandbox's delivery knobs."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    endpoint_url: str | None = None  # None: webhooks off, events are dropped
    verifier_token: str = Field(min_length=1, max_length=512)
    format: Literal["legacy", "cloudevents"] = "cloudevents"
    content_type: Literal["application/json", "application/cloudevents+json"] = "application/json"
    entities: list[str] | None = None  # None: every webhook entity
    operations: list[str] | None = None  # None: every operation
    batch_window_seconds: float = Field(default=1.0, ge=0, le=3600)
    max_events_per_post: int = Field(default=MAX_EVENTS_PER_POST, ge=1, le=MAX_EVENTS_PER_POST)
    deadline_seconds: float = Field(default=3.0, gt=0, le=3600)
    retry_enabled: bool = True
    retry_schedule_seconds: list[Annotated[float, Field(ge=0, le=7 * 86400)]] = Field(
        default_factory=lambda: list(INTUIT_RETRY_SCHEDULE), min_length=1, max_length=100
    )
    max_attempts: int | None = Field(default=None, ge=1)  # None: retry for ever, as Intuit seems to

    @field_validator("endpoint_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an absolute http or https URL")
        try:
            parts.port  # noqa: B018 - a bad port only raises when read
        except ValueError as exc:
            raise ValueError(f"invalid port: {exc}") from None
        return value

    @field_validator("entities")
    @classmethod
    def _check_entities(cls, value: list[str] | None) -> list[str] | None:
        return _canonical(value, _ENTITY_BY_LOWER, "entity")

    @field_validator("operations")
    @classmethod
    def _check_operations(cls, value: list[str] | None) -> list[str] | None:
        return _canonical(value, _OPERATION_BY_LOWER, "operation")

    def wants(self, entity: str, operation: str) -> bool:
        return (self.entities is None or entity in self.entities) and (
            self.operations is None or operation in self.operations
        )

    def retry_delay(self, failed_attempts: int) -> float:
        schedule = self.retry_schedule_seconds
        return schedule[min(failed_attempts, len(schedule)) - 1]


class EventRequest(BaseModel):
    """An event a tester enqueues directly (``POST /_sandbox/webhooks/events``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    realm: str = Field(pattern=r"^[0-9]{1,32}$")
    entity: str = Field(pattern=r"^[A-Za-z]{1,64}$")
    id: str = Field(min_length=1, max_length=64)
    operation: str
    deletedId: str | None = Field(default=None, min_length=1, max_length=64)  # the wire name Intuit uses
    time: str | None = None  # ISO 8601 with an offset; default: now

    @field_validator("operation")
    @classmethod
    def _check_operation(cls, value: str) -> str:
        name = _OPERATION_BY_LOWER.get(value.lower())
        if name is None:
            raise ValueError(f"must be one of {list(OPERATIONS)}")
        return name

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            raise ValueError("must carry a UTC offset or Z")
        return value

    @model_validator(mode="after")
    def _merge_only(self) -> EventRequest:
        if self.deletedId is not None and self.operation != "Merge":
            raise ValueError("deletedId is only sent with operation Merge")
        return self


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    duplicate_batches: int | None = Field(default=None, ge=0, le=10_000)
    delay_batches: int | None = Field(default=None, ge=0, le=10_000)
    delay_seconds: float | None = Field(default=None, ge=0, le=7 * 86400)


@dataclass
class WebhookFaults:
    """FieldTwin's webhook faults: the next N batches arrive twice, or late."""

    duplicate_batches: int = 0
    delay_batches: int = 0
    delay_seconds: float = 0.0

    def public(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- queue state --------------------------------------------------------------------------------


@dataclass
class _Batch:
    batch_id: int
    events: list[WebhookEvent]
    fmt: str
    body: bytes
    due: float  # scaled monotonic time of the next attempt
    duplicate: bool = False
    delayed_seconds: float = 0.0
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None

    @property
    def event_ids(self) -> list[str]:
        return [e.event_id for e in self.events]

    @property
    def realms(self) -> list[str]:
        return list(dict.fromkeys(e.realm for e in self.events))


@dataclass
class _PostResult:
    status: int | None
    error: str | None
    duration: float  # real seconds
    ok: bool


@dataclass
class _Stats:
    queued: int = 0
    delivered: int = 0
    dropped_no_endpoint: int = 0
    dropped_overflow: int = 0
    filtered: int = 0
    unsupported: int = 0
    gave_up: int = 0

    def public(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _State:
    config: WebhookConfig
    pending: deque[WebhookEvent] = field(default_factory=deque)
    head: _Batch | None = None  # the batch being delivered or retried; later events wait
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_LOG_ENTRIES))
    stats: _Stats = field(default_factory=_Stats)
    faults: WebhookFaults = field(default_factory=WebhookFaults)
    next_batch_id: int = 1
    next_attempt_id: int = 1


@dataclass(frozen=True)
class _Attempt:
    """What one POST of a batch sends, fixed under the lock before the I/O."""

    config: WebhookConfig
    url: str
    body: bytes
    headers: dict[str, str]
    deadline: float  # real seconds
    sit_out: float  # an injected delivery delay still to wait, in scaled seconds
    generation: int  # a reset since makes the outcome moot


def _log_entry(
    state: _State, batch: _Batch, attempt: _Attempt, at: datetime, result: _PostResult, *, duplicate: bool
) -> dict[str, Any]:
    """One attempt's line in the delivery log (its outcome filled in by the caller)."""
    entry: dict[str, Any] = {
        "attempt_id": state.next_attempt_id,
        "batch_id": batch.batch_id,
        "attempt": batch.attempts,
        "at": utc_z(at),
        "url": attempt.url,
        "format": attempt.config.format,
        "status": result.status,
        "error": result.error,
        "ok": result.ok,
        "duration_ms": round(result.duration * 1000, 3),
        "event_ids": batch.event_ids,
        "realms": batch.realms,
        "duplicate": duplicate,
        "delayed_seconds": batch.delayed_seconds if batch.attempts == 1 else 0.0,
        "outcome": None,
        "next_retry_in_seconds": None,
    }
    state.next_attempt_id += 1
    return entry


def _log_attempts(entries: list[dict[str, Any]]) -> None:
    for item in entries:
        log.info(
            "webhook attempt batch=%s attempt=%s status=%s error=%s events=%d outcome=%s",
            item["batch_id"],
            item["attempt"],
            item["status"],
            item["error"],
            len(item["event_ids"]),
            item["outcome"],
        )


class WebhookDispatcher:
    """Queues change events and delivers them to the configured endpoint, one batch at a time.

    Locks: ``_cond`` (its lock) guards the queue, config and log and is only held briefly, never
    during I/O, because :meth:`on_change` takes it under a company lock.  ``_delivery_lock``
    serialises POSTs between the background thread and :meth:`flush` so one batch is never in
    flight twice.  A reset bumps ``_generation`` so a POST already in flight cannot write its
    outcome into the fresh state.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.clock = sandbox.clock
        self._source = app_source(sandbox.settings.app_id)
        self._cond = threading.Condition(threading.Lock())
        self._delivery_lock = threading.Lock()
        self._state = _State(config=self.default_config())
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._stop_event: threading.Event | None = None

    def default_config(self) -> WebhookConfig:
        return WebhookConfig(verifier_token=self.sandbox.settings.verifier_token)

    @property
    def config(self) -> WebhookConfig:
        with self._cond:
            return self._state.config

    # --- intake -----------------------------------------------------------------------------

    def on_change(self, company: Company, change: Change) -> None:
        """Company listener: queue an event for ``change`` (called under the company lock)."""
        entity = change.entity
        with self._cond:
            state = self._state
            if entity not in WEBHOOK_ENTITIES or change.operation not in PAST_TENSE:
                state.stats.unsupported += 1
                return
            if state.config.endpoint_url is None:
                state.stats.dropped_no_endpoint += 1
                return
            if not state.config.wants(entity, change.operation):
                state.stats.filtered += 1
                return
            self._enqueue_locked(
                company.realm_id,
                entity,
                change.entity_id,
                change.operation,
                company.local(change.at),
                deleted_id=change.deleted_id,
            )

    def enqueue(
        self,
        realm: str,
        entity: str,
        entity_id: str,
        operation: str,
        *,
        at: datetime | None = None,
        deleted_id: str | None = None,
    ) -> WebhookEvent | None:
        """Queue an arbitrary event (no entity or filter checks); None when no endpoint is set."""
        if operation not in PAST_TENSE:
            raise ValueError(f"operation must be one of {list(OPERATIONS)}")
        when = at or self.clock.now()
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        # A known realm reports in its own time zone, like real changes; an unknown one keeps the
        # offset the caller gave, so receivers can be fed any lastUpdated shape.
        company = self.sandbox.company(realm)
        if company is not None:
            when = company.local(when)
        with self._cond:
            if self._state.config.endpoint_url is None:
                self._state.stats.dropped_no_endpoint += 1
                return None
            return self._enqueue_locked(realm, entity, entity_id, operation, when, deleted_id=deleted_id)

    def _enqueue_locked(
        self, realm: str, entity: str, entity_id: str, operation: str, at: datetime, *, deleted_id: str | None
    ) -> WebhookEvent | None:
        state = self._state
        if len(state.pending) >= MAX_PENDING_EVENTS:
            state.stats.dropped_overflow += 1
            return None
        event = WebhookEvent(
            event_id=str(uuid.uuid4()),
            realm=realm,
            entity=entity,
            entity_id=entity_id,
            operation=operation,
            at=at,
            deleted_id=deleted_id,
            queued_at=self.clock.monotonic(),
        )
        state.pending.append(event)
        state.stats.queued += 1
        self._cond.notify_all()
        return event

    # --- configuration ----------------------------------------------------------------------

    def configure(self, changes: dict[str, Any], *, replace: bool = False) -> WebhookConfig:
        """Apply ``changes`` over the current config (or over the defaults when ``replace``).

        Raises :class:`pydantic.ValidationError`.  Clearing the endpoint drops every queued event,
        as deleting the subscription would.
        """
        with self._cond:
            base = self.default_config() if replace else self._state.config
            merged = {**base.model_dump(), **changes}
            config = WebhookConfig.model_validate(merged)
            state = self._state
            state.config = config
            if config.endpoint_url is None:
                dropped = len(state.pending) + (len(state.head.events) if state.head else 0)
                state.stats.dropped_no_endpoint += dropped
                state.pending.clear()
                state.head = None
            self._cond.notify_all()
            return config

    def set_faults(self, request: FaultRequest) -> WebhookFaults:
        with self._cond:
            faults = self._state.faults
            for name in ("duplicate_batches", "delay_batches", "delay_seconds"):
                value = getattr(request, name)
                if value is not None:
                    setattr(faults, name, value)
            return WebhookFaults(**faults.public())

    def clear_faults(self) -> None:
        with self._cond:
            self._state.faults = WebhookFaults()

    # --- batching ---------------------------------------------------------------------------

    def _form_head_locked(self, now: float, *, ignore_window: bool) -> _Batch | None:
        state = self._state
        if state.head is not None:
            return state.head
        config = state.config
        if not state.pending or config.endpoint_url is None:
            return None
        full = len(state.pending) >= config.max_events_per_post
        if not (ignore_window or full or now >= state.pending[0].queued_at + config.batch_window_seconds):
            return None
        take = min(len(state.pending), config.max_events_per_post)
        events = [state.pending.popleft() for _ in range(take)]
        batch = _Batch(
            batch_id=state.next_batch_id,
            events=events,
            fmt=config.format,
            body=render(events, config.format, self._source),
            due=now,
        )
        state.next_batch_id += 1
        faults = state.faults
        if faults.duplicate_batches > 0:
            faults.duplicate_batches -= 1
            batch.duplicate = True
        if faults.delay_batches > 0 and faults.delay_seconds > 0:
            faults.delay_batches -= 1
            batch.delayed_seconds = faults.delay_seconds
            batch.due = now + faults.delay_seconds
        state.head = batch
        return batch

    def _wait_for_due(self, stop: threading.Event) -> _Batch | None:
        """Block until the head batch is due (None once ``stop`` is set)."""
        with self._cond:
            while not stop.is_set():
                now = self.clock.monotonic()
                batch = self._form_head_locked(now, ignore_window=False)
                timeout: float | None = None
                if batch is not None:
                    if batch.due <= now:
                        return batch
                    timeout = batch.due - now
                elif self._state.pending:
                    first = self._state.pending[0]
                    timeout = max(0.0, first.queued_at + self._state.config.batch_window_seconds - now)
                self._cond.wait(None if timeout is None else timeout / self.clock.time_scale)
        return None

    # --- delivery ---------------------------------------------------------------------------

    def _deliver(
        self, batch: _Batch, client: httpx2.Client, *, honour_due: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """One attempt at ``batch`` (plus its duplicate); returns log entries and whether it is held.

        Called with ``_delivery_lock`` held.  ``honour_due`` is False for flush, which skips the
        retry delay but still sits out an injected delivery delay.
        """
        attempt = self._begin_attempt(batch, honour_due=honour_due)
        if not isinstance(attempt, _Attempt):
            return [], attempt
        if attempt.sit_out > 0:
            self.clock.sleep(attempt.sit_out)
        started_at = self.clock.now()
        result = _post(client, attempt.url, attempt.body, attempt.headers, attempt.deadline)
        duplicate = (
            _post(client, attempt.url, attempt.body, attempt.headers, attempt.deadline)
            if result.ok and batch.duplicate
            else None
        )
        entries, held = self._end_attempt(batch, attempt, started_at, result, duplicate)
        _log_attempts(entries)
        return entries, held

    def _begin_attempt(self, batch: _Batch, *, honour_due: bool) -> _Attempt | bool:
        """The request to make for ``batch`` now, or whether it stays held (no attempt now)."""
        with self._cond:
            state = self._state
            if state.head is not batch:
                return False
            now = self.clock.monotonic()
            if honour_due and batch.due > now:
                return True
            config = state.config
            url = config.endpoint_url
            if url is None:
                return False
            sit_out = batch.due - now if batch.attempts == 0 and batch.due > now else 0.0
            if batch.fmt != config.format:
                # The app switched formats while this batch waited: same events, same ids.
                batch.fmt = config.format
                batch.body = render(batch.events, config.format, self._source)
            batch.attempts += 1
            content_type = config.content_type if config.format == "cloudevents" else "application/json"
            return _Attempt(
                config=config,
                url=url,
                body=batch.body,
                headers={
                    "Content-Type": content_type,
                    SIGNATURE_HEADER: sign(batch.body, config.verifier_token),
                },
                deadline=max(MIN_REAL_DEADLINE, config.deadline_seconds / self.clock.time_scale),
                sit_out=sit_out,
                generation=self._generation,
            )

    def _end_attempt(
        self,
        batch: _Batch,
        attempt: _Attempt,
        started_at: datetime,
        result: _PostResult,
        duplicate: _PostResult | None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Record the outcome: delivered, given up, or held for a retry (whether it is held)."""
        config = attempt.config
        with self._cond:
            if attempt.generation != self._generation:
                return [], False
            state = self._state
            entry = _log_entry(state, batch, attempt, started_at, result, duplicate=False)
            held = False
            if state.head is not batch:
                entry["outcome"] = "abandoned"
            elif result.ok:
                state.head = None
                state.stats.delivered += len(batch.events)
                entry["outcome"] = "delivered"
            else:
                batch.last_status, batch.last_error = result.status, result.error
                if not config.retry_enabled or (
                    config.max_attempts is not None and batch.attempts >= config.max_attempts
                ):
                    state.head = None
                    state.stats.gave_up += len(batch.events)
                    entry["outcome"] = "gave_up"
                else:
                    delay = config.retry_delay(batch.attempts)
                    batch.due = self.clock.monotonic() + delay
                    entry["outcome"] = "retry_scheduled"
                    entry["next_retry_in_seconds"] = delay
                    held = True
            entries = [entry]
            if duplicate is not None:
                dup = _log_entry(state, batch, attempt, started_at, duplicate, duplicate=True)
                dup["outcome"] = "duplicate_sent"
                entries.append(dup)
            state.log.extend(entries)
            self._cond.notify_all()
        return entries, held

    def flush(self) -> list[dict[str, Any]]:
        """Deliver everything queued now, ignoring the batch window and retry delays.

        Stops at the first batch that still fails (later events stay behind it) and returns the
        attempts made.  An injected delivery delay is still sat out, in scaled time.
        """
        entries: list[dict[str, Any]] = []
        with self._delivery_lock:
            client: httpx2.Client | None = None
            try:
                while True:
                    with self._cond:
                        batch = self._form_head_locked(self.clock.monotonic(), ignore_window=True)
                    if batch is None:
                        break
                    if client is None:
                        client = _new_client()
                    made, held = self._deliver(batch, client, honour_due=False)
                    entries.extend(made)
                    if held or not made:
                        break
            finally:
                if client is not None:
                    client.close()
        return entries

    def _run(self, stop: threading.Event) -> None:
        with _new_client() as client:
            while True:
                batch = self._wait_for_due(stop)
                if batch is None:
                    return
                with self._delivery_lock:
                    if stop.is_set():
                        return
                    self._deliver(batch, client, honour_due=True)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(stop,), name="qbo-sandbox-webhooks", daemon=True)
        self._stop_event, self._thread = stop, thread
        thread.start()

    def stop(self) -> None:
        """Stop the delivery thread; a POST in flight may outlive this by up to its deadline."""
        stop, thread = self._stop_event, self._thread
        self._stop_event = self._thread = None
        if stop is not None:
            stop.set()
        with self._cond:
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout=1.0)

    def reset(self) -> None:
        """Queue, held batch, delivery log, faults and config back to the defaults."""
        with self._cond:
            self._generation += 1
            self._state = _State(config=self.default_config())
            self._cond.notify_all()

    # --- views ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._cond:
            state = self._state
            config = state.config
            head = state.head
            held = _held_view(head, self.clock.monotonic()) if head is not None else None
            return {
                "config": config.model_dump(),
                "effective": {
                    "time_scale": self.clock.time_scale,
                    "batch_window_real_seconds": config.batch_window_seconds / self.clock.time_scale,
                    "deadline_real_seconds": max(
                        MIN_REAL_DEADLINE, config.deadline_seconds / self.clock.time_scale
                    ),
                    "cloudevents_source": self._source,
                },
                "queue": {
                    "pending_events": len(state.pending),
                    "pending_event_ids": [e.event_id for e in islice(state.pending, MAX_EVENTS_PER_POST)],
                    "held_batch": held,
                },
                "stats": state.stats.public(),
                "faults": state.faults.public(),
                "delivery_thread": self._thread is not None and self._thread.is_alive(),
            }

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(entry) for entry in self._state.log]

    def faults(self) -> WebhookFaults:
        with self._cond:
            return self._state.faults

    def register_routes(self, router: Router) -> None:
        WebhookControls(self).register_routes(router)


class WebhookControls:
    """The control API under ``/_sandbox/webhooks``: configure, flush, inject events and faults."""

    def __init__(self, webhooks: WebhookDispatcher) -> None:
        self._webhooks = webhooks

    def register_routes(self, router: Router) -> None:
        base = "/_sandbox/webhooks"
        router.add("GET", base, self._get_status)
        router.add("POST", base, self._post_config)
        router.add("PUT", base, self._put_config)
        router.add("POST", f"{base}/flush", self._post_flush)
        router.add("GET", f"{base}/deliveries", self._get_deliveries)
        router.add("POST", f"{base}/events", self._post_events)
        router.add("GET", f"{base}/faults", self._get_faults)
        router.add("POST", f"{base}/faults", self._post_faults)
        router.add("DELETE", f"{base}/faults", self._delete_faults)

    def _get_status(self, _sandbox: Sandbox, _request: Request, _params: dict[str, str]) -> Response:
        return Response.json(self._webhooks.status())

    def _post_config(self, _sandbox: Sandbox, request: Request, _params: dict[str, str]) -> Response:
        return self._config_request(request, replace=False)

    def _put_config(self, _sandbox: Sandbox, request: Request, _params: dict[str, str]) -> Response:
        return self._config_request(request, replace=True)

    def _config_request(self, request: Request, *, replace: bool) -> Response:
        body = _json_object(request)
        if isinstance(body, Response):
            return body
        try:
            self._webhooks.configure(body, replace=replace)
        except ValidationError as exc:
            return _invalid("invalid_config", exc)
        return Response.json(self._webhooks.status())

    def _post_flush(self, _sandbox: Sandbox, _request: Request, _params: dict[str, str]) -> Response:
        attempts = self._webhooks.flush()
        status = self._webhooks.status()
        return Response.json({"attempts": attempts, "queue": status["queue"]})

    def _get_deliveries(self, _sandbox: Sandbox, _request: Request, _params: dict[str, str]) -> Response:
        entries = self._webhooks.deliveries()
        return Response.json({"deliveries": entries, "count": len(entries)})

    def _post_events(self, _sandbox: Sandbox, request: Request, _params: dict[str, str]) -> Response:
        try:
            raw = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return _error(400, "invalid_json", f"body is not JSON: {exc}")
        items = raw if isinstance(raw, list) else [raw]
        if not items or len(items) > 1000 or not all(isinstance(i, dict) for i in items):
            return _error(400, "invalid_events", "send one event object or a list of 1 to 1000 of them")
        parsed: list[EventRequest] = []
        for index, item in enumerate(items):
            try:
                parsed.append(EventRequest.model_validate(item))
            except ValidationError as exc:
                prefix = [index] if isinstance(raw, list) else []
                return _invalid("invalid_event", exc, prefix)
        if self._webhooks.config.endpoint_url is None:
            return _error(409, "no_endpoint", "no webhook endpoint is configured, so events would be dropped")
        queued: list[WebhookEvent] = []
        for item in parsed:
            at = datetime.fromisoformat(item.time) if item.time is not None else None
            event = self._webhooks.enqueue(
                item.realm, item.entity, item.id, item.operation, at=at, deleted_id=item.deletedId
            )
            if event is not None:
                queued.append(event)
        return Response.json({"event_ids": [e.event_id for e in queued]}, status=202)

    def _get_faults(self, _sandbox: Sandbox, _request: Request, _params: dict[str, str]) -> Response:
        return Response.json(self._webhooks.faults().public())

    def _post_faults(self, _sandbox: Sandbox, request: Request, _params: dict[str, str]) -> Response:
        body = _json_object(request)
        if isinstance(body, Response):
            return body
        try:
            faults = self._webhooks.set_faults(FaultRequest.model_validate(body))
        except ValidationError as exc:
            return _invalid("invalid_faults", exc)
        return Response.json(faults.public())

    def _delete_faults(self, _sandbox: Sandbox, _request: Request, _params: dict[str, str]) -> Response:
        self._webhooks.clear_faults()
        return Response.json(WebhookFaults().public())


# --- helpers ------------------------------------------------------------------------------------


def _held_view(head: _Batch, now: float) -> dict[str, Any]:
    return {
        "batch_id": head.batch_id,
        "event_ids": head.event_ids,
        "realms": head.realms,
        "attempts": head.attempts,
        "next_attempt_in_seconds": max(0.0, head.due - now),
        "last_status": head.last_status,
        "last_error": head.last_error,
        "duplicate": head.duplicate,
        "delayed_seconds": head.delayed_seconds,
    }


def _new_client() -> httpx2.Client:
    # trust_env=False: a proxy from the environment must not intercept loopback receivers.
    return httpx2.Client(trust_env=False, follow_redirects=False)


def _post(
    client: httpx2.Client, url: str, body: bytes, headers: dict[str, str], deadline: float
) -> _PostResult:
    started = time.monotonic()
    try:
        response = client.post(url, content=body, headers=headers, timeout=httpx2.Timeout(deadline))
    except httpx2.TimeoutException as exc:
        return _PostResult(None, f"timeout: {type(exc).__name__}", time.monotonic() - started, False)
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        return _PostResult(None, f"{type(exc).__name__}: {exc}", time.monotonic() - started, False)
    elapsed = time.monotonic() - started
    if elapsed > deadline:
        # httpx's timeout is per read, so a receiver that trickles its answer can pass it.
        return _PostResult(response.status_code, "deadline exceeded", elapsed, False)
    ok = response.status_code == 200
    return _PostResult(response.status_code, None if ok else "non-200 status", elapsed, ok)


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    return Response.json({"error": code, "message": message, **extra}, status=status)


def _invalid(code: str, exc: ValidationError, prefix: list[int] | None = None) -> Response:
    errors = [
        {
            "field": ".".join(str(part) for part in [*(prefix or []), *err["loc"]]) or "(body)",
            "message": err["msg"],
        }
        for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return _error(400, code, summary, errors=errors)


def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(request.body.decode("utf-8")) if request.body.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        return _error(400, "invalid_json", f"body is not JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "invalid_json", "body must be a JSON object")
    return body
