"""Benchmark: rechecking waiting documents through the push queue (not a test; prints figures).

Part 1, in this process as the integration tests run it (moto for DynamoDB and SQS FIFO with the
tests' harness, the QBO sandbox on a loopback port, the real API and push handlers driven with API
Gateway and SQS events): ``--documents`` invoices of one tenant wait in ``needs_attention`` for a
work code; the code is linked behind the API's back (no trigger), then the app calls
``POST /tenants/{t}/postings/recheck``.  Printed: the route's answer time and its DynamoDB and SQS
operations; then the time, the recheck pages and the DynamoDB and SQS operations until every
document is ``queued`` with its push message sent.  The push messages themselves are taken off the
queue and counted, not posted (posting is ``bench_push.py``'s figure).

Part 2, on the local stack (``qbo-link dev``'s engine: moto server, the sandbox, the gateway and
the SQS pollers), over HTTP: ``--rounds`` times, an invoice waits for a work code QuickBooks has
no item for; the code is exported through the mapping API and the invoice is polled until posted.
Printed: the export's answer time and the delay from the export request to ``posted``.

Usage:

    .venv/bin/python scripts/bench_recheck.py [--documents 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # before the handlers' logger is made

import httpx2  # noqa: E402

from qbo_link_local.stack import LocalStack, LocalStackConfig  # noqa: E402
from shared import wiring  # noqa: E402
from shared.push.posting_log import PostingState  # noqa: E402
from tests.e2e.local_fixtures import Host, client  # noqa: E402
from tests.e2e.local_fixtures import invoice as local_invoice  # noqa: E402
from tests.integration.connections_fixtures import LambdaContext  # noqa: E402
from tests.integration.push_fixtures import (  # noqa: E402
    QUEUE_NAME,
    PushWorld,
    bench_push_environment,
    link_new_clients,
)
from tests.sqs_records import lambda_record  # noqa: E402

TENANT = "bench-firm"
CODE = "W9"  # the work code the documents wait for
SQS_OWN = {"ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility"}


class Calls:
    """AWS API calls by service and operation made through boto3's default session, and the time
    spent in them (here: in moto)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()

    def before(self, **kwargs: Any) -> None:
        model = kwargs.get("model")
        service = getattr(getattr(model, "service_model", None), "service_name", "?")
        self.calls[f"{service}:{getattr(model, 'name', '?')}"] += 1
        context = kwargs.get("context")
        if isinstance(context, dict):
            context["bench_started"] = time.perf_counter()

    def after(self, **kwargs: Any) -> None:
        model = kwargs.get("model")
        service = getattr(getattr(model, "service_model", None), "service_name", "?")
        context = kwargs.get("context")
        if isinstance(context, dict) and "bench_started" in context:
            self.seconds[service] += time.perf_counter() - context.pop("bench_started")

    def take(self) -> tuple[Counter[str], Counter[str]]:
        taken = self.calls, self.seconds
        self.calls, self.seconds = Counter(), Counter()
        return taken


def _invoice(n: int) -> dict[str, Any]:
    return {
        "id": f"r{n:05d}",
        "version": 1,
        "number": f"R-{n:05d}",
        "date": "2026-11-20",
        "client_id": f"k{n % 10}",
        "lines": [{"line_id": "1", "kind": "work", "code": CODE, "amount": "100.00", "taxable": False}],
        "tax_total": "0.00",
        "total": "100.00",
    }


def _seed(push: PushWorld, count: int) -> None:
    """``count`` waiting invoices: the first through the API (to get readiness's own judgement),
    the others straight into the posting log with that judgement (the API would take minutes)."""
    first = push.put(TENANT, "invoices", _invoice(0))
    assert first.json()["state"] == "needs_attention", first.body
    entry = push.log.get(TENANT, "invoice", "r00000")
    assert entry is not None
    judged = (PostingState.NEEDS_ATTENTION, entry.reasons)
    for n in range(1, count):
        document = _invoice(n)
        day = entry.txn_date
        push.log.accept(TENANT, "invoice", document["id"], 1, document, day, judge=lambda: judged)


def _of(calls: Counter[str], service: str) -> dict[str, int]:
    return {k.split(":", 1)[1]: v for k, v in calls.most_common() if k.startswith(service + ":")}


def in_process(count: int) -> None:
    calls = Calls()
    with bench_push_environment() as (push, session):
        session.events.register("before-call.*", calls.before)
        session.events.register("after-call.*", calls.after)
        realm = push.world.connect(TENANT)
        link_new_clients(push, TENANT, realm, 10, "Rk")
        started = time.perf_counter()
        _seed(push, count)
        seed_seconds = time.perf_counter() - started
        push.links.link(TENANT, "work_code", CODE, "2")  # behind the API's back: no recheck queued
        calls.take()

        from functions.api import handler as api
        from functions.push import handler as worker
        from tests.integration.connections_fixtures import http_event

        started = time.perf_counter()
        answer = api.lambda_handler(
            http_event("POST", f"/tenants/{TENANT}/postings/recheck"), LambdaContext()
        )
        answer_seconds = time.perf_counter() - started
        answered, _ = calls.take()
        body = json.loads(answer["body"])

        started = time.perf_counter()
        pages = pushes = deliveries = 0
        page_seconds: list[float] = []
        handler_seconds: Counter[str] = Counter()
        drained: Counter[str] = Counter()  # the push handler's calls (not this loop's receives)
        messages: set[str] = set()
        while True:
            received = push.sqs.receive_message(
                QueueUrl=push.queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=60,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            rechecks = [m for m in received if '"recheck"' in m["Body"]]
            if rechecks:
                event = {"Records": [lambda_record(m, QUEUE_NAME) for m in rechecks]}
                calls.take()
                began = time.perf_counter()
                result = worker.lambda_handler(event, LambdaContext())
                page_seconds.append(time.perf_counter() - began)
                counted, spent = calls.take()
                handler_seconds.update(spent)
                drained.update(counted)
                assert not result.get("batchItemFailures"), result
                pages += len(rechecks)
                deliveries += 1
            for message in received:
                if message not in rechecks:
                    pushes += 1
                    messages.add(json.loads(message["Body"])["app_id"])
            push.sqs.delete_message_batch(
                QueueUrl=push.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
            )
        drain_seconds = time.perf_counter() - started
        by_state = push.log.summary(TENANT).by_state
        assert by_state[PostingState.QUEUED] == count, by_state
        assert len(messages) == count == pushes, (len(messages), pushes)
        wiring.reset()

    print(f"recheck of {count} waiting invoices (moto in process, one tenant)")
    print(f"  seeding: {seed_seconds:.1f} s")
    print(f"  POST /postings/recheck: {answer['statusCode']} {body} in {answer_seconds * 1000:.0f} ms")
    print(f"    DynamoDB: {_of(answered, 'dynamodb')}  SQS: {_of(answered, 'sqs')}")
    product_sqs = {k: v for k, v in _of(drained, "sqs").items() if k not in SQS_OWN}
    dynamo = _of(drained, "dynamodb")
    sends, operations = sum(product_sqs.values()), sum(dynamo.values())
    print(f"  through the queue: {drain_seconds:.1f} s, {pages} pages in {deliveries} deliveries")
    in_handler = sum(page_seconds)
    moto = handler_seconds["sqs"] + handler_seconds["dynamodb"]
    print(
        f"    push handler: {in_handler:.1f} s in all, a page {statistics.median(page_seconds):.1f} s "
        f"(max {max(page_seconds):.1f}); of it in moto: SQS {handler_seconds['sqs']:.1f} s, "
        f"DynamoDB {handler_seconds['dynamodb']:.1f} s; the rest {in_handler - moto:.1f} s"
    )
    print(f"    DynamoDB: {operations} operations {dynamo}")
    print(f"    SQS sends by the worker: {sends} calls {product_sqs}, {pushes} push messages")
    print(f"    per document: {operations / count:.3f} DynamoDB, {sends / count:.3f} SQS")


def on_local_stack(rounds: int) -> None:
    tenant = "bench-local"
    with (
        LocalStack(LocalStackConfig(log=None, env={"POWERTOOLS_LOG_LEVEL": "WARNING"})) as stack,
        httpx2.Client(timeout=30) as http,
    ):
        host = Host(stack, http)
        host.connect(tenant)
        stack.wait_idle(60)
        host.prepare(tenant)
        host.ok(
            "PUT", f"/tenants/{tenant}/settings", {"auto_create_customers": True, "revenue_account_id": "1"}
        )
        assert host.call("PUT", f"/tenants/{tenant}/clients/c-1", client("c-1")).status_code == 202
        stack.wait_idle(60)
        answers: list[float] = []
        delays: list[float] = []
        for n in range(rounds):
            code = f"W-NEW-{n}"
            host.ok(
                "PUT", f"/tenants/{tenant}/catalog/work_code/{code}", {"version": 1, "name": f"New work {n}"}
            )
            document = local_invoice(f"i-{n}", "c-1")
            document["lines"][0]["code"] = code
            assert host.ok("PUT", f"/tenants/{tenant}/invoices/i-{n}", document)["state"] == "needs_attention"
            stack.wait_idle(60)
            started = time.perf_counter()
            host.ok("POST", f"/tenants/{tenant}/mappings/work_code/export", {"app_ids": [code]})
            answers.append(time.perf_counter() - started)
            while host.ok("GET", f"/tenants/{tenant}/postings/invoice/i-{n}")["state"] != "posted":
                assert time.perf_counter() - started < 60, "not posted within 60 s"
                time.sleep(0.01)
            delays.append(time.perf_counter() - started)
            stack.wait_idle(60)
        rechecks = [i for i in stack.invocations("api") if i.trigger.endswith("/postings/recheck")]
        assert not rechecks

    def figures(values: list[float]) -> str:
        return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"

    print(f"export -> posted on the local stack ({rounds} rounds, no recheck call)")
    print(f"  export answered: {figures(answers)}")
    print(f"  export request to invoice posted: {figures(delays)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    in_process(args.documents)
    on_local_stack(args.rounds)


if __name__ == "__main__":
    main()
