"""The scheduled pull sweep (EventBridge Scheduler): CDC from each healthy tenant's cursor.

Glue only.  Here the sweep loops over the tenants directly, one CDC read each; a tenant that fails
is recorded in its exchange history and the loop goes on.  (At scale the schedule should fan out
one queue message per tenant instead, so each tenant gets its own Lambda run and retries; see
docs/pull.md.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.pull.changes import PullService


def sweep_all(service: PullService) -> dict[str, Any]:
    from shared import wiring
    from shared.health import Health

    summary: dict[str, Any] = {"tenants": 0, "succeeded": 0, "failed": 0, "events": 0}
    for connection in wiring.store().list_by_health(Health.HEALTHY):
        summary["tenants"] += 1
        try:
            exchange = service.sweep(
                connection.tenant_id, connection.realm_id, connected_at=connection.connected_at
            )
        except Exception:  # recorded in the tenant's history by the service
            logger.exception("sweep failed", extra={"tenant_id": connection.tenant_id})
            summary["failed"] += 1
            continue
        summary["succeeded"] += 1
        summary["events"] += sum(exchange.events.values())
    return summary


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del event, context
    from shared.pull.changes import build_pull_service

    summary = sweep_all(build_pull_service())
    metrics.add_metric(name="SweepTenants", unit=MetricUnit.Count, value=summary["tenants"])
    metrics.add_metric(name="SweepFailures", unit=MetricUnit.Count, value=summary["failed"])
    logger.info("sweep finished", extra=summary)
    return summary
