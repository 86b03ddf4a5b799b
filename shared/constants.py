"""Names shared by ``shared/``, ``functions/``, ``infra/`` and ``tests/``: tables, keys, indexes,
environment variables and event names.  One place, so the CDK stack, the local stack and the code
can never disagree."""

from __future__ import annotations

from typing import Final

SERVICE: Final = "qbo-link"
EVENT_SOURCE: Final = "qbo-link"

# --- tables (logical ids in the CDK stack; physical names come from the environment) -----------
CONNECTIONS_TABLE_ENV: Final = "CONNECTIONS_TABLE"
RUNTIME_TABLE_ENV: Final = "RUNTIME_TABLE"

# Every table uses a generic composite key so one item type can be added without a migration.
PK: Final = "pk"
SK: Final = "sk"
TTL_ATTRIBUTE: Final = "expires_at"  # epoch seconds; DynamoDB TTL deletes expired items

# connections table: one item per tenant (the connection and its encrypted tokens) and one per
# realm (ownership, which makes "one realm, one tenant" a conditional write).
CONNECTION_SK: Final = "CONNECTION"
REALM_OWNER_SK: Final = "OWNER"
STATUS_INDEX: Final = "by-health"  # GSI: health -> tenants (keep-alive sweep, alarms)
STATUS_INDEX_PK: Final = "health"


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def realm_pk(realm_id: str) -> str:
    return f"REALM#{realm_id}"


# runtime table: short-lived coordination (OAuth states, rate-governor windows, de-duplication),
# every item with a TTL.
OAUTH_STATE_PREFIX: Final = "OAUTHSTATE#"
GOVERNOR_PREFIX: Final = "GOVERNOR#"

# --- environment ---------------------------------------------------------------------------
KMS_KEY_ENV: Final = "TOKENS_KMS_KEY_ID"
EVENT_BUS_ENV: Final = "EVENT_BUS_NAME"
# Secrets Manager ARNs (names of environment variables, not secrets): the Intuit app secret holds
# {"client_id", "client_secret", "verifier_token"}; the state secret {"key"} signs OAuth states.
INTUIT_SECRET_ARN_ENV: Final = "INTUIT_SECRET_ARN"  # noqa: S105
STATE_SECRET_ARN_ENV: Final = "STATE_SECRET_ARN"  # noqa: S105

# --- outbound events (EventBridge detail-type) -------------------------------------------------
EVENT_CONNECTION_CONNECTED: Final = "Connection Connected"
EVENT_CONNECTION_DISCONNECTED: Final = "Connection Disconnected"
EVENT_CONNECTION_HEALTH_CHANGED: Final = "Connection Health Changed"
