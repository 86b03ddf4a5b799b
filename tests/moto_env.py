"""moto for tests: the dummy AWS environment, mock_aws around it, a DynamoDB call counter, a
fresh table per test and a clock the test sets.

One place for what test modules used to repeat: credentials moto accepts, no endpoint override
(a local stack's AWS_ENDPOINT_URL must not leak in), and the environment restored afterwards.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import tables

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


@dataclass(frozen=True)
class Backends:
    """What ``mocked_backends`` made: the DynamoDB resource, the KMS client and the tokens' key."""

    dynamodb: Any
    kms: Any
    key_id: str


@contextmanager
def mocked_backends() -> Iterator[Backends]:
    """``mocked_aws`` with every table of ``infra.tables`` created and a KMS key for the tokens."""
    with mocked_aws():
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        for spec in tables.TABLES:
            tables.create_table(dynamodb.meta.client, spec)
        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key(Description="qbo-link tokens")["KeyMetadata"]["KeyId"]
        yield Backends(dynamodb, kms, key_id)


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


def taken(calls: Counter[str]) -> Counter[str]:
    """The operations counted so far; the counter starts again from zero."""
    made = Counter(calls)
    calls.clear()
    return made


@contextmanager
def fresh_table(dynamodb: Any, spec: tables.TableSpec) -> Iterator[tuple[Any, Counter[str]]]:
    """A table of ``spec`` with a unique name on ``dynamodb`` (a boto3 resource), and the operations
    made on it while the block runs; the table is deleted afterwards."""
    name = tables.create_table(dynamodb.meta.client, spec, name=f"{spec.default_name}-{uuid.uuid4().hex}")
    table = dynamodb.Table(name)
    try:
        with counting_calls(table.meta.client.meta.events) as calls:
            yield table, calls
    finally:
        table.delete()


@dataclass
class FixedClock:
    """A clock that reads ``at``; a test moves it by assigning ``at``."""

    at: datetime = field(default_factory=lambda: datetime(2025, 3, 1, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.at
