"""The version ledger: for each QBO entity of a tenant, the latest version QBO Link knows of it.

Two writers, one reader.  The push worker records every entity it writes (create, update, void,
payment, credit application, journal entry) with what QBO answered — Id, SyncToken,
``MetaData.LastUpdatedTime`` and a fingerprint of the content — in the same transaction that records
the posting, and marks the documents a payment or a credit application moved the balance of
(``touched_at``).  The change worker records every change it applied.  So before anything is read:

* a webhook notice whose change is not later than our own latest write of that entity (or than the
  payment of ours that moved its balance) is our echo: dropped with no metered read, no event;
* a CDC row whose SyncToken is not greater than the known one was already written or applied:
  dropped (our echo, a replay, an overlap, a stale row) — SyncTokens compare as numbers, never as
  text;
* a CDC row of a document whose SyncToken grew but whose content (the fingerprint) did not is a
  balance moved by a payment or a credit: not drift.

Layout (``tables.LINKS``, durable, no TTL): ``pk = TENANT#<tenant>#VERSION``,
``sk = <Entity>#<QBO id>``, with ``sync_token`` (number), ``own`` (this version is ours),
``updated_at`` (epoch seconds of that version's LastUpdatedTime), ``written_at`` (of our latest
write), ``touched_at`` (of our latest write that moved its balance), ``fingerprint``, ``kind`` and
``app_id`` (what it is to the app), ``deleted``.  The partition cannot collide with the link store's
(``TENANT#<t>#KIND#<kind>``), the QBO cache's (``TENANT#<t>#QBO#<kind>``) or the cursors'
(``TENANT#<t>#CURSOR``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypedDict, Unpack

from shared.adapters.dynamo import ConditionFailedError, failed_conditions
from shared.kernel import constants
from shared.kernel.clock import Clock, SystemClock

VERSION_MARK: Final = "#VERSION"
_BATCH_GET: Final = 100  # DynamoDB's BatchGetItem limit
_BATCH_WRITE: Final = 25  # DynamoDB's BatchWriteItem limit
_KEY_PART = re.compile(r"^[^#\x00-\x1f]{1,128}$")
_ENTITY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
# Documents whose content we fingerprint: a later SyncToken with the same content is a balance move.
FINGERPRINTED: Final = frozenset({"Invoice", "CreditMemo", "Payment"})
_SKIPPED_LINES: Final = frozenset({"SubTotalLineDetail"})

Key = tuple[str, str]  # (QBO entity, QBO id)


def versions_pk(tenant_id: str) -> str:
    if not _KEY_PART.match(tenant_id):
        raise ValueError("tenant id must be 1-128 characters without '#'")
    return f"{constants.tenant_pk(tenant_id)}{VERSION_MARK}"


def _sk(entity: str, qbo_id: str) -> str:
    if not _ENTITY.match(entity) or not _KEY_PART.match(qbo_id):
        raise ValueError(f"not a QBO entity and id: {entity!r} {qbo_id!r}")
    return f"{entity}#{qbo_id}"


# --- reading QBO's JSON ---------------------------------------------------------------------------


def sync_token(row: Mapping[str, Any]) -> int | None:
    """QBO's SyncToken as a number (a string of digits in QBO's JSON); None when absent (a
    deleted object's tombstone carries none) or not a number."""
    value = row.get("SyncToken")
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def qbo_instant(value: Any) -> datetime | None:
    """An instant as QBO writes it (``2026-12-07T10:25:51-08:00``, ``...Z``, fractions up to
    nanoseconds), aware; None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1:] in {"Z", "z"}:
        text = text[:-1] + "+00:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def last_updated(row: Mapping[str, Any]) -> datetime | None:
    meta = row.get("MetaData")
    return qbo_instant(meta.get("LastUpdatedTime")) if isinstance(meta, Mapping) else None


def is_deleted(row: Mapping[str, Any]) -> bool:
    return str(row.get("status", "")).lower() == "deleted"


def _amount(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return format(number.quantize(Decimal("0.01")), "f") if number.is_finite() else str(value)


def _ref(value: Any) -> str | None:
    return str(value["value"]) if isinstance(value, Mapping) and value.get("value") is not None else None


def fingerprint(entity: str, row: Mapping[str, Any]) -> str | None:
    """What a document says, leaving out what payments and credits change (Balance, LinkedTxn,
    RemainingCredit, SyncToken, MetaData): header, lines and tax.  None for other entities."""
    if entity not in FINGERPRINTED or is_deleted(row):
        return None
    lines: list[list[Any]] = []
    for line in row.get("Line") or []:
        if not isinstance(line, Mapping) or line.get("DetailType") in _SKIPPED_LINES:
            continue
        detail_type = str(line.get("DetailType") or "")
        detail = line.get(detail_type) if detail_type else None
        detail = detail if isinstance(detail, Mapping) else {}
        linked = [
            (str(t.get("TxnType")), str(t.get("TxnId")))
            for t in line.get("LinkedTxn") or []
            if isinstance(t, Mapping)
        ]
        lines.append(
            [
                detail_type,
                _amount(line.get("Amount", 0)),
                _ref(detail.get("ItemRef")),
                _ref(detail.get("TaxCodeRef")),
                _amount(detail["Qty"]) if detail.get("Qty") is not None else None,
                str(detail.get("UnitPrice")) if detail.get("UnitPrice") is not None else None,
                sorted(linked) if entity == "Payment" else None,
            ]
        )
    tax = row.get("TxnTaxDetail")
    content = {
        "customer": _ref(row.get("CustomerRef")),
        "number": row.get("DocNumber"),
        "date": row.get("TxnDate"),
        "total": _amount(row.get("TotalAmt", 0)),
        "tax": _amount(tax.get("TotalTax", 0)) if isinstance(tax, Mapping) else None,
        "lines": lines,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def touched_documents(payment: Mapping[str, Any]) -> list[Key]:
    """The invoices and credit memos a payment applies to (their balances move with it)."""
    found: list[Key] = []
    for line in payment.get("Line") or []:
        if not isinstance(line, Mapping):
            continue
        for linked in line.get("LinkedTxn") or []:
            if not isinstance(linked, Mapping) or not linked.get("TxnId"):
                continue
            kind = str(linked.get("TxnType"))
            if kind in ("Invoice", "CreditMemo") and (kind, str(linked["TxnId"])) not in found:
                found.append((kind, str(linked["TxnId"])))
    return found


def write_operation(answer: Mapping[str, Any]) -> str:
    """The operation QBO's webhook reports for the write that produced ``answer``: a new entity
    (SyncToken 0) was created, a zeroed one with "Voided" in its note was voided, else updated."""
    if is_deleted(answer):
        return "Delete"
    if sync_token(answer) == 0:
        return "Create"
    note = str(answer.get("PrivateNote") or "").lower()
    try:
        zero = Decimal(str(answer.get("TotalAmt", "1"))) == 0
    except InvalidOperation:
        zero = False
    return "Void" if "voided" in note and zero else "Update"


def auto_credited(invoice: Mapping[str, Any]) -> bool:
    """A new invoice (SyncToken 0) with less open than its total: QBO applied something to it as it
    was created — an open credit of the customer, when the company applies credits automatically."""
    try:
        total, balance = Decimal(str(invoice.get("TotalAmt"))), Decimal(str(invoice.get("Balance")))
    except InvalidOperation:
        return False
    return sync_token(invoice) == 0 and balance < total


# Seconds after our payment or credit within which QBO's stamp on a document it settles is still ours.
TOUCH_TOLERANCE: Final = 1.0


def _epoch(at: datetime | None) -> Decimal | None:
    return Decimal(str(round(at.timestamp(), 6))) if at is not None else None


# --- the record -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownVersion:
    """The latest version of one QBO entity that QBO Link wrote or applied."""

    entity: str
    qbo_id: str
    sync_token: int | None
    own: bool = False
    updated_at: float | None = None
    written_at: float | None = None
    written_op: str | None = None  # the webhook operation our latest write shows as (Create, Update, Void)
    touched_at: float | None = None
    fingerprint: str | None = None
    kind: str | None = None
    app_id: str | None = None
    deleted: bool = False
    # An invoice QBO applied a credit to by itself (AutoApplyCredit): its open balance is less than
    # the app believes, so the push reads it before paying it.
    credited: bool = False

    @property
    def key(self) -> Key:
        return (self.entity, self.qbo_id)

    def covers(self, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` (a CDC row of this entity) is this version or an older one."""
        if is_deleted(row):
            return self.deleted
        token = sync_token(row)
        return token is not None and self.sync_token is not None and token <= self.sync_token

    def same_content(self, row: Mapping[str, Any]) -> bool:
        """A later version whose content is what we know: only its balance moved."""
        return self.fingerprint is not None and fingerprint(self.entity, row) == self.fingerprint

    def explains(self, at: datetime, operation: str, tolerance: float) -> str | None:
        """What we already know of a change made at ``at`` (a webhook notice's time and operation).

        ``"own"``: it is our latest write of this entity — the same second and the same operation —
        or older than it (superseded by it); or an ``Update`` within ``tolerance`` seconds of our
        latest payment or credit that moved its balance (QBO stamps the document it settles at the
        payment's time, give or take).  ``"applied"``: a version from a later second was applied.
        None: news.  QBO's LastUpdatedTime has whole seconds while a notice's time may carry a
        fraction, so the notice counts from its second; a bookkeeper's edit in the very second of
        our write is told apart by its operation (an Update after our Create), and a second write of
        ours in that second is read once (its row is then our echo)."""
        second = math.floor(at.timestamp())
        if self.written_at is not None:
            written = math.floor(self.written_at)
            if second < written or (second == written and operation == self.written_op):
                return "own"
        if self.touched_at is not None and operation == "Update" and second <= self.touched_at + tolerance:
            return "own"
        if self.updated_at is not None:
            applied = math.floor(self.updated_at)
            if second < applied:
                return "applied"
            if second == applied and not self.own and operation in self._applied_operations():
                return "applied"
        return None

    def _applied_operations(self) -> frozenset[str]:
        """The operations a notice stamped in the second of the applied version may be for, taken
        to be that version (as for our own writes, a second change of the same kind in the same
        second is left to the sweep): its Create, and for a later version its Update (or Void,
        Emailed); for a deleted one, anything."""
        if self.deleted:
            return frozenset({"Create", "Update", "Void", "Emailed", "Delete", "Merge"})
        if self.sync_token == 0:
            return frozenset({"Create"})
        return frozenset({"Create", "Update", "Void", "Emailed"})

    def moved_by_us(self, row: Mapping[str, Any], tolerance: float = TOUCH_TOLERANCE) -> bool:
        """Whether ``row``'s balance move is our payment's or credit's doing: QBO stamped it within
        ``tolerance`` seconds of the time our write touched this document."""
        stamp = _epoch(last_updated(row))
        if self.touched_at is None or stamp is None:
            return False
        return math.floor(stamp) <= self.touched_at + tolerance

    def applied(
        self, row: Mapping[str, Any], *, kind: str | None = None, app_id: str | None = None
    ) -> KnownVersion:
        """This record after applying ``row`` (a change not made by us)."""
        return replace(
            self,
            sync_token=sync_token(row) if not is_deleted(row) else self.sync_token,
            own=False,
            updated_at=_float(_epoch(last_updated(row))) or self.updated_at,
            fingerprint=fingerprint(self.entity, row) or self.fingerprint,
            kind=kind or self.kind,
            app_id=app_id or self.app_id,
            deleted=is_deleted(row),
        )

    @classmethod
    def of_row(
        cls, entity: str, row: Mapping[str, Any], *, kind: str | None = None, app_id: str | None = None
    ) -> KnownVersion:
        """A first record of an entity from a row we applied."""
        return cls(entity=entity, qbo_id=str(row.get("Id")), sync_token=None).applied(
            row, kind=kind, app_id=app_id
        )


def _float(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


# --- the store ------------------------------------------------------------------------------------


class WriteOwner(TypedDict, total=False):
    """The app document one of our writes is for (recorded when given)."""

    kind: str | None
    app_id: str | None


class VersionLedger:
    """Data access for the ledger (a boto3 ``Table`` resource of ``tables.LINKS``)."""

    def __init__(self, table: Any, clock: Clock | None = None) -> None:
        self._table = table
        self._clock = clock or SystemClock()

    @property
    def table_name(self) -> str:
        return str(self._table.name)

    def key(self, tenant_id: str, entity: str, qbo_id: str) -> dict[str, str]:
        return {constants.PK: versions_pk(tenant_id), constants.SK: _sk(entity, qbo_id)}

    # --- the push side: our own writes ---

    def written_action(
        self, tenant_id: str, entity: str, answer: Mapping[str, Any], **owner: Unpack[WriteOwner]
    ) -> dict[str, Any]:
        """A TransactWriteItems Update recording QBO's answer to one of our writes, for the posting
        transaction.  No condition: it must never be what refuses a posting (the tenant's writes are
        serialised by its queue's message group)."""
        at = _epoch(last_updated(answer)) or _epoch(self._clock.now())
        values: dict[str, Any] = {
            ":own": True,
            ":u": at,
            ":w": at,
            ":e": entity,
            ":q": str(answer.get("Id")),
            ":r": _stamp(self._clock.now()),
            ":d": is_deleted(answer),
            ":op": write_operation(answer),
        }
        sets = ["#own = :own", "#u = :u", "#w = :w", "#e = :e", "#q = :q", "#r = :r", "#d = :d", "#op = :op"]
        names = {
            "#own": "own",
            "#u": "updated_at",
            "#w": "written_at",
            "#e": "entity",
            "#q": "qbo_id",
            "#r": "recorded_at",
            "#d": "deleted",
            "#op": "written_op",
        }
        token = sync_token(answer)
        if token is not None:
            sets.append("#t = :t")
            names["#t"], values[":t"] = "sync_token", token
        mark = fingerprint(entity, answer)
        credited = True if entity == "Invoice" and auto_credited(answer) else None
        for attribute, value in (
            ("fingerprint", mark),
            ("kind", owner.get("kind")),
            ("app_id", owner.get("app_id")),
            ("credited", credited),
        ):
            if value is not None:
                sets.append(f"#{attribute} = :{attribute}")
                names[f"#{attribute}"], values[f":{attribute}"] = attribute, value
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self.key(tenant_id, entity, str(answer.get("Id"))),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def touched_action(self, tenant_id: str, key: Key, at: datetime | None) -> dict[str, Any]:
        """A TransactWriteItems Update marking ``key``'s balance moved by our write at ``at``."""
        entity, qbo_id = key
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self.key(tenant_id, entity, qbo_id),
                "UpdateExpression": "SET #t = :t, #e = if_not_exists(#e, :e), #q = if_not_exists(#q, :q)",
                "ExpressionAttributeNames": {"#t": "touched_at", "#e": "entity", "#q": "qbo_id"},
                "ExpressionAttributeValues": {
                    ":t": _epoch(at) or _epoch(self._clock.now()),
                    ":e": entity,
                    ":q": qbo_id,
                },
            }
        }

    def write_actions(
        self, tenant_id: str, entity: str, answer: Mapping[str, Any], **owner: Unpack[WriteOwner]
    ) -> list[dict[str, Any]]:
        """Everything one write of ours records: the entity, and for a payment the documents whose
        balance it moved."""
        actions = [self.written_action(tenant_id, entity, answer, **owner)]
        if entity == "Payment":
            at = last_updated(answer)
            actions += [self.touched_action(tenant_id, key, at) for key in touched_documents(answer)]
        return actions

    def record_written(
        self, tenant_id: str, entity: str, answer: Mapping[str, Any], **owner: Unpack[WriteOwner]
    ) -> None:
        """``write_actions`` outside a posting transaction (one write each)."""
        client = self._table.meta.client
        for action in self.write_actions(tenant_id, entity, answer, **owner):
            client.update_item(**action["Update"])

    # --- the pull side ---

    def get_many(self, tenant_id: str, keys: Iterable[Key]) -> dict[Key, KnownVersion]:
        """The records of ``keys`` (BatchGetItem, 100 keys a call, consistent); unknown ones are absent."""
        wanted = [self.key(tenant_id, entity, qbo_id) for entity, qbo_id in dict.fromkeys(keys)]
        client = self._table.meta.client
        found: dict[Key, KnownVersion] = {}
        for start in range(0, len(wanted), _BATCH_GET):
            pending: dict[str, Any] = {
                self.table_name: {"Keys": wanted[start : start + _BATCH_GET], "ConsistentRead": True}
            }
            while pending:
                answer = client.batch_get_item(RequestItems=pending)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    known = _known(item)
                    found[known.key] = known
                pending = answer.get("UnprocessedKeys") or {}
        return found

    def record_applied(self, tenant_id: str, versions: Sequence[KnownVersion]) -> int:
        """Store what the change worker applied: one conditional UpdateItem per record, setting
        only what the pull knows (never ``touched_at``, which the push's postings keep writing
        meanwhile) and only over an older SyncToken — a newer write of ours recorded in between
        is kept.  Returns how many were written."""
        written = 0
        now = _stamp(self._clock.now())
        for version in {version.key: version for version in versions}.values():
            values: dict[str, Any] = {
                "entity": version.entity,
                "qbo_id": version.qbo_id,
                "own": version.own,
                "deleted": version.deleted,
                "credited": version.credited,
                "recorded_at": now,
                "sync_token": version.sync_token,
                "updated_at": _decimal(version.updated_at),
                "written_at": _decimal(version.written_at),
                "written_op": version.written_op,
                "fingerprint": version.fingerprint,
                "kind": version.kind,
                "app_id": version.app_id,
            }
            present = {name: value for name, value in values.items() if value is not None}
            names = {f"#a{i}": name for i, name in enumerate(present)}
            arguments: dict[str, Any] = {
                "Key": self.key(tenant_id, version.entity, version.qbo_id),
                "UpdateExpression": "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(present))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {f":a{i}": value for i, value in enumerate(present.values())},
            }
            if version.sync_token is not None:
                names["#t"] = "sync_token"
                arguments["ConditionExpression"] = "attribute_not_exists(#t) OR #t <= :t"
                arguments["ExpressionAttributeValues"][":t"] = version.sync_token
            try:
                with failed_conditions():
                    self._table.update_item(**arguments)
            except ConditionFailedError:
                continue  # a newer version of ours was recorded meanwhile: it stands
            written += 1
        return written


def _decimal(value: float | None) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _known(item: Mapping[str, Any]) -> KnownVersion:
    def number(name: str) -> float | None:
        value = item.get(name)
        return float(value) if value is not None else None

    token = item.get("sync_token")
    return KnownVersion(
        entity=str(item["entity"]),
        qbo_id=str(item["qbo_id"]),
        sync_token=int(token) if token is not None else None,
        own=bool(item.get("own", False)),
        updated_at=number("updated_at"),
        written_at=number("written_at"),
        written_op=item.get("written_op"),
        touched_at=number("touched_at"),
        fingerprint=item.get("fingerprint"),
        kind=item.get("kind"),
        app_id=item.get("app_id"),
        deleted=bool(item.get("deleted", False)),
        credited=bool(item.get("credited", False)),
    )
