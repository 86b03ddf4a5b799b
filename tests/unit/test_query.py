"""QBO query language: parsing, filtering, ordering, paging, counting and faults."""

# The statements built here are QBO queries over in-memory test data, not SQL sent to a database.
# ruff: noqa: S608

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from qbo_sandbox import accounting
from qbo_sandbox.accounting.common import EntityRules
from qbo_sandbox.company import Company
from qbo_sandbox.faults import QboFault
from qbo_sandbox.query import parse, run_query, tokenize

NOW = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def minimal_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register just the entity rules the query engine reads, whatever the other modules hold."""
    for name, name_list in (
        ("Customer", True),
        ("Item", True),
        ("TaxCode", True),
        ("Invoice", False),
        ("CompanyInfo", False),
    ):
        monkeypatch.setitem(accounting.RULES, name, EntityRules(name=name, name_list=name_list, cdc=True))
    # Known to QBO, deliberately not modelled, even if another module registers it meanwhile.
    monkeypatch.delitem(accounting.RULES, "TimeActivity", raising=False)


def _customer(co: Company, entity_id: str, name: str, updated: str, **fields: Any) -> None:
    stored = co.insert("Customer", {"DisplayName": name, "Active": True, **fields}, NOW, entity_id=entity_id)
    stored["MetaData"]["LastUpdatedTime"] = updated


@pytest.fixture
def company() -> Company:
    co = Company(realm_id="9341", country="US", name="Sandbox Company_US_1", created_at=NOW)
    _customer(co, "1", "Amy's Bird Sanctuary", "2026-05-05T02:05:12-07:00", Balance=239)
    _customer(co, "2", "Bill's Windsurf Shop", "2026-05-04T10:00:00-07:00", Balance=85.5)
    _customer(co, "3", "Cool Cars", "2026-04-01T08:00:00-07:00", Balance=Decimal("0"), Active=False)
    _customer(co, "7", "Freeman Sporting Goods", "2026-03-01T08:00:00-08:00", Balance=0)
    _customer(
        co, "8", "0969 Ocean View Road", "2026-05-06T00:00:00-07:00",
        Balance=477.5, Job=True, ParentRef={"value": "7"}, CompanyName="Freeman Sporting Goods",
    )  # fmt: skip
    _customer(
        co, "9", "55 Twin Lane", "2026-01-01T00:00:00-08:00",
        Balance=0, Job=True, ParentRef={"value": "7"}, Active=False,
    )  # fmt: skip
    # Same instant as customer 1 (09:05:12Z), written with another offset.
    _customer(co, "10", "Geeta Kalapatapu", "2026-05-05T10:05:12+01:00", Balance=Decimal("629.10"))

    co.insert("Item", {"Name": "Services", "Type": "Service", "Active": True}, NOW, entity_id="1")
    co.insert("Item", {"Name": "Rock Fountain", "Type": "Inventory", "Sku": "RF-1", "Active": True}, NOW,
              entity_id="5")  # fmt: skip
    co.insert("Item", {"Name": "Pump", "Type": "Inventory", "Active": False}, NOW, entity_id="11")
    co.insert("Item", {"Name": "Hours", "Type": "Service", "Active": True}, NOW, entity_id="12")

    co.insert("TaxCode", {"Name": "California", "Active": True}, NOW, entity_id="2")
    co.insert("TaxCode", {"Name": "Old code", "Active": False}, NOW, entity_id="5")
    co.insert("TaxCode", {"Name": "TAX"}, NOW, entity_id="TAX")
    co.insert("TaxCode", {"Name": "NON"}, NOW, entity_id="NON")

    for entity_id, customer, date, total in (
        ("1", "1", "2026-01-15", 100),
        ("2", "7", "2026-02-01", 250.25),
        ("3", "8", "2026-02-01", 40),
        ("4", "1", "2026-03-10", 0),
    ):
        co.insert(
            "Invoice",
            {"DocNumber": str(1000 + int(entity_id)), "TxnDate": date, "TotalAmt": total,
             "CustomerRef": {"value": customer}},
            NOW,
            entity_id=entity_id,
        )  # fmt: skip
    co.insert("CompanyInfo", {"CompanyName": "Sandbox Company_US_1", "Country": "US"}, NOW, entity_id="1")
    return co


def ids(response: dict[str, Any], entity: str = "Customer") -> list[str]:
    return [row["Id"] for row in response.get(entity, [])]


def fault_of(co: Company, text: str) -> QboFault:
    with pytest.raises(QboFault) as caught:
        run_query(co, text)
    return caught.value


ACTIVE_CUSTOMERS = ["1", "2", "7", "8", "10"]


# --- basic shape --------------------------------------------------------------------------------


def test_plain_select_returns_active_rows_in_id_order_with_qbo_envelope(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Customer")
    assert list(response) == ["Customer", "startPosition", "maxResults"]
    assert ids(response) == ACTIVE_CUSTOMERS
    assert response["startPosition"] == 1
    assert response["maxResults"] == len(ACTIVE_CUSTOMERS)  # rows returned, not the page size


def test_rows_are_full_copies(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Customer WHERE Id = '8'")
    row = response["Customer"][0]
    assert row["ParentRef"] == {"value": "7"}
    assert row["MetaData"]["LastUpdatedTime"] == "2026-05-06T00:00:00-07:00"
    row["ParentRef"]["value"] = "changed"
    row["DisplayName"] = "changed"
    stored = company.get("Customer", "8")
    assert stored is not None
    assert stored["ParentRef"]["value"] == "7"
    assert stored["DisplayName"] == "0969 Ocean View Road"


def test_keywords_are_case_insensitive(company: Company) -> None:
    response = run_query(company, "select * from Customer where active = FALSE orderby id desc")
    assert ids(response) == ["9", "3"]


def test_statement_may_span_lines(company: Company) -> None:
    response = run_query(company, "SELECT *\n  FROM Customer\n  WHERE Job = true\n  MAXRESULTS 5")
    assert ids(response) == ["8"]


@pytest.mark.parametrize(
    "statement",
    ["SELECT Id, DisplayName FROM Customer WHERE Id = '8'", "SELECT *, Sku FROM Customer WHERE Id = '8'"],
)
def test_projection_is_accepted_and_full_rows_are_returned(company: Company, statement: str) -> None:
    row = run_query(company, statement)["Customer"][0]
    assert row["Job"] is True
    assert row["CompanyName"] == "Freeman Sporting Goods"


def test_python_quickbooks_item_projection(company: Company) -> None:
    response = run_query(company, "SELECT *, Sku FROM Item")
    assert ids(response, "Item") == ["1", "5", "12"]
    assert response["Item"][1]["Sku"] == "RF-1"


def test_company_info_is_queryable(company: Company) -> None:
    response = run_query(company, "SELECT * FROM CompanyInfo")
    assert response["CompanyInfo"][0]["CompanyName"] == "Sandbox Company_US_1"
    assert response["maxResults"] == 1


# --- operators ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Balance = 0", ["7"]),
        ("Balance = '0.0'", ["7"]),  # numeric text against a number: QBO clients send this
        ("Balance > 239", ["8", "10"]),
        ("Balance >= 239", ["1", "8", "10"]),
        ("Balance < 85.5", ["7"]),
        ("Balance <= 85.5", ["2", "7"]),
        ("Balance > 477.49", ["8", "10"]),  # float stored
        ("Balance = 629.1", ["10"]),  # Decimal stored with a trailing zero
        ("Balance > -1", ACTIVE_CUSTOMERS),
    ],
)
def test_numeric_comparisons(company: Company, condition: str, expected: list[str]) -> None:
    assert ids(run_query(company, f"SELECT * FROM Customer WHERE {condition}")) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("DisplayName = 'Cool Cars' AND Active = false", ["3"]),
        ("DisplayName = 'cool cars' AND Active = false", ["3"]),  # case-insensitive names
        ("DisplayName < 'B'", ["1", "8"]),  # digits sort before letters
        ("DisplayName > 'freeman'", ["7", "10"]),
        ("DisplayName >= 'Geeta Kalapatapu'", ["10"]),
        ("DisplayName <= '0969 Ocean View Road'", ["8"]),
    ],
)
def test_string_comparisons(company: Company, condition: str, expected: list[str]) -> None:
    assert ids(run_query(company, f"SELECT * FROM Customer WHERE {condition}")) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("Bill%", ["2"]),
        ("%Road", ["8"]),
        ("%sport%", ["7"]),
        ("A%Sanctuary", ["1"]),
        ("%", ACTIVE_CUSTOMERS),
        ("geeta kalapatapu", ["10"]),  # no wildcard: whole value, case-insensitive
        ("Geeta", []),
        ("G_eta%", []),  # _ is not a wildcard in QBO
        ("%'s%", ["1", "2"]),
    ],
)
def test_like(company: Company, pattern: str, expected: list[str]) -> None:
    escaped = pattern.replace("'", "\\'")
    assert ids(run_query(company, f"SELECT * FROM Customer WHERE DisplayName LIKE '{escaped}'")) == expected


def test_in_on_strings_and_ids(company: Company) -> None:
    response = run_query(
        company,
        "SELECT * FROM Customer WHERE DisplayName IN ('cool cars', 'bill\\'s windsurf shop', 'Nobody')",
    )
    assert ids(response) == ["2"]  # Cool Cars matches but is inactive
    response = run_query(company, "SELECT * FROM Customer WHERE Id IN ('1', '10', '3', '99')")
    assert ids(response) == ["1", "10"]
    response = run_query(company, "SELECT * FROM Item WHERE Type IN ('Inventory')")
    assert ids(response, "Item") == ["5"]


def test_ids_compare_numerically(company: Company) -> None:
    assert ids(run_query(company, "SELECT * FROM Customer WHERE Id > '7'")) == ["8", "10"]
    assert ids(run_query(company, "SELECT * FROM Customer WHERE Id = 10")) == ["10"]


def test_and_combines_every_condition(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Customer WHERE Balance > 0 AND Active = false")
    assert ids(response) == []
    response = run_query(company, "SELECT * FROM Customer WHERE Balance > 0 AND DisplayName LIKE '%a%'")
    assert ids(response) == ["1", "8", "10"]
    response = run_query(company, "SELECT * FROM Customer WHERE Balance > 0 AND Balance < 300 AND Id > '1'")
    assert ids(response) == ["2"]


def test_boolean_fields(company: Company) -> None:
    assert ids(run_query(company, "SELECT * FROM Customer WHERE Job = true")) == ["8"]
    assert ids(run_query(company, "SELECT * FROM Customer WHERE Job = 'true'")) == ["8"]


def test_reference_fields_compare_on_value(company: Company) -> None:
    assert ids(run_query(company, "SELECT * FROM Invoice WHERE CustomerRef = '1'"), "Invoice") == ["1", "4"]
    assert ids(run_query(company, "SELECT * FROM Invoice WHERE CustomerRef IN ('7', '8')"), "Invoice") == [
        "2",
        "3",
    ]
    assert ids(run_query(company, "SELECT * FROM Customer WHERE ParentRef = '7'")) == ["8"]
    response = run_query(company, "SELECT * FROM Customer WHERE ParentRef = '7' AND Active IN (true, false)")
    assert ids(response) == ["8", "9"]


def test_null_literal_matches_absent_property(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Customer WHERE ParentRef = ' '")
    assert ids(response) == ["1", "2", "7", "10"]


def test_escaped_apostrophe(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Customer WHERE DisplayName = 'Bill\\'s Windsurf Shop'")
    assert ids(response) == ["2"]
    assert response["Customer"][0]["DisplayName"] == "Bill's Windsurf Shop"


# --- dates and timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # customer 1 and 10 share the instant 09:05:12Z, written with -07:00 and +01:00
        ("MetaData.LastUpdatedTime = '2026-05-05T09:05:12Z'", ["1", "10"]),
        ("MetaData.LastUpdatedTime = '2026-05-05T02:05:12-0700'", ["1", "10"]),
        ("Metadata.LastUpdatedTime > '2026-05-05T02:05:12-07:00'", ["8"]),
        ("Metadata.LastUpdatedTime >= '2026-05-05T02:05:12-07:00'", ["1", "8", "10"]),
        ("MetaData.LastUpdatedTime < '2026-05-04T17:00:01Z'", ["2", "7"]),
        ("MetaData.LastUpdatedTime <= '2026-05-04T17:00:00Z'", ["2", "7"]),
        ("MetaData.LastUpdatedTime > '2011-08-10T10:20:30-0700'", ACTIVE_CUSTOMERS),
        # a bare date is midnight in the company's zone (Los Angeles for a US company)
        ("MetaData.LastUpdatedTime >= '2026-05-06'", ["8"]),
        ("MetaData.LastUpdatedTime < '2026-05-05'", ["2", "7"]),
    ],
)
def test_timestamps_compare_as_instants(company: Company, condition: str, expected: list[str]) -> None:
    assert ids(run_query(company, f"SELECT * FROM Customer WHERE {condition}")) == expected


def test_dates_compare_as_dates(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Invoice WHERE TxnDate = '2026-02-01'")
    assert ids(response, "Invoice") == ["2", "3"]
    response = run_query(company, "SELECT * FROM Invoice WHERE TxnDate > '2026-02-01T00:00:00-08:00'")
    assert ids(response, "Invoice") == ["4"]
    response = run_query(
        company, "SELECT * FROM Invoice WHERE TxnDate >= '2026-01-20' AND TxnDate < '2026-03-01'"
    )
    assert ids(response, "Invoice") == ["2", "3"]


# --- active-only default ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("", ACTIVE_CUSTOMERS),
        ("WHERE Active = true", ACTIVE_CUSTOMERS),
        ("WHERE Active = false", ["3", "9"]),
        ("WHERE Active IN (true, false)", ["1", "2", "3", "7", "8", "9", "10"]),
        ("WHERE active != true", None),
    ],
)
def test_name_lists_hide_inactive_rows_unless_active_is_constrained(
    company: Company, condition: str, expected: list[str] | None
) -> None:
    statement = f"SELECT * FROM Customer {condition}"
    if expected is None:
        assert fault_of(company, statement).code == "4000"
    else:
        assert ids(run_query(company, statement)) == expected


def test_rows_without_active_count_as_active(company: Company) -> None:
    assert ids(run_query(company, "SELECT * FROM TaxCode"), "TaxCode") == ["2", "NON", "TAX"]
    active = run_query(company, "SELECT * FROM TaxCode WHERE Active = true")
    assert ids(active, "TaxCode") == ["2", "NON", "TAX"]
    assert ids(run_query(company, "SELECT * FROM TaxCode WHERE Active = false"), "TaxCode") == ["5"]


def test_transactions_are_not_filtered_by_active(company: Company) -> None:
    stored = company.get("Invoice", "2")
    assert stored is not None
    stored["Active"] = False  # meaningless on a transaction; must not hide it
    assert ids(run_query(company, "SELECT * FROM Invoice"), "Invoice") == ["1", "2", "3", "4"]


def test_batch_hidden_rows_are_not_returned(company: Company) -> None:
    company.settings["_batch_hidden"] = {("Customer", "2"), ("Invoice", "1")}
    assert ids(run_query(company, "SELECT * FROM Customer")) == ["1", "7", "8", "10"]
    assert ids(run_query(company, "SELECT * FROM Invoice"), "Invoice") == ["2", "3", "4"]
    assert run_query(company, "SELECT COUNT(*) FROM Customer") == {"totalCount": 4}
    assert run_query(company, "SELECT * FROM Customer WHERE Id = '2'") == {}


# --- ordering -----------------------------------------------------------------------------------


def test_orderby_ascending_and_descending(company: Company) -> None:
    asc = run_query(company, "SELECT * FROM Customer ORDERBY DisplayName")
    assert ids(asc) == ["8", "1", "2", "7", "10"]
    assert ids(run_query(company, "SELECT * FROM Customer ORDERBY DisplayName ASC")) == ids(asc)
    desc = run_query(company, "SELECT * FROM Customer ORDERBY DisplayName DESC")
    assert ids(desc) == ["10", "7", "2", "1", "8"]


def test_orderby_numbers_and_ids_numerically(company: Company) -> None:
    by_balance = run_query(company, "SELECT * FROM Customer ORDERBY Balance DESC")
    assert ids(by_balance) == ["10", "8", "1", "2", "7"]
    assert ids(run_query(company, "SELECT * FROM Customer ORDERBY Id DESC")) == ["10", "8", "7", "2", "1"]


def test_orderby_several_keys(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Invoice ORDERBY TxnDate DESC, TotalAmt")
    assert ids(response, "Invoice") == ["4", "3", "2", "1"]
    response = run_query(company, "SELECT * FROM Invoice ORDERBY TxnDate, TotalAmt DESC")
    assert ids(response, "Invoice") == ["1", "2", "3", "4"]


def test_orderby_timestamps_by_instant_and_ties_by_id(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Customer ORDERBY MetaData.LastUpdatedTime DESC")
    # 1 and 10 are the same instant: Id order breaks the tie
    assert ids(response) == ["8", "1", "10", "2", "7"]


def test_orderby_missing_values_first_ascending(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Customer ORDER BY CompanyName, Id DESC")
    assert ids(response) == ["10", "7", "2", "1", "8"]


# --- paging -------------------------------------------------------------------------------------


def test_paging_walks_the_result(company: Company) -> None:
    first = run_query(company, "SELECT * FROM Customer STARTPOSITION 1 MAXRESULTS 2")
    assert (ids(first), first["startPosition"], first["maxResults"]) == (["1", "2"], 1, 2)
    second = run_query(company, "SELECT * FROM Customer STARTPOSITION 3 MAXRESULTS 2")
    assert (ids(second), second["startPosition"], second["maxResults"]) == (["7", "8"], 3, 2)
    last = run_query(company, "SELECT * FROM Customer MAXRESULTS 2 STARTPOSITION 5")
    assert (ids(last), last["startPosition"], last["maxResults"]) == (["10"], 5, 1)
    assert run_query(company, "SELECT * FROM Customer STARTPOSITION 6 MAXRESULTS 2") == {}


def test_paging_applies_after_ordering(company: Company) -> None:
    response = run_query(
        company, "SELECT * FROM Customer ORDERBY DisplayName DESC STARTPOSITION 2 MAXRESULTS 2"
    )
    assert ids(response) == ["7", "2"]


def test_no_match_is_an_empty_response(company: Company) -> None:
    assert run_query(company, "SELECT * FROM Customer WHERE DisplayName = 'Nobody'") == {}


def test_default_page_is_100_and_maximum_is_1000(company: Company) -> None:
    for n in range(1, 1101):
        company.insert("Invoice", {"DocNumber": f"X{n}", "TotalAmt": n}, NOW)
    default = run_query(company, "SELECT * FROM Invoice")
    assert default["maxResults"] == 100
    assert len(default["Invoice"]) == 100
    biggest = run_query(company, "SELECT * FROM Invoice MAXRESULTS 1000")
    assert biggest["maxResults"] == 1000
    assert [r["Id"] for r in biggest["Invoice"][:5]] == ["1", "2", "3", "4", "5"]


def test_startposition_zero_reads_as_one(company: Company) -> None:
    response = run_query(company, "SELECT * FROM Customer STARTPOSITION 0 MAXRESULTS 1")
    assert (ids(response), response["startPosition"]) == (["1"], 1)


# --- count --------------------------------------------------------------------------------------


def test_count(company: Company) -> None:
    assert run_query(company, "SELECT COUNT(*) FROM Customer") == {"totalCount": 5}
    assert run_query(company, "select count(*) from Customer where Active = false") == {"totalCount": 2}
    assert run_query(company, "SELECT COUNT(*) FROM Invoice WHERE TotalAmt > 50") == {"totalCount": 2}
    assert run_query(company, "SELECT COUNT(*) FROM Invoice WHERE TotalAmt > 5000") == {"totalCount": 0}
    assert run_query(company, "SELECT COUNT(*) FROM Customer MAXRESULTS 1") == {"totalCount": 5}


# --- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "code", "detail_part"),
    [
        ("SELECT * FROM Customer WHERE Id = '1' OR Id = '2'", "4000", "OR is not supported"),
        ("SELECT * FROM Customer WHERE (Id = '1')", "4000", "parentheses is not supported"),
        ("SELECT * FROM Customer WHERE NOT Active = true", "4000", "NOT is not supported"),
        ("SELECT * FROM Customer WHERE DisplayName NOT LIKE 'A%'", "4000", "NOT is not supported"),
        ("SELECT COUNT(*) FROM Customer GROUP BY Job", "4000", "GROUP BY is not supported"),
        ("SELECT * FROM Customer JOIN Invoice", "4000", "JOIN is not supported"),
        ("SELECT * FROM Customer WHERE Id <> '1'", "4000", "The operator <> is not supported"),
        ("SELECT * Customer", "4000", 'Encountered "Customer" at line 1, column 10'),
        ("SELECT * FROM Customer WHERE", "4000", 'Encountered "<EOF>"'),
        ("SELECT * FROM Customer WHERE DisplayName = Bill", "4000", "Was expecting a value"),
        ("SELECT * FROM Customer WHERE DisplayName = 'Bill", "4000", "Lexical error at line 1, column 49"),
        ('SELECT * FROM Customer WHERE DisplayName = "Bill"', "4000", "single quotes"),
        ("SELECT * FROM Customer WHERE DisplayName LIKE %25Bill", "4000", 'Encountered: "%" (37)'),
        ("SELECT * FROM Customer MAXRESULTS 1.5", "4000", "Was expecting an integer"),
        ("SELECT * FROM Customer MAXRESULTS 5 MAXRESULTS 6", "4000", "MAXRESULTS may appear only once"),
        ("", "4000", 'Encountered "<EOF>" at line 1, column 1. Was expecting "SELECT"'),
        ("SELECT * FROM Customer MAXRESULTS 1500", "4001", "value 1500 is too large"),
        ("SELECT * FROM Customer MAXRESULTS 0", "4001", "value 0 is too small"),
        ("SELECT * FROM Customer MAXRESULTS -3", "4001", "value -3 is too small"),
        ("SELECT * FROM Customer STARTPOSITION -1", "4001", "value -1 is too small"),
        ("SELECT * FROM customer", "4001", "Metadata not found for Entity: customer"),
        ("SELECT * FROM Customers", "4001", "Metadata not found for Entity: Customers"),
        ("SELECT * FROM TaxService", "4001", "Metadata not found for Entity: TaxService"),
        ("SELECT * FROM TimeActivity", "4000", "Entity TimeActivity is queryable"),
    ],
)
def test_faults(company: Company, statement: str, code: str, detail_part: str) -> None:
    fault = fault_of(company, statement)
    assert fault.status == 400
    assert fault.fault_type == "ValidationFault"
    assert fault.code == code
    assert detail_part in fault.errors[0].detail
    assert fault.errors[0].message == ("Error parsing query" if code == "4000" else "Invalid query")


def test_maxresults_too_large_has_qbo_wording(company: Company) -> None:
    fault = fault_of(company, "SELECT * FROM Invoice MAXRESULTS 1500")
    expected = "QueryValidationError: value 1500 is too large. Max allowed value is 1000"
    assert fault.errors[0].detail == expected


def test_unterminated_string_names_where_it_started(company: Company) -> None:
    fault = fault_of(company, "SELECT * FROM Customer WHERE DisplayName = 'Bill\\'s")
    assert fault.code == "4000"
    assert "starting at line 1, column 44 is not closed" in fault.errors[0].detail


def test_syntax_errors_come_before_entity_checks(company: Company) -> None:
    assert fault_of(company, "SELECT * FROM Nope WHERE A = 1 OR B = 2").code == "4000"


# --- tokenizer and parser details ---------------------------------------------------------------


def test_tokenizer_positions_and_escapes() -> None:
    tokens = tokenize("SELECT *\nFROM X WHERE N = 'a\\'b\\\\c\\d' AND Q >= -2.5")
    assert [(t.kind, t.text) for t in tokens] == [
        ("word", "SELECT"),
        ("punct", "*"),
        ("word", "FROM"),
        ("word", "X"),
        ("word", "WHERE"),
        ("word", "N"),
        ("op", "="),
        ("string", "a'b\\c\\d"),
        ("word", "AND"),
        ("word", "Q"),
        ("op", ">="),
        ("number", "-2.5"),
        ("eof", ""),
    ]
    assert (tokens[2].line, tokens[2].column) == (2, 1)
    assert (tokens[7].line, tokens[7].column) == (2, 18)


def test_parse_tree() -> None:
    query = parse(
        "SELECT Id, MetaData.CreateTime FROM Invoice WHERE CustomerRef IN ('1', 2) AND Paid = true "
        "ORDERBY TxnDate DESC, Id STARTPOSITION 3 MAXRESULTS 7"
    )
    assert query.entity == "Invoice"
    assert not query.count
    assert query.projection == (("Id",), ("MetaData", "CreateTime"))
    assert [(c.path, c.op, [(v.kind, v.text) for v in c.values]) for c in query.conditions] == [
        (("CustomerRef",), "IN", [("string", "1"), ("number", "2")]),
        (("Paid",), "=", [("boolean", "true")]),
    ]
    assert [(k.path, k.descending) for k in query.order] == [(("TxnDate",), True), (("Id",), False)]
    assert (query.start_position, query.max_results) == (3, 7)
