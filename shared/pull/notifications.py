"""Intuit webhook intake: verify the signature, parse both payload formats, enqueue per tenant.

Intuit wants a 200 within 3 seconds and retries anything else (its webhooks best practices:
https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks/best-practices),
so the receiver only verifies, parses, de-duplicates and enqueues; the change worker does the
metered reads.  Intuit retries a whole batch on anything but a 200, so a signed body we cannot
read is kept for inspection and acknowledged rather than refused.  Intuit data (bodies, entity
ids) never reaches a log line.

A delivery costs a constant number of calls whatever its size (docs/pull.md, "The receiver"): one
BatchGetItem reads the owners of its realms and the ledger items of its event ids together, the
changes not seen before go to SQS ten per SendMessageBatch, and one BatchWriteItem per 25 records
the ones SQS accepted.  Only what SQS accepted is recorded, so a refused change comes back with
Intuit's retry.  The ledger is a filter, not a claim: two copies of a delivery racing both enqueue,
and the queue's deduplication id (the event id) keeps one; a later replay is filtered here.

Layout: pure functions (``verify_signature``, ``parse_notifications``), the ports the intake needs
(``IntakeStore``, ``ChangeQueue``, ``UnparseableStore``), ``NotificationIntake``, then the AWS
adapters (runtime table, SQS FIFO) and the webhook settings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from shared.adapters.sqs import SQS_BATCH, FifoMessage, FifoSender, QueueSendError
from shared.kernel import constants

SIGNATURE_HEADER: Final = "intuit-signature"
SOURCE: Final = "webhook"
EVENT_PREFIX: Final = "WEBHOOKEVENT#"  # runtime table: one item per event id seen
EVENT_SK: Final = "EVENT"
UNPARSEABLE_PREFIX: Final = "WEBHOOKBODY#"  # runtime table: signed bodies we could not read
UNPARSEABLE_SK: Final = "BODY"
EVENT_TTL: Final = timedelta(days=7)  # longer than any burst of Intuit retries we care about
EVENT_ENQUEUED: Final = "enqueued"  # the ledger item's ``state`` once SQS accepted the change
UNPARSEABLE_TTL: Final = timedelta(days=14)
MAX_KEPT_BODY: Final = 350_000  # DynamoDB items stop at 400 KB; Intuit caps payloads near 1 MB
BATCH_GET_KEYS: Final = 100  # BatchGetItem's cap (Intuit sends at most 100 events per delivery)
BATCH_WRITE_ITEMS: Final = 25  # BatchWriteItem's cap
MAX_KEY_BYTES: Final = 2048  # DynamoDB's limit on a partition key value
# Unprocessed keys or items (throttling) are asked again at most this often, after 25, 50, 100 ms:
# a bounded share of Intuit's 3 seconds.
BATCH_ATTEMPTS: Final = 4
BATCH_BACKOFF_SECONDS: Final = 0.025

OPERATIONS: Final = ("Create", "Update", "Delete", "Merge", "Void", "Emailed")
_OPERATION_BY_LOWER: Final = {op.lower(): op for op in OPERATIONS}
_OPERATION_BY_VERB: Final = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "merged": "Merge",
    "voided": "Void",
    "emailed": "Emailed",
}
# Entities Intuit sends webhooks for (the table of https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks),
# to restore QBO's spelling from CloudEvents' lowercase ``type``; an entity not listed keeps a
# capitalised spelling and the worker ignores it.
WEBHOOK_ENTITIES: Final = (
    "Account", "Bill", "BillPayment", "Budget", "Class", "CreditMemo", "Currency", "Customer",
    "Department", "Deposit", "Employee", "Estimate", "Invoice", "Item", "JournalCode",
    "JournalEntry", "Payment", "PaymentMethod", "Preferences", "Purchase", "PurchaseOrder",
    "RefundReceipt", "SalesReceipt", "TaxAgency", "Term", "TimeActivity", "Transfer", "Vendor",
    "VendorCredit",
)  # fmt: skip
_ENTITY_BY_LOWER: Final = {name.lower(): name for name in WEBHOOK_ENTITIES}
_CLOUDEVENT_TYPE: Final = re.compile(r"^qbo\.([a-z][a-z0-9]*)\.([a-z]+)\.v\d+$", re.IGNORECASE)
_SQS_DEDUP_ID: Final = re.compile(r"^[\x21-\x7e]{1,128}$")


# --- the model ----------------------------------------------------------------------------------


class UnparseableNotificationError(ValueError):
    """The body is not a webhook notification we can read (the message never quotes the body)."""


class NotificationQueueError(RuntimeError):
    """The changes queue refused some messages; the delivery must be retried by Intuit."""


class IntakeStoreError(RuntimeError):
    """The runtime table failed a read or write of the intake (the ClientError is the cause)."""


class IntakeStoreBusyError(IntakeStoreError):
    """The runtime table throttled us, or left keys or items unprocessed after every retry."""


@dataclass(frozen=True)
class ChangeNotice:
    """One change Intuit told us about: ids only, the worker fetches the entity."""

    realm_id: str
    entity: str  # QBO's spelling: "Customer", "CreditMemo"
    entity_id: str
    operation: str  # one of OPERATIONS
    occurred_at: datetime  # aware
    event_id: str  # CloudEvents ``id``; for legacy a stable hash (see ``legacy_event_id``)
    deleted_id: str | None = None  # Merge: the record merged away

    def message(self, tenant_id: str) -> dict[str, Any]:
        """The changes-queue message body (the change worker's contract: keep it exactly so)."""
        return {
            "tenant_id": tenant_id,
            "realm_id": self.realm_id,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "operation": self.operation,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(),
            "deleted_id": self.deleted_id,
            "event_id": self.event_id,
            "source": SOURCE,
        }


# --- pure functions -----------------------------------------------------------------------------


def expected_signature(raw: bytes, verifier_token: str) -> str:
    digest = hmac.new(verifier_token.encode("utf-8"), raw, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(raw: bytes, signature: str | None, verifier_token: str) -> bool:
    """``intuit-signature`` = base64(HMAC-SHA256(verifier token, raw body)), compared in constant time."""
    if not signature or not verifier_token:
        return False
    return hmac.compare_digest(
        expected_signature(raw, verifier_token).encode("ascii"), signature.strip().encode("utf-8")
    )


def parse_timestamp(value: object) -> datetime:
    """Intuit's instants: ``...Z``, ``-07:00``, ``-0700``, up to nanoseconds; an offset is required."""
    if not isinstance(value, str) or not value.strip():
        raise UnparseableNotificationError("timestamp missing")
    text = value.strip()
    text = text[:-1] + "+00:00" if text[-1:] in {"Z", "z"} else text
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # fromisoformat keeps microseconds at most
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UnparseableNotificationError("timestamp is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise UnparseableNotificationError("timestamp has no UTC offset")
    return parsed


def legacy_event_id(realm_id: str, entity: str, entity_id: str, operation: str, at: datetime) -> str:
    """Legacy payloads carry no event id: hash what identifies the change, stable across retries."""
    key = "|".join((realm_id, entity, entity_id, operation, at.astimezone(UTC).isoformat()))
    return "legacy-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def parse_notifications(raw: bytes, content_type: str | None = None) -> list[ChangeNotice]:
    """Every change in a legacy or CloudEvents body; any defect raises UnparseableNotificationError."""
    notices, problems = read_notifications(raw, content_type)
    if problems:
        raise UnparseableNotificationError(problems[0])
    return notices


def read_notifications(raw: bytes, content_type: str | None = None) -> tuple[list[ChangeNotice], list[str]]:
    """Lenient reading: the changes we could read, and what was wrong with the rest.

    A body whose shape is unknown raises UnparseableNotificationError; inside a known shape a bad
    element is reported as a problem so the good ones still flow.
    """
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError):  # also an integer past CPython's 4,300-digit limit
        raise UnparseableNotificationError("body is not JSON") from None
    except RecursionError:  # nesting deep enough to exhaust the parser's recursion
        raise UnparseableNotificationError("body nests too deeply") from None
    structured = (content_type or "").split(";")[0].strip().lower() == "application/cloudevents+json"
    if isinstance(document, dict) and "eventNotifications" in document:
        return _read_legacy(document["eventNotifications"])
    if isinstance(document, dict) and structured and _is_cloudevent(document):
        return _read_cloudevents([document])  # a single event in structured mode
    if isinstance(document, list) and document and all(_is_cloudevent(e) for e in document):
        return _read_cloudevents(document)
    if isinstance(document, list) and not document:
        return [], []  # an empty batch: nothing to do, nothing wrong
    raise UnparseableNotificationError("neither eventNotifications nor a CloudEvents array")


def _is_cloudevent(element: object) -> bool:
    return isinstance(element, dict) and "specversion" in element and "type" in element


def _text(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UnparseableNotificationError(f"{what} missing")
    text = str(value).strip()
    if not text:
        raise UnparseableNotificationError(f"{what} missing")
    return text


def _operation(value: object) -> str:
    operation = _OPERATION_BY_LOWER.get(_text(value, "operation").lower())
    if operation is None:
        raise UnparseableNotificationError("unknown operation")
    return operation


def _entity(value: str) -> str:
    return _ENTITY_BY_LOWER.get(value.lower(), value[:1].upper() + value[1:])


def _read_legacy(notifications: object) -> tuple[list[ChangeNotice], list[str]]:
    if not isinstance(notifications, list):
        raise UnparseableNotificationError("eventNotifications is not a list")
    notices: list[ChangeNotice] = []
    problems: list[str] = []
    for n, notification in enumerate(notifications):
        try:
            if not isinstance(notification, dict):
                raise UnparseableNotificationError("notification is not an object")
            realm_id = _text(notification.get("realmId"), "realmId")
            change = notification.get("dataChangeEvent")
            entities = change.get("entities") if isinstance(change, dict) else None
            if not isinstance(entities, list):
                raise UnparseableNotificationError("dataChangeEvent.entities missing")
        except UnparseableNotificationError as error:
            problems.append(f"eventNotifications[{n}]: {error}")
            continue
        for e, element in enumerate(entities):
            try:
                notices.append(_legacy_notice(realm_id, element))
            except UnparseableNotificationError as error:
                problems.append(f"eventNotifications[{n}].entities[{e}]: {error}")
    return notices, problems


def _legacy_notice(realm_id: str, element: object) -> ChangeNotice:
    if not isinstance(element, dict):
        raise UnparseableNotificationError("entity is not an object")
    entity = _entity(_text(element.get("name"), "name"))
    entity_id = _text(element.get("id"), "id")
    operation = _operation(element.get("operation"))
    at = parse_timestamp(element.get("lastUpdated"))
    deleted = element.get("deletedId")
    return ChangeNotice(
        realm_id=realm_id,
        entity=entity,
        entity_id=entity_id,
        operation=operation,
        occurred_at=at,
        event_id=legacy_event_id(realm_id, entity, entity_id, operation, at),
        deleted_id=None if deleted in (None, "") else _text(deleted, "deletedId"),
    )


def _read_cloudevents(elements: Sequence[object]) -> tuple[list[ChangeNotice], list[str]]:
    notices: list[ChangeNotice] = []
    problems: list[str] = []
    for i, element in enumerate(elements):
        try:
            notices.append(_cloudevent_notice(element))
        except UnparseableNotificationError as error:
            problems.append(f"[{i}]: {error}")
    return notices, problems


def _cloudevent_notice(element: object) -> ChangeNotice:
    if not isinstance(element, dict):
        raise UnparseableNotificationError("event is not an object")
    kind = _CLOUDEVENT_TYPE.match(_text(element.get("type"), "type"))
    operation = _OPERATION_BY_VERB.get(kind.group(2).lower()) if kind else None
    if kind is None or operation is None:
        raise UnparseableNotificationError("type is not qbo.<entity>.<verb>.v<n>")
    data = element.get("data")
    deleted = None
    if isinstance(data, dict):  # ``deletedid`` per Intuit's sample; tolerate the legacy spelling
        deleted = data.get("deletedid", data.get("deletedId"))
    return ChangeNotice(
        realm_id=_text(element.get("intuitaccountid"), "intuitaccountid"),
        entity=_entity(kind.group(1)),
        entity_id=_text(element.get("intuitentityid"), "intuitentityid"),
        operation=operation,
        occurred_at=parse_timestamp(element.get("time")),
        event_id=_text(element.get("id"), "id"),
        deleted_id=None if deleted in (None, "") else _text(deleted, "data.deletedid"),
    )


# --- ports --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryLookup:
    """What the runtime table knows about one delivery: who owns its realms, which of its event ids
    were already enqueued (by an earlier delivery)."""

    owners: Mapping[str, str]  # realm id -> tenant id; a realm nobody owns is absent
    seen: frozenset[str]  # event ids


class IntakeStore(Protocol):
    """The realm directory and the event ledger, read and written a delivery at a time."""

    def look_up(self, realm_ids: Collection[str], event_ids: Collection[str]) -> DeliveryLookup:
        """Raises ``IntakeStoreError`` when the answer is incomplete (nothing can be routed then)."""
        ...

    def record(self, event_ids: Sequence[str], now: datetime) -> None:
        """Remember event ids as enqueued; ``IntakeStoreError`` when some may not be recorded."""
        ...


class ChangeQueue(Protocol):
    def send(self, messages: Sequence[QueuedChange]) -> list[str]:
        """Enqueue; returns the event ids that were NOT accepted (``NotificationQueueError`` when
        the queue could not be asked at all)."""
        ...


class UnparseableStore(Protocol):
    def keep(self, raw: bytes, content_type: str | None, problems: Sequence[str], now: datetime) -> str:
        """Keep a signed body we could not (fully) read; returns a reference for the logs."""
        ...


@dataclass(frozen=True)
class QueuedChange:
    tenant_id: str
    notice: ChangeNotice

    @property
    def body(self) -> str:
        return json.dumps(self.notice.message(self.tenant_id), separators=(",", ":"))

    @property
    def deduplication_id(self) -> str:
        event_id = self.notice.event_id
        if _SQS_DEDUP_ID.match(event_id):
            return event_id
        return hashlib.sha256(event_id.encode("utf-8")).hexdigest()


# --- the intake ---------------------------------------------------------------------------------


@dataclass
class IntakeResult:
    """What one delivery did, in counts only (safe to log)."""

    signature_ok: bool
    received: int = 0  # changes read from the body
    enqueued: int = 0
    duplicates: int = 0  # event ids already taken in (Intuit retries, repeated deliveries)
    unknown_realm: int = 0  # realms no tenant owns: acknowledged, counted, dropped
    unparseable: int = 0  # problems found in the body (it was kept)
    unrecorded: int = 0  # enqueued, but the ledger may not know it: a replay is not filtered
    kept_as: str | None = None  # the reference of the kept body
    tenants: set[str] = field(default_factory=set)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header by name, case-insensitively (API Gateway lowercases, Intuit and proxies vary)."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


class NotificationIntake:
    """Verify → parse → look realms and event ids up at once → enqueue the new → record them."""

    def __init__(
        self,
        *,
        verifier_token: str,
        store: IntakeStore,
        queue: ChangeQueue,
        unparseable: UnparseableStore,
        now: Callable[[], datetime],
    ) -> None:
        self._token = verifier_token
        self._store = store
        self._queue = queue
        self._unparseable = unparseable
        self._now = now

    def receive(self, raw: bytes, headers: Mapping[str, str] | None) -> IntakeResult:
        if not verify_signature(raw, header(headers, SIGNATURE_HEADER), self._token):
            return IntakeResult(signature_ok=False)
        result = IntakeResult(signature_ok=True)
        content_type = header(headers, "content-type")
        now = self._now()
        try:
            notices, problems = read_notifications(raw, content_type)
        except UnparseableNotificationError as error:
            notices, problems = [], [str(error)]
        if problems:
            result.unparseable = len(problems)
            result.kept_as = self._unparseable.keep(raw, content_type, problems, now)
        result.received = len(notices)
        distinct = list({notice.event_id: notice for notice in notices}.values())
        result.duplicates = len(notices) - len(distinct)  # the same event twice in one body
        if not distinct:
            return result
        known = self._store.look_up(
            list(dict.fromkeys(notice.realm_id for notice in distinct)),
            [notice.event_id for notice in distinct],
        )
        fresh = self._route(distinct, known, result)
        if fresh:
            self._enqueue(fresh, now, result)
        return result

    @staticmethod
    def _route(
        notices: Sequence[ChangeNotice], known: DeliveryLookup, result: IntakeResult
    ) -> list[QueuedChange]:
        fresh: list[QueuedChange] = []
        for notice in notices:
            tenant = known.owners.get(notice.realm_id)
            if tenant is None:
                result.unknown_realm += 1
            elif notice.event_id in known.seen:
                result.duplicates += 1
            else:
                result.tenants.add(tenant)
                fresh.append(QueuedChange(tenant, notice))
        return fresh

    def _enqueue(self, fresh: Sequence[QueuedChange], now: datetime, result: IntakeResult) -> None:
        refused: list[str] = []
        for start in range(0, len(fresh), SQS_BATCH):
            refused += self._queue.send(fresh[start : start + SQS_BATCH])
        refused_ids = set(refused)
        # Only what SQS accepted is recorded: a refused change must look new to Intuit's retry.
        accepted = [c.notice.event_id for c in fresh if c.notice.event_id not in refused_ids]
        result.enqueued = len(accepted)
        if accepted:
            try:
                self._store.record(accepted, now)
            except IntakeStoreError:
                # Nothing is lost: the changes are queued.  A replay will not be filtered here; SQS
                # drops it within 5 minutes and the change worker finds it already covered after.
                result.unrecorded = len(accepted)
        if refused:
            raise NotificationQueueError(f"{len(refused)} of {len(fresh)} changes were not enqueued")


# --- AWS adapters -------------------------------------------------------------------------------


def _runtime_table(operation: str) -> AbstractContextManager[None]:
    from shared.adapters.dynamo import client_errors  # botocore: loaded by the adapters, not by parsing

    return client_errors(operation, busy=IntakeStoreBusyError, failure=IntakeStoreError)


def event_key(event_id: str) -> dict[str, str]:
    """The ledger item's key: ``WEBHOOKEVENT#<id>``, or the id's SHA-256 when it would not fit."""
    pk = EVENT_PREFIX + event_id
    if len(pk.encode("utf-8")) > MAX_KEY_BYTES:
        pk = EVENT_PREFIX + "sha256:" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()
    return {constants.PK: pk, constants.SK: EVENT_SK}


class RuntimeIntakeStore:
    """The intake's items in the runtime table, in batches.

    * realm owners: the ``RealmDirectory`` items (``REALM#<realm>`` / ``DIRECTORY``) that
      ``ConnectionStore.claim_realm`` writes with the claim;
    * the ledger: ``WEBHOOKEVENT#<id>`` / ``EVENT`` with ``state = enqueued`` and a 7-day TTL,
      written only after SQS accepted the change.  An item in another state (a claim left by the
      earlier, claim-based intake) does not count as seen.

    ``look_up`` is one consistent BatchGetItem per 100 keys (realms + event ids; one for any
    delivery with at most 100 of them together), ``record`` one BatchWriteItem per 25 ids; keys or
    items left unprocessed are asked again, ``BATCH_ATTEMPTS`` times in all.
    """

    def __init__(
        self,
        table: Any,
        *,
        attempts: int = BATCH_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = table.meta.client  # the resource's client: plain Python values in and out
        self._name: str = table.name
        self._attempts = attempts
        self._sleep = sleep

    def look_up(self, realm_ids: Collection[str], event_ids: Collection[str]) -> DeliveryLookup:
        from shared.connections.store import RealmDirectory

        wanted: dict[str, tuple[str, str]] = {}  # pk -> ("realm" | "event", id)
        keys: list[dict[str, str]] = []
        for realm_id in realm_ids:
            key = RealmDirectory.key(realm_id)
            # A realm id too long for a key was never claimed: nobody owns it.
            if len(key[constants.PK].encode("utf-8")) <= MAX_KEY_BYTES and key[constants.PK] not in wanted:
                wanted[key[constants.PK]] = ("realm", realm_id)
                keys.append(key)
        for event_id in event_ids:
            key = event_key(event_id)
            if key[constants.PK] not in wanted:
                wanted[key[constants.PK]] = ("event", event_id)
                keys.append(key)
        owners: dict[str, str] = {}
        seen: set[str] = set()
        for start in range(0, len(keys), BATCH_GET_KEYS):
            for item in self._get(keys[start : start + BATCH_GET_KEYS]):
                kind, identifier = wanted.get(str(item.get(constants.PK)), ("", ""))
                if kind == "realm" and item.get("tenant_id"):
                    owners[identifier] = str(item["tenant_id"])
                elif kind == "event" and item.get("state") == EVENT_ENQUEUED:
                    seen.add(identifier)
        return DeliveryLookup(owners=owners, seen=frozenset(seen))

    def record(self, event_ids: Sequence[str], now: datetime) -> None:
        at = int(now.timestamp())
        expires = int((now + EVENT_TTL).timestamp())
        keys = {key[constants.PK]: key for key in map(event_key, event_ids)}  # one put per key
        puts = [
            {
                "PutRequest": {
                    "Item": {
                        **key,
                        "state": EVENT_ENQUEUED,
                        "enqueued_at": at,
                        constants.TTL_ATTRIBUTE: expires,
                    }
                }
            }
            for key in keys.values()
        ]
        for start in range(0, len(puts), BATCH_WRITE_ITEMS):
            self._write(puts[start : start + BATCH_WRITE_ITEMS])

    def _get(self, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            self._name: {
                "Keys": keys,
                "ConsistentRead": True,  # a realm claimed a moment ago routes at once
                "ProjectionExpression": "#pk, #state, tenant_id",
                "ExpressionAttributeNames": {"#pk": constants.PK, "#state": "state"},
            }
        }
        items: list[dict[str, Any]] = []
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(BATCH_BACKOFF_SECONDS * 2 ** (attempt - 1))
            with _runtime_table("BatchGetItem"):
                answer = self._client.batch_get_item(RequestItems=request)
            items += answer.get("Responses", {}).get(self._name, [])
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return items
        left = len(request.get(self._name, {}).get("Keys", []))
        raise IntakeStoreBusyError(f"BatchGetItem: {left} keys still unprocessed")

    def _write(self, puts: list[dict[str, Any]]) -> None:
        request: dict[str, Any] = {self._name: puts}
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(BATCH_BACKOFF_SECONDS * 2 ** (attempt - 1))
            with _runtime_table("BatchWriteItem"):
                answer = self._client.batch_write_item(RequestItems=request)
            request = answer.get("UnprocessedItems") or {}
            if not request:
                return
        left = len(request.get(self._name, []))
        raise IntakeStoreBusyError(f"BatchWriteItem: {left} items still unprocessed")


class RuntimeUnparseableStore:
    """Signed bodies we could not read, in the (encrypted) runtime table for inspection, never logs.

    ``pk = WEBHOOKBODY#<sha256>`` (the same body kept once), the bytes up to ``MAX_KEPT_BODY``,
    with the problems found and a 14-day TTL.
    """

    def __init__(self, table: Any) -> None:
        self._table = table

    def keep(self, raw: bytes, content_type: str | None, problems: Sequence[str], now: datetime) -> str:
        digest = hashlib.sha256(raw).hexdigest()
        self._table.put_item(
            Item={
                constants.PK: UNPARSEABLE_PREFIX + digest,
                constants.SK: UNPARSEABLE_SK,
                "body": raw[:MAX_KEPT_BODY],
                "truncated": len(raw) > MAX_KEPT_BODY,
                "size": len(raw),
                "sha256": digest,
                "content_type": (content_type or "")[:200],
                "problems": [p[:300] for p in problems[:50]],
                "received_at": now.astimezone(UTC).isoformat(),
                constants.TTL_ATTRIBUTE: int((now + UNPARSEABLE_TTL).timestamp()),
            }
        )
        return digest


class SqsChangeQueue:
    """The changes SQS FIFO queue: group = tenant (per-tenant order), deduplication id = event id."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sender = FifoSender(client, queue_url)

    def send(self, messages: Sequence[QueuedChange]) -> list[str]:
        fifo = [FifoMessage(m.body, m.tenant_id, m.deduplication_id) for m in messages]
        try:
            refused = self._sender.send_batch(fifo)
        except QueueSendError as error:
            # Nothing of this delivery is recorded then: Intuit's retry sends again, and SQS
            # drops what it had already taken (same deduplication ids).
            raise NotificationQueueError(f"SendMessageBatch failed: {error.code}") from error
        return [messages[index].notice.event_id for index, _ in refused]
