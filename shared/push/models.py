"""The host app's documents as the tenant API accepts them, and the tenant's push settings.

Contracts: docs/push.md ("The app's documents").  Every model is frozen and refuses unknown fields.

Numbers.  Money is ``Decimal`` with at most 2 decimal places (stored quantised to the cent);
quantities and rates are ``Decimal`` with at most 6.  Accepted inputs are ``Decimal`` (what
``json.loads(body, parse_float=Decimal)`` produces for a JSON number with a fraction), ``int`` and
decimal strings such as ``"10.50"``.  A Python ``float`` is refused in Python-mode validation: by
the time a value is a float it may already differ from what the app sent.  ``bool`` is refused
everywhere (``True`` is not 1 euro).  With ``model_validate_json`` pydantic hands numbers over as
floats; those are accepted and read back through their shortest representation, which reproduces
the JSON text exactly for every value within the limits below (at most 15 significant digits).

Cross-field rules (a line's amount against quantity × rate, a document's total against its lines,
a payment's applications against its amount) are reported together, each naming its own field, by
:func:`validation_problems`.  Which tax field a line must carry (``taxable`` in the US, ``tax_id``
elsewhere) depends on the company, so it is checked by ``shared.push.readiness``; so is whether
a document's ``tax_lines`` name rates of the QBO tax codes its taxes are mapped to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

CENT = Decimal("0.01")
MONEY_PLACES = 2
QUANTITY_PLACES = 6
MONEY_LIMIT = Decimal(10) ** 12  # exclusive: 999,999,999,999.99 is the largest amount
QUANTITY_LIMIT = Decimal(10) ** 9  # exclusive, for quantities and rates
DOC_NUMBER_MAX = 21  # QBO's DocNumber limit
PAYMENT_REFERENCE_MAX = 21  # QBO's PaymentRefNum limit
PRIVATE_NOTE_MAX = 4000
MEMO_MAX = 3900  # PrivateNote also carries the marker (see shared.mapping.markers.marker)
DESCRIPTION_MAX = 4000
DISPLAY_NAME_MAX = 500
MAX_LINES = 1000
MAX_TAX_LINES = 1000
MAX_APPLICATIONS = 1000

APP_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
QBO_ID_PATTERN = r"^[0-9]{1,32}$"
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

LineKind = Literal["work", "expense"]
PostingMode = Literal["full", "summarised"]

# The error type of a model's cross-field rules; ``ctx["problems"]`` holds (field, message) pairs.
DOCUMENT_RULES_ERROR = "document_rules"


def round_half_up(value: Decimal, places: int = MONEY_PLACES) -> Decimal:
    """``value`` rounded to ``places`` decimals, halves away from zero (QBO's rule for amounts)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


# --- field types ------------------------------------------------------------------------------


def _to_decimal(value: Any, info: ValidationInfo) -> Decimal:
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_type", "must be a number, not a boolean")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if info.mode != "json":
            raise PydanticCustomError(
                "decimal_type",
                "must be a Decimal, an integer or a decimal string, not a float "
                "(parse JSON with parse_float=Decimal)",
            )
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise PydanticCustomError("decimal_parsing", "must be a decimal number such as 12.50")
        number = Decimal(text)
    else:
        raise PydanticCustomError("decimal_type", "must be a number")
    if not number.is_finite():
        raise PydanticCustomError("decimal_finite", "must be a finite number")
    return number


def _decimal_checker(places: int, limit: Decimal, *, quantise: bool) -> Any:
    def check(value: Any, info: ValidationInfo) -> Decimal:
        number = _to_decimal(value, info)
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)  # finite numbers have an integer exponent
        if exponent < -places:
            raise PydanticCustomError("decimal_places", f"must have at most {places} decimal places")
        if abs(number) >= limit:
            raise PydanticCustomError("decimal_limit", f"must be smaller than {limit:,} in magnitude")
        return number.quantize(Decimal(1).scaleb(-places)) if quantise else number

    return check


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise PydanticCustomError("date_type", "must be a date (yyyy-mm-dd), not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError("date_parsing", "must be a date as yyyy-mm-dd")


def _to_email(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not _EMAIL.fullmatch(text):
            raise PydanticCustomError("email", "must be an e-mail address")
        return text
    return value


Money = Annotated[Decimal, BeforeValidator(_decimal_checker(MONEY_PLACES, MONEY_LIMIT, quantise=True))]
"""An amount of money: at most 2 decimal places, stored to the cent ("10.5" → Decimal("10.50"))."""
Quantity = Annotated[
    Decimal, BeforeValidator(_decimal_checker(QUANTITY_PLACES, QUANTITY_LIMIT, quantise=False))
]
"""A quantity or unit rate: at most 6 decimal places, kept as given."""
Day = Annotated[date, BeforeValidator(_to_date)]
AppId = Annotated[str, StringConstraints(pattern=APP_ID_PATTERN)]
QboId = Annotated[str, StringConstraints(pattern=QBO_ID_PATTERN)]
Version = Annotated[int, Field(strict=True, ge=1)]
Email = Annotated[str, BeforeValidator(_to_email), StringConstraints(max_length=100)]


Text30 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
Text64 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text255 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Memo = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MEMO_MAX)]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=DESCRIPTION_MAX)
]
DocNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=DOC_NUMBER_MAX)]
PaymentReference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=PAYMENT_REFERENCE_MAX)
]


def _rules_error(problems: list[tuple[str, str]]) -> PydanticCustomError:
    message = "; ".join(f"{field}: {text}" for field, text in problems)
    return PydanticCustomError(DOCUMENT_RULES_ERROR, message, {"problems": tuple(problems)})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- clients ----------------------------------------------------------------------------------


class AppAddress(_Frozen):
    line1: Text500 | None = None
    line2: Text500 | None = None
    line3: Text500 | None = None
    city: Text255 | None = None
    region: Text255 | None = None
    postal_code: Text30 | None = None
    country: Text255 | None = None


class AppClient(_Frozen):
    """A client or contact of the app; with ``parent_id`` a site/matter (a QBO sub-customer)."""

    id: AppId
    version: Version
    type: Text64
    company_name: Text100 | None = None
    first_name: Text100 | None = None
    last_name: Text100 | None = None
    display_name: Text500 | None = None
    email: Email | None = None
    phone: Text30 | None = None
    mobile: Text30 | None = None
    billing_address: AppAddress | None = None
    shipping_address: AppAddress | None = None
    parent_id: AppId | None = None
    active: StrictBool = True
    tax_exempt: StrictBool = False

    @model_validator(mode="after")
    def _rules(self) -> AppClient:
        problems: list[tuple[str, str]] = []
        if not (self.display_name or self.company_name or self.first_name or self.last_name):
            problems.append(
                ("display_name", "a client needs a display_name, a company_name or a person's name")
            )
        if self.parent_id is not None and self.parent_id == self.id:
            problems.append(("parent_id", "a client cannot be its own parent"))
        if problems:
            raise _rules_error(problems)
        return self


# --- sales documents --------------------------------------------------------------------------


class AppInvoiceLine(_Frozen):
    """One line of an invoice or credit memo.

    ``amount`` is what QBO will show; when both ``quantity`` and ``rate`` are given it must equal
    their product rounded half up to the cent (QBO refuses anything else with 6070).  A line
    carries ``taxable`` (US companies) or ``tax_id`` (an app tax id, other countries), not both.
    """

    line_id: AppId
    kind: LineKind
    code: AppId
    description: Description | None = None
    quantity: Quantity | None = None
    rate: Quantity | None = None
    amount: Money
    taxable: StrictBool | None = None
    tax_id: AppId | None = None

    @model_validator(mode="after")
    def _rules(self) -> AppInvoiceLine:
        problems: list[tuple[str, str]] = []
        if self.quantity is not None and self.rate is not None:
            expected = round_half_up(self.quantity * self.rate)
            if expected != self.amount:
                problems.append(
                    (
                        "amount",
                        f"must equal quantity × rate rounded half up to the cent: "
                        f"{self.quantity} × {self.rate} = {expected}, not {self.amount}",
                    )
                )
        if self.taxable is not None and self.tax_id is not None:
            problems.append(
                ("tax_id", "a line carries taxable (US companies) or tax_id (other countries), not both")
            )
        if problems:
            raise _rules_error(problems)
        return self


AppCreditMemoLine = AppInvoiceLine


class AppTaxLine(_Frozen):
    """The app's tax at one rate of one of its taxes, on an invoice or credit memo (non-US).

    A tax of the app may be made of several rates owed to different agencies (GST/PST BC: 5 % to
    the Canada Revenue Agency, 7 % to the province).  ``tax_id`` is the tax as the lines carry it;
    ``percent`` the rate of one of its components, which picks the QBO TaxRate among the sales
    rates of the tax code the tax is mapped to; ``amount`` what the app charged at that rate
    (negative when the document's credit lines at that rate outweigh its charges);
    ``taxable_amount`` the net it was charged on, when the app knows it.
    """

    tax_id: AppId
    percent: Annotated[Quantity, Field(ge=0)]
    amount: Money
    taxable_amount: Money | None = None


class _SalesDocument(_Frozen):
    id: AppId
    version: Version
    number: DocNumber
    date: Day
    client_id: AppId
    lines: Annotated[tuple[AppInvoiceLine, ...], Field(min_length=1, max_length=MAX_LINES)]
    tax_total: Money = Decimal("0.00")
    # The app's tax per rate; empty (older documents) sends tax_total alone (docs/push.md).
    tax_lines: Annotated[tuple[AppTaxLine, ...], Field(max_length=MAX_TAX_LINES)] = ()
    total: Money
    memo: Memo | None = None
    voided: StrictBool = False

    def _sales_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for index, line in enumerate(self.lines):
            if line.line_id in seen:
                problems.append((f"lines[{index}].line_id", f"line_id {line.line_id!r} is not unique"))
            seen.add(line.line_id)
        subtotal = sum((line.amount for line in self.lines), Decimal("0.00"))
        if self.total != subtotal + self.tax_total:
            problems.append(
                (
                    "total",
                    f"must equal the sum of the line amounts plus tax_total: "
                    f"{subtotal} + {self.tax_total} = {subtotal + self.tax_total}, not {self.total}",
                )
            )
        if self.total < 0:
            problems.append(("total", "cannot be negative (QBO refuses documents with a negative total)"))
        if self.tax_lines:
            problems.extend(self._tax_line_problems())
        return problems

    def _tax_line_problems(self) -> list[tuple[str, str]]:
        """The breakdown must be the whole of ``tax_total``, say each rate of a tax once (QBO takes
        one amount per rate), and only name taxes the lines use (a rate is a rate of a line's code)."""
        problems: list[tuple[str, str]] = []
        used = {line.tax_id for line in self.lines if line.tax_id is not None}
        seen: set[tuple[str, Decimal]] = set()
        for index, tax_line in enumerate(self.tax_lines):
            key = (tax_line.tax_id, tax_line.percent)  # Decimals hash by value: 5 and 5.0 are one key
            if key in seen:
                problems.append(
                    (
                        f"tax_lines[{index}]",
                        f"tax {tax_line.tax_id!r} at {tax_line.percent} % is given more than once",
                    )
                )
            seen.add(key)
            if tax_line.tax_id not in used:
                problems.append((f"tax_lines[{index}].tax_id", f"no line carries tax_id {tax_line.tax_id!r}"))
        taxed = sum((tax_line.amount for tax_line in self.tax_lines), Decimal("0.00"))
        if taxed != self.tax_total:
            problems.append(
                ("tax_lines", f"the amounts must add up to tax_total: {taxed}, not {self.tax_total}")
            )
        return problems


class AppInvoice(_SalesDocument):
    """An invoice of the app (→ QBO Invoice; ``number`` → DocNumber)."""

    due_date: Day | None = None

    @model_validator(mode="after")
    def _rules(self) -> AppInvoice:
        problems = self._sales_problems()
        if self.due_date is not None and self.due_date < self.date:
            problems.append(("due_date", "cannot be before the invoice date"))
        if problems:
            raise _rules_error(problems)
        return self


class AppApplication(_Frozen):
    """How much of a payment or a credit memo goes to one invoice."""

    invoice_id: AppId
    amount: Annotated[Money, Field(gt=0)]


AppPaymentApplication = AppApplication
AppCreditMemoApplication = AppApplication


def _application_problems(
    applications: tuple[AppApplication, ...], available: Decimal, what: str
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, application in enumerate(applications):
        if application.invoice_id in seen:
            problems.append(
                (
                    f"applications[{index}].invoice_id",
                    f"invoice {application.invoice_id!r} is applied more than once",
                )
            )
        seen.add(application.invoice_id)
    applied = sum((a.amount for a in applications), Decimal("0.00"))
    if applied > available:
        problems.append(("applications", f"apply {applied} in total, more than the {what} {available}"))
    return problems


class AppCreditMemo(_SalesDocument):
    """A credit note of the app (→ QBO CreditMemo).

    ``applications``: the invoices it pays and how much; QBO Link applies it in QBO as QBO itself
    does, with a zero-amount Payment linking the invoices and the credit memo (docs/push.md, "Credit
    memos").  Empty: the credit stays open on the customer — and a company that applies credits
    automatically spends it on the customer's next invoice by itself.
    """

    applications: Annotated[tuple[AppCreditMemoApplication, ...], Field(max_length=MAX_APPLICATIONS)] = ()

    @model_validator(mode="after")
    def _rules(self) -> AppCreditMemo:
        problems = self._sales_problems()
        problems += _application_problems(self.applications, self.total, "credit memo's total")
        if problems:
            raise _rules_error(problems)
        return self


class AppCreditApplication(_Frozen):
    """What QBO Link derives from a credit memo that names ``applications``: a posting-log document
    of its own (kind ``credit_application``, the memo's id and version) → a zero-amount QBO Payment.

    ``voided``: the memo was voided; a memo whose applications were removed keeps this document with
    no applications, which takes the applications back out of QBO (the Payment is voided).
    """

    id: AppId
    version: Version
    client_id: AppId
    date: Day
    applications: Annotated[tuple[AppCreditMemoApplication, ...], Field(max_length=MAX_APPLICATIONS)] = ()
    voided: StrictBool = False

    @classmethod
    def of(cls, memo: AppCreditMemo) -> AppCreditApplication:
        return cls(
            id=memo.id,
            version=memo.version,
            client_id=memo.client_id,
            date=memo.date,
            applications=memo.applications,
            voided=memo.voided,
        )

    @property
    def total(self) -> Decimal:
        return sum((a.amount for a in self.applications), Decimal("0.00"))

    @property
    def withdrawn(self) -> bool:
        """Nothing to apply any more: the memo was voided, or its applications were removed."""
        return self.voided or not self.applications


# --- payments ---------------------------------------------------------------------------------


class AppPayment(_Frozen):
    """A payment received by the app, applied to the invoices it pays (→ QBO Payment)."""

    id: AppId
    version: Version
    client_id: AppId
    date: Day
    amount: Annotated[Money, Field(ge=0)]
    method: Text100 | None = None
    reference: PaymentReference | None = None
    applications: Annotated[tuple[AppPaymentApplication, ...], Field(max_length=MAX_APPLICATIONS)] = ()
    voided: StrictBool = False

    @model_validator(mode="after")
    def _rules(self) -> AppPayment:
        problems = _application_problems(self.applications, self.amount, "payment's amount")
        if problems:
            raise _rules_error(problems)
        return self


# --- tenant settings --------------------------------------------------------------------------


class TenantSettings(_Frozen):
    """What a tenant pushes and how.  Account and customer ids are QBO ids.

    ``client_types`` empty means every type syncs.  ``deposit_account_id`` None means Undeposited
    Funds.  ``revenue_account_id`` None means each item's own income account.
    """

    push_invoices: StrictBool = True
    push_payments: StrictBool = True
    push_credits: StrictBool = True
    client_types: frozenset[Text64] = frozenset()
    go_live_date: Day | None = None
    auto_create_customers: StrictBool = False
    posting_mode: PostingMode = "full"
    master_customer_id: QboId | None = None
    revenue_account_id: QboId | None = None
    deposit_account_id: QboId | None = None
    propagate_deletes: StrictBool = False

    @model_validator(mode="after")
    def _rules(self) -> TenantSettings:
        if self.posting_mode == "summarised" and self.master_customer_id is None:
            raise _rules_error([("master_customer_id", "is required when posting_mode is summarised")])
        return self

    def patched(self, patch: Mapping[str, Any]) -> TenantSettings:
        """These settings with a JSON merge patch applied (RFC 7386), validated as a whole PUT is:
        a key given replaces the setting, ``null`` resets it to its default, a key not given stays.
        Raises pydantic's ``ValidationError`` (``validation_problems`` names each field); a key
        that is no setting is refused even with ``null``, where RFC 7386 would let it pass."""
        merged = merge_patch(self.model_dump(mode="json"), patch)
        for key in patch:
            if key not in type(self).model_fields:
                merged[key] = patch[key]  # kept, so the validation names it as an unknown key
        return type(self).model_validate(merged)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386's MergePatch of a JSON object: ``null`` removes a member, an object is merged
    member by member, anything else replaces the member."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            current = merged.get(key)
            merged[key] = merge_patch(current if isinstance(current, Mapping) else {}, value)
        else:
            merged[key] = value
    return merged


# --- problems for the API ---------------------------------------------------------------------


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _join(prefix: str, field: str) -> str:
    if not prefix:
        return field
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


def validation_problems(exc: ValidationError) -> list[dict[str, str]]:
    """Every offending field of a failed validation as ``{"field", "message"}``, in input order.

    Fields are written as paths (``lines[2].amount``); a model's cross-field rules are split so
    each names its own field.
    """
    problems: list[dict[str, str]] = []
    errors = exc.errors(include_url=False)
    nested = {tuple(e["loc"][:depth]) for e in errors for depth in range(len(e["loc"]))}
    for error in errors:
        if error["type"] == "too_short" and tuple(error["loc"]) in nested:
            continue  # pydantic counts only the items that validated: the items' errors say it all
        prefix = _field_path(tuple(error["loc"]))
        ctx = error.get("ctx") or {}
        if error["type"] == DOCUMENT_RULES_ERROR and "problems" in ctx:
            for field, message in ctx["problems"]:
                problems.append({"field": _join(prefix, field), "message": message})
            continue
        problems.append({"field": prefix or "(body)", "message": error["msg"]})
    return problems
