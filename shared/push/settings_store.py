"""Per-tenant push settings (``TenantSettings``), one item in the connections table.

Where: the connections table, ``pk = TENANT#<tenant>``, ``sk = PUSH_SETTINGS``, beside the tenant's
connection item.  The settings are a tenant's, not a link's; they are read on every upsert together
with the connection (same partition), and they share the connection's encryption at rest and its
life cycle (``remove mappings`` on disconnect does not touch them).  ``settings`` holds the model as
compact JSON, ``version`` counts the writes (a patch is written only while the version it read is
still stored).

A tenant that never saved settings gets ``TenantSettings()``'s defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from shared.adapters.dynamo import ConditionFailedError, failed_conditions
from shared.kernel import constants
from shared.kernel.clock import Clock
from shared.push.errors import SettingsBusyError
from shared.push.models import TenantSettings

PUSH_SETTINGS_SK: Final = "PUSH_SETTINGS"
_PATCH_ROUNDS: Final = 5  # reads and conditional writes of a patch that keeps meeting other writes
_ANY: Final = object()  # ``_write`` without a condition (a PUT replaces whatever is stored)


class TenantSettingsStore:
    """Data access for the tenant's push settings (a boto3 ``Table`` of ``tables.CONNECTIONS``)."""

    def __init__(self, table: Any, clock: Clock) -> None:
        self._table = table
        self._clock = clock

    @staticmethod
    def _key(tenant_id: str) -> dict[str, str]:
        return {constants.PK: constants.tenant_pk(tenant_id), constants.SK: PUSH_SETTINGS_SK}

    def get(self, tenant_id: str) -> TenantSettings:
        """The tenant's settings, or the defaults when none were saved."""
        return _settings_of(self._item(tenant_id))

    def put(self, tenant_id: str, settings: TenantSettings) -> TenantSettings:
        """Replace the tenant's settings; returns what was stored."""
        self._table.update_item(**self._write(tenant_id, settings))
        return settings

    def patch(self, tenant_id: str, patch: Mapping[str, Any]) -> TenantSettings:
        """Apply a JSON merge patch to the tenant's settings (``TenantSettings.patched``: a key
        given replaces, ``null`` resets to the default, a key not given stays); returns what was
        stored.  Pydantic's ``ValidationError`` when the result does not validate (nothing
        written).  The write holds only while the settings are the ones read (their ``version``):
        a concurrent change makes it read and apply the patch again, so no change is lost."""
        for _ in range(_PATCH_ROUNDS):
            item = self._item(tenant_id)
            settings = _settings_of(item).patched(patch)
            seen = item.get("version") if item else None
            try:
                with failed_conditions():
                    self._table.update_item(**self._write(tenant_id, settings, seen=seen))
            except ConditionFailedError:
                continue  # changed since it was read: apply the patch to what is stored now
            return settings
        raise SettingsBusyError(f"the settings of tenant {tenant_id!r} keep changing; retry")

    def _item(self, tenant_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key=self._key(tenant_id), ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def _write(self, tenant_id: str, settings: TenantSettings, *, seen: Any = _ANY) -> dict[str, Any]:
        """``update_item``'s arguments storing ``settings`` (``seen``: only while the stored
        ``version`` is this one, None for settings never saved)."""
        body = settings.model_dump(mode="json")
        body["client_types"] = sorted(body["client_types"])
        arguments: dict[str, Any] = {
            "Key": self._key(tenant_id),
            "UpdateExpression": "SET #s = :s, #t = :t, #u = :u ADD #v :one",
            "ExpressionAttributeNames": {
                "#s": "settings",
                "#t": "tenant_id",
                "#u": "updated_at",
                "#v": "version",
            },
            "ExpressionAttributeValues": {
                ":s": json.dumps(body, separators=(",", ":"), sort_keys=True),
                ":t": tenant_id,
                ":u": self._clock.now().isoformat(),
                ":one": 1,
            },
        }
        if seen is None:
            arguments["ConditionExpression"] = "attribute_not_exists(#v)"
        elif seen is not _ANY:
            arguments["ConditionExpression"] = "#v = :seen"
            arguments["ExpressionAttributeValues"][":seen"] = seen
        return arguments


def _settings_of(item: Mapping[str, Any] | None) -> TenantSettings:
    if not item or "settings" not in item:
        return TenantSettings()
    return TenantSettings.model_validate_json(str(item["settings"]))
