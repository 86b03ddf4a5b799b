"""Sending jobs to QBO.  A job goes on its own (``single``: a lookup first when its outcome is
uncertain, then a create, or a sparse update of what QBO has; a void through ``Voids``) or with
others in one batch request of creates and updates (``batch``); several uncertain jobs are looked
up with one batch request of queries (``look_up``).  Every create and update carries the job's
requestid; what comes of each call is recorded through ``Outcomes``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared.connections.vault import VaultError
from shared.kernel.clock import Clock
from shared.push.finding import find, find_query, marked, update
from shared.push.jobs import BatchReport, Job, TenantRun
from shared.push.outcomes import Outcomes
from shared.push.payments import PaymentBalances
from shared.push.posting_log import AttemptOutcome
from shared.push.voids import Voids
from shared.qbo.client import BatchOperation
from shared.qbo.errors import DuplicateDocumentNumberError, QboError, StaleObjectError


class Sender:
    """Sends jobs to the tenant's QBO company, alone or in batch requests."""

    def __init__(self, outcomes: Outcomes, payments: PaymentBalances, voids: Voids, clock: Clock) -> None:
        self.outcomes = outcomes
        self.payments = payments
        self.voids = voids
        self.clock = clock

    def single(self, ctx: TenantRun, job: Job, report: BatchReport) -> None:
        if job.done or job.retry:
            return
        if not self.outcomes.start(job, report):
            return
        started = self.clock.now()
        if job.voids:
            self.voids.void(ctx, job, started, report)
            return
        try:
            if job.lookup:
                started = self._found(ctx, job, started) or started
            if job.existing_id is not None:
                answer = update(ctx, job)
            else:
                try:
                    answer = ctx.client.create(
                        job.entity, job.build(None), idempotency_key=job.idempotency_key
                    )
                except DuplicateDocumentNumberError:
                    # Ours, created by a request whose answer was lost (and whose requestid QBO forgot)?
                    found_at = self._found(ctx, job, started)
                    if found_at is None:
                        raise
                    started = found_at
                    answer = update(ctx, job)
        except (QboError, VaultError) as error:
            if not (isinstance(error, QboError) and self.payments.cap_and_resend(ctx, job, error, report)):
                self.outcomes.call_failed(ctx, job, error, started, report)
            return
        self.outcomes.posted(ctx, job, answer, started, report)

    def _found(self, ctx: TenantRun, job: Job, started: Any) -> Any | None:
        """Look the job's document up in QBO: when it is there, the job updates it (the lookup is an
        attempt) and the time the next call starts; None when it is not."""
        found = find(ctx, job)
        if found is None:
            return None
        job.existing_id, job.sync_token = str(found["Id"]), str(found["SyncToken"])
        self.outcomes.attempt(ctx, job, AttemptOutcome.FOUND, started)
        return self.clock.now()

    def batch(self, ctx: TenantRun, jobs: list[Job], report: BatchReport) -> None:
        started_jobs = self.outcomes.start_all(jobs, report)
        if not started_jobs:
            return
        keys = "\n".join(sorted(job.idempotency_key for job in started_jobs))
        batch_key = f"{ctx.tenant_id}:batch:{hashlib.sha256(keys.encode()).hexdigest()[:32]}"
        started = self.clock.now()
        operations = [
            BatchOperation.create(job.entity, job.build(None))
            if job.existing_id is None
            else BatchOperation.update(job.entity, job.build((job.existing_id, str(job.sync_token))))
            for job in started_jobs
        ]
        try:
            results = ctx.client.batch(operations, idempotency_key=batch_key)
        except (QboError, VaultError) as error:
            for job in started_jobs:
                self.outcomes.call_failed(ctx, job, error, started, report)
            return
        done = [
            (job, result.entity) for job, result in zip(started_jobs, results, strict=True) if result.entity
        ]
        self.outcomes.post_all(ctx, done, started, report)
        for job, result in zip(started_jobs, results, strict=True):
            if result.entity is None:
                self._refused(ctx, job, result.error, started, report)

    def _refused(
        self, ctx: TenantRun, job: Job, error: QboError | None, started: Any, report: BatchReport
    ) -> None:
        """A batch request's operation QBO did not carry out."""
        if isinstance(error, StaleObjectError) and job.existing_id is not None:
            job.sync_token = None  # changed in QBO meanwhile: re-read it and update on its own
            self._retry_single(ctx, job, report)
        elif isinstance(error, DuplicateDocumentNumberError):
            self.outcomes.call_failed(ctx, job, error, started, report, settle=True)
        elif error is not None and self.payments.cap_and_resend(ctx, job, error, report):
            return
        else:
            failure = error or QboError("the batch answer lacks this operation")
            self.outcomes.call_failed(ctx, job, failure, started, report)

    def _retry_single(self, ctx: TenantRun, job: Job, report: BatchReport) -> None:
        """A document already ``in_flight`` sent again on its own (after a 5010 in a batch)."""
        started = self.clock.now()
        try:
            answer = update(ctx, job)
        except (QboError, VaultError) as error:
            self.outcomes.call_failed(ctx, job, error, started, report)
            return
        self.outcomes.posted(ctx, job, answer, started, report)

    def look_up(self, ctx: TenantRun, jobs: list[Job]) -> None:
        """Settle several uncertain documents with one batch request of queries (instead of a query
        each): the ones QBO has become updates of what it has, the others creates again.  A lookup
        that fails stays for the document's own call to repeat."""
        if len(jobs) < 2:
            return
        started = self.clock.now()
        keys = "\n".join(sorted(job.idempotency_key for job in jobs))
        queries = [find_query(ctx, job) for job in jobs]
        try:
            results = ctx.client.batch(
                [BatchOperation.query(statement) for statement, _ in queries],
                idempotency_key=f"{ctx.tenant_id}:lookup:{hashlib.sha256(keys.encode()).hexdigest()[:32]}",
            )
        except (QboError, VaultError):
            return  # each document looks itself up
        for job, (_, marker), result in zip(jobs, queries, results, strict=True):
            if result.rows is None:
                continue
            found = marked(result.rows, job, marker)
            job.lookup = False
            if found is not None:
                job.existing_id, job.sync_token = str(found["Id"]), str(found["SyncToken"])
                self.outcomes.attempt(ctx, job, AttemptOutcome.FOUND, started)
