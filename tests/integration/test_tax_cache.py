"""The mapping cache's tax codes with their sales rates (shared.mapping.catalog.QboCache), and what
a refresh costs in metered QBO reads: moto in process for the links table, the sandbox's own query
engine over a seeded CA company for QBO's rows (GST 5 % and HST ON 13 % owed to the Canada Revenue
Agency, PST BC 7 % to the province; codes 2 GST, 3 HST ON, 4 GST/PST BC)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from infra import tables
from qbo_sandbox.company import Company
from qbo_sandbox.query import run_query
from qbo_sandbox.seed import seed_company
from shared.mapping.catalog import TAX_RATE_QUERY, QboCache, QboTaxRate
from shared.mapping.links import LinkStore
from tests.moto_env import FixedClock, fresh_table

TENANT = "firm-ca"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
GST = QboTaxRate(id="1", name="GST", percent=Decimal(5), agency_id="1")
HST = QboTaxRate(id="2", name="HST ON", percent=Decimal(13), agency_id="1")
PST = QboTaxRate(id="3", name="PST BC", percent=Decimal(7), agency_id="2")


@dataclass
class CompanyReader:
    """A QBO reader over a sandbox company in process: one metered read per statement (these
    lists fit one page)."""

    company: Company
    queries: list[str] = field(default_factory=list)

    def query_all(self, select_without_paging: str, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        del page_size
        self.queries.append(select_without_paging)
        entity = select_without_paging.split()[3]
        yield from run_query(self.company, select_without_paging).get(entity, [])

    def reads(self) -> list[str]:
        """The statements since the last call, by entity."""
        taken, self.queries = self.queries, []
        return [statement.split()[3] for statement in taken]


@dataclass
class World:
    cache: QboCache
    links: LinkStore
    reader: CompanyReader
    clock: FixedClock
    calls: Counter[str]


@pytest.fixture
def world(module_dynamodb: Any) -> Iterator[World]:
    company = Company(realm_id="9341000000000099", country="CA", name="CA", created_at=NOW)
    seed_company(company, NOW)
    clock = FixedClock(NOW)
    with fresh_table(module_dynamodb, tables.LINKS) as (table, calls):
        yield World(QboCache(table, clock), LinkStore(table, clock), CompanyReader(company), clock, calls)


def rates_of(world: World) -> dict[str, tuple[QboTaxRate, ...] | None]:
    return {code.id: code.rates for code in world.cache.list(TENANT, "tax")}


def test_an_explicit_refresh_caches_every_codes_sales_rates_for_one_more_read(world: World) -> None:
    counts = world.cache.refresh(TENANT, ["tax"], world.reader, all_rates=True)

    assert world.reader.reads() == ["TaxCode", "TaxRate"]
    assert counts == {"tax": 6}
    rates = rates_of(world)
    assert rates["2"] == (GST,)
    assert rates["3"] == (HST,)
    assert rates["4"] == (GST, PST)  # the group: two agencies
    assert rates["5"] == (QboTaxRate(id="4", name="Exempt", percent=Decimal(0), agency_id="1"),)
    assert world.cache.stamp(TENANT, "tax").rates_read_at == NOW


def test_the_daily_refresh_reads_tax_rates_only_for_linked_codes_it_cannot_resolve(world: World) -> None:
    # Nothing linked: the rates would serve no document, so TaxCode alone is read.
    world.cache.refresh(TENANT, ["tax"], world.reader)
    assert world.reader.reads() == ["TaxCode"]
    assert set(rates_of(world).values()) == {None}

    # A linked code whose rates are unknown: TaxRate once, and every code gets its rates.
    world.links.link(TENANT, "tax", "t-bc", "4")
    world.clock.at += timedelta(days=1)
    world.cache.refresh(TENANT, ["tax"], world.reader)
    assert world.reader.reads() == ["TaxCode", "TaxRate"]
    assert rates_of(world)["4"] == (GST, PST)
    assert rates_of(world)["3"] == (HST,)

    # The next days the known rates are kept: one read a day.
    for _ in range(6):
        world.clock.at += timedelta(days=1)
        world.cache.refresh(TENANT, ["tax"], world.reader)
        assert world.reader.reads() == ["TaxCode"]
        assert rates_of(world)["4"] == (GST, PST)

    # A week after they were read, they are read again (a percent may change under the same rate).
    world.clock.at += timedelta(days=1)
    world.cache.refresh(TENANT, ["tax"], world.reader)
    assert world.reader.reads() == ["TaxCode", "TaxRate"]
    assert world.cache.stamp(TENANT, "tax").rates_read_at == world.clock.at


def test_a_new_rate_on_a_linked_code_is_read_at_the_next_refresh(world: World) -> None:
    world.links.link(TENANT, "tax", "t-hst", "3")
    world.cache.refresh(TENANT, ["tax"], world.reader)
    assert world.reader.reads() == ["TaxCode", "TaxRate"]

    # When QBO gives HST ON a second rate (created through the company, as QBO's own UI would)
    world.reader.company.insert(
        "TaxRate",
        {"Name": "Levy", "RateValue": Decimal("0.5"), "AgencyRef": {"value": "2"}, "Active": True},
        NOW,
        entity_id="40",
        journal=False,
    )
    code = world.reader.company.get("TaxCode", "3")
    assert code is not None
    code["SalesTaxRateList"]["TaxRateDetail"].append({"TaxRateRef": {"value": "40"}, "TaxOrder": 0})
    world.clock.at += timedelta(days=1)
    world.cache.refresh(TENANT, ["tax"], world.reader)

    # Then the next refresh reads TaxRate again and the code has both
    assert world.reader.reads() == ["TaxCode", "TaxRate"]
    levy = QboTaxRate(id="40", name="Levy", percent=Decimal("0.5"), agency_id="2")
    assert rates_of(world)["3"] == (HST, levy)


def test_an_unlinked_code_keeps_the_rates_already_known(world: World) -> None:
    world.cache.refresh(TENANT, ["tax"], world.reader, all_rates=True)
    world.reader.reads()

    world.clock.at += timedelta(days=1)
    world.cache.refresh(TENANT, ["tax"], world.reader)

    assert world.reader.reads() == ["TaxCode"]
    assert rates_of(world)["4"] == (GST, PST)


def test_tax_codes_are_read_by_id_in_one_batch_with_their_rates(world: World) -> None:
    world.cache.refresh(TENANT, ["tax"], world.reader, all_rates=True)
    world.calls.clear()

    found = world.cache.get_many(TENANT, "tax", ["4", "2", "404", "4"])

    assert world.calls == Counter({"BatchGetItem": 1})
    assert sorted(found) == ["2", "4"]
    assert found["4"].rates == (GST, PST)
    assert world.cache.get_many(TENANT, "tax", []) == {}


def test_the_tax_rate_query_is_a_plain_select(world: World) -> None:
    # QBO's query language: every TaxRate, ordered, no clause QBO would refuse.
    rows = run_query(world.reader.company, TAX_RATE_QUERY)["TaxRate"]

    assert [row["Id"] for row in rows] == ["1", "2", "3", "4", "5", "6"]
