"""What the local stack's SQS pollers do with a batch: invoke the function a queue or an event rule
targets (as Lambda's event source mapping and EventBridge would), or log the outbound events."""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from infra import manifest
from qbo_link_local.logs import note_line
from qbo_link_local.pollers import QueuePoller, lambda_record

if TYPE_CHECKING:
    from infra.manifest import FunctionSpec
    from qbo_link_local.resources import LocalResources, QueueInfo, RuleTarget
    from qbo_link_local.runtime import Invoker

Delivery = Callable[[list[dict[str, Any]]], set[str]]  # SQS messages -> ids of the failed ones


def sqs_delivery(invoker: Invoker, function: FunctionSpec, queue: QueueInfo) -> Delivery:
    """Lambda's SQS event source: one invocation per batch, partial batch responses honoured."""

    def deliver(messages: list[dict[str, Any]]) -> set[str]:
        records = [lambda_record(m, queue) for m in messages]
        ids = [r["messageId"] for r in records]
        call = invoker.call(function, {"Records": records})
        failed = set(ids) if call.failed else batch_item_failures(call.result, ids)
        if call.failed:
            outcome = "error"
        elif failed:
            outcome = f"{len(failed)} of {len(ids)} failed"
        else:
            outcome = f"{len(ids)} ok"
        detail = {
            "messages": [
                {
                    "id": r["messageId"],
                    "group": r["attributes"].get("MessageGroupId"),
                    "sequence": r["attributes"].get("SequenceNumber"),  # random in moto
                    "sent": int(r["attributes"].get("SentTimestamp", "0")),
                    "receive_count": int(r["attributes"].get("ApproximateReceiveCount", "1")),
                }
                for r in records
            ],
            "failed": sorted(failed),
        }
        invoker.record(
            function,
            queue.logical_id,
            call,
            outcome,
            ok=not call.failed,
            batch_item_failures=0 if call.failed else len(failed),
            detail=detail,
        )
        return failed

    return deliver


def rule_delivery(invoker: Invoker, target: RuleTarget) -> Delivery:
    """An EventBridge rule's Lambda target: one invocation per event."""

    def deliver(messages: list[dict[str, Any]]) -> set[str]:
        failed: set[str] = set()
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except ValueError:
                failed.add(message["MessageId"])
                continue
            call = invoker.call(target.function, event)
            if call.failed:
                failed.add(message["MessageId"])
            invoker.record(
                target.function,
                target.rule.logical_id,
                call,
                "error" if call.failed else "ok",
                ok=not call.failed,
                detail={"detail-type": event.get("detail-type"), "id": event.get("id")},
            )
        return failed

    return deliver


def batch_item_failures(result: Any, ids: list[str]) -> set[str]:
    """Lambda's reading of a partial batch response: an answer naming an unknown (or no) id fails
    the whole batch, as Lambda does."""
    if not isinstance(result, Mapping) or not result.get("batchItemFailures"):
        return set()
    failures = result["batchItemFailures"]
    if not isinstance(failures, list):
        return set(ids)
    named = {f.get("itemIdentifier") for f in failures if isinstance(f, Mapping)}
    if len(named) != len(failures) or not named <= set(ids):
        return set(ids)
    return {str(i) for i in named}


class OutboundEvents:
    """The events the handlers put on the bus (EventBridge's shape), the latest ``kept`` of them,
    and a count per detail-type.  Each has a number (1, 2, ...) for ``since``; ``run`` tells one run
    of the stack from the next, whose numbers start again."""

    def __init__(self, kept: int, log: Callable[[str], None]) -> None:
        import uuid

        self._lock = threading.Lock()
        self._events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=kept)
        self._counts: Counter[str] = Counter()
        self._log = log
        self._last = 0
        self.run = uuid.uuid4().hex[:12]

    def record(self, messages: list[dict[str, Any]]) -> set[str]:
        """A delivery: every message is taken (one that is not JSON is dropped)."""
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except ValueError:
                continue
            detail_type = str(event.get("detail-type", "?"))
            detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
            with self._lock:
                self._last += 1
                self._events.append((self._last, event))
                self._counts[detail_type] += 1
            tenant = detail.get("tenant_id", "") if isinstance(detail, dict) else ""
            self._log(note_line(datetime.now(UTC), "event", f"{detail_type}  tenant={tenant}"))
        return set()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(e) for _, e in self._events if detail_type is None or e.get("detail-type") == detail_type
            ]

    def since(self, after: int, last: int | None = None) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        """The kept events numbered above ``after`` (only the ``last`` of them when given), and the
        number to ask ``since`` for next."""
        with self._lock:
            found = [(n, dict(e)) for n, e in self._events if n > after]
            latest = self._last
        if last is not None:
            found = found[-last:] if last > 0 else []
        return found, latest


def build_pollers(
    resources: LocalResources,
    sqs: Any,
    invoker: Invoker,
    outbound: OutboundEvents,
    *,
    retry_delay: float,
    on_error: Callable[[str, BaseException], None],
) -> dict[str, QueuePoller]:
    """One poller (not started) per queue a function consumes, per event rule, and the outbound
    events' queue; by queue logical id."""
    pollers: dict[str, QueuePoller] = {}
    queues = resources.queues
    for function in manifest.FUNCTIONS:
        source = function.queue_source
        if source is None:
            continue
        queue = queues[source.queue.logical_id]
        pollers[queue.logical_id] = QueuePoller(
            queue,
            sqs,
            sqs_delivery(invoker, function, queue),
            batch_size=source.batch_size,
            retry_delay=retry_delay,
            on_error=on_error,
        )
    for target in resources.rules:
        pollers[target.queue.logical_id] = QueuePoller(
            target.queue,
            sqs,
            rule_delivery(invoker, target),
            batch_size=1,  # EventBridge invokes the function once per event
            retry_delay=retry_delay,
            on_error=on_error,
        )
    if resources.outbound is not None:
        pollers[resources.outbound.logical_id] = QueuePoller(
            resources.outbound,
            sqs,
            outbound.record,
            batch_size=10,
            retry_delay=retry_delay,
            on_error=on_error,
        )
    return pollers
