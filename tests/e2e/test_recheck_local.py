"""A waiting invoice goes by itself on the local stack: the bookkeeper exports the work code it waits
for through the mapping API, and the invoice is posted with no recheck call (docs/push.md,
"Recheck").  Over HTTP only, as a host app uses the stack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from qbo_link_local.stack import LocalStack
from tests.e2e.local_fixtures import Host, client, invoice, local_stack

__all__ = ["local_stack"]

TENANT = "firm-wait"
NEW_CODE = "W-TREES"


@pytest.fixture(scope="module")
def firm(local_stack: LocalStack) -> Iterator[Host]:
    """One tenant connected through the OAuth flow, onboarded, with a revenue account for exports."""
    with httpx2.Client(timeout=30) as http:
        host = Host(local_stack, http)
        host.connect(TENANT)
        local_stack.wait_idle(60)
        host.prepare(TENANT)
        host.ok(
            "PUT", f"/tenants/{TENANT}/settings", {"auto_create_customers": True, "revenue_account_id": "1"}
        )
        yield host


def _posting(host: Host, app_id: str) -> dict[str, Any]:
    found: dict[str, Any] = host.ok("GET", f"/tenants/{TENANT}/postings/invoice/{app_id}")
    return found


def test_a_waiting_invoice_posts_once_its_work_code_is_exported_without_a_recheck_call(firm: Host) -> None:
    stack = firm.stack
    # Given an invoice that bills a work code QuickBooks has no item for
    firm.ok("PUT", f"/tenants/{TENANT}/catalog/work_code/{NEW_CODE}", {"version": 1, "name": "Tree removal"})
    assert firm.call("PUT", f"/tenants/{TENANT}/clients/c-1", client("c-1")).status_code == 202
    document = invoice("i-wait", "c-1", amount="480.00")
    document["lines"][0]["code"] = NEW_CODE
    answer = firm.call("PUT", f"/tenants/{TENANT}/invoices/i-wait", document)
    assert answer.status_code == 202, answer.text
    assert answer.json()["state"] == "needs_attention"
    assert [r["code"] for r in answer.json()["reasons"]] == ["item_not_mapped"]
    stack.wait_idle(60)
    assert _posting(firm, "i-wait")["state"] == "needs_attention"

    # When the bookkeeper exports the work code as a QuickBooks item
    exported = firm.ok("POST", f"/tenants/{TENANT}/mappings/work_code/export", {"app_ids": [NEW_CODE]})
    [result] = exported["results"]
    assert result["status"] == "created", result

    # Then the invoice goes by itself, billing the new item, once
    deadline = time.monotonic() + 60
    while _posting(firm, "i-wait")["state"] != "posted":
        assert time.monotonic() < deadline, _posting(firm, "i-wait")
        time.sleep(0.05)
    [posted] = firm.invoices_numbered(TENANT, "E2E-i-wait")
    assert posted["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"] == result["qbo_id"]
    stack.wait_idle(60)
    assert len(firm.invoices_numbered(TENANT, "E2E-i-wait")) == 1
    # and nobody asked for a recheck: the export queued it
    assert not [i for i in stack.invocations("api") if i.trigger.endswith("/postings/recheck")]
    assert firm.ok("GET", f"/tenants/{TENANT}/postings/summary")["by_state"]["needs_attention"] == 0
