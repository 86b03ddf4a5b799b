"""What the push service reports to the function's metrics for each recheck it is asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from shared.push.service import RecheckScheduled


def record_recheck(tenant_id: str, reason: str, outcome: RecheckScheduled) -> None:
    """The push service's observer (installed by ``shared.wiring``): each recheck asked for, by any
    trigger (the API, a mapping, onboarding, a posting, a reconnect) — ``Rechecks_<status>``
    (``scheduled``: a message went on the queue; ``pending``: one queued before covers it;
    ``nothing_waiting``) and, when something waits, ``RecheckWaiting`` (the documents it covers).
    The reason (``export:work_code``, ``posted``, ...) is in the log line, not a dimension."""
    metrics.add_metric(name=f"Rechecks_{outcome.status}", unit=MetricUnit.Count, value=1)
    if outcome.waiting:
        metrics.add_metric(name="RecheckWaiting", unit=MetricUnit.Count, value=outcome.waiting)
        details = {"tenant_id": tenant_id, "reason": reason, **outcome.as_dict()}
        logger.info("recheck asked for", extra=details)
