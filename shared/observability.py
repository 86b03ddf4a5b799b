"""One observability setup for every function: Powertools logger, tracer and metrics.

Log messages are short lowercase sentences with structured fields.  Tokens, secrets and QBO data
never reach a log line: callers log ids, codes and counts only, and ``capture_response=False`` is
used on every traced method that handles them.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from shared.constants import SERVICE

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="QBOLink", service=SERVICE)
