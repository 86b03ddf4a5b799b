"""The bulk route (``POST /v1/tenants/{tenant}/documents``) and its job (``GET .../jobs/{id}``), through
the real API handler, the SQS FIFO push queue (moto) and the push handler against the sandbox."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from functions.api.answers import BulkAnswer, JobStatus
from tests.integration.push_fixtures import PushWorld, dynamodb_calls, push_world
from tests.integration.test_push import TENANT, client, connected, invoice, invoices_numbered

__all__ = ["dynamodb_calls", "push_world"]

BULK = f"/v1/tenants/{TENANT}/documents"


def payment(app_id: str, invoice_id: str, amount: str) -> dict[str, Any]:
    return {
        "id": app_id,
        "version": 1,
        "client_id": "c1",
        "date": "2026-11-21",
        "amount": amount,
        "applications": [{"invoice_id": invoice_id, "amount": amount}],
    }


def item(kind: str, document: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "document": document}


def test_a_bulk_request_takes_mixed_documents_in_dependency_order_and_its_job_follows_them(
    push_world: PushWorld,
) -> None:
    realm = connected(push_world)
    push_world.api("PUT", f"/v1/tenants/{TENANT}/settings", body={"auto_create_customers": True})
    # Given a payment, its invoice and their client, in the wrong order, with one bad invoice
    bad = invoice("i-bad")
    bad["lines"][0]["amount"] = "-5"
    body = {
        "documents": [
            item("payment", payment("p1", "i1", "40.00")),
            item("invoice", invoice("i1", amount="100.00")),
            item("invoice", bad),
            item("client", client("c1")),
            item("receipt", {"id": "r1"}),
        ]
    }
    answer = push_world.api("POST", BULK, body=body)
    # Then the good ones are taken, each bad one refused with its problems, in the request's order
    assert answer.status == 202, answer.body
    taken = BulkAnswer.model_validate(answer.json())
    assert (taken.accepted, taken.ignored, taken.refused) == (3, 0, 2)
    assert [r.status for r in taken.results] == ["accepted", "accepted", "refused", "accepted", "refused"]
    assert [r.id for r in taken.results[:4]] == ["p1", "i1", "i-bad", "c1"]
    assert any(p.field == "lines[0].amount" for p in taken.results[2].problems)
    assert taken.results[4].problems[0].field == "kind"
    assert taken.job_id is not None
    assert taken.status_url == f"/v1/tenants/{TENANT}/jobs/{taken.job_id}"
    # and the job says they are on their way, then where they ended
    status = JobStatus.model_validate(push_world.api("GET", taken.status_url).json())
    assert (status.total, status.finished) == (3, False)
    assert status.by_state == {"needs_attention": 1, "queued": 2}  # the payment waits on its invoice
    assert "invoice_not_posted" in [r.code for r in status.items[0].reasons]
    push_world.drain()
    status = JobStatus.model_validate(push_world.api("GET", taken.status_url).json())
    assert status.finished
    assert status.by_state == {"posted": 3}
    assert [(i.index, i.kind, i.state) for i in status.items] == [
        (0, "payment", "posted"),
        (1, "invoice", "posted"),
        (3, "client", "posted"),
    ]
    [posted] = invoices_numbered(push_world, realm, "A-i1")
    assert posted["Balance"] == Decimal("60.00")  # the payment applied to it
    assert invoices_numbered(push_world, realm, "A-i-bad") == []


def test_a_bulk_request_reads_the_tenant_once_and_sends_its_messages_in_batches(
    push_world: PushWorld, dynamodb_calls: Counter[str]
) -> None:
    connected(push_world, c1_as="1")
    documents = [item("invoice", invoice(f"b{n}")) for n in range(25)]
    dynamodb_calls.clear()
    answer = push_world.api("POST", BULK, body={"documents": documents})
    assert answer.status == 202, answer.body
    assert answer.json()["accepted"] == 25
    # the connection and the settings; the 25 heads, the client and the links in three batch
    # reads; the 25 versions and the summary in one transaction; the job
    assert dynamodb_calls == Counter(
        {"GetItem": 2, "BatchGetItem": 3, "TransactWriteItems": 1, "PutItem": 1}
    ), dynamodb_calls
    assert push_world.drain() > 0
    assert all(push_world.log.get(TENANT, "invoice", f"b{n}").state == "posted" for n in range(25))  # type: ignore[union-attr]


def test_the_same_request_again_is_ignored_item_by_item_and_makes_a_second_job(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    body = {"documents": [item("invoice", invoice("i1")), item("invoice", invoice("i1"))]}
    first = push_world.api("POST", BULK, body=body).json()
    assert [r["status"] for r in first["results"]] == ["accepted", "refused"]  # the same (kind, id) twice
    assert first["results"][1]["problems"][0]["field"] == "id"
    again = push_world.api("POST", BULK, body={"documents": body["documents"][:1]})
    assert again.status == 202
    assert again.json()["ignored"] == 1
    assert again.json()["job_id"] != first["job_id"]


def test_a_bulk_request_refuses_a_bad_envelope_and_changes_nothing(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    for body, field in [
        ({}, "documents"),
        ({"documents": []}, "documents"),
        ({"documents": [item("client", client())] * 501}, "documents"),
        ({"documents": [], "extra": 1}, "extra"),
    ]:
        answer = push_world.api("POST", BULK, body=body)
        assert answer.status == 422, answer.body
        assert answer.json()["detail"][0]["loc"] == ["body", field]
    all_refused = push_world.api("POST", BULK, body={"documents": [{"kind": "client"}]})
    assert all_refused.status == 200
    assert all_refused.json()["job_id"] is None
    assert push_world.log.get(TENANT, "client", "c1") is None


def test_a_job_of_another_tenant_or_a_malformed_id_is_not_found(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    job = push_world.api("POST", BULK, body={"documents": [item("client", client())]}).json()["job_id"]
    connected(push_world, "firm-2")
    for path in (f"/v1/tenants/firm-2/jobs/{job}", f"/v1/tenants/{TENANT}/jobs/{'0' * 32}"):
        answer = push_world.api("GET", path)
        assert answer.status == 404, answer.body
        assert answer.json()["detail"][0]["loc"] == ["path", "job_id"]
    assert push_world.api("GET", f"/v1/tenants/{TENANT}/jobs/not-a-job").status == 422
