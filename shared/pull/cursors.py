"""Pull cursors: per tenant and QBO entity, the instant up to which changes have been applied.

Layout (``tables.LINKS``, durable, no TTL; docs/pull.md, "Cursors"):
``pk = TENANT#<tenant>#CURSOR``, ``sk = <Entity>`` with ``position`` (ISO instant, UTC),
``updated_at`` and ``exchange_id`` (the run that moved it).  The partition cannot collide with the
link store's (``TENANT#<t>#KIND#<kind>``) nor the QBO cache's (``TENANT#<t>#QBO#<kind>``).

A cursor only moves forward (a conditional write), and only after the changes read up to it were
applied: a crash between the read and the advance makes the next run read the same window again,
which is harmless because applying is idempotent (event ids are stable per object version).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from shared import constants
from shared.clock import Clock, SystemClock

CURSOR_MARK: Final = "#CURSOR"
_ENTITY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
_TENANT = re.compile(r"^[^#\x00-\x1f]{1,128}$")


def cursor_pk(tenant_id: str) -> str:
    if not _TENANT.match(tenant_id):
        raise ValueError("tenant id must be 1-128 characters without '#'")
    return f"{constants.tenant_pk(tenant_id)}{CURSOR_MARK}"


def _check_entity(entity: str) -> str:
    if not _ENTITY.match(entity):
        raise ValueError(f"not a QBO entity name: {entity!r}")
    return entity


def _stamp(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("cursor positions carry a time zone")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class CursorStore:
    """Read and advance cursors (a boto3 ``Table`` resource of ``tables.LINKS``)."""

    def __init__(self, table: Any, clock: Clock | None = None) -> None:
        self._table = table
        self._clock = clock or SystemClock()

    def get(self, tenant_id: str, entity: str) -> datetime | None:
        key = {constants.PK: cursor_pk(tenant_id), constants.SK: _check_entity(entity)}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return datetime.fromisoformat(str(item["position"])) if item else None

    def get_many(self, tenant_id: str, entities: Iterable[str]) -> dict[str, datetime | None]:
        return {entity: self.get(tenant_id, entity) for entity in entities}

    def advance(
        self, tenant_id: str, entities: Iterable[str], position: datetime, *, exchange_id: str
    ) -> int:
        """Move each entity's cursor to ``position`` unless it already stands there or later;
        returns how many moved.  Positions are compared as UTC ISO strings of fixed width."""
        moved = 0
        stamp = _stamp(position)
        for entity in entities:
            try:
                self._table.update_item(
                    Key={constants.PK: cursor_pk(tenant_id), constants.SK: _check_entity(entity)},
                    UpdateExpression="SET #p = :p, #u = :u, #x = :x",
                    ConditionExpression="attribute_not_exists(#p) OR #p < :p",
                    ExpressionAttributeNames={"#p": "position", "#u": "updated_at", "#x": "exchange_id"},
                    ExpressionAttributeValues={
                        ":p": stamp,
                        ":u": _stamp(self._clock.now()),
                        ":x": exchange_id,
                    },
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                continue  # another run already went further: a cursor never moves back
            moved += 1
        return moved
