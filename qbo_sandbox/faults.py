"""QBO's error envelopes, as the real service sends them.

Two families exist on the wire:

* data-service faults: ``{"Fault": {"Error": [{"Message", "Detail", "code", "element"}],
  "type": "ValidationFault"}, "time": "..."}`` (capitalised keys, ``code`` is a string);
* gateway faults (401 / 403 / 429): lower-case keys, ``{"warnings": null, "intuitObject": null,
  "fault": {"error": [{"message", "detail", "code", "element"}], "type": "AUTHENTICATION"}, ...,
  "requestId": null, "time": <epoch ms>, ...}`` (see :func:`gateway_envelope`), and, for
  throttling, historically XML.

Every error the sandbox answers is raised as :class:`QboFault` and rendered by :func:`render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FaultError:
    code: str
    message: str
    detail: str
    element: str = ""


@dataclass
class QboFault(Exception):
    """An error QBO reports in a ``Fault`` body.

    ``status`` is the HTTP status of a top-level answer; inside a batch the same fault is carried in
    an HTTP 200 ``BatchItemResponse``.  ``gateway`` selects the lower-case envelope of Intuit's API
    gateway (authentication, authorization, throttling).
    """

    errors: list[FaultError]
    fault_type: str = "ValidationFault"
    status: int = 400
    gateway: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        first = self.errors[0]
        return f"{self.status} {self.fault_type} {first.code}: {first.message}"

    @property
    def code(self) -> str:
        return self.errors[0].code

    def body(self, now: datetime) -> dict[str, Any]:
        """The JSON body QBO sends for this fault."""
        if self.gateway:
            return gateway_envelope(
                {
                    "error": [
                        {
                            "message": e.message,
                            "detail": e.detail,
                            "code": e.code,
                            "element": e.element or None,
                        }
                        for e in self.errors
                    ],
                    "type": self.fault_type,
                },
                now,
            )
        return {"Fault": self.fault_json(), "time": qbo_time(now)}

    def fault_json(self) -> dict[str, Any]:
        """The ``Fault`` object alone (also used inside batch item responses)."""
        return {
            "Error": [
                {"Message": e.message, "Detail": e.detail, "code": e.code, "element": e.element}
                for e in self.errors
            ],
            "type": self.fault_type,
        }


def gateway_envelope(fault: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The gateway's whole answer around a lower-case ``fault``: every member of its response type,
    unused ones null or empty, in the order QBO writes them, ``requestId`` spelled so, ``time`` in
    epoch milliseconds.  The shape is a real 401 body quoted in routablehq/python-quickbooks#250."""
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": fault,
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": int(now.timestamp() * 1000),
        "status": None,
        "cdcresponse": [],
    }


def qbo_time(now: datetime) -> str:
    """Response ``time``: local time with milliseconds and offset, e.g. 2026-05-05T02:05:12.193-07:00."""
    return now.isoformat(timespec="milliseconds")


def qbo_timestamp(now: datetime) -> str:
    """``MetaData`` timestamps: local time to the second with offset, e.g. 2026-05-05T02:05:12-07:00."""
    return now.replace(microsecond=0).isoformat()


# --- constructors for the faults QBO documents (docs/sandbox.md) -------------------------------


def validation(code: str, message: str, detail: str, element: str = "") -> QboFault:
    return QboFault([FaultError(code, message, detail, element)])


def required_param(element: str, entity: str = "") -> QboFault:
    """2020: a required field is missing (``entity`` only makes the detail precise)."""
    return validation(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {element} is missing in the request" + (f" ({entity})" if entity else ""),
        element,
    )


def invalid_field(element: str, detail: str) -> QboFault:
    """2010: a field has an invalid value or format."""
    return validation("2010", "Request has invalid or unsupported property", detail, element)


def object_not_found(entity: str, object_id: str, element: str = "") -> QboFault:
    """610: a missing or inactive reference (or a read of an unknown id)."""
    return validation(
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. "
        f"Check the fields with accounts, customers, items, vendors or employees. "
        f"({entity} Id {object_id})",
        element,
    )


def stale_object(object_id: str) -> QboFault:
    """5010: the SyncToken sent is not the current one."""
    return validation(
        "5010",
        "Stale Object Error",
        f"Stale Object Error : You and {object_id} were working on this at the same time. "
        f"{object_id} finished before you did, so your work was not saved.",
    )


def duplicate_name() -> QboFault:
    """6240: DisplayName already used by a customer, vendor or employee (active or not)."""
    return validation(
        "6240",
        "Duplicate Name Exists Error",
        "The name supplied already exists. : Another customer, vendor or employee is already "
        "using this name. Please use a different name.",
        "DisplayName",
    )


def business_rule(detail: str, element: str = "") -> QboFault:
    """6000: a generic business validation error."""
    return validation(
        "6000", "A business validation error has occurred while processing your request", detail, element
    )


def query_error(detail: str) -> QboFault:
    """4000: the query could not be parsed or asks for something QBO does not support."""
    return validation("4000", "Error parsing query", detail)


def query_validation(detail: str) -> QboFault:
    """4001: a well-formed query QBO refuses (e.g. MAXRESULTS above 1000)."""
    return validation("4001", "Invalid query", f"QueryValidationError: {detail}")


def unsupported_operation(detail: str) -> QboFault:
    """500 (code, in an HTTP 400): an operation QBO does not offer for this entity."""
    return validation("500", "Unsupported Operation", detail)


def _gateway(code: str, name: str, status: int, fault_type: str, detail: str) -> QboFault:
    """A refusal of Intuit's gateway (before the Accounting API): its message names the error, its
    zero-padded code and the HTTP status."""
    message = f"message={name}; errorCode={int(code):06d}; statusCode={status}"
    return QboFault([FaultError(code, message, detail)], fault_type=fault_type, status=status, gateway=True)


def authentication_failed(detail: str = "Token expired") -> QboFault:
    """401 from the gateway: missing, malformed, expired or revoked access token."""
    return _gateway("3200", "AuthenticationFailed", 401, "AUTHENTICATION", detail)


def authorization_failed() -> QboFault:
    """403 from the gateway: the token's app/realm may not call this company."""
    return _gateway("3100", "ApplicationAuthorizationFailed", 403, "SERVICE", "")


def throttled() -> QboFault:
    """429 from the gateway: a rate limit was exceeded."""
    return _gateway(
        "3001", "ThrottleExceeded", 429, "SERVICE", "The request limit was reached.  Try again later"
    )


THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{time}">'
    '<Fault type="SERVICE"><Error code="3001">'
    "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
    "<Detail>The request limit was reached.  Try again later</Detail>"
    "</Error></Fault></IntuitResponse>"
)


def system_fault(status: int = 500) -> QboFault:
    """500 / 503: QBO's own failure (retry)."""
    if status == 503:
        error = FaultError("10000", "Service Unavailable", "The service is temporarily unavailable.")
    else:
        error = FaultError(
            "10000",
            "An application error has occurred while processing your request",
            "System Failure Error: An unexpected error occurred while accessing or saving your "
            "data. Please wait a few minutes and try again.",
        )
    return QboFault([error], fault_type="SystemFault", status=status)
