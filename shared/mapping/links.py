"""The links table: which QBO entity each of a tenant's app entities is, per kind.

Layout (``tables.LINKS``; docs/push.md, "Links"): one partition per tenant and kind,
``pk = TENANT#<tenant>#KIND#<kind>``, holding two items per link:

- ``sk = APP#<app id>``: ``tenant_id``, ``kind``, ``app_id``, ``qbo_id``, ``qbo_name``,
  ``sync_token``, ``content_hash``, ``source``, ``linked_at``, ``synced_at`` — the link itself;
- ``sk = QBO#<qbo id>``: ``app_id`` (and ``qbo_id``) — the reverse entry.

Both are written in one ``TransactWriteItems`` whose conditions make the link one-to-one on both
sides: each item may only be created or rewritten for the same partner.  Every read names the
tenant in the partition key, so no method can reach another tenant's items, and ids never contain
``#`` (validated), so no crafted id can forge another tenant's or kind's key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Final, Literal, NamedTuple, TypedDict, Unpack

from pydantic import BaseModel, ConfigDict

from shared.adapters.dynamo import (
    ConditionFailedError,
    Key,
    client_errors,
    decode_page_token,
    encode_page_token,
)
from shared.kernel import constants
from shared.kernel.clock import Clock, SystemClock

LinkSource = Literal["auto", "manual", "export", "import", "push"]
LINK_SOURCES: Final[frozenset[str]] = frozenset({"auto", "manual", "export", "import", "push"})

_APP_ID = re.compile(constants.APP_ID_PATTERN)
_KEY_PART = re.compile(r"^[^#\x00-\x1f]{1,128}$")  # tenant and QBO ids: never '#' (key separator)
_MAX_TOKEN_LENGTH: Final = 4096
_MAX_PAGE: Final = 1000
_BATCH_GET_KEYS: Final = 100  # DynamoDB's BatchGetItem limit
# Pairs deleted per transaction by ``clear``: DynamoDB allows 100 actions, moto 25.
_CLEAR_PAIRS_PER_TRANSACTION: Final = 12
_RETRIES: Final = 3  # re-reads after a concurrent change before giving up with LinkBusyError
_Actions = list[dict[str, Any]]  # TransactItems (an alias: ``LinkStore.list`` shadows the builtin)


# --- errors ------------------------------------------------------------------------------------


class LinkError(Exception):
    """Base of every error the link store raises."""


class InvalidLinkRequestError(LinkError, ValueError):
    """A kind, id or argument that cannot be stored (nothing was read or written)."""


class LinkNotFoundError(LinkError, LookupError):
    def __init__(self, tenant_id: str, kind: str, app_id: str) -> None:
        super().__init__(f"{kind} {app_id} is not linked")
        self.tenant_id = tenant_id
        self.kind = kind
        self.app_id = app_id


class LinkConflictError(LinkError):
    """A link would break one-to-one: the app entity, the QBO entity (or both) have another partner.

    ``app_partner`` is the QBO id the app entity is already linked to; ``qbo_partner`` the app id
    the QBO entity is already linked to.
    """

    def __init__(
        self,
        kind: str,
        app_id: str,
        qbo_id: str | None,
        *,
        app_partner: str | None = None,
        qbo_partner: str | None = None,
    ) -> None:
        problems = []
        if app_partner is not None:
            problems.append(f"{kind} {app_id} is already linked to QBO id {app_partner}")
        if qbo_partner is not None:
            problems.append(f"QBO id {qbo_id} is already linked to {kind} {qbo_partner}")
        super().__init__("; ".join(problems) or f"{kind} {app_id} cannot be linked to QBO id {qbo_id}")
        self.kind = kind
        self.app_id = app_id
        self.qbo_id = qbo_id
        self.app_partner = app_partner
        self.qbo_partner = qbo_partner

    @property
    def side(self) -> Literal["app", "qbo", "both"]:
        if self.app_partner is not None and self.qbo_partner is not None:
            return "both"
        return "app" if self.app_partner is not None else "qbo"


class LinkBusyError(LinkError):
    """DynamoDB refused a write because of concurrent work (or throttling): safe to retry."""


class LinkStoreError(LinkError):
    """Any other DynamoDB failure (missing table, validation, ...), with the ClientError as cause."""


def _dynamodb(operation: str) -> AbstractContextManager[None]:
    return client_errors(operation, busy=LinkBusyError, failure=LinkStoreError)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= _MAX_PAGE:
        raise InvalidLinkRequestError(f"limit must be between 1 and {_MAX_PAGE}")
    return limit


# --- the link -----------------------------------------------------------------------------------


class Link(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str
    kind: str
    app_id: str
    qbo_id: str
    qbo_name: str | None = None
    sync_token: str | None = None
    content_hash: str | None = None
    source: LinkSource = "manual"
    linked_at: datetime
    synced_at: datetime | None = None


class LinkPage(NamedTuple):
    links: list[Link]
    next_token: str | None


def validate_kind(kind: str) -> str:
    if kind not in constants.LINK_KINDS:
        raise InvalidLinkRequestError(
            f"unknown kind {kind!r}; expected one of {', '.join(constants.LINK_KINDS)}"
        )
    return kind


def _check_tenant(tenant_id: str) -> str:
    if not _KEY_PART.match(tenant_id):
        raise InvalidLinkRequestError("tenant id must be 1-128 characters without '#'")
    return tenant_id


def _check_app_id(app_id: str) -> str:
    if not _APP_ID.match(app_id):
        raise InvalidLinkRequestError(f"app id {app_id!r} must match {constants.APP_ID_PATTERN}")
    return app_id


def _check_qbo_id(qbo_id: str) -> str:
    if not _KEY_PART.match(qbo_id):
        raise InvalidLinkRequestError(f"QBO id {qbo_id!r} must be 1-128 characters without '#'")
    return qbo_id


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


class LinkDetails(TypedDict, total=False):
    """What ``LinkStore.link`` records beside the pair (``link_actions`` holds the defaults)."""

    qbo_name: str | None
    sync_token: str | None
    content_hash: str | None
    source: LinkSource


class LinkStore:
    """Data access for the links table (a boto3 ``Table`` resource of ``tables.LINKS``)."""

    def __init__(self, table: Any, clock: Clock | None = None) -> None:
        self._table = table
        self._clock = clock or SystemClock()

    @property
    def table(self) -> Any:
        """The links table, which the mapping cache (``shared.mapping.catalog``) shares."""
        return self._table

    # --- keys --------------------------------------------------------------------------------

    @staticmethod
    def _pk(tenant_id: str, kind: str) -> str:
        return constants.link_pk(_check_tenant(tenant_id), validate_kind(kind))

    @staticmethod
    def _app_key(pk: str, app_id: str) -> dict[str, str]:
        return {constants.PK: pk, constants.SK: constants.LINK_APP_PREFIX + _check_app_id(app_id)}

    @staticmethod
    def _qbo_key(pk: str, qbo_id: str) -> dict[str, str]:
        return {constants.PK: pk, constants.SK: constants.LINK_QBO_PREFIX + _check_qbo_id(qbo_id)}

    # --- writes ------------------------------------------------------------------------------

    def link(
        self, tenant_id: str, kind: str, app_id: str, qbo_id: str, **details: Unpack[LinkDetails]
    ) -> None:
        """Link ``app_id`` to ``qbo_id`` (one TransactWriteItems of two items).

        Re-linking the same pair is idempotent: it keeps ``linked_at`` and ``source`` and refreshes
        the name, SyncToken and content hash given.  A second partner on either side raises
        ``LinkConflictError`` naming the side(s) and the partner(s) already linked.
        """
        actions = self.link_actions(tenant_id, kind, app_id, qbo_id, **details)
        try:
            self._transact(actions, "link")
        except ConditionFailedError as failed:
            raise self.conflict(kind, app_id, qbo_id, failed.failed) from None

    def link_actions(
        self,
        tenant_id: str,
        kind: str,
        app_id: str,
        qbo_id: str,
        *,
        qbo_name: str | None = None,
        sync_token: str | None = None,
        content_hash: str | None = None,
        source: LinkSource = "manual",
        new: bool = False,
    ) -> list[dict[str, Any]]:
        """``link``'s two TransactWriteItems actions, for a caller that must write the link in its
        own transaction (the push worker: the link and the posted state together, or neither).
        A refusal of either decodes with ``conflict``.

        ``new``: the caller knows the app entity is not linked yet (a document QBO just created):
        both items are written whole, on the condition that neither exists.  The same items as the
        updates would make; a refusal then also covers relinking the same pair, which the caller
        retries without ``new``.
        """
        if source not in LINK_SOURCES:
            raise InvalidLinkRequestError(f"unknown link source {source!r}")
        pk = self._pk(tenant_id, kind)
        app_key, qbo_key = self._app_key(pk, app_id), self._qbo_key(pk, qbo_id)
        now = _stamp(self._clock.now())
        app_sets = {
            "tenant_id": tenant_id,
            "kind": kind,
            "app_id": app_id,
            "qbo_id": qbo_id,
            "qbo_name": qbo_name,
            "sync_token": sync_token,
            "content_hash": content_hash,
        }
        if new:
            app_item = {**app_key, **{k: v for k, v in app_sets.items() if v is not None}}
            app_item.update(linked_at=now, source=source)
            qbo_item = {**qbo_key, "tenant_id": tenant_id, "kind": kind, "app_id": app_id, "qbo_id": qbo_id}
            qbo_item["linked_at"] = now
            return [_transact_put(self._table.name, app_item), _transact_put(self._table.name, qbo_item)]
        app_update = _transact_update(
            app_key,
            sets={k: v for k, v in app_sets.items() if v is not None},
            keep={"linked_at": now, "source": source},
            condition=("qbo_id", qbo_id),
        )
        qbo_update = _transact_update(
            qbo_key,
            sets={"tenant_id": tenant_id, "kind": kind, "app_id": app_id, "qbo_id": qbo_id},
            keep={"linked_at": now},
            condition=("app_id", app_id),
        )
        for action in (app_update, qbo_update):
            next(iter(action.values()))["TableName"] = self._table.name
        return [app_update, qbo_update]

    @staticmethod
    def conflict(
        kind: str, app_id: str, qbo_id: str, failed: Mapping[int, Mapping[str, Any] | None]
    ) -> LinkConflictError:
        """The error for ``link_actions`` refused: ``failed`` maps their positions (0: the app side,
        1: the QBO side) to the item each found."""
        app_item, qbo_item = failed.get(0), failed.get(1)
        return LinkConflictError(
            kind,
            app_id,
            qbo_id,
            app_partner=str(app_item["qbo_id"]) if app_item else None,
            qbo_partner=str(qbo_item["app_id"]) if qbo_item else None,
        )

    def unlink(self, tenant_id: str, kind: str, app_id: str) -> Link | None:
        """Remove the link of ``app_id`` (both items); returns what was removed, None if unlinked."""
        for _ in range(_RETRIES):
            link = self.get_by_app(tenant_id, kind, app_id)
            if link is None:
                return None
            try:
                self._transact(self._delete_pair(link.tenant_id, kind, app_id, link.qbo_id), "unlink")
            except ConditionFailedError:
                continue  # relinked meanwhile: read again
            return link
        raise LinkBusyError(f"unlink: {kind} {app_id} keeps changing, retry")

    def unlink_qbo(self, tenant_id: str, kind: str, qbo_id: str) -> Link | None:
        """Remove the link of the QBO entity ``qbo_id`` (e.g. merged or deleted in QBO)."""
        for _ in range(_RETRIES):
            link = self.get_by_qbo(tenant_id, kind, qbo_id)
            if link is None:
                return None
            try:
                self._transact(self._delete_pair(tenant_id, kind, link.app_id, qbo_id), "unlink")
            except ConditionFailedError:
                continue
            return link
        raise LinkBusyError(f"unlink: QBO id {qbo_id} keeps changing, retry")

    def record_sync(
        self,
        tenant_id: str,
        kind: str,
        app_id: str,
        sync_token: str,
        content_hash: str,
        *,
        qbo_id: str | None = None,
    ) -> None:
        """After a push or pull: store QBO's new SyncToken and the content hash now in both systems.

        Conditional on the link existing (and, with ``qbo_id``, still pointing there): a write never
        resurrects an unlinked entity or stamps another partner's token.
        """
        pk = self._pk(tenant_id, kind)
        names = {"#pk": constants.PK, "#st": "sync_token", "#ch": "content_hash", "#at": "synced_at"}
        values: dict[str, Any] = {
            ":st": sync_token,
            ":ch": content_hash,
            ":at": _stamp(self._clock.now()),
        }
        condition = "attribute_exists(#pk)"
        if qbo_id is not None:
            names["#q"] = "qbo_id"
            values[":q"] = _check_qbo_id(qbo_id)
            condition += " AND #q = :q"
        try:
            with _dynamodb("record_sync"):
                self._table.update_item(
                    Key=self._app_key(pk, app_id),
                    UpdateExpression="SET #st = :st, #ch = :ch, #at = :at",
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ConditionFailedError as failed:
            current = failed.failed.get(0)
            if current is None:
                raise LinkNotFoundError(tenant_id, kind, app_id) from None
            raise LinkConflictError(kind, app_id, qbo_id, app_partner=str(current["qbo_id"])) from None

    def clear(self, tenant_id: str, kind: str) -> int:
        """Remove every link of one kind; returns how many were removed.

        Pairs are deleted in transactions (never one side without the other); a pair that changed
        meanwhile is removed through ``unlink``, which reads it again.
        """
        pk = self._pk(tenant_id, kind)
        removed = 0
        request: dict[str, Any] = {
            "KeyConditionExpression": Key(constants.PK).eq(pk)
            & Key(constants.SK).begins_with(constants.LINK_APP_PREFIX),
            "ProjectionExpression": "#sk, app_id, qbo_id",
            "ExpressionAttributeNames": {"#sk": constants.SK},
            "ConsistentRead": True,
            "Limit": _CLEAR_PAIRS_PER_TRANSACTION,
        }
        while True:
            with _dynamodb("clear"):
                answer = self._table.query(**request)
            pairs = [(str(item["app_id"]), str(item["qbo_id"])) for item in answer.get("Items", [])]
            if pairs:
                actions = [op for app, qbo in pairs for op in self._delete_pair(tenant_id, kind, app, qbo)]
                try:
                    self._transact(actions, "clear")
                    removed += len(pairs)
                except ConditionFailedError:
                    removed += sum(self.unlink(tenant_id, kind, app) is not None for app, _ in pairs)
            last = answer.get("LastEvaluatedKey")
            if not last:
                return removed
            request["ExclusiveStartKey"] = last

    def clear_tenant(self, tenant_id: str) -> int:
        """Remove every link of every kind ("remove mappings" on disconnect); how many were removed."""
        return sum(self.clear(tenant_id, kind) for kind in constants.LINK_KINDS)

    # --- reads -------------------------------------------------------------------------------

    def get_by_app(self, tenant_id: str, kind: str, app_id: str) -> Link | None:
        pk = self._pk(tenant_id, kind)
        with _dynamodb("get_by_app"):
            item = self._table.get_item(Key=self._app_key(pk, app_id), ConsistentRead=True).get("Item")
        return _link(item) if item else None

    def get_by_qbo(self, tenant_id: str, kind: str, qbo_id: str) -> Link | None:
        """The link of a QBO entity: the reverse entry, then the link it names (two reads)."""
        pk = self._pk(tenant_id, kind)
        with _dynamodb("get_by_qbo"):
            reverse = self._table.get_item(Key=self._qbo_key(pk, qbo_id), ConsistentRead=True).get("Item")
        if not reverse:
            return None
        link = self.get_by_app(tenant_id, kind, str(reverse["app_id"]))
        # Both items change in one transaction, so a mismatch means the link moved between the reads.
        return link if link is not None and link.qbo_id == qbo_id else None

    def get_many(self, tenant_id: str, kind: str, app_ids: Iterable[str]) -> dict[str, Link]:
        """The links of several app entities (BatchGetItem, 100 keys a call); unlinked ones are absent.

        What the push needs to resolve an invoice's client and every line's code in one or two calls.
        """
        found = self.get_kinds(tenant_id, ((kind, app_id) for app_id in app_ids))
        return {app_id: link for (_, app_id), link in found.items()}

    def get_kinds(self, tenant_id: str, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Link]:
        """The links of several (kind, app id) pairs of one tenant, kinds mixed, in as few calls as
        BatchGetItem allows (100 keys each); unlinked pairs are absent.  What the push worker reads
        for a whole batch of documents at once: clients, sites, codes, taxes and invoices."""
        keys = [self._app_key(self._pk(tenant_id, kind), app_id) for kind, app_id in dict.fromkeys(wanted)]
        found: dict[tuple[str, str], Link] = {}
        for item in self._batch_get(keys, "get_many"):
            link = _link(item)
            found[(link.kind, link.app_id)] = link
        return found

    def get_many_by_qbo(
        self, tenant_id: str, wanted: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], Link]:
        """The links of several (kind, QBO id) pairs of one tenant: the reverse entries in one
        BatchGetItem (100 keys a call), then the links they name in another; unlinked pairs are
        absent.  What the change worker reads for a whole CDC answer at once."""
        pairs = list(dict.fromkeys(wanted))
        keys = [self._qbo_key(self._pk(tenant_id, kind), qbo_id) for kind, qbo_id in pairs]
        reverse = self._batch_get(keys, "get_many_by_qbo")
        named: dict[tuple[str, str], str] = {}  # (kind, app id) -> the QBO id the reverse entry is for
        for item in reverse:
            named[(str(item["kind"]), str(item["app_id"]))] = str(item["qbo_id"])
        found = self.get_kinds(tenant_id, named)
        return {
            (kind, link.qbo_id): link
            for (kind, app_id), link in found.items()
            # Both items change in one transaction, so a mismatch means the link moved between reads.
            if named.get((kind, app_id)) == link.qbo_id
        }

    def _batch_get(self, keys: list[dict[str, str]], operation: str) -> list[dict[str, Any]]:
        client = self._table.meta.client
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            pending: dict[str, Any] = {
                self._table.name: {"Keys": keys[start : start + _BATCH_GET_KEYS], "ConsistentRead": True}
            }
            while pending:
                with _dynamodb(operation):
                    answer = client.batch_get_item(RequestItems=pending)
                items += answer.get("Responses", {}).get(self._table.name, [])
                pending = answer.get("UnprocessedKeys") or {}
        return items

    def list(self, tenant_id: str, kind: str, *, page_token: str | None = None, limit: int = 100) -> LinkPage:
        """One page of a kind's links, by app id; ``next_token`` is None on the last page."""
        pk = self._pk(tenant_id, kind)
        request: dict[str, Any] = {
            "KeyConditionExpression": Key(constants.PK).eq(pk)
            & Key(constants.SK).begins_with(constants.LINK_APP_PREFIX),
            "ConsistentRead": True,
            "Limit": check_limit(limit),
        }
        if page_token is not None:
            request["ExclusiveStartKey"] = decode_page_token(
                page_token,
                {
                    constants.PK: pk.__eq__,
                    constants.SK: lambda sk: sk.startswith(constants.LINK_APP_PREFIX),
                },
            )
        with _dynamodb("list"):
            answer = self._table.query(**request)
        last = answer.get("LastEvaluatedKey")
        return LinkPage(
            [_link(item) for item in answer.get("Items", [])],
            encode_page_token(last) if last else None,
        )

    # --- helpers -----------------------------------------------------------------------------

    def _delete_pair(self, tenant_id: str, kind: str, app_id: str, qbo_id: str) -> _Actions:
        """Delete both items of one link, only if they still point at each other."""
        pk = self._pk(tenant_id, kind)
        return [
            {
                "Delete": {
                    "Key": self._app_key(pk, app_id),
                    "ConditionExpression": "#q = :q",
                    "ExpressionAttributeNames": {"#q": "qbo_id"},
                    "ExpressionAttributeValues": {":q": qbo_id},
                }
            },
            {
                # Tolerates a missing reverse entry, so a damaged pair can still be removed.
                "Delete": {
                    "Key": self._qbo_key(pk, qbo_id),
                    "ConditionExpression": "attribute_not_exists(#pk) OR #a = :a",
                    "ExpressionAttributeNames": {"#pk": constants.PK, "#a": "app_id"},
                    "ExpressionAttributeValues": {":a": app_id},
                }
            },
        ]

    def _transact(self, actions: _Actions, operation: str) -> None:
        for action in actions:
            next(iter(action.values()))["TableName"] = self._table.name
        with _dynamodb(operation):
            self._table.meta.client.transact_write_items(TransactItems=actions)


def _transact_put(table_name: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A Put action for an item that must not exist yet (the item found is returned if it does)."""
    return {
        "Put": {
            "TableName": table_name,
            "Item": dict(item),
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": constants.PK},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _transact_update(
    key: Mapping[str, str],
    *,
    sets: Mapping[str, Any],
    keep: Mapping[str, Any],
    condition: tuple[str, str],
) -> dict[str, Any]:
    """An Update action: SET ``sets``, set ``keep`` only where absent, and allow it only on a new item
    or one whose ``condition`` attribute already has the same value (the same partner)."""
    names: dict[str, str] = {"#pk": constants.PK}
    values: dict[str, Any] = {}
    clauses = []
    for index, (name, value) in enumerate([*sets.items(), *keep.items()]):
        names[f"#n{index}"], values[f":v{index}"] = name, value
        if name in keep:
            clauses.append(f"#n{index} = if_not_exists(#n{index}, :v{index})")
        else:
            clauses.append(f"#n{index} = :v{index}")
    attribute, expected = condition
    names["#c"], values[":c"] = attribute, expected
    return {
        "Update": {
            "Key": key,
            "UpdateExpression": "SET " + ", ".join(clauses),
            "ConditionExpression": "attribute_not_exists(#pk) OR #c = :c",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _link(item: Mapping[str, Any]) -> Link:
    return Link(
        tenant_id=str(item["tenant_id"]),
        kind=str(item["kind"]),
        app_id=str(item["app_id"]),
        qbo_id=str(item["qbo_id"]),
        qbo_name=item.get("qbo_name"),
        sync_token=item.get("sync_token"),
        content_hash=item.get("content_hash"),
        source=item.get("source", "manual"),
        linked_at=_instant(item.get("linked_at")) or datetime.fromtimestamp(0, UTC),
        synced_at=_instant(item.get("synced_at")),
    )
