"""The sandbox's customer merge (``qbo_sandbox.merge``): what QBO does when a bookkeeper merges two
customers in its UI, and the control route that triggers it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from qbo_sandbox.company import Change, Company
from qbo_sandbox.faults import QboFault
from qbo_sandbox.merge import merge_customers
from qbo_sandbox.sandbox import Sandbox
from qbo_sandbox.settings import SandboxSettings
from qbo_sandbox.wire import Request, Response

# Seeded US company (Craig's): customer 3 "Cool Cars" owes 420 on one invoice and has one payment;
# 23 "Barnett Design" is a job under 22 and owes 274.50; 4 and 24 are top-level customers.


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(SandboxSettings(port=0))
    yield box
    box.webhooks.stop()


@pytest.fixture
def company(sandbox: Sandbox) -> Company:
    return sandbox.create_company("US")


def _customer(company: Company, customer_id: str) -> dict[str, Any]:
    row = company.get("Customer", customer_id)
    assert row is not None
    return row


def _refs(company: Company, customer_id: str) -> list[tuple[str, str]]:
    return sorted(
        (entity, row["Id"])
        for entity, table in company.entities.items()
        for row in table.values()
        if isinstance(row.get("CustomerRef"), dict) and row["CustomerRef"].get("value") == customer_id
    )


def _post(sandbox: Sandbox, realm: str, body: object) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return sandbox.handle(
        Request("POST", f"/_sandbox/companies/{realm}/merge", {}, {"content-type": "application/json"}, raw)
    )


def test_merge_moves_transactions_and_balance_and_deactivates_the_merged_away(
    sandbox: Sandbox, company: Company
) -> None:
    now = sandbox.clock.now() + timedelta(minutes=1)
    transactions = _refs(company, "3")
    assert transactions == [("Invoice", transactions[0][1]), ("Payment", transactions[1][1])]
    tokens = {key: company.get(*key)["SyncToken"] for key in transactions}  # type: ignore[index]
    survivor_token = _customer(company, "4")["SyncToken"]
    journal_before = len(company.journal)

    result = merge_customers(company, "3", "4", now)

    # Every transaction of Cool Cars now belongs to Diego Rodriguez, as a new version
    assert _refs(company, "3") == []
    assert _refs(company, "4") == transactions
    assert sorted(result.moved) == transactions
    for key in transactions:
        row = company.get(*key)
        assert row is not None
        assert row["CustomerRef"] == {"value": "4", "name": "Diego Rodriguez"}
        assert int(row["SyncToken"]) == int(tokens[key]) + 1
    # The open balance follows; the survivor's SyncToken does not move (derived fields)
    merged, survivor = _customer(company, "3"), _customer(company, "4")
    assert (merged["Balance"], merged["BalanceWithJobs"]) == (0, 0)
    assert (survivor["Balance"], survivor["BalanceWithJobs"]) == (420, 420)
    assert survivor["SyncToken"] == survivor_token
    # The merged-away customer is kept, inactive, as a new version
    assert merged["Active"] is False
    assert merged["DisplayName"] == "Cool Cars"
    # Journal: the moves, the deactivation, then the Merge naming the merged-away id
    added = company.journal[journal_before:]
    assert added[-1] == Change(now, "Customer", "4", "Merge", deleted_id="3")
    assert added[-2] == Change(now, "Customer", "3", "Update")
    assert sorted((c.entity, c.entity_id, c.operation) for c in added[:-2]) == [
        (entity, entity_id, "Update") for entity, entity_id in transactions
    ]


def test_merging_a_job_rolls_its_balance_out_of_the_old_parent(sandbox: Sandbox, company: Company) -> None:
    parent_before = _customer(company, "22")["BalanceWithJobs"]

    merge_customers(company, "23", "24", sandbox.clock.now())

    assert _customer(company, "22")["BalanceWithJobs"] == pytest.approx(parent_before - 274.5)
    assert _customer(company, "24")["Balance"] == pytest.approx(362.07 + 274.5)
    assert _customer(company, "23")["Active"] is False


@pytest.mark.parametrize(
    ("from_id", "to_id", "code"),
    [
        ("4", "4", "6000"),  # into itself
        ("999", "4", "610"),  # unknown
        ("4", "999", "610"),
        ("7", "4", "6000"),  # still has sub-customers (8 and 9)
    ],
)
def test_refused_merges_change_nothing(
    sandbox: Sandbox, company: Company, from_id: str, to_id: str, code: str
) -> None:
    journal_before = len(company.journal)
    with pytest.raises(QboFault) as raised:
        merge_customers(company, from_id, to_id, sandbox.clock.now())
    assert raised.value.code == code
    assert len(company.journal) == journal_before
    assert _customer(company, "4")["Active"] is True


def test_an_inactive_customer_cannot_be_merged_again(sandbox: Sandbox, company: Company) -> None:
    merge_customers(company, "5", "6", sandbox.clock.now())
    with pytest.raises(QboFault) as raised:
        merge_customers(company, "5", "4", sandbox.clock.now())
    assert raised.value.code == "610"
    with pytest.raises(QboFault):
        merge_customers(company, "4", "5", sandbox.clock.now())


def test_control_route_merges_and_reports_like_qbo(sandbox: Sandbox, company: Company) -> None:
    seen: list[Change] = []
    company.listeners.append(lambda _co, change: seen.append(change))

    answer = _post(sandbox, company.realm_id, {"entity": "Customer", "from_id": "3", "to_id": "4"})

    assert answer.status == 200, answer.body
    body = json.loads(answer.body)
    assert body["Customer"]["Id"] == "4"
    assert body["merged"]["Id"] == "3"
    assert body["merged"]["Active"] is False
    assert sorted(m["entity"] for m in body["moved"]) == ["Invoice", "Payment"]
    # The listeners (the webhook dispatcher among them) hear the Merge with its deleted id
    assert (seen[-1].operation, seen[-1].entity_id, seen[-1].deleted_id) == ("Merge", "4", "3")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"entity": "Vendor", "from_id": "3", "to_id": "4"}, 400),
        ({"from_id": "3"}, 400),
        ({"from_id": "3", "to_id": "4", "extra": 1}, 400),
        ({"from_id": "x3", "to_id": "4"}, 400),
        (b"{not json", 400),
        ({"from_id": "3", "to_id": "3"}, 400),
    ],
)
def test_control_route_refuses_bad_bodies(
    sandbox: Sandbox, company: Company, body: object, status: int
) -> None:
    journal_before = len(company.journal)
    answer = _post(sandbox, company.realm_id, body)
    assert answer.status == status, answer.body
    assert len(company.journal) == journal_before


def test_control_route_unknown_realm_is_404(sandbox: Sandbox) -> None:
    assert _post(sandbox, "123", {"from_id": "3", "to_id": "4"}).status == 404
