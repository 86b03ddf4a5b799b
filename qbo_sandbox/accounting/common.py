"""Helpers every entity's rules share: references, money, required fields, batch visibility."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from qbo_sandbox import faults
from qbo_sandbox.company import Company, Entity

CENT = Decimal("0.01")


def money(value: Any, element: str = "Amount") -> Decimal:
    """A JSON number (int, float or Decimal) as an exact Decimal; 2010 when it is not a number."""
    if isinstance(value, bool) or value is None:
        raise faults.invalid_field(element, f"{element} must be a number")
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise faults.invalid_field(element, f"{element} must be a number") from exc
    if not result.is_finite():
        raise faults.invalid_field(element, f"{element} must be a number")
    return result


def cents(value: Decimal) -> Decimal:
    """Round half up to the cent, as QBO rounds amounts and taxes."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def number(value: Decimal) -> int | float:
    """A Decimal as the JSON number QBO would print (100, 100.5, 10.07)."""
    return int(value) if value == value.to_integral_value() else float(value)


def ref_id(obj: Entity, field_name: str) -> str | None:
    ref = obj.get(field_name)
    if ref is None:
        return None
    if not isinstance(ref, dict) or not isinstance(ref.get("value"), str | int) or ref["value"] == "":
        raise faults.invalid_field(field_name, f"{field_name} must be an object with a value")
    return str(ref["value"])


def visible(co: Company, entity: str, entity_id: str) -> Entity | None:
    """The stored entity, unless it was created earlier in the batch being run (QBO's batch items
    do not see each other's creations)."""
    if (entity, entity_id) in co.settings.get("_batch_hidden", set()):
        return None
    return co.get(entity, entity_id)


def require_ref(
    co: Company,
    obj: Entity,
    field_name: str,
    entity: str | tuple[str, ...],
    *,
    required: bool = False,
    allow_inactive: bool = False,
) -> Entity | None:
    """Resolve ``obj[field_name]`` to an existing, active entity of ``entity``; 610 otherwise.

    Returns the referenced entity and rewrites the reference with QBO's ``name`` for display.
    """
    value = ref_id(obj, field_name)
    if value is None:
        if required:
            raise faults.required_param(field_name, entity if isinstance(entity, str) else entity[0])
        return None
    kinds = (entity,) if isinstance(entity, str) else entity
    for kind in kinds:
        target = visible(co, kind, value)
        if target is not None:
            if target.get("Active") is False and not allow_inactive:
                raise faults.object_not_found(kind, value, field_name)
            return target
    raise faults.object_not_found(kinds[0], value, field_name)


def display_ref(target: Entity, name_field: str = "FullyQualifiedName") -> dict[str, str]:
    name = target.get(name_field) or target.get("DisplayName") or target.get("Name")
    ref = {"value": target["Id"]}
    if name:
        ref["name"] = name
    return ref


def require(obj: Entity, field_name: str, entity: str) -> Any:
    value = obj.get(field_name)
    if value is None or value in ("", []):
        raise faults.required_param(field_name, entity)
    return value


def check_sync_token(stored: Entity, body: Entity) -> None:
    """5010 unless the body carries the stored SyncToken."""
    token = body.get("SyncToken")
    if token is None:
        raise faults.required_param("SyncToken", "")
    if str(token) != str(stored.get("SyncToken")):
        raise faults.stale_object(str(stored["Id"]))


# Fields QBO computes or owns: a client can send them but they are ignored on writes.
READ_ONLY = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse", "status"})


@dataclass(frozen=True)
class EntityRules:
    """What QBO allows for one entity type and how each write is carried out.

    ``create(co, body, now)`` and ``update(co, stored, body, sparse, now)`` return the saved
    entity; ``delete`` and ``void`` take the stored entity and the request body.  A missing
    operation answers QBO's "Unsupported Operation".
    """

    name: str
    name_list: bool  # deactivated rather than deleted; queries hide inactive rows by default
    cdc: bool
    create: Callable[[Company, Entity, datetime], Entity] | None = None
    update: Callable[[Company, Entity, Entity, bool, datetime], Entity] | None = None
    delete: Callable[[Company, Entity, Entity, datetime], Entity] | None = None
    void: Callable[[Company, Entity, Entity, datetime], Entity] | None = None
    readable: bool = True


def without_empty_values(body: Entity) -> Entity:
    """The request body with every empty optional value read as no value, as QBO reads it.

    SDKs serialise every attribute they know, so a default object carries ``""`` for each optional
    string, date and enum it did not set (python-quickbooks' Customer sends
    ``"PreferredDeliveryMethod": ""``) and ``{}`` for empty nested objects.  QBO creates such an
    object as if those fields were not sent.  So, at any depth: ``""`` and ``null`` inside an
    object are dropped, and an object left with nothing in it is dropped too; except line details
    (``SubTotalLineDetail: {}`` is how QBO itself writes a subtotal line), whose presence is what
    ``DetailType`` names.  At the top level the emptied field stays as ``null``, so a full update
    clears it and a sparse update clears it too (a null there already removes the field).  Array
    elements are kept in place (cleaned), so a line's position never shifts.  Required fields are
    not exempt: an empty required value is a missing one and gets 2020 from the rule that needs it.
    """
    return {key: _cleaned(key, value) for key, value in body.items()}


def _cleaned(key: str, value: Any) -> Any:
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, dict):
        kept = {k: c for k, v in value.items() if (c := _cleaned(k, v)) is not None}
        if not kept and not key.endswith("LineDetail"):
            return None
        return kept
    if isinstance(value, list):
        return [_cleaned_element(item) for item in value]
    return value


def _cleaned_element(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: c for k, v in item.items() if (c := _cleaned(k, v)) is not None}
    return item
