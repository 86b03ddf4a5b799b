"""Seed data per country: what a new sandbox company contains, and that it obeys the API's rules."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qbo_sandbox import accounting, seed
from qbo_sandbox.company import Company
from tests.sandbox_company import must_get, seeded_company

NOW = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
REALM = "9341450000000001"
NAME_LISTS = ("Customer", "Vendor", "Employee", "Item", "Account", "Term", "PaymentMethod")


def make_company(country: str = "US", *, realm: str = REALM) -> Company:
    return seeded_company(country, realm=realm, name=f"Sandbox Company_{country}_7", now=NOW)


@pytest.fixture(autouse=True)
def no_seeded_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test this module's seed alone; the transactions module registers its own hook."""
    monkeypatch.setattr(seed, "seed_transactions_hook", [])


@pytest.fixture(scope="module")
def us() -> Company:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seed, "seed_transactions_hook", [])
        return make_company("US")


def names(co: Company, entity: str, field: str = "Name") -> dict[str, Any]:
    return {row["Id"]: row.get(field) for row in co.rows(entity)}


# --- US: Craig's Design and Landscaping Services ------------------------------------------------


def test_us_counts(us: Company) -> None:
    counts = {entity: len(table) for entity, table in us.entities.items()}

    assert counts == {
        "CompanyInfo": 1,
        "Preferences": 1,
        "TaxAgency": 2,
        "TaxRate": 3,
        "TaxCode": 4,
        "Term": 4,
        "PaymentMethod": 7,
        "Account": 90,
        "Item": 18,
        "Customer": 29,
        "Vendor": 26,
        "Employee": 2,
    }


def test_us_customers_have_the_sandbox_ids(us: Company) -> None:
    customers = names(us, "Customer", "DisplayName")

    assert list(customers) == [str(i) for i in range(1, 30)]
    assert customers["1"] == "Amy's Bird Sanctuary"
    assert customers["7"] == "Freeman Sporting Goods"
    assert customers["22"] == "Shara Barnett"
    assert customers["29"] == "Weiskopf Consulting"
    for job, parent, name in (
        ("8", "7", "Freeman Sporting Goods:0969 Ocean View Road"),
        ("9", "7", "Freeman Sporting Goods:55 Twin Lane"),
        ("23", "22", "Shara Barnett:Barnett Design"),
    ):
        row = must_get(us, "Customer", job)
        assert (row["Job"], row["ParentRef"], row["Level"], row["FullyQualifiedName"]) == (
            True,
            {"value": parent},
            1,
            name,
        )


def test_us_customer_shape_follows_the_recording(us: Company) -> None:
    freeman = must_get(us, "Customer", "7")

    assert freeman["BillAddr"] == {
        "Id": "7",
        "Line1": "370 Easy St.",
        "City": "Middlefield",
        "CountrySubDivisionCode": "CA",
        "PostalCode": "94482",
        "Lat": "37.4031672",
        "Long": "-122.0642815",
    }
    assert freeman["ShipAddr"] == freeman["BillAddr"]
    assert must_get(us, "Customer", "18")["ShipAddr"]["Id"] == "19"  # a different ship-to address
    assert freeman["PrimaryEmailAddr"] == {"Address": "Sporting_goods@intuit.com"}
    assert (freeman["Balance"], freeman["BalanceWithJobs"], freeman["Taxable"]) == (0, 0, False)
    assert must_get(us, "Customer", "1")["Taxable"] is True
    assert must_get(us, "Customer", "21")["MiddleName"] == "Fruit"


def test_us_vendors_and_employees_share_the_name_sequence(us: Company) -> None:
    vendors = names(us, "Vendor", "DisplayName")
    employees = names(us, "Employee", "DisplayName")

    assert set(vendors) == {str(i) for i in range(30, 54)} | {"56", "57"}
    assert employees == {"54": "Emily Platt", "55": "John Johnson"}
    assert vendors["30"] == "Books by Bessie"
    assert must_get(us, "Vendor", "31")["Vendor1099"] is True
    assert must_get(us, "Vendor", "32")["TermRef"] == {"value": "1"}


def test_us_accounts(us: Company) -> None:
    expected = {
        "1": ("Services", "Income", "Revenue"),
        "2": ("Retained Earnings", "Equity", "Equity"),
        "4": ("Undeposited Funds", "Other Current Asset", "Asset"),
        "33": ("Accounts Payable (A/P)", "Accounts Payable", "Liability"),
        "34": ("Opening Balance Equity", "Equity", "Equity"),
        "35": ("Checking", "Bank", "Asset"),
        "36": ("Savings", "Bank", "Asset"),
        "79": ("Sales of Product Income", "Income", "Revenue"),
        "80": ("Cost of Goods Sold", "Cost of Goods Sold", "Expense"),
        "81": ("Inventory Asset", "Other Current Asset", "Asset"),
        "84": ("Accounts Receivable (A/R)", "Accounts Receivable", "Asset"),
        "86": ("Discounts given", "Income", "Revenue"),
        "87": ("Unapplied Cash Payment Income", "Income", "Revenue"),
        "89": ("Arizona Dept. of Revenue Payable", "Other Current Liability", "Liability"),
        "90": ("Board of Equalization Payable", "Other Current Liability", "Liability"),
    }
    for account_id, (name, account_type, classification) in expected.items():
        row = must_get(us, "Account", account_id)
        assert (row["Name"], row["AccountType"], row["Classification"]) == (
            name,
            account_type,
            classification,
        )
    assert must_get(us, "Account", "4")["AccountSubType"] == "UndepositedFunds"
    assert must_get(us, "Account", "48")["FullyQualifiedName"] == (
        "Landscaping Services:Job Materials:Fountains and Garden Lighting"
    )
    types = {row["AccountType"] for row in us.rows("Account")}
    assert types == {
        "Bank",
        "Accounts Receivable",
        "Other Current Asset",
        "Fixed Asset",
        "Other Asset",
        "Accounts Payable",
        "Credit Card",
        "Other Current Liability",
        "Long Term Liability",
        "Equity",
        "Income",
        "Cost of Goods Sold",
        "Expense",
        "Other Income",
        "Other Expense",
    }
    assert all(row["CurrencyRef"]["value"] == "USD" for row in us.rows("Account"))


def test_us_items(us: Company) -> None:
    items = names(us, "Item")

    assert list(items) == [str(i) for i in range(1, 19)]
    assert (items["1"], items["2"], items["18"]) == ("Services", "Hours", "Trimming")
    assert {i for i, row in us.entities["Item"].items() if row["Type"] == "Inventory"} == {
        "5",
        "11",
        "16",
        "17",
    }
    services = must_get(us, "Item", "1")
    assert (services["Type"], services["IncomeAccountRef"]) == ("Service", {"value": "1", "name": "Services"})
    fountain = must_get(us, "Item", "5")
    assert (fountain["UnitPrice"], fountain["QtyOnHand"], fountain["TrackQtyOnHand"]) == (275, 2, True)
    assert fountain["AssetAccountRef"]["value"] == "81"


def test_us_tax(us: Company) -> None:
    tax, non = must_get(us, "TaxCode", "TAX"), must_get(us, "TaxCode", "NON")
    california, group = must_get(us, "TaxCode", "2"), must_get(us, "TaxCode", "3")

    assert "Active" not in tax
    assert "Active" not in non
    assert (tax["Taxable"], non["Taxable"]) == (True, False)
    assert california["Name"] == "California"
    assert california["SalesTaxRateList"]["TaxRateDetail"] == [
        {
            "TaxRateRef": {"value": "3", "name": "California"},
            "TaxTypeApplicable": "TaxOnAmount",
            "TaxOrder": 0,
        }
    ]
    assert must_get(us, "TaxRate", "3")["RateValue"] == 8
    assert must_get(us, "TaxRate", "3")["AgencyRef"] == {"value": "1"}
    group_rates = [d["TaxRateRef"]["value"] for d in group["SalesTaxRateList"]["TaxRateDetail"]]
    assert len(group_rates) == 2
    assert all(must_get(us, "TaxRate", r)["Active"] for r in group_rates)


def test_us_terms_and_payment_methods(us: Company) -> None:
    terms = {row["Id"]: (row["Name"], row["DueDays"], row["Type"]) for row in us.rows("Term")}

    assert terms == {
        "1": ("Due on receipt", 0, "STANDARD"),
        "2": ("Net 15", 15, "STANDARD"),
        "3": ("Net 30", 30, "STANDARD"),
        "4": ("Net 60", 60, "STANDARD"),
    }
    assert names(us, "PaymentMethod") == {
        "1": "Cash",
        "2": "Check",
        "3": "Visa",
        "4": "MasterCard",
        "5": "Discover",
        "6": "American Express",
        "7": "Diners Club",
    }
    assert must_get(us, "PaymentMethod", "3")["Type"] == "CREDIT_CARD"


def test_us_company_info_and_preferences(us: Company) -> None:
    info = must_get(us, "CompanyInfo", REALM)
    prefs = must_get(us, "Preferences", "1")

    assert (info["Id"], info["CompanyName"], info["Country"]) == (REALM, "Sandbox Company_US_7", "US")
    assert info["LegalName"] == "Craig's Design and Landscaping Services"
    assert {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"} in info["NameValue"]
    assert prefs["SalesFormsPrefs"]["CustomTxnNumbers"] is False
    assert prefs["SalesFormsPrefs"]["AutoApplyCredit"] is True
    assert prefs["SalesFormsPrefs"]["DefaultTerms"] == {"value": "3"}
    assert prefs["CurrencyPrefs"]["HomeCurrency"]["value"] == "USD"
    assert (prefs["TaxPrefs"]["UsingSalesTax"], prefs["TaxPrefs"]["PartnerTaxEnabled"]) == (True, True)


def test_us_settings(us: Company) -> None:
    assert us.settings["doc_number_floor"] == 1037
    assert us.settings["default_tax_code"] == "2"


def test_new_ids_continue_like_the_sandbox() -> None:
    co = make_company("US")

    customer = accounting.create(
        co, "Customer", {"DisplayName": "New One", "BillAddr": {"Line1": "1 A St."}}, LATER
    )
    account = accounting.create(co, "Account", {"Name": "New Bank", "AccountType": "Bank"}, LATER)
    item = accounting.create(
        co, "Item", {"Name": "New Item", "Type": "Service", "IncomeAccountRef": {"value": "1"}}, LATER
    )

    assert (customer["Id"], customer["BillAddr"]["Id"]) == ("58", "96")
    assert (account["Id"], item["Id"]) == ("1150040000", "19")


# --- CA, GB, AU ---------------------------------------------------------------------------------


LOCAL = {
    "CA": ("CAD", "Canadian Dollar", {"GST", "HST ON", "GST/PST BC", "Exempt", "Zero-rated", "Out of Scope"}),
    "GB": ("GBP", "British Pound Sterling", {"20.0% S", "5.0% R", "0.0% Z", "Exempt", "No VAT"}),
    "AU": ("AUD", "Australian Dollar", {"GST", "GST free", "Input taxed"}),
}


@pytest.mark.parametrize("country", sorted(LOCAL))
def test_non_us_companies(country: str) -> None:
    currency, currency_name, tax_codes = LOCAL[country]

    co = make_company(country)

    info, prefs = must_get(co, "CompanyInfo", REALM), must_get(co, "Preferences", "1")
    assert (info["Country"], info["CompanyName"]) == (country, f"Sandbox Company_{country}_7")
    assert prefs["CurrencyPrefs"]["HomeCurrency"] == {"value": currency, "name": currency_name}
    assert (prefs["TaxPrefs"]["UsingSalesTax"], prefs["TaxPrefs"]["PartnerTaxEnabled"]) == (True, False)
    assert set(names(co, "TaxCode").values()) == tax_codes
    assert all(i.isdigit() for table in ("TaxCode", "TaxRate") for i in co.entities[table])
    assert all(row["Active"] is True for row in co.rows("TaxCode"))
    assert must_get(co, "TaxCode", "2")["PurchaseTaxRateList"]["TaxRateDetail"]
    for entity in ("Account", "Customer", "Vendor"):
        assert {row["CurrencyRef"]["value"] for row in co.rows(entity)} == {currency}
    assert len(co.entities["Customer"]) >= 5
    assert co.entities["Vendor"]
    assert co.entities["Employee"]
    assert must_get(co, "Item", "1")["SalesTaxCodeRef"] == {"value": "2"}
    assert "Taxable" not in must_get(co, "Customer", "1")
    assert co.settings["doc_number_floor"] == 1000


def test_canada_has_a_group_tax_code() -> None:
    co = make_company("CA")

    group = next(row for row in co.rows("TaxCode") if row["Name"] == "GST/PST BC")

    rates = [
        must_get(co, "TaxRate", d["TaxRateRef"]["value"])["RateValue"]
        for d in group["SalesTaxRateList"]["TaxRateDetail"]
    ]
    assert sorted(rates) == [5, 7]
    assert group["TaxGroup"] is True


@pytest.mark.parametrize("country", sorted(seed.SUPPORTED_COUNTRIES))
def test_key_ids_exist_in_every_country(country: str) -> None:
    co = make_company(country)
    entity_of = {
        "account": "Account",
        "item": "Item",
        "term": "Term",
        "payment": "PaymentMethod",
        "preferences": "Preferences",
        "tax": "TaxCode",
        "customer": "Customer",
        "vendor": "Vendor",
        "employee": "Employee",
    }

    for key, entity_id in seed.KEY_IDS[country].items():
        entity = "TaxRate" if key.startswith("tax_rate") else entity_of[key.split("_")[0]]
        assert must_get(co, entity, entity_id) is not None, key
    keys = seed.KEY_IDS[country]
    assert must_get(co, "Account", keys["account_undeposited_funds"])["AccountSubType"] == "UndepositedFunds"
    assert (
        must_get(co, "Account", keys["account_accounts_receivable"])["AccountType"] == "Accounts Receivable"
    )
    assert must_get(co, "Item", keys["item_inventory"])["Type"] == "Inventory"
    assert must_get(co, "Customer", keys["customer_sub"])["ParentRef"] == {"value": keys["customer_parent"]}


# --- every country ------------------------------------------------------------------------------


@pytest.mark.parametrize("country", sorted(seed.SUPPORTED_COUNTRIES))
def test_seeded_rows_have_the_shape_a_create_gives(country: str) -> None:
    """A full update that sends a seeded row back unchanged changes nothing but its version."""
    co = make_company(country)

    for entity in NAME_LISTS:
        for row in list(co.rows(entity)):
            before = copy.deepcopy(row)
            after = accounting.update(co, entity, copy.deepcopy(row), LATER)
            strip = {"SyncToken", "MetaData"}
            assert {k: v for k, v in after.items() if k not in strip} == {
                k: v for k, v in before.items() if k not in strip
            }, (entity, row["Id"])


@pytest.mark.parametrize("country", sorted(seed.SUPPORTED_COUNTRIES))
def test_seed_is_unjournalled_and_deterministic(country: str) -> None:
    first, second = make_company(country), make_company(country)

    assert first.journal == []
    assert first.entities == second.entities
    assert first.sequences == second.sequences


def test_transaction_hooks_run_last(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, datetime, int]] = []

    def hook(company: Company, now: datetime) -> None:
        calls.append((company.realm_id, now, len(company.entities["Customer"])))

    monkeypatch.setattr(seed, "seed_transactions_hook", [hook])

    make_company("GB", realm="42")

    assert calls == [("42", NOW, 7)]


def test_unknown_country_is_refused() -> None:
    co = Company(realm_id=REALM, country="FR", name="Sandbox Company_FR_1", created_at=NOW)

    with pytest.raises(ValueError, match="FR"):
        seed.seed_company(co, NOW)
