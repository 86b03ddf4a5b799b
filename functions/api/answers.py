"""Models of the answers the push routes build by hand, and of the bulk request: what the OpenAPI
document says of them (``functions.api.openapi``), and what tests hold real answers to (every model
forbids unknown fields, so an answer that gains a field the document lacks fails a test).

Imported by the document's builder and by tests, never on a request's path.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.push.bulk import MAX_BULK_ITEMS
from shared.push.models import AppClient, AppCreditMemo, AppInvoice, AppPayment, TenantSettings


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
