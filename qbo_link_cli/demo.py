"""``qbo-link demo``: the main job of QBO Link on one machine, over HTTP, checked against QuickBooks.

It boots the local stack (the real handlers on moto and the QBO sandbox), then plays the host app
and the firm's bookkeeper: tells QBO Link about the firm's accounts, work codes and clients, connects
the firm's QuickBooks company with OAuth like a browser would (connect route, the sandbox's consent
page, the gateway's callback), lets onboarding import and automatch the QuickBooks lists, pushes a
realistic month of clients, invoices, payments and a credit memo through the tenant API, fixes the
one work code QuickBooks has no item for, and watches the waiting documents go by themselves.

Then it reads QuickBooks' state from the sandbox and checks it against what the app sent (one QBO
document per app document, totals to the cent, balances after payments), prints what was posted,
the totals in both systems, the posting log summary and the latest exchange, and exits 0 only if
every check holds (1 with the failed checks listed otherwise).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

import httpx2
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from qbo_link_cli import operator
from qbo_link_cli.client import ApiClient, ApiError
from qbo_link_cli.documents import Document
from qbo_link_cli.scenario import UNMAPPED_CODE, Check, Scenario, build_scenario, check_qbo

if TYPE_CHECKING:
    from rich.table import Table

    from qbo_link_local.stack import LocalStack

PENDING_STATES: Final = ("received", "queued", "in_flight", "uncertain")
WAIT_SECONDS: Final = 45.0
_ENTITIES: Final = ("Customer", "Invoice", "Payment", "CreditMemo")


class DemoFailedError(Exception):
    """A step of the demo could not go on (the message says which and why)."""


@dataclass
class Demo:
    console: Console
    stack: LocalStack
    api: ApiClient
    scenario: Scenario
    checks: list[Check] = field(default_factory=list)
    realm: str = ""
    wait_seconds: float = WAIT_SECONDS  # how long a step waits for the stack (onboarding, posting)
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=30, trust_env=False))

    @property
    def base(self) -> str:
        return f"/tenants/{self.scenario.tenant}"

    def check(self, title: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(title, ok, detail))
        mark = "[green]✔[/green]" if ok else "[red]✘[/red]"
        self.console.print(f"{mark} {title} — {detail}", highlight=False)

    def step(self, text: str) -> None:
        self.console.print(f"\n[bold]{text}[/bold]")

    def sandbox(self, path: str) -> Any:
        url = self.stack.sandbox_url
        assert url is not None
        answer = self.http.get(f"{url}/_sandbox/{path}")
        answer.raise_for_status()
        return json.loads(answer.content, parse_float=Decimal)


# --- the steps -----------------------------------------------------------------------------------


def _tell_catalog(demo: Demo) -> None:
    demo.step("1. The host app tells QBO Link about the firm's lists")
    scenario = demo.scenario
    entries = [("account", a) for a in scenario.accounts] + [("work_code", w) for w in scenario.work_codes]
    for client in scenario.clients:
        entry = {"version": client["version"], "name": client["display_name"], "type": client["type"]}
        entry.update({k: client[k] for k in ("email", "parent_id") if k in client})
        entries.append(("site" if "parent_id" in client else "client", {"id": client["id"], **entry}))
    for kind, entry in _progress(demo.console, "catalog", entries):
        body = {k: v for k, v in entry.items() if k != "id"}
        demo.api.put(f"{demo.base}/catalog/{kind}/{entry['id']}", body)
    settings = demo.api.put(f"{demo.base}/settings", {"auto_create_customers": True})
    demo.check(
        "catalog and settings",
        settings["auto_create_customers"] is True,
        f"{len(scenario.accounts)} account, {len(scenario.work_codes)} work codes, {len(scenario.clients)} "
        "clients and sites; new clients may be created in QBO",
    )


def _connect(demo: Demo) -> None:
    demo.step("2. The firm connects its QuickBooks company (OAuth 2.0, like a browser)")

    def exchanged() -> int:
        return int(demo.sandbox("counters").get("oauth", {}).get("authorization_code", 0))

    exchanged_before = exchanged()  # the sandbox's count covers every tenant of the stack
    started = demo.api.post(f"{demo.base}/connection", {"return_url": demo.stack.landing_url})
    consent = demo.http.get(started["authorization_url"], follow_redirects=False)
    callback = consent.headers.get("location", "")
    if consent.status_code != 302 or not callback.startswith(demo.stack.callback_url):
        raise DemoFailedError(
            f"the sandbox's consent page did not send the browser back ({consent.status_code})"
        )
    landed = demo.http.get(callback, follow_redirects=False)
    back = landed.headers.get("location", "")
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    demo.realm = params.get("realmId", "")
    demo.check(
        "connected",
        landed.status_code == 302 and params.get("status") == "connected" and bool(demo.realm),
        f"consent → {urlsplit(callback).path} → the app's return URL with status={params.get('status')}, "
        f"realm {demo.realm}",
    )
    replay = demo.http.get(callback, follow_redirects=False)
    exchanges = exchanged() - exchanged_before
    demo.check(
        "callback is idempotent",
        replay.headers.get("location") == back and exchanges == 1,
        f"a replayed callback repeats the outcome; the code was exchanged {exchanges} time(s)",
    )
    status = demo.api.get(f"{demo.base}/connection")
    company = status.get("company") or {}
    demo.check(
        "company facts",
        status.get("connected") is True and company.get("country") == "US",
        f"{status.get('company_name')}, {company.get('country')}, {company.get('currency')}, "
        f"tax model {company.get('tax_model')}, health {status.get('health')}",
    )


def _onboard(demo: Demo) -> None:
    demo.step("3. Onboarding imports the QuickBooks lists and automatches them")
    with demo.console.status("onboarding (Connection Connected → onboard function)"):
        demo.stack.wait_idle(timeout=demo.wait_seconds)
    onboarding = demo.api.get(f"{demo.base}/connection").get("onboarding") or {}
    demo.check(
        "onboarding finished",
        onboarding.get("state") == "finished",
        f"{sum((onboarding.get('read') or {}).values())} QBO entities read, "
        f"{sum((onboarding.get('linked') or {}).values())} linked by the automatch "
        "(the connection status's onboarding, and an Onboarding Finished event)",
    )
    linked: dict[str, int] = {}
    confirmed = 0
    for kind in ("account", "work_code", "client", "site"):
        proposal = demo.api.post(f"{demo.base}/mappings/{kind}/automatch")
        for app_id, suggestions in proposal["suggestions"].items():
            expected = demo.scenario.expected_links.get(app_id)
            if expected and any(s["qbo_id"] == expected for s in suggestions):
                demo.api.put(f"{demo.base}/mappings/{kind}/app/{app_id}", {"qbo_id": expected})
                confirmed += 1
        rows = demo.api.get(f"{demo.base}/mappings/{kind}", limit=500)["app"]
        linked[kind] = sum(1 for row in rows if row.get("linked_qbo_id"))
    wrong = {
        app: qbo
        for app, qbo in _client_links(demo).items()
        if app in demo.scenario.expected_links and qbo != demo.scenario.expected_links[app]
    }
    matched = len(demo.scenario.expected_links)
    demo.check(
        "automatch",
        linked["client"] + linked["site"] == matched
        and not wrong
        and linked["work_code"] == len(demo.scenario.work_codes) - 1,
        f"linked {linked['client']} clients, {linked['site']} site, {linked['work_code']} work codes and "
        f"{linked['account']} account to what QBO already had ({confirmed} suggestion(s) confirmed by hand); "
        f"'{UNMAPPED_CODE}' has no QBO item",
    )


def _client_links(demo: Demo) -> dict[str, str]:
    links: dict[str, str] = {}
    for kind in ("client", "site"):
        for row in demo.api.get(f"{demo.base}/mappings/{kind}", limit=500)["app"]:
            if row.get("linked_qbo_id"):
                links[row["id"]] = row["linked_qbo_id"]
    return links


def _push(demo: Demo) -> None:
    demo.step("4. The app pushes a month of work through the tenant API")
    scenario = demo.scenario
    documents = (
        [Document("client", c, c["id"]) for c in scenario.clients]
        + [Document("invoice", i, i["id"]) for i in scenario.invoices]
        + [Document("credit_memo", m, m["id"]) for m in scenario.credit_memos]
        + [Document("payment", p, p["id"]) for p in scenario.payments]
    )
    answers, _ = operator.send_documents(demo.api, scenario.tenant, documents, demo.console, label="pushing")
    accepted = sum(1 for a in answers if a["status"] == "accepted")
    demo.check(
        "accepted", accepted == len(documents), f"{accepted} of {len(documents)} documents accepted (202)"
    )
    _wait_posted(demo, demo.scenario.postings)
    waiting = demo.api.get(f"{demo.base}/postings", state="needs_attention", limit=1000)["entries"]
    codes = {(e["kind"], e["app_id"]): {r["code"] for r in e["reasons"]} for e in waiting}
    expected = {("invoice", i): {"item_not_mapped"} for i in scenario.waiting_invoices()} | {
        ("payment", p): {"invoice_not_posted"} for p in scenario.waiting_payments()
    }
    demo.check(
        "needs attention",
        codes == expected,
        f"{len(scenario.waiting_invoices())} invoices wait for a QBO item for '{UNMAPPED_CODE}' "
        f"(item_not_mapped) and {len(scenario.waiting_payments())} payment for its invoice "
        "(invoice_not_posted)",
    )


def _fix(demo: Demo) -> None:
    demo.step("5. The bookkeeper exports the missing work code; the waiting documents go by themselves")
    started = time.monotonic()
    exported = demo.api.post(f"{demo.base}/mappings/work_code/export", {"app_ids": [UNMAPPED_CODE]})
    [result] = exported["results"]
    # No recheck call: the export queues one, and what it releases is posted (then the payment that
    # waited for those invoices, released by their posting).
    _wait_posted(demo, demo.scenario.postings, none_waiting=True)
    seconds = time.monotonic() - started
    left = demo.api.get(f"{demo.base}/postings/summary")["by_state"]
    asked = [i for i in demo.stack.invocations("api") if i.trigger.endswith("/postings/recheck")]
    scenario = demo.scenario
    demo.check(
        "fixed",
        result["status"] == "created" and left.get("needs_attention", 0) == 0 and not asked,
        f"'{UNMAPPED_CODE}' created in QBO as item {result.get('qbo_id')}; its "
        f"{len(scenario.waiting_invoices())} invoices and then their payment were posted by themselves "
        f"{seconds:.1f} s after the export, with no recheck call",
    )


def _wait_posted(demo: Demo, total: int, *, none_waiting: bool = False) -> None:
    """A progress bar of posted documents until nothing is pending (and, with ``none_waiting``,
    nothing waits in ``needs_attention``) and the stack is idle."""
    deadline = time.monotonic() + demo.wait_seconds

    def settled(states: Mapping[str, int]) -> bool:
        waits = none_waiting and bool(states.get("needs_attention"))
        return not waits and not any(states.get(s) for s in PENDING_STATES)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=demo.console) as progress:
        task = progress.add_task("posting to QuickBooks", total=total)
        while True:
            states = demo.api.get(f"{demo.base}/postings/summary")["by_state"]
            progress.update(task, completed=states.get("posted", 0))
            if settled(states):
                # A posting may release a waiting document: done only when that too has settled.
                demo.stack.wait_idle(timeout=max(1.0, deadline - time.monotonic()))
                states = demo.api.get(f"{demo.base}/postings/summary")["by_state"]
                if settled(states):
                    waiting = states.get("needs_attention", 0)
                    progress.update(
                        task,
                        completed=states.get("posted", 0),
                        description=f"posted to QuickBooks{f', {waiting} waiting' if waiting else ''}",
                    )
                    return
            if time.monotonic() > deadline:
                raise DemoFailedError(f"documents still pending after {demo.wait_seconds:g} s: {states}")
            time.sleep(0.2)


def _verify(demo: Demo) -> dict[tuple[str, str], str]:
    demo.step("6. QuickBooks' state, checked against the app")
    qbo = {entity: _rows(demo.sandbox(f"companies/{demo.realm}/entities/{entity}")) for entity in _ENTITIES}
    qbo_ids = {("client", app): qbo_id for app, qbo_id in _client_links(demo).items()}
    report = _report(demo)
    for row in report["documents"]:
        if row.get("qbo_id"):
            qbo_ids[(row["kind"], row["id"])] = row["qbo_id"]
    for check in check_qbo(demo.scenario, qbo, qbo_ids):
        demo.check(check.title, check.ok, check.detail)
    summary = demo.api.get(f"{demo.base}/postings/summary")
    states = {state: n for state, n in summary["by_state"].items() if n}
    demo.check(
        "posting log",
        states == {"posted": demo.scenario.postings},
        f"{summary['total']} postings ({demo.scenario.documents} documents and the credit memo's "
        f"application), {summary['by_state'].get('posted', 0)} posted, none failed or waiting",
    )
    history = demo.api.get(f"{demo.base}/exchanges", limit=1000)["exchanges"]
    pushes = [e for e in history if e["source"] == "push"]
    rechecks = [e for e in history if e["source"] == "recheck"]
    failed = [e for e in history if e["outcome"] != "succeeded"]
    demo.check(
        "exchanges",
        bool(pushes) and not failed,
        f"{len(history)} exchanges ({len(pushes)} push runs, {len(rechecks)} recheck(s), the rest QBO's "
        f"webhooks of our own writes, ignored as echoes), {len(failed)} failed",
    )
    return qbo_ids


def _report(demo: Demo) -> dict[str, Any]:
    dates = [i["date"] for i in demo.scenario.invoices + demo.scenario.payments + demo.scenario.credit_memos]
    answer: dict[str, Any] = demo.api.get(
        f"{demo.base}/reports/transactions", txn_from=min(dates), txn_to=max(dates), limit=1000
    )
    return answer


def _rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = next((v for k, v in data.items() if isinstance(v, list) and k != "deleted"), [])
    return [row for row in rows if isinstance(row, dict)]


# --- the final tables ----------------------------------------------------------------------------


def _tables(demo: Demo, qbo_ids: Mapping[tuple[str, str], str]) -> None:
    qbo = {
        e: {r["Id"]: r for r in _rows(demo.sandbox(f"companies/{demo.realm}/entities/{e}"))}
        for e in _ENTITIES
    }
    posted, totals = _posted_table(demo, qbo, qbo_ids)
    demo.console.print(posted)
    demo.console.print(_clients_table(demo.scenario, qbo, qbo_ids))
    demo.console.print(_totals_table(totals))
    demo.console.print(operator.postings_summary_table(demo.api.get(f"{demo.base}/postings/summary")))
    demo.console.print(
        operator.exchange_line(demo.api.get(f"{demo.base}/exchanges/latest")["exchange"]), highlight=False
    )


def _posted_table(
    demo: Demo, qbo: Mapping[str, Mapping[str, Any]], qbo_ids: Mapping[tuple[str, str], str]
) -> tuple[Table, dict[str, list[Decimal]]]:
    """Each document posted, and per kind: [app total, QBO total, count]."""
    from qbo_link_cli.tables import table

    scenario = demo.scenario
    names = {c["id"]: c["display_name"] for c in scenario.clients}
    posted = table(f"Posted to QuickBooks (realm {demo.realm})", title_style=None)
    for column in ("Kind", "Number", "Client", "QBO id", "App total", "QBO total", "QBO balance"):
        right = "total" in column or "balance" in column
        posted.add_column(column, justify="right" if right else "left")
    totals: dict[str, list[Decimal]] = {}
    documents = (
        [("invoice", "Invoice", d) for d in scenario.invoices]
        + [("credit_memo", "CreditMemo", d) for d in scenario.credit_memos]
        + [("payment", "Payment", d) for d in scenario.payments]
    )
    for kind, entity, document in documents:
        qbo_id = qbo_ids.get((kind, document["id"]), "")
        row = qbo[entity].get(qbo_id, {})
        app_total = Decimal(document.get("total") or document.get("amount") or "0")
        qbo_total = Decimal(str(row.get("TotalAmt", "0")))
        balance = row.get("Balance", row.get("RemainingCredit", row.get("UnappliedAmt", "")))
        sums = totals.setdefault(kind, [Decimal("0.00"), Decimal("0.00"), Decimal("0")])
        sums[0] += app_total
        sums[1] += qbo_total
        sums[2] += 1
        posted.add_row(
            kind,
            document.get("number") or document.get("reference") or "",
            names.get(document["client_id"], document["client_id"]),
            qbo_id,
            f"{app_total:,.2f}",
            f"{qbo_total:,.2f}",
            f"{Decimal(str(balance)):,.2f}" if balance != "" else "",
        )
    return posted, totals


def _clients_table(
    scenario: Scenario, qbo: Mapping[str, Mapping[str, Any]], qbo_ids: Mapping[tuple[str, str], str]
) -> Table:
    from qbo_link_cli.tables import table

    clients = table(
        "Clients in QuickBooks", "App id", "Name", "QBO id", "How", "Parent (QBO)", title_style=None
    )
    for client in scenario.clients:
        qbo_id = qbo_ids.get(("client", client["id"]), "")
        row = qbo["Customer"].get(qbo_id, {})
        how = "matched" if client["id"] in scenario.expected_links else "created"
        clients.add_row(
            client["id"], client["display_name"], qbo_id, how, (row.get("ParentRef") or {}).get("value", "")
        )
    return clients


def _totals_table(totals: Mapping[str, list[Decimal]]) -> Table:
    from qbo_link_cli.tables import table

    both = table("Totals in both systems", title_style=None)
    for column in ("Kind", "Documents", "App", "QuickBooks", "Difference"):
        both.add_column(column, justify="left" if column == "Kind" else "right")
    for kind, (app_total, qbo_total, count) in totals.items():
        both.add_row(
            kind, str(count), f"{app_total:,.2f}", f"{qbo_total:,.2f}", f"{app_total - qbo_total:,.2f}"
        )
    return both


# --- running it ----------------------------------------------------------------------------------


def _progress(console: Console, label: str, items: Sequence[Any]) -> Iterator[Any]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(label, total=len(items))
        for item in items:
            yield item
            progress.advance(task)


@contextmanager
def _local_stack(log: Callable[[str], None]) -> Iterator[LocalStack]:
    from qbo_link_local.stack import LocalStack, LocalStackConfig

    with LocalStack(LocalStackConfig(port=0, sandbox_port=0, moto_port=0, log=log)) as stack:
        yield stack


def run_demo(
    *,
    verbose: bool = False,
    wide: bool = False,
    console: Console | None = None,
    keep: bool = False,
    wait: Callable[[], None] | None = None,
) -> int:
    """The whole demo; 0 when every check held.  Its tables fit the console's width, the widest
    columns cut with an ellipsis; ``wide``: full values (``qbo_link_cli.tables``).  It ends with the
    console URL of the demo's tenant; ``keep``: the local stack keeps running after the checks, until
    Ctrl-C (``wait``: what waits for it; tests give their own)."""
    from qbo_link_local.console import console_url

    out = console or _console(wide=wide)
    started = time.monotonic()
    log_lines: list[str] = []

    def log(line: str) -> None:
        if verbose:
            out.print(Text(line, style="dim"), highlight=False)
        log_lines.append(line)

    out.print("[bold]QBO Link demo[/bold] — the local stack: real handlers, moto, the QuickBooks sandbox")
    with _local_stack(log) as stack:
        out.print(f"  tenant API  {stack.api_url}\n  sandbox     {stack.sandbox_url}", highlight=False)
        with ApiClient(stack.api_url) as api:
            scenario = build_scenario(stack.sandbox.sandbox.clock.now().date() if stack.sandbox else _today())
            demo = Demo(out, stack, api, scenario)
            try:
                _tell_catalog(demo)
                _connect(demo)
                _onboard(demo)
                _push(demo)
                _fix(demo)
                qbo_ids = _verify(demo)
                _tables(demo, qbo_ids)
            except (ApiError, DemoFailedError, TimeoutError, httpx2.HTTPError) as error:
                out.print(f"[red]demo stopped:[/red] {error}", highlight=False)
                demo.checks.append(Check("demo ran to the end", False, str(error)))
            finally:
                demo.http.close()
        status = _summary(out, demo.checks, time.monotonic() - started)
        out.print(f"\n  console     {console_url(stack.api_url, scenario.tenant)}", highlight=False)
        if keep:
            out.print("The local stack keeps running (--keep). Press Ctrl-C to stop.", highlight=False)
            (wait or _until_interrupted)()
            out.print("stopping...", highlight=False)
    return status


def _summary(out: Console, checks: Sequence[Check], elapsed: float) -> int:
    failed = [c for c in checks if not c.ok]
    if failed:
        out.print(f"\n[bold red]{len(failed)} of {len(checks)} checks failed[/bold red] ({elapsed:.0f} s):")
        for check in failed:
            out.print(f"  ✘ {check.title} — {check.detail}", highlight=False)
        return 1
    out.print(f"\n[bold green]All {len(checks)} checks passed[/bold green] in {elapsed:.0f} s.")
    return 0


def _until_interrupted() -> None:
    import threading

    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def _console(*, wide: bool) -> Console:
    """The terminal's width (80 when the output is a file or a pipe), or with ``wide`` one no table
    reaches."""
    from qbo_link_cli.tables import output_width

    return Console(highlight=False, width=output_width(wide=wide))


def _today() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC).date()


def prepare_tenant(
    stack: LocalStack, api: ApiClient, tenant: str, *, connect: bool = True, push: bool = True
) -> Demo:
    """The demo's firm as ``tenant`` on a running local stack, for the console's browser tests: its
    lists told, and with ``connect`` its company connected and onboarded, and with ``push`` a month of
    work pushed (4 documents left waiting on the work code QuickBooks has no item for).  No output."""
    scenario = build_scenario(stack.sandbox.sandbox.clock.now().date() if stack.sandbox else _today(), tenant)
    # Tests share a loaded machine: a step may wait longer than the demo's own 45 s.
    demo = Demo(Console(file=io.StringIO()), stack, api, scenario, wait_seconds=180.0)
    try:
        _tell_catalog(demo)
        if connect:
            _connect(demo)
            _onboard(demo)
            if push:
                _push(demo)
    finally:
        demo.http.close()
    failed = [c for c in demo.checks if not c.ok]
    if failed:
        raise DemoFailedError("; ".join(f"{c.title}: {c.detail}" for c in failed))
    return demo
