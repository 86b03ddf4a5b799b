"""QBO's rules for the transactions the sandbox models: Invoice, CreditMemo, Payment, JournalEntry.

What "QBO" computes here, whatever the client sends: line Ids and LineNum, reference names,
``TotalAmt``, ``Balance``, ``RemainingCredit``, ``UnappliedAmt``, ``TxnTaxDetail`` (unless the
client sends its own ``TotalTax``, or outside the US its tax per rate in ``TaxLine``),
``LinkedTxn`` and the customers' ``Balance`` / ``BalanceWithJobs``.  Choices where QBO's behaviour
is not documented are listed in ``UNCONFIRMED_CHOICES`` (and in docs/sandbox.md).

Every write validates first and changes state only once nothing can fail any more, because the
dispatcher hands over the stored objects themselves and a half-applied payment would corrupt the
company.
"""

from __future__ import annotations

import calendar
import copy
import hashlib
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from qbo_sandbox import faults
from qbo_sandbox.accounting import tax
from qbo_sandbox.accounting.common import (
    READ_ONLY,
    EntityRules,
    cents,
    display_ref,
    money,
    number,
    ref_id,
    require_ref,
    visible,
)
from qbo_sandbox.accounting.names import ADDRESS_SEQUENCE
from qbo_sandbox.company import Company, Entity

ZERO = Decimal(0)

SALES_DOCS = ("Invoice", "CreditMemo")

CreateFn = Callable[[Company, Entity, datetime], Entity]
UpdateFn = Callable[[Company, Entity, Entity, bool, datetime], Entity]
DeleteFn = Callable[[Company, Entity, Entity, datetime], Entity]  # delete and void

# The fault codes this module chooses where QBO's own is not documented (see UNCONFIRMED_CHOICES).
DUPLICATE_DOC_NUMBER_CODE = "6210"
AMOUNT_MISMATCH_CODE = "6070"
INVENTORY_QTY_CODE = "6520"

DOC_NUMBER_MAX = 21
AUTO_GENERATE = "AUTO_GENERATE"
AUTO_APPLIED_NOTE = "Automatically applied credit"
VOIDED_NOTE = "Voided"
DEFAULT_DUE_DAYS = 30  # QBO's "Net 30" when neither the invoice nor the customer names terms

CURRENCY_BY_COUNTRY = {"US": "USD", "CA": "CAD", "GB": "GBP", "AU": "AUD"}
CURRENCY_NAMES = {
    "USD": "United States Dollar",
    "CAD": "Canadian Dollar",
    "GBP": "British Pound Sterling",
    "AUD": "Australian Dollar",
}

# Written by QBO, ignored when a client sends them.
SALES_COMPUTED = frozenset(
    {"TotalAmt", "Balance", "RemainingCredit", "LinkedTxn", "HomeBalance", "HomeTotalAmt"}
)
PAYMENT_COMPUTED = frozenset({"UnappliedAmt", "HomeTotalAmt"})
JOURNAL_COMPUTED = frozenset({"TotalAmt", "HomeTotalAmt"})
# Kept from the stored entity on every update (co.replace bumps SyncToken and MetaData).
SERVER_OWNED = ("domain", "sparse", "Id", "SyncToken", "MetaData")

UNCONFIRMED_CHOICES = (
    'Empty optional values ("", null, {} at any depth, line details excepted) are read as absent '
    "before any rule; at the top level of a sparse update an emptied field is cleared, as a null is.",
    "Payment LineEx: txnOpenBalance is the linked document's open amount before this payment, fixed "
    "when the payment is saved; no txnReferenceNumber pair for a document without a DocNumber; "
    "credit-memo lines carry the block too; a LineEx sent back is ignored and rebuilt.",
    "MetaData.LastModifiedByRef on Invoices only (recorded credit memos, payments and customers have "
    "none); its value is one 16-digit user id per company, derived from the realm id.",
    "ShipFromAddr on Invoices and CreditMemos: the one sent, else the stored one (an update keeps it "
    "and its Id), else CompanyInfo.CompanyAddr as Line1 = street, Line2 = 'City, ST  postcode', with "
    "a new address Id.",
    "Duplicate DocNumber on an Invoice (or CreditMemo) is refused with 6210 'Duplicate Document "
    "Number Error' (the facts' code; third-party fakes use 6140); company.settings"
    "['allow_duplicate_doc_number'] = True accepts duplicates.",
    "Auto numbering: Invoices and CreditMemos share one sequence, max(numeric DocNumbers, "
    "settings['doc_number_floor']) + 1; the floor follows every number handed out so a deleted "
    "last invoice's number is not reused.",
    "Amount != round_half_up(Qty * UnitPrice) gives 6070 'Amount calculation incorrect in the "
    "request.'; an Inventory item line without Qty gives 6520.",
    "A SalesItemLineDetail line without ItemRef is documentation: its Amount becomes 0.",
    "DescriptionOnly lines carry no Amount in responses.",
    "DueDate: explicit DueDate, else the invoice's SalesTermRef, else the customer's SalesTermRef "
    "(copied onto the invoice), else Preferences.SalesFormsPrefs.DefaultTerms, else TxnDate + 30.",
    "Full update: TxnDate and DocNumber left out keep their stored values instead of being cleared.",
    "Sparse update without Line keeps lines and tax (the stored TotalTax, and outside the US the "
    "stored TaxLine amounts, stay as an override); with Line but without TxnTaxDetail the tax is "
    "recomputed.",
    "Line Ids: a sent Id that does not exist on the document is treated as a new line (fresh Id).",
    "US: a line with no TaxCodeRef is TAX unless its Item has Taxable false (then NON) - this "
    "reconciles Alga's 'absent means taxable' with the recorded sandbox response (Item 1 -> NON).",
    "US AST tax code: TxnTaxDetail.TxnTaxCodeRef if sent, else the customer's DefaultTaxCodeRef, "
    "else Preferences.TaxPrefs.TaxGroupCodeRef, else company.settings['default_tax_code'], else "
    "the first active TaxCode with sales rates. "
    "The tax is rounded once at transaction level on the combined rate, then shared between rates.",
    "US without AST (PartnerTaxEnabled false): tax only with a sent TxnTaxCodeRef or the "
    "customer's DefaultTaxCodeRef.",
    "Non-US: tax per line and per rate, each rounded on its line; TaxInclusive lines send gross "
    "amounts (or TaxInclusiveAmt) and come back with Amount = net and TaxInclusiveAmt = gross.",
    "An explicit TxnTaxDetail.TotalTax is honoured in every country, shared across the tax lines "
    "in proportion to the computed tax (outside the US only when no TaxLine is sent).",
    "Non-US: a sent TxnTaxDetail.TaxLine is honoured rate by rate (Intuit, 'Manage sales tax for "
    "non-US locales': TxnTaxDetail gives the rate and amount of the transaction's tax; .NET SDK "
    "TxnTaxDetail: TaxLine is a Line of DetailType TaxLineDetail): its Amount, to the cent, is the "
    "rate's tax and a sent NetAmountTaxable is kept (else computed from the lines); TaxPercent and "
    "PercentBased are the rate's own, TaxInclusiveAmount and OverrideDeltaAmount are ignored. A rate "
    "of the lines' codes that no TaxLine names keeps its computed tax.",
    "Non-US TaxLine refusals: a TaxRateRef that is not a sales rate of a tax code on the lines: "
    "6000; of no TaxRate at all: 610; two TaxLines for one rate: 6000; no DetailType: 6000 "
    "'TxnTaxDetail.TaxLine.DetailTypeEnum is missing in the request' (the wording reported in "
    "ruckus/quickbooks-ruby#529); another DetailType: 2010; no TaxLineDetail, TaxRateRef or Amount: "
    "2020.",
    "Non-US with TaxLine sent: TotalTax is the sum of every tax line (sent and computed) and a sent "
    "TotalTax that says otherwise is ignored (the .NET SDK describes TotalTax as calculated); with "
    "TaxInclusive amounts the lines' nets stay gross / (1 + rate).",
    "US: a sent TaxLine is ignored (AST takes one transaction tax code; TotalTax alone is honoured).",
    "ApplyTaxAfterDiscount true: each discount is spread over the sales lines in proportion to "
    "their amounts before tax; discounts always apply to the whole subtotal.",
    "Invoice/CreditMemo with a negative total: 6000.",
    "Over-application of a payment (more than the open balance of an invoice or the remaining "
    "credit of a credit memo) is 6000 (Alga uses 6210, which QBO documents as the duplicate "
    "document number error).",
    "Payment lines: exactly one LinkedTxn each, TxnType Invoice or CreditMemo, Amount >= 0; lines "
    "applying more than TotalAmt plus the credits used, or credits larger than the invoices paid "
    "in the same payment: 6000.",
    "A payment may pay invoices and use credits of the payment's customer or of its sub-customers.",
    "Deleting or voiding an Invoice/CreditMemo that a payment still applies to: 6000 (remove the "
    "payment or its line first).",
    "Void zeroes TotalAmt, Balance/RemainingCredit, every line Amount and the tax, appends 'Voided' "
    "to PrivateNote and journals a Void; voiding again is a harmless no-op (no new SyncToken); "
    "updating a voided document is refused with 6000.",
    "A voided payment keeps its lines with Amount 0 and no longer appears in the documents' LinkedTxn.",
    "Customer Balance/BalanceWithJobs move with invoices, credit memos, unapplied payment amounts "
    "and A/R journal lines, without a new customer SyncToken or a journalled customer change.",
    "AutoApplyCredit applies the customer's own open credit memos (oldest first) on invoice "
    "create only, through a zero-dollar payment; the new invoice is returned with SyncToken 0.",
    "JournalEntry: unbalanced -> 6000; A/R lines need a Customer entity, A/P lines a Vendor; "
    "line Ids start at 0; void is not supported (QBO offers none); DocNumber is free text.",
    "Only the home currency is accepted (6000 otherwise).",
    "Delete answers {Id, status: Deleted, domain: QBO}.",
    "Not modelled: inventory QtyOnHand, GroupLineDetail and other line types (2010), "
    "SalesFormsPrefs.AutoApplyPayments, payments linked to journal entries, multicurrency.",
    "Voided documents are remembered in company.settings['voided'] (no status field on the entity).",
)


# --- company context --------------------------------------------------------------------------


def _preferences(co: Company) -> Entity:
    return next(iter(co.rows("Preferences")), {})


def _sales_prefs(co: Company) -> dict[str, Any]:
    prefs = _preferences(co).get("SalesFormsPrefs")
    return prefs if isinstance(prefs, dict) else {}


def _tax_prefs(co: Company) -> dict[str, Any]:
    prefs = _preferences(co).get("TaxPrefs")
    return prefs if isinstance(prefs, dict) else {}


def _home_currency(co: Company) -> dict[str, str]:
    currency_prefs = _preferences(co).get("CurrencyPrefs")
    code = None
    if isinstance(currency_prefs, dict) and isinstance(currency_prefs.get("HomeCurrency"), dict):
        code = currency_prefs["HomeCurrency"].get("value")
    code = str(code or CURRENCY_BY_COUNTRY.get(co.country, "USD"))
    ref = {"value": code}
    if code in CURRENCY_NAMES:
        ref["name"] = CURRENCY_NAMES[code]
    return ref


def _currency(co: Company, doc: Entity) -> dict[str, str]:
    home = _home_currency(co)
    sent = ref_id(doc, "CurrencyRef")
    if sent is not None and sent != home["value"]:
        raise faults.business_rule(
            f"Multicurrency is not enabled: the transaction currency must be {home['value']}.",
            "CurrencyRef",
        )
    return home


def _today(co: Company, now: datetime) -> str:
    return co.local(now).date().isoformat()


def _parse_date(value: Any, element: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise faults.invalid_field(element, f"{element} must be a date as yyyy-MM-dd") from None


def _auto_apply_credit(co: Company) -> bool:
    return _sales_prefs(co).get("AutoApplyCredit") is True


def _voided(co: Company, entity: str) -> list[str]:
    registry = co.settings.setdefault("voided", {})
    ids: list[str] = registry.setdefault(entity, [])
    return ids


def is_voided(co: Company, entity: str, entity_id: str) -> bool:
    return entity_id in co.settings.get("voided", {}).get(entity, [])


def _refuse_if_voided(co: Company, entity: str, stored: Entity) -> None:
    if is_voided(co, entity, stored["Id"]):
        raise faults.business_rule(f"{entity} {stored['Id']} is voided and can no longer be changed.", "Id")


def _amount(value: Any) -> Decimal:
    return ZERO if value is None else money(value)


def _deleted(entity_id: str) -> Entity:
    return {"Id": entity_id, "status": "Deleted", "domain": "QBO"}


def _append_note(note: Any, text: str) -> str:
    current = str(note or "").rstrip()
    return f"{current} {text}".strip() if current else text


# --- customer balances ------------------------------------------------------------------------


def _ar_effects(co: Company, entity: str, obj: Entity | None) -> dict[str, Decimal]:
    """How much a transaction adds to its customers' open balance (A/R)."""
    if obj is None:
        return {}
    if entity == "JournalEntry":
        effects: dict[str, Decimal] = {}
        for line in obj.get("Line") or []:
            detail = line.get("JournalEntryLineDetail") or {}
            account = co.get("Account", str((detail.get("AccountRef") or {}).get("value", "")))
            entity_ref = detail.get("Entity") or {}
            if account is None or account.get("AccountType") != "Accounts Receivable":
                continue
            if entity_ref.get("Type") != "Customer":
                continue
            customer_id = str((entity_ref.get("EntityRef") or {}).get("value", ""))
            sign = 1 if detail.get("PostingType") == "Debit" else -1
            effects[customer_id] = effects.get(customer_id, ZERO) + sign * _amount(line.get("Amount"))
        return effects
    customer_id = str((obj.get("CustomerRef") or {}).get("value", ""))
    if entity == "Invoice":
        return {customer_id: _amount(obj.get("Balance"))}
    if entity == "CreditMemo":
        return {customer_id: -_amount(obj.get("RemainingCredit"))}
    if entity == "Payment":
        return {customer_id: -_amount(obj.get("UnappliedAmt"))}
    return {}


def _add_effects(total: dict[str, Decimal], more: dict[str, Decimal], sign: int = 1) -> None:
    for key, value in more.items():
        total[key] = total.get(key, ZERO) + sign * value


def _shift_balances(co: Company, delta: dict[str, Decimal]) -> None:
    """Move Customer.Balance and BalanceWithJobs of the customer and every ancestor.

    QBO derives these fields, so the customer keeps its SyncToken and no change is journalled.
    """
    for customer_id, amount in delta.items():
        if amount == 0:
            continue
        customer = co.get("Customer", customer_id)
        if customer is None:
            continue
        customer["Balance"] = number(cents(_amount(customer.get("Balance")) + amount))
        seen: set[str] = set()
        node: Entity | None = customer
        while node is not None and node["Id"] not in seen:
            seen.add(node["Id"])
            node["BalanceWithJobs"] = number(cents(_amount(node.get("BalanceWithJobs")) + amount))
            parent = (node.get("ParentRef") or {}).get("value")
            node = co.get("Customer", str(parent)) if parent is not None else None


class _BalanceWatch:
    """Records the A/R effects of some transactions before a change and moves the customers'
    balances by the difference afterwards."""

    def __init__(self, co: Company) -> None:
        self.co = co
        self.before: dict[str, Decimal] = {}
        self.keys: set[tuple[str, str]] = set()

    def watch(self, entity: str, entity_id: str) -> None:
        if (entity, entity_id) in self.keys:
            return
        self.keys.add((entity, entity_id))
        _add_effects(self.before, _ar_effects(self.co, entity, self.co.get(entity, entity_id)))

    def watch_new(self, entity: str, entity_id: str) -> None:
        """A transaction created by this operation: it had no effect before."""
        self.keys.add((entity, entity_id))

    def settle(self) -> None:
        after: dict[str, Decimal] = {}
        for entity, entity_id in self.keys:
            _add_effects(after, _ar_effects(self.co, entity, self.co.get(entity, entity_id)))
        _add_effects(after, self.before, -1)
        _shift_balances(self.co, after)


def _is_same_or_descendant(co: Company, customer_id: str, ancestor_id: str) -> bool:
    seen: set[str] = set()
    current: str | None = customer_id
    while current is not None and current not in seen:
        if current == ancestor_id:
            return True
        seen.add(current)
        node = co.get("Customer", current)
        parent = (node or {}).get("ParentRef") or {}
        current = str(parent["value"]) if parent.get("value") is not None else None
    return False


# --- payments applied to documents ------------------------------------------------------------


def _payment_links(payment: Entity) -> dict[tuple[str, str], Decimal]:
    """(TxnType, TxnId) -> amount this payment applies to it."""
    links: dict[tuple[str, str], Decimal] = {}
    for line in payment.get("Line") or []:
        for linked in line.get("LinkedTxn") or []:
            key = (str(linked.get("TxnType")), str(linked.get("TxnId")))
            links[key] = links.get(key, ZERO) + _amount(line.get("Amount"))
    return links


def _applied(co: Company, entity: str, entity_id: str) -> Decimal:
    return sum((_payment_links(p).get((entity, entity_id), ZERO) for p in co.rows("Payment")), ZERO)


def _paying_payments(co: Company, entity: str, entity_id: str) -> list[str]:
    return [p["Id"] for p in co.rows("Payment") if _payment_links(p).get((entity, entity_id), ZERO) != 0]


def _refresh_document(co: Company, entity: str, doc: Entity) -> None:
    """Recompute a document's open amount and its Payment links from the payments on file."""
    applied = _applied(co, entity, doc["Id"])
    remaining = number(cents(_amount(doc.get("TotalAmt")) - applied))
    doc["Balance"] = remaining
    if entity == "CreditMemo":
        doc["RemainingCredit"] = remaining
    others = [link for link in doc.get("LinkedTxn") or [] if link.get("TxnType") != "Payment"]
    paying = _paying_payments(co, entity, doc["Id"])
    doc["LinkedTxn"] = others + [{"TxnId": pid, "TxnType": "Payment"} for pid in paying]


# --- sales documents: lines -------------------------------------------------------------------


@dataclass
class _SalesLine:
    out: Entity
    amount: Decimal  # as sent: gross when tax-inclusive
    rates: tuple[tax.Rate, ...]
    taxable: bool  # US: TAX (True) or NON (False)


@dataclass
class _Discount:
    out: Entity
    percent: Decimal | None
    amount: Decimal


@dataclass
class _Lines:
    out: list[Entity] = field(default_factory=list)
    sales: list[_SalesLine] = field(default_factory=list)
    discounts: list[_Discount] = field(default_factory=list)


def _rates_of(co: Company, code: Entity) -> tuple[tax.Rate, ...]:
    rate_list = code.get("SalesTaxRateList") or {}
    rates: list[tax.Rate] = []
    for detail in rate_list.get("TaxRateDetail") or []:
        rate_id = str((detail.get("TaxRateRef") or {}).get("value", ""))
        rate = co.get("TaxRate", rate_id)
        if rate is None:
            continue
        rates.append(tax.Rate(rate_id, _amount(rate.get("RateValue")), rate.get("Name")))
    return tuple(rates)


def _tax_code(co: Company, holder: Entity) -> Entity:
    code = require_ref(co, holder, "TaxCodeRef", "TaxCode", required=True)
    assert code is not None  # required=True raises instead
    return code


def _present(doc: Entity) -> Entity:
    """The fields that have a value: a null (or emptied) field sent in an update removes it."""
    return {k: v for k, v in doc.items() if v is not None}


def _thousands(value: Decimal) -> str:
    return f"{value:,}"


def _sales_line_gross(line: Entity, detail: Entity, item: Entity, *, inclusive: bool) -> Decimal:
    """The line's amount (tax included when the document is), checked against Qty * UnitPrice."""
    if "Amount" not in line or line["Amount"] is None:
        raise faults.required_param("Line.Amount", "Line")
    gross = money(line["Amount"], "Line.Amount")
    if inclusive and detail.get("TaxInclusiveAmt") is not None:
        gross = money(detail["TaxInclusiveAmt"], "Line.SalesItemLineDetail.TaxInclusiveAmt")
    qty = money(detail["Qty"], "Line.SalesItemLineDetail.Qty") if detail.get("Qty") is not None else None
    price = (
        money(detail["UnitPrice"], "Line.SalesItemLineDetail.UnitPrice")
        if detail.get("UnitPrice") is not None
        else None
    )
    if item.get("Type") == "Inventory" and qty is None:
        raise faults.validation(
            INVENTORY_QTY_CODE,
            "Missing Inventory Item Quantity",
            "Quantity required for inventory item",
            "Line.SalesItemLineDetail.Qty",
        )
    if qty is not None and price is not None and cents(qty * price) != gross:
        raise faults.validation(
            AMOUNT_MISMATCH_CODE,
            "Amount calculation incorrect in the request.",
            f"Amount is not equal to UnitPrice * Qty. Supplied value:{_thousands(gross)}",
            "Line.Amount",
        )
    return cents(gross)  # QBO keeps currency amounts to the cent


def _sales_item_line(co: Company, line: Entity, out: Entity, *, us: bool, inclusive: bool) -> _SalesLine:
    detail = line.get("SalesItemLineDetail")
    if not isinstance(detail, dict):
        raise faults.required_param("Line.SalesItemLineDetail", "Line")
    detail_out: Entity = {k: v for k, v in detail.items() if k not in {"ItemAccountRef"}}
    out["DetailType"] = "SalesItemLineDetail"
    out["SalesItemLineDetail"] = detail_out
    out["CustomExtensions"] = line.get("CustomExtensions", [])

    item = require_ref(co, detail, "ItemRef", "Item")
    if item is None:
        # QBO's documented rule: a line without an item is documentation only.
        out["Amount"] = 0
        return _SalesLine(out, ZERO, (), False)
    detail_out["ItemRef"] = display_ref(item)
    gross = _sales_line_gross(line, detail, item, inclusive=inclusive)
    account_id = ref_id(item, "IncomeAccountRef")
    account = co.get("Account", account_id) if account_id else None
    if account is not None:
        detail_out["ItemAccountRef"] = display_ref(account)

    if us:
        value = ref_id(detail, "TaxCodeRef")
        if value is None:
            value = "NON" if item.get("Taxable") is False else "TAX"
        elif value not in ("TAX", "NON"):
            _tax_code(co, detail)
        detail_out["TaxCodeRef"] = {"value": value}
        return _SalesLine(out, gross, (), value != "NON")
    if ref_id(detail, "TaxCodeRef") is None:
        raise faults.business_rule(
            "Make sure all your transactions have a VAT rate before you save.",
            "Line.SalesItemLineDetail.TaxCodeRef",
        )
    code = _tax_code(co, detail)
    detail_out["TaxCodeRef"] = {"value": code["Id"]}
    return _SalesLine(out, gross, _rates_of(co, code), True)


def _discount_line(co: Company, line: Entity, out: Entity) -> _Discount:
    detail = line.get("DiscountLineDetail")
    if not isinstance(detail, dict):
        detail = {}
    detail_out = dict(detail)
    out["DetailType"] = "DiscountLineDetail"
    out["DiscountLineDetail"] = detail_out
    account = require_ref(co, detail, "DiscountAccountRef", "Account")
    preferred = _sales_prefs(co).get("DefaultDiscountAccount")
    if account is None and isinstance(preferred, str | int):
        account = co.get("Account", str(preferred))
    if account is None:
        account = next(
            (
                a
                for a in co.rows("Account")
                if a.get("Name") == "Discounts given" and a.get("Active") is not False
            ),
            None,
        )
    if account is not None:
        detail_out["DiscountAccountRef"] = display_ref(account)
    if detail.get("PercentBased") in (True, "true"):
        if detail.get("DiscountPercent") is None:
            raise faults.required_param("Line.DiscountLineDetail.DiscountPercent", "Line")
        percent = money(detail["DiscountPercent"], "Line.DiscountLineDetail.DiscountPercent")
        if percent < 0 or percent > 100:
            raise faults.invalid_field(
                "Line.DiscountLineDetail.DiscountPercent", "DiscountPercent must be between 0 and 100"
            )
        detail_out["PercentBased"] = True
        return _Discount(out, percent, ZERO)
    if line.get("Amount") is None:
        raise faults.required_param("Line.Amount", "Line")
    amount = money(line["Amount"], "Line.Amount")
    if amount < 0:
        raise faults.invalid_field("Line.Amount", "A discount amount cannot be negative")
    detail_out["PercentBased"] = False
    return _Discount(out, None, cents(amount))


def _build_lines(co: Company, sent: Any, old_lines: list[Entity], *, us: bool, inclusive: bool) -> _Lines:
    if sent is not None and not isinstance(sent, list):
        raise faults.invalid_field("Line", "Line must be an array")
    given = [
        ln for ln in sent or [] if not (isinstance(ln, dict) and ln.get("DetailType") == "SubTotalLineDetail")
    ]
    if not given:
        raise faults.required_param("Line", "Line")
    old_ids = {str(ln["Id"]) for ln in old_lines if ln.get("Id") is not None}
    numeric = [int(i) for i in old_ids if i.isdigit()]
    next_id = max([*numeric, 0]) + 1
    used: set[str] = set()
    result = _Lines()
    for position, line in enumerate(given, start=1):
        if not isinstance(line, dict):
            raise faults.invalid_field("Line", "Each line must be an object")
        kind = line.get("DetailType")
        if kind is None:
            raise faults.required_param("Line.DetailType", "Line")
        line_id = str(line["Id"]) if line.get("Id") is not None else None
        if line_id is None or line_id not in old_ids or line_id in used:
            line_id = str(next_id)
            next_id += 1
        used.add(line_id)
        out: Entity = {"Id": line_id, "LineNum": position}
        if line.get("Description") is not None:
            out["Description"] = line["Description"]
        if kind == "SalesItemLineDetail":
            result.sales.append(_sales_item_line(co, line, out, us=us, inclusive=inclusive))
        elif kind == "DescriptionOnly":
            out["DetailType"] = "DescriptionOnly"
            out["DescriptionLineDetail"] = dict(line.get("DescriptionLineDetail") or {})
        elif kind == "DiscountLineDetail":
            result.discounts.append(_discount_line(co, line, out))
        else:
            raise faults.invalid_field(
                "Line.DetailType",
                f"Unsupported DetailType {kind!r}: the sandbox models SalesItemLineDetail, "
                "DescriptionOnly, DiscountLineDetail and (ignored on input) SubTotalLineDetail",
            )
        result.out.append(out)
    return result


# --- sales documents: tax ---------------------------------------------------------------------


def _us_tax_code(co: Company, sent_detail: dict[str, Any], customer: Entity) -> Entity | None:
    if ref_id(sent_detail, "TxnTaxCodeRef") is not None:
        return require_ref(co, sent_detail, "TxnTaxCodeRef", "TaxCode")
    customer_code = ref_id(customer, "DefaultTaxCodeRef")
    if customer_code is not None:
        found = co.get("TaxCode", customer_code)
        if found is not None and found.get("Active") is not False and _rates_of(co, found):
            return found
    if _tax_prefs(co).get("PartnerTaxEnabled") is not True:
        return None
    for default_code in (ref_id(_tax_prefs(co), "TaxGroupCodeRef"), co.settings.get("default_tax_code")):
        found = co.get("TaxCode", str(default_code)) if default_code is not None else None
        if found is not None and found.get("Active") is not False:
            return found
    return next((c for c in co.rows("TaxCode") if c.get("Active") is not False and _rates_of(co, c)), None)


def _tax_line_json(line: tax.TaxLine) -> Entity:
    rate_ref: dict[str, str] = {"value": line.rate.rate_id}
    return {
        "Amount": number(line.amount),
        "DetailType": "TaxLineDetail",
        "TaxLineDetail": {
            "TaxRateRef": rate_ref,
            "PercentBased": True,
            "TaxPercent": number(line.rate.percent),
            "NetAmountTaxable": number(cents(line.net_taxable)),
        },
    }


def _sent_tax_lines(
    co: Company, sent_tax: dict[str, Any], used: Iterable[tax.Rate]
) -> dict[str, tax.SentTaxLine]:
    """Non-US: the tax per rate the client sent in ``TxnTaxDetail.TaxLine``, by rate id, refused
    as QBO would when a line is malformed or names a rate the document's lines are not taxed at."""
    given = sent_tax.get("TaxLine")
    if given is None:
        return {}
    if not isinstance(given, list):
        raise faults.invalid_field("TxnTaxDetail.TaxLine", "TaxLine must be an array")
    used_ids = {rate.rate_id for rate in used}
    element = "TxnTaxDetail.TaxLine.TaxLineDetail.TaxRateRef"
    sent: dict[str, tax.SentTaxLine] = {}
    for line in given:
        if not isinstance(line, dict):
            raise faults.invalid_field("TxnTaxDetail.TaxLine", "Each TaxLine must be an object")
        kind = line.get("DetailType")
        if kind is None:
            raise faults.business_rule(
                "TxnTaxDetail.TaxLine.DetailTypeEnum is missing in the request", "TxnTaxDetail.TaxLine"
            )
        if kind != "TaxLineDetail":
            raise faults.invalid_field(
                "TxnTaxDetail.TaxLine.DetailType", "A TaxLine's DetailType must be TaxLineDetail"
            )
        detail = line.get("TaxLineDetail")
        if not isinstance(detail, dict):
            raise faults.required_param("TxnTaxDetail.TaxLine.TaxLineDetail", "TaxLine")
        rate_id = ref_id(detail, "TaxRateRef")
        if rate_id is None:
            raise faults.required_param(element, "TaxLine")
        if line.get("Amount") is None:
            raise faults.required_param("TxnTaxDetail.TaxLine.Amount", "TaxLine")
        amount = money(line["Amount"], "TxnTaxDetail.TaxLine.Amount")
        net = detail.get("NetAmountTaxable")
        net_taxable = (
            None if net is None else money(net, "TxnTaxDetail.TaxLine.TaxLineDetail.NetAmountTaxable")
        )
        if rate_id not in used_ids:
            if visible(co, "TaxRate", rate_id) is None:
                raise faults.object_not_found("TaxRate", rate_id, element)
            raise faults.business_rule(
                f"Tax rate {rate_id} is not a rate of a tax code on this transaction's lines. Each "
                "TaxLine must give the tax of a rate the lines are taxed at.",
                element,
            )
        if rate_id in sent:
            raise faults.business_rule(f"Tax rate {rate_id} is given in more than one TaxLine.", element)
        sent[rate_id] = tax.SentTaxLine(amount, net_taxable)
    return sent


@dataclass
class _Priced:
    lines: list[Entity]
    total: Decimal
    tax_detail: Entity


def _apply_discounts(discounts: Sequence[_Discount], subtotal: Decimal) -> Decimal:
    """Each discount line's amount (a percentage of the subtotal when it is one); their total."""
    total = ZERO
    for discount in discounts:
        value = discount.amount
        if discount.percent is not None:
            value = cents(subtotal * discount.percent / 100)
        discount.out["Amount"] = number(value)
        total += value
    return total


def _us_tax(
    co: Company,
    sales: Sequence[_SalesLine],
    nets: Sequence[Decimal],
    shares: Sequence[Decimal],
    *,
    sent_tax: dict[str, Any],
    customer: Entity,
) -> tuple[tuple[tax.TaxLine, ...], dict[str, str] | None]:
    """US: one tax code for the whole transaction, on the taxable lines; its lines and code."""
    taxable = sum((n - d for s, n, d in zip(sales, nets, shares, strict=True) if s.taxable), ZERO)
    wanted = (
        taxable != 0 or sent_tax.get("TotalTax") is not None or ref_id(sent_tax, "TxnTaxCodeRef") is not None
    )
    code = _us_tax_code(co, sent_tax, customer) if wanted else None
    rates = _rates_of(co, code) if code is not None else ()
    tax_lines = tax.transaction_tax(taxable, rates) if taxable != 0 else ()
    for sale in sales:
        sale.out["Amount"] = number(sale.amount)
    return tax_lines, ({"value": code["Id"]} if code is not None else None)


def _line_tax(
    co: Company,
    sales: Sequence[_SalesLine],
    shares: Sequence[Decimal],
    *,
    sent_tax: dict[str, Any],
    inclusive: bool,
) -> tuple[tuple[tax.TaxLine, ...], dict[str, tax.SentTaxLine]]:
    """Outside the US: each line's own tax code; the tax lines and the ones the request sent."""
    result = tax.per_line_tax(
        [tax.TaxableLine(s.amount, s.rates, d) for s, d in zip(sales, shares, strict=True)],
        inclusive=inclusive,
    )
    sent_lines = _sent_tax_lines(co, sent_tax, (t.rate for t in result.tax_lines))
    for sale, line_result in zip(sales, result.lines, strict=True):
        sale.out["Amount"] = number(line_result.net)
        if inclusive:
            sale.out["SalesItemLineDetail"]["TaxInclusiveAmt"] = number(cents(sale.amount))
    return result.tax_lines, sent_lines


def _honour_sent_tax(
    tax_lines: tuple[tax.TaxLine, ...], sent_lines: dict[str, tax.SentTaxLine], sent_tax: dict[str, Any]
) -> tuple[tuple[tax.TaxLine, ...], Decimal]:
    """The tax lines and total after the amounts the request sent (per rate, or a total) win."""
    if sent_lines:
        tax_lines = tax.honour_tax_lines(tax_lines, sent_lines)
        return tax_lines, sum((t.amount for t in tax_lines), ZERO)
    if sent_tax.get("TotalTax") is not None:
        explicit = cents(money(sent_tax["TotalTax"], "TxnTaxDetail.TotalTax"))
        return tax.honour_total(explicit, tax_lines), explicit
    return tax_lines, sum((t.amount for t in tax_lines), ZERO)


def _price(
    co: Company,
    lines: _Lines,
    *,
    us: bool,
    inclusive: bool,
    after_discount: bool,
    customer: Entity,
    sent_tax: dict[str, Any],
) -> _Priced:
    if us or not inclusive:
        nets = [s.amount for s in lines.sales]
    else:
        nets = [tax.net_of_tax(s.amount, s.rates) for s in lines.sales]
    subtotal = sum(nets, ZERO)
    discount_total = _apply_discounts(lines.discounts, subtotal)
    shares = (
        tax.allocate_discount(discount_total, nets)
        if after_discount and discount_total
        else [ZERO] * len(nets)
    )
    code_ref: dict[str, str] | None = None
    sent_lines: dict[str, tax.SentTaxLine] = {}
    if us:
        tax_lines, code_ref = _us_tax(co, lines.sales, nets, shares, sent_tax=sent_tax, customer=customer)
    else:
        tax_lines, sent_lines = _line_tax(co, lines.sales, shares, sent_tax=sent_tax, inclusive=inclusive)
    tax_lines, total_tax = _honour_sent_tax(tax_lines, sent_lines, sent_tax)

    detail: Entity = {}
    if code_ref is not None and (tax_lines or total_tax):
        detail["TxnTaxCodeRef"] = code_ref
    detail["TotalTax"] = number(total_tax)
    if tax_lines:
        detail["TaxLine"] = [_tax_line_json(t) for t in tax_lines]

    out = [
        *lines.out,
        {"Amount": number(subtotal), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
    ]
    return _Priced(out, subtotal - discount_total + total_tax, detail)


# --- sales documents: header ------------------------------------------------------------------


def _next_doc_number(co: Company) -> str:
    highest = int(co.settings.get("doc_number_floor", 1000))
    for entity in SALES_DOCS:
        for doc in co.rows(entity):
            text = str(doc.get("DocNumber") or "")
            if text.isdigit():
                highest = max(highest, int(text))
    return str(highest + 1)


def _doc_number(co: Company, entity: str, doc: Entity, stored: Entity | None) -> bool:
    """Settle doc["DocNumber"]; True when QBO assigned it."""
    sent = doc.get("DocNumber")
    custom = _sales_prefs(co).get("CustomTxnNumbers") is True
    if sent == AUTO_GENERATE or (sent in (None, "") and stored is None and not custom):
        doc["DocNumber"] = _next_doc_number(co)
        return True
    if sent in (None, ""):
        if stored is not None and stored.get("DocNumber"):
            doc["DocNumber"] = stored["DocNumber"]
        else:
            doc.pop("DocNumber", None)
        return False
    text = str(sent)
    if len(text) > DOC_NUMBER_MAX:
        raise faults.invalid_field(
            "DocNumber",
            "String length is either shorter or longer than supported by specification. "
            f"Min:0 Max:{DOC_NUMBER_MAX} supported. Supplied length:{len(text)}",
        )
    unchanged = stored is not None and stored.get("DocNumber") == text
    if not unchanged and not co.settings.get("allow_duplicate_doc_number"):
        for other in co.rows(entity):
            if other.get("DocNumber") == text and (stored is None or other["Id"] != stored["Id"]):
                raise faults.validation(
                    DUPLICATE_DOC_NUMBER_CODE,
                    "Duplicate Document Number Error",
                    "Duplicate Document Number Error : You must specify a different number. This "
                    f"number has already been used. DocNumber={text} is assigned to "
                    f"TxnType={entity} with TxnId={other['Id']}",
                    "DocNumber",
                )
    doc["DocNumber"] = text
    return False


def _raise_doc_floor(co: Company, doc_number: str) -> None:
    if doc_number.isdigit():
        floor = int(co.settings.get("doc_number_floor", 1000))
        co.settings["doc_number_floor"] = max(floor, int(doc_number))


def _due_date(
    co: Company, doc: Entity, body: Entity, customer: Entity, *, txn_date: date, stored: Entity | None
) -> None:
    """Settle DueDate: sent, kept (a sparse update that changes neither date nor terms), or due
    under the invoice's terms, the customer's terms, the company's default terms, or Net 30."""
    if body.get("DueDate") not in (None, ""):
        _parse_date(body["DueDate"], "DueDate")
        return
    inputs_changed = any(k in body for k in ("TxnDate", "SalesTermRef", "CustomerRef"))
    if doc.get("DueDate") not in (None, "") and stored is not None and not inputs_changed:
        return
    term = require_ref(co, doc, "SalesTermRef", "Term")
    if term is None:
        term_id = ref_id(customer, "SalesTermRef")
        term = co.get("Term", term_id) if term_id else None
    if term is not None:
        doc["SalesTermRef"] = display_ref(term, "Name")
    else:
        default_id = ref_id(_sales_prefs(co), "DefaultTerms")
        term = co.get("Term", default_id) if default_id else None
    doc["DueDate"] = _term_due(term, txn_date).isoformat()


def _term_due(term: Entity | None, txn_date: date) -> date:
    if term is None:
        return txn_date + timedelta(days=DEFAULT_DUE_DAYS)
    if term.get("DueDays") is not None:
        return txn_date + timedelta(days=int(_amount(term["DueDays"])))
    if term.get("DayOfMonthDue") is not None:
        year, month = (txn_date.year + 1, 1) if txn_date.month == 12 else (txn_date.year, txn_date.month + 1)
        day = min(int(_amount(term["DayOfMonthDue"])), calendar.monthrange(year, month)[1])
        return date(year, month, max(day, 1))
    return txn_date


def _copy_customer_contact(doc: Entity, customer: Entity) -> None:
    for source, target in (("BillAddr", "BillAddr"), ("ShipAddr", "ShipAddr")):
        if doc.get(target) is None and isinstance(customer.get(source), dict):
            doc[target] = copy.deepcopy(customer[source])
    email = customer.get("PrimaryEmailAddr")
    if doc.get("BillEmail") is None and isinstance(email, dict) and email.get("Address"):
        doc["BillEmail"] = {"Address": email["Address"]}


def _ship_from(co: Company, doc: Entity, stored: Entity | None) -> None:
    """``ShipFromAddr``: the address sent, else the one the document has, else the company's
    address written as QBO writes it (street on Line1, "City, ST  postcode" on Line2), with an
    address Id of its own, as every recorded invoice and credit memo carries."""
    sent = doc.get("ShipFromAddr")
    if isinstance(sent, dict):
        if sent.get("Id") is None:
            doc["ShipFromAddr"] = {"Id": co.next_id(ADDRESS_SEQUENCE), **sent}
        return
    if sent is not None:
        raise faults.invalid_field("ShipFromAddr", "ShipFromAddr must be an object")
    kept = stored.get("ShipFromAddr") if stored is not None else None
    if isinstance(kept, dict):
        doc["ShipFromAddr"] = copy.deepcopy(kept)
        return
    info = co.get("CompanyInfo", co.realm_id) or {}
    office = info.get("CompanyAddr")
    if not isinstance(office, dict) or not office.get("Line1"):
        return
    place = ", ".join(str(office[k]) for k in ("City", "CountrySubDivisionCode") if office.get(k))
    second = "  ".join(part for part in (place, str(office.get("PostalCode") or "")) if part)
    address = {"Id": co.next_id(ADDRESS_SEQUENCE), "Line1": office["Line1"]}
    if second:
        address["Line2"] = second
    doc["ShipFromAddr"] = address


def company_user_id(co: Company) -> str:
    """The id of the company's one QBO user, who makes every change (a 16-digit number like the
    recorded ``LastModifiedByRef`` values, derived from the realm id so it is stable)."""
    digest = int.from_bytes(hashlib.sha256(co.realm_id.encode()).digest()[:8], "big")
    return str(10**15 + digest % (9 * 10**15))


def _stamp_modifier(co: Company, stored: Entity) -> None:
    """An invoice's ``MetaData`` names its last modifier, between its two timestamps."""
    meta = stored.get("MetaData") or {}
    stored["MetaData"] = {
        "CreateTime": meta.get("CreateTime"),
        "LastModifiedByRef": {"value": company_user_id(co)},
        "LastUpdatedTime": meta.get("LastUpdatedTime"),
    }


_STATUS_VALUES = {
    "EmailStatus": ("NotSet", "NeedToSend", "EmailSent"),
    "PrintStatus": ("NotSet", "NeedToPrint", "PrintComplete"),
}


def _sent_doc(
    body: Entity, stored: Entity | None, hidden: AbstractSet[str], *, sparse: bool
) -> tuple[Entity, Any]:
    """The request's fields but ``hidden`` (over the stored ones for a sparse update), those with a
    value, and the lines sent (a sparse update that sends none keeps the stored ones)."""
    if stored is not None and sparse:
        doc = {k: copy.deepcopy(v) for k, v in stored.items() if k not in hidden}
        doc.update({k: v for k, v in body.items() if k not in hidden})
        sent_lines = body["Line"] if "Line" in body else stored.get("Line")
    else:
        doc = {k: v for k, v in body.items() if k not in hidden}
        sent_lines = body.get("Line")
    return _present(doc), sent_lines


def _sent_sales_doc(
    body: Entity, stored: Entity | None, *, sparse: bool
) -> tuple[Entity, Any, dict[str, Any]]:
    """The request's fields over the stored ones (a sparse update), its lines and its tax detail."""
    hidden = READ_ONLY | SALES_COMPUTED | {"Line", "TxnTaxDetail"}
    doc, sent_lines = _sent_doc(body, stored, hidden, sparse=sparse)
    if stored is None or not sparse or "TxnTaxDetail" in body:
        sent_tax = body.get("TxnTaxDetail") or {}
    elif "Line" in body:
        kept = (stored.get("TxnTaxDetail") or {}).get("TxnTaxCodeRef")
        sent_tax = {"TxnTaxCodeRef": kept} if kept else {}
    else:
        sent_tax = stored.get("TxnTaxDetail") or {}
    if not isinstance(sent_tax, dict):
        raise faults.invalid_field("TxnTaxDetail", "TxnTaxDetail must be an object")
    return doc, sent_lines, sent_tax


def _tax_settings(co: Company, doc: Entity) -> tuple[bool, bool, bool]:
    """(US, amounts include tax, tax after discount), GlobalTaxCalculation checked outside the US."""
    us = co.country == "US"
    inclusive = not us and doc.get("GlobalTaxCalculation") == "TaxInclusive"
    if not us:
        calc = doc.setdefault("GlobalTaxCalculation", "TaxExcluded")
        if calc not in ("TaxExcluded", "TaxInclusive", "NotApplicable"):
            raise faults.invalid_field(
                "GlobalTaxCalculation",
                "GlobalTaxCalculation must be TaxExcluded, TaxInclusive or NotApplicable",
            )
    after_discount = doc.setdefault("ApplyTaxAfterDiscount", False) in (True, "true")
    return us, inclusive, after_discount


def _statuses(doc: Entity) -> None:
    for key, allowed in _STATUS_VALUES.items():
        doc.setdefault(key, "NeedToPrint" if key == "PrintStatus" else "NotSet")
        if doc[key] not in allowed:
            raise faults.invalid_field(key, f"{key} must be one of {', '.join(allowed)}")


def _check_total(entity: str, total: Decimal, applied: Decimal) -> None:
    if total < 0:
        raise faults.business_rule(f"The {entity} total cannot be negative (TotalAmt {total}).", "TotalAmt")
    if total < applied:
        raise faults.business_rule(
            f"The {entity} total ({total}) cannot be less than the amount already applied to "
            f"it by payments ({applied}). Remove or reduce the payments first.",
            "TotalAmt",
        )


def _build_sales_doc(
    co: Company, entity: str, body: Entity, stored: Entity | None, *, sparse: bool, now: datetime
) -> tuple[Entity, bool]:
    """The document QBO would save for this request, and whether its DocNumber was assigned."""
    doc, sent_lines, sent_tax = _sent_sales_doc(body, stored, sparse=sparse)
    customer = require_ref(co, doc, "CustomerRef", "Customer", required=True)
    assert customer is not None  # required=True raises instead
    doc["CustomerRef"] = display_ref(customer, "DisplayName")

    if doc.get("TxnDate") in (None, ""):
        doc["TxnDate"] = stored["TxnDate"] if stored is not None else _today(co, now)
    txn_date = _parse_date(doc["TxnDate"], "TxnDate")
    doc["CurrencyRef"] = _currency(co, doc)
    assigned = _doc_number(co, entity, doc, stored)

    us, inclusive, after_discount = _tax_settings(co, doc)
    _statuses(doc)
    _copy_customer_contact(doc, customer)
    if entity == "Invoice":
        _due_date(co, doc, body, customer, txn_date=txn_date, stored=stored)
        doc.setdefault("AllowIPNPayment", False)
        doc.setdefault("AllowOnlinePayment", False)
        doc.setdefault("AllowOnlineCreditCardPayment", True)
        doc.setdefault("AllowOnlineACHPayment", True)
    doc.setdefault("CustomField", [])
    _ship_from(co, doc, stored)

    old_lines = list(stored.get("Line") or []) if stored is not None else []
    lines = _build_lines(co, sent_lines, old_lines, us=us, inclusive=inclusive)
    priced = _price(
        co,
        lines,
        us=us,
        inclusive=inclusive,
        after_discount=after_discount,
        customer=customer,
        sent_tax=sent_tax,
    )
    applied = _applied(co, entity, stored["Id"]) if stored is not None else ZERO
    _check_total(entity, priced.total, applied)
    doc["LinkedTxn"] = list(stored.get("LinkedTxn") or []) if stored is not None else []
    doc["Line"] = priced.lines
    doc["TxnTaxDetail"] = priced.tax_detail
    doc["TotalAmt"] = number(priced.total)
    doc["Balance"] = number(priced.total - applied)
    if entity == "CreditMemo":
        doc["RemainingCredit"] = doc["Balance"]
    return doc, assigned


def _insert_sales_doc(co: Company, entity: str, body: Entity, now: datetime, *, auto_apply: bool) -> Entity:
    doc, assigned = _build_sales_doc(co, entity, body, None, sparse=False, now=now)
    stored = co.insert(entity, doc, now)
    if entity == "Invoice":
        _stamp_modifier(co, stored)
    if assigned:
        _raise_doc_floor(co, stored["DocNumber"])
    _shift_balances(co, _ar_effects(co, entity, stored))
    if entity == "Invoice" and auto_apply:
        _apply_open_credits(co, stored, now)
    return stored


def _create_sales(entity: str) -> CreateFn:
    def create(co: Company, body: Entity, now: datetime) -> Entity:
        return _insert_sales_doc(co, entity, body, now, auto_apply=_auto_apply_credit(co))

    return create


def _update_sales(entity: str) -> UpdateFn:
    def update(co: Company, stored: Entity, body: Entity, sparse: bool, now: datetime) -> Entity:
        _refuse_if_voided(co, entity, stored)
        doc, assigned = _build_sales_doc(co, entity, body, stored, sparse=sparse, now=now)
        watch = _BalanceWatch(co)
        watch.watch(entity, stored["Id"])
        new: Entity = {k: stored[k] for k in SERVER_OWNED if k in stored}
        new.update(doc)
        saved = co.replace(entity, new, now)
        if entity == "Invoice":
            _stamp_modifier(co, saved)
        if assigned:
            _raise_doc_floor(co, saved["DocNumber"])
        watch.settle()
        return saved

    return update


def _refuse_if_paid(co: Company, entity: str, stored: Entity, action: str) -> None:
    paying = _paying_payments(co, entity, stored["Id"])
    if paying:
        raise faults.business_rule(
            f"{entity} {stored['Id']} cannot be {action}: payment(s) {', '.join(paying)} still apply "
            "to it. Delete or change those payments first.",
            "Id",
        )


def _delete_sales(entity: str) -> DeleteFn:
    def delete(co: Company, stored: Entity, body: Entity, now: datetime) -> Entity:
        del body
        _refuse_if_paid(co, entity, stored, "deleted")
        watch = _BalanceWatch(co)
        watch.watch(entity, stored["Id"])
        co.remove(entity, stored["Id"], now)
        voided = _voided(co, entity)
        if stored["Id"] in voided:
            voided.remove(stored["Id"])
        watch.settle()
        return _deleted(stored["Id"])

    return delete


def _void_sales(entity: str) -> DeleteFn:
    def void(co: Company, stored: Entity, body: Entity, now: datetime) -> Entity:
        del body
        if is_voided(co, entity, stored["Id"]):
            return stored
        _refuse_if_paid(co, entity, stored, "voided")
        watch = _BalanceWatch(co)
        watch.watch(entity, stored["Id"])
        new = copy.deepcopy(stored)
        for line in new.get("Line") or []:
            if "Amount" in line:
                line["Amount"] = 0
            detail = line.get("SalesItemLineDetail")
            if isinstance(detail, dict) and "TaxInclusiveAmt" in detail:
                detail["TaxInclusiveAmt"] = 0
        tax_detail = new.get("TxnTaxDetail") or {}
        new["TxnTaxDetail"] = {k: v for k, v in tax_detail.items() if k == "TxnTaxCodeRef"}
        new["TxnTaxDetail"]["TotalTax"] = 0
        new["TotalAmt"] = 0
        new["Balance"] = 0
        if entity == "CreditMemo":
            new["RemainingCredit"] = 0
        new["PrivateNote"] = _append_note(new.get("PrivateNote"), VOIDED_NOTE)
        saved = co.replace(entity, new, now, operation="Void")
        _voided(co, entity).append(saved["Id"])
        watch.settle()
        return saved

    return void


def _apply_open_credits(co: Company, invoice: Entity, now: datetime) -> None:
    """Alga's model of SalesFormsPrefs.AutoApplyCredit: open credits pay the new invoice at once."""
    customer_id = invoice["CustomerRef"]["value"]
    open_balance = _amount(invoice.get("Balance"))
    credits = [
        cm
        for cm in co.rows("CreditMemo")
        if cm["CustomerRef"]["value"] == customer_id
        and _amount(cm.get("RemainingCredit")) > 0
        and not is_voided(co, "CreditMemo", cm["Id"])
    ]
    credits.sort(key=lambda cm: (str(cm.get("TxnDate", "")), int(cm["Id"]) if cm["Id"].isdigit() else 0))
    lines: list[Entity] = []
    used = ZERO
    for cm in credits:
        if used >= open_balance:
            break
        take = min(_amount(cm["RemainingCredit"]), open_balance - used)
        used += take
        lines.append({"Amount": number(take), "LinkedTxn": [{"TxnId": cm["Id"], "TxnType": "CreditMemo"}]})
    if used <= 0:
        return
    body: Entity = {
        "CustomerRef": {"value": customer_id},
        "TotalAmt": 0,
        "TxnDate": invoice.get("TxnDate"),
        "PrivateNote": AUTO_APPLIED_NOTE,
        "Line": [
            {"Amount": number(used), "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]},
            *lines,
        ],
    }
    _save_payment(co, body, None, sparse=False, now=now, quiet={("Invoice", invoice["Id"])})


# --- payments ---------------------------------------------------------------------------------


def _deposit_account(co: Company, doc: Entity) -> dict[str, str] | None:
    account = require_ref(co, doc, "DepositToAccountRef", "Account")
    if account is None:
        account = next(
            (
                a
                for a in co.rows("Account")
                if a.get("Name") == "Undeposited Funds" and a.get("Active") is not False
            ),
            None,
        )
        if account is None:
            return None
    if account.get("AccountType") not in ("Bank", "Other Current Asset"):
        raise faults.business_rule(
            "The deposit account of a payment must be a Bank or Other Current Asset account "
            f"(Account {account['Id']} is {account.get('AccountType')}).",
            "DepositToAccountRef",
        )
    return display_ref(account)


def _payment_lines(
    co: Company, sent: Any, customer: Entity, old: Entity | None
) -> tuple[list[Entity], dict[tuple[str, str], Decimal]]:
    if sent is None:
        return [], {}
    if not isinstance(sent, list):
        raise faults.invalid_field("Line", "Line must be an array")
    old_links = _payment_links(old) if old is not None else {}
    lines: list[Entity] = []
    plan: dict[tuple[str, str], Decimal] = {}
    for line in sent:
        txn_type, txn_id, amount = _payment_line(co, line, customer)
        key = (txn_type, txn_id)
        plan[key] = plan.get(key, ZERO) + amount
        lines.append({"Amount": number(amount), "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}]})
    open_before = _open_before(co, plan, old_links)
    for line in lines:
        linked = line["LinkedTxn"][0]
        target = co.get(linked["TxnType"], linked["TxnId"])
        assert target is not None
        line["LineEx"] = line_ex(linked["TxnId"], open_before[(linked["TxnType"], linked["TxnId"])], target)
    return lines, plan


def _line_amount(line: dict[str, Any], what: str) -> Decimal:
    """A payment or journal line's ``Amount``: required, money, never negative."""
    if line.get("Amount") is None:
        raise faults.required_param("Line.Amount", "Line")
    amount = money(line["Amount"], "Line.Amount")
    if amount < 0:
        raise faults.invalid_field("Line.Amount", f"A {what} line amount cannot be negative")
    return amount


def _payment_line(co: Company, line: Any, customer: Entity) -> tuple[str, str, Decimal]:
    """One payment line checked: the (TxnType, TxnId) it applies to, of this customer, and its amount."""
    if not isinstance(line, dict):
        raise faults.invalid_field("Line", "Each line must be an object")
    amount = _line_amount(line, "payment")
    linked = line.get("LinkedTxn")
    if not isinstance(linked, list) or not linked:
        raise faults.required_param("Line.LinkedTxn", "Line")
    if len(linked) != 1 or not isinstance(linked[0], dict):
        raise faults.invalid_field("Line.LinkedTxn", "Each payment line links exactly one transaction")
    txn_type = linked[0].get("TxnType")
    txn_id = str(linked[0].get("TxnId") or "")
    if txn_type not in SALES_DOCS:
        raise faults.invalid_field(
            "Line.LinkedTxn.TxnType",
            f"Unsupported TxnType {txn_type!r}: payments apply to Invoice or CreditMemo",
        )
    if not txn_id:
        raise faults.required_param("Line.LinkedTxn.TxnId", "Line")
    target = visible(co, txn_type, txn_id)
    if target is None:
        raise faults.object_not_found(txn_type, txn_id, "Line.LinkedTxn.TxnId")
    if not _is_same_or_descendant(co, target["CustomerRef"]["value"], customer["Id"]):
        raise faults.business_rule(
            f"{txn_type} {txn_id} belongs to another customer "
            f"(Customer {target['CustomerRef']['value']}); a payment from Customer "
            f"{customer['Id']} can only apply to its own or its sub-customers' transactions.",
            "Line.LinkedTxn.TxnId",
        )
    return txn_type, txn_id, amount


def _open_before(
    co: Company, plan: dict[tuple[str, str], Decimal], old_links: dict[tuple[str, str], Decimal]
) -> dict[tuple[str, str], Decimal]:
    """What each transaction had open before this payment (its own earlier amounts given back);
    a payment may not apply more."""
    open_before: dict[tuple[str, str], Decimal] = {}
    for (txn_type, txn_id), amount in plan.items():
        target = co.get(txn_type, txn_id)
        assert target is not None
        open_amount = _amount(target.get("Balance")) + old_links.get((txn_type, txn_id), ZERO)
        if amount > open_amount:
            what = "open balance" if txn_type == "Invoice" else "remaining credit"
            raise faults.business_rule(
                f"The amount applied to {txn_type} {txn_id} ({amount}) is more than its {what} "
                f"({open_amount}).",
                "Line.Amount",
            )
        open_before[(txn_type, txn_id)] = open_amount
    return open_before


NAME_VALUE = {
    "name": "{http://schema.intuit.com/finance/v3}NameValue",
    "declaredType": "com.intuit.schema.finance.v3.NameValue",
    "scope": "javax.xml.bind.JAXBElement$GlobalScope",
}


def line_ex(txn_id: str, open_balance: Decimal, target: Entity) -> Entity:
    """QBO's ``LineEx`` on a payment line linked to a document: a JAXB list of NameValue pairs
    naming the document (``txnId``), its open balance before this payment (``txnOpenBalance``, two
    decimals) and its number (``txnReferenceNumber``, when it has one).  The shape is the one in
    Intuit's Payment reference examples and in recorded sandbox payments."""
    pairs = [("txnId", txn_id), ("txnOpenBalance", f"{cents(open_balance):.2f}")]
    if target.get("DocNumber"):
        pairs.append(("txnReferenceNumber", str(target["DocNumber"])))
    return {
        "any": [
            {
                **NAME_VALUE,
                "value": {"Name": name, "Value": value},
                "nil": False,
                "globalScope": True,
                "typeSubstituted": False,
            }
            for name, value in pairs
        ]
    }


def _build_payment(
    co: Company, body: Entity, stored: Entity | None, sparse: bool, now: datetime
) -> tuple[Entity, dict[tuple[str, str], Decimal]]:
    doc, sent_lines = _sent_doc(body, stored, READ_ONLY | PAYMENT_COMPUTED | {"Line"}, sparse=sparse)

    customer = require_ref(co, doc, "CustomerRef", "Customer", required=True)
    assert customer is not None
    doc["CustomerRef"] = display_ref(customer, "DisplayName")
    if doc.get("TotalAmt") is None:
        raise faults.required_param("TotalAmt", "Payment")
    total = money(doc["TotalAmt"], "TotalAmt")
    if total < 0:
        raise faults.invalid_field("TotalAmt", "TotalAmt cannot be negative")
    doc["TotalAmt"] = number(total)
    if doc.get("TxnDate") in (None, ""):
        doc["TxnDate"] = stored["TxnDate"] if stored is not None else _today(co, now)
    _parse_date(doc["TxnDate"], "TxnDate")
    doc["CurrencyRef"] = _currency(co, doc)
    deposit = _deposit_account(co, doc)
    if deposit is not None:
        doc["DepositToAccountRef"] = deposit
    ar_account = require_ref(co, doc, "ARAccountRef", "Account")
    if ar_account is not None:
        doc["ARAccountRef"] = display_ref(ar_account)
    method = require_ref(co, doc, "PaymentMethodRef", "PaymentMethod")
    if method is not None:
        doc["PaymentMethodRef"] = display_ref(method, "Name")
    if doc.get("PaymentRefNum") is not None and len(str(doc["PaymentRefNum"])) > DOC_NUMBER_MAX:
        raise faults.invalid_field(
            "PaymentRefNum", f"PaymentRefNum is longer than {DOC_NUMBER_MAX} characters"
        )
    doc.setdefault("ProcessPayment", False)

    lines, plan = _payment_lines(co, sent_lines, customer, stored)
    invoices = sum((a for (t, _), a in plan.items() if t == "Invoice"), ZERO)
    credits = sum((a for (t, _), a in plan.items() if t == "CreditMemo"), ZERO)
    if credits > invoices:
        raise faults.business_rule(
            f"Credits applied ({credits}) are more than the invoices paid in this payment ({invoices}).",
            "Line.Amount",
        )
    unapplied = total - invoices + credits
    if unapplied < 0:
        raise faults.business_rule(
            f"The amounts applied to invoices ({invoices}) are more than the payment's total "
            f"({total}) plus the credits used ({credits}).",
            "Line.Amount",
        )
    doc["Line"] = lines
    doc["UnappliedAmt"] = number(unapplied)
    return doc, plan


def _settle_targets(
    co: Company, keys: Iterable[tuple[str, str]], now: datetime, quiet: set[tuple[str, str]]
) -> None:
    """Bring the documents a payment touched up to date: Balance, LinkedTxn, SyncToken, journal."""
    for entity, entity_id in sorted(set(keys)):
        target = co.get(entity, entity_id)
        if target is None:
            continue
        before = (target.get("Balance"), target.get("RemainingCredit"), target.get("LinkedTxn"))
        _refresh_document(co, entity, target)
        after = (target.get("Balance"), target.get("RemainingCredit"), target.get("LinkedTxn"))
        if before != after and (entity, entity_id) not in quiet:
            co.replace(entity, target, now)


def _save_payment(
    co: Company,
    body: Entity,
    stored: Entity | None,
    *,
    sparse: bool,
    now: datetime,
    quiet: set[tuple[str, str]] | None = None,
) -> Entity:
    doc, plan = _build_payment(co, body, stored, sparse, now)
    old_plan = _payment_links(stored) if stored is not None else {}
    touched = set(plan) | set(old_plan)
    watch = _BalanceWatch(co)
    for entity, entity_id in touched:
        watch.watch(entity, entity_id)
    if stored is None:
        saved = co.insert("Payment", doc, now)
        watch.watch_new("Payment", saved["Id"])
    else:
        watch.watch("Payment", stored["Id"])
        new: Entity = {k: stored[k] for k in SERVER_OWNED if k in stored}
        new.update(doc)
        saved = co.replace("Payment", new, now)
    _settle_targets(co, touched, now, quiet or set())
    watch.settle()
    return saved


def _create_payment(co: Company, body: Entity, now: datetime) -> Entity:
    return _save_payment(co, body, None, sparse=False, now=now)


def _update_payment(co: Company, stored: Entity, body: Entity, sparse: bool, now: datetime) -> Entity:
    _refuse_if_voided(co, "Payment", stored)
    return _save_payment(co, body, stored, sparse=sparse, now=now)


def _delete_payment(co: Company, stored: Entity, body: Entity, now: datetime) -> Entity:
    del body
    touched = set(_payment_links(stored))
    watch = _BalanceWatch(co)
    watch.watch("Payment", stored["Id"])
    for entity, entity_id in touched:
        watch.watch(entity, entity_id)
    co.remove("Payment", stored["Id"], now)
    voided = _voided(co, "Payment")
    if stored["Id"] in voided:
        voided.remove(stored["Id"])
    _settle_targets(co, touched, now, set())
    watch.settle()
    return _deleted(stored["Id"])


def _void_payment(co: Company, stored: Entity, body: Entity, now: datetime) -> Entity:
    del body
    if is_voided(co, "Payment", stored["Id"]):
        return stored
    touched = set(_payment_links(stored))
    watch = _BalanceWatch(co)
    watch.watch("Payment", stored["Id"])
    for entity, entity_id in touched:
        watch.watch(entity, entity_id)
    new = copy.deepcopy(stored)
    for line in new.get("Line") or []:
        line["Amount"] = 0
    new["TotalAmt"] = 0
    new["UnappliedAmt"] = 0
    new["PrivateNote"] = _append_note(new.get("PrivateNote"), VOIDED_NOTE)
    saved = co.replace("Payment", new, now, operation="Void")
    _voided(co, "Payment").append(saved["Id"])
    _settle_targets(co, touched, now, set())
    watch.settle()
    return saved


# --- journal entries --------------------------------------------------------------------------

_ENTITY_TYPES = ("Customer", "Vendor", "Employee")


def _journal_line(co: Company, line: Any) -> tuple[str, Decimal, str, Entity]:
    """One journal line checked: its DetailType, amount, posting type and detail as QBO keeps it."""
    if not isinstance(line, dict):
        raise faults.invalid_field("Line", "Each line must be an object")
    kind = line.get("DetailType")
    if kind is None:
        raise faults.required_param("Line.DetailType", "Line")
    if kind != "JournalEntryLineDetail":
        raise faults.invalid_field("Line.DetailType", f"Unsupported DetailType {kind!r} for JournalEntry")
    detail = line.get("JournalEntryLineDetail")
    if not isinstance(detail, dict):
        raise faults.required_param("Line.JournalEntryLineDetail", "Line")
    amount = _line_amount(line, "journal")
    posting = detail.get("PostingType")
    if posting is None:
        raise faults.required_param("Line.JournalEntryLineDetail.PostingType", "Line")
    if posting not in ("Debit", "Credit"):
        raise faults.invalid_field(
            "Line.JournalEntryLineDetail.PostingType", "PostingType must be Debit or Credit"
        )
    account = require_ref(co, detail, "AccountRef", "Account", required=True)
    assert account is not None
    detail_out: Entity = dict(detail)
    detail_out["AccountRef"] = display_ref(account)
    party = detail.get("Entity")
    party_type = None
    if party is not None:
        if not isinstance(party, dict) or party.get("Type") not in _ENTITY_TYPES:
            raise faults.invalid_field(
                "Line.JournalEntryLineDetail.Entity.Type",
                "Entity.Type must be Customer, Vendor or Employee",
            )
        party_type = party["Type"]
        target = require_ref(co, party, "EntityRef", party_type, required=True)
        assert target is not None
        detail_out["Entity"] = {"Type": party_type, "EntityRef": display_ref(target, "DisplayName")}
    if account.get("AccountType") == "Accounts Receivable" and party_type != "Customer":
        raise faults.business_rule(
            "When you use Accounts Receivable, you must choose a customer in the Name field.",
            "Line.JournalEntryLineDetail.Entity",
        )
    if account.get("AccountType") == "Accounts Payable" and party_type != "Vendor":
        raise faults.business_rule(
            "When you use Accounts Payable, you must select a vendor in the Name field.",
            "Line.JournalEntryLineDetail.Entity",
        )
    return kind, amount, posting, detail_out


def _journal_lines(co: Company, sent: Any, old_lines: list[Entity]) -> tuple[list[Entity], Decimal]:
    if sent is not None and not isinstance(sent, list):
        raise faults.invalid_field("Line", "Line must be an array")
    if not sent:
        raise faults.required_param("Line", "JournalEntry")
    old_ids = {str(ln["Id"]) for ln in old_lines if ln.get("Id") is not None}
    next_id = max([int(i) for i in old_ids if i.isdigit()] + [-1]) + 1
    used: set[str] = set()
    lines: list[Entity] = []
    debits = credits = ZERO
    for line in sent:
        kind, amount, posting, detail_out = _journal_line(co, line)
        line_id = str(line["Id"]) if line.get("Id") is not None else None
        if line_id is None or line_id not in old_ids or line_id in used:
            line_id = str(next_id)
            next_id += 1
        used.add(line_id)
        out: Entity = {"Id": line_id}
        if line.get("Description") is not None:
            out["Description"] = line["Description"]
        out.update({"Amount": number(amount), "DetailType": kind, "JournalEntryLineDetail": detail_out})
        lines.append(out)
        if posting == "Debit":
            debits += amount
        else:
            credits += amount
    if debits != credits:
        raise faults.business_rule(
            f"Journal entry is out of balance: debits ({debits}) must equal credits ({credits}).",
            "Line",
        )
    return lines, debits


def _build_journal(co: Company, body: Entity, stored: Entity | None, sparse: bool, now: datetime) -> Entity:
    doc, sent_lines = _sent_doc(body, stored, READ_ONLY | JOURNAL_COMPUTED | {"Line"}, sparse=sparse)
    if doc.get("TxnDate") in (None, ""):
        doc["TxnDate"] = stored["TxnDate"] if stored is not None else _today(co, now)
    _parse_date(doc["TxnDate"], "TxnDate")
    if doc.get("DocNumber") is not None and len(str(doc["DocNumber"])) > DOC_NUMBER_MAX:
        raise faults.invalid_field(
            "DocNumber",
            "String length is either shorter or longer than supported by specification. "
            f"Min:0 Max:{DOC_NUMBER_MAX} supported. Supplied length:{len(str(doc['DocNumber']))}",
        )
    doc["CurrencyRef"] = _currency(co, doc)
    doc.setdefault("Adjustment", False)
    old_lines = list(stored.get("Line") or []) if stored is not None else []
    lines, total = _journal_lines(co, sent_lines, old_lines)
    doc["Line"] = lines
    doc["TotalAmt"] = number(total)
    return doc


def _create_journal(co: Company, body: Entity, now: datetime) -> Entity:
    doc = _build_journal(co, body, None, False, now)
    saved = co.insert("JournalEntry", doc, now)
    _shift_balances(co, _ar_effects(co, "JournalEntry", saved))
    return saved


def _update_journal(co: Company, stored: Entity, body: Entity, sparse: bool, now: datetime) -> Entity:
    doc = _build_journal(co, body, stored, sparse, now)
    watch = _BalanceWatch(co)
    watch.watch("JournalEntry", stored["Id"])
    new: Entity = {k: stored[k] for k in SERVER_OWNED if k in stored}
    new.update(doc)
    saved = co.replace("JournalEntry", new, now)
    watch.settle()
    return saved


def _delete_journal(co: Company, stored: Entity, body: Entity, now: datetime) -> Entity:
    del body
    watch = _BalanceWatch(co)
    watch.watch("JournalEntry", stored["Id"])
    co.remove("JournalEntry", stored["Id"], now)
    watch.settle()
    return _deleted(stored["Id"])


# --- seed -------------------------------------------------------------------------------------


# long: a seed of sample documents (four invoices and a payment), spelled out as a person would enter them
def seed_demo_transactions(co: Company, now: datetime) -> None:
    """A few open invoices and one payment for the US demo company (Craig's Design and Landscaping).

    Invoices 1001 (Cool Cars, part paid by payment "1055"), 1035 (Sonnenschein Family Store,
    362.07 with 8 % tax), 1036 (0969 Ocean View Road, a job of Freeman Sporting Goods) and 1037
    (Barnett Design, a job of Shara Barnett).  They go through the same rules as the API, so
    Balance, LinkedTxn and the customers' balances agree; like the rest of the seed they are the
    company's starting state, so nothing is journalled and no listener hears about them.

    A customer whose seeded Balance already equals what these documents leave open is taken to
    include them (the seed may copy Craig's recorded balances) and is not counted twice.  Nothing
    happens unless the company looks like that seed (US, the customers and items used below),
    and never twice on one company.
    """
    needed = {"Customer": ("3", "8", "23", "24"), "Item": ("2", "5", "6", "7", "16")}
    if co.country != "US" or co.settings.get("demo_transactions_seeded"):
        return
    if any(co.get(kind, i) is None for kind, ids in needed.items() for i in ids):
        return
    today = co.local(now).date()

    def day(offset: int) -> str:
        return (today - timedelta(days=offset)).isoformat()

    def sale(item: str, qty: str, price: str, code: str = "NON") -> Entity:
        return {
            "DetailType": "SalesItemLineDetail",
            # Plain JSON numbers, as a seed loaded from a file would hold.
            "Amount": number(cents(Decimal(qty) * Decimal(price))),
            "SalesItemLineDetail": {
                "ItemRef": {"value": item},
                "Qty": number(Decimal(qty)),
                "UnitPrice": number(Decimal(price)),
                "TaxCodeRef": {"value": code},
            },
        }

    plans: list[tuple[str, str, int, list[Entity]]] = [
        ("1001", "3", 45, [sale("7", "10", "50"), sale("2", "4", "30")]),
        ("1035", "24", 20, [sale("5", "1", "275", "TAX"), sale("16", "25", "2.41", "TAX")]),
        ("1036", "8", 12, [sale("6", "1", "477.50")]),
        ("1037", "23", 5, [sale("2", "9", "30.50")]),
    ]
    customers = {customer for _, customer, _, _ in plans}
    seeded = {c: _amount((co.get("Customer", c) or {}).get("Balance")) for c in customers}
    journal_mark = len(co.journal)
    listeners = list(co.listeners)
    co.listeners.clear()
    try:
        invoices: dict[str, Entity] = {}
        for doc_number, customer, age, lines in plans:
            body = {
                "CustomerRef": {"value": customer},
                "DocNumber": doc_number,
                "TxnDate": day(age),
                "Line": lines,
            }
            invoices[doc_number] = _insert_sales_doc(co, "Invoice", body, now, auto_apply=False)
        paid = invoices["1001"]
        _create_payment(
            co,
            {
                "CustomerRef": {"value": "3"},
                "TotalAmt": 200,
                "TxnDate": day(30),
                "PaymentRefNum": "1055",
                "Line": [{"Amount": 200, "LinkedTxn": [{"TxnId": paid["Id"], "TxnType": "Invoice"}]}],
            },
            now,
        )
    finally:
        del co.journal[journal_mark:]
        co.listeners.extend(listeners)
    for customer in customers:
        added = _amount((co.get("Customer", customer) or {}).get("Balance")) - seeded[customer]
        if added != 0 and seeded[customer] == added:
            _shift_balances(co, {customer: -added})
    co.settings["demo_transactions_seeded"] = True


def _register_seed_hook() -> None:
    """Join qbo_sandbox.seed's ``seed_transactions_hook`` list when the seed module offers one."""
    try:
        from qbo_sandbox import seed
    except ImportError:  # pragma: no cover - the seed module is part of the package
        return
    hooks = getattr(seed, "seed_transactions_hook", None)
    if isinstance(hooks, list) and seed_demo_transactions not in hooks:
        hooks.append(seed_demo_transactions)


# --- rules ------------------------------------------------------------------------------------


def _sales_rules(entity: str) -> EntityRules:
    """Invoice and CreditMemo: one set of sales-form rules, each bound to its entity."""
    return EntityRules(
        entity,
        name_list=False,
        cdc=True,
        create=_create_sales(entity),
        update=_update_sales(entity),
        delete=_delete_sales(entity),
        void=_void_sales(entity),
    )


TRANSACTION_RULES: dict[str, EntityRules] = {
    "Invoice": _sales_rules("Invoice"),
    "CreditMemo": _sales_rules("CreditMemo"),
    "Payment": EntityRules(
        "Payment",
        name_list=False,
        cdc=True,
        create=_create_payment,
        update=_update_payment,
        delete=_delete_payment,
        void=_void_payment,
    ),
    "JournalEntry": EntityRules(
        "JournalEntry",
        name_list=False,
        cdc=True,
        create=_create_journal,
        update=_update_journal,
        delete=_delete_journal,
    ),
}

_register_seed_hook()
