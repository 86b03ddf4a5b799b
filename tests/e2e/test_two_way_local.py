"""Two-way sync on the local stack, over HTTP with the sandbox's webhooks on: what QBO Link writes
never comes back to the host app as a change made in QuickBooks, even when QBO's answer was lost."""

from __future__ import annotations

from tests.e2e.local_fixtures import Host, client, host, invoice, local_stack

__all__ = ["host", "local_stack"]

PULL_EVENTS = ("Client Imported", "Client Changed", "Invoice Changed In QBO", "Payment Received")


def test_a_customer_whose_create_answer_was_lost_is_never_imported(host: Host) -> None:
    stack_ = host.stack
    stack_.wait_idle(60)
    realm = host.realms["firm-a"]
    before = {e["id"] for e in stack_.events() if e["detail-type"] in PULL_EVENTS}
    reads = host.sandbox("GET", f"/counters?realm={realm}")["metered_reads"]
    # Given QBO commits the next customer create and then answers 500 (the answer is lost)
    rule = {"kind": "commit_then_fail", "status": 500, "count": 1, "realm": realm, "entity": "customer"}
    host.sandbox("POST", "/faults", rule)

    # When the app sends a new client, and an invoice of it
    assert host.call("PUT", "/tenants/firm-a/clients/c-lost", client("c-lost")).status_code == 202
    assert host.call("PUT", "/tenants/firm-a/invoices/i-lost", invoice("i-lost", "c-lost")).status_code == 202
    stack_.wait_idle(120)

    # Then QuickBooks holds the customer once, and the invoice against it
    [customer] = [c for c in host.entities("firm-a", "Customer") if c["DisplayName"] == "E2E Client c-lost"]
    assert host.ok("GET", "/tenants/firm-a/postings/client/c-lost")["qbo_id"] == customer["Id"]
    [posted] = host.invoices_numbered("firm-a", "E2E-i-lost")
    assert posted["CustomerRef"]["value"] == customer["Id"]
    # And the host app heard nothing from the pull about QBO Link's own writes
    after = [e for e in stack_.events() if e["detail-type"] in PULL_EVENTS and e["id"] not in before]
    assert after == []
    # (the change worker read QBO for the notice it could not place at once, and no more than that)
    assert host.sandbox("GET", f"/counters?realm={realm}")["metered_reads"] - reads <= 2
