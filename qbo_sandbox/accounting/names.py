"""QBO's rules for the name lists and the company settings entities.

Customer, Vendor, Employee, Item, Account, Term and PaymentMethod are name lists: they are never
deleted, only deactivated with ``Active: false`` (the dispatcher answers "Unsupported Operation" to
``operation=delete``).  TaxCode, TaxRate and TaxAgency are read-only through this API.  CompanyInfo
and Preferences exist once per company and can only be read and updated.

Updates follow QBO's two modes.  A full update replaces every writable field (omitted ones are
cleared, then the create defaults apply again, so an omitted ``Active`` means true); a sparse update
changes only the fields sent.  Fields QBO computes (``FullyQualifiedName``, ``Level``, balances,
``Classification``, ``CurrencyRef`` after create...) are never taken from a request.  Every write
validates on a scratch copy first and touches the stored objects only once nothing can fail.

Behaviour the public sources do not settle is listed in ``UNCONFIRMED_CHOICES`` (docs/sandbox.md
repeats it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from qbo_sandbox import faults
from qbo_sandbox.accounting.common import (
    READ_ONLY,
    EntityRules,
    cents,
    display_ref,
    money,
    number,
    ref_id,
    require_ref,
)
from qbo_sandbox.company import Company, Entity

PERSON_TYPES = ("Customer", "Vendor", "Employee")
ADDRESS_SEQUENCE = "PhysicalAddress"  # QBO numbers addresses in a sequence of their own
MAX_LEVEL = 4  # five levels in all: the top plus four below it
BALANCE_FAULT_CODE = "6000"
DUPLICATE_CODE = "6240"

CURRENCY_NAMES = {
    "USD": "United States Dollar",
    "CAD": "Canadian Dollar",
    "GBP": "British Pound Sterling",
    "AUD": "Australian Dollar",
}
COUNTRY_CURRENCY = {"US": "USD", "CA": "CAD", "GB": "GBP", "AU": "AUD"}

UNCONFIRMED_CHOICES = (
    "DisplayName uniqueness (Customer, Vendor, Employee together, inactive ones included) compares "
    "names case-insensitively after trimming spaces at both ends; the stored name is the trimmed "
    "one. Inactive records keep their name (QBO's ' (deleted)' suffix is not modelled).",
    "DisplayName left out on create (or on a full update): Title GivenName MiddleName FamilyName "
    "Suffix joined with spaces; with no name part, CompanyName (Customer and Vendor). Neither: "
    "2020 with element DisplayName.",
    "A ':' in DisplayName (sent or derived) is refused with 2010 (element DisplayName).",
    "A sparse update sending DisplayName as null or blank: 2020.",
    "PrintOnCheckName defaults to CompanyName, else the joined name parts, else DisplayName.",
    "US customers default to Taxable true and, on create, DefaultTaxCodeRef = the company's "
    "default tax code (settings['default_tax_code'], '2' in the seed), as the recorded create "
    "response shows; non-US customers get no Taxable unless sent.",
    "ParentRef implies Job/SubItem/SubAccount true; Job true without ParentRef: 2020. A new or "
    "changed ParentRef must be an active entity of the same kind (610 otherwise); so must an "
    "unchanged one when the entity is being reactivated. Cycles: 6000.",
    "Hierarchies stop at five levels (Level 0 to 4): deeper gives 6000.",
    "Renaming or moving a parent rewrites its descendants' FullyQualifiedName (and Level); each "
    "changed descendant gets a new SyncToken and a journalled Update.",
    "Deactivating a Customer whose Balance or BalanceWithJobs is not 0: code 6000 with Message "
    "'Delete List Has Balance Error' (QBO's message per quickbooks-ruby#390; its code is unknown). "
    "The same applies to a Vendor with a Balance.",
    "Deactivating a Customer or an Account deactivates its active descendants too (as the QBO UI "
    "does); every one must have a zero balance or nothing changes. Reactivating a parent does not "
    "reactivate its children. Items do not cascade.",
    "Customer.Balance in a create body is the opening balance (Balance and BalanceWithJobs start at "
    "it, the parents' BalanceWithJobs include it; no opening-balance invoice is created). Balance "
    "is ignored in updates.",
    "A sent CurrencyRef other than the home currency is refused with 2010 (multicurrency off).",
    "Employee SSN is stored and returned masked as XXX-XX-XXXX.",
    "Item Name is unique among all items (inactive included), case-insensitively: 6240. Type is "
    "required (2020); Service, Inventory, NonInventory, Group and Category are accepted. Changing "
    "Type to or from Inventory, Group or Category: 6000.",
    "Inventory items need IncomeAccountRef, ExpenseAccountRef, AssetAccountRef, QtyOnHand and "
    "InvStartDate (2020 for each); TrackQtyOnHand is true for Inventory and false otherwise. "
    "Account types behind item references are not checked.",
    "A sub-item's parent must be a Category or an item of the same Type (6000 otherwise).",
    "Account Name is unique among siblings (same parent), inactive included, case-insensitively "
    "(6240); Name may contain neither ':' nor '\"' (2010). A sub-account must have its parent's "
    "AccountType (6000); an account with sub-accounts cannot change AccountType (6000).",
    "AccountSubType defaults per AccountType; a subtype known for another type is refused (2010), "
    "an unknown one is accepted. Changing AccountType without sending a new subtype re-defaults it.",
    "Term and PaymentMethod names are unique (inactive included, case-insensitive): 6240.",
    "TaxCode, TaxRate and TaxAgency: create and update answer Unsupported Operation (code 500); "
    "QBO creates tax codes through TaxService or AST. US pseudo codes TAX and NON carry no Active "
    "field: queries must treat a missing Active as active.",
    "Preferences updates always merge section by section (sparse or not), since preferences "
    "cannot be cleared; CurrencyPrefs.HomeCurrency, CurrencyPrefs.MultiCurrencyEnabled and "
    "TaxPrefs.PartnerTaxEnabled are kept whatever is sent; a non-boolean for a boolean "
    "preference is 2010.",
    "CompanyInfo: Country, SupportedLanguages, NameValue, CompanyStartDate and DefaultTimeZone are "
    "read-only; CompanyName is required on a full update.",
    "Unknown properties in a request are stored as sent (QBO may refuse them).",
)

_BASE_READ_ONLY = READ_ONLY | {"V4IDPseudonym", "ClientEntityId"}
CUSTOMER_READ_ONLY = _BASE_READ_ONLY | {
    "Balance",
    "BalanceWithJobs",
    "FullyQualifiedName",
    "Level",
    "CurrencyRef",
    "IsProject",
}
VENDOR_READ_ONLY = _BASE_READ_ONLY | {"Balance", "CurrencyRef"}
EMPLOYEE_READ_ONLY = _BASE_READ_ONLY
ITEM_READ_ONLY = _BASE_READ_ONLY | {"FullyQualifiedName", "Level"}
ACCOUNT_READ_ONLY = _BASE_READ_ONLY | {
    "FullyQualifiedName",
    "Classification",
    "CurrentBalance",
    "CurrentBalanceWithSubAccounts",
    "CurrencyRef",
}
TERM_READ_ONLY = _BASE_READ_ONLY | {"Type"}
PAYMENT_METHOD_READ_ONLY = _BASE_READ_ONLY
COMPANY_INFO_READ_ONLY = _BASE_READ_ONLY | {
    "Country",
    "SupportedLanguages",
    "NameValue",
    "CompanyStartDate",
    "DefaultTimeZone",
}
PREFERENCES_LOCKED = frozenset(
    {
        ("CurrencyPrefs", "HomeCurrency"),
        ("CurrencyPrefs", "MultiCurrencyEnabled"),
        ("TaxPrefs", "PartnerTaxEnabled"),
    }
)

_NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
_PART_LIMITS = {"Title": 16, "GivenName": 100, "MiddleName": 100, "FamilyName": 100, "Suffix": 16}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# --- account types ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountType:
    classification: str | None
    default_subtype: str | None
    subtypes: frozenset[str]


def _subtypes(text: str) -> frozenset[str]:
    return frozenset(text.split())


ACCOUNT_TYPES: dict[str, AccountType] = {
    "Bank": AccountType(
        "Asset",
        "CashOnHand",
        _subtypes(
            "CashOnHand Checking MoneyMarket RentsHeldInTrust Savings TrustAccounts "
            "CashAndCashEquivalents OtherEarMarkedBankAccounts"
        ),
    ),
    "Accounts Receivable": AccountType("Asset", "AccountsReceivable", _subtypes("AccountsReceivable")),
    "Other Current Asset": AccountType(
        "Asset",
        "OtherCurrentAssets",
        _subtypes(
            "AllowanceForBadDebts DevelopmentCosts EmployeeCashAdvances OtherCurrentAssets Inventory "
            "Investment_MortgageRealEstateLoans Investment_Other Investment_TaxExemptSecurities "
            "Investment_USGovernmentObligations LoansToOfficers LoansToOthers LoansToStockholders "
            "PrepaidExpenses Retainage UndepositedFunds AssetsAvailableForSale BalWithGovtAuthorities "
            "CalledUpShareCapitalNotPaid ExpenditureAuthorisationsAndLettersOfCredit GlobalTaxDeferred "
            "GlobalTaxRefund InternalTransfers OtherConsumables ProvisionsCurrentAssets "
            "ShortTermInvestmentsInRelatedParties ShortTermLoansAndAdvancesToRelatedParties "
            "TradeAndOtherReceivables"
        ),
    ),
    "Fixed Asset": AccountType(
        "Asset",
        "OtherFixedAssets",
        _subtypes(
            "AccumulatedDepletion AccumulatedDepreciation DepletableAssets FixedAssetComputers "
            "FixedAssetCopiers FixedAssetFurniture FixedAssetPhone FixedAssetPhotoVideo "
            "FixedAssetSoftware FixedAssetOtherToolsEquipment FurnitureAndFixtures Land "
            "LeaseholdImprovements OtherFixedAssets AccumulatedAmortization Buildings "
            "IntangibleAssets MachineryAndEquipment Vehicles AssetsInCourseOfConstruction CapitalWip "
            "CumulativeDepreciationOnIntangibleAssets IntangibleAssetsUnderDevelopment LandAsset "
            "NonCurrentAssets ParticipatingInterests ProvisionsFixedAssets"
        ),
    ),
    "Other Asset": AccountType(
        "Asset",
        "OtherLongTermAssets",
        _subtypes(
            "LeaseBuyout OtherAssets OtherLongTermAssets AccumulatedAmortizationOfOtherAssets Goodwill "
            "Licenses OrganizationalCosts AssetsHeldForSale AvailableForSaleFinancialAssets "
            "DeferredTax Investments LongTermInvestments LongTermLoansAndAdvancesToRelatedParties "
            "OtherIntangibleAssets OtherLongTermInvestments OtherLongTermLoansAndAdvances "
            "PrepaymentsAndAccruedIncome ProvisionsNonCurrentAssets SecurityDeposits"
        ),
    ),
    "Accounts Payable": AccountType(
        "Liability",
        "AccountsPayable",
        _subtypes(
            "AccountsPayable OutstandingDuesMicroSmallEnterprise OutstandingDuesOtherThanMicroSmallEnterprise"
        ),
    ),
    "Credit Card": AccountType("Liability", "CreditCard", _subtypes("CreditCard")),
    "Other Current Liability": AccountType(
        "Liability",
        "OtherCurrentLiabilities",
        _subtypes(
            "DirectDepositPayable LineOfCredit LoanPayable GlobalTaxPayable GlobalTaxSuspense "
            "OtherCurrentLiabilities PayrollClearing PayrollTaxPayable PrepaidExpensesPayable "
            "RentsInTrustLiability TrustAccountsLiabilities FederalIncomeTaxPayable InsurancePayable "
            "SalesTaxPayable StateLocalIncomeTaxPayable AccruedLiabilities CurrentLiabilities "
            "CurrentPortionEmployeeBenefitsObligations CurrentPortionOfObligationsUnderFinanceLeases "
            "CurrentTaxLiability DividendsPayable DutiesAndTaxes InterestPayables "
            "ProvisionForWarrantyObligations ProvisionsCurrentLiabilities ShortTermBorrowings "
            "SocialSecurityAgencies StaffAndRelatedLiabilityAccounts SundryDebtorsAndCreditors "
            "TradeAndOtherPayable"
        ),
    ),
    "Long Term Liability": AccountType(
        "Liability",
        "OtherLongTermLiabilities",
        _subtypes(
            "NotesPayable OtherLongTermLiabilities ShareholderNotesPayable AccrualsAndDeferredIncome "
            "AccruedLongLermLiabilities AccruedVacationPayable BankLoans "
            "DebtsRelatedToParticipatingInterests DeferredTaxLiabilities "
            "GovernmentAndOtherPublicAuthorities GroupAndAssociates "
            "LiabilitiesRelatedToAssetsHeldForSale LongTermBorrowings LongTermDebit "
            "LongTermEmployeeBenefitObligations ObligationsUnderFinanceLeases OtherLongTermProvisions "
            "ProvisionForLiabilities ProvisionsNonCurrentLiabilities "
            "StaffAndRelatedLongTermLiabilityAccounts"
        ),
    ),
    "Equity": AccountType(
        "Equity",
        "OwnersEquity",
        _subtypes(
            "OpeningBalanceEquity PartnersEquity RetainedEarnings AccumulatedAdjustment OwnersEquity "
            "PaidInCapitalOrSurplus PartnerContributions PartnerDistributions PreferredStock "
            "CommonStock TreasuryStock EstimatedTaxes Healthcare PersonalIncome PersonalExpense "
            "AccumulatedOtherComprehensiveIncome CalledUpShareCapital CapitalReserves "
            "DividendDisbursed EquityInEarningsOfSubsuduaries InvestmentGrants "
            "MoneyReceivedAgainstShareWarrants OtherFreeReserves ShareApplicationMoneyPendingAllotment "
            "ShareCapital Funds"
        ),
    ),
    "Income": AccountType(
        "Revenue",
        "ServiceFeeIncome",
        _subtypes(
            "NonProfitIncome OtherPrimaryIncome SalesOfProductIncome ServiceFeeIncome "
            "DiscountsRefundsGiven UnappliedCashPaymentIncome CashReceiptIncome OperatingGrants "
            "OtherCurrentOperatingIncome OwnWorkCapitalized RevenueGeneral SalesRetail SalesWholesale "
            "SavingsByTaxScheme"
        ),
    ),
    "Cost of Goods Sold": AccountType(
        "Expense",
        "SuppliesMaterialsCogs",
        _subtypes(
            "EquipmentRentalCos OtherCostsOfServiceCos ShippingFreightDeliveryCos "
            "SuppliesMaterialsCogs CostOfLaborCos CostOfSales FreightAndDeliveryCost"
        ),
    ),
    "Expense": AccountType(
        "Expense",
        "OtherMiscellaneousServiceCost",
        _subtypes(
            "AdvertisingPromotional BadDebts BankCharges CharitableContributions CommissionsAndFees "
            "Entertainment EntertainmentMeals EquipmentRental FinanceCosts GlobalTaxExpense Insurance "
            "InterestPaid LegalProfessionalFees OfficeExpenses OfficeGeneralAdministrativeExpenses "
            "OtherBusinessExpenses OtherMiscellaneousServiceCost PromotionalMeals "
            "RentOrLeaseOfBuildings RepairMaintenance ShippingFreightDelivery SuppliesMaterials "
            "Travel TravelMeals Utilities Auto CostOfLabor DuesSubscriptions PayrollExpenses "
            "TaxesPaid UnappliedCashBillPaymentExpense Communication"
        ),
    ),
    "Other Income": AccountType(
        "Revenue",
        "OtherMiscellaneousIncome",
        _subtypes(
            "DividendIncome InterestEarned OtherInvestmentIncome OtherMiscellaneousIncome "
            "TaxExemptInterest GainLossOnSaleOfFixedAssets GainLossOnSaleOfInvestments "
            "LossOnDisposalOfAssets OtherOperatingIncome UnrealisedLossOnSecurities"
        ),
    ),
    "Other Expense": AccountType(
        "Expense",
        "OtherMiscellaneousExpense",
        _subtypes(
            "Depreciation ExchangeGainOrLoss OtherMiscellaneousExpense PenaltiesSettlements "
            "Amortization GasAndFuel HomeOffice HomeOwnerRentalInsurance OtherHomeOfficeExpenses "
            "MortgageInterest RentAndLease RepairsAndMaintenance ParkingAndTolls Vehicle "
            "VehicleInsurance VehicleLease VehicleLoanInterest VehicleLoan VehicleRegistration "
            "VehicleRepairs OtherVehicleExpenses WashAndRoadServices"
        ),
    ),
    "Non-Posting": AccountType(None, None, frozenset()),
}
_SUBTYPE_OWNER = {sub: name for name, kind in ACCOUNT_TYPES.items() for sub in kind.subtypes}

ITEM_TYPES = ("Service", "Inventory", "NonInventory", "Group", "Category")
_ITEM_NEEDS_INCOME = frozenset({"Service", "Inventory", "NonInventory"})
_ITEM_FIXED_TYPES = frozenset({"Inventory", "Group", "Category"})
_ITEM_SALES_FIELDS = (
    "IncomeAccountRef",
    "ExpenseAccountRef",
    "AssetAccountRef",
    "UnitPrice",
    "PurchaseCost",
    "QtyOnHand",
    "InvStartDate",
    "TrackQtyOnHand",
    "Taxable",
    "SalesTaxCodeRef",
    "PurchaseTaxCodeRef",
    "ReorderPoint",
)


# --- company context ----------------------------------------------------------------------------


def home_currency(co: Company) -> str:
    """The company's home currency code, from Preferences (or the country when none is stored)."""
    prefs = co.get("Preferences", "1") or {}
    currency_prefs = prefs.get("CurrencyPrefs")
    if isinstance(currency_prefs, dict):
        code = ref_id(currency_prefs, "HomeCurrency")
        if code:
            return code
    return COUNTRY_CURRENCY.get(co.country, "USD")


def currency_ref(co: Company) -> dict[str, str]:
    code = home_currency(co)
    return {"value": code, "name": CURRENCY_NAMES.get(code, code)}


def adjust_customer_balance(co: Company, customer_id: str, delta: Decimal) -> Entity:
    """Move a customer's open balance by ``delta``: its Balance, and the BalanceWithJobs of the
    customer and of every ancestor.  QBO derives these fields, so no SyncToken changes and no
    change is journalled."""
    customer = co.get("Customer", customer_id)
    if customer is None:
        raise faults.object_not_found("Customer", customer_id)
    customer["Balance"] = number(cents(money(customer.get("Balance", 0), "Balance") + delta))
    _roll_up(co, customer_id, delta)
    return customer


def _roll_up(co: Company, start_id: str | None, delta: Decimal) -> None:
    seen: set[str] = set()
    node = co.get("Customer", start_id) if start_id else None
    while node is not None and node["Id"] not in seen and delta:
        seen.add(node["Id"])
        node["BalanceWithJobs"] = number(
            cents(money(node.get("BalanceWithJobs", 0), "BalanceWithJobs") + delta)
        )
        parent = _parent_id(node)
        node = co.get("Customer", parent) if parent else None


# --- field checks -------------------------------------------------------------------------------


def _text(obj: Entity, field: str, *, max_len: int | None = None) -> str | None:
    """The trimmed string value of ``field`` (None when absent or blank); 2010 when not a string."""
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise faults.invalid_field(field, f"{field} must be a string")
    value = value.strip()
    if max_len is not None and len(value) > max_len:
        raise faults.invalid_field(
            field,
            f"String length is either shorter or longer than supported by specification. "
            f"Min:0 Max:{max_len} supported. Supplied length:{len(value)}",
        )
    return value or None


def _put(obj: Entity, field: str, value: Any) -> None:
    if value is None:
        obj.pop(field, None)
    else:
        obj[field] = value


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _flag(obj: Entity, field: str, default: bool) -> bool:
    value = obj.get(field)
    if value is None:
        return default
    result = _as_bool(value)
    if result is None:
        raise faults.invalid_field(field, f"{field} must be true or false")
    return result


def _amount(obj: Entity, field: str, default: int | None = None) -> int | float | None:
    value = obj.get(field)
    if value is None:
        return default
    return number(money(value, field))


def _whole(obj: Entity, field: str, low: int, high: int) -> int | None:
    value = obj.get(field)
    if value is None:
        return None
    amount = money(value, field)
    if amount != amount.to_integral_value() or not low <= amount <= high:
        raise faults.invalid_field(field, f"{field} must be a whole number from {low} to {high}")
    return int(amount)


def _date(obj: Entity, field: str) -> str | None:
    value = obj.get(field)
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise faults.invalid_field(field, f"{field} must be a date as yyyy-MM-dd") from None


def _choice(obj: Entity, field: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = obj.get(field)
    if value is None:
        return default
    if value not in allowed:
        raise faults.invalid_field(field, f"{field} must be one of: {', '.join(allowed)}")
    return str(value)


def _name_key(name: str) -> str:
    return name.strip().casefold()


def _list_name(obj: Entity, field: str, entity: str, *, forbidden: str = ":", max_len: int = 100) -> str:
    name = _text(obj, field, max_len=max_len)
    if name is None:
        raise faults.required_param(field, entity)
    for char in forbidden:
        if char in name:
            raise faults.invalid_field(field, f"{entity} {field} cannot contain {char!r}: {name}")
    obj[field] = name
    return name


def _duplicate(what: str, element: str, existing_id: str) -> faults.QboFault:
    return faults.validation(
        DUPLICATE_CODE,
        "Duplicate Name Exists Error",
        f"The name supplied already exists. : Another {what} is already using this name. "
        f"Please use a different name. (Id={existing_id})",
        element,
    )


def _clash(
    co: Company, entity: str, key: str, self_id: str | None, key_of: Callable[[Entity], Any]
) -> Entity | None:
    """Another stored row (any batch, any Active) whose name key equals ``key``."""
    for row in co.entities.get(entity, {}).values():
        if row["Id"] == self_id:
            continue
        other = key_of(row)
        if isinstance(other, str) and _name_key(other) == key:
            return row
    return None


def _check_ref(
    co: Company,
    candidate: Entity,
    previous: Entity | None,
    field: str,
    entity: str,
    *,
    active: bool,
    named: bool = False,
) -> Entity | None:
    """Resolve a reference (610 when missing or inactive); an unchanged reference of an entity
    that stays active may point at an entity deactivated since, as QBO keeps such links."""
    value = ref_id(candidate, field)
    if value is None:
        candidate.pop(field, None)
        return None
    unchanged = previous is not None and ref_id(previous, field) == value
    keeps_link = unchanged and previous is not None and previous.get("Active") is not False
    target = require_ref(co, candidate, field, entity, allow_inactive=keeps_link or not active)
    assert target is not None  # the reference is present, so require_ref resolved or raised
    candidate[field] = display_ref(target) if named else {"value": target["Id"]}
    return target


def _check_currency(co: Company, body: Entity) -> None:
    sent = ref_id(body, "CurrencyRef")
    home = home_currency(co)
    if sent is not None and sent != home:
        raise faults.invalid_field(
            "CurrencyRef", f"Multicurrency is not enabled: the currency must be the home currency {home}"
        )


def _addresses(co: Company, candidate: Entity, previous: Entity | None, fields: tuple[str, ...]) -> None:
    """Give each address QBO's Id: kept when the address is unchanged (or sent back with its Id),
    shared by identical addresses of one entity, new otherwise."""
    given: dict[tuple[tuple[str, str], ...], str] = {}
    for field in fields:
        address = candidate.get(field)
        if address is None:
            continue
        if not isinstance(address, dict):
            raise faults.invalid_field(field, f"{field} must be an object")
        address = dict(address)
        key = tuple(sorted((k, str(v)) for k, v in address.items() if k != "Id"))
        old = (previous or {}).get(field)
        if (
            isinstance(old, dict)
            and old.get("Id") is not None
            and (
                str(address.get("Id")) == str(old["Id"])
                or key == tuple(sorted((k, str(v)) for k, v in old.items() if k != "Id"))
            )
        ):
            address["Id"] = str(old["Id"])
        elif key in given:
            address["Id"] = given[key]
        else:
            address["Id"] = co.next_id(ADDRESS_SEQUENCE)
        given.setdefault(key, address["Id"])
        candidate[field] = {"Id": address.pop("Id"), **address}


# --- merge and save -----------------------------------------------------------------------------


def _merge(stored: Entity | None, body: Entity, sparse: bool, read_only: frozenset[str]) -> Entity:
    """The writable state a write asks for: the body alone (create, full update) or the body over
    the stored writable fields (sparse); a null value removes the field."""
    merged: Entity = {}
    if sparse and stored is not None:
        merged = {k: copy.deepcopy(v) for k, v in stored.items() if k not in read_only}
    merged.update({k: copy.deepcopy(v) for k, v in body.items() if k not in read_only})
    return {k: v for k, v in merged.items() if v is not None}


# Read-only fields the shape functions recompute on every write; absent from a result means removed.
_DERIVED = frozenset({"Level", "FullyQualifiedName", "Classification"})


def _commit(
    co: Company, entity: str, stored: Entity, result: Entity, *, read_only: frozenset[str], now: datetime
) -> Entity:
    kept = {k: v for k, v in stored.items() if k in read_only and k not in _DERIVED}
    stored.clear()
    stored.update(kept)
    stored.update(result)
    return co.replace(entity, stored, now)


# --- hierarchies --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tree:
    entity: str
    flag: str  # Job, SubItem, SubAccount
    name_field: str
    stores_level: bool
    flags_top_level: bool = True  # recorded Items carry no "SubItem": false at the top level


CUSTOMER_TREE = _Tree("Customer", "Job", "DisplayName", stores_level=True)
ITEM_TREE = _Tree("Item", "SubItem", "Name", stores_level=True, flags_top_level=False)
ACCOUNT_TREE = _Tree("Account", "SubAccount", "Name", stores_level=False)


def _parent_id(row: Entity) -> str | None:
    ref = row.get("ParentRef")
    if isinstance(ref, dict) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


def _depth(co: Company, tree: _Tree, row: Entity) -> int:
    depth, seen = 0, {row["Id"]}
    parent = _parent_id(row)
    while parent is not None and parent not in seen:
        seen.add(parent)
        node = co.get(tree.entity, parent)
        if node is None:
            break
        depth += 1
        parent = _parent_id(node)
    return depth


def _descendants(co: Company, tree: _Tree, root_id: str) -> Iterator[tuple[Entity, int]]:
    """Every descendant with its distance from the root, breadth first, in Id order."""
    children: dict[str, list[Entity]] = {}
    for row in co.rows(tree.entity):
        parent = _parent_id(row)
        if parent is not None:
            children.setdefault(parent, []).append(row)
    queue, seen = [(root_id, 0)], {root_id}
    while queue:
        node_id, distance = queue.pop(0)
        for child in children.get(node_id, []):
            if child["Id"] not in seen:
                seen.add(child["Id"])
                yield child, distance + 1
                queue.append((child["Id"], distance + 1))


def _place(
    co: Company, tree: _Tree, candidate: Entity, previous: Entity | None, *, active: bool
) -> Entity | None:
    """Check ParentRef and set the flag, Level and FullyQualifiedName; returns the parent."""
    name = candidate[tree.name_field]
    parent_id = ref_id(candidate, "ParentRef")
    flagged = _flag(candidate, tree.flag, parent_id is not None)
    if parent_id is None:
        if flagged:
            raise faults.required_param("ParentRef", tree.entity)
        if tree.flags_top_level:
            candidate[tree.flag] = False
        else:
            candidate.pop(tree.flag, None)
        candidate.pop("ParentRef", None)
        candidate.pop("Level", None)
        candidate["FullyQualifiedName"] = name
        return None
    parent = _check_ref(co, candidate, previous, "ParentRef", tree.entity, active=active)
    assert parent is not None
    height = 0
    if previous is not None:
        below = list(_descendants(co, tree, previous["Id"]))
        if parent["Id"] == previous["Id"] or any(row["Id"] == parent["Id"] for row, _ in below):
            raise faults.business_rule(
                f"A {tree.entity} cannot be placed under itself or one of its own sub-entities.",
                "ParentRef",
            )
        height = max((distance for _, distance in below), default=0)
    level = _depth(co, tree, parent) + 1
    if level + height > MAX_LEVEL:
        raise faults.business_rule(
            f"{tree.entity} hierarchies are limited to {MAX_LEVEL + 1} levels: "
            f"this would put an entity at level {level + height + 1}.",
            "ParentRef",
        )
    candidate[tree.flag] = True
    if tree.stores_level:
        candidate["Level"] = level
    else:
        candidate.pop("Level", None)
    parent_name = parent.get("FullyQualifiedName") or parent.get(tree.name_field)
    candidate["FullyQualifiedName"] = f"{parent_name}:{name}"
    return parent


def _cascade_names(co: Company, tree: _Tree, root: Entity, now: datetime) -> None:
    """Rewrite the FullyQualifiedName (and Level) of descendants after a rename or a move."""
    queue = [(root, _depth(co, tree, root))]
    while queue:
        parent, depth = queue.pop(0)
        for child in [row for row in co.rows(tree.entity) if _parent_id(row) == parent["Id"]]:
            name = f"{parent['FullyQualifiedName']}:{child.get(tree.name_field)}"
            level_changed = tree.stores_level and child.get("Level") != depth + 1
            if child.get("FullyQualifiedName") != name or level_changed:
                child["FullyQualifiedName"] = name
                if tree.stores_level:
                    child["Level"] = depth + 1
                co.replace(tree.entity, child, now)
                queue.append((child, depth + 1))


# --- deactivation -------------------------------------------------------------------------------


def _has_balance(noun: str) -> faults.QboFault:
    return faults.validation(
        BALANCE_FAULT_CODE,
        "Delete List Has Balance Error",
        f"The entity you are trying to delete has an open balance. : This {noun} cannot be deleted "
        "because it has a non-zero balance",
        "Active",
    )


def _refuse_balance(row: Entity, noun: str) -> None:
    for field in ("Balance", "BalanceWithJobs"):
        if row.get(field) is not None and money(row[field], field) != 0:
            raise _has_balance(noun)


@dataclass(frozen=True)
class _ListKind:
    """How one name list is shaped and saved."""

    entity: str
    read_only: frozenset[str]
    shape: Callable[[Company, Entity, Entity | None], None]
    on_create: Callable[[Company, Entity], Entity] | None = None  # computed fields of a new row
    tree: _Tree | None = None
    cascade_deactivation: bool = False
    balance_noun: str | None = None  # refuse deactivation while a balance is open
    keeps_display_name: bool = False


def _creator(kind: _ListKind) -> Callable[..., Entity]:
    def create(
        co: Company, body: Entity, now: datetime, *, entity_id: str | None = None, journal: bool = True
    ) -> Entity:
        candidate = _merge(None, body, False, kind.read_only)
        kind.shape(co, candidate, None)
        computed = kind.on_create(co, body) if kind.on_create is not None else {}
        stored = co.insert(kind.entity, {**candidate, **computed}, now, entity_id=entity_id, journal=journal)
        if kind.entity == "Customer":
            _roll_up(co, _parent_id(stored), money(stored.get("Balance", 0)))
        return stored

    return create


def _updater(kind: _ListKind) -> Callable[[Company, Entity, Entity, bool, datetime], Entity]:
    def update(co: Company, stored: Entity, body: Entity, sparse: bool, now: datetime) -> Entity:
        if kind.keeps_display_name and sparse and "DisplayName" in body:
            sent = body["DisplayName"]
            if sent is None or (isinstance(sent, str) and not sent.strip()):
                raise faults.validation(
                    "2020",
                    "Required param missing, need to supply the required value for the API",
                    "Required parameter DisplayName is missing in the request: it cannot be removed "
                    "with a sparse update",
                    "DisplayName",
                )
        candidate = _merge(stored, body, sparse, kind.read_only)
        kind.shape(co, candidate, stored)
        closing: list[Entity] = []
        if stored.get("Active") is not False and candidate.get("Active") is False:
            if kind.balance_noun is not None:
                _refuse_balance(stored, kind.balance_noun)
            if kind.tree is not None and kind.cascade_deactivation:
                closing = [
                    row
                    for row, _ in _descendants(co, kind.tree, stored["Id"])
                    if row.get("Active") is not False
                ]
                if kind.balance_noun is not None:
                    for row in closing:
                        _refuse_balance(row, kind.balance_noun)
        old_parent = _parent_id(stored)
        _commit(co, kind.entity, stored, candidate, read_only=kind.read_only, now=now)
        new_parent = _parent_id(stored)
        if kind.entity == "Customer" and old_parent != new_parent:
            moved = money(stored.get("BalanceWithJobs", 0), "BalanceWithJobs")
            _roll_up(co, old_parent, -moved)
            _roll_up(co, new_parent, moved)
        for row in closing:
            row["Active"] = False
            co.replace(kind.entity, row, now)
        if kind.tree is not None:
            _cascade_names(co, kind.tree, stored, now)
        return stored

    return update


# --- customers, vendors, employees --------------------------------------------------------------


def _joined_parts(obj: Entity) -> str | None:
    parts = [obj[part] for part in _NAME_PARTS if obj.get(part)]
    return " ".join(parts) or None


def _person(co: Company, kind: str, candidate: Entity, previous: Entity | None) -> bool:
    """DisplayName and the name parts; returns the Active flag."""
    for part in _NAME_PARTS:
        _put(candidate, part, _text(candidate, part, max_len=_PART_LIMITS[part]))
    company = None
    if kind != "Employee":
        company = _text(candidate, "CompanyName", max_len=100)
        _put(candidate, "CompanyName", company)
    display = _text(candidate, "DisplayName", max_len=500) or _joined_parts(candidate) or company
    if display is None:
        alternatives = ", ".join(_NAME_PARTS + (("CompanyName",) if kind != "Employee" else ()))
        raise faults.validation(
            "2020",
            "Required param missing, need to supply the required value for the API",
            f"Required parameter DisplayName is missing in the request: send DisplayName or one of "
            f"{alternatives}",
            "DisplayName",
        )
    if ":" in display:
        raise faults.invalid_field("DisplayName", f"DisplayName cannot contain a colon (:): {display}")
    self_id = previous["Id"] if previous is not None else None
    key = _name_key(display)
    for other_kind in PERSON_TYPES:
        other = _clash(
            co, other_kind, key, self_id if other_kind == kind else None, lambda row: row.get("DisplayName")
        )
        if other is not None:
            raise faults.duplicate_name()
    candidate["DisplayName"] = display
    check_name = _text(candidate, "PrintOnCheckName", max_len=110)
    candidate["PrintOnCheckName"] = check_name or (company or _joined_parts(candidate) or display)[:110]
    active = _flag(candidate, "Active", True)
    candidate["Active"] = active
    return active


def _shape_customer(co: Company, candidate: Entity, previous: Entity | None) -> None:
    active = _person(co, "Customer", candidate, previous)
    us = co.country == "US"
    if us or "Taxable" in candidate:
        candidate["Taxable"] = _flag(candidate, "Taxable", us)
    _check_ref(co, candidate, previous, "DefaultTaxCodeRef", "TaxCode", active=active)
    default_code = co.settings.get("default_tax_code")
    if (
        previous is None
        and us
        and candidate["Taxable"]
        and "DefaultTaxCodeRef" not in candidate
        and default_code is not None
        and co.get("TaxCode", str(default_code)) is not None
    ):
        candidate["DefaultTaxCodeRef"] = {"value": str(default_code)}
    _check_ref(co, candidate, previous, "SalesTermRef", "Term", active=active)
    _check_ref(co, candidate, previous, "PaymentMethodRef", "PaymentMethod", active=active)
    candidate["PreferredDeliveryMethod"] = _choice(
        candidate, "PreferredDeliveryMethod", ("Print", "Email", "None"), "Print"
    )
    parent = _place(co, CUSTOMER_TREE, candidate, previous, active=active)
    candidate["BillWithParent"] = _flag(candidate, "BillWithParent", False) if parent else False
    for field in ("PrimaryEmailAddr", "PrimaryPhone", "Mobile", "Fax", "AlternatePhone", "WebAddr"):
        if field in candidate and not isinstance(candidate[field], dict):
            raise faults.invalid_field(field, f"{field} must be an object")
    _addresses(co, candidate, previous, ("BillAddr", "ShipAddr"))


def _customer_computed(co: Company, body: Entity) -> Entity:
    _check_currency(co, body)
    opening = cents(money(body["Balance"], "Balance")) if body.get("Balance") is not None else Decimal(0)
    return {
        "Balance": number(opening),
        "BalanceWithJobs": number(opening),
        "CurrencyRef": currency_ref(co),
        "IsProject": False,
    }


def _shape_vendor(co: Company, candidate: Entity, previous: Entity | None) -> None:
    active = _person(co, "Vendor", candidate, previous)
    candidate["Vendor1099"] = _flag(candidate, "Vendor1099", False)
    _check_ref(co, candidate, previous, "TermRef", "Term", active=active)
    _addresses(co, candidate, previous, ("BillAddr",))


def _vendor_computed(co: Company, body: Entity) -> Entity:
    _check_currency(co, body)
    return {"Balance": 0, "CurrencyRef": currency_ref(co)}


def _shape_employee(co: Company, candidate: Entity, previous: Entity | None) -> None:
    _person(co, "Employee", candidate, previous)
    candidate["BillableTime"] = _flag(candidate, "BillableTime", False)
    if _text(candidate, "SSN") is not None:
        candidate["SSN"] = "XXX-XX-XXXX"
    else:
        candidate.pop("SSN", None)
    for field in ("HiredDate", "ReleasedDate", "BirthDate"):
        _put(candidate, field, _date(candidate, field))
    _addresses(co, candidate, previous, ("PrimaryAddr",))


# --- items --------------------------------------------------------------------------------------


def _shape_item(co: Company, candidate: Entity, previous: Entity | None) -> None:
    name = _list_name(candidate, "Name", "Item")
    kind = _text(candidate, "Type")
    if kind is None:
        raise faults.required_param("Type", "Item")
    if kind not in ITEM_TYPES:
        raise faults.invalid_field("Type", f"Item Type must be one of: {', '.join(ITEM_TYPES)}")
    candidate["Type"] = kind
    old_kind = previous.get("Type") if previous is not None else None
    if old_kind is not None and old_kind != kind and {old_kind, kind} & _ITEM_FIXED_TYPES:
        raise faults.business_rule(f"An item's Type cannot change from {old_kind} to {kind}.", "Type")
    active = _flag(candidate, "Active", True)
    candidate["Active"] = active
    self_id = previous["Id"] if previous is not None else None
    other = _clash(co, "Item", _name_key(name), self_id, lambda row: row.get("Name"))
    if other is not None:
        raise _duplicate("product or service", "Name", other["Id"])
    _put(candidate, "Sku", _text(candidate, "Sku", max_len=100))
    if kind in ("Category", "Group"):
        for field in _ITEM_SALES_FIELDS:
            candidate.pop(field, None)
        if kind == "Group":
            _group_lines(co, candidate)
    else:
        _item_sales(co, candidate, previous, kind, active)
    parent = _place(co, ITEM_TREE, candidate, previous, active=active)
    if parent is not None and not (
        parent.get("Type") == "Category" or (parent.get("Type") == kind and kind != "Category")
    ):
        raise faults.business_rule(
            f"A {kind} item can only be placed under a Category or an item of the same type.",
            "ParentRef",
        )


def _item_sales(co: Company, candidate: Entity, previous: Entity | None, kind: str, active: bool) -> None:
    income = _check_ref(co, candidate, previous, "IncomeAccountRef", "Account", active=active, named=True)
    if income is None and kind in _ITEM_NEEDS_INCOME:
        raise faults.required_param("IncomeAccountRef", "Item")
    expense = _check_ref(co, candidate, previous, "ExpenseAccountRef", "Account", active=active, named=True)
    if kind == "Inventory":
        asset = _check_ref(co, candidate, previous, "AssetAccountRef", "Account", active=active, named=True)
        if expense is None:
            raise faults.required_param("ExpenseAccountRef", "Item")
        if asset is None:
            raise faults.required_param("AssetAccountRef", "Item")
        quantity = _amount(candidate, "QtyOnHand")
        if quantity is None:
            raise faults.required_param("QtyOnHand", "Item")
        candidate["QtyOnHand"] = quantity
        start = _date(candidate, "InvStartDate")
        if start is None:
            raise faults.required_param("InvStartDate", "Item")
        candidate["InvStartDate"] = start
        _put(candidate, "ReorderPoint", _amount(candidate, "ReorderPoint"))
    else:
        for field in ("AssetAccountRef", "QtyOnHand", "InvStartDate", "ReorderPoint"):
            candidate.pop(field, None)
    candidate["TrackQtyOnHand"] = kind == "Inventory"
    candidate["UnitPrice"] = _amount(candidate, "UnitPrice", 0)
    candidate["PurchaseCost"] = _amount(candidate, "PurchaseCost", 0)
    if co.country == "US" or "Taxable" in candidate:
        candidate["Taxable"] = _flag(candidate, "Taxable", False)
    _check_ref(co, candidate, previous, "SalesTaxCodeRef", "TaxCode", active=active)
    _check_ref(co, candidate, previous, "PurchaseTaxCodeRef", "TaxCode", active=active)


def _group_lines(co: Company, candidate: Entity) -> None:
    detail = candidate.get("ItemGroupDetail")
    if detail is None:
        return
    lines = detail.get("ItemGroupLine") if isinstance(detail, dict) else None
    if not isinstance(lines, list):
        raise faults.invalid_field("ItemGroupDetail", "ItemGroupDetail.ItemGroupLine must be an array")
    out = []
    for line in lines:
        if not isinstance(line, dict):
            raise faults.invalid_field("ItemGroupDetail", "Each ItemGroupLine must be an object")
        member = require_ref(co, line, "ItemRef", "Item", required=True)
        assert member is not None
        if member.get("Type") in ("Group", "Category"):
            raise faults.business_rule("A group can only contain products and services.", "ItemRef")
        out.append({"ItemRef": display_ref(member), "Qty": _amount(line, "Qty", 1)})
    candidate["ItemGroupDetail"] = {"ItemGroupLine": out}


# --- accounts -----------------------------------------------------------------------------------


def _shape_account(co: Company, candidate: Entity, previous: Entity | None) -> None:
    _list_name(candidate, "Name", "Account", forbidden=':"')
    type_name = _text(candidate, "AccountType")
    if type_name is None:
        raise faults.required_param("AccountType", "Account")
    if type_name not in ACCOUNT_TYPES:
        raise faults.invalid_field("AccountType", f"AccountType must be one of: {', '.join(ACCOUNT_TYPES)}")
    candidate["AccountType"] = type_name
    kind = ACCOUNT_TYPES[type_name]
    subtype = _text(candidate, "AccountSubType")
    if previous is not None and previous.get("AccountType") != type_name:
        if any(_parent_id(row) == previous["Id"] for row in co.rows("Account")):
            raise faults.business_rule(
                "The type of an account with sub-accounts cannot change.", "AccountType"
            )
        if subtype == previous.get("AccountSubType"):
            subtype = None
    if subtype is None:
        subtype = kind.default_subtype
    elif subtype not in kind.subtypes and _SUBTYPE_OWNER.get(subtype, type_name) != type_name:
        raise faults.invalid_field(
            "AccountSubType", f"AccountSubType {subtype} is not valid for AccountType {type_name}"
        )
    _put(candidate, "AccountSubType", subtype)
    _put(candidate, "Classification", kind.classification)
    active = _flag(candidate, "Active", True)
    candidate["Active"] = active
    _put(candidate, "AcctNum", _text(candidate, "AcctNum", max_len=20))
    parent = _place(co, ACCOUNT_TREE, candidate, previous, active=active)
    if parent is not None and parent.get("AccountType") != type_name:
        raise faults.business_rule(
            f"A sub-account must have the same type as its parent ({parent.get('AccountType')}).",
            "ParentRef",
        )
    self_id = previous["Id"] if previous is not None else None
    other = _clash(
        co,
        "Account",
        _name_key(candidate["FullyQualifiedName"]),
        self_id,
        lambda row: row.get("FullyQualifiedName"),
    )
    if other is not None:
        raise _duplicate("account", "Name", other["Id"])


def _account_computed(co: Company, body: Entity) -> Entity:
    _check_currency(co, body)
    return {"CurrentBalance": 0, "CurrentBalanceWithSubAccounts": 0, "CurrencyRef": currency_ref(co)}


# --- terms and payment methods ------------------------------------------------------------------


def _unique_list_name(
    co: Company, entity: str, what: str, candidate: Entity, previous: Entity | None
) -> None:
    name = _list_name(candidate, "Name", entity)
    self_id = previous["Id"] if previous is not None else None
    other = _clash(co, entity, _name_key(name), self_id, lambda row: row.get("Name"))
    if other is not None:
        raise _duplicate(what, "Name", other["Id"])
    candidate["Active"] = _flag(candidate, "Active", True)


def _shape_term(co: Company, candidate: Entity, previous: Entity | None) -> None:
    _unique_list_name(co, "Term", "term", candidate, previous)
    day = _whole(candidate, "DayOfMonthDue", 1, 31)
    if day is not None:
        candidate["Type"] = "DATE_DRIVEN"
        candidate["DayOfMonthDue"] = day
        candidate["DueNextMonthDays"] = _whole(candidate, "DueNextMonthDays", 0, 999) or 0
        _put(candidate, "DiscountDayOfMonth", _whole(candidate, "DiscountDayOfMonth", 1, 31))
        for field in ("DueDays", "DiscountDays"):
            candidate.pop(field, None)
    else:
        due = _whole(candidate, "DueDays", 0, 999)
        if due is None:
            raise faults.required_param("DueDays", "Term")
        candidate["Type"] = "STANDARD"
        candidate["DueDays"] = due
        candidate["DiscountDays"] = _whole(candidate, "DiscountDays", 0, 999) or 0
        for field in ("DueNextMonthDays", "DiscountDayOfMonth"):
            candidate.pop(field, None)
    percent = _amount(candidate, "DiscountPercent", 0)
    if percent is not None and not 0 <= percent <= 100:
        raise faults.invalid_field("DiscountPercent", "DiscountPercent must be from 0 to 100")
    candidate["DiscountPercent"] = percent


def _shape_payment_method(co: Company, candidate: Entity, previous: Entity | None) -> None:
    _unique_list_name(co, "PaymentMethod", "payment method", candidate, previous)
    candidate["Type"] = _choice(candidate, "Type", ("CREDIT_CARD", "NON_CREDIT_CARD"), "NON_CREDIT_CARD")


# --- read-only and singleton entities -----------------------------------------------------------


def _not_through_api(entity: str, detail: str) -> Callable[..., Entity]:
    def refuse(*_args: Any, **_kwargs: Any) -> Entity:
        raise faults.unsupported_operation(f"{entity}: {detail}")

    return refuse


def _update_company_info(co: Company, stored: Entity, body: Entity, sparse: bool, now: datetime) -> Entity:
    candidate = _merge(stored, body, sparse, COMPANY_INFO_READ_ONLY)
    name = _text(candidate, "CompanyName", max_len=1024)
    if name is None:
        raise faults.required_param("CompanyName", "CompanyInfo")
    candidate["CompanyName"] = name
    _put(candidate, "LegalName", _text(candidate, "LegalName", max_len=1024))
    _put(candidate, "FiscalYearStartMonth", _choice(candidate, "FiscalYearStartMonth", _MONTHS, None))
    _addresses(co, candidate, stored, ("CompanyAddr", "CustomerCommunicationAddr", "LegalAddr"))
    return _commit(co, "CompanyInfo", stored, candidate, read_only=COMPANY_INFO_READ_ONLY, now=now)


def _update_preferences(co: Company, stored: Entity, body: Entity, _sparse: bool, now: datetime) -> Entity:
    result = {k: copy.deepcopy(v) for k, v in stored.items() if k not in _BASE_READ_ONLY}
    for section, value in body.items():
        if section in _BASE_READ_ONLY or value is None:
            continue
        current = result.get(section)
        if not isinstance(current, dict):
            result[section] = copy.deepcopy(value)
            continue
        if not isinstance(value, dict):
            raise faults.invalid_field(section, f"{section} must be an object")
        for key, item in value.items():
            if (section, key) in PREFERENCES_LOCKED or item is None:
                continue
            if isinstance(current.get(key), bool):
                flag = _as_bool(item)
                if flag is None:
                    raise faults.invalid_field(f"{section}.{key}", f"{section}.{key} must be true or false")
                current[key] = flag
            else:
                current[key] = copy.deepcopy(item)
    return _commit(co, "Preferences", stored, result, read_only=_BASE_READ_ONLY, now=now)


# --- rules --------------------------------------------------------------------------------------

_KINDS: dict[str, _ListKind] = {
    "Customer": _ListKind(
        "Customer",
        CUSTOMER_READ_ONLY,
        _shape_customer,
        _customer_computed,
        tree=CUSTOMER_TREE,
        cascade_deactivation=True,
        balance_noun="customer",
        keeps_display_name=True,
    ),
    "Vendor": _ListKind(
        "Vendor",
        VENDOR_READ_ONLY,
        _shape_vendor,
        _vendor_computed,
        balance_noun="vendor",
        keeps_display_name=True,
    ),
    "Employee": _ListKind("Employee", EMPLOYEE_READ_ONLY, _shape_employee, keeps_display_name=True),
    "Item": _ListKind("Item", ITEM_READ_ONLY, _shape_item, tree=ITEM_TREE),
    "Account": _ListKind(
        "Account",
        ACCOUNT_READ_ONLY,
        _shape_account,
        _account_computed,
        tree=ACCOUNT_TREE,
        cascade_deactivation=True,
    ),
    "Term": _ListKind("Term", TERM_READ_ONLY, _shape_term),
    "PaymentMethod": _ListKind("PaymentMethod", PAYMENT_METHOD_READ_ONLY, _shape_payment_method),
}
_CREATORS = {name: _creator(kind) for name, kind in _KINDS.items()}


def insert_seeded(co: Company, entity: str, entity_id: str, body: Entity, now: datetime) -> Entity:
    """Create a name-list entity with a fixed Id through the same rules as the API, unjournalled
    (seed data is the company's starting state, not a change)."""
    return _CREATORS[entity](co, body, now, entity_id=entity_id, journal=False)


def _rules(name: str, *, cdc: bool = True) -> EntityRules:
    return EntityRules(name, name_list=True, cdc=cdc, create=_CREATORS[name], update=_updater(_KINDS[name]))


_TAX_SERVICE = "tax codes and rates are created by QuickBooks (TaxService or Automated Sales Tax)"

NAME_RULES: dict[str, EntityRules] = {
    "Customer": _rules("Customer"),
    "Vendor": _rules("Vendor"),
    "Employee": _rules("Employee"),
    "Item": _rules("Item"),
    "Account": _rules("Account"),
    "Term": _rules("Term"),
    "PaymentMethod": _rules("PaymentMethod"),
    "TaxCode": EntityRules(
        "TaxCode",
        name_list=True,
        cdc=False,
        create=_not_through_api("TaxCode", f"Operation create is not supported: {_TAX_SERVICE}"),
    ),
    "TaxRate": EntityRules(
        "TaxRate",
        name_list=True,
        cdc=False,
        create=_not_through_api("TaxRate", f"Operation create is not supported: {_TAX_SERVICE}"),
    ),
    "TaxAgency": EntityRules(
        "TaxAgency",
        name_list=False,
        cdc=False,
        create=_not_through_api("TaxAgency", "Operation create is not supported in this sandbox"),
    ),
    "CompanyInfo": EntityRules(
        "CompanyInfo",
        name_list=False,
        cdc=True,
        create=_not_through_api("CompanyInfo", "the company information exists with the company"),
        update=_update_company_info,
    ),
    "Preferences": EntityRules(
        "Preferences",
        name_list=False,
        cdc=True,
        create=_not_through_api("Preferences", "the preferences exist with the company"),
        update=_update_preferences,
    ),
}
