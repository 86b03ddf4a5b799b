"""One observability setup for every function: Powertools logger and metrics.

Each direction reports its own figures through an observer next to its code (``shared.qbo.metrics``,
``shared.push.metrics``, ``shared.pull.metrics``), which ``shared.wiring`` installs.

Tracing is Lambda's own (active tracing, ``infra/constructs/functions.py``): each invocation's segment
with its initialisation, invocation and overhead, and log lines carry its ``xray_trace_id``.  There
is no X-Ray SDK in the functions (no Powertools ``Tracer``): importing it cost more than any handler's
own import, patching botocore at import time (docs/packaging.md, "Cold start"), and its only addition
would be subsegments for the boto3 calls.

Log messages are short lowercase sentences with structured fields.  Tokens, secrets and QBO data
never reach a log line: callers log ids, codes and counts only.
"""

from __future__ import annotations

from typing import Final

from aws_lambda_powertools import Logger, Metrics

from shared.kernel.constants import SERVICE

NAMESPACE: Final = "QBOLink"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
