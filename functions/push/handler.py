"""The push worker: the SQS FIFO push queue's consumer (message group = tenant).

Glue only: the worker (``shared.push.worker``) posts the whole delivery at once, so creates share
QBO batch requests; Powertools' FIFO processor then reports the messages that must come back
(throttled, transient, uncertain, poison) as partial batch failures, and every later message of the
same tenant with them, so a tenant's documents keep their order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response

from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# All records failing is an ordinary outcome here (a throttled tenant): report them as failures
# rather than raise, so the log shows one line per delivery (the FIFO processor has no such argument).
processor.raise_on_entire_batch_failure = False


class RedeliverError(Exception):
    """This message must be delivered again."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from shared import wiring
    from shared.push.worker import process_bodies

    records = event.get("Records") or []
    bodies = [str(record.get("body", "")) for record in records]
    counts = [int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1)) for record in records]
    report = process_bodies(wiring.push_worker(), bodies, counts)
    failed = {str(records[i].get("messageId")) for i in report.failed}
    metrics.add_metric(name="PushDeliveries", unit=MetricUnit.Count, value=1)
    for outcome, count in report.outcomes.items():
        metrics.add_metric(name=f"Postings_{outcome}", unit=MetricUnit.Count, value=count)
    logger.info("push delivery processed", extra={"records": len(records), "failed": len(failed)})

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in failed:
            raise RedeliverError(record.message_id)

    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
