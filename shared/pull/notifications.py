"""Intuit webhook intake: verify the signature, parse both payload formats, enqueue per tenant.

Facts: qbo-api-facts.md §8.  The receiver answers Intuit within 3 seconds, so it only verifies,
parses, de-duplicates and enqueues; the change worker does the metered reads.  Intuit retries a
whole batch on anything but a 200, so a signed body we cannot read is kept for inspection and
acknowledged rather than refused.  Intuit data (bodies, entity ids) never reaches a log line.

Layout: pure functions (``verify_signature``, ``parse_notifications``), the ports the intake needs
(``RealmDirectory``, ``ChangeQueue``, ``EventLedger``, ``UnparseableStore``), ``NotificationIntake``,
then the AWS adapters (runtime table, SQS FIFO) and the webhook settings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared import constants

SIGNATURE_HEADER: Final = "intuit-signature"
SOURCE: Final = "webhook"
EVENT_PREFIX: Final = "WEBHOOKEVENT#"  # runtime table: one item per event id seen
EVENT_SK: Final = "EVENT"
UNPARSEABLE_PREFIX: Final = "WEBHOOKBODY#"  # runtime table: signed bodies we could not read
UNPARSEABLE_SK: Final = "BODY"
EVENT_TTL: Final = timedelta(days=7)  # longer than any burst of Intuit retries we care about
UNPARSEABLE_TTL: Final = timedelta(days=14)
# A claim whose holder never confirmed the send (a crashed or timed-out Lambda) may be re-taken by
# Intuit's next retry; Lambda's 3-second budget makes 60 seconds generous.
STALE_CLAIM: Final = timedelta(seconds=60)
MAX_KEPT_BODY: Final = 350_000  # DynamoDB items stop at 400 KB; Intuit caps payloads near 1 MB
SQS_BATCH: Final = 10

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
# Entities Intuit sends webhooks for (facts §8.1), to restore QBO's spelling from CloudEvents'
# lowercase ``type``; an entity not listed keeps a capitalised spelling and the worker ignores it.
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
    except (UnicodeDecodeError, ValueError):
        raise UnparseableNotificationError("body is not JSON") from None
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


class RealmDirectory(Protocol):
    """Which tenant owns a realm (``shared.connection_store.ConnectionStore`` is one)."""

    def owner_of(self, realm_id: str) -> str | None: ...


class ChangeQueue(Protocol):
    def send(self, messages: Sequence[QueuedChange]) -> list[str]:
        """Enqueue; returns the event ids that were NOT accepted."""
        ...


class EventLedger(Protocol):
    """Which event ids were already taken in; a claim is atomic across concurrent deliveries."""

    def claim(self, event_id: str, now: datetime) -> bool: ...

    def confirm(self, event_ids: Sequence[str], now: datetime) -> None: ...

    def release(self, event_ids: Sequence[str]) -> None: ...


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
    """Verify → parse → route by realm → de-duplicate by event id → enqueue per tenant."""

    def __init__(
        self,
        *,
        verifier_token: str,
        realms: RealmDirectory,
        queue: ChangeQueue,
        ledger: EventLedger,
        unparseable: UnparseableStore,
        now: Callable[[], datetime],
        workers: int = 8,
    ) -> None:
        self._token = verifier_token
        self._realms = realms
        self._queue = queue
        self._ledger = ledger
        self._unparseable = unparseable
        self._now = now
        self._workers = workers

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
        routed = self._route(distinct, result)
        claimed = self._claim(routed, now, result)
        if claimed:
            self._enqueue(claimed, now)
            result.enqueued = len(claimed)
        return result

    def _route(self, notices: Sequence[ChangeNotice], result: IntakeResult) -> list[QueuedChange]:
        owners: dict[str, str | None] = {}
        routed: list[QueuedChange] = []
        for notice in notices:
            if notice.realm_id not in owners:
                owners[notice.realm_id] = self._realms.owner_of(notice.realm_id)
            tenant = owners[notice.realm_id]
            if tenant is None:
                result.unknown_realm += 1
            else:
                result.tenants.add(tenant)
                routed.append(QueuedChange(tenant, notice))
        return routed

    def _claim(
        self, routed: Sequence[QueuedChange], now: datetime, result: IntakeResult
    ) -> list[QueuedChange]:
        def claim(change: QueuedChange) -> bool:
            return self._ledger.claim(change.notice.event_id, now)

        if len(routed) <= 2 or self._workers <= 1:
            taken = [claim(change) for change in routed]
        else:  # one conditional write per event: in parallel, so 100 events stay well under 3 s
            with ThreadPoolExecutor(max_workers=min(self._workers, len(routed))) as pool:
                taken = list(pool.map(claim, routed))
        result.duplicates += taken.count(False)
        return [change for change, ok in zip(routed, taken, strict=True) if ok]

    def _enqueue(self, claimed: Sequence[QueuedChange], now: datetime) -> None:
        refused: list[str] = []
        for start in range(0, len(claimed), SQS_BATCH):
            refused += self._queue.send(claimed[start : start + SQS_BATCH])
        refused_ids = set(refused)
        accepted = [c.notice.event_id for c in claimed if c.notice.event_id not in refused_ids]
        if accepted:
            self._ledger.confirm(accepted, now)
        if refused:
            # Let Intuit's retry bring them again: the claims must not make them look seen.
            self._ledger.release(refused)
            raise NotificationQueueError(f"{len(refused)} of {len(claimed)} changes were not enqueued")


# --- AWS adapters -------------------------------------------------------------------------------


def _condition_failed(error: Exception) -> bool:
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code == "ConditionalCheckFailedException"


class RuntimeEventLedger:
    """Event ids in the runtime table: ``pk = WEBHOOKEVENT#<id>``, TTL ~7 days.

    ``claim`` is a conditional put (new id, or a claim gone stale because its holder died before
    confirming); ``confirm`` marks the send done, so the id stays taken until the TTL.
    """

    def __init__(self, table: Any) -> None:
        self._table = table

    @staticmethod
    def key(event_id: str) -> dict[str, str]:
        return {constants.PK: EVENT_PREFIX + event_id, constants.SK: EVENT_SK}

    def claim(self, event_id: str, now: datetime) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._table.put_item(
                Item={
                    **self.key(event_id),
                    "state": "claimed",
                    "claimed_at": int(now.timestamp()),
                    constants.TTL_ATTRIBUTE: int((now + EVENT_TTL).timestamp()),
                },
                ConditionExpression="attribute_not_exists(#pk) OR (#state = :claimed AND #at < :stale)",
                ExpressionAttributeNames={"#pk": constants.PK, "#state": "state", "#at": "claimed_at"},
                ExpressionAttributeValues={
                    ":claimed": "claimed",
                    ":stale": int((now - STALE_CLAIM).timestamp()),
                },
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def confirm(self, event_ids: Sequence[str], now: datetime) -> None:
        with self._table.batch_writer() as batch:
            for event_id in event_ids:
                batch.put_item(
                    Item={
                        **self.key(event_id),
                        "state": "enqueued",
                        "claimed_at": int(now.timestamp()),
                        constants.TTL_ATTRIBUTE: int((now + EVENT_TTL).timestamp()),
                    }
                )

    def release(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            self._table.delete_item(Key=self.key(event_id))


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
        self._client = client
        self._url = queue_url

    def send(self, messages: Sequence[QueuedChange]) -> list[str]:
        refused: list[str] = []
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start : start + SQS_BATCH]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": change.body,
                    "MessageGroupId": change.tenant_id,
                    "MessageDeduplicationId": change.deduplication_id,
                }
                for i, change in enumerate(chunk)
            ]
            answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            refused += [chunk[int(failed["Id"])].notice.event_id for failed in answer.get("Failed", [])]
        return refused


# --- settings -----------------------------------------------------------------------------------

CHANGES_QUEUE_URL_ENV: Final = constants.CHANGES_QUEUE_URL_ENV
VERIFIER_TOKEN_ENV: Final = "QBO_LINK_WEBHOOK_VERIFIER_TOKEN"  # noqa: S105 - a variable's name; local stack only


class WebhookSettings(BaseModel):
    """What the webhooks function needs, and nothing more (no OAuth client or state key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verifier_token: SecretStr
    changes_queue_url: str = Field(min_length=1)
    runtime_table: str = "qbo-link-runtime"


def webhook_settings_from_env(env: Mapping[str, str]) -> WebhookSettings:
    """The verifier token from the webhook secret (``verifier_token``) when its ARN is set, else
    (the local stack) from ``QBO_LINK_WEBHOOK_VERIFIER_TOKEN``; an empty token is an error."""
    from shared.settings import SettingsError

    arn = env.get(constants.WEBHOOK_SECRET_ARN_ENV) or env.get(constants.INTUIT_SECRET_ARN_ENV)
    if arn:
        from aws_lambda_powertools.utilities import parameters

        secret = parameters.get_secret(arn, max_age=300, transform="json")
        token = str(secret.get("verifier_token", "")) if isinstance(secret, dict) else ""
    else:
        token = env.get(VERIFIER_TOKEN_ENV, "")
    if not token:
        raise SettingsError("the webhook verifier token is not configured")
    try:
        return WebhookSettings(
            verifier_token=SecretStr(token),
            changes_queue_url=env.get(CHANGES_QUEUE_URL_ENV, ""),
            runtime_table=env.get(constants.RUNTIME_TABLE_ENV, "qbo-link-runtime"),
        )
    except ValueError as exc:
        raise SettingsError(f"invalid webhook configuration: {exc}") from exc


def build_intake(
    settings: WebhookSettings, dynamodb: Any, sqs: Any, now: Callable[[], datetime]
) -> NotificationIntake:
    """The intake over the runtime table (realm directory, ledger) and the changes queue: no access
    to the connections table, which holds the tokens."""
    from shared.connection_store import RealmDirectory

    runtime = dynamodb.Table(settings.runtime_table)
    return NotificationIntake(
        verifier_token=settings.verifier_token.get_secret_value(),
        realms=RealmDirectory(runtime),
        queue=SqsChangeQueue(sqs, settings.changes_queue_url),
        ledger=RuntimeEventLedger(runtime),
        unparseable=RuntimeUnparseableStore(runtime),
        now=now,
    )
