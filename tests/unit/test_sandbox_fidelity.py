"""The sandbox accepts what QBO accepts and answers in QBO's shapes (issue 13, sandbox fidelity).

Empty optional values: SDKs serialise every attribute they know, so their default objects carry
``""`` for each optional string, date and enum, and ``{}`` for empty nested objects; QBO creates such
objects as if those fields were absent.  Shapes: the gateway's 401 envelope, the ``LineEx`` block of
a payment line, an invoice's ``MetaData.LastModifiedByRef`` and ``ShipFromAddr``, each pinned
against a real QBO body.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qbo_sandbox import accounting, faults
from qbo_sandbox.accounting.common import without_empty_values
from qbo_sandbox.company import Company
from qbo_sandbox.faults import QboFault
from qbo_sandbox.seed import seed_company

NOW = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)

Entity = dict[str, Any]

# python-quickbooks 0.9.12: ``Customer(); DisplayName = ...; to_json()``, every default as it sends it.
SDK_DEFAULT_CUSTOMER: Entity = {
    "Active": True,
    "Balance": 0,
    "BalanceWithJobs": 0,
    "BillWithParent": False,
    "CompanyName": "",
    "DisplayName": "SDK Default Customer",
    "FamilyName": "",
    "FullyQualifiedName": "",
    "GivenName": "",
    "IsProject": False,
    "Job": False,
    "Level": 0,
    "MiddleName": "",
    "Notes": "",
    "OpenBalanceDate": "",
    "PreferredDeliveryMethod": "",
    "PrimaryTaxIdentifier": "",
    "PrintOnCheckName": "",
    "ResaleNum": "",
    "Suffix": "",
    "SyncToken": 0,
    "Taxable": True,
    "Title": "",
    "domain": "QBO",
    "sparse": False,
}

# The same SDK's default Invoice with one item line (its README's example), dates and totals empty.
SDK_DEFAULT_INVOICE: Entity = {
    "AllowIPNPayment": True,
    "AllowOnlineACHPayment": False,
    "AllowOnlineCreditCardPayment": False,
    "ApplyTaxAfterDiscount": False,
    "Balance": 0,
    "CustomField": [],
    "CustomerRef": {"value": "3", "name": ""},
    "Deposit": 0,
    "DueDate": "",
    "EmailStatus": "NotSet",
    "ExchangeRate": 1,
    "FreeFormAddress": False,
    "GlobalTaxCalculation": "TaxExcluded",
    "HomeBalance": 0,
    "HomeTotalAmt": 0,
    "InvoiceLink": "",
    "Line": [
        {
            "Amount": 100,
            "CustomField": [],
            "Description": "",
            "DetailType": "SalesItemLineDetail",
            "LineNum": 0,
            "LinkedTxn": [],
            "SalesItemLineDetail": {
                "ItemRef": {"value": "2", "name": ""},
                "Qty": 1,
                "ServiceDate": "",
                "TaxInclusiveAmt": 0,
                "UnitPrice": 100,
            },
        }
    ],
    "LinkedTxn": [],
    "PrintStatus": "NotSet",
    "PrivateNote": "",
    "ShipDate": "",
    "SyncToken": 0,
    "TotalAmt": "",
    "TrackingNum": "",
    "TxnDate": "",
    "domain": "QBO",
    "sparse": False,
}

# A real 401 body from Intuit's gateway, as quoted in routablehq/python-quickbooks#250 (2021-10-06).
RECORDED_401: Entity = {
    "warnings": None,
    "intuitObject": None,
    "fault": {
        "error": [
            {
                "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                "detail": "Malformed bearer token: too short or too long",
                "code": "3200",
                "element": None,
            }
        ],
        "type": "AUTHENTICATION",
    },
    "report": None,
    "queryResponse": None,
    "batchItemResponse": [],
    "attachableResponse": [],
    "syncErrorResponse": None,
    "requestId": None,
    "time": 1633520295688,
    "status": None,
    "cdcresponse": [],
}

# The parts of a real invoice create response (sandbox realm 9341457021722202, 2026-05-05, recorded by
# NangoHQ/integration-templates, integrations/quickbooks/tests/create-invoice.test.json) pinned here.
RECORDED_INVOICE: Entity = {
    "MetaData": {
        "CreateTime": "2026-05-05T02:08:55-07:00",
        "LastModifiedByRef": {"value": "9341457021722234"},
        "LastUpdatedTime": "2026-05-05T02:08:55-07:00",
    },
    "ShipFromAddr": {"Id": "106", "Line1": "123 Sierra Way", "Line2": "San Pablo, CA  87999"},
}

# One element of a payment line's LineEx.any in Intuit's Payment reference example (invoice 70).
RECORDED_NAME_VALUE: Entity = {
    "name": "{http://schema.intuit.com/finance/v3}NameValue",
    "declaredType": "com.intuit.schema.finance.v3.NameValue",
    "scope": "javax.xml.bind.JAXBElement$GlobalScope",
    "value": {"Name": "txnId", "Value": "70"},
    "nil": False,
    "globalScope": True,
    "typeSubstituted": False,
}


@pytest.fixture
def co() -> Company:
    company = Company(realm_id="9341450000000013", country="US", name="Sandbox Company_US_1", created_at=NOW)
    seed_company(company, NOW)
    return company


def refused(call: Any, *args: Any) -> QboFault:
    with pytest.raises(QboFault) as info:
        call(*args)
    return info.value


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


# --- empty optional values ------------------------------------------------------------------


def test_the_sdks_default_customer_is_created_as_if_its_empty_fields_were_absent(co: Company) -> None:
    customer = accounting.create(co, "Customer", dict(SDK_DEFAULT_CUSTOMER), LATER)

    assert customer["PreferredDeliveryMethod"] == "Print"  # QBO's default, as for an absent value
    assert customer["PrintOnCheckName"] == "SDK Default Customer"
    assert customer["FullyQualifiedName"] == "SDK Default Customer"
    for absent in ("CompanyName", "GivenName", "Notes", "OpenBalanceDate", "ResaleNum", "Title"):
        assert absent not in customer, absent
    assert "" not in strings_in(customer)


def test_a_real_invalid_enum_value_is_still_refused(co: Company) -> None:
    fault = refused(
        accounting.create, co, "Customer", {"DisplayName": "Fax Me", "PreferredDeliveryMethod": "Fax"}, LATER
    )
    assert (fault.code, fault.errors[0].element) == ("2010", "PreferredDeliveryMethod")


@pytest.mark.parametrize(
    ("entity", "body", "element"),
    [
        ("Customer", {"DisplayName": "", "GivenName": ""}, "DisplayName"),
        ("Item", {"Name": "Widget", "Type": ""}, "Type"),
        ("Account", {"Name": "Petty", "AccountType": ""}, "AccountType"),
        ("Invoice", {"CustomerRef": {"value": ""}, "Line": SDK_DEFAULT_INVOICE["Line"]}, "CustomerRef"),
        ("Payment", {"CustomerRef": {"value": "3"}, "TotalAmt": ""}, "TotalAmt"),
    ],
)
def test_an_empty_required_value_is_a_missing_one(
    co: Company, entity: str, body: Entity, element: str
) -> None:
    before = len(list(co.rows(entity)))
    fault = refused(accounting.create, co, entity, body, LATER)
    assert (fault.code, fault.errors[0].element) == ("2020", element)
    assert len(list(co.rows(entity))) == before


def test_empty_objects_and_references_are_absent_and_use_no_address_id(co: Company) -> None:
    customer = accounting.create(
        co,
        "Customer",
        {
            "DisplayName": "No Address Yet",
            "BillAddr": {},
            "ShipAddr": {"Line1": "", "City": ""},
            "SalesTermRef": {"value": ""},
            "PrimaryEmailAddr": {"Address": ""},
        },
        LATER,
    )
    for absent in ("BillAddr", "ShipAddr", "SalesTermRef", "PrimaryEmailAddr"):
        assert absent not in customer, absent
    with_address = accounting.create(
        co, "Customer", {"DisplayName": "Has Address", "BillAddr": {"Line1": "1 Main St"}}, LATER
    )
    # The address sequence was not advanced by the empty ones: the next address is the next Id.
    assert int(with_address["BillAddr"]["Id"]) == int(co.next_id("PhysicalAddress")) - 1


def test_the_sdks_default_invoice_gets_todays_date_and_the_terms_due_date(co: Company) -> None:
    invoice = accounting.create(co, "Invoice", json.loads(json.dumps(SDK_DEFAULT_INVOICE)), LATER)

    assert invoice["TxnDate"] == "2026-05-05"
    assert invoice["DueDate"] == "2026-06-04"  # Cool Cars pays Net 30
    assert invoice["TotalAmt"] == 100
    assert invoice["PrintStatus"] == "NotSet"
    assert "ServiceDate" not in invoice["Line"][0]["SalesItemLineDetail"]
    assert "" not in strings_in(invoice)


def test_a_sparse_update_with_an_empty_value_clears_the_field(co: Company) -> None:
    created = accounting.create(co, "Customer", {"DisplayName": "Noted", "Notes": "call first"}, LATER)
    body = {"Id": created["Id"], "SyncToken": created["SyncToken"], "sparse": True, "Notes": ""}

    updated = accounting.update(co, "Customer", body, LATER)

    assert "Notes" not in updated
    assert updated["DisplayName"] == "Noted"


def test_empty_values_are_read_as_absent_at_every_depth_but_line_details_and_positions_stay() -> None:
    body = {
        "A": "",
        "B": {"C": "", "D": None, "E": {"F": ""}},
        "Line": [{"DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}, {"Amount": ""}],
        "Keep": " ",
    }
    assert without_empty_values(body) == {
        "A": None,
        "B": None,
        "Line": [{"DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}, {}],
        "Keep": " ",
    }


# --- shapes pinned against real QBO bodies ---------------------------------------------------


def test_the_401_envelope_is_the_gateways_member_for_member() -> None:
    body = faults.authentication_failed("Malformed bearer token: too short or too long").body(NOW)

    assert list(body) == list(RECORDED_401)
    assert {k: v for k, v in body.items() if k != "time"} == {
        k: v for k, v in RECORDED_401.items() if k != "time"
    }
    assert isinstance(body["time"], int)
    assert body["time"] == int(NOW.timestamp() * 1000)


def test_a_payment_line_carries_the_lineex_block_with_the_open_balance_before_it(co: Company) -> None:
    invoice = accounting.create(co, "Invoice", json.loads(json.dumps(SDK_DEFAULT_INVOICE)), LATER)

    def pay(amount: int) -> Entity:
        line = {"Amount": amount, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
        body = {"CustomerRef": {"value": "3"}, "TotalAmt": amount, "Line": [line]}
        return accounting.create(co, "Payment", body, LATER)

    first, second = pay(30), pay(45)

    for payment, open_before in ((first, "100.00"), (second, "70.00")):
        block = payment["Line"][0]["LineEx"]["any"]
        assert [list(nv) for nv in block] == [list(RECORDED_NAME_VALUE)] * 3
        assert all(
            {k: v for k, v in nv.items() if k != "value"}
            == {k: v for k, v in RECORDED_NAME_VALUE.items() if k != "value"}
            for nv in block
        )
        assert [nv["value"] for nv in block] == [
            {"Name": "txnId", "Value": invoice["Id"]},
            {"Name": "txnOpenBalance", "Value": open_before},
            {"Name": "txnReferenceNumber", "Value": invoice["DocNumber"]},
        ]
    # Read back, the block is stored with the payment.
    assert accounting.read(co, "Payment", first["Id"])["Line"][0]["LineEx"] == first["Line"][0]["LineEx"]


def test_an_invoice_carries_last_modified_by_and_the_companys_ship_from_address(co: Company) -> None:
    expected = RECORDED_INVOICE
    body = {
        "CustomerRef": {"value": "1"},
        "TxnDate": "2024-01-15",
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": 100,
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1, "UnitPrice": 100},
            }
        ],
    }

    invoice = accounting.create(co, "Invoice", body, LATER)
    memo = accounting.create(co, "CreditMemo", {"CustomerRef": {"value": "1"}, "Line": body["Line"]}, LATER)

    assert list(invoice["MetaData"]) == list(expected["MetaData"])
    user = invoice["MetaData"]["LastModifiedByRef"]["value"]
    assert user.isdigit()
    assert len(user) == len(expected["MetaData"]["LastModifiedByRef"]["value"])
    assert list(invoice["ShipFromAddr"]) == list(expected["ShipFromAddr"])
    assert {k: v for k, v in invoice["ShipFromAddr"].items() if k != "Id"} == {
        k: v for k, v in expected["ShipFromAddr"].items() if k != "Id"
    }
    assert "LastModifiedByRef" not in memo["MetaData"]  # as the recorded credit memo
    assert memo["ShipFromAddr"]["Id"] != invoice["ShipFromAddr"]["Id"]

    edited = accounting.update(
        co,
        "Invoice",
        {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"], "sparse": True, "PrivateNote": "x"},
        LATER + timedelta(minutes=1),
    )
    assert edited["ShipFromAddr"] == invoice["ShipFromAddr"]
    assert edited["MetaData"]["LastModifiedByRef"] == invoice["MetaData"]["LastModifiedByRef"]
    assert edited["MetaData"]["LastUpdatedTime"] != invoice["MetaData"]["LastUpdatedTime"]
