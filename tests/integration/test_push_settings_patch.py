"""A partial update of the push settings (``PushService.patch_settings``, a JSON merge patch, RFC
7386): keys given replace, ``null`` resets to the default, keys not given stay; validated as a PUT
is; a recheck queued as after a PUT; a concurrent change is never lost (issue 15)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from shared import wiring
from shared.push.errors import SettingsInvalidError
from shared.push.models import TenantSettings, validation_problems
from shared.push.settings_store import TenantSettingsStore
from tests.integration.push_fixtures import PushWorld, push_world
from tests.integration.test_push import TENANT, client, invoice, state_of
from tests.integration.test_push_recheck import RecordingQueue, linked_client, queue

__all__ = ["push_world", "queue"]


def put_problems(body: Any) -> list[dict[str, str]]:
    """What a PUT of ``body`` is refused with (the route validates it with the model)."""
    with pytest.raises(ValidationError) as caught:
        TenantSettings.model_validate(body)
    return validation_problems(caught.value)


def test_a_patch_of_settings_never_saved_starts_from_the_defaults(push_world: PushWorld) -> None:
    service = wiring.push_service()

    saved = service.patch_settings(TENANT, {"auto_create_customers": True, "go_live_date": "2026-01-01"})

    expected = TenantSettings(auto_create_customers=True, go_live_date=date(2026, 1, 1))
    assert saved == expected
    assert service.settings_store.get(TENANT) == expected


def test_keys_given_replace_null_resets_and_the_others_stay(push_world: PushWorld) -> None:
    service = wiring.push_service()
    service.settings_store.put(
        TENANT,
        TenantSettings(client_types=frozenset({"client"}), revenue_account_id="79", propagate_deletes=True),
    )

    saved = service.patch_settings(TENANT, {"client_types": None, "push_payments": False})

    expected = TenantSettings(revenue_account_id="79", propagate_deletes=True, push_payments=False)
    assert saved == expected
    assert service.settings_store.get(TENANT) == expected


@pytest.mark.parametrize(
    "patch",
    [
        {"unknown": 1},
        {"unknown": None},
        {"push_invoices": "no", "go_live_date": "soon"},
        {"posting_mode": "summarised"},
    ],
)
def test_a_patch_that_does_not_validate_is_refused_as_a_put_and_writes_nothing(
    push_world: PushWorld, queue: RecordingQueue, patch: dict[str, Any]
) -> None:
    service = wiring.push_service()
    service.settings_store.put(TENANT, TenantSettings(revenue_account_id="79"))

    with pytest.raises(SettingsInvalidError) as refused:
        service.patch_settings(TENANT, patch)

    as_put = {"revenue_account_id": "79", **{k: 1 if v is None else v for k, v in patch.items()}}
    assert refused.value.problems == put_problems(as_put)
    assert service.settings_store.get(TENANT) == TenantSettings(revenue_account_id="79")
    assert queue.rechecks() == []


def test_a_patch_that_is_not_an_object_is_refused(push_world: PushWorld) -> None:
    with pytest.raises(SettingsInvalidError) as refused:
        wiring.push_service().patch_settings(TENANT, ["push_invoices"])  # type: ignore[arg-type]
    assert [p["field"] for p in refused.value.problems] == ["(body)"]


def test_a_patch_queues_a_recheck_that_releases_what_waited(
    push_world: PushWorld, queue: RecordingQueue
) -> None:
    linked_client(push_world)
    service = wiring.push_service()
    service.patch_settings(TENANT, {"client_types": ["client"]})
    push_world.put(TENANT, "clients", client("c2", type="prospect"))
    push_world.links.link(TENANT, "client", "c2", "2")
    answer = push_world.put(TENANT, "invoices", invoice("for-c2", client_id="c2"))
    assert answer.json()["reasons"][0]["code"] == "client_type_excluded"
    queue.sent.clear()

    service.patch_settings(TENANT, {"client_types": None})  # every type syncs again

    assert [m.reason for m in queue.rechecks()] == ["settings"]
    assert state_of(push_world, "invoice", "for-c2") == "needs_attention"  # nothing judged here
    push_world.drain()
    assert state_of(push_world, "invoice", "for-c2") == "posted"


class RacingStore(TenantSettingsStore):
    """Another writer saves the settings between the patch's first read and its write."""

    def __init__(self, real: TenantSettingsStore) -> None:
        super().__init__(real._table, real._clock)  # the same table and clock
        self.reads = 0

    def _item(self, tenant_id: str) -> dict[str, Any] | None:
        item = super()._item(tenant_id)
        self.reads += 1
        if self.reads == 1:
            self.put(tenant_id, self.get(tenant_id).model_copy(update={"deposit_account_id": "35"}))
        return item


@pytest.mark.parametrize("saved_before", [False, True])
def test_a_concurrent_change_is_kept_and_the_patch_applied_to_it(
    push_world: PushWorld, saved_before: bool
) -> None:
    real = wiring.push_settings_store()
    if saved_before:
        real.put(TENANT, TenantSettings(revenue_account_id="79"))
    racing = RacingStore(real)

    saved = racing.patch(TENANT, {"push_credits": False})

    assert racing.reads == 3  # the patch's read, the racing put's own, the patch's read again
    assert saved.deposit_account_id == "35"
    assert saved.push_credits is False
    assert saved.revenue_account_id == ("79" if saved_before else None)
    assert real.get(TENANT) == saved


def test_patch_through_the_api_changes_only_what_it_names(push_world: PushWorld) -> None:
    push_world.api("PUT", "/v1/tenants/firm-1/settings", body={"auto_create_customers": True})
    patched = push_world.api("PATCH", "/v1/tenants/firm-1/settings", body={"client_types": ["client"]})
    assert patched.status == 200, patched.body
    assert (patched.json()["auto_create_customers"], patched.json()["client_types"]) == (True, ["client"])
    reset = push_world.api("PATCH", "/v1/tenants/firm-1/settings", body={"auto_create_customers": None})
    assert reset.json()["auto_create_customers"] is False
    unknown = push_world.api("PATCH", "/v1/tenants/firm-1/settings", body={"no_such_setting": 1})
    assert unknown.status == 422, unknown.body
    assert unknown.json()["detail"][0]["loc"] == ["body", "no_such_setting"]
    assert push_world.api("GET", "/v1/tenants/firm-1/settings").json()["client_types"] == ["client"]
