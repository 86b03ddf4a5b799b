"""Names shared by ``shared/``, ``functions/``, ``infra/`` and ``tests/``: tables, keys, indexes and
environment variables (event names: ``shared.kernel.events``).  One place, so the CDK stack, the local
stack and the code can never disagree."""

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
# A tenant the host app told of its lists before the firm connected (``ConnectionStore.make_known``).
KNOWN_SK: Final = "KNOWN"
REALM_OWNER_SK: Final = "OWNER"
REALM_DIRECTORY_SK: Final = "DIRECTORY"  # runtime table: the owner mirrored for the webhook receiver
STATUS_INDEX: Final = "by-health"  # GSI: health -> tenants (keep-alive sweep, alarms)
STATUS_INDEX_PK: Final = "health"


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def realm_pk(realm_id: str) -> str:
    return f"REALM#{realm_id}"


# runtime table: short-lived coordination (OAuth states, rate-governor windows, de-duplication),
# every item with a TTL.
OAUTH_STATE_PREFIX: Final = "OAUTHSTATE#"
# One item per authorization code ever exchanged (a keyed digest, never the code): single use.
OAUTH_CODE_PREFIX: Final = "OAUTHCODE#"
GOVERNOR_PREFIX: Final = "GOVERNOR#"

# --- environment ---------------------------------------------------------------------------
KMS_KEY_ENV: Final = "TOKENS_KMS_KEY_ID"
EVENT_BUS_ENV: Final = "EVENT_BUS_NAME"
# Secrets Manager ARNs (names of environment variables, not secrets): the Intuit app secret holds
# {"client_id", "client_secret"}; the webhook secret {"verifier_token"} (older deployments kept it in
# the Intuit app secret, still read as a fallback); the state secret {"key"} signs OAuth states.
INTUIT_SECRET_ARN_ENV: Final = "INTUIT_SECRET_ARN"  # noqa: S105
WEBHOOK_SECRET_ARN_ENV: Final = "WEBHOOK_SECRET_ARN"  # noqa: S105
STATE_SECRET_ARN_ENV: Final = "STATE_SECRET_ARN"  # noqa: S105
# SQS FIFO queue URLs (producers only)
PUSH_QUEUE_URL_ENV: Final = "PUSH_QUEUE_URL"
CHANGES_QUEUE_URL_ENV: Final = "CHANGES_QUEUE_URL"

# --- delivery of the events to the host app's HTTPS endpoint (docs/events.md) ---------------
# Only the deliverer has them: the endpoint (empty: delivery is off), the signing secret's ARN
# ({"key"}), and the URLs of its queue (to pace its retries) and of that queue's DLQ.
EVENTS_URL_ENV: Final = "EVENTS_URL"
EVENTS_SECRET_ARN_ENV: Final = "EVENTS_SECRET_ARN"  # noqa: S105 - a variable's name
DELIVERY_QUEUE_URL_ENV: Final = "DELIVERY_QUEUE_URL"
DELIVERY_DLQ_URL_ENV: Final = "DELIVERY_DLQ_URL"

# --- the console (docs/console.md) ------------------------------------------------------------
# The console function's only setting: the origins allowed to frame it besides itself (its CSP's
# frame-ancestors), space-separated https origins.
CONSOLE_FRAME_ANCESTORS_ENV: Final = "QBO_LINK_CONSOLE_FRAME_ANCESTORS"

# --- links and posting log (issues 4 and 5; layouts: docs/push.md) ---------------------------
LINKS_TABLE_ENV: Final = "LINKS_TABLE"
POSTING_LOG_TABLE_ENV: Final = "POSTING_LOG_TABLE"

# The app's own ids (documents, clients, codes, ...): never '#', which separates key parts.
APP_ID_PATTERN: Final = r"^[A-Za-z0-9._:-]{1,64}$"
# The host app's tenant (firm) ids: never '#' either (shared.connections.flows checks them).
TENANT_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Longest return URL a connection may be started with (the API's document declares it).
MAX_RETURN_URL_LENGTH: Final = 2048
# Pages of the tenant API's listings (the routes declare the bounds, the services enforce them).
MAPPING_PAGE_DEFAULT: Final = 200  # match tab rows of each side
MAPPING_PAGE_MAX: Final = 1000
REPORT_PAGE_MAX: Final = 1000  # the transactions report

# Kinds of link: app entity <-> QBO entity (docs/push.md, "Kinds").
LINK_KINDS: Final[tuple[str, ...]] = (
    "client",  # Customer
    "site",  # sub-customer (Customer with Job: true)
    "employee",  # Employee
    "work_code",  # Item
    "expense_code",  # Item
    "tax",  # TaxCode
    "account",  # Account
    "invoice",  # Invoice
    "payment",  # Payment
    "credit_memo",  # CreditMemo
    "credit_application",  # Payment of zero applying a credit memo to invoices (app id = the memo's)
    "journal_day",  # JournalEntry (summarised mode)
)
# Kinds of document the push posts (one posting-log entry per document).
POSTING_KINDS: Final[tuple[str, ...]] = (
    "client",
    "site",
    "invoice",
    "payment",
    "credit_memo",
    "credit_application",
    "journal_day",
)

# links table: pk = TENANT#<t>#KIND#<kind>; sk = APP#<app id> (the link) and QBO#<qbo id> (the
# reverse entry), written together so a link is one-to-one on both sides.
LINK_APP_PREFIX: Final = "APP#"
LINK_QBO_PREFIX: Final = "QBO#"


def link_pk(tenant_id: str, kind: str) -> str:
    return f"TENANT#{tenant_id}#KIND#{kind}"


# posting-log table: pk = TENANT#<t>; sk = DOC#<kind>#<app id> (head), DOC#<kind>#<app id>#A#<v>#<n>
# (attempts) and SUMMARY (counts by kind and state).
POSTING_DOC_PREFIX: Final = "DOC#"
POSTING_ATTEMPT_MARK: Final = "#A#"
POSTING_SUMMARY_SK: Final = "SUMMARY"
POSTING_BY_STATE_INDEX: Final = "by-state"  # GSI: TENANT#<t>#STATE#<state> / <txn date|->#<kind>#<id>
POSTING_BY_STATE_PK: Final = "gsi1pk"
POSTING_BY_STATE_SK: Final = "gsi1sk"
POSTING_BY_TXN_DATE_INDEX: Final = "by-txn-date"  # GSI: TENANT#<t> / <txn date>#<kind>#<id> (dated only)
POSTING_BY_TXN_DATE_PK: Final = "gsi2pk"
POSTING_BY_TXN_DATE_SK: Final = "gsi2sk"
POSTING_BY_POSTED_INDEX: Final = "by-posted"  # GSI: TENANT#<t> / <posted at>#<kind>#<id> (posted only)
POSTING_BY_POSTED_PK: Final = "gsi3pk"
POSTING_BY_POSTED_SK: Final = "gsi3sk"


def posting_doc_sk(kind: str, app_id: str) -> str:
    return f"{POSTING_DOC_PREFIX}{kind}#{app_id}"


def posting_attempt_sk(kind: str, app_id: str, version: int, number: int) -> str:
    return f"{posting_doc_sk(kind, app_id)}{POSTING_ATTEMPT_MARK}{version:08d}#{number:04d}"


def posting_state_pk(tenant_id: str, state: str) -> str:
    return f"TENANT#{tenant_id}#STATE#{state}"


# The webhook verifier token of the local stack (deployed: the webhook secret in Secrets Manager).
VERIFIER_TOKEN_ENV: Final = "QBO_LINK_WEBHOOK_VERIFIER_TOKEN"  # noqa: S105 - a variable's name
