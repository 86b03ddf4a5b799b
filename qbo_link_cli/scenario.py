"""The demo's scripted scenario: a client's life against the local QBO sandbox, over real HTTP.

Every step is a check: the scenario prints what happened and exits non-zero if anything QBO
should have done did not happen.  It uses the same libraries the connector uses (authlib's OAuth
2.0 client on httpx2) and verifies webhook signatures the way the webhook function will.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
from authlib.integrations.httpx_client import OAuth2Client
from rich.console import Console
from rich.table import Table

from qbo_sandbox.server import SandboxServer
from qbo_sandbox.settings import SandboxSettings

REDIRECT_PATH = "/qbo/callback"
SCOPE = "com.intuit.quickbooks.accounting"


class ScenarioError(Exception):
    """A check of the scenario did not hold."""


@dataclass
class Receiver:
    """A stand-in for the webhook function: records signed deliveries and verifies them."""

    verifier_token: str
    deliveries: list[tuple[bytes, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verified_events(self) -> tuple[int, int, list[dict[str, Any]]]:
        good = bad = 0
        events: list[dict[str, Any]] = []
        with self.lock:
            deliveries = list(self.deliveries)
        for body, signature in deliveries:
            digest = hmac.new(self.verifier_token.encode(), body, hashlib.sha256).digest()
            if hmac.compare_digest(base64.b64encode(digest).decode(), signature):
                good += 1
                events.extend(json.loads(body))
            else:
                bad += 1
        return good, bad, events


@contextmanager
def _receiver(verifier_token: str) -> Iterator[tuple[str, Receiver]]:
    receiver = Receiver(verifier_token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.deliveries.append((body, self.headers.get("intuit-signature", "")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/webhooks/qbo", receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@dataclass
class Demo:
    console: Console
    server: SandboxServer
    verbose: bool
    checks: list[tuple[str, str]] = field(default_factory=list)
    created: list[tuple[str, str, str, str]] = field(default_factory=list)
    realm: str = ""
    api: httpx2.Client | None = None
    callback_code: str = ""
    throttled: int = 0
    oauth: OAuth2Client | None = None
    redirect_uri: str = ""

    def check(self, title: str, ok: bool, detail: str) -> None:
        if not ok:
            self.console.print(f"[red]✘ {title}[/red] — {detail}")
            raise ScenarioError(f"{title}: {detail}")
        self.checks.append((title, detail))
        self.console.print(f"[green]✔[/green] {title} — {detail}")

    def control(self, method: str, path: str, body: Any = None) -> Any:
        answer = httpx2.request(method, f"{self.server.url}/_sandbox/{path}", json=body)
        if answer.status_code >= 400:
            raise ScenarioError(f"control {method} {path} failed: {answer.status_code} {answer.text}")
        return answer.json()

    def call(self, method: str, path: str, body: Any = None, **params: str) -> httpx2.Response:
        assert self.api is not None
        for _attempt in range(5):
            answer = self.api.request(
                method, f"/v3/company/{self.realm}/{path}", json=body, params={"minorversion": "75", **params}
            )
            if answer.status_code != 429:
                break
            # QBO allows 10 requests per second per realm: a well-behaved client waits it out.
            self.throttled += 1
            time.sleep(1.0)
        if self.verbose:
            self.console.print(f"  [dim]{method} {path} {params or ''} → {answer.status_code}[/dim]")
        return answer


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _connect(demo: Demo) -> OAuth2Client:
    settings = demo.server.sandbox.settings
    discovery = httpx2.get(f"{demo.server.url}/.well-known/openid_configuration").json()
    redirect_uri = f"http://127.0.0.1:8080{REDIRECT_PATH}"
    oauth = OAuth2Client(
        settings.client_id,
        settings.client_secret,
        scope=SCOPE,
        redirect_uri=redirect_uri,
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
    )
    url, state = oauth.create_authorization_url(discovery["authorization_endpoint"])
    consent = httpx2.get(url, follow_redirects=False)
    callback = consent.headers.get("location", "")
    demo.check(
        "consent",
        consent.status_code == 302 and callback.startswith(redirect_uri),
        f"authorize redirected to the app with code, state and realmId ({consent.status_code})",
    )
    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=callback, state=state)
    params = dict(httpx2.URL(callback).params)
    demo.realm = params["realmId"]
    demo.check(
        "token exchange",
        token.get("expires_in") == 3600 and bool(token.get("refresh_token")),
        f"realm {demo.realm}: access token for {token['expires_in']} s, refresh token for "
        f"{int(token['x_refresh_token_expires_in']) // 86400} days (authlib, client_secret_basic)",
    )
    demo.callback_code = params["code"]
    demo.redirect_uri = redirect_uri
    return oauth


def _scenario(demo: Demo, receiver_url: str, receiver: Receiver) -> None:
    demo.control("POST", "webhooks", {"endpoint_url": receiver_url, "format": "cloudevents"})
    oauth = _connect(demo)
    demo.oauth = oauth
    started = demo.server.sandbox.clock.now() - timedelta(seconds=1)
    demo.api = httpx2.Client(
        base_url=demo.server.url,
        timeout=10,
        headers={"Authorization": f"Bearer {oauth.token['access_token']}", "Accept": "application/json"},
    )

    info = demo.call("GET", f"companyinfo/{demo.realm}").json()["CompanyInfo"]
    prefs = demo.call("GET", "preferences").json()["Preferences"]
    ast = prefs.get("TaxPrefs", {}).get("PartnerTaxEnabled")
    demo.check(
        "company facts",
        info.get("Country") == "US",
        f"{info['CompanyName']}, country {info['Country']}, "
        f"home currency {prefs['CurrencyPrefs']['HomeCurrency']['value']}, automated sales tax {ast}",
    )

    count = demo.call("GET", "query", query="SELECT COUNT(*) FROM Customer").json()
    demo.check(
        "query",
        count["QueryResponse"].get("totalCount", 0) > 0,
        f"{count['QueryResponse']['totalCount']} active customers in the seeded company",
    )

    body = {
        "DisplayName": "Harbor & Pine Legal LLP",
        "CompanyName": "Harbor & Pine Legal LLP",
        "PrimaryEmailAddr": {"Address": "billing@harborpine.example"},
        "BillAddr": {
            "Line1": "12 Wharf St",
            "City": "Sausalito",
            "CountrySubDivisionCode": "CA",
            "PostalCode": "94965",
        },
    }
    first = demo.call("POST", "customer", body, requestid="demo-client-42-v1")
    again = demo.call("POST", "customer", body, requestid="demo-client-42-v1")
    customer = first.json()["Customer"]
    demo.created.append(("Customer", customer["Id"], customer["DisplayName"], ""))
    demo.check(
        "idempotent create",
        first.content == again.content,
        f"customer {customer['Id']} created; the retry with the same requestid replayed it, no duplicate",
    )
    dupe = demo.call("POST", "customer", body, requestid="demo-client-42-v2")
    code = dupe.json()["Fault"]["Error"][0]["code"] if dupe.status_code == 400 else "none"
    demo.check(
        "duplicate name",
        code == "6240",
        "the same DisplayName under a new requestid is refused by QBO with 6240",
    )

    invoice_body = {
        "CustomerRef": {"value": customer["Id"]},
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": 1125.00,
                "Description": "Contract review",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "2"},
                    "Qty": 7.5,
                    "UnitPrice": 150,
                    "TaxCodeRef": {"value": "NON"},
                },
            },
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": 480.25,
                "Description": "Filing package",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "4"},
                    "Qty": 1,
                    "UnitPrice": 480.25,
                    "TaxCodeRef": {"value": "TAX"},
                },
            },
        ],
    }
    answer = demo.call("POST", "invoice", invoice_body, requestid="demo-invoice-1001-v1")
    invoice = answer.json()["Invoice"]
    tax = _money(invoice["TxnTaxDetail"]["TotalTax"])
    total = _money(invoice["TotalAmt"])
    expected_tax = (Decimal("480.25") * Decimal("0.08")).quantize(Decimal("0.01"))
    demo.created.append(("Invoice", invoice["Id"], f"#{invoice['DocNumber']}", f"{total:.2f}"))
    demo.check(
        "invoice with sales tax",
        tax == expected_tax and total == Decimal("1605.25") + tax,
        f"invoice #{invoice['DocNumber']}: lines 1,605.25 + tax {tax} (8% on the taxable line) "
        f"= {total}, due {invoice['DueDate']}",
    )

    payment_body = {
        "CustomerRef": {"value": customer["Id"]},
        "TotalAmt": 600,
        "Line": [{"Amount": 600, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    }
    payment = demo.call("POST", "payment", payment_body, requestid="demo-payment-77-v1").json()["Payment"]
    demo.created.append(
        ("Payment", payment["Id"], "applied to the invoice", f"{_money(payment['TotalAmt']):.2f}")
    )
    after = demo.call("GET", f"invoice/{invoice['Id']}").json()["Invoice"]
    demo.check(
        "payment applied",
        _money(after["Balance"]) == total - 600 and after["SyncToken"] != "0",
        f"invoice balance {total} → {_money(after['Balance'])}; the payment moved its SyncToken to "
        f"{after['SyncToken']}",
    )
    stale = demo.call(
        "POST",
        "invoice",
        {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"], "sparse": True, "PrivateNote": "late edit"},
    )
    stale_code = stale.json()["Fault"]["Error"][0]["code"] if stale.status_code == 400 else "none"
    demo.check(
        "optimistic locking",
        stale_code == "5010",
        "an update with the old SyncToken is refused with 5010 Stale Object Error",
    )

    batch = {
        "BatchItemRequest": [
            {"bId": str(i), "operation": "create", "Customer": {"DisplayName": name}}
            for i, name in enumerate(["Okafor Family Trust", "Lindqvist Dental", "Nguyen & Sons Plumbing"], 1)
        ]
    }
    items = demo.call("POST", "batch", batch, requestid="demo-batch-1").json()["BatchItemResponse"]
    ids = [item["Customer"]["Id"] for item in items if "Customer" in item]
    for item in items:
        if "Customer" in item:
            demo.created.append(
                ("Customer", item["Customer"]["Id"], item["Customer"]["DisplayName"], "batch")
            )
    demo.check("batch", len(ids) == 3, f"3 customers created in one request (ids {', '.join(ids)})")

    demo.control(
        "POST",
        "faults",
        {"kind": "commit_then_fail", "status": 503, "entity": "payment", "operation": "create"},
    )
    lost_body = {
        "CustomerRef": {"value": customer["Id"]},
        "TotalAmt": 250,
        "Line": [{"Amount": 250, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    }
    lost = demo.call("POST", "payment", lost_body, requestid="demo-payment-78-v1")
    retried = demo.call("POST", "payment", lost_body, requestid="demo-payment-78-v1")
    payments = demo.call(
        "GET",
        "query",
        query=f"SELECT * FROM Payment WHERE CustomerRef = '{customer['Id']}'",  # noqa: S608
    ).json()
    rows = payments["QueryResponse"].get("Payment", [])
    second = retried.json().get("Payment", {})
    demo.created.append(("Payment", second.get("Id", "?"), "after a lost response", "250.00"))
    demo.check(
        "lost response",
        lost.status_code == 503 and retried.status_code == 200 and len(rows) == 2,
        "QBO committed then answered 503; the retry with the same requestid returned the "
        f"committed payment {second.get('Id')} — 2 payments in QBO, not 3",
    )

    cdc = demo.call(
        "GET", "cdc", entities="Customer,Invoice,Payment", changedSince=started.isoformat()
    ).json()
    counts = {
        name: len(block[name])
        for block in cdc["CDCResponse"][0]["QueryResponse"]
        for name in block
        if isinstance(block[name], list)
    }
    demo.check(
        "change data capture",
        counts.get("Customer") == 4 and counts.get("Payment") == 2,
        f"changes since the start: {counts}",
    )

    flushed = demo.control("POST", "webhooks/flush")
    good, bad, events = receiver.verified_events()
    types = sorted({e["type"] for e in events})
    demo.check(
        "signed webhooks",
        good > 0 and bad == 0 and len(events) > 0,
        f"{len(flushed)} POST(s), {len(events)} CloudEvents, all signatures valid: {', '.join(types)}",
    )

    old_refresh = oauth.token["refresh_token"]
    discovery = httpx2.get(f"{demo.server.url}/.well-known/openid_configuration").json()
    demo.control("POST", "clock/advance", {"hours": 1, "minutes": 1})
    expired = demo.call("GET", "customer/1")
    refreshed = oauth.refresh_token(discovery["token_endpoint"], refresh_token=old_refresh)
    assert demo.api is not None
    demo.api.headers["Authorization"] = f"Bearer {refreshed['access_token']}"
    works = demo.call("GET", "customer/1")
    demo.check(
        "token refresh",
        expired.status_code == 401 and works.status_code == 200 and refreshed["refresh_token"] != old_refresh,
        "after an hour the access token gets 401; refresh rotated the refresh token and the API "
        "answers again",
    )

    counters = demo.control("GET", f"counters?realm={demo.realm}")
    demo.check(
        "metering",
        counters["metered_reads"] > 0 and counters["writes"] > 0,
        f"{counters['requests']} API requests: {counters['metered_reads']} metered reads, "
        f"{counters['writes']} writes, {counters['batch_requests']} batch; "
        f"{counters['faults_injected']} injected fault, {demo.throttled} throttled (429) and retried "
        "after a second",
    )

    settings = demo.server.sandbox.settings
    replay = httpx2.post(
        discovery["token_endpoint"],
        auth=(settings.client_id, settings.client_secret),
        data={
            "grant_type": "authorization_code",
            "code": demo.callback_code,
            "redirect_uri": demo.redirect_uri,
        },
    )
    revoked = demo.call("GET", "customer/1")
    demo.check(
        "code is single-use",
        replay.status_code == 400
        and replay.json()["error"] == "invalid_grant"
        and revoked.status_code == 401,
        "replaying the authorization code (a double callback) is refused with invalid_grant and "
        "revokes the tokens it issued: why the callback must be idempotent",
    )


def _summary(demo: Demo) -> None:
    table = Table(title=f"What the demo put into QBO (realm {demo.realm})")
    table.add_column("Entity")
    table.add_column("QBO Id", justify="right")
    table.add_column("What")
    table.add_column("Amount", justify="right")
    for row in demo.created:
        table.add_row(*row)
    demo.console.print(table)


def run_scenario(verbose: bool = False, printer: Callable[[str], None] | None = None) -> int:
    console = Console(highlight=False)
    del printer
    settings = SandboxSettings(port=0)
    with SandboxServer(settings) as server, _receiver(settings.verifier_token) as (url, receiver):
        console.print(f"[bold]QBO Link demo[/bold] — local QuickBooks Online sandbox at {server.url}")
        demo = Demo(console, server, verbose)
        try:
            _scenario(demo, url, receiver)
        except (ScenarioError, httpx2.HTTPError, KeyError) as exc:
            console.print(f"[red]demo failed:[/red] {exc}")
            return 1
        finally:
            if demo.api is not None:
                demo.api.close()
            if demo.oauth is not None:
                demo.oauth.close()
        _summary(demo)
        console.print(f"[bold green]All {len(demo.checks)} checks passed.[/bold green]")
    return 0
