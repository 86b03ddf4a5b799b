"""The signature of a delivery: HMAC-SHA256 over ``<timestamp>.<body>`` with the stack's signing key.

The headers of every delivery (docs/events.md has the receiver's side and a verification snippet):

- ``QBO-Link-Signature: t=<unix seconds>,v1=<hex>``: ``v1`` is the lowercase hex HMAC-SHA256, keyed
  with the signing key's UTF-8 bytes, of the ASCII timestamp, a dot and the body's exact bytes.
  Every attempt is signed again with its own time, so a retry hours later is as fresh as the first.
- ``QBO-Link-Event-Id``: the detail's ``event_id``, the same on every attempt and every publication
  of the same fact: a receiver de-duplicates on it.
- ``QBO-Link-Event-Type`` (the detail-type) and ``QBO-Link-Delivery-Attempt`` (1, 2, ...), for logs.

Pure: no clock of its own, no AWS.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

SIGNATURE_HEADER: Final = "QBO-Link-Signature"
EVENT_ID_HEADER: Final = "QBO-Link-Event-Id"
EVENT_TYPE_HEADER: Final = "QBO-Link-Event-Type"
ATTEMPT_HEADER: Final = "QBO-Link-Delivery-Attempt"
CONTENT_TYPE: Final = "application/json"
SCHEME: Final = "v1"
TOLERANCE_SECONDS: Final = 300  # what a receiver should accept: 5 minutes either way


def signature(key: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` value: hex HMAC-SHA256 of ``b"<timestamp>." + body`` keyed with ``key``."""
    if not key:
        raise ValueError("the signing key is empty")
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(key: str, timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex>``."""
    return f"t={int(timestamp)},{SCHEME}={signature(key, timestamp, body)}"


def verify(key: str, header: str, body: bytes, *, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: the header's time within ``tolerance`` of ``now`` and one of its ``v1``
    values the signature of ``body`` (compared in constant time)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = signature(key, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def delivery_headers(
    key: str, timestamp: int, body: bytes, *, event_id: str, event_type: str, attempt: int
) -> dict[str, str]:
    """Every header of one attempt (but the user agent)."""
    return {
        "Content-Type": CONTENT_TYPE,
        SIGNATURE_HEADER: signature_header(key, timestamp, body),
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
        ATTEMPT_HEADER: str(attempt),
    }
