"""The one way QBO Link calls the QBO Accounting API v3 for a realm.

What it absorbs (Intuit's pages: request ids https://developer.intuit.com/app/developer/qbo/docs/learn/learn-basic-field-definitions#request-id,
minor versions https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/minor-versions,
queries https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries,
CDC https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/change-data-capture,
errors https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes,
limits https://developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles;
a requestid QBO did not honour: https://github.com/intuit/QuickBooks-V3-DotNET-SDK/issues/352):

* Idempotent writes: every write carries ``requestid`` = :func:`request_id` of the caller's
  idempotency key, identical on every retry, so a retry after a lost answer gets QBO's original
  answer instead of a second document.  No write is ever sent without one.
* Retries with jittered exponential backoff for 429, 5xx and lost answers; validation faults are
  final.  A 401 asks the :class:`TokenProvider` for a fresh token once and repeats the request.
* Every attempt passes the realm's :class:`Governor` (when given), so all workers of a realm share
  Intuit's budgets.
* JSON with money as ``Decimal`` both ways; ``minorversion`` on every request; ``intuit_tid`` kept
  from every answer.  No read after a write: QBO's write answer carries the entity.
* Query paging (STARTPOSITION until a short page), batch splitting at 30 operations, CDC window
  splitting at its 1,000-object cap and the query fallback beyond its 30-day look-back.

Logs name the method, the path template, status, fault code, ``intuit_tid`` and attempt; never a
body or a token.  Every HTTP exchange is also reported to an optional ``observer`` (a
:class:`QboCall`: operation, status, latency, throttled or not), which the wiring points at the
function's metrics; the client itself knows nothing of metrics.

The operations are :class:`QboClient`'s; the wire under them (token, governor, retries, JSON,
logs, observer) is :class:`shared.qbo.transport.QboTransport`'s.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Unpack
from urllib.parse import quote

from shared.kernel.clock import Clock, SystemClock
from shared.qbo.errors import (
    AuthenticationError,
    AuthorizationError,
    CdcOverflowError,
    QboError,
    error_from_fault,
)
from shared.qbo.transport import (
    DEFAULT_MINOR_VERSION,
    OPERATIONS,
    Governor,
    QboCall,
    QboTransport,
    TokenProvider,
    TransportOptions,
    decode_json,
    encode_json,
)

# With the transport's names callers have always imported from here (shared.qbo.transport).
__all__ = [
    "BATCH_MAX_ITEMS",
    "CDC_LOOKBACK",
    "CDC_LOOKBACK_MARGIN",
    "CDC_MAX_OBJECTS",
    "CDC_MIN_WINDOW",
    "DEFAULT_MINOR_VERSION",
    "NAME_LIST_ENTITIES",
    "OPERATIONS",
    "QUERY_MAX_PAGE",
    "BatchOperation",
    "BatchResult",
    "Governor",
    "QboCall",
    "QboClient",
    "TokenProvider",
    "decode_json",
    "encode_json",
    "request_id",
]

BATCH_MAX_ITEMS = 30  # Intuit's recommended (and enforced) maximum per BatchItemRequest
QUERY_MAX_PAGE = 1000
CDC_MAX_OBJECTS = 1000
CDC_LOOKBACK = timedelta(days=30)
# Clocks differ and a request takes time: a changedSince this close to the 30-day edge goes to the
# query fallback rather than risk QBO's refusal.
CDC_LOOKBACK_MARGIN = timedelta(minutes=10)
# MetaData timestamps have one-second resolution: a shorter CDC window cannot be told apart.
CDC_MIN_WINDOW = timedelta(seconds=1)

# Name-list entities are deactivated, never deleted, and queries return only active ones unless
# the WHERE clause mentions Active.
NAME_LIST_ENTITIES = frozenset(
    {"Customer", "Vendor", "Employee", "Item", "Account", "Class", "Department", "Term", "PaymentMethod"}
)
# Payment-like documents are voided by an update that includes "void"; the rest by operation=void.
_VOID_BY_UPDATE = frozenset({"payment", "salesreceipt", "billpayment"})

_ENTITY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_PAGING_CLAUSE = re.compile(r"\b(STARTPOSITION|MAXRESULTS)\b", re.IGNORECASE)
_REQUESTID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:qbo-link:requestid")


def request_id(realm_id: str, scope: str, idempotency_key: str) -> str:
    """QBO's ``requestid`` for a write: a UUID (36 characters, within both the 50-character limit
    and batch's 36) derived from realm, scope (entity + operation, or batch chunk) and the caller's
    idempotency key, so the same logical write always sends the same id and different writes never
    share one even if a caller reuses a key."""
    if not idempotency_key:
        raise ValueError("an idempotency key is required for every write")
    return str(uuid.uuid5(_REQUESTID_NAMESPACE, f"{realm_id}\n{scope}\n{idempotency_key}"))


# --- batch ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOperation:
    """One item of a batch request; build it with the class methods."""

    operation: str  # create | update | delete | void | query
    entity: str = ""
    body: Mapping[str, Any] = field(default_factory=dict)
    statement: str = ""

    def __post_init__(self) -> None:
        if self.operation == "query":
            if not self.statement.strip():
                raise ValueError("a batch query needs a statement")
        elif self.operation in ("create", "update", "delete", "void"):
            _check_entity(self.entity)
        else:
            raise ValueError(f"unsupported batch operation: {self.operation}")

    @classmethod
    def create(cls, entity: str, body: Mapping[str, Any]) -> BatchOperation:
        return cls("create", entity, dict(body))

    @classmethod
    def update(cls, entity: str, body: Mapping[str, Any], *, sparse: bool = True) -> BatchOperation:
        _check_update_body(body)
        return cls("update", entity, {**body, "sparse": sparse})

    @classmethod
    def delete(cls, entity: str, entity_id: str, sync_token: str) -> BatchOperation:
        return cls("delete", entity, {"Id": entity_id, "SyncToken": sync_token})

    @classmethod
    def void(cls, entity: str, entity_id: str, sync_token: str) -> BatchOperation:
        return cls("void", entity, {"Id": entity_id, "SyncToken": sync_token})

    @classmethod
    def query(cls, statement: str) -> BatchOperation:
        return cls("query", statement=statement)

    @property
    def is_write(self) -> bool:
        return self.operation != "query"

    def item(self, bid: str) -> dict[str, Any]:
        if self.operation == "query":
            return {"bId": bid, "Query": self.statement}
        return {"bId": bid, "operation": self.operation, self.entity: dict(self.body)}


@dataclass(frozen=True)
class BatchResult:
    """The answer to one :class:`BatchOperation`: the entity, the query rows, or a typed error."""

    operation: BatchOperation
    entity: dict[str, Any] | None = None
    rows: list[dict[str, Any]] | None = None
    error: QboError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# --- the client -----------------------------------------------------------------------------------


class QboClient:
    """QBO Accounting API v3 for one realm.  Thread-safe when its ``http`` client is (httpx2's is).

    ``base_url`` is the API root including ``/v3`` (e.g. ``https://quickbooks.api.intuit.com/v3``).
    Backoff: 5xx and lost answers wait ``backoff_base`` × 2^(n-1) seconds (equal jitter); a 429
    waits its Retry-After when QBO sends one, else ``throttle_wait`` × 2^(n-1) (Intuit says 60 s)
    plus up to 25 % — never less; every wait is capped at ``max_backoff``.
    """

    def __init__(
        self,
        realm_id: str,
        base_url: str,
        tokens: TokenProvider,
        *,
        clock: Clock | None = None,
        **options: Unpack[TransportOptions],
    ) -> None:
        if not realm_id or not realm_id.isalnum():
            raise ValueError("realm_id must be QBO's company id")
        self.realm_id = realm_id
        self._transport = QboTransport(realm_id, base_url, tokens, **options)
        self._clock: Clock = clock or SystemClock()

    @property
    def last_intuit_tid(self) -> str | None:
        """The ``intuit_tid`` of the last answer QBO gave this client (any thread's)."""
        return self._transport.last_intuit_tid

    # The transport's settings, read and set through the client (a test sets ``max_attempts = 1``).

    @property
    def minor_version(self) -> int:
        return self._transport.minor_version

    @minor_version.setter
    def minor_version(self, value: int) -> None:
        self._transport.minor_version = value

    @property
    def max_attempts(self) -> int:
        return self._transport.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self._transport.max_attempts = value

    @property
    def backoff_base(self) -> float:
        return self._transport.backoff_base

    @backoff_base.setter
    def backoff_base(self, value: float) -> None:
        self._transport.backoff_base = value

    @property
    def throttle_wait(self) -> float:
        return self._transport.throttle_wait

    @throttle_wait.setter
    def throttle_wait(self, value: float) -> None:
        self._transport.throttle_wait = value

    @property
    def max_backoff(self) -> float:
        return self._transport.max_backoff

    @max_backoff.setter
    def max_backoff(self, value: float) -> None:
        self._transport.max_backoff = value

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> QboClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- entities -------------------------------------------------------------------------------

    def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        path = _entity_path(entity)
        data = self._transport.exchange(
            "GET", f"{path}/{quote(str(entity_id), safe='')}", template="/{entity}/{id}"
        )[0]
        return _entity_of(data, entity)

    def create(self, entity: str, body: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        path = _entity_path(entity)
        if body.get("Id"):
            raise ValueError("a create must not carry an Id; use update")
        data = self._write(path, dict(body), scope=f"{path}:create", key=idempotency_key)
        return _entity_of(data, entity)

    def update(
        self, entity: str, body: Mapping[str, Any], *, idempotency_key: str, sparse: bool = True
    ) -> dict[str, Any]:
        """Update with the body's Id and SyncToken; sparse by default (a full update clears every
        writable field it leaves out)."""
        path = _entity_path(entity)
        _check_update_body(body)
        payload = {**body, "sparse": sparse}
        data = self._write(
            path, payload, scope=f"{path}:update", key=idempotency_key, params={"operation": "update"}
        )
        return _entity_of(data, entity)

    def delete(self, entity: str, entity_id: str, sync_token: str, *, idempotency_key: str) -> dict[str, Any]:
        """Hard-delete a transaction; answers ``{"Id", "status": "Deleted", "domain"}``."""
        path = _entity_path(entity)
        body = {"Id": str(entity_id), "SyncToken": str(sync_token)}
        data = self._write(
            path, body, scope=f"{path}:delete", key=idempotency_key, params={"operation": "delete"}
        )
        return _entity_of(data, entity)

    def void(self, entity: str, entity_id: str, sync_token: str, *, idempotency_key: str) -> dict[str, Any]:
        path = _entity_path(entity)
        body: dict[str, Any] = {"Id": str(entity_id), "SyncToken": str(sync_token)}
        if path in _VOID_BY_UPDATE:
            params = {"operation": "update", "include": "void"}
            body["sparse"] = True
        else:
            params = {"operation": "void"}
        data = self._write(path, body, scope=f"{path}:void", key=idempotency_key, params=params)
        return _entity_of(data, entity)

    def company_info(self) -> dict[str, Any]:
        data = self._transport.exchange(
            "GET", f"companyinfo/{self.realm_id}", template="/companyinfo/{realm}"
        )[0]
        return _entity_of(data, "CompanyInfo")

    def preferences(self) -> dict[str, Any]:
        return _entity_of(
            self._transport.exchange("GET", "preferences", template="/preferences")[0], "Preferences"
        )

    # --- queries --------------------------------------------------------------------------------

    def query(self, statement: str) -> list[dict[str, Any]]:
        """One page of a SELECT (QBO's default page is 100 rows; say MAXRESULTS for more)."""
        data, tid = self._transport.exchange("GET", "query", template="/query", params={"query": statement})
        response = data.get("QueryResponse")
        if not isinstance(response, dict):
            raise QboError("the answer has no QueryResponse", status=200, intuit_tid=tid)
        return _rows_of(response)

    def query_all(
        self, select_without_paging: str, page_size: int = QUERY_MAX_PAGE
    ) -> Iterator[dict[str, Any]]:
        """Every row of a SELECT, page by page (STARTPOSITION is 1-based).  A page shorter than
        ``page_size`` ends it: QBO's own ``maxResults`` has been seen to disagree with the page.
        Add an ORDERBY for a stable order across pages."""
        if _PAGING_CLAUSE.search(select_without_paging):
            raise ValueError("query_all adds STARTPOSITION and MAXRESULTS itself")
        if not 1 <= page_size <= QUERY_MAX_PAGE:
            raise ValueError(f"page_size must be 1 to {QUERY_MAX_PAGE}")
        start = 1
        while True:
            rows = self.query(f"{select_without_paging} STARTPOSITION {start} MAXRESULTS {page_size}")
            yield from rows
            if len(rows) < page_size:
                return
            start += page_size

    # --- batch ----------------------------------------------------------------------------------

    def batch(self, operations: Sequence[BatchOperation], *, idempotency_key: str) -> list[BatchResult]:
        """Run ``operations`` in requests of at most 30, in order; one result per operation.

        Each chunk has its own requestid (derived from the key and the chunk's position), so a
        repeat of the same call replays the chunks QBO already did.  A chunk QBO refuses as a whole
        gives its error to each of its operations and the next chunks still run; an authentication
        or authorisation failure raises, since no later chunk could succeed.
        """
        items = list(operations)
        results: list[BatchResult] = []
        for chunk_no, start in enumerate(range(0, len(items), BATCH_MAX_ITEMS)):
            chunk = items[start : start + BATCH_MAX_ITEMS]
            rid = request_id(self.realm_id, f"batch:{chunk_no}", idempotency_key)
            body = {"BatchItemRequest": [op.item(str(i + 1)) for i, op in enumerate(chunk)]}
            try:
                data, tid = self._transport.exchange(
                    "POST",
                    "batch",
                    template="/batch",
                    params={"requestid": rid},
                    body=body,
                    write=any(op.is_write for op in chunk),
                    batch=True,
                )
            except (AuthenticationError, AuthorizationError):
                raise
            except QboError as error:
                results.extend(BatchResult(op, error=error) for op in chunk)
                continue
            results.extend(_batch_results(chunk, data, tid))
        return results

    # --- change data capture --------------------------------------------------------------------

    def cdc(
        self, entities: Sequence[str], changed_since: datetime, *, now: datetime | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """The latest state of every object of ``entities`` changed since ``changed_since``.

        Within 30 days: CDC, halving the window while an answer holds the 1,000-object cap.  This
        relies on QBO keeping the oldest changes when it truncates (the sandbox's documented choice;
        Intuit does not say).  Older: a ``MetaData.LastUpdatedTime`` query per entity (name lists
        with ``Active IN (true,false)``), which cannot report hard-deleted transactions.  Either
        way each object appears once, in its latest state, oldest change first.
        """
        names = [_check_entity(name) for name in entities]
        if not names:
            raise ValueError("name at least one entity")
        if changed_since.tzinfo is None:
            raise ValueError("changed_since must carry a time zone")
        current = now or self._clock.now()
        found: list[tuple[str, dict[str, Any]]]
        if current - changed_since > CDC_LOOKBACK - CDC_LOOKBACK_MARGIN:
            found = self._changes_by_query(names, changed_since)
        else:
            cache: dict[datetime, list[tuple[str, dict[str, Any]]]] = {}
            found = self._cdc_window(names, _floor_second(changed_since), None, current, cache)
        return _latest_by_id(names, found)

    def _cdc_call(self, names: list[str], since: datetime) -> list[tuple[str, dict[str, Any]]]:
        data = self._transport.exchange(
            "GET",
            "cdc",
            template="/cdc",
            params={"entities": ",".join(names), "changedSince": _qbo_datetime(since)},
        )[0]
        found: list[tuple[str, dict[str, Any]]] = []
        for block in data.get("CDCResponse") or []:
            for response in (block or {}).get("QueryResponse") or []:
                for key, value in (response or {}).items():
                    if isinstance(value, list):
                        found.extend((key, row) for row in value if isinstance(row, dict))
        return found

    def _cdc_window(
        self,
        names: list[str],
        low: datetime,
        high: datetime | None,
        now: datetime,
        cache: dict[datetime, list[tuple[str, dict[str, Any]]]],
    ) -> list[tuple[str, dict[str, Any]]]:
        """Objects last changed in (low, high] (high None: up to now), complete."""
        if low not in cache:
            cache[low] = self._cdc_call(names, low)
        found = cache[low]

        def upto(limit: datetime | None) -> list[tuple[str, dict[str, Any]]]:
            if limit is None:
                return list(found)
            # Unknown timestamps are kept: a duplicate is removed later, a loss could not be.
            return [pair for pair in found if (_updated(pair[1]) or limit) <= limit]

        if len(found) < CDC_MAX_OBJECTS:
            return upto(high)
        stamps = [stamp for stamp in (_updated(row) for _, row in found) if stamp is not None]
        newest = max(stamps) if stamps else None
        if high is not None and newest is not None and newest > high:
            # The cap cut after ``high``: everything changed up to ``high`` is in this answer.
            return upto(high)
        end = high or now
        if end - low <= CDC_MIN_WINDOW:
            raise CdcOverflowError(
                f"more than {CDC_MAX_OBJECTS} changes within one second since {_qbo_datetime(low)}"
            )
        middle = max(_floor_second(low + (end - low) / 2), low + CDC_MIN_WINDOW)
        left = self._cdc_window(names, low, middle, now, cache)
        return left + self._cdc_window(names, middle, high, now, cache)

    def _changes_by_query(self, names: list[str], since: datetime) -> list[tuple[str, dict[str, Any]]]:
        found: list[tuple[str, dict[str, Any]]] = []
        for name in names:
            # ``name`` passed _check_entity (letters and digits only), so nothing can be injected.
            statement = f"SELECT * FROM {name} WHERE MetaData.LastUpdatedTime >= '{_qbo_datetime(since)}'"  # noqa: S608
            if name in NAME_LIST_ENTITIES:
                statement += " AND Active IN (true,false)"
            # Oldest first: a row changed while we page moves to the end instead of out of reach.
            statement += " ORDERBY MetaData.LastUpdatedTime"
            found.extend((name, row) for row in self.query_all(statement))
        return found

    # --- writes --------------------------------------------------------------------------------

    def _write(
        self,
        path: str,
        body: dict[str, Any],
        *,
        scope: str,
        key: str,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        query = {**(params or {}), "requestid": request_id(self.realm_id, scope, key)}
        return self._transport.exchange(
            "POST", path, template="/{entity}", params=query, body=body, write=True
        )[0]


# --- helpers ----------------------------------------------------------------------------------------


def _batch_results(
    chunk: list[BatchOperation], data: Mapping[str, Any], tid: str | None
) -> list[BatchResult]:
    answers = data.get("BatchItemResponse")
    listed = answers if isinstance(answers, list) else []
    by_bid = {str(item.get("bId")): item for item in listed if isinstance(item, dict)}
    results: list[BatchResult] = []
    for index, op in enumerate(chunk):
        item = by_bid.get(str(index + 1))
        if item is None:
            error = QboError("the batch answer lacks this operation", status=200, intuit_tid=tid)
            error.write = op.is_write
            results.append(BatchResult(op, error=error))
        elif isinstance(item.get("Fault"), dict):
            error = error_from_fault(item["Fault"], status=200, intuit_tid=tid)
            error.write = op.is_write
            results.append(BatchResult(op, error=error))
        elif op.operation == "query":
            response = item.get("QueryResponse")
            results.append(BatchResult(op, rows=_rows_of(response if isinstance(response, dict) else {})))
        else:
            results.append(BatchResult(op, entity=_entity_of(item, op.entity)))
    return results


def _check_entity(entity: str) -> str:
    if not _ENTITY_NAME.match(entity):
        raise ValueError(f"not a QBO entity name: {entity!r}")
    return entity


def _entity_path(entity: str) -> str:
    return _check_entity(entity).lower()


def _check_update_body(body: Mapping[str, Any]) -> None:
    if not body.get("Id") or body.get("SyncToken") in (None, ""):
        raise ValueError("an update needs the entity's Id and current SyncToken")


def _entity_of(data: Mapping[str, Any], entity: str) -> dict[str, Any]:
    wanted = entity.lower()
    for key, value in data.items():
        if key.lower() == wanted and isinstance(value, dict):
            return value
    raise QboError(f"QBO's answer does not carry a {entity}", status=200)


def _rows_of(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = next((value for value in response.values() if isinstance(value, list)), [])
    return [row for row in rows if isinstance(row, dict)]


def _floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _qbo_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _updated(row: Mapping[str, Any]) -> datetime | None:
    meta = row.get("MetaData")
    raw = meta.get("LastUpdatedTime") if isinstance(meta, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def _latest_by_id(
    names: list[str], found: list[tuple[str, dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Each (entity, Id) once, in its latest state, ordered by last change."""
    canonical = {name.lower(): name for name in names}
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for key, row in found:
        ident = (canonical.get(key.lower(), key), str(row.get("Id")))
        kept = latest.get(ident)
        # A later answer wins a tie: it was read after the earlier one.
        if kept is None or _updated_or_floor(row) >= _updated_or_floor(kept):
            latest[ident] = row
    result: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for (name, _), row in latest.items():
        result.setdefault(name, []).append(row)
    for rows in result.values():
        rows.sort(key=_updated_or_floor)
    return result


_FLOOR = datetime.min.replace(tzinfo=UTC)


def _updated_or_floor(row: Mapping[str, Any]) -> datetime:
    return _updated(row) or _FLOOR
