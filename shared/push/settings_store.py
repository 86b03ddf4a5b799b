"""Per-tenant push settings (``TenantSettings``), one item in the connections table.

Where: the connections table, ``pk = TENANT#<tenant>``, ``sk = PUSH_SETTINGS``, beside the tenant's
connection item.  The settings are a tenant's, not a link's; they are read on every upsert together
with the connection (same partition), and they share the connection's encryption at rest and its
life cycle (``remove mappings`` on disconnect does not touch them).  ``settings`` holds the model as
compact JSON, ``version`` counts the writes.

A tenant that never saved settings gets ``TenantSettings()``'s defaults.
"""

from __future__ import annotations

import json
from typing import Any, Final

from shared.kernel import constants
from shared.kernel.clock import Clock
from shared.push.models import TenantSettings

PUSH_SETTINGS_SK: Final = "PUSH_SETTINGS"


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
        item = self._table.get_item(Key=self._key(tenant_id), ConsistentRead=True).get("Item")
        if not item or "settings" not in item:
            return TenantSettings()
        return TenantSettings.model_validate_json(str(item["settings"]))

    def put(self, tenant_id: str, settings: TenantSettings) -> TenantSettings:
        """Replace the tenant's settings; returns what was stored."""
        body = settings.model_dump(mode="json")
        body["client_types"] = sorted(body["client_types"])
        self._table.update_item(
            Key=self._key(tenant_id),
            UpdateExpression="SET #s = :s, #t = :t, #u = :u ADD #v :one",
            ExpressionAttributeNames={
                "#s": "settings",
                "#t": "tenant_id",
                "#u": "updated_at",
                "#v": "version",
            },
            ExpressionAttributeValues={
                ":s": json.dumps(body, separators=(",", ":"), sort_keys=True),
                ":t": tenant_id,
                ":u": self._clock.now().isoformat(),
                ":one": 1,
            },
        )
        return settings
