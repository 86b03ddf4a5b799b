"""One delivery of a batch of the delivery queue's records to the host app's endpoint.

Each record's body is the event as EventBridge's rule put it on the queue (the envelope with its
``detail``); it is POSTed as it is, byte for byte, signed for this attempt (``signing``).  The
answer decides (``policy``): delivered (the record succeeds and SQS deletes it), retried (the
message is hidden until its next attempt and reported as a batch item failure, so SQS keeps it), or
given up (sent to the DLQ with the reason, then deleted here).  Giving up happens on a refusal, on
a body that is not an event, and after the last attempt.

Once the endpoint did not answer at all (a timeout, a refused connection), the rest of the batch is
not tried: each waits for its next attempt as if it had failed the same way, so a dead endpoint
costs one timeout per batch, not one per event.  A batch stops early the same way when the
function's time runs short.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

import httpx2

from shared.delivery import policy, signing
from shared.delivery.policy import Verdict
from shared.kernel.observability import logger

if TYPE_CHECKING:
    from collections.abc import Iterator

USER_AGENT: Final = "qbo-link-delivery/1"
TIME_MARGIN_SECONDS: Final = 2.0  # left for the DLQ and visibility calls after the last request
MAX_ANSWER_BYTES: Final = 2048  # of the endpoint's answer, for the reason of a refusal


class RetryQueue(Protocol):
    """The delivery queue's side of a retry and of giving up (``shared.adapters.sqs.PacedQueue``)."""

    def hide(self, receipt_handle: str, seconds: int) -> None: ...

    def dead_letter(self, body: str, attributes: Mapping[str, str]) -> None: ...


@dataclass(frozen=True)
class Attempt:
    """How one record's attempt ended."""

    message_id: str
    event_id: str
    verdict: Verdict
    reason: str = ""
    status: int | None = None
    delay_seconds: int | None = None  # a retry: when the next attempt comes
    dead_lettered: bool = False  # given up: in the DLQ
    tried: bool = True  # False: not sent (the endpoint was already down, or time ran short)


@dataclass
class BatchReport:
    attempts: list[Attempt] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # message ids SQS must keep (batchItemFailures)

    def count(self, what: str) -> int:
        if what == "dead_lettered":
            return sum(1 for a in self.attempts if a.dead_lettered)
        return sum(1 for a in self.attempts if a.verdict == what and not a.dead_lettered)


@dataclass(frozen=True)
class _Record:
    message_id: str
    receipt_handle: str
    body: str
    attempt: int


def _records(raw: Sequence[Mapping[str, Any]]) -> Iterator[_Record]:
    for record in raw:
        attributes = record.get("attributes") or {}
        count = str(attributes.get("ApproximateReceiveCount") or "1")
        yield _Record(
            message_id=str(record.get("messageId", "")),
            receipt_handle=str(record.get("receiptHandle", "")),
            body=str(record.get("body", "")),
            attempt=int(count) if count.isdigit() and int(count) > 0 else 1,
        )


def _identity(body: str) -> tuple[str, str] | None:
    """(event id, detail-type) of an EventBridge event's JSON, ``None`` for anything else."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        return None
    detail_type = event.get("detail-type")
    # The detail's event_id (eventId before the versioned events, should one still be queued).
    event_id = event["detail"].get("event_id") or event["detail"].get("eventId") or event.get("id")
    if not isinstance(detail_type, str) or not isinstance(event_id, str) or not event_id:
        return None
    return event_id, detail_type


class EventDeliverer:
    def __init__(
        self,
        *,
        url: str,
        signing_key: Callable[[], str],
        http: httpx2.Client,
        queue: RetryQueue,
        now: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._url = url
        self._key = signing_key
        self._http = http
        self._queue = queue
        self._now = now  # wall-clock seconds: the receiver compares the signature's time with its own
        self._jitter = jitter
        self._timeout = timeout_seconds

    def deliver(
        self, records: Sequence[Mapping[str, Any]], *, time_left: Callable[[], float] | None = None
    ) -> BatchReport:
        """Deliver a batch of SQS records; ``time_left`` is the seconds the function has left."""
        report = BatchReport()
        if not self._url:
            logger.error(
                "event delivery is off (no endpoint), the batch waits", extra={"records": len(records)}
            )
            report.failed = [str(r.get("messageId", "")) for r in records]
            return report
        key = self._key()
        down: str | None = None  # why the endpoint did not answer earlier in this batch
        for record in _records(records):
            identity = _identity(record.body)
            if identity is None:
                attempt = self._give_up(record, "", "not an EventBridge event with a detail")
            elif down is not None:
                attempt = self._retry(record, identity[0], None, down, tried=False)
            elif time_left is not None and time_left() < self._timeout + TIME_MARGIN_SECONDS:
                attempt = self._retry(record, identity[0], None, "the function's time ran short", tried=False)
            else:
                attempt = self._attempt(record, identity, key)
                if attempt.tried and attempt.status is None and attempt.verdict is Verdict.RETRY:
                    down = attempt.reason
            report.attempts.append(attempt)
            if attempt.verdict is Verdict.RETRY and not attempt.dead_lettered:
                report.failed.append(record.message_id)
            elif attempt.verdict is Verdict.REFUSED and not attempt.dead_lettered:
                report.failed.append(record.message_id)  # the DLQ refused it: SQS keeps it
        return report

    def _attempt(self, record: _Record, identity: tuple[str, str], key: str) -> Attempt:
        event_id, event_type = identity
        body = record.body.encode("utf-8")
        headers = signing.delivery_headers(
            key, int(self._now()), body, event_id=event_id, event_type=event_type, attempt=record.attempt
        )
        headers["User-Agent"] = USER_AGENT
        started = time.monotonic()
        status: int | None = None
        error = ""
        answer = ""
        retry_after: int | None = None
        try:
            with self._http.stream("POST", self._url, content=body, headers=headers) as response:
                status = response.status_code
                retry_after = policy.retry_after_seconds(response.headers.get("retry-after"))
                answer = _head(response)
        except httpx2.TimeoutException:
            error = f"timed out after {self._timeout:g} s"
        except httpx2.TransportError as failure:
            error = f"{type(failure).__name__}: {failure}"
        elapsed_ms = round((time.monotonic() - started) * 1000)
        verdict = policy.classify(status)
        fields = {
            "event_id": event_id,
            "event_type": event_type,
            "attempt": record.attempt,
            "status": status,
            "ms": elapsed_ms,
        }
        if verdict is Verdict.DELIVERED:
            logger.info("event delivered", extra=fields)
            return Attempt(record.message_id, event_id, verdict, status=status)
        why = policy.reason(status, error, answer if verdict is Verdict.REFUSED else "")
        if verdict is Verdict.REFUSED:
            return self._give_up(record, event_id, f"refused: {why}", status=status)
        return self._retry(record, event_id, status, why, retry_after=retry_after)

    def _retry(
        self,
        record: _Record,
        event_id: str,
        status: int | None,
        why: str,
        *,
        retry_after: int | None = None,
        tried: bool = True,
    ) -> Attempt:
        if policy.last_attempt(record.attempt):
            given_up = self._give_up(
                record, event_id, f"gave up after {record.attempt} attempts; the last: {why}", status=status
            )
            return Attempt(
                record.message_id,
                event_id,
                Verdict.RETRY,
                given_up.reason,
                status,
                dead_lettered=given_up.dead_lettered,
                tried=tried,
            )
        delay = policy.retry_delay_seconds(record.attempt, jitter=self._jitter(), retry_after=retry_after)
        try:
            self._queue.hide(record.receipt_handle, delay)
        except Exception:  # it comes back after the queue's visibility timeout instead
            logger.exception("delivery retry not paced", extra={"event_id": event_id})
        logger.warning(
            "event delivery failed, retried later",
            extra={
                "event_id": event_id,
                "attempt": record.attempt,
                "status": status,
                "reason": why,
                "retry_in_seconds": delay,
                "tried": tried,
            },
        )
        return Attempt(record.message_id, event_id, Verdict.RETRY, why, status, delay, tried=tried)

    def _give_up(self, record: _Record, event_id: str, why: str, *, status: int | None = None) -> Attempt:
        attributes = {
            "reason": why[:1000],
            "event_id": event_id,
            "status": "" if status is None else str(status),
            "attempts": str(record.attempt),
            "failed_at": datetime.fromtimestamp(self._now(), UTC).isoformat(timespec="seconds"),
        }
        fields = {"event_id": event_id, "attempt": record.attempt, "status": status, "reason": why}
        try:
            self._queue.dead_letter(record.body, attributes)
        except Exception:  # SQS keeps the message: it comes back, and is given up again
            logger.exception("event not moved to the DLQ", extra=fields)
            return Attempt(record.message_id, event_id, Verdict.REFUSED, why, status)
        logger.error("event delivery given up, moved to the DLQ", extra=fields)
        return Attempt(record.message_id, event_id, Verdict.REFUSED, why, status, dead_lettered=True)


def _head(response: httpx2.Response) -> str:
    """The start of the answer's body (for a refusal's reason), never more than ``MAX_ANSWER_BYTES``."""
    read = b""
    for chunk in response.iter_bytes():
        read += chunk
        if len(read) >= MAX_ANSWER_BYTES:
            break
    return read[:MAX_ANSWER_BYTES].decode("utf-8", errors="replace")
