"""Webhook receiver figures: the handler module's import time (cold start share) in a fresh
interpreter, and the in-process time to answer a 10-event and a 100-event signed delivery with
DynamoDB and SQS in moto (so the AWS calls cost microseconds here, milliseconds in a region).

    .venv/bin/python scripts/bench_webhooks.py [--runs 20]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-verifier-token"  # noqa: S105 - a made-up local token
IMPORT_PROBE = (
    "import time; t = time.perf_counter(); import functions.webhooks.handler; print(time.perf_counter() - t)"
)


def import_seconds(runs: int) -> list[float]:
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    return [
        float(subprocess.check_output([sys.executable, "-c", IMPORT_PROBE], cwd=ROOT, env=env, text=True))
        for _ in range(runs)
    ]


def delivery(realm: str, count: int) -> bytes:
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "intuit.bench",
                "type": "qbo.customer.updated.v1",
                "datacontenttype": "application/json",
                "time": "2026-11-22T20:00:00.123456789Z",
                "intuitentityid": str(i),
                "intuitaccountid": realm,
                "data": {},
            }
            for i in range(count)
        ]
    ).encode()


def answer_seconds(runs: int, events: int) -> list[float]:
    import boto3
    from moto import mock_aws

    sys.path.insert(0, str(ROOT))
    from functions.webhooks import handler
    from shared import tables, wiring
    from shared.connection_store import ConnectionStore
    from shared.pull import notifications
    from tests.integration.connections_fixtures import LambdaContext, http_event

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            notifications.VERIFIER_TOKEN_ENV: TOKEN,
        }
    )
    figures: list[float] = []
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        for spec in (tables.CONNECTIONS, tables.RUNTIME):
            tables.create_table(dynamodb.meta.client, spec)
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="bench.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        os.environ[notifications.CHANGES_QUEUE_URL_ENV] = url
        wiring.reset()
        ConnectionStore(
            dynamodb.Table(tables.CONNECTIONS.default_name), dynamodb.Table(tables.RUNTIME.default_name)
        ).claim_realm("4620816365", "bench")
        for _ in range(runs + 1):  # the first run builds the clients: reported apart
            body = delivery("4620816365", events)
            event: dict[str, Any] = http_event("POST", "/webhooks/qbo")
            event["headers"] = {
                "content-type": "application/cloudevents+json",
                "intuit-signature": notifications.expected_signature(body, TOKEN),
            }
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
            started = time.perf_counter()
            result = handler.lambda_handler(event, LambdaContext())
            figures.append(time.perf_counter() - started)
            assert result["statusCode"] == 200, result
            drain(sqs, url)  # moto's FIFO scans every stored message on each send
        wiring.reset()
    return figures


def drain(sqs: Any, url: str) -> None:
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def show(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    print(f"{label:<44} median {statistics.median(ms):8.1f} ms   p90 {ms[int(len(ms) * 0.9) - 1]:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    show("import functions.webhooks.handler (fresh)", import_seconds(args.runs))
    for events in (10, 100):
        figures = answer_seconds(args.runs, events)
        print(f"first {events}-event delivery (builds clients) {figures[0] * 1000:14.1f} ms")
        show(f"{events}-event delivery, warm (moto)", figures[1:])


if __name__ == "__main__":
    main()
