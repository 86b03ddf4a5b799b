"""The test harness's DynamoDB (tests/conftest.py): transactions stay all-or-nothing while rolling back
item by item instead of from a copy of every table they touch (the bulk push relies on that speed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

REGION = "us-east-1"


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        created = dynamodb.create_table(
            TableName="harness",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield created


def _items(table: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["pk"], i["sk"]): i for i in table.scan()["Items"]}


def _transaction(table: Any, *, condition_holds: bool) -> list[dict[str, Any]]:
    name = table.name
    return [
        {
            "Update": {
                "TableName": name,
                "Key": {"pk": "t", "sk": "updated"},
                "UpdateExpression": "SET #v = :v ADD #n :one",
                "ExpressionAttributeNames": {"#v": "value", "#n": "count"},
                "ExpressionAttributeValues": {":v": "after", ":one": 1},
            }
        },
        {"Put": {"TableName": name, "Item": {"pk": "t", "sk": "new", "value": "after"}}},
        {"Put": {"TableName": name, "Item": {"pk": "other", "sk": "new", "value": "after"}}},
        {"Delete": {"TableName": name, "Key": {"pk": "t", "sk": "deleted"}}},
        {
            "ConditionCheck": {
                "TableName": name,
                "Key": {"pk": "t", "sk": "guard"},
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "value"},
                "ExpressionAttributeValues": {":v": "open" if condition_holds else "closed"},
            }
        },
    ]


def _seed(table: Any) -> dict[tuple[str, str], dict[str, Any]]:
    table.put_item(Item={"pk": "t", "sk": "updated", "value": "before", "count": 5, "nested": {"a": [1]}})
    table.put_item(Item={"pk": "t", "sk": "deleted", "value": "before"})
    table.put_item(Item={"pk": "t", "sk": "guard", "value": "open"})
    for n in range(20):
        table.put_item(Item={"pk": "bystander", "sk": f"{n:03d}", "value": "untouched"})
    return _items(table)


def test_a_cancelled_transaction_leaves_every_item_as_it_was(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    # Given items, and a spy on any copy of a whole table
    before = _seed(table)
    copied: list[str] = []

    def spy(self: Any, memo: Any) -> Any:
        copied.append(self.name)
        raise AssertionError("a whole table was copied")

    monkeypatch.setattr(Table, "__deepcopy__", spy, raising=False)
    # When a transaction updates, creates (also a new partition) and deletes, then fails its last check
    with pytest.raises(ClientError) as refused:
        table.meta.client.transact_write_items(TransactItems=_transaction(table, condition_holds=False))
    # Then it is refused as DynamoDB does, and nothing it did remains
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _items(table) == before
    other = table.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": "other"})
    assert other["Count"] == 0
    assert copied == []


def test_a_transaction_whose_conditions_hold_applies_every_action(table: Any) -> None:
    before = _seed(table)
    table.meta.client.transact_write_items(TransactItems=_transaction(table, condition_holds=True))
    after = _items(table)
    assert after[("t", "updated")]["value"] == "after"
    assert after[("t", "updated")]["count"] == 6
    assert after[("t", "new")]["value"] == "after"
    assert after[("other", "new")]["value"] == "after"
    assert ("t", "deleted") not in after
    assert {k: v for k, v in after.items() if k[0] == "bystander"} == {
        k: v for k, v in before.items() if k[0] == "bystander"
    }


def test_update_expressions_are_still_checked_on_every_write(table: Any) -> None:
    # A valid expression applies its own values every time (parsed and checked once per text)
    for value in ("first", "second"):
        table.update_item(
            Key={"pk": "t", "sk": "a"},
            UpdateExpression="SET #v = :v",
            ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":v": value},
        )
        assert table.get_item(Key={"pk": "t", "sk": "a"})["Item"]["value"] == value
    # while one that names a path twice, or changes a key, is refused every time it comes
    for _ in range(2):
        with pytest.raises(ClientError, match=r"overlap|Two document paths"):
            table.update_item(
                Key={"pk": "t", "sk": "a"},
                UpdateExpression="SET #v = :v, #v = :w",
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues={":v": "x", ":w": "y"},
            )
        with pytest.raises(ClientError, match="key"):
            table.update_item(
                Key={"pk": "t", "sk": "a"},
                UpdateExpression="SET #v = :v",
                ExpressionAttributeNames={"#v": "sk"},
                ExpressionAttributeValues={":v": "moved"},
            )
    assert table.get_item(Key={"pk": "t", "sk": "a"})["Item"]["value"] == "second"


def test_queries_and_scans_keep_key_order(table: Any) -> None:
    for sk in ("b", "a", "c", "10", "9"):
        table.put_item(Item={"pk": "t", "sk": sk})
    table.put_item(Item={"pk": "s", "sk": "z"})
    answer = table.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": "t"})
    assert [i["sk"] for i in answer["Items"]] == ["10", "9", "a", "b", "c"]
    assert [(i["pk"], i["sk"]) for i in table.scan()["Items"]] == [
        ("s", "z"),
        ("t", "10"),
        ("t", "9"),
        ("t", "a"),
        ("t", "b"),
        ("t", "c"),
    ]


def test_the_lazy_queue_attributes_are_motos_own() -> None:
    import boto3
    from moto import mock_aws
    from moto.sqs.models import sqs_backends

    from qbo_link_local.moto_sqs import LazyQueueAttributes, mocos_attributes

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="d.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
        url = sqs.create_queue(
            QueueName="q.fifo", Attributes={"FifoQueue": "true", "RedrivePolicy": redrive}
        )["QueueUrl"]
        for n in range(3):
            sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId=str(n))
        queue = sqs_backends["123456789012"]["us-east-1"].queues["q.fifo"]
        lazy = dict(LazyQueueAttributes(queue))
        assert lazy == mocos_attributes(queue)
        assert (lazy["ApproximateNumberOfMessages"], lazy["FifoQueue"]) == (3, "true")
        listed = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (listed["ApproximateNumberOfMessages"], listed["RedrivePolicy"]) == ("3", redrive)
