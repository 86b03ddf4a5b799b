"""Webhook delivery over real sockets: a receiver in this process, the sandbox on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest

from qbo_sandbox.server import SandboxServer
from qbo_sandbox.settings import SandboxSettings
from qbo_sandbox.webhooks import INTUIT_RETRY_SCHEDULE, WebhookConfig, app_source, sign, verify

# Intuit's published test vector (QuickBooks-V3-Java-SDK WebhooksServiceTest.java), exact bytes.
VECTOR_BODY = (
    b'{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[{"name":"Customer",'
    b'"id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"}]}}]}'
)
VECTOR_TOKEN = "b5771f19b12ddb4bcdb9f08bdc50bc63878a"
VECTOR_SIGNATURE = "JC2GUwciPmRBwEO7WvrRmKqu9tGOKL8FFallocTFi8Q="


# --- a receiver ---------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST and answers per a plan, then 200.

    Plan steps: a status (``500``), ``("slow", s)`` (200 after ``s`` seconds) or ``("trickle", s)``
    (a 200 whose body takes ``s`` seconds to arrive).
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.plan: deque[int | tuple[str, float]] = deque()
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    step = receiver.plan.popleft() if receiver.plan else 200
                    receiver.requests.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                    )
                    receiver._cond.notify_all()
                if isinstance(step, tuple) and step[0] == "trickle":
                    # Each byte comes well inside a read timeout, the whole answer does not.
                    self.send_response(200)
                    self.send_header("Content-Length", "4")
                    self.end_headers()
                    for byte in b"done":
                        time.sleep(step[1] / 4)
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    return
                status = 200
                if isinstance(step, tuple):
                    time.sleep(step[1])
                else:
                    status = step
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                # A slow answer meets a socket the sandbox already closed: expected here.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        # A short poll interval keeps shutdown (and so every test's teardown) quick.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 3.0) -> list[Received]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def manual(sandbox_server: SandboxServer) -> SandboxServer:
    """The sandbox with its delivery thread stopped: only flush delivers, so attempts are exact."""
    sandbox_server.sandbox.webhooks.stop()
    return sandbox_server


@pytest.fixture
def fast_server() -> Iterator[SandboxServer]:
    """A sandbox whose clock runs 1000 times faster: a 10-second retry takes 10 ms."""
    server = SandboxServer(SandboxSettings(port=0, time_scale=1000)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ten_x_server() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxSettings(port=0, time_scale=10)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_server() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxSettings(port=0)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def reused_server(module_server: SandboxServer) -> SandboxServer:
    """One server for the many validation cases (its shutdown costs half a second), reset each time."""
    module_server.sandbox.reset()
    return module_server


def control(server: SandboxServer) -> httpx2.Client:
    return httpx2.Client(base_url=server.url, trust_env=False, timeout=10)


def configure(server: SandboxServer, **config: Any) -> dict[str, Any]:
    with control(server) as api:
        response = api.post("/_sandbox/webhooks", json=config)
    assert response.status_code == 200, response.text
    return dict(response.json())


def enqueue(server: SandboxServer, *events: dict[str, Any]) -> list[str]:
    with control(server) as api:
        response = api.post("/_sandbox/webhooks/events", json=list(events))
    assert response.status_code == 202, response.text
    return list(response.json()["event_ids"])


def flush(server: SandboxServer) -> list[dict[str, Any]]:
    with control(server) as api:
        response = api.post("/_sandbox/webhooks/flush")
    assert response.status_code == 200, response.text
    return list(response.json()["attempts"])


def status(server: SandboxServer) -> dict[str, Any]:
    with control(server) as api:
        return dict(api.get("/_sandbox/webhooks").json())


def wait_for_deliveries(server: SandboxServer, count: int, timeout: float = 3.0) -> list[dict[str, Any]]:
    """The delivery log once it holds ``count`` attempts (a POST is logged after its answer)."""
    deadline = time.monotonic() + timeout
    with control(server) as api:
        while True:
            log: list[dict[str, Any]] = api.get("/_sandbox/webhooks/deliveries").json()["deliveries"]
            if len(log) >= count or time.monotonic() > deadline:
                return log
            time.sleep(0.01)


def event(
    realm: str = "310687",
    entity: str = "Customer",
    entity_id: str = "1",
    operation: str = "Create",
    **extra: str,
) -> dict[str, Any]:
    return {"realm": realm, "entity": entity, "id": entity_id, "operation": operation, **extra}


def event_ids_in(received: Received) -> list[str]:
    return [element["id"] for element in received.json()]


# --- signature ----------------------------------------------------------------------------------


def test_sign_reproduces_intuit_published_vector() -> None:
    assert sign(VECTOR_BODY, VECTOR_TOKEN) == VECTOR_SIGNATURE
    assert verify(VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_TOKEN)
    assert not verify(VECTOR_BODY + b" ", VECTOR_SIGNATURE, VECTOR_TOKEN)
    assert not verify(VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_TOKEN + "x")


def test_signature_covers_the_raw_received_bytes(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url, verifier_token="receiver-secret")
    enqueue(manual, event(), event(realm="4620816365", entity="Invoice", entity_id="130"))

    flush(manual)

    [got] = receiver.wait_for(1)
    expected = base64.b64encode(hmac.new(b"receiver-secret", got.body, hashlib.sha256).digest()).decode()
    assert got.headers["intuit-signature"] == expected
    default_token = manual.sandbox.settings.verifier_token
    assert not verify(got.body, got.headers["intuit-signature"], default_token)
    # A receiver that re-serialises the parsed JSON before checking would reject Intuit's POST.
    reserialised = json.dumps(got.json()).encode()
    assert not verify(reserialised, got.headers["intuit-signature"], "receiver-secret")


# --- payload formats ----------------------------------------------------------------------------


def test_legacy_payload_has_one_notification_per_realm(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url, format="legacy")
    enqueue(
        manual,
        event("111", "Customer", "1", "Create", time="2026-03-01T10:00:00.123-08:00"),
        event("222", "Invoice", "7", "Update", time="2026-03-01T18:00:01Z"),
        event("111", "Customer", "3", "Merge", deletedId="2", time="2026-03-01T10:00:02-08:00"),
    )

    flush(manual)

    [got] = receiver.wait_for(1)
    assert got.headers["content-type"] == "application/json"
    assert got.json() == {
        "eventNotifications": [
            {
                "realmId": "111",
                "dataChangeEvent": {
                    "entities": [
                        {"name": "Customer", "id": "1", "operation": "Create",
                         "lastUpdated": "2026-03-01T10:00:00.123-08:00"},
                        {"name": "Customer", "id": "3", "operation": "Merge",
                         "lastUpdated": "2026-03-01T10:00:02.000-08:00", "deletedId": "2"},
                    ]
                },
            },
            {
                "realmId": "222",
                "dataChangeEvent": {
                    "entities": [
                        {"name": "Invoice", "id": "7", "operation": "Update",
                         "lastUpdated": "2026-03-01T18:00:01.000+00:00"},
                    ]
                },
            },
        ]
    }  # fmt: skip
    assert b" " not in got.body  # compact, like Intuit's
    assert verify(got.body, got.headers["intuit-signature"], manual.sandbox.settings.verifier_token)


@pytest.mark.parametrize("content_type", ["application/json", "application/cloudevents+json"])
def test_cloudevents_payload_is_one_array_across_realms(
    manual: SandboxServer, receiver: Receiver, content_type: str
) -> None:
    configure(manual, endpoint_url=receiver.url, format="cloudevents", content_type=content_type)
    ids = enqueue(
        manual,
        event("111", "Customer", "1", "Create", time="2026-03-01T10:00:00.123-08:00"),
        event("222", "Invoice", "7", "Void", time="2026-03-01T18:00:01Z"),
        event("111", "Customer", "3", "Merge", deletedId="27", time="2026-03-01T10:00:02-08:00"),
    )

    flush(manual)

    [got] = receiver.wait_for(1)
    assert got.headers["content-type"] == content_type
    source = app_source(manual.sandbox.settings.app_id)
    assert source.startswith("intuit.")
    common = {"specversion": "1.0", "source": source, "datacontenttype": "application/json"}
    assert got.json() == [
        {**common, "id": ids[0], "type": "qbo.customer.created.v1", "time": "2026-03-01T18:00:00.123000Z",
         "intuitentityid": "1", "intuitaccountid": "111", "data": {}},
        {**common, "id": ids[1], "type": "qbo.invoice.voided.v1", "time": "2026-03-01T18:00:01.000000Z",
         "intuitentityid": "7", "intuitaccountid": "222", "data": {}},
        {**common, "id": ids[2], "type": "qbo.customer.merged.v1", "time": "2026-03-01T18:00:02.000000Z",
         "intuitentityid": "3", "intuitaccountid": "111", "data": {"deletedid": "27"}},
    ]  # fmt: skip
    assert len(set(ids)) == 3
    assert verify(got.body, got.headers["intuit-signature"], manual.sandbox.settings.verifier_token)


def test_real_company_changes_become_events(manual: SandboxServer, receiver: Receiver) -> None:
    sandbox = manual.sandbox
    configure(manual, endpoint_url=receiver.url, format="legacy")
    company = sandbox.create_company(seed=False)
    at = datetime(2026, 3, 1, 18, 0, 0, 250_000, tzinfo=UTC)
    with company.lock:
        stored = company.insert("Customer", {"DisplayName": "Ada Books"}, at)
        company.replace("Customer", stored, at + timedelta(seconds=5))
        company.insert("TaxCode", {"Name": "Not a webhook entity"}, at)  # QBO sends nothing for it

    flush(manual)

    [got] = receiver.wait_for(1)
    assert got.json() == {
        "eventNotifications": [
            {
                "realmId": company.realm_id,
                "dataChangeEvent": {
                    "entities": [
                        # The US sandbox company lives in Los Angeles time (UTC-8 in March).
                        {"name": "Customer", "id": stored["Id"], "operation": "Create",
                         "lastUpdated": "2026-03-01T10:00:00.250-08:00"},
                        {"name": "Customer", "id": stored["Id"], "operation": "Update",
                         "lastUpdated": "2026-03-01T10:00:05.250-08:00"},
                    ]
                },
            }
        ]
    }  # fmt: skip
    assert status(manual)["stats"]["unsupported"] == 1


def test_switching_format_while_a_batch_waits_keeps_its_event_ids(
    manual: SandboxServer, receiver: Receiver
) -> None:
    configure(manual, endpoint_url=receiver.url, format="legacy")
    receiver.plan.append(500)
    ids = enqueue(manual, event(), event(entity_id="2"))
    assert flush(manual)[0]["status"] == 500

    configure(manual, format="cloudevents")
    attempts = flush(manual)

    assert [a["outcome"] for a in attempts] == ["delivered"]
    legacy, cloud = receiver.wait_for(2)
    assert "eventNotifications" in legacy.json()
    assert event_ids_in(cloud) == ids == attempts[0]["event_ids"]


# --- subscription filter, batching --------------------------------------------------------------


def test_entity_and_operation_filter(manual: SandboxServer, receiver: Receiver) -> None:
    body = configure(manual, endpoint_url=receiver.url, entities=["invoice"], operations=["create"])
    assert body["config"]["entities"] == ["Invoice"]
    assert body["config"]["operations"] == ["Create"]
    company = manual.sandbox.create_company(seed=False)
    at = datetime(2026, 3, 2, tzinfo=UTC)
    with company.lock:
        company.insert("Customer", {"DisplayName": "Filtered"}, at)
        invoice = company.insert("Invoice", {"DocNumber": "1001"}, at)
        company.replace("Invoice", invoice, at)

    flush(manual)

    [got] = receiver.wait_for(1)
    assert [(e["type"], e["intuitentityid"]) for e in got.json()] == [
        ("qbo.invoice.created.v1", invoice["Id"])
    ]
    assert status(manual)["stats"]["filtered"] == 2


def test_events_within_the_window_share_one_post(ten_x_server: SandboxServer, receiver: Receiver) -> None:
    # 3 sandbox seconds at time scale 10: 0.3 real seconds.
    configure(ten_x_server, endpoint_url=receiver.url, batch_window_seconds=3)
    webhooks = ten_x_server.sandbox.webhooks
    started = time.monotonic()
    # In process, so all three land well inside the window even on a loaded machine.
    queued = [webhooks.enqueue("310687", "Customer", str(n), "Create") for n in range(3)]

    [got] = receiver.wait_for(1)
    assert got.at - started >= 0.28
    assert event_ids_in(got) == [e.event_id for e in queued if e is not None]
    assert len(event_ids_in(got)) == 3

    later = enqueue(ten_x_server, event(entity_id="4"))
    flush(ten_x_server)
    _, next_post = receiver.wait_for(2)
    assert event_ids_in(next_post) == later


def test_more_events_than_the_cap_split_into_ordered_posts(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url, max_events_per_post=2)
    ids = enqueue(manual, *(event(entity_id=str(n)) for n in range(5)))

    attempts = flush(manual)

    assert [len(a["event_ids"]) for a in attempts] == [2, 2, 1]
    posts = receiver.wait_for(3)
    assert [event_ids_in(p) for p in posts] == [ids[0:2], ids[2:4], ids[4:5]]


def test_intuit_cap_is_the_default_max_per_post(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url)
    enqueue(manual, *(event(entity_id=str(n)) for n in range(101)))

    flush(manual)

    assert [len(p.json()) for p in receiver.wait_for(2)] == [100, 1]


# --- retries and ordering -----------------------------------------------------------------------


def test_retry_after_500_resends_the_same_bytes(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url)
    receiver.plan.append(500)
    ids = enqueue(manual, event())

    first = flush(manual)
    assert [(a["status"], a["ok"], a["outcome"]) for a in first] == [(500, False, "retry_scheduled")]
    assert first[0]["next_retry_in_seconds"] == 0
    assert status(manual)["queue"]["held_batch"]["event_ids"] == ids

    second = flush(manual)
    assert [(a["status"], a["ok"], a["outcome"], a["attempt"]) for a in second] == [
        (200, True, "delivered", 2)
    ]
    failed, delivered = receiver.wait_for(2)
    assert failed.body == delivered.body
    assert failed.headers["intuit-signature"] == delivered.headers["intuit-signature"]
    assert event_ids_in(delivered) == ids == first[0]["event_ids"] == second[0]["event_ids"]
    assert status(manual)["queue"]["held_batch"] is None


def test_background_retries_follow_intuit_schedule(fast_server: SandboxServer, receiver: Receiver) -> None:
    configure(fast_server, endpoint_url=receiver.url)
    receiver.plan.extend([500, 503, 500])
    ids = enqueue(fast_server, event())

    posts = receiver.wait_for(4)
    log = wait_for_deliveries(fast_server, 4)

    assert len(posts) == 4
    assert all(p.body == posts[0].body for p in posts)
    assert all(event_ids_in(p) == ids for p in posts)
    # Retries wait 0, 10 and 20 sandbox seconds: 0, 10 and 20 ms at time scale 1000.
    gaps = [b.at - a.at for a, b in itertools.pairwise(posts)]
    assert gaps[1] >= 0.009
    assert gaps[2] >= 0.019
    assert [(e["status"], e["outcome"], e["next_retry_in_seconds"]) for e in log] == [
        (500, "retry_scheduled", 0),
        (503, "retry_scheduled", 10),
        (500, "retry_scheduled", 20),
        (200, "delivered", None),
    ]


def test_retry_schedule_repeats_six_hours_after_intuit_list() -> None:
    config = WebhookConfig(verifier_token="t")
    delays = [config.retry_delay(failed) for failed in range(1, 13)]
    assert delays == [0, 10, 20, 30, 300, 1200, 7200, 14400, 21600, 21600, 21600, 21600]
    assert list(INTUIT_RETRY_SCHEDULE) == config.retry_schedule_seconds


def test_slow_answer_past_the_deadline_is_retried(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url, deadline_seconds=0.2)
    receiver.plan.append(("slow", 0.6))
    ids = enqueue(manual, event())

    [timed_out] = flush(manual)
    assert timed_out["ok"] is False
    assert timed_out["status"] is None
    assert timed_out["error"].startswith("timeout")
    assert timed_out["duration_ms"] >= 150
    assert timed_out["outcome"] == "retry_scheduled"

    # The retry gets a deadline no loaded machine misses: it is the retry that is checked here.
    configure(manual, endpoint_url=receiver.url, deadline_seconds=30)
    [delivered] = flush(manual)
    assert (delivered["status"], delivered["outcome"]) == (200, "delivered")
    assert delivered["event_ids"] == timed_out["event_ids"] == ids


def test_answer_trickled_past_the_deadline_is_late(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url, deadline_seconds=0.25)
    receiver.plan.append(("trickle", 0.5))
    enqueue(manual, event())

    [late] = flush(manual)

    assert (late["status"], late["error"], late["ok"]) == (200, "deadline exceeded", False)
    assert late["outcome"] == "retry_scheduled"


def test_later_events_wait_behind_a_failing_batch(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url, max_events_per_post=1)
    receiver.plan.append(500)
    first, second = enqueue(manual, event(entity_id="1"), event(entity_id="2"))

    attempts = flush(manual)

    assert [a["event_ids"] for a in attempts] == [[first]]
    assert len(receiver.requests) == 1
    queue = status(manual)["queue"]
    assert queue["held_batch"]["event_ids"] == [first]
    assert queue["pending_event_ids"] == [second]

    flush(manual)
    assert [event_ids_in(p) for p in receiver.wait_for(3)] == [[first], [first], [second]]


def test_connection_refused_is_a_failed_attempt(manual: SandboxServer, receiver: Receiver) -> None:
    url = receiver.url
    receiver.close()  # nothing listens on the port any more
    configure(manual, endpoint_url=url)
    enqueue(manual, event())

    [attempt] = flush(manual)

    assert attempt["status"] is None
    assert attempt["error"].startswith("ConnectError")
    assert attempt["outcome"] == "retry_scheduled"


def test_disabled_retries_and_max_attempts_give_up(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url, retry_enabled=False)
    receiver.plan.extend([500, 500, 500])
    enqueue(manual, event(entity_id="1"))
    assert [a["outcome"] for a in flush(manual)] == ["gave_up"]

    configure(manual, retry_enabled=True, max_attempts=2)
    enqueue(manual, event(entity_id="2"))
    assert [a["outcome"] for a in flush(manual)] == ["retry_scheduled"]
    assert [a["outcome"] for a in flush(manual)] == ["gave_up"]
    assert status(manual)["stats"]["gave_up"] == 2


# --- faults -------------------------------------------------------------------------------------


def test_duplicate_fault_delivers_the_next_batch_twice(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url)
    with control(manual) as api:
        armed = api.post("/_sandbox/webhooks/faults", json={"duplicate_batches": 1})
    assert armed.json()["duplicate_batches"] == 1
    ids = enqueue(manual, event())

    attempts = flush(manual)

    assert [(a["outcome"], a["duplicate"]) for a in attempts] == [
        ("delivered", False),
        ("duplicate_sent", True),
    ]
    original, copy = receiver.wait_for(2)
    assert original.body == copy.body
    assert original.headers["intuit-signature"] == copy.headers["intuit-signature"]
    assert event_ids_in(copy) == ids
    assert status(manual)["faults"]["duplicate_batches"] == 0

    enqueue(manual, event(entity_id="2"))
    flush(manual)
    assert len(receiver.wait_for(3)) == 3


def test_delay_fault_holds_the_next_delivery(ten_x_server: SandboxServer, receiver: Receiver) -> None:
    configure(ten_x_server, endpoint_url=receiver.url, batch_window_seconds=0)
    with control(ten_x_server) as api:
        armed = api.post("/_sandbox/webhooks/faults", json={"delay_batches": 1, "delay_seconds": 4})
    assert armed.status_code == 200
    started = time.monotonic()
    ids = enqueue(ten_x_server, event())

    [late] = receiver.wait_for(1)
    assert late.at - started >= 0.38  # 4 sandbox seconds at time scale 10
    assert event_ids_in(late) == ids

    enqueue(ten_x_server, event(entity_id="2"))
    log = wait_for_deliveries(ten_x_server, 2)
    assert [e["delayed_seconds"] for e in log] == [4, 0]


def test_fault_endpoints_read_and_clear(reused_server: SandboxServer) -> None:
    with control(reused_server) as api:
        api.post(
            "/_sandbox/webhooks/faults",
            json={"duplicate_batches": 2, "delay_batches": 1, "delay_seconds": 30},
        )
        assert api.get("/_sandbox/webhooks/faults").json() == {
            "duplicate_batches": 2,
            "delay_batches": 1,
            "delay_seconds": 30,
        }
        cleared = api.delete("/_sandbox/webhooks/faults")
        assert cleared.json() == {"duplicate_batches": 0, "delay_batches": 0, "delay_seconds": 0}
        bad = api.post("/_sandbox/webhooks/faults", json={"duplicate_batches": -1})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "duplicate_batches"


# --- flush, log, lifecycle ----------------------------------------------------------------------


def test_flush_ignores_batch_window_and_retry_delay(
    sandbox_server: SandboxServer, receiver: Receiver
) -> None:
    # A long window and a long retry delay: only flush can deliver within this test.
    configure(
        sandbox_server, endpoint_url=receiver.url, batch_window_seconds=600, retry_schedule_seconds=[600]
    )
    ids = enqueue(sandbox_server, event())
    assert status(sandbox_server)["queue"]["pending_events"] == 1

    assert [a["outcome"] for a in flush(sandbox_server)] == ["delivered"]

    receiver.plan.append(500)
    enqueue(sandbox_server, event(entity_id="2"))
    assert [a["outcome"] for a in flush(sandbox_server)] == ["retry_scheduled"]
    assert status(sandbox_server)["queue"]["held_batch"]["next_attempt_in_seconds"] > 500
    assert [a["outcome"] for a in flush(sandbox_server)] == ["delivered"]
    assert event_ids_in(receiver.wait_for(3)[0]) == ids


def test_flush_with_nothing_queued_returns_no_attempts(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url)
    assert flush(manual) == []
    assert receiver.requests == []


def test_deliveries_log_records_attempts_without_bodies(
    manual: SandboxServer, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    configure(manual, endpoint_url=receiver.url, format="legacy")
    receiver.plan.append(500)
    ids = enqueue(manual, event("111", entity_id="987654321"), event("222", entity_id="987654322"))
    flush(manual)
    flush(manual)

    with control(manual) as api:
        response = api.get("/_sandbox/webhooks/deliveries")

    data = response.json()
    assert data["count"] == 2
    failed, delivered = data["deliveries"]
    assert set(failed) == {
        "attempt_id", "batch_id", "attempt", "at", "url", "format", "status", "error", "ok",
        "duration_ms", "event_ids", "realms", "duplicate", "delayed_seconds", "outcome",
        "next_retry_in_seconds",
    }  # fmt: skip
    assert (failed["status"], failed["error"], failed["attempt"]) == (500, "non-200 status", 1)
    assert (delivered["status"], delivered["error"], delivered["attempt"]) == (200, None, 2)
    assert failed["batch_id"] == delivered["batch_id"]
    assert failed["event_ids"] == delivered["event_ids"] == ids
    assert failed["realms"] == ["111", "222"]
    assert failed["url"] == receiver.url
    assert failed["at"].endswith("Z")
    assert failed["duration_ms"] >= 0
    for text in (response.text, caplog.text):
        assert "987654321" not in text
        assert "eventNotifications" not in text
    assert "webhook attempt" in caplog.text


def test_no_endpoint_drops_events_instead_of_queueing(manual: SandboxServer, receiver: Receiver) -> None:
    company = manual.sandbox.create_company(seed=False)
    with company.lock:
        company.insert("Customer", {"DisplayName": "Unheard"}, datetime(2026, 3, 3, tzinfo=UTC))
    with control(manual) as api:
        refused = api.post("/_sandbox/webhooks/events", json=event())
    assert refused.status_code == 409
    assert refused.json()["error"] == "no_endpoint"

    configure(manual, endpoint_url=receiver.url)
    assert flush(manual) == []
    assert receiver.requests == []
    state = status(manual)
    assert state["queue"]["pending_events"] == 0
    assert state["stats"]["dropped_no_endpoint"] == 1


def test_clearing_the_endpoint_drops_queued_events(manual: SandboxServer, receiver: Receiver) -> None:
    configure(manual, endpoint_url=receiver.url)
    receiver.plan.append(500)
    enqueue(manual, event(entity_id="1"))
    flush(manual)
    enqueue(manual, event(entity_id="2"))

    state = configure(manual, endpoint_url=None)

    assert state["queue"] == {"pending_events": 0, "pending_event_ids": [], "held_batch": None}
    assert state["stats"]["dropped_no_endpoint"] == 2
    configure(manual, endpoint_url=receiver.url)
    assert flush(manual) == []


def test_reset_restores_defaults_and_empties_queue_and_log(manual: SandboxServer, receiver: Receiver) -> None:
    defaults = status(manual)["config"]
    configure(manual, endpoint_url=receiver.url, format="legacy", max_events_per_post=1)
    with control(manual) as api:
        api.post("/_sandbox/webhooks/faults", json={"duplicate_batches": 3})
    receiver.plan.append(500)
    enqueue(manual, event(entity_id="1"), event(entity_id="2"))
    flush(manual)

    manual.sandbox.reset()

    state = status(manual)
    assert state["config"] == defaults
    assert state["config"]["endpoint_url"] is None
    assert state["config"]["verifier_token"] == manual.sandbox.settings.verifier_token
    assert state["queue"] == {"pending_events": 0, "pending_event_ids": [], "held_batch": None}
    assert state["faults"] == {"duplicate_batches": 0, "delay_batches": 0, "delay_seconds": 0}
    with control(manual) as api:
        assert api.get("/_sandbox/webhooks/deliveries").json() == {"deliveries": [], "count": 0}


def test_stop_returns_quickly_and_start_resumes(sandbox_server: SandboxServer, receiver: Receiver) -> None:
    webhooks = sandbox_server.sandbox.webhooks
    configure(sandbox_server, endpoint_url=receiver.url, batch_window_seconds=600)
    enqueue(sandbox_server, event())  # the thread now waits on a 10-minute window
    assert status(sandbox_server)["delivery_thread"] is True

    started = time.monotonic()
    webhooks.stop()
    assert time.monotonic() - started < 60  # the window would hold it 600 s
    assert status(sandbox_server)["delivery_thread"] is False

    webhooks.start()
    configure(sandbox_server, batch_window_seconds=0)  # wakes the new thread
    assert len(receiver.wait_for(1)) == 1


# --- configuration ------------------------------------------------------------------------------


def test_default_config_matches_intuit(reused_server: SandboxServer) -> None:
    state = status(reused_server)
    assert state["config"] == {
        "endpoint_url": None,
        "verifier_token": reused_server.sandbox.settings.verifier_token,
        "format": "cloudevents",
        "content_type": "application/json",
        "entities": None,
        "operations": None,
        "batch_window_seconds": 1.0,
        "max_events_per_post": 100,
        "deadline_seconds": 3.0,
        "retry_enabled": True,
        "retry_schedule_seconds": [0, 10, 20, 30, 300, 1200, 7200, 14400, 21600],
        "max_attempts": None,
    }
    assert state["effective"]["deadline_real_seconds"] == 3.0


def test_post_merges_and_put_replaces_config(sandbox_server: SandboxServer, receiver: Receiver) -> None:
    configure(sandbox_server, endpoint_url=receiver.url, format="legacy")
    merged = configure(sandbox_server, max_events_per_post=10)["config"]
    assert (merged["endpoint_url"], merged["format"], merged["max_events_per_post"]) == (
        receiver.url, "legacy", 10,
    )  # fmt: skip

    with control(sandbox_server) as api:
        replaced = api.put("/_sandbox/webhooks", json={"endpoint_url": receiver.url}).json()["config"]
    assert (replaced["format"], replaced["max_events_per_post"]) == ("cloudevents", 100)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "xml"}, "format"),
        ({"content_type": "text/plain"}, "content_type"),
        ({"endpoint_url": "ftp://example.com/hook"}, "endpoint_url"),
        ({"endpoint_url": "hooks/intuit"}, "endpoint_url"),
        ({"endpoint_url": "http://127.0.0.1:99999/x"}, "endpoint_url"),
        ({"max_events_per_post": 101}, "max_events_per_post"),
        ({"max_events_per_post": 0}, "max_events_per_post"),
        ({"max_events_per_post": 2.5}, "max_events_per_post"),
        ({"batch_window_seconds": -1}, "batch_window_seconds"),
        ({"deadline_seconds": 0}, "deadline_seconds"),
        ({"deadline_seconds": "3"}, "deadline_seconds"),
        ({"entities": ["Widget"]}, "entities"),
        ({"entities": "Customer"}, "entities"),
        ({"operations": ["Explode"]}, "operations"),
        ({"retry_schedule_seconds": []}, "retry_schedule_seconds"),
        ({"retry_schedule_seconds": [0, -5]}, "retry_schedule_seconds.1"),
        ({"retry_enabled": "yes"}, "retry_enabled"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"verifier_token": ""}, "verifier_token"),
        ({"verifier_token": None}, "verifier_token"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_config_is_refused_precisely(
    reused_server: SandboxServer, body: dict[str, Any], field: str
) -> None:
    before = status(reused_server)["config"]
    with control(reused_server) as api:
        response = api.post("/_sandbox/webhooks", json=body)

    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "invalid_config"
    assert [e["field"] for e in data["errors"]] == [field]
    assert field in data["message"]
    assert status(reused_server)["config"] == before


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"'])
def test_config_body_must_be_a_json_object(reused_server: SandboxServer, raw: bytes) -> None:
    with control(reused_server) as api:
        response = api.post("/_sandbox/webhooks", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (event(realm="abc"), "realm"),
        (event(entity="Cust omer"), "entity"),
        (event(operation="Explode"), "operation"),
        (event(deletedId="2"), "(body)"),
        ({"realm": "1", "entity": "Customer", "operation": "Create"}, "id"),
        (event(time="yesterday"), "time"),
        (event(time="2026-03-01T10:00:00"), "time"),
        ([event(), event(entity_id="")], "1.id"),
    ],
)
def test_invalid_injected_event_is_refused_precisely(
    reused_server: SandboxServer, receiver: Receiver, body: Any, field: str
) -> None:
    configure(reused_server, endpoint_url=receiver.url)
    with control(reused_server) as api:
        response = api.post("/_sandbox/webhooks/events", json=body)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_event"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert status(reused_server)["queue"]["pending_events"] == 0
