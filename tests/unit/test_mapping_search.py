"""The match tab's search (``q`` on ``GET .../mappings/{kind}``): ``MappingService.overview_page``
over in-memory stand-ins for the catalog, the QBO cache and the links (no DynamoDB).  The route
itself is driven in tests/integration/test_mappings.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from shared.adapters.dynamo import InvalidPageTokenError
from shared.mapping.catalog import AppEntity, CacheStamp, QboEntity
from shared.mapping.links import Link, LinkPage
from shared.mapping.service import AppRow, MappingService, QboRow, row_matches, search_key

TENANT = "firm-search"
NOW = datetime(2026, 5, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Settings:
    client_types: frozenset[str] = frozenset()
    revenue_account_id: str | None = None


class _Catalog:
    def __init__(self, entities: list[AppEntity]) -> None:
        self.entities = entities

    def list(self, tenant_id: str, kind: str) -> list[AppEntity]:
        return list(self.entities) if kind == "client" else []


class _Cache:
    def __init__(self, entities: list[QboEntity]) -> None:
        self.entities = entities

    def list(self, tenant_id: str, kind: str) -> list[QboEntity]:
        return list(self.entities) if kind == "client" else []

    def stamp(self, tenant_id: str, kind: str) -> CacheStamp:
        return CacheStamp(refreshed_at=NOW, count=len(self.entities))


class _Links:
    def __init__(self, pairs: dict[str, tuple[str, str]]) -> None:
        self.pairs = pairs  # app id → (QBO id, QBO name)

    def list(
        self, tenant_id: str, kind: str, *, page_token: str | None = None, limit: int = 1000
    ) -> LinkPage:
        links = [
            Link(tenant_id=tenant_id, kind=kind, app_id=app, qbo_id=qbo, qbo_name=name, linked_at=NOW)
            for app, (qbo, name) in self.pairs.items()
        ]
        return LinkPage(links if kind == "client" else [], None)


APPS = [
    AppEntity(id="c-amy", version=1, name="Amy's Bird Sanctuary", email="birds@intuit.com"),
    AppEntity(id="c-cool", version=1, name="Cool Cars", email="cool_cars@intuit.com"),
    AppEntity(id="c-dukes", version=1, name="Dukes Basketball Camp"),
    AppEntity(id="c-kate", version=1, name="Kate Whelan", email="kate@whelan.example"),
]
QBOS = [
    QboEntity(id="1", name="Amy's Bird Sanctuary", email="Birds@Intuit.com"),
    QboEntity(id="3", name="Cool Cars", fully_qualified_name="Cool Cars"),
    QboEntity(id="5", name="Dukes Basketball Camp", fully_qualified_name="Dukes Basketball Camp"),
    QboEntity(
        id="8",
        name="0969 Ocean View Road",
        fully_qualified_name="Freeman Sporting Goods:0969 Ocean View Road",
    ),
    QboEntity(id="24", name="Amy's Other Birds", fully_qualified_name="Amy's Other Birds"),
]


@pytest.fixture
def service() -> MappingService:
    return MappingService(
        cast(Any, _Catalog(APPS)),
        cast(Any, _Cache(QBOS)),
        cast(Any, _Links({"c-amy": ("1", "Amy's Bird Sanctuary")})),
        lambda _realm: cast(Any, None),
        cast(Any, None),
        cast(Any, None),
        tenant_settings=lambda _tenant: _Settings(),
    )


def _ids(rows: list[AppRow] | list[QboRow]) -> list[str]:
    return [row.entity.id for row in rows]


def test_search_key_trims_and_case_folds() -> None:
    assert search_key("  Amy's BIRD ") == "amy's bird"
    assert search_key(None) == search_key("   ") == ""


@pytest.mark.parametrize(
    ("needle", "expected"),
    [
        ("bird", True),  # the name
        ("intuit.com", True),  # the e-mail
        ("c-am", True),  # the id
        ("ocean", False),
        ("", True),
    ],
)
def test_an_app_row_matches_on_name_email_or_id(needle: str, expected: bool) -> None:
    assert row_matches(AppRow(APPS[0], None, None), needle) is expected


def test_a_qbo_row_matches_on_its_fully_qualified_name_too() -> None:
    sub = QboRow(QBOS[3], None)
    assert row_matches(sub, "freeman sporting")  # only in the fully qualified name
    assert row_matches(sub, "8")
    assert not row_matches(sub, "amy")


def test_q_narrows_both_sides_and_the_totals(service: MappingService) -> None:
    page = service.overview_page(TENANT, "client", q="AMY")
    assert _ids(page.overview.app) == ["c-amy"]
    assert _ids(page.overview.qbo) == ["1", "24"]
    assert (page.app_total, page.qbo_total, page.next_page_token) == (1, 2, None)
    # The link state still shows on what the search keeps.
    assert (page.overview.app[0].qbo_id, page.overview.qbo[0].app_id) == ("1", "c-amy")

    by_email = service.overview_page(TENANT, "client", q="intuit.com")
    assert (_ids(by_email.overview.app), _ids(by_email.overview.qbo)) == (["c-amy", "c-cool"], ["1"])

    by_parent = service.overview_page(TENANT, "client", q="freeman")
    assert (by_parent.app_total, _ids(by_parent.overview.qbo)) == (0, ["8"])


def test_q_combines_with_hide_linked_and_a_blank_q_searches_nothing(service: MappingService) -> None:
    hidden = service.overview_page(TENANT, "client", q="amy", hide_linked=True)
    assert (_ids(hidden.overview.app), _ids(hidden.overview.qbo)) == ([], ["24"])
    everything = service.overview_page(TENANT, "client", q="  ")
    assert (everything.app_total, everything.qbo_total) == (4, 5)


def test_a_searched_page_token_goes_on_with_the_same_q_only(service: MappingService) -> None:
    first = service.overview_page(TENANT, "client", q="a", limit=2)
    assert (first.app_total, first.qbo_total) == (4, 5)
    assert first.next_page_token is not None
    app_ids, qbo_ids = _ids(first.overview.app), _ids(first.overview.qbo)
    token: str | None = first.next_page_token
    while token is not None:
        # " A " is the same search as "a" once trimmed and folded.
        page = service.overview_page(TENANT, "client", q=" A ", limit=2, page_token=token)
        app_ids += _ids(page.overview.app)
        qbo_ids += _ids(page.overview.qbo)
        token = page.next_page_token
    assert app_ids == ["c-amy", "c-cool", "c-dukes", "c-kate"]
    assert qbo_ids == sorted(e.id for e in QBOS)

    for other in ("b", None):
        with pytest.raises(InvalidPageTokenError, match="another search"):
            service.overview_page(TENANT, "client", q=other, limit=2, page_token=first.next_page_token)
    unsearched = service.overview_page(TENANT, "client", limit=2)
    with pytest.raises(InvalidPageTokenError, match="another search"):
        service.overview_page(TENANT, "client", q="a", limit=2, page_token=unsearched.next_page_token)
