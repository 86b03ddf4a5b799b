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

The rules (which moves ``TRANSITIONS`` allows, what each write changes and on which condition) are
``shared.push.posting_rules``; this module turns their ``Change`` into DynamoDB writes and reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from pydantic import BaseModel, ConfigDict

from shared.adapters.dynamo import (
    Attr,
    ConditionFailedError,
    InvalidPageTokenError,
    ItemUpdate,
    Key,
    client_errors,
    decode_page_token,
    encode_page_token,
)
from shared.kernel import constants
from shared.kernel.clock import Clock
from shared.kernel.reasons import Reason
from shared.push import posting_rules as rules
from shared.push.errors import (
    DocumentTooLargeError,
    InvalidPostingRequestError,
    PostingLogError,
    VersionConflictError,
)
from shared.push.posting_rules import (
    TRANSITIONS,
    AcceptOutcome,
    Attempt,
    AttemptOutcome,
    Change,
    InvalidTransitionError,
    Judgement,
    PostingEntry,
    PostingFault,
    StaleVersionError,
    as_int,
    attempt_of,
    check_app_id,
    check_date,
    check_kind,
    check_limit,
    check_state,
    check_tenant,
    check_version,
    entry_of,
    instant,
    stamp,
)
from shared.push.states import PostingState

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
    "Offered",
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
    "VersionConflictError",
]

_BATCH_GET_KEYS: Final = 100  # DynamoDB's BatchGetItem limit
_TRANSACTION_ACTIONS: Final = 100  # TransactWriteItems' limit
_TRANSACTION_HEADS: Final = _TRANSACTION_ACTIONS - 1  # the heads, and the summary
_RETRIES: Final = 3  # re-reads after a concurrent change
_CONFLICT_RETRIES: Final = 6  # transactions that lost a race on the summary counter
_STATES: Final = frozenset(state.value for state in PostingState)
_RECHECK_PENDING: Final = "recheck_pending"  # on the summary item: a recheck is queued, not started


# --- errors ------------------------------------------------------------------------------------


class DocumentNotFoundError(PostingLogError, LookupError):
    def __init__(self, tenant_id: str, kind: str, app_id: str) -> None:
        super().__init__(f"no {kind} {app_id} in the posting log")
        self.tenant_id = tenant_id
        self.kind = kind
        self.app_id = app_id


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
class Offered:
    """A version ``accept_many`` is offered: ``accept``'s arguments for one document."""

    kind: str
    app_id: str
    version: int
    document: Mapping[str, Any]
    txn_date: date | None
    judge: Callable[[], Judgement] | None = None
    normalise: rules.Normalise | None = None


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


# --- queries ----------------------------------------------------------------------------------


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


class _PostingTable:
    """The posting-log table (a boto3 ``Table`` resource of ``tables.POSTINGS``): keys, the reads
    and writes every part of the log shares, and the summary counters moved with each state change."""

    def __init__(self, table: Any, clock: Clock) -> None:
        self._table = table
        self._clock = clock

    @staticmethod
    def _key(tenant_id: str, kind: str, app_id: str) -> dict[str, str]:
        return {
            constants.PK: constants.tenant_pk(check_tenant(tenant_id)),
            constants.SK: constants.posting_doc_sk(check_kind(kind), check_app_id(app_id)),
        }

    @staticmethod
    def _summary_key(tenant_id: str) -> dict[str, str]:
        return {constants.PK: constants.tenant_pk(tenant_id), constants.SK: constants.POSTING_SUMMARY_SK}

    def _read(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        with _dynamodb("get"):
            item = self._table.get_item(Key=dict(key), ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def _read_many(self, keys: Sequence[Mapping[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The heads of ``keys`` (consistent BatchGetItem, 100 keys a call), by (pk, sk)."""
        client = self._table.meta.client
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            pending: dict[str, Any] = {
                self._table.name: {
                    "Keys": [dict(k) for k in keys[start : start + _BATCH_GET_KEYS]],
                    "ConsistentRead": True,
                }
            }
            while pending:
                with _dynamodb("get_many"):
                    answer = client.batch_get_item(RequestItems=pending)
                for item in answer.get("Responses", {}).get(self._table.name, []):
                    found[(str(item[constants.PK]), str(item[constants.SK]))] = dict(item)
                pending = answer.get("UnprocessedKeys") or {}
        return found

    def _commit(
        self,
        key: Mapping[str, str],
        change: Change,
        tenant_id: str,
        kind: str,
        *,
        move: tuple[PostingState | None, PostingState],
        operation: str,
        extra: Sequence[Mapping[str, Any]] = (),
        new: bool = False,
    ) -> None:
        """Apply ``change`` to the head (``new``: a head that does not exist yet, written whole);
        when the state changes, move the summary counters in the same transaction, and ``extra``
        actions with them.  Raises ``ConditionFailedError`` when a condition failed: index 0 is the
        head, then the summary (when the state moves), then ``extra`` in order."""
        source, target = move
        write = _update(change)
        if source is target and not extra:
            with _dynamodb(operation):
                self._table.update_item(**write.arguments(key))
            return
        head = write.put_action(self._table.name, key) if new else write.action(self._table.name, key)
        actions: list[Mapping[str, Any]] = [head]
        if source is not target:
            counters = rules.counter_change(tenant_id, self._clock.now())
            rules.count_move(counters, kind, source, target)
            actions.append(_update(counters).action(self._table.name, self._summary_key(tenant_id)))
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

    def _summary_update(self, tenant_id: str, write: ItemUpdate, operation: str) -> None:
        """One UpdateItem of the summary item, retried with backoff while it collides with a
        transaction moving the tenant's counters (DynamoDB refuses it as a conflict meanwhile)."""
        arguments = write.arguments(self._summary_key(check_tenant(tenant_id)))
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with _dynamodb(operation):
                    self._table.update_item(**arguments)
            except (_Conflict, PostingLogBusyError):
                time.sleep(min(0.02 * 2**attempt, 0.5))
                continue
            return
        raise PostingLogBusyError(f"{operation}: the tenant's summary is contended, retry")

    def _put_attempt(self, key: Mapping[str, str], attempt: Attempt) -> None:
        with _dynamodb("record_attempt"):
            self._table.put_item(**self._attempt_put(key, attempt)["Put"])

    def _attempt_put(self, key: Mapping[str, str], attempt: Attempt) -> dict[str, Any]:
        """The attempt's item as a Put action that never overwrites another attempt."""
        return {
            "Put": {
                "TableName": self._table.name,
                "Item": rules.attempt_item(key[constants.PK], attempt),
                "ConditionExpression": "attribute_not_exists(#sk)",
                "ExpressionAttributeNames": {"#sk": constants.SK},
            }
        }

    def _dated_page(
        self,
        tenant_id: str,
        index: str,
        index_key: tuple[str, str, str],
        dates: tuple[str, date | None, date | None],
        *,
        filters: ConditionBase | None = None,
        page_token: str | None = None,
        limit: int,
    ) -> PostingPage:
        """A page of one index's partition, its sort key within the dates (``(name, from, to)``:
        ``name`` names the parameters in a refusal, ``txn_from``...)."""
        partition_attribute, partition, sort_attribute = index_key
        name, start, end = dates
        condition = Key(partition_attribute).eq(partition)
        sort = _date_range(sort_attribute, check_date(start, f"{name}_from"), check_date(end, f"{name}_to"))
        return self._page(
            tenant_id,
            index,
            condition & sort if sort is not None else condition,
            index_key,
            filters=filters,
            page_token=page_token,
            limit=limit,
        )

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
        sort_prefix: str = constants.POSTING_DOC_PREFIX,
    ) -> PostingPage:
        partition_attribute, partition, sort_attribute = index_key
        tenant = constants.tenant_pk(tenant_id)
        request: dict[str, Any] = {"KeyConditionExpression": condition, "Limit": check_limit(limit)}
        if index:  # "" = the table itself
            request["IndexName"] = index
        if filters is not None:
            request["FilterExpression"] = filters
        if page_token is not None:
            checks: dict[str, Callable[[str], bool]] = {
                partition_attribute: partition.__eq__,
                sort_attribute: bool,
                constants.PK: tenant.__eq__,
                constants.SK: lambda sk: sk.startswith(sort_prefix),
            }
            request["ExclusiveStartKey"] = decode_page_token(page_token, checks)
        with _dynamodb("query"):
            answer = self._table.query(**request)
        last = answer.get("LastEvaluatedKey")
        return PostingPage(
            [entry_of(item) for item in answer.get("Items", [])],
            encode_page_token(last) if last else None,
        )


class _PostingQueries(_PostingTable):
    """The log's reads: heads, attempts, pages by state, transaction date or posting date, and the
    summary."""

    def get(self, tenant_id: str, kind: str, app_id: str) -> PostingEntry | None:
        item = self._read(self._key(tenant_id, kind, app_id))
        return entry_of(item) if item else None

    def get_many(
        self, tenant_id: str, wanted: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], PostingEntry]:
        """The heads of several (kind, app id) documents of one tenant (consistent BatchGetItem, 100
        keys a call); unknown documents are absent.  A push delivery reads its messages' documents,
        and a batch its documents' clients, this way."""
        keys = [self._key(tenant_id, kind, app_id) for kind, app_id in dict.fromkeys(wanted)]
        found: dict[tuple[str, str], PostingEntry] = {}
        for item in self._read_many(keys).values():
            entry = entry_of(item)
            found[(entry.kind, entry.app_id)] = entry
        return found

    def attempts(
        self, tenant_id: str, kind: str, app_id: str, *, version: int | None = None
    ) -> list[Attempt]:
        """Every attempt of the document (or of one version), oldest version first, then in order."""
        key = self._key(tenant_id, kind, app_id)
        prefix = key[constants.SK] + constants.POSTING_ATTEMPT_MARK
        if version is not None:
            prefix += f"{check_version(version):08d}#"
        request: dict[str, Any] = {
            "KeyConditionExpression": Key(constants.PK).eq(key[constants.PK])
            & Key(constants.SK).begins_with(prefix),
            "ConsistentRead": True,
        }
        found: list[Attempt] = []
        while True:
            with _dynamodb("attempts"):
                answer = self._table.query(**request)
            found.extend(attempt_of(item) for item in answer.get("Items", []))
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
        kinds: Collection[str] | None = None,
        page_token: str | None = None,
        limit: int = 100,
    ) -> PostingPage:
        """Documents in one state, by transaction date (undated ones first when no range is given),
        optionally of some kinds (a filter: a page may be short, even empty, with a next token)."""
        partition = constants.posting_state_pk(check_tenant(tenant_id), check_state(state).value)
        return self._dated_page(
            tenant_id,
            constants.POSTING_BY_STATE_INDEX,
            (constants.POSTING_BY_STATE_PK, partition, constants.POSTING_BY_STATE_SK),
            ("txn", txn_from, txn_to),
            filters=_filters(kinds, None),
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
        partition = constants.tenant_pk(check_tenant(tenant_id))
        return self._dated_page(
            tenant_id,
            constants.POSTING_BY_TXN_DATE_INDEX,
            (constants.POSTING_BY_TXN_DATE_PK, partition, constants.POSTING_BY_TXN_DATE_SK),
            ("txn", txn_from, txn_to),
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
        states: Collection[PostingState | str] | None = None,
        txn: tuple[date | None, date | None] = (None, None),
        page_token: str | None = None,
        limit: int = 100,
    ) -> PostingPage:
        """Documents by the UTC date their current QBO state was posted (inclusive range).

        Kinds, states and a transaction-date range ``txn`` (from, to) are a filter, as in
        ``query_by_txn_date``: a page may hold fewer than ``limit`` entries, even none, while
        ``next_token`` is still set.
        """
        partition = constants.tenant_pk(check_tenant(tenant_id))
        return self._dated_page(
            tenant_id,
            constants.POSTING_BY_POSTED_INDEX,
            (constants.POSTING_BY_POSTED_PK, partition, constants.POSTING_BY_POSTED_SK),
            ("posted", posted_from, posted_to),
            filters=_filters(kinds, states, _txn_filter(*txn)),
            page_token=page_token,
            limit=limit,
        )

    def query_by_kind(
        self, tenant_id: str, kind: str, *, page_token: str | None = None, limit: int = 100
    ) -> PostingPage:
        """Every document of one kind, dated or not, in app-id order: a Query of the tenant's
        partition of the table itself (``DOC#<kind>#...``).  The documents' attempts share that
        prefix and are filtered out, so they are read (and billed) too: a page may hold fewer than
        ``limit`` entries, even none, while ``next_token`` is still set."""
        tenant = constants.tenant_pk(check_tenant(tenant_id))
        prefix = constants.posting_doc_sk(check_kind(kind), "")
        return self._page(
            tenant_id,
            "",
            Key(constants.PK).eq(tenant) & Key(constants.SK).begins_with(prefix),
            (constants.PK, tenant, constants.SK),
            filters=Attr("state").exists(),
            page_token=page_token,
            limit=limit,
            sort_prefix=prefix,
        )

    def summary(self, tenant_id: str) -> PostingSummary:
        """Documents per kind and state: one read of the summary item."""
        with _dynamodb("summary"):
            item = self._table.get_item(
                Key=self._summary_key(check_tenant(tenant_id)), ConsistentRead=True
            ).get("Item")
        by_kind: dict[str, dict[PostingState, int]] = {}
        for attribute, value in (item or {}).items():
            kind, _, state = str(attribute).partition("#")
            if kind in constants.POSTING_KINDS and state in _STATES:
                by_kind.setdefault(kind, dict.fromkeys(PostingState, 0))[PostingState(state)] = as_int(value)
        pending = instant((item or {}).get(_RECHECK_PENDING))
        return PostingSummary(tenant_id=tenant_id, by_kind=by_kind, recheck_pending=pending)


class _PostingBatches(_PostingTable):
    """The writes of several documents, a transaction for many of them: a bulk request's versions
    (``accept_many``), a QBO batch request's documents going ``in_flight`` together
    (``transition_many``) and ``posted`` together (``post_many``)."""

    accept: Callable[..., AcceptOutcome]  # PostingLog's: a document ``accept_many`` redoes alone

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
        target = check_state(to_state)
        if not seen:
            return []
        tenants = {entry.tenant_id for entry in seen}
        if len(tenants) != 1 or len(seen) > _TRANSACTION_HEADS:
            raise InvalidPostingRequestError(f"one tenant and at most {_TRANSACTION_HEADS} documents at once")
        [tenant_id] = tenants
        now = self._clock.now()
        counters = rules.counter_change(tenant_id, now)
        actions: list[Mapping[str, Any]] = []
        after: list[PostingEntry] = []
        for entry in seen:
            if target not in TRANSITIONS[entry.state]:
                raise InvalidTransitionError(entry.state, target)
            change = rules.start_change(
                entry, target, (request_ids or {}).get((entry.kind, entry.app_id)), now
            )
            key = self._key(tenant_id, entry.kind, entry.app_id)
            actions.append(_update(change).action(self._table.name, key))
            after.append(entry_of(change.apply(rules.item_of(entry))))
            if entry.state is not target:
                rules.count_move(counters, entry.kind, entry.state, target)
        actions.append(_update(counters).action(self._table.name, self._summary_key(tenant_id)))
        try:
            self._transact(actions, "transition_many")
        except ConditionFailedError:
            raise ConcurrentChangeError("a document changed since it was read; nothing was moved") from None
        return after

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
        counters = rules.counter_change(tenant_id, self._clock.now())
        actions: list[Mapping[str, Any]] = []
        after: list[PostingEntry] = []
        for posting in postings:
            entry = posting.entry
            key = self._key(tenant_id, entry.kind, entry.app_id)
            change, recorded = self._posting_change(posting)
            actions.append(_update(change).action(self._table.name, key))
            actions.extend([self._attempt_put(key, recorded)] if recorded is not None else [])
            actions.extend(posting.along)
            after.append(entry_of(change.apply(rules.item_of(entry))))
            rules.count_move(counters, entry.kind, entry.state, PostingState.POSTED)
        actions.extend(along)
        actions.append(_update(counters).action(self._table.name, self._summary_key(tenant_id)))
        try:
            self._transact(actions, "post_many")
        except ConditionFailedError:
            raise ConcurrentChangeError(
                "a document or a companion write changed; nothing was posted"
            ) from None
        return after

    def accept_many(
        self, tenant_id: str, offered: Sequence[Offered]
    ) -> list[AcceptOutcome | VersionConflictError]:
        """Several documents of one tenant (a bulk request), each decided as ``accept`` decides, in
        the order given (``judge`` called for the newer versions only, in that order): the heads
        read with one BatchGetItem per 100, and the newer versions written ``_TRANSACTION_HEADS``
        to a transaction with one summary update for all of them, instead of a read and a
        transaction each.  A transaction that loses a race (a worker moved one of its documents
        since the read) is redone document by document with ``accept``.  A document whose version
        is stored with another body comes back as its ``VersionConflictError``; nothing of it is
        written.  Answers in the order given."""
        check_tenant(tenant_id)
        keys = [self._key(tenant_id, o.kind, o.app_id) for o in offered]
        if len({(k[constants.PK], k[constants.SK]) for k in keys}) != len(keys):
            raise InvalidPostingRequestError("accept_many takes each document once")
        heads = self._read_many(keys)
        answers: list[AcceptOutcome | VersionConflictError] = []
        pending: list[tuple[int, Change, Judgement, PostingState | None]] = []
        now = self._clock.now()
        for index, (one, key) in enumerate(zip(offered, keys, strict=True)):
            current = heads.get((key[constants.PK], key[constants.SK]))
            answer, decided = self._decide(tenant_id, one, current, now)
            answers.append(answer)
            if decided is not None:
                pending.append((index, *decided))
        for start in range(0, len(pending), _TRANSACTION_HEADS):
            chunk = pending[start : start + _TRANSACTION_HEADS]
            try:
                self._accept_chunk(tenant_id, [(offered[i], keys[i], c, j[0], p) for i, c, j, p in chunk])
            except ConditionFailedError:
                for index, _, judged, _ in chunk:  # decided again on what the race wrote
                    answers[index] = self._accept_alone(tenant_id, offered[index], judged)
        return answers

    @staticmethod
    def _decide(
        tenant_id: str, one: Offered, current: Mapping[str, Any] | None, now: datetime
    ) -> tuple[AcceptOutcome | VersionConflictError, tuple[Change, Judgement, PostingState | None] | None]:
        """``accept_many``'s decision for one document on its head: its answer, and for a newer
        version the head's change, the judgement and the state it leaves."""
        check_version(one.version)
        check_date(one.txn_date, "txn_date")
        body = rules.encode_document(one.document)
        new = rules.NewVersion(tenant_id, one.kind, one.app_id, one.version, body, one.txn_date)
        try:
            ignored = rules.ignored(current, new, one.normalise)
        except VersionConflictError as conflict:
            return conflict, None
        if ignored is not None:
            return ignored, None
        judged = rules.landing(one.judge() if one.judge is not None else (PostingState.RECEIVED, ()))
        previous = PostingState(current["state"]) if current is not None else None
        change = rules.accept_change(current, new, judged, now)
        return rules.accepted(current, one.version, judged), (change, judged, previous)

    def _accept_alone(
        self, tenant_id: str, one: Offered, judged: Judgement
    ) -> AcceptOutcome | VersionConflictError:
        try:
            return self.accept(
                tenant_id,
                one.kind,
                one.app_id,
                one.version,
                one.document,
                one.txn_date,
                judge=lambda: judged,
                normalise=one.normalise,
            )
        except VersionConflictError as conflict:
            return conflict

    def _accept_chunk(
        self,
        tenant_id: str,
        chunk: Sequence[tuple[Offered, Mapping[str, str], Change, PostingState, PostingState | None]],
    ) -> None:
        counters = rules.counter_change(tenant_id, self._clock.now())
        actions: list[Mapping[str, Any]] = []
        for one, key, change, target, previous in chunk:
            write = _update(change)
            fresh = previous is None
            actions.append(
                write.put_action(self._table.name, key) if fresh else write.action(self._table.name, key)
            )
            if previous is not target:
                rules.count_move(counters, one.kind, previous, target)
        actions.append(_update(counters).action(self._table.name, self._summary_key(tenant_id)))
        self._transact(actions, "accept_many")

    def _posting_change(self, posting: Posting) -> tuple[Change, Attempt | None]:
        """The head's change for one of ``post_many``'s postings, decided on its entry in hand."""
        entry = posting.entry
        if PostingState.POSTED not in TRANSITIONS[entry.state]:
            raise InvalidTransitionError(entry.state, PostingState.POSTED)
        if posting.attempt.version != entry.version:
            raise InvalidPostingRequestError("the attempt must be of the version that moves")
        move = rules.Move(
            PostingState.POSTED,
            qbo_id=posting.qbo_id,
            sync_token=posting.sync_token,
            attempt=posting.attempt,
            notes=posting.notes,
        )
        return rules.move_change(rules.item_of(entry), move, self._clock.now(), from_seen=True)


class PostingLog(_PostingQueries, _PostingBatches):
    """Data access for the posting-log table (a boto3 ``Table`` resource of ``tables.POSTINGS``): the
    reads and batch writes it inherits, one document's writes (``accept``, ``transition``,
    ``record_attempt``, ``add_note``) and the recheck marker."""

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
        normalise: rules.Normalise | None = None,
    ) -> AcceptOutcome:
        """Store a version of a document if it is newer than the stored one.

        An older or equal version is ``ignored`` (nothing written, ``judge`` not called), unless
        the stored version is this one with another body: then ``VersionConflictError``, nothing
        written.  The bodies are compared on the head already read (no other read): keys sorted,
        the stored one first passed through ``normalise`` when given (how a document stored by an
        older model reads today).  A newer
        version of a posted document keeps its ``qbo_id`` and ``sync_token``: it updates the QBO
        document in place.  ``txn_date`` is None only for documents without one (clients, sites).

        The version lands in ``received``, or, with ``judge``, directly in the state it decides
        (``queued``, ``needs_attention`` with reasons, ``skipped``, ...: one of
        ``TRANSITIONS[received]``), in the same write: one transaction per upsert instead of an
        accept and a transition.  ``judge`` is called once the version is known to be newer.
        """
        key = self._key(tenant_id, kind, app_id)
        check_version(version)
        check_date(txn_date, "txn_date")
        new = rules.NewVersion(tenant_id, kind, app_id, version, rules.encode_document(document), txn_date)
        judged: Judgement | None = None
        for _ in range(_RETRIES):
            current = self._read(key)
            ignored = rules.ignored(current, new, normalise)
            if ignored is not None:
                return ignored
            if judged is None:
                judged = rules.landing(judge() if judge is not None else (PostingState.RECEIVED, ()))
            change = rules.accept_change(current, new, judged, self._clock.now())
            previous = PostingState(current["state"]) if current is not None else None
            try:
                self._commit(
                    key,
                    change,
                    tenant_id,
                    kind,
                    move=(previous, judged[0]),
                    operation="accept",
                    new=current is None,
                )
            except ConditionFailedError:
                continue  # another writer got there first: decide again on what it wrote
            return rules.accepted(current, version, judged)
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
        check_version(expected_version)
        move = rules.Move(
            check_state(to_state), reasons, qbo_id, sync_token, request_id, error, attempt, notes
        )
        if attempt is not None and attempt.version != expected_version:
            raise InvalidPostingRequestError("the attempt must be of the version that moves")
        same = seen is not None and rules.same_document(seen, tenant_id, kind, app_id)
        current = rules.item_of(seen) if seen is not None and same else None
        return self._move(
            key,
            (tenant_id, kind, app_id),
            move,
            expected_version=expected_version,
            current=current,
            along=along,
        )

    def advance(self, entry: PostingEntry, to_state: PostingState | str, **changes: Any) -> PostingEntry:
        """``transition`` of ``entry`` as the caller last had it: its version, and no read unless it
        changed meanwhile."""
        return self.transition(
            entry.tenant_id,
            entry.kind,
            entry.app_id,
            expected_version=entry.version,
            to_state=to_state,
            seen=entry,
            **changes,
        )

    def _move(
        self,
        key: Mapping[str, str],
        document: tuple[str, str, str],
        move: rules.Move,
        *,
        expected_version: int,
        current: dict[str, Any] | None,
        along: Sequence[Mapping[str, Any]],
    ) -> PostingEntry:
        """``transition`` of the head ``current`` (the entry the caller saw) or, None, of the head
        as read.  What was seen may be out of date: then the head is read and the move decided again."""
        tenant_id, kind, app_id = document
        from_seen = current is not None
        for _ in range(_RETRIES + from_seen):  # what was seen may be out of date: one more round
            if current is None:
                current, from_seen = self._read(key), False
            if current is None:
                raise DocumentNotFoundError(tenant_id, kind, app_id)
            refused = rules.refusal(current, expected_version, move)
            if from_seen and isinstance(refused, StaleVersionError | InvalidTransitionError):
                current = None  # what the caller saw is out of date: decide on the stored head
                continue
            if isinstance(refused, StaleVersionError):
                raise self._stale(key, refused, move) from None
            if refused is not None:
                raise refused
            change, recorded = rules.move_change(current, move, self._clock.now(), from_seen=from_seen)
            try:
                moved = (PostingState(current["state"]), move.target)
                self._commit_move(key, document, change, move=moved, recorded=recorded, along=along)
            except ConditionFailedError:
                current = None  # the head (or the attempt's number) changed: read and decide again
                continue
            return entry_of(change.apply(current))
        raise PostingLogBusyError(f"transition: {kind} {app_id} keeps changing, retry")

    def _commit_move(
        self,
        key: Mapping[str, str],
        document: tuple[str, str, str],
        change: Change,
        *,
        move: tuple[PostingState, PostingState],
        recorded: Attempt | None,
        along: Sequence[Mapping[str, Any]],
    ) -> None:
        """A transition's write: the head, the summary (when the state moves), the attempt and
        ``along``.  ``CompanionRefusedError`` when only conditions of ``along`` failed."""
        tenant_id, kind, _ = document
        extra: list[Mapping[str, Any]] = [self._attempt_put(key, recorded)] if recorded is not None else []
        ours = 1 + (move[0] is not move[1]) + len(extra)  # head, summary, attempt: then ``along``
        try:
            self._commit(
                key, change, tenant_id, kind, move=move, operation="transition", extra=[*extra, *along]
            )
        except ConditionFailedError as failed:
            theirs = {i - ours: item for i, item in failed.failed.items() if i >= ours}
            if theirs and all(i >= ours for i in failed.failed):
                raise CompanionRefusedError(theirs) from None
            raise

    def _stale(self, key: Mapping[str, str], stale: StaleVersionError, move: rules.Move) -> StaleVersionError:
        """The refusal of a stale version's move, once its news is kept for the newer version."""
        carried = stale.current_version > stale.expected_version and self._carry_over(
            key, stale.expected_version, move
        )
        return StaleVersionError(stale.expected_version, stale.current_version, carried_over=carried)

    def _carry_over(self, key: Mapping[str, str], stale_version: int, move: rules.Move) -> bool:
        """Keep a stale worker's news for the newer version: its QBO id, or that it may exist."""
        change = rules.carry_over_change(stale_version, move.target, move.qbo_id, move.sync_token)
        if change is None:
            return False
        try:
            with _dynamodb("transition"):
                self._table.update_item(**_update(change).arguments(key))
        except ConditionFailedError:
            return False
        return True

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
        check_version(version)
        try:
            result = AttemptOutcome(outcome)
        except ValueError:
            raise InvalidPostingRequestError(f"unknown attempt outcome {outcome!r}") from None
        fault = rules.with_tid(fault, intuit_tid)
        number = self._count_attempt(key, (tenant_id, kind, app_id), version, fault, request_id)
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
        return self._append_attempt(key, attempt, counted=number is not None)

    def _count_attempt(
        self,
        key: Mapping[str, str],
        document: tuple[str, str, str],
        version: int,
        fault: PostingFault | None,
        request_id: str | None,
    ) -> int | None:
        """The head counts an attempt of ``version``: the attempt's number, or None when the head
        holds a newer version (the attempt is then numbered among its own version's)."""
        update = _update(rules.attempt_change(version, fault, request_id, self._clock.now()))
        try:
            with _dynamodb("record_attempt"):
                answer = self._table.update_item(
                    **update.arguments(key),
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ConditionFailedError as failed:
            head = failed.failed.get(0)
            if head is None:
                raise DocumentNotFoundError(*document) from None
            if as_int(head["version"]) < version:
                raise StaleVersionError(version, as_int(head["version"])) from None
            return None
        return as_int(answer["Attributes"]["attempts"])

    def _append_attempt(self, key: Mapping[str, str], attempt: Attempt, *, counted: bool) -> Attempt:
        """Write the attempt's item; one of an older version (not ``counted``) takes the number after
        its version's last, counted again when another took it meanwhile."""
        for _ in range(_RETRIES):
            if not counted:  # an older version: continue its numbering
                previous = self.attempts(
                    attempt.tenant_id, attempt.kind, attempt.app_id, version=attempt.version
                )
                attempt = attempt.model_copy(update={"number": previous[-1].number + 1 if previous else 1})
            try:
                self._put_attempt(key, attempt)
            except ConditionFailedError:
                counted = False  # the number is taken: count again
                continue
            return attempt
        raise PostingLogBusyError(f"record_attempt: {attempt.kind} {attempt.app_id} keeps changing, retry")

    def add_note(self, tenant_id: str, kind: str, app_id: str, note: Reason) -> bool:
        """Add ``note`` to a document's head whatever its state (one write); False when the log has
        no such document.  What the change worker learns of a document QBO changed by itself."""
        key = self._key(tenant_id, kind, app_id)
        update = ItemUpdate().set("updated_at", stamp(self._clock.now()))
        notes = update.name("notes")
        added = update.value(rules.reason_maps([note]))
        appended = f"list_append(if_not_exists({notes}, {update.value([])}), {added})"
        update.set_expression("notes", appended).when(f"attribute_exists({update.name(constants.PK)})")
        try:
            with _dynamodb("add_note"):
                self._table.update_item(**update.arguments(key))
        except ConditionFailedError:
            return False
        return True

    def mark_recheck(self, tenant_id: str, *, at: datetime, stale_before: datetime) -> datetime | None:
        """Note on the tenant's summary that a recheck of its waiting documents is queued: set when
        no marker is there, or when the one there is older than ``stale_before`` (its message was
        lost, or waits behind a long backlog).  Returns the marker set (``at``), or None when a fresh
        one is already there: a recheck is queued that has not started, and it will see whatever
        the caller changed before calling."""
        write = ItemUpdate().set("tenant_id", tenant_id).set(_RECHECK_PENDING, stamp(at))
        name = write.name(_RECHECK_PENDING)
        write.when(f"attribute_not_exists({name}) OR {name} < {write.value(stamp(stale_before))}")
        try:
            self._summary_update(tenant_id, write, "mark_recheck")
        except ConditionFailedError:
            return None
        return at

    def clear_recheck(self, tenant_id: str, marked: datetime | None = None) -> None:
        """Remove the marker: a recheck starts (any marker goes, so the next change queues another), or
        the one ``marked`` by a caller whose message never reached the queue (only that one)."""
        write = ItemUpdate().remove(_RECHECK_PENDING)
        if marked is not None:
            write.when(f"{write.name(_RECHECK_PENDING)} = {write.value(stamp(marked))}")
        try:
            self._summary_update(tenant_id, write, "clear_recheck")
        except ConditionFailedError:
            return  # another caller's marker now: theirs to keep


def _txn_filter(start: date | None, end: date | None) -> ConditionBase | None:
    """The documents whose transaction date is in the range (inclusive), as a filter."""
    check_date(start, "txn_from")
    check_date(end, "txn_to")
    if start is not None and end is not None and start > end:
        raise InvalidPostingRequestError("the range starts after it ends")
    if start is not None and end is not None:
        return Attr("txn_date").between(start.isoformat(), end.isoformat())
    if start is not None:
        return Attr("txn_date").gte(start.isoformat())
    if end is not None:
        return Attr("txn_date").lte(end.isoformat())
    return None


def _filters(
    kinds: Collection[str] | None,
    states: Collection[PostingState | str] | None,
    *more: ConditionBase | None,
) -> ConditionBase | None:
    conditions: list[ConditionBase] = [c for c in more if c is not None]
    if kinds:
        conditions.append(Attr("kind").is_in([check_kind(k) for k in dict.fromkeys(kinds)]))
    if states:
        conditions.append(Attr("state").is_in([check_state(s).value for s in dict.fromkeys(states)]))
    if not conditions:
        return None
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = combined & condition
    return combined


def _update(change: Change) -> ItemUpdate:
    """A change decided by the rules as one UpdateExpression with its conditions."""
    update = ItemUpdate()
    for attribute, value in change.sets.items():
        update.set(attribute, value)
    update.remove(*change.removes)
    for attribute, amount in change.adds.items():
        update.add(attribute, amount)
    for expect in change.expects:
        name = update.name(expect.attribute)
        if expect.relation == "absent":
            update.when(f"attribute_not_exists({name})")
        else:
            update.when(f"{name} {expect.relation} {update.value(expect.value)}")
    return update
