"""A version used twice (``PushService.submit``): the same body is the app's retry and is ignored, an
older version is ignored, and another body under a version already stored is a conflict that changes
nothing (issue 15; docs/push.md, "The app's documents")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import tables
from shared import wiring
from shared.kernel import constants
from shared.push.errors import VersionConflictError
from tests.integration.push_fixtures import PushWorld, push_world
from tests.integration.test_push import TENANT, client, connected, invoice

__all__ = ["push_world"]


def waiting_messages(push: PushWorld) -> int:
    attributes = push.sqs.get_queue_attributes(
        QueueUrl=push.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def submit(kind: str, document: dict[str, Any]) -> Any:
    return wiring.push_service().submit(TENANT, kind, document)


def test_the_same_version_with_the_same_body_is_ignored(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    assert submit("invoice", invoice()).status == "accepted"
    push_world.drain()

    # Keys in another order, money written the same way: the same document
    again = submit("invoice", dict(reversed(list(invoice().items()))))

    assert (again.status, again.version, again.state) == ("ignored", 1, "posted")


def test_the_same_version_with_another_body_is_a_conflict_and_nothing_changes(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    submit("invoice", invoice())
    before = push_world.log.get(TENANT, "invoice", "i1")
    summary = push_world.log.summary(TENANT)
    queued = waiting_messages(push_world)

    with pytest.raises(VersionConflictError) as refused:
        submit("invoice", invoice(amount="120.00"))

    error = refused.value
    assert (error.tenant_id, error.kind, error.app_id, error.version) == (TENANT, "invoice", "i1", 1)
    assert push_world.log.get(TENANT, "invoice", "i1") == before
    assert push_world.log.summary(TENANT) == summary
    assert waiting_messages(push_world) == queued  # not even the retry's re-send of a queued version


def test_an_older_version_is_ignored_whatever_its_body(push_world: PushWorld) -> None:
    connected(push_world, c1_as="1")
    submit("invoice", invoice(version=3))

    older = submit("invoice", invoice(version=2, amount="999.00"))

    assert (older.status, older.version) == ("ignored", 3)
    entry = push_world.log.get(TENANT, "invoice", "i1")
    assert entry is not None
    assert (entry.version, entry.document["total"]) == (3, "100.00")


def test_a_client_retried_with_another_body_is_a_conflict(push_world: PushWorld) -> None:
    connected(push_world)
    submit("client", client())
    assert submit("client", client()).status == "ignored"
    with pytest.raises(VersionConflictError):
        submit("client", client(company_name="Renamed"))


def test_a_document_stored_before_a_field_was_added_is_the_same_on_retry(push_world: PushWorld) -> None:
    # The head stored by an older model lacks a field the model now has (with its default): the
    # app's retry of that version carries the default and is still the same document.
    connected(push_world, c1_as="1")
    submit("invoice", invoice())
    table = push_world.world.dynamodb.Table(tables.POSTINGS.default_name)
    key = {constants.PK: constants.tenant_pk(TENANT), constants.SK: constants.posting_doc_sk("invoice", "i1")}
    stored = json.loads(table.get_item(Key=key)["Item"]["document"])
    assert stored.pop("due_date") is None
    table.update_item(
        Key=key,
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "document"},
        ExpressionAttributeValues={":d": json.dumps(stored)},
    )

    assert submit("invoice", invoice()).status == "ignored"
    with pytest.raises(VersionConflictError):
        submit("invoice", invoice(when="2026-11-21"))


def test_through_the_api_a_conflict_is_a_409_naming_the_version_and_in_bulk_the_items_own(
    push_world: PushWorld,
) -> None:
    connected(push_world, c1_as="1")
    assert push_world.put(TENANT, "invoices", invoice()).status == 202
    refused = push_world.put(TENANT, "invoices", invoice(amount="120.00"))
    assert refused.status == 409, refused.body
    [problem] = refused.json()["detail"]
    assert (problem["loc"], problem["type"]) == (["body", "version"], "version_conflict")
    assert push_world.put(TENANT, "invoices", invoice()).status == 200  # the same body: the app's retry
    bulk = push_world.api(
        "POST",
        f"/v1/tenants/{TENANT}/documents",
        body={
            "documents": [
                {"kind": "invoice", "document": invoice(amount="120.00")},
                {"kind": "invoice", "document": invoice("i2")},
            ]
        },
    )
    assert bulk.status == 202, bulk.body
    assert [r["status"] for r in bulk.json()["results"]] == ["refused", "accepted"]
    assert bulk.json()["results"][0]["problems"][0]["field"] == "version"
