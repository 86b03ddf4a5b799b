"""The scheduled sweep's fan-out: one sweep request per healthy connection onto the changes queue.

The schedule does not read QBO. Each request rides the changes SQS FIFO queue (the queue the
webhook intake writes to) and the change worker runs ``PullService.sweep`` for it, with its own
Lambda run, retries and DLQ. Message group = tenant, so a tenant's sweep is serialised with its
webhook notices; deduplication id = tenant + the scheduled time's five-minute bucket, so a retried
schedule does not double it (SQS keeps a deduplication id for five minutes). Body:
``{"tenant_id", "realm_id", "source": "sweep", "requested_at"}`` (docs/pull.md, "Scheduled sweep").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from shared.adapters.sqs import FifoMessage
from shared.connections.health import Health
from shared.pull.changes import sweep_request_body

if TYPE_CHECKING:
    from shared.connections.store import Connection
    from shared.kernel.clock import Clock

# A retried invocation of one schedule falls in the same bucket (and SQS keeps a deduplication id
# for 5 minutes, so a longer bucket would not de-duplicate more).
DEDUP_BUCKET: Final = timedelta(minutes=5)


class HealthyConnections(Protocol):
    def list_by_health(self, health: Health) -> Iterable[Connection]: ...


class BatchSender(Protocol):
    def send_batch(self, messages: list[FifoMessage]) -> list[tuple[int, str]]: ...


def scheduled_time(event: Mapping[str, Any], now: datetime) -> datetime:
    """The schedule's own time when the event carries it (an EventBridge scheduled event's
    ``time``, or ``scheduled_time`` from Scheduler's ``<aws.scheduler.scheduled-time>``), so a
    retry keeps its bucket; else ``now``."""
    for name in ("scheduled_time", "time"):
        value = event.get(name)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if parsed.tzinfo is not None:
                return parsed
    return now


def bucket_of(at: datetime) -> str:
    epoch = int(at.timestamp())
    size = int(DEDUP_BUCKET.total_seconds())
    return datetime.fromtimestamp(epoch - epoch % size, UTC).strftime("%Y%m%dT%H%MZ")


def sweep_messages(
    connections: Iterable[Connection], scheduled: datetime, now: datetime
) -> list[FifoMessage]:
    bucket = bucket_of(scheduled)
    return [
        FifoMessage(
            body=sweep_request_body(c.tenant_id, c.realm_id, now),
            group=c.tenant_id,
            deduplication_id=f"sweep#{c.tenant_id}#{bucket}",
        )
        for c in connections
        if c.realm_id and c.disconnected_at is None
    ]


class SweepFanOut:
    """Enqueues the sweep requests of one firing of the schedule."""

    def __init__(self, connections: HealthyConnections, queue: BatchSender, clock: Clock) -> None:
        self._connections = connections
        self._queue = queue
        self._clock = clock

    def fan_out(self, event: Mapping[str, Any]) -> dict[str, int]:
        """``{"tenants", "enqueued", "refused"}``; a refused request is the schedule's to retry."""
        now = self._clock.now()
        connections = list(self._connections.list_by_health(Health.HEALTHY))
        messages = sweep_messages(connections, scheduled_time(event, now), now)
        refused = self._queue.send_batch(messages)
        return {"tenants": len(messages), "enqueued": len(messages) - len(refused), "refused": len(refused)}
