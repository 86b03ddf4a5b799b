"""What every QBO call reports to the function's metrics: latency per operation, and throttling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel.constants import SERVICE
from shared.kernel.observability import NAMESPACE, metrics

if TYPE_CHECKING:
    from shared.qbo.client import QboCall


def record_qbo_call(call: QboCall) -> None:
    """The QBO client's observer (installed by ``shared.wiring``): every HTTP exchange with QBO.

    ``QboLatency`` (milliseconds) carries the operation as a dimension (read, create, update,
    delete, void, query, batch, cdc: few values), so it is emitted as its own metric line; a 429
    also counts one ``QboThrottled`` in the function's metrics, flushed with the invocation's.
    """
    with single_metric(
        name="QboLatency",
        unit=MetricUnit.Milliseconds,
        value=round(call.seconds * 1000, 3),
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        metric.add_dimension(name="operation", value=call.operation)
    if call.throttled:
        metrics.add_metric(name="QboThrottled", unit=MetricUnit.Count, value=1)
