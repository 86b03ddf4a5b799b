"""The deliverer: consumer of the delivery queue, which an EventBridge rule fills with every event QBO
Link emits (source ``qbo-link``) when the stack has an endpoint (docs/events.md, "Delivery to your
HTTPS endpoint").

Glue only: ``shared.delivery.deliverer.EventDeliverer`` POSTs each event, signed, to the endpoint and
paces its own retries; the records it could not deliver yet are reported as batch item failures,
so SQS keeps them (hidden until their next attempt), and the ones it gave up are in the DLQ already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from shared import wiring

    records = list(event.get("Records") or [])
    report = wiring.event_deliverer().deliver(
        records, time_left=lambda: context.get_remaining_time_in_millis() / 1000
    )
    delivered, retried, dead = report.count("delivered"), report.count("retry"), report.count("dead_lettered")
    metrics.add_metric(name="EventsDelivered", unit=MetricUnit.Count, value=delivered)
    metrics.add_metric(name="EventDeliveryRetries", unit=MetricUnit.Count, value=retried)
    metrics.add_metric(name="EventsDeadLettered", unit=MetricUnit.Count, value=dead)
    logger.info(
        "event deliveries processed",
        extra={"records": len(records), "delivered": delivered, "retried": retried, "dead_lettered": dead},
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in report.failed]}
