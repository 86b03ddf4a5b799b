"""Name lists and company settings: QBO's rules as the public dispatch functions apply them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from qbo_sandbox import accounting, seed
from qbo_sandbox.accounting.names import NAME_RULES, adjust_customer_balance
from qbo_sandbox.company import Company
from qbo_sandbox.faults import QboFault
from tests.sandbox_company import must_get, seeded_company

NOW = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
REALM = "9341450000000001"


def make_company(country: str = "US") -> Company:
    return seeded_company(country, realm=REALM, name=f"Sandbox Company_{country}_1", now=NOW)


@pytest.fixture(autouse=True)
def no_seeded_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the name-list rules under test independent of whatever transactions get seeded."""
    monkeypatch.setattr(seed, "seed_transactions_hook", [])


@pytest.fixture
def co() -> Company:
    return make_company()


def create(co: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    return accounting.create(co, entity, body, LATER)


def update(
    co: Company,
    entity: str,
    entity_id: str,
    changes: dict[str, Any],
    *,
    sparse: bool = True,
    token: str | None = None,
) -> dict[str, Any]:
    stored = must_get(co, entity, entity_id)
    assert stored is not None
    body = {"Id": entity_id, "SyncToken": token if token is not None else stored["SyncToken"], **changes}
    if sparse:
        body["sparse"] = True
    return accounting.update(co, entity, body, LATER)


def refused(call: Any, *args: Any, **kwargs: Any) -> QboFault:
    with pytest.raises(QboFault) as info:
        call(*args, **kwargs)
    return info.value


def deactivate(co: Company, entity: str, entity_id: str) -> dict[str, Any]:
    return update(co, entity, entity_id, {"Active": False})


# --- customers: create --------------------------------------------------------------------------

RECORDED_REQUEST: dict[str, Any] = {
    "DisplayName": "Test Customer May 2026 Regen",
    "GivenName": "Test",
    "FamilyName": "Customer",
    "PrimaryEmailAddr": {"Address": "testcustomer@example.com"},
    "PrimaryPhone": {"FreeFormNumber": "(555) 555-1234"},
    "BillAddr": {
        "Line1": "123 Test Street",
        "City": "Mountain View",
        "Country": "USA",
        "CountrySubDivisionCode": "CA",
        "PostalCode": "94042",
    },
    "Notes": "Test customer created via Nango action",
}


def test_created_customer_has_the_fields_qbo_adds(co: Company) -> None:
    created = create(co, "Customer", RECORDED_REQUEST)

    # The values of the recorded sandbox response (a response recorded from a live Intuit sandbox company).
    assert {
        k: created[k]
        for k in (
            "Taxable",
            "Job",
            "BillWithParent",
            "Balance",
            "BalanceWithJobs",
            "CurrencyRef",
            "PreferredDeliveryMethod",
            "IsProject",
            "domain",
            "sparse",
            "SyncToken",
            "FullyQualifiedName",
            "DisplayName",
            "PrintOnCheckName",
            "Active",
            "DefaultTaxCodeRef",
        )
    } == {
        "Taxable": True,
        "Job": False,
        "BillWithParent": False,
        "Balance": 0,
        "BalanceWithJobs": 0,
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "PreferredDeliveryMethod": "Print",
        "IsProject": False,
        "domain": "QBO",
        "sparse": False,
        "SyncToken": "0",
        "FullyQualifiedName": "Test Customer May 2026 Regen",
        "DisplayName": "Test Customer May 2026 Regen",
        "PrintOnCheckName": "Test Customer",
        "Active": True,
        "DefaultTaxCodeRef": {"value": "2"},
    }
    assert created["Id"] == "58"  # the shared name sequence continues after the seed
    assert created["BillAddr"] == {"Id": "96", **RECORDED_REQUEST["BillAddr"]}
    assert "Level" not in created
    assert "ParentRef" not in created


def test_create_is_journalled_and_returns_a_copy(co: Company) -> None:
    assert co.journal == []
    created = create(co, "Customer", {"DisplayName": "Journal Test"})
    created["DisplayName"] = "changed by the caller"

    assert [(c.entity, c.entity_id, c.operation) for c in co.journal] == [("Customer", "58", "Create")]
    assert must_get(co, "Customer", "58")["DisplayName"] == "Journal Test"


@pytest.mark.parametrize(
    ("entity", "taken_by"),
    [
        ("Customer", "Cool Cars"),  # a customer
        ("Customer", "Books by Bessie"),  # a vendor
        ("Customer", "Emily Platt"),  # an employee
        ("Vendor", "Cool Cars"),
        ("Employee", "Books by Bessie"),
    ],
)
def test_display_name_is_unique_across_customers_vendors_and_employees(
    co: Company, entity: str, taken_by: str
) -> None:
    fault = refused(create, co, entity, {"DisplayName": taken_by})

    assert fault.code == "6240"
    assert fault.errors[0].message == "Duplicate Name Exists Error"
    assert fault.errors[0].element == "DisplayName"
    assert co.get(entity, "58") is None


def test_inactive_records_keep_their_name(co: Company) -> None:
    create(co, "Vendor", {"DisplayName": "Gone Fishing Supplies"})
    deactivate(co, "Vendor", "58")

    assert refused(create, co, "Customer", {"DisplayName": "Gone Fishing Supplies"}).code == "6240"


@pytest.mark.parametrize("variant", ["cool cars", "COOL CARS", "  Cool Cars  "])
def test_names_compare_without_case_and_outer_spaces(co: Company, variant: str) -> None:
    assert refused(create, co, "Customer", {"DisplayName": variant}).code == "6240"


def test_a_customer_may_change_the_case_of_its_own_name(co: Company) -> None:
    assert update(co, "Customer", "3", {"DisplayName": "COOL CARS"})["DisplayName"] == "COOL CARS"


def test_renaming_onto_another_name_is_refused(co: Company) -> None:
    assert refused(update, co, "Customer", "3", {"DisplayName": "Mark Cho"}).code == "6240"


@pytest.mark.parametrize(
    "body", [{"DisplayName": "Freeman:Annex"}, {"GivenName": "Ann:Marie", "FamilyName": "Lee"}]
)
def test_colon_in_display_name_is_refused(co: Company, body: dict[str, Any]) -> None:
    fault = refused(create, co, "Customer", body)

    assert (fault.code, fault.errors[0].element) == ("2010", "DisplayName")
    assert "colon" in fault.errors[0].detail


def test_display_name_is_built_from_the_name_parts(co: Company) -> None:
    created = create(
        co,
        "Customer",
        {
            "Title": "Dr.",
            "GivenName": "Ann",
            "MiddleName": "B.",
            "FamilyName": "Lee",
            "Suffix": "Jr.",
        },
    )

    assert created["DisplayName"] == "Dr. Ann B. Lee Jr."
    assert created["FullyQualifiedName"] == "Dr. Ann B. Lee Jr."
    assert created["PrintOnCheckName"] == "Dr. Ann B. Lee Jr."


@pytest.mark.parametrize("entity", ["Customer", "Vendor"])
def test_company_name_stands_in_for_missing_name_parts(co: Company, entity: str) -> None:
    created = create(co, entity, {"CompanyName": "Acme Widgets"})

    assert created["DisplayName"] == "Acme Widgets"
    assert created["PrintOnCheckName"] == "Acme Widgets"


@pytest.mark.parametrize(
    ("entity", "body"),
    [
        ("Customer", {"Notes": "no name at all"}),
        ("Vendor", {"DisplayName": "   "}),
        ("Employee", {"CompanyName": "Employees have no company name"}),
    ],
)
def test_a_name_is_required(co: Company, entity: str, body: dict[str, Any]) -> None:
    fault = refused(create, co, entity, body)

    assert (fault.code, fault.errors[0].element) == ("2020", "DisplayName")


def test_references_must_exist_and_be_active(co: Company) -> None:
    assert (
        refused(create, co, "Customer", {"DisplayName": "X1", "SalesTermRef": {"value": "99"}}).code == "610"
    )
    deactivate(co, "PaymentMethod", "7")
    fault = refused(create, co, "Customer", {"DisplayName": "X2", "PaymentMethodRef": {"value": "7"}})
    assert (fault.code, fault.errors[0].element) == ("610", "PaymentMethodRef")


def test_foreign_currency_is_refused(co: Company) -> None:
    fault = refused(create, co, "Customer", {"DisplayName": "Maple", "CurrencyRef": {"value": "CAD"}})

    assert (fault.code, fault.errors[0].element) == ("2010", "CurrencyRef")


def test_non_us_customer_uses_the_home_currency_and_no_us_tax_fields() -> None:
    company = make_company("CA")

    created = create(company, "Customer", {"DisplayName": "Hudson Bay Traders"})

    assert created["CurrencyRef"] == {"value": "CAD", "name": "Canadian Dollar"}
    assert "Taxable" not in created
    assert "DefaultTaxCodeRef" not in created


def test_opening_balance_counts_for_the_parents(co: Company) -> None:
    created = create(
        co,
        "Customer",
        {
            "DisplayName": "Barnett Annex",
            "ParentRef": {"value": "22"},
            "Balance": Decimal("50.25"),
        },
    )

    assert (created["Balance"], created["BalanceWithJobs"]) == (50.25, 50.25)
    assert must_get(co, "Customer", "22")["BalanceWithJobs"] == 50.25
    assert update(co, "Customer", created["Id"], {"Balance": 999})["Balance"] == 50.25


def test_adjust_customer_balance_moves_the_whole_branch(co: Company) -> None:
    adjust_customer_balance(co, "8", Decimal("100.10"))

    assert (must_get(co, "Customer", "8")["Balance"], must_get(co, "Customer", "8")["BalanceWithJobs"]) == (
        100.1,
        100.1,
    )
    assert (must_get(co, "Customer", "7")["Balance"], must_get(co, "Customer", "7")["BalanceWithJobs"]) == (
        0,
        100.1,
    )
    assert must_get(co, "Customer", "8")["SyncToken"] == "0"
    assert co.journal == []


# --- customers: hierarchy -----------------------------------------------------------------------


def test_sub_customers_get_level_and_fully_qualified_name(co: Company) -> None:
    job = create(
        co,
        "Customer",
        {
            "DisplayName": "Boathouse",
            "Job": True,
            "ParentRef": {"value": "7"},
            "BillWithParent": True,
        },
    )
    phase = create(co, "Customer", {"DisplayName": "Phase 1", "ParentRef": {"value": job["Id"]}})

    assert (job["Job"], job["Level"], job["BillWithParent"]) == (True, 1, True)
    assert job["FullyQualifiedName"] == "Freeman Sporting Goods:Boathouse"
    assert (phase["Job"], phase["Level"], phase["ParentRef"]) == (True, 2, {"value": job["Id"]})
    assert phase["FullyQualifiedName"] == "Freeman Sporting Goods:Boathouse:Phase 1"


def test_bill_with_parent_is_false_for_top_level_customers(co: Company) -> None:
    assert create(co, "Customer", {"DisplayName": "Solo", "BillWithParent": True})["BillWithParent"] is False


def test_a_job_needs_a_parent(co: Company) -> None:
    fault = refused(create, co, "Customer", {"DisplayName": "Orphan", "Job": True})

    assert (fault.code, fault.errors[0].element) == ("2020", "ParentRef")


def test_parent_must_exist(co: Company) -> None:
    fault = refused(create, co, "Customer", {"DisplayName": "Lost", "ParentRef": {"value": "999"}})

    assert (fault.code, fault.errors[0].element) == ("610", "ParentRef")


def test_parent_must_be_active(co: Company) -> None:
    deactivate(co, "Customer", "6")

    assert refused(create, co, "Customer", {"DisplayName": "Late", "ParentRef": {"value": "6"}}).code == "610"


def test_hierarchy_stops_at_five_levels(co: Company) -> None:
    parent = "6"
    for depth in range(1, 5):
        parent = create(co, "Customer", {"DisplayName": f"Level {depth}", "ParentRef": {"value": parent}})[
            "Id"
        ]
    assert must_get(co, "Customer", parent)["Level"] == 4

    fault = refused(create, co, "Customer", {"DisplayName": "Level 5", "ParentRef": {"value": parent}})
    assert fault.code == "6000"


def test_moving_a_branch_below_the_limit_is_refused(co: Company) -> None:
    parent = "6"
    for depth in range(1, 4):
        parent = create(co, "Customer", {"DisplayName": f"Deep {depth}", "ParentRef": {"value": parent}})[
            "Id"
        ]

    # Freeman (with jobs one level down) under a level-3 customer would put the jobs at level 5.
    assert refused(update, co, "Customer", "7", {"ParentRef": {"value": parent}}).code == "6000"


def test_a_customer_cannot_move_under_its_own_job(co: Company) -> None:
    fault = refused(update, co, "Customer", "7", {"ParentRef": {"value": "8"}})

    assert (fault.code, fault.errors[0].element) == ("6000", "ParentRef")


def test_renaming_a_parent_renames_its_jobs(co: Company) -> None:
    update(co, "Customer", "7", {"DisplayName": "Freeman Sports"})

    assert must_get(co, "Customer", "8")["FullyQualifiedName"] == "Freeman Sports:0969 Ocean View Road"
    assert must_get(co, "Customer", "9")["FullyQualifiedName"] == "Freeman Sports:55 Twin Lane"
    assert must_get(co, "Customer", "8")["SyncToken"] == "1"
    assert [(c.entity_id, c.operation) for c in co.journal] == [
        ("7", "Update"),
        ("8", "Update"),
        ("9", "Update"),
    ]


def test_moving_a_job_moves_its_balance_and_name(co: Company) -> None:
    adjust_customer_balance(co, "8", Decimal(100))

    update(co, "Customer", "8", {"ParentRef": {"value": "22"}})

    assert must_get(co, "Customer", "7")["BalanceWithJobs"] == 0
    assert must_get(co, "Customer", "22")["BalanceWithJobs"] == 100
    assert must_get(co, "Customer", "8")["FullyQualifiedName"] == "Shara Barnett:0969 Ocean View Road"


def test_a_job_can_become_a_top_level_customer(co: Company) -> None:
    moved = update(co, "Customer", "9", {"Job": False, "ParentRef": None})

    assert (moved["Job"], moved["FullyQualifiedName"]) == (False, "55 Twin Lane")
    assert "Level" not in moved
    assert "ParentRef" not in moved


# --- updates ------------------------------------------------------------------------------------


def test_sparse_update_changes_only_the_fields_sent(co: Company) -> None:
    before = co.snapshot(must_get(co, "Customer", "2"))

    after = update(co, "Customer", "2", {"Notes": "Prefers e-mail"})

    assert after["Notes"] == "Prefers e-mail"
    assert after["SyncToken"] == "1"
    assert after["MetaData"]["CreateTime"] == before["MetaData"]["CreateTime"]
    assert after["MetaData"]["LastUpdatedTime"] != before["MetaData"]["LastUpdatedTime"]
    unchanged = {k: v for k, v in after.items() if k not in ("Notes", "SyncToken", "MetaData")}
    assert unchanged == {k: v for k, v in before.items() if k not in ("SyncToken", "MetaData")}


def test_full_update_clears_omitted_writable_fields_and_keeps_computed_ones(co: Company) -> None:
    adjust_customer_balance(co, "2", Decimal("12.5"))

    after = update(
        co, "Customer", "2", {"DisplayName": "Bill's Windsurf Shop", "GivenName": "Bill"}, sparse=False
    )

    for cleared in ("FamilyName", "CompanyName", "PrimaryPhone", "PrimaryEmailAddr", "BillAddr"):
        assert cleared not in after
    assert (after["Balance"], after["BalanceWithJobs"]) == (12.5, 12.5)
    assert after["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    assert (after["Active"], after["Taxable"], after["PrintOnCheckName"]) == (True, True, "Bill")


def test_full_update_without_active_reactivates(co: Company) -> None:
    deactivate(co, "Customer", "6")

    after = update(co, "Customer", "6", {"DisplayName": "Dylan Sollfrank"}, sparse=False)

    assert after["Active"] is True


def test_full_update_without_display_name_derives_it(co: Company) -> None:
    after = update(co, "Customer", "4", {"GivenName": "Diego", "FamilyName": "Rodrigues"}, sparse=False)

    assert after["DisplayName"] == "Diego Rodrigues"


@pytest.mark.parametrize("removal", [None, "", "   "])
def test_sparse_update_cannot_remove_display_name(co: Company, removal: str | None) -> None:
    fault = refused(update, co, "Customer", "4", {"DisplayName": removal})

    assert (fault.code, fault.errors[0].element) == ("2020", "DisplayName")
    assert must_get(co, "Customer", "4")["DisplayName"] == "Diego Rodriguez"


def test_every_update_bumps_the_sync_token_and_stale_tokens_are_refused(co: Company) -> None:
    update(co, "Customer", "4", {"Notes": "one"})
    update(co, "Customer", "4", {"Notes": "two"})
    assert must_get(co, "Customer", "4")["SyncToken"] == "2"

    fault = refused(update, co, "Customer", "4", {"Notes": "three"}, token="1")

    assert (fault.code, fault.errors[0].message) == ("5010", "Stale Object Error")
    assert must_get(co, "Customer", "4")["Notes"] == "two"


def test_update_without_sync_token_is_refused(co: Company) -> None:
    fault = refused(accounting.update, co, "Customer", {"Id": "4", "Notes": "x", "sparse": True}, LATER)

    assert fault.code == "2020"


def test_create_with_an_id_is_an_update(co: Company) -> None:
    result = create(co, "Customer", {"Id": "4", "SyncToken": "0", "sparse": True, "Notes": "via create"})

    assert (result["Id"], result["SyncToken"], result["Notes"]) == ("4", "1", "via create")


def test_address_ids_are_kept_when_the_address_is_unchanged(co: Company) -> None:
    address = {k: v for k, v in must_get(co, "Customer", "10")["BillAddr"].items() if k != "Id"}

    kept = update(co, "Customer", "10", {"BillAddr": address})
    moved = update(co, "Customer", "10", {"BillAddr": {**address, "Line1": "1 New Rd."}})

    assert kept["BillAddr"]["Id"] == "10"
    assert moved["BillAddr"]["Id"] == "96"


# --- deactivation -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["Balance", "BalanceWithJobs"])
def test_a_customer_with_a_balance_cannot_be_deactivated(co: Company, field: str) -> None:
    must_get(co, "Customer", "4")[field] = 10

    fault = refused(deactivate, co, "Customer", "4")

    assert fault.code == "6000"
    assert fault.errors[0].message == "Delete List Has Balance Error"
    assert "non-zero balance" in fault.errors[0].detail
    assert (must_get(co, "Customer", "4")["Active"], must_get(co, "Customer", "4")["SyncToken"]) == (
        True,
        "0",
    )


def test_a_parent_cannot_be_deactivated_while_a_job_owes(co: Company) -> None:
    must_get(co, "Customer", "9")["Balance"] = 5  # the job alone; the parent's own fields read zero

    assert refused(deactivate, co, "Customer", "7").code == "6000"
    assert must_get(co, "Customer", "8")["Active"] is True


def test_deactivating_a_parent_deactivates_its_jobs(co: Company) -> None:
    deactivate(co, "Customer", "7")

    assert [must_get(co, "Customer", i)["Active"] for i in ("7", "8", "9")] == [False, False, False]
    assert must_get(co, "Customer", "8")["SyncToken"] == "1"


def test_a_job_cannot_be_reactivated_under_an_inactive_parent(co: Company) -> None:
    deactivate(co, "Customer", "7")

    assert refused(update, co, "Customer", "8", {"Active": True}).code == "610"
    # An inactive job may still be edited without reactivating it.
    assert update(co, "Customer", "8", {"Notes": "archived"})["Active"] is False


def test_a_vendor_with_a_balance_cannot_be_deactivated(co: Company) -> None:
    must_get(co, "Vendor", "31")["Balance"] = 241.23

    assert refused(deactivate, co, "Vendor", "31").code == "6000"
    assert deactivate(co, "Vendor", "33")["Active"] is False


@pytest.mark.parametrize(
    ("entity", "entity_id"),
    [
        ("Customer", "4"),
        ("Vendor", "30"),
        ("Employee", "54"),
        ("Item", "1"),
        ("Account", "7"),
        ("Term", "1"),
        ("PaymentMethod", "1"),
        ("TaxCode", "2"),
    ],
)
def test_name_lists_cannot_be_deleted(co: Company, entity: str, entity_id: str) -> None:
    token = must_get(co, entity, entity_id)["SyncToken"]
    fault = refused(accounting.delete, co, entity, {"Id": entity_id, "SyncToken": token}, LATER)

    assert (fault.code, fault.errors[0].message) == ("500", "Unsupported Operation")
    assert co.get(entity, entity_id) is not None


# --- vendors and employees ----------------------------------------------------------------------


def test_vendor_create_defaults(co: Company) -> None:
    created = create(co, "Vendor", {"DisplayName": "Sierra Stone Supply", "TermRef": {"value": "3"}})

    assert {
        k: created[k] for k in ("Balance", "Vendor1099", "CurrencyRef", "Active", "PrintOnCheckName")
    } == {
        "Balance": 0,
        "Vendor1099": False,
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "Active": True,
        "PrintOnCheckName": "Sierra Stone Supply",
    }
    assert created["TermRef"] == {"value": "3"}


def test_employee_create_defaults_and_masks_the_ssn(co: Company) -> None:
    created = create(
        co,
        "Employee",
        {
            "GivenName": "Rosa",
            "FamilyName": "Diaz",
            "SSN": "123-45-6789",
            "HiredDate": "2026-04-01",
            "PrimaryAddr": {"Line1": "1 Elm St.", "City": "Bayshore"},
        },
    )

    assert (created["DisplayName"], created["BillableTime"], created["Active"]) == ("Rosa Diaz", False, True)
    assert created["SSN"] == "XXX-XX-XXXX"
    assert created["PrimaryAddr"]["Id"] == "96"
    assert created["Id"] == "58"  # customers, vendors and employees share one Id sequence


# --- items --------------------------------------------------------------------------------------


def test_service_item_needs_an_income_account(co: Company) -> None:
    fault = refused(create, co, "Item", {"Name": "Consulting", "Type": "Service"})

    assert (fault.code, fault.errors[0].element) == ("2020", "IncomeAccountRef")


@pytest.mark.parametrize("account", ["999", "5"])
def test_item_accounts_must_exist_and_be_active(co: Company, account: str) -> None:
    deactivate(co, "Account", "5")

    fault = refused(
        create, co, "Item", {"Name": "Edging", "Type": "Service", "IncomeAccountRef": {"value": account}}
    )

    assert (fault.code, fault.errors[0].element) == ("610", "IncomeAccountRef")


def test_service_item_create(co: Company) -> None:
    created = create(
        co,
        "Item",
        {
            "Name": "Edging",
            "Type": "Service",
            "IncomeAccountRef": {"value": "45"},
            "UnitPrice": Decimal("42.5"),
            "Sku": "EDG-1",
        },
    )

    assert created["Id"] == "19"
    assert created["IncomeAccountRef"] == {"value": "45", "name": "Landscaping Services"}
    assert (created["UnitPrice"], created["PurchaseCost"], created["Taxable"]) == (42.5, 0, False)
    assert (created["TrackQtyOnHand"], created["Active"], created["FullyQualifiedName"]) == (
        False,
        True,
        "Edging",
    )
    assert created["Sku"] == "EDG-1"
    assert "SubItem" not in created


@pytest.mark.parametrize("name", ["hours", "HOURS", " Hours "])
def test_item_names_are_unique_ignoring_case(co: Company, name: str) -> None:
    fault = refused(create, co, "Item", {"Name": name, "Type": "Service", "IncomeAccountRef": {"value": "1"}})

    assert (fault.code, fault.errors[0].element) == ("6240", "Name")


def test_inactive_items_keep_their_name(co: Company) -> None:
    deactivate(co, "Item", "14")

    body = {"Name": "Sod", "Type": "Service", "IncomeAccountRef": {"value": "49"}}
    assert refused(create, co, "Item", body).code == "6240"


@pytest.mark.parametrize(
    ("body", "code", "element"),
    [
        ({"Name": "Bolt:Nut", "Type": "Service", "IncomeAccountRef": {"value": "1"}}, "2010", "Name"),
        ({"Type": "Service", "IncomeAccountRef": {"value": "1"}}, "2020", "Name"),
        ({"Name": "Bolt", "IncomeAccountRef": {"value": "1"}}, "2020", "Type"),
        ({"Name": "Bolt", "Type": "Gadget", "IncomeAccountRef": {"value": "1"}}, "2010", "Type"),
        (
            {"Name": "Bolt", "Type": "Service", "IncomeAccountRef": {"value": "1"}, "UnitPrice": "cheap"},
            "2010",
            "UnitPrice",
        ),
    ],
)
def test_item_validation(co: Company, body: dict[str, Any], code: str, element: str) -> None:
    fault = refused(create, co, "Item", body)

    assert (fault.code, fault.errors[0].element) == (code, element)


INVENTORY = {
    "Name": "Birdbath",
    "Type": "Inventory",
    "IncomeAccountRef": {"value": "79"},
    "ExpenseAccountRef": {"value": "80"},
    "AssetAccountRef": {"value": "81"},
    "QtyOnHand": 12,
    "InvStartDate": "2026-05-01",
    "UnitPrice": 90,
    "PurchaseCost": 40,
}


@pytest.mark.parametrize(
    "missing", ["IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef", "QtyOnHand", "InvStartDate"]
)
def test_inventory_items_need_accounts_quantity_and_start_date(co: Company, missing: str) -> None:
    body = {k: v for k, v in INVENTORY.items() if k != missing}

    fault = refused(create, co, "Item", body)

    assert (fault.code, fault.errors[0].element) == ("2020", missing)


def test_inventory_item_create(co: Company) -> None:
    created = create(co, "Item", INVENTORY)

    assert created["TrackQtyOnHand"] is True
    assert (created["QtyOnHand"], created["InvStartDate"]) == (12, "2026-05-01")
    assert created["AssetAccountRef"] == {"value": "81", "name": "Inventory Asset"}
    assert created["ExpenseAccountRef"] == {"value": "80", "name": "Cost of Goods Sold"}


def test_sub_items_live_under_categories(co: Company) -> None:
    category = create(co, "Item", {"Name": "Garden", "Type": "Category"})
    child = create(
        co,
        "Item",
        {
            "Name": "Edging",
            "Type": "Service",
            "IncomeAccountRef": {"value": "45"},
            "ParentRef": {"value": category["Id"]},
        },
    )

    assert (category["Type"], "IncomeAccountRef" in category) == ("Category", False)
    assert (child["SubItem"], child["Level"], child["FullyQualifiedName"]) == (True, 1, "Garden:Edging")

    update(co, "Item", category["Id"], {"Name": "Yard"})
    assert must_get(co, "Item", child["Id"])["FullyQualifiedName"] == "Yard:Edging"


def test_a_sub_item_needs_a_category_or_same_type_parent(co: Company) -> None:
    body = {
        "Name": "Fountain Kit",
        "Type": "Service",
        "IncomeAccountRef": {"value": "1"},
        "ParentRef": {"value": "5"},
    }  # 5 is an Inventory item

    assert refused(create, co, "Item", body).code == "6000"


def test_an_item_type_change_to_inventory_is_refused(co: Company) -> None:
    changes = {k: v for k, v in INVENTORY.items() if k != "Name"}

    fault = refused(update, co, "Item", "4", changes)

    assert (fault.code, fault.errors[0].element) == ("6000", "Type")


def test_items_are_deactivated_by_update(co: Company) -> None:
    assert deactivate(co, "Item", "14")["Active"] is False


# --- accounts -----------------------------------------------------------------------------------


def test_account_create_defaults(co: Company) -> None:
    created = create(co, "Account", {"Name": "Petty Cash", "AccountType": "Bank"})

    assert created["Id"] == "1150040000"  # as the recorded sandbox numbers new accounts
    assert {
        k: created[k]
        for k in (
            "AccountSubType",
            "Classification",
            "CurrentBalance",
            "CurrentBalanceWithSubAccounts",
            "SubAccount",
            "FullyQualifiedName",
            "Active",
            "CurrencyRef",
        )
    } == {
        "AccountSubType": "CashOnHand",
        "Classification": "Asset",
        "CurrentBalance": 0,
        "CurrentBalanceWithSubAccounts": 0,
        "SubAccount": False,
        "FullyQualifiedName": "Petty Cash",
        "Active": True,
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
    }


@pytest.mark.parametrize(
    ("body", "code", "element"),
    [
        ({"Name": "Float"}, "2020", "AccountType"),
        ({"AccountType": "Bank"}, "2020", "Name"),
        ({"Name": "Float", "AccountType": "Piggy Bank"}, "2010", "AccountType"),
        (
            {"Name": "Float", "AccountType": "Bank", "AccountSubType": "AccountsPayable"},
            "2010",
            "AccountSubType",
        ),
        ({"Name": "Float:Cash", "AccountType": "Bank"}, "2010", "Name"),
        ({"Name": 'The "Float"', "AccountType": "Bank"}, "2010", "Name"),
    ],
)
def test_account_validation(co: Company, body: dict[str, Any], code: str, element: str) -> None:
    fault = refused(create, co, "Account", body)

    assert (fault.code, fault.errors[0].element) == (code, element)


def test_unknown_account_subtypes_are_accepted(co: Company) -> None:
    body = {"Name": "Crypto Wallet", "AccountType": "Other Current Asset", "AccountSubType": "SomethingNew"}

    assert create(co, "Account", body)["AccountSubType"] == "SomethingNew"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Name": "checking", "AccountType": "Bank"}, "6240"),
        ({"Name": "installation", "AccountType": "Income", "ParentRef": {"value": "51"}}, "6240"),
        ({"Name": "Installation", "AccountType": "Income", "ParentRef": {"value": "45"}}, None),
        ({"Name": "Installation", "AccountType": "Income"}, None),
    ],
)
def test_account_names_are_unique_among_siblings(co: Company, body: dict[str, Any], code: str | None) -> None:
    if code is None:
        assert create(co, "Account", body)["Name"] == "Installation"
    else:
        assert refused(create, co, "Account", body).code == code


def test_sub_account_shares_its_parents_type(co: Company) -> None:
    good = create(
        co, "Account", {"Name": "Fence Repairs", "AccountType": "Expense", "ParentRef": {"value": "72"}}
    )
    fault = refused(
        create, co, "Account", {"Name": "Petty", "AccountType": "Expense", "ParentRef": {"value": "35"}}
    )

    assert (good["SubAccount"], good["FullyQualifiedName"]) == (True, "Maintenance and Repair:Fence Repairs")
    assert "Level" not in good
    assert (fault.code, fault.errors[0].element) == ("6000", "ParentRef")


def test_account_type_change_redefaults_the_subtype(co: Company) -> None:
    changed = update(co, "Account", "5", {"AccountType": "Other Income"})

    assert (changed["AccountSubType"], changed["Classification"]) == ("OtherMiscellaneousIncome", "Revenue")


def test_an_account_with_sub_accounts_keeps_its_type(co: Company) -> None:
    assert refused(update, co, "Account", "45", {"AccountType": "Other Income"}).code == "6000"


def test_deactivating_an_account_deactivates_its_sub_accounts(co: Company) -> None:
    deactivate(co, "Account", "37")

    assert [must_get(co, "Account", i)["Active"] for i in ("37", "38", "39")] == [False, False, False]


def test_account_classification_cannot_be_written(co: Company) -> None:
    changed = update(co, "Account", "7", {"Classification": "Asset", "CurrentBalance": 99})

    assert (changed["Classification"], changed["CurrentBalance"]) == ("Expense", 0)


# --- tax ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ["TaxCode", "TaxRate", "TaxAgency"])
def test_tax_entities_cannot_be_created(co: Company, entity: str) -> None:
    fault = refused(create, co, entity, {"Name": "City tax", "RateValue": 1})

    assert (fault.code, fault.errors[0].message) == ("500", "Unsupported Operation")


def test_tax_codes_cannot_be_updated(co: Company) -> None:
    assert refused(update, co, "TaxCode", "2", {"Name": "Renamed"}).code == "500"


def test_tax_codes_and_rates_are_readable(co: Company) -> None:
    pseudo = accounting.read(co, "TaxCode", "TAX")
    real = accounting.read(co, "TaxCode", "2")

    assert "Active" not in pseudo
    assert pseudo["Taxable"] is True
    assert real["SalesTaxRateList"]["TaxRateDetail"][0]["TaxRateRef"]["value"] == "3"
    assert accounting.read(co, "TaxRate", "3")["RateValue"] == 8


# --- terms and payment methods ------------------------------------------------------------------


def test_term_create(co: Company) -> None:
    standard = create(co, "Term", {"Name": "Net 45", "DueDays": 45, "Type": "DATE_DRIVEN"})
    monthly = create(co, "Term", {"Name": "10th of next month", "DayOfMonthDue": 10})

    assert (standard["Type"], standard["DueDays"], standard["Active"]) == ("STANDARD", 45, True)
    assert (monthly["Type"], monthly["DayOfMonthDue"], "DueDays" in monthly) == ("DATE_DRIVEN", 10, False)


@pytest.mark.parametrize(
    ("body", "code", "element"),
    [
        ({"Name": "Net 45"}, "2020", "DueDays"),
        ({"Name": "net 30", "DueDays": 30}, "6240", "Name"),
        ({"Name": "Net 45", "DueDays": -1}, "2010", "DueDays"),
        ({"DueDays": 45}, "2020", "Name"),
    ],
)
def test_term_validation(co: Company, body: dict[str, Any], code: str, element: str) -> None:
    fault = refused(create, co, "Term", body)

    assert (fault.code, fault.errors[0].element) == (code, element)


def test_terms_are_deactivated_by_update(co: Company) -> None:
    assert deactivate(co, "Term", "4")["Active"] is False


def test_payment_method_create(co: Company) -> None:
    assert create(co, "PaymentMethod", {"Name": "Venmo"})["Type"] == "NON_CREDIT_CARD"
    assert create(co, "PaymentMethod", {"Name": "JCB", "Type": "CREDIT_CARD"})["Type"] == "CREDIT_CARD"
    assert refused(create, co, "PaymentMethod", {"Name": "Barter", "Type": "GOATS"}).code == "2010"
    assert refused(create, co, "PaymentMethod", {"Name": "visa"}).code == "6240"


# --- company info and preferences ---------------------------------------------------------------


def test_company_info_is_read_by_realm_id_and_sparse_updated(co: Company) -> None:
    info = accounting.read(co, "CompanyInfo", REALM)
    assert (info["CompanyName"], info["Country"]) == ("Sandbox Company_US_1", "US")

    changed = update(co, "CompanyInfo", REALM, {"CompanyName": "Craig's Landscaping", "Country": "GB"})

    assert (changed["CompanyName"], changed["Country"], changed["SyncToken"]) == (
        "Craig's Landscaping",
        "US",
        "1",
    )
    assert changed["LegalName"] == info["LegalName"]


def test_company_info_needs_a_name(co: Company) -> None:
    assert refused(update, co, "CompanyInfo", REALM, {"CompanyName": " "}).code == "2020"


@pytest.mark.parametrize("entity", ["CompanyInfo", "Preferences"])
def test_company_settings_cannot_be_created_or_deleted(co: Company, entity: str) -> None:
    assert refused(create, co, entity, {"CompanyName": "Another"}).code == "500"
    entity_id = REALM if entity == "CompanyInfo" else "1"
    assert refused(accounting.delete, co, entity, {"Id": entity_id, "SyncToken": "0"}, LATER).code == "500"


@pytest.mark.parametrize("sparse", [True, False])
def test_preferences_update_merges_sections(co: Company, sparse: bool) -> None:
    changed = update(co, "Preferences", "1", {"SalesFormsPrefs": {"CustomTxnNumbers": True}}, sparse=sparse)

    assert changed["SalesFormsPrefs"]["CustomTxnNumbers"] is True
    assert changed["SalesFormsPrefs"]["AutoApplyCredit"] is True
    assert changed["TaxPrefs"] == {
        "UsingSalesTax": True,
        "PartnerTaxEnabled": True,
        "TaxGroupCodeRef": {"value": "2"},
    }
    assert changed["SyncToken"] == "1"


def test_home_currency_and_ast_cannot_be_changed(co: Company) -> None:
    changed = update(
        co,
        "Preferences",
        "1",
        {
            "CurrencyPrefs": {"HomeCurrency": {"value": "EUR"}},
            "TaxPrefs": {"PartnerTaxEnabled": False},
        },
    )

    assert changed["CurrencyPrefs"]["HomeCurrency"]["value"] == "USD"
    assert changed["TaxPrefs"]["PartnerTaxEnabled"] is True


def test_boolean_preferences_stay_boolean(co: Company) -> None:
    fault = refused(update, co, "Preferences", "1", {"SalesFormsPrefs": {"AutoApplyCredit": "sometimes"}})

    assert fault.code == "2010"
    assert (
        update(co, "Preferences", "1", {"SalesFormsPrefs": {"AutoApplyCredit": "false"}})["SalesFormsPrefs"][
            "AutoApplyCredit"
        ]
        is False
    )


# --- registry -----------------------------------------------------------------------------------


def test_rule_flags() -> None:
    lists = {
        "Customer",
        "Vendor",
        "Employee",
        "Item",
        "Account",
        "Term",
        "PaymentMethod",
        "TaxCode",
        "TaxRate",
    }

    assert {name for name, rules in NAME_RULES.items() if rules.name_list} == lists
    assert {name for name, rules in NAME_RULES.items() if not rules.cdc} == {
        "TaxCode",
        "TaxRate",
        "TaxAgency",
    }
    assert all(rules.delete is None and rules.void is None for rules in NAME_RULES.values())
    assert all(accounting.RULES[name] is rules for name, rules in NAME_RULES.items())
