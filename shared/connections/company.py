"""The company facts QBO Link keeps of a connected company: read from its CompanyInfo and
Preferences at connect time (``company_record``), kept in step when its Preferences change
(``CompanyPreferences``), and what the firm should change in it (``company_warnings``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shared.connections.store import CompanyRecord, ConnectionStore, TaxModel
from shared.kernel.observability import logger

# fmt: off
_MONTHS: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
# fmt: on


# --- company facts --------------------------------------------------------------------------------


def _month_number(value: Any) -> int | None:
    if isinstance(value, str) and value.capitalize() in _MONTHS:
        return _MONTHS.index(value.capitalize()) + 1
    return None


def _section(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = body.get(name)
    return value if isinstance(value, Mapping) else {}


def company_record(info: Mapping[str, Any], preferences: Mapping[str, Any]) -> CompanyRecord:
    """What QBO Link keeps of a company, from its CompanyInfo and Preferences entities.

    Tax model: a US company with automated sales tax (``PartnerTaxEnabled``) lets QBO compute the
    tax (``us_automated``); any other US company sends a transaction-level code (``us_manual``);
    everywhere else VAT/GST codes go on every line (``per_line``).
    """
    country = str(info.get("Country") or "").upper()
    partner_tax = _section(preferences, "TaxPrefs").get("PartnerTaxEnabled") is True
    us_model: TaxModel = "us_automated" if partner_tax else "us_manual"
    tax_model: TaxModel = us_model if country == "US" else "per_line"
    currency = _section(_section(preferences, "CurrencyPrefs"), "HomeCurrency").get("value")
    month = _month_number(info.get("FiscalYearStartMonth"))
    if month is None:
        month = _month_number(_section(preferences, "AccountingInfoPrefs").get("FirstMonthOfFiscalYear"))
    name = info.get("CompanyName")
    legal_name = info.get("LegalName") or name
    return CompanyRecord(
        name=str(name) if name else None,
        legal_name=str(legal_name) if legal_name else None,
        country=country or None,
        currency=str(currency) if currency else None,
        tax_model=tax_model,
        fiscal_year_start_month=month,
        auto_apply_credit=auto_apply_credit(preferences),
    )


def auto_apply_credit(preferences: Mapping[str, Any]) -> bool | None:
    """``SalesFormsPrefs.AutoApplyCredit`` of a Preferences entity (None when QBO does not say)."""
    value = _section(preferences, "SalesFormsPrefs").get("AutoApplyCredit")
    return value if isinstance(value, bool) else None


AUTO_APPLY_CREDIT_WARNING: Final = {
    "code": "auto_apply_credit_on",
    "message": (
        "QuickBooks applies open credits to new invoices by itself (Account and settings > Sales > "
        "Automatically apply credits is on). Credits can then land on other invoices than the app "
        "says, and payments the app applies are posted only for what is left open. Turn it off in "
        "QuickBooks so credit memos are applied as the app says."
    ),
}


class CompanyPreferences:
    """Keeps the connection's company record in step with QBO's Preferences after the connect (the
    change worker hands it a fresh Preferences entity when QBO says they changed)."""

    def __init__(self, store: ConnectionStore) -> None:
        self._store = store

    def preferences_changed(self, tenant_id: str, preferences: Mapping[str, Any]) -> bool:
        """Store what changed; True when something did."""
        current = self._store.get(tenant_id)
        if current is None or current.company is None:
            return False
        wanted = auto_apply_credit(preferences)
        if wanted is None or wanted == current.company.auto_apply_credit:
            return False
        self._store.update_company(
            tenant_id, current.company.model_copy(update={"auto_apply_credit": wanted})
        )
        logger.info("company preferences changed", tenant_id=tenant_id, auto_apply_credit=wanted)
        return True


def company_warnings(company: CompanyRecord | None) -> list[dict[str, str]]:
    """What the firm should change in its QuickBooks company for the sync to follow the app."""
    if company is not None and company.auto_apply_credit:
        return [dict(AUTO_APPLY_CREDIT_WARNING)]
    return []
