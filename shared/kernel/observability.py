"""One observability setup for every function: Powertools logger and metrics.

Tracing is Lambda's own (active tracing, ``infra/constructs/functions.py``): each invocation's segment
with its initialisation, invocation and overhead, and log lines carry its ``xray_trace_id``.  There
is no X-Ray SDK in the functions (no Powertools ``Tracer``): importing it cost more than any handler's
own import, patching botocore at import time (docs/packaging.md, "Cold start"), and its only addition
would be subsegments for the boto3 calls.

Log messages are short lowercase sentences with structured fields.  Tokens, secrets and QBO data
never reach a log line: callers log ids, codes and counts only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel.constants import SERVICE

if TYPE_CHECKING:
    from shared.pull.changes import ApplyReport
    from shared.push.service import RecheckScheduled
    from shared.qbo.client import QboCall

NAMESPACE: Final = "QBOLink"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


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


def record_pull(report: ApplyReport) -> None:
    """The change worker's observer (installed by ``shared.wiring``): per delivery or sweep, what
    the pull saved and spent — ``ChangeEchoes`` (our own writes recognised, no read, no event),
    ``NoticesCoalesced`` (notices an earlier read covered), ``ChangeReads`` (CDC and other metered
    reads) and ``ChangeEvents`` (events published)."""
    for name, value in (
        ("ChangeEchoes", report.echoes),
        ("NoticesCoalesced", report.coalesced),
        ("ChangeReads", report.reads),
        ("ChangeEvents", sum(report.events.values())),
    ):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


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
