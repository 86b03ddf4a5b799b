"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.moto_env import REGION, mocked_aws


@pytest.fixture(scope="module")
def module_dynamodb() -> Iterator[Any]:
    """One moto DynamoDB backend per test module (fast); tests make their own tables on it
    (``tests.moto_env.fresh_table``)."""
    with mocked_aws():
        yield boto3.resource("dynamodb", region_name=REGION)
