"""moto for tests: the dummy AWS environment, mock_aws around it, and a DynamoDB call counter.

One place for what test modules used to repeat: credentials moto accepts, no endpoint override
(a local stack's AWS_ENDPOINT_URL must not leak in), and the environment restored afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto import mock_aws

REGION = "us-east-1"
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@contextmanager
def mocked_aws() -> Iterator[None]:
    """moto's in-process AWS with the dummy environment; the environment comes back afterwards."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in AWS_TEST_ENV.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield


@contextmanager
def counting_calls(events: Any, service: str = "dynamodb") -> Iterator[Counter[str]]:
    """Operations by name made through ``events`` (a client's ``meta.events`` or a session's
    ``events``) while the block runs."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    events.register(f"before-call.{service}", count)
    try:
        yield calls
    finally:
        events.unregister(f"before-call.{service}", count)
