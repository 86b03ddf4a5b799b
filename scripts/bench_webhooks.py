"""Webhook receiver figures, in process: the real handler (``functions.webhooks.handler``) on API
Gateway v2 events, DynamoDB and the SQS FIFO changes queue in moto.

* the handler module's import time in a fresh interpreter (its share of a cold start);
* answer times at load: ``--senders`` threads deliver signed CloudEvents batches at once, 1,000
  deliveries of 10 events and 100 deliveries of 100 events, each delivery over 3 of 10 tenants'
  realms and every event new: p50/p95/p99/max of the answer time, and the DynamoDB and SQS calls
  per delivery (counted on boto3's event system);
* with ``--against DIR`` (another checkout, e.g. ``git archive`` of the code before a change),
  every figure is measured in both trees in the same run, alternately, each scenario in a fresh
  interpreter, and the ratios are printed (medians over ``--repeat`` runs of each).

Each sender thread stands for one Lambda environment: it has its own copy of the handler module
(Powertools' resolver serves one event at a time) and shares the process's boto3 clients, moto and
the GIL with the others.  moto's DynamoDB is made atomic as in the tests
(``qbo_link_local.moto_dynamodb``).  moto does in this process, in Python, what DynamoDB and SQS do
elsewhere (about half a millisecond per item read, written or sent), so the figures compare code
paths under contention; they are not a region's.
Two costs of moto's SQS that real SQS does not have are taken out, for both trees alike, so that the
figures follow the receiver's work: the changes queue's messages are taken off as they arrive (a
consumer that keeps up; moto walks every stored message several times per send, so the answer time
would grow with the queue's length), and moto's camel-case conversion of the queue's attribute names,
which it repeats about 120 times for every message stored (some 4 ms a message here), is memoized.
The heap built before the timed part (moto, botocore's models, the prepared bodies), which a Lambda
environment does not hold, is frozen out of the garbage collector (``--keep-gc`` leaves it): its
full collections, 15-100 ms each and growing, stall every sender at once and land in both trees'
tails.

    .venv/bin/python scripts/bench_webhooks.py [--runs 10] [--senders 4] [--repeat 1] [--quick]
        [--keep-gc] [--against DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-verifier-token"  # noqa: S105 - a made-up local token
IMPORT_PROBE = (
    "import time; t = time.perf_counter(); import functions.webhooks.handler; print(time.perf_counter() - t)"
)
SCENARIOS = {"10-events": (1000, 10), "100-events": (100, 100)}  # name -> (deliveries, events each)
TENANTS = 10
REALMS_PER_DELIVERY = 3


def import_seconds(root: Path, runs: int) -> list[float]:
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    return [
        float(subprocess.check_output([sys.executable, "-c", IMPORT_PROBE], cwd=root, env=env, text=True))
        for _ in range(runs)
    ]


def realm(tenant: int) -> str:
    return f"46208{tenant:05d}"


def delivery(number: int, events: int) -> bytes:
    realms = [realm((number + r) % TENANTS) for r in range(REALMS_PER_DELIVERY)]
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "intuit.bench",
                "type": "qbo.customer.updated.v1",
                "datacontenttype": "application/json",
                "time": "2026-11-22T20:00:00.123456789Z",
                "intuitentityid": str(i),
                "intuitaccountid": realms[i % REALMS_PER_DELIVERY],
                "data": {},
            }
            for i in range(events)
        ]
    ).encode()


def ignore(*_args: object, **_kwargs: object) -> None:
    return None


def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def measure(root: Path, deliveries: int, events: int, senders: int, *, freeze: bool = True) -> dict[str, Any]:
    """One scenario in this interpreter, with ``root``'s code (the caller put it first on sys.path)."""
    import functools
    import gc
    import importlib.util
    import threading
    from concurrent.futures import ThreadPoolExecutor

    os.environ.update(  # before the first import of Powertools or moto, which read them once
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    for name in ("AWS_ENDPOINT_URL", "QBO_LINK_INTUIT_SECRET_ARN", "QBO_LINK_WEBHOOK_SECRET_ARN"):
        os.environ.pop(name, None)

    import boto3
    from moto import mock_aws

    from qbo_link_local.moto_dynamodb import atomic_dynamodb
    from shared import observability, tables, wiring
    from shared.connection_store import ConnectionStore
    from shared.pull import notifications
    from tests.integration.connections_fixtures import LambdaContext, http_event

    os.environ[notifications.VERIFIER_TOKEN_ENV] = TOKEN
    # Powertools keeps one process-wide metric set: concurrent handlers would flush each other's.
    provider: Any = observability.metrics.provider
    provider.add_metric = provider.flush_metrics = ignore

    def signed(raw: bytes) -> dict[str, Any]:
        event: dict[str, Any] = http_event("POST", "/webhooks/qbo")
        event["headers"] = {
            "content-type": "application/cloudevents+json",
            "intuit-signature": notifications.expected_signature(raw, TOKEN),
        }
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
        return event

    def handler_copy(n: int) -> Any:
        path = root / "functions" / "webhooks" / "handler.py"
        spec = importlib.util.spec_from_file_location(f"bench_webhooks_handler_{n}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    calls: Counter[str] = Counter()
    lock = threading.Lock()

    class Consumed(list[Any]):
        """moto's message list for the changes queue: each message is counted and taken off."""

        taken = 0

        def append(self, _message: Any) -> None:
            with lock:
                Consumed.taken += 1

    def count(model: Any, **_: Any) -> None:
        with lock:
            calls[f"{model.service_model.service_id}:{model.name}"] += 1

    with atomic_dynamodb(), mock_aws():
        setup = boto3.session.Session()  # the bench's own calls, not counted
        dynamodb = setup.resource("dynamodb")
        for spec in (tables.CONNECTIONS, tables.RUNTIME):
            tables.create_table(dynamodb.meta.client, spec)
        sqs = setup.client("sqs")
        url = sqs.create_queue(QueueName="bench.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        os.environ[notifications.CHANGES_QUEUE_URL_ENV] = url
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.core.utils import camelcase_to_underscores
        from moto.sqs import models as moto_sqs

        moto_sqs.sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_queue("bench.fifo")._messages = Consumed()
        moto_sqs.camelcase_to_underscores = functools.cache(camelcase_to_underscores)  # type: ignore[attr-defined]
        store = ConnectionStore(
            dynamodb.Table(tables.CONNECTIONS.default_name), dynamodb.Table(tables.RUNTIME.default_name)
        )
        for tenant in range(TENANTS):
            store.claim_realm(realm(tenant), f"bench-{tenant}")
        wiring.reset()
        boto3.setup_default_session()  # the handler's clients come from here: counted
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", count)
        boto3.DEFAULT_SESSION.events.register("before-call.sqs", count)

        handlers = [handler_copy(n) for n in range(senders)]
        started = time.perf_counter()
        first = handlers[0].lambda_handler(signed(delivery(0, events)), LambdaContext())
        first_seconds = time.perf_counter() - started
        assert first["statusCode"] == 200, first
        for n, handler in enumerate(handlers[1:], 1):  # each environment warm, as at load
            assert handler.lambda_handler(signed(delivery(n, events)), LambdaContext())["statusCode"] == 200
        calls.clear()
        Consumed.taken = 0

        bodies = [signed(delivery(k, events)) for k in range(deliveries)]
        if freeze:
            gc.freeze()  # what is here now (moto, botocore's models, the bodies) is never collected
        local = threading.local()
        spare = list(handlers)

        def take_handler() -> None:
            with lock:
                local.handler = spare.pop()

        def answer(event: dict[str, Any]) -> float:
            began = time.perf_counter()
            result = local.handler.lambda_handler(event, LambdaContext())
            took = time.perf_counter() - began
            assert result["statusCode"] == 200, result
            return took

        began = time.perf_counter()
        with ThreadPoolExecutor(senders, initializer=take_handler) as pool:
            seconds = list(pool.map(answer, bodies))
        wall = time.perf_counter() - began
        assert Consumed.taken == deliveries * events, (Consumed.taken, deliveries * events)
        wiring.reset()

    ms = sorted(s * 1000 for s in seconds)
    return {
        "shared": str(Path(sys.modules["shared"].__file__ or "").parent),
        "deliveries": deliveries,
        "events": events,
        "senders": senders,
        "first_ms": first_seconds * 1000,
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": ms[-1],
        "mean": statistics.fmean(ms),
        "per_second": deliveries / wall,
        "calls": {name: n / deliveries for name, n in sorted(calls.items())},
    }


def run_scenario(root: Path, name: str, senders: int, flags: list[str]) -> dict[str, Any]:
    """``measure`` in a fresh interpreter with ``root``'s code first on its path."""
    command = [sys.executable, __file__, "--measure", name, "--root", str(root), "--senders", str(senders)]
    output = subprocess.check_output([*command, *flags], cwd=root, text=True)
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def calls_text(calls: dict[str, float], service: str) -> str:
    chosen = {k.split(":", 1)[1]: v for k, v in calls.items() if k.lower().startswith(service + ":")}
    total = sum(chosen.values())
    detail = ", ".join(f"{op} {n:g}" for op, n in chosen.items())
    return f"{total:g} ({detail})" if chosen else "0"


def show_scenario(label: str, results: dict[str, list[dict[str, Any]]]) -> None:
    """Each tree's median over its runs; the ratios when there is a before and an after."""
    print(f"\n{label}")
    print(f"  {'':<8} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'/s':>7}  calls per delivery")
    medians: dict[str, dict[str, float]] = {}
    for tree, runs in results.items():
        keys = ("p50", "p95", "p99", "max", "per_second", "first_ms")
        figures = medians[tree] = {key: statistics.median(r[key] for r in runs) for key in keys}
        row = " ".join(f"{figures[key]:8.1f}" for key in ("p50", "p95", "p99", "max"))
        dynamodb = calls_text(runs[0]["calls"], "dynamodb")
        print(f"  {tree:<8} {row} {figures['per_second']:7.1f}  DynamoDB {dynamodb}")
        print(f"  {'':<52}  SQS {calls_text(runs[0]['calls'], 'sqs')}")
        print(f"  {'':<8} first delivery of the process (builds the clients): {figures['first_ms']:.1f} ms")
    if set(medians) == {"before", "after"}:
        before, after = medians["before"], medians["after"]
        ratios = "  ".join(f"{key} {before[key] / after[key]:.1f}x" for key in ("p50", "p95", "p99", "max"))
        print(f"  before/after  {ratios}  throughput {after['per_second'] / before['per_second']:.1f}x")


def show_import(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    print(f"{label:<52} median {statistics.median(ms):7.1f} ms   p90 {percentile(ms, 90):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh imports measured per tree")
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders (threads)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario per tree")
    parser.add_argument("--quick", action="store_true", help="a tenth of the deliveries")
    parser.add_argument(
        "--keep-gc", action="store_true", help="do not freeze the heap built before the timed part"
    )
    parser.add_argument("--against", type=Path, help="another checkout to measure as 'before'")
    parser.add_argument("--measure", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:  # a child: one scenario, one JSON line
        sys.path.insert(0, str(args.root.resolve()))
        full, events = SCENARIOS[args.measure]
        deliveries = max(1, full // 10) if args.quick else full
        figures = measure(args.root.resolve(), deliveries, events, args.senders, freeze=not args.keep_gc)
        print(json.dumps(figures))
        return

    trees = {"before": args.against.resolve()} if args.against else {}
    trees["after" if args.against else "this"] = ROOT
    for tree, root in trees.items():
        show_import(f"import functions.webhooks.handler, fresh ({tree})", import_seconds(root, args.runs))
    for name, (full, events) in SCENARIOS.items():
        deliveries = max(1, full // 10) if args.quick else full
        results: dict[str, list[dict[str, Any]]] = {tree: [] for tree in trees}
        for _ in range(args.repeat):
            for tree, root in trees.items():  # alternately, so drift on a shared machine hits both
                flags = [flag for flag, on in (("--quick", args.quick), ("--keep-gc", args.keep_gc)) if on]
                results[tree].append(run_scenario(root, name, args.senders, flags))
        label = f"{deliveries:,} deliveries of {events} events, {args.senders} senders (ms, moto in process)"
        show_scenario(label, results)


if __name__ == "__main__":
    main()
