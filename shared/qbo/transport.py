"""The transport under the QBO client: one realm's HTTP exchanges with the Accounting API v3.

Everything between an operation (``shared.qbo.client.QboClient``: read, create, query, batch, cdc)
and the wire: the access token and one refresh-and-repeat on a 401, the realm's governor around
every attempt, retries with jittered exponential backoff for 429, 5xx and lost answers (validation
faults are final), JSON with money as ``Decimal`` both ways, ``minorversion`` on every request,
``intuit_tid`` kept from every answer, the log line of every attempt and the observer's
:class:`QboCall`.  A write (``write=True``) is refused unless it carries a ``requestid``.

Logs name the method, the path template, status, fault code, ``intuit_tid`` and attempt; never a
body or a token.
"""

from __future__ import annotations

import json
import random as _random
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypedDict, Unpack

import httpx2

from shared.kernel.observability import logger
from shared.qbo.errors import (
    AuthenticationError,
    QboError,
    QboTransportError,
    ServerError,
    ThrottledError,
    parse_fault,
)

DEFAULT_MINOR_VERSION = 75


class TokenProvider(Protocol):
    """Supplies the realm's current access token (the token vault, in production)."""

    def access_token(self) -> str: ...

    def token_rejected(self, token: str) -> None:
        """QBO answered 401 to ``token``: refresh (single-flight) so the next call gets a new one."""


@dataclass(frozen=True)
class QboCall:
    """One HTTP exchange with QBO (each retry is one), as the client's observer sees it."""

    realm_id: str
    operation: str  # one of OPERATIONS
    status: int | None  # None: no answer (the connection failed or dropped)
    seconds: float  # from sending the request to having the whole answer
    throttled: bool  # QBO answered 429
    fault_code: str = ""  # QBO's fault code when it answered with one


OPERATIONS: frozenset[str] = frozenset(
    {"read", "create", "update", "delete", "void", "query", "batch", "cdc"}
)
"""The operations a call is reported as: few, so a metric may use them as a dimension."""


class Governor(Protocol):
    """Holds a request until the realm's rate and concurrency budgets allow it."""

    def acquire(self, realm_id: str, *, batch: bool = False) -> AbstractContextManager[None]: ...


# --- JSON with exact money ----------------------------------------------------------------------


def encode_json(value: Any) -> bytes:
    """JSON bytes with ``Decimal`` written exactly as a JSON number ("10.10" stays "10.10").

    Floats are refused: money must never pass through binary floating point on its way to QBO.
    """
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts).encode()


def _encode(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool | str):
        out.append(json.dumps(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a JSON number: {value}")
        out.append(format(value, "f"))
    elif isinstance(value, float):
        raise TypeError("floats are not sent to QBO; use Decimal")
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot send {type(value).__name__} to QBO as JSON")


def decode_json(body: bytes) -> Any:
    """QBO's JSON with every fractional number as ``Decimal`` (whole numbers stay ``int``)."""
    return json.loads(body, parse_float=Decimal)


# --- the transport --------------------------------------------------------------------------------


class TransportOptions(TypedDict, total=False):
    """How a QBO client talks to QBO (every key optional; the defaults are the transport's):
    ``governor`` (the per-realm budgets), ``http`` (a shared connection pool), ``minor_version``,
    ``max_attempts``/``backoff_base``/``throttle_wait``/``max_backoff`` (retries), ``timeout``,
    ``sleep`` and ``random`` (tests), ``observer`` (each exchange, for metrics)."""

    governor: Governor | None
    http: httpx2.Client | None
    minor_version: int
    max_attempts: int
    backoff_base: float
    throttle_wait: float
    max_backoff: float
    timeout: float
    sleep: Callable[[float], None]
    random: Callable[[], float]
    observer: Callable[[QboCall], None] | None


class QboTransport:
    """One realm's exchanges with QBO, retried, governed, logged and observed; see the module's
    docstring.  Thread-safe when its ``http`` client is (httpx2's is).  ``QboClient`` builds it from
    its own arguments (their meaning is documented there)."""

    def __init__(
        self, realm_id: str, base_url: str, tokens: TokenProvider, **options: Unpack[TransportOptions]
    ) -> None:
        max_attempts = options.get("max_attempts", 5)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.realm_id = realm_id
        self.minor_version = options.get("minor_version", DEFAULT_MINOR_VERSION)
        self.max_attempts = max_attempts
        self.backoff_base = options.get("backoff_base", 0.5)
        self.throttle_wait = options.get("throttle_wait", 60.0)
        self.max_backoff = options.get("max_backoff", 120.0)
        self.last_intuit_tid: str | None = None
        self._root = f"{base_url.rstrip('/')}/company/{realm_id}"
        self._tokens = tokens
        self._governor = options.get("governor")
        http = options.get("http")
        self._owns_http = http is None
        self._http = http if http is not None else httpx2.Client(timeout=options.get("timeout", 30.0))
        self._sleep = options.get("sleep", time.sleep)
        self._random = options.get("random", _random.random)
        self._observer = options.get("observer")

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def exchange(
        self,
        method: str,
        path: str,
        *,
        template: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        write: bool = False,
        batch: bool = False,
    ) -> tuple[dict[str, Any], str | None]:
        """The decoded answer and its ``intuit_tid``, after retries; raises the last QboError."""
        if write and "requestid" not in (params or {}):
            raise ValueError("a write is never sent without a requestid")
        query = {"minorversion": str(self.minor_version), **(params or {})}
        content = encode_json(body) if body is not None else None
        url = f"{self._root}/{path}"
        attempt = 0  # attempts that count against max_attempts
        sent = 0
        refreshed = False
        while True:
            attempt += 1
            sent += 1
            token = self._tokens.access_token()
            status, tid, data, error = self._attempt(
                method, url, query, content, token, batch=batch, operation=_operation(method, path, query)
            )
            if error is None:
                self._log(
                    "qbo call answered",
                    method=method,
                    template=template,
                    status=status,
                    code="",
                    intuit_tid=tid,
                    attempt=sent,
                )
                return data, tid
            error.write = write
            self._log(
                "qbo call failed",
                method=method,
                template=template,
                status=error.status,
                code=error.code,
                intuit_tid=tid,
                attempt=sent,
            )
            if isinstance(error, AuthenticationError) and error.status == 401 and not refreshed:
                # One refresh and one repeat (same requestid); a second 401 is final.
                refreshed = True
                self._tokens.token_rejected(token)
                attempt -= 1
                continue
            if not error.retryable or attempt >= self.max_attempts:
                raise error
            self._sleep(self._delay(error, attempt))

    def _attempt(
        self,
        method: str,
        url: str,
        query: Mapping[str, str],
        content: bytes | None,
        token: str,
        *,
        batch: bool,
        operation: str,
    ) -> tuple[int | None, str | None, dict[str, Any], QboError | None]:
        """One HTTP exchange: (status, intuit_tid, decoded answer, None), or the error it amounts to
        in place of the answer.  The observer hears of every exchange that was sent."""
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        gate = self._governor.acquire(self.realm_id, batch=batch) if self._governor else nullcontext()
        with gate:  # the governor's wait is not QBO's latency: the clock starts inside the gate
            started = time.perf_counter()
            try:
                response = self._http.request(method, url, params=query, content=content, headers=headers)
            except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
                self._observe(operation, None, started, None)
                reason = f"QBO could not be reached: {type(exc).__name__}"
                return None, None, {}, QboTransportError(reason, sent=False)
            except httpx2.TransportError as exc:
                self._observe(operation, None, started, None)
                lost = QboTransportError(f"QBO did not answer: {type(exc).__name__}", sent=True)
                return None, None, {}, lost
            elapsed = time.perf_counter() - started
        status = response.status_code
        tid = response.headers.get("intuit_tid")
        self.last_intuit_tid = tid
        error = parse_fault(status, response.headers, response.content)
        self._observe(operation, status, started, error, elapsed=elapsed)
        if error is not None:
            return status, tid, {}, error
        try:
            data = decode_json(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            # A success we cannot read: a retry with the same requestid replays QBO's answer.
            unreadable = ServerError("QBO's answer is not a JSON object", status=status, intuit_tid=tid)
            return status, tid, {}, unreadable
        return status, tid, data, None

    def _observe(
        self,
        operation: str,
        status: int | None,
        started: float,
        error: QboError | None,
        *,
        elapsed: float | None = None,
    ) -> None:
        if self._observer is None:
            return
        seconds = elapsed if elapsed is not None else time.perf_counter() - started
        self._observer(
            QboCall(
                realm_id=self.realm_id,
                operation=operation,
                status=status,
                seconds=seconds,
                throttled=isinstance(error, ThrottledError),
                fault_code=error.code if error is not None and error.code else "",
            )
        )

    def _delay(self, error: QboError, attempt: int) -> float:
        if isinstance(error, ThrottledError):
            if error.retry_after is not None:
                return min(self.max_backoff, error.retry_after * (1 + 0.1 * self._random()))
            wait = self.throttle_wait * 2.0 ** (attempt - 1)
            return min(self.max_backoff, wait * (1 + 0.25 * self._random()))
        wait = min(self.max_backoff, self.backoff_base * 2.0 ** (attempt - 1))
        return wait / 2 + wait / 2 * self._random()

    @staticmethod
    def _log(
        message: str,
        *,
        method: str,
        template: str,
        status: int | None,
        code: str,
        intuit_tid: str | None,
        attempt: int,
    ) -> None:
        fields = {
            "method": method,
            "path": f"/company/{{realm}}{template}",
            "status": status,
            "code": code,
            "intuit_tid": intuit_tid,
            "attempt": attempt,
        }
        if status is not None and status < 300:
            logger.debug(message, extra=fields)
        else:
            logger.info(message, extra=fields)


def _operation(method: str, path: str, query: Mapping[str, str]) -> str:
    """The call as one of OPERATIONS (``path`` is relative to the company: ``invoice``, ``query``)."""
    head = path.split("/", 1)[0]
    if head in ("query", "batch", "cdc"):
        return head
    if method == "GET":
        return "read"
    if query.get("include") == "void":
        return "void"
    return query.get("operation", "create")
