"""Webhook receiver figures, in process: the real handler (``functions.webhooks.handler``) on API
Gateway v2 events, DynamoDB and the SQS FIFO changes queue in moto.

* the handler module's import time in a fresh interpreter (its share of a cold start);
* times at load: ``--senders`` threads deliver signed CloudEvents batches without pause, 1,000
  deliveries of 10 events and 100 deliveries of 100 events, each delivery over 3 of 10 tenants'
  realms and every event new: p50/p95/p99/max of the time in the handler and of the answer time a
  sender sees (which adds the wait for the function), and the DynamoDB and SQS calls per delivery
  (counted on boto3's event system);
* with ``--against DIR`` (another checkout, e.g. ``git archive`` of the code before a change),
  every figure is measured in both trees in the same run, alternately, each scenario in a fresh
  interpreter, and the ratios are printed (medians over ``--repeat`` runs of each).

The handler runs as the local stack runs it (``qbo_link_local.runtime.Invoker``): one invocation at a
time, as in one Lambda environment, since Powertools keeps the current event on its router class;
the senders queue for it.  moto's DynamoDB is made atomic as in the tests
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
full collections, 15-100 ms each and growing, land in both trees' tails.

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

from shared.kernel import constants

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


def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def measure(deliveries: int, events: int, senders: int, *, freeze: bool = True) -> dict[str, Any]:
    """One scenario in this interpreter, with the code the caller put first on sys.path."""
    import functools
    import gc
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
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.core.utils import camelcase_to_underscores
    from moto.sqs import models as moto_sqs

    from infra import manifest as stack
    from infra import tables
    from qbo_link_local.moto_dynamodb import atomic_dynamodb
    from qbo_link_local.runtime import Invoker
    from shared import wiring
    from shared.connections.store import ConnectionStore
    from shared.pull import notifications
    from tests.integration.connections_fixtures import http_event

    os.environ[constants.VERIFIER_TOKEN_ENV] = TOKEN

    def signed(raw: bytes) -> dict[str, Any]:
        event: dict[str, Any] = http_event("POST", "/webhooks/qbo")
        event["headers"] = {
            "content-type": "application/cloudevents+json",
            "intuit-signature": notifications.expected_signature(raw, TOKEN),
        }
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
        return event

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
        os.environ[constants.CHANGES_QUEUE_URL_ENV] = url
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

        # As the local stack runs it: one invocation at a time (Powertools keeps the current event
        # on its router class, so one environment serves one event at a time, as in Lambda), with
        # metrics recorded per function instead of printed.
        invoker = Invoker([stack.WEBHOOKS])
        invoker.sink.install()
        invoker.load()
        first = invoker.call(stack.WEBHOOKS, signed(delivery(0, events)))
        assert first.error is None, first.error_text()
        assert first.result["statusCode"] == 200, first.result
        calls.clear()
        Consumed.taken = 0

        bodies = [signed(delivery(k, events)) for k in range(1, deliveries + 1)]
        if freeze:
            gc.freeze()  # what is here now (moto, botocore's models, the bodies) is never collected

        def answer(event: dict[str, Any]) -> tuple[float, float]:
            began = time.perf_counter()
            call = invoker.call(stack.WEBHOOKS, event)
            took = time.perf_counter() - began
            assert call.error is None, call.error_text()
            assert call.result["statusCode"] == 200, call.result
            return took * 1000, call.duration_ms

        began = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            timings = list(pool.map(answer, bodies))
        wall = time.perf_counter() - began
        invoker.sink.uninstall()
        assert Consumed.taken == deliveries * events, (Consumed.taken, deliveries * events)
        wiring.reset()

    def spread(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "p50": percentile(ordered, 50),
            "p95": percentile(ordered, 95),
            "p99": percentile(ordered, 99),
            "max": ordered[-1],
        }

    return {
        "shared": str(Path(sys.modules["shared"].__file__ or "").parent),
        "deliveries": deliveries,
        "events": events,
        "senders": senders,
        "first_ms": first.duration_ms,
        "answer": spread([answered for answered, _ in timings]),
        "handler": spread([handled for _, handled in timings]),
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
    """Each tree's medians over its runs; the ratios when there is a before and an after."""
    quantiles = ("p50", "p95", "p99", "max")
    print(f"\n{label}")
    print(f"  {'':<22} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    medians: dict[str, dict[str, float]] = {}
    for tree, runs in results.items():
        figures: dict[str, float] = {}
        for kind in ("handler", "answer"):
            figures.update({f"{kind} {q}": statistics.median(r[kind][q] for r in runs) for q in quantiles})
            row = " ".join(f"{figures[f'{kind} {q}']:8.1f}" for q in quantiles)
            print(f"  {tree + (' in handler' if kind == 'handler' else ' answered'):<22} {row}")
        figures["per_second"] = statistics.median(r["per_second"] for r in runs)
        figures["first_ms"] = statistics.median(r["first_ms"] for r in runs)
        medians[tree] = figures
        print(
            f"  {'':<22} {figures['per_second']:.1f} deliveries/s; per delivery DynamoDB "
            f"{calls_text(runs[0]['calls'], 'dynamodb')}, SQS {calls_text(runs[0]['calls'], 'sqs')}; "
            f"first delivery {figures['first_ms']:.0f} ms"
        )
    if set(medians) == {"before", "after"}:
        before, after = medians["before"], medians["after"]
        for kind in ("handler", "answer"):
            ratios = "  ".join(f"{q} {before[f'{kind} {q}'] / after[f'{kind} {q}']:.1f}x" for q in quantiles)
            print(f"  before/after {kind:<9} {ratios}")
        print(f"  throughput after/before {after['per_second'] / before['per_second']:.1f}x")


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
        figures = measure(deliveries, events, args.senders, freeze=not args.keep_gc)
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
