"""The posting log's rules, apart from DynamoDB: the states a document goes through and the moves
``TRANSITIONS`` allows, the head's attributes (``entry_of`` and ``item_of`` read and write them),
and what each write of the log changes and on what condition: ``accept_change`` for a new version,
``move_change`` for a transition, ``start_change`` for one document of a batch going ``in_flight``,
``carry_over_change`` for a late worker's news, ``attempt_change`` for a recorded attempt and
``counter_change`` for the summary's counts.  A ``Change`` says which attributes are set, removed
and added to, and what must hold of the stored item (``Expect``); ``shared.push.posting_log`` turns
it into an UpdateItem, a transaction action or a Put.  Nothing here reads or writes a table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from shared.kernel import constants
from shared.kernel.reasons import Reason
from shared.push.errors import (
    DocumentTooLargeError,
    InvalidPostingRequestError,
    PostingLogError,
    VersionConflictError,
)
from shared.push.states import PostingState

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


DOCUMENT_MAX_BYTES: Final = 350_000  # DynamoDB items are at most 400 KB
MAX_PAGE: Final = 1000
MAX_NOTES: Final = 50  # a head keeps its latest notes only (an item is at most 400 KB)
UNDATED: Final = "-"  # by-state sort key of documents without a transaction date; sorts first
_APP_ID = re.compile(constants.APP_ID_PATTERN)
_KEY_PART = re.compile(r"^[^#\x00-\x1f]{1,128}$")


# --- errors -------------------------------------------------------------------------------------


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


# --- models -------------------------------------------------------------------------------------


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


Judgement = tuple[PostingState, Sequence[Reason]]
"""What a new version's readiness decides: the state it lands in, and why (``accept``'s ``judge``)."""


# --- values -------------------------------------------------------------------------------------


def stamp(at: datetime) -> str:
    """UTC, fixed width, so stamps sort as strings (the by-posted index relies on it)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_document(document: Mapping[str, Any]) -> str:
    try:
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as error:
        raise InvalidPostingRequestError(f"document is not JSON: {error}") from None
    if len(body.encode()) > DOCUMENT_MAX_BYTES:
        raise DocumentTooLargeError(f"document is larger than {DOCUMENT_MAX_BYTES} bytes")
    return body


def decode_document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        decoded = json.loads(value, parse_float=Decimal)
        return decoded if isinstance(decoded, dict) else {}
    return dict(value) if isinstance(value, Mapping) else {}


def reason_maps(reasons: Sequence[Reason]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.model_dump().items() if v is not None} for r in reasons]


def fault_map(fault: PostingFault) -> dict[str, str]:
    return {k: v for k, v in fault.model_dump().items() if v is not None}


def as_int(value: Any) -> int:
    return int(value) if isinstance(value, (int, Decimal)) else 0


def check_tenant(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not _KEY_PART.match(tenant_id):
        raise InvalidPostingRequestError("tenant id must be 1-128 characters without '#'")
    return tenant_id


def check_kind(kind: str) -> str:
    if kind not in constants.POSTING_KINDS:
        raise InvalidPostingRequestError(
            f"unknown kind {kind!r}; expected one of {', '.join(constants.POSTING_KINDS)}"
        )
    return kind


def check_app_id(app_id: str) -> str:
    if not isinstance(app_id, str) or not _APP_ID.match(app_id):
        raise InvalidPostingRequestError(f"app id {app_id!r} must match {constants.APP_ID_PATTERN}")
    return app_id


def check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidPostingRequestError("version must be an integer >= 1")
    return version


def check_state(state: PostingState | str) -> PostingState:
    try:
        return PostingState(state)
    except ValueError:
        raise InvalidPostingRequestError(f"unknown state {state!r}") from None


def check_date(value: date | None, name: str) -> date | None:
    if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
        raise InvalidPostingRequestError(f"{name} must be a date")
    return value


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidPostingRequestError(f"limit must be between 1 and {MAX_PAGE}")
    return limit


# --- the head and attempt items -----------------------------------------------------------------


def fault_of(value: Any) -> PostingFault | None:
    return PostingFault.model_validate(dict(value)) if isinstance(value, Mapping) else None


def numbered(attempt: Attempt, number: int) -> Attempt:
    """The attempt with its number, its fault carrying the call's ``intuit_tid`` (as
    ``record_attempt`` stores it)."""
    return attempt.model_copy(update={"number": number, "fault": with_tid(attempt.fault, attempt.intuit_tid)})


def same_document(entry: PostingEntry, tenant_id: str, kind: str, app_id: str) -> bool:
    return (entry.tenant_id, entry.kind, entry.app_id) == (tenant_id, kind, app_id)


def item_of(entry: PostingEntry) -> dict[str, Any]:
    """The head's stored attributes that ``_entry`` reads, from an entry (``_entry`` inverted)."""
    item: dict[str, Any] = {
        "tenant_id": entry.tenant_id,
        "kind": entry.kind,
        "app_id": entry.app_id,
        "version": entry.version,
        "document": entry.document,
        "state": entry.state.value,
        "attempts": entry.attempts,
        "created_at": stamp(entry.created_at),
        "updated_at": stamp(entry.updated_at),
    }
    optional: dict[str, Any] = {
        "reasons": reason_maps(entry.reasons) or None,
        "notes": reason_maps(entry.notes) or None,
        "txn_date": entry.txn_date.isoformat() if entry.txn_date else None,
        "qbo_id": entry.qbo_id,
        "sync_token": entry.sync_token,
        "request_id": entry.request_id,
        "last_error": fault_map(entry.last_error) if entry.last_error else None,
        "needs_lookup": True if entry.needs_lookup else None,
        "posted_at": stamp(entry.posted_at) if entry.posted_at else None,
    }
    item.update({name: value for name, value in optional.items() if value is not None})
    return item


def entry_of(item: Mapping[str, Any]) -> PostingEntry:
    return PostingEntry(
        tenant_id=str(item["tenant_id"]),
        kind=str(item["kind"]),
        app_id=str(item["app_id"]),
        version=as_int(item["version"]),
        document=decode_document(item.get("document")),
        state=PostingState(item["state"]),
        reasons=tuple(Reason.model_validate(dict(r)) for r in item.get("reasons") or ()),
        notes=tuple(Reason.model_validate(dict(r)) for r in item.get("notes") or ()),
        txn_date=date.fromisoformat(str(item["txn_date"])) if item.get("txn_date") else None,
        qbo_id=item.get("qbo_id"),
        sync_token=item.get("sync_token"),
        request_id=item.get("request_id"),
        attempts=as_int(item.get("attempts")),
        last_error=fault_of(item.get("last_error")),
        needs_lookup=bool(item.get("needs_lookup", False)),
        posted_at=instant(item.get("posted_at")),
        created_at=instant(item.get("created_at")) or datetime.fromtimestamp(0, UTC),
        updated_at=instant(item.get("updated_at")) or datetime.fromtimestamp(0, UTC),
    )


def attempt_of(item: Mapping[str, Any]) -> Attempt:
    return Attempt(
        tenant_id=str(item["tenant_id"]),
        kind=str(item["kind"]),
        app_id=str(item["app_id"]),
        version=as_int(item["version"]),
        number=as_int(item["number"]),
        outcome=AttemptOutcome(item["outcome"]),
        http_status=as_int(item["http_status"]) if "http_status" in item else None,
        fault=fault_of(item.get("fault")),
        intuit_tid=item.get("intuit_tid"),
        request_id=item.get("request_id"),
        started_at=instant(item.get("started_at")) or datetime.fromtimestamp(0, UTC),
        finished_at=instant(item.get("finished_at")) or datetime.fromtimestamp(0, UTC),
    )


# --- changes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """A condition on the stored item: ``attribute`` ``relation`` ``value`` (``absent``: the item
    has no such attribute)."""

    attribute: str
    relation: Literal["=", ">", "absent"]
    value: Any = None


@dataclass
class Change:
    """What one write does to an item: the attributes it sets, removes and adds to, and what must
    hold of the stored item first (every ``Expect``)."""

    sets: dict[str, Any] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)
    adds: dict[str, int] = field(default_factory=dict)
    expects: list[Expect] = field(default_factory=list)

    def set(self, attribute: str, value: Any) -> Change:
        self.sets[attribute] = value
        return self

    def remove(self, *attributes: str) -> Change:
        self.removes.extend(attributes)
        return self

    def add(self, attribute: str, amount: int) -> Change:
        self.adds[attribute] = self.adds.get(attribute, 0) + amount
        return self

    def expect(self, attribute: str, relation: Literal["=", ">"], value: Any) -> Change:
        self.expects.append(Expect(attribute, relation, value))
        return self

    def expect_absent(self, attribute: str) -> Change:
        self.expects.append(Expect(attribute, "absent"))
        return self

    def apply(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The item after this change (its expectations taken as met)."""
        after = {k: v for k, v in item.items() if k not in self.removes}
        after.update(self.sets)
        for attribute, amount in self.adds.items():
            after[attribute] = int(after.get(attribute, 0)) + amount
        return after


def set_state(change: Change, tenant_id: str, state: PostingState) -> Change:
    """The head's state, and its key in the by-state index."""
    change.set("state", state.value)
    change.set(constants.POSTING_BY_STATE_PK, constants.posting_state_pk(tenant_id, state.value))
    return change


def date_key(txn_date: date | None, kind: str, app_id: str) -> str:
    return f"{txn_date.isoformat() if txn_date else UNDATED}#{kind}#{app_id}"


def counter_change(tenant_id: str, now: datetime) -> Change:
    """The summary item's change, before ``count_move`` adds the moves of its counters."""
    return Change().set("tenant_id", tenant_id).set("updated_at", stamp(now))


def count_move(counters: Change, kind: str, source: PostingState | None, target: PostingState) -> None:
    """One document of ``kind`` moves from ``source`` (None: a new document) to ``target``."""
    counters.add(f"{kind}#{target.value}", 1)
    if source is not None:
        counters.add(f"{kind}#{source.value}", -1)


# --- accept: a new version ----------------------------------------------------------------------


@dataclass(frozen=True)
class NewVersion:
    """A version ``accept`` is asked to store (``body``: the document as encoded)."""

    tenant_id: str
    kind: str
    app_id: str
    version: int
    body: str
    txn_date: date | None


Normalise = Callable[[dict[str, Any]], Mapping[str, Any]]
"""How a stored document reads today, before it is compared with a new body of its version
(``accept``'s ``normalise``: the push service validates it again with its model)."""


def canonical(document: Mapping[str, Any]) -> str:
    """One text per content: keys sorted, compact, decimals and dates as strings."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def same_body(stored: Any, body: str, normalise: Normalise | None = None) -> bool:
    """Whether the head's stored ``document`` and a new ``body`` (as ``encode_document`` made it)
    hold the same content, whatever the order of their keys."""
    document: Mapping[str, Any] = decode_document(stored)
    if normalise is not None:
        document = normalise(dict(document))
    return canonical(document) == canonical(decode_document(body))


def ignored(
    current: Mapping[str, Any] | None, new: NewVersion, normalise: Normalise | None = None
) -> AcceptOutcome | None:
    """``accept``'s answer when the stored version is the same or newer: nothing is written.  The
    same version with another body is refused (``VersionConflictError``); an older one is not
    compared (the app may have sent it late)."""
    if current is None or as_int(current["version"]) < new.version:
        return None
    stored = as_int(current["version"])
    if stored == new.version and not same_body(current.get("document"), new.body, normalise):
        raise VersionConflictError(new.tenant_id, new.kind, new.app_id, new.version)
    return AcceptOutcome(
        status="ignored",
        version=stored,
        previous_version=stored,
        previous_state=PostingState(current["state"]),
        qbo_id=current.get("qbo_id"),
    )


def landing(judged: Judgement) -> Judgement:
    """A new version's judgement, checked: ``received``, or a state ``received`` may go to."""
    if judged[0] is not PostingState.RECEIVED and judged[0] not in TRANSITIONS[PostingState.RECEIVED]:
        raise InvalidTransitionError(PostingState.RECEIVED, judged[0])
    return judged


def accept_change(
    current: Mapping[str, Any] | None, new: NewVersion, judged: Judgement, now: datetime
) -> Change:
    """The head's change for a newer version (``current``: the head read, None for a new document).
    The version replaces the one read, on condition that it is still stored in the state read (the
    summary moves one count out of it); a QBO id and SyncToken stay, so the version updates the
    document QBO has."""
    state, reasons = judged
    at = stamp(now)
    change = Change().set("tenant_id", new.tenant_id).set("kind", new.kind).set("app_id", new.app_id)
    change.set("version", new.version).set("document", new.body).set("attempts", 0).set("updated_at", at)
    set_state(change, new.tenant_id, state)
    if reasons:
        change.set("reasons", reason_maps(reasons))
    change.set(constants.POSTING_BY_STATE_SK, date_key(new.txn_date, new.kind, new.app_id))
    if new.txn_date is not None:
        change.set("txn_date", new.txn_date.isoformat())
        change.set(constants.POSTING_BY_TXN_DATE_PK, constants.tenant_pk(new.tenant_id))
        change.set(constants.POSTING_BY_TXN_DATE_SK, date_key(new.txn_date, new.kind, new.app_id))
    else:
        change.remove("txn_date", constants.POSTING_BY_TXN_DATE_PK, constants.POSTING_BY_TXN_DATE_SK)
    change.remove("last_error", "request_id")
    if not reasons:
        change.remove("reasons")
    if current is None:
        return change.set("created_at", at).expect_absent(constants.PK)
    change.expect("version", "=", current["version"]).expect("state", "=", current["state"])
    # The previous version may be in QBO without our knowing its id.
    if not current.get("qbo_id") and (
        current.get("needs_lookup")
        or PostingState(current["state"]) in (PostingState.IN_FLIGHT, PostingState.UNCERTAIN)
    ):
        return change.set("needs_lookup", True)
    return change.remove("needs_lookup")


def accepted(current: Mapping[str, Any] | None, version: int, judged: Judgement) -> AcceptOutcome:
    """``accept``'s answer once the version is stored."""
    state, reasons = judged
    return AcceptOutcome(
        status="accepted",
        version=version,
        previous_version=as_int(current["version"]) if current else None,
        previous_state=PostingState(current["state"]) if current else None,
        qbo_id=current.get("qbo_id") if current else None,
        state=state,
        reasons=tuple(reasons),
    )


# --- transitions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """A transition: the state it goes to and what it brings (``PostingLog.transition``'s arguments)."""

    target: PostingState
    reasons: Sequence[Reason] | None = None
    qbo_id: str | None = None
    sync_token: str | None = None
    request_id: str | None = None
    error: PostingFault | None = None
    attempt: Attempt | None = None
    notes: Sequence[Reason] = ()


def refusal(current: Mapping[str, Any], expected_version: int, move: Move) -> PostingLogError | None:
    """Why ``move`` of ``expected_version`` cannot apply to the head ``current`` (None: it can): another
    version is stored, ``TRANSITIONS`` forbids it, or a posted document would lack its QBO id."""
    stored = as_int(current["version"])
    if stored != expected_version:
        return StaleVersionError(expected_version, stored)
    source = PostingState(current["state"])
    if move.target not in TRANSITIONS[source]:
        return InvalidTransitionError(source, move.target)
    if move.target is PostingState.POSTED and not (move.qbo_id or current.get("qbo_id")):
        return InvalidPostingRequestError("a posted document needs its QBO id")
    return None


def move_change(
    current: Mapping[str, Any], move: Move, now: datetime, *, from_seen: bool
) -> tuple[Change, Attempt | None]:
    """The head's change for ``move`` decided on ``current``, and the attempt to record with it
    (numbered after the head's attempts), if any.  The change holds only while the head is the
    version and state read; with an attempt, or decided on an entry the caller had (``from_seen``),
    also while its attempts (and, ``from_seen``, its QBO id) are the ones read."""
    change = _moved(current, move, now)
    change.expect("version", "=", current["version"]).expect("state", "=", current["state"])
    recorded: Attempt | None = None
    if move.attempt is not None or from_seen:
        attempts = as_int(current.get("attempts"))
        change.expect("attempts", "=", attempts)
        if move.attempt is not None:
            change.set("attempts", attempts + 1)
            recorded = numbered(move.attempt, attempts + 1)
    if from_seen:
        known = current.get("qbo_id")
        if known:
            change.expect("qbo_id", "=", known)
        else:
            change.expect_absent("qbo_id")
    return change, recorded


def _moved(current: Mapping[str, Any], move: Move, now: datetime) -> Change:
    """What ``move`` sets and removes on the head: its state, reasons (none: cleared), QBO id,
    SyncToken, request id, ``needs_lookup``, ``posted_at`` (``posted``), ``last_error`` and notes."""
    tenant_id, kind, app_id = str(current["tenant_id"]), str(current["kind"]), str(current["app_id"])
    target, attempt = move.target, move.attempt
    change = set_state(Change().set("updated_at", stamp(now)), tenant_id, target)
    if move.reasons:
        change.set("reasons", reason_maps(move.reasons))
    else:
        change.remove("reasons")
    for attribute, given in (
        ("qbo_id", move.qbo_id),
        ("sync_token", move.sync_token),
        ("request_id", move.request_id or (attempt.request_id if attempt else None)),
    ):
        if given is not None:
            change.set(attribute, given)
    if move.qbo_id or current.get("qbo_id"):
        change.remove("needs_lookup")
    elif target is PostingState.UNCERTAIN:
        change.set("needs_lookup", True)
    if target is PostingState.POSTED:
        posted_at = stamp(now)
        change.set("posted_at", posted_at).remove("last_error")
        change.set(constants.POSTING_BY_POSTED_PK, constants.tenant_pk(tenant_id))
        change.set(constants.POSTING_BY_POSTED_SK, f"{posted_at}#{kind}#{app_id}")
    fault = move.error or (attempt.fault if attempt is not None else None)
    if fault is not None:
        change.set("last_error", fault_map(fault))
    if move.notes:
        change.set("notes", [*(current.get("notes") or ()), *reason_maps(move.notes)][-MAX_NOTES:])
    return change


def start_change(entry: PostingEntry, target: PostingState, request_id: str | None, now: datetime) -> Change:
    """One document of a batch moved from the entry the caller has (``transition_many``): reasons
    cleared, the request id set, on condition that the head is still that entry."""
    change = set_state(Change().set("updated_at", stamp(now)).remove("reasons"), entry.tenant_id, target)
    if request_id is not None:
        change.set("request_id", request_id)
    if entry.qbo_id:
        change.remove("needs_lookup").expect("qbo_id", "=", entry.qbo_id)
    else:
        if target is PostingState.UNCERTAIN:
            change.set("needs_lookup", True)
        change.expect_absent("qbo_id")
    change.expect("version", "=", entry.version).expect("state", "=", entry.state.value)
    return change.expect("attempts", "=", entry.attempts)


def carry_over_change(
    stale_version: int, target: PostingState, qbo_id: str | None, sync_token: str | None
) -> Change | None:
    """What a stale worker's move leaves for the newer version: its QBO id (``posted``), or that the
    document may exist in QBO (``uncertain``); None when it has no such news."""
    change = Change()
    if target is PostingState.POSTED and qbo_id:
        change.set("qbo_id", qbo_id).remove("needs_lookup")
        if sync_token is not None:
            change.set("sync_token", sync_token)
    elif target is PostingState.UNCERTAIN:
        change.set("needs_lookup", True)
    else:
        return None
    return change.expect_absent("qbo_id").expect("version", ">", stale_version)


# --- attempts -----------------------------------------------------------------------------------


def with_tid(fault: PostingFault | None, intuit_tid: str | None) -> PostingFault | None:
    """The fault carrying the call's ``intuit_tid`` when it has none of its own."""
    if fault is not None and fault.intuit_tid is None and intuit_tid is not None:
        return fault.model_copy(update={"intuit_tid": intuit_tid})
    return fault


def attempt_change(version: int, fault: PostingFault | None, request_id: str | None, now: datetime) -> Change:
    """The head's change for an attempt of ``version``: one more attempt counted (its number), its
    fault as ``last_error`` and its request id, while the head is still that version."""
    change = Change().add("attempts", 1).set("updated_at", stamp(now))
    if fault is not None:
        change.set("last_error", fault_map(fault))
    if request_id is not None:
        change.set("request_id", request_id)
    return change.expect("version", "=", version)


def attempt_item(partition: str, attempt: Attempt) -> dict[str, Any]:
    """The attempt's item in the document's partition."""
    item: dict[str, Any] = {
        constants.PK: partition,
        constants.SK: constants.posting_attempt_sk(
            attempt.kind, attempt.app_id, attempt.version, attempt.number
        ),
        "tenant_id": attempt.tenant_id,
        "kind": attempt.kind,
        "app_id": attempt.app_id,
        "version": attempt.version,
        "number": attempt.number,
        "outcome": attempt.outcome.value,
        "started_at": stamp(attempt.started_at),
        "finished_at": stamp(attempt.finished_at),
    }
    optional = {
        "http_status": attempt.http_status,
        "fault": fault_map(attempt.fault) if attempt.fault else None,
        "intuit_tid": attempt.intuit_tid,
        "request_id": attempt.request_id,
    }
    item.update({k: v for k, v in optional.items() if v is not None})
    return item
