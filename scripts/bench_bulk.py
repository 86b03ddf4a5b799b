"""Benchmark: N documents through the bulk route against one request per document, on the local stack.

The local stack (``qbo-link dev``'s engine: moto, the sandbox, the gateway, the pollers, the real
handlers) in this process; one tenant connected through the OAuth flow, customers created on demand,
its work code mapped.  For each way, ``--documents`` documents (one client per 20 invoices, then
the invoices) are sent and followed until every one is posted; printed: the requests, the time to
send, the time until all are posted, and the API function's own time (the sum of its invocations'
durations).  Usage:

    .venv/bin/python scripts/bench_bulk.py [--documents 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402

from qbo_link_local.stack import LocalStack, LocalStackConfig  # noqa: E402
from tests.e2e.local_fixtures import Host, client, invoice  # noqa: E402

BULK_LIMIT = 500


def documents(tag: str, count: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` documents: a client, then its 20 invoices, and so on (amounts varied to the cent)."""
    found: list[tuple[str, dict[str, Any]]] = []
    n = 0
    while len(found) < count:
        client_id = f"{tag}c{n}"
        found.append(("client", client(client_id, f"Bench {tag} {n}")))
        for k in range(min(20, count - len(found))):
            amount = f"{10 + (n * 20 + k) % 990}.{(n + k) % 100:02d}"
            found.append(("invoice", invoice(f"{tag}i{n}-{k}", client_id, amount=amount)))
        n += 1
    return found


def posted(host: Host, tenant: str) -> int:
    summary = host.ok("GET", f"/v1/tenants/{tenant}/postings/summary")
    return int(summary["by_state"].get("posted", 0))


def follow(host: Host, tenant: str, target: int, timeout: float = 1800) -> float:
    start = time.perf_counter()
    while posted(host, tenant) < target:
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"not all posted after {timeout} s")
        time.sleep(0.5)
    return time.perf_counter() - start


def api_seconds(stack: LocalStack, since: int) -> tuple[int, float]:
    """The sending requests (not the polling) since ``since``: how many, and the API's time in them."""
    calls = [c for c in stack.invocations("api")[since:] if not c.trigger.startswith("GET ")]
    return len(calls), sum(c.duration_ms for c in calls) / 1000


def run(stack: LocalStack, host: Host, way: str, count: int) -> dict[str, float]:
    tenant = f"bench-{way}"
    host.connect(tenant)
    stack.wait_idle(120)
    host.prepare(tenant)
    docs = documents(way[0], count)
    paths = {"client": "clients", "invoice": "invoices"}
    before = len(stack.invocations("api"))
    already = posted(host, tenant)
    start = time.perf_counter()
    if way == "bulk":
        for at in range(0, len(docs), BULK_LIMIT):
            body = {"documents": [{"kind": k, "document": d} for k, d in docs[at : at + BULK_LIMIT]]}
            answer = host.call("POST", f"/v1/tenants/{tenant}/documents", body)
            assert answer.status_code == 202, answer.text
    else:
        for kind, document in docs:
            answer = host.call("PUT", f"/v1/tenants/{tenant}/{paths[kind]}/{document['id']}", document)
            assert answer.status_code == 202, answer.text
    sent = time.perf_counter() - start
    waited = follow(host, tenant, already + count)
    requests, seconds = api_seconds(stack, before)
    return {"requests": requests, "send_s": sent, "all_posted_s": sent + waited, "api_s": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    args = parser.parse_args(argv)
    config = LocalStackConfig(port=0, sandbox_port=0, moto_port=0, log=lambda _line: None)
    with LocalStack(config) as stack, httpx2.Client(timeout=120, trust_env=False) as http:
        host = Host(stack, http)
        figures = {way: run(stack, host, way, args.documents) for way in ("bulk", "single")}
    print(f"{args.documents} documents (a client per 20 invoices), local stack, one tenant")
    print(f"{'way':<8}{'requests':>10}{'send (s)':>11}{'all posted (s)':>16}{'API time (s)':>14}")
    for way, f in figures.items():
        print(
            f"{way:<8}{f['requests']:>10.0f}{f['send_s']:>11.1f}{f['all_posted_s']:>16.1f}{f['api_s']:>14.1f}"
        )
    bulk, single = figures["bulk"], figures["single"]
    print(
        f"bulk / single: send {bulk['send_s'] / single['send_s']:.2f}, "
        f"all posted {bulk['all_posted_s'] / single['all_posted_s']:.2f}, "
        f"API time {bulk['api_s'] / single['api_s']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
