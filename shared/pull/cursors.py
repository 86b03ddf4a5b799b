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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from shared.adapters.dynamo import ConditionFailedError, failed_conditions
from shared.kernel import constants
from shared.kernel.clock import Clock, SystemClock

CURSOR_MARK: Final = "#CURSOR"
# Counters kept on a cursor item between reads: what deliveries that read nothing saw (their
# notices, our echoes, notices the cursor already covered, notices ignored by entity or reason),
# handed to the next exchange that reads.  Names are plain words (``ignored__JournalEntry``).
_PENDING_PREFIX: Final = "pending_"
_COUNTER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,80}$")
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


@dataclass(frozen=True)
class CursorState:
    """A cursor's position (None: never moved) and the counters noted since it last moved."""

    position: datetime | None
    pending: Mapping[str, int] = field(default_factory=dict)


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

    def state(self, tenant_id: str, entity: str) -> CursorState:
        """The cursor with its pending counters (one consistent read)."""
        key = {constants.PK: cursor_pk(tenant_id), constants.SK: _check_entity(entity)}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
        position = datetime.fromisoformat(str(item["position"])) if item.get("position") else None
        pending = {
            name[len(_PENDING_PREFIX) :]: int(value)
            for name, value in item.items()
            if name.startswith(_PENDING_PREFIX) and int(value)
        }
        return CursorState(position, pending)

    def note(self, tenant_id: str, entity: str, counts: Mapping[str, int]) -> None:
        """Add ``counts`` to the cursor's pending counters (one write; nothing to add, no write)."""
        wanted = {name: int(count) for name, count in counts.items() if count}
        if not wanted:
            return
        if not all(_COUNTER.match(name) for name in wanted):
            raise ValueError("counter names are plain words")
        names = {f"#c{i}": _PENDING_PREFIX + name for i, name in enumerate(wanted)}
        values = {f":c{i}": count for i, count in enumerate(wanted.values())}
        self._table.update_item(
            Key={constants.PK: cursor_pk(tenant_id), constants.SK: _check_entity(entity)},
            UpdateExpression="ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(wanted))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def advance(
        self,
        tenant_id: str,
        entities: Iterable[str],
        position: datetime,
        *,
        exchange_id: str,
        taken: Mapping[str, int] | None = None,
    ) -> int:
        """Move each entity's cursor to ``position`` unless it already stands there or later;
        returns how many moved.  Positions are compared as UTC ISO strings of fixed width.
        ``taken``: the pending counters the mover reported (they are cleared with the move)."""
        moved = 0
        stamp = _stamp(position)
        clear = [_PENDING_PREFIX + name for name in taken or {} if _COUNTER.match(name)]
        names = {"#p": "position", "#u": "updated_at", "#x": "exchange_id"}
        names.update({f"#c{i}": attribute for i, attribute in enumerate(clear)})
        expression = "SET #p = :p, #u = :u, #x = :x"
        if clear:
            expression += " REMOVE " + ", ".join(f"#c{i}" for i in range(len(clear)))
        for entity in entities:
            try:
                with failed_conditions():
                    self._table.update_item(
                        Key={constants.PK: cursor_pk(tenant_id), constants.SK: _check_entity(entity)},
                        UpdateExpression=expression,
                        ConditionExpression="attribute_not_exists(#p) OR #p < :p",
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues={
                            ":p": stamp,
                            ":u": _stamp(self._clock.now()),
                            ":x": exchange_id,
                        },
                    )
            except ConditionFailedError:
                continue  # another run already went further: a cursor never moves back
            moved += 1
        return moved
