"""Pull-side metered reads, counted by the QBO sandbox (``metered_reads``), not estimated.

Runs the real handlers (``functions.sweep``, ``functions.changes``) against the sandbox over real
sockets, with DynamoDB and KMS in moto, for one tenant connected through the real OAuth flow:

- an idle tenant for one day at the default sweep schedule, ``rate(6 hours)`` (docs/pull.md);
- 1,000 changes applied by one sweep (one window, so the client splits it at the 1,000 cap);
- 1,000 changes applied through webhook notices, in FIFO deliveries of 10 (bursts) and of 1
  (a trickle), each delivery arriving a minute after the previous one;
- 1,000 changes made one every 2 s (steady), their notices queued behind the delivery being
  handled while the change worker waits for its next read (the paced pull, docs/pull.md);

then prints what that means against Intuit's Builder tier (500,000 metered reads a month).

    .venv/bin/python scripts/bench_pull.py [--changes 1000] [--sweep-hours 6]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from qbo_sandbox.server import SandboxServer  # noqa: E402
from qbo_sandbox.settings import SandboxSettings  # noqa: E402
from shared import wiring  # noqa: E402
from shared.kernel.events import CLIENT_IMPORTED, RecordingPublisher  # noqa: E402
from shared.kernel.observability import logger  # noqa: E402
from shared.pull import changes  # noqa: E402
from tests.integration.connections_fixtures import (  # noqa: E402
    LIMITS_OFF,
    LambdaContext,
    World,
    sandbox_settings,
)
from tests.moto_env import mocked_backends  # noqa: E402
from tests.sqs_records import made_up_record  # noqa: E402

TENANT = "bench-firm"
CHANGES_QUEUE = "qbo-link-changes.fifo"
BUILDER_READS_PER_MONTH = 500_000
DAYS_PER_MONTH = 30


class Bench:
    def __init__(self, world: World, realm: str) -> None:
        self.world = world
        self.realm = realm

    def reads(self) -> int:
        return int(self.world.sandbox("GET", f"/counters?realm={self.realm}").get("metered_reads", 0))

    def advance(self, **span: float) -> None:
        self.world.sandbox("POST", "/clock/advance", span)

    def customer(self, name: str) -> str:
        path = f"/companies/{self.realm}/entities/customer"
        return str(self.world.sandbox("POST", path, {"DisplayName": name})["Customer"]["Id"])

    def sweep(self) -> None:
        """One tenant's sweep as the change worker runs it from the schedule's fan-out message
        (the fan-out itself enqueues only and reads nothing from QBO)."""
        request = changes.SweepRequest(
            tenant_id=TENANT, realm_id=self.realm, source="sweep", requested_at=self.world.clock.now()
        )
        exchange = wiring.pull_service().sweep_request(request)
        assert exchange is not None, "the tenant is not connected"

    def deliver(self, ids: list[str], made_at: list[str] | None = None) -> None:
        """One FIFO delivery of webhook notices (the receiver's message bodies) to the worker;
        ``made_at``: when each change was made (QBO's stamp in the notice), else now."""
        from functions.changes import handler

        now = self.world.clock.now().isoformat()
        records = []
        for number, entity_id in enumerate(ids):
            body = {
                "tenant_id": TENANT,
                "realm_id": self.realm,
                "entity": "Customer",
                "entity_id": entity_id,
                "operation": "Create",
                "occurred_at": made_at[number] if made_at else now,
                "deleted_id": None,
                "event_id": uuid.uuid4().hex,
                "source": "webhook",
            }
            records.append(made_up_record(json.dumps(body), number, TENANT, CHANGES_QUEUE))
        result = handler.lambda_handler({"Records": records}, LambdaContext())
        assert result == {"batchItemFailures": []}, result


@contextlib.contextmanager
def environment(server: SandboxServer) -> Iterator[tuple[Bench, RecordingPublisher]]:
    with mocked_backends() as aws:
        settings = sandbox_settings(
            server,
            "pull-bench-state-signing-key",
            app_id="qbo-link-bench-app",
            http_timeout_seconds=30,
            kms_key_id=aws.key_id,
        )
        events = RecordingPublisher()
        wiring.reset()
        wiring.override(settings=settings, clock=server.sandbox.clock, events=events)
        world = World(server, settings, events, aws.key_id, aws.dynamodb, aws.kms)
        try:
            world.sandbox("POST", "/limits", LIMITS_OFF)
            yield Bench(world, world.connect(TENANT)), events
        finally:
            wiring.reset()
            world.http.close()


def imported(events: RecordingPublisher) -> int:
    return len({e.event_id for e in events.of_type(CLIENT_IMPORTED)})


def idle_day(bench: Bench, sweep_hours: float) -> int:
    bench.sweep()  # the first sweep sets the cursors
    before = bench.reads()
    sweeps = round(24 / sweep_hours)
    for _ in range(sweeps):
        bench.advance(hours=sweep_hours)
        bench.sweep()
    return bench.reads() - before


def sweep_burst(bench: Bench, events: RecordingPublisher, count: int) -> tuple[int, int]:
    bench.advance(minutes=10)
    start = imported(events)
    for number in range(count):
        if number % 100 == 0:
            bench.advance(seconds=2)
        bench.customer(f"Swept {uuid.uuid4().hex[:12]}")
    bench.advance(minutes=10)
    before = bench.reads()
    bench.sweep()
    return bench.reads() - before, imported(events) - start


def webhook_flow(
    bench: Bench, events: RecordingPublisher, count: int, per_delivery: int, every: float = 60.0
) -> tuple[int, int]:
    """``count`` customers created in QBO, ``per_delivery`` at a time every ``every`` seconds, each
    batch's notices delivered at once (the worker's waits move the sandbox's clock, not the bench's)."""
    bench.advance(hours=1)
    start = imported(events)
    before = bench.reads()
    for first in range(0, count, per_delivery):
        ids = [
            bench.customer(f"Hooked {uuid.uuid4().hex[:12]}") for _ in range(min(per_delivery, count - first))
        ]
        bench.deliver(ids)
        bench.advance(seconds=every)
    return bench.reads() - before, imported(events) - start


def webhook_steady(bench: Bench, events: RecordingPublisher, count: int, every: float) -> tuple[int, int]:
    """``count`` customers created in QBO one every ``every`` seconds of the sandbox's clock, the
    world going on while the change worker waits: a change made during a wait has its notice queued
    behind the delivery being handled (the tenant's FIFO group), delivered up to 10 at a time."""
    bench.advance(hours=1)
    start = imported(events)
    before = bench.reads()
    pending: list[tuple[str, str]] = []  # (customer id, when it was made)
    state = {"made": 0, "now": 0.0, "next": 0.0}

    def until(moment: float) -> None:
        """Let the sandbox's clock reach ``moment``, making each change due on the way."""
        while state["made"] < count and state["next"] <= moment:
            if state["next"] > state["now"]:
                bench.advance(seconds=state["next"] - state["now"])
                state["now"] = state["next"]
            made = bench.customer(f"Steady {uuid.uuid4().hex[:12]}")
            pending.append((made, bench.world.clock.now().isoformat()))
            state["made"] += 1
            state["next"] += every
        if moment > state["now"]:
            bench.advance(seconds=moment - state["now"])
            state["now"] = moment

    service = wiring.pull_service()
    waits = service.sleep
    service.sleep = lambda seconds: until(state["now"] + seconds)
    try:
        while state["made"] < count or pending:
            if not pending:
                until(state["next"])
            batch, pending[:] = pending[:10], pending[10:]
            bench.deliver([i for i, _ in batch], [at for _, at in batch])
    finally:
        service.sleep = waits
    return bench.reads() - before, imported(events) - start


def month_share(reads_per_month: float, tenants: int) -> str:
    return f"{100 * reads_per_month * tenants / BUILDER_READS_PER_MONTH:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--sweep-hours", type=float, default=6.0)
    args = parser.parse_args()
    n = args.changes

    handler = logger.registered_handler  # the handlers' JSON log lines go to a buffer, not the terminal
    previous = handler.setStream(io.StringIO()) if isinstance(handler, logging.StreamHandler) else None
    quiet = contextlib.redirect_stdout(io.StringIO())  # and their metric lines
    try:
        with quiet, SandboxServer(SandboxSettings(port=0)) as server, environment(server) as (bench, events):
            wiring.pull_service().sleep = lambda seconds: bench.advance(seconds=seconds)
            idle = idle_day(bench, args.sweep_hours)
            swept, swept_applied = sweep_burst(bench, events, n)
            burst, burst_applied = webhook_flow(bench, events, n, 10)
            trickle, trickle_applied = webhook_flow(bench, events, n, 1)
            steady, steady_applied = webhook_steady(bench, events, n, every=2.0)
    finally:
        if previous is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(previous)

    assert swept_applied == n, swept_applied
    assert burst_applied == n, burst_applied
    assert trickle_applied == n, trickle_applied
    assert steady_applied == n, steady_applied
    per_month = idle * DAYS_PER_MONTH
    idle_tenants = BUILDER_READS_PER_MONTH // max(per_month, 1)
    print(f"Pull metered reads (QBO sandbox counters), sweep every {args.sweep_hours:g} h")
    print(f"  idle tenant:                          {idle} reads/day, {per_month} reads/month")
    print(f"    Builder tier (500,000/month) fits   {idle_tenants:,} idle tenants on sweeps alone")
    print(f"    1,000 idle tenants use              {month_share(per_month, 1000)} of the tier")
    scale = 1000 / n
    print(f"  per 1,000 changes applied ({n} measured each):")
    print(f"    one sweep window (cap split)        {swept * scale:g} reads")
    print(f"    webhooks, deliveries of 10          {burst * scale:g} reads")
    print(f"    webhooks, one notice a minute       {trickle * scale:g} reads")
    print(f"    webhooks, one notice every 2 s      {steady * scale:g} reads (paced: one read per interval)")
    print("  Builder-tier reading: 500,000 reads/month buys")
    for label, reads in (
        ("sweep", swept),
        ("webhook bursts", burst),
        ("webhook trickle", trickle),
        ("webhook steady", steady),
    ):
        per_thousand = reads * scale
        print(
            f"    {label:<18} {BUILDER_READS_PER_MONTH / max(per_thousand, 1e-9) * 1000:,.0f} changes/month"
        )


if __name__ == "__main__":
    main()
