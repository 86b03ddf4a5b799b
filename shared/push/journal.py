"""The summarised posting mode: one JournalEntry per day instead of one Invoice per document.  The
day's queued, uncertain and in-flight invoices are judged again; the ready ones and the day's
invoices already posted make the entry, which is created once, with a requestid derived from the
day and the ids and versions it holds, and afterwards updated in place (the ``journal_day`` link,
app id = the date, names it; an uncertain earlier attempt is found by DocNumber and marker).  Its
accounts are QBO's Accounts Receivable, the sales tax payable account when there is tax, and the
income account of each item used unless the tenant set one revenue account.  ``JournalPoster`` is
built by the push worker from its own collaborators.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from shared.connections.vault import VaultError
from shared.kernel.clock import Clock
from shared.kernel.events import DOCUMENT_POSTED
from shared.mapping.links import LinkConflictError, LinkStore
from shared.mapping.markers import Marker, parse_marker
from shared.mapping.versions import VersionLedger
from shared.push.finding import select
from shared.push.jobs import MAPPING_MISSING, BatchReport, Body, Builder, Job, TenantRun, needs_lookup
from shared.push.models import AppInvoice
from shared.push.outcomes import Outcomes
from shared.push.payloads import (
    JournalAccounts,
    PayloadError,
    ResolvedMappings,
    journal_doc_number,
    journal_entry_for_day,
)
from shared.push.posting_log import (
    InvalidTransitionError,
    PostingEntry,
    PostingFault,
    PostingLog,
    PostingState,
    StaleVersionError,
)
from shared.push.readiness import Ready, Skipped
from shared.push.service import evaluate, parse_document, reason_of
from shared.qbo.errors import QboError, StaleObjectError

_DAY_STATES = (PostingState.QUEUED, PostingState.UNCERTAIN, PostingState.IN_FLIGHT, PostingState.POSTED)
_TAX_PAYABLE_SUBTYPES = frozenset({"GlobalTaxPayable", "SalesTaxPayable"})


class JournalPoster:
    """Posts a day's summarised invoices as one JournalEntry, or updates the day's entry in place."""

    def __init__(
        self,
        outcomes: Outcomes,
        posting_log: PostingLog,
        links: LinkStore,
        clock: Clock,
        versions: VersionLedger | None = None,
    ) -> None:
        self.outcomes = outcomes
        self.posting_log = posting_log
        self.links = links
        self.clock = clock
        self.versions = versions

    def post_day(self, ctx: TenantRun, day: date, report: BatchReport) -> list[Job]:
        """Post (or update in place) the day's JournalEntry with every summarised invoice of ``day``;
        the jobs of the invoices it sent (none when no invoice of the day had to go)."""
        work, included = self._collect(ctx, day, report)
        if not work:
            return []
        mappings = {inv.id: self._mappings(ctx, inv) for inv in included}
        digest = hashlib.sha256(
            "\n".join(sorted(f"{inv.id}:v{inv.version}" for inv in included)).encode()
        ).hexdigest()[:32]
        key = f"{ctx.tenant_id}:journal_day:{day.isoformat()}:{digest}"
        try:
            accounts = self._accounts(ctx, included)

            def build(existing: tuple[str, str] | None) -> Body:
                return journal_entry_for_day(day, included, mappings, ctx.facts, accounts, existing=existing)

            build(None)
        except PayloadError as error:
            for job in work:
                self.outcomes.fail(job, PostingFault(code=MAPPING_MISSING, message=str(error)), report)
            return work
        except (QboError, VaultError) as error:
            started = self.clock.now()
            for job in work:
                if self.outcomes.start(job, report):
                    self.outcomes.call_failed(ctx, job, error, started, report)
            return work
        started_jobs = [job for job in work if self.outcomes.start(job, report)]
        if started_jobs:
            self._send(ctx, day, started_jobs, build, key=key, report=report)
        return work

    # --- the day's invoices ----------------------------------------------------------------------

    def _collect(self, ctx: TenantRun, day: date, report: BatchReport) -> tuple[list[Job], list[AppInvoice]]:
        """The jobs of the day's invoices that go into its entry now, and every invoice it holds."""
        work: list[Job] = []
        included: list[AppInvoice] = []
        for entry in self._day_entries(ctx.tenant_id, day):
            document = parse_document("invoice", entry.document)
            if not isinstance(document, AppInvoice):
                continue
            if entry.state is PostingState.POSTED:
                included.append(document)
                continue
            job = self._job(ctx, entry, document, report)
            if job is not None:
                work.append(job)
                included.append(document)
        return work, included

    def _day_entries(self, tenant_id: str, day: date) -> list[PostingEntry]:
        found: list[PostingEntry] = []
        token: str | None = None
        while True:
            page = self.posting_log.query_by_txn_date(
                tenant_id, day, day, kinds=("invoice",), states=_DAY_STATES, page_token=token, limit=500
            )
            found.extend(page.entries)
            token = page.next_token
            if not token:
                return found

    def _job(
        self, ctx: TenantRun, entry: PostingEntry, document: AppInvoice, report: BatchReport
    ) -> Job | None:
        """A summarised invoice that goes into its day's entry now, or None (moved aside)."""
        try:
            if entry.state is PostingState.IN_FLIGHT:
                entry = self.outcomes.move(entry, PostingState.UNCERTAIN)
            if entry.state is PostingState.QUEUED:
                readiness = evaluate(document, ctx.settings, ctx.facts, ctx.lookup, self.clock.now().date())
                if isinstance(readiness, Skipped):
                    reason = reason_of(readiness.reason.code, readiness.reason.details)
                    self.outcomes.move(entry, PostingState.SKIPPED, reasons=[reason])
                    report.count("skipped")
                    return None
                if not isinstance(readiness, Ready):
                    reasons = [reason_of(r.code, r.details) for r in readiness.reasons]
                    self.outcomes.move(entry, PostingState.NEEDS_ATTENTION, reasons=reasons)
                    report.count("needs_attention")
                    return None
        except (StaleVersionError, InvalidTransitionError):
            report.count("ignored")
            return None

        def never(_existing: tuple[str, str] | None) -> Body:
            raise AssertionError("a summarised invoice is sent as part of its day's journal entry")

        return Job(entry, document, "JournalEntry", "journal_day", never, None, None, needs_lookup(entry))

    @staticmethod
    def _mappings(ctx: TenantRun, invoice: AppInvoice) -> ResolvedMappings:
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

    # --- the entry's accounts --------------------------------------------------------------------

    def _accounts(self, ctx: TenantRun, invoices: Sequence[AppInvoice]) -> JournalAccounts:
        """A/R, tax payable (only when there is tax) and the income account of every item used."""
        master = ctx.settings.master_customer_id
        if not master:
            raise PayloadError("summarised mode needs a master customer")
        receivable = next(
            (
                str(row["Id"])
                for row in ctx.client.query(select("Account", AccountType="Accounts Receivable"))
            ),
            None,
        )
        if receivable is None:
            raise PayloadError("the company has no Accounts Receivable account")
        tax_payable = ""
        if any(inv.tax_total != 0 for inv in invoices if not inv.voided):
            tax_payable = self._tax_payable(ctx)
        return JournalAccounts(
            master_customer_id=master,
            receivable_account_id=receivable,
            tax_payable_account_id=tax_payable,
            revenue_account_id=ctx.settings.revenue_account_id,
            item_income_accounts=self._income_accounts(ctx, invoices),
        )

    @staticmethod
    def _tax_payable(ctx: TenantRun) -> str:
        rows = ctx.client.query(select("Account", AccountType="Other Current Liability"))
        tax_payable = next(
            (str(r["Id"]) for r in rows if r.get("AccountSubType") in _TAX_PAYABLE_SUBTYPES), ""
        )
        if not tax_payable:
            raise PayloadError("the company has no sales tax payable account")
        return tax_payable

    @staticmethod
    def _income_accounts(ctx: TenantRun, invoices: Sequence[AppInvoice]) -> dict[str, str]:
        """The income account of each item the invoices use (none when one revenue account is set)."""
        income: dict[str, str] = {}
        if ctx.settings.revenue_account_id is not None:
            return income
        for inv in invoices:
            for line in inv.lines:
                item = ctx.lookup.item_for(line.kind, line.code)
                if item is None or item in income:
                    continue
                ref = ctx.client.read("Item", item).get("IncomeAccountRef") or {}
                if ref.get("value"):
                    income[item] = str(ref["value"])
        return income

    # --- sending it ------------------------------------------------------------------------------

    def _send(
        self, ctx: TenantRun, day: date, jobs: list[Job], build: Builder, *, key: str, report: BatchReport
    ) -> None:
        """Create the day's entry, or update the one QBO has (linked, or found after an uncertain
        attempt), for the started ``jobs``; then record what became of them."""
        started = self.clock.now()
        link = ctx.lookup.link("journal_day", day.isoformat())
        existing = (link.qbo_id, link.sync_token) if link is not None else None
        try:
            if existing is None and any(needs_lookup(job.entry) for job in jobs):
                existing = self._find(ctx, day)
            if existing is None:
                answer = ctx.client.create("JournalEntry", build(None), idempotency_key=key)
            else:
                answer = self._update(ctx, existing, build, key)
        except (QboError, VaultError) as error:
            for job in jobs:
                self.outcomes.call_failed(ctx, job, error, started, report)
            return
        self._sent(ctx, day, jobs, answer, started=started, report=report)

    def _find(self, ctx: TenantRun, day: date) -> tuple[str, str] | None:
        """The day's JournalEntry, if an earlier attempt created it (DocNumber, then the marker)."""
        wanted = Marker("journal_day", day.isoformat())
        for row in ctx.client.query(select("JournalEntry", DocNumber=journal_doc_number(day))):
            note = row.get("PrivateNote")
            if parse_marker(note if isinstance(note, str) else None) == wanted:
                return str(row["Id"]), str(row["SyncToken"])
        return None

    @staticmethod
    def _update(
        ctx: TenantRun,
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

    def _sent(
        self, ctx: TenantRun, day: date, jobs: list[Job], answer: Body, *, started: Any, report: BatchReport
    ) -> None:
        """QBO has the day's entry: the ledger's record, the day's link, then each invoice ``posted``."""
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
            for job in jobs:
                self.outcomes.fail(job, PostingFault(code="link_conflict", message=str(error)), report)
            return
        ctx.lookup.forget("journal_day", day.isoformat())
        for job in jobs:
            self._posted(ctx, job, qbo_id, token, started=started, report=report)

    def _posted(
        self, ctx: TenantRun, job: Job, qbo_id: str, token: str, *, started: Any, report: BatchReport
    ) -> None:
        self.outcomes.succeeded(ctx, job, started)
        if not self.outcomes.moved(job, report, PostingState.POSTED, qbo_id=qbo_id, sync_token=token):
            return
        ctx.posted += 1
        report.count("posted")
        self.outcomes.publish(DOCUMENT_POSTED, job.entry, {"qbo_id": qbo_id})
