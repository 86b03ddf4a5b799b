"""Delivery of the events to the host app's endpoint: the signature, the retry policy, the endpoint
check and one batch through the deliverer (httpx2's MockTransport: no socket)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
import pytest

from infra import manifest
from shared.delivery import policy, signing
from shared.delivery.deliverer import EventDeliverer
from shared.delivery.endpoint import EndpointError, check_events_url
from shared.delivery.policy import Verdict
from shared.delivery.settings import DeliverySettingsError, delivery_settings_from_env
from shared.kernel import constants

KEY = "k3y-0f-the-stack"
NOW = 1_767_000_000
URL = "https://app.example.com/qbo-link/events"


def event(
    event_id: str = "39d25465bccbed975c4899a8368eff3c", detail_type: str = "Connection Connected"
) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "eb-envelope-id",
            "detail-type": detail_type,
            "source": "qbo-link",
            "account": "123456789012",
            "time": "2026-03-02T14:05:09Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"event_id": event_id, "realm_id": "9341", "tenant_id": "firm-1", "version": 1},
        }
    )


# --- the signature ---------------------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_over_the_timestamp_a_dot_and_the_body() -> None:
    body = event().encode()
    expected = hmac.new(KEY.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert signing.signature(KEY, NOW, body) == expected
    assert signing.signature_header(KEY, NOW, body) == f"t={NOW},v1={expected}"


def test_verify_accepts_the_signed_body_and_refuses_anything_else() -> None:
    body = event().encode()
    header = signing.signature_header(KEY, NOW, body)
    assert signing.verify(KEY, header, body, now=NOW + 299)
    assert signing.verify(KEY, f"t={NOW},v1={'0' * 64},v1={header.split('v1=')[1]}", body, now=NOW)
    assert not signing.verify("another key", header, body, now=NOW)
    assert not signing.verify(KEY, header, body + b" ", now=NOW)
    assert not signing.verify(KEY, header, body, now=NOW + 301)  # older than 5 minutes
    assert not signing.verify(KEY, header, body, now=NOW - 301)  # from the future
    assert not signing.verify(KEY, header.replace(f"t={NOW}", f"t={NOW + 1}"), body, now=NOW)
    for broken in ("", f"t={NOW}", header.split(",")[1], "t=soon,v1=00", "v0=ab"):
        assert not signing.verify(KEY, broken, body, now=NOW), broken


def test_an_empty_key_never_signs() -> None:
    with pytest.raises(ValueError, match="empty"):
        signing.signature("", NOW, b"{}")


def test_the_headers_of_an_attempt() -> None:
    body = event().encode()
    headers = signing.delivery_headers(KEY, NOW, body, event_id="e1", event_type="Document Posted", attempt=3)
    assert headers == {
        "Content-Type": "application/json",
        "QBO-Link-Signature": signing.signature_header(KEY, NOW, body),
        "QBO-Link-Event-Id": "e1",
        "QBO-Link-Event-Type": "Document Posted",
        "QBO-Link-Delivery-Attempt": "3",
    }


# --- the retry policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (201, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (299, Verdict.DELIVERED),
        (None, Verdict.RETRY),  # a timeout, a refused connection
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
        (599, Verdict.RETRY),
        (400, Verdict.REFUSED),
        (401, Verdict.REFUSED),
        (403, Verdict.REFUSED),
        (404, Verdict.REFUSED),
        (409, Verdict.REFUSED),
        (410, Verdict.REFUSED),
        (413, Verdict.REFUSED),
        (422, Verdict.REFUSED),
        (301, Verdict.REFUSED),  # redirects are not followed
        (307, Verdict.REFUSED),
        (100, Verdict.REFUSED),
    ],
)
def test_which_answers_are_delivered_retried_or_refused(status: int | None, verdict: Verdict) -> None:
    assert policy.classify(status) is verdict


def test_the_backoff_doubles_from_30_seconds_up_to_4_hours() -> None:
    delays = [policy.retry_delay_seconds(n) for n in range(1, policy.MAX_ATTEMPTS)]
    assert delays[:8] == [30, 60, 120, 240, 480, 960, 1920, 3840]
    assert delays[8:] == [7680, 14400, 14400]
    assert max(delays) == policy.LONGEST_RETRY_SECONDS <= 43_200  # SQS's longest visibility timeout
    assert 11 * 3600 < sum(delays) < 13 * 3600  # about 12 hours from the first attempt to the last


def test_jitter_shortens_a_delay_by_at_most_a_fifth() -> None:
    assert policy.retry_delay_seconds(3, jitter=0.0) == 120
    assert policy.retry_delay_seconds(3, jitter=0.5) == 108
    assert 96 <= policy.retry_delay_seconds(3, jitter=0.999) < 120
    with pytest.raises(ValueError, match="jitter"):
        policy.retry_delay_seconds(3, jitter=1.0)
    with pytest.raises(ValueError, match="from 1"):
        policy.retry_delay_seconds(0)


def test_retry_after_is_honoured_up_to_the_longest_delay() -> None:
    assert policy.retry_delay_seconds(1, retry_after=120) == 120
    assert policy.retry_delay_seconds(5, retry_after=10) == 480  # never sooner than the backoff
    assert policy.retry_delay_seconds(1, retry_after=10**6) == policy.LONGEST_RETRY_SECONDS
    assert policy.retry_after_seconds(" 90 ") == 90
    assert policy.retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert policy.retry_after_seconds(None) is None


def test_the_queue_lets_a_message_be_received_as_often_as_the_policy_attempts_it() -> None:
    assert manifest.DELIVERY_QUEUE.max_receive_count == policy.MAX_ATTEMPTS
    assert not manifest.DELIVERY_QUEUE.fifo
    assert policy.last_attempt(policy.MAX_ATTEMPTS)
    assert not policy.last_attempt(policy.MAX_ATTEMPTS - 1)


def test_the_reason_says_how_an_attempt_ended_in_one_line() -> None:
    assert policy.reason(None, "timed out after 10 s") == "no answer: timed out after 10 s"
    assert policy.reason(410, body='{"error":\n "gone"}') == 'HTTP 410: {"error": "gone"}'
    assert policy.reason(302).startswith("HTTP 302 (a redirect")
    assert len(policy.reason(400, body="x" * 5000)) < 220


# --- the endpoint ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://app.example.com/hooks/qbo", "https://app.example.com:8443/h?tenant=all", "https://10.0.0.7/h"],
)
def test_https_endpoints_are_accepted_everywhere(url: str) -> None:
    assert check_events_url(url, loopback_http=False) == url
    assert check_events_url(url, loopback_http=True) == url


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000/events", "http://localhost:9000/", "http://[::1]:9000/e", "http://127.0.0.2/"],
)
def test_plain_http_only_to_a_loopback_address_and_only_locally(url: str) -> None:
    assert check_events_url(url, loopback_http=True) == url
    with pytest.raises(EndpointError, match="https"):
        check_events_url(url, loopback_http=False)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://app.example.com/events", "https"),
        ("ftp://app.example.com/events", "absolute http"),
        ("app.example.com/events", "absolute http"),
        ("https:///events", "absolute http"),
        ("https://user:pass@app.example.com/events", "credentials"),
        ("https://app.example.com/events#top", "fragment"),
        ("https://app.example.com/ev ents", "spaces"),
        ("https://app.example.com:99999/events", "not a URL"),
        ("", "absolute http"),
    ],
)
def test_other_endpoints_are_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(EndpointError, match=why):
        check_events_url(url, loopback_http=True)


def test_the_deliverers_settings_check_its_endpoint() -> None:
    base = {
        constants.EVENTS_SECRET_ARN_ENV: "arn:secret",
        constants.DELIVERY_QUEUE_URL_ENV: "https://sqs/q",
        constants.DELIVERY_DLQ_URL_ENV: "https://sqs/dlq",
    }
    assert not delivery_settings_from_env(base).enabled
    assert delivery_settings_from_env({**base, constants.EVENTS_URL_ENV: URL}).url == URL
    with pytest.raises(DeliverySettingsError, match=constants.EVENTS_URL_ENV):
        delivery_settings_from_env({**base, constants.EVENTS_URL_ENV: "http://app.example.com/"})
    with pytest.raises(DeliverySettingsError, match=constants.DELIVERY_DLQ_URL_ENV):
        delivery_settings_from_env({constants.EVENTS_URL_ENV: URL, constants.EVENTS_SECRET_ARN_ENV: "a"})


# --- a batch through the deliverer -----------------------------------------------------------------


class FakeQueue:
    def __init__(self, refuse_dead_letters: bool = False) -> None:
        self.hidden: list[tuple[str, int]] = []
        self.dead: list[tuple[str, dict[str, str]]] = []
        self._refuse = refuse_dead_letters

    def hide(self, receipt_handle: str, seconds: int) -> None:
        self.hidden.append((receipt_handle, seconds))

    def dead_letter(self, body: str, attributes: Mapping[str, str]) -> None:
        if self._refuse:
            raise RuntimeError("SQS said no")
        self.dead.append((body, dict(attributes)))


def record(body: str, number: int = 1, attempt: int = 1) -> dict[str, Any]:
    return {
        "messageId": f"m-{number}",
        "receiptHandle": f"r-{number}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(attempt)},
    }


def deliverer(
    answer: Callable[[httpx2.Request], httpx2.Response], queue: FakeQueue, seen: list[httpx2.Request]
) -> EventDeliverer:
    def handler(request: httpx2.Request) -> httpx2.Response:
        request.read()
        seen.append(request)
        return answer(request)

    return EventDeliverer(
        url=URL,
        signing_key=lambda: KEY,
        http=httpx2.Client(transport=httpx2.MockTransport(handler)),
        queue=queue,
        now=lambda: float(NOW),
        jitter=lambda: 0.0,
    )


def test_a_2xx_answer_delivers_the_event_as_eventbridge_put_it_signed() -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()
    body = event()
    report = deliverer(lambda _: httpx2.Response(204), queue, seen).deliver([record(body, attempt=2)])
    assert report.failed == []
    assert report.count("delivered") == 1
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.content == body.encode()  # the envelope with its detail, byte for byte
    assert request.headers["content-type"] == "application/json"
    assert request.headers["qbo-link-event-id"] == "39d25465bccbed975c4899a8368eff3c"  # the detail's
    assert request.headers["qbo-link-event-type"] == "Connection Connected"
    assert request.headers["qbo-link-delivery-attempt"] == "2"
    assert request.headers["user-agent"] == "qbo-link-delivery/1"
    assert signing.verify(KEY, request.headers["qbo-link-signature"], request.content, now=NOW)
    assert queue.hidden == []
    assert queue.dead == []


@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_a_retryable_answer_hides_the_message_until_its_next_attempt(status: int) -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()
    report = deliverer(lambda _: httpx2.Response(status), queue, seen).deliver([record(event(), attempt=3)])
    assert report.failed == ["m-1"]  # SQS keeps it
    assert queue.hidden == [("r-1", 120)]
    assert queue.dead == []
    assert report.count("retry") == 1


def test_retry_after_sets_the_next_attempt() -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()
    answer = httpx2.Response(429, headers={"Retry-After": "600"})
    deliverer(lambda _: answer, queue, seen).deliver([record(event())])
    assert queue.hidden == [("r-1", 600)]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422, 301])
def test_a_refusal_goes_straight_to_the_dlq_with_its_reason(status: int) -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()
    body = event()
    answer = httpx2.Response(status, text="no such hook here")
    report = deliverer(lambda _: answer, queue, seen).deliver([record(body)])
    assert report.failed == []  # given up: deleted from the queue, kept in the DLQ
    [(dead_body, attributes)] = queue.dead
    assert dead_body == body
    assert attributes["reason"].startswith(f"refused: HTTP {status}")
    assert attributes["reason"].endswith(": no such hook here")
    assert attributes["status"] == str(status)
    assert attributes["event_id"] == "39d25465bccbed975c4899a8368eff3c"
    assert attributes["attempts"] == "1"
    assert attributes["failed_at"] == "2025-12-29T09:20:00+00:00"
    assert queue.hidden == []
    assert report.count("dead_lettered") == 1


def test_after_the_last_attempt_the_event_goes_to_the_dlq() -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()
    report = deliverer(lambda _: httpx2.Response(503), queue, seen).deliver(
        [record(event(), attempt=policy.MAX_ATTEMPTS)]
    )
    assert report.failed == []
    [(_, attributes)] = queue.dead
    assert attributes["reason"] == f"gave up after {policy.MAX_ATTEMPTS} attempts; the last: HTTP 503"
    assert queue.hidden == []


def test_no_answer_is_retried_and_the_rest_of_the_batch_waits_without_a_request() -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()

    def timeout(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectTimeout("timed out", request=request)

    records = [record(event(f"e{n}"), n) for n in range(1, 4)]
    report = deliverer(timeout, queue, seen).deliver(records)
    assert len(seen) == 1  # one timeout per batch, not one per event
    assert report.failed == ["m-1", "m-2", "m-3"]
    assert queue.hidden == [("r-1", 30), ("r-2", 30), ("r-3", 30)]
    assert [a.tried for a in report.attempts] == [True, False, False]
    assert report.attempts[0].reason.startswith("no answer: timed out")


def test_a_refused_connection_is_retried() -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()

    def refused(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    report = deliverer(refused, queue, seen).deliver([record(event())])
    assert report.failed == ["m-1"]
    assert report.attempts[0].reason == "no answer: ConnectError: connection refused"


def test_each_record_of_a_batch_gets_its_own_outcome() -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()
    statuses = {"e1": 200, "e2": 500, "e3": 410}

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(statuses[request.headers["qbo-link-event-id"]])

    records = [record(event(f"e{n}"), n) for n in range(1, 4)]
    report = deliverer(answer, queue, seen).deliver(records)
    assert report.failed == ["m-2"]
    assert queue.hidden == [("r-2", 30)]
    assert [body for body, _ in queue.dead] == [records[2]["body"]]


def test_a_body_that_is_not_an_event_is_given_up_without_a_request() -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()
    report = deliverer(lambda _: httpx2.Response(200), queue, seen).deliver(
        [record("not json"), record(json.dumps({"detail-type": "X"}), 2)]
    )
    assert seen == []
    assert report.failed == []
    assert [a["reason"] for _, a in queue.dead] == ["not an EventBridge event with a detail"] * 2


def test_a_message_the_dlq_refuses_stays_in_the_queue() -> None:
    queue, seen = FakeQueue(refuse_dead_letters=True), list[httpx2.Request]()
    report = deliverer(lambda _: httpx2.Response(410), queue, seen).deliver([record(event())])
    assert report.failed == ["m-1"]


def test_when_time_runs_short_the_rest_waits_for_the_next_invocation() -> None:
    queue, seen = FakeQueue(), list[httpx2.Request]()
    left = iter([60.0, 5.0])
    report = deliverer(lambda _: httpx2.Response(200), queue, seen).deliver(
        [record(event("e1"), 1), record(event("e2"), 2)], time_left=lambda: next(left)
    )
    assert len(seen) == 1
    assert report.failed == ["m-2"]


def test_without_an_endpoint_nothing_is_sent_and_the_batch_waits() -> None:
    queue = FakeQueue()
    never = httpx2.MockTransport(lambda request: pytest.fail(f"sent {request.url}"))
    off = EventDeliverer(url="", signing_key=lambda: KEY, http=httpx2.Client(transport=never), queue=queue)
    assert off.deliver([record(event())]).failed == ["m-1"]


# --- the receiver's snippet in docs/events.md ------------------------------------------------------


def test_the_documented_snippet_verifies_what_the_deliverer_signs() -> None:
    from tests.delivery_receiver import documented_verify

    verify = documented_verify()
    body = event().encode()
    header = signing.signature_header(KEY, NOW, body)
    assert verify(body, header, KEY, now=NOW + 120)
    assert not verify(body, header, KEY, now=NOW + 301)  # older than 5 minutes: rejected
    assert not verify(body, header, "another key", now=NOW)
    assert not verify(body + b"\n", header, KEY, now=NOW)
    assert not verify(body, "garbage", KEY, now=NOW)
    assert not verify(body, f"t={NOW}", KEY, now=NOW)
