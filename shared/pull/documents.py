"""Applying QBO's changes to the documents we push and to payments (Q2), one CDC answer at a time.

Ours (linked, or known to the ledger as ours) changed in QBO is drift: "<Document> Changed in QBO"
with what changed.  The app owns its documents, so an invoice or credit memo it does not have is
ignored.  A payment another made on a linked customer is "Payment Received" (or voided); one that
spends credit memos on invoices is "Credit Applied in QBO", and the posting log of our documents it
touched gets a note once that event went out.  ``ChangeApplier`` (``shared.pull.changes``) reads
the ledger and the links for the whole answer first, then publishes and records what this produced.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final, Protocol

from shared.kernel.events import CREDIT_APPLIED_IN_QBO, PAYMENT_RECEIVED, PAYMENT_VOIDED_IN_QBO, OutboundEvent
from shared.kernel.reasons import Reason
from shared.mapping.links import Link
from shared.mapping.versions import KnownVersion, is_deleted
from shared.pull.rows import (
    DOCUMENTS,
    Applied,
    is_voided,
    last_updated,
    linked_txns,
    money,
    older_or_same,
    own_mark,
    ref_value,
    row_event,
    token_of,
)

# A posting-log note on our invoice or credit memo: QBO applied a credit to it by itself.
CREDIT_APPLIED_NOTE: Final = "credit_applied_in_qbo"


class Tally(Protocol):
    """What applying a row counts into (``shared.pull.changes.ApplyReport``)."""

    ignored: Counter[str]

    def echo(self, reason: str = ...) -> None: ...


def reason(code: str, details: Mapping[str, str]) -> Reason:
    """A posting-log note: a stable code and its details as JSON (as the push stores reasons)."""
    return Reason(code=code, detail=json.dumps(dict(details), sort_keys=True))


class DocumentChanges:
    """The invoices, credit memos and payments of one CDC answer: ``links`` holds every link their
    rows need (read once for the answer), ``paid`` the invoices a payment of the answer links;
    what they produce goes to ``out`` and their counts to ``report``."""

    def __init__(
        self,
        tenant_id: str,
        links: Mapping[tuple[str, str], Link],
        paid: set[str],
        report: Tally,
        out: Applied,
    ) -> None:
        self._tenant_id = tenant_id
        self._links = links
        self._paid = paid
        self._report = report
        self._out = out

    def _drift(
        self,
        entity: str,
        row: Mapping[str, Any],
        link_app_id: str,
        stored_token: str | None,
        applied: KnownVersion,
    ) -> None:
        """Ours changed in QBO: the drift event, and the version recorded once it went out."""
        kind, event_type = DOCUMENTS[entity]
        change = "deleted" if is_deleted(row) else "voided" if is_voided(row) else "changed"
        detail = {
            "kind": kind,
            "app_id": link_app_id,
            "qbo_id": str(row.get("Id")),
            "change": change,
            "sync_token": token_of(row),
            "stored_sync_token": stored_token,
            "doc_number": row.get("DocNumber"),
            "total": money(row.get("TotalAmt")),
            "balance": money(row.get("Balance")),
            "updated_at": last_updated(row),
        }
        self._out.record(applied)
        self._out.emit(row_event(event_type, self._tenant_id, detail, entity, row), applied)

    def document(self, entity: str, row: Mapping[str, Any], version: KnownVersion | None) -> None:
        """An invoice or credit memo: ours changed in QBO is drift; the app owns documents, so one
        it does not have is ignored."""
        kind, _ = DOCUMENTS[entity]
        qbo_id = str(row.get("Id"))
        link = self._links.get((kind, qbo_id))
        app_id = link.app_id if link is not None else version.app_id if version is not None else None
        if app_id is None:
            if own_mark(entity, row) is not None:
                self._report.echo("own_in_flight")  # ours, its posting not recorded yet
            else:
                self._report.ignored[f"{kind}_unlinked"] += 1
            return
        applied = (version or KnownVersion(entity, qbo_id, None)).applied(row, kind=kind, app_id=app_id)
        if version is None:  # posted before the ledger existed: the link's SyncToken is the baseline
            if link is not None and older_or_same(row, link.sync_token):
                self._report.echo()
                self._out.record(applied)
                return
            if entity == "Invoice" and not is_deleted(row) and not is_voided(row) and qbo_id in self._paid:
                self._report.ignored["invoice_paid"] += 1  # its balance moved with a payment of this set
                self._out.record(applied)
                return
        stored = str(version.sync_token) if version and version.sync_token is not None else None
        stored = stored or (link.sync_token if link else None)
        self._drift(entity, row, app_id, stored, applied)

    def payment(self, row: Mapping[str, Any], version: KnownVersion | None) -> None:
        """A payment: ours changed in QBO is drift; another's on a linked customer is a payment
        received or voided, or credits applied (by QBO itself when its auto-apply is on)."""
        qbo_id = str(row.get("Id"))
        ours = self._links.get(("payment", qbo_id))
        if ours is not None or (version is not None and version.own):
            app_id = ours.app_id if ours is not None else str(version.app_id if version else "")
            known = version or KnownVersion("Payment", qbo_id, None)
            applied = known.applied(row, kind="payment", app_id=app_id)
            if version is None and ours is not None and older_or_same(row, ours.sync_token):
                self._report.echo()
                self._out.record(applied)
                return
            stored = str(version.sync_token) if version and version.sync_token is not None else None
            stored = stored or (ours.sync_token if ours else None)
            self._drift("Payment", row, app_id, stored, applied)
            return
        if own_mark("Payment", row) is not None:
            self._report.echo("own_in_flight")  # a payment or credit application of ours being recorded
            return
        if is_deleted(row):
            self._report.ignored["payment_deleted"] += 1  # a tombstone does not name its customer
            return
        customer = ref_value(row, "CustomerRef")
        owner = None
        if customer is not None:
            owner = self._links.get(("client", customer)) or self._links.get(("site", customer))
        if owner is None:
            self._report.ignored["payment_unlinked"] += 1
            return
        applied = (version or KnownVersion("Payment", qbo_id, None)).applied(row)
        self._out.record(applied)
        if linked_txns(row, "CreditMemo"):
            event = self._credit_applied(row, owner)
            self._out.emit(event, applied)
            self._note_credit(row, event)
            return
        detail = {
            **self._payment_header(row, owner, customer),
            "total": money(row.get("TotalAmt")),
            "unapplied": money(row.get("UnappliedAmt")),
            "currency": ref_value(row, "CurrencyRef"),
            "payment_ref_num": row.get("PaymentRefNum"),
            "payment_method": (row.get("PaymentMethodRef") or {}).get("name")
            if isinstance(row.get("PaymentMethodRef"), Mapping)
            else None,
            "applied": self._applications(row, "Invoice", "invoice"),
        }
        kind = PAYMENT_VOIDED_IN_QBO if is_voided(row) else PAYMENT_RECEIVED
        self._out.emit(row_event(kind, self._tenant_id, detail, "Payment", row), applied)

    @staticmethod
    def _payment_header(row: Mapping[str, Any], owner: Link, customer: str | None) -> dict[str, Any]:
        return {
            "qbo_id": str(row.get("Id")),
            "sync_token": token_of(row),
            "client_id": owner.app_id,
            "client_kind": owner.kind,
            "qbo_customer_id": customer,
            "txn_date": row.get("TxnDate"),
            "updated_at": last_updated(row),
        }

    def _applications(self, row: Mapping[str, Any], txn_type: str, kind: str) -> list[dict[str, Any]]:
        key = "invoice" if kind == "invoice" else "credit_memo"
        found = []
        for qbo_txn, amount in linked_txns(row, txn_type):
            link = self._links.get((kind, qbo_txn))
            found.append(
                {
                    f"{key}_id": link.app_id if link else None,
                    f"qbo_{key}_id": qbo_txn,
                    "amount": money(amount),
                }
            )
        return found

    def _credit_applied(self, row: Mapping[str, Any], owner: Link) -> OutboundEvent:
        """A payment QBO made (or a bookkeeper made) that spends credit memos on invoices: with the
        company's "automatically apply credits" on, QBO spends an open credit on the customer's next
        invoice by itself."""
        detail = {
            **self._payment_header(row, owner, ref_value(row, "CustomerRef")),
            "total": money(row.get("TotalAmt")),
            "automatic": "automatically applied" in str(row.get("PrivateNote") or "").lower(),
            "credits": self._applications(row, "CreditMemo", "credit_memo"),
            "applied": self._applications(row, "Invoice", "invoice"),
        }
        return row_event(CREDIT_APPLIED_IN_QBO, self._tenant_id, detail, "Payment", row)

    def _note_credit(self, row: Mapping[str, Any], event: OutboundEvent) -> None:
        """A credit QBO applied by itself to our documents: their balances are less than the app
        believes (the push reads them before paying), and their posting log says so."""
        credits = [(q, money(a)) for q, a in linked_txns(row, "CreditMemo")]
        for qbo_invoice, amount in linked_txns(row, "Invoice"):
            link = self._links.get(("invoice", qbo_invoice))
            if link is None:
                continue
            self._out.credited.add(("Invoice", qbo_invoice))
            details = {
                "qbo_payment_id": str(row.get("Id")),
                "amount": money(amount) or "",
                "qbo_credit_memo_ids": ",".join(q for q, _ in credits),
            }
            note = reason(CREDIT_APPLIED_NOTE, details)
            self._out.notes.append(("invoice", link.app_id, note, event.event_id))
        for qbo_memo, amount in credits:
            link = self._links.get(("credit_memo", qbo_memo))
            if link is not None:
                details = {"qbo_payment_id": str(row.get("Id")), "amount": amount or ""}
                note = reason(CREDIT_APPLIED_NOTE, details)
                self._out.notes.append(("credit_memo", link.app_id, note, event.event_id))
