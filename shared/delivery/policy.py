"""What an answer of the host's endpoint means for a delivery, and when a retry comes.

- a 2xx answer: delivered;
- no answer (a timeout, a refused or dropped connection, a TLS failure), 408, 429 or 5xx: retried
  later, with exponential backoff: ``FIRST_RETRY_SECONDS`` after the first attempt, doubling after
  each, at most ``LONGEST_RETRY_SECONDS`` apart (a ``Retry-After`` in seconds is honoured up to the
  same bound), up to ``MAX_ATTEMPTS`` attempts in all; then the event goes to the DLQ;
- any other answer (4xx but 408 and 429, a 3xx: redirects are not followed, since a signed event
  must go only where it was configured to go): refused for good, straight to the DLQ.

Each delay is shortened by a random part of up to ``JITTER`` of it, so that events held back by one
outage do not all come back in the same second.  The infra's queue (``infra.manifest``) lets a
message be received ``MAX_ATTEMPTS`` times, so SQS's own redrive agrees with this policy even
should the deliverer die on every attempt.  Pure.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

MAX_ATTEMPTS: Final = 12
FIRST_RETRY_SECONDS: Final = 30
LONGEST_RETRY_SECONDS: Final = 4 * 3600  # SQS allows a message to be hidden for up to 12 hours
JITTER: Final = 0.2
RETRIED_STATUSES: Final = frozenset({408, 429})


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # later, with backoff, while attempts remain
    REFUSED = "refused"  # for good: to the DLQ now


def classify(status: int | None) -> Verdict:
    """``status`` is the endpoint's HTTP status, ``None`` when no answer came."""
    if status is None or status in RETRIED_STATUSES or status >= 500:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    return Verdict.REFUSED


def retry_delay_seconds(attempt: int, *, jitter: float = 0.0, retry_after: int | None = None) -> int:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first); ``jitter`` is a
    random number in [0, 1) (0: the longest delay), ``retry_after`` the endpoint's own wish."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter is a number in [0, 1)")
    base = min(FIRST_RETRY_SECONDS << min(attempt - 1, 30), LONGEST_RETRY_SECONDS)
    delay = round(base * (1.0 - JITTER * jitter))
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, LONGEST_RETRY_SECONDS)
    return max(1, delay)


def retry_after_seconds(value: str | None) -> int | None:
    """An HTTP ``Retry-After`` given in whole seconds (a date is ignored: the backoff applies)."""
    text = (value or "").strip()
    return int(text) if text.isdigit() else None


def last_attempt(attempt: int) -> bool:
    return attempt >= MAX_ATTEMPTS


def reason(status: int | None, error: str = "", body: str = "") -> str:
    """One line saying how an attempt ended, for the log and the DLQ message."""
    if status is None:
        return f"no answer: {error}" if error else "no answer"
    text = f"HTTP {status}"
    if 300 <= status < 400:
        text += " (a redirect: configure the final URL; redirects are not followed)"
    snippet = " ".join(body.split())[:200]
    return f"{text}: {snippet}" if snippet else text
