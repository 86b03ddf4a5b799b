"""Two-way sync under load, on the local stack (``qbo-link dev``: the real handlers on moto, the QBO
sandbox with its webhooks on): the host app pushes invoices, payments and credit memos in bulk while
a scripted bookkeeper works in QuickBooks.

    .venv/bin/python scripts/bench_sync.py [--invoices 1000 --payments 300 --credits 30 --bookkeeper 50
                                            --per-session 5 --session-gap 12]

What it measures (docs/pull.md and docs/push.md, "Figures"):

* every bookkeeper change reaches the app as an event: delay from the change to the event on the
  bus (p50, p95, max), and how many events each change made (exactly one wanted);
* events about our own writes (none wanted): pull events naming a customer, invoice or payment the
  push wrote, other than the bookkeeper's changes;
* QBO metered reads for the whole run (the sandbox's counter), per 100 pushed documents;
* DynamoDB calls of the change worker per notice of our own writes (every webhook event the
  sandbox delivered, less the bookkeeper's);
* then one real-time invoice alone: QBO calls and metered reads, end to end.

Each document goes through the tenant API over HTTP; the app's client threads stand in for a host
app's workers.  The machine is shared: compare figures as ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qbo_link_cli.client import ApiClient, ApiError  # noqa: E402
from qbo_link_local.stack import LocalStack, LocalStackConfig  # noqa: E402

TENANT = "bench-firm"
PULL_EVENTS = (
    "Client Imported",
    "Client Changed",
    "Client Deactivated",
    "Site Imported",
    "Site Changed",
    "Payment Received",
    "Payment Voided In QBO",
    "Credit Applied In QBO",
    "Invoice Changed In QBO",
    "Payment Changed In QBO",
    "Credit Memo Changed In QBO",
)
D = Decimal


# --- the app's documents ---------------------------------------------------------------------------


def client_doc(n: int) -> dict[str, Any]:
    return {"id": f"cl-{n}", "version": 1, "type": "client", "company_name": f"Bench Client {n:03d}"}


def invoice_doc(n: int, clients: int, day: date) -> dict[str, Any]:
    amount = D(100 + (n * 37) % 900) + D(n % 100) / 100
    tax = (amount * D("0.0825")).quantize(D("0.01"))
    return {
        "id": f"inv-{n}",
        "version": 1,
        "number": f"B-{n:05d}",
        "date": day.isoformat(),
        "client_id": f"cl-{n % clients}",
        "lines": [
            {"line_id": "1", "kind": "work", "code": "W1", "amount": str(amount), "taxable": True},
        ],
        "tax_total": str(tax),
        "total": str(amount + tax),
    }


def payment_doc(n: int, invoice: dict[str, Any]) -> dict[str, Any]:
    total = D(invoice["total"])
    amount = total if n % 3 else (total / 2).quantize(D("0.01"))
    return {
        "id": f"pay-{n}",
        "version": 1,
        "client_id": invoice["client_id"],
        "date": invoice["date"],
        "amount": str(amount),
        "applications": [{"invoice_id": invoice["id"], "amount": str(amount)}],
    }


def credit_doc(n: int, invoice: dict[str, Any]) -> dict[str, Any]:
    amount = D(10 + n % 40)
    return {
        "id": f"cm-{n}",
        "version": 1,
        "number": f"BC-{n:04d}",
        "date": invoice["date"],
        "client_id": invoice["client_id"],
        "lines": [{"line_id": "1", "kind": "work", "code": "W1", "amount": str(amount), "taxable": False}],
        "tax_total": "0.00",
        "total": str(amount),
        "applications": [{"invoice_id": invoice["id"], "amount": str(amount)}],
    }


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Change:
    """One change the bookkeeper made in QBO and the event the app should hear."""

    expected: str  # the event's detail-type
    qbo_id: str
    made_at: float  # monotonic


@dataclass
class Watch:
    """The outbound events, each with the (monotonic) moment it was first seen."""

    seen: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)


def watch_events(stack: LocalStack, watch: Watch) -> None:
    while not watch.stop.is_set():
        now = time.monotonic()
        for event in stack.events():
            detail = event.get("detail") or {}
            key = str(detail.get("event_id") or event.get("id"))
            if key not in watch.seen:
                watch.seen[key] = (now, event)
        watch.stop.wait(0.1)


class Bench:
    def __init__(self, stack: LocalStack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.api = ApiClient(stack.api_url)
        self.http = httpx2.Client(timeout=30, trust_env=False)
        self.base = f"/tenants/{TENANT}"
        self.realm = ""
        self.changes: list[Change] = []
        self.made_customers: list[str] = []

    # --- setup ---

    def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.stack.sandbox_url}/_sandbox/{path}"
        content = json.dumps(body, default=str) if body is not None else None
        headers = {"content-type": "application/json"} if body is not None else None
        answer = self.http.request(method, url, content=content, headers=headers)
        answer.raise_for_status()
        return json.loads(answer.content, parse_float=Decimal)

    def connect(self) -> None:
        started = self.api.post(f"{self.base}/connection", {"return_url": self.stack.landing_url})
        consent = self.http.get(started["authorization_url"], follow_redirects=False)
        landed = self.http.get(consent.headers["location"], follow_redirects=False)
        params = parse_qs(urlsplit(landed.headers["location"]).query)
        self.realm = params["realmId"][0]
        self.stack.wait_idle(timeout=180)  # onboarding: the lists imported and automatched

    def counters(self) -> dict[str, Any]:
        data: dict[str, Any] = self.sandbox("GET", f"counters?realm={self.realm}")
        return data

    def webhook_events(self) -> int:
        return int(self.sandbox("GET", "webhooks")["stats"]["delivered"])

    def metrics(self, function: str) -> dict[str, float]:
        values: dict[str, float] = self.stack.stats()["metrics"].get(function, {})
        return dict(values)

    def put_all(self, path: str, documents: list[dict[str, Any]], threads: int = 4) -> None:
        def put(document: dict[str, Any]) -> None:
            self.api.put(f"{self.base}/{path}/{document['id']}", document)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, documents))

    def wait_posted(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            summary = self.api.get(f"{self.base}/postings/summary")
            states = Counter[str]()
            for by_state in summary["by_kind"].values():
                states.update(by_state)
            if states["posted"] >= count and not states["queued"] and not states["in_flight"]:
                return
            time.sleep(1)
        raise TimeoutError(f"not posted in {timeout:.0f} s: {dict(states)}")

    def reading_exchanges(self, since: datetime) -> list[dict[str, Any]]:
        """The change worker's exchanges since ``since`` that read QBO, oldest first."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200, **({"page_token": token} if token else {})}
            page = self.api.get(f"{self.base}/exchanges", **params)
            for exchange in page["exchanges"]:
                if (
                    exchange["source"] != "push"
                    and exchange["reads"]
                    and exchange["started_at"] >= since.isoformat()
                ):
                    found.append(exchange)
            token = page.get("next_page_token")
            if not token:
                return list(reversed(found))

    def qbo_id(self, kind: str, app_id: str) -> str | None:
        entry = self.api.get(f"{self.base}/postings/{kind}/{app_id}")
        qbo = entry.get("qbo_id")
        return str(qbo) if qbo else None

    # --- the bookkeeper ---

    def ui(self, entity: str, body: dict[str, Any], operation: str = "create") -> dict[str, Any]:
        path = f"companies/{self.realm}/entities/{entity.lower()}?operation={operation}"
        row: dict[str, Any] = self.sandbox("POST", path, body)[entity]
        return row

    def stored(self, entity: str, qbo_id: str) -> dict[str, Any]:
        row: dict[str, Any] = self.sandbox(
            "GET", f"companies/{self.realm}/entities/{entity.lower()}/{qbo_id}"
        )[entity]
        return row

    def bookkeeper(self, stop: threading.Event) -> None:
        """The bookkeeper's changes, spread over the run in sessions (a bookkeeper in QuickBooks
        enters a few things at a time): each session makes ``--per-session`` changes a second
        apart, sessions ``--session-gap`` seconds apart; mostly new customers, an edit of one of
        the app's clients, and by turns a payment received on one of the app's invoices or an edit
        of one (the same mix, five changes at a time, when sessions are smaller).
        ``--per-session 1 --session-gap 3`` is a steady trickle instead."""
        per, total = self.args.per_session, self.args.bookkeeper
        for n in range(total):
            if stop.wait(self.args.session_gap if n % per == 0 and n else 1.0 if n else 5.0):
                return
            # the mix per five changes (a session's, or five in a row when sessions are smaller):
            # three new customers, an edit of a client, a payment received or an invoice edited
            cycle = per if per >= 5 else 5
            slot, turn = n % cycle, n // cycle
            try:
                if slot == cycle - 1 and turn % 2:
                    self.receive_payment(n)
                elif slot == cycle - 1:
                    self.edit_invoice(n)
                elif slot == cycle - 2:
                    self.edit_client(n)
                else:
                    self.new_customer(n)
            except Exception as error:  # a bookkeeper step that could not run is reported, not fatal
                print(f"bookkeeper step {n} skipped: {error}", file=sys.stderr)

    def new_customer(self, n: int) -> None:
        row = self.ui("Customer", {"DisplayName": f"Walk-in Customer {n:03d}"})
        self.changes.append(Change("Client Imported", str(row["Id"]), time.monotonic()))

    def edit_client(self, n: int) -> None:
        qbo = self.qbo_id("client", f"cl-{n}")
        assert qbo is not None
        stored = self.stored("Customer", qbo)
        body = {
            "Id": qbo,
            "SyncToken": stored["SyncToken"],
            "sparse": True,
            "Notes": f"edited by the bookkeeper ({n})",
        }
        row = self.ui("Customer", body, "update")
        self.changes.append(Change("Client Changed", str(row["Id"]), time.monotonic()))

    def posted_invoice(self, n: int) -> str | None:
        """One of the first invoices the app neither pays nor credits, if it is posted yet."""
        try:
            return self.qbo_id("invoice", f"inv-{self.args.payments + self.args.credits + n}")
        except ApiError as error:
            if error.status == 404:  # not even sent yet: the bookkeeper does something else
                return None
            raise

    def receive_payment(self, n: int) -> None:
        qbo = self.posted_invoice(n)
        if qbo is None:
            self.new_customer(n)
            return
        stored = self.stored("Invoice", qbo)
        amount = D(str(stored["Balance"]))
        body = {
            "CustomerRef": stored["CustomerRef"],
            "TotalAmt": amount,
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": qbo, "TxnType": "Invoice"}]}],
        }
        row = self.ui("Payment", body)
        self.changes.append(Change("Payment Received", str(row["Id"]), time.monotonic()))

    def edit_invoice(self, n: int) -> None:
        qbo = self.posted_invoice(n)
        if qbo is None:
            self.new_customer(n)
            return
        stored = self.stored("Invoice", qbo)
        lines = [line for line in stored["Line"] if line.get("DetailType") == "SalesItemLineDetail"]
        lines[0] = {**lines[0], "Amount": D(str(lines[0]["Amount"])) + 1}
        body = {"Id": qbo, "SyncToken": stored["SyncToken"], "sparse": True, "Line": lines}
        row = self.ui("Invoice", body, "update")
        self.changes.append(Change("Invoice Changed In QBO", str(row["Id"]), time.monotonic()))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    with LocalStack(LocalStackConfig(log=None)) as stack:
        bench = Bench(stack, args)
        bench.connect()
        api, base = bench.api, bench.base
        api.put(f"{base}/catalog/work_code/W1", {"version": 1, "name": "Bench work"})
        api.put(f"{base}/mappings/work_code/app/W1", {"qbo_id": "1"})
        api.put(f"{base}/settings", {"auto_create_customers": True})
        clients = [client_doc(n) for n in range(args.clients)]
        bench.put_all("clients", clients)
        bench.wait_posted(args.clients, 300)
        stack.wait_idle(timeout=300)

        today = date.today()
        invoices = [
            invoice_doc(n, args.clients, today - timedelta(days=n % 28)) for n in range(args.invoices)
        ]
        payments = [payment_doc(n, invoices[n]) for n in range(args.payments)]
        credits = [credit_doc(n, invoices[args.payments + n]) for n in range(args.credits)]
        documents = len(invoices) + len(payments) + len(credits)

        watch = Watch()
        watcher = threading.Thread(target=watch_events, args=(stack, watch), daemon=True)
        watcher.start()
        reads0, hooks0 = bench.counters()["metered_reads"], bench.webhook_events()
        changes0 = bench.metrics("changes")
        seen0 = set(watch.seen)
        started_wall = datetime.now(UTC)
        stop = threading.Event()
        keeper = threading.Thread(target=bench.bookkeeper, args=(stop,), daemon=True)
        started = time.monotonic()
        keeper.start()
        bench.put_all("invoices", invoices)
        bench.put_all("payments", payments)
        bench.put_all("credit-memos", credits)
        accepted = time.monotonic() - started
        bench.wait_posted(args.clients + documents + len(credits), 900)
        keeper.join()
        stack.wait_idle(timeout=300)
        time.sleep(2)
        elapsed = time.monotonic() - started
        reads = bench.counters()["metered_reads"] - reads0
        hooks = bench.webhook_events() - hooks0
        changes1 = bench.metrics("changes")
        reading = bench.reading_exchanges(started_wall)

        # One real-time invoice alone, with webhooks on
        qbo0, reads_rt0 = bench.counters()["requests"], bench.counters()["metered_reads"]
        push0 = bench.metrics("push").get("QboCalls", 0)
        api.put(
            f"{base}/invoices/inv-rt",
            invoice_doc(99999, args.clients, today) | {"id": "inv-rt", "number": "B-RT"},
        )
        bench.wait_posted(args.clients + documents + len(credits) + 1, 120)
        stack.wait_idle(timeout=120)
        time.sleep(3)
        stack.wait_idle(timeout=120)
        realtime = {
            "qbo_requests": bench.counters()["requests"] - qbo0,
            "push_qbo_calls": bench.metrics("push").get("QboCalls", 0) - push0,
            "metered_reads": bench.counters()["metered_reads"] - reads_rt0,
        }
        watch.stop.set()
        watcher.join()

    new_events = [watch.seen[k] for k in watch.seen if k not in seen0]
    pulled = [(at, e) for at, e in new_events if e.get("detail-type") in PULL_EVENTS]
    delays, per_change = [], []
    matched: set[int] = set()
    for change in bench.changes:
        hits = [
            (i, at)
            for i, (at, e) in enumerate(pulled)
            if e["detail-type"] == change.expected
            and str((e.get("detail") or {}).get("qbo_id")) == change.qbo_id
        ]
        per_change.append(len(hits))
        matched.update(i for i, _ in hits)
        if hits:
            delays.append(min(at for _, at in hits) - change.made_at)
    own = [e for i, (_, e) in enumerate(pulled) if i not in matched]
    dynamo = changes1.get("DynamoDBCalls", 0) - changes0.get("DynamoDBCalls", 0)
    own_notices = max(hooks - len(bench.changes), 1)
    return {
        "documents_pushed": documents,
        "bookkeeper_changes": len(bench.changes),
        "bookkeeper_changes_by_event": dict(Counter(c.expected for c in bench.changes)),
        "bookkeeper": f"{args.per_session} per session, sessions {args.session_gap:g} s apart",
        "run_seconds": round(elapsed, 1),
        "accept_seconds": round(accepted, 1),
        "delays": {
            "p50": round(statistics.median(delays), 2) if delays else None,
            "p95": round(percentile(delays, 95), 2) if delays else None,
            "max": round(max(delays), 2) if delays else None,
        },
        "changes_without_event": per_change.count(0),
        "changes_with_more_than_one_event": sum(1 for n in per_change if n > 1),
        "events_for_our_own_writes": len(own),
        "own_write_event_types": dict(Counter(e["detail-type"] for e in own)),
        "metered_reads": reads,
        "metered_reads_per_100_documents": round(reads * 100 / documents, 2),
        "reads_by_exchange": [
            {
                "source": x["source"],
                "reads": x["reads"],
                "events": x["events"],
                "echoes": x["echoes"],
                "read_for": x.get("read_for"),
            }
            for x in reading
        ],
        "webhook_events_delivered": hooks,
        "change_worker": {
            "dynamodb_calls": int(dynamo),
            "per_own_write_notice": round(dynamo / own_notices, 3),
            "echoes": changes1.get("ChangeEchoes", 0) - changes0.get("ChangeEchoes", 0),
            "coalesced": changes1.get("NoticesCoalesced", 0) - changes0.get("NoticesCoalesced", 0),
            "reads": changes1.get("ChangeReads", 0) - changes0.get("ChangeReads", 0),
            "qbo_calls": changes1.get("QboCalls", 0) - changes0.get("QboCalls", 0),
            "invocations": stack.stats()["invocations"].get("changes") if hasattr(stack, "stats") else None,
        },
        "real_time_invoice": realtime,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--credits", type=int, default=30)
    parser.add_argument("--bookkeeper", type=int, default=50)
    parser.add_argument("--per-session", type=int, default=5, help="bookkeeper changes per session")
    parser.add_argument("--session-gap", type=float, default=12.0, help="seconds between sessions")
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the handlers' own lines: not the figures
    print(json.dumps(run(args), indent=2, default=str), file=sys.stderr)


if __name__ == "__main__":
    main()
