"""Models of the answers the push routes build by hand, and of the bulk request: what the OpenAPI
document says of them (``functions.api.openapi``), and what tests hold real answers to (every model
forbids unknown fields, so an answer that gains a field the document lacks fails a test).

Imported by the document's builder and by tests, never on a request's path.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.mapping.catalog import AppEntity, QboEntity
from shared.mapping.links import Link
from shared.push.bulk import MAX_BULK_ITEMS
from shared.push.models import AppClient, AppCreditMemo, AppInvoice, AppPayment, TenantSettings
from shared.push.posting_rules import Attempt, PostingFault


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonAnswer(_Answer):
    code: str = Field(description="A stable code (no_customer_mapping, ...): docs/push.md.")
    details: dict[str, Any] = Field(description="What the code is about (ids, names, amounts).")


class UpsertAnswer(_Answer):
    status: Literal["accepted", "ignored"] = Field(
        description="accepted (202): this version is logged; ignored (200): an older or equal version."
    )
    kind: str
    id: str = Field(description="The app's id of the document.")
    version: int = Field(description="The version now held (the given one when accepted).")
    state: str | None = Field(description="The posting state: queued, needs_attention, posted, ...")
    reasons: list[ReasonAnswer] = Field(description="Why it waits, when it does.")


class BulkItem(_Answer):
    kind: Literal["client", "invoice", "payment", "credit_memo"]
    document: AppClient | AppInvoice | AppPayment | AppCreditMemo = Field(
        description="The document, exactly as its own PUT route takes it."
    )


class BulkRequest(_Answer):
    documents: list[BulkItem] = Field(
        min_length=1,
        max_length=MAX_BULK_ITEMS,
        description="Any mix of kinds and order: taken clients first, then invoices and credit memos, "
        "then payments. Each item is validated on its own.",
    )


class ProblemAnswer(_Answer):
    field: str
    message: str


class BulkResult(_Answer):
    index: int = Field(description="The item's place in the request.")
    kind: str
    id: str | None
    status: Literal["accepted", "ignored", "refused"]
    version: int | None = None
    state: str | None = None
    reasons: list[ReasonAnswer] = Field(default_factory=list)
    problems: list[ProblemAnswer] = Field(default_factory=list, description="Why it was refused.")


class BulkAnswer(_Answer):
    job_id: str | None = Field(description="Follow the documents taken here; null when all were refused.")
    status_url: str | None
    accepted: int
    ignored: int
    refused: int
    results: list[BulkResult] = Field(description="One per item, in the request's order.")


class JobItemStatus(_Answer):
    index: int
    kind: str
    id: str
    version: int = Field(description="The version the bulk request carried.")
    state: str = Field(description="Its posting state now (unknown: no longer in the log).")
    superseded: bool = Field(description="A later version replaced the request's.")
    qbo_id: str | None
    last_error: dict[str, Any] | None
    reasons: list[ReasonAnswer]


class JobStatus(_Answer):
    job_id: str
    tenant_id: str
    created_at: str
    total: int
    by_state: dict[str, int]
    finished: bool = Field(
        description="No document still on its way (received, queued, in_flight, uncertain): each is "
        "posted, failed, skipped, voided or needs_attention."
    )
    items: list[JobItemStatus]


class ConsoleSessionAnswer(_Answer):
    token: str = Field(description="The session's bearer token: never log it, never put it in a query.")
    tenant_id: str
    expires_at: str = Field(description="ISO 8601, UTC: the token is refused from this instant.")
    path: str = Field(
        description="The console's path on this API with the tenant and the token in its fragment "
        "(/console/#tenant=<tenant>&session=<token>): append it to the API's URL."
    )


# PATCH .../settings: every setting optional, null resets it to its default (RFC 7386).
_PATCHED: dict[str, Any] = {
    name: (Optional[info.annotation], Field(default=None, description=info.description))  # noqa: UP045
    for name, info in TenantSettings.model_fields.items()
}
SettingsPatch = create_model(
    "SettingsPatch",
    __config__=ConfigDict(extra="forbid"),
    __doc__="A JSON merge patch of the settings: a key given replaces, null resets to the default.",
    **_PATCHED,
)


# --- the other answers: their fields, documented (``_Open``: a field added later is not a break) ---


class _Open(BaseModel):
    """An answer described field by field; one may gain fields within ``/v1`` (docs/api.md)."""

    model_config = ConfigDict(extra="allow")


Counts = dict[str, int]


class CompanyAnswer(_Open):
    name: str | None = None
    legal_name: str | None = None
    country: str | None = None
    currency: str | None = None
    tax_model: str | None = None
    fiscal_year_start_month: int | None = None
    auto_apply_credit: bool | None = None


class WarningAnswer(_Open):
    code: str
    message: str


class OnboardingAnswer(_Open):
    state: Literal["pending", "running", "finished", "failed"]
    started_at: str | None = None
    finished_at: str | None = None
    failed_at: str | None = None
    read: Counts | None = Field(default=None, description="QBO entities read, by kind.")
    linked: Counts | None = Field(default=None, description="Unambiguous matches linked, by kind.")
    unmatched: Counts | None = Field(default=None, description="App entities left unmatched, by kind.")
    error: str | None = None


class ConnectionStatus(_Open):
    tenant_id: str
    connected: bool = Field(description="Tokens held and usable.")
    realm_id: str | None
    company_name: str | None = None
    company: CompanyAnswer | None = None
    health: str | None = Field(
        default=None, description="healthy, refresh_failing, needs_reconnect, revoked, disconnected."
    )
    reason: str | None = None
    health_changed_at: str | None = None
    access_expires_at: str | None = None
    refresh_expires_at: str | None = None
    hard_expires_at: str | None = None
    hard_expires_in_days: int | None = None
    last_refresh_at: str | None = None
    last_success_at: str | None = None
    refresh_failures: int | None = None
    connected_at: str | None = None
    disconnected_at: str | None = None
    keep_mappings: bool | None = None
    warnings: list[WarningAnswer] = Field(description="What in the company's settings works against the app.")
    onboarding: OnboardingAnswer | None = Field(
        default=None, description="Null for connections made before it."
    )


class PostingAnswer(_Open):
    tenant_id: str
    kind: str
    app_id: str
    version: int
    state: str
    txn_date: str | None = None
    qbo_id: str | None = None
    sync_token: str | None = None
    attempts: int = 0
    last_error: PostingFault | None = None
    posted_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    reasons: list[ReasonAnswer]
    attempt_log: list[Attempt] | None = Field(default=None, description="One document's reads only.")


class PostingsPage(_Open):
    entries: list[PostingAnswer]
    next_page_token: str | None


class PostingsSummary(_Open):
    tenant_id: str
    by_kind: dict[str, Counts]
    by_state: Counts
    total: int


class RecheckAnswer(_Open):
    status: Literal["scheduled", "pending", "nothing_waiting"]
    waiting: int


class ReportRowAnswer(_Open):
    kind: str
    id: str
    version: int
    number: str | None
    date: str | None
    client_id: str | None
    total: str | None = Field(description="The app's total, an exact decimal string.")
    state: str
    qbo_id: str | None
    posted_at: str | None


class ReportTotalAnswer(_Open):
    count: int
    total: str
    posted_count: int
    posted_total: str


class TransactionsReport(_Open):
    tenant_id: str
    documents: list[ReportRowAnswer]
    totals: dict[str, ReportTotalAnswer] | None = Field(description="On the first page only, over the range.")
    next_page_token: str | None


class ExchangeAnswer(_Open):
    exchange_id: str
    tenant_id: str
    source: str = Field(
        description="webhook, sweep, push, recheck, export, import (a match tab's transfer, kind in trigger)."
    )
    started_at: str
    finished_at: str | None
    outcome: str = Field(description="running, succeeded or failed.")
    realm_id: str | None = None
    events: Counts = Field(default_factory=dict)
    error: str | None = None


class ExchangesPage(_Open):
    exchanges: list[ExchangeAnswer]
    next_page_token: str | None


class LatestExchange(_Open):
    exchange: ExchangeAnswer | None


class CatalogAnswer(_Open):
    entity: AppEntity
    stored: bool = Field(description="False: an older or equal version, ignored.")


class MappingRowApp(AppEntity):
    linked_qbo_id: str | None
    linked_qbo_name: str | None


class MappingRowQbo(QboEntity):
    linked_app_id: str | None


class MappingsPage(_Open):
    kind: str
    qbo_refreshed_at: str | None
    app: list[MappingRowApp]
    qbo: list[MappingRowQbo]
    app_total: int
    qbo_total: int
    next_page_token: str | None


class LinkView(_Open):
    link: Link
    app: AppEntity | None
    qbo: QboEntity | None


class Unlinked(_Open):
    unlinked: Link


class Cleared(_Open):
    kind: str
    removed: int


class AutomatchAnswer(_Open):
    kind: str
    applied: bool
    matches: list[dict[str, Any]]
    linked: list[dict[str, Any]]
    skipped: dict[str, Any]
    suggestions: dict[str, list[dict[str, Any]]] = Field(description="By app id: QBO candidates, best first.")
    held_back: dict[str, Any]
    unmatched: list[str]
    unmatched_qbo: list[str]


class NameConflicts(_Open):
    kind: str
    conflicts: list[dict[str, Any]]


class EntityResult(_Open):
    id: str
    status: str
    app_id: str | None
    qbo_id: str | None
    reason: str | None
    message: str | None


class EntityResults(_Open):
    kind: str
    results: list[EntityResult]


class Refreshed(_Open):
    refreshed: Counts = Field(description="QBO entities read, by kind.")


class Onboarded(Refreshed):
    applied: Counts
    unmatched: Counts
