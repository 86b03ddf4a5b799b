"""Both sides of the match tabs, stored in the links table next to the links themselves.

``AppCatalog`` holds the app side of each kind as the app tells us (upserts whose version only
grows); ``QboCache`` holds the QBO side as read from the tenant's company, with the instant it was
read.  Layout (``tables.LINKS``), chosen so that no key can collide with ``LinkStore``'s
(``pk = TENANT#<t>#KIND#<kind>`` with ``sk = APP#...`` / ``QBO#...``):

- app entity: ``pk = TENANT#<t>#KIND#<kind>``, ``sk = ENT#<app id>``;
- QBO entity: ``pk = TENANT#<t>#QBO#<kind>``, ``sk = <qbo id>`` (QBO ids never contain ``#``);
- the cache's stamp: ``pk = TENANT#<t>#QBO#<kind>``, ``sk = #META`` (``refreshed_at``, ``count``).

The QBO side also keeps one kind that is not a link kind: ``vendor`` (names only), for the 6240
pre-check, since QBO's DisplayName is unique across customers, vendors and employees, inactive
ones included.

Tax codes keep their sales rates (TaxRate id, name, percent, agency), which the push needs to send
the app's tax per rate.  A TaxCode row names its rates but only the TaxRate holds the percent, and
every query is a metered read, so ``SELECT * FROM TaxRate`` is added to a refresh only when it is
needed: an explicit refresh (the tenant's, and onboarding) always reads it; the daily one only when
a *linked* tax code (the only ones a document can use) names a rate the cache does not know, or the
rates were last read ``RATES_MAX_AGE`` ago (a percent changed in QBO under the same rate).  The
other codes keep the rates already known, or none (``rates`` None: not read).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.adapters.dynamo import ConditionFailedError, Key, aws_errors
from shared.kernel import constants
from shared.kernel.clock import Clock, SystemClock
from shared.mapping.errors import CatalogVersionConflictError

MappingKind = Literal["client", "site", "employee", "work_code", "expense_code", "tax", "account"]
MAPPING_KINDS: Final[tuple[str, ...]] = (
    "client",
    "site",
    "employee",
    "work_code",
    "expense_code",
    "tax",
    "account",
)
CacheKind = Literal["client", "site", "employee", "work_code", "expense_code", "tax", "account", "vendor"]
CACHE_KINDS: Final[tuple[str, ...]] = (*MAPPING_KINDS, "vendor")

# The QBO entity behind each kind.
QBO_ENTITY: Final[Mapping[str, str]] = {
    "client": "Customer",
    "site": "Customer",
    "employee": "Employee",
    "work_code": "Item",
    "expense_code": "Item",
    "tax": "TaxCode",
    "account": "Account",
    "vendor": "Vendor",
}
# Name lists whose inactive rows matter (6240 spans inactive customers, vendors and employees);
# items, tax codes and accounts are cached active only: an inactive one cannot be used on a document.
_WITH_INACTIVE: Final = frozenset({"Customer", "Vendor", "Employee"})
# Item types that can sit on a sales line (a Category is a folder, not an item).
LINE_ITEM_TYPES: Final = frozenset({"Service", "NonInventory", "Inventory", "Group", "Bundle"})

# Accounts: the app says what it uses an account for; QBO's account type must fit that use.
AccountUse = Literal["revenue", "deposit", "expense"]
ACCOUNT_USES: Final[tuple[str, ...]] = ("revenue", "deposit", "expense")
ACCOUNT_TYPES_FOR_USE: Final[Mapping[str, frozenset[str]]] = {
    # An invoice line credits revenue; Accounts Receivable is never a line account.
    "revenue": frozenset({"Income", "Other Income"}),
    # A payment is deposited to a bank account or held in Undeposited Funds (Other Current Asset).
    "deposit": frozenset({"Bank", "Other Current Asset"}),
    # What an expense code's item costs to (its ExpenseAccountRef).
    "expense": frozenset({"Expense", "Other Expense", "Cost of Goods Sold"}),
}
# The AccountType an exported app account is created with, per use.  Accounts Receivable is never
# created: no use maps to it.
ACCOUNT_TYPE_TO_CREATE: Final[Mapping[str, str]] = {
    "revenue": "Income",
    "deposit": "Bank",
    "expense": "Expense",
}

APP_ENTITY_PREFIX: Final = "ENT#"
META_SK: Final = "#META"
TAX_RATE_QUERY: Final = "SELECT * FROM TaxRate ORDERBY Id"
RATES_MAX_AGE: Final = timedelta(days=7)
_BATCH_GET_KEYS: Final = 100  # DynamoDB's BatchGetItem limit
_MAX_NAME: Final = 500
_APP_ID = re.compile(constants.APP_ID_PATTERN)


class CatalogError(Exception):
    """A catalog or cache failure (DynamoDB), with the ClientError as cause."""


def entity_pk(tenant_id: str, kind: str) -> str:
    return constants.link_pk(tenant_id, kind)  # the same partition as the kind's links


def qbo_pk(tenant_id: str, kind: str) -> str:
    return f"TENANT#{tenant_id}#QBO#{kind}"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the app side --------------------------------------------------------------------------------


class AppEntity(BaseModel):
    """One app entity of a kind, as the app describes it (``PUT .../catalog/{kind}/{app_id}``).

    ``type``: the client/contact type for clients (only the tenant's ``client_types`` sync), the
    use of an account (``revenue``, ``deposit`` or ``expense``), free text elsewhere.
    ``parent_id``: a site's client.  ``account_id`` (work and expense codes): the app account
    (use ``revenue``) whose linked QBO account is the item's income account on export.
    ``expense_account_id`` (expense codes): the app account (use ``expense``) whose linked QBO
    account is the item's expense account on export.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=constants.APP_ID_PATTERN)
    version: int = Field(
        ge=0,
        description=(
            "Only grows; an older version, or the same one with the same fields, is ignored; "
            "the same version with other fields is a 409 version_conflict."
        ),
    )
    name: str = Field(min_length=1, max_length=_MAX_NAME)
    email: str | None = Field(default=None, max_length=320)
    type: str | None = Field(default=None, max_length=100)
    parent_id: str | None = Field(default=None, pattern=constants.APP_ID_PATTERN)
    active: bool = True
    account_id: str | None = Field(default=None, pattern=constants.APP_ID_PATTERN)
    expense_account_id: str | None = Field(default=None, pattern=constants.APP_ID_PATTERN)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()


class UpsertOutcome(BaseModel):
    entity: AppEntity
    stored: bool = Field(description="False when the catalog already held this or a newer version.")


def _table_call(operation: str, call: Callable[[], Any]) -> Any:
    with aws_errors(lambda code, _: CatalogError(f"{operation} failed: {code or 'unknown error'}")):
        return call()


def _query_all(table: Any, request: dict[str, Any], operation: str) -> Iterator[dict[str, Any]]:
    while True:
        answer = _table_call(operation, lambda: table.query(**request))
        yield from answer.get("Items", [])
        last = answer.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


class AppCatalog:
    """The app side of each kind (a boto3 ``Table`` resource of ``tables.LINKS``)."""

    def __init__(self, table: Any, clock: Clock | None = None) -> None:
        self._table = table
        self._clock = clock or SystemClock()

    def upsert(self, tenant_id: str, kind: str, entity: AppEntity) -> UpsertOutcome:
        """Store ``entity`` unless the catalog holds the same or a newer version (conditional put).

        The same version with the same fields (the app's retry) and an older version are not
        stored; the same version with other fields is ``CatalogVersionConflictError``.  The refused
        put returns the stored entity (``ALL_OLD``), so none of this costs a read."""
        item: dict[str, Any] = {
            constants.PK: entity_pk(tenant_id, kind),
            constants.SK: APP_ENTITY_PREFIX + entity.id,
            "tenant_id": tenant_id,
            "kind": kind,
            "updated_at": _stamp(self._clock.now()),
            **{k: v for k, v in entity.model_dump().items() if v is not None},
        }
        try:
            with aws_errors(lambda _code, _error: CatalogError("upsert failed"), conditions=True):
                self._table.put_item(
                    Item=item,
                    ConditionExpression="attribute_not_exists(#pk) OR #v < :v",
                    ExpressionAttributeNames={"#pk": constants.PK, "#v": "version"},
                    ExpressionAttributeValues={":v": entity.version},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ConditionFailedError as refused:
            found = refused.failed.get(0)
            current = _app_entity(found) if found else self.get(tenant_id, kind, entity.id)
            if current is not None and current.version == entity.version and _differ(current, entity):
                raise CatalogVersionConflictError(kind, entity.id, entity.version) from None
            return UpsertOutcome(entity=current or entity, stored=False)
        return UpsertOutcome(entity=entity, stored=True)

    def get(self, tenant_id: str, kind: str, app_id: str) -> AppEntity | None:
        if not _APP_ID.match(app_id):
            return None
        key = {constants.PK: entity_pk(tenant_id, kind), constants.SK: APP_ENTITY_PREFIX + app_id}
        answer = _table_call("get", lambda: self._table.get_item(Key=key, ConsistentRead=True))
        item = answer.get("Item")
        return _app_entity(item) if item else None

    def list(self, tenant_id: str, kind: str) -> list[AppEntity]:
        request: dict[str, Any] = {
            "KeyConditionExpression": Key(constants.PK).eq(entity_pk(tenant_id, kind))
            & Key(constants.SK).begins_with(APP_ENTITY_PREFIX),
            "ConsistentRead": True,
        }
        return [_app_entity(item) for item in _query_all(self._table, request, "list")]

    def clear_tenant(self, tenant_id: str) -> int:
        """Forget every app entity of the tenant ("remove mappings" on disconnect)."""
        removed = 0
        with self._table.batch_writer() as batch:
            for kind in MAPPING_KINDS:
                for entity in self.list(tenant_id, kind):
                    key = {
                        constants.PK: entity_pk(tenant_id, kind),
                        constants.SK: APP_ENTITY_PREFIX + entity.id,
                    }
                    batch.delete_item(Key=key)
                    removed += 1
        return removed


def _differ(stored: AppEntity, new: AppEntity) -> bool:
    return stored.model_dump(mode="json") != new.model_dump(mode="json")


def _app_entity(item: Mapping[str, Any]) -> AppEntity:
    fields = {name: item[name] for name in AppEntity.model_fields if name in item}
    if isinstance(fields.get("version"), Decimal):
        fields["version"] = int(fields["version"])
    return AppEntity.model_validate(fields)


# --- the QBO side --------------------------------------------------------------------------------


class QboTaxRate(BaseModel):
    """One sales rate of a cached tax code: the TaxRate's id, name, percentage (``RateValue``, 5
    means 5 %) and agency (``AgencyRef``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    name: str
    percent: Decimal
    agency_id: str | None = None


class QboEntity(BaseModel):
    """One QBO entity of a kind as cached: what the match tab shows and automatch compares.

    ``type``: AccountType for accounts, Type for items.  ``parent_id``: a sub-customer's parent.
    ``extra_names``: other names it goes by (a customer's company name and person's name).
    ``rates``: a tax code's sales rates, in the code's order (None: not read, see the module).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    name: str
    active: bool = True
    email: str | None = None
    type: str | None = None
    parent_id: str | None = None
    sync_token: str | None = None
    fully_qualified_name: str | None = None
    extra_names: tuple[str, ...] = ()
    rates: tuple[QboTaxRate, ...] | None = None


class CacheStamp(BaseModel):
    refreshed_at: datetime | None = None
    count: int = 0
    rates_read_at: datetime | None = None  # tax codes: when TaxRate was last read


class QboReader(Protocol):
    """What the cache needs of a QBO client."""

    def query_all(self, select_without_paging: str, page_size: int = ...) -> Iterator[dict[str, Any]]: ...


def _ref(row: Mapping[str, Any], name: str) -> str | None:
    ref = row.get(name)
    if isinstance(ref, Mapping) and ref.get("value") is not None:
        return str(ref["value"])
    return None


def qbo_entity(kind: str, row: Mapping[str, Any]) -> QboEntity:
    """A QBO row (the API's JSON) as the cache keeps it."""
    entity = QBO_ENTITY[kind]
    if entity in _WITH_INACTIVE:
        name = str(row.get("DisplayName") or row.get("FullyQualifiedName") or "")
        person = " ".join(str(row[p]) for p in ("GivenName", "FamilyName") if row.get(p))
        extras = tuple(n for n in (row.get("CompanyName"), person) if n and n != name)
        email = row.get("PrimaryEmailAddr")
        address = email.get("Address") if isinstance(email, Mapping) else None
        return QboEntity(
            id=str(row["Id"]),
            name=name,
            active=bool(row.get("Active", True)),
            email=str(address) if address else None,
            parent_id=_ref(row, "ParentRef"),
            sync_token=str(row["SyncToken"]) if row.get("SyncToken") is not None else None,
            fully_qualified_name=row.get("FullyQualifiedName"),
            extra_names=tuple(str(n) for n in extras),
        )
    kind_type = row.get("AccountType") if entity == "Account" else row.get("Type")
    return QboEntity(
        id=str(row["Id"]),
        name=str(row.get("Name") or row.get("FullyQualifiedName") or ""),
        active=bool(row.get("Active", True)),
        type=str(kind_type) if kind_type else None,
        parent_id=_ref(row, "ParentRef"),
        sync_token=str(row["SyncToken"]) if row.get("SyncToken") is not None else None,
        fully_qualified_name=row.get("FullyQualifiedName"),
    )


def sales_rate_ids(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The TaxRate ids a TaxCode row names for sales (``SalesTaxRateList.TaxRateDetail``), in order."""
    rate_list = row.get("SalesTaxRateList")
    details = rate_list.get("TaxRateDetail") if isinstance(rate_list, Mapping) else None
    ids = [
        rate_id
        for detail in details or ()
        if isinstance(detail, Mapping) and (rate_id := _ref(detail, "TaxRateRef")) is not None
    ]
    return tuple(dict.fromkeys(ids))


def tax_rate(row: Mapping[str, Any]) -> QboTaxRate | None:
    """A TaxRate row as a cached rate (None without a ``RateValue``: it has no percent to match)."""
    value = row.get("RateValue")
    if value is None or isinstance(value, bool):
        return None
    return QboTaxRate(
        id=str(row["Id"]),
        name=str(row.get("Name") or ""),
        percent=Decimal(str(value)),
        agency_id=_ref(row, "AgencyRef"),
    )


def with_sales_rates(entity: QboEntity, row: Mapping[str, Any], known: Mapping[str, QboTaxRate]) -> QboEntity:
    """The cached tax code with its sales rates, or with ``rates`` None when one is not known."""
    ids = sales_rate_ids(row)
    if any(rate_id not in known for rate_id in ids):
        return entity.model_copy(update={"rates": None})
    return entity.model_copy(update={"rates": tuple(known[rate_id] for rate_id in ids)})


def belongs_to(kind: str, row: Mapping[str, Any]) -> bool:
    """Whether a row of the kind's QBO entity is one of the kind (a client is a top-level
    customer, a site a sub-customer; codes are items that can sit on a line)."""
    if kind == "client":
        return not row.get("Job") and _ref(row, "ParentRef") is None
    if kind == "site":
        return _ref(row, "ParentRef") is not None
    if kind in ("work_code", "expense_code"):
        return str(row.get("Type", "Service")) in LINE_ITEM_TYPES
    return True


def query_for(kind: str) -> str:
    entity = QBO_ENTITY[kind]
    if entity in _WITH_INACTIVE:
        # The entity name comes from QBO_ENTITY, never from the caller.
        return f"SELECT * FROM {entity} WHERE Active IN (true, false) ORDERBY Id"  # noqa: S608
    return f"SELECT * FROM {entity} ORDERBY Id"  # noqa: S608


class QboCache:
    """The QBO side of each kind, read from the company (all pages) and kept with its stamp."""

    def __init__(self, table: Any, clock: Clock | None = None) -> None:
        self._table = table
        self._clock = clock or SystemClock()

    def refresh(
        self, tenant_id: str, kinds: Iterable[str], reader: QboReader, *, all_rates: bool = False
    ) -> dict[str, int]:
        """Re-read ``kinds`` from QBO and replace what the cache held; how many each now holds.

        Kinds sharing a QBO entity (client and site, work and expense codes) are read once.  Tax
        codes come with their sales rates: ``all_rates`` reads every TaxRate (an explicit refresh);
        otherwise TaxRate is read only when a linked code needs it (see the module).
        """
        wanted = list(dict.fromkeys(kinds))
        rows: dict[str, list[dict[str, Any]]] = {}
        counts: dict[str, int] = {}
        for kind in wanted:
            entity = QBO_ENTITY[kind]
            if entity not in rows:
                rows[entity] = list(reader.query_all(query_for(kind)))
            kept = [row for row in rows[entity] if belongs_to(kind, row)]
            entities = [qbo_entity(kind, row) for row in kept]
            current = self.list(tenant_id, kind)
            meta: dict[str, Any] = {}
            if kind == "tax":
                entities, rates_read_at = self._with_rates(
                    tenant_id, kept, entities, current, reader, all_rates=all_rates
                )
                if rates_read_at is not None:
                    meta["rates_read_at"] = _stamp(rates_read_at)
            self._replace(tenant_id, kind, entities, current, meta)
            counts[kind] = len(entities)
        return counts

    def _with_rates(
        self,
        tenant_id: str,
        rows: list[dict[str, Any]],
        codes: list[QboEntity],
        current: list[QboEntity],
        reader: QboReader,
        *,
        all_rates: bool,
    ) -> tuple[list[QboEntity], datetime | None]:
        """The tax codes with their sales rates, and when TaxRate was last read."""
        known = {rate.id: rate for code in current for rate in code.rates or ()}
        read_at = self.stamp(tenant_id, "tax").rates_read_at
        needed = all_rates
        if not needed:
            linked = self._linked_qbo_ids(tenant_id, "tax")
            named = {rate_id for row in rows if str(row["Id"]) in linked for rate_id in sales_rate_ids(row)}
            outdated = read_at is None or self._clock.now() - read_at >= RATES_MAX_AGE
            needed = bool(named) and (outdated or not named <= known.keys())
        if needed:
            known = {rate.id: rate for row in reader.query_all(TAX_RATE_QUERY) if (rate := tax_rate(row))}
            read_at = self._clock.now()
        return [with_sales_rates(code, row, known) for code, row in zip(codes, rows, strict=True)], read_at

    def _linked_qbo_ids(self, tenant_id: str, kind: str) -> set[str]:
        """The QBO ids of the kind's links (the QBO-side items of ``LinkStore``'s layout)."""
        request: dict[str, Any] = {
            "KeyConditionExpression": Key(constants.PK).eq(constants.link_pk(tenant_id, kind))
            & Key(constants.SK).begins_with(constants.LINK_QBO_PREFIX),
            "ProjectionExpression": "#sk",
            "ExpressionAttributeNames": {"#sk": constants.SK},
            "ConsistentRead": True,
        }
        prefix = len(constants.LINK_QBO_PREFIX)
        return {str(item[constants.SK])[prefix:] for item in _query_all(self._table, request, "linked")}

    def replace(self, tenant_id: str, kind: str, entities: Iterable[QboEntity]) -> None:
        self._replace(tenant_id, kind, entities, self.list(tenant_id, kind), {})

    def _replace(
        self,
        tenant_id: str,
        kind: str,
        entities: Iterable[QboEntity],
        current: Iterable[QboEntity],
        meta: Mapping[str, Any],
    ) -> None:
        pk = qbo_pk(tenant_id, kind)
        fresh = {e.id: e for e in entities}
        stale = {e.id for e in current} - set(fresh)
        with self._table.batch_writer() as batch:
            for qbo_id in stale:
                batch.delete_item(Key={constants.PK: pk, constants.SK: qbo_id})
            for entity in fresh.values():
                batch.put_item(Item=_cache_item(pk, entity))
            batch.put_item(
                Item={
                    constants.PK: pk,
                    constants.SK: META_SK,
                    "refreshed_at": _stamp(self._clock.now()),
                    "count": len(fresh),
                    **meta,
                }
            )

    def put(self, tenant_id: str, kind: str, entity: QboEntity) -> None:
        """Add or replace one entity (after an export created it): no need to re-read the list."""
        item = _cache_item(qbo_pk(tenant_id, kind), entity)
        _table_call("put", lambda: self._table.put_item(Item=item))

    def get(self, tenant_id: str, kind: str, qbo_id: str) -> QboEntity | None:
        if not qbo_id or "#" in qbo_id or len(qbo_id) > 128:
            return None
        key = {constants.PK: qbo_pk(tenant_id, kind), constants.SK: qbo_id}
        item = _table_call("get", lambda: self._table.get_item(Key=key, ConsistentRead=True)).get("Item")
        return _qbo_entity_item(item) if item else None

    def get_many(self, tenant_id: str, kind: str, qbo_ids: Iterable[str]) -> dict[str, QboEntity]:
        """Several cached entities of a kind by QBO id (BatchGetItem, 100 keys a call); the ones the
        cache does not hold are absent.  What the push reads for the tax codes of a batch at once."""
        pk = qbo_pk(tenant_id, kind)
        ids = [i for i in dict.fromkeys(qbo_ids) if i and "#" not in i and len(i) <= 128]
        keys = [{constants.PK: pk, constants.SK: qbo_id} for qbo_id in ids]
        client = self._table.meta.client
        found: dict[str, QboEntity] = {}
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            pending: dict[str, Any] = {
                self._table.name: {"Keys": keys[start : start + _BATCH_GET_KEYS], "ConsistentRead": True}
            }
            while pending:
                answer = _table_call("get_many", partial(client.batch_get_item, RequestItems=pending))
                for item in answer.get("Responses", {}).get(self._table.name, []):
                    entity = _qbo_entity_item(item)
                    found[entity.id] = entity
                pending = answer.get("UnprocessedKeys") or {}
        return found

    def list(self, tenant_id: str, kind: str) -> list[QboEntity]:
        request: dict[str, Any] = {
            "KeyConditionExpression": Key(constants.PK).eq(qbo_pk(tenant_id, kind)),
            "ConsistentRead": True,
        }
        return [
            _qbo_entity_item(item)
            for item in _query_all(self._table, request, "list")
            if item[constants.SK] != META_SK
        ]

    def stamp(self, tenant_id: str, kind: str) -> CacheStamp:
        key = {constants.PK: qbo_pk(tenant_id, kind), constants.SK: META_SK}
        item = _table_call("stamp", lambda: self._table.get_item(Key=key, ConsistentRead=True)).get("Item")
        if not item:
            return CacheStamp()
        rates_read_at = item.get("rates_read_at")
        return CacheStamp(
            refreshed_at=datetime.fromisoformat(str(item["refreshed_at"])),
            count=int(item["count"]),
            rates_read_at=datetime.fromisoformat(str(rates_read_at)) if rates_read_at else None,
        )

    def clear_tenant(self, tenant_id: str) -> int:
        """Forget the tenant's whole QBO side ("remove mappings" on disconnect)."""
        removed = 0
        with self._table.batch_writer() as batch:
            for kind in CACHE_KINDS:
                pk = qbo_pk(tenant_id, kind)
                request: dict[str, Any] = {
                    "KeyConditionExpression": Key(constants.PK).eq(pk),
                    "ProjectionExpression": "#sk",
                    "ExpressionAttributeNames": {"#sk": constants.SK},
                }
                for item in list(_query_all(self._table, request, "clear")):
                    batch.delete_item(Key={constants.PK: pk, constants.SK: item[constants.SK]})
                    removed += 1
        return removed


def _cache_item(pk: str, entity: QboEntity) -> dict[str, Any]:
    values = entity.model_dump(exclude_none=True)
    values["extra_names"] = list(entity.extra_names)
    return {constants.PK: pk, constants.SK: entity.id, **values}


def _qbo_entity_item(item: Mapping[str, Any]) -> QboEntity:
    values = {name: item[name] for name in QboEntity.model_fields if name in item}
    values["extra_names"] = tuple(item.get("extra_names") or ())
    if item.get("rates") is not None:
        values["rates"] = tuple(item["rates"])
    return QboEntity.model_validate(values)
