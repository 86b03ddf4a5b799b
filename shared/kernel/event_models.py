"""The detail of every event QBO Link emits, one pydantic model per event and emitting area.

``shared.kernel.events`` is the catalogue: each detail-type, the areas that emit it, when, and the
name of the model of its detail here.  Every emission site builds its detail through its model
(``make_event`` takes the model, and refuses one of another event), so a misspelt or missing
field fails where it is built, in mypy and in the tests.  The JSON Schema files under
``docs/events/schemas/`` are generated from these models (``json_schemas``, written by
``scripts/event_schemas.py``; ``tests/unit/test_event_schemas.py`` fails on drift).

Its own module, apart from the catalogue: building some thirty pydantic models is what importing
them costs, and a handler's import does not pay for it; an emission site imports this module when
it builds an event (docs/packaging.md, "Cold start").

The rules every detail follows (docs/events.md):

- field names are snake_case, at every depth;
- ``version`` is the schema version of that event: 1 now.  A change a consumer of the current
  version can ignore (a new field, a new value of an open string) keeps it; a breaking one (a field
  removed, renamed or retyped, a new value of an enum, a nullable field becoming absent) bumps it,
  and only for that event;
- a nullable field is present with null, never left out;
- ``tenant_id`` and ``event_id`` are on every detail: ``OutboundEvent.body`` adds them to the
  model's fields (they are not in the models, since the id derives from the fact when the event is
  made); ``wire_model`` gives the model of the whole detail, with them.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema, create_model

from shared.kernel.events import CATALOGUE, Area, DetailType

# --- value types ----------------------------------------------------------------------------------


def _instant(value: str) -> str:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("an instant carries its offset")
    return value


Instant = Annotated[
    str,
    AfterValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""One of QBO Link's own instants: ISO 8601 with its offset (UTC), e.g. 2026-03-02T14:05:09.123456+00:00."""

QboTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""A time as QBO sent it (``LastUpdatedTime``, with the company's offset)."""

QboDate = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]

Amount = Annotated[str, Field(pattern=r"^-?[0-9]+\.[0-9]{2,}$")]
"""An exact decimal string with at least two decimals ("40.10"); never rounded."""

Counts = dict[str, Annotated[int, Field(ge=0)]]

HealthValue = Literal["healthy", "refresh_failing", "needs_reconnect", "revoked", "disconnected"]
HealthReasonValue = Literal[
    "connected",
    "refreshed",
    "refresh_failed",
    "invalid_client",
    "invalid_grant",
    "revoked_by_user",
    "disconnected_by_tenant",
    "reconnected",
]
DocumentKind = Literal["client", "invoice", "payment", "credit_memo", "credit_application"]
PartyKind = Literal["client", "site"]


class Detail(BaseModel):
    """A detail's fields (the envelope's ``tenant_id`` and ``event_id`` aside).  Every concrete
    event model declares its own ``version: Literal[n] = n``, where a bump is made."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class _Part(BaseModel):
    """A nested object of a detail."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


# --- connection (shared.connections) --------------------------------------------------------------


class ConnectionConnected(Detail):
    version: Literal[1] = 1
    realm_id: str
    company_name: str | None
    country: str | None = Field(description="ISO 3166 alpha-2")
    currency: str | None = Field(description="ISO 4217")
    tax_model: Literal["us_automated", "us_manual", "per_line"] | None
    reconnected: bool = Field(description="the tenant was connected to this realm before")
    connected_at: Instant


class ConnectionDisconnected(Detail):
    version: Literal[1] = 1
    realm_id: str
    keep_mappings: bool
    disconnected_at: Instant = Field(description="whole seconds; a repeated disconnect gives the first's")


class ConnectionHealthChanged(Detail):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    version: Literal[1] = 1
    realm_id: str | None
    from_: HealthValue | None = Field(alias="from", description="the health before")
    to: HealthValue
    reason: HealthReasonValue
    changed_at: Instant
    description: str | None = Field(description="Intuit's error_description, when it sent one")
    intuit_tid: str | None = Field(description="Intuit's intuit_tid, when it sent one")


class ConnectionHardExpiryApproaching(Detail):
    version: Literal[1] = 1
    realm_id: str
    reason: Literal["hard_expiry_in_30_days", "hard_expiry_in_7_days"]
    threshold_days: Literal[30, 7]
    days_left: int = Field(ge=0)
    hard_expires_at: Instant
    reconnect_url: str


class OnboardingFinished(Detail):
    version: Literal[1] = 1
    realm_id: str
    connected_at: Instant = Field(description="the connection onboarded (its Connection Connected)")
    started_at: Instant
    finished_at: Instant
    read: Counts = Field(description="QBO entities read into the mapping cache, per kind (vendor too)")
    linked: Counts = Field(description="links the automatch made, per kind")
    unmatched: Counts = Field(description="active app entities left unlinked, per kind")


# --- mapping (shared.mapping.service: the match tabs' import) ------------------------------------


class TaxRate(_Part):
    id: str
    name: str
    percent: str = Field(description="a decimal string: 5 means 5 %")
    agency_id: str | None


class QboEntity(_Part):
    """The QBO entity as the mapping cache keeps it."""

    id: str
    name: str
    active: bool
    email: str | None
    type: str | None = Field(description="an account's AccountType, an item's Type")
    parent_id: str | None
    sync_token: str | None
    fully_qualified_name: str | None
    extra_names: list[str] = Field(description="other names it goes by")
    rates: list[TaxRate] | None = Field(description="a tax code's sales rates; else null")


class _Imported(Detail):
    origin: Literal["mapping"] = Field(
        default="mapping", description="a match tab imported it (the pull's Imported events say pull)"
    )
    app_id: str = Field(description="the new app id, qbo.<QBO id>")
    qbo_id: str
    entity: QboEntity


class _TopImported(_Imported):
    parent_app_id: None = None


class ClientImportedByMapping(_TopImported):
    version: Literal[1] = 1
    kind: Literal["client"] = "client"


class SiteImportedByMapping(_Imported):
    version: Literal[1] = 1
    kind: Literal["site"] = "site"
    parent_app_id: str = Field(description="the app id of the client its parent is linked to")


class EmployeeImported(_TopImported):
    version: Literal[1] = 1
    kind: Literal["employee"] = "employee"


class WorkCodeImported(_TopImported):
    version: Literal[1] = 1
    kind: Literal["work_code"] = "work_code"


class ExpenseCodeImported(_TopImported):
    version: Literal[1] = 1
    kind: Literal["expense_code"] = "expense_code"


class TaxImported(_TopImported):
    version: Literal[1] = 1
    kind: Literal["tax"] = "tax"


class AccountImported(_TopImported):
    version: Literal[1] = 1
    kind: Literal["account"] = "account"


# --- push (shared.push: the worker's outcomes) ----------------------------------------------------


class _Document(Detail):
    kind: DocumentKind
    app_id: str
    document_version: int = Field(ge=0, description="the app's version of the document")


class DocumentPosted(_Document):
    version: Literal[1] = 1
    qbo_id: str = Field(description="the QBO entity; a summarised invoice's: its day's journal entry")


class DocumentFailed(_Document):
    version: Literal[1] = 1
    error: str = Field(description="the reason, as the posting log keeps it")


class DocumentVoided(_Document):
    version: Literal[1] = 1
    qbo_id: str


# --- pull (shared.pull: the change worker and the sweep) ------------------------------------------


class Address(_Part):
    line1: str | None
    line2: str | None
    city: str | None
    country_sub_division_code: str | None
    postal_code: str | None
    country: str | None


class _Customer(Detail):
    qbo_id: str
    sync_token: str
    display_name: str | None
    company_name: str | None
    given_name: str | None
    family_name: str | None
    email: str | None
    phone: str | None
    bill_address: Address | None
    active: bool
    updated_at: QboTime | None


class ClientImportedByPull(_Customer):
    version: Literal[1] = 1
    origin: Literal["pull"] = Field(default="pull", description="the pull saw it in QBO, unlinked")
    client_id: None = None


class ClientChanged(_Customer):
    version: Literal[1] = 1
    client_id: str = Field(description="the app's id of the client")


class ClientDeactivated(_Customer):
    version: Literal[1] = 1
    client_id: str


class _Site(_Customer):
    parent_qbo_id: str | None
    parent_id: str | None = Field(description="the app id the parent is linked to, as a client or a site")
    parent_kind: PartyKind | None
    fully_qualified_name: str | None


class SiteImportedByPull(_Site):
    version: Literal[1] = 1
    origin: Literal["pull"] = Field(default="pull", description="the pull saw it in QBO, unlinked")
    site_id: None = None


class SiteChanged(_Site):
    version: Literal[1] = 1
    site_id: str = Field(description="the app's id of the site")


class ClientMergedInQbo(Detail):
    version: Literal[1] = 1
    kind: PartyKind
    app_id: str
    merged_qbo_id: str
    survivor_qbo_id: str
    relinked: bool
    survivor_linked_to: str | None = Field(
        description="the app id the survivor is linked to, when not relinked because of it"
    )


class InvoicePaid(_Part):
    invoice_id: str | None = Field(description="the app's invoice; null when QBO Link did not post it")
    qbo_invoice_id: str
    amount: Amount | None


class CreditUsed(_Part):
    credit_memo_id: str | None
    qbo_credit_memo_id: str
    amount: Amount | None


class _Payment(Detail):
    qbo_id: str
    sync_token: str
    client_id: str = Field(description="the app id of the client or site the customer is linked to")
    client_kind: PartyKind
    qbo_customer_id: str | None
    txn_date: QboDate | None
    updated_at: QboTime | None
    total: Amount | None


class _PaymentMade(_Payment):
    unapplied: Amount | None
    currency: str | None
    payment_ref_num: str | None
    payment_method: str | None = Field(description="its name")
    applied: list[InvoicePaid]


class PaymentReceived(_PaymentMade):
    version: Literal[1] = 1


class PaymentVoidedInQbo(_PaymentMade):
    version: Literal[1] = 1


class CreditAppliedInQbo(_Payment):
    version: Literal[1] = 1
    automatic: bool = Field(description="QBO's own automatic application of credits")
    credits: list[CreditUsed]
    applied: list[InvoicePaid]


class _Drift(Detail):
    app_id: str
    qbo_id: str
    change: Literal["changed", "voided", "deleted"]
    sync_token: str
    stored_sync_token: str | None = Field(description="the version QBO Link knew")
    doc_number: str | None
    total: Amount | None
    balance: Amount | None
    updated_at: QboTime | None


class InvoiceChangedInQbo(_Drift):
    version: Literal[1] = 1
    kind: Literal["invoice"] = "invoice"


class CreditMemoChangedInQbo(_Drift):
    version: Literal[1] = 1
    kind: Literal["credit_memo"] = "credit_memo"


class PaymentChangedInQbo(_Drift):
    version: Literal[1] = 1
    kind: Literal["payment"] = "payment"


class ExchangeFinished(Detail):
    version: Literal[1] = 1
    exchange_id: str
    realm_id: str | None
    source: Literal["webhook", "sweep"]
    started_at: Instant
    finished_at: Instant
    outcome: Literal["succeeded", "failed"]
    notices: int = Field(ge=0)
    reads: int = Field(ge=0)
    changes: int = Field(ge=0)
    echoes: int = Field(ge=0)
    coalesced: int = Field(ge=0)
    cache_refreshed: int = Field(ge=0)
    events: Counts = Field(description="events published, per detail-type")
    ignored: Counts = Field(description="changes ignored, per QBO entity or reason")
    read_for: Counts = Field(description="the notices that made it read QBO")
    trigger: str | None
    error: str | None


# --- the models of each event, and their JSON Schema ----------------------------------------------

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
EVENT_ID_PATTERN: Final = r"^[0-9a-f]{32}$"


def models_of(detail_type: DetailType) -> tuple[type[Detail], ...]:
    """The models of ``detail_type``'s detail, one per emitting area, in catalogue order."""
    return tuple(_model(emission.model) for emission in CATALOGUE[detail_type].emissions)


def model_of(detail_type: DetailType, area: Area) -> type[Detail]:
    """The model of ``detail_type``'s detail as ``area`` emits it."""
    [name] = [e.model for e in CATALOGUE[detail_type].emissions if e.area == area]
    return _model(name)


def _model(name: str) -> type[Detail]:
    found = globals().get(name)
    if not (isinstance(found, type) and issubclass(found, Detail)):
        raise LookupError(f"no event model {name!r} in {__name__}")
    return found


@cache
def wire_model(model: type[Detail]) -> type[Detail]:
    """``model`` with the envelope's fields: the whole detail as a subscriber receives it."""
    return create_model(
        model.__name__,
        __base__=model,
        __module__=__name__,
        tenant_id=(str, Field(min_length=1, description="the host app's tenant the event is about")),
        event_id=(
            str,
            Field(pattern=EVENT_ID_PATTERN, description="QBO Link's id of the fact: de-duplicate on it"),
        ),
    )


@cache
def detail_adapter(detail_type: DetailType) -> TypeAdapter[Any]:
    """Validates a whole detail of ``detail_type`` (with ``tenant_id`` and ``event_id``)."""
    models = [wire_model(m) for m in models_of(detail_type)]
    if len(models) == 1:
        return TypeAdapter(models[0])
    union: Any = Annotated[_union(models), Field(discriminator="origin")]
    return TypeAdapter(union)


def _union(models: list[type[Detail]]) -> Any:
    found: Any = models[0]
    for model in models[1:]:
        found = found | model
    return found


def slug(detail_type: str) -> str:
    """The schema file's name: "Client Merged In QBO" -> client-merged-in-qbo."""
    return "-".join(detail_type.lower().split())


def json_schema(detail_type: DetailType) -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``detail_type``'s detail, titled with the detail-type and
    described with when it is emitted (each shape with its own, for an event of two areas)."""
    body = _untitled(detail_adapter(detail_type).json_schema(mode="serialization"))
    emissions = CATALOGUE[detail_type].emissions
    for emission in emissions if len(emissions) > 1 else ():
        body["$defs"][emission.model]["description"] = f"{emission.area}: {emission.when}"
    head = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{slug(detail_type)}.json",
        "title": detail_type,
        "description": "; or ".join(e.when for e in emissions),
    }
    return {**head, **{k: v for k, v in body.items() if k not in ("title", "description")}}


def _untitled(schema: Any) -> Any:
    """``schema`` without the titles pydantic makes of field names ("Realm Id"): noise in a file
    read by people; the models' titles stay."""
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    found = {key: _untitled(value) for key, value in schema.items()}
    if isinstance(found.get("properties"), dict):
        found["properties"] = {
            name: {k: v for k, v in spec.items() if k != "title"}
            for name, spec in found["properties"].items()
        }
    return found


def json_schemas() -> dict[str, str]:
    """Every event's schema file, by file name, as ``scripts/event_schemas.py`` writes it."""
    return {
        f"{slug(detail_type)}.json": json.dumps(json_schema(detail_type), indent=2, sort_keys=True) + "\n"
        for detail_type in CATALOGUE
    }
