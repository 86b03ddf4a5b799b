"""The push queue's two messages: ``{tenant, kind, app_id, version}`` and ``{tenant, recheck: {...}}``
(docs/push.md, "Recheck"), and how a delivery's bodies are sorted into them (no sockets)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.push.service import InMemoryPushQueue, PushMessage, RecheckMessage
from shared.push.worker import parse_messages

TENANT = "firm-1"


def test_a_recheck_message_round_trips_and_its_continuations_keep_the_chain() -> None:
    first = RecheckMessage.first(TENANT, "export:work_code", ("needs_attention", "failed"))
    assert json.loads(first.body())["tenant"] == TENANT
    assert RecheckMessage.parse(json.loads(first.body())) == first
    second = first.next("token")
    third = second.next(None, ("failed",))
    assert (second.chain, second.page, second.page_token) == (first.chain, 1, "token")
    assert (third.chain, third.page, third.page_token, third.states) == (first.chain, 2, None, ("failed",))
    # One deduplication id per page of a recheck, another for the next recheck; within SQS's limit
    ids = {first.deduplication_id(), second.deduplication_id(), third.deduplication_id()}
    assert len(ids) == 3
    assert first.next("token").deduplication_id() == second.deduplication_id()
    assert RecheckMessage.first(TENANT, "x").deduplication_id() not in ids
    assert len(RecheckMessage.first("t" * 128, "x").deduplication_id()) <= 128


@pytest.mark.parametrize(
    "recheck",
    [
        {"reason": "x"},  # no chain
        {"reason": "x", "chain": "not-hex", "page": 0, "states": ["needs_attention"]},
        {"reason": "x", "chain": "0" * 32, "page": -1, "states": ["needs_attention"]},
        {"reason": "x", "chain": "0" * 32, "page": 0, "states": ["posted"]},
        {"reason": "x", "chain": "0" * 32, "page": 0, "states": []},
        {"reason": "x", "chain": "0" * 32, "page": 0, "states": ["needs_attention"], "more": 1},
        "everything",
    ],
)
def test_a_malformed_recheck_is_refused(recheck: object) -> None:
    with pytest.raises((ValueError, ValidationError)):
        RecheckMessage.parse({"tenant": TENANT, "recheck": recheck})


def test_a_delivery_is_sorted_into_push_messages_rechecks_and_poison() -> None:
    push = PushMessage(TENANT, "invoice", "i1", 2)
    recheck = RecheckMessage.first(TENANT, "api")
    bodies = [
        push.body(),
        recheck.body(),
        "not json",
        json.dumps({"tenant": TENANT, "recheck": {"reason": "x"}}),
        json.dumps({"tenant": TENANT, "kind": "invoice"}),
        json.dumps({**json.loads(recheck.body()), "extra": 1}),
    ]
    delivery = parse_messages(bodies)
    assert delivery.pushes == [push]
    assert delivery.positions == [0]
    assert delivery.rechecks == [(1, recheck)]
    assert delivery.poison == {2, 3, 4, 5}


def test_the_in_memory_queue_deduplicates_like_sqs_across_both_messages() -> None:
    queue = InMemoryPushQueue()
    recheck = RecheckMessage.first(TENANT, "api")
    push = PushMessage(TENANT, "invoice", "i1", 1)
    queue.send(recheck, recheck.deduplication_id())
    queue.send_many([(push, push.deduplication_id(":r1")), (push, push.deduplication_id(":r1"))])
    queue.send(recheck, recheck.deduplication_id())
    assert queue.drain() == [recheck, push]
