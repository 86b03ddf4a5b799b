"""Pure QBO bodies from the app's documents (shared.push.payloads), rule by rule of docs/push.md."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from shared.kernel import constants
from shared.mapping.markers import Marker, marker, parse_marker
from shared.push.models import AppClient, AppCreditMemo, AppInvoice, AppPayment
from shared.push.payloads import (
    CompanyFacts,
    ExistingEntity,
    JournalAccounts,
    MissingMappingError,
    PayloadError,
    ResolvedMappings,
    SalesTaxRate,
    credit_memo_payload,
    customer_payload,
    display_name,
    invoice_payload,
    journal_entry_for_day,
    payment_payload,
    rate_for_percent,
    void_payload,
)

D = Decimal
US = CompanyFacts("US", "USD", "us_automated")
US_MANUAL = CompanyFacts("US", "USD", "us_manual")
GB = CompanyFacts("GB", "GBP", "per_line")
ITEMS = {("work", "W-1"): "1", ("expense", "E-1"): "2"}


def us_invoice(**overrides: Any) -> AppInvoice:
    data: dict[str, Any] = {
        "id": "inv-1",
        "version": 1,
        "number": "INV-0001",
        "date": "2026-03-01",
        "due_date": "2026-03-31",
        "client_id": "client-1",
        "memo": "Thank you",
        "lines": [
            {
                "line_id": "1",
                "kind": "work",
                "code": "W-1",
                "description": "Consulting",
                "quantity": "1.5",
                "rate": "33.333",
                "amount": "50.00",
                "taxable": True,
            },
            {"line_id": "2", "kind": "expense", "code": "E-1", "amount": "12.34", "taxable": False},
        ],
        "tax_total": "4.00",
        "total": "66.34",
    }
    data.update(overrides)
    return AppInvoice.model_validate(data)


def gb_invoice(**overrides: Any) -> AppInvoice:
    data: dict[str, Any] = {
        "id": "inv-9",
        "version": 2,
        "number": "GB-9",
        "date": "2026-03-02",
        "client_id": "client-1",
        "lines": [
            {"line_id": "1", "kind": "work", "code": "W-1", "amount": "100.00", "tax_id": "VAT20"},
            {"line_id": "2", "kind": "work", "code": "W-1", "amount": "10.00", "tax_id": "VAT5"},
        ],
        "tax_total": "20.50",
        "total": "130.50",
    }
    data.update(overrides)
    return AppInvoice.model_validate(data)


def us_mappings(**overrides: Any) -> ResolvedMappings:
    return ResolvedMappings(customer_id="58", customer_name="Acme", items=ITEMS, **overrides)


def gb_mappings(**overrides: Any) -> ResolvedMappings:
    return ResolvedMappings(customer_id="1", items=ITEMS, tax_codes={"VAT20": "2", "VAT5": "3"}, **overrides)


# --- markers ----------------------------------------------------------------------------------


def test_marker_names_the_kind_and_the_app_id():
    assert marker("invoice", "inv-1") == "qbo-link:invoice:inv-1"
    assert marker("credit_memo", "a:b.c") == "qbo-link:credit_memo:a:b.c"


@pytest.mark.parametrize(
    "note",
    [
        "qbo-link:invoice:inv-1",
        "qbo-link:invoice:inv-1\nThank you",
        "edited in QBO qbo-link:invoice:inv-1 Voided",
    ],
)
def test_parse_marker_finds_the_marker_wherever_it_is(note):
    assert parse_marker(note) == Marker("invoice", "inv-1")


@pytest.mark.parametrize(
    "note",
    [
        None,
        "",
        "just a note",
        "qbo-link:order:1",
        "xqbo-link:invoice:1",
        "qbo-link:invoice:",
        "qbo-link:invoice:a/b",
    ],
)
def test_parse_marker_ignores_anything_else(note):
    assert parse_marker(note) is None


@pytest.mark.parametrize("kind", constants.POSTING_KINDS)
def test_marker_round_trips(kind):
    # every kind the push posts carries a marker (its find-before-create depends on it)
    assert parse_marker(marker(kind, "X.1:2-3")) == Marker(kind, "X.1:2-3")


def test_marker_refuses_what_it_could_not_parse_back():
    with pytest.raises(ValueError, match="cannot be carried"):
        marker("invoice", "a b")
    with pytest.raises(ValueError, match="unknown marker kind"):
        marker("order", "1")  # type: ignore[arg-type]


# --- company facts and mappings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "model"), [("US", "per_line"), ("GB", "us_automated"), ("CA", "us_manual")]
)
def test_company_facts_refuse_a_tax_model_of_another_country(country, model):
    with pytest.raises(ValueError, match="does not fit"):
        CompanyFacts(country, "USD", model)


def test_resolved_mappings_cannot_be_changed_through_their_maps():
    items = {("work", "W-1"): "1"}
    mappings = ResolvedMappings(customer_id="1", items=items)
    items[("work", "W-2")] = "2"

    assert ("work", "W-2") not in mappings.items
    with pytest.raises(TypeError):
        mappings.items[("work", "W-3")] = "3"  # type: ignore[index]


# --- customers --------------------------------------------------------------------------------


def app_client(**overrides: Any) -> AppClient:
    data: dict[str, Any] = {"id": "client-1", "version": 1, "type": "client", "company_name": "Acme Ltd"}
    data.update(overrides)
    return AppClient.model_validate(data)


def test_a_new_customer_carries_the_client_and_a_marker_in_notes():
    client = app_client(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone="555-1",
        mobile="555-2",
        billing_address={"line1": "1 Main St", "city": "Reading", "region": "BRK", "postal_code": "RG1"},
        shipping_address={"line1": "2 Side St", "country": "GB"},
    )

    body = customer_payload(client, None, None)

    assert body == {
        "DisplayName": "Acme Ltd",
        "CompanyName": "Acme Ltd",
        "GivenName": "Ada",
        "FamilyName": "Lovelace",
        "PrimaryEmailAddr": {"Address": "ada@example.com"},
        "PrimaryPhone": {"FreeFormNumber": "555-1"},
        "Mobile": {"FreeFormNumber": "555-2"},
        "BillAddr": {
            "Line1": "1 Main St",
            "City": "Reading",
            "CountrySubDivisionCode": "BRK",
            "PostalCode": "RG1",
        },
        "ShipAddr": {"Line1": "2 Side St", "Country": "GB"},
        "Active": True,
        "Notes": "qbo-link:client:client-1",
    }


def test_a_site_is_a_sub_customer_of_its_parent():
    site = app_client(id="site-1", parent_id="client-1", display_name="Acme: Head Office")

    body = customer_payload(site, "58", None)

    assert body["Job"] is True
    assert body["ParentRef"] == {"value": "58"}
    assert body["DisplayName"] == "Acme- Head Office"
    assert body["Notes"] == "qbo-link:site:site-1"


def test_a_site_without_its_parent_in_qbo_cannot_be_built():
    with pytest.raises(MissingMappingError, match="not linked"):
        customer_payload(app_client(id="site-1", parent_id="client-1"), None, None)


def test_an_update_is_sparse_with_id_and_sync_token_and_keeps_the_bookkeepers_notes():
    body = customer_payload(app_client(active=False), None, ExistingEntity("58", "3"))

    assert body["Id"] == "58"
    assert body["SyncToken"] == "3"
    assert body["sparse"] is True
    assert body["Active"] is False
    assert "Notes" not in body


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"display_name": "Shown"}, "Shown"),
        ({"company_name": None, "first_name": "Ada", "last_name": "Lovelace"}, "Ada Lovelace"),
        ({"company_name": None, "last_name": "Lovelace"}, "Lovelace"),
        ({"company_name": "A:B::C"}, "A-B--C"),
        ({"display_name": "Two  \t spaces"}, "Two spaces"),
    ],
)
def test_display_name_derivation(overrides, expected):
    assert display_name(app_client(**overrides)) == expected


def test_display_name_is_cut_to_500_characters():
    assert len(display_name(app_client(display_name="x" * 500))) == 500
    client = app_client(display_name=None, company_name="y" * 100)
    assert display_name(client) == "y" * 100


# --- invoices ---------------------------------------------------------------------------------


def test_us_invoice_follows_every_payload_rule():
    body = invoice_payload(us_invoice(), us_mappings(), US)

    assert body == {
        "CustomerRef": {"value": "58", "name": "Acme"},
        "DocNumber": "INV-0001",
        "TxnDate": "2026-03-01",
        "DueDate": "2026-03-31",
        "CurrencyRef": {"value": "USD"},
        "PrivateNote": "qbo-link:invoice:inv-1\nThank you",
        "Line": [
            {
                "Description": "Consulting",
                "Amount": D("50.00"),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "1"},
                    "Qty": D("1.5"),
                    "UnitPrice": D("33.333"),
                    "TaxCodeRef": {"value": "TAX"},
                },
            },
            {
                "Amount": D("12.34"),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "2"}, "TaxCodeRef": {"value": "NON"}},
            },
        ],
        "TxnTaxDetail": {"TotalTax": D("4.00")},
    }


def test_money_in_the_payload_is_decimal_never_float():
    body = invoice_payload(us_invoice(), us_mappings(), US)

    def walk(value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [x for v in value.values() for x in walk(v)]
        if isinstance(value, list):
            return [x for v in value for x in walk(v)]
        return [value]

    leaves = walk(body)
    assert not any(isinstance(v, float) for v in leaves)
    assert D("66.34") - D("4.00") == sum(ln["Amount"] for ln in body["Line"])


def test_us_invoice_names_the_default_tax_code_when_one_is_mapped():
    body = invoice_payload(us_invoice(), us_mappings(txn_tax_code_id="2"), US_MANUAL)

    assert body["TxnTaxDetail"] == {"TxnTaxCodeRef": {"value": "2"}, "TotalTax": D("4.00")}


def test_a_zero_tax_is_still_sent_explicitly():
    lines = [{"line_id": "1", "kind": "work", "code": "W-1", "amount": "10", "taxable": False}]

    body = invoice_payload(us_invoice(lines=lines, tax_total="0", total="10"), us_mappings(), US)

    assert body["TxnTaxDetail"] == {"TotalTax": D("0.00")}


def test_gb_invoice_carries_a_mapped_tax_code_per_line_and_the_apps_tax():
    body = invoice_payload(gb_invoice(), gb_mappings(), GB)

    assert [ln["SalesItemLineDetail"]["TaxCodeRef"] for ln in body["Line"]] == [
        {"value": "2"},
        {"value": "3"},
    ]
    assert body["TxnTaxDetail"] == {"TotalTax": D("20.50")}
    assert body["GlobalTaxCalculation"] == "TaxExcluded"
    assert body["CurrencyRef"] == {"value": "GBP"}
    assert body["CustomerRef"] == {"value": "1"}
    assert "DueDate" not in body
    assert body["PrivateNote"] == "qbo-link:invoice:inv-9"


def test_gb_invoice_ignores_a_us_transaction_tax_code():
    body = invoice_payload(gb_invoice(), gb_mappings(txn_tax_code_id="2"), GB)

    assert "TxnTaxCodeRef" not in body["TxnTaxDetail"]


def test_the_revenue_account_goes_on_every_line_when_set():
    body = invoice_payload(us_invoice(), us_mappings(revenue_account_id="79"), US)

    assert {ln["SalesItemLineDetail"]["ItemAccountRef"]["value"] for ln in body["Line"]} == {"79"}


def test_a_changed_invoice_is_a_sparse_update_of_the_same_qbo_invoice():
    body = invoice_payload(us_invoice(version=2), us_mappings(), US, ExistingEntity("130", "4"))

    assert (body["Id"], body["SyncToken"], body["sparse"]) == ("130", "4", True)
    assert len(body["Line"]) == 2
    assert body["TxnTaxDetail"]["TotalTax"] == D("4.00")


def test_a_missing_item_mapping_is_refused():
    with pytest.raises(MissingMappingError, match="expense code 'E-1'"):
        invoice_payload(us_invoice(), ResolvedMappings(customer_id="1", items={("work", "W-1"): "1"}), US)


def test_a_missing_tax_mapping_is_refused():
    with pytest.raises(MissingMappingError, match="tax 'VAT5'"):
        invoice_payload(
            gb_invoice(), ResolvedMappings(customer_id="1", items=ITEMS, tax_codes={"VAT20": "2"}), GB
        )


def test_the_wrong_tax_field_for_the_company_is_refused():
    with pytest.raises(PayloadError, match="no taxable flag"):
        invoice_payload(gb_invoice(), gb_mappings(), US)
    with pytest.raises(PayloadError, match="no tax_id"):
        invoice_payload(us_invoice(), us_mappings(), GB)


def test_the_memo_is_cut_so_the_private_note_fits_qbo():
    body = invoice_payload(us_invoice(memo="m" * 3900), us_mappings(), US)

    assert len(body["PrivateNote"]) <= 4000
    assert parse_marker(body["PrivateNote"]) == Marker("invoice", "inv-1")


def test_void_payload_names_the_entity_and_its_sync_token():
    assert void_payload(ExistingEntity("130", "5")) == {"Id": "130", "SyncToken": "5"}


# --- tax per rate (non-US) ---------------------------------------------------------------------

CA = CompanyFacts("CA", "CAD", "per_line")
GST, HST, PST = SalesTaxRate("1", D(5)), SalesTaxRate("2", D(13)), SalesTaxRate("3", D(7))
ZERO_RATED = SalesTaxRate("5", D(0))
# App taxes → QBO codes as the CA seed has them: 2 GST, 3 HST ON, 4 GST/PST BC, 6 Zero-rated.
CA_CODES = {"GST": "2", "HST": "3", "BC": "4", "ZR": "6"}
CA_RATES = {"2": (GST,), "3": (HST,), "4": (GST, PST), "6": (ZERO_RATED,)}


def ca_mappings(**overrides: Any) -> ResolvedMappings:
    fields: dict[str, Any] = {
        "customer_id": "1",
        "items": ITEMS,
        "tax_codes": CA_CODES,
        "tax_code_rates": CA_RATES,
    }
    return ResolvedMappings(**{**fields, **overrides})


def ca_invoice(lines: list[tuple[str, str]], tax_lines: list[dict[str, Any]], **overrides: Any) -> AppInvoice:
    """Lines as (tax id, amount); ``tax_total`` and ``total`` follow from them and the tax lines."""
    tax_total = sum((D(t["amount"]) for t in tax_lines), D(0))
    data: dict[str, Any] = {
        "id": "inv-ca",
        "version": 1,
        "number": "CA-1",
        "date": "2026-03-02",
        "client_id": "client-1",
        "lines": [
            {"line_id": str(i), "kind": "work", "code": "W-1", "amount": amount, "tax_id": tax_id}
            for i, (tax_id, amount) in enumerate(lines, start=1)
        ],
        "tax_lines": tax_lines,
        "tax_total": tax_total,
        "total": sum((D(a) for _, a in lines), D(0)) + tax_total,
    }
    return AppInvoice.model_validate({**data, **overrides})


def tax_line(tax_id: str, percent: str, amount: str, **more: Any) -> dict[str, Any]:
    return {"tax_id": tax_id, "percent": percent, "amount": amount, **more}


def test_a_non_us_document_with_tax_lines_sends_the_apps_tax_of_each_rate():
    # The measured case: an HST line next to a GST/PST BC credit.
    document = ca_invoice(
        [("HST", "1000.00"), ("BC", "-300.00")],
        [tax_line("HST", "13", "130"), tax_line("BC", "5", "-15"), tax_line("BC", "7.000", "-21")],
    )

    body = invoice_payload(document, ca_mappings(), CA)

    assert body["TxnTaxDetail"] == {
        "TotalTax": D("94.00"),
        "TaxLine": [
            {
                "Amount": D("130.00"),
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": {"value": "2"},
                    "PercentBased": True,
                    "TaxPercent": D(13),
                    "NetAmountTaxable": D("1000.00"),
                },
            },
            {
                "Amount": D("-15.00"),
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": {"value": "1"},
                    "PercentBased": True,
                    "TaxPercent": D(5),
                    "NetAmountTaxable": D("-300.00"),
                },
            },
            {
                "Amount": D("-21.00"),
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": {"value": "3"},
                    "PercentBased": True,
                    "TaxPercent": D(7),
                    "NetAmountTaxable": D("-300.00"),
                },
            },
        ],
    }
    assert body["GlobalTaxCalculation"] == "TaxExcluded"
    assert [ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in body["Line"]] == ["3", "4"]
    assert (
        credit_memo_payload(
            AppCreditMemo.model_validate({**document.model_dump(exclude={"due_date"}), "id": "cm-ca"}),
            ca_mappings(),
            CA,
        )["TxnTaxDetail"]
        == body["TxnTaxDetail"]
    )


def test_a_rate_shared_by_two_codes_is_one_tax_line_with_their_amounts_added():
    document = ca_invoice(
        [("GST", "100.00"), ("BC", "200.00"), ("GST", "50.00")],
        [
            tax_line("GST", "5", "7.50"),
            tax_line("BC", "5", "10", taxable_amount="199.99"),
            tax_line("BC", "7", "14"),
        ],
    )

    lines = invoice_payload(document, ca_mappings(), CA)["TxnTaxDetail"]["TaxLine"]

    assert [(t["TaxLineDetail"]["TaxRateRef"]["value"], t["Amount"]) for t in lines] == [
        ("1", D("17.50")),
        ("3", D("14.00")),
    ]
    # GST's base: the GST lines (no taxable_amount) plus the BC tax line's own taxable_amount.
    assert lines[0]["TaxLineDetail"]["NetAmountTaxable"] == D("349.99")
    assert lines[1]["TaxLineDetail"]["NetAmountTaxable"] == D("200.00")


def test_a_rate_of_the_lines_codes_the_app_charged_nothing_at_is_sent_as_zero():
    # Without it QBO would compute its own PST and zero-rated tax on top of the app's.
    document = ca_invoice(
        [("BC", "100.00"), ("ZR", "40.00"), ("HST", "10.00")],
        [tax_line("BC", "5", "5"), tax_line("HST", "13", "1.30")],
    )

    lines = invoice_payload(document, ca_mappings(), CA)["TxnTaxDetail"]["TaxLine"]

    assert [
        (t["TaxLineDetail"]["TaxRateRef"]["value"], t["Amount"], t["TaxLineDetail"]["NetAmountTaxable"])
        for t in lines
    ] == [
        ("1", D("5.00"), D("100.00")),
        ("2", D("1.30"), D("10.00")),
        ("3", D(0), D("100.00")),
        ("5", D(0), D("40.00")),
    ]


def test_a_document_without_tax_lines_sends_the_total_alone_as_before():
    document = ca_invoice([("BC", "100.00")], [], tax_total="12", total="112")

    assert invoice_payload(document, ca_mappings(), CA)["TxnTaxDetail"] == {"TotalTax": D("12.00")}


def test_tax_lines_that_cannot_be_resolved_are_refused():
    document = ca_invoice([("BC", "100.00")], [tax_line("BC", "6", "6")])

    with pytest.raises(PayloadError, match="no single sales rate of its tax code is 6 %"):
        invoice_payload(document, ca_mappings(), CA)
    with pytest.raises(MissingMappingError, match="sales rates of tax code '4'"):
        invoice_payload(document, ca_mappings(tax_code_rates={}), CA)
    with pytest.raises(PayloadError, match="US company"):
        invoice_payload(document, ca_mappings(), US)


def test_a_percent_names_a_rate_only_when_exactly_one_rate_has_it():
    twins = (SalesTaxRate("1", D(5)), SalesTaxRate("7", D("5.00")), PST)

    assert rate_for_percent(twins, D("7.0")) == PST
    assert rate_for_percent(twins, D(5)) is None
    assert rate_for_percent(twins, D(6)) is None


def test_resolved_tax_code_rates_are_frozen():
    rates = {"4": [GST, PST]}
    mappings = ca_mappings(tax_code_rates=rates)
    rates["4"].append(HST)

    assert mappings.tax_code_rates["4"] == (GST, PST)
    with pytest.raises(TypeError):
        mappings.tax_code_rates["9"] = ()  # type: ignore[index]


# --- credit memos -----------------------------------------------------------------------------


def test_a_credit_memo_is_built_like_an_invoice_with_its_own_marker():
    data = us_invoice().model_dump(exclude={"due_date"})
    credit = AppCreditMemo.model_validate({**data, "id": "cm-1", "number": "CN-1"})

    body = credit_memo_payload(credit, us_mappings(), US)

    assert body["DocNumber"] == "CN-1"
    assert body["PrivateNote"].startswith("qbo-link:credit_memo:cm-1")
    assert body["TxnTaxDetail"] == {"TotalTax": D("4.00")}
    assert "DueDate" not in body
    updated = credit_memo_payload(credit, us_mappings(), US, ("77", "0"))
    assert (updated["Id"], updated["sparse"]) == ("77", True)


# --- payments ---------------------------------------------------------------------------------


def app_payment(**overrides: Any) -> AppPayment:
    data: dict[str, Any] = {
        "id": "pay-1",
        "version": 1,
        "client_id": "client-1",
        "date": "2026-03-10",
        "amount": "100.00",
        "reference": "CHQ-77",
        "applications": [
            {"invoice_id": "inv-1", "amount": "60.00"},
            {"invoice_id": "inv-2", "amount": "30.00"},
        ],
    }
    data.update(overrides)
    return AppPayment.model_validate(data)


def test_a_payment_links_every_invoice_it_pays():
    mappings = ResolvedMappings(customer_id="58", invoices={"inv-1": "130", "inv-2": "131"})

    body = payment_payload(app_payment(), mappings, US)

    assert body == {
        "CustomerRef": {"value": "58"},
        "TotalAmt": D("100.00"),
        "TxnDate": "2026-03-10",
        "CurrencyRef": {"value": "USD"},
        "PrivateNote": "qbo-link:payment:pay-1",
        "Line": [
            {"Amount": D("60.00"), "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
            {"Amount": D("30.00"), "LinkedTxn": [{"TxnId": "131", "TxnType": "Invoice"}]},
        ],
        "PaymentRefNum": "CHQ-77",
    }


def test_a_payment_names_its_deposit_account_and_method_only_when_set():
    mappings = ResolvedMappings(
        customer_id="58",
        invoices={"inv-1": "130", "inv-2": "131"},
        deposit_account_id="35",
        payment_method_id="2",
    )

    body = payment_payload(app_payment(reference=None), mappings, US)

    assert body["DepositToAccountRef"] == {"value": "35"}
    assert body["PaymentMethodRef"] == {"value": "2"}
    assert "PaymentRefNum" not in body


def test_a_changed_payment_updates_the_same_qbo_payment():
    mappings = ResolvedMappings(customer_id="58", invoices={"inv-1": "130", "inv-2": "131"})

    body = payment_payload(app_payment(version=2), mappings, US, ExistingEntity("200", "1"))

    assert (body["Id"], body["SyncToken"], body["sparse"]) == ("200", "1", True)


def test_a_payment_of_an_unposted_invoice_cannot_be_built():
    with pytest.raises(MissingMappingError, match="'inv-2' has not been posted"):
        payment_payload(app_payment(), ResolvedMappings(customer_id="58", invoices={"inv-1": "130"}), US)


def test_an_unapplied_payment_has_no_lines():
    body = payment_payload(app_payment(applications=[]), ResolvedMappings(customer_id="58"), US)

    assert body["Line"] == []
    assert body["TotalAmt"] == D("100.00")


# --- summarised journal entry -----------------------------------------------------------------

DAY = date(2026, 3, 1)
ACCOUNTS = JournalAccounts(
    master_customer_id="60",
    receivable_account_id="84",
    tax_payable_account_id="89",
    item_income_accounts={"1": "1", "2": "79"},
)


def day_invoices() -> list[AppInvoice]:
    second_lines = [
        {"line_id": "1", "kind": "work", "code": "W-1", "amount": "10.01", "taxable": True},
        {"line_id": "2", "kind": "work", "code": "W-1", "amount": "-2.00", "taxable": True},
    ]
    return [
        us_invoice(),
        us_invoice(id="inv-2", number="INV-0002", lines=second_lines, tax_total="0.64", total="8.65"),
    ]


def jmap() -> dict[str, ResolvedMappings]:
    return {"inv-1": us_mappings(), "inv-2": us_mappings(), "inv-3": us_mappings()}


def amounts(body: dict[str, Any], posting: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for ln in body["Line"]:
        detail = ln["JournalEntryLineDetail"]
        if detail["PostingType"] == posting:
            out[detail["AccountRef"]["value"]] = ln["Amount"]
    return out


def test_journal_debits_receivables_of_the_master_customer_and_credits_revenue_per_account_and_tax():
    body = journal_entry_for_day(DAY, day_invoices(), jmap(), US, ACCOUNTS)

    assert amounts(body, "Debit") == {"84": D("74.99")}
    assert amounts(body, "Credit") == {"1": D("58.01"), "79": D("12.34"), "89": D("4.64")}
    receivable = body["Line"][0]["JournalEntryLineDetail"]
    assert receivable["Entity"] == {"Type": "Customer", "EntityRef": {"value": "60"}}
    assert body["TxnDate"] == "2026-03-01"
    assert body["DocNumber"] == "QL-20260301"
    assert parse_marker(body["PrivateNote"]) == Marker("journal_day", "2026-03-01")
    assert body["CurrencyRef"] == {"value": "USD"}


def test_journal_is_balanced_to_the_cent():
    body = journal_entry_for_day(DAY, day_invoices(), jmap(), US, ACCOUNTS)

    assert sum(amounts(body, "Debit").values()) == sum(amounts(body, "Credit").values())


def test_journal_uses_the_tenants_revenue_account_when_set():
    accounts = JournalAccounts("60", "84", "89", revenue_account_id="1")

    body = journal_entry_for_day(DAY, day_invoices(), jmap(), US, accounts)

    assert amounts(body, "Credit") == {"1": D("70.35"), "89": D("4.64")}


def test_journal_turns_a_negative_revenue_sum_into_a_debit_and_leaves_out_zero_lines():
    lines = [
        {"line_id": "1", "kind": "work", "code": "W-1", "amount": "10.00", "taxable": False},
        {"line_id": "2", "kind": "expense", "code": "E-1", "amount": "-4.00", "taxable": False},
    ]
    invoices = [us_invoice(id="inv-3", lines=lines, tax_total="0", total="6.00")]

    body = journal_entry_for_day(DAY, invoices, jmap(), US, ACCOUNTS)

    assert amounts(body, "Debit") == {"84": D("6.00"), "79": D("4.00")}
    assert amounts(body, "Credit") == {"1": D("10.00")}
    assert all(ln["Amount"] > 0 for ln in body["Line"])


def test_journal_leaves_voided_invoices_out():
    invoices = [*day_invoices(), us_invoice(id="inv-3", number="X", voided=True)]

    body = journal_entry_for_day(DAY, invoices, jmap(), US, ACCOUNTS)

    assert amounts(body, "Debit") == {"84": D("74.99")}


def test_journal_of_an_existing_day_is_a_sparse_update():
    body = journal_entry_for_day(DAY, day_invoices(), jmap(), US, ACCOUNTS, existing=("300", "2"))

    assert (body["Id"], body["SyncToken"], body["sparse"]) == ("300", "2", True)


def test_journal_refuses_invoices_of_another_day_and_empty_days():
    with pytest.raises(PayloadError, match="not 2026-03-02"):
        journal_entry_for_day(date(2026, 3, 2), day_invoices(), jmap(), US, ACCOUNTS)
    with pytest.raises(PayloadError, match="no invoice"):
        journal_entry_for_day(DAY, [], jmap(), US, ACCOUNTS)
    zero = [{"line_id": "1", "kind": "work", "code": "W-1", "amount": "0", "taxable": False}]
    with pytest.raises(PayloadError, match="nothing to post"):
        journal_entry_for_day(DAY, [us_invoice(lines=zero, tax_total="0", total="0")], jmap(), US, ACCOUNTS)


def test_journal_needs_mappings_and_income_accounts():
    with pytest.raises(MissingMappingError, match="no resolved mappings"):
        journal_entry_for_day(DAY, day_invoices(), {"inv-1": us_mappings()}, US, ACCOUNTS)
    accounts = JournalAccounts("60", "84", "89", item_income_accounts={"1": "1"})
    with pytest.raises(MissingMappingError, match="no known income account"):
        journal_entry_for_day(DAY, day_invoices(), jmap(), US, accounts)
