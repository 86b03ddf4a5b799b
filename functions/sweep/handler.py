"""The scheduled pull sweep (EventBridge Scheduler): fan out one queue message per connected tenant.

Glue only: ``shared.pull.sweep.SweepFanOut`` enqueues one sweep request per HEALTHY connection on the
changes SQS FIFO queue, and the change worker (``functions/changes``) runs each (docs/pull.md,
"Scheduled sweep"). A request SQS refuses fails the invocation, so the schedule's retry sends it
again (the ones already sent de-duplicate).
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
    del context
    from shared import wiring

    summary = wiring.sweep_fan_out().fan_out(event)
    metrics.add_metric(name="SweepTenants", unit=MetricUnit.Count, value=summary["tenants"])
    metrics.add_metric(name="SweepEnqueueRefused", unit=MetricUnit.Count, value=summary["refused"])
    logger.info("sweep fanned out", extra=summary)
    if summary["refused"]:  # the schedule's retry re-sends them (the sent ones de-duplicate)
        raise RuntimeError(f"SQS refused {summary['refused']} sweep request(s)")
    return summary
