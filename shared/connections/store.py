"""The connections table: one item per tenant (its connection and encrypted tokens) and one per
realm (who owns it).  Layout: docs/connections.md, "The connection item".

Every invariant is a conditional write: one realm belongs to one tenant; tokens change only under
the refresh lease and the expected ``token_version``; a refresh never resurrects a connection that
was disconnected or declared dead meanwhile.  The token attributes (``*_ct``, expiries,
``token_version``, lease) are written only through the methods marked "vault", which
``shared.connections.vault.TokenVault`` calls; everything else in QBO Link uses the other methods.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.dynamo import (
    Attr,
    ConditionFailedError,
    ItemUpdate,
    Key,
    decode_page_token,
    encode_page_token,
    failed_conditions,
)
from shared.connections.errors import NeverConnectedError
from shared.connections.health import REFRESHABLE, Health
from shared.kernel import constants

TaxModel = Literal["us_automated", "us_manual", "per_line"]
OnboardingState = Literal["pending", "running", "finished", "failed"]

# The onboarding of the current connection (``Connection.onboarding``): reset to pending by a consent.
ONBOARDING_STATE: Final = "onboarding_state"
ONBOARDING_ATTRIBUTES: Final = (
    ONBOARDING_STATE,
    "onboarding_started_at",
    "onboarding_finished_at",
    "onboarding_failed_at",
    "onboarding_counts",
    "onboarding_error",
)

# Attributes that hold or describe tokens: written by the vault only.
TOKEN_ATTRIBUTES: tuple[str, ...] = (
    "access_token_ct",
    "refresh_token_ct",
    "access_expires_at",
    "refresh_expires_at",
    "hard_expires_at",
    "lease_owner",
    "lease_until",
    "hard_expiry_warned_days",
)


class CompanyRecord(BaseModel):
    """What QBO Link keeps of the company on the connection item (from CompanyInfo and Preferences).

    The push reads the part a payload needs from it (``shared.push.payloads.CompanyFacts``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str | None = None
    legal_name: str | None = None
    country: str | None = None
    currency: str | None = None
    tax_model: TaxModel | None = None
    fiscal_year_start_month: int | None = Field(default=None, ge=1, le=12)
    # SalesFormsPrefs.AutoApplyCredit: QBO spends a customer's open credit on its next invoice by
    # itself (on by default).  The firm is told to turn it off (connection status ``warnings``).
    auto_apply_credit: bool | None = None


class Onboarding(BaseModel):
    """The onboarding of the connection made at ``connected_at`` (``shared.connections.onboarding``):
    pending from the consent, running, then finished (with what it read, linked and left unmatched,
    per kind) or failed (with why; the event rule retries it)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: OnboardingState
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failed_at: datetime | None = None
    read: dict[str, int] = Field(default_factory=dict)
    linked: dict[str, int] = Field(default_factory=dict)
    unmatched: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class Connection(BaseModel):
    """The connection item, typed.  Instants are UTC datetimes here and epoch seconds in the table."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str
    realm_id: str
    health: Health | None = None
    health_reason: str | None = None
    health_changed_at: datetime | None = None
    company: CompanyRecord | None = None
    access_token_ct: bytes | None = Field(default=None, repr=False)
    refresh_token_ct: bytes | None = Field(default=None, repr=False)
    access_expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    hard_expires_at: datetime | None = None
    token_version: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    refresh_failures: int = 0
    last_refresh_at: datetime | None = None
    last_success_at: datetime | None = None
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    keep_mappings: bool | None = None
    hard_expiry_warned_days: int | None = None  # smallest hard-expiry warning already sent
    revoke_error: str | None = None  # why the last revoke at Intuit failed, if it did
    # None: the item predates onboarding records (or was never connected through a consent)
    onboarding: Onboarding | None = None

    @property
    def has_tokens(self) -> bool:
        return self.access_token_ct is not None and self.refresh_token_ct is not None

    @property
    def refreshable(self) -> bool:
        return self.health in REFRESHABLE and self.has_tokens


class RealmTakenError(Exception):
    """The realm is connected to another tenant (one company per tenant, one tenant per company)."""

    def __init__(self, realm_id: str, owner_tenant: str | None) -> None:
        super().__init__(f"realm {realm_id} is already connected to another tenant")
        self.realm_id = realm_id
        self.owner_tenant = owner_tenant


@dataclass(frozen=True)
class StoredTokens:
    """Ciphertexts and lifetimes as the vault hands them to the store."""

    access_token_ct: bytes
    refresh_token_ct: bytes
    access_expires_at: datetime
    refresh_expires_at: datetime
    hard_expires_at: datetime | None = field(default=None)


@dataclass(frozen=True)
class HealthWrite:
    """A health value to store with why and when (``changed`` says whether to stamp the time)."""

    health: Health
    reason: str
    at: datetime
    changed: bool


def epoch(value: datetime) -> int:
    return int(value.timestamp())


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), UTC)


def _number(value: Any) -> int:
    return int(value) if isinstance(value, (int, Decimal)) else 0


def _binary(value: Any) -> bytes | None:
    if value is None:
        return None
    return bytes(getattr(value, "value", value))


def _health(update: ItemUpdate, write: HealthWrite) -> ItemUpdate:
    """``update`` also stores a health value (with why and when, if it changed)."""
    update.set(constants.STATUS_INDEX_PK, write.health.value)
    if write.changed:
        update.set("health_reason", write.reason)
        update.set("health_changed_at", epoch(write.at))
    return update


def _directory_item(realm_id: str, tenant_id: str) -> dict[str, str]:
    return {**RealmDirectory.key(realm_id), "tenant_id": tenant_id, "realm_id": realm_id}


class RealmDirectory:
    """Realm -> tenant, mirrored in the runtime table by ``ConnectionStore.claim_realm`` (same
    transaction): what the webhook receiver reads, so it needs no access to the tokens' table.
    Its items have no TTL attribute: they live as long as the claim."""

    def __init__(self, runtime_table: Any) -> None:
        self._table = runtime_table

    @staticmethod
    def key(realm_id: str) -> dict[str, str]:
        return {constants.PK: constants.realm_pk(realm_id), constants.SK: constants.REALM_DIRECTORY_SK}

    def owner_of(self, realm_id: str) -> str | None:
        item = self._table.get_item(Key=self.key(realm_id), ConsistentRead=True).get("Item")
        return str(item["tenant_id"]) if item else None


class ConnectionStore:
    """Data access for the connections table (a boto3 ``Table`` resource of ``tables.CONNECTIONS``)."""

    def __init__(self, table: Any, directory: Any = None) -> None:
        """``directory``: the runtime table, where realm ownership is mirrored (``RealmDirectory``)
        for the webhook receiver, which has no access to this table."""
        self._table = table
        self._directory = directory
        self.onboarding = OnboardingRecords(table)

    # --- reads ------------------------------------------------------------------------------

    @staticmethod
    def key(tenant_id: str) -> dict[str, str]:
        return {constants.PK: constants.tenant_pk(tenant_id), constants.SK: constants.CONNECTION_SK}

    def get(self, tenant_id: str) -> Connection | None:
        answer = self._table.get_item(Key=self.key(tenant_id), ConsistentRead=True)
        item = answer.get("Item")
        return _connection_of(item) if item else None

    def exists(self, tenant_id: str) -> bool:
        """Whether QBO Link knows the tenant: any item in its partition, its connection record
        (kept whatever its health), or the push settings or lists (``make_known``) the host app
        gave it before connecting."""
        answer = self._table.query(
            KeyConditionExpression=Key(constants.PK).eq(constants.tenant_pk(tenant_id)),
            ConsistentRead=True,  # a tenant connected or configured a moment ago exists
            ProjectionExpression="#pk",
            ExpressionAttributeNames={"#pk": constants.PK},
            Limit=1,
        )
        return bool(answer.get("Items"))

    def make_known(self, tenant_id: str, now: datetime) -> None:
        """Make a tenant known before it connects (the host app gave it its lists): one read, and
        one write only the first time. The item is never read back; ``exists`` sees it."""
        if self.exists(tenant_id):
            return
        # A concurrent first write that made it known as well is as good as this one.
        with contextlib.suppress(ConditionFailedError), failed_conditions():
            self._table.put_item(
                Item={
                    constants.PK: constants.tenant_pk(tenant_id),
                    constants.SK: constants.KNOWN_SK,
                    "known_at": now.isoformat(),
                },
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": constants.PK},
            )

    def require(self, tenant_id: str) -> Connection:
        connection = self.get(tenant_id)
        if connection is None:
            raise NeverConnectedError(tenant_id)
        return connection

    def list_by_health(self, health: Health) -> Iterator[Connection]:
        """Connections in one health state (GSI ``by-health``; eventually consistent)."""
        request: dict[str, Any] = {
            "IndexName": constants.STATUS_INDEX,
            "KeyConditionExpression": Key(constants.STATUS_INDEX_PK).eq(health.value),
        }
        yield from self._pages(self._table.query, request)

    def all_connections(self) -> Iterator[Connection]:
        request: dict[str, Any] = {"FilterExpression": Attr(constants.SK).eq(constants.CONNECTION_SK)}
        yield from self._pages(self._table.scan, request)

    def page(self, limit: int, page_token: str | None = None) -> tuple[list[Connection], str | None]:
        """Every tenant's connection, at most ``limit`` (a Scan: for operators, not per request);
        the token of the previous page continues it (``InvalidPageTokenError`` for a foreign one)."""
        request: dict[str, Any] = {
            "FilterExpression": Attr(constants.SK).eq(constants.CONNECTION_SK),
            "ConsistentRead": True,
        }
        if page_token:
            request["ExclusiveStartKey"] = decode_page_token(
                page_token,
                {
                    constants.PK: lambda v: v.startswith((constants.tenant_pk(""), constants.realm_pk(""))),
                    constants.SK: bool,
                },
            )
        found: list[Connection] = []
        while True:  # a Limit counts items read, not kept: read no further than the page needs
            answer = self._table.scan(**request, Limit=limit - len(found))
            found += [_connection_of(item) for item in answer.get("Items", [])]
            last = answer.get("LastEvaluatedKey")
            if not last:
                return found, None
            if len(found) >= limit:
                return found, encode_page_token(last)
            request["ExclusiveStartKey"] = last

    def _pages(self, operation: Any, request: dict[str, Any]) -> Iterator[Connection]:
        while True:
            answer = operation(**request)
            for item in answer.get("Items", []):
                if item.get(constants.SK) == constants.CONNECTION_SK:
                    yield _connection_of(item)
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            request = {**request, "ExclusiveStartKey": last}

    # --- realm ownership --------------------------------------------------------------------

    @staticmethod
    def realm_key(realm_id: str) -> dict[str, str]:
        return {constants.PK: constants.realm_pk(realm_id), constants.SK: constants.REALM_OWNER_SK}

    def claim_realm(self, realm_id: str, tenant_id: str, *, at: datetime | None = None) -> None:
        """Make ``tenant_id`` the realm's one owner; idempotent for the same tenant."""
        update = ItemUpdate()
        update.set("tenant_id", tenant_id).set("realm_id", realm_id)
        update.set_expression(
            "claimed_at",
            f"if_not_exists({update.name('claimed_at')}, {update.value(epoch(at or datetime.now(UTC)))})",
        )
        owned = f"{update.name('tenant_id')} = {update.value(tenant_id)}"
        update.when(f"attribute_not_exists({update.name(constants.PK)}) OR {owned}")
        key = self.realm_key(realm_id)
        try:
            with failed_conditions():
                if self._directory is None:
                    self._table.update_item(**update.arguments(key))
                else:  # the claim and its mirror together, or neither
                    directory = {
                        "TableName": self._directory.name,
                        "Item": _directory_item(realm_id, tenant_id),
                    }
                    self._table.meta.client.transact_write_items(
                        TransactItems=[update.action(self._table.name, key), {"Put": directory}]
                    )
        except ConditionFailedError:
            raise RealmTakenError(realm_id, self.owner_of(realm_id)) from None

    def release_realm(self, realm_id: str, tenant_id: str) -> bool:
        """Give the realm up if ``tenant_id`` owns it; False when it did not (nothing changes)."""
        try:
            with failed_conditions():
                if self._directory is None:
                    self._table.delete_item(
                        Key=self.realm_key(realm_id),
                        ConditionExpression=Attr("tenant_id").eq(tenant_id),
                    )
                else:
                    key = RealmDirectory.key(realm_id)
                    self._table.meta.client.transact_write_items(
                        TransactItems=[
                            {
                                "Delete": {
                                    "TableName": self._table.name,
                                    "Key": self.realm_key(realm_id),
                                    "ConditionExpression": "#t = :t",
                                    "ExpressionAttributeNames": {"#t": "tenant_id"},
                                    "ExpressionAttributeValues": {":t": tenant_id},
                                }
                            },
                            {"Delete": {"TableName": self._directory.name, "Key": key}},
                        ]
                    )
        except ConditionFailedError:
            return False
        return True

    def owner_of(self, realm_id: str) -> str | None:
        item = self._table.get_item(Key=self.realm_key(realm_id), ConsistentRead=True).get("Item")
        return str(item["tenant_id"]) if item else None

    # --- connection lifecycle (the connections flows) ---------------------------------------

    def put_connection(
        self,
        tenant_id: str,
        realm_id: str,
        *,
        connected_at: datetime,
        company: CompanyRecord | None = None,
    ) -> None:
        """Create or re-open the tenant's connection item; token attributes are left alone."""
        update = ItemUpdate()
        update.set("tenant_id", tenant_id).set("realm_id", realm_id)
        update.set("connected_at", epoch(connected_at))
        if company is not None:
            update.set("company", _company_map(company))
        update.remove("disconnected_at", "keep_mappings")
        update.set(ONBOARDING_STATE, "pending")  # this consent's onboarding, to come
        update.remove(*(a for a in ONBOARDING_ATTRIBUTES if a != ONBOARDING_STATE))
        self._table.update_item(**update.arguments(self.key(tenant_id)))

    def update_company(self, tenant_id: str, company: CompanyRecord) -> None:
        update = ItemUpdate().set("company", _company_map(company))
        update.when(f"attribute_exists({update.name(constants.PK)})")
        self._update_existing(tenant_id, update)

    def mark_disconnected(self, tenant_id: str, keep_mappings: bool, at: datetime) -> Health | None:
        """Mark the tenant disconnected; returns the health it had (for the health event).

        Tokens are not touched here: ``TokenVault.revoke_and_delete`` revokes and removes them.
        """
        update = ItemUpdate()
        update.set(constants.STATUS_INDEX_PK, Health.DISCONNECTED.value)
        update.set("health_reason", "disconnected_by_tenant")
        update.set("health_changed_at", epoch(at))
        update.set("disconnected_at", epoch(at))
        update.set("keep_mappings", keep_mappings)
        update.remove("lease_owner", "lease_until")
        update.when(f"attribute_exists({update.name(constants.PK)})")
        old = self._update_existing(tenant_id, update, return_values="UPDATED_OLD")
        previous = old.get("health") if old else None
        return Health(previous) if previous else None

    def _update_existing(
        self, tenant_id: str, update: ItemUpdate, return_values: str = "NONE"
    ) -> dict[str, Any] | None:
        try:
            with failed_conditions():
                answer = self._table.update_item(
                    **update.arguments(self.key(tenant_id)), ReturnValues=return_values
                )
        except ConditionFailedError:
            raise NeverConnectedError(tenant_id) from None
        attributes = answer.get("Attributes")
        return dict(attributes) if attributes else None

    # --- vault: token attributes ------------------------------------------------------------

    def save_tokens(
        self,
        tenant_id: str,
        realm_id: str,
        tokens: StoredTokens,
        *,
        expected_version: int,
        health: HealthWrite,
    ) -> int | None:
        """Vault: store a new consent's tokens; the new ``token_version``, or None if it moved.

        ``expected_version`` is the version read before (0 for an item without tokens ever)."""
        update = ItemUpdate()
        update.set("tenant_id", tenant_id).set("realm_id", realm_id)
        self._token_fields(update, tokens)
        update.set("last_refresh_at", epoch(health.at)).set("refresh_failures", 0)
        _health(update, health)
        update.remove("lease_owner", "lease_until", "hard_expiry_warned_days", "revoke_error")
        update.remove("disconnected_at", "keep_mappings")
        version = update.name("token_version")
        expected = f"{version} = {update.value(expected_version)}"
        update.when(f"attribute_not_exists({version}) OR {expected}" if expected_version == 0 else expected)
        update.set("token_version", expected_version + 1)
        return expected_version + 1 if self._conditional(update, tenant_id) else None

    def acquire_lease(
        self, tenant_id: str, owner: str, *, expected_version: int, now: datetime, until: datetime
    ) -> bool:
        """Vault: take the refresh lease if it is free or expired and the tokens did not move."""
        update = ItemUpdate()
        update.set("lease_owner", owner).set("lease_until", epoch(until))
        update.when(f"{update.name('token_version')} = {update.value(expected_version)}")
        lease = update.name("lease_until")
        update.when(f"attribute_not_exists({lease}) OR {lease} <= {update.value(epoch(now))}")
        self._refreshable_only(update)
        return self._conditional(update, tenant_id)

    def commit_refresh(
        self,
        tenant_id: str,
        owner: str,
        tokens: StoredTokens,
        *,
        expected_version: int,
        health: HealthWrite,
    ) -> bool:
        """Vault: store refreshed tokens under our lease; False if the lease or version was lost."""
        update = ItemUpdate()
        self._token_fields(update, tokens)
        update.set("token_version", expected_version + 1)
        update.set("last_refresh_at", epoch(health.at)).set("refresh_failures", 0)
        _health(update, health)
        update.remove("lease_owner", "lease_until")
        if tokens.hard_expires_at is None:
            update.remove("hard_expires_at")
        self._owned(update, owner, expected_version)
        self._refreshable_only(update)
        return self._conditional(update, tenant_id)

    def record_refresh_failure(
        self, tenant_id: str, owner: str, *, expected_version: int, health: HealthWrite
    ) -> bool:
        """Vault: count a failed refresh, set refresh_failing and free our lease."""
        update = _health(ItemUpdate().add("refresh_failures", 1), health)
        update.remove("lease_owner", "lease_until")
        self._owned(update, owner, expected_version)
        self._refreshable_only(update)
        return self._conditional(update, tenant_id)

    def mark_grant_dead(self, tenant_id: str, *, expected_version: int, health: HealthWrite) -> bool:
        """Vault: the grant is dead (invalid_grant) and nobody rotated it meanwhile."""
        update = _health(ItemUpdate(), health).remove("lease_owner", "lease_until")
        update.when(f"{update.name('token_version')} = {update.value(expected_version)}")
        self._refreshable_only(update)
        return self._conditional(update, tenant_id)

    def release_lease(self, tenant_id: str, owner: str) -> bool:
        update = ItemUpdate().remove("lease_owner", "lease_until")
        update.when(f"{update.name('lease_owner')} = {update.value(owner)}")
        return self._conditional(update, tenant_id)

    def remove_tokens(
        self,
        tenant_id: str,
        *,
        health: HealthWrite | None = None,
        revoke_error: str | None = None,
    ) -> bool:
        """Vault: drop every token attribute (version +1 so an in-flight refresh cannot commit)."""
        update = ItemUpdate().remove(*TOKEN_ATTRIBUTES).add("token_version", 1)
        if health is not None:
            _health(update, health)
        if revoke_error is not None:
            update.set("revoke_error", revoke_error)
        else:
            update.remove("revoke_error")
        update.when(f"attribute_exists({update.name(constants.PK)})")
        return self._conditional(update, tenant_id)

    def record_success(self, tenant_id: str, at: datetime, *, min_interval_seconds: int) -> bool:
        """Stamp ``last_success_at`` unless it was stamped less than ``min_interval_seconds`` ago."""
        update = ItemUpdate().set("last_success_at", epoch(at))
        last = update.name("last_success_at")
        update.when(f"attribute_exists({update.name(constants.PK)})")
        update.when(
            f"attribute_not_exists({last}) OR {last} <= {update.value(epoch(at) - min_interval_seconds)}"
        )
        return self._conditional(update, tenant_id)

    def mark_hard_expiry_warned(self, tenant_id: str, days: int, hard_expires_at: datetime) -> bool:
        """True the first time the ``days`` warning is recorded for this hard expiry (once only)."""
        update = ItemUpdate().set("hard_expiry_warned_days", days)
        warned = update.name("hard_expiry_warned_days")
        update.when(f"attribute_not_exists({warned}) OR {warned} > {update.value(days)}")
        update.when(f"{update.name('hard_expires_at')} = {update.value(epoch(hard_expires_at))}")
        return self._conditional(update, tenant_id)

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _token_fields(update: ItemUpdate, tokens: StoredTokens) -> None:
        update.set("access_token_ct", tokens.access_token_ct)
        update.set("refresh_token_ct", tokens.refresh_token_ct)
        update.set("access_expires_at", epoch(tokens.access_expires_at))
        update.set("refresh_expires_at", epoch(tokens.refresh_expires_at))
        if tokens.hard_expires_at is not None:
            update.set("hard_expires_at", epoch(tokens.hard_expires_at))

    @staticmethod
    def _owned(update: ItemUpdate, owner: str, expected_version: int) -> None:
        update.when(f"{update.name('lease_owner')} = {update.value(owner)}")
        update.when(f"{update.name('token_version')} = {update.value(expected_version)}")

    @staticmethod
    def _refreshable_only(update: ItemUpdate) -> None:
        current = update.name(constants.STATUS_INDEX_PK)
        allowed = ", ".join(update.value(h.value) for h in sorted(REFRESHABLE))
        update.when(f"{current} IN ({allowed})")

    def _conditional(self, update: ItemUpdate, tenant_id: str) -> bool:
        try:
            with failed_conditions():
                self._table.update_item(**update.arguments(self.key(tenant_id)))
        except ConditionFailedError:
            return False
        return True


class OnboardingRecords:
    """The onboarding attributes of the connection item (``shared.connections.onboarding``), for
    the connection made at ``connected_at`` only, and never again once finished: a run for an older
    consent, or a second run of a finished one, writes nothing (False)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def start(self, tenant_id: str, connected_at: datetime, at: datetime) -> bool:
        update = ItemUpdate().set(ONBOARDING_STATE, "running").set("onboarding_started_at", epoch(at))
        update.remove("onboarding_failed_at", "onboarding_error")
        return self._write(tenant_id, update, connected_at)

    def finish(
        self, tenant_id: str, connected_at: datetime, at: datetime, counts: Mapping[str, Mapping[str, int]]
    ) -> bool:
        """Finished, with its ``counts`` (``read``, ``linked``, ``unmatched``, per kind)."""
        update = ItemUpdate().set(ONBOARDING_STATE, "finished").set("onboarding_finished_at", epoch(at))
        update.set("onboarding_counts", {name: dict(values) for name, values in counts.items()})
        update.remove("onboarding_failed_at", "onboarding_error")
        return self._write(tenant_id, update, connected_at)

    def fail(self, tenant_id: str, connected_at: datetime, at: datetime, error: str) -> bool:
        update = ItemUpdate().set(ONBOARDING_STATE, "failed").set("onboarding_failed_at", epoch(at))
        update.set("onboarding_error", error[:500])
        return self._write(tenant_id, update, connected_at)

    def _write(self, tenant_id: str, update: ItemUpdate, connected_at: datetime) -> bool:
        update.when(f"{update.name('connected_at')} = {update.value(epoch(connected_at))}")
        state = update.name(ONBOARDING_STATE)
        update.when(f"attribute_not_exists({state}) OR {state} <> {update.value('finished')}")
        try:
            with failed_conditions():
                self._table.update_item(**update.arguments(ConnectionStore.key(tenant_id)))
        except ConditionFailedError:
            return False
        return True


def _connection_of(item: Mapping[str, Any]) -> Connection:
    """The connection item as a ``Connection`` (epoch seconds as UTC datetimes)."""
    company = item.get("company")
    instants = {name: _instant(item.get(name)) for name in _INSTANT_FIELDS}
    return Connection(
        tenant_id=str(item["tenant_id"]),
        realm_id=str(item["realm_id"]),
        health=Health(item["health"]) if item.get("health") else None,
        health_reason=item.get("health_reason"),
        company=CompanyRecord.model_validate(_plain(company)) if company else None,
        access_token_ct=_binary(item.get("access_token_ct")),
        refresh_token_ct=_binary(item.get("refresh_token_ct")),
        token_version=_number(item.get("token_version")),
        lease_owner=item.get("lease_owner"),
        refresh_failures=_number(item.get("refresh_failures")),
        keep_mappings=item.get("keep_mappings"),
        hard_expiry_warned_days=(
            _number(item["hard_expiry_warned_days"]) if "hard_expiry_warned_days" in item else None
        ),
        revoke_error=item.get("revoke_error"),
        onboarding=_onboarding_of(item),
        **instants,
    )


def _onboarding_of(item: Mapping[str, Any]) -> Onboarding | None:
    state = item.get(ONBOARDING_STATE)
    if state is None:
        return None
    counts = _plain(item.get("onboarding_counts") or {})
    return Onboarding(
        state=state,
        started_at=_instant(item.get("onboarding_started_at")),
        finished_at=_instant(item.get("onboarding_finished_at")),
        failed_at=_instant(item.get("onboarding_failed_at")),
        error=item.get("onboarding_error"),
        **{name: counts.get(name) or {} for name in ("read", "linked", "unmatched")},
    )


# The item's attributes stored as epoch seconds (``Connection`` holds them as UTC datetimes).
_INSTANT_FIELDS: Final = (
    "health_changed_at",
    "access_expires_at",
    "refresh_expires_at",
    "hard_expires_at",
    "lease_until",
    "last_refresh_at",
    "last_success_at",
    "connected_at",
    "disconnected_at",
)


def _company_map(company: CompanyRecord) -> dict[str, Any]:
    return {k: v for k, v in company.model_dump().items() if v is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value
