"""The console's log screens in a real browser, each compared with the API's own answer: Needs
attention, the posting log (filters, details), the transactions report (totals, CSV) and exchanges.

Fixtures (tests/browser/conftest.py): ``console`` with ``.page`` (a Playwright sync Page at the
console of a connected tenant holding the demo's data: 74 documents, 4 waiting on work code
``wc-irrigation``), ``.open(hash)``, ``.api`` (``.get(path, **params)`` / ``.post(path, body)``
relative to ``/v1/tenants/<tenant>``, parsed JSON), ``.tenant`` and ``.shot(name)``.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

TIMEOUT = 15_000


def every(console: Any, path: str, field: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a paged route (a filtered page may be short or empty with a next token)."""
    items: list[dict[str, Any]] = []
    token = None
    for _ in range(200):
        answer = console.api.get(path, **params, **({"page_token": token} if token else {}))
        items += answer[field]
        token = answer.get("next_page_token")
        if not token:
            return items
    raise AssertionError(f"{path} never ended")


def rows(page: Page, scope: str) -> list[dict[str, str]]:
    """The (kind, app id) of each data row of a screen's table."""
    found: list[dict[str, str]] = page.eval_on_selector_all(
        f"{scope} tbody tr[data-app]", "rows => rows.map(r => ({kind: r.dataset.kind, app: r.dataset.app}))"
    )
    return found


def settled(page: Page) -> None:
    """The screen a hash change asked for has rendered (the shell's main is no longer busy)."""
    page.wait_for_selector('main[aria-busy="false"]', timeout=TIMEOUT)


def money(text: str) -> Decimal:
    return Decimal(text.replace(",", "").strip())


# --- Needs attention ----------------------------------------------------------------------------


def test_needs_attention_lists_the_waiting_documents_in_plain_words(console: Any) -> None:
    waiting = every(console, "/postings", "entries", state="needs_attention")
    failed = every(console, "/postings", "entries", state="failed")
    console.open("/attention")
    page = console.page
    expect(page.locator(".screen-attention tbody tr[data-app]").first).to_be_visible(timeout=TIMEOUT)
    shown = rows(page, ".screen-attention")
    assert sorted((r["kind"], r["app"]) for r in shown) == sorted(
        (e["kind"], e["app_id"]) for e in waiting + failed
    )
    assert len([e for e in waiting if e["kind"] == "invoice"]) >= 3
    for entry in waiting:
        row = page.locator(f'.screen-attention tr[data-kind="{entry["kind"]}"][data-app="{entry["app_id"]}"]')
        for reason in entry["reasons"]:
            if reason["code"] == "item_not_mapped":
                line = reason["details"]["line_id"]
                expect(row).to_contain_text(f"Work code wc-irrigation has no QuickBooks item (line {line}).")
                fix = row.get_by_role("link", name="Link or export work code wc-irrigation")
                expect(fix).to_have_attribute("href", "#/match/work_code?app=wc-irrigation")
            if reason["code"] == "invoice_not_posted":
                invoice = reason["details"]["invoice_id"]
                expect(row).to_contain_text(f"It pays invoice {invoice}, which is not in QuickBooks yet.")
    expect(page.locator(".screen-attention .fix-list")).to_contain_text(
        "3 documents wait for work code wc-irrigation"
    )
    expect(page.locator("#attention-count")).to_have_text(str(len(waiting) + len(failed)))
    console.shot("attention")


def test_check_again_rechecks_and_the_documents_still_wait(console: Any) -> None:
    console.open("/attention")
    page = console.page
    expect(page.locator(".screen-attention tbody tr[data-app]").first).to_be_visible(timeout=TIMEOUT)
    page.get_by_role("button", name="Check again").click()
    expect(page.locator("#toast")).to_contain_text("waiting document", timeout=TIMEOUT)
    # wc-irrigation is still not linked: the same documents wait, and say so.
    expect(page.locator(".screen-attention tbody tr[data-app]")).to_have_count(
        len(every(console, "/postings", "entries", state="needs_attention"))
        + len(every(console, "/postings", "entries", state="failed")),
        timeout=TIMEOUT,
    )


# --- Posting log --------------------------------------------------------------------------------


def shown_log(page: Page) -> list[tuple[str, str]]:
    """Every row of the posting log, "Load more" followed to the end."""
    expect(page.locator(".screen-postings .result-count")).to_be_visible(timeout=TIMEOUT)
    more = page.locator(".screen-postings .results").get_by_role("button", name="Load more")
    while more.count():
        more.click()
        page.wait_for_timeout(200)
    expect(more).to_have_count(0, timeout=TIMEOUT)
    return sorted((r["kind"], r["app"]) for r in rows(page, ".screen-postings .results"))


def test_the_posting_log_filters_by_state_and_kind_as_the_api_does(console: Any) -> None:
    page = console.page
    console.open("/postings")
    form = page.get_by_role("form", name="Filters")
    form.get_by_label("State").select_option("posted")
    form.get_by_label("Kind").select_option("payment")
    form.get_by_role("button", name="Show").click()
    page.wait_for_url("**#/postings?state=posted&kind=payment")
    settled(page)
    expected = every(console, "/postings", "entries", state="posted", kind="payment")
    assert expected, "the demo has posted payments"
    assert shown_log(page) == sorted(("payment", e["app_id"]) for e in expected)
    expect(page.locator(".screen-postings .result-count")).to_have_text(f"{len(expected)} documents.")

    # A link reproduces a view: the kind alone lists undated documents (clients) too.
    console.open("/postings?kind=client")
    clients = every(console, "/postings", "entries", kind="client")
    assert clients, "the demo has clients"
    assert shown_log(page) == sorted(("client", e["app_id"]) for e in clients)
    expect(page.get_by_label("Kind")).to_have_value("client")

    console.open("/postings?state=needs_attention&kind=invoice")
    waiting = every(console, "/postings", "entries", state="needs_attention", kind="invoice")
    assert shown_log(page) == sorted(("invoice", e["app_id"]) for e in waiting)

    # The summary at the top is the API's.
    summary = console.api.get("/postings/summary")
    caption = page.locator(".screen-postings .summary caption")
    expect(caption).to_contain_text(f"({summary['total']} in all)")
    console.shot("posting-log")


def test_details_show_a_documents_attempts(console: Any) -> None:
    page = console.page
    posted = every(console, "/postings", "entries", state="posted", kind="invoice")
    entry = posted[0]
    detail = console.api.get(f"/postings/invoice/{entry['app_id']}")
    console.open("/postings?state=posted&kind=invoice")
    row = page.locator(f'.screen-postings tr[data-kind="invoice"][data-app="{entry["app_id"]}"]')
    button = row.get_by_role("button", name="Details")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    attempts = page.locator(".screen-postings tr.details .attempts tbody tr")
    expect(attempts).to_have_count(len(detail["attempt_log"]), timeout=TIMEOUT)
    for n, attempt in enumerate(detail["attempt_log"]):
        expect(attempts.nth(n)).to_contain_text(attempt["outcome"].replace("_", " "))
        if attempt.get("intuit_tid"):
            expect(attempts.nth(n)).to_contain_text(attempt["intuit_tid"])
    button.click()
    expect(page.locator(".screen-postings tr.details")).to_have_count(0)


# --- Transactions report ------------------------------------------------------------------------


def demo_range(console: Any) -> tuple[str, str]:
    """From the 1st of the month of the earliest dated document to the latest's date."""
    dated = [e["txn_date"] for e in every(console, "/postings", "entries", limit=1000) if e.get("txn_date")]
    first = date.fromisoformat(min(dated)).replace(day=1)
    return first.isoformat(), max(dated)


def run_report(console: Any, txn_from: str, txn_to: str) -> None:
    page = console.page
    console.open("/report")
    form = page.get_by_role("form", name="Report range")
    form.locator('input[name="txn_from"]').fill(txn_from)
    form.locator('input[name="txn_to"]').fill(txn_to)
    form.get_by_label("Include unposted documents").check()
    form.get_by_role("button", name="Run").click()
    page.wait_for_url(f"**#/report?txn_from={txn_from}&txn_to={txn_to}**")
    settled(page)
    expect(page.get_by_role("button", name="Download CSV")).to_be_enabled(timeout=TIMEOUT)


def report_as_the_api_has_it(console: Any, txn_from: str, txn_to: str) -> tuple[dict[str, Any], list[Any]]:
    """The report's first page (its totals) and every document of the range, unposted included."""
    query = {"txn_from": txn_from, "txn_to": txn_to, "include_unposted": "true"}
    first = console.api.get("/reports/transactions", limit=1000, **query)
    return first, every(console, "/reports/transactions", "documents", **query)


def test_the_reports_totals_are_the_apis_to_the_cent(console: Any) -> None:
    page = console.page
    txn_from, txn_to = demo_range(console)
    api, documents = report_as_the_api_has_it(console, txn_from, txn_to)
    run_report(console, txn_from, txn_to)
    for kind, total in api["totals"].items():
        cells = page.locator(f'.screen-report .totals tr[data-kind="{kind}"] td').all_inner_texts()
        assert int(cells[1]) == total["count"]
        assert money(cells[2]) == Decimal(total["total"])
        assert int(cells[3]) == total["posted_count"]
        assert money(cells[4]) == Decimal(total["posted_total"])
    shown = sorted((r["kind"], r["app"]) for r in rows(page, ".screen-report .results"))
    assert shown == sorted((d["kind"], d["id"]) for d in documents[:500])
    expect(page.locator(".screen-report .report-status")).to_have_text(f"{len(documents)} documents.")
    assert page.locator(".screen-report .warning").count() == 0
    console.shot("report")


def test_the_csv_holds_every_document_and_the_same_totals(console: Any, tmp_path: Path) -> None:
    page = console.page
    txn_from, txn_to = demo_range(console)
    answer, documents = report_as_the_api_has_it(console, txn_from, txn_to)
    totals = answer["totals"]
    run_report(console, txn_from, txn_to)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == f"transactions-{txn_from}-{txn_to}.csv"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    lines = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    blank = lines.index([])
    header, body = lines[0], lines[1:blank]
    assert header[:3] == ["Kind", "App id", "Number"]
    assert sorted((r[0], r[1]) for r in body) == sorted((d["kind"], d["id"]) for d in documents)
    by_id = {(d["kind"], d["id"]): d for d in documents}
    for r in body:
        assert r[5] == by_id[(r[0], r[1])]["total"]  # the API's string, untouched
    assert lines[blank + 1] == ["Totals"]
    assert lines[blank + 2] == ["Kind", "Count", "Total", "Posted count", "Posted total"]
    csv_totals = {r[0]: r[1:] for r in lines[blank + 3 :] if r}
    assert csv_totals == {
        kind: [str(t["count"]), t["total"], str(t["posted_count"]), t["posted_total"]]
        for kind, t in totals.items()
    }


# --- Exchanges ----------------------------------------------------------------------------------


def test_exchanges_show_the_latest_and_the_history(console: Any) -> None:
    page = console.page
    console.open("/exchanges")
    card = page.locator(".screen-exchanges .card.latest")
    expect(card).to_be_visible(timeout=TIMEOUT)
    table_rows = page.locator(".screen-exchanges tbody tr[data-exchange]")
    expect(table_rows.first).to_be_visible(timeout=TIMEOUT)
    # Read after the page: a recheck may have added an exchange since, never changed the older ones.
    history = console.api.get("/exchanges", limit=100)["exchanges"]
    by_id = {x["exchange_id"]: x for x in history}
    latest = by_id[card.get_attribute("data-exchange") or ""]
    words = {"push": "Push to QuickBooks", "recheck": "Recheck of waiting documents"}
    expect(card.locator(".latest-sentence")).to_contain_text(words.get(latest["source"], latest["source"]))
    expect(card.locator(".latest-sentence")).to_contain_text(f", {latest['outcome']}")
    expect(card.locator("dd").nth(3)).to_have_text(str(latest["notices"]))
    ids = page.eval_on_selector_all(
        ".screen-exchanges tbody tr[data-exchange]", "rows => rows.map(r => r.dataset.exchange)"
    )
    assert ids[0] == latest["exchange_id"]
    start = [x["exchange_id"] for x in history].index(ids[0])
    assert ids == [x["exchange_id"] for x in history][start : start + len(ids)]
    assert len(ids) == min(50, len(history) - start)
    push = next((by_id[i] for i in ids if by_id[i]["source"] == "push"), None)
    assert push is not None, "the demo pushed documents"
    cells = page.locator(f'.screen-exchanges tr[data-exchange="{push["exchange_id"]}"] td').all_inner_texts()
    assert cells[0] == "Push to QuickBooks"
    assert [int(c) for c in cells[4:8]] == [push["notices"], push["reads"], push["changes"], push["echoes"]]
    for event, count in push["events"].items():
        assert f"{count} " in cells[8], (event, cells[8])
    console.shot("exchanges")
