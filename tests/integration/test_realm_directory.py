"""Realm ownership is mirrored into the runtime table, in the same transaction as the claim, so the
webhook receiver can route notices without any access to the tokens' table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra import manifest as stack
from infra import tables
from shared.connections.store import ConnectionStore, RealmDirectory, RealmTakenError
from shared.kernel import constants
from tests.moto_env import mocked_aws


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mocked_aws():
        resource = boto3.resource("dynamodb")
        for spec in (tables.CONNECTIONS, tables.RUNTIME):
            tables.create_table(resource.meta.client, spec)
        yield resource


def test_a_claim_and_its_release_move_the_directory_with_them(dynamodb: Any) -> None:
    runtime = dynamodb.Table(tables.RUNTIME.default_name)
    store = ConnectionStore(dynamodb.Table(tables.CONNECTIONS.default_name), runtime)
    directory = RealmDirectory(runtime)

    store.claim_realm("9341", "t1")
    assert directory.owner_of("9341") == "t1"
    with pytest.raises(RealmTakenError):
        store.claim_realm("9341", "t2")
    assert directory.owner_of("9341") == "t1"  # the refused claim wrote nothing
    assert store.release_realm("9341", "t2") is False
    assert directory.owner_of("9341") == "t1"
    assert store.release_realm("9341", "t1") is True
    assert directory.owner_of("9341") is None
    assert store.owner_of("9341") is None
    store.claim_realm("9341", "t2")
    assert directory.owner_of("9341") == "t2"
    item = runtime.get_item(Key=RealmDirectory.key("9341"))["Item"]
    assert constants.TTL_ATTRIBUTE not in item  # lives as long as the claim


def test_the_webhook_function_is_given_no_tokens_table_key_or_app_secret() -> None:
    names = stack.Names(
        queue_urls={q.logical_id: f"https://sqs/{q.default_name}" for q in stack.QUEUES},
        secret_arns={s.logical_id: f"arn:{s.default_name}" for s in stack.SECRETS},
    )
    env = stack.function_environment(stack.WEBHOOKS, names)
    assert constants.CONNECTIONS_TABLE_ENV not in env
    assert constants.KMS_KEY_ENV not in env
    assert constants.INTUIT_SECRET_ARN_ENV not in env
    assert env[constants.WEBHOOK_SECRET_ARN_ENV] == "arn:qbo-link/webhook-verifier"
    assert env[constants.CHANGES_QUEUE_URL_ENV].endswith("qbo-link-changes.fifo")
    assert tables.CONNECTIONS not in stack.WEBHOOKS.tables
    assert not stack.WEBHOOKS.tokens
