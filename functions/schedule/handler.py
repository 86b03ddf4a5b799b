"""The token keep-alive, run daily by EventBridge Scheduler: every live connection is refreshed at
least once a day (Intuit's 100-day inactivity expiry) and warned ahead of its 5-year hard expiry.

The answer is the report's counts; no token, no QBO data.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(_event: dict[str, Any], _context: LambdaContext) -> dict[str, int]:
    from shared import wiring

    report = asdict(wiring.vault().keep_alive())
    for name in ("checked", "refreshed", "failed", "dead", "warnings"):
        metrics.add_metric(name=f"KeepAlive_{name}", unit=MetricUnit.Count, value=report[name])
    return report
