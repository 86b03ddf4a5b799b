"""Finding a document of ours in QBO, and updating what QBO has.  An earlier attempt may have
created a document whose answer was lost: its candidates are queried (a customer by DisplayName, a
payment by customer and date, other documents by DocNumber) and ours is the one carrying the
``qbo-link:`` marker of the document (in ``Notes`` for a customer, ``PrivateNote`` for a
transaction).  An update sends the SyncToken known (or read), and on a stale one (5010) reads it
once and sends the update again.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.mapping.markers import Marker, MarkerKind, parse_marker
from shared.push.jobs import Body, Job, TenantRun
from shared.push.models import AppClient, AppCreditApplication, AppInvoice, AppPayment
from shared.push.payloads import display_name
from shared.qbo.errors import StaleObjectError


def find(ctx: TenantRun, job: Job) -> Body | None:
    """The document in QBO, if an earlier attempt created it: candidates, then the marker."""
    statement, wanted = find_query(ctx, job)
    return marked(ctx.client.query(statement), job, wanted)


def find_query(ctx: TenantRun, job: Job) -> tuple[str, Marker]:
    """The query for a document's candidates in QBO, and the marker that tells ours."""
    document = job.document
    if isinstance(document, AppClient):
        statement = select("Customer", DisplayName=display_name(document))
        marker_kind: MarkerKind = "site" if document.parent_id else "client"
    elif isinstance(document, AppPayment | AppCreditApplication):
        customer = ctx.lookup.customer_for(document.client_id) or "0"
        statement = select("Payment", CustomerRef=customer, TxnDate=document.date.isoformat())
        marker_kind = "payment" if isinstance(document, AppPayment) else "credit_application"
    else:
        statement = select(job.entity, DocNumber=document.number)
        marker_kind = "invoice" if isinstance(document, AppInvoice) else "credit_memo"
    return statement, Marker(marker_kind, document.id)


def marked(rows: Sequence[Body], job: Job, wanted: Marker) -> Body | None:
    """The row carrying our marker (a customer keeps it in ``Notes``, a transaction in ``PrivateNote``)."""
    for row in rows:
        note = row.get("Notes") if isinstance(job.document, AppClient) else row.get("PrivateNote")
        if parse_marker(note if isinstance(note, str) else None) == wanted:
            return row
    return None


def update(ctx: TenantRun, job: Job) -> Body:
    """Update the QBO entity the job knows (``existing_id``) with its payload and SyncToken."""
    assert job.existing_id is not None
    token = job.sync_token
    if token is None:
        token = str(ctx.client.read(job.entity, job.existing_id)["SyncToken"])
    try:
        return ctx.client.update(
            job.entity,
            job.build((job.existing_id, token)),
            idempotency_key=f"{job.idempotency_key}:t{token}",
        )
    except StaleObjectError:
        fresh = str(ctx.client.read(job.entity, job.existing_id)["SyncToken"])
        return ctx.client.update(
            job.entity,
            job.build((job.existing_id, fresh)),
            idempotency_key=f"{job.idempotency_key}:t{fresh}",
        )


def select(entity: str, **equal: str) -> str:
    """A QBO query with equality conditions, every value quoted and escaped."""
    where = " AND ".join(f"{name} = '{quote(value)}'" for name, value in equal.items())
    return f"SELECT * FROM {entity} WHERE {where}"  # noqa: S608 - QBO's query language, values escaped


def quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
