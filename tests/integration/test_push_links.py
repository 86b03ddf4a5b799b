"""The link a push writes inside its posting transaction (``LinkStore.link_actions``): for a document
QBO just created it is written whole, the same two items ``link`` makes, and refused when either side
already exists (links.py, one-to-one)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.dynamo import ConditionFailedError, client_errors
from shared.mapping.links import LinkConflictError
from tests.integration.test_links import World, raw_items, world

__all__ = ["world"]


def transact(world: World, actions: list[dict[str, Any]]) -> None:
    with client_errors("test", busy=RuntimeError, failure=RuntimeError):
        world.table.meta.client.transact_write_items(TransactItems=actions)


def test_a_new_link_written_whole_is_the_link_that_link_makes(world: World) -> None:
    world.count()
    transact(
        world,
        world.store.link_actions(
            "firm-a", "invoice", "i1", "q1", qbo_name="A-1", sync_token="0", source="push", new=True
        ),
    )
    assert world.count()["TransactWriteItems"] == 1
    whole = sorted(raw_items(world), key=lambda item: str(item["sk"]))
    for item in list(raw_items(world)):
        world.table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    world.store.link("firm-a", "invoice", "i1", "q1", qbo_name="A-1", sync_token="0", source="push")
    assert sorted(raw_items(world), key=lambda item: str(item["sk"])) == whole
    link = world.store.get_by_app("firm-a", "invoice", "i1")
    assert link is not None
    assert (link.qbo_id, link.qbo_name, link.sync_token, link.source) == ("q1", "A-1", "0", "push")


@pytest.mark.parametrize("taken", ["app", "qbo"])
def test_a_new_link_is_refused_when_either_side_exists(world: World, taken: str) -> None:
    if taken == "app":
        world.store.link("firm-a", "invoice", "i1", "q-other")
    else:
        world.store.link("firm-a", "invoice", "i-other", "q1")
    before = raw_items(world)
    actions = world.store.link_actions("firm-a", "invoice", "i1", "q1", source="push", new=True)
    with pytest.raises(ConditionFailedError) as refused:
        transact(world, actions)
    conflict = world.store.conflict("invoice", "i1", "q1", refused.value.failed)
    assert isinstance(conflict, LinkConflictError)
    assert conflict.side == taken
    assert raw_items(world) == before
