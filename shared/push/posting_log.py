"""The posting log: every document the app gave us, its current version's state, every attempt to
post it, QBO's answer, and counts by state.

Layout (``tables.POSTINGS``; docs/push.md, "The posting log"), one partition per tenant,
``pk = TENANT#<tenant>``:

- head, ``sk = DOC#<kind>#<app id>``: the latest version of one document (``version``,
  ``document`` as compact JSON, ``state``, ``reasons``, ``txn_date``, ``qbo_id``, ``sync_token``,
  ``request_id``, ``attempts``, ``last_error``, ``needs_lookup``, ``posted_at``, ``created_at``,
  ``updated_at``) and the keys of three sparse GSIs:
  ``by-state``    ``gsi1pk = TENANT#<t>#STATE#<state>``, ``gsi1sk = <txn date or ->#<kind>#<id>``;
  ``by-txn-date`` ``gsi2pk = TENANT#<t>``, ``gsi2sk = <txn date>#<kind>#<id>`` (dated documents);
  ``by-posted``   ``gsi3pk = TENANT#<t>``, ``gsi3sk = <posted at>#<kind>#<id>`` (once posted);
- attempt, ``sk = DOC#<kind>#<app id>#A#<version:08d>#<n:04d>``: one QBO call and its outcome;
- summary, ``sk = SUMMARY``: one counter per ``<kind>#<state>``, changed in the same transaction as
  the head whose state changes, so ``summary`` is one read and never drifts; and ``recheck_pending``,
  the time a recheck of the tenant's waiting documents was put on the push queue and has not started
  yet (``mark_recheck``, ``clear_recheck``: docs/push.md, "Recheck").

Invariants are conditions: a version is accepted only if it is newer than the stored one; a
transition only applies to the version and state it was decided on, so a late worker can never
clobber a newer version.  A late worker's news is not lost either: a stale "posted" hands its QBO id
to the newer version (which becomes an update, not a second document), a stale "uncertain" marks the
newer version ``needs_lookup`` (look the document up in QBO before creating it).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.dynamo import (
    Attr,
    ConditionFailedError,
    InvalidPageTokenError,
    Key,
    client_errors,
    decode_page_token,
    encode_page_token,
)
from shared.kernel import constants
from shared.kernel.clock import Clock

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

__all__ = [
    "TRANSITIONS",
    "AcceptOutcome",
    "Attempt",
    "AttemptOutcome",
    "CompanionRefusedError",
    "ConcurrentChangeError",
    "DocumentNotFoundError",
    "DocumentTooLargeError",
    "InvalidPageTokenError",
    "InvalidPostingRequestError",
    "InvalidTransitionError",
    "Judgement",
    "Posting",
    "PostingEntry",
    "PostingFault",
    "PostingLog",
    "PostingLogBusyError",
    "PostingLogError",
    "PostingLogStoreError",
    "PostingPage",
    "PostingState",
    "PostingSummary",
    "Reason",
    "StaleVersionError",
]


class PostingState(StrEnum):
    RECEIVED = "received"  # accepted from the app, not yet checked
    NEEDS_ATTENTION = "needs_attention"  # not ready (reasons say why); goes by itself once fixed
    QUEUED = "queued"  # ready, waiting for the push worker
    IN_FLIGHT = "in_flight"  # a worker is calling QBO
    UNCERTAIN = "uncertain"  # the call may have reached QBO: look it up before re-creating
    POSTED = "posted"  # in QBO (qbo_id, sync_token)
    FAILED = "failed"  # QBO refused it (last_error) or it was poison; retry puts it back in the queue
    SKIPPED = "skipped"  # not pushed on purpose (before go-live, type not synced, push switched off)
    VOIDED = "voided"  # voided in QBO (void propagation)


_S = PostingState
TRANSITIONS: Final[Mapping[PostingState, frozenset[PostingState]]] = MappingProxyType(
    {
        _S.RECEIVED: frozenset({_S.NEEDS_ATTENTION, _S.QUEUED, _S.SKIPPED, _S.FAILED, _S.VOIDED}),
        _S.NEEDS_ATTENTION: frozenset({_S.NEEDS_ATTENTION, _S.QUEUED, _S.SKIPPED, _S.FAILED, _S.VOIDED}),
        _S.QUEUED: frozenset({_S.IN_FLIGHT, _S.NEEDS_ATTENTION, _S.SKIPPED, _S.FAILED, _S.VOIDED}),
        _S.IN_FLIGHT: frozenset(
            {_S.POSTED, _S.FAILED, _S.UNCERTAIN, _S.QUEUED, _S.NEEDS_ATTENTION, _S.SKIPPED, _S.VOIDED}
        ),
        _S.UNCERTAIN: frozenset({_S.IN_FLIGHT, _S.POSTED, _S.FAILED, _S.QUEUED}),
        _S.POSTED: frozenset({_S.VOIDED}),
        _S.FAILED: frozenset({_S.QUEUED, _S.NEEDS_ATTENTION, _S.SKIPPED, _S.VOIDED}),
        _S.SKIPPED: frozenset({_S.QUEUED, _S.VOIDED}),
        _S.VOIDED: frozenset(),
    }
)
"""Allowed ``transition`` moves.  ``accept`` of a newer version resets any state to ``received``."""


class AttemptOutcome(StrEnum):
    SUCCEEDED = "succeeded"  # QBO created/updated/voided the document
    FOUND = "found"  # a lookup after an uncertain outcome found the document already in QBO
    REJECTED = "rejected"  # QBO refused it (validation, business rule): retrying the same will fail
    THROTTLED = "throttled"  # 429
    TRANSIENT = "transient"  # 5xx, network, expired token: retry
    UNCERTAIN = "uncertain"  # sent, no answer: it may or may not be in QBO


_DOCUMENT_MAX_BYTES: Final = 350_000  # DynamoDB items are at most 400 KB
_MAX_PAGE: Final = 1000
_BATCH_GET_KEYS: Final = 100  # DynamoDB's BatchGetItem limit
_TRANSACTION_ACTIONS: Final = 100  # TransactWriteItems' limit
_TRANSACTION_HEADS: Final = _TRANSACTION_ACTIONS - 1  # the heads, and the summary
_RETRIES: Final = 3  # re-reads after a concurrent change
_MAX_NOTES: Final = 50  # a head keeps its latest notes only (an item is at most 400 KB)
_CONFLICT_RETRIES: Final = 6  # transactions that lost a race on the summary counter
_STATES: Final = frozenset(state.value for state in PostingState)
_UNDATED: Final = "-"  # by-state sort key of documents without a transaction date; sorts first
_RECHECK_PENDING: Final = "recheck_pending"  # on the summary item: a recheck is queued, not started
_APP_ID = re.compile(constants.APP_ID_PATTERN)
_KEY_PART = re.compile(r"^[^#\x00-\x1f]{1,128}$")


# --- errors ------------------------------------------------------------------------------------


class PostingLogError(Exception):
    """Base of every error the posting log raises."""


class InvalidPostingRequestError(PostingLogError, ValueError):
    """A kind, id, version, state or range that cannot be stored or queried (nothing changed)."""


class DocumentTooLargeError(InvalidPostingRequestError):
    pass


class DocumentNotFoundError(PostingLogError, LookupError):
    def __init__(self, tenant_id: str, kind: str, app_id: str) -> None:
        super().__init__(f"no {kind} {app_id} in the posting log")
        self.tenant_id = tenant_id
        self.kind = kind
        self.app_id = app_id


class StaleVersionError(PostingLogError):
    """The stored version is not the one the caller worked on (a newer one arrived meanwhile).

    ``carried_over`` says whether the stale outcome was kept for the newer version (its QBO id, or
    the ``needs_lookup`` mark) so that version updates the same QBO document.
    """

    def __init__(self, expected_version: int, current_version: int, *, carried_over: bool = False) -> None:
        super().__init__(
            f"version {expected_version} is stale: the posting log holds version {current_version}"
        )
        self.expected_version = expected_version
        self.current_version = current_version
        self.carried_over = carried_over


class InvalidTransitionError(PostingLogError):
    def __init__(self, from_state: PostingState, to_state: PostingState) -> None:
        super().__init__(f"a document cannot go from {from_state} to {to_state}")
        self.from_state = from_state
        self.to_state = to_state


class PostingLogBusyError(PostingLogError):
    """Concurrent writes kept winning (or DynamoDB throttled): safe to retry."""


class CompanionRefusedError(PostingLogError):
    """A write that had to happen together with a transition (``along``) was refused by its own
    condition, so nothing was written; ``failed`` maps its position in ``along`` to the item it saw."""

    def __init__(self, failed: Mapping[int, dict[str, Any] | None]) -> None:
        super().__init__("a companion write's condition failed")
        self.failed = dict(failed)


class ConcurrentChangeError(PostingLogError):
    """``transition_many``: a document changed since the caller read it; nothing was written."""


class PostingLogStoreError(PostingLogError):
    """Any other DynamoDB failure, with the ClientError as cause."""


class _Conflict(Exception):
    """Internal: a transaction lost a race with another one (retried with backoff)."""


def _dynamodb(operation: str) -> AbstractContextManager[None]:
    return client_errors(
        operation, busy=PostingLogBusyError, failure=PostingLogStoreError, conflict=_Conflict
    )


# --- models -----------------------------------------------------------------------------------


class Reason(BaseModel):
    """Why a document waits or was skipped: a stable code and a human detail."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str = Field(min_length=1, max_length=100)
    detail: str | None = Field(default=None, max_length=2000)


class PostingFault(BaseModel):
    """QBO's own account of a failure (``Fault.Error``) and the ``intuit_tid`` to quote to Intuit."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str | None = None
    message: str | None = None
    detail: str | None = None
    element: str | None = None
    intuit_tid: str | None = None


class PostingEntry(BaseModel):
    """The head of one document: its latest version and what became of it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str
    kind: str
    app_id: str
    version: int
    document: dict[str, Any]
    state: PostingState
    reasons: tuple[Reason, ...] = ()
    notes: tuple[Reason, ...] = ()  # what happened to it in QBO beyond our writes (kept across moves)
    txn_date: date | None = None
    qbo_id: str | None = None
    sync_token: str | None = None
    request_id: str | None = None
    attempts: int = 0
    last_error: PostingFault | None = None
    needs_lookup: bool = False
    posted_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class Attempt(BaseModel):
    """One call to QBO for one version of a document."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str
    kind: str
    app_id: str
    version: int
    number: int
    outcome: AttemptOutcome
    http_status: int | None = None
    fault: PostingFault | None = None
    intuit_tid: str | None = None
    request_id: str | None = None
    started_at: datetime
    finished_at: datetime


class AcceptOutcome(BaseModel):
    """What ``accept`` did: ``accepted`` (in ``state``) or ``ignored`` (not newer).

    ``version`` is the version stored now; ``qbo_id`` is set when the document is already in QBO,
    so the accepted version will update it in place.
    """

    model_config = ConfigDict(frozen=True)

    status: Literal["accepted", "ignored"]
    version: int
    previous_version: int | None = None
    previous_state: PostingState | None = None
    qbo_id: str | None = None
    state: PostingState | None = None  # where the accepted version landed (None when ignored)
    reasons: tuple[Reason, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


class PostingPage(NamedTuple):
    entries: list[PostingEntry]
    next_token: str | None


class PostingSummary(BaseModel):
    """How many documents are in each state, per kind (from the summary item: one read)."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    by_kind: dict[str, dict[PostingState, int]]
    recheck_pending: datetime | None = None  # when a recheck was queued that has not started yet

    @property
    def by_state(self) -> dict[PostingState, int]:
        totals = dict.fromkeys(PostingState, 0)
        for counts in self.by_kind.values():
            for state, count in counts.items():
                totals[state] += count
        return totals

    @property
    def total(self) -> int:
        return sum(self.by_state.values())


@dataclass(frozen=True)
class Posting:
    """A document QBO now has, as ``post_many`` records it: the entry in hand (``in_flight``), QBO's
    id and SyncToken, the successful attempt and the writes that go with it (its link)."""

    entry: PostingEntry
    qbo_id: str
    sync_token: str | None
    attempt: Attempt
    along: Sequence[Mapping[str, Any]] = ()
    notes: Sequence[Reason] = ()  # what the posting adds to the head's notes

    @property
    def actions(self) -> int:
        return 2 + len(self.along)  # the head, the attempt, the companions


Judgement = tuple[PostingState, Sequence[Reason]]
"""What a new version's readiness decides: the state it lands in, and why (``accept``'s ``judge``)."""


# --- expressions ------------------------------------------------------------------------------


class _Write:
    """One UpdateExpression with placeholders, usable as ``update_item`` arguments or as a
    transaction action, and replayable on the item read before (``apply``)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._sets: dict[str, Any] = {}
        self._removes: list[str] = []
        self._adds: dict[str, int] = {}
        self._conditions: list[str] = []

    def name(self, attribute: str) -> str:
        for placeholder, existing in self.names.items():
            if existing == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: Any) -> _Write:
        self._sets[attribute] = value
        return self

    def remove(self, *attributes: str) -> _Write:
        self._removes.extend(attributes)
        return self

    def add(self, attribute: str, amount: int) -> _Write:
        self._adds[attribute] = self._adds.get(attribute, 0) + amount
        return self

    def when(self, condition: str) -> _Write:
        self._conditions.append(f"({condition})")
        return self

    def arguments(self, key: Mapping[str, str]) -> dict[str, Any]:
        """``update_item`` keyword arguments (the same every time it is called)."""
        values = dict(self.values)
        parts = []
        if self._sets:
            clauses = []
            for index, (attribute, value) in enumerate(self._sets.items()):
                values[f":s{index}"] = value
                clauses.append(f"{self.name(attribute)} = :s{index}")
            parts.append("SET " + ", ".join(clauses))
        removes = [a for a in dict.fromkeys(self._removes) if a not in self._sets]
        if removes:
            parts.append("REMOVE " + ", ".join(self.name(a) for a in removes))
        if self._adds:
            clauses = []
            for index, (attribute, amount) in enumerate(self._adds.items()):
                values[f":a{index}"] = amount
                clauses.append(f"{self.name(attribute)} :a{index}")
            parts.append("ADD " + ", ".join(clauses))
        arguments: dict[str, Any] = {
            "Key": dict(key),
            "UpdateExpression": " ".join(parts),
            "ExpressionAttributeNames": dict(self.names),
        }
        if values:
            arguments["ExpressionAttributeValues"] = values
        if self._conditions:
            arguments["ConditionExpression"] = " AND ".join(self._conditions)
        return arguments

    def put_action(self, table_name: str, key: Mapping[str, str]) -> dict[str, Any]:
        """The write as a Put of a new item (what it sets, under its conditions): for an item that
        does not exist yet, the same outcome as the update, said whole."""
        put: dict[str, Any] = {"TableName": table_name, "Item": {**key, **self._sets}}
        if self._conditions:
            put["ConditionExpression"] = " AND ".join(self._conditions)
            put["ExpressionAttributeNames"] = dict(self.names)
            if self.values:
                put["ExpressionAttributeValues"] = dict(self.values)
        return {"Put": put}

    def action(self, table_name: str, key: Mapping[str, str]) -> dict[str, Any]:
        # Plain values: the client of a boto3 Table resource serialises them like the resource does.
        return {"Update": {"TableName": table_name, **self.arguments(key)}}

    def apply(self, item: Mapping[str, Any]) -> dict[str, Any]:
        after = {k: v for k, v in item.items() if k not in self._removes}
        after.update(self._sets)
        for attribute, amount in self._adds.items():
            after[attribute] = int(after.get(attribute, 0)) + amount
        return after


# --- values -----------------------------------------------------------------------------------


def _stamp(at: datetime) -> str:
    """UTC, fixed width, so stamps sort as strings (the by-posted index relies on it)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode_document(document: Mapping[str, Any]) -> str:
    try:
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as error:
        raise InvalidPostingRequestError(f"document is not JSON: {error}") from None
    if len(body.encode()) > _DOCUMENT_MAX_BYTES:
        raise DocumentTooLargeError(f"document is larger than {_DOCUMENT_MAX_BYTES} bytes")
    return body


def _decode_document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        decoded = json.loads(value, parse_float=Decimal)
        return decoded if isinstance(decoded, dict) else {}
    return dict(value) if isinstance(value, Mapping) else {}


def _reason_maps(reasons: Sequence[Reason]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.model_dump().items() if v is not None} for r in reasons]


def _fault_map(fault: PostingFault) -> dict[str, str]:
    return {k: v for k, v in fault.model_dump().items() if v is not None}


def _number(value: Any) -> int:
    return int(value) if isinstance(value, (int, Decimal)) else 0


def _check_tenant(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not _KEY_PART.match(tenant_id):
        raise InvalidPostingRequestError("tenant id must be 1-128 characters without '#'")
    return tenant_id


def _check_kind(kind: str) -> str:
    if kind not in constants.POSTING_KINDS:
        raise InvalidPostingRequestError(
            f"unknown kind {kind!r}; expected one of {', '.join(constants.POSTING_KINDS)}"
        )
    return kind


def _check_app_id(app_id: str) -> str:
    if not isinstance(app_id, str) or not _APP_ID.match(app_id):
        raise InvalidPostingRequestError(f"app id {app_id!r} must match {constants.APP_ID_PATTERN}")
    return app_id


def _check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidPostingRequestError("version must be an integer >= 1")
    return version


def _check_state(state: PostingState | str) -> PostingState:
    try:
        return PostingState(state)
    except ValueError:
        raise InvalidPostingRequestError(f"unknown state {state!r}") from None


def _check_date(value: date | None, name: str) -> date | None:
    if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
        raise InvalidPostingRequestError(f"{name} must be a date")
    return value


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_PAGE:
        raise InvalidPostingRequestError(f"limit must be between 1 and {_MAX_PAGE}")
    return limit


def _date_range(attribute: str, start: date | None, end: date | None) -> ConditionBase | None:
    """Sort-key range for keys that begin with an ISO date (inclusive on both ends)."""
    if start is None and end is None:
        return None
    if start is not None and end is not None and start > end:
        raise InvalidPostingRequestError("the range starts after it ends")
    low = start.isoformat() if start else "0"  # "0" sorts after the undated "-"
    high = f"{end.isoformat()}~" if end else "9~"  # '~' sorts after '#', 'T' and every digit
    return Key(attribute).between(low, high)


# --- the log ----------------------------------------------------------------------------------


class PostingLog:
    """Data access for the posting-log table (a boto3 ``Table`` resource of ``tables.POSTINGS``)."""

    def __init__(self, table: Any, clock: Clock) -> None:
        self._table = table
        self._clock = clock

    # --- keys --------------------------------------------------------------------------------

    @staticmethod
    def _key(tenant_id: str, kind: str, app_id: str) -> dict[str, str]:
        return {
            constants.PK: constants.tenant_pk(_check_tenant(tenant_id)),
            constants.SK: constants.posting_doc_sk(_check_kind(kind), _check_app_id(app_id)),
        }

    @staticmethod
    def _summary_key(tenant_id: str) -> dict[str, str]:
        return {constants.PK: constants.tenant_pk(tenant_id), constants.SK: constants.POSTING_SUMMARY_SK}

    # --- writes ------------------------------------------------------------------------------

    def accept(  # noqa: PLR0917 - the documented call shape of the push API
        self,
        tenant_id: str,
        kind: str,
        app_id: str,
        version: int,
        document: Mapping[str, Any],
        txn_date: date | None,
        *,
        judge: Callable[[], Judgement] | None = None,
    ) -> AcceptOutcome:
        """Store a version of a document if it is newer than the stored one.

        An older or equal version is ``ignored`` (nothing written, ``judge`` not called).  A newer
        version of a posted document keeps its ``qbo_id`` and ``sync_token``: it updates the QBO
        document in place.  ``txn_date`` is None only for documents without one (clients, sites).

        The version lands in ``received``, or, with ``judge``, directly in the state it decides
        (``queued``, ``needs_attention`` with reasons, ``skipped``, ...: one of
        ``TRANSITIONS[received]``), in the same write: one transaction per upsert instead of an
        accept and a transition.  ``judge`` is called once the version is known to be newer.
        """
        key = self._key(tenant_id, kind, app_id)
        _check_version(version)
        _check_date(txn_date, "txn_date")
        body = _encode_document(document)
        judged: Judgement | None = None
        for _ in range(_RETRIES):
            current = self._read(key)
            if current is not None and _number(current["version"]) >= version:
                return AcceptOutcome(
                    status="ignored",
                    version=_number(current["version"]),
                    previous_version=_number(current["version"]),
                    previous_state=PostingState(current["state"]),
                    qbo_id=current.get("qbo_id"),
                )
            if judged is None:
                judged = judge() if judge is not None else (PostingState.RECEIVED, ())
                if judged[0] is not PostingState.RECEIVED and judged[0] not in TRANSITIONS[_S.RECEIVED]:
                    raise InvalidTransitionError(PostingState.RECEIVED, judged[0])
            state, reasons = judged
            now = _stamp(self._clock.now())
            write = _Write()
            write.set("tenant_id", tenant_id).set("kind", kind).set("app_id", app_id)
            write.set("version", version).set("document", body).set("attempts", 0).set("updated_at", now)
            self._set_state(write, tenant_id, state)
            if reasons:
                write.set("reasons", _reason_maps(reasons))
            write.set(constants.POSTING_BY_STATE_SK, self._date_key(txn_date, kind, app_id))
            if txn_date is not None:
                write.set("txn_date", txn_date.isoformat())
                write.set(constants.POSTING_BY_TXN_DATE_PK, constants.tenant_pk(tenant_id))
                write.set(constants.POSTING_BY_TXN_DATE_SK, self._date_key(txn_date, kind, app_id))
            else:
                write.remove("txn_date", constants.POSTING_BY_TXN_DATE_PK, constants.POSTING_BY_TXN_DATE_SK)
            write.remove("last_error", "request_id")
            if not reasons:
                write.remove("reasons")
            previous: PostingState | None = None
            if current is None:
                write.set("created_at", now)
                write.when(f"attribute_not_exists({write.name(constants.PK)})")
            else:
                previous = PostingState(current["state"])
                # The state too: the summary moves one count out of the state read here.
                write.when(f"{write.name('version')} = {write.value(current['version'])}")
                write.when(f"{write.name('state')} = {write.value(previous.value)}")
                # The previous version may be in QBO without our knowing its id.
                if not current.get("qbo_id") and (
                    current.get("needs_lookup")
                    or previous in (PostingState.IN_FLIGHT, PostingState.UNCERTAIN)
                ):
                    write.set("needs_lookup", True)
                else:
                    write.remove("needs_lookup")
            try:
                self._commit(
                    key,
                    write,
                    tenant_id,
                    kind,
                    move=(previous, state),
                    operation="accept",
                    new=current is None,
                )
            except ConditionFailedError:
                continue  # another writer got there first: decide again on what it wrote
            return AcceptOutcome(
                status="accepted",
                version=version,
                previous_version=_number(current["version"]) if current else None,
                previous_state=previous,
                qbo_id=current.get("qbo_id") if current else None,
                state=state,
                reasons=tuple(reasons),
            )
        raise PostingLogBusyError(f"accept: {kind} {app_id} keeps changing, retry")

    def transition(
        self,
        tenant_id: str,
        kind: str,
        app_id: str,
        *,
        expected_version: int,
        to_state: PostingState | str,
        reasons: Sequence[Reason] | None = None,
        qbo_id: str | None = None,
        sync_token: str | None = None,
        request_id: str | None = None,
        error: PostingFault | None = None,
        seen: PostingEntry | None = None,
        attempt: Attempt | None = None,
        along: Sequence[Mapping[str, Any]] = (),
        notes: Sequence[Reason] = (),
    ) -> PostingEntry:
        """Move the document's ``expected_version`` to ``to_state``; returns the entry as stored.
        ``notes`` are added to the head's notes (what happened to it in QBO, e.g. an application
        QBO allowed for less than asked).

        Refused with ``StaleVersionError`` if another version is stored, ``InvalidTransitionError``
        if ``TRANSITIONS`` forbids the move.  ``reasons`` replace the stored ones (none given: cleared);
        ``qbo_id``, ``sync_token``, ``request_id`` and ``error`` (``last_error``) are set when given;
        ``posted`` stamps ``posted_at`` and clears ``last_error`` unless an error is given.

        ``seen`` is the entry as the caller last had it (from this log): the write is then decided on
        it and conditioned on it still being the stored one (version, state, attempts, QBO id), so no
        read is needed; if it changed meanwhile, the head is read and the move decided again.
        ``attempt`` (of ``expected_version``) is recorded in the same transaction, numbered after
        the head's attempts.  ``along`` are further TransactWriteItems actions (e.g. the link this
        posting makes) that must happen with the move or not at all: if one of their conditions
        fails, ``CompanionRefusedError`` names it and nothing is written.
        """
        key = self._key(tenant_id, kind, app_id)
        _check_version(expected_version)
        target = _check_state(to_state)
        if attempt is not None and attempt.version != expected_version:
            raise InvalidPostingRequestError("the attempt must be of the version that moves")
        current = _item_of(seen) if seen is not None and _same(seen, tenant_id, kind, app_id) else None
        from_seen = current is not None
        for _ in range(_RETRIES + from_seen):  # what was seen may be out of date: one more round
            if current is None:
                current = self._read(key)
                from_seen = False
            if current is None:
                raise DocumentNotFoundError(tenant_id, kind, app_id)
            stored = _number(current["version"])
            if stored != expected_version:
                if from_seen:  # what the caller saw is out of date: decide on the stored head
                    current = None
                    continue
                carried = stored > expected_version and self._carry_over(
                    key, expected_version, target, qbo_id, sync_token
                )
                raise StaleVersionError(expected_version, stored, carried_over=carried)
            source = PostingState(current["state"])
            if target not in TRANSITIONS[source]:
                if from_seen:
                    current = None
                    continue
                raise InvalidTransitionError(source, target)
            if target is PostingState.POSTED and not (qbo_id or current.get("qbo_id")):
                raise InvalidPostingRequestError("a posted document needs its QBO id")
            write, extra = self._move_write(
                key,
                current,
                target,
                reasons=reasons,
                qbo_id=qbo_id,
                sync_token=sync_token,
                request_id=request_id,
                error=error,
                attempt=attempt,
                from_seen=from_seen,
                notes=notes,
            )
            ours = 1 + (source is not target) + len(extra)  # head, summary, attempt: then ``along``
            extra.extend(along)
            try:
                self._commit(
                    key, write, tenant_id, kind, move=(source, target), operation="transition", extra=extra
                )
            except ConditionFailedError as failed:
                theirs = {i - ours: item for i, item in failed.failed.items() if i >= ours}
                if theirs and all(i >= ours for i in failed.failed):
                    raise CompanionRefusedError(theirs) from None
                current = None  # the head (or the attempt's number) changed: read and decide again
                continue
            return _entry(write.apply(current))
        raise PostingLogBusyError(f"transition: {kind} {app_id} keeps changing, retry")

    def _move_write(
        self,
        key: Mapping[str, str],
        current: Mapping[str, Any],
        target: PostingState,
        *,
        reasons: Sequence[Reason] | None,
        qbo_id: str | None,
        sync_token: str | None,
        request_id: str | None,
        error: PostingFault | None,
        attempt: Attempt | None,
        from_seen: bool,
        notes: Sequence[Reason] = (),
    ) -> tuple[_Write, list[Mapping[str, Any]]]:
        """The head's write for a move decided on ``current`` (and the attempt's Put, if any)."""
        tenant_id, kind, app_id = str(current["tenant_id"]), str(current["kind"]), str(current["app_id"])
        now = self._clock.now()
        write = _Write().set("updated_at", _stamp(now))
        self._set_state(write, tenant_id, target)
        if reasons:
            write.set("reasons", _reason_maps(reasons))
        else:
            write.remove("reasons")
        for attribute, given in (
            ("qbo_id", qbo_id),
            ("sync_token", sync_token),
            ("request_id", request_id or (attempt.request_id if attempt else None)),
        ):
            if given is not None:
                write.set(attribute, given)
        if qbo_id or current.get("qbo_id"):
            write.remove("needs_lookup")
        elif target is PostingState.UNCERTAIN:
            write.set("needs_lookup", True)
        if target is PostingState.POSTED:
            posted_at = _stamp(now)
            write.set("posted_at", posted_at).remove("last_error")
            write.set(constants.POSTING_BY_POSTED_PK, constants.tenant_pk(tenant_id))
            write.set(constants.POSTING_BY_POSTED_SK, f"{posted_at}#{kind}#{app_id}")
        fault = error or (attempt.fault if attempt is not None else None)
        if fault is not None:
            write.set("last_error", _fault_map(fault))
        if notes:
            write.set("notes", [*(current.get("notes") or ()), *_reason_maps(notes)][-_MAX_NOTES:])
        write.when(f"{write.name('version')} = {write.value(current['version'])}")
        write.when(f"{write.name('state')} = {write.value(current['state'])}")
        extra: list[Mapping[str, Any]] = []
        if attempt is not None or from_seen:
            attempts = _number(current.get("attempts"))
            write.when(f"{write.name('attempts')} = {write.value(attempts)}")
            if attempt is not None:
                write.set("attempts", attempts + 1)
                extra.append(self._attempt_put(key, _numbered(attempt, attempts + 1)))
        if from_seen:
            known = current.get("qbo_id")
            if known:
                write.when(f"{write.name('qbo_id')} = {write.value(known)}")
            else:
                write.when(f"attribute_not_exists({write.name('qbo_id')})")
        return write, extra

    def post_many(
        self, postings: Sequence[Posting], *, along: Sequence[Mapping[str, Any]] = ()
    ) -> list[PostingEntry]:
        """Several documents of one tenant that one QBO batch request created or updated, ``posted``
        in one transaction: each head (from the entry in hand) with its attempt and companion writes
        (its link), ``along`` (writes that belong to the postings together), and one summary update
        for all.  All of them or none: ``ConcurrentChangeError`` (nothing written) when any condition
        fails; the caller then posts them one by one, which sorts out what changed.  At most 100
        actions (``Posting.actions`` each, ``along``, plus the summary).
        """
        if not postings:
            return []
        tenants = {posting.entry.tenant_id for posting in postings}
        size = sum(p.actions for p in postings) + len(along) + 1
        if len(tenants) != 1 or size > _TRANSACTION_ACTIONS:
            raise InvalidPostingRequestError(f"one tenant and at most {_TRANSACTION_ACTIONS} actions at once")
        [tenant_id] = tenants
        counters = _Write().set("tenant_id", tenant_id).set("updated_at", _stamp(self._clock.now()))
        actions: list[Mapping[str, Any]] = []
        after: list[PostingEntry] = []
        for posting in postings:
            entry = posting.entry
            if PostingState.POSTED not in TRANSITIONS[entry.state]:
                raise InvalidTransitionError(entry.state, PostingState.POSTED)
            if posting.attempt.version != entry.version:
                raise InvalidPostingRequestError("the attempt must be of the version that moves")
            key = self._key(tenant_id, entry.kind, entry.app_id)
            current = _item_of(entry)
            write, extra = self._move_write(
                key,
                current,
                PostingState.POSTED,
                reasons=None,
                qbo_id=posting.qbo_id,
                sync_token=posting.sync_token,
                request_id=None,
                error=None,
                attempt=posting.attempt,
                from_seen=True,
                notes=posting.notes,
            )
            actions.append(write.action(self._table.name, key))
            actions.extend(extra)
            actions.extend(posting.along)
            after.append(_entry(write.apply(current)))
            counters.add(f"{entry.kind}#{PostingState.POSTED.value}", 1)
            counters.add(f"{entry.kind}#{entry.state.value}", -1)
        actions.extend(along)
        actions.append(counters.action(self._table.name, self._summary_key(tenant_id)))
        try:
            self._transact(actions, "post_many")
        except ConditionFailedError:
            raise ConcurrentChangeError(
                "a document or a companion write changed; nothing was posted"
            ) from None
        return after

    def transition_many(
        self,
        seen: Sequence[PostingEntry],
        *,
        to_state: PostingState | str,
        request_ids: Mapping[tuple[str, str], str] | None = None,
    ) -> list[PostingEntry]:
        """Move several documents of one tenant, each from the entry the caller has, in one
        transaction (the push worker starting a QBO batch request): all of them or none.

        Raises ``ConcurrentChangeError`` (nothing written) when one of them is no longer what the
        caller saw, ``InvalidTransitionError`` when ``TRANSITIONS`` forbids a move; the caller then
        moves them one by one.
        """
        target = _check_state(to_state)
        if not seen:
            return []
        tenants = {entry.tenant_id for entry in seen}
        if len(tenants) != 1 or len(seen) > _TRANSACTION_HEADS:
            raise InvalidPostingRequestError(f"one tenant and at most {_TRANSACTION_HEADS} documents at once")
        [tenant_id] = tenants
        now = self._clock.now()
        counters = _Write().set("tenant_id", tenant_id).set("updated_at", _stamp(now))
        actions: list[Mapping[str, Any]] = []
        after: list[PostingEntry] = []
        for entry in seen:
            if target not in TRANSITIONS[entry.state]:
                raise InvalidTransitionError(entry.state, target)
            current = _item_of(entry)
            write = _Write().set("updated_at", _stamp(now)).remove("reasons")
            self._set_state(write, tenant_id, target)
            request_id = (request_ids or {}).get((entry.kind, entry.app_id))
            if request_id is not None:
                write.set("request_id", request_id)
            if entry.qbo_id:
                write.remove("needs_lookup")
                write.when(f"{write.name('qbo_id')} = {write.value(entry.qbo_id)}")
            else:
                if target is PostingState.UNCERTAIN:
                    write.set("needs_lookup", True)
                write.when(f"attribute_not_exists({write.name('qbo_id')})")
            write.when(f"{write.name('version')} = {write.value(entry.version)}")
            write.when(f"{write.name('state')} = {write.value(entry.state.value)}")
            write.when(f"{write.name('attempts')} = {write.value(entry.attempts)}")
            key = self._key(tenant_id, entry.kind, entry.app_id)
            actions.append(write.action(self._table.name, key))
            after.append(_entry(write.apply(current)))
            if entry.state is not target:
                counters.add(f"{entry.kind}#{target.value}", 1)
                counters.add(f"{entry.kind}#{entry.state.value}", -1)
        actions.append(counters.action(self._table.name, self._summary_key(tenant_id)))
        try:
            self._transact(actions, "transition_many")
        except ConditionFailedError:
            raise ConcurrentChangeError("a document changed since it was read; nothing was moved") from None
        return after

    def record_attempt(
        self,
        tenant_id: str,
        kind: str,
        app_id: str,
        *,
        version: int,
        outcome: AttemptOutcome | str,
        started_at: datetime,
        finished_at: datetime,
        http_status: int | None = None,
        fault: PostingFault | None = None,
        intuit_tid: str | None = None,
        request_id: str | None = None,
    ) -> Attempt:
        """Append one attempt for ``version``, numbered from 1 in the order recorded.

        For the current version the head's ``attempts`` counter hands out the number (and a fault
        becomes the head's ``last_error``); an attempt of an older version is still recorded, under
        that version, since the call did happen.
        """
        key = self._key(tenant_id, kind, app_id)
        _check_version(version)
        try:
            result = AttemptOutcome(outcome)
        except ValueError:
            raise InvalidPostingRequestError(f"unknown attempt outcome {outcome!r}") from None
        if fault is not None and fault.intuit_tid is None and intuit_tid is not None:
            fault = fault.model_copy(update={"intuit_tid": intuit_tid})
        write = _Write().add("attempts", 1).set("updated_at", _stamp(self._clock.now()))
        if fault is not None:
            write.set("last_error", _fault_map(fault))
        if request_id is not None:
            write.set("request_id", request_id)
        write.when(f"{write.name('version')} = {write.value(version)}")
        number: int | None = None
        try:
            with _dynamodb("record_attempt"):
                answer = self._table.update_item(
                    **write.arguments(key),
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            number = _number(answer["Attributes"]["attempts"])
        except ConditionFailedError as failed:
            head = failed.failed.get(0)
            if head is None:
                raise DocumentNotFoundError(tenant_id, kind, app_id) from None
            if _number(head["version"]) < version:
                raise StaleVersionError(version, _number(head["version"])) from None
        attempt = Attempt(
            tenant_id=tenant_id,
            kind=kind,
            app_id=app_id,
            version=version,
            number=number or 1,
            outcome=result,
            http_status=http_status,
            fault=fault,
            intuit_tid=intuit_tid,
            request_id=request_id,
            started_at=started_at,
            finished_at=finished_at,
        )
        for _ in range(_RETRIES):
            if number is None:  # an older version: continue its numbering
                previous = self.attempts(tenant_id, kind, app_id, version=version)
                attempt = attempt.model_copy(update={"number": previous[-1].number + 1 if previous else 1})
            try:
                self._put_attempt(key, attempt)
            except ConditionFailedError:
                number = None  # the number is taken: count again
                continue
            return attempt
        raise PostingLogBusyError(f"record_attempt: {kind} {app_id} keeps changing, retry")

    def add_note(self, tenant_id: str, kind: str, app_id: str, note: Reason) -> bool:
        """Add ``note`` to a document's head whatever its state (one write); False when the log has
        no such document.  What the change worker learns of a document QBO changed by itself."""
        key = self._key(tenant_id, kind, app_id)
        try:
            with _dynamodb("add_note"):
                self._table.update_item(
                    Key=key,
                    UpdateExpression=(
                        "SET #notes = list_append(if_not_exists(#notes, :none), :note), #at = :at"
                    ),
                    ConditionExpression="attribute_exists(#pk)",
                    ExpressionAttributeNames={"#notes": "notes", "#at": "updated_at", "#pk": constants.PK},
                    ExpressionAttributeValues={
                        ":none": [],
                        ":note": _reason_maps([note]),
                        ":at": _stamp(self._clock.now()),
                    },
                )
        except ConditionFailedError:
            return False
        return True

    # --- reads -------------------------------------------------------------------------------

    def get(self, tenant_id: str, kind: str, app_id: str) -> PostingEntry | None:
        item = self._read(self._key(tenant_id, kind, app_id))
        return _entry(item) if item else None

    def get_many(
        self, tenant_id: str, wanted: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], PostingEntry]:
        """The heads of several (kind, app id) documents of one tenant (consistent BatchGetItem, 100
        keys a call); unknown documents are absent.  A push delivery reads its messages' documents,
        and a batch its documents' clients, this way."""
        keys = [self._key(tenant_id, kind, app_id) for kind, app_id in dict.fromkeys(wanted)]
        client = self._table.meta.client
        found: dict[tuple[str, str], PostingEntry] = {}
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            pending: dict[str, Any] = {
                self._table.name: {"Keys": keys[start : start + _BATCH_GET_KEYS], "ConsistentRead": True}
            }
            while pending:
                with _dynamodb("get_many"):
                    answer = client.batch_get_item(RequestItems=pending)
                for item in answer.get("Responses", {}).get(self._table.name, []):
                    entry = _entry(item)
                    found[(entry.kind, entry.app_id)] = entry
                pending = answer.get("UnprocessedKeys") or {}
        return found

    def attempts(
        self, tenant_id: str, kind: str, app_id: str, *, version: int | None = None
    ) -> list[Attempt]:
        """Every attempt of the document (or of one version), oldest version first, then in order."""
        key = self._key(tenant_id, kind, app_id)
        prefix = key[constants.SK] + constants.POSTING_ATTEMPT_MARK
        if version is not None:
            prefix += f"{_check_version(version):08d}#"
        request: dict[str, Any] = {
            "KeyConditionExpression": Key(constants.PK).eq(key[constants.PK])
            & Key(constants.SK).begins_with(prefix),
            "ConsistentRead": True,
        }
        found: list[Attempt] = []
        while True:
            with _dynamodb("attempts"):
                answer = self._table.query(**request)
            found.extend(_attempt(item) for item in answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last:
                return found
            request["ExclusiveStartKey"] = last

    def query_by_state(
        self,
        tenant_id: str,
        state: PostingState | str,
        *,
        txn_from: date | None = None,
        txn_to: date | None = None,
        page_token: str | None = None,
        limit: int = 100,
    ) -> PostingPage:
        """Documents in one state, by transaction date (undated ones first when no range is given)."""
        partition = constants.posting_state_pk(_check_tenant(tenant_id), _check_state(state).value)
        condition = Key(constants.POSTING_BY_STATE_PK).eq(partition)
        sort = _date_range(
            constants.POSTING_BY_STATE_SK, _check_date(txn_from, "txn_from"), _check_date(txn_to, "txn_to")
        )
        return self._page(
            tenant_id,
            constants.POSTING_BY_STATE_INDEX,
            condition & sort if sort is not None else condition,
            (constants.POSTING_BY_STATE_PK, partition, constants.POSTING_BY_STATE_SK),
            page_token=page_token,
            limit=limit,
        )

    def query_by_txn_date(
        self,
        tenant_id: str,
        txn_from: date | None,
        txn_to: date | None,
        *,
        kinds: Collection[str] | None = None,
        states: Collection[PostingState | str] | None = None,
        page_token: str | None = None,
        limit: int = 100,
    ) -> PostingPage:
        """Dated documents by transaction date (inclusive range), optionally of some kinds/states.

        Kinds and states are a filter: DynamoDB reads (and bills) the whole range, and a page may
        hold fewer than ``limit`` entries while ``next_token`` is still set.
        """
        partition = constants.tenant_pk(_check_tenant(tenant_id))
        condition = Key(constants.POSTING_BY_TXN_DATE_PK).eq(partition)
        sort = _date_range(
            constants.POSTING_BY_TXN_DATE_SK, _check_date(txn_from, "txn_from"), _check_date(txn_to, "txn_to")
        )
        return self._page(
            tenant_id,
            constants.POSTING_BY_TXN_DATE_INDEX,
            condition & sort if sort is not None else condition,
            (constants.POSTING_BY_TXN_DATE_PK, partition, constants.POSTING_BY_TXN_DATE_SK),
            filters=_filters(kinds, states),
            page_token=page_token,
            limit=limit,
        )

    def query_by_posted_date(
        self,
        tenant_id: str,
        posted_from: date | None,
        posted_to: date | None,
        *,
        kinds: Collection[str] | None = None,
        page_token: str | None = None,
        limit: int = 100,
    ) -> PostingPage:
        """Documents by the UTC date their current QBO state was posted (inclusive range)."""
        partition = constants.tenant_pk(_check_tenant(tenant_id))
        condition = Key(constants.POSTING_BY_POSTED_PK).eq(partition)
        sort = _date_range(
            constants.POSTING_BY_POSTED_SK,
            _check_date(posted_from, "posted_from"),
            _check_date(posted_to, "posted_to"),
        )
        return self._page(
            tenant_id,
            constants.POSTING_BY_POSTED_INDEX,
            condition & sort if sort is not None else condition,
            (constants.POSTING_BY_POSTED_PK, partition, constants.POSTING_BY_POSTED_SK),
            filters=_filters(kinds, None),
            page_token=page_token,
            limit=limit,
        )

    def summary(self, tenant_id: str) -> PostingSummary:
        """Documents per kind and state: one read of the summary item."""
        with _dynamodb("summary"):
            item = self._table.get_item(
                Key=self._summary_key(_check_tenant(tenant_id)), ConsistentRead=True
            ).get("Item")
        by_kind: dict[str, dict[PostingState, int]] = {}
        for attribute, value in (item or {}).items():
            kind, _, state = str(attribute).partition("#")
            if kind in constants.POSTING_KINDS and state in _STATES:
                by_kind.setdefault(kind, dict.fromkeys(PostingState, 0))[PostingState(state)] = _number(value)
        pending = _instant((item or {}).get(_RECHECK_PENDING))
        return PostingSummary(tenant_id=tenant_id, by_kind=by_kind, recheck_pending=pending)

    # --- the recheck marker ------------------------------------------------------------------

    def mark_recheck(self, tenant_id: str, *, at: datetime, stale_before: datetime) -> datetime | None:
        """Note on the tenant's summary that a recheck of its waiting documents is queued: set when
        no marker is there, or when the one there is older than ``stale_before`` (its message was
        lost, or waits behind a long backlog).  Returns the marker set (``at``), or None when a fresh
        one is already there: a recheck is queued that has not started, and it will see whatever
        the caller changed before calling."""
        write = _Write().set("tenant_id", tenant_id).set(_RECHECK_PENDING, _stamp(at))
        name = write.name(_RECHECK_PENDING)
        write.when(f"attribute_not_exists({name}) OR {name} < {write.value(_stamp(stale_before))}")
        try:
            self._summary_update(tenant_id, write, "mark_recheck")
        except ConditionFailedError:
            return None
        return at

    def clear_recheck(self, tenant_id: str, marked: datetime | None = None) -> None:
        """Remove the marker: a recheck starts (any marker goes, so the next change queues another), or
        the one ``marked`` by a caller whose message never reached the queue (only that one)."""
        write = _Write().remove(_RECHECK_PENDING)
        if marked is not None:
            write.when(f"{write.name(_RECHECK_PENDING)} = {write.value(_stamp(marked))}")
        try:
            self._summary_update(tenant_id, write, "clear_recheck")
        except ConditionFailedError:
            return  # another caller's marker now: theirs to keep

    def _summary_update(self, tenant_id: str, write: _Write, operation: str) -> None:
        """One UpdateItem of the summary item, retried with backoff while it collides with a
        transaction moving the tenant's counters (DynamoDB refuses it as a conflict meanwhile)."""
        arguments = write.arguments(self._summary_key(_check_tenant(tenant_id)))
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with _dynamodb(operation):
                    self._table.update_item(**arguments)
            except (_Conflict, PostingLogBusyError):
                time.sleep(min(0.02 * 2**attempt, 0.5))
                continue
            return
        raise PostingLogBusyError(f"{operation}: the tenant's summary is contended, retry")

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _date_key(txn_date: date | None, kind: str, app_id: str) -> str:
        return f"{txn_date.isoformat() if txn_date else _UNDATED}#{kind}#{app_id}"

    @staticmethod
    def _set_state(write: _Write, tenant_id: str, state: PostingState) -> None:
        write.set("state", state.value)
        write.set(constants.POSTING_BY_STATE_PK, constants.posting_state_pk(tenant_id, state.value))

    def _read(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        with _dynamodb("get"):
            item = self._table.get_item(Key=dict(key), ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def _commit(
        self,
        key: Mapping[str, str],
        write: _Write,
        tenant_id: str,
        kind: str,
        *,
        move: tuple[PostingState | None, PostingState],
        operation: str,
        extra: Sequence[Mapping[str, Any]] = (),
        new: bool = False,
    ) -> None:
        """Apply ``write`` to the head (``new``: a head that does not exist yet, written whole);
        when the state changes, move the summary counters in the same transaction, and ``extra``
        actions with them.  Raises ``ConditionFailedError`` when a condition failed: index 0 is the
        head, then the summary (when the state moves), then ``extra`` in order."""
        source, target = move
        if source is target and not extra:
            with _dynamodb(operation):
                self._table.update_item(**write.arguments(key))
            return
        head = write.put_action(self._table.name, key) if new else write.action(self._table.name, key)
        actions: list[Mapping[str, Any]] = [head]
        if source is not target:
            counters = _Write().set("tenant_id", tenant_id).set("updated_at", _stamp(self._clock.now()))
            counters.add(f"{kind}#{target.value}", 1)
            if source is not None:
                counters.add(f"{kind}#{source.value}", -1)
            actions.append(counters.action(self._table.name, self._summary_key(tenant_id)))
        actions.extend(extra)
        self._transact(actions, operation)

    def _transact(self, actions: Sequence[Mapping[str, Any]], operation: str) -> None:
        """One TransactWriteItems, retried with backoff while it loses races on the summary item."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with _dynamodb(operation):
                    self._table.meta.client.transact_write_items(TransactItems=list(actions))
            except _Conflict:
                # Every state change of the tenant touches the summary item: back off and retry.
                time.sleep(min(0.02 * 2**attempt, 0.5))
                continue
            return
        raise PostingLogBusyError(f"{operation}: the tenant's summary is contended, retry")

    def _carry_over(
        self,
        key: Mapping[str, str],
        stale_version: int,
        target: PostingState,
        qbo_id: str | None,
        sync_token: str | None,
    ) -> bool:
        """Keep a stale worker's news for the newer version: its QBO id, or that it may exist."""
        write = _Write()
        if target is PostingState.POSTED and qbo_id:
            write.set("qbo_id", qbo_id).remove("needs_lookup")
            if sync_token is not None:
                write.set("sync_token", sync_token)
        elif target is PostingState.UNCERTAIN:
            write.set("needs_lookup", True)
        else:
            return False
        write.when(f"attribute_not_exists({write.name('qbo_id')})")
        write.when(f"{write.name('version')} > {write.value(stale_version)}")
        try:
            with _dynamodb("transition"):
                self._table.update_item(**write.arguments(key))
        except ConditionFailedError:
            return False
        return True

    def _put_attempt(self, key: Mapping[str, str], attempt: Attempt) -> None:
        with _dynamodb("record_attempt"):
            self._table.put_item(**self._attempt_put(key, attempt)["Put"])

    def _attempt_put(self, key: Mapping[str, str], attempt: Attempt) -> dict[str, Any]:
        """The attempt's item as a Put action that never overwrites another attempt."""
        item: dict[str, Any] = {
            constants.PK: key[constants.PK],
            constants.SK: constants.posting_attempt_sk(
                attempt.kind, attempt.app_id, attempt.version, attempt.number
            ),
            "tenant_id": attempt.tenant_id,
            "kind": attempt.kind,
            "app_id": attempt.app_id,
            "version": attempt.version,
            "number": attempt.number,
            "outcome": attempt.outcome.value,
            "started_at": _stamp(attempt.started_at),
            "finished_at": _stamp(attempt.finished_at),
        }
        optional = {
            "http_status": attempt.http_status,
            "fault": _fault_map(attempt.fault) if attempt.fault else None,
            "intuit_tid": attempt.intuit_tid,
            "request_id": attempt.request_id,
        }
        item.update({k: v for k, v in optional.items() if v is not None})
        return {
            "Put": {
                "TableName": self._table.name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(#sk)",
                "ExpressionAttributeNames": {"#sk": constants.SK},
            }
        }

    def _page(
        self,
        tenant_id: str,
        index: str,
        condition: ConditionBase,
        index_key: tuple[str, str, str],
        *,
        filters: ConditionBase | None = None,
        page_token: str | None = None,
        limit: int,
    ) -> PostingPage:
        partition_attribute, partition, sort_attribute = index_key
        tenant = constants.tenant_pk(tenant_id)
        request: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "Limit": _check_limit(limit),
        }
        if filters is not None:
            request["FilterExpression"] = filters
        if page_token is not None:
            checks: dict[str, Callable[[str], bool]] = {
                constants.PK: tenant.__eq__,
                constants.SK: lambda sk: sk.startswith(constants.POSTING_DOC_PREFIX),
                partition_attribute: partition.__eq__,
                sort_attribute: bool,
            }
            request["ExclusiveStartKey"] = decode_page_token(page_token, checks)
        with _dynamodb("query"):
            answer = self._table.query(**request)
        last = answer.get("LastEvaluatedKey")
        return PostingPage(
            [_entry(item) for item in answer.get("Items", [])],
            encode_page_token(last) if last else None,
        )


def _filters(
    kinds: Collection[str] | None, states: Collection[PostingState | str] | None
) -> ConditionBase | None:
    conditions: list[ConditionBase] = []
    if kinds:
        conditions.append(Attr("kind").is_in([_check_kind(k) for k in dict.fromkeys(kinds)]))
    if states:
        conditions.append(Attr("state").is_in([_check_state(s).value for s in dict.fromkeys(states)]))
    if not conditions:
        return None
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = combined & condition
    return combined


def _fault(value: Any) -> PostingFault | None:
    return PostingFault.model_validate(dict(value)) if isinstance(value, Mapping) else None


def _numbered(attempt: Attempt, number: int) -> Attempt:
    """The attempt with its number, its fault carrying the call's ``intuit_tid`` (as
    ``record_attempt`` stores it)."""
    fault = attempt.fault
    if fault is not None and fault.intuit_tid is None and attempt.intuit_tid is not None:
        fault = fault.model_copy(update={"intuit_tid": attempt.intuit_tid})
    return attempt.model_copy(update={"number": number, "fault": fault})


def _same(entry: PostingEntry, tenant_id: str, kind: str, app_id: str) -> bool:
    return (entry.tenant_id, entry.kind, entry.app_id) == (tenant_id, kind, app_id)


def _item_of(entry: PostingEntry) -> dict[str, Any]:
    """The head's stored attributes that ``_entry`` reads, from an entry (``_entry`` inverted)."""
    item: dict[str, Any] = {
        "tenant_id": entry.tenant_id,
        "kind": entry.kind,
        "app_id": entry.app_id,
        "version": entry.version,
        "document": entry.document,
        "state": entry.state.value,
        "attempts": entry.attempts,
        "created_at": _stamp(entry.created_at),
        "updated_at": _stamp(entry.updated_at),
    }
    optional: dict[str, Any] = {
        "reasons": _reason_maps(entry.reasons) or None,
        "notes": _reason_maps(entry.notes) or None,
        "txn_date": entry.txn_date.isoformat() if entry.txn_date else None,
        "qbo_id": entry.qbo_id,
        "sync_token": entry.sync_token,
        "request_id": entry.request_id,
        "last_error": _fault_map(entry.last_error) if entry.last_error else None,
        "needs_lookup": True if entry.needs_lookup else None,
        "posted_at": _stamp(entry.posted_at) if entry.posted_at else None,
    }
    item.update({name: value for name, value in optional.items() if value is not None})
    return item


def _entry(item: Mapping[str, Any]) -> PostingEntry:
    return PostingEntry(
        tenant_id=str(item["tenant_id"]),
        kind=str(item["kind"]),
        app_id=str(item["app_id"]),
        version=_number(item["version"]),
        document=_decode_document(item.get("document")),
        state=PostingState(item["state"]),
        reasons=tuple(Reason.model_validate(dict(r)) for r in item.get("reasons") or ()),
        notes=tuple(Reason.model_validate(dict(r)) for r in item.get("notes") or ()),
        txn_date=date.fromisoformat(str(item["txn_date"])) if item.get("txn_date") else None,
        qbo_id=item.get("qbo_id"),
        sync_token=item.get("sync_token"),
        request_id=item.get("request_id"),
        attempts=_number(item.get("attempts")),
        last_error=_fault(item.get("last_error")),
        needs_lookup=bool(item.get("needs_lookup", False)),
        posted_at=_instant(item.get("posted_at")),
        created_at=_instant(item.get("created_at")) or datetime.fromtimestamp(0, UTC),
        updated_at=_instant(item.get("updated_at")) or datetime.fromtimestamp(0, UTC),
    )


def _attempt(item: Mapping[str, Any]) -> Attempt:
    return Attempt(
        tenant_id=str(item["tenant_id"]),
        kind=str(item["kind"]),
        app_id=str(item["app_id"]),
        version=_number(item["version"]),
        number=_number(item["number"]),
        outcome=AttemptOutcome(item["outcome"]),
        http_status=_number(item["http_status"]) if "http_status" in item else None,
        fault=_fault(item.get("fault")),
        intuit_tid=item.get("intuit_tid"),
        request_id=item.get("request_id"),
        started_at=_instant(item.get("started_at")) or datetime.fromtimestamp(0, UTC),
        finished_at=_instant(item.get("finished_at")) or datetime.fromtimestamp(0, UTC),
    )
