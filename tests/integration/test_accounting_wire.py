"""QBO's accounting rules over real sockets: every request goes through the sandbox's HTTP server and
its wire layer (qbo_sandbox/api.py), as a QBO client's would.

The rules themselves are unit-tested in-process (tests/unit); these tests prove the same behaviours
reach the wire intact: status codes, the ``Fault`` envelope (byte for byte where QBO documents it),
the shapes QBO answers and the state a later request sees.  One sandbox serves the module, with its
rate limits off; every test gets a freshly seeded company of its own.
"""

# The f-strings below build QBO query statements for the sandbox, not SQL.
# ruff: noqa: S608

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest

from qbo_sandbox.server import SandboxServer
from tests.qbo_helpers import Connection, connect, unthrottled_sandbox

Entity = dict[str, Any]

RESPONSE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
METADATA_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")

DUPLICATE_NAME_DETAIL = (
    "The name supplied already exists. : Another customer, vendor or employee is already using this "
    "name. Please use a different name."
)
OBJECT_NOT_FOUND = "Object Not Found"
UNSUPPORTED = "Unsupported Operation"
BUSINESS_RULE = "A business validation error has occurred while processing your request"

# Seed (qbo_sandbox.seed.KEY_IDS and the US records).
COOL_CARS = "3"  # open invoice 1001, partly paid by payment "1"
BILLS_WINDSURF = "2"  # no open balance, not taxable
AMYS_BIRDS = "1"  # taxable, California 8 %
FREEMAN = "7"  # parent of jobs 8 and 9
OCEAN_VIEW_ROAD = "8"  # job of 7
BOOKS_BY_BESSIE = "30"  # a vendor
JOHN_JOHNSON = "55"  # an employee
ITEM_SERVICES = "1"
ITEM_HOURS = "2"
ITEM_DESIGN = "4"
ACCOUNT_SERVICES = "1"
ACCOUNT_UNDEPOSITED_FUNDS = "4"
ACCOUNT_FEES_BILLED = "5"
ACCOUNT_CHECKING = "35"
SEEDED_INVOICE_1001 = "1"
SEEDED_ACTIVE_CUSTOMERS = 29


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with unthrottled_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def conn(server: SandboxServer) -> Iterator[Connection]:
    """A new seeded US company (Craig's Design and Landscaping) and a client connected to it."""
    connection = connect(server)
    yield connection
    connection.close()


@pytest.fixture
def gb(server: SandboxServer) -> Iterator[Connection]:
    connection = connect(server, sandbox_country="GB")
    yield connection
    connection.close()


def ok(answer: httpx2.Response, entity: str) -> Entity:
    """The entity of a 200 answer, after checking the success envelope."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {entity, "time"}, body
    assert RESPONSE_TIME.match(body["time"])
    result: Entity = body[entity]
    return result


def fault(answer: httpx2.Response, code: str) -> Entity:
    """The single Error of a QBO validation fault, after checking the whole envelope's shape:
    ``{"Fault": {"Error": [{"Message","Detail","code","element"}], "type": "ValidationFault"}, "time"}``."""
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert list(body) == ["Fault", "time"]
    assert RESPONSE_TIME.match(body["time"]), body["time"]
    assert list(body["Fault"]) == ["Error", "type"]
    assert body["Fault"]["type"] == "ValidationFault"
    errors = body["Fault"]["Error"]
    assert len(errors) == 1, errors
    error: Entity = errors[0]
    assert list(error) == ["Message", "Detail", "code", "element"]
    assert error["code"] == code, error
    return error


def assert_exact_fault(
    answer: httpx2.Response, *, message: str, detail: str, code: str, element: str
) -> None:
    """The answer is byte for byte QBO's documented fault (only ``time`` varies)."""
    fault(answer, code)
    stamp = answer.json()["time"]
    expected = {
        "Fault": {
            "Error": [{"Message": message, "Detail": detail, "code": code, "element": element}],
            "type": "ValidationFault",
        },
        "time": stamp,
    }
    assert answer.content == json.dumps(expected, separators=(",", ":")).encode()


def read(conn: Connection, entity: str, entity_id: str) -> Entity:
    return ok(conn.get(f"{entity.lower()}/{entity_id}"), entity)


def create(conn: Connection, entity: str, body: Entity) -> Entity:
    return ok(conn.post(entity.lower(), body), entity)


def sparse(conn: Connection, entity: str, stored: Entity, **fields: Any) -> httpx2.Response:
    body = {"Id": stored["Id"], "SyncToken": stored["SyncToken"], "sparse": True, **fields}
    return conn.post(entity.lower(), body)


def rows(conn: Connection, text: str) -> list[Entity]:
    answer = conn.query(text)
    assert answer.status_code == 200, answer.text
    response: Entity = answer.json()["QueryResponse"]
    found: list[Entity] = next((v for v in response.values() if isinstance(v, list)), [])
    return found


def sale(amount: float, item: str = ITEM_HOURS, code: str | None = "NON", **detail: Any) -> Entity:
    line_detail: Entity = {"ItemRef": {"value": item}, **detail}
    if code is not None:
        line_detail["TaxCodeRef"] = {"value": code}
    return {"DetailType": "SalesItemLineDetail", "Amount": amount, "SalesItemLineDetail": line_detail}


def new_invoice(conn: Connection, customer: str = BILLS_WINDSURF, *lines: Entity, **extra: Any) -> Entity:
    body = {"CustomerRef": {"value": customer}, "Line": list(lines) or [sale(100)], **extra}
    return create(conn, "Invoice", body)


def pay(customer: str, total: float, *links: tuple[str, str, float]) -> Entity:
    return {
        "CustomerRef": {"value": customer},
        "TotalAmt": total,
        "Line": [
            {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}]}
            for txn_type, txn_id, amount in links
        ],
    }


def sales_lines(doc: Entity) -> list[Entity]:
    return [line for line in doc["Line"] if line["DetailType"] == "SalesItemLineDetail"]


# --- Customer -------------------------------------------------------------------------------


def test_customer_create_answers_qbos_shape(conn: Connection) -> None:
    customer = create(conn, "Customer", {"DisplayName": "Harbor Kites", "CompanyName": "Harbor Kites LLC"})
    assert isinstance(customer["Id"], str)
    assert customer["Id"].isdigit()
    assert customer["SyncToken"] == "0"
    assert customer["domain"] == "QBO"
    assert customer["sparse"] is False
    assert set(customer["MetaData"]) == {"CreateTime", "LastUpdatedTime"}
    assert METADATA_TIME.match(customer["MetaData"]["CreateTime"])
    assert customer["MetaData"]["CreateTime"].endswith(("-08:00", "-07:00"))  # Craig's is in California
    assert customer["MetaData"]["LastUpdatedTime"] == customer["MetaData"]["CreateTime"]
    assert customer["DisplayName"] == "Harbor Kites"
    assert customer["FullyQualifiedName"] == "Harbor Kites"
    assert customer["Active"] is True
    assert customer["Balance"] == 0
    assert customer["Job"] is False
    assert "ParentRef" not in customer
    assert read(conn, "Customer", customer["Id"]) == customer


def test_sub_customer_gets_a_qualified_name_and_level(conn: Connection) -> None:
    job = create(
        conn,
        "Customer",
        {"DisplayName": "Pier Shop", "Job": True, "ParentRef": {"value": FREEMAN}, "BillWithParent": True},
    )
    assert job["FullyQualifiedName"] == "Freeman Sporting Goods:Pier Shop"
    assert job["Level"] == 1
    assert job["Job"] is True
    assert job["BillWithParent"] is True
    assert job["ParentRef"]["value"] == FREEMAN

    grandchild = create(
        conn, "Customer", {"DisplayName": "Dock 4", "Job": True, "ParentRef": {"value": OCEAN_VIEW_ROAD}}
    )
    assert grandchild["FullyQualifiedName"] == "Freeman Sporting Goods:0969 Ocean View Road:Dock 4"
    assert grandchild["Level"] == 2
    assert grandchild["BillWithParent"] is False


def test_customer_named_like_a_vendor_is_6240(conn: Connection) -> None:
    vendor = read(conn, "Vendor", BOOKS_BY_BESSIE)
    answer = conn.post("customer", {"DisplayName": vendor["DisplayName"]})
    error = fault(answer, "6240")
    assert error["Message"] == "Duplicate Name Exists Error"
    assert error["Detail"].startswith(DUPLICATE_NAME_DETAIL)
    assert error["element"] == "DisplayName"
    assert_exact_fault(
        answer,
        message="Duplicate Name Exists Error",
        detail=error["Detail"],
        code="6240",
        element="DisplayName",
    )
    assert rows(conn, "SELECT * FROM Customer WHERE DisplayName = 'Books by Bessie'") == []


def test_customer_named_like_an_inactive_employee_is_6240(conn: Connection) -> None:
    employee = read(conn, "Employee", JOHN_JOHNSON)
    assert ok(sparse(conn, "Employee", employee, Active=False), "Employee")["Active"] is False
    error = fault(conn.post("customer", {"DisplayName": employee["DisplayName"]}), "6240")
    assert error["Message"] == "Duplicate Name Exists Error"
    assert error["Detail"].startswith(DUPLICATE_NAME_DETAIL)
    assert error["element"] == "DisplayName"


def test_colon_in_display_name_is_refused(conn: Connection) -> None:
    error = fault(conn.post("customer", {"DisplayName": "North:South"}), "2010")
    assert error["element"] == "DisplayName"
    assert rows(conn, "SELECT * FROM Customer WHERE DisplayName LIKE '%North%'") == []


def test_customer_without_any_name_is_2020(conn: Connection) -> None:
    error = fault(conn.post("customer", {"Notes": "no name at all"}), "2020")
    assert error["element"] == "DisplayName"
    assert error["Message"] == "Required param missing, need to supply the required value for the API"


def test_customer_display_name_is_built_from_the_name_parts(conn: Connection) -> None:
    customer = create(conn, "Customer", {"GivenName": "Ada", "FamilyName": "Byron"})
    assert customer["DisplayName"] == "Ada Byron"
    assert customer["FullyQualifiedName"] == "Ada Byron"


def test_sparse_update_changes_only_what_is_sent(conn: Connection) -> None:
    before = create(
        conn,
        "Customer",
        {
            "DisplayName": "Sparse Sails",
            "CompanyName": "Sparse Sails Inc",
            "Notes": "first",
            "PrimaryEmailAddr": {"Address": "sails@example.com"},
        },
    )
    advanced = httpx2.post(f"{conn.server.url}/_sandbox/clock/advance", json={"seconds": 61})
    assert advanced.status_code == 200, advanced.text
    after = ok(sparse(conn, "Customer", before, Notes="second"), "Customer")
    assert after["Notes"] == "second"
    assert after["SyncToken"] == "1"
    assert after["MetaData"]["CreateTime"] == before["MetaData"]["CreateTime"]
    updated = datetime.fromisoformat(after["MetaData"]["LastUpdatedTime"])
    assert updated - datetime.fromisoformat(before["MetaData"]["LastUpdatedTime"]) >= timedelta(seconds=61)
    unchanged = {k: v for k, v in before.items() if k not in ("Notes", "SyncToken", "MetaData")}
    assert {k: after.get(k) for k in unchanged} == unchanged
    assert read(conn, "Customer", before["Id"]) == after


def test_full_update_clears_omitted_fields(conn: Connection) -> None:
    before = create(
        conn,
        "Customer",
        {
            "DisplayName": "Full Flags",
            "CompanyName": "Full Flags Ltd",
            "Notes": "keep me?",
            "PrimaryEmailAddr": {"Address": "flags@example.com"},
        },
    )
    answer = conn.post("customer", {"Id": before["Id"], "SyncToken": "0", "DisplayName": "Full Flags"})
    after = ok(answer, "Customer")
    assert after["SyncToken"] == "1"
    assert after["DisplayName"] == "Full Flags"
    for cleared in ("CompanyName", "Notes", "PrimaryEmailAddr"):
        assert cleared not in after, cleared
    assert read(conn, "Customer", before["Id"]) == after


def test_stale_sync_token_is_qbos_exact_5010(conn: Connection) -> None:
    customer = create(conn, "Customer", {"DisplayName": "Stale Bread"})
    assert ok(sparse(conn, "Customer", customer, Notes="first writer"), "Customer")["SyncToken"] == "1"
    answer = sparse(conn, "Customer", customer, Notes="second writer")  # still SyncToken "0"
    object_id = customer["Id"]
    assert_exact_fault(
        answer,
        message="Stale Object Error",
        detail=(
            f"Stale Object Error : You and {object_id} were working on this at the same time. "
            f"{object_id} finished before you did, so your work was not saved."
        ),
        code="5010",
        element="",
    )
    assert read(conn, "Customer", object_id)["Notes"] == "first writer"


def test_customer_with_a_balance_cannot_be_deactivated(conn: Connection) -> None:
    cool_cars = read(conn, "Customer", COOL_CARS)
    assert cool_cars["Balance"] != 0
    error = fault(sparse(conn, "Customer", cool_cars, Active=False), "6000")
    assert error["Message"] == "Delete List Has Balance Error"
    after = read(conn, "Customer", COOL_CARS)
    assert after["Active"] is True
    assert after["SyncToken"] == cool_cars["SyncToken"]


def test_customer_with_a_job_balance_cannot_be_deactivated(conn: Connection) -> None:
    freeman = read(conn, "Customer", FREEMAN)
    assert freeman["Balance"] == 0
    assert freeman["BalanceWithJobs"] == read(conn, "Customer", OCEAN_VIEW_ROAD)["Balance"] != 0
    error = fault(sparse(conn, "Customer", freeman, Active=False), "6000")
    assert error["Message"] == "Delete List Has Balance Error"
    assert read(conn, "Customer", FREEMAN)["Active"] is True
    assert read(conn, "Customer", OCEAN_VIEW_ROAD)["Active"] is True


def test_customer_paid_up_to_zero_can_be_deactivated(conn: Connection) -> None:
    invoice = read(conn, "Invoice", SEEDED_INVOICE_1001)
    assert invoice["CustomerRef"]["value"] == COOL_CARS
    owed = invoice["Balance"]
    create(conn, "Payment", pay(COOL_CARS, owed, ("Invoice", invoice["Id"], owed)))
    customer = read(conn, "Customer", COOL_CARS)
    assert customer["Balance"] == 0
    after = ok(sparse(conn, "Customer", customer, Active=False), "Customer")
    assert after["Active"] is False
    assert after["SyncToken"] == str(int(customer["SyncToken"]) + 1)
    assert read(conn, "Customer", COOL_CARS)["Active"] is False


def test_delete_on_a_name_list_is_unsupported(conn: Connection) -> None:
    customer = read(conn, "Customer", BILLS_WINDSURF)
    answer = conn.post(
        "customer", {"Id": customer["Id"], "SyncToken": customer["SyncToken"]}, operation="delete"
    )
    error = fault(answer, "500")
    assert error["Message"] == UNSUPPORTED
    assert read(conn, "Customer", BILLS_WINDSURF) == customer


def test_inactive_customer_is_hidden_from_queries_but_keeps_its_name(conn: Connection) -> None:
    customer = create(conn, "Customer", {"DisplayName": "Gone Fishing"})
    ok(sparse(conn, "Customer", customer, Active=False), "Customer")

    active_ids = [row["Id"] for row in rows(conn, "SELECT * FROM Customer MAXRESULTS 1000")]
    assert customer["Id"] not in active_ids
    assert len(active_ids) == SEEDED_ACTIVE_CUSTOMERS
    inactive = rows(conn, "SELECT * FROM Customer WHERE Active = false")
    assert [row["Id"] for row in inactive] == [customer["Id"]]
    assert inactive[0]["Active"] is False

    error = fault(conn.post("customer", {"DisplayName": "Gone Fishing"}), "6240")
    assert error["Detail"].startswith(DUPLICATE_NAME_DETAIL)


# --- other name lists and company entities --------------------------------------------------


def test_employee_create_and_read(conn: Connection) -> None:
    employee = create(
        conn, "Employee", {"GivenName": "Grace", "FamilyName": "Hopper", "EmployeeNumber": "E-7"}
    )
    assert employee["DisplayName"] == "Grace Hopper"
    assert employee["SyncToken"] == "0"
    assert employee["Active"] is True
    assert employee["EmployeeNumber"] == "E-7"
    assert read(conn, "Employee", employee["Id"]) == employee


def test_vendor_create_and_read(conn: Connection) -> None:
    vendor = create(conn, "Vendor", {"DisplayName": "Kite Fabric Co", "CompanyName": "Kite Fabric"})
    assert vendor["DisplayName"] == "Kite Fabric Co"
    assert vendor["Balance"] == 0
    assert vendor["Active"] is True
    assert vendor["Vendor1099"] is False
    assert read(conn, "Vendor", vendor["Id"]) == vendor


def test_service_item_create(conn: Connection) -> None:
    item = create(
        conn,
        "Item",
        {
            "Name": "Kite Repair",
            "Type": "Service",
            "UnitPrice": 45,
            "IncomeAccountRef": {"value": ACCOUNT_SERVICES},
        },
    )
    assert item["Name"] == "Kite Repair"
    assert item["FullyQualifiedName"] == "Kite Repair"
    assert item["Type"] == "Service"
    assert item["UnitPrice"] == 45
    assert item["IncomeAccountRef"] == {"value": ACCOUNT_SERVICES, "name": "Services"}
    assert item["Active"] is True
    assert item["TrackQtyOnHand"] is False
    assert read(conn, "Item", item["Id"]) == item


def test_item_with_an_unknown_income_account_is_610(conn: Connection) -> None:
    body = {"Name": "Ghost Service", "Type": "Service", "IncomeAccountRef": {"value": "99999"}}
    error = fault(conn.post("item", body), "610")
    assert error["Message"] == OBJECT_NOT_FOUND
    assert error["element"] == "IncomeAccountRef"
    assert rows(conn, "SELECT * FROM Item WHERE Name = 'Ghost Service'") == []


def test_item_with_an_inactive_income_account_is_610(conn: Connection) -> None:
    account = read(conn, "Account", ACCOUNT_FEES_BILLED)
    assert ok(sparse(conn, "Account", account, Active=False), "Account")["Active"] is False
    body = {"Name": "Fee Service", "Type": "Service", "IncomeAccountRef": {"value": ACCOUNT_FEES_BILLED}}
    error = fault(conn.post("item", body), "610")
    assert error["Message"] == OBJECT_NOT_FOUND
    assert error["element"] == "IncomeAccountRef"


def test_service_item_without_an_income_account_is_2020(conn: Connection) -> None:
    error = fault(conn.post("item", {"Name": "Loose Service", "Type": "Service"}), "2020")
    assert error["element"] == "IncomeAccountRef"


@pytest.mark.parametrize(
    ("account_type", "subtype", "classification"),
    [
        ("Accounts Receivable", "AccountsReceivable", "Asset"),
        ("Bank", "CashOnHand", "Asset"),
        ("Expense", "OtherMiscellaneousServiceCost", "Expense"),
        ("Other Current Liability", "OtherCurrentLiabilities", "Liability"),
        ("Income", "ServiceFeeIncome", "Revenue"),
    ],
)
def test_account_create_derives_subtype_and_classification(
    conn: Connection, account_type: str, subtype: str, classification: str
) -> None:
    account = create(conn, "Account", {"Name": f"New {account_type}", "AccountType": account_type})
    assert account["AccountType"] == account_type
    assert account["AccountSubType"] == subtype
    assert account["Classification"] == classification
    assert account["FullyQualifiedName"] == f"New {account_type}"
    assert account["CurrentBalance"] == 0
    assert account["Active"] is True
    assert read(conn, "Account", account["Id"]) == account


@pytest.mark.parametrize(
    ("body", "code", "element"),
    [
        ({"Name": "No Type"}, "2020", "AccountType"),
        ({"Name": "Odd Type", "AccountType": "Piggy Bank"}, "2010", "AccountType"),
        (
            {"Name": "Wrong Sub", "AccountType": "Expense", "AccountSubType": "Checking"},
            "2010",
            "AccountSubType",
        ),
        ({"Name": "A:B", "AccountType": "Expense"}, "2010", "Name"),
        (
            {
                "Name": "Mixed Child",
                "AccountType": "Expense",
                "SubAccount": True,
                "ParentRef": {"value": "35"},
            },
            "6000",
            "ParentRef",
        ),
    ],
)
def test_account_type_rules(conn: Connection, body: Entity, code: str, element: str) -> None:
    error = fault(conn.post("account", body), code)
    assert error["element"] == element
    assert rows(conn, f"SELECT * FROM Account WHERE Name = '{body['Name']}'") == []


def test_tax_code_and_rate_are_readable(conn: Connection) -> None:
    code = read(conn, "TaxCode", "2")
    assert code["Name"] == "California"
    rate_id = code["SalesTaxRateList"]["TaxRateDetail"][0]["TaxRateRef"]["value"]
    rate = read(conn, "TaxRate", rate_id)
    assert rate["RateValue"] == 8
    assert [row["Id"] for row in rows(conn, "SELECT * FROM TaxCode WHERE Name = 'California'")] == ["2"]


@pytest.mark.parametrize(
    ("entity", "body"),
    [("TaxCode", {"Name": "Sneaky 5"}), ("TaxRate", {"Name": "Sneaky 5", "RateValue": 5})],
)
def test_tax_code_and_rate_create_are_refused(conn: Connection, entity: str, body: Entity) -> None:
    error = fault(conn.post(entity.lower(), body), "500")
    assert error["Message"] == UNSUPPORTED
    assert rows(conn, f"SELECT * FROM {entity} WHERE Name = 'Sneaky 5'") == []


def test_term_create_and_read(conn: Connection) -> None:
    assert read(conn, "Term", "3")["Name"] == "Net 30"
    term = create(conn, "Term", {"Name": "Net 45", "DueDays": 45})
    assert term["Type"] == "STANDARD"
    assert term["DueDays"] == 45
    assert term["Active"] is True
    assert read(conn, "Term", term["Id"]) == term
    error = fault(conn.post("term", {"Name": "net 45", "DueDays": 10}), "6240")
    assert error["element"] == "Name"


def test_payment_method_create_and_read(conn: Connection) -> None:
    visa = read(conn, "PaymentMethod", "3")
    assert (visa["Name"], visa["Type"]) == ("Visa", "CREDIT_CARD")
    method = create(conn, "PaymentMethod", {"Name": "Wire Transfer"})
    assert method["Type"] == "NON_CREDIT_CARD"
    assert method["Active"] is True
    assert read(conn, "PaymentMethod", method["Id"]) == method


def test_company_info_is_read_by_realm_id(conn: Connection) -> None:
    info = read(conn, "CompanyInfo", conn.realm)
    assert info["Id"] == conn.realm
    assert info["Country"] == "US"
    assert info["LegalName"] == "Craig's Design and Landscaping Services"
    assert info["CompanyName"]
    error = fault(conn.get("companyinfo/1"), "610")
    assert error["Message"] == OBJECT_NOT_FOUND


def test_preferences_sparse_update_flips_custom_transaction_numbers(conn: Connection) -> None:
    before = ok(conn.get("preferences"), "Preferences")
    assert before["SalesFormsPrefs"]["CustomTxnNumbers"] is False
    answer = conn.post(
        "preferences",
        {
            "Id": before["Id"],
            "SyncToken": before["SyncToken"],
            "sparse": True,
            "SalesFormsPrefs": {"CustomTxnNumbers": True},
        },
    )
    after = ok(answer, "Preferences")
    assert after["SalesFormsPrefs"]["CustomTxnNumbers"] is True
    assert after["SyncToken"] == str(int(before["SyncToken"]) + 1)
    # Nothing else moved: the rest of the section and the other sections are as they were.
    assert {k: v for k, v in after["SalesFormsPrefs"].items() if k != "CustomTxnNumbers"} == {
        k: v for k, v in before["SalesFormsPrefs"].items() if k != "CustomTxnNumbers"
    }
    assert after["TaxPrefs"] == before["TaxPrefs"]
    assert ok(conn.get("preferences"), "Preferences") == after
    # The preference is live: QBO no longer numbers invoices itself.
    assert "DocNumber" not in new_invoice(conn)


# --- Invoice --------------------------------------------------------------------------------


def test_invoice_totals_are_computed_and_a_client_total_is_ignored(conn: Connection) -> None:
    invoice = new_invoice(conn, BILLS_WINDSURF, sale(100), sale(50.25), TotalAmt=1, Balance=1)
    assert invoice["TotalAmt"] == 150.25
    assert invoice["Balance"] == 150.25
    assert invoice["TxnTaxDetail"]["TotalTax"] == 0
    assert invoice["SyncToken"] == "0"
    assert invoice["LinkedTxn"] == []
    assert invoice["TxnDate"] == invoice["MetaData"]["CreateTime"][:10]  # the company's local date
    assert read(conn, "Customer", BILLS_WINDSURF)["Balance"] == 150.25


def test_invoice_doc_numbers_continue_from_the_seed(conn: Connection) -> None:
    assert new_invoice(conn)["DocNumber"] == "1038"
    assert new_invoice(conn)["DocNumber"] == "1039"
    numbers = [row["DocNumber"] for row in rows(conn, "SELECT * FROM Invoice WHERE DocNumber >= '1038'")]
    assert sorted(numbers) == ["1038", "1039"]


def test_invoice_lines_get_ids_line_numbers_and_a_subtotal(conn: Connection) -> None:
    client_subtotal = {"DetailType": "SubTotalLineDetail", "Amount": 1, "SubTotalLineDetail": {}}
    invoice = new_invoice(conn, BILLS_WINDSURF, sale(10), client_subtotal, sale(20), sale(30))
    lines = invoice["Line"]
    assert [(line.get("Id"), line.get("LineNum")) for line in lines[:-1]] == [("1", 1), ("2", 2), ("3", 3)]
    assert [line["Amount"] for line in lines[:-1]] == [10, 20, 30]
    assert lines[-1] == {"Amount": 60, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    assert len(lines) == 4  # the client's subtotal line was dropped, QBO's appended


def test_us_tax_is_computed_at_8_percent_and_rounded_once_to_the_cent(conn: Connection) -> None:
    invoice = new_invoice(
        conn,
        AMYS_BIRDS,
        sale(33.33, ITEM_SERVICES, "TAX"),
        sale(10.07, ITEM_HOURS, "TAX", Qty=1, UnitPrice=10.07),
        sale(50, ITEM_HOURS, "NON"),
    )
    detail = invoice["TxnTaxDetail"]
    # 43.40 taxable x 8 % = 3.472 -> 3.47 (per-line rounding would give 2.67 + 0.81 = 3.48)
    assert detail["TotalTax"] == 3.47
    assert detail["TxnTaxCodeRef"] == {"value": "2"}
    assert len(detail["TaxLine"]) == 1
    tax_line = detail["TaxLine"][0]
    assert tax_line["Amount"] == 3.47
    assert tax_line["TaxLineDetail"]["TaxPercent"] == 8
    assert tax_line["TaxLineDetail"]["NetAmountTaxable"] == 43.4
    assert invoice["Line"][-1]["Amount"] == 93.4
    assert invoice["TotalAmt"] == 96.87
    assert invoice["Balance"] == 96.87


def test_explicit_total_tax_is_honoured(conn: Connection) -> None:
    invoice = new_invoice(conn, AMYS_BIRDS, sale(100, ITEM_SERVICES, "TAX"), TxnTaxDetail={"TotalTax": 9.99})
    assert invoice["TxnTaxDetail"]["TotalTax"] == 9.99
    assert sum(line["Amount"] for line in invoice["TxnTaxDetail"]["TaxLine"]) == 9.99
    assert invoice["TotalAmt"] == 109.99


def test_amount_other_than_qty_times_unit_price_is_refused(conn: Connection) -> None:
    answer = conn.post(
        "invoice", {"CustomerRef": {"value": BILLS_WINDSURF}, "Line": [sale(20, Qty=3, UnitPrice=7)]}
    )
    error = fault(answer, "6070")
    assert error["Message"] == "Amount calculation incorrect in the request."
    assert error["element"] == "Line.Amount"
    assert rows(conn, f"SELECT * FROM Invoice WHERE CustomerRef = '{BILLS_WINDSURF}'") == []


@pytest.mark.parametrize(
    ("entity", "entity_id", "deactivate"),
    [
        ("Item", "9999", False),
        ("Item", ITEM_DESIGN, True),
        ("Customer", "9999", False),
        ("Customer", BILLS_WINDSURF, True),
    ],
    ids=["unknown-item", "inactive-item", "unknown-customer", "inactive-customer"],
)
def test_invoice_reference_to_a_missing_or_inactive_object_is_610(
    conn: Connection, entity: str, entity_id: str, deactivate: bool
) -> None:
    if deactivate:
        stored = read(conn, entity, entity_id)
        assert ok(sparse(conn, entity, stored, Active=False), entity)["Active"] is False
    item = entity_id if entity == "Item" else ITEM_DESIGN
    customer = entity_id if entity == "Customer" else BILLS_WINDSURF
    answer = conn.post("invoice", {"CustomerRef": {"value": customer}, "Line": [sale(75, item)]})
    error = fault(answer, "610")
    assert error["Message"] == OBJECT_NOT_FOUND
    assert error["element"] == f"{entity}Ref"
    assert conn.query("SELECT COUNT(*) FROM Invoice").json()["QueryResponse"] == {"totalCount": 4}


def test_sparse_invoice_update_with_line_replaces_every_line(conn: Connection) -> None:
    invoice = new_invoice(conn, BILLS_WINDSURF, sale(10), sale(20), sale(30), PrivateNote="three lines")
    first = invoice["Line"][0]
    answer = sparse(conn, "Invoice", invoice, Line=[{**first, "Amount": 70}])
    after = ok(answer, "Invoice")
    assert [line["Id"] for line in sales_lines(after)] == ["1"]
    assert [line["Amount"] for line in sales_lines(after)] == [70]
    assert after["TotalAmt"] == 70
    assert after["Balance"] == 70
    assert after["PrivateNote"] == "three lines"
    assert after["DocNumber"] == invoice["DocNumber"]
    assert after["SyncToken"] == "1"
    assert read(conn, "Invoice", invoice["Id"]) == after
    assert read(conn, "Customer", BILLS_WINDSURF)["Balance"] == 70


def test_void_keeps_the_invoice_with_zero_amounts(conn: Connection) -> None:
    invoice = new_invoice(conn, BILLS_WINDSURF, sale(10), sale(20))
    answer = conn.post("invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="void")
    voided = ok(answer, "Invoice")
    assert voided["Id"] == invoice["Id"]
    assert voided["TotalAmt"] == 0
    assert voided["Balance"] == 0
    assert voided["TxnTaxDetail"]["TotalTax"] == 0
    assert len(voided["Line"]) == len(invoice["Line"])
    assert all(line["Amount"] == 0 for line in voided["Line"])
    assert voided["DocNumber"] == invoice["DocNumber"]
    assert voided["SyncToken"] == "1"
    assert read(conn, "Invoice", invoice["Id"]) == voided
    assert rows(conn, f"SELECT * FROM Invoice WHERE Id = '{invoice['Id']}'") == [voided]
    assert read(conn, "Customer", BILLS_WINDSURF)["Balance"] == 0


def test_delete_answers_the_deleted_stub_and_the_invoice_is_gone(conn: Connection) -> None:
    invoice = new_invoice(conn)
    answer = conn.post(
        "invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="delete"
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"Invoice", "time"}
    assert body["Invoice"] == {"domain": "QBO", "status": "Deleted", "Id": invoice["Id"]}
    error = fault(conn.get(f"invoice/{invoice['Id']}"), "610")
    assert error["Message"] == OBJECT_NOT_FOUND
    assert read(conn, "Customer", BILLS_WINDSURF)["Balance"] == 0


def test_invoice_with_an_applied_payment_cannot_be_deleted(conn: Connection) -> None:
    invoice = read(conn, "Invoice", SEEDED_INVOICE_1001)
    assert {"TxnType": "Payment", "TxnId": "1"} in invoice["LinkedTxn"]
    answer = conn.post(
        "invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="delete"
    )
    error = fault(answer, "6000")
    assert error["Message"] == BUSINESS_RULE
    assert read(conn, "Invoice", SEEDED_INVOICE_1001) == invoice


# --- Payment and CreditMemo -----------------------------------------------------------------


def test_payment_applies_to_an_invoice(conn: Connection) -> None:
    invoice = new_invoice(conn, BILLS_WINDSURF, sale(100))
    payment = create(conn, "Payment", pay(BILLS_WINDSURF, 60, ("Invoice", invoice["Id"], 40)))
    assert payment["TotalAmt"] == 60
    assert payment["UnappliedAmt"] == 20
    assert payment["DepositToAccountRef"] == {"value": ACCOUNT_UNDEPOSITED_FUNDS, "name": "Undeposited Funds"}
    [line] = payment["Line"]
    assert (line["Amount"], line["LinkedTxn"]) == (40, [{"TxnId": invoice["Id"], "TxnType": "Invoice"}])
    assert [nv["value"] for nv in line["LineEx"]["any"]] == [
        {"Name": "txnId", "Value": invoice["Id"]},
        {"Name": "txnOpenBalance", "Value": "100.00"},
        {"Name": "txnReferenceNumber", "Value": invoice["DocNumber"]},
    ]

    after = read(conn, "Invoice", invoice["Id"])
    assert after["Balance"] == 60
    assert after["TotalAmt"] == 100
    assert after["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    assert after["SyncToken"] == "1"
    # 60 still open on the invoice, less 20 of unapplied cash.
    assert read(conn, "Customer", BILLS_WINDSURF)["Balance"] == 40


def test_payment_makes_an_old_copy_of_the_invoice_stale(conn: Connection) -> None:
    invoice = new_invoice(conn, BILLS_WINDSURF, sale(100))
    create(conn, "Payment", pay(BILLS_WINDSURF, 25, ("Invoice", invoice["Id"], 25)))
    answer = sparse(conn, "Invoice", invoice, PrivateNote="edited from an old copy")
    assert_exact_fault(
        answer,
        message="Stale Object Error",
        detail=(
            f"Stale Object Error : You and {invoice['Id']} were working on this at the same time. "
            f"{invoice['Id']} finished before you did, so your work was not saved."
        ),
        code="5010",
        element="",
    )
    assert "PrivateNote" not in read(conn, "Invoice", invoice["Id"])


def test_payment_applying_more_than_the_open_balance_is_refused(conn: Connection) -> None:
    invoice = new_invoice(conn, BILLS_WINDSURF, sale(100))
    answer = conn.post("payment", pay(BILLS_WINDSURF, 150, ("Invoice", invoice["Id"], 150)))
    error = fault(answer, "6000")
    assert error["Message"] == BUSINESS_RULE
    assert error["element"] == "Line.Amount"
    assert read(conn, "Invoice", invoice["Id"]) == invoice
    assert rows(conn, f"SELECT * FROM Payment WHERE CustomerRef = '{BILLS_WINDSURF}'") == []


def test_voiding_a_payment_restores_the_invoice_balance(conn: Connection) -> None:
    invoice = new_invoice(conn, BILLS_WINDSURF, sale(100))
    payment = create(conn, "Payment", pay(BILLS_WINDSURF, 100, ("Invoice", invoice["Id"], 100)))
    assert read(conn, "Invoice", invoice["Id"])["Balance"] == 0
    answer = conn.post(
        "payment",
        {"Id": payment["Id"], "SyncToken": payment["SyncToken"], "sparse": True},
        operation="update",
        include="void",
    )
    voided = ok(answer, "Payment")
    assert voided["Id"] == payment["Id"]
    assert voided["TotalAmt"] == 0
    assert voided["UnappliedAmt"] == 0
    after = read(conn, "Invoice", invoice["Id"])
    assert after["Balance"] == 100
    assert after["LinkedTxn"] == []
    assert read(conn, "Customer", BILLS_WINDSURF)["Balance"] == 100


def test_credit_memo_is_applied_by_a_zero_dollar_payment(conn: Connection) -> None:
    invoice = new_invoice(conn, BILLS_WINDSURF, sale(100))
    memo = create(conn, "CreditMemo", {"CustomerRef": {"value": BILLS_WINDSURF}, "Line": [sale(30)]})
    assert memo["TotalAmt"] == 30
    assert memo["RemainingCredit"] == 30
    assert read(conn, "Customer", BILLS_WINDSURF)["Balance"] == 70

    payment = create(
        conn,
        "Payment",
        pay(BILLS_WINDSURF, 0, ("Invoice", invoice["Id"], 30), ("CreditMemo", memo["Id"], 30)),
    )
    assert payment["TotalAmt"] == 0
    assert payment["UnappliedAmt"] == 0
    applied = read(conn, "CreditMemo", memo["Id"])
    assert applied["RemainingCredit"] == 0
    assert applied["TotalAmt"] == 30
    assert applied["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    assert applied["SyncToken"] == "1"
    after = read(conn, "Invoice", invoice["Id"])
    assert after["Balance"] == 70
    assert after["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    assert read(conn, "Customer", BILLS_WINDSURF)["Balance"] == 70


# --- JournalEntry ---------------------------------------------------------------------------


def journal_line(posting: str, account: str, amount: float) -> Entity:
    return {
        "DetailType": "JournalEntryLineDetail",
        "Amount": amount,
        "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": account}},
    }


def test_balanced_journal_entry_is_saved(conn: Connection) -> None:
    entry = create(
        conn,
        "JournalEntry",
        {
            "Line": [
                journal_line("Debit", ACCOUNT_CHECKING, 125.5),
                journal_line("Credit", ACCOUNT_SERVICES, 125.5),
            ]
        },
    )
    assert entry["TotalAmt"] == 125.5
    assert [line["JournalEntryLineDetail"]["AccountRef"] for line in entry["Line"]] == [
        {"value": ACCOUNT_CHECKING, "name": "Checking"},
        {"value": ACCOUNT_SERVICES, "name": "Services"},
    ]
    assert read(conn, "JournalEntry", entry["Id"]) == entry


def test_unbalanced_journal_entry_is_refused(conn: Connection) -> None:
    answer = conn.post(
        "journalentry",
        {
            "Line": [
                journal_line("Debit", ACCOUNT_CHECKING, 100),
                journal_line("Credit", ACCOUNT_SERVICES, 90),
            ]
        },
    )
    error = fault(answer, "6000")
    assert error["Message"] == BUSINESS_RULE
    assert conn.query("SELECT COUNT(*) FROM JournalEntry").json()["QueryResponse"] == {"totalCount": 0}


# --- a VAT company (GB) ---------------------------------------------------------------------


def test_gb_invoice_line_without_a_tax_code_is_6000(gb: Connection) -> None:
    answer = gb.post("invoice", {"CustomerRef": {"value": "1"}, "Line": [sale(20, "3", code=None)]})
    error = fault(answer, "6000")
    assert error["Message"] == BUSINESS_RULE
    assert error["element"] == "Line.SalesItemLineDetail.TaxCodeRef"
    assert gb.query("SELECT COUNT(*) FROM Invoice").json()["QueryResponse"] == {"totalCount": 0}


def test_gb_standard_rate_is_computed_per_line(gb: Connection) -> None:
    standard = rows(gb, "SELECT * FROM TaxCode WHERE Name = '20.0% S'")
    assert len(standard) == 1
    code = standard[0]["Id"]
    invoice = new_invoice(gb, "1", sale(10.03, "3", code), sale(10.03, "3", code))
    # 2.006 -> 2.01 on each line: 4.02 (one rounding of 20.06 x 20 % would give 4.01)
    assert invoice["TxnTaxDetail"]["TotalTax"] == 4.02
    tax_lines = invoice["TxnTaxDetail"]["TaxLine"]
    assert len(tax_lines) == 1
    assert tax_lines[0]["TaxLineDetail"]["TaxPercent"] == 20
    assert tax_lines[0]["TaxLineDetail"]["NetAmountTaxable"] == 20.06
    assert [line["SalesItemLineDetail"]["TaxCodeRef"] for line in sales_lines(invoice)] == [
        {"value": code}
    ] * 2
    assert invoice["TotalAmt"] == 24.08
    assert invoice["CurrencyRef"]["value"] == "GBP"


# --- query ----------------------------------------------------------------------------------


def test_get_and_post_query_forms_answer_alike(conn: Connection) -> None:
    text = "SELECT * FROM Customer WHERE Id IN ('1', '3', '7') ORDERBY Id"
    by_get = conn.query(text)
    by_post = conn.http.post(
        f"{conn.base}/query", content=text.encode(), headers={"Content-Type": "application/text"}
    )
    assert by_get.status_code == by_post.status_code == 200
    assert by_post.json()["QueryResponse"] == by_get.json()["QueryResponse"]
    assert [row["Id"] for row in by_get.json()["QueryResponse"]["Customer"]] == ["1", "3", "7"]
    assert RESPONSE_TIME.match(by_post.json()["time"])


def test_paging_with_startposition_and_maxresults(conn: Connection) -> None:
    pages = []
    for start in (1, 11, 21):
        answer = conn.query(f"SELECT * FROM Customer STARTPOSITION {start} MAXRESULTS 10")
        assert answer.status_code == 200
        response = answer.json()["QueryResponse"]
        assert response["startPosition"] == start
        assert response["maxResults"] == len(response["Customer"])
        pages.append([row["Id"] for row in response["Customer"]])
    assert [len(page) for page in pages] == [10, 10, 9]
    everything = [row["Id"] for row in rows(conn, "SELECT * FROM Customer MAXRESULTS 1000")]
    assert pages[0] + pages[1] + pages[2] == everything


def test_query_past_the_end_is_an_empty_query_response(conn: Connection) -> None:
    answer = conn.query("SELECT * FROM Customer STARTPOSITION 500 MAXRESULTS 10")
    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == ["QueryResponse", "time"]
    assert body["QueryResponse"] == {}
    assert RESPONSE_TIME.match(body["time"])


def test_count_query_answers_total_count(conn: Connection) -> None:
    answer = conn.query("SELECT COUNT(*) FROM Customer")
    assert answer.status_code == 200
    assert answer.json()["QueryResponse"] == {"totalCount": SEEDED_ACTIVE_CUSTOMERS}
    jobs = conn.query("SELECT COUNT(*) FROM Customer WHERE Job = true").json()["QueryResponse"]
    assert jobs == {"totalCount": 3}


def test_maxresults_above_1000_is_4001(conn: Connection) -> None:
    answer = conn.query("SELECT * FROM Customer MAXRESULTS 1001")
    assert_exact_fault(
        answer,
        message="Invalid query",
        detail="QueryValidationError: value 1001 is too large. Max allowed value is 1000",
        code="4001",
        element="",
    )
    assert conn.query("SELECT * FROM Customer MAXRESULTS 1000").status_code == 200


def test_or_is_not_supported(conn: Connection) -> None:
    error = fault(conn.query("SELECT * FROM Customer WHERE Id = '1' OR Id = '2'"), "4000")
    assert error["Message"] == "Error parsing query"


def test_like_with_wildcards(conn: Connection) -> None:
    found = rows(conn, "SELECT * FROM Customer WHERE DisplayName LIKE '%Cars%'")
    assert [(row["Id"], row["DisplayName"]) for row in found] == [(COOL_CARS, "Cool Cars")]


def test_escaped_apostrophe_in_a_string(conn: Connection) -> None:
    found = rows(conn, "SELECT * FROM Customer WHERE DisplayName = 'Bill\\'s Windsurf Shop'")
    assert [(row["Id"], row["DisplayName"]) for row in found] == [(BILLS_WINDSURF, "Bill's Windsurf Shop")]
