"""The input fuzzer at full size against a local stack it starts (``qbo_link_local``), over HTTP.

Connects two tenants through the OAuth flow (as ``tests/e2e/local_fixtures.Host`` does), then sends
``--requests`` requests to the tenant API (generated from its OpenAPI document with hypothesis, a
fifth of them hand-made hostile bodies: deep nesting, invalid UTF-8 under every content type,
multipart, huge numbers, NaN, a 5,000-line invoice, control characters in ids) and ``--webhook``
and ``--oauth`` requests to ``POST /webhooks/qbo`` and the three ``GET /oauth/...`` routes; then sends
every refused request again between two snapshots of all tables, queues, the bus and the QBO company.
The engine and its checks: ``tests/e2e/fuzz_engine.py``.  Exits 1 when any check fails.

    .venv/bin/python scripts/fuzz_api.py [--requests 10000] [--webhook 1000] [--oauth 1000]
        [--seed 13] [--explain]

``--explain`` takes a snapshot after every refused request instead of around the batch (slow), to
name the request behind a state change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qbo_link_local.stack import LocalStack, LocalStackConfig  # noqa: E402
from tests.e2e.fuzz_engine import Generator, api_document, report, run  # noqa: E402
from tests.e2e.local_fixtures import Host  # noqa: E402

NASTY_SHARE = 5  # one tenant API request in five carries a hand-made hostile body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="tenant API requests")
    parser.add_argument("--webhook", type=int, default=1_000, help="POST /webhooks/qbo requests")
    parser.add_argument("--oauth", type=int, default=1_000, help="GET /oauth/... requests")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--explain", action="store_true", help="a snapshot after every refused request")
    args = parser.parse_args()
    nasty = args.requests // NASTY_SHARE
    counts = {"api": args.requests - nasty, "nasty": nasty, "webhook": args.webhook, "oauth": args.oauth}
    with (
        LocalStack(LocalStackConfig(retry_delay=0.1, log=lambda _line: None)) as stack,
        httpx2.Client(timeout=120) as http,
    ):
        host = Host(stack, http)
        for tenant in ("firm-a", "firm-b"):
            host.connect(tenant)
        stack.wait_idle(120)
        for tenant in ("firm-a", "firm-b"):
            host.prepare(tenant)
        assert stack.sandbox is not None
        generator = Generator(
            api_document(), "firm-a", host.realms["firm-a"], stack.sandbox.sandbox.settings.verifier_token
        )
        print(f"sending {sum(counts.values())} requests ({counts}), seed {args.seed}", flush=True)
        figures = run(
            stack,
            http,
            generator,
            counts,
            run_seed=args.seed,
            progress=lambda n, total: print(f"  {n}/{total}", flush=True),
            explain=args.explain,
        )
    for line in report(figures):
        print(line)
    failed = figures.server_errors or figures.dropped or figures.problems or figures.state_changes
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
