"""QBO's failures as typed exceptions, and the one parser that reads every error body QBO sends.

QBO answers errors in four shapes (https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes;
the XML one as SDK users met it: https://github.com/routablehq/python-quickbooks/issues/43):
the data service's capitalised ``{"Fault": {"Error": [...], "type": ...}}``, the API gateway's
lower-case ``{"fault": {"error": [...], "type": ...}}`` (401 / 403 / 429), the throttle answer in XML
(``<IntuitResponse><Fault>``) even when JSON was asked for, and whatever a proxy puts in front of
them (an HTML 502).  An HTTP 200 can carry a ``Fault`` too, at the top level or per batch item.

Classification goes by HTTP status first, then by exact fault code, then by fault type; never by
ranges (the gateway's 3001/3100/3200 sit inside python-quickbooks' "validation" range) and never by
the text of a message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from xml.etree import ElementTree

# Longest slice of a non-QBO error body kept as the error's detail: enough to recognise a proxy's
# page in the posting log, too little to carry a document.
_RAW_DETAIL_LIMIT = 200


@dataclass(frozen=True)
class FaultDetail:
    """One entry of a Fault's error list."""

    code: str
    message: str
    detail: str = ""
    element: str = ""


class QboError(Exception):
    """A call to QBO failed.  ``errors`` keeps every entry QBO listed; the other fields describe the
    entry the error was classified by."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        detail: str = "",
        element: str = "",
        intuit_tid: str | None = None,
        fault_type: str = "",
        errors: Sequence[FaultDetail] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.detail = detail
        self.element = element
        self.intuit_tid = intuit_tid
        self.fault_type = fault_type
        self.errors: tuple[FaultDetail, ...] = tuple(errors)
        # Set by the client: the failed request was a write, so a lost answer may hide a commit.
        self.write = False

    def __str__(self) -> str:
        head = " ".join(part for part in (str(self.status or ""), self.code) if part)
        text = f"{head}: {self.message}" if head else self.message
        return f"{text} ({self.detail})" if self.detail else text

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again (same requestid) may succeed."""
        return False

    @property
    def outcome_uncertain(self) -> bool:
        """Whether QBO may have done the work although the caller saw a failure."""
        return False


class ValidationError(QboError):
    """QBO refused the request's content (HTTP 400 ValidationFault and its business rules)."""


class StaleObjectError(ValidationError):
    """5010: the SyncToken sent is not the current one; read the entity again before updating."""


class DuplicateNameError(ValidationError):
    """6240: the DisplayName is taken by a customer, vendor or employee, active or not."""


class DuplicateDocumentNumberError(ValidationError):
    """6210 / 6140: the document number is already used."""


class NotFoundError(QboError):
    """610 (a missing or inactive object or reference) or HTTP 404."""


class AuthenticationError(QboError):
    """401 (3200, 100, 120): the access token is expired, revoked or the user lost access."""


class AuthorizationError(QboError):
    """403 (3100): the token may not call this company (wrong environment, realm not authorised)."""


class ThrottledError(QboError):
    """429 (3001): a per-realm limit was exceeded.  ``retry_after`` is the server's Retry-After in
    seconds when it sent one (Intuit documents none and says to wait 60 s)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return True


class ServerError(QboError):
    """5xx, a SystemFault, or a success status whose body cannot be read."""

    @property
    def retryable(self) -> bool:
        return True

    @property
    def outcome_uncertain(self) -> bool:
        # A 500 does not say the write was not committed: only a replayed requestid or a lookup
        # tells whether it happened.
        return self.write


class QboTransportError(QboError):
    """No answer at all: timeout, connection refused or reset.  ``sent`` is False when the request
    never left (connect failure), so nothing can have been committed."""

    def __init__(self, message: str, *, sent: bool = True, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.sent = sent

    @property
    def retryable(self) -> bool:
        return True

    @property
    def outcome_uncertain(self) -> bool:
        return self.write and self.sent


class CdcOverflowError(QboError):
    """More than CDC's 1,000-object cap changed within one second: no shorter window exists."""


# --- classification ---------------------------------------------------------------------------

_BY_CODE: dict[str, type[QboError]] = {
    "5010": StaleObjectError,
    "6240": DuplicateNameError,
    "6210": DuplicateDocumentNumberError,
    "6140": DuplicateDocumentNumberError,
    "610": NotFoundError,
    "3001": ThrottledError,
    "3200": AuthenticationError,
    "100": AuthenticationError,
    "120": AuthenticationError,
    "3100": AuthorizationError,
}

_BY_FAULT_TYPE: dict[str, type[QboError]] = {
    "authenticationfault": AuthenticationError,
    "authentication": AuthenticationError,
    # Intuit's own XSD spells it "AuthorizatonFault".
    "authorizationfault": AuthorizationError,
    "authorizatonfault": AuthorizationError,
    "authorization": AuthorizationError,
    "systemfault": ServerError,
    "validationfault": ValidationError,
}


def classify(status: int | None, code: str, fault_type: str) -> type[QboError]:
    """The exception class for a failure: HTTP status first, then the exact code, then the type."""
    if status == 401:
        return AuthenticationError
    if status == 403:
        # Before 2016 QBO throttled with a 403 carrying 3001 (the code is unambiguous):
        # https://github.com/routablehq/python-quickbooks/issues/43
        return ThrottledError if code == "3001" else AuthorizationError
    if status == 429:
        return ThrottledError
    if status == 404:
        return NotFoundError
    if status is not None and status >= 500:
        return ServerError
    if code in _BY_CODE:
        return _BY_CODE[code]
    by_type = _BY_FAULT_TYPE.get(fault_type.lower())
    if by_type is not None:
        return by_type
    if status is None or status < 300 or status in (400, 422):
        return ValidationError
    return QboError


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    raw = _header(headers, "retry-after")
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_from_fault(
    fault: Mapping[str, Any],
    *,
    status: int | None,
    intuit_tid: str | None = None,
    retry_after: float | None = None,
) -> QboError:
    """Build the typed error for one ``Fault`` object (either casing), e.g. a batch item's."""
    fault_type = str(_get(fault, "type") or "")
    raw_errors = _get(fault, "error")
    entries = raw_errors if isinstance(raw_errors, list) else [raw_errors] if raw_errors else []
    details = [_detail(entry) for entry in entries if isinstance(entry, Mapping)]
    return _build(status, fault_type, details, intuit_tid, retry_after)


def parse_fault(status: int, headers: Mapping[str, str], body: bytes) -> QboError | None:
    """The error an HTTP answer carries, or None for a success without a Fault.

    Every status of 300 and above gives an error, whatever its body; a 2xx gives one only when its
    body is a Fault (JSON of either casing, or XML).
    """
    intuit_tid = _header(headers, "intuit_tid")
    retry_after = retry_after_seconds(headers)
    fault = _json_fault(body)
    if fault is not None:
        return error_from_fault(fault, status=status, intuit_tid=intuit_tid, retry_after=retry_after)
    xml_fault = _xml_fault(body)
    if xml_fault is not None:
        fault_type, details = xml_fault
        return _build(status, fault_type, details, intuit_tid, retry_after)
    if status < 300:
        return None
    text = body.decode("utf-8", errors="replace").strip()
    detail = " ".join(text.split())[:_RAW_DETAIL_LIMIT]
    cls = classify(status, "", "")
    message = f"HTTP {status} without a QBO fault body"
    return _instantiate(
        cls, message, status=status, detail=detail, intuit_tid=intuit_tid, retry_after=retry_after
    )


# --- helpers ----------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _get(obj: Mapping[str, Any], key: str) -> Any:
    """A key of a Fault object in either casing (the gateway lower-cases every key)."""
    if key in obj:
        return obj[key]
    lowered = key.lower()
    return next((v for k, v in obj.items() if k.lower() == lowered), None)


def _detail(entry: Mapping[str, Any]) -> FaultDetail:
    def text(key: str) -> str:
        value = _get(entry, key)
        return "" if value is None else str(value)

    return FaultDetail(
        code=text("code"), message=text("message"), detail=text("detail"), element=text("element")
    )


def _build(
    status: int | None,
    fault_type: str,
    details: list[FaultDetail],
    intuit_tid: str | None,
    retry_after: float | None,
) -> QboError:
    # The first entry that carries a code decides; QBO lists the cause first, and entries without a
    # code (seen as empty objects) say nothing.
    primary = next((d for d in details if d.code), details[0] if details else FaultDetail("", ""))
    cls = classify(status, primary.code, fault_type)
    message = primary.message or fault_type or (f"HTTP {status}" if status else "QBO fault")
    return _instantiate(
        cls,
        message,
        status=status,
        code=primary.code,
        detail=primary.detail,
        element=primary.element,
        intuit_tid=intuit_tid,
        fault_type=fault_type,
        errors=details,
        retry_after=retry_after,
    )


def _instantiate(cls: type[QboError], message: str, *, retry_after: float | None, **fields: Any) -> QboError:
    if cls is ThrottledError:
        return ThrottledError(message, retry_after=retry_after, **fields)
    return cls(message, **fields)


def _json_fault(body: bytes) -> Mapping[str, Any] | None:
    stripped = body.lstrip()
    if not stripped.startswith(b"{"):
        return None
    try:
        data = json.loads(stripped)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    fault = data.get("Fault", data.get("fault"))
    return fault if isinstance(fault, dict) else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_fault(body: bytes) -> tuple[str, list[FaultDetail]] | None:
    stripped = body.lstrip()
    # QBO's XML never has a DTD; refusing one rules out entity expansion before the parser runs.
    if not stripped.startswith(b"<") or b"<!DOCTYPE" in stripped or b"<!ENTITY" in stripped:
        return None
    try:
        root = ElementTree.fromstring(stripped)  # noqa: S314 - no DTD allowed (checked above)
    except ElementTree.ParseError:
        return None
    fault = root if _local(root.tag) == "Fault" else None
    if fault is None:
        fault = next((el for el in root.iter() if _local(el.tag) == "Fault"), None)
    if fault is None:
        return None
    details: list[FaultDetail] = []
    for error in (el for el in fault if _local(el.tag) == "Error"):
        children = {_local(child.tag).lower(): (child.text or "").strip() for child in error}
        details.append(
            FaultDetail(
                code=error.get("code", ""),
                message=children.get("message", ""),
                detail=children.get("detail", ""),
                element=error.get("element", ""),
            )
        )
    return fault.get("type", ""), details
