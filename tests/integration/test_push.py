"""The push, end to end through the real handlers: the tenant API (API Gateway v2 events) accepts the
app's documents, the SQS FIFO queue (moto) carries them, the push handler (SQS events) posts them to
the QBO sandbox over real sockets."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from shared import wiring
from shared.connections.store import Connection
from shared.qbo.client import QboClient
from tests.integration.push_fixtures import PushWorld, dynamodb_calls, fast_client, push_world

__all__ = ["dynamodb_calls", "push_world"]

TENANT = "firm-1"


def client(app_id: str = "c1", version: int = 1, **extra: Any) -> dict[str, Any]:
    return {"id": app_id, "version": version, "type": "client", "company_name": f"Client {app_id}", **extra}


def invoice(
    app_id: str = "i1",
    version: int = 1,
    *,
    client_id: str = "c1",
    number: str | None = None,
    amount: str = "100.00",
    tax: str = "0.00",
    code: str = "W1",
    when: str = "2026-11-20",
) -> dict[str, Any]:
    total = Decimal(amount) + Decimal(tax)
    return {
        "id": app_id,
        "version": version,
        "number": number or f"A-{app_id}",
        "date": when,
        "client_id": client_id,
        "lines": [
            {
                "line_id": "1",
                "kind": "work",
                "code": code,
                "description": "Advice",
                "quantity": "1",
                "rate": amount,
                "amount": amount,
                "taxable": Decimal(tax) > 0,
            }
        ],
        "tax_total": tax,
        "total": str(total),
    }


def connected(push: PushWorld, tenant: str = TENANT, *, c1_as: str | None = None) -> str:
    """``tenant`` connected, work code W1 linked to QBO item 1 (and with ``c1_as``, the app's
    client c1 linked to that QBO customer); returns the realm."""
    realm = push.world.connect(tenant)
    push.links.link(tenant, "work_code", "W1", "1")
    if c1_as is not None:
        push.links.link(tenant, "client", "c1", c1_as)
    return realm


def test_smoke_invoice_posts(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    answer = push_world.put(TENANT, "clients", client())
    assert answer.status == 202, answer.body
    answer = push_world.put(TENANT, "invoices", invoice())
    assert answer.status == 202, answer.body
    assert answer.json()["state"] == "queued", answer.body
    push_world.drain()
    entry = push_world.log.get(TENANT, "invoice", "i1")
    assert entry is not None
    assert entry.state == "posted", entry
    ours = [i for i in push_world.entities(realm, "Invoice") if i.get("DocNumber") == "A-i1"]
    assert len(ours) == 1
    assert ours[0]["TotalAmt"] == Decimal("100.00")


def state_of(push: PushWorld, kind: str, app_id: str, tenant: str = TENANT) -> str:
    entry = push.log.get(tenant, kind, app_id)
    assert entry is not None
    return entry.state.value


def invoices_numbered(push: PushWorld, realm: str, number: str) -> list[dict[str, Any]]:
    return [i for i in push.entities(realm, "Invoice") if i.get("DocNumber") == number]


def test_not_ready_waits_with_exact_reasons_then_goes_once_the_mapping_is_fixed(
    push_world: PushWorld,
) -> None:
    # Given a linked client and an invoice whose second work code has no QBO item
    realm = connected(push_world, c1_as="1")
    push_world.put(TENANT, "clients", client())
    document = invoice()
    document["lines"].append(
        {"line_id": "2", "kind": "work", "code": "W9", "amount": "50.00", "taxable": False}
    )
    document["total"] = "150.00"
    # When it is pushed
    answer = push_world.put(TENANT, "invoices", document)
    # Then it waits, saying exactly why
    assert answer.status == 202, answer.body
    assert answer.json()["state"] == "needs_attention"
    assert answer.json()["reasons"] == [
        {"code": "item_not_mapped", "details": {"code": "W9", "kind": "work", "line_id": "2"}}
    ]
    push_world.drain()
    assert invoices_numbered(push_world, realm, "A-i1") == []
    # When the mapping is fixed behind the API's back and the app asks for a recheck
    push_world.links.link(TENANT, "work_code", "W9", "2")
    recheck = push_world.api("POST", f"/tenants/{TENANT}/postings/recheck")
    assert recheck.status == 202, recheck.body
    assert recheck.json() == {"status": "scheduled", "waiting": 1}
    assert state_of(push_world, "invoice", "i1") == "needs_attention"  # judged by the worker, not here
    push_world.drain()
    # Then it went by itself, once, to the cent
    assert state_of(push_world, "invoice", "i1") == "posted"
    [posted] = invoices_numbered(push_world, realm, "A-i1")
    assert posted["TotalAmt"] == Decimal("150.00")


def test_documents_before_go_live_are_skipped_and_never_posted(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    settings = push_world.api("PUT", f"/tenants/{TENANT}/settings", body={"go_live_date": "2026-11-01"})
    assert settings.status == 200, settings.body
    old = push_world.put(TENANT, "invoices", invoice("old", when="2026-10-31"))
    new = push_world.put(TENANT, "invoices", invoice("new", when="2026-11-01"))
    assert old.json()["state"] == "skipped"
    assert old.json()["reasons"][0]["code"] == "before_go_live"
    assert new.json()["state"] == "queued"
    push_world.drain()
    assert invoices_numbered(push_world, realm, "A-old") == []
    assert len(invoices_numbered(push_world, realm, "A-new")) == 1


def test_client_types_that_do_not_sync_keep_their_invoices_back(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    push_world.api("PUT", f"/tenants/{TENANT}/settings", body={"client_types": ["client"]})
    push_world.put(TENANT, "clients", client(type="prospect"))
    answer = push_world.put(TENANT, "invoices", invoice())
    assert answer.json()["state"] == "needs_attention"
    assert answer.json()["reasons"] == [
        {"code": "client_type_excluded", "details": {"client_id": "c1", "type": "prospect"}}
    ]
    # The app changes the client's type: the invoice goes once judged again
    push_world.put(TENANT, "clients", client(version=2))
    push_world.drain()
    assert state_of(push_world, "invoice", "i1") == "posted"


def test_auto_created_customer_and_site_then_invoice(push_world: PushWorld) -> None:
    realm = connected(push_world)
    push_world.api("PUT", f"/tenants/{TENANT}/settings", body={"auto_create_customers": True})
    assert (
        push_world.put(TENANT, "clients", client("p1", company_name="Parent Co")).json()["state"] == "queued"
    )
    site = client("s1", company_name="Parent Co Site", parent_id="p1")
    assert push_world.put(TENANT, "clients", site).status == 202
    assert push_world.put(TENANT, "invoices", invoice(client_id="s1")).status == 202
    push_world.drain()
    customers = {c["DisplayName"]: c for c in push_world.entities(realm, "Customer")}
    assert customers["Parent Co Site"]["ParentRef"]["value"] == customers["Parent Co"]["Id"]
    [posted] = invoices_numbered(push_world, realm, "A-i1")
    assert posted["CustomerRef"]["value"] == customers["Parent Co Site"]["Id"]
    site_link = push_world.links.get_by_app(TENANT, "site", "s1")
    assert site_link is not None
    assert site_link.qbo_id == customers["Parent Co Site"]["Id"]


def test_a_new_version_updates_the_same_invoice_in_place(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    push_world.put(TENANT, "invoices", invoice())
    push_world.drain()
    [first] = invoices_numbered(push_world, realm, "A-i1")
    # When the app changes the invoice
    answer = push_world.put(TENANT, "invoices", invoice(version=2, amount="120.00"))
    assert answer.status == 202
    push_world.drain()
    # Then the same QBO invoice changed, with a newer SyncToken, and no second one exists
    [second] = invoices_numbered(push_world, realm, "A-i1")
    assert second["Id"] == first["Id"]
    assert int(second["SyncToken"]) > int(first["SyncToken"])
    assert second["TotalAmt"] == Decimal("120.00")
    entry = push_world.log.get(TENANT, "invoice", "i1")
    assert entry is not None
    assert entry.version == 2
    assert entry.qbo_id == first["Id"]


def test_older_or_equal_version_is_acknowledged_and_ignored(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    push_world.put(TENANT, "invoices", invoice(version=3))
    push_world.drain()
    stale = push_world.put(TENANT, "invoices", invoice(version=2, amount="999.00"))
    assert stale.status == 200, stale.body
    assert stale.json()["status"] == "ignored"
    assert stale.json()["version"] == 3
    push_world.drain()
    [posted] = invoices_numbered(push_world, realm, "A-i1")
    assert posted["TotalAmt"] == Decimal("100.00")


def test_payment_is_applied_to_the_invoice_it_pays_and_changes_in_place(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    push_world.put(TENANT, "invoices", invoice())
    payment = {
        "id": "p1",
        "version": 1,
        "client_id": "c1",
        "date": "2026-11-21",
        "amount": "60.00",
        "applications": [{"invoice_id": "i1", "amount": "60.00"}],
    }
    early = push_world.put(TENANT, "payments", payment)
    assert early.json()["reasons"] == [{"code": "invoice_not_posted", "details": {"invoice_id": "i1"}}]
    push_world.drain()  # the invoice posts; the payment waiting on it goes by itself
    assert state_of(push_world, "payment", "p1") == "posted"
    [invoice_row] = invoices_numbered(push_world, realm, "A-i1")
    assert invoice_row["Balance"] == Decimal("40.00")
    link = push_world.links.get_by_app(TENANT, "payment", "p1")
    assert link is not None
    [paid] = [p for p in push_world.entities(realm, "Payment") if p["Id"] == link.qbo_id]
    assert paid["Line"][0]["LinkedTxn"] == [{"TxnId": invoice_row["Id"], "TxnType": "Invoice"}]
    # A changed payment updates the same QBO payment
    push_world.put(
        TENANT,
        "payments",
        {
            **payment,
            "version": 2,
            "amount": "100.00",
            "applications": [{"invoice_id": "i1", "amount": "100.00"}],
        },
    )
    push_world.drain()
    ours = [
        p
        for p in push_world.entities(realm, "Payment")
        if "qbo-link:payment:p1" in (p.get("PrivateNote") or "")
    ]
    assert len(ours) == 1
    assert ours[0]["Id"] == link.qbo_id
    assert ours[0]["TotalAmt"] == Decimal("100.00")
    [invoice_row] = invoices_numbered(push_world, realm, "A-i1")
    assert invoice_row["Balance"] == Decimal("0.00")


def test_exactly_once_when_qbo_commits_then_fails_and_when_the_connection_drops(
    push_world: PushWorld,
) -> None:
    realm = connected(push_world, c1_as="1")
    # QBO does the work and then answers 500; then the next create's connection drops unanswered
    push_world.fault(kind="commit_then_fail", status=500, count=1, entity="invoice", operation="create")
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.drain()
    push_world.fault(kind="commit_then_fail", status=0, count=1, entity="invoice", operation="create")
    push_world.put(TENANT, "invoices", invoice("i2"))
    push_world.drain()
    push_world.fault(kind="drop", count=2, entity="invoice", operation="create")
    push_world.put(TENANT, "invoices", invoice("i3"))
    push_world.drain()
    for app_id in ("i1", "i2", "i3"):
        assert len(invoices_numbered(push_world, realm, f"A-{app_id}")) == 1, app_id
        assert state_of(push_world, "invoice", app_id) == "posted"


def test_exactly_once_without_qbo_requestid_help_the_lookup_finds_the_invoice(push_world: PushWorld) -> None:
    # Given QBO ignoring requestid (as developers report), so a repeated create would duplicate
    realm = connected(push_world, c1_as="1")
    push_world.sandbox("POST", "/settings", {"requestid_mode": "ignore"})
    # and every retry inside the client failing, so the worker is left with an uncertain outcome
    push_world.fault(kind="commit_then_fail", status=500, count=1, entity="invoice", operation="create")
    push_world.fault(kind="status", status=500, count=4, entity="invoice", operation="create")
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.drain()
    # Then the redelivered message looked the invoice up (DocNumber + marker) instead of creating it again
    assert len(invoices_numbered(push_world, realm, "A-i1")) == 1
    assert state_of(push_world, "invoice", "i1") == "posted"
    outcomes = [a.outcome.value for a in push_world.log.attempts(TENANT, "invoice", "i1")]
    assert "uncertain" in outcomes, outcomes
    assert "found" in outcomes, outcomes


def test_a_rejected_invoice_fails_with_qbos_text_and_can_be_retried(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    push_world.fault(kind="status", status=400, code="6000", count=1, entity="invoice", operation="create")
    push_world.put(TENANT, "invoices", invoice())
    push_world.drain()
    detail = push_world.api("GET", f"/tenants/{TENANT}/postings/invoice/i1")
    assert detail.status == 200, detail.body
    body = detail.json()
    assert body["state"] == "failed"
    assert body["last_error"]["code"] == "6000"
    [attempt] = body["attempt_log"]
    assert attempt["outcome"] == "rejected"
    assert attempt["intuit_tid"]
    retry = push_world.api("POST", f"/tenants/{TENANT}/postings/invoices/i1/retry")
    assert retry.status == 202, retry.body
    push_world.drain()
    assert state_of(push_world, "invoice", "i1") == "posted"
    assert len(invoices_numbered(push_world, realm, "A-i1")) == 1
    again = push_world.api("POST", f"/tenants/{TENANT}/postings/invoice/i1/retry")
    assert again.status == 409


def test_posting_log_queries_and_summary(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    push_world.put(TENANT, "invoices", invoice("i1", when="2026-11-10"))
    push_world.put(TENANT, "invoices", invoice("i2", when="2026-11-20"))
    push_world.put(TENANT, "invoices", invoice("i3", code="W9", when="2026-11-15"))
    push_world.drain()
    base = f"/tenants/{TENANT}/postings"
    waiting = push_world.api("GET", base, query={"state": "needs_attention"}).json()
    assert [e["app_id"] for e in waiting["entries"]] == ["i3"]
    ranged = push_world.api("GET", base, query={"from": "2026-11-12", "to": "2026-11-30"}).json()
    assert [e["app_id"] for e in ranged["entries"]] == ["i3", "i2"]
    today = push_world.world.clock.now().date().isoformat()
    posted = push_world.api("GET", base, query={"posted_from": today, "posted_to": today}).json()
    assert sorted(e["app_id"] for e in posted["entries"]) == ["i1", "i2"]
    summary = push_world.api("GET", f"{base}/summary").json()
    assert summary["by_kind"]["invoice"]["posted"] == 2
    assert summary["by_kind"]["invoice"]["needs_attention"] == 1
    assert push_world.api("GET", base, query={"state": "nonsense"}).status == 422


def test_the_posting_log_filters_by_kind_with_every_other_filter(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    push_world.put(TENANT, "clients", client())
    push_world.put(TENANT, "invoices", invoice("i1", when="2026-11-10"))
    push_world.put(TENANT, "invoices", invoice("i2", code="W9", when="2026-11-15"))
    push_world.put(
        TENANT,
        "payments",
        {
            "id": "p1",
            "version": 1,
            "client_id": "c1",
            "date": "2026-11-16",
            "amount": "10.00",
            "applications": [],
        },
    )
    push_world.drain()
    base = f"/tenants/{TENANT}/postings"

    def ids(**query: str) -> list[str]:
        found: list[str] = []
        token = None
        while True:  # a filtered page may be short, even empty, with a next token
            answer = push_world.api(
                "GET", base, query={**query, "limit": "1", **({"page_token": token} if token else {})}
            )
            assert answer.status == 200, answer.body
            found += [f"{e['kind']}:{e['app_id']}" for e in answer.json()["entries"]]
            token = answer.json()["next_page_token"]
            if token is None:
                return found

    assert ids(kind="client") == ["client:c1"]  # undated: only the kind alone lists it
    assert ids(kind="invoice") == ["invoice:i1", "invoice:i2"]
    assert ids(kind="payment", state="posted") == ["payment:p1"]
    assert ids(kind="invoice", state="needs_attention") == ["invoice:i2"]
    assert ids(kind="invoice", **{"from": "2026-11-12"}) == ["invoice:i2"]
    today = push_world.world.clock.now().date().isoformat()
    assert ids(kind="invoice", posted_from=today) == ["invoice:i1"]
    assert ids(state="posted", posted_from=today, to="2026-11-15") == ["invoice:i1"]
    assert sorted(ids(posted_from=today)) == ["client:c1", "invoice:i1", "payment:p1"]
    refused = push_world.api("GET", base, query={"kind": "estimate"})
    assert refused.status == 422, refused.body


def test_bad_documents_name_every_field_and_change_nothing(push_world: PushWorld) -> None:
    connected(push_world)
    document = invoice()
    document["total"] = "1.00"
    document["lines"][0]["amount"] = "99.999"
    answer = push_world.put(TENANT, "invoices", document)
    assert answer.status == 422, answer.body
    fields = {tuple(d["loc"]) for d in answer.json()["detail"]}
    assert ("body", "lines[0]", "amount") in fields, fields
    assert push_world.log.get(TENANT, "invoice", "i1") is None
    unknown = push_world.put("firm-unknown", "invoices", invoice())
    assert unknown.status == 404
    assert unknown.json()["detail"][0]["type"] == "not_connected"


def test_a_jwt_caller_cannot_reach_another_tenant(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    own = push_world.api(
        "PUT", f"/tenants/{TENANT}/invoices/i1", body=invoice(), claims={"tenant_id": TENANT}
    )
    assert own.status == 202, own.body
    for method, path, body in (
        ("PUT", f"/tenants/{TENANT}/invoices/i2", invoice("i2")),
        ("GET", f"/tenants/{TENANT}/postings/invoice/i1", None),
        ("GET", f"/tenants/{TENANT}/settings", None),
        ("PUT", f"/tenants/{TENANT}/settings", {"push_invoices": False}),
        ("GET", f"/tenants/{TENANT}/postings", None),
    ):
        refused = push_world.api(method, path, body=body, claims={"tenant_id": "firm-2"})
        assert refused.status == 403, (method, path, refused.body)
    assert push_world.log.get(TENANT, "invoice", "i2") is None
    assert push_world.api("GET", f"/tenants/{TENANT}/settings").json()["push_invoices"] is True


def test_bulk_invoices_share_batch_requests_and_one_real_time_invoice_costs_one_call(
    push_world: PushWorld,
) -> None:
    realm = connected(push_world, c1_as="1")
    for n in range(31):
        push_world.put(TENANT, "invoices", invoice(f"b{n}"))
    push_world.sandbox("DELETE", "/counters")
    push_world.drain()
    bulk = push_world.counters(realm)
    ours = [i for i in push_world.entities(realm, "Invoice") if str(i.get("DocNumber", "")).startswith("A-b")]
    assert len(ours) == 31
    assert bulk["requests"] == 2, bulk
    assert bulk["batch_operations"] == 30, bulk  # one batch of 30, then the 31st alone
    push_world.sandbox("DELETE", "/counters")
    push_world.put(TENANT, "invoices", invoice("rt"))
    push_world.drain()
    single = push_world.counters(realm)
    assert single["requests"] == 1, single
    assert single["metered_reads"] == 0, single


def test_an_upsert_is_judged_and_stored_in_one_transaction(
    push_world: PushWorld, dynamodb_calls: Counter[str]
) -> None:
    connected(push_world, c1_as="1")
    dynamodb_calls.clear()
    answer = push_world.put(TENANT, "invoices", invoice())
    assert answer.status == 202, answer.body
    assert answer.json()["state"] == "queued"
    assert dynamodb_calls["TransactWriteItems"] == 1, dynamodb_calls
    # the connection, the head and the settings; the client's document, and its link with the item's
    assert dynamodb_calls == Counter({"GetItem": 3, "BatchGetItem": 2, "TransactWriteItems": 1}), (
        dynamodb_calls
    )
    dynamodb_calls.clear()
    waiting = push_world.put(TENANT, "invoices", invoice("i2", code="W9"))
    assert waiting.json()["state"] == "needs_attention"
    assert dynamodb_calls["TransactWriteItems"] == 1, dynamodb_calls


def one_attempt_client(connection: Connection) -> QboClient:
    """The tests' QBO client without retries of its own: every fault reaches the worker."""
    client = fast_client(connection)
    client.max_attempts = 1
    return client


def test_a_lost_batch_is_settled_with_one_lookup_request_and_one_update_request(
    push_world: PushWorld,
) -> None:
    # Given five ready invoices, and QBO doing the batch of creates and then dropping the connection
    realm = connected(push_world, c1_as="1")
    wiring.override(push_qbo_client=one_attempt_client)
    for n in range(5):
        push_world.put(TENANT, "invoices", invoice(f"i{n}"))
    push_world.fault(kind="commit_then_fail", status=0, count=1, entity="batch")
    push_world.sandbox("DELETE", "/counters")
    # When the push function takes them, and again once they come back uncertain
    push_world.drain()
    # Then the redelivery looked all five up in one batch request and updated them in another
    counters = push_world.counters(realm)
    assert (counters["requests"], counters["metered_reads"]) == (3, 5), counters  # 5 queries in one
    assert push_world.redelivered == 5
    for n in range(5):
        assert len(invoices_numbered(push_world, realm, f"A-i{n}")) == 1
        assert state_of(push_world, "invoice", f"i{n}") == "posted"
        outcomes = [a.outcome.value for a in push_world.log.attempts(TENANT, "invoice", f"i{n}")]
        assert outcomes == ["uncertain", "found", "succeeded"], outcomes


def test_new_versions_of_posted_invoices_go_in_one_batch_request_without_reads(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    for n in range(4):
        push_world.put(TENANT, "invoices", invoice(f"i{n}"))
    push_world.drain()
    push_world.sandbox("DELETE", "/counters")
    for n in range(4):
        push_world.put(TENANT, "invoices", invoice(f"i{n}", version=2, amount="250.00"))
    push_world.drain()
    counters = push_world.counters(realm)
    assert (counters["requests"], counters["batch_requests"], counters["metered_reads"]) == (1, 1, 0), (
        counters
    )
    for n in range(4):
        [row] = invoices_numbered(push_world, realm, f"A-i{n}")
        assert row["TotalAmt"] == Decimal("250.00")
        assert state_of(push_world, "invoice", f"i{n}") == "posted"


def test_a_posting_whose_link_would_break_one_to_one_fails_and_is_not_posted(push_world: PushWorld) -> None:
    # Given an invoice, and the id QBO will give it already linked to another app invoice
    realm = connected(push_world, c1_as="1")
    path = f"/companies/{realm}/entities/Invoice"
    body = {
        "CustomerRef": {"value": "1"},
        "Line": [
            {
                "Amount": 1,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
            }
        ],
    }
    latest = int(push_world.sandbox("POST", path, body)["Invoice"]["Id"])
    push_world.links.link(TENANT, "invoice", "other", str(latest + 1))
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.drain()
    # Then the posting is refused as a whole: failed with the conflict, not posted, no second link
    entry = push_world.log.get(TENANT, "invoice", "i1")
    assert entry is not None
    [row] = invoices_numbered(push_world, realm, "A-i1")
    assert row["Id"] == str(latest + 1)
    assert entry.state == "failed", entry
    assert entry.last_error is not None
    assert entry.last_error.code == "link_conflict"
    assert entry.posted_at is None
    assert push_world.links.get_by_app(TENANT, "invoice", "i1") is None
    outcomes = [a.outcome.value for a in push_world.log.attempts(TENANT, "invoice", "i1")]
    assert outcomes == ["succeeded"], outcomes


def test_a_document_that_never_gets_through_ends_failed_not_stuck(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    push_world.fault(kind="status", status=429, count=1000, entity="invoice", operation="create")
    push_world.put(TENANT, "invoices", invoice())
    deliveries = push_world.drain()
    push_world.sandbox("DELETE", "/faults")
    assert deliveries == 5
    entry = push_world.log.get(TENANT, "invoice", "i1")
    assert entry is not None
    assert entry.state == "failed"
    assert entry.last_error is not None
    assert entry.last_error.code == "gave_up"
    assert "3001" in str(entry.last_error.message) or "Throttle" in str(entry.last_error.message)


def test_void_propagates_only_when_the_tenant_enables_it(push_world: PushWorld) -> None:
    realm = connected(push_world, c1_as="1")
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.put(TENANT, "invoices", invoice("i2"))
    push_world.drain()
    # Without propagation a void in the app stays in the app
    kept = push_world.put(TENANT, "invoices", {**invoice("i1", version=2), "voided": True})
    assert kept.json()["state"] == "skipped"
    assert kept.json()["reasons"][0]["code"] == "void_not_propagated"
    # With it, the same QBO invoice is voided
    push_world.api("PUT", f"/tenants/{TENANT}/settings", body={"propagate_deletes": True})
    voided = push_world.put(TENANT, "invoices", {**invoice("i2", version=2), "voided": True})
    assert voided.json()["state"] == "queued"
    push_world.drain()
    assert state_of(push_world, "invoice", "i2") == "voided"
    [i2] = invoices_numbered(push_world, realm, "A-i2")
    assert i2["TotalAmt"] == Decimal("0")
    [i1] = invoices_numbered(push_world, realm, "A-i1")
    assert i1["TotalAmt"] == Decimal("100.00")


def report(push: PushWorld, tenant: str = TENANT, **query: str) -> Any:
    answer = push.api("GET", f"/tenants/{tenant}/reports/transactions", query=query)
    assert answer.status == 200, answer.body
    return answer.json()


def test_transactions_report_by_transaction_and_posting_dates_with_totals(push_world: PushWorld) -> None:
    # Given, on day 1, two posted invoices, one waiting for a mapping and a posted payment
    connected(push_world, c1_as="1")
    push_world.put(TENANT, "invoices", invoice("i1", when="2026-11-10"))
    push_world.put(TENANT, "invoices", invoice("i2", amount="50.25", when="2026-11-20"))
    push_world.put(TENANT, "invoices", invoice("i3", code="W9", when="2026-11-15"))
    payment = {"id": "p1", "version": 1, "client_id": "c1", "date": "2026-11-21", "amount": "60.10"}
    push_world.put(TENANT, "payments", {**payment, "reference": "R-1"})
    push_world.drain()
    day1 = push_world.world.clock.now().date()
    # and, on day 2, one more invoice posted
    push_world.world.clock.advance(86_400)
    day2 = push_world.world.clock.now().date()
    push_world.put(TENANT, "invoices", invoice("i4", amount="30.00", when="2026-11-12"))
    push_world.drain()
    assert state_of(push_world, "invoice", "i4") == "posted"

    # By transaction date: the posted documents, in date order, with the app's totals per kind
    body = report(push_world, txn_from="2026-11-01", txn_to="2026-11-30")
    assert [(d["kind"], d["id"]) for d in body["documents"]] == [
        ("invoice", "i1"),
        ("invoice", "i4"),
        ("invoice", "i2"),
        ("payment", "p1"),
    ]
    [p1] = [d for d in body["documents"] if d["id"] == "p1"]
    assert p1["number"] == "R-1"
    assert p1["client_id"] == "c1"
    assert p1["total"] == "60.10"
    assert p1["state"] == "posted"
    assert p1["qbo_id"]
    assert p1["posted_at"].startswith(day1.isoformat())
    [i2] = [d for d in body["documents"] if d["id"] == "i2"]
    assert (i2["number"], i2["date"], i2["total"]) == ("A-i2", "2026-11-20", "50.25")
    assert body["totals"]["invoice"] == {
        "count": 3,
        "total": "180.25",
        "posted_count": 3,
        "posted_total": "180.25",
    }
    assert body["totals"]["payment"]["total"] == "60.10"
    assert body["totals"]["credit_memo"] == {
        "count": 0,
        "total": "0.00",
        "posted_count": 0,
        "posted_total": "0.00",
    }
    # With the unposted ones: the waiting invoice too, with its state
    body = report(push_world, txn_from="2026-11-01", txn_to="2026-11-30", include_unposted="true")
    [i3] = [d for d in body["documents"] if d["id"] == "i3"]
    assert i3["state"] == "needs_attention"
    assert i3["qbo_id"] is None
    assert i3["posted_at"] is None
    assert body["totals"]["invoice"]["count"] == 4
    assert body["totals"]["invoice"]["total"] == "280.25"
    assert body["totals"]["invoice"]["posted_total"] == "180.25"
    # By posting date only
    body = report(push_world, posted_from=day2.isoformat(), posted_to=day2.isoformat())
    assert [d["id"] for d in body["documents"]] == ["i4"]
    assert body["totals"]["invoice"]["total"] == "30.00"
    # Both ranges: dated in November and posted on day 1 (i4, posted on day 2, is left out)
    day1_only = {"posted_from": day1.isoformat(), "posted_to": day1.isoformat()}
    body = report(push_world, txn_from="2026-11-01", txn_to="2026-11-30", **day1_only)
    assert [d["id"] for d in body["documents"]] == ["i1", "i2", "p1"]
    assert body["totals"]["invoice"]["total"] == "150.25"
    # Pages: the first carries the totals of the whole range, the next continues it
    first = report(push_world, txn_from="2026-11-01", limit="2")
    assert [d["id"] for d in first["documents"]] == ["i1", "i4"]
    assert first["totals"]["invoice"]["count"] == 3
    assert first["next_page_token"]
    seen, token = [d["id"] for d in first["documents"]], first["next_page_token"]
    while token:  # a page may hold fewer than the limit (the unposted are filtered out)
        rest = report(push_world, txn_from="2026-11-01", limit="2", page_token=token)
        assert rest["totals"] is None
        seen += [d["id"] for d in rest["documents"]]
        token = rest["next_page_token"]
    assert seen == ["i1", "i4", "i2", "p1"]
    # At least one range, and a sane one
    path = f"/tenants/{TENANT}/reports/transactions"
    assert push_world.api("GET", path).status == 422
    assert push_world.api("GET", path, query={"include_unposted": "true"}).status == 422
    backwards = {"txn_from": "2026-11-30", "txn_to": "2026-11-01"}
    assert push_world.api("GET", path, query=backwards).status == 422
    # Another tenant's caller sees nothing of it
    other = push_world.api("GET", path, query={"txn_from": "2026-11-01"}, claims={"tenant_id": "firm-2"})
    assert other.status == 403


def test_push_runs_are_recorded_as_exchanges_next_to_the_pull_ones(push_world: PushWorld) -> None:
    from shared.history.exchanges import ExchangeLog

    connected(push_world, c1_as="1")
    base = f"/tenants/{TENANT}/exchanges"
    assert push_world.api("GET", f"{base}/latest").json() == {"exchange": None}
    history = ExchangeLog(
        push_world.world.dynamodb.Table(push_world.world.settings.runtime_table), push_world.world.clock
    )
    history.finish(history.start(TENANT, "sweep"), "succeeded")
    # A run that posts
    push_world.put(TENANT, "invoices", invoice("i1"))
    push_world.drain()
    # A run that only finds nothing to do records nothing
    push_world.put(TENANT, "invoices", invoice("i1"))  # the same version: ignored, nothing queued
    push_world.drain()
    # A run where QBO refuses the document
    push_world.fault(kind="status", status=400, code="6000", count=1, entity="invoice", operation="create")
    push_world.put(TENANT, "invoices", invoice("i2"))
    push_world.drain()

    latest = push_world.api("GET", f"{base}/latest")
    assert latest.status == 200, latest.body
    failed = latest.json()["exchange"]
    assert failed["source"] == "push"
    assert failed["outcome"] == "failed"
    assert failed["events"] == {"failed": 1}
    assert failed["changes"] == 1
    assert failed["notices"] == 1
    assert failed["error"] == "1 document(s) failed"
    assert failed["finished_at"] >= failed["started_at"]
    answer = push_world.api("GET", base)
    assert answer.status == 200, answer.body
    exchanges = answer.json()["exchanges"]
    assert [(e["source"], e["outcome"]) for e in exchanges] == [
        ("push", "failed"),
        ("push", "succeeded"),
        ("sweep", "succeeded"),
    ]
    assert exchanges[1]["events"] == {"posted": 1}
    # Paged, newest first
    first = push_world.api("GET", base, query={"limit": "2"}).json()
    assert [e["exchange_id"] for e in first["exchanges"]] == [e["exchange_id"] for e in exchanges[:2]]
    rest = push_world.api("GET", base, query={"limit": "2", "page_token": first["next_page_token"]}).json()
    assert [e["exchange_id"] for e in rest["exchanges"]] == [exchanges[2]["exchange_id"]]
    assert push_world.api("GET", base, query={"page_token": "nonsense"}).status == 422
    assert push_world.api("GET", base, claims={"tenant_id": "firm-2"}).status == 403


def journal_entries(push: PushWorld, realm: str) -> list[dict[str, Any]]:
    return [j for j in push.entities(realm, "JournalEntry") if str(j.get("DocNumber", "")).startswith("QL-")]


def sides(entry: dict[str, Any]) -> tuple[Decimal, Decimal]:
    def total(side: str) -> Decimal:
        return sum(
            (
                Decimal(str(line["Amount"]))
                for line in entry["Line"]
                if line["JournalEntryLineDetail"]["PostingType"] == side
            ),
            Decimal("0.00"),
        )

    return total("Debit"), total("Credit")


def test_summarised_mode_posts_one_journal_entry_per_day_updated_in_place(push_world: PushWorld) -> None:
    # Given a tenant in summarised mode against master customer 1
    realm = connected(push_world)
    settings = push_world.api(
        "PUT", f"/tenants/{TENANT}/settings", body={"posting_mode": "summarised", "master_customer_id": "1"}
    )
    assert settings.status == 200, settings.body
    # When two invoices of one day are pushed
    for app_id, amount in (("s1", "100.00"), ("s2", "25.50")):
        answer = push_world.put(TENANT, "invoices", invoice(app_id, amount=amount, when="2026-11-20"))
        assert answer.json()["state"] == "queued", answer.body
    push_world.drain()
    # Then one JournalEntry holds both, debits = credits = the app totals, and no Invoice exists
    [first] = journal_entries(push_world, realm)
    assert first["DocNumber"] == "QL-20261120"
    assert sides(first) == (Decimal("125.50"), Decimal("125.50"))
    assert invoices_numbered(push_world, realm, "A-s1") == []
    for app_id in ("s1", "s2"):
        entry = push_world.log.get(TENANT, "invoice", app_id)
        assert entry is not None
        assert (entry.state.value, entry.qbo_id) == ("posted", first["Id"])
    # When a third invoice of the same day arrives
    push_world.put(TENANT, "invoices", invoice("s3", amount="10.00", when="2026-11-20"))
    push_world.drain()
    # Then the same JournalEntry is updated in place
    [second] = journal_entries(push_world, realm)
    assert second["Id"] == first["Id"]
    assert second["SyncToken"] != first["SyncToken"]
    assert sides(second) == (Decimal("135.50"), Decimal("135.50"))
    assert state_of(push_world, "invoice", "s3") == "posted"
    # When an invoice of another day arrives
    push_world.put(TENANT, "invoices", invoice("s4", amount="7.25", when="2026-11-21"))
    push_world.drain()
    # Then a second JournalEntry holds it, and the first day's is unchanged
    by_number = {j["DocNumber"]: j for j in journal_entries(push_world, realm)}
    assert set(by_number) == {"QL-20261120", "QL-20261121"}
    assert sides(by_number["QL-20261121"]) == (Decimal("7.25"), Decimal("7.25"))
    assert sides(by_number["QL-20261120"]) == (Decimal("135.50"), Decimal("135.50"))
