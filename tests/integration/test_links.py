"""The links table (moto, in process): one-to-one on both sides, idempotent re-links, unlink, reverse
lookup, clear, tenant isolation, pagination, and what each method costs in DynamoDB operations."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from infra import tables
from shared.adapters.dynamo import InvalidPageTokenError
from shared.kernel import constants
from shared.mapping.links import (
    InvalidLinkRequestError,
    Link,
    LinkBusyError,
    LinkConflictError,
    LinkNotFoundError,
    LinkStore,
    LinkStoreError,
)
from tests.moto_env import REGION, FixedClock, fresh_table, taken


@dataclass
class World:
    table: Any
    store: LinkStore
    clock: FixedClock
    calls: Counter[str]

    def count(self) -> Counter[str]:
        """DynamoDB operations made since the last count."""
        return taken(self.calls)


@pytest.fixture
def world(module_dynamodb: Any) -> Iterator[World]:
    clock = FixedClock()
    with fresh_table(module_dynamodb, tables.LINKS) as (table, calls):
        yield World(table, LinkStore(table, clock), clock, calls)


def raw_items(world: World) -> list[dict[str, Any]]:
    """Every item in the table (test-side inspection only)."""
    return list(world.table.scan()["Items"])


# --- one-to-one -----------------------------------------------------------------------------------


def test_link_is_readable_from_both_sides(world: World) -> None:
    world.store.link(
        "firm-a",
        "client",
        "c-1",
        "58",
        qbo_name="Acme Ltd",
        sync_token="0",
        content_hash="h1",
        source="export",
    )

    by_app = world.store.get_by_app("firm-a", "client", "c-1")
    by_qbo = world.store.get_by_qbo("firm-a", "client", "58")

    assert by_app == by_qbo
    assert by_app == Link(
        tenant_id="firm-a",
        kind="client",
        app_id="c-1",
        qbo_id="58",
        qbo_name="Acme Ltd",
        sync_token="0",
        content_hash="h1",
        source="export",
        linked_at=world.clock.at,
    )
    keys = {(item["pk"], item["sk"]) for item in raw_items(world)}
    assert keys == {("TENANT#firm-a#KIND#client", "APP#c-1"), ("TENANT#firm-a#KIND#client", "QBO#58")}


def test_a_second_qbo_partner_for_an_app_entity_is_refused(world: World) -> None:
    world.store.link("firm-a", "client", "c-1", "58")

    with pytest.raises(LinkConflictError) as refused:
        world.store.link("firm-a", "client", "c-1", "59")

    assert refused.value.side == "app"
    assert refused.value.app_partner == "58"
    assert "c-1 is already linked to QBO id 58" in str(refused.value)
    assert world.store.get_by_qbo("firm-a", "client", "59") is None
    assert len(raw_items(world)) == 2


def test_a_second_app_partner_for_a_qbo_entity_is_refused(world: World) -> None:
    world.store.link("firm-a", "client", "c-1", "58")

    with pytest.raises(LinkConflictError) as refused:
        world.store.link("firm-a", "client", "c-2", "58")

    assert refused.value.side == "qbo"
    assert refused.value.qbo_partner == "c-1"
    assert world.store.get_by_app("firm-a", "client", "c-2") is None
    assert world.store.get_by_qbo("firm-a", "client", "58") is not None


def test_a_link_conflicting_on_both_sides_names_both_partners(world: World) -> None:
    world.store.link("firm-a", "work_code", "w-1", "10")
    world.store.link("firm-a", "work_code", "w-2", "20")

    with pytest.raises(LinkConflictError) as refused:
        world.store.link("firm-a", "work_code", "w-1", "20")

    assert refused.value.side == "both"
    assert (refused.value.app_partner, refused.value.qbo_partner) == ("10", "w-2")


def test_relinking_the_same_pair_is_idempotent_and_refreshes_what_is_given(world: World) -> None:
    world.store.link("firm-a", "client", "c-1", "58", qbo_name="Acme", sync_token="0", source="auto")
    first = world.store.get_by_app("firm-a", "client", "c-1")
    world.clock.at += timedelta(hours=1)

    world.store.link("firm-a", "client", "c-1", "58", sync_token="3", source="manual")

    again = world.store.get_by_app("firm-a", "client", "c-1")
    assert first is not None
    assert again is not None
    assert (again.linked_at, again.source, again.qbo_name) == (first.linked_at, "auto", "Acme")
    assert again.sync_token == "3"
    assert len(raw_items(world)) == 2


def test_the_same_ids_in_another_kind_are_another_link(world: World) -> None:
    world.store.link("firm-a", "work_code", "x-1", "7")
    world.store.link("firm-a", "expense_code", "x-1", "8")

    work = world.store.get_by_app("firm-a", "work_code", "x-1")
    expense = world.store.get_by_app("firm-a", "expense_code", "x-1")
    assert work is not None
    assert expense is not None
    assert (work.qbo_id, expense.qbo_id) == ("7", "8")


# --- unlink, record_sync ------------------------------------------------------------------------------


def test_unlink_removes_both_sides_and_frees_both_ids(world: World) -> None:
    world.store.link("firm-a", "client", "c-1", "58")

    removed = world.store.unlink("firm-a", "client", "c-1")

    assert removed is not None
    assert removed.qbo_id == "58"
    assert world.store.get_by_app("firm-a", "client", "c-1") is None
    assert world.store.get_by_qbo("firm-a", "client", "58") is None
    assert raw_items(world) == []
    world.store.link("firm-a", "client", "c-2", "58")
    world.store.link("firm-a", "client", "c-1", "59")
    assert world.store.unlink("firm-a", "client", "c-9") is None


def test_unlink_from_the_qbo_side(world: World) -> None:
    world.store.link("firm-a", "site", "s-1", "70")

    removed = world.store.unlink_qbo("firm-a", "site", "70")

    assert removed is not None
    assert removed.app_id == "s-1"
    assert raw_items(world) == []
    assert world.store.unlink_qbo("firm-a", "site", "70") is None


def test_a_reverse_entry_that_does_not_point_back_is_not_a_link(world: World) -> None:
    # Given a reverse entry whose link points elsewhere (what a read between two writes could see)
    world.store.link("firm-a", "client", "c-1", "58")
    world.table.put_item(
        Item={"pk": "TENANT#firm-a#KIND#client", "sk": "QBO#77", "app_id": "c-1", "qbo_id": "77"}
    )
    # and a link whose reverse entry is gone
    world.store.link("firm-a", "client", "c-2", "59")
    world.table.delete_item(Key={"pk": "TENANT#firm-a#KIND#client", "sk": "QBO#59"})

    assert world.store.get_by_qbo("firm-a", "client", "77") is None
    removed = world.store.unlink("firm-a", "client", "c-2")  # the damaged pair can still be removed
    assert removed is not None
    assert removed.qbo_id == "59"
    assert world.store.get_by_app("firm-a", "client", "c-2") is None


def test_record_sync_stores_the_new_sync_token_and_hash(world: World) -> None:
    world.store.link("firm-a", "invoice", "inv-1", "130", sync_token="0", content_hash="h0", source="push")
    world.clock.at += timedelta(minutes=5)

    world.store.record_sync("firm-a", "invoice", "inv-1", "1", "h1", qbo_id="130")

    link = world.store.get_by_app("firm-a", "invoice", "inv-1")
    assert link is not None
    assert (link.sync_token, link.content_hash, link.synced_at) == ("1", "h1", world.clock.at)


def test_record_sync_never_creates_a_link_nor_writes_to_another_partner(world: World) -> None:
    with pytest.raises(LinkNotFoundError):
        world.store.record_sync("firm-a", "invoice", "inv-1", "1", "h1")
    assert raw_items(world) == []

    world.store.link("firm-a", "invoice", "inv-1", "130", sync_token="0")
    with pytest.raises(LinkConflictError) as refused:
        world.store.record_sync("firm-a", "invoice", "inv-1", "5", "h5", qbo_id="999")
    assert refused.value.app_partner == "130"
    link = world.store.get_by_app("firm-a", "invoice", "inv-1")
    assert link is not None
    assert link.sync_token == "0"


def test_get_many_reads_several_links_in_one_call(world: World) -> None:
    for n in range(5):
        world.store.link("firm-a", "work_code", f"w-{n}", str(100 + n))
    world.count()

    found = world.store.get_many("firm-a", "work_code", ["w-0", "w-3", "w-3", "missing"])

    assert {app: link.qbo_id for app, link in found.items()} == {"w-0": "100", "w-3": "103"}
    assert world.count() == Counter({"BatchGetItem": 1})


# --- clear -------------------------------------------------------------------------------------------


def test_clear_removes_every_link_of_one_kind_only(world: World) -> None:
    for n in range(15):  # more than one transaction's worth
        world.store.link("firm-a", "client", f"c-{n}", str(1000 + n))
    world.store.link("firm-a", "employee", "e-1", "5")

    assert world.store.clear("firm-a", "client") == 15

    assert world.store.list("firm-a", "client").links == []
    assert world.store.get_by_qbo("firm-a", "client", "1007") is None
    assert world.store.get_by_app("firm-a", "employee", "e-1") is not None
    assert len(raw_items(world)) == 2
    world.store.link("firm-a", "client", "c-new", "1007")  # the QBO ids are free again
    assert world.store.clear("firm-a", "client") == 1
    assert world.store.clear("firm-a", "client") == 0


def test_clear_tenant_removes_every_kind_of_one_tenant_only(world: World) -> None:
    for kind in constants.LINK_KINDS:
        world.store.link("firm-a", kind, "same-id", "42")
        world.store.link("firm-b", kind, "same-id", "42")

    assert world.store.clear_tenant("firm-a") == len(constants.LINK_KINDS)

    for kind in constants.LINK_KINDS:
        assert world.store.get_by_app("firm-a", kind, "same-id") is None
        assert world.store.get_by_app("firm-b", kind, "same-id") is not None
    assert {item["pk"].split("#")[1] for item in raw_items(world)} == {"firm-b"}


# --- tenant isolation -------------------------------------------------------------------------------


def test_tenants_with_the_same_ids_never_meet(world: World) -> None:
    world.store.link("firm-a", "client", "c-1", "58", qbo_name="A's customer")

    # The same app and QBO ids are free in another tenant (another company).
    assert world.store.get_by_app("firm-b", "client", "c-1") is None
    assert world.store.get_by_qbo("firm-b", "client", "58") is None
    assert world.store.unlink("firm-b", "client", "c-1") is None
    assert world.store.clear("firm-b", "client") == 0
    assert world.store.list("firm-b", "client").links == []
    world.store.link("firm-b", "client", "c-1", "58", qbo_name="B's customer")
    world.store.unlink("firm-b", "client", "c-1")

    kept = world.store.get_by_app("firm-a", "client", "c-1")
    assert kept is not None
    assert kept.qbo_name == "A's customer"
    with pytest.raises(LinkNotFoundError):
        world.store.record_sync("firm-b", "client", "c-1", "9", "h")


def test_ids_and_kinds_that_could_break_the_key_design_are_refused(world: World) -> None:
    for tenant, kind, app_id, qbo_id in [
        ("firm#b", "client", "c-1", "1"),  # '#' would let a tenant forge another's key
        ("", "client", "c-1", "1"),
        ("firm-a", "customer", "c-1", "1"),  # not a kind
        ("firm-a", "client", "c#1", "1"),
        ("firm-a", "client", "x" * 65, "1"),
        ("firm-a", "client", "c-1", "1#2"),
        ("firm-a", "client", "c-1", ""),
    ]:
        with pytest.raises(InvalidLinkRequestError):
            world.store.link(tenant, kind, app_id, qbo_id)
    with pytest.raises(InvalidLinkRequestError):
        world.store.get_by_app("firm-a", "client", "c#1")
    with pytest.raises(InvalidLinkRequestError):
        world.store.link("firm-a", "client", "c-1", "1", source="guess")  # type: ignore[arg-type]
    assert raw_items(world) == []
    assert world.calls["TransactWriteItems"] == 0


# --- pagination -------------------------------------------------------------------------------------


def test_list_pages_through_every_link_in_app_id_order(world: World) -> None:
    for n in range(25):
        world.store.link("firm-a", "client", f"c-{n:02d}", str(n))
    world.store.link("firm-a", "site", "s-1", "900")

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = world.store.list("firm-a", "client", page_token=token, limit=10)
        pages += 1
        seen += [link.app_id for link in page.links]
        token = page.next_token
        if token is None:
            break

    assert seen == [f"c-{n:02d}" for n in range(25)]
    assert pages == 3


def test_a_page_token_only_works_for_its_own_tenant_and_kind(world: World) -> None:
    for n in range(3):
        world.store.link("firm-a", "client", f"c-{n}", str(n))
        world.store.link("firm-b", "client", f"c-{n}", str(n))
    token = world.store.list("firm-a", "client", limit=1).next_token
    assert token is not None

    with pytest.raises(InvalidPageTokenError):
        world.store.list("firm-b", "client", page_token=token)
    with pytest.raises(InvalidPageTokenError):
        world.store.list("firm-a", "site", page_token=token)
    forged = base64.urlsafe_b64encode(
        json.dumps({"pk": "TENANT#firm-b#KIND#client", "sk": "QBO#1"}).encode()
    ).decode()
    with pytest.raises(InvalidPageTokenError):
        world.store.list("firm-b", "client", page_token=forged)
    for garbage in ("", "%%%", "bm90IGpzb24", "W10"):  # '', not base64, 'not json', '[]'
        with pytest.raises(InvalidPageTokenError):
            world.store.list("firm-a", "client", page_token=garbage)
    assert [link.app_id for link in world.store.list("firm-a", "client", page_token=token).links] == [
        "c-1",
        "c-2",
    ]


def test_page_limits_are_bounded(world: World) -> None:
    with pytest.raises(InvalidLinkRequestError):
        world.store.list("firm-a", "client", limit=0)
    with pytest.raises(InvalidLinkRequestError):
        world.store.list("firm-a", "client", limit=1001)


# --- DynamoDB failures ------------------------------------------------------------------------------


def test_a_missing_table_is_a_store_error(world: World) -> None:
    store = LinkStore(boto3.resource("dynamodb", region_name=REGION).Table("no-such-table"))

    with pytest.raises(LinkStoreError, match="ResourceNotFoundException"):
        store.get_by_app("firm-a", "client", "c-1")


def test_a_transaction_lost_to_a_concurrent_one_is_a_retryable_busy_error(world: World) -> None:
    with Stubber(world.table.meta.client) as stub:
        stub.add_client_error(
            "transact_write_items",
            service_error_code="TransactionCanceledException",
            service_message="Transaction cancelled",
            modeled_fields={
                "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
            },
        )
        with pytest.raises(LinkBusyError):
            world.store.link("firm-a", "client", "c-1", "58")


# --- cost -------------------------------------------------------------------------------------------


def test_dynamodb_operations_per_method(world: World) -> None:
    store = world.store
    world.count()

    store.link("firm-a", "client", "c-1", "58")
    assert world.count() == Counter({"TransactWriteItems": 1})
    store.get_by_app("firm-a", "client", "c-1")
    assert world.count() == Counter({"GetItem": 1})
    store.get_by_qbo("firm-a", "client", "58")
    assert world.count() == Counter({"GetItem": 2})
    store.record_sync("firm-a", "client", "c-1", "1", "h")
    assert world.count() == Counter({"UpdateItem": 1})
    store.list("firm-a", "client")
    assert world.count() == Counter({"Query": 1})
    store.unlink("firm-a", "client", "c-1")
    assert world.count() == Counter({"GetItem": 1, "TransactWriteItems": 1})
    for n in range(24):
        store.link("firm-a", "client", f"c-{n}", str(n))
    world.count()
    store.clear("firm-a", "client")  # 12 pairs per transaction, one query page per transaction
    assert world.count() == Counter({"Query": 3, "TransactWriteItems": 2})
    store.clear_tenant("firm-a")
    assert world.count() == Counter({"Query": len(constants.LINK_KINDS)})
