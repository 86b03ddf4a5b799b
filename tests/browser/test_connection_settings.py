"""The console's Connection and Settings screens, in Chromium: connecting through Intuit's OAuth flow
from the console, disconnecting with the mappings kept and reconnecting, and the push settings."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Console

pytestmark = pytest.mark.slow
DEMO_DOCUMENTS = False  # connection and settings: the demo's firm connected is enough


def connect_from_console(console: Console, *, choose_realm: str | None = None) -> None:
    """Connect (or Reconnect) → the sandbox's consent → the gateway's callback → back on the console.

    ``choose_realm``: the company the administrator picks on Intuit's page (the sandbox reads the
    choice from the consent URL's ``realmId``; without it, each consent makes a new company)."""
    page = console.page
    if choose_realm is not None:
        page.route(
            re.compile(r"/connect/oauth2\?"),
            lambda route: route.continue_(url=f"{route.request.url}&realmId={choose_realm}"),
        )
    page.get_by_role("button", name=re.compile(r"^(Connect|Reconnect) to QuickBooks$")).click()
    # The browser goes to Intuit (the sandbox), whose consent sends it to the gateway's callback,
    # which sends it back to the console with ?status=connected: the banner says so.
    expect(page.locator(".success")).to_have_text("QuickBooks is connected.")
    console.wait_rendered()
    expect(page.locator("#health")).to_have_text("Connected")


def test_connect_through_oauth_from_the_console(new_tenant_console: Console) -> None:
    console, page = new_tenant_console, new_tenant_console.page
    expect(page.get_by_role("heading", name="Not connected")).to_be_visible()
    expect(page.locator("#company")).to_contain_text("QuickBooks not connected")
    console.shot("connect")

    connect_from_console(console)

    status = console.api.get("/connection")
    assert status["connected"] is True
    expect(page.locator("#realm")).to_have_text(status["realm_id"])
    expect(page.locator("#company-card h2")).to_have_text(status["company_name"])
    # The status read from the return URL is dropped from the address bar: a reload does not repeat it.
    assert "status=" not in page.url

    console.stack.wait_idle(60)  # onboarding: an event rule reads the company's lists and automatches
    console.open("/connection")
    expect(page.locator("#onboarding")).to_contain_text("Lists read and matched")
    onboarding = console.api.get("/connection")["onboarding"]
    linked = sum(onboarding["linked"].values())
    expect(page.locator("#onboarding")).to_contain_text(f"{linked} linked")
    expect(page.locator("#company")).to_contain_text(status["company_name"])
    console.shot("connection")


def test_disconnect_keeping_the_mappings_then_reconnect(new_tenant_console: Console) -> None:
    console, page = new_tenant_console, new_tenant_console.page
    connect_from_console(console)
    console.stack.wait_idle(60)
    linked_before = {
        row["id"]: row["linked_qbo_id"]
        for row in console.api.get("/mappings/client", limit=1000)["app"]
        if row["linked_qbo_id"]
    }
    assert linked_before, "onboarding linked some clients"
    console.open("/connection")

    page.get_by_role("button", name="Disconnect…").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Keep them: reconnecting the same company resumes where it stopped.")
    expect(dialog).to_contain_text("Remove them: the next company starts matching from scratch.")
    expect(page.get_by_label(re.compile("^Keep them"))).to_be_checked()
    console.shot("disconnect")
    realm = console.api.get("/connection")["realm_id"]
    dialog.get_by_role("button", name="Disconnect").click()

    expect(page.locator("#toast")).to_have_text("Disconnected. The links were kept.")
    expect(page.get_by_role("heading", name="Disconnected")).to_be_visible()
    expect(page.locator(".screen")).to_contain_text("its links were kept")
    status = console.api.get("/connection")
    assert status["connected"] is False
    assert status["keep_mappings"] is True
    linked_after = {
        row["id"]: row["linked_qbo_id"]
        for row in console.api.get("/mappings/client", limit=1000)["app"]
        if row["linked_qbo_id"]
    }
    assert linked_after == linked_before

    connect_from_console(console, choose_realm=realm)  # the same company at Intuit
    assert console.api.get("/connection")["connected"] is True
    relinked = {
        row["id"]: row["linked_qbo_id"]
        for row in console.api.get("/mappings/client", limit=1000)["app"]
        if row["linked_qbo_id"]
    }
    assert relinked == linked_before


def test_disconnect_can_be_cancelled(console: Console) -> None:
    page = console.page
    page.get_by_role("button", name="Disconnect…").click()
    page.locator("dialog#confirm").get_by_role("button", name="Cancel").click()
    expect(page.locator("dialog#confirm")).to_be_hidden()
    assert console.api.get("/connection")["connected"] is True
    expect(page.locator("#health")).to_have_text("Connected")


def test_settings_offer_qbo_accounts_and_save(console: Console) -> None:
    page = console.open("/settings")
    accounts = console.api.get("/mappings/account", limit=1000)["qbo"]
    types = {a["id"]: a["type"] for a in accounts}

    revenue = page.get_by_label("Revenue account")
    deposit = page.get_by_label("Deposit account for payments")
    revenue_ids = [v for v in revenue.locator("option").evaluate_all("os => os.map(o => o.value)") if v]
    deposit_ids = [v for v in deposit.locator("option").evaluate_all("os => os.map(o => o.value)") if v]
    assert revenue_ids
    assert {types[i] for i in revenue_ids} <= {"Income", "Other Income"}
    assert deposit_ids
    assert {types[i] for i in deposit_ids} <= {"Bank", "Other Current Asset"}
    assert "Accounts Receivable" not in {types[i] for i in revenue_ids + deposit_ids}
    expect(deposit.locator("option").first).to_have_text("Undeposited Funds")
    expect(page.locator(".screen")).to_contain_text("Empty: payments go to Undeposited Funds")
    console.shot("settings")

    page.get_by_label("Go-live date").fill("2026-10-01")
    page.get_by_label("Create a QuickBooks customer for a new client").uncheck()
    revenue.select_option(revenue_ids[0])
    deposit.select_option(deposit_ids[0])
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#toast")).to_have_text("Settings saved.")

    saved = console.api.get("/settings")
    assert saved["go_live_date"] == "2026-10-01"
    assert saved["auto_create_customers"] is False
    assert saved["revenue_account_id"] == revenue_ids[0]
    assert saved["deposit_account_id"] == deposit_ids[0]

    page = console.open("/settings")  # read back from the API
    expect(page.get_by_label("Go-live date")).to_have_value("2026-10-01")
    expect(page.get_by_label("Deposit account for payments")).to_have_value(deposit_ids[0])

    page.get_by_label("Deposit account for payments").select_option("")
    page.get_by_label("Create a QuickBooks customer for a new client").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#toast")).to_have_text("Settings saved.")
    saved = console.api.get("/settings")
    assert saved["deposit_account_id"] is None
    assert saved["auto_create_customers"] is True


def test_summarised_mode_needs_a_master_customer(console: Console) -> None:
    page = console.open("/settings")
    master = page.get_by_label("Master customer")
    expect(master).to_be_hidden()
    page.get_by_label("Summarised: one journal entry per day").check()
    expect(master).to_be_visible()
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-problems .error")).to_contain_text("master customer id: is required")
    assert console.api.get("/settings")["posting_mode"] == "full"  # refused: nothing changed

    customer = next(v for v in master.locator("option").evaluate_all("os => os.map(o => o.value)") if v)
    master.select_option(customer)
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#toast")).to_have_text("Settings saved.")
    saved = console.api.get("/settings")
    assert saved["posting_mode"] == "summarised"
    assert saved["master_customer_id"] == customer
    console.api.patch("/settings", {"posting_mode": "full", "master_customer_id": None})
