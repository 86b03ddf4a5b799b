"""What the change worker reports to the function's metrics, per delivery or sweep."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel.observability import metrics

if TYPE_CHECKING:
    from shared.pull.changes import ApplyReport


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
