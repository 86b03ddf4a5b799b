"""Voids propagated to QBO.  A voided document QBO has is voided there with its SyncToken (read
again once on a stale one) and its posting goes ``voided``, with the version ledger's record of the
write in the same transaction; one QBO never had is ``skipped``.  Before a credit memo is voided,
the Payment that applies it leaves QBO first (QBO refuses to void a memo a payment still applies),
and the application's posting goes ``voided`` with it when the app withdrew it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from shared.connections.vault import VaultError
from shared.kernel.events import DOCUMENT_VOIDED
from shared.mapping.versions import VersionLedger
from shared.push.finding import find
from shared.push.jobs import BatchReport, Body, Job, TenantRun
from shared.push.models import AppCreditApplication
from shared.push.outcomes import Outcomes
from shared.push.posting_log import (
    TRANSITIONS,
    InvalidTransitionError,
    PostingLog,
    PostingState,
    StaleVersionError,
)
from shared.push.service import parse_document, reason_of
from shared.qbo.client import QboClient
from shared.qbo.errors import QboError, StaleObjectError


class Voids:
    """Voids documents in QBO and records it in the posting log."""

    def __init__(
        self, outcomes: Outcomes, posting_log: PostingLog, versions: VersionLedger | None = None
    ) -> None:
        self.outcomes = outcomes
        self.posting_log = posting_log
        self.versions = versions

    def void(self, ctx: TenantRun, job: Job, started: Any, report: BatchReport) -> None:
        """A voided document (the tenant propagates voids): void it in QBO, or skip it if QBO never had it."""
        try:
            if job.entry.kind == "credit_memo":
                self._withdraw_application(ctx, job.entry.app_id)
            if job.existing_id is None and job.lookup:
                found = find(ctx, job)
                if found is not None:
                    job.existing_id, job.sync_token = str(found["Id"]), str(found["SyncToken"])
            if job.existing_id is None:
                job.done = True
                reason = reason_of("voided_before_posting", {"document": job.entry.kind})
                self.outcomes.move(job.entry, PostingState.SKIPPED, reasons=[reason])
                report.count("skipped")
                return
            answer, token = _void(
                ctx.client, job.entity, job.existing_id, job.sync_token, job.idempotency_key
            )
        except (QboError, VaultError) as error:
            self.outcomes.call_failed(ctx, job, error, started, report)
            return
        except (StaleVersionError, InvalidTransitionError):
            report.count("ignored")
            return
        self._voided(ctx, job, answer, token, started=started, report=report)

    def _voided(
        self, ctx: TenantRun, job: Job, answer: Body, token: str, *, started: Any, report: BatchReport
    ) -> None:
        """QBO voided the document: the attempt, then ``voided`` with the ledger's record, and the event."""
        self.outcomes.succeeded(ctx, job, started)
        ledger = (
            self.versions.write_actions(
                ctx.tenant_id, job.entity, answer, kind=job.link_kind, app_id=job.entry.app_id
            )
            if self.versions is not None
            else []
        )
        if not self.outcomes.moved(
            job,
            report,
            PostingState.VOIDED,
            qbo_id=job.existing_id,
            sync_token=str(answer.get("SyncToken", token)),
            along=ledger,
        ):
            return
        report.count("voided")
        self.outcomes.publish(DOCUMENT_VOIDED, job.entry, {"qbo_id": job.existing_id})

    def _withdraw_application(self, ctx: TenantRun, memo_id: str) -> None:
        """Before a credit memo is voided, the Payment that applies it must leave QBO (QBO refuses to
        void a memo a payment still applies): voided here, and its posting with it when the app's
        version withdraws it (its own message then has nothing left to do)."""
        link = ctx.lookup.link("credit_application", memo_id)
        if link is None:
            return
        key = f"{ctx.tenant_id}:credit_application:{memo_id}:void"
        answer, _ = _void(ctx.client, "Payment", link.qbo_id, link.sync_token, key, suffix="")
        if self.versions is not None:
            self.versions.record_written(
                ctx.tenant_id, "Payment", answer, kind="credit_application", app_id=memo_id
            )
        entry = self.posting_log.get(ctx.tenant_id, "credit_application", memo_id)
        if entry is None or PostingState.VOIDED not in TRANSITIONS[entry.state]:
            return
        application = parse_document("credit_application", entry.document)
        if isinstance(application, AppCreditApplication) and application.withdrawn:
            with contextlib.suppress(StaleVersionError, InvalidTransitionError):
                self.outcomes.move(
                    entry, PostingState.VOIDED, qbo_id=link.qbo_id, sync_token=str(answer["SyncToken"])
                )


def _void(
    client: QboClient, entity: str, qbo_id: str, token: str | None, key: str, *, suffix: str = ":void"
) -> tuple[Body, str]:
    """Void the entity with its SyncToken (read when unknown, read again once when stale): QBO's
    answer and the token it was sent with; the requestid is ``key``, ``suffix`` and the token."""
    token = token or str(client.read(entity, qbo_id)["SyncToken"])
    try:
        return client.void(entity, qbo_id, token, idempotency_key=f"{key}{suffix}:t{token}"), token
    except StaleObjectError:
        token = str(client.read(entity, qbo_id)["SyncToken"])
        return client.void(entity, qbo_id, token, idempotency_key=f"{key}{suffix}:t{token}"), token
