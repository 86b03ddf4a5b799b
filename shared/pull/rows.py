"""QBO's rows as the pull reads them, and what applying one CDC answer produces.

Small readers of a CDC row (its id, references, money, SyncToken, void state, our marker, the
transactions a payment links), shared by the customers' side (``shared.pull.changes``) and the
documents' (``shared.pull.documents``), and ``Applied``: the events, ledger versions and notes an
answer gives, published and recorded together by ``ChangeApplier``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from shared.kernel.events import (
    CREDIT_MEMO_CHANGED_IN_QBO,
    INVOICE_CHANGED_IN_QBO,
    PAYMENT_CHANGED_IN_QBO,
    DetailType,
    OutboundEvent,
    make_event,
)
from shared.kernel.reasons import Reason
from shared.mapping.markers import parse_marker
from shared.mapping.versions import KnownVersion, sync_token

# Documents we push, by QBO entity: the link kind and the drift event.
DOCUMENTS: Final[Mapping[str, tuple[str, DetailType]]] = {
    "Invoice": ("invoice", INVOICE_CHANGED_IN_QBO),
    "CreditMemo": ("credit_memo", CREDIT_MEMO_CHANGED_IN_QBO),
    "Payment": ("payment", PAYMENT_CHANGED_IN_QBO),
}
# Markers our push writes on what it creates (a customer's Notes, a transaction's PrivateNote): a row
# carrying one that the ledger does not know yet is our write still being recorded.
OWN_MARKS: Final[Mapping[str, tuple[str, ...]]] = {
    "Customer": ("client", "site"),
    "Invoice": ("invoice",),
    "CreditMemo": ("credit_memo",),
    "Payment": ("payment", "credit_application"),
}

ROW_ID: Final = re.compile(r"^[^#\x00-\x1f]{1,128}$")
_CENT: Final = Decimal("0.01")


# --- reading a row --------------------------------------------------------------------------------


def ref_value(row: Mapping[str, Any], name: str) -> str | None:
    ref = row.get(name)
    if isinstance(ref, Mapping) and ref.get("value") is not None:
        return str(ref["value"])
    return None


def money(value: Any) -> str | None:
    """An amount as QBO sent it (Decimal or int) as an exact decimal string with at least two
    decimals ("40.1" -> "40.10", "5" -> "5.00"); more precision than cents is kept, never rounded."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(_CENT)
    return format(amount, "f")


def token_of(row: Mapping[str, Any]) -> str:
    return str(row.get("SyncToken", ""))


def is_voided(row: Mapping[str, Any]) -> bool:
    """QBO keeps a voided document with zero amounts and "Voided" in its private note."""
    note = str(row.get("PrivateNote") or "")
    total = money(row.get("TotalAmt", 0))
    return "voided" in note.lower() and total is not None and Decimal(total) == 0


def last_updated(row: Mapping[str, Any]) -> str | None:
    meta = row.get("MetaData")
    stamp = meta.get("LastUpdatedTime") if isinstance(meta, Mapping) else None
    return str(stamp) if stamp else None


def own_mark(entity: str, row: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, app id) of our marker on a row, if it carries one of ours for its entity."""
    note = row.get("Notes") if entity == "Customer" else row.get("PrivateNote")
    found = parse_marker(note if isinstance(note, str) else None)
    if found is None or found.kind not in OWN_MARKS.get(entity, ()):
        return None
    return found.kind, found.app_id


def row_id(row: Mapping[str, Any]) -> str | None:
    value = row.get("Id")
    text = str(value) if value is not None else ""
    return text if ROW_ID.match(text) else None


def linked_txns(row: Mapping[str, Any], txn_type: str) -> list[tuple[str, Any]]:
    """(TxnId, line Amount) of a payment's lines that link a ``txn_type``."""
    found: list[tuple[str, Any]] = []
    for line in row.get("Line") or []:
        if not isinstance(line, Mapping):
            continue
        for linked in line.get("LinkedTxn") or []:
            if isinstance(linked, Mapping) and linked.get("TxnType") == txn_type and linked.get("TxnId"):
                found.append((str(linked["TxnId"]), line.get("Amount")))
    return found


def older_or_same(row: Mapping[str, Any], stored: str | None) -> bool:
    """A row whose SyncToken is not greater than ``stored`` (as numbers, never as text)."""
    token = sync_token(row)
    return token is not None and stored is not None and stored.isdigit() and token <= int(stored)


def row_event(
    kind: DetailType, tenant_id: str, detail: dict[str, Any], entity: str, row: Mapping[str, Any]
) -> OutboundEvent:
    """The event of a row, its ``detail`` built through the pull's model of ``kind``: its id derives
    from (entity, Id, SyncToken), so a re-publication after a crash between publishing and recording
    carries the same id."""
    from shared.kernel.event_models import model_of

    built = model_of(kind, "pull").model_validate(detail)
    return make_event(kind, tenant_id, built, entity, str(row.get("Id")), token_of(row))


# --- what applying produces -----------------------------------------------------------------------


@dataclass
class Applied:
    """What applying one CDC answer produces, before it is published and recorded."""

    events: list[OutboundEvent] = field(default_factory=list)
    versions: list[KnownVersion] = field(default_factory=list)
    # The events each new version waits on: it is recorded only once they all went out.
    waits_on: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Our invoices a credit was applied to in QBO (the push reads their balance before paying them).
    credited: set[tuple[str, str]] = field(default_factory=set)
    # Notes for the posting log: (kind, app id, note), written once their event went out.
    notes: list[tuple[str, str, Reason, str]] = field(default_factory=list)

    def emit(self, event: OutboundEvent, version: KnownVersion | None) -> None:
        self.events.append(event)
        if version is not None:
            self.waits_on.setdefault(version.key, []).append(event.event_id)

    def record(self, version: KnownVersion) -> None:
        self.versions.append(version)
