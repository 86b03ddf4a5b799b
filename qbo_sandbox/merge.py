"""Merging two customers "in QBO's UI": ``POST /_sandbox/companies/{realm}/merge``.

QBO has no API for a merge; a bookkeeper merges two customers in the UI by giving one the other's
display name.  QBO then moves every transaction of the merged-away customer to the one kept and
reports a change with operation ``Merge`` on the survivor, naming the merged-away id
(``deletedId`` in webhooks).  The sandbox reproduces that with :func:`merge_customers`.

Choices (QBO documents the outcome, not the mechanics):

- The merged-away customer stays stored, **inactive** (``Active: false``, its own name kept, a new
  SyncToken, journalled as an Update), so reads by id and CDC still find it, as they find any
  deactivated name.  QBO hides it from its lists; it does not hard-delete it.
- **Every** transaction whose header ``CustomerRef`` names the merged-away customer moves to the
  survivor (QBO moves all of them, open ones included): its ``CustomerRef`` changes, it gets a new
  SyncToken and each move is journalled as an Update.  Line-level customer references (billable
  expenses) are not moved.
- The open balance follows: the merged-away customer's ``Balance`` drops to 0 and the survivor's
  (and its ancestors' ``BalanceWithJobs``) rise by it; derived, so the survivor's SyncToken does
  not change.
- Refused (QBO's validation fault, 400): the same customer twice, an unknown or already inactive
  customer on either side, and a merged-away customer that still has sub-customers (QBO asks to
  move them first).
- Journal order: the moves, the deactivation, then ``Change(at, "Customer", to_id, "Merge",
  deleted_id=from_id)``: webhooks carry all of them; CDC, which has no merge, shows the survivor
  and the merged-away customer (inactive) among the changed customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qbo_sandbox import faults
from qbo_sandbox.accounting.common import cents, money
from qbo_sandbox.accounting.names import adjust_customer_balance
from qbo_sandbox.company import Change, Company, Entity
from qbo_sandbox.wire import Request, Response

if TYPE_CHECKING:
    from qbo_sandbox.sandbox import Sandbox

ENTITY = "Customer"


@dataclass
class MergeResult:
    survivor: Entity
    merged: Entity
    moved: list[tuple[str, str]] = field(default_factory=list)  # (entity, Id) of moved transactions
    balance_moved: Decimal = Decimal(0)

    def public(self, company: Company) -> dict[str, Any]:
        return {
            ENTITY: company.snapshot(self.survivor),
            "merged": company.snapshot(self.merged),
            "moved": [{"entity": entity, "Id": entity_id} for entity, entity_id in self.moved],
        }


def _active_customer(company: Company, customer_id: str, element: str) -> Entity:
    row = company.get(ENTITY, customer_id)
    if row is None or row.get("Active") is False:
        raise faults.object_not_found(ENTITY, customer_id, element)
    return row


def _parent(row: Entity) -> str | None:
    ref = row.get("ParentRef")
    return str(ref["value"]) if isinstance(ref, dict) and ref.get("value") is not None else None


def merge_customers(company: Company, from_id: str, to_id: str, now: datetime) -> MergeResult:
    """Merge customer ``from_id`` into ``to_id`` (caller holds ``company.lock``); see the module
    docstring for what changes and what is journalled.  Raises :class:`faults.QboFault`."""
    from_id, to_id = str(from_id), str(to_id)
    if from_id == to_id:
        raise faults.business_rule("A customer cannot be merged into itself", "Id")
    merged = _active_customer(company, from_id, "from_id")
    survivor = _active_customer(company, to_id, "to_id")
    children = [
        r["Id"] for r in company.rows(ENTITY) if _parent(r) == from_id and r.get("Active") is not False
    ]
    if children:
        raise faults.business_rule(
            f"Customer {from_id} has sub-customers ({', '.join(children)}); move them before merging",
            "from_id",
        )
    result = MergeResult(survivor=survivor, merged=merged)
    target_ref = {"value": to_id, "name": str(survivor.get("DisplayName", ""))}
    for entity in sorted(company.entities):
        if entity == ENTITY:
            continue
        for row in list(company.rows(entity)):
            ref = row.get("CustomerRef")
            if isinstance(ref, dict) and str(ref.get("value")) == from_id:
                row["CustomerRef"] = dict(target_ref)
                company.replace(entity, row, now)
                result.moved.append((entity, str(row["Id"])))
    balance = cents(money(merged.get("Balance", 0), "Balance"))
    if balance:
        adjust_customer_balance(company, from_id, -balance)
        adjust_customer_balance(company, to_id, balance)
    result.balance_moved = balance
    merged["Active"] = False
    company.replace(ENTITY, merged, now)
    company.record(Change(now, ENTITY, to_id, "Merge", deleted_id=from_id))
    return result


# --- control route --------------------------------------------------------------------------------


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: Literal["Customer"] = "Customer"
    from_id: str = Field(min_length=1, max_length=20, pattern=r"^[0-9]+$")
    to_id: str = Field(min_length=1, max_length=20, pattern=r"^[0-9]+$")


def control_merge(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    """``POST /_sandbox/companies/{realm}/merge {"entity": "Customer", "from_id", "to_id"}``: a
    merge made in QBO's UI (no token, limit or counter; journalled like any change)."""
    company = sandbox.company(params["realm"])
    if company is None:
        return Response.json({"error": f"no company with realm {params['realm']}"}, status=404)
    try:
        raw = request.json() if request.body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return Response.json({"error": "the body is not valid JSON"}, status=400)
    try:
        body = MergeIn.model_validate(raw)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
            for e in exc.errors()
        ]
        return Response.json({"error": "invalid body", "problems": problems}, status=400)
    now = sandbox.clock.now()
    with company.lock:
        try:
            result = merge_customers(company, body.from_id, body.to_id, now)
        except faults.QboFault as fault:
            return Response.json(fault.body(company.local(now)), status=fault.status)
        return Response.json(result.public(company))
