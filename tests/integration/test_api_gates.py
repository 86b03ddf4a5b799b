"""The gates of the Accounting API over real sockets: auth, limits, faults, requestid, batch, CDC."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest

from qbo_sandbox.server import SandboxServer
from tests.qbo_helpers import Connection, connect

TIME_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")


@pytest.fixture
def conn(sandbox_server: SandboxServer) -> Iterator[Connection]:
    connection = connect(sandbox_server)
    yield connection
    connection.close()


def control(server: SandboxServer, method: str, path: str, body: Any = None) -> httpx2.Response:
    return httpx2.request(method, f"{server.url}/_sandbox/{path}", json=body)


def new_customer(name: str) -> dict[str, Any]:
    return {"DisplayName": name, "PrimaryEmailAddr": {"Address": "a@example.com"}}


# --- authentication and authorization -------------------------------------------------------


def test_missing_token_is_the_gateways_lowercase_401(conn: Connection) -> None:
    answer = httpx2.get(f"{conn.server.url}{conn.base}/customer/1")
    assert answer.status_code == 401
    body = answer.json()
    assert list(body) == [
        "warnings",
        "intuitObject",
        "fault",
        "report",
        "queryResponse",
        "batchItemResponse",
        "attachableResponse",
        "syncErrorResponse",
        "requestId",
        "time",
        "status",
        "cdcresponse",
    ]
    assert body["fault"]["type"] == "AUTHENTICATION"
    error = body["fault"]["error"][0]
    assert error["code"] == "3200"
    assert error["message"] == "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    assert isinstance(body["time"], int)
    assert answer.headers["intuit_tid"]


def test_token_of_another_realm_is_403_3100(sandbox_server: SandboxServer, conn: Connection) -> None:
    other = connect(sandbox_server)
    try:
        answer = conn.http.get(f"/v3/company/{other.realm}/customer/1")
    finally:
        other.close()
    assert answer.status_code == 403
    body = answer.json()
    assert body["fault"]["type"] == "SERVICE"
    assert body["fault"]["error"][0]["code"] == "3100"
    assert body["fault"]["error"][0]["message"].startswith("message=ApplicationAuthorizationFailed")


def test_success_carries_time_with_offset_and_intuit_tid(conn: Connection) -> None:
    answer = conn.get("customer/1")
    assert answer.status_code == 200
    assert TIME_WITH_OFFSET.match(answer.json()["time"])
    assert answer.headers["intuit_tid"]


# --- limits -------------------------------------------------------------------------------


def test_requests_per_second_limit_answers_qbos_429_json(conn: Connection) -> None:
    assert control(conn.server, "POST", "limits", {"requests_per_second": 2}).status_code == 200
    statuses = [conn.get("customer/1").status_code for _ in range(3)]
    assert statuses[:2] == [200, 200]
    assert statuses[2] == 429
    body = conn.get("customer/1").json()
    assert body["fault"] == {
        "error": [
            {
                "message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                "detail": "The request limit was reached.  Try again later",
                "code": "3001",
                "element": None,
            }
        ],
        "type": "SERVICE",
    }
    counters = control(conn.server, "GET", f"counters?realm={conn.realm}").json()
    assert counters["throttled"] == 2


def test_throttle_can_be_sent_as_xml_as_qbo_historically_did(conn: Connection) -> None:
    control(conn.server, "POST", "limits", {"requests_per_second": 1, "throttle_format": "xml"})
    conn.get("customer/1")
    answer = conn.get("customer/1")
    assert answer.status_code == 429
    assert answer.headers["content-type"].startswith("application/xml")
    assert '<Fault type="SERVICE"><Error code="3001">' in answer.text
    assert "message=ThrottleExceeded; errorCode=003001; statusCode=429" in answer.text


def test_more_than_the_concurrent_limit_in_flight_is_throttled(conn: Connection) -> None:
    control(conn.server, "POST", "limits", {"concurrent": 2, "requests_per_second": 0})
    control(conn.server, "POST", "faults", {"kind": "latency", "latency_ms": 400, "count": 4})
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        with httpx2.Client(base_url=conn.server.url, headers=dict(conn.http.headers)) as http:
            status = http.get(f"{conn.base}/customer/1").status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 200, 429, 429]


def test_batch_requests_per_minute_limit(conn: Connection) -> None:
    control(conn.server, "POST", "limits", {"batch_per_minute": 1})
    batch = {"BatchItemRequest": [{"bId": "q", "Query": "SELECT * FROM Term"}]}
    assert conn.post("batch", batch).status_code == 200
    assert conn.post("batch", batch).status_code == 429
    assert conn.get("customer/1").status_code == 200  # ordinary requests are not batch-limited


def test_time_scale_makes_a_minute_window_pass_quickly(conn: Connection) -> None:
    control(
        conn.server, "POST", "limits", {"requests_per_minute": 1, "requests_per_second": 0, "time_scale": 600}
    )
    assert conn.get("customer/1").status_code == 200
    assert conn.get("customer/1").status_code == 429
    threading.Event().wait(0.15)  # 0.15 s x 600 = 90 s of sandbox time
    assert conn.get("customer/1").status_code == 200


# --- injected faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "fault_type", "code"),
    [(500, "SystemFault", "10000"), (503, "SystemFault", "10000")],
)
def test_injected_server_errors_use_qbos_fault_body(
    conn: Connection, status: int, fault_type: str, code: str
) -> None:
    control(conn.server, "POST", "faults", {"kind": "status", "status": status, "entity": "customer"})
    answer = conn.get("customer/1")
    assert answer.status_code == status
    body = answer.json()
    assert body["Fault"]["type"] == fault_type
    assert body["Fault"]["Error"][0]["code"] == code
    assert set(body["Fault"]["Error"][0]) == {"Message", "Detail", "code", "element"}
    assert conn.get("customer/1").status_code == 200  # count=1: only the next request


def test_injected_fault_matches_only_its_entity_and_operation(conn: Connection) -> None:
    control(
        conn.server,
        "POST",
        "faults",
        {"kind": "status", "status": 401, "entity": "invoice", "operation": "create"},
    )
    assert conn.get("customer/1").status_code == 200
    assert conn.query("SELECT * FROM Term").status_code == 200
    answer = conn.post("invoice", {"CustomerRef": {"value": "1"}})
    assert answer.status_code == 401
    assert answer.json()["fault"]["error"][0]["code"] == "3200"


def test_dropped_connection(conn: Connection) -> None:
    control(conn.server, "POST", "faults", {"kind": "drop"})
    with pytest.raises(httpx2.TransportError):
        conn.get("customer/1")
    assert conn.get("customer/1").status_code == 200


def test_commit_then_fail_applies_the_write_and_a_requestid_retry_replays_it(conn: Connection) -> None:
    control(conn.server, "POST", "faults", {"kind": "commit_then_fail", "status": 500, "entity": "customer"})
    first = conn.post("customer", new_customer("Committed Then Failed"), requestid="rq-1")
    assert first.status_code == 500
    retry = conn.post("customer", new_customer("Committed Then Failed"), requestid="rq-1")
    assert retry.status_code == 200
    created = retry.json()["Customer"]
    found = conn.query("SELECT * FROM Customer WHERE DisplayName = 'Committed Then Failed'").json()
    assert [c["Id"] for c in found["QueryResponse"]["Customer"]] == [created["Id"]]


def test_commit_then_drop_without_requestid_makes_a_retry_fail_on_the_duplicate(conn: Connection) -> None:
    control(conn.server, "POST", "faults", {"kind": "commit_then_fail", "status": 0})
    with pytest.raises(httpx2.TransportError):
        conn.post("customer", new_customer("Dropped After Commit"))
    retry = conn.post("customer", new_customer("Dropped After Commit"))
    assert retry.status_code == 400
    assert retry.json()["Fault"]["Error"][0]["code"] == "6240"


def test_fault_rule_validation_is_precise(sandbox_server: SandboxServer) -> None:
    answer = control(sandbox_server, "POST", "faults", {"kind": "explode", "count": 0})
    assert answer.status_code == 400
    fields = {p["field"] for p in answer.json()["problems"]}
    assert fields == {"kind", "count"}
    assert control(sandbox_server, "GET", "faults").json()["faults"] == []


# --- requestid ------------------------------------------------------------------------------


def test_repeated_requestid_replays_the_original_bytes(conn: Connection) -> None:
    first = conn.post("customer", new_customer("Replay Me"), requestid="abc-1")
    second = conn.post("customer", new_customer("Replay Me"), requestid="abc-1")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    other = conn.post("customer", new_customer("Another One"), requestid="abc-2")
    assert other.json()["Customer"]["Id"] != first.json()["Customer"]["Id"]


def test_requestids_are_per_realm(sandbox_server: SandboxServer, conn: Connection) -> None:
    other = connect(sandbox_server)
    try:
        a = conn.post("customer", new_customer("Realm A Customer"), requestid="same")
        b = other.post("customer", new_customer("Realm B Customer"), requestid="same")
    finally:
        other.close()
    assert a.json()["Customer"]["DisplayName"] == "Realm A Customer"
    assert b.json()["Customer"]["DisplayName"] == "Realm B Customer"


def test_requestid_ignore_mode_emulates_reported_duplicates(conn: Connection) -> None:
    control(conn.server, "POST", "settings", {"requestid_mode": "ignore"})
    payment = {"CustomerRef": {"value": "1"}, "TotalAmt": 10}
    first = conn.post("payment", payment, requestid="pay-1")
    second = conn.post("payment", payment, requestid="pay-1")
    assert first.status_code == second.status_code == 200
    assert first.json()["Payment"]["Id"] != second.json()["Payment"]["Id"]


def test_requestid_longer_than_50_is_refused(conn: Connection) -> None:
    answer = conn.post("customer", new_customer("Too Long Id"), requestid="x" * 51)
    assert answer.status_code == 400
    assert answer.json()["Fault"]["Error"][0]["element"] == "requestid"


def test_requestid_replay_expires_after_its_ttl(conn: Connection) -> None:
    conn.post("payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 5}, requestid="ttl-1")
    control(conn.server, "POST", "clock/advance", {"hours": 25})
    refreshed = conn.server.sandbox.oauth  # access tokens expired with the clock; reconnect
    del refreshed
    again = connect(conn.server, realmId=conn.realm)
    try:
        answer = again.post("payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 5}, requestid="ttl-1")
        ids = again.query("SELECT * FROM Payment WHERE TotalAmt = '5'").json()["QueryResponse"]
    finally:
        again.close()
    assert answer.status_code == 200
    assert len(ids["Payment"]) == 2


# --- minorversion ---------------------------------------------------------------------------


def test_minor_versions_below_75_are_served_as_75(conn: Connection) -> None:
    old = conn.http.get(f"{conn.base}/customer/1", params={"minorversion": "4"})
    missing = httpx2.get(
        f"{conn.server.url}{conn.base}/customer/1",
        headers={"Authorization": conn.http.headers["Authorization"]},
    )
    assert old.status_code == missing.status_code == 200
    assert old.json()["Customer"] == missing.json()["Customer"]
    endpoints = control(conn.server, "GET", f"counters?realm={conn.realm}").json()["by_endpoint"]
    assert endpoints["minorversion 75"] >= 2
    assert not any(k.startswith("minorversion 4") for k in endpoints)


# --- batch ----------------------------------------------------------------------------------


def test_batch_items_run_in_order_with_faults_inside_http_200(conn: Connection) -> None:
    batch = {
        "BatchItemRequest": [
            {"bId": "1", "operation": "create", "Customer": new_customer("Batch One")},
            {"bId": "2", "operation": "create", "Customer": new_customer("Batch One")},
            {"bId": "3", "Query": "SELECT * FROM Customer WHERE DisplayName = 'Batch One'"},
            {"bId": "4", "operation": "create", "Customer": {"DisplayName": "Bad:Name"}},
        ]
    }
    answer = conn.post("batch", batch)
    assert answer.status_code == 200
    items = {i["bId"]: i for i in answer.json()["BatchItemResponse"]}
    assert items["1"]["Customer"]["DisplayName"] == "Batch One"
    assert items["2"]["Fault"]["Error"][0]["code"] == "6240"
    assert items["2"]["Fault"]["type"] == "ValidationFault"
    # items do not see each other's creations
    assert items["3"]["QueryResponse"] == {}
    assert "Fault" in items["4"]
    later = conn.query("SELECT * FROM Customer WHERE DisplayName = 'Batch One'").json()
    assert len(later["QueryResponse"]["Customer"]) == 1


def test_batch_item_cannot_reference_a_sibling_creation(conn: Connection) -> None:
    created = conn.post(
        "batch",
        {
            "BatchItemRequest": [
                {"bId": "p", "operation": "create", "Customer": new_customer("Parent In Batch")},
            ]
        },
    ).json()["BatchItemResponse"][0]["Customer"]
    batch = {
        "BatchItemRequest": [
            {"bId": "a", "operation": "create", "Customer": new_customer("Fresh Parent")},
            {
                "bId": "b",
                "operation": "update",
                "Customer": {
                    "Id": str(int(created["Id"]) + 1),
                    "SyncToken": "0",
                    "sparse": True,
                    "Notes": "x",
                },
            },
        ]
    }
    items = {i["bId"]: i for i in conn.post("batch", batch).json()["BatchItemResponse"]}
    assert items["a"]["Customer"]["Id"] == str(int(created["Id"]) + 1)
    assert items["b"]["Fault"]["Error"][0]["code"] == "610"


def test_batch_over_30_items_is_refused(conn: Connection) -> None:
    items = [{"bId": str(i), "Query": "SELECT * FROM Term"} for i in range(31)]
    answer = conn.post("batch", {"BatchItemRequest": items})
    assert answer.status_code == 400
    assert answer.json()["Fault"]["Error"][0]["element"] == "BatchItemRequest"
    assert conn.post("batch", {"BatchItemRequest": items[:30]}).status_code == 200


def test_batch_requestid_replays_the_whole_batch(conn: Connection) -> None:
    batch = {
        "BatchItemRequest": [{"bId": "1", "operation": "create", "Customer": new_customer("Batch Replay")}]
    }
    first = conn.post("batch", batch, requestid="b-1")
    second = conn.post("batch", batch, requestid="b-1")
    assert first.content == second.content
    too_long = conn.post("batch", batch, requestid="y" * 37)
    assert too_long.status_code == 400


# --- CDC ------------------------------------------------------------------------------------


def _since(conn: Connection, minutes: int = 1) -> str:
    return (conn.server.sandbox.clock.now() - timedelta(minutes=minutes)).isoformat()


def test_cdc_returns_the_latest_state_of_changed_entities(conn: Connection) -> None:
    since = _since(conn)
    created = conn.post("customer", new_customer("Cdc Customer")).json()["Customer"]
    conn.post("customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "changed"})
    answer = conn.get("cdc", entities="Customer,Invoice", changedSince=since)
    assert answer.status_code == 200
    blocks = answer.json()["CDCResponse"][0]["QueryResponse"]
    customers = next(b["Customer"] for b in blocks if "Customer" in b)
    assert [(c["Id"], c["SyncToken"], c["Notes"]) for c in customers] == [(created["Id"], "1", "changed")]


def test_cdc_with_nothing_changed(conn: Connection) -> None:
    answer = conn.get("cdc", entities="Customer", changedSince=_since(conn, 0))
    assert answer.json()["CDCResponse"] == [{"QueryResponse": [{}]}]


def test_cdc_refuses_windows_older_than_30_days_and_unsupported_entities(conn: Connection) -> None:
    old = (conn.server.sandbox.clock.now() - timedelta(days=31)).isoformat()
    assert conn.get("cdc", entities="Customer", changedSince=old).status_code == 400
    taxcode = conn.get("cdc", entities="TaxCode", changedSince=_since(conn))
    assert taxcode.status_code == 400
    assert conn.get("cdc", entities="Customer").status_code == 400


def test_cdc_caps_a_response_at_1000_objects(conn: Connection) -> None:
    since = _since(conn)
    company = conn.server.sandbox.company(conn.realm)
    assert company is not None
    now = conn.server.sandbox.clock.now()
    with company.lock:
        for i in range(1005):
            company.insert("Customer", {"DisplayName": f"Bulk {i}", "Active": True}, now)
    blocks = conn.get("cdc", entities="Customer", changedSince=since).json()["CDCResponse"][0]
    assert len(blocks["QueryResponse"][0]["Customer"]) == 1000


def test_cdc_shows_deleted_transactions_as_qbo_does(conn: Connection) -> None:
    since = _since(conn)
    payment = conn.post("payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 7}).json()["Payment"]
    deleted = conn.post(
        "payment", {"Id": payment["Id"], "SyncToken": payment["SyncToken"]}, operation="delete"
    )
    assert deleted.json()["Payment"] == {"domain": "QBO", "status": "Deleted", "Id": payment["Id"]}
    blocks = conn.get("cdc", entities="Payment", changedSince=since).json()["CDCResponse"][0]
    rows = blocks["QueryResponse"][0]["Payment"]
    assert rows[0]["status"] == "Deleted"
    assert set(rows[0]) == {"domain", "status", "Id", "MetaData"}


# --- counters, paths, control ----------------------------------------------------------------


def test_counters_split_metered_reads_from_writes(conn: Connection) -> None:
    control(conn.server, "DELETE", "counters")
    conn.get("customer/1")
    conn.query("SELECT * FROM Customer")
    conn.post("customer", new_customer("Counted"))
    conn.post("batch", {"BatchItemRequest": [{"bId": "1", "Query": "SELECT * FROM Term"}]})
    counters = control(conn.server, "GET", f"counters?realm={conn.realm}").json()
    assert counters["requests"] == 4
    assert counters["metered_reads"] == 3
    assert counters["writes"] == 1
    assert counters["batch_requests"] == 1


def test_unknown_v3_path_is_unsupported_operation(conn: Connection) -> None:
    answer = conn.get("nosuchthing/1")
    assert answer.status_code == 400
    assert answer.json()["Fault"]["Error"][0]["code"] == "500"


def test_malformed_json_body_is_a_validation_fault(conn: Connection) -> None:
    answer = conn.http.post(
        f"{conn.base}/customer", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["Fault"]["type"] == "ValidationFault"


def test_control_company_lifecycle_and_validation(sandbox_server: SandboxServer) -> None:
    bad = control(sandbox_server, "POST", "companies", {"country": "FR", "extra": 1})
    assert bad.status_code == 400
    assert {p["field"] for p in bad.json()["problems"]} == {"country", "extra"}
    assert control(sandbox_server, "GET", "companies").json()["companies"] == []
    made = control(sandbox_server, "POST", "companies", {"country": "GB", "realm_id": "123"})
    assert made.status_code == 201
    assert made.json()["country"] == "GB"
    assert control(sandbox_server, "POST", "companies", {"realm_id": "123"}).status_code == 409
    listed = control(sandbox_server, "GET", "companies/123/entities/customer").json()
    assert listed["Customer"]
    assert control(sandbox_server, "GET", "companies/999/entities/customer").status_code == 404
    assert control(sandbox_server, "DELETE", "companies/123").status_code == 200


def test_a_change_made_in_qbo_itself_is_journalled(conn: Connection) -> None:
    since = _since(conn)
    answer = control(
        conn.server, "POST", f"companies/{conn.realm}/entities/customer", new_customer("Made In The Ui")
    )
    assert answer.status_code == 200
    blocks = conn.get("cdc", entities="Customer", changedSince=since).json()["CDCResponse"][0]
    assert blocks["QueryResponse"][0]["Customer"][0]["DisplayName"] == "Made In The Ui"
    refused = control(
        conn.server, "POST", f"companies/{conn.realm}/entities/customer", new_customer("Made In The Ui")
    )
    assert refused.status_code == 400


def test_clock_advance_validation(sandbox_server: SandboxServer) -> None:
    assert control(sandbox_server, "POST", "clock/advance", {"days": -1}).status_code == 400
    assert control(sandbox_server, "POST", "clock/advance", {}).status_code == 400
    before = control(sandbox_server, "GET", "clock").json()["offsetSeconds"]
    control(sandbox_server, "POST", "clock/advance", {"days": 2})
    assert control(sandbox_server, "GET", "clock").json()["offsetSeconds"] == before + 172800


def test_reset_forgets_companies_and_faults(conn: Connection) -> None:
    control(conn.server, "POST", "faults", {"kind": "drop", "count": 5})
    assert control(conn.server, "POST", "reset").status_code == 200
    assert control(conn.server, "GET", "faults").json()["faults"] == []
    assert control(conn.server, "GET", "companies").json()["companies"] == []


def test_state_persists_to_a_file_across_restarts(tmp_path: Any) -> None:
    from qbo_sandbox.settings import SandboxSettings

    state = tmp_path / "state.json"
    first = SandboxServer(SandboxSettings(port=0, state_file=str(state))).start()
    conn = connect(first)
    created = conn.post("customer", new_customer("Persisted Customer")).json()["Customer"]
    conn.close()
    first.stop()
    second = SandboxServer(SandboxSettings(port=0, state_file=str(state))).start()
    try:
        company = second.sandbox.company(conn.realm)
        assert company is not None
        stored = company.get("Customer", created["Id"])
        assert stored is not None
        assert stored["DisplayName"] == "Persisted Customer"
        again = connect(second, realmId=conn.realm)
        reread = again.get(f"customer/{created['Id']}").json()["Customer"]
        again.close()
        assert reread["SyncToken"] == "0"
    finally:
        second.stop()
