"""The input fuzzer at a small size against the local stack over HTTP (``scripts/fuzz_api.py`` runs
it at full size): no 5xx, no dropped connection, every refusal in its documented shape, and refused
requests change nothing.  Also: every tenant route answers 404 for a tenant that never connected."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.fuzz_engine import Generator, api_document, documents, operations, report, run
from tests.e2e.local_fixtures import Host, host, local_stack

__all__ = ["host", "local_stack"]

NEVER_SEEN = "firm-never-seen"  # not the fuzz run's unknown tenant, which its settings may make known
# How the host app makes a tenant known: its first consent, its settings, its lists.
REGISTRATIONS = (
    "POST /v1/tenants/{tenant_id}/connection",
    "PUT /v1/tenants/{tenant_id}/settings",
    "PATCH /v1/tenants/{tenant_id}/settings",
    "PUT /v1/tenants/{tenant_id}/catalog/{kind}/{app_id}",
)
# Answered for a tenant not known yet, without making it known: a console session lets the firm's
# administrator connect from the console (docs/console.md).
BEFORE_KNOWN = ("POST /v1/tenants/{tenant_id}/console-sessions",)
VALID_BODIES: dict[str, Any] = {
    "PUT /v1/tenants/{tenant_id}/mappings/{kind}/app/{app_id}": {"qbo_id": "1"},
    "POST /v1/tenants/{tenant_id}/mappings/{kind}/export": {"app_ids": ["a1"]},
    "POST /v1/tenants/{tenant_id}/mappings/{kind}/import": {"qbo_ids": ["1"]},
    "POST /v1/tenants/{tenant_id}/documents": {
        "documents": [
            {"kind": "client", "document": {"id": "a1", "version": 1, "type": "client", "company_name": "A"}}
        ]
    },
}


def test_a_small_seeded_fuzz_run_finds_no_5xx_no_drop_no_shape_break_no_state_change(host: Host) -> None:
    assert host.stack.sandbox is not None
    token = host.stack.sandbox.sandbox.settings.verifier_token
    generator = Generator(api_document(), "firm-a", host.realms["firm-a"], token)
    figures = run(
        host.stack, host.http, generator, {"api": 240, "nasty": 60, "webhook": 50, "oauth": 50}, run_seed=13
    )
    text = "\n".join(report(figures))
    assert figures.total == 400, text
    assert figures.sent == {"api": 300, "webhook": 50, "oauth": 50}, text
    assert figures.server_errors == 0, text
    assert figures.dropped == 0, text
    assert figures.problems == [], text
    assert figures.refused_replayed > 100, text  # the run did probe refusals
    assert figures.state_changes == [], text
    statuses = {status for status in figures.by_status if status is not None}
    assert {200, 400, 403, 404, 415, 422} <= statuses, text


def test_every_tenant_route_is_a_404_for_a_tenant_that_never_connected(host: Host) -> None:
    refused = []
    for op in operations(api_document()):
        if "{tenant_id}" not in op.path or op.route in REGISTRATIONS + BEFORE_KNOWN:
            continue
        path = op.path.replace("{tenant_id}", NEVER_SEEN).replace("{qbo_id}", "1")
        path = path.replace("{kind}", "client").replace("{app_id}", "a1").replace("{job_id}", "0" * 32)
        assert not re.search(r"\{\w+\}", path), path
        body = VALID_BODIES.get(op.route)
        kind = re.fullmatch(
            r"/v1/tenants/\{tenant_id\}/(clients|invoices|payments|credit-memos)/\{app_id\}", op.path
        )
        if kind is not None:
            body = documents(kind.group(1), "a1")
        query = "?mappings=keep" if op.method == "DELETE" and path.endswith("/connection") else ""
        answer = host.call(op.method, path + query, body)
        detail = answer.json()["detail"] if answer.status_code == 404 else None
        where = [(d["loc"], d["type"]) for d in detail or ()]
        if answer.status_code != 404 or where != [(["path", "tenant_id"], "not_connected")]:
            refused.append(f"{op.route}: {answer.status_code} {answer.text[:200]}")
    assert refused == []


def test_settings_given_before_connecting_make_a_tenant_known(host: Host) -> None:
    assert host.call("GET", "/tenants/firm-configured/settings").status_code == 404
    host.ok("PUT", "/tenants/firm-configured/settings", {"auto_create_customers": True})
    assert host.ok("GET", "/tenants/firm-configured/settings")["auto_create_customers"] is True
    assert host.ok("GET", "/tenants/firm-configured/connection")["connected"] is False
    assert host.ok("GET", "/tenants/firm-configured/postings") == {"entries": [], "next_page_token": None}


def test_lists_given_before_connecting_make_a_tenant_known(host: Host) -> None:
    tenant = "firm-listed"
    assert host.call("GET", f"/tenants/{tenant}/mappings/work_code").status_code == 404
    entry = {"name": "Mowing", "version": 1}
    host.ok("PUT", f"/tenants/{tenant}/catalog/work_code/W-1", entry)
    rows = host.ok("GET", f"/tenants/{tenant}/mappings/work_code")["app"]
    assert [row["id"] for row in rows] == ["W-1"]
    assert host.ok("GET", f"/tenants/{tenant}/connection")["connected"] is False
