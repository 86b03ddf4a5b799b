"""The local stack end to end, over HTTP as a host app uses it: ``qbo-link dev``'s engine.

One ``LocalStack`` for the module (moto server, the sandbox, the gateway, pollers, scheduler); two
tenants connected through the real OAuth flow.  What QuickBooks holds is read back through the
sandbox's control API.  The last tests run ``qbo-link dev`` itself as a process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx2
import pytest

from infra import manifest as stack
from qbo_link_local.runtime import Invocation
from qbo_link_local.scheduler import ScheduleExpressionError, rate_seconds, scheduled_functions
from qbo_link_local.stack import LocalStack, LocalStackConfig, LocalStackError
from shared.kernel import constants
from shared.kernel.event_models import ConnectionConnected, Detail, DocumentPosted
from shared.kernel.events import (
    CONNECTION_CONNECTED,
    DOCUMENT_POSTED,
    ONBOARDING_FINISHED,
    DetailType,
    make_event,
)
from tests.e2e.conftest import EventCheck
from tests.e2e.dev_process import DevProcess, clean_env, dev
from tests.e2e.local_fixtures import Host, client, free_ports, host, invoice, jwt, local_stack

__all__ = ["dev", "host", "local_stack"]

REPO = Path(__file__).resolve().parents[2]


def _sqs(stack_: LocalStack) -> Any:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    return session.client("sqs", endpoint_url=stack_.moto_url)


def _deliveries_with(invocations: list[Invocation], message_id: str) -> list[Invocation]:
    return [i for i in invocations if any(m["id"] == message_id for m in i.detail.get("messages", []))]


# --- the product through the gateway ------------------------------------------------------------


def test_a_connected_tenant_pushes_a_client_and_an_invoice_into_quickbooks(
    host: Host, event_check: EventCheck
) -> None:
    stack_ = host.stack
    # Given two tenants connected by the OAuth flow: Intuit's "connected" reached the onboarding
    # function through the event bus rule, once per tenant
    onboarded = {i.detail["id"] for i in stack_.invocations("onboard") if i.ok and i.trigger == "OnboardRule"}
    connected = stack_.events(CONNECTION_CONNECTED)
    assert {e["detail"]["tenant_id"] for e in connected} >= {"firm-a", "firm-b"}
    assert {e["id"] for e in connected} <= onboarded
    # and each onboarding finished: its state in the connection status, and one event
    finished = {e["detail"]["tenant_id"]: e["detail"] for e in stack_.events(ONBOARDING_FINISHED)}
    for tenant in ("firm-a", "firm-b"):
        status = host.ok("GET", f"/tenants/{tenant}/connection")["onboarding"]
        assert status["state"] == "finished", status
        assert finished[tenant]["read"] == status["read"]
        assert finished[tenant]["read"]["work_code"] > 0  # QBO's lists are there to map
    # When the host app sends a client and its invoice
    assert host.call("PUT", "/tenants/firm-a/clients/c-1", client("c-1")).status_code == 202
    answer = host.call("PUT", "/tenants/firm-a/invoices/i-1", invoice("i-1", "c-1", amount="250.40"))
    assert answer.status_code == 202, answer.text
    stack_.wait_idle(60)
    # Then QuickBooks holds the customer and one invoice for it, to the cent
    customer = host.customer_named("firm-a", "E2E Client c-1")
    [posted] = host.invoices_numbered("firm-a", "E2E-i-1")
    assert posted["CustomerRef"]["value"] == customer["Id"]
    assert posted["TotalAmt"] == Decimal("250.40")
    entry = host.ok("GET", "/tenants/firm-a/postings/invoice/i-1")
    assert entry["state"] == "posted"
    assert entry["qbo_id"] == posted["Id"]
    [event] = [
        e for e in stack_.events("Document Posted") if e["detail"].get("app_id") == "i-1"
    ]  # the event the host app subscribes to
    assert event["source"] == constants.EVENT_SOURCE
    assert event["detail"]["qbo_id"] == posted["Id"]
    assert (event["detail"]["document_version"], event["detail"]["version"]) == (1, 1)
    # and every event so far went through the tier's schema check (tests/e2e/conftest.py)
    assert event_check.checked >= len(stack_.events()) > 0


def test_a_change_made_in_quickbooks_reaches_the_change_worker_by_webhook(host: Host) -> None:
    stack_ = host.stack
    # Given a client of the app that QBO Link created in QuickBooks
    assert host.call("PUT", "/tenants/firm-b/clients/c-web", client("c-web")).status_code == 202
    stack_.wait_idle(60)
    customer = host.customer_named("firm-b", "E2E Client c-web")
    received = len(stack_.invocations("webhooks"))
    # When a bookkeeper edits the customer in QuickBooks
    edit = {
        "Id": customer["Id"],
        "SyncToken": customer["SyncToken"],
        "sparse": True,
        "PrimaryEmailAddr": {"Address": "ap@c-web.example"},
    }
    host.sandbox("POST", f"/companies/{host.realms['firm-b']}/entities/Customer?operation=update", edit)
    stack_.wait_idle(60)
    # Then Intuit's signed webhook went through the gateway to the receiver, the changes queue
    # carried it to the change worker, and the app hears about the change
    assert len(stack_.invocations("webhooks")) > received
    deliveries = host.sandbox("GET", "/webhooks/deliveries")["deliveries"]
    assert deliveries, "the sandbox sent no webhook"
    assert {d["url"] for d in deliveries} == {stack_.webhook_url}
    assert all(d["status"] == 200 and d["ok"] for d in deliveries), deliveries[-3:]
    [changed] = [
        e
        for e in stack_.events("Client Changed")
        if e["detail"].get("client_id") == "c-web" and e["detail"].get("email") == "ap@c-web.example"
    ]
    assert changed["detail"]["tenant_id"] == "firm-b"
    assert any(i.trigger == "ChangesQueue" and i.ok for i in stack_.invocations("changes"))


def test_a_partial_batch_failure_is_retried_and_the_successes_are_not(host: Host) -> None:
    stack_ = host.stack
    stack_.wait_idle(60)
    # Given QuickBooks refuses firm-b's next write once (403: the worker retries it later)
    rule = {"kind": "status", "status": 403, "count": 1, "realm": host.realms["firm-b"], "method": "POST"}
    host.sandbox("POST", "/faults", rule)
    # When both tenants' documents arrive in one delivery
    with stack_.hold("PushQueue"):
        for tenant, suffix in (("firm-a", "pa"), ("firm-b", "pb")):
            assert host.call("PUT", f"/tenants/{tenant}/clients/c-{suffix}", client(f"c-{suffix}")).is_success
            document = invoice(f"i-{suffix}", f"c-{suffix}")
            assert host.call("PUT", f"/tenants/{tenant}/invoices/i-{suffix}", document).is_success
    stack_.wait_idle(60)
    # Then that delivery reported some of firm-b's messages as batch item failures, none of firm-a's
    pushes = stack_.invocations("push")
    [together] = [
        i
        for i in pushes
        if {m["group"] for m in i.detail["messages"]} == {"firm-a", "firm-b"}
        and all(m["receive_count"] == 1 for m in i.detail["messages"])
    ]
    groups = {m["id"]: m["group"] for m in together.detail["messages"]}
    failed = set(together.detail["failed"])
    assert failed, "firm-b's refused write failed nothing"
    assert {groups[m] for m in failed} == {"firm-b"}
    assert together.outcome == f"{len(failed)} of {len(groups)} failed"
    # the others were deleted (never delivered again); the failures came back and went through
    for message_id in set(groups) - failed:
        assert len(_deliveries_with(pushes, message_id)) == 1
    for message_id in failed:
        again = _deliveries_with(pushes, message_id)[1:]
        assert again, "a failed message was not delivered again"
        assert again[0].detail["messages"][0]["receive_count"] == 2
        assert message_id not in again[-1].detail["failed"]
    assert stack_.stats()["batch_item_failures"]["push"] >= len(failed)
    # and QuickBooks holds each invoice exactly once
    assert len(host.invoices_numbered("firm-a", "E2E-i-pa")) == 1
    assert len(host.invoices_numbered("firm-b", "E2E-i-pb")) == 1
    attempts = [
        a["outcome"]
        for kind, app_id in (("client", "c-pb"), ("invoice", "i-pb"))
        for a in host.ok("GET", f"/tenants/firm-b/postings/{kind}/{app_id}")["attempt_log"]
    ]
    assert "transient" in attempts, attempts


def test_each_tenant_is_delivered_in_order_fifo_per_message_group(host: Host) -> None:
    stack_ = host.stack
    stack_.wait_idle(60)
    # When 12 documents of firm-a and 2 of firm-b queue up: more than one delivery holds
    with stack_.hold("PushQueue"):
        for n in range(12):
            assert host.call("PUT", f"/tenants/firm-a/clients/f-{n}", client(f"f-{n}")).is_success
        for n in range(2):
            assert host.call("PUT", f"/tenants/firm-b/clients/f-{n}", client(f"f-{n}")).is_success
    stack_.wait_idle(60)
    # Then every group's messages were delivered in the order they were sent (moto's sequence
    # numbers are random, so the send times tell the order: each PUT took more than a millisecond)
    ours = [
        i for i in stack_.invocations("push") if any(m["receive_count"] == 1 for m in i.detail["messages"])
    ][-3:]
    firsts = [m for i in ours for m in i.detail["messages"] if m["receive_count"] == 1]
    for group, count in (("firm-a", 12), ("firm-b", 2)):
        sent = [m["sent"] for m in firsts if m["group"] == group][-count:]
        assert sent == sorted(sent), sent
        assert len(set(sent)) == count
    assert max(len(i.detail["messages"]) for i in ours) == 10  # a FIFO batch holds at most 10
    names = {c["DisplayName"] for c in host.entities("firm-a", "Customer")}
    assert {f"E2E Client f-{n}" for n in range(12)} <= names


def test_a_poison_message_ends_in_the_dead_letter_queue(host: Host) -> None:
    stack_ = host.stack
    stack_.wait_idle(60)
    body = f"not a change notice {uuid.uuid4()}"
    sent = _sqs(stack_).send_message(
        QueueUrl=stack_.names.queue_urls[stack.CHANGES_QUEUE.logical_id],
        MessageBody=body,
        MessageGroupId="poison",
        MessageDeduplicationId=uuid.uuid4().hex,
    )
    stack_.wait_idle(60)
    deliveries = _deliveries_with(stack_.invocations("changes"), sent["MessageId"])
    assert len(deliveries) == stack.CHANGES_QUEUE.max_receive_count
    assert [d.detail["messages"][0]["receive_count"] for d in deliveries] == list(
        range(1, stack.CHANGES_QUEUE.max_receive_count + 1)
    )
    assert all(sent["MessageId"] in d.detail["failed"] for d in deliveries)
    assert body in stack_.dead_letters(stack.CHANGES_QUEUE.dlq_logical_id)
    queues = stack_.stats()["queues"]
    assert queues[stack.CHANGES_QUEUE.logical_id] == 0
    assert queues[stack.CHANGES_QUEUE.dlq_logical_id] >= 1


def test_event_rules_deliver_only_matching_events_and_keep_failing_ones_aside(host: Host) -> None:
    stack_ = host.stack
    stack_.wait_idle(60)
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    events = session.client("events", endpoint_url=stack_.moto_url)

    def put(detail_type: DetailType, tenant: str) -> str:
        """An event as QBO Link makes it (it matches its schema: the tier checks every event)."""
        unique = uuid.uuid4().hex
        if detail_type == CONNECTION_CONNECTED:
            detail: Detail = ConnectionConnected(
                realm_id="4620816365000000",
                company_name=None,
                country=None,
                currency=None,
                tax_model=None,
                reconnected=False,
                connected_at="2026-11-20T09:00:00+00:00",
            )
        else:
            detail = DocumentPosted(kind="invoice", app_id=f"i-{unique}", document_version=1, qbo_id="1")
        entry = make_event(detail_type, tenant, detail, unique).entry(stack_.names.event_bus)
        answer = events.put_events(Entries=[entry])
        assert answer["FailedEntryCount"] == 0
        event_id: str = answer["Entries"][0]["EventId"]
        return event_id

    # An event the rule does not match reaches the bus (the host app would see it), not the function
    other = put(DOCUMENT_POSTED, "firm-ghost")
    # A matching event whose function fails (no such tenant) is tried 4 times, then kept aside
    failing = put(CONNECTION_CONNECTED, "firm-ghost")
    stack_.wait_idle(60)
    runs = [i for i in stack_.invocations("onboard") if i.detail.get("id") in (other, failing)]
    assert [i.detail["id"] for i in runs] == [failing] * 4
    assert not any(i.ok for i in runs)
    assert runs[0].traceback, "a failed invocation is logged with its traceback"
    [kept] = [json.loads(body) for body in stack_.dead_letters("OnboardRuleDeadLetter")]
    assert kept["id"] == failing
    assert kept["detail"]["tenant_id"] == "firm-ghost"
    assert {e["id"] for e in stack_.events()} >= {other, failing}


def test_the_schedules_run_the_sweep_and_the_keep_alive(host: Host) -> None:
    stack_ = host.stack
    stack_.wait_idle(60)

    def sweeps(tenant: str) -> int:
        exchanges = host.ok("GET", f"/tenants/{tenant}/exchanges")["exchanges"]
        return sum(1 for e in exchanges if e["source"] == "sweep")

    before = {tenant: sweeps(tenant) for tenant in ("firm-a", "firm-b")}
    # When the sweep schedule fires
    fanned = stack_.run_schedule("SweepSchedule")
    assert fanned["enqueued"] == fanned["tenants"] >= 2
    stack_.wait_idle(60)
    # Then the change worker swept every connected tenant
    assert all(sweeps(tenant) == before[tenant] + 1 for tenant in before)
    # and the keep-alive schedule checks every connection's tokens
    report = stack_.run_schedule("KeepAliveSchedule")
    assert report["checked"] >= 2
    assert report["failed"] == 0
    assert stack_.stats()["schedules"]["KeepAliveSchedule"] >= 1
    with pytest.raises(KeyError, match="SweepSchedule"):
        stack_.run_schedule("NoSuchSchedule")


def test_the_gateway_answers_like_api_gateway(host: Host) -> None:
    # An unknown route is API Gateway's own 404
    missing = host.http.get(host.api + "/no/such/route")
    assert missing.status_code == 404
    assert missing.json() == {"message": "Not Found"}
    # A JWT caller is held to its tenant claim (decoded, not verified, locally)
    path = "/tenants/firm-a/postings/summary"
    other = host.call("GET", path, authorization=f"Bearer {jwt({'tenant_id': 'firm-b'})}")
    assert other.status_code == 403
    assert other.json()["detail"][0]["type"] == "tenant_mismatch"
    own = host.call("GET", path, authorization=f"Bearer {jwt({'tenant_id': 'firm-a'})}")
    assert own.status_code == 200, own.text
    assert host.call("GET", path, authorization="Bearer not-a-jwt").json() == {"message": "Unauthorized"}
    # An IAM route without a JWT is the host app's backend (SigV4 is not verified locally)
    assert host.call("GET", path).status_code == 200
    # Every answer carries API Gateway's request id
    assert host.call("GET", path).headers["apigw-requestid"]


def test_the_handlers_read_secrets_through_secrets_manager_in_moto(host: Host) -> None:
    stack_ = host.stack
    assert os.environ["AWS_ENDPOINT_URL"] == stack_.moto_url
    for name in ("QBO_LINK_CLIENT_SECRET", "QBO_LINK_STATE_SIGNING_KEY", "QBO_LINK_WEBHOOK_VERIFIER_TOKEN"):
        assert name not in os.environ  # the local-only fallbacks are never used
    arn = os.environ[constants.INTUIT_SECRET_ARN_ENV]
    assert arn == stack_.names.secret_arns[stack.INTUIT_APP_SECRET.logical_id]
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    secrets = session.client("secretsmanager", endpoint_url=stack_.moto_url)
    value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    assert stack_.sandbox is not None
    assert value["client_id"] == stack_.sandbox.sandbox.settings.client_id
    metrics = stack_.stats()["metrics"]
    assert metrics["api"]["ConnectionsStarted"] >= 2  # each function's metrics, kept apart


# --- the schedules' timing ----------------------------------------------------------------------


def test_rate_expressions_and_the_time_scale() -> None:
    assert rate_seconds("rate(6 hours)") == 6 * 3600
    assert rate_seconds("rate(1 day)") == 86_400
    assert rate_seconds("cron(0 12 * * ? *)") is None
    for bad in ("rate(1 days)", "rate(2 hour)", "rate(0 minutes)", "every day"):
        with pytest.raises(ScheduleExpressionError):
            rate_seconds(bad)
    intervals = {
        e.schedule.logical_id: e.interval_seconds for e in scheduled_functions(stack.FUNCTIONS, 3600)
    }
    assert intervals == {"SweepSchedule": 6.0, "KeepAliveSchedule": 24.0}


# --- qbo-link dev as a process ------------------------------------------------------------------


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_qbo_link_dev_serves_logs_runs_schedules_and_stops_cleanly_on_ctrl_c(
    dev: Callable[..., DevProcess],
) -> None:
    running = dev("--time-scale", "21600")
    process, lines, ports, api = running.process, running.lines, running.ports, running.api
    # It prints where everything is
    lines.until("Ready.")
    banner = "\n".join(lines.seen)
    assert f"{api}/v1/tenants" in banner
    assert f"POST {api}/v1/tenants/<tenant_id>/connection" in banner
    assert f"qbo-link events --api-url {api}" in banner
    assert f"console          {api}/console/?tenant=<tenant id>" in banner  # no tenant known yet
    assert f"http://127.0.0.1:{ports[1]}" in banner
    assert f"http://127.0.0.1:{ports[2]}" in banner
    # It serves the tenant API and logs one line per invocation
    started = httpx2.post(f"{api}/tenants/firm-x/connection", json={"return_url": f"{api}/_local/connected"})
    assert started.status_code == 201, started.text
    line = lines.until("api", "POST /tenants/firm-x/connection", "201")
    assert line.rstrip().endswith("ms")
    # rate(6 hours) at a time scale of 21,600 runs every second
    lines.until("sweep", "SweepSchedule", "ok")
    # Ctrl-C stops it cleanly: exit code 0, every port free again
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    lines.until("stopped", timeout=10)
    assert all(_is_free(port) for port in ports), ports


def _dev_error(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qbo_link_cli.main", "dev", *extra],
        cwd=REPO,
        env={**clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("flag", "index"), [("--port", 0), ("--sandbox-port", 1), ("--moto-port", 2)])
def test_qbo_link_dev_names_a_taken_port_in_one_line(flag: str, index: int) -> None:
    ports = free_ports(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[index]))
        taken.listen()
        done = _dev_error(
            "--port", str(ports[0]), "--sandbox-port", str(ports[1]), "--moto-port", str(ports[2])
        )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert str(ports[index]) in line
    assert flag in line
    assert "Traceback" not in done.stdout
    assert all(_is_free(port) for i, port in enumerate(ports) if i != index)  # nothing left behind


def test_qbo_link_dev_against_intuits_sandbox_needs_the_apps_keys(dev: Callable[..., DevProcess]) -> None:
    # Without the app's development keys: one line naming them
    done = _dev_error("--intuit-sandbox", "--port", "0", "--moto-port", "0")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "QBO_LINK_CLIENT_ID" in line
    assert "QBO_LINK_WEBHOOK_VERIFIER_TOKEN" in line
    # With them (settings only): consent goes to Intuit, with the app's client id and redirect URI,
    # which the handlers read from Secrets Manager; no local sandbox runs
    keys = {
        "QBO_LINK_CLIENT_ID": "ABdevelopmentclient",
        "QBO_LINK_CLIENT_SECRET": "development-secret",
        "QBO_LINK_WEBHOOK_VERIFIER_TOKEN": "development-verifier",
    }
    running = dev(
        "--intuit-sandbox", env={**keys, "QBO_LINK_REDIRECT_URI": "http://localhost:8700/oauth/callback"}
    )
    running.lines.until("Ready.")
    assert "QuickBooks in Intuit's sandbox" in running.lines.seen[0]
    started = httpx2.post(
        f"{running.api}/tenants/firm-i/connection", json={"return_url": f"{running.api}/_local/connected"}
    )
    assert started.status_code == 201, started.text
    consent = httpx2.URL(started.json()["authorization_url"])
    assert str(consent).startswith("https://appcenter.intuit.com/connect/oauth2?")
    assert consent.params["client_id"] == "ABdevelopmentclient"
    assert consent.params["redirect_uri"] == "http://localhost:8700/oauth/callback"
    assert _is_free(running.ports[1])
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(30) == 0


_RESTART_SCRIPT = """
import json, sys
import httpx2
from qbo_link_local.stack import LocalStack, LocalStackConfig

state_dir, out = sys.argv[1], {}
document = {"id": "c-kept", "version": 1, "type": "client", "company_name": "Kept Across Restarts"}
with LocalStack(LocalStackConfig(state_dir=state_dir)) as stack, httpx2.Client(timeout=30) as http:
    api = stack.api_url + "/tenants/firm-r"
    consent = http.get(http.post(api + "/connection", json={"return_url": stack.landing_url}).json()[
        "authorization_url"])
    http.get(consent.headers["location"])
    stack.wait_idle(60)
    http.put(api + "/settings", json={"auto_create_customers": True})
    out["realm"] = http.get(api + "/connection").json()["realm_id"]
    with stack.hold("PushQueue"):  # stopped with the client's message still queued
        out["queued"] = http.put(api + "/clients/c-kept", json=document).json()["state"]
        stack.stop()
with LocalStack(LocalStackConfig(state_dir=state_dir)) as stack, httpx2.Client(timeout=30) as http:
    api = stack.api_url + "/tenants/firm-r"
    stack.wait_idle(60)
    out["connection"] = http.get(api + "/connection").json()
    out["posting"] = http.get(api + "/postings/client/c-kept").json()
    out["refresh"] = http.post(api + "/mappings/refresh").status_code
    rows = http.get(f"{stack.sandbox_url}/_sandbox/companies/{out['realm']}/entities/Customer").json()
    names = [c["DisplayName"] for c in rows["Customer"]]
    out["customers"] = [n for n in names if n == document["company_name"]]
print(json.dumps(out))
"""


def test_a_state_directory_keeps_connections_queues_and_the_sandbox_across_restarts(tmp_path: Path) -> None:
    # A process of its own: only one local stack may run in a process, and the module's runs here
    done = subprocess.run(
        [sys.executable, "-c", _RESTART_SCRIPT, str(tmp_path)],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["queued"] == "queued"
    # The tenant is still connected to the same company, its tokens still decrypt (the KMS key came
    # back) and still work (the sandbox kept its grant): a call to QuickBooks succeeds
    assert out["connection"]["connected"] is True
    assert out["connection"]["realm_id"] == out["realm"]
    assert out["refresh"] == 200
    # and the message left on the queue was delivered after the restart: the customer exists once
    assert out["posting"]["state"] == "posted"
    assert out["customers"] == ["Kept Across Restarts"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aws.json", "lock", "sandbox.json"]  # no journal


def test_only_one_local_stack_runs_in_a_process(local_stack: LocalStack) -> None:
    with pytest.raises(LocalStackError, match="another local stack"):
        LocalStack(LocalStackConfig()).start()
    local_stack.wait_idle(60)  # the running one is untouched
    assert os.environ["AWS_ENDPOINT_URL"] == local_stack.moto_url
