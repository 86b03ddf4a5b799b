"""Delivery of the events to the host app's endpoint, end to end through the local stack.

A loopback receiver stands for the host app's endpoint: the stack runs with ``events_url`` pointing
at it (``qbo-link dev --events-url``), tenants connect through the real OAuth flow, and the
``Connection Connected`` the product emits reaches the receiver through the bus, the delivery rule,
the delivery queue and the real deliverer.  The receiver checks each delivery with the snippet of
docs/events.md as it is written there.  One tenant's endpoint fails once with 500 (the same event
comes again), another's answers 410 (the event ends in the DLQ).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx2
import pytest

from infra import manifest
from qbo_link_local.http_api import EVENTS_PATH
from qbo_link_local.stack import LocalStack, LocalStackConfig
from shared.delivery import signing
from shared.kernel import constants
from shared.kernel.events import CONNECTION_CONNECTED
from tests.delivery_receiver import Delivery, Receiver, documented_verify
from tests.e2e.dev_process import DevProcess, clean_env, dev
from tests.e2e.local_fixtures import Host

__all__ = ["dev"]

REPO = Path(__file__).resolve().parents[2]
OK, FLAKY, GONE = "firm-ok", "firm-flaky", "firm-gone"
# What each tenant's endpoint answers to its Connection Connected, attempt after attempt.
PLANS = {FLAKY: [500, 200], GONE: [410]}


@dataclass
class World:
    stack: LocalStack
    host: Host
    receiver: Receiver

    def connected(self, tenant: str) -> list[Delivery]:
        """The receiver's deliveries of ``tenant``'s Connection Connected, in order."""

        def about(delivery: Delivery) -> bool:
            event = json.loads(delivery.body)
            return bool(
                event["detail-type"] == CONNECTION_CONNECTED and event["detail"]["tenant_id"] == tenant
            )

        return self.receiver.received(about)


def _planned() -> Any:
    attempts: Counter[str] = Counter()

    def answer(path: str, headers: dict[str, str], body: bytes) -> int:
        event = json.loads(body)
        tenant = event["detail"].get("tenant_id", "")
        if event["detail-type"] != CONNECTION_CONNECTED or tenant not in PLANS:
            return 200
        plan = PLANS[tenant]
        attempts[tenant] += 1
        return plan[min(attempts[tenant], len(plan)) - 1]

    return answer


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    lines: list[str] = []
    with Receiver(_planned()) as receiver:
        config = LocalStackConfig(retry_delay=0.1, log=lines.append, events_url=receiver.url)
        with LocalStack(config) as stack, httpx2.Client(timeout=30) as http:
            host = Host(stack, http)
            for tenant in (OK, FLAKY, GONE):
                host.connect(tenant)
            stack.wait_idle(90)
            yield World(stack, host, receiver)


def test_an_event_the_product_emitted_reaches_the_endpoint_signed(world: World) -> None:
    verify = documented_verify()
    # Given a tenant connected through the OAuth flow: the product emitted Connection Connected
    [emitted] = [e for e in world.stack.events(CONNECTION_CONNECTED) if e["detail"]["tenant_id"] == OK]
    # Then the endpoint received it once, as EventBridge's rule delivers it
    [delivery] = world.connected(OK)
    event = json.loads(delivery.body)
    assert delivery.path == "/qbo-link/events"
    assert event == emitted  # the envelope with its detail
    assert event["source"] == constants.EVENT_SOURCE
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["qbo-link-event-id"] == emitted["detail"]["event_id"]
    assert delivery.headers["qbo-link-event-type"] == CONNECTION_CONNECTED
    assert delivery.headers["qbo-link-delivery-attempt"] == "1"
    # And the documented snippet verifies it with the stack's signing key, and only with it
    key = world.stack.events_signing_key
    header = delivery.headers["qbo-link-signature"]
    assert header.startswith("t=")
    assert verify(delivery.body, header, key)
    assert not verify(delivery.body, header, key + "x")
    assert not verify(delivery.body.replace(b"firm-ok", b"firm-ko"), header, key)
    assert not verify(delivery.body, header, key, now=int(header[2:].split(",")[0]) + 301)
    # Every other event went out too (onboarding's, ...), each once and answered 200
    others = world.receiver.received(lambda d: json.loads(d.body)["detail"].get("tenant_id") == OK)
    assert {d.headers["qbo-link-event-type"] for d in others} == {
        e["detail-type"] for e in world.stack.events() if e["detail"].get("tenant_id") == OK
    }


def test_an_endpoint_answering_500_gets_the_same_event_again(world: World) -> None:
    verify = documented_verify()
    first, second = world.connected(FLAKY)  # 500, then 200: delivered, and not sent a third time
    assert [first.status, second.status] == [500, 200]
    assert first.body == second.body
    assert first.headers["qbo-link-event-id"] == second.headers["qbo-link-event-id"]
    assert [first.headers["qbo-link-delivery-attempt"], second.headers["qbo-link-delivery-attempt"]] == [
        "1",
        "2",
    ]
    for delivery in (first, second):  # each attempt signed for itself
        assert verify(delivery.body, delivery.headers["qbo-link-signature"], world.stack.events_signing_key)
    dead = [json.loads(body) for body in world.stack.dead_letters(manifest.DELIVERY_QUEUE.dlq_logical_id)]
    assert FLAKY not in {e["detail"]["tenant_id"] for e in dead}


def test_an_endpoint_answering_410_sends_the_event_to_the_dlq(world: World) -> None:
    [refused] = world.connected(GONE)  # once: a 410 is not retried
    assert refused.status == 410
    sqs = boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).client("sqs", endpoint_url=world.stack.moto_url)
    answer = sqs.receive_message(
        QueueUrl=world.stack.names.queue_urls[manifest.DELIVERY_QUEUE.dlq_logical_id],
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        MessageAttributeNames=["All"],
    )
    dead = [m for m in answer.get("Messages", []) if json.loads(m["Body"])["detail"]["tenant_id"] == GONE]
    [message] = dead
    assert message["Body"].encode() == refused.body  # kept as it was: a redrive delivers it again
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["reason"] == "refused: HTTP 410: not this one"
    assert attributes["status"] == "410"
    assert attributes["event_id"] == refused.headers["qbo-link-event-id"]
    assert world.stack.stats()["queues"][manifest.DELIVERY_QUEUE.logical_id] == 0


def test_qbo_link_events_tails_the_stack_until_ctrl_c(world: World) -> None:
    command = [sys.executable, "-m", "qbo_link_cli.main", "events", "--api-url", world.stack.api_url]
    with subprocess.Popen(
        [*command, "--json", "--last", "1000", "--tenant", OK, "--interval", "0.1"],
        cwd=REPO,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            seen: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                e["detail-type"] == CONNECTION_CONNECTED for e in seen
            ):
                seen.append(json.loads(process.stdout.readline()))
            process.send_signal(signal.SIGINT)  # Ctrl-C
            rest, errors = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0
    assert errors == ""
    seen += [json.loads(line) for line in rest.splitlines()]
    assert {e["detail"]["tenant_id"] for e in seen} == {OK}  # --tenant
    [connected] = [e for e in seen if e["detail-type"] == CONNECTION_CONNECTED]
    assert connected["detail"]["event_id"] == world.connected(OK)[0].headers["qbo-link-event-id"]


def test_the_events_page_follows_from_a_number(world: World) -> None:
    events_page = world.stack.api_url + EVENTS_PATH
    everything = httpx2.get(events_page, params={"after": 0}).json()
    numbers = [item["n"] for item in everything["events"]]
    assert numbers == sorted(numbers)
    assert everything["next"] == numbers[-1]
    later = httpx2.get(events_page, params={"after": numbers[-2]}).json()
    assert [item["n"] for item in later["events"]] == [numbers[-1]]
    assert later["run"] == everything["run"]
    last = httpx2.get(events_page, params={"last": 2}).json()
    assert [item["n"] for item in last["events"]] == numbers[-2:]
    assert httpx2.get(events_page, params={"after": "x"}).status_code == 400


def test_signing_uses_the_header_names_of_the_docs() -> None:
    text = (REPO / "docs" / "events.md").read_text(encoding="utf-8")
    for header in (
        signing.SIGNATURE_HEADER,
        signing.EVENT_ID_HEADER,
        signing.EVENT_TYPE_HEADER,
        signing.ATTEMPT_HEADER,
    ):
        assert f"`{header}`" in text, header


# --- qbo-link dev --events-url, as a developer runs it ----------------------------------------------


def test_qbo_link_dev_delivers_to_its_events_url_signed_with_the_key_it_prints(
    dev: Callable[..., DevProcess], tmp_path: Path
) -> None:
    with Receiver() as receiver, httpx2.Client(timeout=30) as http:
        running = dev("--events-url", receiver.url, "--state-dir", str(tmp_path))
        running.lines.until("Ready.")
        banner = "\n".join(running.lines.seen)
        key = (tmp_path / "events-signing-key").read_text(encoding="utf-8").strip()  # kept for restarts
        assert f"delivered to     {receiver.url}" in banner
        assert f"signing key      {key}" in banner
        # A tenant connects (the browser's part of the consent done by hand)
        api = running.api
        started = http.post(
            f"{api}/v1/tenants/firm-p/connection", json={"return_url": f"{api}/_local/connected"}
        )
        assert started.status_code == 201, started.text
        consent = http.get(started.json()["authorization_url"])
        assert http.get(consent.headers["location"]).status_code == 302
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not receiver.received():
            time.sleep(0.1)
        [delivery, *_] = receiver.received()
        assert delivery.headers["qbo-link-event-type"] == CONNECTION_CONNECTED
        assert documented_verify()(delivery.body, delivery.headers["qbo-link-signature"], key)


def test_qbo_link_dev_refuses_an_events_url_that_is_not_https(dev: Callable[..., DevProcess]) -> None:
    running = dev("--events-url", "http://app.example.com/events")
    assert running.process.wait(60) == 2
    running.lines.until("error: events URL:", "https")
