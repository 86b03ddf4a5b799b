"""Posting queued documents to QBO, exactly once (docs/push.md, "The push worker").

One message says "look at version v of this document"; the posting log's head says what to do:

* a stale version, or a document no longer ``queued``/``uncertain``/``in_flight``: nothing (ack);
* ``in_flight`` on arrival: a worker died mid-call, so the outcome is uncertain: look it up first;
* readiness is judged again (a mapping may have been removed); the customers a document needs are
  created first when the tenant allows it;
* a document QBO already has (``qbo_id``) is a sparse update of that entity with its SyncToken (on
  5010 the entity is read once and the update sent again);
* an uncertain outcome (a lost answer or a 5xx after a write, a crash, ``needs_lookup``) is settled
  by looking the document up in QBO (DocNumber, or customer and date, then the ``qbo-link:`` marker)
  before anything is created again;
* every create and update carries ``requestid`` derived from ``tenant:kind:app_id:v<version>``.

Batching.  The posting log is the outbox: a worker that has creates to send also takes the tenant's
other ``queued`` documents (up to 30 in all) and sends them in one QBO batch request; their own
messages find them posted later and cost no QBO call.  Updates whose SyncToken is known go in batch
requests too, and several uncertain documents are looked up with one batch request of queries.  One
real-time document costs one call.

DynamoDB.  A delivery reads its documents, their clients and their links in batches; every move is
decided on the entry in hand (the posting log reads again only if it changed); a batch request's
documents go ``in_flight`` in one transaction and are ``posted``, with their attempts and links, in
one transaction per 24 (docs/push.md, "What the push costs in DynamoDB").

Outcomes: success → linked and ``posted`` in one write (an event is published); QBO refused it →
``failed`` with QBO's text; throttled or transient → back to ``queued`` (or ``uncertain``) and the
message is redelivered (partial batch failure).  Every QBO call is an attempt in the log, with
``intuit_tid``.

The same queue carries recheck messages (``{tenant, recheck: {...}}``): each is one page of the
tenant's waiting documents to judge again (``shared.push.recheck``), handled after the delivery's
push messages.  A delivery that posted something asks for one (``PushService.schedule_recheck``).

The worker decides what each document needs; its collaborators, built from its own, do the rest:
``shared.push.jobs`` (a document's job and payload), ``shared.push.sending`` (the QBO calls),
``shared.push.outcomes`` (what the posting log records of them), ``shared.push.voids``,
``shared.push.payments`` (payments against what QBO holds open) and ``shared.push.journal`` (the
summarised mode's journal entry per day).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from shared.connections.errors import NeverConnectedError
from shared.connections.store import Connection, ConnectionStore
from shared.history.exchanges import Exchange, ExchangeLog, ExchangeSource
from shared.kernel.clock import Clock
from shared.kernel.events import EventPublisher
from shared.kernel.observability import logger
from shared.mapping.links import LinkError, LinkStore
from shared.mapping.versions import VersionLedger
from shared.push.jobs import (
    MAPPING_MISSING,
    WORK_STATES,
    BatchReport,
    Job,
    TenantRun,
    job_for,
    retry_marker,
)
from shared.push.journal import JournalPoster
from shared.push.models import AppPayment
from shared.push.outcomes import Outcomes
from shared.push.payloads import PayloadError
from shared.push.payments import PaymentBalances
from shared.push.posting_log import (
    InvalidPageTokenError,
    InvalidTransitionError,
    PostingEntry,
    PostingFault,
    PostingLog,
    PostingLogError,
    PostingState,
    StaleVersionError,
)
from shared.push.readiness import CREATE_CUSTOMER_FIRST, NotReady, Ready, Skipped
from shared.push.recheck import Rechecker, RecheckReport
from shared.push.sending import Sender
from shared.push.service import (
    PushError,
    PushMessage,
    PushService,
    RecheckMessage,
    StoreLookup,
    company_facts,
    evaluate,
    parse_document,
    reason_of,
    require_connection,
)
from shared.push.settings_store import TenantSettingsStore
from shared.push.voids import Voids
from shared.qbo.client import BATCH_MAX_ITEMS, QboClient

__all__ = [
    "MAX_DELIVERIES",
    "RECHECK_FAILURES",
    "BatchReport",
    "Delivery",
    "PushWorker",
    "RetryLaterError",
    "parse_messages",
    "process_bodies",
]

MAX_DELIVERIES = 5  # the DLQ's maxReceiveCount should be higher, so the log says "failed" first
PUSH_SOURCE: Final[ExchangeSource] = "push"
RECHECK_SOURCE: Final[ExchangeSource] = "recheck"
EXCHANGE_OUTCOMES: Final = frozenset({"posted", "voided", "failed"})  # what makes a run an exchange
# The order of a delivery's kinds.  Credit applications go before credit memos (one withdrawn must
# leave QBO before its memo is voided; one to post found its memo posted already) and again right
# behind the memos posted now, so that QBO never holds an open credit the app has applied.
_KIND_ORDER: Final = (
    "client",
    "invoice",
    "credit_application",
    "credit_memo",
    "credit_application",
    "payment",
)


class RetryLaterError(Exception):
    """The message must be delivered again (throttled, transient, or an outcome to settle)."""


class PushWorker:
    """Processes push messages against the tenant's QBO company."""

    def __init__(  # noqa: PLR0917 - the collaborators
        self,
        posting_log: PostingLog,
        links: LinkStore,
        settings_store: TenantSettingsStore,
        connection_store: ConnectionStore,
        qbo_client_for: Callable[[Connection], QboClient],
        events: EventPublisher,
        clock: Clock,
        service: PushService | None = None,
        batch_size: int = BATCH_MAX_ITEMS,
        exchanges: ExchangeLog | None = None,
        versions: VersionLedger | None = None,
    ) -> None:
        self.posting_log = posting_log
        self.links = links
        self.settings_store = settings_store
        self.connection_store = connection_store
        self.qbo_client_for = qbo_client_for
        self.events = events
        self.clock = clock
        self.service = service
        self.batch_size = batch_size
        self.exchanges = exchanges
        self.versions = versions
        self.outcomes = Outcomes(posting_log, links, events, clock, versions)
        self.payments = PaymentBalances(self.outcomes, clock, versions)
        self.sender = Sender(self.outcomes, self.payments, Voids(self.outcomes, posting_log, versions), clock)
        self.journal = JournalPoster(self.outcomes, posting_log, links, clock, versions)
        self._history = _History(exchanges)
        self._last_delivery: set[int] = set()

    # --- entry points ------------------------------------------------------------------------

    def process(self, message: PushMessage) -> None:
        """One message; raises ``RetryLaterError`` when it must be delivered again."""
        if self.process_batch([message]).failed:
            raise RetryLaterError(f"{message.kind} {message.app_id} v{message.version}: retry later")

    def process_batch(
        self, messages: Sequence[PushMessage], *, last_delivery: set[int] | None = None
    ) -> BatchReport:
        """Every message of one delivery, tenant by tenant, creates batched; see the module doc.

        ``last_delivery`` (indexes) are messages delivered ``MAX_DELIVERIES`` times: instead of
        coming back once more they leave their document ``failed`` (with the last error), so a
        document that never gets through is visible in the log, never stuck in ``queued``.
        """
        report = BatchReport()
        self._last_delivery = last_delivery or set()
        by_tenant: dict[str, list[int]] = {}
        for index, message in enumerate(messages):
            by_tenant.setdefault(message.tenant, []).append(index)
        for tenant_id, indexes in by_tenant.items():
            self._recorded(tenant_id, [(i, messages[i]) for i in indexes], report)
        return report

    def recheck(self, message: RecheckMessage) -> RecheckReport:
        """One page of a tenant's waiting documents judged again (``shared.push.recheck``); the
        ready ones go on the queue the service sends to."""
        if self.service is None:
            raise PushError("this worker has no push service: it cannot queue what a recheck finds ready")
        rechecker = Rechecker(
            self.posting_log,
            self.links,
            self.settings_store,
            self.connection_store,
            self.service.queue,
            self.clock,
        )
        started = self.clock.now()
        report = rechecker.run(message)
        if report.judged:
            self._history.recheck(message, started, report)
        return report

    def _recorded(self, tenant_id: str, messages: list[tuple[int, PushMessage]], report: BatchReport) -> None:
        """One tenant's part of the delivery; when it posted, voided or failed something (or crashed)
        it is recorded as a ``push`` exchange: messages, documents by outcome, outcome."""
        if self.exchanges is None:
            self._tenant_batch(tenant_id, messages, report)
            return
        started = self.clock.now()
        before = dict(report.outcomes)
        error: BaseException | None = None
        try:
            self._tenant_batch(tenant_id, messages, report)
        except BaseException as crash:
            error = crash
            raise
        finally:
            counts = {
                outcome: count - before.get(outcome, 0)
                for outcome, count in report.outcomes.items()
                if count > before.get(outcome, 0)
            }
            if error is not None or EXCHANGE_OUTCOMES.intersection(counts):
                self._history.push(tenant_id, started, len(messages), counts, error)

    # --- one tenant ----------------------------------------------------------------------------

    def _tenant_batch(
        self, tenant_id: str, messages: list[tuple[int, PushMessage]], report: BatchReport
    ) -> None:
        entries, wanted = self._due(tenant_id, messages, report)
        if not entries:
            return
        try:
            ctx = self._context(tenant_id)
        except (PushError, NeverConnectedError) as error:
            for entry in entries.values():
                self.outcomes.give_up(entry, str(error), report)
            return
        try:
            jobs = self._post(ctx, entries, report)
        finally:
            ctx.client.close()
        self._come_back(jobs, wanted, report)
        if ctx.posted and self.service is not None:
            self._schedule_recheck(self.service, tenant_id, report)

    def _due(
        self, tenant_id: str, messages: list[tuple[int, PushMessage]], report: BatchReport
    ) -> tuple[dict[tuple[str, str], PostingEntry], dict[tuple[str, str], list[int]]]:
        """The documents the messages still ask for (their version, in a state to work on), and the
        messages (by index) of each; the others are ignored."""
        entries: dict[tuple[str, str], PostingEntry] = {}
        wanted: dict[tuple[str, str], list[int]] = {}
        heads = self.posting_log.get_many(tenant_id, ((m.kind, m.app_id) for _, m in messages))
        for index, message in messages:
            entry = heads.get((message.kind, message.app_id))
            if entry is None or entry.version != message.version or entry.state not in WORK_STATES:
                report.count("ignored")
                continue
            entries[(entry.kind, entry.app_id)] = entry
            wanted.setdefault((entry.kind, entry.app_id), []).append(index)
        return entries, wanted

    def _post(
        self, ctx: TenantRun, entries: dict[tuple[str, str], PostingEntry], report: BatchReport
    ) -> list[Job]:
        """The documents sent to QBO (with other queued ones to fill a batch request), or, in the
        summarised mode, their days' journal entries; every job this made."""
        summarised = ctx.settings.posting_mode == "summarised"
        daily = [e for e in entries.values() if summarised and e.kind == "invoice"]
        jobs = self._jobs(ctx, [e for e in entries.values() if e not in daily], report)
        if not summarised and any(job.creates for job in jobs) and len(jobs) < self.batch_size:
            jobs += self._sweep(ctx, {job.key for job in jobs} | set(entries), report)
        self._run(ctx, jobs, report)
        for day in sorted({e.txn_date for e in daily if e.txn_date is not None}):
            jobs += self.journal.post_day(ctx, day, report)
        return jobs

    def _come_back(
        self, jobs: list[Job], wanted: dict[tuple[str, str], list[int]], report: BatchReport
    ) -> None:
        """The messages of documents to try again come back, unless this was their last delivery:
        then the document is ``failed`` with the last error."""
        for key, indexes in wanted.items():
            job = next((j for j in jobs if j.key == key), None)
            if job is None or not job.retry:
                continue
            if self._last_delivery.issuperset(indexes):
                job.retry = False
                last = job.entry.last_error
                reason = last.message if last and last.message else "no answer"
                fault = PostingFault(
                    code="gave_up", message=f"not posted after {MAX_DELIVERIES} deliveries: {reason}"
                )
                self.outcomes.fail(job, fault, report)
            else:
                report.failed.update(indexes)

    @staticmethod
    def _schedule_recheck(service: PushService, tenant_id: str, report: BatchReport) -> None:
        """A posting may release waiting documents (a payment waits for its invoice, an invoice for
        its client's customer): they are judged again through the queue, not here."""
        try:
            service.schedule_recheck(tenant_id, "posted")
        except (PushError, PostingLogError) as error:
            # The postings stand and a redelivery would find nothing to post (so no recheck): the
            # waiting documents go with the tenant's next change, or POST /postings/recheck.
            logger.error("recheck not scheduled", extra={"tenant_id": tenant_id, "error": str(error)})
            report.count("recheck_unscheduled")

    def _context(self, tenant_id: str) -> TenantRun:
        connection = require_connection(self.connection_store, tenant_id)
        return TenantRun(
            tenant_id,
            connection,
            company_facts(tenant_id, connection),
            self.settings_store.get(tenant_id),
            self.qbo_client_for(connection),
            StoreLookup(tenant_id, self.links, self.posting_log),
        )

    def _sweep(self, ctx: TenantRun, have: set[tuple[str, str]], report: BatchReport) -> list[Job]:
        """Other queued documents of the tenant, to fill the batch request."""
        room = self.batch_size - len(have)
        page = self.posting_log.query_by_state(
            ctx.tenant_id, PostingState.QUEUED, limit=max(room, 1) + len(have)
        )
        fresh = [e for e in page.entries if (e.kind, e.app_id) not in have][:room]
        return self._jobs(ctx, fresh, report)

    def _jobs(self, ctx: TenantRun, entries: list[PostingEntry], report: BatchReport) -> list[Job]:
        jobs: list[Job] = []
        documents = []
        for entry in entries:
            with contextlib.suppress(PushError):  # an unreadable one is dealt with in _prepare
                documents.append(parse_document(entry.kind, entry.document))
        ctx.lookup.prefetch(documents)
        self.payments.read_credited(ctx, [d for d in documents if isinstance(d, AppPayment) and not d.voided])
        for entry in entries:
            job = self._prepare(ctx, entry, report)
            if job is not None:
                jobs.append(job)
        return jobs

    def _run(self, ctx: TenantRun, jobs: list[Job], report: BatchReport) -> None:
        """Clients one by one (a customer must exist before its documents); then per kind, the
        documents' lookups in one batch request, then their creates and updates in batch requests
        of up to 30, and what cannot be batched (voids, a lone document) one call each."""
        for position, kind in enumerate(_KIND_ORDER):
            if kind == "credit_application" and position > _KIND_ORDER.index("credit_application"):
                jobs += self._applications_behind(ctx, jobs, report)
            of_kind = [j for j in jobs if j.entry.kind == kind and not j.done]
            if kind != "client":
                self.sender.look_up(ctx, [j for j in of_kind if j.lookup and not j.retry and not j.voids])
            batched = [j for j in of_kind if j.batchable] if kind != "client" else []
            for job in of_kind:
                if job not in batched:
                    self.sender.single(ctx, job, report)
            for start in range(0, len(batched), self.batch_size):
                chunk = batched[start : start + self.batch_size]
                if len(chunk) == 1:
                    self.sender.single(ctx, chunk[0], report)
                else:
                    self.sender.batch(ctx, chunk, report)

    def _applications_behind(self, ctx: TenantRun, jobs: list[Job], report: BatchReport) -> list[Job]:
        """The credit applications of the credit memos this delivery just posted, judged again now
        that their memo is in QBO (they waited in ``needs_attention`` for it): posted in this same
        delivery instead of after a recheck, while no other invoice of the customer can come
        between the memo and its application."""
        have = {job.key for job in jobs}
        memos = [
            job.entry.app_id
            for job in jobs
            if job.entry.kind == "credit_memo" and job.entry.state is PostingState.POSTED and not job.voids
        ]
        wanted = [("credit_application", memo) for memo in memos if ("credit_application", memo) not in have]
        if not wanted:
            return []
        heads = self.posting_log.get_many(ctx.tenant_id, wanted)
        found: list[Job] = []
        for head in heads.values():
            entry = head
            try:
                if head.state is PostingState.NEEDS_ATTENTION:
                    entry = self.outcomes.move(head, PostingState.QUEUED)
            except (StaleVersionError, InvalidTransitionError):
                continue
            if entry.state not in WORK_STATES:
                continue
            job = self._prepare(ctx, entry, report)
            if job is not None:
                found.append(job)
        return found

    # --- preparing a document --------------------------------------------------------------------

    def _prepare(self, ctx: TenantRun, entry: PostingEntry, report: BatchReport) -> Job | None:
        try:
            if entry.state is PostingState.IN_FLIGHT:  # a worker died mid-call: settle it first
                entry = self.outcomes.move(entry, PostingState.UNCERTAIN)
            document = parse_document(entry.kind, entry.document)
            if entry.state is PostingState.QUEUED:
                readiness = evaluate(document, ctx.settings, ctx.facts, ctx.lookup, self.clock.now().date())
                ready = self._ready(entry, readiness, report)
                if ready is None:
                    return None
                if not self._customers_first(ctx, ready, report):
                    return retry_marker(entry, document)
            return job_for(ctx, entry, document)
        except (StaleVersionError, InvalidTransitionError):
            report.count("ignored")
            return None
        except PayloadError as error:
            target = (
                PostingState.NEEDS_ATTENTION if entry.state is PostingState.QUEUED else PostingState.FAILED
            )
            self.outcomes.move(
                entry,
                target,
                reasons=[reason_of(MAPPING_MISSING, {"message": str(error)})],
                error=PostingFault(code=MAPPING_MISSING, message=str(error))
                if target is PostingState.FAILED
                else None,
            )
            report.count(target.value)
            return None

    def _ready(
        self, entry: PostingEntry, readiness: Ready | NotReady | Skipped, report: BatchReport
    ) -> Ready | None:
        """A queued document's readiness: ``Ready``, or None once it is moved aside (skipped, or
        needing attention, with the reasons)."""
        if isinstance(readiness, Skipped):
            reason = reason_of(readiness.reason.code, readiness.reason.details)
            self.outcomes.move(entry, PostingState.SKIPPED, reasons=[reason])
            report.count("skipped")
            return None
        if isinstance(readiness, NotReady):
            reasons = [reason_of(r.code, r.details) for r in readiness.reasons]
            self.outcomes.move(entry, PostingState.NEEDS_ATTENTION, reasons=reasons)
            report.count("needs_attention")
            return None
        return readiness

    def _customers_first(self, ctx: TenantRun, ready: Ready, report: BatchReport) -> bool:
        """The customers a ready document needs, created first (the tenant allows it); False when
        one is not linked yet (the document waits for it)."""
        for step in ready.steps:
            if step.code == CREATE_CUSTOMER_FIRST and not self._ensure_customer(
                ctx, step.details["client_id"], report
            ):
                return False
        return True

    def _ensure_customer(self, ctx: TenantRun, client_id: str, report: BatchReport) -> bool:
        """Create (auto-create) the customer of ``client_id`` now; True once it is linked."""
        if ctx.lookup.customer_for(client_id) is not None:
            return True
        entry = self.posting_log.get(ctx.tenant_id, "client", client_id)
        if entry is None:
            return False
        try:
            if entry.state in (PostingState.NEEDS_ATTENTION, PostingState.FAILED, PostingState.SKIPPED):
                entry = self.outcomes.move(entry, PostingState.QUEUED)
        except (StaleVersionError, InvalidTransitionError):
            return False
        if entry.state not in WORK_STATES:
            return False
        job = self._prepare(ctx, entry, report)
        if job is None or job.retry:
            return False
        self.sender.single(ctx, job, report)
        return ctx.lookup.customer_for(client_id) is not None


class _History:
    """The exchange history's records of the worker's runs (none without an exchange log)."""

    def __init__(self, exchanges: ExchangeLog | None) -> None:
        self.exchanges = exchanges

    def recheck(self, message: RecheckMessage, started: datetime, report: RecheckReport) -> None:
        """A page that judged documents, in the exchange history: ``notices`` judged, ``changes``
        moved to ``queued``, ``events`` the page's outcomes, ``trigger`` why it was scheduled."""
        if self.exchanges is None:
            return
        exchange = Exchange(
            exchange_id=uuid.uuid4().hex,
            tenant_id=message.tenant,
            source=RECHECK_SOURCE,
            started_at=started,
            notices=report.judged,
            changes=report.queued,
            events=dict(sorted(report.outcomes().items())),
            trigger=message.reason,
        )
        try:
            self.exchanges.finish(exchange, "succeeded")
        except Exception:  # the history is a report: it never fails a delivery, but it is not silent
            logger.exception("recheck exchange not recorded", extra={"tenant_id": message.tenant})

    def push(
        self,
        tenant_id: str,
        started: datetime,
        messages: int,
        counts: dict[str, int],
        error: BaseException | None,
    ) -> None:
        """One tenant's part of a delivery: messages, documents by outcome, and the outcome."""
        if self.exchanges is None:
            return
        failed = counts.get("failed", 0)
        exchange = Exchange(
            exchange_id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            source=PUSH_SOURCE,
            started_at=started,
            notices=messages,
            changes=sum(counts.get(outcome, 0) for outcome in EXCHANGE_OUTCOMES),
            events=dict(sorted(counts.items())),
        )
        if error is not None:
            message = f"{type(error).__name__}: {error}"
        elif failed:
            message = f"{failed} document(s) failed"
        else:
            message = None
        try:
            self.exchanges.finish(exchange, "failed" if message else "succeeded", error=message)
        except Exception:  # the history is a report: it never fails a delivery, but it is not silent
            logger.exception("push exchange not recorded", extra={"tenant_id": tenant_id})


@dataclass
class Delivery:
    """One SQS delivery's bodies, sorted: push messages (with their positions), recheck messages
    (with theirs) and the positions of the poison ones."""

    pushes: list[PushMessage] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    rechecks: list[tuple[int, RecheckMessage]] = field(default_factory=list)
    poison: set[int] = field(default_factory=set)


def parse_messages(bodies: Sequence[str]) -> Delivery:
    """The push and recheck messages among SQS bodies, and the poison ones."""
    delivery = Delivery()
    for index, body in enumerate(bodies):
        try:
            data = json.loads(body)
            if isinstance(data, dict) and "recheck" in data:
                delivery.rechecks.append((index, RecheckMessage.parse(data)))
                continue
            delivery.pushes.append(PushMessage.parse(body))
        except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
            delivery.poison.add(index)  # redelivered until the DLQ takes it: never dropped silently
            continue
        delivery.positions.append(index)
    return delivery


# A recheck page that fails on these comes back (the store or the queue was busy or down; a page
# token that no longer reads is redelivered until the DLQ keeps it).
RECHECK_FAILURES: Final = (PostingLogError, LinkError, PushError, InvalidPageTokenError)


def process_bodies(
    worker: PushWorker, bodies: Sequence[str], receive_counts: Sequence[int] | None = None
) -> BatchReport:
    """One SQS delivery: which bodies (by position) must come back, and the outcomes.  The push
    messages go first (a posting may release waiting documents), then each recheck page; a tenant's
    recheck behind one of its own messages that must come back waits for it, as FIFO order says."""
    delivery = parse_messages(bodies)
    positions = delivery.positions
    counts = list(receive_counts or [1] * len(bodies))
    last = {i for i, position in enumerate(positions) if counts[position] >= MAX_DELIVERIES}
    report = worker.process_batch(delivery.pushes, last_delivery=last)
    failed = {positions[i] for i in report.failed} | delivery.poison
    if delivery.poison:
        report.outcomes["poison"] = len(delivery.poison)
    groups = [_group(body) for body in bodies]
    for position, message in delivery.rechecks:
        if any(groups[i] == message.tenant for i in failed if i < position):
            failed.add(position)
            continue
        try:
            outcome = worker.recheck(message)
        except RECHECK_FAILURES as error:
            logger.warning(
                "recheck page failed",
                extra={"tenant_id": message.tenant, "page": message.page, "error": str(error)},
            )
            failed.add(position)
            report.count("recheck_failed")
            continue
        for name, count in outcome.outcomes().items():
            report.outcomes[name] = report.outcomes.get(name, 0) + count
    return BatchReport(failed=failed, outcomes=report.outcomes)


def _group(body: str) -> str | None:
    """The tenant (message group) a body names, if it names one."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    tenant = data.get("tenant") if isinstance(data, dict) else None
    return tenant if isinstance(tenant, str) else None
