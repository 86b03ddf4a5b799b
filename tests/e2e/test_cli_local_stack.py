"""The operator CLI in its own process against the local stack over HTTP (``QBO_LINK_API_URL``): what a
developer running ``qbo-link dev`` in one terminal and ``qbo-link ...`` in another gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from qbo_link_local.stack import LocalStack, LocalStackConfig

TENANT = "firm-e2e"
DAY = "2026-11-20"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(LocalStackConfig(port=0, sandbox_port=0, moto_port=0, log=lambda _line: None)) as running:
        yield running


def qbo_link(stack_url: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QBO_LINK_API_URL": stack_url, "COLUMNS": "200"}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)  # the local stack needs no credentials
    return subprocess.run(
        [sys.executable, "-m", "qbo_link_cli.main", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def connect(stack: LocalStack) -> str:
    with httpx2.Client(timeout=30, trust_env=False) as http:
        started = http.post(
            f"{stack.api_url}/tenants/{TENANT}/connection", json={"return_url": stack.landing_url}
        )
        assert started.status_code == 201, started.text
        consent = http.get(started.json()["authorization_url"])
        back = http.get(consent.headers["location"])
        params = parse_qs(urlsplit(back.headers["location"]).query)
        assert params["status"] == ["connected"], params
        stack.wait_idle(timeout=60)  # onboarding has read the QBO lists
        for kind, app_id, qbo_id in (("work_code", "W1", "2"), ("client", "c1", "1")):
            catalog = http.put(
                f"{stack.api_url}/tenants/{TENANT}/catalog/{kind}/{app_id}",
                json={
                    "version": 1,
                    "name": f"{kind} {app_id}",
                    "type": "client" if kind == "client" else None,
                },
            )
            assert catalog.status_code == 200, catalog.text
            link = http.put(
                f"{stack.api_url}/tenants/{TENANT}/mappings/{kind}/app/{app_id}", json={"qbo_id": qbo_id}
            )
            assert link.status_code == 200, link.text
    return params["realmId"][0]


def invoice(app_id: str, amount: str) -> dict[str, Any]:
    line = {"line_id": "1", "kind": "work", "code": "W1", "amount": amount, "taxable": False}
    return {
        "id": app_id,
        "version": 1,
        "number": f"E-{app_id}",
        "date": DAY,
        "client_id": "c1",
        "lines": [line],
        "total": amount,
    }


@pytest.mark.slow
def test_the_cli_drives_the_local_stack_from_another_process(stack: LocalStack, tmp_path: Path) -> None:
    realm = connect(stack)
    # tenants, as a script reads it
    listed = qbo_link(stack.api_url, "tenants", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["tenants"]
    assert (row["tenant_id"], row["realm_id"], row["health"]) == (TENANT, realm, "healthy")
    # push a file; the push worker posts it
    path = tmp_path / "invoices.json"
    path.write_text(json.dumps({"invoices": [invoice("i1", "120.00"), invoice("i2", "80.50")]}))
    pushed = qbo_link(stack.api_url, "push", TENANT, str(path))
    assert pushed.returncode == 0, pushed.stderr
    assert "Pushed 2 document(s)" in pushed.stdout
    stack.wait_idle(timeout=60)
    posted = qbo_link(stack.api_url, "postings", TENANT, "--state", "posted", "--json")
    assert sorted(e["app_id"] for e in json.loads(posted.stdout)["entries"]) == ["i1", "i2"]
    report = qbo_link(stack.api_url, "report", TENANT, "--from", DAY, "--to", DAY)
    assert report.returncode == 0, report.stderr
    totals = next(line.split() for line in report.stdout.splitlines() if line.split()[:2] == ["invoice", "2"])
    assert totals[2:] == ["200.50", "2", "200.50"]
    status = qbo_link(stack.api_url, "status", TENANT)
    assert "connected, healthy" in status.stdout
    # a refusal is one line on stderr and exit 1; a wrong command line is exit 2
    retry = qbo_link(stack.api_url, "retry", TENANT, "invoice/i1")
    assert retry.returncode == 1
    assert retry.stderr.strip().splitlines() == [
        "qbo-link: invoice 'i1' is posted; only a failed document can be retried (409 not_retryable)"
    ]
    assert qbo_link(stack.api_url, "report", TENANT, "--from", "yesterday", "--to", DAY).returncode == 2


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_push_wait_sends_2000_documents_in_4_bulk_requests_and_reports_their_final_states(
    stack: LocalStack, tmp_path: Path
) -> None:
    connect(stack)
    invoices = [invoice(f"w{n}", f"{1 + n % 500}.{n % 100:02d}") for n in range(2000)]
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"invoices": invoices}))
    before = len(stack.invocations("api"))
    pushed = qbo_link(stack.api_url, "push", TENANT, str(path), "--wait", "--json", timeout=840)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    bulk = [i for i in stack.invocations("api")[before:] if i.trigger.startswith("POST /v1/tenants/")]
    assert [i.outcome for i in bulk] == ["202"] * 4  # 2,000 documents, 500 a request
    finals = json.loads(pushed.stdout)
    assert len(finals) == 2000
    assert {row["state"] for row in finals} == {"posted"}
    assert len({row["qbo_id"] for row in finals}) == 2000
    report = qbo_link(stack.api_url, "report", TENANT, "--from", DAY, "--to", DAY, "--json", timeout=120)
    totals = json.loads(report.stdout)["totals"]["invoice"]
    expected = sum(Decimal(i["total"]) for i in invoices) + Decimal("200.50")  # and the 2 pushed before
    assert Decimal(totals["posted_total"]) == expected, totals


@pytest.mark.parametrize(
    "argv",
    [("status", "firm-9"), ("postings", "firm-9")],
)
def test_a_tenant_that_never_connected_is_exit_1(stack: LocalStack, argv: tuple[str, ...]) -> None:
    answer = qbo_link(stack.api_url, *argv)
    assert answer.returncode == 1, answer.stdout
    assert answer.stderr.startswith("qbo-link: tenant firm-9 has not connected QuickBooks: "), answer.stderr
    assert answer.stdout == ""


def test_without_a_running_stack_the_cli_says_to_start_it() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    answer = qbo_link(url, "tenants")
    assert answer.returncode == 1
    assert answer.stderr.strip() == f"qbo-link: cannot reach the API: is `qbo-link dev` running? ({url})"
    assert answer.stdout == ""
