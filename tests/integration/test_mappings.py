"""The match tabs through the tenant API: moto in process for DynamoDB and EventBridge, the QBO sandbox
over real sockets (seeded US company, docs/sandbox.md), every route driven through
``functions.api.handler.lambda_handler`` with API Gateway v2 events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.connections_fixtures import HttpAnswer, World
from tests.integration.test_connections import aws, world

__all__ = ["aws", "world"]  # the fixtures, re-exported for pytest

TENANT = "firm-maps"


class Tab:
    """One connected tenant's mapping API."""

    def __init__(self, world: World, tenant: str = TENANT) -> None:
        self.world = world
        self.tenant = tenant
        self.realm = world.connect(tenant)

    def call(self, method: str, path: str, body: Any = None, **query: str) -> HttpAnswer:
        return self.world.api(method, f"/tenants/{self.tenant}{path}", body=body, query=query or None)

    def ok(self, method: str, path: str, body: Any = None, **query: str) -> Any:
        answer = self.call(method, path, body, **query)
        assert answer.status == 200, answer.body
        return answer.json()

    def upsert(self, kind: str, app_id: str, name: str, version: int = 1, **fields: Any) -> Any:
        return self.ok("PUT", f"/catalog/{kind}/{app_id}", {"version": version, "name": name, **fields})

    def refresh(self) -> dict[str, int]:
        result: dict[str, int] = self.ok("POST", "/mappings/refresh")["refreshed"]
        return result

    def tab(self, kind: str, *, hide_linked: bool = False, **query: str) -> Any:
        return self.ok(
            "GET", f"/mappings/{kind}", **({"hide_linked": "true"} if hide_linked else {}), **query
        )

    def settings(self, **settings: Any) -> None:
        """Save the tenant's push settings where the push API keeps them (the connections table)."""
        from infra import tables
        from shared.kernel.clock import SystemClock
        from shared.push.models import TenantSettings
        from shared.push.settings_store import TenantSettingsStore

        table = self.world.dynamodb.Table(tables.CONNECTIONS.default_name)
        TenantSettingsStore(table, SystemClock()).put(self.tenant, TenantSettings.model_validate(settings))

    def link(self, kind: str, app_id: str, qbo_id: str) -> HttpAnswer:
        return self.call("PUT", f"/mappings/{kind}/app/{app_id}", {"qbo_id": qbo_id})

    def qbo_row(self, entity: str, qbo_id: str) -> dict[str, Any]:
        found = self.world.sandbox("GET", f"/companies/{self.realm}/entities/{entity}/{qbo_id}")
        row: dict[str, Any] = found[entity]
        return row

    def qbo_create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        created = self.world.sandbox("POST", f"/companies/{self.realm}/entities/{entity}", body)
        row: dict[str, Any] = created.get(entity, created)
        return row


def assert_empty_tab(listing: dict[str, Any]) -> None:
    assert listing == {
        "kind": "client",
        "qbo_refreshed_at": None,
        "app": [],
        "qbo": [],
        "app_total": 0,
        "qbo_total": 0,
        "next_page_token": None,
    }


def detail(answer: HttpAnswer) -> dict[str, Any]:
    found: dict[str, Any] = answer.json()["detail"][0]
    return found


@pytest.fixture
def tab(world: World) -> Tab:
    return Tab(world)


# --- clients ------------------------------------------------------------------------------------


def test_clients_list_link_show_refuse_hide_unlink_and_clear(tab: Tab) -> None:
    # Given two app clients and the company's customers read from QBO
    tab.upsert("client", "c-amy", "Amy's Bird Sanctuary", email="birds@intuit.com")
    tab.upsert("client", "c-cool", "Cool Cars")
    counts = tab.refresh()
    assert counts["client"] == 26  # 29 customers, three of them jobs
    assert counts["site"] == 3
    assert counts["vendor"] > 0

    # When c-amy is linked to customer 1
    linked = tab.ok("PUT", "/mappings/client/app/c-amy", {"qbo_id": "1"})
    assert (linked["app_id"], linked["qbo_id"], linked["source"]) == ("c-amy", "1", "manual")

    # Then both sides show it, and each entity says what it is linked to
    listing = tab.tab("client")
    app = {row["id"]: row for row in listing["app"]}
    qbo = {row["id"]: row for row in listing["qbo"]}
    assert app["c-amy"]["linked_qbo_id"] == "1"
    assert app["c-cool"]["linked_qbo_id"] is None
    assert qbo["1"]["linked_app_id"] == "c-amy"
    assert "8" not in qbo  # a sub-customer is a site, not a client
    assert listing["qbo_refreshed_at"] is not None
    assert tab.ok("GET", "/mappings/client/app/c-amy")["qbo"]["name"] == "Amy's Bird Sanctuary"
    assert tab.ok("GET", "/mappings/client/qbo/1")["app"]["id"] == "c-amy"

    # A second link on either side is refused, naming the partner already linked
    refused = tab.link("client", "c-amy", "3")
    assert refused.status == 409
    assert detail(refused)["type"] == "already_linked"
    assert "already linked to QBO id 1" in detail(refused)["msg"]
    refused = tab.link("client", "c-cool", "1")
    assert refused.status == 409
    assert detail(refused)["loc"] == ["body", "qbo_id"]
    assert "QBO id 1 is already linked to client c-amy" in detail(refused)["msg"]

    # The hide-linked filter leaves out both partners
    hidden = tab.tab("client", hide_linked=True)
    assert [row["id"] for row in hidden["app"]] == ["c-cool"]
    assert "1" not in {row["id"] for row in hidden["qbo"]}
    assert len(hidden["qbo"]) == 25

    # Unlink, then clear the kind
    assert tab.ok("DELETE", "/mappings/client/app/c-amy")["unlinked"]["qbo_id"] == "1"
    assert tab.call("GET", "/mappings/client/app/c-amy").status == 404
    assert tab.call("DELETE", "/mappings/client/app/c-amy").status == 404
    assert tab.link("client", "c-amy", "1").status == 200
    assert tab.link("client", "c-cool", "3").status == 200
    assert tab.ok("DELETE", "/mappings/client") == {"kind": "client", "removed": 2}
    assert all(row["linked_qbo_id"] is None for row in tab.tab("client")["app"])


def test_catalog_versions_only_grow_and_bad_input_is_refused_precisely(tab: Tab) -> None:
    assert tab.upsert("client", "c-1", "First Name", version=2)["stored"] is True
    stale = tab.upsert("client", "c-1", "Older Name", version=1)
    assert stale == {"entity": stale["entity"], "stored": False}
    assert stale["entity"]["name"] == "First Name"
    assert tab.upsert("client", "c-1", "Newer Name", version=3)["entity"]["name"] == "Newer Name"
    assert tab.upsert("client", "c-1", "Newer Name", version=3)["stored"] is False  # the app's retry
    answer = tab.call("PUT", "/catalog/client/c-1", {"version": 3, "name": "Other Name"})
    assert (answer.status, detail(answer)["type"], detail(answer)["loc"]) == (
        409,
        "version_conflict",
        ["body", "version"],
    )
    assert tab.upsert("client", "c-1", "Newer Name", version=3)["entity"]["name"] == "Newer Name"

    answer = tab.call("PUT", "/catalog/matter/c-1", {"version": 1, "name": "x"})
    assert answer.status == 422
    assert detail(answer)["loc"] == ["path", "kind"]
    answer = tab.call("PUT", "/catalog/client/c-1", {"version": 0, "name": "x"})
    assert answer.status == 422
    assert detail(answer)["loc"][-1] == "version"
    answer = tab.call("PUT", "/catalog/account/a-1", {"version": 1, "name": "Fees"})
    assert (answer.status, detail(answer)["loc"]) == (422, ["body", "type"])
    answer = tab.call("PUT", "/catalog/site/s-1", {"version": 1, "name": "Job"})
    assert (answer.status, detail(answer)["loc"]) == (422, ["body", "parent_id"])
    # Linking needs both sides known
    tab.refresh()
    answer = tab.link("client", "nobody", "1")
    assert (answer.status, detail(answer)["type"]) == (404, "app_entity_not_found")
    answer = tab.link("client", "c-1", "999")
    assert (answer.status, detail(answer)["type"]) == (404, "qbo_entity_not_found")
    answer = tab.link("client", "c-1", "8")  # a sub-customer is not a client
    assert answer.status == 404


def test_automatch_proposes_without_writing_then_applies_only_unambiguous_pairs(tab: Tab) -> None:
    tab.upsert("client", "c-bill", "Bill's Windsurf Shop, Inc.")
    tab.upsert("client", "c-cars", "COOL CARS LLC")
    tab.upsert("client", "c-typo", "Amys Bird Sanctuery")
    tab.refresh()

    proposal = tab.ok("POST", "/mappings/client/automatch", apply="false")
    assert {(m["app_id"], m["qbo_id"]) for m in proposal["matches"]} == {("c-bill", "2"), ("c-cars", "3")}
    assert proposal["linked"] == []
    assert proposal["suggestions"]["c-typo"][0]["qbo_id"] == "1"
    assert all(row["linked_qbo_id"] is None for row in tab.tab("client")["app"])

    applied = tab.ok("POST", "/mappings/client/automatch", apply="true")
    assert {(m["app_id"], m["qbo_id"]) for m in applied["linked"]} == {("c-bill", "2"), ("c-cars", "3")}
    rows = {row["id"]: row["linked_qbo_id"] for row in tab.tab("client")["app"]}
    assert rows == {"c-bill": "2", "c-cars": "3", "c-typo": None}  # a typo is only suggested
    assert tab.ok("GET", "/mappings/client/app/c-bill")["link"]["source"] == "auto"


# --- sites (sub-customers) ------------------------------------------------------------------------


def test_sites_link_export_as_sub_customer_and_import_with_parent(tab: Tab, world: World) -> None:
    tab.upsert("client", "c-free", "Freeman Sporting Goods")
    tab.upsert("client", "c-shara", "Shara Barnett")
    tab.upsert("site", "s-new", "Freeman Dome Project", parent_id="c-free")
    tab.upsert("site", "s-orphan", "Orphan Works", parent_id="c-nobody")
    tab.upsert("site", "s-8", "Job Eight", parent_id="c-free")
    tab.refresh()
    sites = {row["id"]: row for row in tab.tab("site")["qbo"]}
    assert set(sites) == {"8", "9", "23"}
    assert sites["8"]["parent_id"] == "7"
    assert tab.link("site", "s-8", "8").status == 200
    assert tab.link("site", "s-new", "1").status == 404  # a top-level customer is not a site

    # Export: refused until the parent client is linked, then a sub-customer under its customer
    first = tab.ok("POST", "/mappings/site/export", {"app_ids": ["s-new"]})["results"][0]
    assert (first["status"], first["reason"]) == ("refused", "parent_not_linked")
    assert tab.link("client", "c-free", "7").status == 200
    done = tab.ok("POST", "/mappings/site/export", {"app_ids": ["s-new", "s-orphan", "s-8"]})["results"]
    assert [r["status"] for r in done] == ["created", "refused", "already_linked"]
    created = tab.qbo_row("Customer", done[0]["qbo_id"])
    assert created["Job"] is True
    assert created["ParentRef"]["value"] == "7"
    assert created["DisplayName"] == "Freeman Dome Project"
    assert tab.ok("GET", f"/mappings/site/qbo/{done[0]['qbo_id']}")["link"]["source"] == "export"

    # Import of job 23: its parent (22) must be linked to a client first
    refused = tab.ok("POST", "/mappings/site/import", {"qbo_ids": ["23"]})["results"][0]
    assert refused["reason"] == "parent_not_linked"
    assert tab.link("client", "c-shara", "22").status == 200
    imported = tab.ok("POST", "/mappings/site/import", {"qbo_ids": ["23"]})["results"][0]
    assert imported == {
        "id": "23",
        "status": "imported",
        "app_id": "qbo.23",
        "qbo_id": "23",
        "reason": None,
        "message": None,
    }
    (event,) = world.published("Site Imported")
    assert event.detail["parent_app_id"] == "c-shara"
    assert event.detail["entity"]["parent_id"] == "22"


# --- 6240, export and import of clients -----------------------------------------------------------


def test_name_conflicts_and_export_of_clients(tab: Tab) -> None:
    vendor = tab.qbo_row("Vendor", "30")["DisplayName"]
    tab.qbo_create("Customer", {"DisplayName": "Dormant Dairy", "Active": False})
    tab.upsert("client", "c-dormant", "dormant dairy ")
    tab.upsert("client", "c-vendor", vendor)
    tab.upsert("client", "c-fresh", "Fresh Fields Farm", email="hello@freshfields.example")
    tab.upsert("client", "c-amy", "Amy's Bird Sanctuary")  # an active customer: matched, not a 6240 risk
    tab.refresh()

    conflicts = tab.ok("GET", "/mappings/client/name-conflicts")["conflicts"]
    by_app = {c["app_id"]: c["conflicts"] for c in conflicts}
    assert set(by_app) == {"c-dormant", "c-vendor"}
    assert by_app["c-dormant"][0]["entity"] == "Customer"
    assert by_app["c-dormant"][0]["active"] is False
    assert by_app["c-vendor"][0] == {"id": "30", "display_name": vendor, "entity": "Vendor", "active": True}

    results = tab.ok("POST", "/mappings/client/export", {"app_ids": ["c-dormant", "c-vendor", "c-fresh"]})
    dormant, with_vendor, fresh = results["results"]
    assert (dormant["status"], dormant["reason"]) == ("refused", "duplicate_name")
    assert "inactive" in dormant["message"]
    assert (with_vendor["status"], with_vendor["reason"]) == ("refused", "duplicate_name")
    assert fresh["status"] == "created"
    customer = tab.qbo_row("Customer", fresh["qbo_id"])
    assert customer["DisplayName"] == "Fresh Fields Farm"
    assert customer["PrimaryEmailAddr"]["Address"] == "hello@freshfields.example"
    assert tab.ok("GET", "/mappings/client/app/c-fresh")["qbo"]["id"] == fresh["qbo_id"]
    # Exporting again is a no-op; the created customer is in the QBO side already
    again = tab.ok("POST", "/mappings/client/export", {"app_ids": ["c-fresh"]})["results"][0]
    assert (again["status"], again["qbo_id"]) == ("already_linked", fresh["qbo_id"])
    assert fresh["qbo_id"] in {row["id"] for row in tab.tab("client")["qbo"]}
    # Taxes cannot be created through the API; 6240 does not apply to codes
    answer = tab.call("POST", "/mappings/tax/export", {"app_ids": ["t-1"]})
    assert (answer.status, detail(answer)["type"]) == (422, "unsupported_for_kind")
    assert tab.call("GET", "/mappings/work_code/name-conflicts").status == 422


def test_import_links_active_customers_and_emits_client_imported(tab: Tab, world: World) -> None:
    tab.qbo_create("Customer", {"DisplayName": "Gone Gardens", "Active": False})
    tab.refresh()
    inactive = next(row["id"] for row in tab.tab("client")["qbo"] if row["name"] == "Gone Gardens")

    results = tab.ok("POST", "/mappings/client/import", {"qbo_ids": ["1", inactive, "999", "1"]})["results"]
    assert [(r["id"], r["status"], r["reason"]) for r in results] == [
        ("1", "imported", None),
        (inactive, "refused", "inactive"),
        ("999", "refused", "qbo_entity_not_found"),
    ]
    (event,) = world.published("Client Imported")
    assert event.tenant_id == TENANT
    assert event.detail["app_id"] == "qbo.1"
    assert event.detail["entity"]["name"] == "Amy's Bird Sanctuary"
    assert event.detail["entity"]["email"] == "Birds@Intuit.com"
    assert tab.ok("GET", "/mappings/client/qbo/1")["link"]["source"] == "import"
    # A second import is acknowledged, not repeated
    again = tab.ok("POST", "/mappings/client/import", {"qbo_ids": ["1"]})["results"][0]
    assert (again["status"], again["app_id"]) == ("already_linked", "qbo.1")
    assert len(world.published("Client Imported")) == 1
    # The app then tells us about its new client under the id we gave it
    assert tab.upsert("client", "qbo.1", "Amy's Bird Sanctuary", version=1)["stored"] is True


# --- codes, taxes, accounts, employees ------------------------------------------------------------


def test_work_and_expense_codes_map_to_items(tab: Tab) -> None:
    tab.upsert("work_code", "w-hours", "HOURS")
    tab.upsert("work_code", "w-design", "Design work")
    tab.upsert("expense_code", "e-sod", "Sod")
    tab.refresh()
    assert len(tab.tab("work_code")["qbo"]) == 18

    applied = tab.ok("POST", "/mappings/work_code/automatch", apply="true")
    assert [(m["app_id"], m["qbo_id"]) for m in applied["linked"]] == [("w-hours", "2")]
    assert applied["suggestions"]["w-design"][0]["qbo_id"] == "4"
    assert tab.link("work_code", "w-design", "4").status == 200
    # Work and expense codes are separate kinds: the same item may serve both
    assert tab.link("expense_code", "e-sod", "14").status == 200
    assert tab.link("expense_code", "e-sod", "2").status == 409
    hidden = tab.tab("work_code", hide_linked=True)
    assert hidden["app"] == []
    assert {"2", "4"}.isdisjoint(row["id"] for row in hidden["qbo"])
    assert tab.ok("DELETE", "/mappings/work_code")["removed"] == 2


def test_taxes_map_to_tax_codes(tab: Tab) -> None:
    tab.upsert("tax", "t-ca", "California")
    tab.upsert("tax", "t-tucson", "Tucson city")
    tab.refresh()
    codes = {row["id"]: row["name"] for row in tab.tab("tax")["qbo"]}
    assert {"TAX", "NON", "2", "3"} <= set(codes)
    proposal = tab.ok("POST", "/mappings/tax/automatch", apply="true")
    assert [(m["app_id"], m["qbo_id"]) for m in proposal["linked"]] == [("t-ca", "2")]
    assert tab.link("tax", "t-tucson", "3").status == 200
    assert tab.link("tax", "t-tucson", "NON").status == 409
    assert tab.ok("GET", "/mappings/tax/qbo/3")["app"]["id"] == "t-tucson"
    assert tab.ok("DELETE", "/mappings/tax/app/t-ca")["unlinked"]["qbo_id"] == "2"


def test_the_tax_tab_shows_each_codes_sales_rates_read_by_the_refresh(tab: Tab) -> None:
    # The tenant's refresh reads TaxRate too: the push needs each code's rates to send tax per rate.
    tab.refresh()

    rows = {row["id"]: row for row in tab.tab("tax")["qbo"]}

    assert rows["3"]["rates"] == [
        {"id": "1", "name": "AZ State tax", "percent": "5.6", "agency_id": "2"},
        {"id": "2", "name": "Tucson City", "percent": "2.6", "agency_id": "2"},
    ]
    assert rows["2"]["rates"] == [{"id": "3", "name": "California", "percent": "8", "agency_id": "1"}]
    assert rows["TAX"]["rates"] == []  # AST's pseudo code names no rate


def test_accounts_follow_qbos_account_type_rules(tab: Tab) -> None:
    tab.upsert("account", "a-fees", "Fees Billed", type="revenue")
    tab.upsert("account", "a-bank", "Checking", type="deposit")
    tab.upsert("account", "a-undeposited", "Undeposited Funds", type="deposit")
    tab.upsert("account", "a-ar", "Accounts Receivable (A/R)", type="revenue")
    tab.refresh()

    # Never A/R on a line, never a revenue account as a deposit account
    refused = tab.link("account", "a-ar", "84")
    assert (refused.status, detail(refused)["type"]) == (422, "incompatible_entity")
    assert "Accounts Receivable" in detail(refused)["msg"]
    assert tab.link("account", "a-fees", "35").status == 422
    assert tab.link("account", "a-bank", "1").status == 422

    # Automatch proposes within the types that fit: the A/R account is never proposed for a line
    applied = tab.ok("POST", "/mappings/account/automatch", apply="true")
    assert sorted((m["app_id"], m["qbo_id"]) for m in applied["linked"]) == [
        ("a-bank", "35"),
        ("a-fees", "5"),
        ("a-undeposited", "4"),
    ]
    assert "84" not in {s["qbo_id"] for s in applied["suggestions"].get("a-ar", [])}
    assert tab.link("account", "a-ar", "1").status == 200  # Services: an Income account


def test_employees_match_link_and_name_conflicts(tab: Tab) -> None:
    tab.upsert("employee", "e-emily", "Emily Platt")
    tab.upsert("employee", "e-john", "Johnson, John")
    tab.upsert("employee", "e-cool", "Cool Cars")  # a customer already holds the name
    tab.refresh()
    assert {row["id"] for row in tab.tab("employee")["qbo"]} == {"54", "55"}

    proposal = tab.ok("POST", "/mappings/employee/automatch", apply="false")
    assert [(m["app_id"], m["qbo_id"]) for m in proposal["matches"]] == [("e-emily", "54")]
    # Reordered words are a strong suggestion, never applied on their own
    assert proposal["suggestions"]["e-john"][0]["qbo_id"] == "55"
    applied = tab.ok("POST", "/mappings/employee/automatch", apply="true")
    assert [(m["app_id"], m["qbo_id"]) for m in applied["linked"]] == [("e-emily", "54")]
    assert tab.ok("GET", "/mappings/employee/qbo/54")["app"]["id"] == "e-emily"
    assert tab.call("GET", "/mappings/employee/app/e-john").status == 404
    assert tab.link("employee", "e-john", "54").status == 409
    assert tab.link("employee", "e-john", "55").status == 200

    tab.upsert("employee", "e-new", "Nora Newhire")
    cool, new = tab.ok("POST", "/mappings/employee/export", {"app_ids": ["e-cool", "e-new"]})["results"]
    assert (cool["status"], cool["reason"]) == ("refused", "duplicate_name")
    assert "Customer 3" in cool["message"]
    assert new["status"] == "created"
    assert tab.qbo_row("Employee", new["qbo_id"])["DisplayName"] == "Nora Newhire"
    assert tab.ok("GET", f"/mappings/employee/qbo/{new['qbo_id']}")["app"]["id"] == "e-new"


# --- onboarding and the connection ----------------------------------------------------------------


def test_onboard_reads_qbo_lists_and_applies_unambiguous_matches(tab: Tab) -> None:
    tab.upsert("client", "c-cars", "Cool Cars")
    tab.upsert("client", "c-new", "Nobody In QBO")
    tab.upsert("work_code", "w-hours", "Hours")
    tab.upsert("account", "a-bank", "Checking", type="deposit")

    outcome = tab.ok("POST", "/mappings/onboard")
    assert outcome["refreshed"]["client"] == 26
    assert outcome["applied"] == {
        "client": 1,
        "site": 0,
        "employee": 0,
        "work_code": 1,
        "expense_code": 0,
        "tax": 0,
        "account": 1,
    }
    assert outcome["unmatched"]["client"] == 1
    assert tab.ok("GET", "/mappings/client/qbo/3")["app"]["id"] == "c-cars"


def test_a_tenant_without_a_connection_is_refused(world: World) -> None:
    answer = world.api("POST", "/tenants/never-connected/mappings/refresh")
    assert answer.status == 404
    assert detail(answer)["type"] == "not_connected"
    answer = world.api("GET", "/tenants/never-connected/mappings/invoice")
    assert (answer.status, detail(answer)["loc"]) == (422, ["path", "kind"])


def test_removing_a_tenants_mappings_forgets_both_sides_and_nothing_of_another_tenant(
    tab: Tab, world: World
) -> None:
    from infra import tables
    from shared.mapping.catalog import AppCatalog, QboCache

    other = Tab(world, "firm-other")
    for each in (tab, other):
        each.upsert("client", "c-cars", "Cool Cars")
        each.refresh()
    table = world.dynamodb.Table(tables.LINKS.default_name)
    catalog, cache = AppCatalog(table), QboCache(table)

    assert catalog.clear_tenant(TENANT) == 1
    assert cache.clear_tenant(TENANT) > 26  # every cached kind, with its stamp
    assert_empty_tab(tab.tab("client"))
    assert [row["id"] for row in other.tab("client")["app"]] == ["c-cars"]
    assert len(other.tab("client")["qbo"]) == 26


def test_disconnect_keeps_or_removes_the_tenants_mappings(tab: Tab, world: World) -> None:
    # Given a linked client and a cached QBO list
    tab.upsert("client", "c-cool", "Cool Cars")
    tab.refresh()
    assert tab.link("client", "c-cool", "3").status == 200

    # When the tenant disconnects keeping its mappings, the link survives
    kept = world.api("DELETE", f"/tenants/{tab.tenant}/connection", query={"mappings": "keep"})
    assert kept.status == 200
    linked = [row for row in tab.tab("client")["app"] if row["id"] == "c-cool"]
    assert linked
    assert linked[0]["linked_qbo_id"] == "3"

    # When it later disconnects removing them, both sides of the match tab are empty
    removed = world.api("DELETE", f"/tenants/{tab.tenant}/connection", query={"mappings": "remove"})
    assert removed.status == 200
    assert_empty_tab(tab.tab("client"))


def _connected_event(tab: Tab) -> dict[str, Any]:
    """The ``Connection Connected`` of the tab's last consent, as the event rule hands it over."""
    connected = tab.world.published("Connection Connected")[-1]
    return {
        "version": "0",
        "id": connected.event_id,
        "source": "qbo-link",
        "detail-type": connected.detail_type,
        "detail": connected.body(),
    }


def test_connection_connected_event_onboards_the_tenant_once(tab: Tab) -> None:
    from functions.onboard import handler
    from tests.integration.connections_fixtures import LambdaContext

    tab.upsert("client", "c-cars", "Cool Cars")
    event = _connected_event(tab)
    # Given a tenant just connected: its onboarding is pending, QBO's side of the tabs empty
    pending = tab.ok("GET", "/connection")["onboarding"]
    assert (pending["state"], pending["finished_at"], pending["linked"]) == ("pending", None, {})

    result = handler.lambda_handler(event, LambdaContext())
    assert (result["state"], result["linked"]["client"], result["repeated"]) == ("finished", 1, False)
    assert tab.ok("GET", "/mappings/client/qbo/3")["app"]["id"] == "c-cars"

    # The connection status says it finished, with what it read and linked
    status = tab.ok("GET", "/connection")["onboarding"]
    assert status["state"] == "finished"
    assert status["read"]["client"] == 26
    assert status["linked"]["client"] == 1
    assert status["unmatched"]["client"] == 0
    assert status["started_at"] <= status["finished_at"]
    assert status["error"] is None
    # and one event says so, with the same counts
    [finished] = tab.world.published("Onboarding Finished")
    assert finished.event_id == result["event_id"]
    assert finished.detail["realm_id"] == tab.realm
    assert (finished.detail["read"], finished.detail["linked"]) == (status["read"], status["linked"])
    assert finished.detail["version"] == 1

    # A repeated delivery (the rule's retry, a duplicate) does no work and announces the same fact
    tab.upsert("client", "c-more", "Amy's Bird Sanctuary")  # would be linked by a second run
    again = handler.lambda_handler(event, LambdaContext())
    assert (again["repeated"], again["event_id"]) == (True, finished.event_id)
    repeated = tab.world.published("Onboarding Finished")
    assert [e.event_id for e in repeated] == [finished.event_id] * 2
    assert repeated[1].detail == finished.detail
    assert tab.ok("GET", "/connection")["onboarding"] == status

    foreign = {**event, "source": "someone-else"}
    with pytest.raises(ValueError, match="unexpected event"):
        handler.lambda_handler(foreign, LambdaContext())


def test_a_failed_onboarding_is_recorded_and_a_retry_finishes_it(tab: Tab) -> None:
    from functions.onboard import handler
    from shared import wiring
    from shared.mapping.service import MappingService
    from tests.integration.connections_fixtures import LambdaContext

    event = _connected_event(tab)
    real = MappingService.onboard

    def broken(self: MappingService, tenant_id: str) -> Any:
        raise RuntimeError("QBO went away")

    wiring.mappings()  # built before the patch, used through the class
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MappingService, "onboard", broken)
        with pytest.raises(RuntimeError, match="QBO went away"):
            handler.lambda_handler(event, LambdaContext())
    failed = tab.ok("GET", "/connection")["onboarding"]
    assert (failed["state"], failed["error"]) == ("failed", "RuntimeError: QBO went away")
    assert failed["failed_at"] is not None
    assert tab.world.published("Onboarding Finished") == []

    assert MappingService.onboard is real
    handler.lambda_handler(event, LambdaContext())  # the event rule's retry
    finished = tab.ok("GET", "/connection")["onboarding"]
    assert (finished["state"], finished["error"], finished["failed_at"]) == ("finished", None, None)
    assert len(tab.world.published("Onboarding Finished")) == 1


def test_a_reconnect_onboards_again_under_a_new_event_id(tab: Tab) -> None:
    from functions.onboard import handler
    from tests.integration.connections_fixtures import LambdaContext

    handler.lambda_handler(_connected_event(tab), LambdaContext())
    tab.world.clock.advance(300)
    assert tab.world.connect(tab.tenant, realmId=tab.realm) == tab.realm
    assert tab.ok("GET", "/connection")["onboarding"]["state"] == "pending"  # this consent's, to come
    handler.lambda_handler(_connected_event(tab), LambdaContext())
    first, second = tab.world.published("Onboarding Finished")
    assert first.event_id != second.event_id
    assert second.detail["connected_at"] > first.detail["connected_at"]


def test_two_onboardings_at_once_announce_the_one_recorded(tab: Tab) -> None:
    from dataclasses import dataclass

    from shared import wiring
    from shared.connections.onboarding import Onboarder
    from shared.kernel.events import RecordingPublisher

    @dataclass(frozen=True)
    class Counts:
        refreshed: dict[str, int]
        applied: dict[str, int]
        unmatched: dict[str, int]

    published = RecordingPublisher()

    def second(tenant_id: str) -> Counts:
        return Counts({"client": 2}, {"client": 2}, {"client": 0})

    def first(tenant_id: str) -> Counts:
        # a second delivery of the same Connection Connected runs meanwhile and finishes first
        Onboarder(wiring.store(), second, published, wiring.clock()).onboard(tenant_id)
        return Counts({"client": 1}, {"client": 1}, {"client": 5})

    outcome = Onboarder(wiring.store(), first, published, wiring.clock()).onboard(tab.tenant)

    # The slower run's counts lose the conditional write; both announce what is recorded
    assert outcome.onboarding is not None
    assert dict(outcome.onboarding.linked) == {"client": 2}
    assert [e.event_id for e in published.events] == [published.events[0].event_id] * 2
    assert published.events[0].detail == published.events[1].detail
    assert published.events[1].detail["linked"] == {"client": 2}
    assert tab.ok("GET", "/connection")["onboarding"]["linked"] == {"client": 2}


# --- export of codes, accounts and taxes -----------------------------------------------------------


def test_codes_export_as_service_items_with_their_income_account(tab: Tab) -> None:
    tab.upsert("account", "a-fees", "Fees Billed", type="revenue")
    tab.upsert("account", "a-costs", "Costs", type="expense")
    tab.upsert("work_code", "w-book", "Bookkeeping Hours")
    tab.upsert("work_code", "w-audit", "Audit Work", account_id="a-fees")
    tab.upsert("work_code", "w-hours", "hours")  # item 2 holds the name
    tab.upsert("expense_code", "e-court", "Court Fees", account_id="a-fees", expense_account_id="a-costs")
    tab.refresh()
    expense_account = next(row["id"] for row in tab.tab("account")["qbo"] if row["type"] == "Expense")

    # No revenue account anywhere: the whole request is refused before anything is created
    refused = tab.call("POST", "/mappings/work_code/export", {"app_ids": ["w-audit", "w-book"]})
    assert (refused.status, detail(refused)["type"]) == (422, "revenue_account_missing")
    assert detail(refused)["loc"] == ["body", "app_ids", "0"]
    assert "set a revenue account first" in detail(refused)["msg"]
    assert tab.tab("work_code", hide_linked=True)["app_total"] == 3

    # The code's own linked revenue account wins; the tenant's setting is the fallback
    assert tab.link("account", "a-fees", "5").status == 200
    assert tab.link("account", "a-costs", expense_account).status == 200
    tab.settings(revenue_account_id="1")
    results = tab.ok("POST", "/mappings/work_code/export", {"app_ids": ["w-audit", "w-book", "w-hours"]})
    audit, book, hours = results["results"]
    assert (audit["status"], book["status"]) == ("created", "created")
    assert (hours["status"], hours["reason"]) == ("refused", "duplicate_name")
    assert "Item 2" in hours["message"]
    audit_item = tab.qbo_row("Item", audit["qbo_id"])
    assert (audit_item["Name"], audit_item["Type"]) == ("Audit Work", "Service")
    assert audit_item["IncomeAccountRef"]["value"] == "5"
    assert "ExpenseAccountRef" not in audit_item
    assert tab.qbo_row("Item", book["qbo_id"])["IncomeAccountRef"]["value"] == "1"
    assert tab.ok("GET", f"/mappings/work_code/qbo/{book['qbo_id']}")["link"]["source"] == "export"
    # The new items are on both code tabs at once, without a refresh
    assert book["qbo_id"] in {row["id"] for row in tab.tab("expense_code")["qbo"]}

    # An expense code also carries its linked expense account
    court = tab.ok("POST", "/mappings/expense_code/export", {"app_ids": ["e-court"]})["results"][0]
    assert court["status"] == "created"
    court_item = tab.qbo_row("Item", court["qbo_id"])
    assert court_item["IncomeAccountRef"]["value"] == "5"
    assert court_item["ExpenseAccountRef"]["value"] == expense_account
    again = tab.ok("POST", "/mappings/expense_code/export", {"app_ids": ["e-court"]})["results"][0]
    assert (again["status"], again["qbo_id"]) == ("already_linked", court["qbo_id"])
    # account_id belongs to codes only
    answer = tab.call("PUT", "/catalog/client/c-1", {"version": 1, "name": "X", "account_id": "a-fees"})
    assert (answer.status, detail(answer)["loc"]) == (422, ["body", "account_id"])


def test_accounts_export_with_the_type_of_their_use_and_taxes_are_refused(tab: Tab) -> None:
    tab.upsert("account", "a-rev", "Consulting Revenue", type="revenue")
    tab.upsert("account", "a-dep", "Trust Account", type="deposit")
    tab.upsert("account", "a-exp", "Filing Costs", type="expense")
    tab.upsert("account", "a-check", "checking", type="deposit")  # QBO account 35 holds the name
    tab.refresh()

    results = tab.ok("POST", "/mappings/account/export", {"app_ids": ["a-rev", "a-dep", "a-exp", "a-check"]})[
        "results"
    ]
    assert [r["status"] for r in results] == ["created", "created", "created", "refused"]
    assert results[3]["reason"] == "duplicate_name"
    types = [tab.qbo_row("Account", r["qbo_id"])["AccountType"] for r in results[:3]]
    assert types == ["Income", "Bank", "Expense"]
    linked = {row["id"]: row["linked_qbo_id"] for row in tab.tab("account")["app"]}
    assert linked["a-rev"] == results[0]["qbo_id"]
    assert linked["a-check"] is None

    answer = tab.call("POST", "/mappings/tax/export", {"app_ids": ["t-1"]})
    assert (answer.status, detail(answer)["type"]) == (422, "unsupported_for_kind")
    assert "cannot create tax codes" in detail(answer)["msg"]


def test_each_export_and_import_that_ran_is_in_the_exchange_history(tab: Tab) -> None:
    tab.upsert("account", "a-rev", "Consulting Revenue", type="revenue")
    tab.upsert("account", "a-check", "checking", type="deposit")  # QBO account 35 holds the name
    tab.refresh()

    tab.ok("POST", "/mappings/account/export", {"app_ids": ["a-rev", "a-check"]})
    assert tab.call("POST", "/mappings/tax/export", {"app_ids": ["t-1"]}).status == 422  # refused: not run
    employee = tab.tab("employee")["qbo"][0]["id"]
    tab.ok("POST", "/mappings/employee/import", {"qbo_ids": [employee]})

    history = tab.ok("GET", "/exchanges")["exchanges"]
    transfers = [x for x in history if x["source"] in {"export", "import"}]
    assert [(x["source"], x["trigger"]) for x in transfers] == [("import", "employee"), ("export", "account")]
    imported, exported = transfers
    assert (exported["outcome"], exported["changes"]) == ("succeeded", 1)
    assert exported["events"] == {"created": 1, "refused": 1}
    assert exported["finished_at"] >= exported["started_at"]
    assert (imported["changes"], imported["events"]) == (1, {"imported": 1})
    assert tab.ok("GET", "/exchanges/latest")["exchange"]["exchange_id"] == imported["exchange_id"]


# --- client types (M3) -------------------------------------------------------------------------------


def test_only_the_tenants_client_types_sync(tab: Tab) -> None:
    tab.upsert("client", "c-cars", "Cool Cars", type="client")
    tab.upsert("client", "c-bill", "Bill's Windsurf Shop", type="prospect")
    tab.upsert("client", "c-new", "Prospective Partners", type="prospect")
    tab.upsert("site", "s-cars", "Cars Depot", parent_id="c-cars")
    tab.upsert("site", "s-bill", "Bill's Beach Hut", parent_id="c-bill")
    tab.refresh()
    tab.settings(client_types=["client"])

    clients = tab.tab("client")
    assert [row["id"] for row in clients["app"]] == ["c-cars"]
    assert clients["app_total"] == 1
    assert [row["id"] for row in tab.tab("site")["app"]] == ["s-cars"]
    proposal = tab.ok("POST", "/mappings/client/automatch", apply="true")
    assert [(m["app_id"], m["qbo_id"]) for m in proposal["linked"]] == [("c-cars", "3")]
    assert "c-bill" not in proposal["suggestions"]
    results = tab.ok("POST", "/mappings/client/export", {"app_ids": ["c-new"]})["results"]
    assert (results[0]["status"], results[0]["reason"]) == ("refused", "client_type_not_synced")
    assert "prospect" in results[0]["message"]
    site = tab.ok("POST", "/mappings/site/export", {"app_ids": ["s-bill"]})["results"][0]
    assert (site["status"], site["reason"]) == ("refused", "client_type_not_synced")

    # Empty means every type
    tab.settings(client_types=[])
    assert {row["id"] for row in tab.tab("client")["app"]} == {"c-cars", "c-bill", "c-new"}
    applied = tab.ok("POST", "/mappings/client/automatch", apply="true")
    assert [(m["app_id"], m["qbo_id"]) for m in applied["linked"]] == [("c-bill", "2")]


# --- site automatch under the linked parent -----------------------------------------------------------


def test_site_automatch_looks_under_the_parent_customer_when_the_client_is_linked(tab: Tab) -> None:
    kitchen = tab.qbo_create("Customer", {"DisplayName": "Kitchen Remodel", "ParentRef": {"value": "22"}})
    dome = tab.qbo_create("Customer", {"DisplayName": "Dome Build", "ParentRef": {"value": "7"}})
    tab.upsert("client", "c-free", "Freeman Sporting Goods")
    tab.upsert("client", "c-other", "Other Owner")
    tab.upsert("site", "s-free-kitchen", "Kitchen Remodel", parent_id="c-free")
    tab.upsert("site", "s-free-dome", "Dome Build", parent_id="c-free")
    tab.upsert("site", "s-other-kitchen", "Kitchen Remodel", parent_id="c-other")
    tab.refresh()
    assert tab.link("client", "c-free", "7").status == 200

    proposal = tab.ok("POST", "/mappings/site/automatch", apply="true")
    # c-free is linked to 7: its sites see 7's sub-customers only, so the kitchen under 22 is
    # neither applied nor suggested for s-free-kitchen; c-other is not linked: every sub-customer
    assert sorted((m["app_id"], m["qbo_id"]) for m in proposal["linked"]) == [
        ("s-free-dome", dome["Id"]),
        ("s-other-kitchen", kitchen["Id"]),
    ]
    suggested = {s["qbo_id"] for s in proposal["suggestions"].get("s-free-kitchen", [])}
    assert kitchen["Id"] not in suggested
    assert suggested <= {"8", "9"}


# --- paging ---------------------------------------------------------------------------------------------


def test_the_tab_pages_both_sides_with_an_opaque_token(tab: Tab) -> None:
    for n in range(5):
        tab.upsert("client", f"c-{n}", f"Client Number {n}")
    tab.refresh()
    whole = tab.tab("client")
    assert (len(whole["app"]), len(whole["qbo"]), whole["next_page_token"]) == (5, 26, None)  # default 200

    app_ids: list[str] = []
    qbo_ids: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        page = tab.ok("GET", "/mappings/client", limit="4", **({"page_token": token} if token else {}))
        assert len(page["app"]) <= 4
        assert len(page["qbo"]) <= 4
        assert (page["app_total"], page["qbo_total"]) == (5, 26)
        app_ids += [row["id"] for row in page["app"]]
        qbo_ids += [row["id"] for row in page["qbo"]]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            break
    assert pages == 7  # 26 QBO customers, four a page
    assert app_ids == sorted(f"c-{n}" for n in range(5))
    assert sorted(qbo_ids) == sorted(row["id"] for row in whole["qbo"])
    assert len(set(qbo_ids)) == 26

    first = tab.tab("client", limit="4")
    answer = tab.call("GET", "/mappings/site", limit="4", page_token=first["next_page_token"])
    assert (answer.status, detail(answer)["type"]) == (422, "invalid_page_token")
    answer = tab.call("GET", "/mappings/client", page_token="not-a-token")
    assert (answer.status, detail(answer)["loc"]) == (422, ["query", "page_token"])
    assert tab.call("GET", "/mappings/client", limit="0").status == 422


def test_the_tab_searches_both_sides_and_pages_the_search(tab: Tab) -> None:
    tab.upsert("client", "c-amy", "Amy's Bird Sanctuary", email="birds@intuit.com")
    tab.upsert("client", "c-cool", "Cool Cars")
    tab.refresh()
    tab.link("client", "c-amy", "1")

    found = tab.tab("client", q="AMY'S")
    assert [(r["id"], r["linked_qbo_id"]) for r in found["app"]] == [("c-amy", "1")]
    assert [(r["id"], r["linked_app_id"]) for r in found["qbo"]] == [("1", "c-amy")]
    assert (found["app_total"], found["qbo_total"], found["next_page_token"]) == (1, 1, None)
    assert tab.tab("client", q="birds@")["app_total"] == 1  # the e-mail
    assert tab.tab("client", q="c-coo")["app_total"] == 1  # the id
    assert tab.tab("client", q="amy", hide_linked=True)["qbo_total"] == 0

    whole = tab.tab("client", q="a")
    first = tab.tab("client", q="a", limit="2")
    assert (first["app_total"], first["qbo_total"]) == (whole["app_total"], whole["qbo_total"])
    qbo_ids = [row["id"] for row in first["qbo"]]
    token = first["next_page_token"]
    while token:
        page = tab.tab("client", q="a", limit="2", page_token=token)
        qbo_ids += [row["id"] for row in page["qbo"]]
        token = page["next_page_token"]
    assert qbo_ids == [row["id"] for row in whole["qbo"]]

    answer = tab.call("GET", "/mappings/client", q="b", limit="2", page_token=first["next_page_token"])
    assert (answer.status, detail(answer)["type"]) == (422, "invalid_page_token")
    assert tab.call("GET", "/mappings/client", q="x" * 201).status == 422


@pytest.mark.parametrize(
    ("kind", "qbo_id", "event"),
    [
        ("work_code", "2", "Work Code Imported"),
        ("expense_code", "13", "Expense Code Imported"),
        ("tax", "2", "Tax Imported"),
        ("account", "1", "Account Imported"),
        ("employee", "54", "Employee Imported"),
    ],
)
def test_import_links_a_qbo_entity_of_every_kind_and_emits_its_event(
    tab: Tab, world: World, kind: str, qbo_id: str, event: str
) -> None:
    tab.refresh()
    result = tab.ok("POST", f"/mappings/{kind}/import", {"qbo_ids": [qbo_id]})["results"][0]
    assert result["status"] == "imported", result
    shown = tab.ok("GET", f"/mappings/{kind}/qbo/{qbo_id}")
    assert shown["app"]["id"] == result["app_id"]
    published = [e for e in world.events.events if e.detail_type == event]
    assert published, [e.detail_type for e in world.events.events]
    assert published[-1].detail["qbo_id"] == qbo_id
