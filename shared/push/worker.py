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
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from shared.connections.store import Connection, ConnectionStore, NeverConnectedError
from shared.connections.vault import VaultError
from shared.history.exchanges import Exchange, ExchangeLog, ExchangeSource
from shared.kernel.clock import Clock
from shared.kernel.events import DOCUMENT_FAILED, DOCUMENT_POSTED, DOCUMENT_VOIDED, EventPublisher, make_event
from shared.kernel.observability import logger
from shared.mapping.links import LinkConflictError, LinkError, LinkStore
from shared.mapping.versions import VersionLedger, last_updated, touched_documents
from shared.push.models import (
    AppClient,
    AppCreditApplication,
    AppCreditMemo,
    AppInvoice,
    AppPayment,
    TenantSettings,
)
from shared.push.payloads import (
    CompanyFacts,
    JournalAccounts,
    Marker,
    MarkerKind,
    PayloadError,
    ResolvedMappings,
    credit_application_payload,
    credit_memo_payload,
    customer_payload,
    display_name,
    invoice_payload,
    journal_doc_number,
    journal_entry_for_day,
    parse_marker,
    payment_payload,
)
from shared.push.posting_log import (
    TRANSITIONS,
    Attempt,
    AttemptOutcome,
    CompanionRefusedError,
    ConcurrentChangeError,
    InvalidPageTokenError,
    InvalidTransitionError,
    Posting,
    PostingEntry,
    PostingFault,
    PostingLog,
    PostingLogError,
    PostingState,
    Reason,
    StaleVersionError,
)
from shared.push.readiness import CREATE_CUSTOMER_FIRST, NotReady, Ready, Skipped
from shared.push.recheck import Rechecker, RecheckReport
from shared.push.service import (
    AppDocument,
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
from shared.qbo.client import BATCH_MAX_ITEMS, BatchOperation, QboClient
from shared.qbo.errors import (
    AuthenticationError,
    AuthorizationError,
    DuplicateDocumentNumberError,
    QboError,
    StaleObjectError,
    ThrottledError,
)

Body = dict[str, Any]
ENTITIES = {
    "client": "Customer",
    "invoice": "Invoice",
    "payment": "Payment",
    "credit_memo": "CreditMemo",
    "credit_application": "Payment",
}
MAPPING_MISSING = "mapping_missing"
BUSINESS_RULE_CODE = "6000"  # QBO's business-rule refusal (a payment applying more than is open)
BALANCE_QUERY_IDS = 100  # invoice ids per balance query
# A posting note: QBO held less open on an invoice than the app's payment applied to it.
APPLIED_LESS_THAN_ASKED = "applied_less_than_asked"
MAX_DELIVERIES = 5  # the DLQ's maxReceiveCount should be higher, so the log says "failed" first
POSTING_ACTIONS = 99  # a transaction's 100 actions, less the summary update
_WORK = {PostingState.QUEUED, PostingState.UNCERTAIN, PostingState.IN_FLIGHT}
PUSH_SOURCE: Final[ExchangeSource] = "push"
RECHECK_SOURCE: Final[ExchangeSource] = "recheck"
EXCHANGE_OUTCOMES: Final = frozenset({"posted", "voided", "failed"})  # what makes a run an exchange


@dataclass
class _Job:
    entry: PostingEntry
    document: AppDocument
    entity: str
    link_kind: str
    build: Callable[[tuple[str, str] | None], Body]
    existing_id: str | None
    sync_token: str | None
    lookup: bool
    done: bool = False
    retry: bool = False
    capped: bool = False  # a payment sent again with what QBO holds open

    @property
    def key(self) -> tuple[str, str]:
        return (self.entry.kind, self.entry.app_id)

    @property
    def idempotency_key(self) -> str:
        e = self.entry
        return f"{e.tenant_id}:{e.kind}:{e.app_id}:v{e.version}"

    @property
    def voids(self) -> bool:
        if isinstance(self.document, AppCreditApplication):
            return self.document.withdrawn  # voided memo, or its applications taken back
        return not isinstance(self.document, AppClient) and self.document.voided

    @property
    def creates(self) -> bool:
        return self.existing_id is None and not self.lookup and not self.voids

    @property
    def batchable(self) -> bool:
        """A create, or an update whose SyncToken is known: either can go in a batch request."""
        if self.retry or self.lookup or self.voids:
            return False
        return self.existing_id is None or self.sync_token is not None


@dataclass
class _Tenant:
    tenant_id: str
    connection: Connection
    facts: CompanyFacts
    settings: TenantSettings
    client: QboClient
    lookup: StoreLookup
    posted: int = 0
    # QBO's open balance of invoices read in this delivery (by QBO id), still to be applied
    open_balances: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class BatchReport:
    """Which messages must come back (by index) and what happened to the documents."""

    failed: set[int] = field(default_factory=set)
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


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
            self._record_recheck(message, started, report)
        return report

    def _record_recheck(self, message: RecheckMessage, started: datetime, report: RecheckReport) -> None:
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
                self._record_exchange(tenant_id, started, len(messages), counts, error)

    def _record_exchange(
        self,
        tenant_id: str,
        started: datetime,
        messages: int,
        counts: dict[str, int],
        error: BaseException | None,
    ) -> None:
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

    # --- one tenant ----------------------------------------------------------------------------

    def _tenant_batch(
        self, tenant_id: str, messages: list[tuple[int, PushMessage]], report: BatchReport
    ) -> None:
        entries: dict[tuple[str, str], PostingEntry] = {}
        wanted: dict[tuple[str, str], list[int]] = {}
        heads = self.posting_log.get_many(tenant_id, ((m.kind, m.app_id) for _, m in messages))
        for index, message in messages:
            entry = heads.get((message.kind, message.app_id))
            if entry is None or entry.version != message.version or entry.state not in _WORK:
                report.count("ignored")
                continue
            entries[(entry.kind, entry.app_id)] = entry
            wanted.setdefault((entry.kind, entry.app_id), []).append(index)
        if not entries:
            return
        try:
            ctx = self._context(tenant_id)
        except (PushError, NeverConnectedError) as error:
            for entry in entries.values():
                self._give_up(entry, str(error), report)
            return
        summarised = ctx.settings.posting_mode == "summarised"
        daily = [e for e in entries.values() if summarised and e.kind == "invoice"]
        try:
            jobs = self._jobs(ctx, [e for e in entries.values() if e not in daily], report)
            if not summarised and any(job.creates for job in jobs) and len(jobs) < self.batch_size:
                jobs += self._sweep(ctx, {job.key for job in jobs} | set(entries), report)
            self._run(ctx, jobs, report)
            for day in sorted({e.txn_date for e in daily if e.txn_date is not None}):
                jobs += self._journal_day(ctx, day, report)
        finally:
            ctx.client.close()
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
                self._fail(job, fault, report)
            else:
                report.failed.update(indexes)
        if ctx.posted and self.service is not None:
            # A posting may release waiting documents (a payment waits for its invoice, an invoice
            # for its client's customer): they are judged again through the queue, not here.
            try:
                self.service.schedule_recheck(tenant_id, "posted")
            except (PushError, PostingLogError) as error:
                # The postings stand and a redelivery would find nothing to post (so no recheck):
                # the waiting documents go with the tenant's next change, or POST /postings/recheck.
                logger.error("recheck not scheduled", extra={"tenant_id": tenant_id, "error": str(error)})
                report.count("recheck_unscheduled")

    def _context(self, tenant_id: str) -> _Tenant:
        connection = require_connection(self.connection_store, tenant_id)
        return _Tenant(
            tenant_id,
            connection,
            company_facts(tenant_id, connection),
            self.settings_store.get(tenant_id),
            self.qbo_client_for(connection),
            StoreLookup(tenant_id, self.links, self.posting_log),
        )

    def _sweep(self, ctx: _Tenant, have: set[tuple[str, str]], report: BatchReport) -> list[_Job]:
        """Other queued documents of the tenant, to fill the batch request."""
        room = self.batch_size - len(have)
        page = self.posting_log.query_by_state(
            ctx.tenant_id, PostingState.QUEUED, limit=max(room, 1) + len(have)
        )
        fresh = [e for e in page.entries if (e.kind, e.app_id) not in have][:room]
        return self._jobs(ctx, fresh, report)

    def _jobs(self, ctx: _Tenant, entries: list[PostingEntry], report: BatchReport) -> list[_Job]:
        jobs: list[_Job] = []
        documents = []
        for entry in entries:
            with contextlib.suppress(PushError):  # an unreadable one is dealt with in _prepare
                documents.append(parse_document(entry.kind, entry.document))
        ctx.lookup.prefetch(documents)
        self._read_credited(ctx, [d for d in documents if isinstance(d, AppPayment) and not d.voided])
        for entry in entries:
            job = self._prepare(ctx, entry, report)
            if job is not None:
                jobs.append(job)
        return jobs

    def _run(self, ctx: _Tenant, jobs: list[_Job], report: BatchReport) -> None:
        """Clients one by one (a customer must exist before its documents); then per kind, the
        documents' lookups in one batch request, then their creates and updates in batch requests
        of up to 30, and what cannot be batched (voids, a lone document) one call each."""
        # Credit applications go before credit memos (one withdrawn must leave QBO before its memo
        # is voided; one to post found its memo posted already) and again right behind the memos
        # posted now, so that QBO never holds an open credit the app has applied.
        order = ("client", "invoice", "credit_application", "credit_memo", "credit_application", "payment")
        for position, kind in enumerate(order):
            if kind == "credit_application" and position > order.index("credit_application"):
                jobs += self._applications_behind(ctx, jobs, report)
            of_kind = [j for j in jobs if j.entry.kind == kind and not j.done]
            if kind != "client":
                self._look_up(ctx, [j for j in of_kind if j.lookup and not j.retry and not j.voids])
            batched = [j for j in of_kind if j.batchable] if kind != "client" else []
            for job in of_kind:
                if job not in batched:
                    self._single(ctx, job, report)
            for start in range(0, len(batched), self.batch_size):
                chunk = batched[start : start + self.batch_size]
                if len(chunk) == 1:
                    self._single(ctx, chunk[0], report)
                else:
                    self._batch(ctx, chunk, report)

    def _applications_behind(self, ctx: _Tenant, jobs: list[_Job], report: BatchReport) -> list[_Job]:
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
        found: list[_Job] = []
        for head in heads.values():
            entry = head
            try:
                if head.state is PostingState.NEEDS_ATTENTION:
                    entry = self._move(head, PostingState.QUEUED)
            except (StaleVersionError, InvalidTransitionError):
                continue
            if entry.state not in _WORK:
                continue
            job = self._prepare(ctx, entry, report)
            if job is not None:
                found.append(job)
        return found

    def _look_up(self, ctx: _Tenant, jobs: list[_Job]) -> None:
        """Settle several uncertain documents with one batch request of queries (instead of a query
        each): the ones QBO has become updates of what it has, the others creates again.  A lookup
        that fails stays for the document's own call to repeat."""
        if len(jobs) < 2:
            return
        started = self.clock.now()
        keys = "\n".join(sorted(job.idempotency_key for job in jobs))
        queries = [self._find_query(ctx, job) for job in jobs]
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
            found = _marked(result.rows, job, marker)
            job.lookup = False
            if found is not None:
                job.existing_id, job.sync_token = str(found["Id"]), str(found["SyncToken"])
                self._attempt(ctx, job, AttemptOutcome.FOUND, started)

    # --- preparing a document --------------------------------------------------------------------

    def _prepare(self, ctx: _Tenant, entry: PostingEntry, report: BatchReport) -> _Job | None:
        try:
            if entry.state is PostingState.IN_FLIGHT:  # a worker died mid-call: settle it first
                entry = self._move(entry, PostingState.UNCERTAIN)
            document = parse_document(entry.kind, entry.document)
            if entry.state is PostingState.QUEUED:
                readiness = evaluate(document, ctx.settings, ctx.facts, ctx.lookup, self.clock.now().date())
                if isinstance(readiness, Skipped):
                    self._move(
                        entry,
                        PostingState.SKIPPED,
                        reasons=[reason_of(readiness.reason.code, readiness.reason.details)],
                    )
                    report.count("skipped")
                    return None
                if isinstance(readiness, NotReady):
                    reasons = [reason_of(r.code, r.details) for r in readiness.reasons]
                    self._move(entry, PostingState.NEEDS_ATTENTION, reasons=reasons)
                    report.count("needs_attention")
                    return None
                for step in readiness.steps:
                    if step.code == CREATE_CUSTOMER_FIRST and not self._ensure_customer(
                        ctx, step.details["client_id"], report
                    ):
                        return _retry_marker(entry, document)
            return self._job(ctx, entry, document)
        except (StaleVersionError, InvalidTransitionError):
            report.count("ignored")
            return None
        except PayloadError as error:
            target = (
                PostingState.NEEDS_ATTENTION if entry.state is PostingState.QUEUED else PostingState.FAILED
            )
            self._move(
                entry,
                target,
                reasons=[reason_of(MAPPING_MISSING, {"message": str(error)})],
                error=PostingFault(code=MAPPING_MISSING, message=str(error))
                if target is PostingState.FAILED
                else None,
            )
            report.count(target.value)
            return None

    def _job(self, ctx: _Tenant, entry: PostingEntry, document: AppDocument) -> _Job:
        lookup = ctx.lookup
        existing_id, token = entry.qbo_id, entry.sync_token
        if isinstance(document, AppClient):
            link_kind = "site" if document.parent_id else "client"
            link = lookup.customer_link(document.id)
            if existing_id is None and link is not None:
                existing_id, token = link.qbo_id, link.sync_token
            parent = lookup.customer_for(document.parent_id) if document.parent_id else None
            client = document

            def build_customer(existing: tuple[str, str] | None) -> Body:
                return customer_payload(client, parent, existing)

            return _Job(
                entry,
                document,
                "Customer",
                link_kind,
                build_customer,
                existing_id,
                token,
                # Linked already (the change worker links a customer of ours whose create answer
                # was lost, by the marker in its notes): update it, no lookup needed.
                _needs_lookup(entry) and existing_id is None,
            )
        mappings = _mappings(document, ctx.settings, ctx.facts, lookup)
        facts = ctx.facts
        if isinstance(document, AppInvoice):
            invoice = document

            def build(existing: tuple[str, str] | None) -> Body:
                return invoice_payload(invoice, mappings, facts, existing)

            kind = "invoice"
        elif isinstance(document, AppCreditMemo):
            memo = document

            def build(existing: tuple[str, str] | None) -> Body:
                return credit_memo_payload(memo, mappings, facts, existing)

            kind = "credit_memo"
        elif isinstance(document, AppCreditApplication):
            application = document

            def build(existing: tuple[str, str] | None) -> Body:
                return credit_application_payload(application, mappings, facts, existing)

            kind = "credit_application"
        else:
            payment = document
            if entry.qbo_id is None:  # a new payment takes what QBO holds open, if it is known
                mappings = _capped(payment, mappings, ctx.open_balances)

            def build(existing: tuple[str, str] | None) -> Body:
                return payment_payload(payment, mappings, facts, existing)

            kind = "payment"
        if not (isinstance(document, AppCreditApplication) and document.withdrawn):
            build(None)  # a payload that cannot be built is a readiness gap: found now, not mid-batch
        if existing_id is None:
            link = lookup.link(kind, document.id)
            if link is not None:
                existing_id, token = link.qbo_id, link.sync_token
        unknown = _needs_lookup(entry) and existing_id is None  # linked: QBO has it, no lookup needed
        return _Job(entry, document, ENTITIES[kind], kind, build, existing_id, token, unknown)

    def _read_credited(self, ctx: _Tenant, payments: Sequence[AppPayment]) -> None:
        """The open balances of the invoices these payments pay that QBO applied a credit to by
        itself (the ledger says so: at their creation, or seen by the change worker): one query,
        so that each payment applies what QBO holds open instead of being refused."""
        if self.versions is None or not payments:
            return
        invoices = {
            qbo
            for payment in payments
            for application in payment.applications
            if (qbo := ctx.lookup.invoice_qbo_id(application.invoice_id)) is not None
        }
        known = self.versions.get_many(ctx.tenant_id, (("Invoice", qbo) for qbo in invoices))
        credited = [qbo for (_, qbo), version in known.items() if version.credited]
        self._read_balances(ctx, [qbo for qbo in credited if qbo not in ctx.open_balances])

    def _read_balances(self, ctx: _Tenant, invoice_ids: Sequence[str]) -> None:
        for start in range(0, len(invoice_ids), BALANCE_QUERY_IDS):
            chunk = sorted(invoice_ids[start : start + BALANCE_QUERY_IDS])
            listed = ", ".join(f"'{_quote(qbo)}'" for qbo in chunk)
            for row in ctx.client.query(f"SELECT * FROM Invoice WHERE Id IN ({listed})"):  # noqa: S608
                ctx.open_balances[str(row["Id"])] = Decimal(str(row.get("Balance", "0")))

    def _cap_and_resend(self, ctx: _Tenant, job: _Job, error: QboError, report: BatchReport) -> bool:
        """A new payment QBO refused (6000) because an invoice holds less open than it applies: read
        the invoices' balances, apply what each holds open, and send it once more (the rest stays
        unapplied on the customer).  False when that cannot be the cause."""
        payment = job.document
        if (
            not isinstance(payment, AppPayment)
            or error.code != BUSINESS_RULE_CODE
            or job.existing_id is not None
            or job.capped
        ):
            return False
        started = self.clock.now()
        self._attempt(ctx, job, AttemptOutcome.REJECTED, started, fault=_fault(error), error=error)
        invoices = [q for a in payment.applications if (q := ctx.lookup.invoice_qbo_id(a.invoice_id))]
        for qbo in invoices:
            ctx.open_balances.pop(qbo, None)
        try:
            self._read_balances(ctx, invoices)
        except (QboError, VaultError) as failure:
            self._call_failed(ctx, job, failure, started, report)
            return True
        mappings = _capped(
            payment, _mappings(payment, ctx.settings, ctx.facts, ctx.lookup), ctx.open_balances
        )
        facts = ctx.facts

        def build(existing: tuple[str, str] | None) -> Body:
            return payment_payload(payment, mappings, facts, existing)

        job.build, job.capped = build, True
        started = self.clock.now()
        try:
            answer = ctx.client.create(
                job.entity, build(None), idempotency_key=f"{job.idempotency_key}:capped"
            )
        except (QboError, VaultError) as failure:
            self._call_failed(ctx, job, failure, started, report)
            return True
        self._posted(ctx, job, answer, started, report)
        return True

    def _ensure_customer(self, ctx: _Tenant, client_id: str, report: BatchReport) -> bool:
        """Create (auto-create) the customer of ``client_id`` now; True once it is linked."""
        if ctx.lookup.customer_for(client_id) is not None:
            return True
        entry = self.posting_log.get(ctx.tenant_id, "client", client_id)
        if entry is None:
            return False
        try:
            if entry.state in (PostingState.NEEDS_ATTENTION, PostingState.FAILED, PostingState.SKIPPED):
                entry = self._move(entry, PostingState.QUEUED)
        except (StaleVersionError, InvalidTransitionError):
            return False
        if entry.state not in _WORK:
            return False
        job = self._prepare(ctx, entry, report)
        if job is None or job.retry:
            return False
        self._single(ctx, job, report)
        return ctx.lookup.customer_for(client_id) is not None

    # --- summarised mode: one JournalEntry per day ---------------------------------------------

    def _journal_day(self, ctx: _Tenant, day: date, report: BatchReport) -> list[_Job]:
        """Post (or update in place) the day's JournalEntry with every summarised invoice of ``day``.

        The day's queued, uncertain and in-flight invoices are judged again; the ready ones and the
        already posted ones make the entry.  One QBO write for the day, with a requestid derived from
        the day and the ids and versions it holds; the ``journal_day`` link (app id = the date) makes
        a later change an update of the same entry.
        """
        work: list[_Job] = []
        included: list[AppInvoice] = []
        for entry in self._day_entries(ctx.tenant_id, day):
            document = parse_document("invoice", entry.document)
            if not isinstance(document, AppInvoice):
                continue
            if entry.state is PostingState.POSTED:
                included.append(document)
                continue
            job = self._journal_job(ctx, entry, document, report)
            if job is not None:
                work.append(job)
                included.append(document)
        if not work:
            return []
        mappings = {inv.id: self._journal_mappings(ctx, inv) for inv in included}
        digest = hashlib.sha256(
            "\n".join(sorted(f"{inv.id}:v{inv.version}" for inv in included)).encode()
        ).hexdigest()[:32]
        key = f"{ctx.tenant_id}:journal_day:{day.isoformat()}:{digest}"
        try:
            accounts = self._journal_accounts(ctx, included)

            def build(existing: tuple[str, str] | None) -> Body:
                return journal_entry_for_day(day, included, mappings, ctx.facts, accounts, existing=existing)

            build(None)
        except PayloadError as error:
            for job in work:
                self._fail(job, PostingFault(code=MAPPING_MISSING, message=str(error)), report)
            return work
        except (QboError, VaultError) as error:
            started = self.clock.now()
            for job in work:
                if self._start(job, report):
                    self._call_failed(ctx, job, error, started, report)
            return work
        started_jobs = [job for job in work if self._start(job, report)]
        if not started_jobs:
            return work
        started = self.clock.now()
        link = ctx.lookup.link("journal_day", day.isoformat())
        existing = (link.qbo_id, link.sync_token) if link is not None else None
        try:
            if existing is None and any(_needs_lookup(job.entry) for job in started_jobs):
                existing = self._find_journal(ctx, day)
            if existing is None:
                answer = ctx.client.create("JournalEntry", build(None), idempotency_key=key)
            else:
                answer = self._update_journal(ctx, existing, build, key)
        except (QboError, VaultError) as error:
            for job in started_jobs:
                self._call_failed(ctx, job, error, started, report)
            return work
        qbo_id, token = str(answer["Id"]), str(answer.get("SyncToken", "0"))
        if self.versions is not None:
            self.versions.record_written(
                ctx.tenant_id, "JournalEntry", answer, kind="journal_day", app_id=day.isoformat()
            )
        try:
            self.links.link(
                ctx.tenant_id,
                "journal_day",
                day.isoformat(),
                qbo_id,
                qbo_name=journal_doc_number(day),
                sync_token=token,
                source="push",
            )
        except LinkConflictError as error:
            for job in started_jobs:
                self._fail(job, PostingFault(code="link_conflict", message=str(error)), report)
            return work
        ctx.lookup.forget("journal_day", day.isoformat())
        for job in started_jobs:
            self._attempt(ctx, job, AttemptOutcome.SUCCEEDED, started)
            job.done = True
            entry = job.entry
            try:
                self._move(entry, PostingState.POSTED, qbo_id=qbo_id, sync_token=token)
            except (StaleVersionError, InvalidTransitionError):
                report.count("superseded")
                continue
            ctx.posted += 1
            report.count("posted")
            detail = {"kind": entry.kind, "appId": entry.app_id, "version": entry.version, "qboId": qbo_id}
            self.events.publish(
                make_event(
                    DOCUMENT_POSTED,
                    entry.tenant_id,
                    detail,
                    entry.kind,
                    entry.app_id,
                    str(entry.version),
                )
            )
        return work

    def _day_entries(self, tenant_id: str, day: date) -> list[PostingEntry]:
        states = (PostingState.QUEUED, PostingState.UNCERTAIN, PostingState.IN_FLIGHT, PostingState.POSTED)
        found: list[PostingEntry] = []
        token: str | None = None
        while True:
            page = self.posting_log.query_by_txn_date(
                tenant_id, day, day, kinds=("invoice",), states=states, page_token=token, limit=500
            )
            found.extend(page.entries)
            token = page.next_token
            if not token:
                return found

    def _journal_job(
        self, ctx: _Tenant, entry: PostingEntry, document: AppInvoice, report: BatchReport
    ) -> _Job | None:
        """A summarised invoice that goes into its day's entry now, or None (moved aside)."""
        try:
            if entry.state is PostingState.IN_FLIGHT:
                entry = self._move(entry, PostingState.UNCERTAIN)
            if entry.state is PostingState.QUEUED:
                readiness = evaluate(document, ctx.settings, ctx.facts, ctx.lookup, self.clock.now().date())
                if isinstance(readiness, Skipped):
                    reason = reason_of(readiness.reason.code, readiness.reason.details)
                    self._move(entry, PostingState.SKIPPED, reasons=[reason])
                    report.count("skipped")
                    return None
                if not isinstance(readiness, Ready):
                    reasons = [reason_of(r.code, r.details) for r in readiness.reasons]
                    self._move(entry, PostingState.NEEDS_ATTENTION, reasons=reasons)
                    report.count("needs_attention")
                    return None
        except (StaleVersionError, InvalidTransitionError):
            report.count("ignored")
            return None

        def never(_existing: tuple[str, str] | None) -> Body:
            raise AssertionError("a summarised invoice is sent as part of its day's journal entry")

        return _Job(entry, document, "JournalEntry", "journal_day", never, None, None, _needs_lookup(entry))

    def _journal_mappings(self, ctx: _Tenant, invoice: AppInvoice) -> ResolvedMappings:
        items: dict[tuple[str, str], str] = {
            (line.kind, line.code): item
            for line in invoice.lines
            if (item := ctx.lookup.item_for(line.kind, line.code)) is not None
        }
        return ResolvedMappings(
            customer_id=ctx.settings.master_customer_id or "",
            items=items,
            revenue_account_id=ctx.settings.revenue_account_id,
        )

    def _journal_accounts(self, ctx: _Tenant, invoices: Sequence[AppInvoice]) -> JournalAccounts:
        """A/R, tax payable (only when there is tax) and the income account of every item used."""
        master = ctx.settings.master_customer_id
        if not master:
            raise PayloadError("summarised mode needs a master customer")
        receivable = next(
            (
                str(row["Id"])
                for row in ctx.client.query(_select("Account", AccountType="Accounts Receivable"))
            ),
            None,
        )
        if receivable is None:
            raise PayloadError("the company has no Accounts Receivable account")
        tax_payable = ""
        if any(inv.tax_total != 0 for inv in invoices if not inv.voided):
            rows = ctx.client.query(_select("Account", AccountType="Other Current Liability"))
            tax_payable = next(
                (
                    str(r["Id"])
                    for r in rows
                    if r.get("AccountSubType") in {"GlobalTaxPayable", "SalesTaxPayable"}
                ),
                "",
            )
            if not tax_payable:
                raise PayloadError("the company has no sales tax payable account")
        income: dict[str, str] = {}
        if ctx.settings.revenue_account_id is None:
            for inv in invoices:
                for line in inv.lines:
                    item = ctx.lookup.item_for(line.kind, line.code)
                    if item is None or item in income:
                        continue
                    ref = ctx.client.read("Item", item).get("IncomeAccountRef") or {}
                    if ref.get("value"):
                        income[item] = str(ref["value"])
        return JournalAccounts(
            master_customer_id=master,
            receivable_account_id=receivable,
            tax_payable_account_id=tax_payable,
            revenue_account_id=ctx.settings.revenue_account_id,
            item_income_accounts=income,
        )

    def _find_journal(self, ctx: _Tenant, day: date) -> tuple[str, str] | None:
        """The day's JournalEntry, if an earlier attempt created it (DocNumber, then the marker)."""
        wanted = Marker("journal_day", day.isoformat())
        for row in ctx.client.query(_select("JournalEntry", DocNumber=journal_doc_number(day))):
            note = row.get("PrivateNote")
            if parse_marker(note if isinstance(note, str) else None) == wanted:
                return str(row["Id"]), str(row["SyncToken"])
        return None

    def _update_journal(
        self,
        ctx: _Tenant,
        existing: tuple[str, str | None],
        build: Callable[[tuple[str, str] | None], Body],
        key: str,
    ) -> Body:
        qbo_id, token = existing
        if token is None:
            token = str(ctx.client.read("JournalEntry", qbo_id)["SyncToken"])
        try:
            return ctx.client.update(
                "JournalEntry", build((qbo_id, token)), idempotency_key=f"{key}:t{token}"
            )
        except StaleObjectError:
            fresh = str(ctx.client.read("JournalEntry", qbo_id)["SyncToken"])
            return ctx.client.update(
                "JournalEntry", build((qbo_id, fresh)), idempotency_key=f"{key}:t{fresh}"
            )

    # --- calling QBO ---------------------------------------------------------------------------

    def _single(self, ctx: _Tenant, job: _Job, report: BatchReport) -> None:
        if job.done or job.retry:
            return
        if not self._start(job, report):
            return
        started = self.clock.now()
        if job.voids:
            self._void(ctx, job, started, report)
            return
        try:
            if job.lookup:
                found = self._find(ctx, job)
                if found is not None:
                    job.existing_id, job.sync_token = str(found["Id"]), str(found["SyncToken"])
                    self._attempt(ctx, job, AttemptOutcome.FOUND, started)
                    started = self.clock.now()
            if job.existing_id is not None:
                answer = self._update(ctx, job)
            else:
                try:
                    answer = ctx.client.create(
                        job.entity, job.build(None), idempotency_key=job.idempotency_key
                    )
                except DuplicateDocumentNumberError:
                    # Ours, created by a request whose answer was lost (and whose requestid QBO forgot)?
                    found = self._find(ctx, job)
                    if found is None:
                        raise
                    job.existing_id, job.sync_token = str(found["Id"]), str(found["SyncToken"])
                    self._attempt(ctx, job, AttemptOutcome.FOUND, started)
                    started = self.clock.now()
                    answer = self._update(ctx, job)
        except (QboError, VaultError) as error:
            if not (isinstance(error, QboError) and self._cap_and_resend(ctx, job, error, report)):
                self._call_failed(ctx, job, error, started, report)
            return
        self._posted(ctx, job, answer, started, report)

    def _batch(self, ctx: _Tenant, jobs: list[_Job], report: BatchReport) -> None:
        started_jobs = self._start_all(jobs, report)
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
                self._call_failed(ctx, job, error, started, report)
            return
        done = [
            (job, result.entity) for job, result in zip(started_jobs, results, strict=True) if result.entity
        ]
        self._post_all(ctx, done, started, report)
        for job, result in zip(started_jobs, results, strict=True):
            if result.entity is not None:
                continue
            if isinstance(result.error, StaleObjectError) and job.existing_id is not None:
                job.sync_token = None  # changed in QBO meanwhile: re-read it and update on its own
                self._retry_single(ctx, job, report)
            elif isinstance(result.error, DuplicateDocumentNumberError):
                self._call_failed(ctx, job, result.error, started, report, settle=True)
            elif result.error is not None and self._cap_and_resend(ctx, job, result.error, report):
                continue
            else:
                failure = result.error or QboError("the batch answer lacks this operation")
                self._call_failed(ctx, job, failure, started, report)

    def _retry_single(self, ctx: _Tenant, job: _Job, report: BatchReport) -> None:
        """A document already ``in_flight`` sent again on its own (after a 5010 in a batch)."""
        started = self.clock.now()
        try:
            answer = self._update(ctx, job)
        except (QboError, VaultError) as error:
            self._call_failed(ctx, job, error, started, report)
            return
        self._posted(ctx, job, answer, started, report)

    def _void(self, ctx: _Tenant, job: _Job, started: Any, report: BatchReport) -> None:
        """A voided document (the tenant propagates voids): void it in QBO, or skip it if QBO never had it."""
        try:
            if job.entry.kind == "credit_memo":
                self._withdraw_application(ctx, job.entry.app_id)
            if job.existing_id is None and job.lookup:
                found = self._find(ctx, job)
                if found is not None:
                    job.existing_id, job.sync_token = str(found["Id"]), str(found["SyncToken"])
            if job.existing_id is None:
                job.done = True
                reason = reason_of("voided_before_posting", {"document": job.entry.kind})
                self._move(job.entry, PostingState.SKIPPED, reasons=[reason])
                report.count("skipped")
                return
            token = job.sync_token or str(ctx.client.read(job.entity, job.existing_id)["SyncToken"])
            try:
                answer = ctx.client.void(
                    job.entity, job.existing_id, token, idempotency_key=f"{job.idempotency_key}:void:t{token}"
                )
            except StaleObjectError:
                token = str(ctx.client.read(job.entity, job.existing_id)["SyncToken"])
                answer = ctx.client.void(
                    job.entity, job.existing_id, token, idempotency_key=f"{job.idempotency_key}:void:t{token}"
                )
        except (QboError, VaultError) as error:
            self._call_failed(ctx, job, error, started, report)
            return
        except (StaleVersionError, InvalidTransitionError):
            report.count("ignored")
            return
        self._attempt(ctx, job, AttemptOutcome.SUCCEEDED, started)
        job.done = True
        entry = job.entry
        ledger = (
            self.versions.write_actions(
                ctx.tenant_id, job.entity, answer, kind=job.link_kind, app_id=entry.app_id
            )
            if self.versions is not None
            else []
        )
        try:
            self._move(
                entry,
                PostingState.VOIDED,
                qbo_id=job.existing_id,
                sync_token=str(answer.get("SyncToken", token)),
                along=ledger,
            )
        except (StaleVersionError, InvalidTransitionError):
            report.count("superseded")
            return
        report.count("voided")
        detail = {
            "kind": entry.kind,
            "appId": entry.app_id,
            "version": entry.version,
            "qboId": job.existing_id,
        }
        self.events.publish(
            make_event(DOCUMENT_VOIDED, entry.tenant_id, detail, entry.kind, entry.app_id, str(entry.version))
        )

    def _withdraw_application(self, ctx: _Tenant, memo_id: str) -> None:
        """Before a credit memo is voided, the Payment that applies it must leave QBO (QBO refuses to
        void a memo a payment still applies): voided here, and its posting with it when the app's
        version withdraws it (its own message then has nothing left to do)."""
        link = ctx.lookup.link("credit_application", memo_id)
        if link is None:
            return
        key = f"{ctx.tenant_id}:credit_application:{memo_id}:void"
        token = link.sync_token or str(ctx.client.read("Payment", link.qbo_id)["SyncToken"])
        try:
            answer = ctx.client.void("Payment", link.qbo_id, token, idempotency_key=f"{key}:t{token}")
        except StaleObjectError:
            token = str(ctx.client.read("Payment", link.qbo_id)["SyncToken"])
            answer = ctx.client.void("Payment", link.qbo_id, token, idempotency_key=f"{key}:t{token}")
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
                self._move(
                    entry, PostingState.VOIDED, qbo_id=link.qbo_id, sync_token=str(answer["SyncToken"])
                )

    def _update(self, ctx: _Tenant, job: _Job) -> Body:
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

    def _find(self, ctx: _Tenant, job: _Job) -> Body | None:
        """The document in QBO, if an earlier attempt created it: candidates, then the marker."""
        statement, wanted = self._find_query(ctx, job)
        return _marked(ctx.client.query(statement), job, wanted)

    def _find_query(self, ctx: _Tenant, job: _Job) -> tuple[str, Marker]:
        """The query for a document's candidates in QBO, and the marker that tells ours."""
        document = job.document
        if isinstance(document, AppClient):
            statement = _select("Customer", DisplayName=display_name(document))
            marker_kind: MarkerKind = "site" if document.parent_id else "client"
        elif isinstance(document, AppPayment | AppCreditApplication):
            customer = ctx.lookup.customer_for(document.client_id) or "0"
            statement = _select("Payment", CustomerRef=customer, TxnDate=document.date.isoformat())
            marker_kind = "payment" if isinstance(document, AppPayment) else "credit_application"
        else:
            statement = _select(job.entity, DocNumber=document.number)
            marker_kind = "invoice" if isinstance(document, AppInvoice) else "credit_memo"
        return statement, Marker(marker_kind, document.id)

    # --- outcomes --------------------------------------------------------------------------------

    def _start(self, job: _Job, report: BatchReport) -> bool:
        try:
            job.entry = self._move(job.entry, PostingState.IN_FLIGHT, request_id=job.idempotency_key)
        except (StaleVersionError, InvalidTransitionError):
            job.done = True
            report.count("ignored")
            return False
        return True

    def _start_all(self, jobs: list[_Job], report: BatchReport) -> list[_Job]:
        """``_start`` for a batch request's documents: one transaction for all of them, or, when one
        changed since it was read, one by one."""
        try:
            moved = self.posting_log.transition_many(
                [job.entry for job in jobs],
                to_state=PostingState.IN_FLIGHT,
                request_ids={job.key: job.idempotency_key for job in jobs},
            )
        except (ConcurrentChangeError, InvalidTransitionError):
            return [job for job in jobs if self._start(job, report)]
        for job, entry in zip(jobs, moved, strict=True):
            job.entry = entry
        return list(jobs)

    def _posting(self, ctx: _Tenant, job: _Job, answer: Body, started: Any, *, new: bool = False) -> Posting:
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
            qbo_name=_qbo_name(job, answer),
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
        return Posting(entry, qbo_id, token, attempt, along, notes=_applied_less(job, answer, ctx.lookup))

    def _touches(self, ctx: _Tenant, job: _Job, answer: Body) -> dict[tuple[str, str], dict[str, Any]]:
        """The ledger's marks on the documents a payment of ours applies to (their balances moved
        with it, so QBO's notices of them are ours too), by (entity, QBO id)."""
        if self.versions is None or job.entity != "Payment":
            return {}
        at, ledger = last_updated(answer), self.versions
        return {key: ledger.touched_action(ctx.tenant_id, key, at) for key in touched_documents(answer)}

    def _record_write(self, ctx: _Tenant, job: _Job, answer: Body) -> None:
        """The ledger's record of a write whose posting is not one transaction (outside ``_posting``)."""
        if self.versions is not None:
            self.versions.record_written(
                ctx.tenant_id, job.entity, answer, kind=job.link_kind, app_id=job.entry.app_id
            )

    def _posted(self, ctx: _Tenant, job: _Job, answer: Body, started: Any, report: BatchReport) -> None:
        """QBO has the document: the attempt, the link and ``posted`` in one transaction (so a crash
        never leaves a link without its posting, or the reverse)."""
        posting = self._posting(ctx, job, answer, started)
        entry, qbo_id = posting.entry, posting.qbo_id
        touches = list(self._touches(ctx, job, answer).values())
        try:
            job.entry = self.posting_log.transition(
                entry.tenant_id,
                entry.kind,
                entry.app_id,
                expected_version=entry.version,
                to_state=PostingState.POSTED,
                qbo_id=qbo_id,
                sync_token=posting.sync_token,
                seen=entry,
                attempt=posting.attempt,
                along=[*posting.along, *touches],
                notes=posting.notes,
            )
        except CompanionRefusedError as refused:
            self._attempt(ctx, job, AttemptOutcome.SUCCEEDED, started)
            conflict = self.links.conflict(job.link_kind, entry.app_id, qbo_id, refused.failed)
            self._fail(job, PostingFault(code="link_conflict", message=str(conflict)), report)
            return
        except (StaleVersionError, InvalidTransitionError):
            # A newer version arrived (the log handed it our QBO id): the call and the link stand.
            self._attempt(ctx, job, AttemptOutcome.SUCCEEDED, started)
            try:
                self.links.link(
                    entry.tenant_id,
                    job.link_kind,
                    entry.app_id,
                    qbo_id,
                    qbo_name=_qbo_name(job, answer),
                    sync_token=posting.sync_token,
                    source="push",
                )
            except LinkConflictError as error:
                self._fail(job, PostingFault(code="link_conflict", message=str(error)), report)
                return
            self._record_write(ctx, job, answer)
            self._linked(ctx, job)
            report.count("superseded")
            return
        self._announce(ctx, job, qbo_id, report)

    def _post_all(
        self, ctx: _Tenant, done: list[tuple[_Job, Body]], started: Any, report: BatchReport
    ) -> None:
        """The documents of one batch request QBO took: ``posted`` in as few transactions as the
        posting log can write (one summary update each), or one by one when something changed."""
        chunk: list[tuple[_Job, Body, Posting]] = []
        # Payments of one batch may pay the same invoice: one transaction names an item only once,
        # so the chunk marks each touched document once (the latest write's time).
        touches: dict[tuple[str, str], dict[str, Any]] = {}
        room = POSTING_ACTIONS

        def flush() -> None:
            if not chunk:
                return
            try:
                entries = self.posting_log.post_many(
                    [posting for _, _, posting in chunk], along=list(touches.values())
                )
            except (ConcurrentChangeError, InvalidTransitionError):
                for job, answer, _ in chunk:
                    self._posted(ctx, job, answer, started, report)
            else:
                for (job, _, posting), entry in zip(chunk, entries, strict=True):
                    job.entry = entry
                    self._announce(ctx, job, posting.qbo_id, report)
            chunk.clear()
            touches.clear()

        for job, answer in done:
            unlinked = job.existing_id is None and ctx.lookup.link(job.link_kind, job.entry.app_id) is None
            posting = self._posting(ctx, job, answer, started, new=unlinked)
            marks = self._touches(ctx, job, answer)
            added = [key for key in marks if key not in touches]
            if posting.actions + len(added) > room:
                flush()
                room = POSTING_ACTIONS
                added = list(marks)
            chunk.append((job, answer, posting))
            touches.update(marks)
            room -= posting.actions + len(added)
        flush()

    def _announce(self, ctx: _Tenant, job: _Job, qbo_id: str, report: BatchReport) -> None:
        """A document just posted: linked, counted, and its event published."""
        self._linked(ctx, job)
        ctx.posted += 1
        report.count("posted")
        entry = job.entry
        detail = {"kind": entry.kind, "appId": entry.app_id, "version": entry.version, "qboId": qbo_id}
        self.events.publish(
            make_event(DOCUMENT_POSTED, entry.tenant_id, detail, entry.kind, entry.app_id, str(entry.version))
        )

    @staticmethod
    def _linked(ctx: _Tenant, job: _Job) -> None:
        ctx.lookup.forget(job.link_kind, job.entry.app_id)
        if isinstance(job.document, AppClient):
            ctx.lookup.client_changed(job.entry.app_id)
        job.done = True

    def _call_failed(
        self,
        ctx: _Tenant,
        job: _Job,
        error: QboError | VaultError,
        started: Any,
        report: BatchReport,
        *,
        settle: bool = False,
    ) -> None:
        fault = _fault(error)
        if isinstance(error, ThrottledError):
            outcome, target = AttemptOutcome.THROTTLED, PostingState.QUEUED
        elif settle or (isinstance(error, QboError) and error.outcome_uncertain):
            outcome, target = AttemptOutcome.UNCERTAIN, PostingState.UNCERTAIN
        elif isinstance(error, VaultError | AuthenticationError | AuthorizationError) or error.retryable:
            outcome, target = AttemptOutcome.TRANSIENT, PostingState.QUEUED
        else:
            outcome, target = AttemptOutcome.REJECTED, PostingState.FAILED
        self._attempt(ctx, job, outcome, started, fault=fault, error=error)
        if target is PostingState.FAILED:
            self._fail(job, fault, report)
            return
        job.retry = True
        report.count(outcome.value)
        try:
            self._move(job.entry, target, error=fault)
        except (StaleVersionError, InvalidTransitionError):
            job.retry = False  # a newer version took over; its own message comes

    def _fail(self, job: _Job, fault: PostingFault, report: BatchReport) -> None:
        job.done = True
        entry = job.entry
        try:
            self._move(entry, PostingState.FAILED, error=fault)
        except (StaleVersionError, InvalidTransitionError):
            return
        report.count("failed")
        detail = {"kind": entry.kind, "appId": entry.app_id, "version": entry.version, "error": fault.message}
        self.events.publish(
            make_event(DOCUMENT_FAILED, entry.tenant_id, detail, entry.kind, entry.app_id, str(entry.version))
        )

    def _give_up(self, entry: PostingEntry, message: str, report: BatchReport) -> None:
        try:
            self._move(entry, PostingState.FAILED, error=PostingFault(code="not_connected", message=message))
        except (StaleVersionError, InvalidTransitionError):
            return
        report.count("failed")

    def _attempt(
        self,
        ctx: _Tenant,
        job: _Job,
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

    def _move(self, entry: PostingEntry, state: PostingState, **changes: Any) -> PostingEntry:
        """Move ``entry`` (as this worker last had it: no read unless it changed meanwhile)."""
        return self.posting_log.transition(
            entry.tenant_id,
            entry.kind,
            entry.app_id,
            expected_version=entry.version,
            to_state=state,
            seen=entry,
            **changes,
        )


# --- helpers ----------------------------------------------------------------------------------------


def _retry_marker(entry: PostingEntry, document: AppDocument) -> _Job:
    def never(_existing: tuple[str, str] | None) -> Body:
        raise AssertionError("a job waiting for its customer is never sent")

    return _Job(entry, document, ENTITIES[entry.kind], entry.kind, never, None, None, False, retry=True)


def _qbo_name(job: _Job, answer: Body) -> str | None:
    """What the link remembers of the QBO entity: a customer's DisplayName, a document's DocNumber."""
    name = answer.get("DisplayName") if job.entity == "Customer" else answer.get("DocNumber")
    return str(name) if name else None


def _marked(rows: Sequence[Body], job: _Job, wanted: Marker) -> Body | None:
    """The row carrying our marker (a customer keeps it in ``Notes``, a transaction in ``PrivateNote``)."""
    for row in rows:
        note = row.get("Notes") if isinstance(job.document, AppClient) else row.get("PrivateNote")
        if parse_marker(note if isinstance(note, str) else None) == wanted:
            return row
    return None


def _needs_lookup(entry: PostingEntry) -> bool:
    return entry.qbo_id is None and (entry.needs_lookup or entry.state is PostingState.UNCERTAIN)


def _select(entity: str, **equal: str) -> str:
    """A QBO query with equality conditions, every value quoted and escaped."""
    where = " AND ".join(f"{name} = '{_quote(value)}'" for name, value in equal.items())
    return f"SELECT * FROM {entity} WHERE {where}"  # noqa: S608 - QBO's query language, values escaped


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _fault(error: QboError | VaultError) -> PostingFault:
    if isinstance(error, QboError):
        return PostingFault(
            code=error.code or (str(error.status) if error.status else type(error).__name__),
            message=error.message[:1000],
            detail=error.detail[:2000] or None,
            element=error.element or None,
            intuit_tid=error.intuit_tid,
        )
    return PostingFault(code=type(error).__name__, message=str(error)[:1000])


def _mappings(
    document: AppInvoice | AppCreditMemo | AppPayment | AppCreditApplication,
    settings: TenantSettings,
    facts: CompanyFacts,
    lookup: StoreLookup,
) -> ResolvedMappings:
    """Everything the payload refers to; what is missing stays out (the builder names it)."""
    customer = lookup.customer_link(document.client_id)
    customer_id = customer.qbo_id if customer else ""
    if not customer_id:
        raise PayloadError(f"client {document.client_id!r} is not linked to a QBO customer")
    if isinstance(document, AppPayment | AppCreditApplication):
        invoices = {
            a.invoice_id: qbo for a in document.applications if (qbo := lookup.invoice_qbo_id(a.invoice_id))
        }
        if isinstance(document, AppCreditApplication):
            memo = lookup.credit_memo_qbo_id(document.id)
            return ResolvedMappings(customer_id=customer_id, invoices=invoices, credit_memo_id=memo)
        return ResolvedMappings(
            customer_id=customer_id, invoices=invoices, deposit_account_id=settings.deposit_account_id
        )
    items: dict[tuple[str, str], str] = {}
    taxes: dict[str, str] = {}
    for line in document.lines:
        item = lookup.item_for(line.kind, line.code)
        if item is not None:
            items[(line.kind, line.code)] = item
        if not facts.us and line.tax_id is not None and (tax := lookup.tax_code_for(line.tax_id)):
            taxes[line.tax_id] = tax
    return ResolvedMappings(
        customer_id=customer_id,
        items=items,
        tax_codes=taxes,
        # Only a document with tax_lines sends tax per rate (and needs its codes' rates).
        tax_code_rates=lookup.tax_code_rates(taxes) if document.tax_lines else {},
        revenue_account_id=settings.revenue_account_id,
    )


def _applied_less(job: _Job, answer: Body, lookup: StoreLookup) -> list[Reason]:
    """Notes for a payment QBO applied less of than the app asked (a credit QBO applied to the
    invoice by itself took the rest): what each invoice got; the rest is unapplied on the customer."""
    payment = job.document
    if not isinstance(payment, AppPayment):
        return []
    applied: dict[str, Decimal] = {}
    for line in answer.get("Line") or []:
        for linked in line.get("LinkedTxn") or [] if isinstance(line, dict) else []:
            if isinstance(linked, dict) and linked.get("TxnType") == "Invoice":
                key = str(linked.get("TxnId"))
                applied[key] = applied.get(key, Decimal("0.00")) + Decimal(str(line.get("Amount", 0)))
    notes = []
    for application in payment.applications:
        qbo = lookup.invoice_qbo_id(application.invoice_id)
        got = applied.get(qbo or "", Decimal("0.00"))
        if got < application.amount:
            details = {
                "invoice_id": application.invoice_id,
                "asked": str(application.amount),
                "applied": str(got.quantize(Decimal("0.01"))),
                "unapplied": str((application.amount - got).quantize(Decimal("0.01"))),
            }
            notes.append(reason_of(APPLIED_LESS_THAN_ASKED, details))
    return notes


def _capped(
    payment: AppPayment, mappings: ResolvedMappings, open_balances: dict[str, Decimal]
) -> ResolvedMappings:
    """The payment's mappings with what each invoice known to ``open_balances`` can still take;
    what this payment applies is taken off, so two payments of one delivery never apply the same
    open amount twice."""
    caps: dict[str, Decimal] = {}
    for application in payment.applications:
        qbo = mappings.invoices.get(application.invoice_id)
        if qbo is None or qbo not in open_balances:
            continue
        allowed = max(min(application.amount, open_balances[qbo]), Decimal("0.00"))
        caps[qbo] = allowed
        open_balances[qbo] -= allowed
    if not caps:
        return mappings
    return dataclasses.replace(mappings, open_balances=caps)


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
