"""One QBO company (realm): its entities, id sequences, change journal and requestid cache.

Entities are stored as the JSON dicts QBO returns (``Id``, ``SyncToken``, ``MetaData``, ``domain``,
``sparse`` included), so reads and query results are copies of the stored objects.  The journal
feeds CDC and webhooks.  Business rules live in ``qbo_sandbox.accounting``; this module only keeps
the bookkeeping every entity shares.  Callers hold :attr:`Company.lock` for a whole operation.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from qbo_sandbox.faults import qbo_timestamp

Entity = dict[str, Any]

# Customer, Vendor and Employee draw on one Id sequence in QBO (the seeded sandbox's gaps suggest
# it); every other entity type has its own.
SHARED_NAME_SEQUENCE = frozenset({"Customer", "Vendor", "Employee"})

COUNTRY_TIMEZONES = {
    "US": "America/Los_Angeles",
    "CA": "America/Toronto",
    "GB": "Europe/London",
    "AU": "Australia/Sydney",
}


@dataclass(frozen=True)
class Change:
    """One journalled change: what CDC and webhooks report."""

    at: datetime
    entity: str
    entity_id: str
    operation: str  # Create, Update, Delete, Void, Merge, Emailed
    deleted_id: str | None = None


@dataclass
class Company:
    realm_id: str
    country: str
    name: str
    created_at: datetime
    entities: dict[str, dict[str, Entity]] = field(default_factory=dict)
    tombstones: dict[str, dict[str, Entity]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    journal: list[Change] = field(default_factory=list)
    # requestid -> (virtual time it was first answered, status, exact body): replayed on a repeat
    request_cache: dict[str, tuple[datetime, int, bytes]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    listeners: list[Callable[[Company, Change], None]] = field(
        default_factory=list, repr=False, compare=False
    )

    @property
    def tz(self) -> tzinfo:
        return ZoneInfo(COUNTRY_TIMEZONES.get(self.country, "UTC"))

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    # --- ids ----------------------------------------------------------------------------------

    def next_id(self, entity: str) -> str:
        key = "Name" if entity in SHARED_NAME_SEQUENCE else entity
        value = self.sequences.get(key, 0) + 1
        self.sequences[key] = value
        return str(value)

    def bump_sequence(self, entity: str, at_least: int) -> None:
        """Make the next id of ``entity`` larger than ``at_least`` (used by seeding)."""
        key = "Name" if entity in SHARED_NAME_SEQUENCE else entity
        self.sequences[key] = max(self.sequences.get(key, 0), at_least)

    # --- reads --------------------------------------------------------------------------------

    def table(self, entity: str) -> dict[str, Entity]:
        return self.entities.setdefault(entity, {})

    def get(self, entity: str, entity_id: str) -> Entity | None:
        return self.entities.get(entity, {}).get(str(entity_id))

    def rows(self, entity: str) -> Iterator[Entity]:
        """Stored rows in Id order (numeric where possible), not copied."""
        table = self.entities.get(entity, {})
        yield from (table[k] for k in sorted(table, key=_id_sort_key))

    # --- writes -------------------------------------------------------------------------------

    def insert(
        self, entity: str, obj: Entity, at: datetime, *, entity_id: str | None = None, journal: bool = True
    ) -> Entity:
        """Store a new entity: assigns Id, SyncToken "0", MetaData, domain and sparse."""
        new_id = entity_id or self.next_id(entity)
        if entity_id is not None and entity_id.isdigit():
            self.bump_sequence(entity, int(entity_id))
        stamp = qbo_timestamp(self.local(at))
        stored: Entity = {"domain": "QBO", "sparse": False, "Id": new_id, "SyncToken": "0"}
        stored["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
        stored.update(
            {k: v for k, v in obj.items() if k not in {"Id", "SyncToken", "MetaData", "domain", "sparse"}}
        )
        self.table(entity)[new_id] = stored
        if journal:
            self.record(Change(at, entity, new_id, "Create"))
        return stored

    def replace(
        self, entity: str, stored: Entity, at: datetime, *, operation: str = "Update", journal: bool = True
    ) -> Entity:
        """Save a changed entity: SyncToken + 1 and LastUpdatedTime now."""
        stored["SyncToken"] = str(int(stored.get("SyncToken", "0")) + 1)
        meta = dict(stored.get("MetaData") or {})
        meta["LastUpdatedTime"] = qbo_timestamp(self.local(at))
        stored["MetaData"] = meta
        self.table(entity)[stored["Id"]] = stored
        if journal:
            self.record(Change(at, entity, stored["Id"], operation))
        return stored

    def remove(self, entity: str, entity_id: str, at: datetime) -> Entity:
        """Hard-delete a transaction; CDC keeps a tombstone ``{Id, status: Deleted, MetaData}``."""
        stored = self.table(entity).pop(entity_id)
        tombstone: Entity = {
            "domain": "QBO",
            "status": "Deleted",
            "Id": entity_id,
            "MetaData": {"LastUpdatedTime": qbo_timestamp(self.local(at))},
        }
        self.tombstones.setdefault(entity, {})[entity_id] = tombstone
        self.record(Change(at, entity, entity_id, "Delete"))
        return stored

    def record(self, change: Change) -> None:
        self.journal.append(change)
        for listener in list(self.listeners):
            listener(self, change)

    def snapshot(self, obj: Entity) -> Entity:
        """A copy safe to hand to a caller (stored objects are never shared)."""
        return copy.deepcopy(obj)


def _id_sort_key(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)
