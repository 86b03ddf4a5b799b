"""A real third-party QBO SDK against the sandbox: python-quickbooks (with Intuit's intuit-oauth).

Nothing here is the project's code: the SDK builds its own bodies (every default it knows, empty
strings included), authorises through intuit-oauth's own flow (discovery, consent, code exchange)
and parses the answers with its own classes.  What a user does to point it at the sandbox is what
docs/sandbox.md says: give ``AuthClient`` the sandbox's discovery URL as its environment, set the
client's ``api_url_v3`` to the sandbox's ``/v3``, and let oauthlib talk plain http on loopback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.exceptions import AuthorizationException
from quickbooks.objects.base import Address, EmailAddress, LinkedTxn
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.employee import Employee
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine
from quickbooks.objects.paymentmethod import PaymentMethod
from quickbooks.objects.vendor import Vendor

from qbo_sandbox.server import SandboxServer
from tests.qbo_helpers import unthrottled_sandbox

REDIRECT_URI = "http://127.0.0.1:9/callback"
ITEM_HOURS = 2  # seeded US item (Service, no tax)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with unthrottled_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def qb(server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[QuickBooks]:
    """A QuickBooks client connected to a new seeded US company through intuit-oauth's own flow."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # oauthlib refuses http otherwise
    # requests-oauthlib logs the bearer token at DEBUG; keep it out of any log a test might capture.
    oauth_log = logging.getLogger("requests_oauthlib")
    level = oauth_log.level
    oauth_log.setLevel(logging.INFO)
    settings = server.sandbox.settings
    auth = AuthClient(
        settings.client_id,
        settings.client_secret,
        REDIRECT_URI,
        f"{server.url}/.well-known/openid_sandbox_configuration",
    )
    consent = httpx2.get(auth.get_authorization_url([Scopes.ACCOUNTING]), follow_redirects=False)
    assert consent.status_code == 302, consent.text
    callback = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["location"]).query).items()}
    auth.get_bearer_token(callback["code"], realm_id=callback["realmId"])
    client = QuickBooks(
        auth_client=auth, refresh_token=auth.refresh_token, company_id=callback["realmId"], minorversion=75
    )
    client.api_url_v3 = f"{server.url}/v3"
    try:
        yield client
    finally:
        client.session.close()
        oauth_log.setLevel(level)


def sdk_customer(name: str) -> Customer:
    customer = Customer()
    customer.DisplayName = name
    return customer


def stored_rows(server: SandboxServer, realm: str, entity: str) -> list[dict[str, Any]]:
    answer = httpx2.get(f"{server.url}/_sandbox/companies/{realm}/entities/{entity}")
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()[entity]
    return rows


def test_the_sdk_creates_a_customer_with_its_own_defaults(qb: QuickBooks) -> None:
    customer = sdk_customer("SDK Defaults Inc")
    assert json.loads(customer.to_json())["PreferredDeliveryMethod"] == ""  # what the SDK sends

    customer.save(qb=qb)

    again = Customer.get(customer.Id, qb=qb)
    assert again.DisplayName == "SDK Defaults Inc"
    assert again.PreferredDeliveryMethod == "Print"
    assert again.SyncToken == "0"


def test_the_sdks_readme_customer_gets_its_display_name_from_the_company_name(qb: QuickBooks) -> None:
    customer = Customer()  # python-quickbooks' README: "Create new object"
    customer.CompanyName = "Test Company"
    assert json.loads(customer.to_json())["DisplayName"] == ""

    saved = customer.save(qb=qb)

    assert (saved.DisplayName, saved.CompanyName) == ("Test Company", "Test Company")


def test_the_sdks_other_default_name_objects_are_created(qb: QuickBooks) -> None:
    employee = Employee()  # sends "ReleasedDate": "", "HiredDate": "", "BirthDate": "" ...
    employee.GivenName, employee.FamilyName = "Ada", "Lovelace"
    method = PaymentMethod()  # sends "Type": ""
    method.Name = "Gift card"
    vendor = Vendor()  # empty nested objects: every member of each is ""
    vendor.DisplayName = "Empty Objects Ltd"
    vendor.BillAddr, vendor.PrimaryEmailAddr = Address(), EmailAddress()

    saved = [obj.save(qb=qb) for obj in (employee, method, vendor)]

    assert saved[0].DisplayName == "Ada Lovelace"
    assert saved[1].Type == "NON_CREDIT_CARD"
    assert (saved[2].BillAddr, saved[2].PrimaryEmailAddr) == (None, None)


def test_the_sdk_creates_thirty_customers_in_one_batch(qb: QuickBooks, server: SandboxServer) -> None:
    customers = [sdk_customer(f"Batch Customer {n:02}") for n in range(30)]

    result = batch_create(customers, qb=qb)

    assert [f.Error for f in result.faults] == []
    assert len(result.successes) == 30
    names = {c["DisplayName"] for c in stored_rows(server, qb.company_id, "Customer")}
    assert {f"Batch Customer {n:02}" for n in range(30)} <= names


def test_the_sdk_invoices_and_takes_a_payment_and_reads_qbos_line_ex(qb: QuickBooks) -> None:
    customer = sdk_customer("Pays Half")
    customer.save(qb=qb)
    line = SalesItemLine()
    line.LineNum = 1
    line.Description = "Ten hours"
    line.Amount = 100
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = Item.get(ITEM_HOURS, qb=qb).to_ref()
    line.SalesItemLineDetail.Qty = 10
    line.SalesItemLineDetail.UnitPrice = 10
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line.append(line)
    invoice = invoice.save(qb=qb)  # the SDK answers the saved object (with QBO's DocNumber)

    payment = Payment()
    payment.CustomerRef = customer.to_ref()
    payment.TotalAmt = 60
    applied = PaymentLine()
    applied.Amount = 60
    link = LinkedTxn()
    link.TxnId = invoice.Id
    link.TxnType = "Invoice"
    applied.LinkedTxn.append(link)
    payment.Line.append(applied)
    payment.save(qb=qb)

    read = Payment.get(payment.Id, qb=qb)
    [paid] = read.Line
    assert (paid.Amount, paid.LinkedTxn[0].TxnId, paid.LinkedTxn[0].TxnType) == (60, invoice.Id, "Invoice")
    assert [pair["value"] for pair in paid.LineEx["any"]] == [
        {"Name": "txnId", "Value": invoice.Id},
        {"Name": "txnOpenBalance", "Value": "100.00"},
        {"Name": "txnReferenceNumber", "Value": invoice.DocNumber},
    ]
    after = Invoice.get(invoice.Id, qb=qb)
    assert after.Balance == 40
    assert [(t.TxnId, t.TxnType) for t in after.LinkedTxn] == [(payment.Id, "Payment")]
    assert after.ShipFromAddr["Line1"] == "123 Sierra Way"
    assert after.MetaData.LastModifiedByRef["value"].isdigit()

    # The SDK's own full update sends the whole object back, LineEx included: QBO takes it.
    read.PrivateNote = "cheque 1001"
    read.save(qb=qb)
    assert Payment.get(payment.Id, qb=qb).PrivateNote == "cheque 1001"


def test_an_expired_token_is_the_sdks_authorization_exception_with_qbos_401_body(
    qb: QuickBooks, server: SandboxServer
) -> None:
    server.sandbox.clock.advance(3601)  # access tokens live an hour

    with pytest.raises(AuthorizationException) as info:
        Customer.get(1, qb=qb)

    assert info.value.error_code == 401
    body = json.loads(info.value.detail)
    assert body["fault"]["type"] == "AUTHENTICATION"
    [error] = body["fault"]["error"]
    assert error["code"] == "3200"
    assert error["message"] == "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    assert error["element"] is None
    assert body["requestId"] is None
    assert body["warnings"] is None
    assert body["batchItemResponse"] == body["attachableResponse"] == body["cdcresponse"] == []
    assert isinstance(body["time"], int)
