"""What becomes of a job's QBO call, in the posting log: the move to ``in_flight`` before the call
(one transaction for a batch request's documents), every attempt, and the outcome.  Success is
the attempt, the link, the version ledger's record and ``posted`` in one transaction (or as few
as the log can write for a batch request's documents), then the event; QBO's refusal is ``failed``
with QBO's text; a throttled or transient call goes back to ``queued`` (an uncertain one to
``uncertain``) and its message comes back.  ``Outcomes`` is shared by the worker, the sender,
the voids, the payments' resend and the summarised journal.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

from shared.connections.vault import VaultError
from shared.kernel.clock import Clock
from shared.kernel.events import DOCUMENT_FAILED, DOCUMENT_POSTED, DetailType, EventPublisher, make_event
from shared.mapping.links import LinkConflictError, LinkStore
from shared.mapping.versions import VersionLedger, last_updated, touched_documents
from shared.push.jobs import BatchReport, Body, Job, TenantRun, applied_less, fault_of, qbo_name
from shared.push.models import AppClient
from shared.push.posting_log import (
    Attempt,
    AttemptOutcome,
    CompanionRefusedError,
    ConcurrentChangeError,
    InvalidTransitionError,
    Posting,
    PostingEntry,
    PostingFault,
    PostingLog,
    PostingState,
    StaleVersionError,
)
from shared.qbo.errors import AuthenticationError, AuthorizationError, QboError, ThrottledError

POSTING_ACTIONS: Final = 99  # a transaction's 100 actions, less the summary update
Touches = dict[tuple[str, str], dict[str, Any]]


class Outcomes:
    """Records jobs' moves, attempts and outcomes in the posting log, their links and events."""

    def __init__(
        self,
        posting_log: PostingLog,
        links: LinkStore,
        events: EventPublisher,
        clock: Clock,
        versions: VersionLedger | None = None,
    ) -> None:
        self.posting_log = posting_log
        self.links = links
        self.events = events
        self.clock = clock
        self.versions = versions

    # --- before the call -------------------------------------------------------------------------

    def start(self, job: Job, report: BatchReport) -> bool:
        try:
            job.entry = self.move(job.entry, PostingState.IN_FLIGHT, request_id=job.idempotency_key)
        except (StaleVersionError, InvalidTransitionError):
            job.done = True
            report.count("ignored")
            return False
        return True

    def start_all(self, jobs: list[Job], report: BatchReport) -> list[Job]:
        """``start`` for a batch request's documents: one transaction for all of them, or, when one
        changed since it was read, one by one."""
        try:
            moved = self.posting_log.transition_many(
                [job.entry for job in jobs],
                to_state=PostingState.IN_FLIGHT,
                request_ids={job.key: job.idempotency_key for job in jobs},
            )
        except (ConcurrentChangeError, InvalidTransitionError):
            return [job for job in jobs if self.start(job, report)]
        for job, entry in zip(jobs, moved, strict=True):
            job.entry = entry
        return list(jobs)

    # --- success ---------------------------------------------------------------------------------

    def posting(self, ctx: TenantRun, job: Job, answer: Body, started: Any, *, new: bool = False) -> Posting:
        """What QBO's answer makes of the document: its id, the successful attempt, its link
        (``new``: written whole, the document being known to have none yet) and what the version
        ledger records of the write (the change worker then knows it as ours before reading)."""
        qbo_id, token = str(answer["Id"]), str(answer.get("SyncToken", "0"))
        entry = job.entry
        attempt = Attempt(
            tenant_id=entry.tenant_id,
            kind=entry.kind,
            app_id=entry.app_id,
            version=entry.version,
            number=0,  # the posting log numbers it
            outcome=AttemptOutcome.SUCCEEDED,
            intuit_tid=ctx.client.last_intuit_tid,
            request_id=job.idempotency_key,
            started_at=started,
            finished_at=self.clock.now(),
        )
        along = self.links.link_actions(
            entry.tenant_id,
            job.link_kind,
            entry.app_id,
            qbo_id,
            qbo_name=qbo_name(job, answer),
            sync_token=token,
            source="push",
            new=new,
        )
        if self.versions is not None:
            along.append(
                self.versions.written_action(
                    entry.tenant_id, job.entity, answer, kind=job.link_kind, app_id=entry.app_id
                )
            )
        return Posting(entry, qbo_id, token, attempt, along, notes=applied_less(job, answer, ctx.lookup))

    def touches(self, ctx: TenantRun, job: Job, answer: Body) -> Touches:
        """The ledger's marks on the documents a payment of ours applies to (their balances moved
        with it, so QBO's notices of them are ours too), by (entity, QBO id)."""
        if self.versions is None or job.entity != "Payment":
            return {}
        at, ledger = last_updated(answer), self.versions
        return {key: ledger.touched_action(ctx.tenant_id, key, at) for key in touched_documents(answer)}

    def record_write(self, ctx: TenantRun, job: Job, answer: Body) -> None:
        """The ledger's record of a write whose posting is not one transaction (outside ``posting``)."""
        if self.versions is not None:
            self.versions.record_written(
                ctx.tenant_id, job.entity, answer, kind=job.link_kind, app_id=job.entry.app_id
            )

    def posted(self, ctx: TenantRun, job: Job, answer: Body, started: Any, report: BatchReport) -> None:
        """QBO has the document: the attempt, the link and ``posted`` in one transaction (so a crash
        never leaves a link without its posting, or the reverse)."""
        posting = self.posting(ctx, job, answer, started)
        entry, qbo_id = posting.entry, posting.qbo_id
        touches = list(self.touches(ctx, job, answer).values())
        try:
            job.entry = self.posting_log.advance(
                entry,
                PostingState.POSTED,
                qbo_id=qbo_id,
                sync_token=posting.sync_token,
                attempt=posting.attempt,
                along=[*posting.along, *touches],
                notes=posting.notes,
            )
        except CompanionRefusedError as refused:
            self.attempt(ctx, job, AttemptOutcome.SUCCEEDED, started)
            conflict = self.links.conflict(job.link_kind, entry.app_id, qbo_id, refused.failed)
            self.fail(job, PostingFault(code="link_conflict", message=str(conflict)), report)
            return
        except (StaleVersionError, InvalidTransitionError):
            self._superseded(ctx, job, posting, answer, started=started, report=report)
            return
        self.announce(ctx, job, qbo_id, report)

    def _superseded(
        self, ctx: TenantRun, job: Job, posting: Posting, answer: Body, *, started: Any, report: BatchReport
    ) -> None:
        """A newer version arrived (the log handed it our QBO id): the call and the link stand."""
        entry = posting.entry
        self.attempt(ctx, job, AttemptOutcome.SUCCEEDED, started)
        try:
            self.links.link(
                entry.tenant_id,
                job.link_kind,
                entry.app_id,
                posting.qbo_id,
                qbo_name=qbo_name(job, answer),
                sync_token=posting.sync_token,
                source="push",
            )
        except LinkConflictError as error:
            self.fail(job, PostingFault(code="link_conflict", message=str(error)), report)
            return
        self.record_write(ctx, job, answer)
        self.linked(ctx, job)
        report.count("superseded")

    def post_all(
        self, ctx: TenantRun, done: list[tuple[Job, Body]], started: Any, report: BatchReport
    ) -> None:
        """The documents of one batch request QBO took: ``posted`` in as few transactions as the
        posting log can write (one summary update each), or one by one when something changed."""
        chunk: list[tuple[Job, Body, Posting]] = []
        # Payments of one batch may pay the same invoice: one transaction names an item only once,
        # so the chunk marks each touched document once (the latest write's time).
        touches: Touches = {}
        room = POSTING_ACTIONS
        for job, answer in done:
            unlinked = job.existing_id is None and ctx.lookup.link(job.link_kind, job.entry.app_id) is None
            posting = self.posting(ctx, job, answer, started, new=unlinked)
            marks = self.touches(ctx, job, answer)
            added = [key for key in marks if key not in touches]
            if posting.actions + len(added) > room:
                self._flush(ctx, chunk, touches, started, report)
                room = POSTING_ACTIONS
                added = list(marks)
            chunk.append((job, answer, posting))
            touches.update(marks)
            room -= posting.actions + len(added)
        self._flush(ctx, chunk, touches, started, report)

    def _flush(
        self,
        ctx: TenantRun,
        chunk: list[tuple[Job, Body, Posting]],
        touches: Touches,
        started: Any,
        report: BatchReport,
    ) -> None:
        """One ``post_many`` of ``chunk`` (emptied, with ``touches``), or each on its own."""
        if not chunk:
            return
        try:
            entries = self.posting_log.post_many(
                [posting for _, _, posting in chunk], along=list(touches.values())
            )
        except (ConcurrentChangeError, InvalidTransitionError):
            for job, answer, _ in chunk:
                self.posted(ctx, job, answer, started, report)
        else:
            for (job, _, posting), entry in zip(chunk, entries, strict=True):
                job.entry = entry
                self.announce(ctx, job, posting.qbo_id, report)
        chunk.clear()
        touches.clear()

    def announce(self, ctx: TenantRun, job: Job, qbo_id: str, report: BatchReport) -> None:
        """A document just posted: linked, counted, and its event published."""
        self.linked(ctx, job)
        ctx.posted += 1
        report.count("posted")
        self.publish(DOCUMENT_POSTED, job.entry, {"qbo_id": qbo_id})

    @staticmethod
    def linked(ctx: TenantRun, job: Job) -> None:
        ctx.lookup.forget(job.link_kind, job.entry.app_id)
        if isinstance(job.document, AppClient):
            ctx.lookup.client_changed(job.entry.app_id)
        job.done = True

    def publish(self, detail_type: DetailType, entry: PostingEntry, extra: dict[str, Any]) -> None:
        """The document's event: its kind, app id and version, and ``extra`` (the other fields of
        the event's model: ``qbo_id`` or ``error``)."""
        from shared.kernel.event_models import model_of

        fields = {"kind": entry.kind, "app_id": entry.app_id, "document_version": entry.version, **extra}
        detail = model_of(detail_type, "push").model_validate(fields)
        self.events.publish(
            make_event(detail_type, entry.tenant_id, detail, entry.kind, entry.app_id, str(entry.version))
        )

    # --- failure ---------------------------------------------------------------------------------

    def call_failed(
        self,
        ctx: TenantRun,
        job: Job,
        error: QboError | VaultError,
        started: Any,
        report: BatchReport,
        *,
        settle: bool = False,
    ) -> None:
        fault = fault_of(error)
        if isinstance(error, ThrottledError):
            outcome, target = AttemptOutcome.THROTTLED, PostingState.QUEUED
        elif settle or (isinstance(error, QboError) and error.outcome_uncertain):
            outcome, target = AttemptOutcome.UNCERTAIN, PostingState.UNCERTAIN
        elif isinstance(error, VaultError | AuthenticationError | AuthorizationError) or error.retryable:
            outcome, target = AttemptOutcome.TRANSIENT, PostingState.QUEUED
        else:
            outcome, target = AttemptOutcome.REJECTED, PostingState.FAILED
        self.attempt(ctx, job, outcome, started, fault=fault, error=error)
        if target is PostingState.FAILED:
            self.fail(job, fault, report)
            return
        job.retry = True
        report.count(outcome.value)
        try:
            self.move(job.entry, target, error=fault)
        except (StaleVersionError, InvalidTransitionError):
            job.retry = False  # a newer version took over; its own message comes

    def fail(self, job: Job, fault: PostingFault, report: BatchReport) -> None:
        job.done = True
        entry = job.entry
        try:
            self.move(entry, PostingState.FAILED, error=fault)
        except (StaleVersionError, InvalidTransitionError):
            return
        report.count("failed")
        self.publish(DOCUMENT_FAILED, entry, {"error": fault.message})

    def give_up(self, entry: PostingEntry, message: str, report: BatchReport) -> None:
        try:
            self.move(entry, PostingState.FAILED, error=PostingFault(code="not_connected", message=message))
        except (StaleVersionError, InvalidTransitionError):
            return
        report.count("failed")

    # --- the log ---------------------------------------------------------------------------------

    def attempt(
        self,
        ctx: TenantRun,
        job: Job,
        outcome: AttemptOutcome,
        started: Any,
        *,
        fault: PostingFault | None = None,
        error: QboError | VaultError | None = None,
    ) -> None:
        tid = error.intuit_tid if isinstance(error, QboError) else ctx.client.last_intuit_tid
        status = error.status if isinstance(error, QboError) else None
        entry = job.entry
        with contextlib.suppress(StaleVersionError):  # a newer version: the attempt is moot
            recorded = self.posting_log.record_attempt(
                entry.tenant_id,
                entry.kind,
                entry.app_id,
                version=entry.version,
                outcome=outcome,
                started_at=started,
                finished_at=self.clock.now(),
                http_status=status,
                fault=fault,
                intuit_tid=tid,
                request_id=job.idempotency_key,
            )
            # The head counted it: keep the entry in hand in step, so the next move needs no read.
            changes: dict[str, Any] = {"attempts": recorded.number, "request_id": job.idempotency_key}
            if recorded.fault is not None:
                changes["last_error"] = recorded.fault
            job.entry = entry.model_copy(update=changes)

    def succeeded(self, ctx: TenantRun, job: Job, started: Any) -> None:
        """QBO did what the job asked: the attempt recorded and the job done."""
        self.attempt(ctx, job, AttemptOutcome.SUCCEEDED, started)
        job.done = True

    def moved(self, job: Job, report: BatchReport, state: PostingState, **changes: Any) -> bool:
        """``job``'s entry moved to ``state``; False (counted ``superseded``) when a newer version
        came meanwhile."""
        try:
            self.move(job.entry, state, **changes)
        except (StaleVersionError, InvalidTransitionError):
            report.count("superseded")
            return False
        return True

    def move(self, entry: PostingEntry, state: PostingState, **changes: Any) -> PostingEntry:
        """Move ``entry`` (as the worker last had it: no read unless it changed meanwhile)."""
        return self.posting_log.advance(entry, state, **changes)
