"""The app's documents as the tenant API accepts them (shared.push.models): every rule, every message."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.push.models import (
    AppClient,
    AppCreditMemo,
    AppInvoice,
    AppInvoiceLine,
    AppPayment,
    TenantSettings,
    merge_patch,
    round_half_up,
    validation_problems,
)

D = Decimal


def line(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "line_id": "l1",
        "kind": "work",
        "code": "W-1",
        "quantity": D("2"),
        "rate": D("50"),
        "amount": D("100.00"),
        "taxable": True,
    }
    return {**base, **overrides}


def invoice(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "inv-1",
        "version": 1,
        "number": "INV-0001",
        "date": "2026-03-01",
        "client_id": "client-1",
        "lines": [line()],
        "tax_total": D("8.00"),
        "total": D("108.00"),
    }
    return {**base, **overrides}


def payment(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "pay-1",
        "version": 1,
        "client_id": "client-1",
        "date": "2026-03-05",
        "amount": D("100.00"),
        "applications": [{"invoice_id": "inv-1", "amount": D("60.00")}],
    }
    return {**base, **overrides}


def client(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "client-1", "version": 1, "type": "client", "company_name": "Acme"}
    return {**base, **overrides}


def problems_of(model: type[Any], data: Any) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return validation_problems(caught.value)


def fields_of(model: type[Any], data: Any) -> list[str]:
    return [p["field"] for p in problems_of(model, data)]


# --- money ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (D("10.5"), D("10.50")),
        (10, D("10.00")),
        ("10.05", D("10.05")),
        (" 7 ", D("7.00")),
        ("-3.10", D("-3.10")),
    ],
)
def test_money_accepts_decimal_int_and_decimal_strings_and_keeps_cents(given, stored):
    parsed = AppInvoiceLine.model_validate(line(quantity=None, rate=None, amount=given))

    assert parsed.amount == stored
    assert str(parsed.amount) == str(stored)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (10.5, "not a float"),
        (True, "not a boolean"),
        ("10.005", "at most 2 decimal places"),
        (D("10.005"), "at most 2 decimal places"),
        ("1e3", "decimal number"),
        ("ten", "decimal number"),
        (D("NaN"), "finite"),
        (D("Infinity"), "finite"),
        (D("1000000000000"), "smaller than"),
        ([1], "must be a number"),
    ],
)
def test_money_refuses_floats_booleans_extra_places_and_garbage(given, message):
    problems = problems_of(AppInvoiceLine, line(quantity=None, rate=None, amount=given))

    assert [p["field"] for p in problems] == ["amount"]
    assert message in problems[0]["message"]


def test_json_numbers_parsed_with_parse_float_decimal_are_exact():
    body = json.dumps(
        invoice(lines=[line(quantity="3", rate="0.1", amount="0.30")], tax_total="0", total="0.3")
    )
    body = body.replace('"0.30"', "0.30").replace('"0.3"', "0.3")

    parsed = AppInvoice.model_validate(json.loads(body, parse_float=Decimal))

    assert parsed.lines[0].amount == D("0.30")
    assert parsed.total == D("0.30")


def test_model_validate_json_reads_numbers_exactly_within_the_limits():
    text = json.dumps(invoice(lines=[line(quantity=None, rate=None, amount="0")], tax_total="0", total="0"))
    text = text.replace('"amount": "0"', '"amount": 999999999999.99').replace(
        '"total": "0"', '"total": 999999999999.99'
    )

    parsed = AppInvoice.model_validate_json(text)

    assert parsed.total == D("999999999999.99")


def test_model_validate_json_still_refuses_extra_places():
    text = json.dumps(invoice(lines=[line(quantity=None, rate=None, amount="0")], tax_total="0", total="0"))
    text = text.replace('"amount": "0"', '"amount": 0.125')

    with pytest.raises(ValidationError) as caught:
        AppInvoice.model_validate_json(text)

    assert validation_problems(caught.value)[0]["field"] == "lines[0].amount"


@pytest.mark.parametrize("given", ["1.1234567", D("0.0000001"), 2.5, False])
def test_quantity_and_rate_allow_six_places_and_refuse_more_or_floats(given):
    assert fields_of(AppInvoiceLine, line(quantity=given, rate=None)) == ["quantity"]
    assert fields_of(AppInvoiceLine, line(rate=given, quantity=None)) == ["rate"]


def test_quantity_keeps_its_own_precision():
    parsed = AppInvoiceLine.model_validate(line(quantity="1.123456", rate="1", amount="1.12"))

    assert parsed.quantity == D("1.123456")


def test_round_half_up_rounds_halves_away_from_zero():
    assert round_half_up(D("2.345")) == D("2.35")
    assert round_half_up(D("-2.345")) == D("-2.35")
    assert round_half_up(D("2.3449")) == D("2.34")


# --- lines ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "rate", "amount"),
    [
        ("1.5", "33.333", "50.00"),
        ("3", "0.335", "1.01"),
        ("0.0001", "12.5", "0.00"),
        ("2", "-7.125", "-14.25"),
    ],
)
def test_amount_equal_to_quantity_times_rate_rounded_half_up_is_accepted(quantity, rate, amount):
    parsed = AppInvoiceLine.model_validate(line(quantity=quantity, rate=rate, amount=amount))

    assert parsed.amount == D(amount)


def test_amount_rounded_half_even_is_refused_with_the_expected_value():
    problems = problems_of(AppInvoiceLine, line(quantity="3", rate="0.335", amount="1.00"))

    assert problems == [
        {
            "field": "amount",
            "message": "must equal quantity × rate rounded half up to the cent: 3 × 0.335 = 1.01, not 1.00",
        }
    ]


def test_amount_is_free_when_quantity_or_rate_is_missing():
    assert AppInvoiceLine.model_validate(line(quantity=None, amount="12.34")).amount == D("12.34")
    assert AppInvoiceLine.model_validate(line(rate=None, amount="12.34")).amount == D("12.34")


def test_a_line_carries_taxable_or_tax_id_not_both():
    assert fields_of(AppInvoiceLine, line(tax_id="VAT20")) == ["tax_id"]
    assert AppInvoiceLine.model_validate(line(taxable=None, tax_id="VAT20")).tax_id == "VAT20"
    assert AppInvoiceLine.model_validate(line(taxable=None)).taxable is None


def test_taxable_must_be_a_real_boolean():
    assert fields_of(AppInvoiceLine, line(taxable="yes")) == ["taxable"]
    assert fields_of(AppInvoiceLine, line(taxable=1)) == ["taxable"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "fee"), ("code", "has space"), ("line_id", ""), ("code", "x" * 65), ("description", "")],
)
def test_line_fields_are_checked(field, value):
    assert fields_of(AppInvoiceLine, line(**{field: value})) == [field]


# --- invoices ---------------------------------------------------------------------------------


def test_a_valid_invoice_parses_into_a_frozen_model():
    parsed = AppInvoice.model_validate(invoice(due_date="2026-03-31", memo="thanks"))

    assert parsed.date == date(2026, 3, 1)
    assert parsed.due_date == date(2026, 3, 31)
    assert parsed.total == D("108.00")
    assert isinstance(parsed.lines, tuple)
    with pytest.raises(ValidationError):
        parsed.total = D(1)  # type: ignore[misc]


def test_total_must_equal_lines_plus_tax():
    problems = problems_of(AppInvoice, invoice(total=D("108.01")))

    assert problems == [
        {
            "field": "total",
            "message": "must equal the sum of the line amounts plus tax_total: 100.00 + 8.00 = 108.00, "
            "not 108.01",
        }
    ]


def test_a_negative_total_is_refused():
    lines = [line(quantity="1", rate="-10", amount="-10.00", taxable=False)]

    problems = problems_of(AppInvoice, invoice(lines=lines, tax_total="0", total="-10"))

    assert problems == [
        {"field": "total", "message": "cannot be negative (QBO refuses documents with a negative total)"}
    ]


def test_duplicate_line_ids_are_named():
    lines = [line(), line(line_id="l2"), line(line_id="l2")]

    problems = problems_of(AppInvoice, invoice(lines=lines, total="308.00"))

    assert problems == [{"field": "lines[2].line_id", "message": "line_id 'l2' is not unique"}]


def test_every_cross_field_problem_is_reported_together():
    lines = [line(), line()]

    assert fields_of(AppInvoice, invoice(lines=lines, total="1", due_date="2026-02-01")) == [
        "lines[1].line_id",
        "total",
        "due_date",
    ]


def test_every_offending_field_is_named_with_its_path():
    data = invoice(
        id="bad id",
        version=0,
        number="X" * 22,
        date="01/03/2026",
        lines=[line(amount="1.001"), line(line_id="l2", kind="other")],
        colour="red",
    )

    assert fields_of(AppInvoice, data) == [
        "id",
        "version",
        "number",
        "date",
        "lines[0].amount",
        "lines[1].kind",
        "colour",
    ]


@pytest.mark.parametrize("version", [0, -1, "2", 1.0, True])
def test_version_is_an_integer_of_at_least_one(version):
    assert fields_of(AppInvoice, invoice(version=version)) == ["version"]


def test_doc_number_fits_qbo_21_characters():
    assert AppInvoice.model_validate(invoice(number="N" * 21)).number == "N" * 21
    assert fields_of(AppInvoice, invoice(number="N" * 22)) == ["number"]
    assert fields_of(AppInvoice, invoice(number="  ")) == ["number"]


@pytest.mark.parametrize("app_id", ["a", "A.b_c-d:9", "x" * 64])
def test_app_ids_follow_the_pattern(app_id):
    assert AppInvoice.model_validate(invoice(id=app_id)).id == app_id


@pytest.mark.parametrize("app_id", ["", "x" * 65, "a/b", "a b", "é"])
def test_bad_app_ids_are_refused(app_id):
    assert fields_of(AppInvoice, invoice(id=app_id)) == ["id"]


def test_an_invoice_needs_at_least_one_line():
    assert fields_of(AppInvoice, invoice(lines=[], total="8")) == ["lines"]


@pytest.mark.parametrize("value", ["2026-02-30", "2026-03-01T10:00:00", 20260301])
def test_dates_are_plain_iso_dates(value):
    assert fields_of(AppInvoice, invoice(date=value)) == ["date"]


def test_a_datetime_object_is_not_a_date():
    from datetime import datetime

    assert fields_of(AppInvoice, invoice(date=datetime(2026, 3, 1, 10))) == ["date"]


def test_missing_fields_are_named():
    data = invoice()
    del data["total"]
    del data["client_id"]

    assert sorted(fields_of(AppInvoice, data)) == ["client_id", "total"]


def test_a_credit_memo_has_the_invoice_rules_but_no_due_date():
    parsed = AppCreditMemo.model_validate(invoice(id="cm-1"))
    assert parsed.total == D("108.00")

    assert fields_of(AppCreditMemo, invoice(due_date="2026-04-01")) == ["due_date"]
    assert fields_of(AppCreditMemo, invoice(total="1")) == ["total"]


# --- tax per rate -----------------------------------------------------------------------------


def bc_invoice(tax_lines: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """An HST line and a GST/PST BC credit line: tax 130 HST, -15 GST, -21 PST."""
    lines = [
        line(line_id="l1", quantity=None, rate=None, amount="1000", taxable=None, tax_id="HST"),
        line(line_id="l2", quantity=None, rate=None, amount="-300", taxable=None, tax_id="BC"),
    ]
    return invoice(**{"lines": lines, "tax_total": "94", "total": "794", "tax_lines": tax_lines, **overrides})


def tax_line(tax_id: str, percent: Any, amount: Any, **more: Any) -> dict[str, Any]:
    return {"tax_id": tax_id, "percent": percent, "amount": amount, **more}


BC_TAX = [tax_line("HST", "13", "130"), tax_line("BC", "5", "-15"), tax_line("BC", "7", "-21.00")]


def test_a_document_may_carry_its_tax_per_rate():
    parsed = AppInvoice.model_validate(
        bc_invoice([*BC_TAX[:2], tax_line("BC", "7", "-21", taxable_amount="-300")])
    )

    assert [(t.tax_id, t.percent, t.amount, t.taxable_amount) for t in parsed.tax_lines] == [
        ("HST", D(13), D("130.00"), None),
        ("BC", D(5), D("-15.00"), None),
        ("BC", D(7), D("-21.00"), D("-300.00")),
    ]
    assert AppCreditMemo.model_validate(bc_invoice(BC_TAX)).tax_lines[0].amount == D("130.00")


def test_a_document_without_tax_lines_has_none():
    assert AppInvoice.model_validate(invoice()).tax_lines == ()
    assert AppInvoice.model_validate(invoice(tax_lines=[])).tax_lines == ()


def test_tax_lines_must_add_up_to_tax_total():
    problems = problems_of(AppInvoice, bc_invoice([*BC_TAX[:2], tax_line("BC", "7", "-20.99")]))

    assert problems == [
        {"field": "tax_lines", "message": "the amounts must add up to tax_total: 94.01, not 94.00"}
    ]


def test_a_rate_of_a_tax_is_given_once_whatever_its_precision():
    taxes = [*BC_TAX, tax_line("BC", "7.000", "0")]

    assert problems_of(AppInvoice, bc_invoice(taxes)) == [
        {"field": "tax_lines[3]", "message": "tax 'BC' at 7.000 % is given more than once"}
    ]


def test_tax_lines_name_only_taxes_the_lines_carry():
    taxes = [*BC_TAX, tax_line("GST", "5", "0")]

    assert problems_of(AppInvoice, bc_invoice(taxes)) == [
        {"field": "tax_lines[3].tax_id", "message": "no line carries tax_id 'GST'"}
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("percent", "-1"),
        ("percent", "5.1234567"),
        ("amount", "1.001"),
        ("taxable_amount", 1.5),
        ("tax_id", "a b"),
    ],
)
def test_tax_line_fields_are_checked(field, value):
    taxes = [{**BC_TAX[0], field: value}, *BC_TAX[1:]]

    assert fields_of(AppInvoice, bc_invoice(taxes)) == [f"tax_lines[0].{field}"]


def test_tax_line_problems_are_reported_with_the_others():
    taxes = [*BC_TAX, tax_line("BC", "7", "1"), tax_line("X", "1", "0")]

    assert fields_of(AppCreditMemo, bc_invoice(taxes, total="795")) == [
        "total",
        "tax_lines[3]",
        "tax_lines[4].tax_id",
        "tax_lines",
    ]


# --- payments ---------------------------------------------------------------------------------


def test_a_valid_payment_parses():
    parsed = AppPayment.model_validate(payment(method="Cheque", reference="CHQ-1"))

    assert parsed.applications[0].amount == D("60.00")
    assert parsed.reference == "CHQ-1"


def test_applications_may_not_exceed_the_amount():
    apps = [{"invoice_id": "a", "amount": "60"}, {"invoice_id": "b", "amount": "40.01"}]

    assert problems_of(AppPayment, payment(applications=apps)) == [
        {"field": "applications", "message": "apply 100.01 in total, more than the payment's amount 100.00"}
    ]


def test_applications_may_add_up_to_exactly_the_amount_or_less():
    apps = [{"invoice_id": "a", "amount": "60"}, {"invoice_id": "b", "amount": "40"}]

    assert len(AppPayment.model_validate(payment(applications=apps)).applications) == 2
    assert AppPayment.model_validate(payment(applications=[])).applications == ()


def test_an_invoice_is_applied_once_per_payment():
    apps = [{"invoice_id": "a", "amount": "10"}, {"invoice_id": "a", "amount": "10"}]

    assert fields_of(AppPayment, payment(applications=apps)) == ["applications[1].invoice_id"]


def test_application_amounts_are_positive_and_the_payment_not_negative():
    assert fields_of(AppPayment, payment(applications=[{"invoice_id": "a", "amount": "0"}])) == [
        "applications[0].amount"
    ]
    assert fields_of(AppPayment, payment(amount="-1", applications=[])) == ["amount"]


def test_payment_reference_fits_qbo_21_characters():
    assert fields_of(AppPayment, payment(reference="R" * 22)) == ["reference"]


# --- clients ----------------------------------------------------------------------------------


def test_a_client_with_addresses_parses():
    parsed = AppClient.model_validate(
        client(
            first_name="Ada",
            last_name="Lovelace",
            email=" ada@example.com ",
            billing_address={"line1": "1 Main St", "city": "Reading", "postal_code": "RG1 1AA"},
        )
    )

    assert parsed.email == "ada@example.com"
    assert parsed.billing_address is not None
    assert parsed.billing_address.city == "Reading"
    assert parsed.active is True
    assert parsed.tax_exempt is False


def test_a_client_needs_some_name():
    assert problems_of(AppClient, {"id": "c", "version": 1, "type": "client"}) == [
        {
            "field": "display_name",
            "message": "a client needs a display_name, a company_name or a person's name",
        }
    ]


def test_a_client_cannot_be_its_own_parent():
    assert fields_of(AppClient, client(parent_id="client-1")) == ["parent_id"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "not-an-email"), ("phone", "1" * 31), ("company_name", "x" * 101), ("active", "no")],
)
def test_client_fields_are_checked(field, value):
    assert fields_of(AppClient, client(**{field: value})) == [field]


def test_address_fields_are_named_with_their_path():
    assert fields_of(AppClient, client(shipping_address={"postal_code": "x" * 31, "zip": "1"})) == [
        "shipping_address.postal_code",
        "shipping_address.zip",
    ]


# --- settings ---------------------------------------------------------------------------------


def test_settings_defaults_push_everything_and_create_nothing():
    settings = TenantSettings()

    assert (settings.push_invoices, settings.push_payments, settings.push_credits) == (True, True, True)
    assert settings.client_types == frozenset()
    assert settings.auto_create_customers is False
    assert settings.posting_mode == "full"
    assert settings.propagate_deletes is False
    assert settings.go_live_date is None


def test_summarised_mode_needs_a_master_customer():
    assert problems_of(TenantSettings, {"posting_mode": "summarised"}) == [
        {"field": "master_customer_id", "message": "is required when posting_mode is summarised"}
    ]
    parsed = TenantSettings.model_validate({"posting_mode": "summarised", "master_customer_id": "58"})
    assert parsed.master_customer_id == "58"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("posting_mode", "daily"),
        ("master_customer_id", "abc"),
        ("revenue_account_id", ""),
        ("push_invoices", "true"),
        ("go_live_date", "soon"),
        ("client_types", ["ok", ""]),
        ("unknown", 1),
    ],
)
def test_settings_fields_are_checked(field, value):
    assert fields_of(TenantSettings, {field: value})[0].startswith(field)


def test_client_types_are_a_set():
    parsed = TenantSettings.model_validate({"client_types": ["client", "client", "matter"]})

    assert parsed.client_types == frozenset({"client", "matter"})


def test_a_body_that_is_not_an_object_is_named_as_the_body():
    assert problems_of(TenantSettings, ["not", "an", "object"])[0]["field"] == "(body)"


# --- settings: a partial update (JSON merge patch) ---------------------------------------------


def patch_problems(settings: TenantSettings, patch: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as caught:
        settings.patched(patch)
    return validation_problems(caught.value)


def test_a_patch_replaces_the_keys_given_and_keeps_the_others():
    settings = TenantSettings(client_types=frozenset({"client"}), go_live_date=date(2026, 1, 1))

    patched = settings.patched({"push_payments": False, "client_types": ["matter", "client"]})

    assert patched == settings.model_copy(
        update={"push_payments": False, "client_types": frozenset({"client", "matter"})}
    )
    assert settings.patched({}) == settings


def test_null_resets_a_setting_to_its_default():
    settings = TenantSettings(
        auto_create_customers=True, client_types=frozenset({"client"}), revenue_account_id="79"
    )

    patched = settings.patched(
        {"auto_create_customers": None, "client_types": None, "revenue_account_id": None}
    )

    assert patched == TenantSettings()


def test_a_patch_is_validated_as_a_whole_put_is():
    settings = TenantSettings(posting_mode="summarised", master_customer_id="58")

    # the result breaks a rule across fields: named as the PUT names it
    assert patch_problems(settings, {"master_customer_id": None}) == [
        {"field": "master_customer_id", "message": "is required when posting_mode is summarised"}
    ]
    assert [
        p["field"] for p in patch_problems(settings, {"push_invoices": "no", "go_live_date": "soon"})
    ] == [
        "push_invoices",
        "go_live_date",
    ]
    assert settings.patched({"posting_mode": "full", "master_customer_id": None}) == TenantSettings()


@pytest.mark.parametrize("value", [1, None, {"nested": True}])
def test_a_key_that_is_no_setting_is_refused_as_a_put_refuses_it(value):
    assert patch_problems(TenantSettings(), {"unknown": value}) == problems_of(TenantSettings, {"unknown": 1})


def test_merge_patch_follows_rfc_7386():
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}
