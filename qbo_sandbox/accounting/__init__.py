"""QBO's Accounting API rules, entity by entity.

``RULES`` maps the entity name ("Customer") to its :class:`EntityRules`; ``PATHS`` maps the
lower-case path segment ("customer") to that name.  The wire layer calls :func:`create`,
:func:`update`, :func:`delete`, :func:`void` and :func:`read`; they return the entity as QBO
answers it and raise :class:`qbo_sandbox.faults.QboFault` for everything QBO refuses.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from qbo_sandbox import faults
from qbo_sandbox.accounting.common import EntityRules, check_sync_token, visible, without_empty_values
from qbo_sandbox.accounting.names import NAME_RULES
from qbo_sandbox.accounting.transactions import TRANSACTION_RULES
from qbo_sandbox.company import Company, Entity

RULES: dict[str, EntityRules] = {**NAME_RULES, **TRANSACTION_RULES}
PATHS: dict[str, str] = {name.lower(): name for name in RULES}

_Rule = TypeVar("_Rule")


def rules_for(entity: str) -> EntityRules:
    try:
        return RULES[entity]
    except KeyError:
        raise faults.unsupported_operation(f"Unsupported entity: {entity}") from None


def _object(entity: str, body: Entity) -> Entity:
    if not isinstance(body, dict):
        raise faults.invalid_field(entity, "The request body must be a JSON object")
    return without_empty_values(body)


def _stored(co: Company, entity: str, body: Entity) -> Entity:
    entity_id = body.get("Id")
    if entity_id is None or entity_id == "":
        raise faults.required_param("Id", entity)
    stored = visible(co, entity, str(entity_id))
    if stored is None:
        raise faults.object_not_found(entity, str(entity_id), "Id")
    return stored


def read(co: Company, entity: str, entity_id: str) -> Entity:
    rules = rules_for(entity)
    stored = visible(co, entity, entity_id) if rules.readable else None
    if stored is None:
        raise faults.object_not_found(entity, entity_id)
    return co.snapshot(stored)


def create(co: Company, entity: str, body: Entity, now: datetime) -> Entity:
    rules = rules_for(entity)
    body = _object(entity, body)
    if body.get("Id"):
        return update(co, entity, body, now)
    if rules.create is None:
        raise faults.unsupported_operation(f"Operation create is not supported for {entity}")
    return co.snapshot(rules.create(co, body, now))


def _on_stored(
    co: Company, entity: str, operation: str, rule: _Rule | None, body: Entity
) -> tuple[_Rule, Entity, Entity]:
    """``rule`` (QBO's fault where ``entity`` has none for ``operation``), the body as an object and
    the stored entity it names, the body's SyncToken checked against it."""
    if rule is None:
        raise faults.unsupported_operation(f"Operation {operation} is not supported for {entity}")
    body = _object(entity, body)
    stored = _stored(co, entity, body)
    check_sync_token(stored, body)
    return rule, body, stored


def update(co: Company, entity: str, body: Entity, now: datetime) -> Entity:
    rule, body, stored = _on_stored(co, entity, "update", rules_for(entity).update, body)
    sparse = body.get("sparse") in (True, "true")
    return co.snapshot(rule(co, stored, body, sparse, now))


def delete(co: Company, entity: str, body: Entity, now: datetime) -> Entity:
    rule, body, stored = _on_stored(co, entity, "delete", rules_for(entity).delete, body)
    return co.snapshot(rule(co, stored, body, now))


def void(co: Company, entity: str, body: Entity, now: datetime) -> Entity:
    rule, body, stored = _on_stored(co, entity, "void", rules_for(entity).void, body)
    return co.snapshot(rule(co, stored, body, now))
