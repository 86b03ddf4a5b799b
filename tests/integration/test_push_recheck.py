"""Waiting documents go by themselves: every change that can make one ready queues a recheck of the
tenant's waiting documents on the push queue, which the push worker judges a page per message
(docs/push.md, "Recheck").  Through the real handlers: the tenant API and the onboard function
(events), the SQS FIFO push queue (moto) and the push handler, the QBO sandbox over real sockets."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared import wiring
from shared.kernel import constants
from shared.kernel.events import CONNECTION_CONNECTED
from shared.push.errors import PushQueueError
from shared.push.posting_log import PostingState
from shared.push.recheck import Rechecker
from shared.push.service import (
    InMemoryPushQueue,
    PushMessage,
    PushQueue,
    QueueMessage,
    RecheckMessage,
)
from shared.push.worker import process_bodies
from tests.integration.connections_fixtures import LambdaContext
from tests.integration.push_fixtures import PushWorld, dynamodb_calls, push_world
from tests.integration.test_push import TENANT, client, connected, invoice, invoices_numbered, state_of

__all__ = ["dynamodb_calls", "push_world"]  # the fixtures


@dataclass
class RecordingQueue:
    """The real push queue, remembering what went on it (and refusing sends when told to)."""

    real: PushQueue
    sent: list[QueueMessage] = field(default_factory=list)
    refuse: bool = False

    def send(self, message: QueueMessage, deduplication_id: str) -> None:
        if self.refuse:
            raise PushQueueError("push queue send failed: ServiceUnavailable")
        self.sent.append(message)
        self.real.send(message, deduplication_id)

    def send_many(self, messages: Sequence[tuple[QueueMessage, str]]) -> None:
        for message, deduplication_id in messages:
            self.send(message, deduplication_id)

    def rechecks(self) -> list[RecheckMessage]:
        return [m for m in self.sent if isinstance(m, RecheckMessage)]

    def pushes(self) -> list[PushMessage]:
        return [m for m in self.sent if isinstance(m, PushMessage)]


@pytest.fixture
def queue(push_world: PushWorld) -> RecordingQueue:
    recording = RecordingQueue(wiring.push_queue())
    wiring.override(push_queue=recording)
    return recording


def waiting(push: PushWorld, count: int, *, code: str = "W9", prefix: str = "w") -> list[str]:
    """``count`` invoices of the linked client c1 that wait for a QBO item for ``code``."""
    ids = [f"{prefix}{n}" for n in range(count)]
    for app_id in ids:
        answer = push.put(TENANT, "invoices", invoice(app_id, code=code))
        assert answer.json()["state"] == "needs_attention", answer.body
    return ids


def linked_client(push: PushWorld) -> str:
    realm = connected(push)
    push.links.link(TENANT, "client", "c1", "1")
    assert push.put(TENANT, "clients", client()).status == 202
    push.drain()
    return realm


def summary(push: PushWorld) -> dict[PostingState, int]:
    return push.log.summary(TENANT).by_state


def rechecker(queue: PushQueue, page_size: int) -> Rechecker:
    return Rechecker(
        wiring.posting_log(),
        wiring.link_store(),
        wiring.push_settings_store(),
        wiring.store(),
        queue,
        wiring.clock(),
        page_size=page_size,
    )


# --- scheduling -----------------------------------------------------------------------------------


def test_nothing_waiting_queues_nothing_after_one_read(
    push_world: PushWorld, queue: RecordingQueue, dynamodb_calls: Counter[str]
) -> None:
    linked_client(push_world)
    queue.sent.clear()
    dynamodb_calls.clear()
    scheduled = wiring.push_service().schedule_recheck(TENANT, "test")
    assert scheduled.as_dict() == {"status": "nothing_waiting", "waiting": 0}
    assert queue.sent == []
    assert dynamodb_calls == Counter({"GetItem": 1})  # the summary, nothing written


def test_a_queued_recheck_that_has_not_started_covers_later_changes(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    linked_client(push_world)
    waiting(push_world, 2)
    service = wiring.push_service()
    # The first change queues a recheck and marks the summary
    assert service.schedule_recheck(TENANT, "first").as_dict() == {"status": "scheduled", "waiting": 2}
    assert push_world.log.summary(TENANT).recheck_pending is not None
    # Changes made before it starts queue nothing: it will see them
    assert service.schedule_recheck(TENANT, "second").status == "pending"
    assert service.schedule_recheck(TENANT, "third").status == "pending"
    assert [m.reason for m in queue.rechecks()] == ["first"]
    # Once it has started (the marker goes first), a change queues another
    [first] = queue.rechecks()
    rechecker(InMemoryPushQueue(), 250).run(first)
    assert push_world.log.summary(TENANT).recheck_pending is None
    assert service.schedule_recheck(TENANT, "fourth").status == "scheduled"
    assert [m.reason for m in queue.rechecks()] == ["first", "fourth"]


def test_a_stale_marker_does_not_hold_back_a_new_recheck(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    linked_client(push_world)
    waiting(push_world, 1)
    service = wiring.push_service()
    assert service.schedule_recheck(TENANT, "lost").status == "scheduled"
    # Its message never ran (lost, or stuck behind a backlog) for more than a minute
    push_world.sandbox("POST", "/clock/advance", {"seconds": 61})
    assert service.schedule_recheck(TENANT, "again").status == "scheduled"
    assert [m.reason for m in queue.rechecks()] == ["lost", "again"]


def test_a_recheck_the_queue_refuses_leaves_no_marker_and_raises(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    linked_client(push_world)
    waiting(push_world, 1)
    service = wiring.push_service()
    queue.refuse = True
    with pytest.raises(PushQueueError):
        service.schedule_recheck(TENANT, "refused")
    assert push_world.log.summary(TENANT).recheck_pending is None
    # The API says so in its one refusal shape, and the retry queues it
    answer = push_world.api("POST", f"/tenants/{TENANT}/postings/recheck")
    assert answer.status == 503, answer.body
    assert answer.json()["detail"][0]["type"] == "queue_unavailable"
    queue.refuse = False
    assert push_world.api("POST", f"/tenants/{TENANT}/postings/recheck").json()["status"] == "scheduled"


def test_the_recheck_route_answers_without_judging_anything(
    push_world: PushWorld, queue: RecordingQueue, dynamodb_calls: Counter[str]
) -> None:
    linked_client(push_world)
    ids = waiting(push_world, 12)
    push_world.links.link(TENANT, "work_code", "W9", "2")  # behind the API's back: no trigger
    queue.sent.clear()
    dynamodb_calls.clear()
    answer = push_world.api("POST", f"/tenants/{TENANT}/postings/recheck")
    assert answer.status == 202, answer.body
    assert answer.json() == {"status": "scheduled", "waiting": 12}
    # Read the connection and the summary, mark the summary: no document read, judged or moved
    assert dynamodb_calls == Counter({"GetItem": 2, "UpdateItem": 1})
    assert summary(push_world)[PostingState.NEEDS_ATTENTION] == 12
    [message] = queue.sent
    assert isinstance(message, RecheckMessage)
    assert (message.reason, message.page, message.states) == ("api", 0, ("needs_attention",))
    push_world.drain()
    assert {state_of(push_world, "invoice", i) for i in ids} == {"posted"}
    # An unknown tenant is still a 404, a disconnected one a 409, in the API's one shape
    unknown = push_world.api("POST", "/tenants/nobody/postings/recheck")
    assert (unknown.status, unknown.json()["detail"][0]["type"]) == (404, "not_connected")


# --- the worker's pages ---------------------------------------------------------------------------


def test_pages_move_the_ready_documents_and_continue_through_the_queue(
    push_world: PushWorld, dynamodb_calls: Counter[str]
) -> None:
    linked_client(push_world)
    waiting(push_world, 7)
    waiting(push_world, 2, code="W8", prefix="other")  # still waiting after the fix, reasons unchanged
    push_world.links.link(TENANT, "work_code", "W9", "2")
    memory = InMemoryPushQueue()
    worker = rechecker(memory, page_size=4)
    message = RecheckMessage.first(TENANT, "test")
    pages = 0
    dynamodb_calls.clear()
    while True:
        report = worker.run(message)
        pages += 1
        sent = memory.drain()
        following = [m for m in sent if isinstance(m, RecheckMessage)]
        if not following:
            break
        [message] = following
        assert message.page == pages
        assert message.page_token is not None
    # 9 waiting documents in pages of 4: three pages, each continued by a message of its own
    assert pages == 3
    assert summary(push_world)[PostingState.QUEUED] == 7
    assert summary(push_world)[PostingState.NEEDS_ATTENTION] == 2
    # Every ready document moved with the others of its page (one transaction a page), none alone
    assert dynamodb_calls["TransactWriteItems"] <= pages
    assert dynamodb_calls["UpdateItem"] == 1  # the marker, cleared by the first page
    assert report.unchanged + report.queued == report.judged


def test_ready_documents_are_enqueued_once_per_recheck_and_posted(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    realm = linked_client(push_world)
    ids = waiting(push_world, 3)
    push_world.links.link(TENANT, "work_code", "W9", "2")
    queue.sent.clear()
    wiring.push_service().schedule_recheck(TENANT, "test")
    [message] = queue.rechecks()
    report = wiring.push_worker().recheck(message)
    assert (report.judged, report.queued, report.continued) == (3, 3, False)
    assert sorted(m.app_id for m in queue.pushes()) == ids
    assert {state_of(push_world, "invoice", i) for i in ids} == {"queued"}
    push_world.drain()
    for app_id in ids:
        assert len(invoices_numbered(push_world, realm, f"A-{app_id}")) == 1


def test_a_waiting_document_is_rewritten_only_when_its_reasons_change(
    push_world: PushWorld, dynamodb_calls: Counter[str]
) -> None:
    linked_client(push_world)
    document = invoice("two", code="W9")
    document["lines"].append(
        {"line_id": "2", "kind": "work", "code": "W8", "amount": "50.00", "taxable": False}
    )
    document["total"] = "150.00"
    assert push_world.put(TENANT, "invoices", document).json()["state"] == "needs_attention"
    worker = rechecker(InMemoryPushQueue(), 250)

    # Nothing changed: judged, not written
    dynamodb_calls.clear()
    report = worker.run(RecheckMessage.first(TENANT, "test"))
    assert (report.judged, report.unchanged, report.rewritten) == (1, 1, 0)
    assert dynamodb_calls["TransactWriteItems"] == 0
    assert dynamodb_calls["UpdateItem"] == 1  # the marker only

    # One of its two codes mapped: it still waits, now for the other one only
    push_world.links.link(TENANT, "work_code", "W9", "2")
    report = worker.run(RecheckMessage.first(TENANT, "test"))
    assert (report.judged, report.rewritten) == (1, 1)
    entry = push_world.log.get(TENANT, "invoice", "two")
    assert entry is not None
    assert entry.state is PostingState.NEEDS_ATTENTION
    assert [json.loads(r.detail or "{}")["code"] for r in entry.reasons] == ["W8"]


def test_a_recheck_of_a_disconnected_tenant_judges_nothing_and_stops(push_world: PushWorld) -> None:
    linked_client(push_world)
    waiting(push_world, 2)
    push_world.links.link(TENANT, "work_code", "W9", "2")
    gone = push_world.api("DELETE", f"/tenants/{TENANT}/connection", query={"mappings": "keep"})
    assert gone.status == 200, gone.body
    memory = InMemoryPushQueue()
    report = rechecker(memory, 1).run(RecheckMessage.first(TENANT, "test"))
    assert (report.not_connected, report.judged, report.continued) == (True, 0, False)
    assert memory.drain() == []
    assert summary(push_world)[PostingState.NEEDS_ATTENTION] == 2


def test_malformed_recheck_messages_are_poison_never_dropped(push_world: PushWorld) -> None:
    good = RecheckMessage.first(TENANT, "test")
    bodies = [
        json.dumps({"tenant": TENANT, "recheck": {"reason": "x"}}),  # no chain
        json.dumps({"tenant": TENANT, "recheck": "everything"}),
        json.dumps(
            {"tenant": TENANT, "recheck": {**json.loads(good.body())["recheck"], "states": ["posted"]}}
        ),
        json.dumps({"tenant": TENANT, "recheck": json.loads(good.body())["recheck"], "extra": 1}),
    ]
    report = process_bodies(wiring.push_worker(), bodies)
    assert report.failed == {0, 1, 2, 3}
    assert report.outcomes["poison"] == 4


def test_a_recheck_behind_a_tenants_message_that_must_come_back_waits_for_it(push_world: PushWorld) -> None:
    # FIFO order: a tenant's recheck does not overtake its own earlier message that failed
    bodies = ["not json", RecheckMessage.first(TENANT, "test").body()]
    report = process_bodies(wiring.push_worker(), bodies)
    assert report.failed == {0}  # a body naming no tenant holds back no one
    poisoned = json.dumps({"tenant": TENANT, "kind": "invoice"})  # this tenant's, unreadable
    report = process_bodies(wiring.push_worker(), [poisoned, RecheckMessage.first(TENANT, "test").body()])
    assert report.failed == {0, 1}
    assert "recheck_judged" not in report.outcomes


# --- the triggers ---------------------------------------------------------------------------------


def test_linking_the_missing_work_code_through_the_api_posts_the_invoice(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    realm = linked_client(push_world)
    [app_id] = waiting(push_world, 1)
    push_world.api("POST", f"/tenants/{TENANT}/mappings/refresh")
    upserted = push_world.api(
        "PUT", f"/tenants/{TENANT}/catalog/work_code/W9", body={"version": 1, "name": "W9"}
    )
    assert upserted.status == 200, upserted.body
    linked = push_world.api("PUT", f"/tenants/{TENANT}/mappings/work_code/app/W9", body={"qbo_id": "2"})
    assert linked.status == 200, linked.body
    assert [m.reason for m in queue.rechecks()] == ["link:work_code"]
    push_world.drain()
    assert state_of(push_world, "invoice", app_id) == "posted"
    assert len(invoices_numbered(push_world, realm, f"A-{app_id}")) == 1


def test_exporting_the_missing_work_code_posts_the_invoice(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    realm = linked_client(push_world)
    settings = wiring.push_settings_store()
    settings.put(TENANT, settings.get(TENANT).model_copy(update={"revenue_account_id": "1"}))  # no trigger
    [app_id] = waiting(push_world, 1)
    push_world.api(
        "PUT", f"/tenants/{TENANT}/catalog/work_code/W9", body={"version": 1, "name": "Site visits"}
    )
    exported = push_world.api(
        "POST", f"/tenants/{TENANT}/mappings/work_code/export", body={"app_ids": ["W9"]}
    )
    assert exported.status == 200, exported.body
    assert exported.json()["results"][0]["status"] == "created"
    assert [m.reason for m in queue.rechecks()] == ["export:work_code"]
    assert state_of(push_world, "invoice", app_id) == "needs_attention"  # the API judged nothing
    push_world.drain()
    assert state_of(push_world, "invoice", app_id) == "posted"
    assert len(invoices_numbered(push_world, realm, f"A-{app_id}")) == 1


def test_the_metrics_and_the_exchange_history_show_each_recheck(
    push_world: PushWorld, queue: RecordingQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.test_push_metrics import emf_blobs, metric_values

    linked_client(push_world)
    settings = wiring.push_settings_store()
    settings.put(TENANT, settings.get(TENANT).model_copy(update={"revenue_account_id": "1"}))
    waiting(push_world, 2)
    push_world.api(
        "PUT", f"/tenants/{TENANT}/catalog/work_code/W9", body={"version": 1, "name": "Site visits"}
    )
    capsys.readouterr()
    # An export schedules a recheck; a manual one before it starts is covered by it
    exported = push_world.api(
        "POST", f"/tenants/{TENANT}/mappings/work_code/export", body={"app_ids": ["W9"]}
    )
    assert exported.status == 200, exported.body
    asked = push_world.api("POST", f"/tenants/{TENANT}/postings/recheck")
    assert asked.json()["status"] == "pending", asked.body
    blobs = emf_blobs(capsys.readouterr().out)
    totals = {
        name: sum(v for _, values in metric_values(blobs, name) for v in values)
        for name in ("Rechecks_scheduled", "Rechecks_pending", "RecheckWaiting")
    }
    assert totals == {"Rechecks_scheduled": 1, "Rechecks_pending": 1, "RecheckWaiting": 4}

    push_world.drain()

    history = push_world.api("GET", f"/tenants/{TENANT}/exchanges").json()["exchanges"]
    [recheck] = [e for e in history if e["source"] == "recheck"]
    assert recheck["trigger"] == "export:work_code"
    assert (recheck["notices"], recheck["changes"], recheck["outcome"]) == (2, 2, "succeeded")
    assert recheck["events"] == {"recheck_judged": 2, "recheck_queued": 2}
    latest_push = next(e for e in history if e["source"] == "push")  # newest first
    assert latest_push["events"] == {"posted": 2}


def test_importing_the_item_an_invoice_names_posts_it(push_world: PushWorld, queue: RecordingQueue) -> None:
    linked_client(push_world)
    [app_id] = waiting(push_world, 1, code="qbo.2")  # the app names items by the id an import gives
    push_world.api("POST", f"/tenants/{TENANT}/mappings/refresh")
    imported = push_world.api("POST", f"/tenants/{TENANT}/mappings/work_code/import", body={"qbo_ids": ["2"]})
    assert imported.json()["results"][0]["status"] == "imported", imported.body
    assert [m.reason for m in queue.rechecks()] == ["import:work_code"]
    push_world.drain()
    assert state_of(push_world, "invoice", app_id) == "posted"


def test_automatch_and_onboarding_queue_a_recheck_but_other_kinds_do_not(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    linked_client(push_world)
    waiting(push_world, 1)
    push_world.api("POST", f"/tenants/{TENANT}/mappings/refresh")
    push_world.api("POST", f"/tenants/{TENANT}/mappings/account/automatch", query={"apply": "true"})
    push_world.api("POST", f"/tenants/{TENANT}/mappings/work_code/automatch")  # a proposal changes nothing
    assert queue.rechecks() == []  # accounts are no link readiness reads
    push_world.api("POST", f"/tenants/{TENANT}/mappings/work_code/automatch", query={"apply": "true"})
    assert [m.reason for m in queue.rechecks()] == ["automatch:work_code"]
    push_world.drain()  # the recheck starts: the next change queues another
    push_world.api("POST", f"/tenants/{TENANT}/mappings/onboard")
    assert [m.reason for m in queue.rechecks()][-1] == "onboard:client,expense_code,site,tax,work_code"


def test_the_onboard_function_queues_a_recheck_after_its_automatch(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    from functions.onboard import handler

    linked_client(push_world)
    [app_id] = waiting(push_world, 1, code="W-hours")
    wiring.mappings().upsert_app_entity(
        TENANT, "work_code", _entity("W-hours", "Hours")
    )  # the seed's item 2 is "Hours": onboarding's automatch links it
    event = {
        "version": "0",
        "id": "e-onboard",
        "source": constants.EVENT_SOURCE,
        "detail-type": CONNECTION_CONNECTED,
        "detail": {"tenant_id": TENANT, "realm_id": "r"},
    }
    result = handler.lambda_handler(event, LambdaContext())
    assert result["linked"]["work_code"] >= 1
    assert [m.reason for m in queue.rechecks()] == ["onboard:client,expense_code,site,tax,work_code"]
    push_world.drain()
    assert state_of(push_world, "invoice", app_id) == "posted"


def test_a_settings_change_releases_what_waited_for_it(push_world: PushWorld, queue: RecordingQueue) -> None:
    linked_client(push_world)
    push_world.api("PUT", f"/tenants/{TENANT}/settings", body={"client_types": ["client"]})
    push_world.put(TENANT, "clients", client("c2", type="prospect"))
    push_world.links.link(TENANT, "client", "c2", "2")
    answer = push_world.put(TENANT, "invoices", invoice("for-c2", client_id="c2"))
    assert answer.json()["reasons"][0]["code"] == "client_type_excluded"
    saved = push_world.api(
        "PUT", f"/tenants/{TENANT}/settings", body={"client_types": ["client", "prospect"]}
    )
    assert saved.status == 200, saved.body
    assert [m.reason for m in queue.rechecks()] == ["settings"]
    assert state_of(push_world, "invoice", "for-c2") == "needs_attention"  # the API judged nothing
    push_world.drain()
    assert state_of(push_world, "invoice", "for-c2") == "posted"


def test_a_posted_invoice_releases_the_payment_waiting_for_it(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    linked_client(push_world)
    payment = {
        "id": "p1",
        "version": 1,
        "client_id": "c1",
        "date": "2026-11-21",
        "amount": "100.00",
        "applications": [{"invoice_id": "i1", "amount": "100.00"}],
    }
    assert push_world.put(TENANT, "payments", payment).json()["state"] == "needs_attention"
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.drain()
    assert "posted" in [m.reason for m in queue.rechecks()]
    assert state_of(push_world, "payment", "p1") == "posted"


def test_a_reconnect_brings_back_what_failed_for_want_of_a_connection(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    from functions.onboard import handler

    realm = linked_client(push_world)
    waiting(push_world, 1)  # also waits for a mapping: not posted by the reconnect
    push_world.put(TENANT, "invoices", invoice("lost"))  # queued...
    gone = push_world.api("DELETE", f"/tenants/{TENANT}/connection", query={"mappings": "keep"})
    assert gone.status == 200, gone.body
    push_world.drain()  # ...and failed: the tenant had no connection when the worker came
    entry = push_world.log.get(TENANT, "invoice", "lost")
    assert entry is not None
    assert (entry.state, entry.last_error and entry.last_error.code) == (PostingState.FAILED, "not_connected")
    # The firm connects the same company again
    assert push_world.world.connect(TENANT, realmId=realm) == realm
    # An ordinary recheck leaves failures alone
    assert wiring.push_service().schedule_recheck(TENANT, "test").status == "scheduled"
    push_world.drain()
    assert state_of(push_world, "invoice", "lost") == "failed"
    # The onboard function gets "Connection Connected", which says it is a reconnect
    [connected_event] = [
        e for e in push_world.world.events.of_type(CONNECTION_CONNECTED) if e.detail["reconnected"]
    ]
    event = {
        "version": "0",
        "id": connected_event.event_id,
        "source": constants.EVENT_SOURCE,
        "detail-type": connected_event.detail_type,
        "detail": connected_event.body(),
    }
    handler.lambda_handler(event, LambdaContext())
    reconnect = [m for m in queue.rechecks() if m.reason == "reconnect"]
    assert [m.states for m in reconnect] == [("needs_attention", "failed")]
    push_world.drain()
    assert state_of(push_world, "invoice", "lost") == "posted"
    assert len(invoices_numbered(push_world, realm, "A-lost")) == 1
    assert state_of(push_world, "invoice", "w0") == "needs_attention"


def _entity(app_id: str, name: str) -> Any:
    from shared.mapping.catalog import AppEntity

    return AppEntity(id=app_id, version=1, name=name)
