"""The webhook receiver end to end: the QBO sandbox delivers signed webhooks over real sockets to a
tiny local HTTP server, which hands the raw bytes and headers to the real Lambda handler as an API
Gateway v2 event; DynamoDB and the SQS FIFO changes queue are moto, in process."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx2
import pytest
from moto import mock_aws

from infra import tables
from qbo_sandbox.server import SandboxServer
from qbo_sandbox.webhooks import sign
from shared import wiring
from shared.connections.store import ConnectionStore
from shared.kernel import constants
from shared.kernel.observability import logger
from shared.pull import notifications
from tests.integration.connections_fixtures import REGION, HttpAnswer, LambdaContext, http_event

TOKEN = "integration-webhook-verifier"
TENANT = "firm-1"
OTHER_TENANT = "firm-2"


def deliver(raw: bytes, headers: dict[str, str]) -> HttpAnswer:
    """What API Gateway (HTTP API, payload v2) hands the function for one POST."""
    from functions.webhooks import handler

    event = http_event("POST", "/webhooks/qbo")
    event["headers"] = {k.lower(): v for k, v in headers.items()}
    if headers.get("content-type", "").startswith("application/json"):
        event["body"] = raw.decode("utf-8")
    else:  # API Gateway base64-encodes media types it does not treat as text
        event["body"] = base64.b64encode(raw).decode("ascii")
        event["isBase64Encoded"] = True
    return HttpAnswer.of(handler.lambda_handler(event, LambdaContext()))


@dataclass
class Receiver:
    """Intuit's view of our endpoint: a loopback HTTP server in front of the handler."""

    statuses: list[int] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                answer = deliver(raw, {k.lower(): v for k, v in self.headers.items()})
                receiver.statuses.append(answer.status)
                payload = answer.body.encode()
                self.send_response(answer.status)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/qbo"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class Stage:
    server: SandboxServer
    http: httpx2.Client
    receiver: Receiver
    endpoint: str
    sqs: Any
    queue_url: str
    dynamodb: Any

    def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, f"{self.server.url}/_sandbox{path}", json=body)
        assert answer.status_code in {200, 201, 202}, answer.text
        return answer.json()

    def configure(self, fmt: str, **extra: Any) -> None:
        config = {
            "endpoint_url": self.endpoint,
            "verifier_token": TOKEN,
            "format": fmt,
            "batch_window_seconds": 3600,  # nothing leaves before flush: one POST per test step
            "retry_enabled": False,
            **extra,
        }
        self.sandbox("POST", "/webhooks", config)

    def inject(self, events: list[dict[str, Any]]) -> list[str]:
        ids: list[str] = self.sandbox("POST", "/webhooks/events", events)["event_ids"]
        return ids

    def flush(self) -> list[dict[str, Any]]:
        attempts: list[dict[str, Any]] = self.sandbox("POST", "/webhooks/flush")["attempts"]
        return attempts

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        """Every message in the changes queue: (group id, body), removed as read."""
        got: list[tuple[str, dict[str, Any]]] = []
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            )
            messages = answer.get("Messages", [])
            if not messages:
                return got
            for message in messages:
                got.append((message["Attributes"]["MessageGroupId"], json.loads(message["Body"])))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def runtime_items(self, prefix: str) -> list[dict[str, Any]]:
        items = self.dynamodb.Table(tables.RUNTIME.default_name).scan()["Items"]
        return [item for item in items if str(item[constants.PK]).startswith(prefix)]


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch, sandbox_server: SandboxServer) -> Iterator[Stage]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        constants.VERIFIER_TOKEN_ENV: TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv(constants.INTUIT_SECRET_ARN_ENV, raising=False)
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        for spec in (tables.CONNECTIONS, tables.RUNTIME):
            tables.create_table(dynamodb.meta.client, spec)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(
            QueueName="qbo-link-changes.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"}
        )["QueueUrl"]
        monkeypatch.setenv(constants.CHANGES_QUEUE_URL_ENV, queue_url)
        wiring.reset()
        receiver = Receiver()
        endpoint = receiver.start()
        http = httpx2.Client(timeout=10, trust_env=False)
        try:
            yield Stage(sandbox_server, http, receiver, endpoint, sqs, queue_url, dynamodb)
        finally:
            receiver.stop()
            http.close()
            wiring.reset()


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """What our Powertools logger writes (JSON lines, as CloudWatch would get them)."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def connect(stage: Stage, tenant: str) -> str:
    """A company in the sandbox whose realm the tenant owns (as the OAuth callback leaves it)."""
    realm: str = stage.sandbox("POST", "/companies", {"country": "US"})["realmId"]
    ConnectionStore(
        stage.dynamodb.Table(tables.CONNECTIONS.default_name),
        stage.dynamodb.Table(tables.RUNTIME.default_name),
    ).claim_realm(realm, tenant)
    return realm


def expected(
    tenant: str, realm: str, entity: str, entity_id: str, operation: str, **rest: Any
) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "realm_id": realm,
        "entity": entity,
        "entity_id": entity_id,
        "operation": operation,
        "deleted_id": rest.get("deleted_id"),
        "source": "webhook",
    }


def without_volatile(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in {"event_id", "occurred_at"}}


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("legacy", "application/json"),
        ("cloudevents", "application/json"),
        ("cloudevents", "application/cloudevents+json"),
    ],
)
def test_sandbox_delivery_reaches_the_queue_per_tenant(stage: Stage, fmt: str, content_type: str) -> None:
    # Given two tenants' companies and one company nobody connected, and the sandbox pointed at us
    realm_a, realm_b = connect(stage, TENANT), connect(stage, OTHER_TENANT)
    stranger = stage.sandbox("POST", "/companies", {"country": "US"})["realmId"]
    stage.configure(fmt, content_type=content_type)
    ids = stage.inject(
        [
            {
                "realm": realm_a,
                "entity": "Customer",
                "id": "58",
                "operation": "Create",
                "time": "2026-11-22T12:00:00-08:00",
            },
            {"realm": realm_b, "entity": "Payment", "id": "7", "operation": "Create"},
            {"realm": stranger, "entity": "Customer", "id": "1", "operation": "Update"},
            {"realm": realm_a, "entity": "Customer", "id": "58", "operation": "Merge", "deletedId": "27"},
            {"realm": realm_a, "entity": "Invoice", "id": "130", "operation": "Void"},
        ]
    )
    # When the sandbox delivers them (one POST, several realms)
    attempts = stage.flush()
    # Then it got a 200 and each known realm's changes are in its tenant's message group
    assert [(a["status"], a["outcome"]) for a in attempts] == [(200, "delivered")]
    assert len(set(attempts[0]["realms"])) == 3
    messages = stage.drain()
    assert sorted(((group, without_volatile(body)) for group, body in messages), key=repr) == sorted(
        [
            (TENANT, expected(TENANT, realm_a, "Customer", "58", "Create")),
            (OTHER_TENANT, expected(OTHER_TENANT, realm_b, "Payment", "7", "Create")),
            (TENANT, expected(TENANT, realm_a, "Customer", "58", "Merge", deleted_id="27")),
            (TENANT, expected(TENANT, realm_a, "Invoice", "130", "Void")),
        ],
        key=repr,
    )
    for _group, body in messages:
        assert set(body) == {
            "tenant_id", "realm_id", "entity", "entity_id", "operation", "occurred_at", "deleted_id",
            "event_id", "source",
        }  # fmt: skip
    created = next(
        body for _g, body in messages if body["operation"] == "Create" and body["realm_id"] == realm_a
    )
    assert created["occurred_at"] == "2026-11-22T20:00:00+00:00"
    if fmt == "cloudevents":  # CloudEvents ids are Intuit's (here the sandbox's) own
        assert {body["event_id"] for _g, body in messages} <= set(ids)
    # The per-tenant order of the sandbox's changes is kept inside each group
    ops_a = [body["operation"] for group, body in messages if group == TENANT]
    assert ops_a == ["Create", "Merge", "Void"]


def test_forged_signature_is_refused_and_nothing_is_enqueued(stage: Stage) -> None:
    realm = connect(stage, TENANT)
    stage.configure("cloudevents", verifier_token="somebody-elses-token")
    stage.inject([{"realm": realm, "entity": "Customer", "id": "1", "operation": "Create"}])
    attempts = stage.flush()
    assert [a["status"] for a in attempts] == [403]
    # A missing header is refused too
    body = b'[{"specversion":"1.0"}]'
    assert deliver(body, {"content-type": "application/json"}).status == 403
    assert stage.drain() == []
    assert stage.runtime_items(notifications.EVENT_PREFIX) == []
    assert stage.runtime_items(notifications.UNPARSEABLE_PREFIX) == []


def test_unknown_realm_is_acknowledged_and_nothing_is_enqueued(stage: Stage, log: io.StringIO) -> None:
    realm = stage.sandbox("POST", "/companies", {"country": "US"})["realmId"]
    stage.configure("legacy")
    stage.inject([{"realm": realm, "entity": "Customer", "id": "1", "operation": "Create"}])
    assert [a["status"] for a in stage.flush()] == [200]
    assert stage.drain() == []
    logged = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    taken_in = [line for line in logged if line.get("message") == "webhook delivery taken in"]
    assert [line["unknown_realm"] for line in taken_in] == [1]


def test_a_duplicated_delivery_is_enqueued_once(stage: Stage) -> None:
    realm = connect(stage, TENANT)
    stage.configure("legacy")
    stage.sandbox("POST", "/webhooks/faults", {"duplicate_batches": 1})
    stage.inject(
        [
            {"realm": realm, "entity": "Customer", "id": "1", "operation": "Update"},
            {"realm": realm, "entity": "Customer", "id": "2", "operation": "Update"},
        ]
    )
    attempts = stage.flush()
    assert [(a["status"], a["duplicate"]) for a in attempts] == [(200, False), (200, True)]
    messages = stage.drain()
    assert sorted(body["entity_id"] for _g, body in messages) == ["1", "2"]
    # The ledger remembers both ids for a week
    items = stage.runtime_items(notifications.EVENT_PREFIX)
    assert {item["state"] for item in items} == {"enqueued"}
    assert len(items) == 2
    assert all(int(item[constants.TTL_ATTRIBUTE]) > int(item["enqueued_at"]) + 6 * 86400 for item in items)


def test_unparseable_signed_body_is_acknowledged_and_kept(stage: Stage, log: io.StringIO) -> None:
    connect(stage, TENANT)
    body = b'{"eventNotifications":[{"realmId":"secret-customer-name-Acme","dataChangeEvent":42}]}'
    answer = deliver(body, {"content-type": "application/json", "Intuit-Signature": sign(body, TOKEN)})
    assert answer.status == 200
    kept = stage.runtime_items(notifications.UNPARSEABLE_PREFIX)
    assert len(kept) == 1
    assert bytes(kept[0]["body"].value) == body
    assert kept[0]["problems"]
    assert int(kept[0][constants.TTL_ATTRIBUTE]) > 0
    assert stage.drain() == []
    assert "body unparseable, kept" in log.getvalue()
    assert "Acme" not in log.getvalue()  # Intuit data never reaches the logs


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" * 5000 + b"]" * 5000, "application/json"),  # deeper than the parser's recursion
        (b'{"eventNotifications":' * 2000 + b"[]" + b"}" * 2000, "application/cloudevents+json"),
        (b'{"eventNotifications":[' + b"9" * 5000 + b"]}", "application/json"),  # past int's digit limit
        (b'{"eventNotifications":[NaN, Infinity]}', "application/json"),
        (b"\xff\xfe not UTF-8", "application/octet-stream"),
    ],
    ids=["deep-array", "deep-object", "huge-int", "nan", "not-utf8"],
)
def test_a_signed_body_no_parser_can_read_is_acknowledged_and_kept(
    stage: Stage, body: bytes, content_type: str
) -> None:
    answer = deliver(body, {"content-type": content_type, "Intuit-Signature": sign(body, TOKEN)})
    assert answer.status == 200, answer.body
    kept = stage.runtime_items(notifications.UNPARSEABLE_PREFIX)
    assert [bytes(item["body"].value) for item in kept] == [body]
    assert stage.drain() == []


def test_an_unsigned_deeply_nested_body_is_refused_and_nothing_is_kept(stage: Stage) -> None:
    body = b"[" * 5000 + b"]" * 5000
    assert deliver(body, {"content-type": "application/json"}).status == 403
    assert stage.runtime_items(notifications.UNPARSEABLE_PREFIX) == []


def test_replay_of_a_cloudevents_batch_after_sqs_forgot_it_is_dropped(stage: Stage) -> None:
    # Given a delivery taken in, and SQS's own 5-minute de-duplication gone (the queue purged)
    realm = connect(stage, TENANT)
    event = {
        "specversion": "1.0", "id": "evt-replayed-1", "source": "intuit.x", "type": "qbo.customer.updated.v1",
        "datacontenttype": "application/json", "time": "2026-11-22T20:00:00Z", "intuitentityid": "9",
        "intuitaccountid": realm, "data": {},
    }  # fmt: skip
    body = json.dumps([event]).encode()
    headers = {"content-type": "application/cloudevents+json", "intuit-signature": sign(body, TOKEN)}
    assert deliver(body, headers).status == 200
    assert [b["event_id"] for _g, b in stage.drain()] == ["evt-replayed-1"]
    stage.sqs.purge_queue(QueueUrl=stage.queue_url)
    # When Intuit delivers the same batch again
    assert deliver(body, headers).status == 200
    # Then the ledger drops it
    assert stage.drain() == []
