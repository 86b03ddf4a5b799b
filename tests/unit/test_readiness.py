"""Is a document ready to post? (shared.push.readiness) — every reason, all of them at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from shared.push.models import (
    AppClient,
    AppCreditApplication,
    AppCreditMemo,
    AppInvoice,
    AppPayment,
    LineKind,
    TenantSettings,
)
from shared.push.payloads import CompanyFacts, SalesTaxRate
from shared.push.readiness import (
    MappingLookup,
    NotReady,
    Ready,
    Reason,
    Skipped,
    Step,
    evaluate_client,
    evaluate_credit_application,
    evaluate_credit_memo,
    evaluate_invoice,
    evaluate_payment,
)

US = CompanyFacts("US", "USD", "us_automated")
GB = CompanyFacts("GB", "GBP", "per_line")
TODAY = date(2026, 6, 1)


@dataclass
class FakeLookup:
    """The tenant's links and the app's clients, in memory (a fake of the MappingLookup port)."""

    customers: dict[str, str] = field(default_factory=lambda: {"client-1": "58"})
    items: dict[tuple[str, str], str] = field(
        default_factory=lambda: {("work", "W-1"): "1", ("expense", "E-1"): "2"}
    )
    tax_codes: dict[str, str] = field(default_factory=lambda: {"VAT20": "2"})
    # The mapping cache's sales rates per QBO tax code (a code absent: its rates are not cached).
    rates: dict[str, tuple[SalesTaxRate, ...]] = field(
        default_factory=lambda: {"2": (SalesTaxRate("1", Decimal(20)),)}
    )
    invoices: dict[str, str] = field(default_factory=lambda: {"inv-1": "130"})
    credit_memos: dict[str, str] = field(default_factory=dict)
    clients: dict[str, AppClient] = field(default_factory=dict)

    def customer_for(self, client_id: str) -> str | None:
        return self.customers.get(client_id)

    def item_for(self, kind: LineKind, code: str) -> str | None:
        return self.items.get((kind, code))

    def tax_code_for(self, tax_id: str) -> str | None:
        return self.tax_codes.get(tax_id)

    def tax_rates_for(self, tax_id: str) -> tuple[SalesTaxRate, ...] | None:
        code = self.tax_codes.get(tax_id)
        return self.rates.get(code) if code is not None else None

    def invoice_qbo_id(self, invoice_id: str) -> str | None:
        return self.invoices.get(invoice_id)

    def credit_memo_qbo_id(self, credit_memo_id: str) -> str | None:
        return self.credit_memos.get(credit_memo_id)

    def client(self, client_id: str) -> AppClient | None:
        return self.clients.get(client_id)


def make_client(client_id: str = "client-1", **overrides: Any) -> AppClient:
    data: dict[str, Any] = {
        "id": client_id,
        "version": 1,
        "type": "client",
        "company_name": f"Co {client_id}",
    }
    data.update(overrides)
    return AppClient.model_validate(data)


def lookup(**overrides: Any) -> FakeLookup:
    fake = FakeLookup(**overrides)
    if "clients" not in overrides:
        fake.clients = {"client-1": make_client()}
    return fake


def us_line(line_id: str = "1", **overrides: Any) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "kind": "work",
        "code": "W-1",
        "amount": "10.00",
        "taxable": True,
        **overrides,
    }


def gb_line(line_id: str = "1", **overrides: Any) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "kind": "work",
        "code": "W-1",
        "amount": "10.00",
        "tax_id": "VAT20",
        **overrides,
    }


def invoice(lines: list[dict[str, Any]] | None = None, **overrides: Any) -> AppInvoice:
    lines = lines or [us_line()]
    total = sum(float(ln["amount"]) for ln in lines)
    data: dict[str, Any] = {
        "id": "inv-2",
        "version": 1,
        "number": "INV-2",
        "date": "2026-05-01",
        "client_id": "client-1",
        "lines": lines,
        "tax_total": "0",
        "total": f"{total:.2f}",
    }
    data.update(overrides)
    return AppInvoice.model_validate(data)


def credit_memo(
    lines: list[dict[str, Any]] | None = None, applications: Any = (), **overrides: Any
) -> AppCreditMemo:
    data = invoice(lines, **overrides).model_dump(exclude={"due_date"})
    return AppCreditMemo.model_validate({**data, "id": "cm-1", "applications": list(applications)})


def payment(**overrides: Any) -> AppPayment:
    data: dict[str, Any] = {
        "id": "pay-1",
        "version": 1,
        "client_id": "client-1",
        "date": "2026-05-02",
        "amount": "50.00",
        "applications": [{"invoice_id": "inv-1", "amount": "20"}],
    }
    data.update(overrides)
    return AppPayment.model_validate(data)


def settings(**overrides: Any) -> TenantSettings:
    return TenantSettings.model_validate(overrides)


def reasons(result: Ready | NotReady | Skipped) -> list[tuple[str, dict[str, str]]]:
    assert isinstance(result, NotReady), result
    return [(r.code, dict(r.details)) for r in result.reasons]


def check_invoice(
    inv: AppInvoice,
    tenant: TenantSettings | None = None,
    facts: CompanyFacts = US,
    links: MappingLookup | None = None,
) -> Ready | NotReady | Skipped:
    return evaluate_invoice(inv, tenant or settings(), facts, links or lookup(), today=TODAY)


# --- ready ------------------------------------------------------------------------------------


def test_a_us_invoice_with_everything_mapped_is_ready():
    assert (
        check_invoice(invoice([us_line(), us_line("2", kind="expense", code="E-1", taxable=False)]))
        == Ready()
    )


def test_a_gb_invoice_with_everything_mapped_is_ready():
    assert check_invoice(invoice([gb_line()]), facts=GB) == Ready()


def test_a_document_dated_on_the_go_live_date_is_ready():
    assert check_invoice(invoice(date="2026-05-01"), settings(go_live_date="2026-05-01")) == Ready()


# --- go-live ----------------------------------------------------------------------------------


def test_a_document_dated_before_go_live_is_skipped_not_failed():
    result = check_invoice(
        invoice(date="2026-04-30"), settings(go_live_date="2026-05-01", push_invoices=False)
    )

    assert result == Skipped(Reason("before_go_live", {"date": "2026-04-30", "go_live_date": "2026-05-01"}))
    assert result.outcome == "skipped"


def test_documents_wait_while_the_go_live_date_is_still_ahead():
    result = evaluate_invoice(
        invoice(date="2026-07-01"), settings(go_live_date="2026-07-01"), US, lookup(), today=date(2026, 6, 30)
    )

    assert reasons(result) == [("go_live_pending", {"go_live_date": "2026-07-01", "today": "2026-06-30"})]


def test_payments_and_credit_memos_before_go_live_are_skipped_too():
    tenant = settings(go_live_date="2026-06-01")

    assert isinstance(evaluate_payment(payment(), tenant, US, lookup(), today=TODAY), Skipped)
    assert isinstance(evaluate_credit_memo(credit_memo(), tenant, US, lookup(), today=TODAY), Skipped)


# --- switches ---------------------------------------------------------------------------------


def test_a_disabled_push_is_a_reason_for_each_document_kind():
    off = settings(push_invoices=False, push_payments=False, push_credits=False)

    assert reasons(check_invoice(invoice(), off)) == [("push_disabled", {"document": "invoice"})]
    assert reasons(evaluate_payment(payment(), off, US, lookup(), today=TODAY)) == [
        ("push_disabled", {"document": "payment"})
    ]
    assert reasons(evaluate_credit_memo(credit_memo(), off, US, lookup(), today=TODAY)) == [
        ("push_disabled", {"document": "credit_memo"})
    ]


def test_each_switch_only_stops_its_own_kind():
    only_invoices_off = settings(push_invoices=False)

    assert evaluate_payment(payment(), only_invoices_off, US, lookup(), today=TODAY) == Ready()
    assert evaluate_credit_memo(credit_memo(), only_invoices_off, US, lookup(), today=TODAY) == Ready()


# --- clients ----------------------------------------------------------------------------------


def test_an_unlinked_client_is_a_reason_unless_customers_may_be_created():
    links = lookup(customers={})

    assert reasons(check_invoice(invoice(), links=links)) == [
        ("client_not_linked", {"client_id": "client-1", "role": "client", "cause": "not_linked"})
    ]
    created = check_invoice(invoice(), settings(auto_create_customers=True), links=links)
    assert created == Ready((Step("create_customer_first", {"client_id": "client-1"}),))


def test_a_client_the_app_never_sent_cannot_be_created():
    links = lookup(customers={}, clients={})

    assert reasons(check_invoice(invoice(), settings(auto_create_customers=True), links=links)) == [
        ("client_not_linked", {"client_id": "client-1", "role": "client", "cause": "unknown_client"})
    ]


def test_a_site_and_its_unlinked_parent_are_created_parent_first():
    site = make_client("site-1", parent_id="client-1", type="matter")
    links = lookup(customers={}, clients={"client-1": make_client(), "site-1": site})

    result = check_invoice(invoice(client_id="site-1"), settings(auto_create_customers=True), links=links)

    assert result == Ready(
        (
            Step("create_customer_first", {"client_id": "client-1"}),
            Step("create_customer_first", {"client_id": "site-1"}),
        )
    )


def test_a_site_of_a_linked_parent_needs_only_itself_created():
    site = make_client("site-1", parent_id="client-1")
    links = lookup(clients={"client-1": make_client(), "site-1": site})

    result = check_invoice(invoice(client_id="site-1"), settings(auto_create_customers=True), links=links)

    assert result == Ready((Step("create_customer_first", {"client_id": "site-1"}),))


def test_a_site_whose_parent_is_unknown_names_the_parent():
    site = make_client("site-1", parent_id="client-9")
    links = lookup(customers={}, clients={"site-1": site})

    assert reasons(
        check_invoice(invoice(client_id="site-1"), settings(auto_create_customers=True), links=links)
    ) == [("client_not_linked", {"client_id": "client-9", "role": "parent", "cause": "unknown_client"})]


def test_an_excluded_client_type_is_a_reason():
    tenant = settings(client_types=["customer"])

    assert reasons(check_invoice(invoice(), tenant)) == [
        ("client_type_excluded", {"client_id": "client-1", "type": "client"})
    ]
    assert check_invoice(invoice(), settings(client_types=["client", "customer"])) == Ready()


def test_an_empty_client_type_set_means_every_type():
    assert check_invoice(invoice(), settings(client_types=[])) == Ready()


# --- lines ------------------------------------------------------------------------------------


def test_every_unmapped_line_is_named_with_its_kind_and_code():
    lines = [us_line("1", code="W-9"), us_line("2"), us_line("3", kind="expense", code="E-7")]

    assert reasons(check_invoice(invoice(lines))) == [
        ("item_not_mapped", {"line_id": "1", "kind": "work", "code": "W-9"}),
        ("item_not_mapped", {"line_id": "3", "kind": "expense", "code": "E-7"}),
    ]


def test_us_lines_need_the_taxable_flag():
    lines = [us_line("1", taxable=None), us_line("2", taxable=False)]

    assert reasons(check_invoice(invoice(lines))) == [("taxable_flag_missing", {"line_id": "1"})]


def test_a_tax_id_on_a_us_line_is_a_tax_model_mismatch():
    lines = [gb_line("1")]

    assert reasons(check_invoice(invoice(lines))) == [
        ("tax_model_mismatch", {"line_id": "1", "expected": "taxable", "found": "tax_id"})
    ]


def test_us_manual_sales_tax_follows_the_us_rules():
    manual = CompanyFacts("US", "USD", "us_manual")

    assert check_invoice(invoice([us_line()]), facts=manual) == Ready()
    assert reasons(check_invoice(invoice([gb_line()]), facts=manual))[0][0] == "tax_model_mismatch"


def test_gb_lines_need_a_mapped_tax_id():
    lines = [
        gb_line("1", tax_id="VAT5"),
        gb_line("2", tax_id=None),
        gb_line("3", tax_id=None, taxable=True),
        gb_line("4"),
    ]

    assert reasons(check_invoice(invoice(lines), facts=GB)) == [
        ("tax_not_mapped", {"line_id": "1", "tax_id": "VAT5"}),
        ("tax_id_missing", {"line_id": "2"}),
        ("tax_model_mismatch", {"line_id": "3", "expected": "tax_id", "found": "taxable"}),
    ]


# --- tax per rate -----------------------------------------------------------------------------

CA = CompanyFacts("CA", "CAD", "per_line")
GST, HST, PST = SalesTaxRate("1", Decimal(5)), SalesTaxRate("2", Decimal(13)), SalesTaxRate("3", Decimal(7))


def ca_lookup(**overrides: Any) -> FakeLookup:
    fields: dict[str, Any] = {
        "tax_codes": {"GST": "2", "HST": "3", "BC": "4"},
        "rates": {"2": (GST,), "3": (HST,), "4": (GST, PST)},
    }
    return lookup(**{**fields, **overrides})


def ca_invoice(tax_lines: list[dict[str, Any]], lines: list[dict[str, Any]] | None = None) -> AppInvoice:
    lines = lines or [gb_line("1", amount="1000", tax_id="HST"), gb_line("2", amount="-300", tax_id="BC")]
    tax_total = sum(Decimal(str(t["amount"])) for t in tax_lines)
    total = sum(Decimal(str(ln["amount"])) for ln in lines) + tax_total
    return invoice(lines, tax_lines=tax_lines, tax_total=str(tax_total), total=str(total))


BC_TAX = [
    {"tax_id": "HST", "percent": "13", "amount": "130"},
    {"tax_id": "BC", "percent": "5.00", "amount": "-15"},
    {"tax_id": "BC", "percent": "7", "amount": "-21"},
]


def test_a_non_us_invoice_whose_tax_lines_name_rates_of_their_codes_is_ready():
    assert check_invoice(ca_invoice(BC_TAX), facts=CA, links=ca_lookup()) == Ready()
    assert (
        evaluate_credit_memo(
            AppCreditMemo.model_validate(ca_invoice(BC_TAX).model_dump(exclude={"due_date"})),
            settings(),
            CA,
            ca_lookup(),
            today=TODAY,
        )
        == Ready()
    )


def test_a_tax_line_whose_percent_is_no_rate_of_its_code_waits():
    taxes = [BC_TAX[0], {"tax_id": "BC", "percent": "6", "amount": "-36"}]

    assert reasons(check_invoice(ca_invoice(taxes), facts=CA, links=ca_lookup())) == [
        ("tax_rate_unknown", {"tax_id": "BC", "percent": "6"})
    ]


def test_a_percent_two_rates_of_the_code_share_does_not_say_which_agency_is_owed():
    links = ca_lookup(rates={"3": (HST,), "4": (GST, PST, SalesTaxRate("9", Decimal(5)))})

    assert reasons(check_invoice(ca_invoice(BC_TAX), facts=CA, links=links)) == [
        ("tax_rate_unknown", {"tax_id": "BC", "percent": "5.00"})
    ]


def test_tax_lines_wait_for_the_rates_of_every_code_of_the_lines():
    # HST's code has no cached rates: it is named by a tax line; so would a code no tax line names.
    links = ca_lookup(rates={"4": (GST, PST)})

    assert reasons(check_invoice(ca_invoice(BC_TAX), facts=CA, links=links)) == [
        ("tax_rates_unknown", {"tax_id": "HST", "qbo_id": "3"})
    ]
    assert reasons(check_invoice(ca_invoice(BC_TAX[1:]), facts=CA, links=links)) == [
        ("tax_rates_unknown", {"tax_id": "HST", "qbo_id": "3"})
    ]


def test_an_unmapped_tax_is_reported_per_line_and_not_again_for_its_tax_lines():
    links = ca_lookup(tax_codes={"HST": "3"})

    assert reasons(check_invoice(ca_invoice(BC_TAX), facts=CA, links=links)) == [
        ("tax_not_mapped", {"line_id": "2", "tax_id": "BC"})
    ]


def test_a_us_document_with_tax_lines_waits_rather_than_dropping_the_breakdown():
    # Tax lines name a tax_id some line carries, which a US line cannot: both are reported.
    taxed = invoice(
        [gb_line("1", amount="100", tax_id="T")],
        tax_lines=[{"tax_id": "T", "percent": "8", "amount": "8"}],
        tax_total="8",
        total="108",
    )

    assert reasons(check_invoice(taxed, facts=US)) == [
        ("tax_model_mismatch", {"line_id": "1", "expected": "taxable", "found": "tax_id"}),
        ("tax_model_mismatch", {"expected": "taxable", "found": "tax_lines"}),
    ]


def test_summarised_mode_takes_the_tax_total_and_ignores_tax_lines():
    tenant = settings(posting_mode="summarised", master_customer_id="60")

    assert check_invoice(ca_invoice(BC_TAX), tenant, facts=CA, links=ca_lookup(rates={})) == Ready()


def test_every_reason_is_listed_not_just_the_first():
    tenant = settings(push_invoices=False, client_types=["customer"])
    links = lookup(customers={})
    lines = [us_line("1", code="W-9", taxable=None), gb_line("2")]

    assert [code for code, _ in reasons(check_invoice(invoice(lines), tenant, links=links))] == [
        "push_disabled",
        "client_type_excluded",
        "client_not_linked",
        "item_not_mapped",
        "taxable_flag_missing",
        "tax_model_mismatch",
    ]


def test_not_ready_exposes_its_codes():
    result = check_invoice(invoice([us_line(code="W-9")]), settings(push_invoices=False))

    assert isinstance(result, NotReady)
    assert result.codes == ("push_disabled", "item_not_mapped")
    assert result.outcome == "not_ready"


# --- voids ------------------------------------------------------------------------------------


def test_a_voided_document_is_skipped_unless_deletes_are_propagated():
    voided = invoice(voided=True)

    assert check_invoice(voided) == Skipped(Reason("void_not_propagated", {"document": "invoice"}))
    assert check_invoice(voided, settings(propagate_deletes=True)) == Ready()
    assert evaluate_payment(payment(voided=True), settings(), US, lookup(), today=TODAY) == Skipped(
        Reason("void_not_propagated", {"document": "payment"})
    )
    assert isinstance(
        evaluate_credit_memo(credit_memo(voided=True), settings(), US, lookup(), today=TODAY), Skipped
    )


# --- payments ---------------------------------------------------------------------------------


def test_a_payment_of_posted_invoices_by_a_linked_client_is_ready():
    assert evaluate_payment(payment(), settings(), US, lookup(), today=TODAY) == Ready()


def test_a_payment_waits_for_every_invoice_it_pays():
    apps = [
        {"invoice_id": "inv-1", "amount": "10"},
        {"invoice_id": "inv-2", "amount": "10"},
        {"invoice_id": "inv-3", "amount": "1"},
    ]

    result = evaluate_payment(payment(applications=apps), settings(), US, lookup(), today=TODAY)

    assert reasons(result) == [
        ("invoice_not_posted", {"invoice_id": "inv-2"}),
        ("invoice_not_posted", {"invoice_id": "inv-3"}),
    ]


def test_a_payment_needs_its_client_linked_and_of_a_synced_type():
    result = evaluate_payment(
        payment(), settings(client_types=["customer"]), US, lookup(customers={}), today=TODAY
    )

    assert [code for code, _ in reasons(result)] == ["client_type_excluded", "client_not_linked"]


# --- summarised mode --------------------------------------------------------------------------


def test_summarised_invoices_need_the_master_customer_but_not_the_client_or_tax_fields():
    tenant = settings(posting_mode="summarised", master_customer_id="60")
    links = lookup(customers={})

    assert check_invoice(invoice([us_line(taxable=None)]), tenant, links=links) == Ready()
    assert reasons(check_invoice(invoice([us_line(code="W-9")]), tenant, links=links)) == [
        ("item_not_mapped", {"line_id": "1", "kind": "work", "code": "W-9"})
    ]


def test_summarised_mode_without_a_master_customer_is_a_reason():
    # Settings stored before the rule existed may lack it: readiness does not trust the model alone.
    tenant = TenantSettings.model_construct(posting_mode="summarised", master_customer_id=None)

    assert reasons(check_invoice(invoice(), tenant)) == [("master_customer_missing", {})]


def test_summarised_mode_skips_payments_and_credit_memos():
    tenant = settings(posting_mode="summarised", master_customer_id="60")

    assert evaluate_payment(payment(), tenant, US, lookup(), today=TODAY) == Skipped(
        Reason("summarised_mode", {"document": "payment"})
    )
    assert evaluate_credit_memo(credit_memo(), tenant, US, lookup(), today=TODAY) == Skipped(
        Reason("summarised_mode", {"document": "credit_memo"})
    )


# --- credit memos -----------------------------------------------------------------------------


def test_credit_memos_follow_the_line_rules():
    result = evaluate_credit_memo(
        credit_memo([gb_line(tax_id="VAT5")]), settings(), GB, lookup(), today=TODAY
    )

    assert reasons(result) == [("tax_not_mapped", {"line_id": "1", "tax_id": "VAT5"})]


def test_a_credit_memo_with_applications_waits_for_the_invoices_it_pays():
    memo = credit_memo(
        applications=[{"invoice_id": "inv-1", "amount": "5"}, {"invoice_id": "inv-9", "amount": "5"}]
    )

    result = evaluate_credit_memo(memo, settings(), US, lookup(), today=TODAY)

    assert reasons(result) == [("invoice_not_posted", {"invoice_id": "inv-9"})]
    assert isinstance(
        evaluate_credit_memo(
            memo, settings(), US, lookup(invoices={"inv-1": "1", "inv-9": "2"}), today=TODAY
        ),
        Ready,
    )


def test_a_credit_application_waits_for_its_memo_and_invoices():
    memo = credit_memo(
        applications=[{"invoice_id": "inv-1", "amount": "5"}, {"invoice_id": "inv-9", "amount": "5"}]
    )
    application = AppCreditApplication.of(memo)

    result = evaluate_credit_application(application, settings(), lookup(), today=TODAY)

    assert reasons(result) == [
        ("credit_memo_not_posted", {"credit_memo_id": "cm-1"}),
        ("invoice_not_posted", {"invoice_id": "inv-9"}),
    ]
    posted = lookup(invoices={"inv-1": "1", "inv-9": "2"}, credit_memos={"cm-1": "7"})
    assert isinstance(evaluate_credit_application(application, settings(), posted, today=TODAY), Ready)
    off = evaluate_credit_application(application, settings(push_credits=False), posted, today=TODAY)
    assert reasons(off) == [("push_disabled", {"document": "credit_memo"})]


def test_taking_applications_back_is_always_ready_and_a_voided_memo_follows_the_void_rules():
    removed = AppCreditApplication.of(credit_memo())  # the memo's applications were removed
    assert removed.withdrawn
    assert isinstance(
        evaluate_credit_application(removed, settings(), lookup(customers={}), today=TODAY), Ready
    )

    voided = AppCreditApplication.of(
        credit_memo(voided=True, applications=[{"invoice_id": "inv-1", "amount": "5"}])
    )
    kept = evaluate_credit_application(voided, settings(), lookup(), today=TODAY)
    assert isinstance(kept, Skipped)
    assert kept.reason.code == "void_not_propagated"
    propagated = evaluate_credit_application(voided, settings(propagate_deletes=True), lookup(), today=TODAY)
    assert isinstance(propagated, Ready)


# --- clients themselves -----------------------------------------------------------------------


def test_a_linked_client_is_ready_to_update():
    assert evaluate_client(make_client(), settings(), lookup()) == Ready()


def test_a_new_client_waits_to_be_linked_unless_customers_may_be_created():
    links = lookup(customers={})

    assert reasons(evaluate_client(make_client(), settings(), links)) == [
        ("client_not_linked", {"client_id": "client-1", "role": "client", "cause": "not_linked"})
    ]
    assert evaluate_client(make_client(), settings(auto_create_customers=True), links) == Ready()


def test_a_new_site_needs_its_parent_linked_or_created_first():
    site = make_client("site-1", parent_id="client-1")
    links = lookup(customers={}, clients={"client-1": make_client(), "site-1": site})

    assert evaluate_client(site, settings(auto_create_customers=True), links) == Ready(
        (Step("create_customer_first", {"client_id": "client-1"}),)
    )
    assert [details["role"] for _, details in reasons(evaluate_client(site, settings(), links))] == [
        "parent",
        "client",
    ]


def test_a_client_of_an_excluded_type_is_a_reason():
    assert reasons(evaluate_client(make_client(), settings(client_types=["customer"]), lookup())) == [
        ("client_type_excluded", {"client_id": "client-1", "type": "client"})
    ]


def test_a_deactivated_client_is_pushed_only_when_deletes_propagate():
    inactive = make_client(active=False)

    assert evaluate_client(inactive, settings(), lookup()) == Skipped(
        Reason("void_not_propagated", {"document": "client"})
    )
    assert evaluate_client(inactive, settings(propagate_deletes=True), lookup()) == Ready()
    assert evaluate_client(inactive, settings(propagate_deletes=True), lookup(customers={})) == Skipped(
        Reason("inactive_not_linked", {"client_id": "client-1"})
    )


# --- values -----------------------------------------------------------------------------------


def test_a_reason_shows_as_its_code_and_details():
    reason = Reason("item_not_mapped", {"line_id": "1", "kind": "work", "code": "W-9"})

    assert reason.as_dict() == {
        "code": "item_not_mapped",
        "details": {"line_id": "1", "kind": "work", "code": "W-9"},
    }


def test_reasons_are_immutable_and_comparable_values():
    details: Mapping[str, str] = {"line_id": "1"}
    reason = Reason("taxable_flag_missing", details)

    assert reason == Reason("taxable_flag_missing", {"line_id": "1"})
    assert hash(reason) == hash(Reason("taxable_flag_missing", {"line_id": "2"}))
    with pytest.raises(TypeError):
        reason.details["line_id"] = "2"  # type: ignore[index]
