"""The change worker: consumer of the SQS FIFO changes queue (message group = tenant).

Glue only.  Every body is parsed and validated first: a webhook notice, or a sweep request
(``source: "sweep"``, enqueued by the sweep schedule's fan-out).  The valid notices are grouped per
tenant and each tenant's group is applied at once (one CDC read per tenant and delivery,
``shared.pull.changes``); then a tenant's sweep request, if any, runs ``PullService.sweep`` once
(several requests of one tenant in a delivery share that run).
Powertools' FIFO processor then reports as batch item failures the malformed bodies (they reach the
DLQ after the queue's maxReceiveCount, never dropped) and every message of a tenant whose apply
failed, plus — to keep a tenant's order — the later messages of the same group.  Re-applying a
notice that was already applied is harmless: event ids are stable per object version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response

from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.pull.changes import Notice, PullService, SweepRequest

processor = SqsFifoPartialProcessor(skip_group_on_error=True)
processor.raise_on_entire_batch_failure = False  # a failing tenant is an ordinary outcome


class RedeliverError(Exception):
    """This message must be delivered again (or, once out of receives, land in the DLQ)."""


def process_records(service: PullService, records: list[dict[str, Any]]) -> dict[str, str]:
    """Apply a delivery; returns the message ids that failed, each with why."""
    from shared.pull.changes import NoticeError, SweepRequest, parse_message

    failed: dict[str, str] = {}
    groups: dict[str, list[tuple[str, Notice]]] = {}
    sweeps: dict[str, list[tuple[str, SweepRequest]]] = {}
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            message = parse_message(str(record.get("body", "")))
        except NoticeError as error:
            failed[message_id] = str(error)
            continue
        if isinstance(message, SweepRequest):
            sweeps.setdefault(message.tenant_id, []).append((message_id, message))
        else:
            groups.setdefault(message.tenant_id, []).append((message_id, message))
    for tenant_id, members in groups.items():
        try:
            service.webhook_batch(tenant_id, [notice for _, notice in members])
        except Exception as error:  # the tenant's messages come back; other tenants go on
            logger.exception("change notices failed", extra={"tenant_id": tenant_id})
            for message_id in [m for m, _ in members] + [m for m, _ in sweeps.pop(tenant_id, [])]:
                failed[message_id] = type(error).__name__
    for tenant_id, requests in sweeps.items():
        try:
            service.sweep_request(requests[-1][1])
        except Exception as error:  # recorded in the tenant's history by the service
            logger.exception("sweep failed", extra={"tenant_id": tenant_id})
            for message_id, _ in requests:
                failed[message_id] = type(error).__name__
    return failed


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from shared import wiring

    records = list(event.get("Records") or [])
    failed = process_records(wiring.pull_service(), records)
    metrics.add_metric(name="ChangeNotices", unit=MetricUnit.Count, value=len(records))
    metrics.add_metric(name="ChangeNoticesFailed", unit=MetricUnit.Count, value=len(failed))
    logger.info("change delivery processed", extra={"records": len(records), "failed": len(failed)})

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in failed:
            raise RedeliverError(failed[record.message_id])

    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
