"""The app catalog's versions (``AppCatalog.upsert``, moto in process): an older version, or the same
one with the same fields, is not stored; the same version with other fields is a conflict that
changes nothing; none of it reads the table (the refused put returns what it found)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from infra import tables
from shared.mapping.catalog import AppCatalog, AppEntity
from shared.mapping.errors import CatalogVersionConflictError
from tests.moto_env import FixedClock, fresh_table, taken

TENANT = "firm-a"


@pytest.fixture
def catalog(module_dynamodb: Any) -> Iterator[tuple[AppCatalog, Counter[str]]]:
    with fresh_table(module_dynamodb, tables.LINKS) as (table, calls):
        yield AppCatalog(table, FixedClock()), calls


def entity(version: int = 2, name: str = "Acme Law", **fields: Any) -> AppEntity:
    return AppEntity(id="c-1", version=version, name=name, type="client", **fields)


def test_the_same_version_with_the_same_fields_is_not_stored_again(
    catalog: tuple[AppCatalog, Counter[str]],
) -> None:
    store, calls = catalog
    assert store.upsert(TENANT, "client", entity()).stored
    taken(calls)

    again = store.upsert(TENANT, "client", entity(name="  Acme Law "))  # the name as validated

    assert (again.stored, again.entity) == (False, entity())
    assert taken(calls) == Counter({"PutItem": 1})  # no read: the refused put said what it found


def test_the_same_version_with_other_fields_is_a_conflict_and_nothing_changes(
    catalog: tuple[AppCatalog, Counter[str]],
) -> None:
    store, calls = catalog
    store.upsert(TENANT, "client", entity())
    taken(calls)

    with pytest.raises(CatalogVersionConflictError) as refused:
        store.upsert(TENANT, "client", entity(email="law@example.com"))

    error = refused.value
    assert (error.status, error.code, error.field) == (409, "version_conflict", ("body", "version"))
    assert (error.kind, error.app_id, error.version) == ("client", "c-1", 2)
    assert taken(calls) == Counter({"PutItem": 1})
    assert store.get(TENANT, "client", "c-1") == entity()


def test_an_older_version_is_ignored_whatever_its_fields(catalog: tuple[AppCatalog, Counter[str]]) -> None:
    store, _ = catalog
    store.upsert(TENANT, "client", entity())

    older = store.upsert(TENANT, "client", entity(version=1, name="Old Name", active=False))

    assert (older.stored, older.entity) == (False, entity())
    assert store.upsert(TENANT, "client", entity(version=3, name="New Name")).stored
