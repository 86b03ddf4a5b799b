"""Helpers for the push tests: a connected tenant, the SQS FIFO push queue in moto, the push handler
driven with real SQS-shaped events, and quick access to what the sandbox holds.

Builds on ``connections_fixtures.World`` (API Gateway v2 events, the OAuth dance against the sandbox).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
import pytest

from infra import tables
from qbo_link_local.moto_dynamodb import atomic_dynamodb
from qbo_link_local.moto_sqs import fast_queue_attributes
from qbo_sandbox.server import SandboxServer
from qbo_sandbox.settings import SandboxSettings
from shared import wiring
from shared.connections.store import Connection
from shared.kernel.events import RecordingPublisher
from shared.mapping.links import LinkStore
from shared.push.posting_log import PostingLog
from shared.qbo.client import QboClient
from tests.integration.connections_fixtures import (
    LIMITS_OFF,
    REGION,
    HttpAnswer,
    LambdaContext,
    World,
    http_event,
    sandbox_settings,
)
from tests.moto_env import counting_calls, mocked_backends
from tests.sqs_records import lambda_record

QUEUE_NAME = "qbo-link-push.fifo"
SIGNING_KEY = "push-test-state-signing-key"


def fast_client(connection: Connection) -> QboClient:
    """wiring's QBO client without the minute-long waits Intuit asks for after a 429."""
    return QboClient(
        connection.realm_id,
        wiring.endpoints().api_base_url + "/v3",
        wiring.vault().provider(connection.tenant_id),
        http=wiring.qbo_http(),
        minor_version=wiring.settings().minor_version,
        clock=wiring.clock(),
        throttle_wait=0.005,
        backoff_base=0.002,
        max_backoff=0.02,
        observer=wiring.qbo_call_observer(),
    )


@dataclass
class PushWorld:
    world: World
    sqs: Any
    queue_url: str
    deliveries: int = 0  # push handler invocations, over every drain
    redelivered: int = 0  # messages the handler asked back (partial batch failures)

    # --- the API ---

    def api(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        claims: dict[str, str] | None = None,
    ) -> HttpAnswer:
        from functions.api import handler

        event = http_event(method, path, query=query)
        if body is not None:
            event["body"] = json.dumps(body, default=str)
        if claims is not None:
            event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": []}}
        return HttpAnswer.of(handler.lambda_handler(event, LambdaContext()))

    def put(self, tenant: str, kind_path: str, document: dict[str, Any]) -> HttpAnswer:
        return self.api("PUT", f"/tenants/{tenant}/{kind_path}/{document['id']}", body=document)

    # --- the queue and the push handler ---

    def drain(self, *, rounds: int = 200, before_delivery: Callable[[], None] | None = None) -> int:
        """Deliver everything on the queue to the push handler, as Lambda's event source would:
        up to 10 records a delivery, successes deleted, partial failures made visible again."""
        from functions.push import handler

        for deliveries in range(rounds):
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=60,
                MessageSystemAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                return deliveries
            if before_delivery is not None:
                before_delivery()
            event = {"Records": [lambda_record(m, QUEUE_NAME) for m in messages]}
            result = handler.lambda_handler(event, LambdaContext())
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            self.deliveries += 1
            self.redelivered += len(failed)
            for message in messages:
                if message["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        raise AssertionError("the push queue did not drain")

    # --- our tables ---

    @property
    def links(self) -> LinkStore:
        return LinkStore(self.world.dynamodb.Table(tables.LINKS.default_name), self.world.clock)

    @property
    def log(self) -> PostingLog:
        return PostingLog(self.world.dynamodb.Table(tables.POSTINGS.default_name), self.world.clock)

    # --- the sandbox ---

    def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        return self.world.sandbox(method, path, body)

    def entities(self, realm: str, entity: str) -> list[dict[str, Any]]:
        answer = self.world.http.get(f"{self.world.server.url}/_sandbox/companies/{realm}/entities/{entity}")
        assert answer.status_code == 200, answer.text
        data = json.loads(answer.text, parse_float=Decimal)
        rows = next((v for k, v in data.items() if isinstance(v, list) and k != "deleted"), [])
        return [row for row in rows if isinstance(row, dict)]

    def fault(self, **rule: Any) -> None:
        self.sandbox("POST", "/faults", rule)

    def counters(self, realm: str) -> dict[str, Any]:
        data: dict[str, Any] = self.sandbox("GET", f"/counters?realm={realm}")
        return data


@contextmanager
def push_environment(server: SandboxServer) -> Iterator[PushWorld]:
    """moto (DynamoDB, KMS, SQS FIFO), the sandbox with limits off, and the push wiring; the
    environment variables it sets are restored afterwards (also used by scripts/bench_push.py)."""
    with mocked_backends() as aws:
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(
            QueueName=QUEUE_NAME, Attributes={"FifoQueue": "true", "VisibilityTimeout": "60"}
        )["QueueUrl"]
        events = RecordingPublisher()
        wiring.reset()
        wiring.override(
            settings=sandbox_settings(server, SIGNING_KEY, kms_key_id=aws.key_id, push_queue_url=queue_url),
            clock=server.sandbox.clock,
            events=events,
            push_qbo_client=fast_client,
        )
        world = World(server, wiring.settings(), events, aws.key_id, aws.dynamodb, aws.kms)
        world.sandbox("POST", "/limits", LIMITS_OFF)
        try:
            yield PushWorld(world, sqs, queue_url)
        finally:
            wiring.reset()
            world.http.close()


def link_new_clients(push: PushWorld, tenant: str, realm: str, count: int, name: str) -> None:
    """``count`` customers made in QBO (``name`` and a number), linked to ``tenant``'s clients k0,
    k1, ..."""
    for k in range(count):
        made = push.sandbox("POST", f"/companies/{realm}/entities/Customer", {"DisplayName": f"{name} {k}"})
        push.links.link(tenant, "client", f"k{k}", str(made["Customer"]["Id"]))


@contextmanager
def bench_push_environment() -> Iterator[tuple[PushWorld, Any]]:
    """For the benchmarks: ``push_environment`` over moto with atomic DynamoDB writes and a sandbox
    on a loopback port, the handlers' metric and log lines swallowed; yields the world and boto3's
    default session (where the wiring builds its clients, for counting their calls)."""
    with (
        atomic_dynamodb(),
        fast_queue_attributes(),
        SandboxServer(SandboxSettings(port=0)) as server,
        push_environment(server) as push,
        redirect_stdout(io.StringIO()),
    ):
        # moto starts a fresh default session; wiring builds its DynamoDB resource from it lazily.
        session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        assert session is not None
        yield push, session


@pytest.fixture
def push_world(sandbox_server: SandboxServer) -> Iterator[PushWorld]:
    with push_environment(sandbox_server) as world:
        yield world


@pytest.fixture
def dynamodb_calls(push_world: PushWorld) -> Iterator[Counter[str]]:
    """DynamoDB operations by name while the test runs (boto3's default session: the wiring's)."""
    session = boto3.DEFAULT_SESSION
    assert session is not None
    with counting_calls(session.events) as calls:
        yield calls
