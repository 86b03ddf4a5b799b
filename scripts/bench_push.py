"""Benchmark: what one pushed invoice costs (not a test; prints figures).

Everything runs in this process as the integration tests run it: moto for DynamoDB and SQS FIFO
(with the tests' harness, ``qbo_link_local.moto_dynamodb.atomic_dynamodb``), the QBO sandbox on a
loopback port, the real API and push handlers driven with API Gateway and SQS events.  Printed:

* QBO calls per invoice for a bulk push of ``--invoices`` invoices (sandbox counters; goal 1/30);
* QBO calls (and metered reads) for one real-time invoice (goal 1, no read);
* DynamoDB operations per invoice, for accepting it (the API) and for posting it (the worker).

The rate governor is left out (the tests' QBO client has none); in production it adds its own
DynamoDB operations per QBO call.  Usage:

    .venv/bin/python scripts/bench_push.py [--invoices 300] [--clients 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from tests.integration.push_fixtures import (  # noqa: E402
    PushWorld,
    bench_push_environment,
    link_new_clients,
)

TENANT = "bench-firm"


def _invoice(n: int, clients: int) -> dict[str, Any]:
    return {
        "id": f"b{n}",
        "version": 1,
        "number": f"B-{n:05d}",
        "date": "2026-11-20",
        "client_id": f"k{n % clients}",
        "lines": [{"line_id": "1", "kind": "work", "code": "W1", "amount": "100.00", "taxable": True}],
        "tax_total": "8.25",
        "total": "108.25",
    }


class DynamoCounter:
    """Counts DynamoDB API calls made through boto3's default session (where wiring builds)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, **kwargs: Any) -> None:
        model = kwargs.get("model")
        self.calls[getattr(model, "name", "?")] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


def _qbo(push: PushWorld, realm: str) -> dict[str, Any]:
    counters: dict[str, Any] = push.counters(realm)
    push.sandbox("DELETE", "/counters")
    return counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()

    counter = DynamoCounter()
    with bench_push_environment() as (push, session):
        session.events.register("before-call.dynamodb", counter)
        realm = push.world.connect(TENANT)
        push.links.link(TENANT, "work_code", "W1", "1")
        link_new_clients(push, TENANT, realm, args.clients, "Bench Client")
        _qbo(push, realm)
        counter.take()

        started = time.perf_counter()
        for n in range(args.invoices):
            answer = push.put(TENANT, "invoices", _invoice(n, args.clients))
            assert answer.status == 202, answer.body
        accepted = counter.take()
        accept_seconds = time.perf_counter() - started
        started = time.perf_counter()
        push.drain(rounds=10_000)
        posted = counter.take()
        post_seconds = time.perf_counter() - started
        bulk = _qbo(push, realm)

        answer = push.put(TENANT, "invoices", _invoice(args.invoices, args.clients))
        assert answer.status == 202, answer.body
        single_accept = counter.take()
        push.drain()
        single_post = counter.take()
        single = _qbo(push, realm)

    n = args.invoices
    print(f"bulk push of {n} invoices ({args.clients} clients)")
    print(
        f"  QBO requests: {bulk['requests']} ({bulk['batch_requests']} batch, {bulk['metered_reads']} reads)"
    )
    print(f"  QBO calls per invoice: {bulk['requests'] / n:.4f} (1/30 = {1 / 30:.4f})")
    accept_ops, post_ops = sum(accepted.values()) / n, sum(posted.values()) / n
    print(f"  DynamoDB operations per invoice: accept {accept_ops:.1f}, post {post_ops:.1f}")
    print(f"    accept: {dict(accepted.most_common())}")
    print(f"    post:   {dict(posted.most_common())}")
    print(f"  wall time (moto in process): accept {accept_seconds:.1f} s, post {post_seconds:.1f} s")
    print("one real-time invoice")
    print(f"  QBO requests: {single['requests']} (metered reads {single['metered_reads']})")
    print(f"  DynamoDB operations: accept {sum(single_accept.values())}, post {sum(single_post.values())}")
    print(f"    accept: {dict(single_accept.most_common())}")
    print(f"    post:   {dict(single_post.most_common())}")


if __name__ == "__main__":
    main()
