"""The console's match tabs (functions/console/assets/js/views/match.js) in a real browser.

Fixtures (tests/browser/conftest.py): ``console`` — ``.page`` (a Playwright sync Page at the console
of a connected tenant holding the demo's data: catalog told, onboarded and automatched, documents
pushed, three invoices waiting on work code ``wc-irrigation``), ``.open(hash)``, ``.api`` (the
tenant's API: ``.get(path)``, ``.post(path, json=...)``, ``.put(path, json=...)``,
``.delete(path)`` on paths relative to ``/v1/tenants/<tenant>``, answering parsed JSON),
``.tenant`` and ``.shot(name)``.

Each test leaves the links as it found them (what it unlinks through the API it links back), except
the export of ``wc-irrigation``, which creates a QBO item once.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Locator, Page, expect

# The demo's pairs the tests play with (shared/qbo_link_cli demo: the sandbox's US company).
AMY, AMY_QBO = "c-amy", "1"
GEETA, GEETA_QBO = "c-geeta", "10"
COOL, COOL_QBO = "c-cool", "3"


# --- helpers -------------------------------------------------------------------------------------


_opened = itertools.count()


def open_tab(console: Any, kind: str, query: str = "") -> Page:
    """Opens a match tab afresh: a new nonce in the hash makes it a new route even when the page
    already shows that tab (the screen ignores the parameter)."""
    nonce = f"n={next(_opened)}"
    console.open(f"/match/{kind}?{query}&{nonce}" if query else f"/match/{kind}?{nonce}")
    page: Page = console.page
    expect(page.locator("#match-lists")).to_be_visible()
    expect(page.locator("#app-side .count-line")).to_contain_text("Showing")
    return page


def app_row(page: Page, app_id: str) -> Locator:
    return page.locator(f'#app-side tbody tr[data-id="{app_id}"]')


def qbo_row(page: Page, qbo_id: str) -> Locator:
    return page.locator(f'#qbo-side tbody tr[data-id="{qbo_id}"]')


def listing(console: Any, kind: str, **query: str) -> dict[str, Any]:
    found: dict[str, Any] = console.api.get(f"/mappings/{kind}", limit=1000, **query)
    return found


def linked_qbo_id(console: Any, kind: str, app_id: str) -> str | None:
    rows = [row for row in listing(console, kind)["app"] if row["id"] == app_id]
    assert rows, f"{kind} {app_id} is not in the tab"
    found: str | None = rows[0]["linked_qbo_id"]
    return found


@contextmanager
def unlinked(console: Any, kind: str, app_id: str) -> Iterator[str]:
    """Unlinks an app entity through the API for the test and links it back afterwards (unless the
    test linked it again itself); yields the QBO id it was linked to."""
    qbo_id = linked_qbo_id(console, kind, app_id)
    assert qbo_id is not None, f"the demo links {kind} {app_id}"
    console.api.delete(f"/mappings/{kind}/app/{app_id}")
    try:
        yield qbo_id
    finally:
        if linked_qbo_id(console, kind, app_id) is None:
            console.api.put(f"/mappings/{kind}/app/{app_id}", {"qbo_id": qbo_id})


def showing(page: Page, side: str) -> tuple[int, int]:
    text = page.locator(f"#{side}-side .count-line").inner_text()
    match = re.search(r"Showing (\d+) of (\d+)", text)
    assert match, text
    return int(match[1]), int(match[2])


def row_ids(page: Page, side: str) -> list[str]:
    return [str(row.get_attribute("data-id")) for row in page.locator(f"#{side}-side tbody tr").all()]


def expect_showing(page: Page, side: str, total: int) -> None:
    """The side's count line once every row the search keeps is on screen (one page)."""
    expect(page.locator(f"#{side}-side .count-line")).to_have_text(f"Showing {total} of {total}")


# --- tests ---------------------------------------------------------------------------------------


def test_tabs_and_picking_a_linked_row_highlights_its_partner(console: Any) -> None:
    page = open_tab(console, "client")
    expect(page.get_by_role("heading", level=1)).to_have_text("Match lists — Clients")
    tabs = page.get_by_role("navigation", name="Lists to match").get_by_role("link")
    expect(tabs).to_have_count(7)
    expect(tabs.filter(has_text="Clients")).to_have_attribute("aria-current", "page")
    expect(page.locator("#qbo-read")).to_contain_text("QuickBooks list read")

    # Picking by keyboard: Amy's row is picked, her QuickBooks customer is her partner.
    amy = app_row(page, AMY).locator("button.pick")
    amy.focus()
    page.keyboard.press("Enter")
    expect(app_row(page, AMY)).to_have_class(re.compile(r"\bpicked\b"))
    expect(amy).to_have_attribute("aria-pressed", "true")
    expect(qbo_row(page, AMY_QBO)).to_have_class(re.compile(r"\bpartner\b"))
    expect(page.get_by_role("region", name="Link by hand")).to_contain_text("Amy's Bird Sanctuary")
    console.shot("match-tabs")

    # Picking a linked QuickBooks row moves the highlight to its app partner.
    qbo_row(page, GEETA_QBO).locator("button.pick").click()
    expect(qbo_row(page, GEETA_QBO)).to_have_class(re.compile(r"\bpicked\b"))
    expect(app_row(page, GEETA)).to_have_class(re.compile(r"\bpartner\b"))
    expect(app_row(page, AMY)).not_to_have_class(re.compile(r"\bpicked\b"))
    expect(qbo_row(page, AMY_QBO)).not_to_have_class(re.compile(r"\bpartner\b"))

    # On a phone the lists stack and stay usable.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(app_row(page, AMY).locator("button.pick")).to_be_visible()
    console.shot("match-tabs-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    tabs.filter(has_text="Work codes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Match lists — Work codes")
    expect(page.locator("#match-lists")).to_be_visible()


def test_link_and_unlink_by_hand(console: Any) -> None:
    assert linked_qbo_id(console, "client", COOL) == COOL_QBO
    page = open_tab(console, "client")
    row = app_row(page, COOL)
    expect(row).to_contain_text("Linked")

    try:
        # Unlink: the row and its former partner say so, and so does the API.
        row.get_by_role("button", name="Unlink Cool Cars").click()
        expect(row).to_contain_text("Not linked")
        expect(qbo_row(page, COOL_QBO)).to_contain_text("Not linked")
        expect(page.locator("#toast")).to_contain_text("Unlinked Cool Cars")
        assert linked_qbo_id(console, "client", COOL) is None

        # Link by hand: pick the app row, then the QuickBooks row, then Link.
        row.locator("button.pick").click()
        qbo_row(page, COOL_QBO).locator("button.pick").click()
        bar = page.get_by_role("region", name="Link by hand")
        expect(bar).to_contain_text("Cool Cars")
        bar.get_by_role("button", name="Link", exact=True).click()
        expect(row).to_contain_text("Linked")
        expect(row.locator(".linked-name")).to_have_text("Cool Cars")
        expect(qbo_row(page, COOL_QBO)).to_contain_text(COOL)
        expect(page.locator("#toast")).to_contain_text("Linked Cool Cars to Cool Cars")
        assert linked_qbo_id(console, "client", COOL) == COOL_QBO
    finally:
        if linked_qbo_id(console, "client", COOL) is None:
            console.api.put(f"/mappings/client/app/{COOL}", {"qbo_id": COOL_QBO})


def test_automatch_proposes_a_pair_and_accepting_links_it(console: Any) -> None:
    with unlinked(console, "client", COOL) as qbo_id:
        page = open_tab(console, "client")
        expect(app_row(page, COOL)).to_contain_text("Not linked")

        page.get_by_role("button", name="Automatch…").click()
        proposals = page.locator(".proposals")
        expect(proposals.get_by_role("heading", name="Automatch proposals")).to_be_visible()
        pair = proposals.locator("tbody tr", has_text="Cool Cars")
        expect(pair).to_contain_text("Same name")
        expect(pair).to_contain_text("Sure")
        console.shot("match-automatch")
        assert linked_qbo_id(console, "client", COOL) is None  # proposing links nothing

        pair.get_by_role("button", name=re.compile(r"^Accept Cool Cars")).click()
        expect(pair).to_contain_text("Linked")
        expect(app_row(page, COOL)).to_contain_text("Linked")
        expect(app_row(page, COOL).locator(".linked-name")).to_have_text("Cool Cars")
        assert linked_qbo_id(console, "client", COOL) == qbo_id

        proposals.get_by_role("button", name="Dismiss").click()
        expect(page.locator(".proposals")).to_have_count(0)


def test_hide_linked_and_search_narrow_both_lists(console: Any) -> None:
    page = open_tab(console, "client")
    whole = listing(console, "client")
    assert showing(page, "app") == (len(whole["app"]), whole["app_total"])
    assert showing(page, "qbo") == (len(whole["qbo"]), whole["qbo_total"])

    # Search (debounced, on the server): both sides keep what holds the text.
    search = page.get_by_label("Search both lists")
    search.fill("amy")
    found = listing(console, "client", q="amy")
    expect_showing(page, "app", found["app_total"])
    expect_showing(page, "qbo", found["qbo_total"])
    assert row_ids(page, "app") == [row["id"] for row in found["app"]] == [AMY]
    assert AMY_QBO in row_ids(page, "qbo")
    assert showing(page, "qbo")[1] < whole["qbo_total"]

    # Hide linked on top: Amy is linked, so nothing of hers is left.
    page.get_by_label("Hide linked").check()
    expect(page.locator("#app-side")).to_contain_text("Nothing matches the search.")
    assert AMY_QBO not in row_ids(page, "qbo")

    # Hide linked alone: only unlinked rows, as many as the API counts.
    search.fill("")
    hidden = listing(console, "client", hide_linked="true")
    expect_showing(page, "qbo", hidden["qbo_total"])
    assert row_ids(page, "qbo") == [row["id"] for row in hidden["qbo"]]
    expect(page.locator("#qbo-side tbody .badge", has_text="Linked")).to_have_count(0)
    assert hidden["qbo_total"] < whole["qbo_total"]
    console.shot("match-hide-linked")


def export_one(page: Page, row: Any, name: str) -> Any:
    """Ticks ``row`` (app entity ``name``) and exports it; the export's outcome row for it."""
    expect(row).to_contain_text("Not linked")
    row.get_by_label(f"Select {name} to export").check()
    page.get_by_role("button", name="Export selected to QuickBooks (1)").click()
    return page.locator(".transfer tbody tr", has_text=name)


def test_export_creates_the_missing_work_code_in_quickbooks_and_links_it(console: Any) -> None:
    assert linked_qbo_id(console, "work_code", "wc-irrigation") is None  # the demo's missing item
    waiting = console.api.get("/postings", state="needs_attention", kind="invoice")["entries"]
    assert waiting, "the demo's invoices wait for wc-irrigation"
    # The Needs attention screen links here: the row is picked and in view.
    page = open_tab(console, "work_code", "app=wc-irrigation")
    row = app_row(page, "wc-irrigation")
    expect(row).to_have_class(re.compile(r"\bpicked\b"))
    expect(row).to_be_in_viewport()
    outcome = export_one(page, row, "Irrigation Audit")
    expect(outcome).to_contain_text("Created in QuickBooks and linked")
    expect(row).to_contain_text("Linked")
    expect(row.locator(".linked-name")).to_have_text("Irrigation Audit")
    expect(page.get_by_role("button", name="Export selected to QuickBooks (0)")).to_be_disabled()
    console.shot("match-export")

    qbo_id = linked_qbo_id(console, "work_code", "wc-irrigation")
    assert qbo_id is not None
    expect(outcome).to_contain_text(qbo_id)
    items = {row["id"]: row for row in listing(console, "work_code")["qbo"]}
    assert items[qbo_id]["name"] == "Irrigation Audit"
    assert items[qbo_id]["linked_app_id"] == "wc-irrigation"
    expect(qbo_row(page, qbo_id)).to_contain_text("wc-irrigation")

    # The export queued a recheck: the invoices that waited for the item post by themselves (then
    # the payment that waited for one of them), and the console shows it.
    console.stack.wait_idle(60)
    page = console.open("/attention")
    expect(page.locator(".screen .success")).to_contain_text("All is well")
    expect(page.locator("#attention-count")).to_be_hidden()
    for entry in waiting:
        posting = console.api.get(f"/postings/invoice/{entry['app_id']}")
        assert posting["state"] == "posted"
        page = console.open(f"/postings?kind=invoice&state=posted&n={entry['app_id']}")
        row = page.locator("tbody tr", has_text=entry["app_id"])
        expect(row).to_contain_text("Posted")
        expect(row).to_contain_text(posting["qbo_id"])

    # The export is in the exchange history, with what became of its entity.
    page = console.open("/exchanges")
    transfer = page.locator("tbody tr", has_text="Export to QuickBooks: work codes")
    expect(transfer).to_have_count(1)
    expect(transfer).to_contain_text("1 created in QuickBooks and linked")


def test_a_refused_export_shows_quickbooks_reason(console: Any) -> None:
    # Design is unlinked but QuickBooks already has an item named Design: export is refused.
    with unlinked(console, "work_code", "wc-design"):
        page = open_tab(console, "work_code")
        row = app_row(page, "wc-design")
        outcome = export_one(page, row, "Design")
        expect(outcome).to_contain_text("Refused")
        expect(outcome).to_contain_text("QuickBooks already uses this name")
        expect(page.locator(".transfer")).to_contain_text("0 done, 1 refused")
        expect(page.get_by_role("button", name="Export selected to QuickBooks (0)")).to_be_disabled()
        expect(row).to_contain_text("Not linked")
        console.shot("match-export-refused")
        assert linked_qbo_id(console, "work_code", "wc-design") is None
