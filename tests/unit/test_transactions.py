"""Invoice, CreditMemo, Payment and JournalEntry rules, driven through qbo_sandbox.accounting's
public dispatch (create / update / delete / void / read) on in-memory companies.

The companies are built here with ``Company.insert`` in the shapes of the seed (Craig's Design and
Landscaping for the US, a VAT company for GB), so these tests do not depend on ``seed.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qbo_sandbox import accounting
from qbo_sandbox.accounting import transactions
from qbo_sandbox.company import Company
from qbo_sandbox.faults import QboFault
from tests.sandbox_company import must_get, seeded_company

D = Decimal
# 03:00 UTC is the previous evening in California: TxnDate defaults to the company's local date.
NOW = datetime(2026, 5, 5, 3, 0, tzinfo=UTC)
LOCAL_TODAY = "2026-05-04"
SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "qbo"

Entity = dict[str, Any]


# --- companies --------------------------------------------------------------------------------


def _add(co: Company, entity: str, entity_id: str, **fields: Any) -> Entity:
    return co.insert(entity, fields, NOW, entity_id=entity_id, journal=False)


def _item(co: Company, item_id: str, name: str, kind: str, **fields: Any) -> Entity:
    """An item named ``name`` at the top level, of type ``kind``, active unless ``fields`` say not."""
    fields = {"Name": name, "FullyQualifiedName": name, "Type": kind, "Active": True, **fields}
    return _add(co, "Item", item_id, **fields)


def _address(addr_id: str, line1: str) -> Entity:
    return {
        "Id": addr_id,
        "Line1": line1,
        "City": "Bayshore",
        "CountrySubDivisionCode": "CA",
        "PostalCode": "94326",
    }


def us_company(*, auto_apply: bool = True, custom_numbers: bool = False) -> Company:
    co = Company(realm_id="9341000000000001", country="US", name="Craig's", created_at=NOW)
    for acc_id, name, kind in [
        ("1", "Services", "Income"),
        ("4", "Undeposited Funds", "Other Current Asset"),
        ("33", "Accounts Payable (A/P)", "Accounts Payable"),
        ("35", "Checking", "Bank"),
        ("79", "Sales of Product Income", "Income"),
        ("84", "Accounts Receivable (A/R)", "Accounts Receivable"),
        ("86", "Discounts given", "Income"),
        ("87", "Unapplied Cash Payment Income", "Income"),
    ]:
        _add(co, "Account", acc_id, Name=name, FullyQualifiedName=name, AccountType=kind, Active=True)
    _add(co, "Account", "99", Name="Old", FullyQualifiedName="Old", AccountType="Expense", Active=False)
    customers: list[tuple[str, str, Entity]] = [
        (
            "1",
            "Amy's Bird Sanctuary",
            {
                "Taxable": True,
                "BillAddr": _address("2", "4581 Finch St."),
                "ShipAddr": _address("2", "4581 Finch St."),
                "PrimaryEmailAddr": {"Address": "Birds@Intuit.com"},
            },
        ),
        ("3", "Cool Cars", {}),
        ("7", "Freeman Sporting Goods", {}),
        ("8", "0969 Ocean View Road", {"Job": True, "ParentRef": {"value": "7"}}),
        ("22", "Shara Barnett", {}),
        ("23", "Barnett Design", {"Job": True, "ParentRef": {"value": "22"}}),
        ("24", "Sonnenschein Family Store", {}),
        ("25", "Gone Customer", {"Active": False}),
        ("26", "Travis Waldron", {"SalesTermRef": {"value": "4"}, "DefaultTaxCodeRef": {"value": "5"}}),
    ]
    for cust_id, name, extra in customers:
        fields = {
            "DisplayName": name,
            "FullyQualifiedName": name,
            "Active": True,
            "Balance": 0,
            "BalanceWithJobs": 0,
            **extra,
        }
        _add(co, "Customer", cust_id, **fields)
    _add(co, "Vendor", "41", DisplayName="Books by Bessie", Active=True)
    services = {"value": "1", "name": "Services"}
    _item(co, "1", "Services", "Service", Taxable=False, IncomeAccountRef=services)
    _item(co, "2", "Hours", "Service", Taxable=True, IncomeAccountRef=services)
    product_income = {"value": "79", "name": "Sales of Product Income"}
    _item(co, "5", "Rock Fountain", "Inventory", Taxable=True, IncomeAccountRef=product_income)
    _item(co, "18", "Trimming", "Service", Active=False, IncomeAccountRef={"value": "1"})
    _add(co, "TaxRate", "3", Name="California", RateValue=8, Active=True)
    _add(co, "TaxRate", "4", Name="State", RateValue=6, Active=True)
    _add(co, "TaxRate", "6", Name="County", RateValue=D("2.25"), Active=True)
    _add(co, "TaxCode", "TAX", Name="TAX", Taxable=True)
    _add(co, "TaxCode", "NON", Name="NON", Taxable=False)
    _add(
        co,
        "TaxCode",
        "2",
        Name="California",
        Active=True,
        Taxable=True,
        SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": "3"}, "TaxOrder": 0}]},
    )
    _add(
        co,
        "TaxCode",
        "5",
        Name="Tucson",
        Active=True,
        Taxable=True,
        SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": "4"}}, {"TaxRateRef": {"value": "6"}}]},
    )
    _add(co, "Term", "3", Name="Net 30", DueDays=30, Active=True)
    _add(co, "Term", "4", Name="Net 15", DueDays=15, Active=True)
    _add(co, "Term", "5", Name="Due next month", DayOfMonthDue=31, Active=True)
    _add(co, "PaymentMethod", "1", Name="Cash", Active=True)
    _add(co, "CompanyInfo", "1", CompanyName="Craig's Design and Landscaping Services", Country="US")
    _add(
        co,
        "Preferences",
        "1",
        SalesFormsPrefs={"CustomTxnNumbers": custom_numbers, "AutoApplyCredit": auto_apply},
        TaxPrefs={"PartnerTaxEnabled": True, "UsingSalesTax": True},
        CurrencyPrefs={"HomeCurrency": {"value": "USD"}},
    )
    co.settings["doc_number_floor"] = 1037
    return co


def _company_abroad(realm_id: str, country: str, name: str, customer: str, currency: str) -> Company:
    """A non-US company: an income account 1, customer 1, service item 1 and its preferences (no
    automated sales tax, credits not applied automatically, its home currency)."""
    co = Company(realm_id=realm_id, country=country, name=name, created_at=NOW)
    _add(co, "Account", "1", Name="Sales", FullyQualifiedName="Sales", AccountType="Income", Active=True)
    _add(
        co,
        "Customer",
        "1",
        DisplayName=customer,
        FullyQualifiedName=customer,
        Active=True,
        Balance=0,
        BalanceWithJobs=0,
    )
    _item(co, "1", "Consulting", "Service", IncomeAccountRef={"value": "1"})
    _add(
        co,
        "Preferences",
        "1",
        SalesFormsPrefs={"CustomTxnNumbers": False, "AutoApplyCredit": False},
        TaxPrefs={"PartnerTaxEnabled": False},
        CurrencyPrefs={"HomeCurrency": {"value": currency}},
    )
    return co


def vat_company() -> Company:
    co = _company_abroad("9341000000000002", "GB", "UK Ltd", "Tesco", "GBP")
    _add(co, "TaxRate", "1", Name="20.0% S", RateValue=20, Active=True)
    _add(co, "TaxRate", "2", Name="0.0% Z", RateValue=0, Active=True)
    _add(co, "TaxRate", "3", Name="5.0% R", RateValue=5, Active=True)
    for code_id, name, rate in [("10", "20.0% S", "1"), ("11", "0.0% Z", "2"), ("12", "5.0% R", "3")]:
        _add(
            co,
            "TaxCode",
            code_id,
            Name=name,
            Active=True,
            SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": rate}, "TaxOrder": 0}]},
        )
    _add(
        co,
        "TaxCode",
        "13",
        Name="Old",
        Active=False,
        SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": "1"}}]},
    )
    return co


@pytest.fixture
def co() -> Company:
    return us_company()


# --- helpers ----------------------------------------------------------------------------------


def sale(
    amount: Any, item: str = "2", *, qty: Any = None, price: Any = None, code: str | None = None, **extra: Any
) -> Entity:
    detail: Entity = {"ItemRef": {"value": item}}
    if qty is not None:
        detail["Qty"] = D(str(qty))
    if price is not None:
        detail["UnitPrice"] = D(str(price))
    if code is not None:
        detail["TaxCodeRef"] = {"value": code}
    line: Entity = {"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail, **extra}
    if amount is not None:
        line["Amount"] = D(str(amount))
    return line


def invoice(co: Company, *lines: Entity, customer: str = "3", **fields: Any) -> Entity:
    body = {"CustomerRef": {"value": customer}, "Line": list(lines) or [sale(100, code="NON")], **fields}
    return accounting.create(co, "Invoice", body, NOW)


def credit_memo(co: Company, amount: Any, customer: str = "3", **fields: Any) -> Entity:
    body = {"CustomerRef": {"value": customer}, "Line": [sale(amount, code="NON")], **fields}
    return accounting.create(co, "CreditMemo", body, NOW)


def pay_line(amount: Any, txn: Entity, txn_type: str = "Invoice") -> Entity:
    return {"Amount": D(str(amount)), "LinkedTxn": [{"TxnId": txn["Id"], "TxnType": txn_type}]}


def payment(co: Company, total: Any, *lines: Entity, customer: str = "3", **fields: Any) -> Entity:
    body = {"CustomerRef": {"value": customer}, "TotalAmt": D(str(total)), "Line": list(lines), **fields}
    return accounting.create(co, "Payment", body, NOW)


def read(co: Company, entity: str, entity_id: str) -> Entity:
    return accounting.read(co, entity, entity_id)


def balance(co: Company, customer_id: str) -> tuple[Decimal, Decimal]:
    customer = co.get("Customer", customer_id)
    assert customer is not None
    return D(str(customer["Balance"])), D(str(customer["BalanceWithJobs"]))


def fault(call: Any, *args: Any, **kwargs: Any) -> QboFault:
    with pytest.raises(QboFault) as info:
        call(*args, **kwargs)
    return info.value


def amount(value: Any) -> Decimal:
    return D(str(value))


def changes(co: Company) -> list[tuple[str, str, str]]:
    return [(c.entity, c.entity_id, c.operation) for c in co.journal]


# --- invoice shape and totals -----------------------------------------------------------------


def test_invoice_create_answers_the_shape_of_the_recorded_sandbox_response(co):
    body = json.loads((SAMPLES / "invoice-create-request.json").read_text(), parse_float=D)
    expected = json.loads((SAMPLES / "invoice-create-response.json").read_text())["Invoice"]

    inv = accounting.create(co, "Invoice", body, NOW)

    assert inv["Line"][0]["Id"] == "1"
    assert inv["Line"][0]["LineNum"] == 1
    detail = inv["Line"][0]["SalesItemLineDetail"]
    assert detail["ItemRef"] == {"value": "1", "name": "Services"}
    assert detail["ItemAccountRef"] == expected["Line"][0]["SalesItemLineDetail"]["ItemAccountRef"]
    assert detail["TaxCodeRef"] == {"value": "NON"}
    assert inv["Line"][1] == expected["Line"][1]
    assert inv["TxnTaxDetail"] == expected["TxnTaxDetail"] == {"TotalTax": 0}
    assert inv["CustomerRef"] == {"value": "1", "name": "Amy's Bird Sanctuary"}
    assert inv["BillAddr"]["Line1"] == expected["BillAddr"]["Line1"]
    assert inv["ShipAddr"]["Id"] == "2"
    assert inv["BillEmail"] == {"Address": "Birds@Intuit.com"}
    assert inv["DueDate"] == expected["DueDate"] == "2024-02-14"
    assert inv["DocNumber"] == "1038"
    assert inv["CurrencyRef"] == expected["CurrencyRef"]
    for key in (
        "LinkedTxn",
        "PrintStatus",
        "EmailStatus",
        "TotalAmt",
        "Balance",
        "ApplyTaxAfterDiscount",
        "AllowIPNPayment",
        "AllowOnlinePayment",
        "AllowOnlineCreditCardPayment",
        "AllowOnlineACHPayment",
        "TxnDate",
        "domain",
        "sparse",
        "SyncToken",
    ):
        assert inv[key] == expected[key], key
    assert changes(co) == [("Invoice", inv["Id"], "Create")]


def test_client_totals_and_links_are_ignored(co):
    inv = invoice(
        co, sale(100, code="NON"), TotalAmt=5, Balance=1, LinkedTxn=[{"TxnId": "9", "TxnType": "Payment"}]
    )

    assert (inv["TotalAmt"], inv["Balance"], inv["LinkedTxn"]) == (100, 100, [])


def test_txn_date_defaults_to_the_company_local_date(co):
    assert invoice(co)["TxnDate"] == LOCAL_TODAY


def test_us_tax_three_lines_of_33_33_at_8_percent_rounded_once(co):
    inv = invoice(co, *[sale("33.33", code="TAX") for _ in range(3)])

    assert amount(inv["TotalAmt"]) == D("107.99")  # 99.99 + 8.00, not 8.01 (per-line rounding)
    assert inv["TxnTaxDetail"] == {
        "TxnTaxCodeRef": {"value": "2"},
        "TotalTax": 8,
        "TaxLine": [
            {
                "Amount": 8,
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": {"value": "3"},
                    "PercentBased": True,
                    "TaxPercent": 8,
                    "NetAmountTaxable": 99.99,
                },
            }
        ],
    }
    assert amount(inv["Line"][3]["Amount"]) == D("99.99")
    assert inv["Line"][3]["DetailType"] == "SubTotalLineDetail"
    assert amount(inv["Balance"]) == D("107.99")


def test_us_line_without_tax_code_is_taxable_unless_its_item_is_not(co):
    inv = invoice(co, sale(100, "2"), sale(50, "1"), sale(10, "2", code="NON"))

    codes = [ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in inv["Line"][:3]]
    assert codes == ["TAX", "NON", "NON"]
    assert inv["TxnTaxDetail"]["TotalTax"] == 8
    assert inv["TotalAmt"] == 168


def test_us_tax_code_comes_from_the_customer_then_the_request(co):
    from_customer = invoice(co, sale(100, code="TAX"), customer="26")
    explicit = invoice(
        co, sale(100, code="TAX"), customer="26", TxnTaxDetail={"TxnTaxCodeRef": {"value": "2"}}
    )

    assert from_customer["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": "5"}
    assert [t["Amount"] for t in from_customer["TxnTaxDetail"]["TaxLine"]] == [6, 2.25]
    assert amount(from_customer["TotalAmt"]) == D("108.25")
    assert explicit["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": "2"}
    assert explicit["TotalAmt"] == 108


def test_unknown_transaction_tax_code_is_refused(co):
    error = fault(invoice, co, sale(100, code="TAX"), TxnTaxDetail={"TxnTaxCodeRef": {"value": "77"}})

    assert error.code == "610"


def test_explicit_total_tax_is_honoured_and_prorated(co):
    inv = invoice(co, sale(100, code="TAX"), customer="26", TxnTaxDetail={"TotalTax": D("8.30")})

    assert amount(inv["TxnTaxDetail"]["TotalTax"]) == D("8.30")
    assert [amount(t["Amount"]) for t in inv["TxnTaxDetail"]["TaxLine"]] == [D("6.04"), D("2.26")]
    assert amount(inv["TotalAmt"]) == D("108.30")


def test_explicit_zero_tax_is_honoured(co):
    inv = invoice(co, sale(100, code="TAX"), TxnTaxDetail={"TotalTax": 0})

    assert inv["TotalAmt"] == 100
    assert inv["TxnTaxDetail"]["TaxLine"][0]["Amount"] == 0


def test_amount_must_equal_qty_times_unit_price_rounded_half_up(co):
    error = fault(invoice, co, sale(1000, qty=7, price=225, code="NON"))
    ok = invoice(co, sale("1861.08", qty="128.35", price="14.50", code="NON"))
    half_cent = fault(invoice, co, sale("1861.07", qty="128.35", price="14.50", code="NON"))

    assert (error.code, error.errors[0].element) == ("6070", "Line.Amount")
    assert error.errors[0].detail == "Amount is not equal to UnitPrice * Qty. Supplied value:1,000"
    assert amount(ok["TotalAmt"]) == D("1861.08")
    assert half_cent.code == "6070"


def test_line_amount_is_required(co):
    error = fault(invoice, co, sale(None, qty=1, price=10))

    assert (error.code, error.errors[0].element) == ("2020", "Line.Amount")


def test_inventory_item_line_needs_a_quantity(co):
    assert fault(invoice, co, sale(275, "5")).code == "6520"
    assert invoice(co, sale(275, "5", qty=1, price=275))["TotalAmt"] == 297  # 275 + 8 % tax


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Line": [sale(10)]}, "2020"),  # no CustomerRef
        ({"CustomerRef": {"value": "25"}, "Line": [sale(10)]}, "610"),  # inactive customer
        ({"CustomerRef": {"value": "404"}, "Line": [sale(10)]}, "610"),
        ({"CustomerRef": {"value": "3"}, "Line": [sale(10, "18")]}, "610"),  # inactive item
        ({"CustomerRef": {"value": "3"}, "Line": [sale(10, "404")]}, "610"),
        ({"CustomerRef": {"value": "3"}}, "2020"),  # no lines
        ({"CustomerRef": {"value": "3"}, "Line": []}, "2020"),
        (
            {
                "CustomerRef": {"value": "3"},
                "Line": [{"DetailType": "SubTotalLineDetail", "Amount": 5, "SubTotalLineDetail": {}}],
            },
            "2020",
        ),
        (
            {
                "CustomerRef": {"value": "3"},
                "Line": [{"Amount": 5, "DetailType": "GroupLineDetail", "GroupLineDetail": {}}],
            },
            "2010",
        ),
        ({"CustomerRef": {"value": "3"}, "Line": [{"Amount": 5}]}, "2020"),  # no DetailType
        ({"CustomerRef": {"value": "3"}, "Line": [sale(10)], "TxnDate": "05/05/2026"}, "2010"),
        ({"CustomerRef": {"value": "3"}, "Line": [sale(10)], "DocNumber": "X" * 22}, "2010"),
        ({"CustomerRef": {"value": "3"}, "Line": [sale(10)], "CurrencyRef": {"value": "EUR"}}, "6000"),
        ({"CustomerRef": {"value": "3"}, "Line": [sale(-10, code="NON")]}, "6000"),  # negative total
        ({"CustomerRef": {"value": "3"}, "Line": [sale(10)], "EmailStatus": "Sent"}, "2010"),
    ],
)
def test_invoice_create_refusals(co, body, code):
    assert fault(accounting.create, co, "Invoice", body, NOW).code == code
    assert list(co.rows("Invoice")) == []


def test_line_without_item_is_documentation_only(co):
    doc_line = {
        "DetailType": "SalesItemLineDetail",
        "Amount": 40,
        "Description": "note",
        "SalesItemLineDetail": {},
    }

    inv = invoice(co, sale(100, code="NON"), doc_line)

    assert inv["Line"][1]["Amount"] == 0
    assert inv["TotalAmt"] == 100


def test_description_and_percent_discount_lines(co):
    inv = invoice(
        co,
        sale(200, code="NON"),
        {"DetailType": "DescriptionOnly", "Description": "Thanks!", "Amount": 99},
        {
            "DetailType": "DiscountLineDetail",
            "Amount": 1,
            "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10},
        },
    )

    description, discount, subtotal = inv["Line"][1], inv["Line"][2], inv["Line"][3]
    assert description == {
        "Id": "2",
        "LineNum": 2,
        "Description": "Thanks!",
        "DetailType": "DescriptionOnly",
        "DescriptionLineDetail": {},
    }
    assert discount["Amount"] == 20
    assert discount["DiscountLineDetail"]["DiscountAccountRef"] == {"value": "86", "name": "Discounts given"}
    assert subtotal["Amount"] == 200
    assert inv["TotalAmt"] == 180


@pytest.mark.parametrize(("after_discount", "total"), [(True, D("97.20")), (False, D("98.00"))])
def test_discount_reduces_the_taxable_base_only_when_tax_applies_after_discount(co, after_discount, total):
    inv = invoice(
        co,
        sale(100, code="TAX"),
        {"DetailType": "DiscountLineDetail", "Amount": 10, "DiscountLineDetail": {"PercentBased": False}},
        ApplyTaxAfterDiscount=after_discount,
    )

    assert amount(inv["TotalAmt"]) == total


def test_negative_discount_is_refused(co):
    line = {"DetailType": "DiscountLineDetail", "Amount": -5, "DiscountLineDetail": {"PercentBased": False}}

    assert fault(invoice, co, sale(100), line).code == "2010"


# --- due date and numbering -------------------------------------------------------------------


def test_due_date_follows_terms(co):
    co.get("Preferences", "1")["SalesFormsPrefs"]["DefaultTerms"] = {"value": "4"}
    base = {"TxnDate": "2026-01-31"}

    customer_terms = invoice(co, sale(10), customer="26", **base)
    explicit_terms = invoice(co, sale(10), customer="26", SalesTermRef={"value": "3"}, **base)
    explicit_date = invoice(co, sale(10), customer="26", DueDate="2026-03-01", **base)
    company_default = invoice(co, sale(10), **base)
    month_end = invoice(co, sale(10), SalesTermRef={"value": "5"}, **base)

    assert (customer_terms["DueDate"], customer_terms["SalesTermRef"]) == (
        "2026-02-15",
        {"value": "4", "name": "Net 15"},
    )
    assert explicit_terms["DueDate"] == "2026-03-02"
    assert explicit_date["DueDate"] == "2026-03-01"
    assert company_default["DueDate"] == "2026-02-15"
    assert "SalesTermRef" not in company_default
    assert month_end["DueDate"] == "2026-02-28"


def test_due_date_defaults_to_net_30_and_moves_with_the_txn_date_on_sparse_update(co):
    inv = invoice(co, TxnDate="2026-01-01")
    moved = accounting.update(
        co, "Invoice", {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "TxnDate": "2026-02-01"}, NOW
    )
    kept = accounting.update(
        co, "Invoice", {"Id": inv["Id"], "SyncToken": "1", "sparse": True, "PrivateNote": "x"}, NOW
    )

    assert inv["DueDate"] == "2026-01-31"
    assert moved["DueDate"] == "2026-03-03"
    assert kept["DueDate"] == "2026-03-03"


def test_doc_numbers_continue_after_the_floor_and_after_higher_custom_numbers(co):
    first, second = invoice(co), invoice(co)
    custom = invoice(co, DocNumber="2000")
    after_custom = invoice(co)
    forced = invoice(co, DocNumber="AUTO_GENERATE")
    memo = credit_memo(co, 5)

    assert [first["DocNumber"], second["DocNumber"]] == ["1038", "1039"]
    assert custom["DocNumber"] == "2000"
    assert after_custom["DocNumber"] == "2001"
    assert forced["DocNumber"] == "2002"
    assert memo["DocNumber"] == "2003"


def test_deleting_the_last_invoice_does_not_reuse_its_number(co):
    inv = invoice(co)
    accounting.delete(co, "Invoice", {"Id": inv["Id"], "SyncToken": "0"}, NOW)

    assert invoice(co)["DocNumber"] == "1039"


def test_custom_transaction_numbers_leave_doc_number_empty_unless_auto_generate():
    co = us_company(custom_numbers=True)

    assert "DocNumber" not in invoice(co)
    assert invoice(co, DocNumber="AUTO_GENERATE")["DocNumber"] == "1038"


def test_duplicate_doc_number_is_refused_unless_allowed(co):
    first = invoice(co, DocNumber="A-1")

    error = fault(invoice, co, DocNumber="A-1")
    credit_memo_may_share_it = credit_memo(co, 5, DocNumber="A-1")
    co.settings["allow_duplicate_doc_number"] = True
    allowed = invoice(co, DocNumber="A-1")
    co.settings["allow_duplicate_doc_number"] = False
    # Documents that already share a number can still be edited as long as it does not change.
    same_again = accounting.update(co, "Invoice", {**first, "PrivateNote": "kept number"}, NOW)
    invoice(co, DocNumber="B-2")
    taken = fault(accounting.update, co, "Invoice", {**allowed, "DocNumber": "B-2"}, NOW)

    assert (error.code, error.errors[0].message) == ("6210", "Duplicate Document Number Error")
    assert f"TxnId={first['Id']}" in error.errors[0].detail
    assert credit_memo_may_share_it["DocNumber"] == "A-1"
    assert allowed["DocNumber"] == "A-1"
    assert same_again["DocNumber"] == "A-1"
    assert taken.code == "6210"


# --- updates ----------------------------------------------------------------------------------


def test_full_update_matches_lines_by_id_and_adds_new_ones(co):
    inv = invoice(co, sale(10, code="NON", Description="a"), sale(20, code="NON", Description="b"))
    body = {
        "Id": inv["Id"],
        "SyncToken": "0",
        "CustomerRef": {"value": "3"},
        "Line": [
            sale(25, code="NON", Id="2", Description="b2"),
            sale(5, code="NON", Description="new"),
            inv["Line"][2],
        ],
    }

    updated = accounting.update(co, "Invoice", body, NOW)

    assert [(ln.get("Id"), ln.get("LineNum"), ln.get("Description")) for ln in updated["Line"]] == [
        ("2", 1, "b2"),
        ("3", 2, "new"),
        (None, None, None),
    ]
    assert updated["TotalAmt"] == 30
    assert updated["SyncToken"] == "1"
    assert updated["DocNumber"] == inv["DocNumber"]
    assert updated["TxnDate"] == inv["TxnDate"]
    assert changes(co)[-1] == ("Invoice", inv["Id"], "Update")


def test_full_update_clears_what_it_leaves_out(co):
    inv = invoice(co, PrivateNote="internal")

    error = fault(
        accounting.update,
        co,
        "Invoice",
        {"Id": inv["Id"], "SyncToken": "0", "CustomerRef": {"value": "3"}},
        NOW,
    )
    updated = accounting.update(
        co,
        "Invoice",
        {"Id": inv["Id"], "SyncToken": "0", "CustomerRef": {"value": "3"}, "Line": [sale(7)]},
        NOW,
    )

    assert error.code == "2020"
    assert "PrivateNote" not in updated


def test_sparse_update_keeps_lines_unless_line_is_sent(co):
    inv = invoice(co, sale(10, code="NON"), sale(20, code="NON"))

    kept = accounting.update(
        co, "Invoice", {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "hello"}, NOW
    )
    replaced = accounting.update(
        co, "Invoice", {"Id": inv["Id"], "SyncToken": "1", "sparse": True, "Line": [sale(7, code="NON")]}, NOW
    )

    assert kept["PrivateNote"] == "hello"
    assert [ln.get("Amount") for ln in kept["Line"]] == [10, 20, 30]
    assert [ln.get("Amount") for ln in replaced["Line"]] == [7, 7]
    assert replaced["Line"][0]["Id"] == "3"
    assert replaced["PrivateNote"] == "hello"
    assert replaced["TotalAmt"] == replaced["Balance"] == 7


def test_sparse_update_with_lines_recomputes_tax_but_without_lines_keeps_an_override(co):
    inv = invoice(co, sale(100, code="TAX"), TxnTaxDetail={"TotalTax": D("7.77")})

    kept = accounting.update(
        co, "Invoice", {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "x"}, NOW
    )
    recomputed = accounting.update(
        co,
        "Invoice",
        {"Id": inv["Id"], "SyncToken": "1", "sparse": True, "Line": [sale(100, code="TAX")]},
        NOW,
    )

    assert amount(kept["TotalAmt"]) == D("107.77")
    assert recomputed["TotalAmt"] == 108


def test_update_with_a_stale_sync_token_is_refused(co):
    inv = invoice(co)
    accounting.update(
        co, "Invoice", {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "1"}, NOW
    )

    error = fault(
        accounting.update,
        co,
        "Invoice",
        {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "2"},
        NOW,
    )

    assert error.code == "5010"


def test_round_trip_of_a_read_invoice_is_accepted_unchanged(co):
    inv = invoice(co, sale("33.33", qty=1, price="33.33", code="TAX"), sale(10, "1"))

    again = accounting.update(co, "Invoice", read(co, "Invoice", inv["Id"]), NOW)

    for key in ("Line", "TxnTaxDetail", "TotalAmt", "Balance", "DocNumber", "DueDate", "CustomerRef"):
        assert again[key] == inv[key], key
    assert again["SyncToken"] == "1"


# --- customer balances, delete, void ----------------------------------------------------------


def test_customer_balances_follow_invoices_of_a_sub_customer(co):
    sync_before = co.get("Customer", "8")["SyncToken"]

    inv = invoice(co, sale("477.50", code="NON"), customer="8")
    assert balance(co, "8") == (D("477.50"), D("477.50"))
    assert balance(co, "7") == (D(0), D("477.50"))

    accounting.update(
        co,
        "Invoice",
        {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "Line": [sale(400, code="NON")]},
        NOW,
    )
    assert balance(co, "8") == (D(400), D(400))
    assert balance(co, "7") == (D(0), D(400))

    accounting.delete(co, "Invoice", {"Id": inv["Id"], "SyncToken": "1"}, NOW)
    assert balance(co, "8") == (D(0), D(0))
    assert balance(co, "7") == (D(0), D(0))
    assert co.get("Customer", "8")["SyncToken"] == sync_before
    assert not [c for c in co.journal if c.entity == "Customer"]


def test_moving_an_invoice_to_another_customer_moves_the_balance(co):
    inv = invoice(co, sale(50, code="NON"), customer="3")

    accounting.update(
        co,
        "Invoice",
        {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "CustomerRef": {"value": "24"}},
        NOW,
    )

    assert balance(co, "3") == (D(0), D(0))
    assert balance(co, "24") == (D(50), D(50))


def test_delete_hard_deletes_with_a_tombstone(co):
    inv = invoice(co)

    answer = accounting.delete(co, "Invoice", {"Id": inv["Id"], "SyncToken": "0"}, NOW)

    assert answer == {"Id": inv["Id"], "status": "Deleted", "domain": "QBO"}
    assert co.get("Invoice", inv["Id"]) is None
    assert co.tombstones["Invoice"][inv["Id"]]["status"] == "Deleted"
    assert changes(co)[-1] == ("Invoice", inv["Id"], "Delete")
    assert fault(read, co, "Invoice", inv["Id"]).code == "610"


def test_delete_with_a_stale_token_is_refused(co):
    inv = invoice(co)

    assert fault(accounting.delete, co, "Invoice", {"Id": inv["Id"], "SyncToken": "7"}, NOW).code == "5010"
    assert co.get("Invoice", inv["Id"]) is not None


def test_void_keeps_the_invoice_with_zero_amounts(co):
    inv = invoice(co, sale(100, code="TAX"), PrivateNote="Job 12")
    assert balance(co, "3") == (D(108), D(108))

    voided = accounting.void(co, "Invoice", {"Id": inv["Id"], "SyncToken": "0"}, NOW)

    assert (voided["TotalAmt"], voided["Balance"], voided["SyncToken"]) == (0, 0, "1")
    assert [ln["Amount"] for ln in voided["Line"]] == [0, 0]
    assert voided["TxnTaxDetail"]["TotalTax"] == 0
    assert voided["PrivateNote"] == "Job 12 Voided"
    assert voided["DocNumber"] == inv["DocNumber"]
    assert changes(co)[-1] == ("Invoice", inv["Id"], "Void")
    assert balance(co, "3") == (D(0), D(0))

    again = accounting.void(co, "Invoice", {"Id": inv["Id"], "SyncToken": "1"}, NOW)
    assert again["SyncToken"] == "1"
    assert again["PrivateNote"] == "Job 12 Voided"

    error = fault(
        accounting.update,
        co,
        "Invoice",
        {"Id": inv["Id"], "SyncToken": "1", "sparse": True, "PrivateNote": "x"},
        NOW,
    )
    assert error.code == "6000"

    accounting.delete(co, "Invoice", {"Id": inv["Id"], "SyncToken": "1"}, NOW)
    assert balance(co, "3") == (D(0), D(0))


def test_an_invoice_with_a_payment_cannot_be_deleted_voided_or_cut_below_the_payment(co):
    inv = invoice(co, sale(100, code="NON"))
    payment(co, 60, pay_line(60, inv))

    assert fault(accounting.delete, co, "Invoice", {"Id": inv["Id"], "SyncToken": "1"}, NOW).code == "6000"
    assert fault(accounting.void, co, "Invoice", {"Id": inv["Id"], "SyncToken": "1"}, NOW).code == "6000"
    error = fault(
        accounting.update,
        co,
        "Invoice",
        {"Id": inv["Id"], "SyncToken": "1", "sparse": True, "Line": [sale(50, code="NON")]},
        NOW,
    )
    assert error.code == "6000"

    updated = accounting.update(
        co,
        "Invoice",
        {"Id": inv["Id"], "SyncToken": "1", "sparse": True, "Line": [sale(80, code="NON")]},
        NOW,
    )
    assert (updated["TotalAmt"], updated["Balance"]) == (80, 20)
    assert updated["LinkedTxn"] == inv["LinkedTxn"] + [{"TxnId": "1", "TxnType": "Payment"}]
    assert balance(co, "3") == (D(20), D(20))


# --- payments ---------------------------------------------------------------------------------


def name_values(*pairs: tuple[str, str]) -> dict[str, Any]:
    """QBO's JAXB NameValue list, written out in full as Intuit's Payment examples show it."""
    return {
        "any": [
            {
                "name": "{http://schema.intuit.com/finance/v3}NameValue",
                "declaredType": "com.intuit.schema.finance.v3.NameValue",
                "scope": "javax.xml.bind.JAXBElement$GlobalScope",
                "value": {"Name": name, "Value": value},
                "nil": False,
                "globalScope": True,
                "typeSubstituted": False,
            }
            for name, value in pairs
        ]
    }


def test_payment_applies_to_an_invoice_and_links_both_sides(co):
    inv = invoice(co, sale(100, code="NON"))

    pay = payment(co, 65, pay_line(55, inv), PaymentMethodRef={"value": "1"}, PaymentRefNum="1055")

    assert (pay["TotalAmt"], pay["UnappliedAmt"]) == (65, 10)
    assert pay["Line"] == [
        {
            "Amount": 55,
            "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}],
            "LineEx": name_values(
                ("txnId", inv["Id"]), ("txnOpenBalance", "100.00"), ("txnReferenceNumber", inv["DocNumber"])
            ),
        }
    ]
    assert pay["DepositToAccountRef"] == {"value": "4", "name": "Undeposited Funds"}
    assert pay["PaymentMethodRef"] == {"value": "1", "name": "Cash"}
    assert pay["TxnDate"] == LOCAL_TODAY
    assert pay["CustomerRef"] == {"value": "3", "name": "Cool Cars"}
    assert pay["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    after = read(co, "Invoice", inv["Id"])
    assert (after["Balance"], after["TotalAmt"], after["SyncToken"]) == (45, 100, "1")
    assert after["LinkedTxn"] == [{"TxnId": pay["Id"], "TxnType": "Payment"}]
    assert changes(co)[-2:] == [("Payment", pay["Id"], "Create"), ("Invoice", inv["Id"], "Update")]
    assert balance(co, "3") == (D(35), D(35))  # 45 open on the invoice, 10 unapplied cash


def test_a_payment_makes_the_invoice_token_stale_for_a_client_holding_the_old_one(co):
    inv = invoice(co, sale(100, code="NON"))
    payment(co, 40, pay_line(40, inv))

    error = fault(accounting.update, co, "Invoice", {**inv, "PrivateNote": "edited"}, NOW)

    assert error.code == "5010"


def test_payment_over_application_is_refused_and_changes_nothing(co):
    inv = invoice(co, sale(100, code="NON"))

    error = fault(payment, co, 150, pay_line(150, inv))

    assert error.code == "6000"
    assert "open balance" in error.errors[0].detail
    assert list(co.rows("Payment")) == []
    assert read(co, "Invoice", inv["Id"])["Balance"] == 100
    assert read(co, "Invoice", inv["Id"])["SyncToken"] == "0"
    assert balance(co, "3") == (D(100), D(100))


@pytest.mark.parametrize(
    ("total", "lines_amount", "code"),
    [(D(50), D(60), "6000"), (D(-1), None, "2010")],
)
def test_payment_amount_refusals(co, total, lines_amount, code):
    inv = invoice(co, sale(100, code="NON"))
    lines = [pay_line(lines_amount, inv)] if lines_amount is not None else []

    assert fault(payment, co, total, *lines).code == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"TotalAmt": 10}, "2020"),
        ({"CustomerRef": {"value": "3"}}, "2020"),
        ({"CustomerRef": {"value": "3"}, "TotalAmt": 10, "Line": [{"Amount": 10}]}, "2020"),
        (
            {
                "CustomerRef": {"value": "3"},
                "TotalAmt": 10,
                "Line": [{"Amount": 10, "LinkedTxn": [{"TxnId": "404", "TxnType": "Invoice"}]}],
            },
            "610",
        ),
        (
            {
                "CustomerRef": {"value": "3"},
                "TotalAmt": 10,
                "Line": [{"Amount": 10, "LinkedTxn": [{"TxnId": "1", "TxnType": "Bill"}]}],
            },
            "2010",
        ),
        ({"CustomerRef": {"value": "3"}, "TotalAmt": 10, "DepositToAccountRef": {"value": "1"}}, "6000"),
        ({"CustomerRef": {"value": "3"}, "TotalAmt": 10, "DepositToAccountRef": {"value": "99"}}, "610"),
        ({"CustomerRef": {"value": "3"}, "TotalAmt": 10, "PaymentMethodRef": {"value": "9"}}, "610"),
    ],
)
def test_payment_create_refusals(co, body, code):
    assert fault(accounting.create, co, "Payment", body, NOW).code == code


def test_payment_cannot_use_an_invoice_created_earlier_in_the_same_batch(co):
    inv = invoice(co, sale(100, code="NON"))
    co.settings["_batch_hidden"] = {("Invoice", inv["Id"])}

    assert fault(payment, co, 10, pay_line(10, inv)).code == "610"


def test_payment_without_lines_is_wholly_unapplied_and_may_deposit_to_a_bank(co):
    pay = payment(co, 25, DepositToAccountRef={"value": "35"})

    assert (pay["UnappliedAmt"], pay["DepositToAccountRef"]) == (25, {"value": "35", "name": "Checking"})
    assert balance(co, "3") == (D(-25), D(-25))


def test_payment_applies_only_to_its_customer_or_sub_customers(co):
    other = invoice(co, sale(100, code="NON"), customer="24")
    job = invoice(co, sale(100, code="NON"), customer="8")

    error = fault(payment, co, 10, pay_line(10, other))
    paid = payment(co, 10, pay_line(10, job), customer="7")

    assert error.code == "6000"
    assert paid["UnappliedAmt"] == 0
    assert balance(co, "8") == (D(90), D(90))
    assert balance(co, "7") == (D(0), D(90))


def test_payment_update_reverses_and_reapplies(co):
    first = invoice(co, sale(100, code="NON"))
    second = invoice(co, sale(100, code="NON"))
    pay = payment(co, 55, pay_line(55, first))

    moved = accounting.update(
        co,
        "Payment",
        {"Id": pay["Id"], "SyncToken": "0", "sparse": True, "Line": [pay_line(30, second)]},
        NOW,
    )

    first_after, second_after = read(co, "Invoice", first["Id"]), read(co, "Invoice", second["Id"])
    assert moved["UnappliedAmt"] == 25
    assert (first_after["Balance"], first_after["LinkedTxn"], first_after["SyncToken"]) == (100, [], "2")
    assert (second_after["Balance"], second_after["SyncToken"]) == (70, "1")
    assert second_after["LinkedTxn"] == [{"TxnId": pay["Id"], "TxnType": "Payment"}]
    assert balance(co, "3") == (D(145), D(145))


def test_payment_update_may_reapply_up_to_its_own_previous_amount(co):
    inv = invoice(co, sale(100, code="NON"))
    pay = payment(co, 100, pay_line(100, inv))

    same = accounting.update(co, "Payment", {**pay, "PrivateNote": "full update"}, NOW)

    assert same["UnappliedAmt"] == 0
    assert read(co, "Invoice", inv["Id"])["SyncToken"] == "1"  # untouched: the allocation did not change


def test_payment_delete_reverses_its_allocations(co):
    inv = invoice(co, sale(100, code="NON"))
    pay = payment(co, 60, pay_line(60, inv))

    answer = accounting.delete(co, "Payment", {"Id": pay["Id"], "SyncToken": "0"}, NOW)

    after = read(co, "Invoice", inv["Id"])
    assert answer["status"] == "Deleted"
    assert (after["Balance"], after["LinkedTxn"], after["SyncToken"]) == (100, [], "2")
    assert co.tombstones["Payment"][pay["Id"]]["status"] == "Deleted"
    assert balance(co, "3") == (D(100), D(100))


def test_payment_void_zeroes_it_and_reverses_its_allocations(co):
    inv = invoice(co, sale(100, code="NON"))
    pay = payment(co, 70, pay_line(60, inv))

    voided = accounting.void(co, "Payment", {"Id": pay["Id"], "SyncToken": "0", "sparse": True}, NOW)

    assert (voided["TotalAmt"], voided["UnappliedAmt"], voided["Line"][0]["Amount"]) == (0, 0, 0)
    assert voided["PrivateNote"] == "Voided"
    assert ("Payment", pay["Id"], "Void") in changes(co)
    after = read(co, "Invoice", inv["Id"])
    assert (after["Balance"], after["LinkedTxn"]) == (100, [])
    assert balance(co, "3") == (D(100), D(100))
    accounting.delete(co, "Invoice", {"Id": inv["Id"], "SyncToken": after["SyncToken"]}, NOW)


# --- credit memos and credit application ------------------------------------------------------


def test_credit_memo_totals_tax_and_remaining_credit(co):
    memo = accounting.create(
        co, "CreditMemo", {"CustomerRef": {"value": "24"}, "Line": [sale(50, code="TAX")]}, NOW
    )

    assert (memo["TotalAmt"], memo["RemainingCredit"], memo["Balance"]) == (54, 54, 54)
    assert memo["TxnTaxDetail"]["TotalTax"] == 4
    assert "DueDate" not in memo
    assert balance(co, "24") == (D(-54), D(-54))

    accounting.delete(co, "CreditMemo", {"Id": memo["Id"], "SyncToken": "0"}, NOW)
    assert balance(co, "24") == (D(0), D(0))
    assert co.get("CreditMemo", memo["Id"]) is None


def test_credit_is_applied_by_a_zero_dollar_payment():
    co = us_company(auto_apply=False)
    memo = credit_memo(co, 30)
    inv = invoice(co, sale(100, code="NON"))
    assert balance(co, "3") == (D(70), D(70))

    pay = payment(co, 0, pay_line(30, inv), pay_line(30, memo, "CreditMemo"))

    memo_after, inv_after = read(co, "CreditMemo", memo["Id"]), read(co, "Invoice", inv["Id"])
    assert pay["UnappliedAmt"] == 0
    assert (memo_after["RemainingCredit"], memo_after["Balance"], memo_after["SyncToken"]) == (0, 0, "1")
    assert memo_after["LinkedTxn"] == [{"TxnId": pay["Id"], "TxnType": "Payment"}]
    assert (inv_after["Balance"], inv_after["SyncToken"]) == (70, "1")
    assert balance(co, "3") == (D(70), D(70))


def test_credit_beyond_the_remaining_credit_or_the_invoices_paid_is_refused():
    co = us_company(auto_apply=False)
    memo = credit_memo(co, 30)
    inv = invoice(co, sale(100, code="NON"))

    too_much_credit = fault(payment, co, 0, pay_line(40, inv), pay_line(40, memo, "CreditMemo"))
    credit_without_invoice = fault(payment, co, 0, pay_line(20, memo, "CreditMemo"))

    assert too_much_credit.code == "6000"
    assert "remaining credit" in too_much_credit.errors[0].detail
    assert credit_without_invoice.code == "6000"


def test_applied_credit_memo_cannot_be_deleted_but_an_open_one_can_be_voided():
    co = us_company(auto_apply=False)
    applied = credit_memo(co, 30)
    open_memo = credit_memo(co, 20)
    inv = invoice(co, sale(100, code="NON"))
    payment(co, 0, pay_line(30, inv), pay_line(30, applied, "CreditMemo"))

    error = fault(accounting.delete, co, "CreditMemo", {"Id": applied["Id"], "SyncToken": "1"}, NOW)
    voided = accounting.void(co, "CreditMemo", {"Id": open_memo["Id"], "SyncToken": "0"}, NOW)

    assert error.code == "6000"
    assert (voided["TotalAmt"], voided["RemainingCredit"]) == (0, 0)
    assert balance(co, "3") == (D(70), D(70))


def test_auto_apply_credit_consumes_open_credits_when_an_invoice_is_created(co):
    older = credit_memo(co, 30, TxnDate="2026-01-01")
    newer = credit_memo(co, 100, TxnDate="2026-02-01")

    inv = invoice(co, sale(100, code="NON"))

    assert (inv["Balance"], inv["SyncToken"]) == (0, "0")
    [auto] = list(co.rows("Payment"))
    assert inv["LinkedTxn"] == [{"TxnId": auto["Id"], "TxnType": "Payment"}]
    assert (auto["TotalAmt"], auto["UnappliedAmt"], auto["PrivateNote"]) == (
        0,
        0,
        "Automatically applied credit",
    )
    assert [ln["Amount"] for ln in auto["Line"]] == [100, 30, 70]
    assert read(co, "CreditMemo", older["Id"])["RemainingCredit"] == 0
    assert read(co, "CreditMemo", newer["Id"])["RemainingCredit"] == 30
    assert balance(co, "3") == (D(-30), D(-30))
    assert [c[:2] for c in changes(co)[-4:]] == [
        ("Invoice", inv["Id"]),
        ("Payment", auto["Id"]),
        ("CreditMemo", older["Id"]),
        ("CreditMemo", newer["Id"]),
    ]


def test_auto_apply_credit_can_be_switched_off():
    co = us_company(auto_apply=False)
    credit_memo(co, 30)

    inv = invoice(co, sale(100, code="NON"))

    assert (inv["Balance"], inv["LinkedTxn"]) == (100, [])
    assert list(co.rows("Payment")) == []


# --- journal entries --------------------------------------------------------------------------


def je_line(
    amount: Any, posting: str, account: str, entity: tuple[str, str] | None = None, **extra: Any
) -> Entity:
    detail: Entity = {"PostingType": posting, "AccountRef": {"value": account}}
    if entity is not None:
        detail["Entity"] = {"Type": entity[0], "EntityRef": {"value": entity[1]}}
    return {
        "DetailType": "JournalEntryLineDetail",
        "Amount": D(str(amount)),
        "JournalEntryLineDetail": detail,
        **extra,
    }


def test_balanced_journal_entry_against_a_customer(co):
    je = accounting.create(
        co,
        "JournalEntry",
        {
            "DocNumber": "D-1",
            "Line": [
                je_line("120.50", "Debit", "84", ("Customer", "24")),
                je_line("120.50", "Credit", "1", Description="daily summary"),
            ],
        },
        NOW,
    )

    assert amount(je["TotalAmt"]) == D("120.50")
    assert [ln["Id"] for ln in je["Line"]] == ["0", "1"]
    assert je["Line"][0]["JournalEntryLineDetail"]["Entity"] == {
        "Type": "Customer",
        "EntityRef": {"value": "24", "name": "Sonnenschein Family Store"},
    }
    assert je["Line"][1]["JournalEntryLineDetail"]["AccountRef"] == {"value": "1", "name": "Services"}
    assert je["TxnDate"] == LOCAL_TODAY
    assert balance(co, "24") == (D("120.50"), D("120.50"))

    accounting.delete(co, "JournalEntry", {"Id": je["Id"], "SyncToken": "0"}, NOW)
    assert balance(co, "24") == (D(0), D(0))
    assert co.tombstones["JournalEntry"][je["Id"]]["status"] == "Deleted"


@pytest.mark.parametrize(
    ("lines", "code", "detail"),
    [
        ([je_line(100, "Debit", "35"), je_line(90, "Credit", "1")], "6000", "debits"),
        ([je_line(100, "Debit", "84"), je_line(100, "Credit", "1")], "6000", "Accounts Receivable"),
        ([je_line(100, "Debit", "84", ("Vendor", "41")), je_line(100, "Credit", "1")], "6000", "customer"),
        ([je_line(100, "Debit", "35"), je_line(100, "Credit", "33")], "6000", "Accounts Payable"),
        ([je_line(100, "Debit", "99"), je_line(100, "Credit", "1")], "610", ""),
        ([je_line(100, "Debit", "404"), je_line(100, "Credit", "1")], "610", ""),
        ([je_line(100, "Both", "35"), je_line(100, "Credit", "1")], "2010", ""),
        ([je_line(-100, "Debit", "35"), je_line(-100, "Credit", "1")], "2010", ""),
        ([], "2020", ""),
    ],
)
def test_journal_entry_refusals(co, lines, code, detail):
    error = fault(accounting.create, co, "JournalEntry", {"Line": lines}, NOW)

    assert error.code == code
    assert detail in error.errors[0].detail


def test_journal_entry_with_a_vendor_on_accounts_payable_and_sparse_update(co):
    je = accounting.create(
        co,
        "JournalEntry",
        {"Line": [je_line(10, "Debit", "35"), je_line(10, "Credit", "33", ("Vendor", "41"))]},
        NOW,
    )

    noted = accounting.update(
        co, "JournalEntry", {"Id": je["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "memo"}, NOW
    )

    assert (noted["TotalAmt"], noted["PrivateNote"], len(noted["Line"])) == (10, "memo", 2)


def test_journal_entry_update_moves_the_customer_balance_and_void_is_unsupported(co):
    je = accounting.create(
        co,
        "JournalEntry",
        {"Line": [je_line(10, "Debit", "84", ("Customer", "3")), je_line(10, "Credit", "1")]},
        NOW,
    )

    accounting.update(
        co,
        "JournalEntry",
        {
            "Id": je["Id"],
            "SyncToken": "0",
            "Line": [je_line(25, "Credit", "84", ("Customer", "3")), je_line(25, "Debit", "35")],
        },
        NOW,
    )

    assert balance(co, "3") == (D(-25), D(-25))
    assert fault(accounting.void, co, "JournalEntry", {"Id": je["Id"], "SyncToken": "1"}, NOW).code == "500"


# --- non-US tax -------------------------------------------------------------------------------


def vat_invoice(co: Company, *lines: Entity, **fields: Any) -> Entity:
    return accounting.create(
        co, "Invoice", {"CustomerRef": {"value": "1"}, "Line": list(lines), **fields}, NOW
    )


def test_vat_company_needs_a_tax_code_on_every_sales_line():
    co = vat_company()

    error = fault(vat_invoice, co, sale(100, "1", code="10"), sale(100, "1"))

    assert error.code == "6000"
    assert "VAT rate" in error.errors[0].detail
    assert fault(vat_invoice, co, sale(100, "1", code="404")).code == "610"
    assert fault(vat_invoice, co, sale(100, "1", code="13")).code == "610"  # inactive code


def test_vat_is_rounded_per_line():
    co = vat_company()

    inv = vat_invoice(co, *[sale("33.33", "1", code="10") for _ in range(3)])

    assert amount(inv["TxnTaxDetail"]["TotalTax"]) == D("20.01")  # 3 x 6.67, not 20.00
    assert amount(inv["TotalAmt"]) == D("120.00")
    assert inv["GlobalTaxCalculation"] == "TaxExcluded"
    assert inv["CurrencyRef"] == {"value": "GBP", "name": "British Pound Sterling"}
    assert "TxnTaxCodeRef" not in inv["TxnTaxDetail"]
    assert inv["TxnTaxDetail"]["TaxLine"][0]["TaxLineDetail"]["TaxRateRef"] == {"value": "1"}


def test_vat_gives_one_tax_line_per_rate():
    co = vat_company()

    inv = vat_invoice(co, sale(100, "1", code="10"), sale(100, "1", code="12"), sale(40, "1", code="11"))

    lines = inv["TxnTaxDetail"]["TaxLine"]
    assert [
        (t["TaxLineDetail"]["TaxPercent"], t["Amount"], t["TaxLineDetail"]["NetAmountTaxable"]) for t in lines
    ] == [(20, 20, 100), (5, 5, 100), (0, 0, 40)]
    assert inv["TotalAmt"] == 265


def test_vat_tax_inclusive_amounts():
    co = vat_company()

    inv = vat_invoice(co, sale(100, "1", qty=1, price=100, code="10"), GlobalTaxCalculation="TaxInclusive")

    line = inv["Line"][0]
    assert amount(line["Amount"]) == D("83.33")
    assert line["SalesItemLineDetail"]["TaxInclusiveAmt"] == 100
    assert amount(inv["TxnTaxDetail"]["TotalTax"]) == D("16.67")
    assert inv["TotalAmt"] == 100
    assert amount(inv["Line"][1]["Amount"]) == D("83.33")

    again = accounting.update(co, "Invoice", read(co, "Invoice", inv["Id"]), NOW)
    assert (again["TotalAmt"], again["Line"][0]["Amount"]) == (inv["TotalAmt"], inv["Line"][0]["Amount"])


def test_vat_explicit_total_tax_is_honoured():
    co = vat_company()

    inv = vat_invoice(co, sale(100, "1", code="10"), TxnTaxDetail={"TotalTax": D("19.99")})

    assert amount(inv["TotalAmt"]) == D("119.99")


# --- non-US tax per rate (TxnTaxDetail.TaxLine) -----------------------------------------------


def ca_company() -> Company:
    """The shape of the CA seed: GST and HST owed to the Canada Revenue Agency (1), PST BC to the
    province (2); codes 2 GST, 3 HST ON and 4 GST/PST BC (a group of two rates)."""
    co = _company_abroad("9341000000000003", "CA", "Maple Ltd", "Maple", "CAD")
    for rate_id, name, percent, agency in [
        ("1", "GST", 5, "1"),
        ("2", "HST ON", 13, "1"),
        ("3", "PST BC", 7, "2"),
    ]:
        _add(co, "TaxRate", rate_id, Name=name, RateValue=percent, AgencyRef={"value": agency}, Active=True)
    _add(co, "TaxRate", "9", Name="Unused", RateValue=9, Active=True)
    for code_id, name, rates in [
        ("2", "GST", ["1"]),
        ("3", "HST ON", ["2"]),
        ("4", "GST/PST BC", ["1", "3"]),
    ]:
        details = [{"TaxRateRef": {"value": r}, "TaxOrder": 0} for r in rates]
        _add(co, "TaxCode", code_id, Name=name, Active=True, SalesTaxRateList={"TaxRateDetail": details})
    return co


def tax_line(rate: str, amount: Any, **detail: Any) -> Entity:
    return {
        "Amount": D(str(amount)),
        "DetailType": "TaxLineDetail",
        "TaxLineDetail": {"TaxRateRef": {"value": rate}, **detail},
    }


def ca_invoice(
    co: Company, *lines: Entity, tax: Entity | None = None, entity: str = "Invoice", **fields: Any
) -> Entity:
    body: Entity = {"CustomerRef": {"value": "1"}, "Line": list(lines), **fields}
    if tax is not None:
        body["TxnTaxDetail"] = tax
    return accounting.create(co, entity, body, NOW)


def per_rate(doc: Entity) -> list[tuple[str, Decimal]]:
    return [
        (t["TaxLineDetail"]["TaxRateRef"]["value"], amount(t["Amount"]))
        for t in doc["TxnTaxDetail"]["TaxLine"]
    ]


def test_a_bare_total_tax_is_prorated_across_rates_and_agencies():
    # The measured defect: an HST line next to a GST/PST BC credit, the app's tax being 130 HST,
    # -15 GST, -21 PST.  A TotalTax alone is shared in proportion to QBO's own amounts.
    co = ca_company()

    inv = ca_invoice(co, sale(1000, "1", code="3"), sale(-300, "1", code="4"), tax={"TotalTax": D(94)})

    assert per_rate(inv) == [("2", D("73.62")), ("1", D("8.49")), ("3", D("11.89"))]
    assert inv["TotalAmt"] == 794


@pytest.mark.parametrize("entity", ["Invoice", "CreditMemo"])
def test_sent_tax_lines_are_the_tax_of_each_rate_exactly(entity):
    co = ca_company()
    sent = {"TotalTax": D(94), "TaxLine": [tax_line("2", 130), tax_line("1", -15), tax_line("3", -21)]}

    doc = ca_invoice(co, sale(1000, "1", code="3"), sale(-300, "1", code="4"), tax=sent, entity=entity)

    assert per_rate(doc) == [("2", D(130)), ("1", D(-15)), ("3", D(-21))]
    assert (doc["TxnTaxDetail"]["TotalTax"], doc["TotalAmt"]) == (94, 794)
    detail = doc["TxnTaxDetail"]["TaxLine"][1]
    assert detail["DetailType"] == "TaxLineDetail"
    assert detail["TaxLineDetail"] == {
        "TaxRateRef": {"value": "1"},
        "PercentBased": True,
        "TaxPercent": 5,
        "NetAmountTaxable": -300,
    }
    assert must_get(co, entity, doc["Id"])["TxnTaxDetail"] == doc["TxnTaxDetail"]


def test_rates_without_a_sent_tax_line_keep_their_computed_tax():
    co = ca_company()

    inv = ca_invoice(
        co, sale("100.10", "1", code="3"), sale(100, "1", code="4"), tax={"TaxLine": [tax_line("2", "12.99")]}
    )

    assert per_rate(inv) == [("2", D("12.99")), ("1", D("5.00")), ("3", D("7.00"))]
    assert amount(inv["TxnTaxDetail"]["TotalTax"]) == D("24.99")
    assert amount(inv["TotalAmt"]) == D("225.09")


def test_a_sent_tax_line_keeps_its_net_and_the_rate_keeps_its_own_percent():
    co = ca_company()
    sent = [
        tax_line("1", "4.995", NetAmountTaxable=D("99.90"), TaxPercent=D(99), PercentBased=False),
        tax_line("3", 7, OverrideDeltaAmount=D(1), TaxInclusiveAmount=D(2)),
    ]

    inv = ca_invoice(co, sale(100, "1", code="4"), tax={"TaxLine": sent})

    gst, pst = (t["TaxLineDetail"] for t in inv["TxnTaxDetail"]["TaxLine"])
    assert per_rate(inv) == [("1", D("5.00")), ("3", D(7))]  # rounded half up to the cent
    assert (amount(gst["NetAmountTaxable"]), gst["TaxPercent"], gst["PercentBased"]) == (D("99.90"), 5, True)
    assert pst == {
        "TaxRateRef": {"value": "3"},
        "PercentBased": True,
        "TaxPercent": 7,
        "NetAmountTaxable": 100,
    }


def test_with_tax_lines_sent_a_contradicting_total_tax_is_ignored():
    co = ca_company()

    inv = ca_invoice(
        co, sale(100, "1", code="2"), tax={"TotalTax": D(99), "TaxLine": [tax_line("1", "4.99")]}
    )

    assert amount(inv["TxnTaxDetail"]["TotalTax"]) == D("4.99")
    assert amount(inv["TotalAmt"]) == D("104.99")


def test_an_empty_tax_line_list_leaves_the_total_tax_to_be_prorated_as_before():
    co = ca_company()

    inv = ca_invoice(
        co, sale(1000, "1", code="3"), sale(-300, "1", code="4"), tax={"TotalTax": D(94), "TaxLine": []}
    )

    assert per_rate(inv) == [("2", D("73.62")), ("1", D("8.49")), ("3", D("11.89"))]


def test_tax_inclusive_lines_keep_their_nets_under_sent_tax_lines():
    co = ca_company()

    inv = ca_invoice(
        co,
        sale(113, "1", code="3"),
        tax={"TaxLine": [tax_line("2", "12.99")]},
        GlobalTaxCalculation="TaxInclusive",
    )

    assert amount(inv["Line"][0]["Amount"]) == D(100)  # 113 / 1.13
    assert per_rate(inv) == [("2", D("12.99"))]
    assert amount(inv["TotalAmt"]) == D("112.99")


def test_a_sparse_update_without_lines_keeps_the_sent_tax_of_each_rate():
    co = ca_company()
    inv = ca_invoice(
        co,
        sale(1000, "1", code="3"),
        sale(-300, "1", code="4"),
        tax={"TaxLine": [tax_line("2", 130), tax_line("1", -15), tax_line("3", -21)]},
    )

    kept = accounting.update(
        co, "Invoice", {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "x"}, NOW
    )

    assert per_rate(kept) == [("2", D(130)), ("1", D(-15)), ("3", D(-21))]
    assert kept["TotalAmt"] == 794


def test_tax_lines_cannot_make_the_total_negative():
    co = ca_company()

    error = fault(ca_invoice, co, sale(10, "1", code="2"), tax={"TaxLine": [tax_line("1", -11)]})

    assert error.code == "6000"
    assert list(co.rows("Invoice")) == []


@pytest.mark.parametrize(
    ("sent", "code", "element", "text"),
    [
        (
            [tax_line("3", 7)],
            "6000",
            "TxnTaxDetail.TaxLine.TaxLineDetail.TaxRateRef",
            "not a rate of a tax code",
        ),
        (
            [tax_line("9", 7)],
            "6000",
            "TxnTaxDetail.TaxLine.TaxLineDetail.TaxRateRef",
            "not a rate of a tax code",
        ),
        ([tax_line("404", 7)], "610", "TxnTaxDetail.TaxLine.TaxLineDetail.TaxRateRef", "TaxRate Id 404"),
        (
            [tax_line("1", 2), tax_line("1", 3)],
            "6000",
            "TxnTaxDetail.TaxLine.TaxLineDetail.TaxRateRef",
            "more than one",
        ),
        (
            [{"Amount": 5, "TaxLineDetail": {"TaxRateRef": {"value": "1"}}}],
            "6000",
            "TxnTaxDetail.TaxLine",
            "TxnTaxDetail.TaxLine.DetailTypeEnum is missing in the request",
        ),
        (
            [{**tax_line("1", 5), "DetailType": "SalesItemLineDetail"}],
            "2010",
            "TxnTaxDetail.TaxLine.DetailType",
            "",
        ),
        ([{"Amount": 5, "DetailType": "TaxLineDetail"}], "2020", "TxnTaxDetail.TaxLine.TaxLineDetail", ""),
        (
            [tax_line("1", 5) | {"TaxLineDetail": {}}],
            "2020",
            "TxnTaxDetail.TaxLine.TaxLineDetail.TaxRateRef",
            "",
        ),
        (
            [{k: v for k, v in tax_line("1", 5).items() if k != "Amount"}],
            "2020",
            "TxnTaxDetail.TaxLine.Amount",
            "",
        ),
        ({"Amount": 5}, "2010", "TxnTaxDetail.TaxLine", "must be an array"),
        (["5"], "2010", "TxnTaxDetail.TaxLine", "must be an object"),
    ],
)
def test_tax_line_refusals_change_nothing(sent, code, element, text):
    co = ca_company()

    error = fault(ca_invoice, co, sale(100, "1", code="2"), tax={"TaxLine": sent})

    assert (error.code, error.errors[0].element) == (code, element)
    assert text in error.errors[0].detail
    assert list(co.rows("Invoice")) == []


def test_a_us_company_ignores_sent_tax_lines_and_honours_the_total(co):
    inv = invoice(
        co, sale(100, code="TAX"), TxnTaxDetail={"TotalTax": D("8.30"), "TaxLine": [tax_line("3", "1.00")]}
    )

    assert amount(inv["TxnTaxDetail"]["TotalTax"]) == D("8.30")
    assert amount(inv["TotalAmt"]) == D("108.30")


# --- seed -------------------------------------------------------------------------------------


def seedable_company() -> Company:
    co = us_company()
    for item_id, name in [("6", "Gardening"), ("7", "Installation"), ("16", "Sprinkler Heads")]:
        _add(
            co,
            "Item",
            item_id,
            Name=name,
            FullyQualifiedName=name,
            Type="Service",
            Active=True,
            IncomeAccountRef={"value": "1"},
        )
    return co


def test_seed_demo_transactions_lays_out_open_invoices_and_one_payment():
    co = seedable_company()

    transactions.seed_demo_transactions(co, NOW)
    transactions.seed_demo_transactions(co, NOW)  # idempotent

    invoices = {inv["DocNumber"]: inv for inv in co.rows("Invoice")}
    assert sorted(invoices) == ["1001", "1035", "1036", "1037"]
    assert amount(invoices["1035"]["TotalAmt"]) == D("362.07")
    assert amount(invoices["1001"]["Balance"]) == D(420)
    [pay] = list(co.rows("Payment"))
    assert pay["Line"][0]["LinkedTxn"] == [{"TxnId": invoices["1001"]["Id"], "TxnType": "Invoice"}]
    assert balance(co, "3") == (D(420), D(420))
    assert balance(co, "24") == (D("362.07"), D("362.07"))
    assert balance(co, "7") == (D(0), D("477.50"))
    assert balance(co, "22") == (D(0), D("274.50"))
    assert invoice(co)["DocNumber"] == "1038"
    assert invoices["1035"]["TxnDate"] == (NOW.astimezone(co.tz).date() - timedelta(days=20)).isoformat()


def test_seed_demo_transactions_is_starting_state_not_a_change():
    co = seedable_company()
    heard: list[object] = []
    co.listeners.append(lambda _co, change: heard.append(change))

    transactions.seed_demo_transactions(co, NOW)

    assert co.journal == []
    assert heard == []
    assert co.listeners  # put back


def test_seed_demo_transactions_does_not_count_balances_the_seed_already_holds():
    co = seedable_company()
    for customer_id, recorded in [("24", D("362.07")), ("8", D("477.5"))]:
        must_get(co, "Customer", customer_id).update(Balance=recorded, BalanceWithJobs=recorded)
    must_get(co, "Customer", "7")["BalanceWithJobs"] = D("477.5")

    transactions.seed_demo_transactions(co, NOW)

    assert balance(co, "24") == (D("362.07"), D("362.07"))
    assert balance(co, "8") == (D("477.50"), D("477.50"))
    assert balance(co, "7") == (D(0), D("477.50"))
    assert balance(co, "3") == (D(420), D(420))


def test_seed_demo_transactions_skips_companies_without_craigs_records():
    co = us_company()

    transactions.seed_demo_transactions(co, NOW)

    assert list(co.rows("Invoice")) == []


def test_every_transaction_entity_is_registered_for_dispatch():
    for name in ("Invoice", "CreditMemo", "Payment", "JournalEntry"):
        rules = accounting.RULES[name]
        assert (rules.name, rules.name_list, rules.cdc) == (name, False, True)
        assert rules.create is not None
        assert rules.update is not None
        assert rules.delete is not None
    assert accounting.RULES["JournalEntry"].void is None
    assert accounting.PATHS["creditmemo"] == "CreditMemo"


# --- on the real seed (qbo_sandbox.seed) ------------------------------------------------------


def seeded(country: str) -> Company:
    return seeded_company(country, realm=f"93410000000000{country}", name=country, now=NOW)


def test_real_us_seed_runs_the_transaction_hook_with_consistent_balances():
    from qbo_sandbox.seed import seed_transactions_hook

    co = seeded("US")

    assert transactions.seed_demo_transactions in seed_transactions_hook
    invoices = {inv["DocNumber"]: inv for inv in co.rows("Invoice")}
    assert sorted(invoices) == ["1001", "1035", "1036", "1037"]
    assert invoices["1001"]["LinkedTxn"] == [{"TxnId": "1", "TxnType": "Payment"}]
    assert co.journal == []
    for customer in co.rows("Customer"):
        open_invoices = sum(
            (amount(i["Balance"]) for i in co.rows("Invoice") if i["CustomerRef"]["value"] == customer["Id"]),
            D(0),
        )
        assert amount(customer["Balance"]) == open_invoices, customer["Id"]
    assert balance(co, "7") == (D(0), D("477.50"))
    assert json.loads(json.dumps(co.entities)) == co.entities  # plain JSON numbers only


def test_real_us_seed_answers_the_recorded_invoice_response():
    co = seeded("US")
    body = json.loads((SAMPLES / "invoice-create-request.json").read_text(), parse_float=D)
    expected = json.loads((SAMPLES / "invoice-create-response.json").read_text())["Invoice"]

    inv = accounting.create(co, "Invoice", body, NOW)

    assert inv["DocNumber"] == "1038"  # the recording says 1042: its recorder had created 1038-1041
    for key in (
        "DueDate",
        "TxnTaxDetail",
        "BillAddr",
        "ShipAddr",
        "CurrencyRef",
        "TotalAmt",
        "Balance",
        "LinkedTxn",
        "PrintStatus",
        "EmailStatus",
    ):
        assert inv[key] == expected[key], key
    assert inv["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
    assert inv["Line"][0]["SalesItemLineDetail"]["ItemAccountRef"] == {"value": "1", "name": "Services"}


def test_real_us_seed_taxes_at_code_2_and_auto_applies_credits():
    co = seeded("US")
    memo = credit_memo(co, 20, customer="24")

    inv = invoice(co, *[sale("33.33", "2", code="TAX") for _ in range(3)], customer="24")

    assert inv["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": "2"}
    assert amount(inv["TotalAmt"]) == D("107.99")
    assert amount(inv["Balance"]) == D("87.99")
    assert read(co, "CreditMemo", memo["Id"])["RemainingCredit"] == 0
    assert balance(co, "24") == (D("362.07") + D("87.99"), D("362.07") + D("87.99"))


def test_real_seeded_invoice_paid_through_the_api_goes_stale_for_an_old_copy():
    co = seeded("US")
    [old_copy] = [i for i in co.rows("Invoice") if i["DocNumber"] == "1035"]
    old_copy = co.snapshot(old_copy)

    pay = payment(co, D("362.07"), pay_line(D("362.07"), old_copy), customer="24")

    assert pay["DepositToAccountRef"] == {"value": "4", "name": "Undeposited Funds"}
    assert read(co, "Invoice", old_copy["Id"])["Balance"] == 0
    assert balance(co, "24") == (D(0), D(0))
    assert fault(accounting.update, co, "Invoice", old_copy, NOW).code == "5010"


def test_real_gb_seed_needs_vat_codes_and_rounds_per_line():
    co = seeded("GB")
    customer = next(iter(co.rows("Customer")))["Id"]
    item = next(i for i in co.rows("Item") if i.get("Type") == "Service")["Id"]
    body = {"CustomerRef": {"value": customer}, "Line": [sale("33.33", item, code="2") for _ in range(3)]}

    inv = accounting.create(co, "Invoice", body, NOW)
    missing = fault(
        accounting.create, co, "Invoice", {"CustomerRef": {"value": customer}, "Line": [sale(10, item)]}, NOW
    )

    assert amount(inv["TxnTaxDetail"]["TotalTax"]) == D("20.01")
    assert inv["CurrencyRef"]["value"] == "GBP"
    assert missing.code == "6000"


def test_real_ca_seed_group_code_gives_a_tax_line_per_rate():
    co = seeded("CA")
    customer = next(iter(co.rows("Customer")))["Id"]
    item = next(i for i in co.rows("Item") if i.get("Type") == "Service")["Id"]

    inv = accounting.create(
        co, "Invoice", {"CustomerRef": {"value": customer}, "Line": [sale(100, item, code="4")]}, NOW
    )

    assert [
        (t["TaxLineDetail"]["TaxRateRef"]["value"], t["Amount"]) for t in inv["TxnTaxDetail"]["TaxLine"]
    ] == [("1", 5), ("3", 7)]
    assert inv["TotalAmt"] == 112
