"""An upsert the posting log took but SQS did not: the app's retry of the same version sends it again,
so nothing accepted waits forever in `queued`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import pytest

from shared import wiring
from shared.push.service import PushQueue, QueueMessage
from tests.integration.push_fixtures import PushWorld, push_world
from tests.integration.test_push import TENANT, connected, invoice, invoices_numbered, state_of

__all__ = ["push_world"]  # the fixture


class QueueDown(Exception):
    pass


@dataclass
class FlakyQueue:
    """The real queue, refusing the first ``failures`` sends (SQS unreachable for a moment)."""

    real: PushQueue
    failures: int
    sent: int = 0

    def send(self, message: QueueMessage, deduplication_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise QueueDown("SQS unreachable")
        self.sent += 1
        self.real.send(message, deduplication_id)

    def send_many(self, messages: Sequence[tuple[QueueMessage, str]]) -> None:
        for message, deduplication_id in messages:
            self.send(message, deduplication_id)


def test_a_retried_upsert_whose_first_enqueue_failed_is_queued_and_posted_once(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    flaky = FlakyQueue(wiring.push_queue(), failures=1)
    wiring.override(push_queue=flaky)

    with pytest.raises(QueueDown):  # the API answers 5xx: the app will retry
        push_world.put(TENANT, "invoices", invoice())
    assert state_of(push_world, "invoice", "i1") == "queued"
    assert push_world.drain() == 0  # nothing reached the queue

    again = push_world.put(TENANT, "invoices", invoice())  # the app's retry, same version
    assert again.json()["status"] == "ignored"
    assert flaky.sent == 1
    push_world.drain()
    assert state_of(push_world, "invoice", "i1") == "posted"

    push_world.put(TENANT, "invoices", invoice())  # once posted, a repeat sends nothing
    assert flaky.sent == 1
    push_world.drain()
    [posted] = invoices_numbered(push_world, realm, "A-i1")
    assert posted["TotalAmt"] == Decimal("100.00")
