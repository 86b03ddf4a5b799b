"""SQS records as Lambda's event source mapping delivers them, for driving the worker handlers."""

from __future__ import annotations

from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"


def lambda_record(message: dict[str, Any], queue_name: str) -> dict[str, Any]:
    """The record Lambda builds from a message received from ``queue_name`` (a FIFO queue)."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", "0"),
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
            "MessageGroupId": attributes.get("MessageGroupId", ""),
            "MessageDeduplicationId": attributes.get("MessageDeduplicationId", ""),
            "SequenceNumber": attributes.get("SequenceNumber", "1"),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}",
        "awsRegion": REGION,
    }


def made_up_record(body: str, number: int, group: str, queue_name: str) -> dict[str, Any]:
    """A record for a message that never went through a queue (the ``number``-th of a delivery)."""
    message = {
        "MessageId": f"m-{number}",
        "ReceiptHandle": f"r-{number}",
        "Body": body,
        "Attributes": {
            "MessageGroupId": group,
            "MessageDeduplicationId": f"d-{number}",
            "SequenceNumber": str(number + 1),
        },
    }
    return lambda_record(message, queue_name)
