"""The scheduled pull sweep (EventBridge Scheduler): fan out one queue message per connected tenant.

Glue only.  The schedule does not read QBO: it enqueues one sweep request per HEALTHY connection on
the changes SQS FIFO queue (``CHANGES_QUEUE_URL``, the queue the webhook intake writes to), and the
change worker (``functions/changes``) runs ``PullService.sweep`` for each, with its own Lambda run,
retries and DLQ.  Message group = tenant, so a tenant's sweep is serialised with its webhook notices;
deduplication id = tenant + the scheduled time's bucket, so a retried schedule does not double it
(SQS de-duplicates within 5 minutes).  Body: ``{"tenant_id", "realm_id", "source": "sweep",
"requested_at"}`` (docs/pull.md, "Scheduled sweep").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from collections.abc import Iterable

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.connections.store import Connection

# A retried invocation of one schedule falls in the same bucket (and SQS keeps a deduplication id
# for 5 minutes, so a longer bucket would not de-duplicate more).
DEDUP_BUCKET: Final = timedelta(minutes=5)
SQS_BATCH: Final = 10


@dataclass(frozen=True)
class SweepMessage:
    tenant_id: str
    body: str
    deduplication_id: str


def scheduled_time(event: dict[str, Any], now: datetime) -> datetime:
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
) -> list[SweepMessage]:
    from shared.pull.changes import sweep_request_body

    bucket = bucket_of(scheduled)
    return [
        SweepMessage(
            tenant_id=c.tenant_id,
            body=sweep_request_body(c.tenant_id, c.realm_id, now),
            deduplication_id=f"sweep#{c.tenant_id}#{bucket}",
        )
        for c in connections
        if c.realm_id and c.disconnected_at is None
    ]


def enqueue(sqs: Any, queue_url: str, messages: list[SweepMessage]) -> list[str]:
    """Send the requests in batches of 10; returns the tenant ids SQS refused."""
    refused: list[str] = []
    for start in range(0, len(messages), SQS_BATCH):
        chunk = messages[start : start + SQS_BATCH]
        entries = [
            {
                "Id": str(i),
                "MessageBody": m.body,
                "MessageGroupId": m.tenant_id,
                "MessageDeduplicationId": m.deduplication_id,
            }
            for i, m in enumerate(chunk)
        ]
        answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        refused += [chunk[int(f["Id"])].tenant_id for f in answer.get("Failed", [])]
    return refused


def changes_queue_url() -> str:
    from shared import wiring
    from shared.kernel import constants
    from shared.kernel.settings import SettingsError

    url = wiring.settings().changes_queue_url
    if not url:
        raise SettingsError(f"{constants.CHANGES_QUEUE_URL_ENV} is not configured")
    return url


def fan_out(event: dict[str, Any], sqs: Any, queue_url: str) -> dict[str, Any]:
    from shared import wiring
    from shared.connections.health import Health

    now = wiring.clock().now()
    connections = list(wiring.store().list_by_health(Health.HEALTHY))
    messages = sweep_messages(connections, scheduled_time(event, now), now)
    refused = enqueue(sqs, queue_url, messages)
    return {"tenants": len(messages), "enqueued": len(messages) - len(refused), "refused": len(refused)}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del context
    import boto3

    summary = fan_out(event, boto3.client("sqs"), changes_queue_url())
    metrics.add_metric(name="SweepTenants", unit=MetricUnit.Count, value=summary["tenants"])
    metrics.add_metric(name="SweepEnqueueRefused", unit=MetricUnit.Count, value=summary["refused"])
    logger.info("sweep fanned out", extra=summary)
    if summary["refused"]:  # the schedule's retry re-sends them (the sent ones de-duplicate)
        raise RuntimeError(f"SQS refused {summary['refused']} sweep request(s)")
    return summary
