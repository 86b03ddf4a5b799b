"""Payments against what QBO holds open.  QBO may apply a customer's open credit to an invoice by
itself, so an invoice can hold less open than the app's payment applies to it: the invoices the
version ledger knows QBO credited are read first (one query per 100) and a new payment applies what
each holds open; one QBO refuses for that reason (business rule 6000) is sent once more with the
balances read then.  A payment QBO applied less of than asked is posted with a note per invoice
saying what it got (``shared.push.jobs.applied_less``); the rest stays unapplied on the customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from shared.connections.vault import VaultError
from shared.kernel.clock import Clock
from shared.mapping.versions import VersionLedger
from shared.push.finding import quote
from shared.push.jobs import (
    BatchReport,
    Job,
    TenantRun,
    capped,
    fault_of,
    mappings_for,
    payment_builder,
)
from shared.push.models import AppPayment
from shared.push.posting_log import AttemptOutcome
from shared.qbo.errors import QboError

if TYPE_CHECKING:
    from shared.push.outcomes import Outcomes

BUSINESS_RULE_CODE: Final = "6000"  # QBO's business-rule refusal (a payment applying more than is open)
BALANCE_QUERY_IDS: Final = 100  # invoice ids per balance query
# A posting note: QBO held less open on an invoice than the app's payment applied to it.


class PaymentBalances:
    """Reads the open balances of invoices QBO credited, and resends a payment QBO refused for them."""

    def __init__(self, outcomes: Outcomes, clock: Clock, versions: VersionLedger | None = None) -> None:
        self.outcomes = outcomes
        self.clock = clock
        self.versions = versions

    def read_credited(self, ctx: TenantRun, payments: Sequence[AppPayment]) -> None:
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
        self.read_balances(ctx, [qbo for qbo in credited if qbo not in ctx.open_balances])

    @staticmethod
    def read_balances(ctx: TenantRun, invoice_ids: Sequence[str]) -> None:
        for start in range(0, len(invoice_ids), BALANCE_QUERY_IDS):
            chunk = sorted(invoice_ids[start : start + BALANCE_QUERY_IDS])
            listed = ", ".join(f"'{quote(qbo)}'" for qbo in chunk)
            for row in ctx.client.query(f"SELECT * FROM Invoice WHERE Id IN ({listed})"):  # noqa: S608
                ctx.open_balances[str(row["Id"])] = Decimal(str(row.get("Balance", "0")))

    def cap_and_resend(self, ctx: TenantRun, job: Job, error: QboError, report: BatchReport) -> bool:
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
        self.outcomes.attempt(ctx, job, AttemptOutcome.REJECTED, started, fault=fault_of(error), error=error)
        invoices = [q for a in payment.applications if (q := ctx.lookup.invoice_qbo_id(a.invoice_id))]
        for qbo in invoices:
            ctx.open_balances.pop(qbo, None)
        try:
            self.read_balances(ctx, invoices)
        except (QboError, VaultError) as failure:
            self.outcomes.call_failed(ctx, job, failure, started, report)
            return True
        mappings = capped(
            payment, mappings_for(payment, ctx.settings, ctx.facts, ctx.lookup), ctx.open_balances
        )
        job.build, job.capped = payment_builder(payment, mappings, ctx.facts), True
        started = self.clock.now()
        try:
            answer = ctx.client.create(
                job.entity, job.build(None), idempotency_key=f"{job.idempotency_key}:capped"
            )
        except (QboError, VaultError) as failure:
            self.outcomes.call_failed(ctx, job, failure, started, report)
            return True
        self.outcomes.posted(ctx, job, answer, started, report)
        return True
