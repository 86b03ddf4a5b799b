"""Tenant API: the push routes (settings, document upserts, the posting log).

Upserts (``PUT .../clients|invoices|payments|credit-memos/{id}``) answer 202 with the document's
posting state, 200 ``ignored`` for an older or equal version, 422 naming every offending field,
404 for a tenant that never connected and 409 for a disconnected one.  Bodies are parsed with JSON
numbers as ``Decimal``: money never passes through a float.

Tenant isolation: the host app's backend calls with IAM; a caller that came through a JWT authorizer
(``requestContext.authorizer.jwt.claims``) must carry a ``tenant_id`` claim equal to the path's
tenant, or gets 403 and nothing is read or changed (checked for every route in ``handler.lambda_handler``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from functions.api.common import TenantId, error_response
from functions.api.errors import BadBodyError
from shared.kernel.constants import APP_ID_PATTERN, REPORT_PAGE_MAX
from shared.kernel.observability import metrics
from shared.push.errors import (
    PostingNotFoundError,
)
from shared.push.states import PostingState

if TYPE_CHECKING:
    from shared.history.exchanges import ExchangeLog
    from shared.push.posting_log import Attempt, PostingEntry, PostingPage
    from shared.push.service import PushService, SubmitOutcome

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves Router.__init__ untyped

AppDocumentId = Annotated[str, Path(pattern=APP_ID_PATTERN, description="The app's own id of the document.")]
# The posting log's kinds (``constants.POSTING_KINDS``), as the ``kind`` filter of ``GET .../postings``.
PostingKind = Literal[
    "client", "site", "invoice", "payment", "credit_memo", "credit_application", "journal_day"
]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The job id a bulk request answered.")]
PATH_KINDS = {
    "clients": "client",
    "invoices": "invoice",
    "payments": "payment",
    "credit-memos": "credit_memo",
    "credit-applications": "credit_application",
    "client": "client",
    "invoice": "invoice",
    "payment": "payment",
    "credit_memo": "credit_memo",
    "credit_application": "credit_application",
}


# --- helpers -----------------------------------------------------------------------------------


def _service() -> PushService:
    from shared import wiring

    return wiring.push_service()


def _count_request() -> None:
    """Which tenant a caller may reach is decided before any route runs (``common.tenant_refusal``)."""
    metrics.add_metric(name="PushApiRequests", unit=MetricUnit.Count, value=1)


def _body() -> dict[str, Any]:
    raw = router.current_event.decoded_body or ""
    try:
        body = json.loads(raw, parse_float=Decimal)
    except ValueError as error:
        raise BadBodyError([{"field": "(body)", "message": f"not JSON: {error}"}]) from None
    if not isinstance(body, dict):
        raise BadBodyError([{"field": "(body)", "message": "must be a JSON object"}])
    return body


def _outcome(outcome: SubmitOutcome) -> Response[dict[str, Any]]:
    body = outcome.as_dict()
    metrics.add_metric(name=f"Upserts_{outcome.status}", unit=MetricUnit.Count, value=1)
    return Response(202 if outcome.status == "accepted" else 200, content_types.APPLICATION_JSON, body)


def _upsert(tenant_id: str, kind: str, app_id: str) -> Response[dict[str, Any]]:
    _count_request()
    body = _body()
    given = body.setdefault("id", app_id)
    if given != app_id:
        raise BadBodyError([{"field": "id", "message": f"must equal the path's id {app_id!r}"}])
    return _outcome(_service().submit(tenant_id, kind, body))


def _entry(entry: PostingEntry, attempts: list[Attempt] | None = None) -> dict[str, Any]:
    from shared.push.service import reason_dict

    out = entry.model_dump(mode="json", exclude={"reasons", "document"})
    out["reasons"] = [reason_dict(r) for r in entry.reasons]
    if attempts is not None:
        out["attempt_log"] = [a.model_dump(mode="json", exclude_none=True) for a in attempts]
    return out


def _page(page: PostingPage) -> dict[str, Any]:
    return {"entries": [_entry(e) for e in page.entries], "next_page_token": page.next_token}


def _kind(kind: str) -> str:
    found = PATH_KINDS.get(kind)
    if found is None:
        raise BadBodyError([{"field": "kind", "message": f"unknown document kind {kind!r}"}])
    return found


# --- settings ----------------------------------------------------------------------------------


@router.get("/tenants/<tenant_id>/settings", summary="The tenant's push settings (defaults if never set)")
def get_settings(tenant_id: TenantId) -> dict[str, Any]:
    _count_request()
    return _service().settings_store.get(tenant_id).model_dump(mode="json")


@router.put(
    "/tenants/<tenant_id>/settings",
    summary="Replace the tenant's push settings",
    responses={422: error_response("A setting is invalid")},
)
def put_settings(tenant_id: TenantId) -> dict[str, Any]:
    from shared.push.models import TenantSettings, validation_problems

    _count_request()
    try:
        settings = TenantSettings.model_validate(_body())
    except ValidationError as error:
        raise BadBodyError(validation_problems(error)) from None
    service = _service()
    service.settings_store.put(tenant_id, settings)
    # Documents waiting on a setting go by themselves: judged again through the push queue, never
    # here (a retry of this PUT after a failed send queues the recheck again).
    service.schedule_recheck(tenant_id, "settings")
    return settings.model_dump(mode="json")


@router.patch(
    "/tenants/<tenant_id>/settings",
    summary="Change some of the tenant's push settings (a JSON merge patch: null resets a setting)",
    responses={
        422: error_response("A setting is invalid, or unknown"),
        503: error_response("Another change of the settings raced this one: send it again"),
    },
)
def patch_settings(tenant_id: TenantId) -> dict[str, Any]:
    """RFC 7386 semantics, sent as ``application/json``: a key given replaces the setting, ``null``
    resets it to its default, a key not given stays; the result is validated as a PUT's body."""
    _count_request()
    return _service().patch_settings(tenant_id, _body()).model_dump(mode="json")


# --- documents ---------------------------------------------------------------------------------


_UPSERT_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {"description": "An older version, or the same one with the same body: acknowledged and ignored"},
    202: {"description": "Accepted: the document's posting state"},
    403: error_response("The caller is not authorized for this tenant"),
    404: error_response("The tenant never connected"),
    409: error_response("The tenant is disconnected, or this version was sent before with another body"),
    422: error_response("Every offending field"),
}


_UPSERT_ROUTES = (
    ("clients", "client", "Upsert a client"),
    ("invoices", "invoice", "Upsert an invoice"),
    ("payments", "payment", "Upsert a payment"),
    ("credit-memos", "credit_memo", "Upsert a credit memo"),
)


def _upsert_route(kind: str) -> Callable[[str, str], Response[dict[str, Any]]]:
    """The ``PUT`` route of one document kind (named ``put_<kind>``, as its OpenAPI operation is)."""

    def route(tenant_id: TenantId, app_id: AppDocumentId) -> Response[dict[str, Any]]:
        return _upsert(tenant_id, kind, app_id)

    route.__name__ = route.__qualname__ = f"put_{kind}"
    return route


for _upsert_path, _upsert_kind, _upsert_summary in _UPSERT_ROUTES:
    router.put(
        f"/tenants/<tenant_id>/{_upsert_path}/<app_id>", summary=_upsert_summary, responses=_UPSERT_RESPONSES
    )(_upsert_route(_upsert_kind))


# --- bulk ------------------------------------------------------------------------------------


def _bulk_items(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The request's items as (kind, document); an item that is not ``{"kind", "document"}`` gets
    the kind ``"(none)"``, so the service refuses it (an unknown kind) on its own, with the others
    taken."""
    from shared.push.bulk import MAX_BULK_ITEMS

    documents = body.get("documents")
    extra = sorted(set(body) - {"documents"})
    if extra:
        raise BadBodyError([{"field": extra[0], "message": "unknown field: the body is {documents: [...]}"}])
    if not isinstance(documents, list) or not 1 <= len(documents) <= MAX_BULK_ITEMS:
        message = f"must be a list of 1 to {MAX_BULK_ITEMS} items {{kind, document}}"
        raise BadBodyError([{"field": "documents", "message": message}])
    items: list[tuple[str, dict[str, Any]]] = []
    for item in documents:
        given = item if isinstance(item, dict) else {}
        document = given.get("document")
        if set(given) == {"kind", "document"} and isinstance(document, dict):
            items.append((str(given["kind"]), document))  # an unknown kind: refused by the service
        else:
            items.append(("(none)", {}))
    return items


def _bulk_result(index: int, outcome: Any) -> dict[str, Any]:
    from shared.push.service import ItemRefused

    if isinstance(outcome, ItemRefused):
        return {
            "index": index,
            "kind": outcome.kind,
            "id": outcome.app_id,
            "status": "refused",
            "problems": list(outcome.problems),
        }
    return {"index": index, **outcome.as_dict()}


@router.post(
    "/tenants/<tenant_id>/documents",
    summary="Upsert up to 500 clients, invoices, payments and credit memos at once; one job follows them",
    responses={
        200: {"description": "Every item refused (each with its problems): no job"},
        202: {"description": "Taken: per-item results and the job that follows them"},
        404: error_response("The tenant never connected"),
        409: error_response("The tenant is disconnected"),
        422: error_response("The body is not {documents: [1..500 items]}"),
        503: error_response("The push queue did not take the ready documents: send the request again"),
    },
)
def bulk_documents(tenant_id: TenantId) -> Response[dict[str, Any]]:
    from shared import wiring
    from shared.push.bulk import JobItem
    from shared.push.service import ItemRefused

    _count_request()
    outcomes = _service().submit_many(tenant_id, _bulk_items(_body()))
    results = [_bulk_result(i, o) for i, o in enumerate(outcomes)]
    taken = [
        JobItem(i, o.kind, o.app_id, o.version)
        for i, o in enumerate(outcomes)
        if not isinstance(o, ItemRefused)
    ]
    job = wiring.bulk_jobs().create(tenant_id, taken) if taken else None
    counts = {
        status: sum(r["status"] == status for r in results) for status in ("accepted", "ignored", "refused")
    }
    metrics.add_metric(name="BulkDocuments", unit=MetricUnit.Count, value=len(results))
    body = {
        "job_id": job.job_id if job else None,
        "status_url": f"{router.current_event.path.rsplit('/documents', 1)[0]}/jobs/{job.job_id}"
        if job
        else None,
        **counts,
        "results": results,
    }
    return Response(202 if job else 200, content_types.APPLICATION_JSON, body)


@router.get(
    "/tenants/<tenant_id>/jobs/<job_id>",
    summary="A bulk request's job: each document's state now, counts, and whether all are settled",
    responses={404: error_response("No such job for this tenant (or past its 14 days)")},
)
def bulk_job(tenant_id: TenantId, job_id: JobId) -> dict[str, Any]:
    from shared import wiring
    from shared.push.bulk import job_status

    _count_request()
    job = wiring.bulk_jobs().get(tenant_id, job_id)
    log = _service().posting_log
    entries = log.get_many(tenant_id, ((i.kind, i.app_id) for i in job.items))
    waits = any(e.state is PostingState.NEEDS_ATTENTION for e in entries.values())
    pending = waits and log.summary(tenant_id).recheck_pending is not None
    return job_status(job, entries, recheck_pending=pending)


# --- the posting log ---------------------------------------------------------------------------


@router.get("/tenants/<tenant_id>/postings/summary", summary="Documents per kind and state")
def postings_summary(tenant_id: TenantId) -> dict[str, Any]:
    _count_request()
    summary = _service().posting_log.summary(tenant_id)
    return {
        "tenant_id": tenant_id,
        "by_kind": {
            kind: {s.value: n for s, n in states.items()} for kind, states in summary.by_kind.items()
        },
        "by_state": {s.value: n for s, n in summary.by_state.items()},
        "total": summary.total,
    }


@router.get(
    "/tenants/<tenant_id>/postings",
    summary="The posting log: by state, kind, transaction or posting dates",
    description=(
        "Every filter given applies. The state, kind and date filters that the index read cannot "
        "key on are DynamoDB filters: a page may hold fewer than `limit` entries, even none, while "
        "`next_page_token` is set; follow it until null. Without a state, kind or posting date, only "
        "documents with a transaction date (not clients) are listed."
    ),
)
def list_postings(  # noqa: PLR0917 - the query parameters
    tenant_id: TenantId,
    state: Annotated[PostingState | None, Query(description="Only documents in this state.")] = None,
    kind: Annotated[PostingKind | None, Query(description="Only documents of this kind.")] = None,
    txn_from: Annotated[
        date | None, Query(alias="from", description="Transaction date from (inclusive).")
    ] = None,
    txn_to: Annotated[date | None, Query(alias="to", description="Transaction date to (inclusive).")] = None,
    posted_from: Annotated[date | None, Query(description="Posted on or after (UTC date).")] = None,
    posted_to: Annotated[date | None, Query(description="Posted on or before (UTC date).")] = None,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    _count_request()
    log = _service().posting_log
    kinds = [kind] if kind else None
    if posted_from is not None or posted_to is not None:  # by-posted index; the rest filters
        page = log.query_by_posted_date(
            tenant_id,
            posted_from,
            posted_to,
            kinds=kinds,
            states=[state] if state else None,
            txn=(txn_from, txn_to),
            page_token=page_token,
            limit=limit,
        )
    elif state is not None:  # by-state index, keyed on the transaction date; the kind filters
        page = log.query_by_state(
            tenant_id,
            state,
            txn_from=txn_from,
            txn_to=txn_to,
            kinds=kinds,
            page_token=page_token,
            limit=limit,
        )
    elif kind is not None and txn_from is None and txn_to is None:  # every document of the kind
        page = log.query_by_kind(tenant_id, kind, page_token=page_token, limit=limit)
    else:  # by-txn-date index; the kind filters
        page = log.query_by_txn_date(
            tenant_id, txn_from, txn_to, kinds=kinds, page_token=page_token, limit=limit
        )
    return _page(page)


@router.get(
    "/tenants/<tenant_id>/postings/<kind>/<app_id>", summary="One document's posting, with its attempts"
)
def get_posting(tenant_id: TenantId, kind: str, app_id: AppDocumentId) -> dict[str, Any]:
    _count_request()
    document_kind = _kind(kind)
    log = _service().posting_log
    entry = log.get(tenant_id, document_kind, app_id)
    if entry is None:
        raise PostingNotFoundError(tenant_id, document_kind, app_id)
    return _entry(entry, log.attempts(tenant_id, document_kind, app_id))


@router.post(
    "/tenants/<tenant_id>/postings/<kind>/<app_id>/retry",
    summary="Retry a failed document",
    responses={409: error_response("The document is not failed")},
)
def retry_posting(tenant_id: TenantId, kind: str, app_id: AppDocumentId) -> Response[dict[str, Any]]:
    _count_request()
    return _outcome(_service().retry(tenant_id, _kind(kind), app_id))


@router.post(
    "/tenants/<tenant_id>/postings/recheck",
    summary="Have every needs_attention document judged again, through the push queue",
    responses={
        202: {"description": "Queued (or already queued), or nothing waits: {status, waiting}"},
        404: error_response("The tenant never connected"),
        409: error_response("The tenant is disconnected"),
        503: error_response("The push queue did not take the recheck: retry"),
    },
)
def recheck_postings(tenant_id: TenantId) -> Response[dict[str, Any]]:
    _count_request()
    scheduled = _service().request_recheck(tenant_id)  # counted as Rechecks_<status> by the service
    return Response(202, content_types.APPLICATION_JSON, scheduled.as_dict())


# --- the transactions report -------------------------------------------------------------------


@router.get(
    "/tenants/<tenant_id>/reports/transactions",
    summary="Invoices, payments and credit memos by transaction date and/or posting date, with totals",
    responses={422: error_response("No date range, or a bad one")},
)
def transactions_report(  # noqa: PLR0917 - the query parameters
    tenant_id: TenantId,
    txn_from: Annotated[date | None, Query(description="Transaction date from (inclusive).")] = None,
    txn_to: Annotated[date | None, Query(description="Transaction date to (inclusive).")] = None,
    posted_from: Annotated[date | None, Query(description="Posted on or after (UTC date).")] = None,
    posted_to: Annotated[date | None, Query(description="Posted on or before (UTC date).")] = None,
    include_unposted: Annotated[
        bool, Query(description="Also the documents in the range that are not posted.")
    ] = False,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
    limit: Annotated[int, Query(ge=1, le=REPORT_PAGE_MAX)] = 100,
) -> dict[str, Any]:
    _count_request()
    report = _service().transactions_report(
        tenant_id,
        txn_from,
        txn_to,
        posted_from,
        posted_to,
        include_unposted=include_unposted,
        page_token=page_token,
        limit=limit,
    )
    return {
        "tenant_id": tenant_id,
        "documents": [row.as_dict() for row in report.rows],
        "totals": {k: t.as_dict() for k, t in report.totals.items()} if report.totals is not None else None,
        "next_page_token": report.next_token,
    }


# --- the exchange history (pull and push) ------------------------------------------------------


def _exchanges() -> ExchangeLog:
    from shared import wiring

    return wiring.exchange_log()


@router.get("/tenants/<tenant_id>/exchanges/latest", summary="The latest exchange (pull or push), or null")
def latest_exchange(tenant_id: TenantId) -> dict[str, Any]:
    _count_request()
    latest = _exchanges().latest(tenant_id)
    return {"exchange": latest.as_dict() if latest else None}


@router.get("/tenants/<tenant_id>/exchanges", summary="The exchange history (pull and push), newest first")
def list_exchanges(
    tenant_id: TenantId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> dict[str, Any]:
    _count_request()
    page = _exchanges().history(tenant_id, limit=limit, page_token=page_token)
    return {"exchanges": [e.as_dict() for e in page.exchanges], "next_page_token": page.next_token}
