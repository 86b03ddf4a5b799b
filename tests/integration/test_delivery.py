"""The deliverer's handler over moto's SQS and Secrets Manager and a loopback endpoint: one batch
delivered, retried and given up, each as SQS must see it (Lambda's partial batch response, the
message hidden until its next attempt, the DLQ with the reason)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from infra import manifest
from qbo_link_local.gateway import LocalContext
from qbo_link_local.pollers import lambda_record
from qbo_link_local.resources import QueueInfo, create_manifest_queue
from shared import wiring
from shared.adapters.sqs import PacedQueue
from shared.kernel import constants
from tests.delivery_receiver import Receiver, documented_verify
from tests.moto_env import REGION, mocked_aws

KEY = "the-stacks-signing-key"
STATUSES = {"e-ok": 204, "e-busy": 503, "e-gone": 410}


@dataclass
class Delivering:
    sqs: Any
    queue: QueueInfo
    dlq: QueueInfo
    receiver: Receiver


def _event(event_id: str) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": f"eb-{event_id}",
            "detail-type": "Document Posted",
            "source": constants.EVENT_SOURCE,
            "account": "123456789012",
            "time": "2026-03-02T14:05:09Z",
            "region": REGION,
            "resources": [],
            "detail": {"event_id": event_id, "tenant_id": "firm-1", "kind": "invoice", "app_id": "i-1"},
        }
    )


@pytest.fixture
def delivering(monkeypatch: pytest.MonkeyPatch) -> Iterator[Delivering]:
    from aws_lambda_powertools.utilities import parameters

    def answer(path: str, headers: dict[str, str], body: bytes) -> int:
        return STATUSES[headers["qbo-link-event-id"]]

    with mocked_aws(), Receiver(answer) as receiver:
        sqs = boto3.client("sqs", region_name=REGION)
        queue, dlq = create_manifest_queue(sqs, manifest.DELIVERY_QUEUE)
        secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=manifest.EVENTS_SECRET.default_name, SecretString=json.dumps({"key": KEY})
        )
        for name, value in {
            constants.EVENTS_URL_ENV: receiver.url,
            constants.EVENTS_SECRET_ARN_ENV: secret["ARN"],
            constants.DELIVERY_QUEUE_URL_ENV: queue.url,
            constants.DELIVERY_DLQ_URL_ENV: dlq.url,
        }.items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        try:
            yield Delivering(sqs, queue, dlq, receiver)
        finally:
            wiring.reset()
            parameters.clear_caches()  # type: ignore[no-untyped-call]


def _received(d: Delivering) -> list[dict[str, Any]]:
    answer = d.sqs.receive_message(
        QueueUrl=d.queue.url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], WaitTimeSeconds=0
    )
    return [lambda_record(m, d.queue) for m in answer.get("Messages", [])]


def test_one_batch_delivered_retried_and_given_up(delivering: Delivering) -> None:
    from functions.deliver import handler

    d = delivering
    for event_id in STATUSES:
        d.sqs.send_message(QueueUrl=d.queue.url, MessageBody=_event(event_id))
    records = _received(d)
    assert len(records) == 3
    by_event = {json.loads(r["body"])["detail"]["event_id"]: r["messageId"] for r in records}

    result = handler.lambda_handler({"Records": records}, LocalContext(manifest.DELIVER))

    # Lambda keeps only the one to retry; it deletes the others (the delivered, the given up)
    assert result == {"batchItemFailures": [{"itemIdentifier": by_event["e-busy"]}]}
    verify = documented_verify()
    assert len(d.receiver.deliveries) == 3
    for delivery in d.receiver.deliveries:
        assert verify(delivery.body, delivery.headers["qbo-link-signature"], KEY)
    # the one to retry is hidden until its next attempt (30 s), not back at once
    assert _received(d) == []
    attributes = d.sqs.get_queue_attributes(QueueUrl=d.queue.url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "3"  # Lambda has not deleted yet
    # the refused one is in the DLQ already, as it was, with why
    [dead] = d.sqs.receive_message(QueueUrl=d.dlq.url, MessageAttributeNames=["All"])["Messages"]
    assert dead["Body"] == _event("e-gone")
    reasons = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert reasons["reason"] == "refused: HTTP 410: not this one"
    assert reasons["event_id"] == "e-gone"


def test_the_paced_queue_hides_a_message_and_dead_letters_with_attributes(delivering: Delivering) -> None:
    d = delivering
    d.sqs.send_message(QueueUrl=d.queue.url, MessageBody="x")
    [record] = _received(d)
    queue = PacedQueue(d.sqs, d.queue.url, d.dlq.url)
    queue.hide(record["receiptHandle"], 0)  # visible again at once
    [again] = _received(d)
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    queue.hide(again["receiptHandle"], 3600)
    assert _received(d) == []
    queue.dead_letter("x", {"reason": "why", "status": ""})  # an empty attribute is left out
    [dead] = d.sqs.receive_message(QueueUrl=d.dlq.url, MessageAttributeNames=["All"])["Messages"]
    assert dead["MessageAttributes"] == {"reason": {"StringValue": "why", "DataType": "String"}}
