"""``qbo-link tenants|status|postings|report|push|retry`` in process, through API Gateway's route
choice and the real handlers (moto + the QBO sandbox): what an operator sees, what a script gets
with ``--json``, and one clear line (no traceback) when something is refused."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cli_fixtures import CliResult, Gateway, run_cli
from tests.integration.push_fixtures import PushWorld, push_world

__all__ = ["push_world"]

TENANT = "firm-1"
DAY = "2026-11-20"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich folds cells to the terminal's width


@pytest.fixture
def gateway(push_world: PushWorld) -> Gateway:
    return Gateway()


def cli(gateway: Gateway, capsys: pytest.CaptureFixture[str], *argv: str) -> CliResult:
    return run_cli(["--api-url", "http://127.0.0.1:8700", *argv], gateway.transport, capsys)


def connect(push: PushWorld, tenant: str = TENANT) -> str:
    realm = push.world.connect(tenant)
    push.links.link(tenant, "work_code", "W1", "1")
    settings = push.api("PUT", f"/tenants/{tenant}/settings", body={"auto_create_customers": True})
    assert settings.status == 200, settings.body
    return realm


def invoice(app_id: str, amount: str, *, client_id: str = "c1", tax: str = "0.00") -> dict[str, Any]:
    total = Decimal(amount) + Decimal(tax)
    return {
        "id": app_id,
        "version": 1,
        "number": f"A-{app_id}",
        "date": DAY,
        "client_id": client_id,
        "lines": [
            {"line_id": "1", "kind": "work", "code": "W1", "amount": amount, "taxable": Decimal(tax) > 0},
        ],
        "tax_total": tax,
        "total": str(total),
    }


def documents_file(tmp_path: Path, **kinds: list[dict[str, Any]]) -> Path:
    path = tmp_path / "documents.json"
    path.write_text(json.dumps(kinds))
    return path


def push_one_invoice(
    push: PushWorld, gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> str:
    """The tenant connected, client c1 and invoice i1 (100.00) pushed through the CLI and posted;
    returns the realm."""
    realm = connect(push)
    path = documents_file(
        tmp_path,
        clients=[{"id": "c1", "version": 1, "type": "client", "company_name": "Acme Law"}],
        invoices=[invoice("i1", "100.00")],
    )
    assert cli(gateway, capsys, "push", TENANT, str(path)).code == 0
    push.drain()
    return realm


def qbo_invoices(push: PushWorld, realm: str) -> dict[str, dict[str, Any]]:
    return {
        i["DocNumber"]: i for i in push.entities(realm, "Invoice") if i.get("DocNumber", "").startswith("A-")
    }


# --- tenants and status -------------------------------------------------------------------------


def test_tenants_prints_a_table_and_json_is_the_apis_answer(
    push_world: PushWorld, gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    realm = connect(push_world)
    table = cli(gateway, capsys, "tenants")
    assert table.code == 0, table.err
    [row] = [line for line in table.out.splitlines() if TENANT in line]
    assert realm in row
    assert "healthy" in row
    assert "1 tenant(s)" in table.out
    as_json = cli(gateway, capsys, "tenants", "--json")
    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out) == push_world.api("GET", "/tenants").json()


def test_status_shows_the_connection_the_posting_counts_and_the_latest_exchange(
    push_world: PushWorld, gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    realm = push_one_invoice(push_world, gateway, capsys, tmp_path)
    status = cli(gateway, capsys, "status", TENANT)
    assert status.code == 0, status.err
    assert "connected, healthy" in status.out
    assert f"(realm {realm})" in status.out
    [total_row] = [line for line in status.out.splitlines() if line.strip().startswith("all")]
    assert total_row.split() == ["all", "2", "2"]  # posted, total
    assert "Latest exchange: push succeeded" in status.out
    assert "Onboarding" in status.out  # pending: this world's onboard function never ran
    as_json = json.loads(cli(gateway, capsys, "status", TENANT, "--json").out)
    assert as_json["connection"]["realm_id"] == realm
    assert as_json["connection"]["onboarding"]["state"] == "pending"
    assert as_json["postings_summary"] == push_world.api("GET", f"/tenants/{TENANT}/postings/summary").json()
    assert as_json["latest_exchange"]["exchange"]["source"] == "push"


def test_the_onboarding_line_says_each_state() -> None:
    from qbo_link_cli.operator import onboarding_line

    assert onboarding_line(None) == "not recorded"
    assert onboarding_line({"state": "pending"}) == "[yellow]pending[/]"
    running = {"state": "running", "started_at": "2026-03-02T14:05:10+00:00"}
    assert onboarding_line(running) == "[yellow]running[/] since 2026-03-02 14:05"
    finished = {
        "state": "finished",
        "finished_at": "2026-03-02T14:05:15+00:00",
        "read": {"client": 26, "vendor": 4},
        "linked": {"client": 3},
    }
    assert onboarding_line(finished) == "[green]finished[/] 2026-03-02 14:05: 30 QBO entities read, 3 linked"
    failed = {"state": "failed", "failed_at": "2026-03-02T14:05:15+00:00", "error": "QboError: down"}
    assert onboarding_line(failed) == "[red]failed[/] 2026-03-02 14:05: QboError: down"


# --- push -----------------------------------------------------------------------------------------


def test_push_sends_a_json_file_in_dependency_order_and_says_what_waits(
    push_world: PushWorld, gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    realm = connect(push_world)
    waiting = invoice("i3", "30.00")
    waiting["lines"][0]["code"] = "W9"  # a work code with no QBO item
    path = documents_file(
        tmp_path,
        payments=[
            {
                "id": "p1",
                "version": 1,
                "client_id": "c1",
                "date": DAY,
                "amount": "60.00",
                "applications": [{"invoice_id": "i1", "amount": "60.00"}],
            }
        ],
        invoices=[invoice("i1", "100.00"), invoice("i2", "250.50", client_id="s1"), waiting],
        clients=[
            {"id": "s1", "version": 1, "type": "client", "company_name": "Acme Site", "parent_id": "c1"},
            {"id": "c1", "version": 1, "type": "client", "company_name": "Acme Law"},
        ],
    )
    pushed = cli(gateway, capsys, "push", TENANT, str(path))
    assert pushed.code == 0, pushed.err
    [request] = gateway.requests  # one bulk request, the documents in sending order
    assert request.url.path == f"/v1/tenants/{TENANT}/documents"
    sent = [(item["kind"], item["document"]["id"]) for item in json.loads(request.content)["documents"]]
    assert sent == [
        ("client", "c1"),
        ("client", "s1"),
        ("invoice", "i1"),
        ("invoice", "i2"),
        ("invoice", "i3"),
        ("payment", "p1"),
    ]
    assert "Pushed 6 document(s)" in pushed.out
    assert "item_not_mapped (code=W9" in pushed.out
    push_world.drain()
    posted = qbo_invoices(push_world, realm)
    assert posted["A-i1"]["TotalAmt"] == Decimal("100.00")
    assert posted["A-i1"]["Balance"] == Decimal("40.00")
    assert posted["A-i2"]["TotalAmt"] == Decimal("250.50")
    assert "A-i3" not in posted


def test_push_sends_a_bulk_request_again_when_the_answer_was_lost_and_nothing_is_doubled(
    push_world: PushWorld, gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    realm = connect(push_world)
    path = documents_file(
        tmp_path,
        clients=[{"id": "c1", "version": 1, "type": "client", "company_name": "Acme Law"}],
        invoices=[invoice("i1", "100.00")],
    )
    gateway.lost = 1  # the first request is taken, its answer lost (a 503 after the handler ran)
    pushed = cli(gateway, capsys, "push", TENANT, str(path))
    assert pushed.code == 0, pushed.err
    assert [r.url.path for r in gateway.requests] == [f"/v1/tenants/{TENANT}/documents"] * 2
    assert "Pushed 2 document(s)" in pushed.out
    push_world.drain()
    assert qbo_invoices(push_world, realm)["A-i1"]["TotalAmt"] == Decimal("100.00")
    assert len([c for c in push_world.entities(realm, "Customer") if c["DisplayName"] == "Acme Law"]) == 1


def test_push_reads_csv_rows_as_documents_with_their_lines_and_applications(
    push_world: PushWorld, gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    realm = connect(push_world)
    path = tmp_path / "documents.csv"
    path.write_text(
        "kind,id,version,type,company_name,billing_address.city,number,date,client_id,tax_total,total,"
        "amount,line.line_id,line.kind,line.code,line.quantity,line.rate,line.amount,line.taxable,"
        "application.invoice_id,application.amount\n"
        "client,c1,1,client,Acme Law,Springfield,,,,,,,,,,,,,,,\n"
        f"invoice,i1,1,,,,A-i1,{DAY},c1,8.00,158.00,,1,work,W1,2,50,100.00,yes,,\n"
        "invoice,i1,,,,,,,,,,,2,work,W1,1.5,33.333333,50.00,no,,\n"
        f"payment,p1,1,,,,,{DAY},c1,,,158.00,,,,,,,,i1,158.00\n"
    )
    pushed = cli(gateway, capsys, "push", TENANT, str(path))
    assert pushed.code == 0, pushed.err
    push_world.drain()
    [customer] = [c for c in push_world.entities(realm, "Customer") if c["DisplayName"] == "Acme Law"]
    assert customer["BillAddr"]["City"] == "Springfield"
    posted = qbo_invoices(push_world, realm)["A-i1"]
    lines = [line for line in posted["Line"] if line.get("DetailType") == "SalesItemLineDetail"]
    assert [line["Amount"] for line in lines] == [Decimal("100.00"), Decimal("50.00")]
    assert posted["TotalAmt"] == Decimal("158.00")
    assert posted["Balance"] == Decimal("0")


def test_push_reports_every_bad_row_and_sends_nothing(
    push_world: PushWorld, gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    connect(push_world)
    path = tmp_path / "bad.csv"
    path.write_text(
        "kind,id,version,type,company_name,number,date,client_id,total,line.line_id,line.kind,line.code,"
        "line.quantity,line.rate,line.amount\n"
        "client,c1,1,client,,,,,,,,,,,\n"  # row 2: no name
        f"invoice,i1,1,,,A-1,{DAY},c1,30.00,1,work,W1,1,10,10.00\n"
        "invoice,i1,,,,,,,,2,work,W1,2,10,25.00\n"  # row 4: 2 x 10 != 25
        "invoice,i2,one,,,A-2,2026-02-30,c1,5.00,1,work,W1,,,5.00\n"  # row 5: version, date
        f"invoice,i3,1,,,A-3,{DAY},c1,40.00,1,work,W1,1,10,10.00\n"  # rows 6-7: total 40 != 30
        "invoice,i3,,,,,,,,2,work,W1,2,10,20.00\n"
        "credit,x,1,,,,,,,,,,,,\n"  # row 8: unknown kind
    )
    refused = cli(gateway, capsys, "push", TENANT, str(path))
    assert refused.code == 1
    assert gateway.requests == []
    problems = refused.err.splitlines()
    expected_starts = [
        f"{path}: row 8: kind: must be one of",
        f"{path}: row 2 (client c1): display_name:",
        f"{path}: row 4 (invoice i1): lines[1].amount: must equal quantity × rate",
        f"{path}: row 5 (invoice i2): version:",
        f"{path}: row 5 (invoice i2): date: must be a date",
        f"{path}: rows 6-7 (invoice i3): total: must equal the sum of the line amounts",
    ]
    for start in expected_starts:
        assert any(line.startswith(start) for line in problems), (start, problems)
    assert problems[-1] == f"qbo-link: {len(expected_starts)} problem(s) in {path}: nothing was sent"
    assert "Traceback" not in refused.err


def test_push_to_a_tenant_that_never_connected_is_one_line(
    push_world: PushWorld, gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = documents_file(
        tmp_path, clients=[{"id": "c1", "version": 1, "type": "client", "company_name": "A"}]
    )
    refused = cli(gateway, capsys, "push", "nobody", str(path))
    assert refused.code == 1
    [line] = refused.err.strip().splitlines()
    assert line.startswith("qbo-link: sent 0 of 1; the next 1 were refused: tenant nobody has not")
    missing = cli(gateway, capsys, "push", TENANT, str(tmp_path / "missing.json"))
    assert missing.code == 2
    assert "no such file" in missing.err


# --- the posting log, the report, retry ----------------------------------------------------------


def test_postings_report_and_retry_of_a_document_qbo_refused(
    push_world: PushWorld, gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    realm = push_one_invoice(push_world, gateway, capsys, tmp_path)
    # QBO refuses the next invoice once
    push_world.fault(kind="status", status=400, code="6000", count=1, entity="invoice", operation="create")
    second = tmp_path / "second.json"
    second.write_text(json.dumps({"invoices": [invoice("i2", "20.25", tax="1.75")]}))
    assert cli(gateway, capsys, "push", TENANT, str(second)).code == 0
    push_world.drain()
    # The posting log shows it failed, with QBO's code
    failed = cli(gateway, capsys, "postings", TENANT, "--state", "failed")
    assert failed.code == 0, failed.err
    [row] = [line for line in failed.out.splitlines() if line.split()[:1] == ["invoice"]]
    assert row.split()[1:4] == ["i2", "1", "failed"]
    assert "QBO 6000" in row
    # The report counts both, and as posted only the posted one
    report = cli(gateway, capsys, "report", TENANT, "--from", DAY, "--to", DAY, "--unposted", "--json")
    totals = json.loads(report.out)["totals"]["invoice"]
    assert (totals["count"], totals["total"], totals["posted_count"]) == (2, "122.00", 1)
    # Retry puts it back in the queue and it goes; a second retry is refused in one line
    retried = cli(gateway, capsys, "retry", TENANT, "invoice/i2")
    assert retried.code == 0, retried.err
    assert "invoice i2 v1: queued" in retried.out
    push_world.drain()
    assert set(qbo_invoices(push_world, realm)) == {"A-i1", "A-i2"}
    human = cli(gateway, capsys, "report", TENANT, "--from", DAY, "--to", DAY)
    [invoice_totals] = [
        line.split()
        for line in human.out.splitlines()
        if line.split()[:1] == ["invoice"] and len(line.split()) == 5
    ]
    assert invoice_totals[1:] == ["2", "122.00", "2", "122.00"]
    again = cli(gateway, capsys, "retry", TENANT, "invoice/i2")
    assert again.code == 1
    assert again.err.strip() == (
        "qbo-link: invoice 'i2' is posted; only a failed document can be retried (409 not_retryable)"
    )
    usage = cli(gateway, capsys, "retry", TENANT, "i2")
    assert usage.code == 2


def test_the_documented_examples_are_valid_files(tmp_path: Path) -> None:
    from qbo_link_cli.documents import read_documents

    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    examples = {}
    for language in ("json", "csv"):
        block = text.split(f"```{language}\n", 1)[1].split("```", 1)[0]
        examples[language] = tmp_path / f"example.{language}"
        examples[language].write_text(block)
    from_json = read_documents(examples["json"])
    assert [(d.kind, d.app_id) for d in from_json] == [
        ("client", "c1"),
        ("client", "c1-site"),
        ("invoice", "i1"),
        ("payment", "p1"),
    ]
    from_csv = read_documents(examples["csv"])
    assert [(d.kind, d.app_id, d.where) for d in from_csv] == [
        ("client", "c1", "row 2"),
        ("invoice", "i1", "rows 3-4"),
        ("payment", "p1", "row 5"),
    ]
    assert [line["amount"] for line in from_csv[1].body["lines"]] == ["100.00", "50.00"]
    assert from_csv[2].body["applications"] == [{"invoice_id": "i1", "amount": "158.00"}]


# --- tables at the terminal's width ---------------------------------------------------------------


def test_tables_fit_80_columns_and_wide_prints_full_values(
    push_world: PushWorld,
    gateway: Gateway,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # what a terminal of 80 columns (or a pipe) gets
    realm = connect(push_world)
    waiting = invoice("i-waiting-for-a-work-code", "30.00")
    waiting["lines"][0]["code"] = "W9"  # a work code with no QBO item
    waiting["number"] = "A-waiting"
    path = documents_file(
        tmp_path,
        clients=[{"id": "c1", "version": 1, "type": "client", "company_name": "Acme Law"}],
        invoices=[waiting],
    )
    reason = "item_not_mapped (code=W9, kind=work, line_id=1)"
    commands = [
        ["push", TENANT, str(path)],
        ["tenants"],
        ["status", TENANT],
        ["postings", TENANT],
        ["report", TENANT, "--from", DAY, "--to", DAY, "--unposted"],
    ]
    for command in commands:
        result = cli(gateway, capsys, *command)
        assert result.code == 0, result.err
        assert max(len(line) for line in result.out.splitlines()) <= 80, (command, result.out)

    postings = cli(gateway, capsys, "postings", TENANT)
    [row] = [line for line in postings.out.splitlines() if line.split()[:1] == ["invoice"]]
    assert "…" in row  # the widest columns (the id, why it waits) are cut, on one line
    assert row.split()[2:5] == ["1", "needs_attention", DAY]  # the codes are kept whole
    assert reason not in postings.out

    wide = cli(gateway, capsys, "postings", TENANT, "--wide")
    [row] = [line for line in wide.out.splitlines() if line.split()[:1] == ["invoice"]]
    assert "i-waiting-for-a-work-code" in row
    assert reason in row
    assert "…" not in wide.out
    tenants = cli(gateway, capsys, "--wide", "tenants")  # before the command, as every global option
    [header] = [line for line in tenants.out.splitlines() if "Tenant" in line]
    assert header.split()[-3:] == ["Connected", "since", "Disconnected"]
    assert realm in tenants.out
