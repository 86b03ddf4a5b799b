"""The data a new sandbox company starts with, by country.

"US" is Intuit's own sandbox seed, "Craig's Design and Landscaping Services", with the Ids a
recording of a real sandbox shows (customers 1-29, vendors 30-53/56/57, items 1-18, accounts 1-90,
tax code 2 with rate 3 at 8 %, terms 1-4).  "CA", "GB" and "AU" are smaller companies of our own
with their country's tax codes and currency.  Every country keeps the same Ids for the accounts,
items, terms and payment methods other code relies on (see ``KEY_IDS``).

Name-list entities go through the API's own create rules (``names.insert_seeded``), so seeded rows
have exactly the shape a create produces.  Nothing is journalled: the seed is the starting state,
not a change CDC or webhooks should report.  The seed never draws random numbers and reads the time
only from ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from qbo_sandbox.company import COUNTRY_TIMEZONES, Company, Entity

# Defined before the accounting package is imported: importing it runs the transactions module,
# which registers its seeder here and may do so while this module is still being initialised.
seed_transactions_hook: list[Callable[[Company, datetime], None]] = []
"""Called as ``hook(company, now)`` at the end of :func:`seed_company` (open invoices and such)."""

from qbo_sandbox.accounting.names import (  # noqa: E402
    ADDRESS_SEQUENCE,
    COUNTRY_CURRENCY,
    CURRENCY_NAMES,
    insert_seeded,
)

SUPPORTED_COUNTRIES = frozenset({"US", "CA", "GB", "AU"})

DOC_NUMBER_FLOOR = {"US": 1037}  # the recorded sandbox's invoices run 1001-1037
# Ids after the seed, as the recorded sandbox hands them out: customers from 58, accounts from
# 1150040000, addresses from 96.
NAME_SEQUENCE_FLOOR = {"US": 57}
ACCOUNT_SEQUENCE_FLOOR = 1150039999
ADDRESS_SEQUENCE_FLOOR = {"US": 95}

_SAME_IN_EVERY_COUNTRY = {
    "account_services": "1",
    "account_retained_earnings": "2",
    "account_undeposited_funds": "4",
    "account_accounts_payable": "33",
    "account_opening_balance_equity": "34",
    "account_checking": "35",
    "account_savings": "36",
    "account_sales_of_product_income": "79",
    "account_cost_of_goods_sold": "80",
    "account_inventory_asset": "81",
    "account_accounts_receivable": "84",
    "account_discounts_given": "86",
    "account_unapplied_cash_payment_income": "87",
    "account_tax_payable": "89",
    "item_services": "1",
    "item_hours": "2",
    "item_inventory": "5",
    "term_due_on_receipt": "1",
    "term_net_15": "2",
    "term_net_30": "3",
    "term_net_60": "4",
    "payment_method_cash": "1",
    "payment_method_check": "2",
    "payment_method_visa": "3",
    "preferences": "1",
    "tax_code_default": "2",
}
KEY_IDS: dict[str, dict[str, str]] = {
    "US": {
        **_SAME_IN_EVERY_COUNTRY,
        "customer_taxable": "1",
        "customer_parent": "7",
        "customer_sub": "8",
        "customer_sub_2": "9",
        "vendor": "30",
        "employee": "54",
        "tax_code_group": "3",
        "tax_rate_default": "3",
    },
    "CA": {
        **_SAME_IN_EVERY_COUNTRY,
        "customer_parent": "3",
        "customer_sub": "4",
        "vendor": "8",
        "employee": "12",
        "tax_code_group": "4",
        "tax_code_exempt": "5",
        "tax_code_zero_rated": "6",
        "tax_rate_default": "1",
    },
    "GB": {
        **_SAME_IN_EVERY_COUNTRY,
        "customer_parent": "3",
        "customer_sub": "4",
        "vendor": "8",
        "employee": "12",
        "tax_code_reduced": "3",
        "tax_code_zero_rated": "4",
        "tax_code_exempt": "5",
        "tax_code_no_vat": "6",
        "tax_rate_default": "1",
    },
    "AU": {
        **_SAME_IN_EVERY_COUNTRY,
        "customer_parent": "3",
        "customer_sub": "4",
        "vendor": "8",
        "employee": "12",
        "tax_code_gst_free": "3",
        "tax_code_input_taxed": "4",
        "tax_rate_default": "1",
    },
}

Address = tuple[str, ...]  # Line1, City, CountrySubDivisionCode, PostalCode[, Lat, Long]


def seed_company(company: Company, now: datetime) -> None:
    """Fill a new, empty company with its country's seed data."""
    if company.country not in SUPPORTED_COUNTRIES:
        raise ValueError(f"no seed data for country {company.country!r}")
    seeder = _Seeder(company, now)
    if company.country == "US":
        _seed_us(seeder)
    else:
        _seed_locale(seeder, LOCALES[company.country])
    company.bump_sequence("Name", NAME_SEQUENCE_FLOOR.get(company.country, 0))
    company.bump_sequence("Account", ACCOUNT_SEQUENCE_FLOOR)
    company.bump_sequence(ADDRESS_SEQUENCE, ADDRESS_SEQUENCE_FLOOR.get(company.country, 0))
    company.settings["doc_number_floor"] = DOC_NUMBER_FLOOR.get(company.country, 1000)
    for hook in list(seed_transactions_hook):
        hook(company, now)


# --- building blocks ----------------------------------------------------------------------------


class _Seeder:
    def __init__(self, company: Company, now: datetime) -> None:
        self.co = company
        self.now = now

    def name_list(self, entity: str, entity_id: str, body: Entity) -> Entity:
        return insert_seeded(self.co, entity, entity_id, body, self.now)

    def fixed(self, entity: str, entity_id: str, body: Entity) -> Entity:
        return self.co.insert(entity, body, self.now, entity_id=entity_id, journal=False)

    def address(self, parts: Address, *, address_id: str | None = None) -> Entity:
        return {"Id": address_id or self.co.next_id(ADDRESS_SEQUENCE), **_address(parts)}


def _address(parts: Address) -> Entity:
    line1, city, region, postal, *where = parts
    out: Entity = {"Line1": line1, "City": city}
    if region:
        out["CountrySubDivisionCode"] = region
    out["PostalCode"] = postal
    if where:
        out["Lat"], out["Long"] = where
    return out


@dataclass(frozen=True)
class Person:
    """One customer, vendor or employee of a seed."""

    entity_id: str
    display: str
    given: str | None = None
    family: str | None = None
    company: str | None = None
    phone: str | None = None
    email: str | None = None
    bill: Address | None = None
    ship: Address | None = None
    ship_same: bool = False  # ShipAddr is the bill address (QBO then gives both one Id)
    middle: str | None = None
    mobile: str | None = None
    fax: str | None = None
    web: str | None = None
    parent: str | None = None
    taxable: bool = False
    extra: tuple[tuple[str, Any], ...] = ()

    def body(self) -> Entity:
        out: Entity = {}
        for field, value in (
            ("GivenName", self.given),
            ("MiddleName", self.middle),
            ("FamilyName", self.family),
            ("CompanyName", self.company),
        ):
            if value is not None:
                out[field] = value
        out["DisplayName"] = self.display
        for field, number in (("PrimaryPhone", self.phone), ("Mobile", self.mobile), ("Fax", self.fax)):
            if number is not None:
                out[field] = {"FreeFormNumber": number}
        if self.email is not None:
            out["PrimaryEmailAddr"] = {"Address": self.email}
        if self.web is not None:
            out["WebAddr"] = {"URI": self.web}
        out.update(self.extra)
        return out

    def customer(self, us: bool) -> Entity:
        out = self.body()
        if us:
            out["Taxable"] = self.taxable
        if self.bill is not None:
            out["BillAddr"] = _address(self.bill)
        ship = self.bill if self.ship_same else self.ship
        if ship is not None:
            out["ShipAddr"] = _address(ship)
        if self.parent is not None:
            out["Job"] = True
            out["ParentRef"] = {"value": self.parent}
        return out

    def vendor(self) -> Entity:
        out = self.body()
        if self.bill is not None:
            out["BillAddr"] = _address(self.bill)
        return out

    def employee(self) -> Entity:
        out = self.body()
        if self.bill is not None:
            out["PrimaryAddr"] = _address(self.bill)
        return out


@dataclass(frozen=True)
class LedgerAccount:
    entity_id: str
    name: str
    account_type: str
    subtype: str
    parent: str | None = None

    def body(self) -> Entity:
        out: Entity = {"Name": self.name, "AccountType": self.account_type, "AccountSubType": self.subtype}
        if self.parent is not None:
            out.update({"SubAccount": True, "ParentRef": {"value": self.parent}})
        return out


@dataclass(frozen=True)
class Product:
    entity_id: str
    name: str
    item_type: str
    income: str | None = None
    price: float = 0
    description: str | None = None
    taxable: bool = False
    cost: float = 0
    expense: str | None = None
    qty: float | None = None  # Inventory: quantity on hand
    parent: str | None = None

    def body(self, *, us: bool, tax_code: str | None, start: str) -> Entity:
        out: Entity = {"Name": self.name, "Type": self.item_type}
        if self.description is not None:
            out["Description"] = self.description
        if self.parent is not None:
            out.update({"SubItem": True, "ParentRef": {"value": self.parent}})
        if self.item_type == "Category":
            return out
        out.update({"UnitPrice": self.price, "PurchaseCost": self.cost})
        if self.income is not None:
            out["IncomeAccountRef"] = {"value": self.income}
        if self.expense is not None:
            out["ExpenseAccountRef"] = {"value": self.expense}
        if self.item_type == "Inventory":
            out.update({"AssetAccountRef": {"value": "81"}, "QtyOnHand": self.qty, "InvStartDate": start})
        if us:
            out["Taxable"] = self.taxable
        elif tax_code is not None:
            out["SalesTaxCodeRef"] = {"value": tax_code}
            out["PurchaseTaxCodeRef"] = {"value": tax_code}
        return out


@dataclass(frozen=True)
class TaxRateSeed:
    entity_id: str
    name: str
    rate: float
    agency: str
    description: str | None = None


@dataclass(frozen=True)
class TaxCodeSeed:
    entity_id: str
    name: str
    sales: tuple[str, ...]
    purchases: tuple[str, ...] = ()
    description: str | None = None


# --- shared seed pieces -------------------------------------------------------------------------

_TERMS = (("1", "Due on receipt", 0), ("2", "Net 15", 15), ("3", "Net 30", 30), ("4", "Net 60", 60))


def _seed_terms(seeder: _Seeder) -> None:
    for entity_id, name, days in _TERMS:
        seeder.name_list("Term", entity_id, {"Name": name, "DueDays": days})


def _seed_payment_methods(seeder: _Seeder, check_name: str) -> None:
    methods = (
        ("1", "Cash", "NON_CREDIT_CARD"),
        ("2", check_name, "NON_CREDIT_CARD"),
        ("3", "Visa", "CREDIT_CARD"),
        ("4", "MasterCard", "CREDIT_CARD"),
        ("5", "Discover", "CREDIT_CARD"),
        ("6", "American Express", "CREDIT_CARD"),
        ("7", "Diners Club", "CREDIT_CARD"),
    )
    for entity_id, name, kind in methods:
        seeder.name_list("PaymentMethod", entity_id, {"Name": name, "Type": kind})


def _seed_tax(
    seeder: _Seeder,
    agencies: tuple[tuple[str, str], ...],
    rates: tuple[TaxRateSeed, ...],
    codes: tuple[TaxCodeSeed, ...],
    *,
    purchases_tracked: bool,
) -> None:
    for entity_id, name in agencies:
        seeder.fixed(
            "TaxAgency",
            entity_id,
            {
                "DisplayName": name,
                "TaxTrackedOnSales": True,
                "TaxTrackedOnPurchases": purchases_tracked,
            },
        )
    by_id = {rate.entity_id: rate for rate in rates}
    for rate in rates:
        seeder.fixed(
            "TaxRate",
            rate.entity_id,
            {
                "Name": rate.name,
                "Description": rate.description or rate.name,
                "Active": True,
                "RateValue": rate.rate,
                "AgencyRef": {"value": rate.agency},
                "SpecialTaxType": "NONE",
                "DisplayType": "ReadOnly",
            },
        )

    _seed_tax_codes(seeder, codes, by_id)


def _seed_tax_codes(
    seeder: _Seeder, codes: tuple[TaxCodeSeed, ...], by_id: Mapping[str, TaxRateSeed]
) -> None:
    def details(ids: tuple[str, ...]) -> Entity:
        return {
            "TaxRateDetail": [
                {
                    "TaxRateRef": {"value": i, "name": by_id[i].name},
                    "TaxTypeApplicable": "TaxOnAmount",
                    "TaxOrder": 0,
                }
                for i in ids
            ]
        }

    for code in codes:
        seeder.fixed(
            "TaxCode",
            code.entity_id,
            {
                "Name": code.name,
                "Description": code.description or code.name,
                "Active": True,
                "Hidden": False,
                "Taxable": any(by_id[i].rate for i in code.sales + code.purchases),
                "TaxGroup": len(code.sales) > 1 or seeder.co.country == "US",
                "SalesTaxRateList": details(code.sales),
                "PurchaseTaxRateList": details(code.purchases),
            },
        )


def _seed_company_info(
    seeder: _Seeder,
    *,
    legal_name: str,
    address: Address,
    phone: str,
    fiscal_month: str,
    industry: str,
    languages: str = "en",
) -> None:
    co = seeder.co
    office = seeder.address(address)
    seeder.fixed(
        "CompanyInfo",
        co.realm_id,
        {
            "CompanyName": co.name,
            "LegalName": legal_name,
            "CompanyAddr": office,
            "CustomerCommunicationAddr": dict(office),
            "LegalAddr": dict(office),
            "PrimaryPhone": {"FreeFormNumber": phone},
            "CompanyStartDate": co.local(co.created_at).date().isoformat(),
            "FiscalYearStartMonth": fiscal_month,
            "Country": co.country,
            "Email": {"Address": "noreply@quickbooks.com"},
            "WebAddr": {},
            "SupportedLanguages": languages,
            "DefaultTimeZone": COUNTRY_TIMEZONES.get(co.country, "UTC"),
            "NameValue": [
                {"Name": "NeoEnabled", "Value": "true"},
                {"Name": "IndustryType", "Value": industry},
                {"Name": "SubscriptionStatus", "Value": "SUBSCRIBED"},
                {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
                {"Name": "PayrollFeature", "Value": "true" if co.country == "US" else "false"},
                {"Name": "AccountantFeature", "Value": "false"},
                {"Name": "IsQbdtMigrated", "Value": "false"},
                {"Name": "ItemCategoriesFeature", "Value": "true"},
            ],
        },
    )


# long: QBO's Preferences entity, field by field as the real sandbox company answers it
def _seed_preferences(seeder: _Seeder, *, fiscal_month: str, partner_tax: bool) -> None:
    currency = COUNTRY_CURRENCY[seeder.co.country]
    tax_prefs: Entity = {"UsingSalesTax": True, "PartnerTaxEnabled": partner_tax}
    if partner_tax:
        tax_prefs["TaxGroupCodeRef"] = {"value": "2"}
    seeder.fixed(
        "Preferences",
        "1",
        {
            "AccountingInfoPrefs": {
                "TrackDepartments": False,
                "DepartmentTerminology": "Location",
                "ClassTrackingPerTxn": False,
                "ClassTrackingPerTxnLine": False,
                "CustomerTerminology": "Customers",
                "UseAccountNumbers": False,
                "FirstMonthOfFiscalYear": fiscal_month,
                "TaxYearMonth": fiscal_month,
            },
            "ProductAndServicesPrefs": {
                "ForSales": True,
                "ForPurchase": True,
                "QuantityWithPriceAndRate": True,
                "QuantityOnHand": True,
            },
            "SalesFormsPrefs": {
                "CustomField": [],
                "CustomTxnNumbers": False,
                "AllowDeposit": True,
                "AllowDiscount": True,
                "DefaultDiscountAccount": "86",
                "AllowEstimates": True,
                "ETransactionEnabledStatus": "NotApplicable",
                "ETransactionAttachPDF": False,
                "ETransactionPaymentEnabled": False,
                "IPNSupportEnabled": False,
                "AllowServiceDate": False,
                "AllowShipping": False,
                "DefaultTerms": {"value": "3"},
                "DefaultCustomerMessage": "Thank you for your business and have a great day!",
                "AutoApplyCredit": True,
                "AutoApplyPayments": True,
                "PrintItemWithZeroAmount": True,
                "UsingPriceLevels": False,
                "UsingProgressInvoicing": False,
            },
            "VendorAndPurchasesPrefs": {
                "TrackingByCustomer": True,
                "BillableExpenseTracking": True,
                "DefaultTerms": {"value": "3"},
            },
            "TimeTrackingPrefs": {
                "UseServices": True,
                "BillCustomers": True,
                "ShowBillRateToAll": False,
                "WorkWeekStartDate": "Monday",
                "MarkTimeEntriesBillable": True,
            },
            "TaxPrefs": tax_prefs,
            "CurrencyPrefs": {
                "MultiCurrencyEnabled": False,
                "HomeCurrency": {"value": currency, "name": CURRENCY_NAMES[currency]},
            },
            "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
            "OtherPrefs": {
                "NameValue": [
                    {"Name": "SalesFormsPrefs.DefaultItem", "Value": "1"},
                    {"Name": "UncategorizedIncomeAccountId", "Value": "30"},
                    {"Name": "UncategorizedExpenseAccountId", "Value": "31"},
                    {"Name": "UncategorizedAssetAccountId", "Value": "32"},
                ]
            },
        },
    )
    seeder.co.settings["default_tax_code"] = "2"


def _seed_accounts(seeder: _Seeder, accounts: tuple[LedgerAccount, ...]) -> None:
    for account in accounts:
        seeder.name_list("Account", account.entity_id, account.body())


def _seed_items(seeder: _Seeder, items: tuple[Product, ...], tax_code: str | None) -> None:
    us = seeder.co.country == "US"
    start = seeder.co.local(seeder.now).date().isoformat()
    for item in items:
        seeder.name_list("Item", item.entity_id, item.body(us=us, tax_code=tax_code, start=start))


# --- US: Craig's Design and Landscaping Services ------------------------------------------------

_US_ACCOUNTS = (
    LedgerAccount("1", "Services", "Income", "ServiceFeeIncome"),
    LedgerAccount("2", "Retained Earnings", "Equity", "RetainedEarnings"),
    LedgerAccount("3", "Prepaid Expenses", "Other Current Asset", "PrepaidExpenses"),
    LedgerAccount("4", "Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    LedgerAccount("5", "Fees Billed", "Income", "ServiceFeeIncome"),
    LedgerAccount("6", "Refunds-Allowances", "Income", "DiscountsRefundsGiven"),
    LedgerAccount("7", "Advertising", "Expense", "AdvertisingPromotional"),
    LedgerAccount("8", "Bank Charges", "Expense", "BankCharges"),
    LedgerAccount("9", "Commissions & fees", "Expense", "OtherMiscellaneousServiceCost"),
    LedgerAccount("10", "Dues & Subscriptions", "Expense", "DuesSubscriptions"),
    LedgerAccount("11", "Insurance", "Expense", "Insurance"),
    LedgerAccount("12", "Legal & Professional Fees", "Expense", "LegalProfessionalFees"),
    LedgerAccount("13", "Meals and Entertainment", "Expense", "EntertainmentMeals"),
    LedgerAccount("14", "Miscellaneous", "Other Expense", "OtherMiscellaneousExpense"),
    LedgerAccount("15", "Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses"),
    LedgerAccount("16", "Promotional", "Expense", "AdvertisingPromotional"),
    LedgerAccount("17", "Rent or Lease", "Expense", "RentOrLeaseOfBuildings"),
    LedgerAccount("19", "Stationery & Printing", "Expense", "OfficeGeneralAdministrativeExpenses"),
    LedgerAccount("20", "Supplies", "Expense", "SuppliesMaterials"),
    LedgerAccount("21", "Taxes & Licenses", "Expense", "TaxesPaid"),
    LedgerAccount("22", "Travel", "Expense", "Travel"),
    LedgerAccount("23", "Travel Meals", "Expense", "TravelMeals"),
    LedgerAccount("24", "Utilities", "Expense", "Utilities"),
    LedgerAccount("25", "Interest Earned", "Other Income", "InterestEarned"),
    LedgerAccount("26", "Other Portfolio Income", "Other Income", "OtherMiscellaneousIncome"),
    LedgerAccount("27", "Penalties & Settlements", "Other Expense", "PenaltiesSettlements"),
    LedgerAccount("28", "Disposal Fees", "Expense", "OtherMiscellaneousServiceCost"),
    LedgerAccount("29", "Equipment Rental", "Expense", "EquipmentRental"),
    LedgerAccount("30", "Uncategorized Income", "Income", "ServiceFeeIncome"),
    LedgerAccount("31", "Uncategorized Expense", "Expense", "OtherMiscellaneousServiceCost"),
    LedgerAccount("32", "Uncategorized Asset", "Other Current Asset", "OtherCurrentAssets"),
    LedgerAccount("33", "Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable"),
    LedgerAccount("34", "Opening Balance Equity", "Equity", "OpeningBalanceEquity"),
    LedgerAccount("35", "Checking", "Bank", "Checking"),
    LedgerAccount("36", "Savings", "Bank", "Savings"),
    LedgerAccount("37", "Truck", "Fixed Asset", "Vehicles"),
    LedgerAccount("38", "Original Cost", "Fixed Asset", "Vehicles", "37"),
    LedgerAccount("39", "Depreciation", "Fixed Asset", "AccumulatedDepreciation", "37"),
    LedgerAccount("40", "Depreciation", "Other Expense", "Depreciation"),
    LedgerAccount("41", "Mastercard", "Credit Card", "CreditCard"),
    LedgerAccount("42", "Visa", "Credit Card", "CreditCard"),
    LedgerAccount("43", "Loan Payable", "Other Current Liability", "OtherCurrentLiabilities"),
    LedgerAccount("44", "Notes Payable", "Long Term Liability", "OtherLongTermLiabilities"),
    LedgerAccount("45", "Landscaping Services", "Income", "OtherPrimaryIncome"),
    LedgerAccount("46", "Job Materials", "Income", "OtherPrimaryIncome", "45"),
    LedgerAccount("47", "Decks and Patios", "Income", "OtherPrimaryIncome", "46"),
    LedgerAccount("48", "Fountains and Garden Lighting", "Income", "OtherPrimaryIncome", "46"),
    LedgerAccount("49", "Plants and Soil", "Income", "OtherPrimaryIncome", "46"),
    LedgerAccount("50", "Sprinklers and Drip Systems", "Income", "OtherPrimaryIncome", "46"),
    LedgerAccount("51", "Labor", "Income", "OtherPrimaryIncome", "45"),
    LedgerAccount("52", "Installation", "Income", "OtherPrimaryIncome", "51"),
    LedgerAccount("53", "Maintenance and Repair", "Income", "OtherPrimaryIncome", "51"),
    LedgerAccount("54", "Pest Control Services", "Income", "OtherPrimaryIncome"),
    LedgerAccount("55", "Automobile", "Expense", "Auto"),
    LedgerAccount("56", "Fuel", "Expense", "Auto", "55"),
    LedgerAccount("57", "Workers Compensation", "Expense", "Insurance", "11"),
    LedgerAccount("58", "Job Expenses", "Expense", "OtherMiscellaneousServiceCost"),
    LedgerAccount("59", "Cost of Labor", "Expense", "OtherMiscellaneousServiceCost", "58"),
    LedgerAccount("60", "Installation", "Expense", "OtherMiscellaneousServiceCost", "59"),
    LedgerAccount("61", "Maintenance and Repairs", "Expense", "OtherMiscellaneousServiceCost", "59"),
    LedgerAccount("62", "Equipment Rental", "Expense", "EquipmentRental", "58"),
    LedgerAccount("63", "Job Materials", "Expense", "SuppliesMaterials", "58"),
    LedgerAccount("64", "Decks and Patios", "Expense", "SuppliesMaterials", "63"),
    LedgerAccount("65", "Fountain and Garden Lighting", "Expense", "SuppliesMaterials", "63"),
    LedgerAccount("66", "Plants and Soil", "Expense", "SuppliesMaterials", "63"),
    LedgerAccount("67", "Sprinklers and Drip Systems", "Expense", "SuppliesMaterials", "63"),
    LedgerAccount("68", "Permits", "Expense", "OtherMiscellaneousServiceCost", "58"),
    LedgerAccount("69", "Accounting", "Expense", "LegalProfessionalFees", "12"),
    LedgerAccount("70", "Bookkeeper", "Expense", "LegalProfessionalFees", "12"),
    LedgerAccount("71", "Lawyer", "Expense", "LegalProfessionalFees", "12"),
    LedgerAccount("72", "Maintenance and Repair", "Expense", "RepairMaintenance"),
    LedgerAccount("73", "Building Repairs", "Expense", "RepairMaintenance", "72"),
    LedgerAccount("74", "Computer Repairs", "Expense", "RepairMaintenance", "72"),
    LedgerAccount("75", "Equipment Repairs", "Expense", "RepairMaintenance", "72"),
    LedgerAccount("76", "Gas and Electric", "Expense", "Utilities", "24"),
    LedgerAccount("77", "Telephone", "Expense", "Utilities", "24"),
    LedgerAccount("78", "Purchases", "Expense", "SuppliesMaterials"),
    LedgerAccount("79", "Sales of Product Income", "Income", "SalesOfProductIncome"),
    LedgerAccount("80", "Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    LedgerAccount("81", "Inventory Asset", "Other Current Asset", "Inventory"),
    LedgerAccount("82", "Design income", "Income", "OtherPrimaryIncome"),
    LedgerAccount("83", "Other Income", "Income", "OtherPrimaryIncome"),
    LedgerAccount("84", "Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    LedgerAccount("85", "Billable Expense Income", "Income", "ServiceFeeIncome"),
    LedgerAccount("86", "Discounts given", "Income", "DiscountsRefundsGiven"),
    LedgerAccount("87", "Unapplied Cash Payment Income", "Income", "UnappliedCashPaymentIncome"),
    LedgerAccount("88", "Unapplied Cash Bill Payment Expense", "Expense", "UnappliedCashBillPaymentExpense"),
    LedgerAccount("89", "Arizona Dept. of Revenue Payable", "Other Current Liability", "GlobalTaxPayable"),
    LedgerAccount("90", "Board of Equalization Payable", "Other Current Liability", "GlobalTaxPayable"),
    LedgerAccount("91", "Security Deposits", "Other Asset", "SecurityDeposits"),
)

_US_ITEMS = (
    Product("1", "Services", "Service", "1"),
    Product("2", "Hours", "Service", "1"),
    Product("3", "Concrete", "Service", "48", description="Concrete for fountain installation", taxable=True),
    Product("4", "Design", "Service", "82", 75, "Custom Design"),
    Product("5", "Rock Fountain", "Inventory", "79", 275, "Rock Fountain", True, 125, "80", 2),
    Product("6", "Gardening", "Service", "45", description="Weekly Gardening Service"),
    Product("7", "Installation", "Service", "52", 50, "Installation of landscape design"),
    Product("8", "Lighting", "Service", "48", description="Garden Lighting", taxable=True),
    Product("9", "Maintenance & Repair", "Service", "53", description="Maintenance & Repair"),
    Product("10", "Pest Control", "Service", "54", 35, "Pest Control Services"),
    Product("11", "Pump", "Inventory", "79", 15, "Fountain Pump", True, 10, "80", 25),
    Product("12", "Refunds & Allowances", "Service", "83", description="Income due to refunds or allowances"),
    Product("13", "Rocks", "Service", "48", description="Garden Rocks", taxable=True),
    Product("14", "Sod", "Service", "49", description="Sod", taxable=True),
    Product("15", "Soil", "Service", "49", 10, "2 cubic ft. bag", True, 6.5, "66"),
    Product("16", "Sprinkler Heads", "Inventory", "79", 2, "Sprinkler Heads", True, 0.75, "80", 25),
    Product("17", "Sprinkler Pipes", "Inventory", "79", 4, "Sprinkler Pipes", True, 2.5, "80", 31),
    Product("18", "Trimming", "Service", "45", 35, "Tree and Shrub Trimming"),
)

_FREEMAN = Person(
    "7",
    "Freeman Sporting Goods",
    "Kirby",
    "Freeman",
    "Freeman Sporting Goods",
    "(650) 555-0987",
    "Sporting_goods@intuit.com",
    ("370 Easy St.", "Middlefield", "CA", "94482", "37.4031672", "-122.0642815"),
    ship_same=True,
    mobile="(973) 555-8849",
    fax="(520) 555-7894",
    web="http://sportinggoods.intuit.com",
)

_US_CUSTOMERS = (
    Person(
        "1",
        "Amy's Bird Sanctuary",
        "Amy",
        "Lauterbach",
        "Amy's Bird Sanctuary",
        "(650) 555-3311",
        "Birds@Intuit.com",
        ("4581 Finch St.", "Bayshore", "CA", "94326", "INVALID", "INVALID"),
        ship_same=True,
        taxable=True,
    ),
    Person(
        "2",
        "Bill's Windsurf Shop",
        "Bill",
        "Lucchini",
        "Bill's Windsurf Shop",
        "(415) 444-6538",
        "Surf@Intuit.com",
        ("12 Ocean Dr.", "Half Moon Bay", "CA", "94213", "37.4307072", "-122.4295234"),
    ),
    Person(
        "3",
        "Cool Cars",
        "Grace",
        "Pariente",
        "Cool Cars",
        "(415) 555-9933",
        "Cool_Cars@intuit.com",
        ("65 Ocean Dr.", "Half Moon Bay", "CA", "94213", "37.4300318", "-122.4336537"),
    ),
    Person(
        "4",
        "Diego Rodriguez",
        "Diego",
        "Rodriguez",
        None,
        "(650) 555-4477",
        "Diego@Rodriguez.com",
        ("321 Channing", "Palo Alto", "CA", "94303", "37.443231", "-122.1561846"),
    ),
    Person(
        "5",
        "Dukes Basketball Camp",
        "Peter",
        "Dukes",
        "Dukes Basketball Camp",
        "(520) 420-5638",
        "Dukes_bball@intuit.com",
        ("25 Court St.", "Tucson", "AZ", "85719", "32.2841116", "-110.9744298"),
        ship_same=True,
        taxable=True,
    ),
    Person("6", "Dylan Sollfrank", "Dylan", "Sollfrank"),
    _FREEMAN,
    replace(
        _FREEMAN,
        entity_id="8",
        display="0969 Ocean View Road",
        given="Sasha",
        family="Tillou",
        phone="(415) 555-9933",
        parent="7",
    ),
    replace(_FREEMAN, entity_id="9", display="55 Twin Lane", given="Amelia", family=None, parent="7"),
    Person(
        "10",
        "Geeta Kalapatapu",
        "Geeta",
        "Kalapatapu",
        None,
        "(650) 555-0022",
        "Geeta@Kalapatapu.com",
        ("1987 Main St.", "Middlefield", "CA", "94303", "37.445013", "-122.1391443"),
        ship_same=True,
    ),
    Person(
        "11",
        "Gevelber Photography",
        "Lisa",
        "Gevelber",
        "Gevelber Photography",
        "(415) 222-4345",
        "Photography@intuit.com",
        ("1045 Main St.", "Half Moon Bay", "CA", "94213", "37.4559621", "-122.429939"),
        ship_same=True,
        web="http://gevelberphotography.com",
    ),
    Person(
        "12",
        "Jeff's Jalopies",
        "Jeff",
        "Chin",
        "Jeff's Jalopies",
        "(650) 555-8989",
        "Jalopies@intuit.com",
        ("12 Willow Rd.", "Menlo Park", "CA", "94305", "37.4495308", "-122.1726923"),
        ship_same=True,
    ),
    Person(
        "13",
        "John Melton",
        "John",
        "Melton",
        None,
        "(650) 555-5879",
        "John@Melton.com",
        ("85 Pine St.", "Menlo Park", "CA", "94304", "37.4451342", "-122.1409626"),
        ship_same=True,
    ),
    Person(
        "14",
        "Kate Whelan",
        "Kate",
        "Whelan",
        None,
        "(650) 554-8822",
        "Kate@Whelan.com",
        ("45 First St.", "Menlo Park", "CA", "94304", "37.4585825", "-122.1352789"),
        ship_same=True,
    ),
    Person(
        "15",
        "Pye's Cakes",
        "Karen",
        "Pye",
        "Pye's Cakes",
        "(973) 555-4652",
        "pyescakes@intuit.com",
        ("350 Mountain View Dr.", "South Orange", "NJ", "07079", "40.7633073", "-74.2426072"),
        ship_same=True,
        mobile="(973) 555-2234",
        web="http://www.pyescakes.intuit.com",
    ),
    Person(
        "16",
        "Kookies by Kathy",
        "Kathy",
        "Kuplis",
        "Kookies by Kathy",
        "(650) 555-7896",
        "qbwebsamplecompany@yahoo.com",
        ("789 Sugar Lane", "Middlefield", "CA", "94303", "37.4530553", "-122.1178261"),
    ),
    Person(
        "17",
        "Mark Cho",
        "Mark",
        "Cho",
        None,
        "(650) 554-1479",
        "Mark@Cho.com",
        ("36 Willow Rd", "Menlo Park", "CA", "94304", "37.450412", "-122.170593"),
        ship_same=True,
    ),
    Person(
        "18",
        "Paulsen Medical Supplies",
        "Kathy",
        "Paulsen",
        "Paulsen Medical Supplies",
        "(650) 557-4569",
        "Medical@intuit.com",
        ("900 Main St.", "Middlefield", "CA", "94303", "37.445013", "-122.1391443"),
        ("38921 S. Boise Ave", "Middlefield", "CA", "94304", "37.3989376", "-122.1443935"),
    ),
    Person(
        "19",
        "Rago Travel Agency",
        "Jeff",
        "Rago",
        "Rago Travel Agency",
        "(650) 555-1596",
        "Rago_Travel@intuit.com",
        ("753 Cedar St.", "Bayshore", "CA", "94326", "37.7077016", "-122.4273232"),
        ship_same=True,
    ),
    Person(
        "20",
        "Red Rock Diner",
        "Stephanie",
        "Martini",
        "Red Rock Diner",
        "(650) 555-4973",
        "qbwebsamplecompany@yahoo.com",
        ("500 Red Rock Rd.", "Bayshore", "CA", "94326", "INVALID", "INVALID"),
        ship_same=True,
    ),
    Person(
        "21",
        "Rondonuwu Fruit and Vegi",
        "Rondonuwu",
        "and Vegi",
        None,
        "(650) 555-2645",
        "Tony@Rondonuwu.com",
        ("847 California Ave.", "San Jose", "CA", "95021", "37.3313585", "-121.911372"),
        ship_same=True,
        middle="Fruit",
    ),
    Person(
        "22",
        "Shara Barnett",
        "Shara",
        "Barnett",
        None,
        "(650) 555-4563",
        "Shara@Barnett.com",
        ("77 University", "Palo Alto", "CA", "94303", "37.4431445", "-122.164443"),
        ship_same=True,
    ),
    Person(
        "23",
        "Barnett Design",
        "Shara",
        "Barnett",
        "Barnett Design",
        "(650) 557-1289",
        "Design@intuit.com",
        ("19 Main St.", "Middlefield", "CA", "94303", "37.445013", "-122.1391443"),
        ship_same=True,
        parent="22",
    ),
    Person(
        "24",
        "Sonnenschein Family Store",
        "Russ",
        "Sonnenschein",
        "Sonnenschein Family Store",
        "(650) 557-8463",
        "Familiystore@intuit.com",
        ("5647 Cypress Hill Ave.", "Middlefield", "CA", "94303", "37.4238562", "-122.1141681"),
        ship_same=True,
    ),
    Person(
        "25",
        "Sushi by Katsuyuki",
        "Katsuyuki",
        "Yanagawa",
        "Sushi by Katsuyuki",
        "(505) 570-0147",
        "Sushi@intuit.com",
        ("898 Elm St.", "Maplewood", "NJ", "07040", "40.7312816", "-74.2652908"),
        ship_same=True,
    ),
    Person(
        "26",
        "Travis Waldron",
        "Travis",
        "Waldron",
        None,
        "(650) 557-9977",
        "Travis@Waldron.com",
        ("78 First St.", "Monlo Park", "CA", "94304", "37.4585825", "-122.1352789"),
        ship_same=True,
    ),
    Person(
        "27",
        "Video Games by Dan",
        "Dan",
        "Wilks",
        "Video Games by Dan",
        "(650) 555-3456",
        "Videogames@intuit.com",
        ("202 Main St.", "Tucson", "AZ", "85704", "32.2242351", "-110.9758242"),
        ship_same=True,
    ),
    Person(
        "28",
        "Wedding Planning by Whitney",
        "Whitney",
        "Brewer",
        "Wedding Planning by Whitney",
        "(650) 557-2473",
        "Dream_Wedding@intuit.com",
        ("135 Broadway", "Menlo Park", "CA", "94304", "37.4846734", "-122.1989488"),
        ship_same=True,
        web="http://www.dreamwedding.intuit.com",
    ),
    Person(
        "29",
        "Weiskopf Consulting",
        "Nicola",
        "Weiskopf",
        "Weiskopf Consulting",
        "(650) 555-1423",
        "Consulting@intuit.com",
        ("45612 Main St.", "Bayshore", "CA", "94326", "45.256574", "-66.0943698"),
        ship_same=True,
    ),
)

_US_VENDORS = (
    Person(
        "30",
        "Books by Bessie",
        "Bessie",
        "Williams",
        "Books by Bessie",
        "(650) 555-7745",
        "Books@Intuit.com",
        ("15 Main St.", "Palo Alto", "CA", "94303", "37.445013", "-122.1391443"),
        web="http://www.booksbybessie.co",
        extra=(("AcctNum", "1345"),),
    ),
    Person(
        "31",
        "Brosnahan Insurance Agency",
        "Nick",
        "Brosnahan",
        "Brosnahan Insurance Agency",
        "(650) 555-9912",
        None,
        ("P.O. Box 5", "Middlefield", "CA", "94482", "43.8249453", "-79.2639122"),
        mobile="(650) 555-9874",
        fax="(555) 123-4567",
        web="http://BrosnahanInsuranceAgency.org",
        extra=(("AcctNum", "7653412"), ("Vendor1099", True)),
    ),
    Person(
        "32",
        "Cal Telephone",
        company="Cal Telephone",
        phone="(650) 555-1616",
        bill=("10 Main St.", "Palo Alto", "CA", "94303", "37.445013", "-122.1391443"),
        extra=(("TermRef", {"value": "1"}), ("BillRate", 25)),
    ),
    Person("33", "Chin's Gas and Oil", company="Chin's Gas and Oil"),
    Person(
        "34",
        "Cigna Health Care",
        company="Cigna Health Care",
        phone="(520) 555-9874",
        extra=(("AcctNum", "123456789"),),
    ),
    Person(
        "35",
        "Computers by Jenni",
        "Jenni",
        "Winslow",
        "Computers by Jenni",
        "(650) 555-8721",
        "Msfixit@Intuit.com",
    ),
    Person("36", "Diego's Road Warrior Bodyshop", company="Diego's Road Warrior Bodyshop"),
    Person("37", "EDD", company="EDD"),
    Person(
        "38",
        "Ellis Equipment Rental",
        "Julie",
        "Ellis",
        "Ellis Equipment Rental",
        "(650) 555-3333",
        "Rental@intuit.com",
    ),
    Person("39", "Fidelity", company="Fidelity"),
    Person("40", "Hall Properties", "Melanie", "Hall", "Hall Properties", "(973) 555-3827"),
    Person("41", "Hicks Hardware", "Geoff", "Hicks", "Hicks Hardware", "(650) 554-1973"),
    Person("42", "Lee Advertising", "Laurel", "Lee", "Lee Advertising", "(650) 554-4622"),
    Person("43", "Mahoney Mugs", company="Mahoney Mugs"),
    Person("44", "Met Life Dental", company="Met Life Dental"),
    Person(
        "45",
        "National Eye Care",
        company="National Eye Care",
        phone="(800) 555-5555",
        email="Nateyecare@intuit.com, pauliejones15@intuit.com",
    ),
    Person(
        "46",
        "Norton Lumber and Building Materials",
        "Julie",
        "Norton",
        "Norton Lumber and Building Materials",
        "(650) 363-6578",
        "Materials@intuit.com",
    ),
    Person("47", "Pam Seitz", "Pam", "Seitz", "Pam Seitz, CPA", "(650) 557-8855", "SeitzCPA@noemail.com"),
    Person("48", "PG&E", company="PG&E", phone="(888) 555-9465", email="utilities@noemail.com"),
    Person("49", "Robertson & Associates", "Jenny", "Robertson", "Robertson & Associates", "(650) 557-1111"),
    Person(
        "50",
        "Tania's Nursery",
        "Tania",
        "Kronberg",
        "Tania's Nursery",
        "(886) 554-2265",
        "plantqueen@taniasnursery.com",
    ),
    Person(
        "51",
        "Tim Philip Masonry",
        "Tim",
        "Philip",
        "Tim Philip Masonry",
        "(800) 556-1254",
        "tim.philip@timphilipmasonry.com",
    ),
    Person("52", "Tony Rondonuwu", "Tony", "Rodonuwu", email="tonyrjr@intuit.com"),
    Person("53", "United States Treasury", phone="(888) 555-6454", email="taxesaregreat@intuit.com"),
    Person("56", "Bob's Burger Joint"),
    Person("57", "Squeaky Kleen Car Wash"),
)

_US_EMPLOYEES = (
    Person("54", "Emily Platt", "Emily", "Platt"),
    Person("55", "John Johnson", "John", "Johnson"),
)


def _seed_us(seeder: _Seeder) -> None:
    _seed_company_info(
        seeder,
        legal_name="Craig's Design and Landscaping Services",
        address=("123 Sierra Way", "San Pablo", "CA", "87999", "36.6788345", "-5.4464622"),
        phone="(650) 555-1234",
        fiscal_month="January",
        industry="Landscaping Services",
    )
    _seed_preferences(seeder, fiscal_month="January", partner_tax=True)
    _seed_tax(
        seeder,
        (("1", "Board of Equalization"), ("2", "Arizona Dept. of Revenue")),
        (
            TaxRateSeed("1", "AZ State tax", 5.6, "2"),
            TaxRateSeed("2", "Tucson City", 2.6, "2"),
            TaxRateSeed("3", "California", 8, "1"),
        ),
        (TaxCodeSeed("2", "California", ("3",)), TaxCodeSeed("3", "Tucson", ("1", "2"))),
        purchases_tracked=False,
    )
    # AST's pseudo codes for line-level taxability; QBO returns them without an Active field.
    seeder.fixed("TaxCode", "TAX", {"Name": "TAX", "Description": "TAX", "Taxable": True, "TaxGroup": False})
    seeder.fixed("TaxCode", "NON", {"Name": "NON", "Description": "NON", "Taxable": False, "TaxGroup": False})
    _seed_terms(seeder)
    _seed_payment_methods(seeder, "Check")
    _seed_accounts(seeder, _US_ACCOUNTS)
    _seed_items(seeder, _US_ITEMS, None)
    for person in _US_CUSTOMERS:
        seeder.name_list("Customer", person.entity_id, person.customer(us=True))
    people = [(p, "Vendor") for p in _US_VENDORS] + [(p, "Employee") for p in _US_EMPLOYEES]
    for person, entity in sorted(people, key=lambda pair: int(pair[0].entity_id)):
        body = person.vendor() if entity == "Vendor" else person.employee()
        seeder.name_list(entity, person.entity_id, body)


# --- CA, GB, AU ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Locale:
    legal_name: str
    address: Address
    phone: str
    fiscal_month: str
    industry: str
    check_name: str
    agencies: tuple[tuple[str, str], ...]
    rates: tuple[TaxRateSeed, ...]
    codes: tuple[TaxCodeSeed, ...]
    account_names: dict[str, str]
    customers: tuple[Person, ...]
    vendors: tuple[Person, ...]
    employees: tuple[Person, ...]
    languages: str = "en"


_LOCALE_ACCOUNTS = (
    LedgerAccount("1", "Services", "Income", "ServiceFeeIncome"),
    LedgerAccount("2", "Retained Earnings", "Equity", "RetainedEarnings"),
    LedgerAccount("3", "Prepaid Expenses", "Other Current Asset", "PrepaidExpenses"),
    LedgerAccount("4", "Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    LedgerAccount("7", "Advertising", "Expense", "AdvertisingPromotional"),
    LedgerAccount("8", "Bank Charges", "Expense", "BankCharges"),
    LedgerAccount("11", "Insurance", "Expense", "Insurance"),
    LedgerAccount("15", "Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses"),
    LedgerAccount("17", "Rent or Lease", "Expense", "RentOrLeaseOfBuildings"),
    LedgerAccount("20", "Supplies", "Expense", "SuppliesMaterials"),
    LedgerAccount("22", "Travel", "Expense", "Travel"),
    LedgerAccount("24", "Utilities", "Expense", "Utilities"),
    LedgerAccount("25", "Interest Earned", "Other Income", "InterestEarned"),
    LedgerAccount("30", "Uncategorized Income", "Income", "ServiceFeeIncome"),
    LedgerAccount("31", "Uncategorized Expense", "Expense", "OtherMiscellaneousServiceCost"),
    LedgerAccount("32", "Uncategorized Asset", "Other Current Asset", "OtherCurrentAssets"),
    LedgerAccount("33", "Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable"),
    LedgerAccount("34", "Opening Balance Equity", "Equity", "OpeningBalanceEquity"),
    LedgerAccount("35", "Checking", "Bank", "Checking"),
    LedgerAccount("36", "Savings", "Bank", "Savings"),
    LedgerAccount("37", "Office Equipment", "Fixed Asset", "FurnitureAndFixtures"),
    LedgerAccount("39", "Depreciation", "Fixed Asset", "AccumulatedDepreciation", "37"),
    LedgerAccount("40", "Depreciation", "Other Expense", "Depreciation"),
    LedgerAccount("41", "Business Credit Card", "Credit Card", "CreditCard"),
    LedgerAccount("43", "Loan Payable", "Other Current Liability", "LoanPayable"),
    LedgerAccount("44", "Bank Loan", "Long Term Liability", "BankLoans"),
    LedgerAccount("45", "Contract Revenue", "Income", "OtherPrimaryIncome"),
    LedgerAccount("46", "Installation", "Income", "OtherPrimaryIncome", "45"),
    LedgerAccount("72", "Repairs and Maintenance", "Expense", "RepairMaintenance"),
    LedgerAccount("73", "Building Repairs", "Expense", "RepairMaintenance", "72"),
    LedgerAccount("79", "Sales of Product Income", "Income", "SalesOfProductIncome"),
    LedgerAccount("80", "Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    LedgerAccount("81", "Inventory Asset", "Other Current Asset", "Inventory"),
    LedgerAccount("82", "Consulting Income", "Income", "ServiceFeeIncome"),
    LedgerAccount("84", "Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    LedgerAccount("86", "Discounts given", "Income", "DiscountsRefundsGiven"),
    LedgerAccount("87", "Unapplied Cash Payment Income", "Income", "UnappliedCashPaymentIncome"),
    LedgerAccount("88", "Unapplied Cash Bill Payment Expense", "Expense", "UnappliedCashBillPaymentExpense"),
    LedgerAccount("89", "Sales Tax Payable", "Other Current Liability", "GlobalTaxPayable"),
    LedgerAccount("90", "Sales Tax Suspense", "Other Current Liability", "GlobalTaxSuspense"),
    LedgerAccount("91", "Security Deposits", "Other Asset", "SecurityDeposits"),
)

_LOCALE_ITEMS = (
    Product("1", "Services", "Service", "1"),
    Product("2", "Hours", "Service", "1"),
    Product("3", "Consulting", "Service", "82", 120, "Consulting, per hour"),
    Product("4", "Installation", "Service", "46", 65, "Installation labour, per hour"),
    Product(
        "5", "Smart Thermostat", "Inventory", "79", 199, "Smart Thermostat", cost=120, expense="80", qty=10
    ),
    Product("6", "Hardware", "Category"),
    Product(
        "7", "Mounting Kit", "NonInventory", "79", 15, "Wall mounting kit", cost=6, expense="80", parent="6"
    ),
    Product("8", "Support Plan", "Service", "1", 49, "Annual support plan"),
)


def _seed_locale(seeder: _Seeder, locale: Locale) -> None:
    _seed_company_info(
        seeder,
        legal_name=locale.legal_name,
        address=locale.address,
        phone=locale.phone,
        fiscal_month=locale.fiscal_month,
        industry=locale.industry,
        languages=locale.languages,
    )
    _seed_preferences(seeder, fiscal_month=locale.fiscal_month, partner_tax=False)
    _seed_tax(seeder, locale.agencies, locale.rates, locale.codes, purchases_tracked=True)
    _seed_terms(seeder)
    _seed_payment_methods(seeder, locale.check_name)
    accounts = tuple(
        LedgerAccount(
            a.entity_id, locale.account_names.get(a.entity_id, a.name), a.account_type, a.subtype, a.parent
        )
        for a in _LOCALE_ACCOUNTS
    )
    _seed_accounts(seeder, accounts)
    _seed_items(seeder, _LOCALE_ITEMS, "2")
    for person in locale.customers:
        seeder.name_list("Customer", person.entity_id, person.customer(us=False))
    for person in locale.vendors:
        seeder.name_list("Vendor", person.entity_id, person.vendor())
    for person in locale.employees:
        seeder.name_list("Employee", person.entity_id, person.employee())


LOCALES: dict[str, Locale] = {
    "CA": Locale(
        legal_name="Maple Ridge Home Services Ltd.",
        address=("220 King St. W", "Toronto", "ON", "M5H 1K4"),
        phone="(416) 555-0100",
        fiscal_month="January",
        industry="Home Services",
        check_name="Cheque",
        languages="en,fr",
        agencies=(("1", "Canada Revenue Agency"), ("2", "Ministry of Finance (BC)")),
        rates=(
            TaxRateSeed("1", "GST", 5, "1", "GST (5%)"),
            TaxRateSeed("2", "HST ON", 13, "1", "HST Ontario (13%)"),
            TaxRateSeed("3", "PST BC", 7, "2", "PST British Columbia (7%)"),
            TaxRateSeed("4", "Exempt", 0, "1"),
            TaxRateSeed("5", "Zero-rated", 0, "1"),
            TaxRateSeed("6", "Out of Scope", 0, "1"),
        ),
        codes=(
            TaxCodeSeed("2", "GST", ("1",), ("1",)),
            TaxCodeSeed("3", "HST ON", ("2",), ("2",)),
            TaxCodeSeed("4", "GST/PST BC", ("1", "3"), ("1",)),
            TaxCodeSeed("5", "Exempt", ("4",), ("4",)),
            TaxCodeSeed("6", "Zero-rated", ("5",), ("5",)),
            TaxCodeSeed("7", "Out of Scope", ("6",), ("6",)),
        ),
        account_names={"35": "Chequing", "89": "GST/HST Payable", "90": "PST Payable (BC)"},
        customers=(
            Person(
                "1",
                "Maple Leaf Dental",
                "Anne",
                "Gagnon",
                "Maple Leaf Dental",
                "(416) 555-0134",
                "office@mapleleafdental.example.ca",
                ("88 Queen St. E", "Toronto", "ON", "M5C 1S6"),
            ),
            Person(
                "2",
                "Northern Lights Bakery",
                "Liam",
                "Wilson",
                "Northern Lights Bakery",
                "(613) 555-0178",
                "orders@northernlights.example.ca",
                ("41 Elgin St.", "Ottawa", "ON", "K1P 5K6"),
            ),
            Person(
                "3",
                "Okanagan Orchards",
                "Priya",
                "Singh",
                "Okanagan Orchards",
                "(250) 555-0142",
                "priya@okanaganorchards.example.ca",
                ("1550 Harvey Ave.", "Kelowna", "BC", "V1Y 6G2"),
            ),
            Person(
                "4",
                "Lakeshore Packing Shed",
                "Priya",
                "Singh",
                "Okanagan Orchards",
                "(250) 555-0143",
                bill=("3300 Lakeshore Rd.", "Kelowna", "BC", "V1W 3S9"),
                parent="3",
            ),
            Person(
                "5",
                "Sophie Tremblay",
                "Sophie",
                "Tremblay",
                phone="(514) 555-0166",
                email="sophie.tremblay@example.ca",
                bill=("1200 Rue Saint-Denis", "Montreal", "QC", "H2X 3J6"),
            ),
            Person(
                "6",
                "Rideau Canal Outfitters",
                "Owen",
                "MacDonald",
                "Rideau Canal Outfitters",
                "(613) 555-0121",
                "hello@rideauoutfitters.example.ca",
                ("9 Colonel By Dr.", "Ottawa", "ON", "K1N 9H4"),
            ),
            Person(
                "7",
                "Granville Island Books",
                "Chloe",
                "Nguyen",
                "Granville Island Books",
                "(604) 555-0190",
                "books@granville.example.ca",
                ("1666 Johnston St.", "Vancouver", "BC", "V6H 3S2"),
            ),
        ),
        vendors=(
            Person(
                "8",
                "Laurentian Office Supply",
                company="Laurentian Office Supply",
                phone="(416) 555-0111",
                bill=("77 Bloor St. W", "Toronto", "ON", "M5S 1M2"),
            ),
            Person("9", "Great Lakes Hydro", company="Great Lakes Hydro", phone="(888) 555-0149"),
            Person(
                "10", "Pacific Fleet Leasing", "Mateo", "Silva", "Pacific Fleet Leasing", "(604) 555-0155"
            ),
            Person("11", "Receiver General for Canada", company="Receiver General for Canada"),
        ),
        employees=(
            Person("12", "Emma Roy", "Emma", "Roy", phone="(416) 555-0102"),
            Person("13", "Noah Campbell", "Noah", "Campbell", phone="(416) 555-0103"),
        ),
    ),
    "GB": Locale(
        legal_name="Kestrel & Finch Interiors Ltd",
        address=("14 Hanover Square", "London", "", "W1S 1HT"),
        phone="020 7946 0100",
        fiscal_month="April",
        industry="Interior Design",
        check_name="Cheque",
        agencies=(("1", "HM Revenue & Customs"),),
        rates=(
            TaxRateSeed("1", "20.0% S", 20, "1", "Standard rate"),
            TaxRateSeed("2", "5.0% R", 5, "1", "Reduced rate"),
            TaxRateSeed("3", "0.0% Z", 0, "1", "Zero rate"),
            TaxRateSeed("4", "Exempt", 0, "1"),
            TaxRateSeed("5", "No VAT", 0, "1"),
        ),
        codes=(
            TaxCodeSeed("2", "20.0% S", ("1",), ("1",), "Standard rate"),
            TaxCodeSeed("3", "5.0% R", ("2",), ("2",), "Reduced rate"),
            TaxCodeSeed("4", "0.0% Z", ("3",), ("3",), "Zero rate"),
            TaxCodeSeed("5", "Exempt", ("4",), ("4",)),
            TaxCodeSeed("6", "No VAT", ("5",), ("5",)),
        ),
        account_names={
            "35": "Current Account",
            "80": "Cost of sales",
            "81": "Stock",
            "84": "Trade Debtors",
            "33": "Trade Creditors",
            "89": "VAT Control",
            "90": "VAT Suspense",
        },
        customers=(
            Person(
                "1",
                "Thames Valley Joinery",
                "Harry",
                "Clarke",
                "Thames Valley Joinery",
                "0118 496 0123",
                "harry@tvjoinery.example.co.uk",
                ("22 Friar St", "Reading", "", "RG1 1DB"),
            ),
            Person(
                "2",
                "Bramble & Thistle Florists",
                "Isla",
                "Reid",
                "Bramble & Thistle Florists",
                "0131 496 0456",
                "shop@brambleandthistle.example.co.uk",
                ("5 Victoria St", "Edinburgh", "", "EH1 2HE"),
            ),
            Person(
                "3",
                "Harrow Hill Surgery",
                "Amir",
                "Khan",
                "Harrow Hill Surgery",
                "020 7946 0789",
                "practice@harrowhill.example.nhs.uk",
                ("3 High St", "Harrow", "", "HA1 3HT"),
            ),
            Person(
                "4",
                "Wembley Branch",
                "Amir",
                "Khan",
                "Harrow Hill Surgery",
                "020 7946 0790",
                bill=("40 Wembley Park Dr", "Wembley", "", "HA9 8HP"),
                parent="3",
            ),
            Person(
                "5",
                "Oliver Pemberton",
                "Oliver",
                "Pemberton",
                phone="01225 496 012",
                email="oliver.pemberton@example.co.uk",
                bill=("9 Royal Cres", "Bath", "", "BA1 2LR"),
            ),
            Person(
                "6",
                "Clyde Street Cafe",
                "Fiona",
                "Murray",
                "Clyde Street Cafe",
                "0141 496 0345",
                "hello@clydestreetcafe.example.co.uk",
                ("61 Clyde St", "Glasgow", "", "G1 5LN"),
            ),
            Person(
                "7",
                "Peak District Outdoors",
                "Tom",
                "Hughes",
                "Peak District Outdoors",
                "01298 496 067",
                "sales@peakoutdoors.example.co.uk",
                ("12 Spring Gardens", "Buxton", "", "SK17 6DE"),
            ),
        ),
        vendors=(
            Person(
                "8",
                "Albion Office Supplies",
                company="Albion Office Supplies",
                phone="020 7946 0222",
                bill=("200 Aldersgate St", "London", "", "EC1A 4HD"),
            ),
            Person("9", "Severn Power & Gas", company="Severn Power & Gas", phone="0800 496 0333"),
            Person("10", "Kingsway Van Hire", "Raj", "Patel", "Kingsway Van Hire", "020 7946 0444"),
            Person("11", "HM Revenue & Customs", company="HM Revenue & Customs"),
        ),
        employees=(
            Person("12", "Sophie Evans", "Sophie", "Evans", phone="020 7946 0101"),
            Person("13", "James Wright", "James", "Wright", phone="020 7946 0102"),
        ),
    ),
    "AU": Locale(
        legal_name="Coastal Gum Landscapes Pty Ltd",
        address=("100 George St", "Sydney", "NSW", "2000"),
        phone="(02) 5550 0100",
        fiscal_month="July",
        industry="Landscaping Services",
        check_name="Cheque",
        agencies=(("1", "Australian Taxation Office"),),
        rates=(
            TaxRateSeed("1", "GST", 10, "1", "GST (10%)"),
            TaxRateSeed("2", "GST free", 0, "1"),
            TaxRateSeed("3", "Input taxed", 0, "1"),
        ),
        codes=(
            TaxCodeSeed("2", "GST", ("1",), ("1",)),
            TaxCodeSeed("3", "GST free", ("2",), ("2",)),
            TaxCodeSeed("4", "Input taxed", ("3",), ("3",)),
        ),
        account_names={"35": "Cheque Account", "89": "GST Liabilities Payable", "90": "GST Suspense"},
        customers=(
            Person(
                "1",
                "Bondi Surf Co",
                "Jack",
                "Taylor",
                "Bondi Surf Co",
                "(02) 5550 0123",
                "jack@bondisurf.example.com.au",
                ("180 Campbell Pde", "Bondi Beach", "NSW", "2026"),
            ),
            Person(
                "2",
                "Wattle Tree Childcare",
                "Chloe",
                "Martin",
                "Wattle Tree Childcare",
                "(02) 5550 0456",
                "office@wattletree.example.com.au",
                ("15 Northbourne Ave", "Canberra", "ACT", "2601"),
            ),
            Person(
                "3",
                "Harbourside Dental",
                "Lachlan",
                "Brown",
                "Harbourside Dental",
                "(02) 5550 0789",
                "reception@harbourside.example.com.au",
                ("2 Circular Quay", "Sydney", "NSW", "2000"),
            ),
            Person(
                "4",
                "Parramatta Clinic",
                "Lachlan",
                "Brown",
                "Harbourside Dental",
                "(02) 5550 0790",
                bill=("150 Church St", "Parramatta", "NSW", "2150"),
                parent="3",
            ),
            Person(
                "5",
                "Mia Nguyen",
                "Mia",
                "Nguyen",
                phone="0491 570 156",
                email="mia.nguyen@example.com.au",
                bill=("300 Collins St", "Melbourne", "VIC", "3000"),
            ),
            Person(
                "6",
                "Outback Spares",
                "Dylan",
                "Cooper",
                "Outback Spares",
                "(08) 5550 0345",
                "parts@outbackspares.example.com.au",
                ("45 Todd St", "Alice Springs", "NT", "0870"),
            ),
            Person(
                "7",
                "Yarra Valley Wines",
                "Grace",
                "White",
                "Yarra Valley Wines",
                "(03) 5550 0678",
                "cellar@yarravalleywines.example.com.au",
                ("250 Maroondah Hwy", "Healesville", "VIC", "3777"),
            ),
        ),
        vendors=(
            Person(
                "8",
                "Southern Cross Office Supplies",
                company="Southern Cross Office Supplies",
                phone="(02) 5550 0222",
                bill=("55 Pitt St", "Sydney", "NSW", "2000"),
            ),
            Person("9", "Coastal Energy", company="Coastal Energy", phone="13 00 00"),
            Person(
                "10", "Redgum Vehicle Leasing", "Ella", "Walsh", "Redgum Vehicle Leasing", "(03) 5550 0444"
            ),
            Person("11", "Australian Taxation Office", company="Australian Taxation Office"),
        ),
        employees=(
            Person("12", "Olivia Wilson", "Olivia", "Wilson", phone="0491 570 110"),
            Person("13", "William Harris", "William", "Harris", phone="0491 570 111"),
        ),
    ),
}
