"""Running the real Lambda handlers of ``functions/`` in this process, one thread per trigger.

Lambda gives every concurrent invocation its own execution environment.  Here all handlers share
one interpreter, so the runtime keeps what Lambda keeps apart apart:

* one invocation of a function at a time (a lock per function): the handlers' module-level objects
  (Powertools resolvers and batch processors) serve one event at a time, as in one Lambda
  environment.  Different functions run concurrently.
* metrics: Powertools keeps one process-wide metric set and prints it as EMF when a handler ends;
  two handlers ending together would publish each other's metrics (and warn about an empty set).
  While the stack runs, the shared ``Metrics`` provider records each value under the function
  that added it (``Invoker.metrics()``) instead of printing EMF.
"""

from __future__ import annotations

import importlib
import threading
import time
import traceback
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.manifest import FunctionSpec
from qbo_link_local.gateway import LocalContext

MAX_HISTORY = 10_000


@dataclass(frozen=True)
class Call:
    """One handler run: its answer or the exception it raised."""

    result: Any
    error: Exception | None
    started_at: datetime
    duration_ms: float

    @property
    def failed(self) -> bool:
        return self.error is not None

    def error_text(self) -> str:
        return "" if self.error is None else f"{type(self.error).__name__}: {self.error}"


@dataclass(frozen=True)
class Invocation:
    """What the log and ``LocalStack.invocations()`` show of one run."""

    function: str  # FunctionSpec.name
    trigger: str  # "PUT /tenants/t1/invoices/i1", "PushQueue", "SweepSchedule", "OnboardRule"
    started_at: datetime
    duration_ms: float
    outcome: str  # "202", "ok", "1 of 3 failed", "error"
    ok: bool
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    traceback: tuple[str, ...] = ()  # the handler's exception, as Lambda would log it


class InvocationError(RuntimeError):
    """A handler raised (``LocalStack.run_schedule``); the original is the ``__cause__``."""


class _MetricsSink:
    """Records Powertools metrics per function instead of printing process-wide EMF."""

    def __init__(self, current: Callable[[], str | None]) -> None:
        self._current = current
        self._lock = threading.Lock()
        self.values: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._provider: Any = None
        self._observer: Callable[[Any], None] | None = None

    def install(self) -> None:
        from shared.kernel import observability
        from shared.qbo import metrics as qbo_metrics

        provider: Any = observability.metrics.provider
        provider.add_metric = self.add_metric
        provider.flush_metrics = self.flush_metrics
        self._provider = provider
        # The QBO client's observer prints one EMF line per QBO call (``single_metric``): counted
        # here instead, per function (wiring looks the observer up when it builds a client).
        self._observer = getattr(qbo_metrics, "record_qbo_call", None)
        if self._observer is not None:
            qbo_metrics.record_qbo_call = self.record_qbo_call

    def uninstall(self) -> None:
        from shared.qbo import metrics as qbo_metrics

        provider, self._provider = self._provider, None
        if provider is not None:
            for name in ("add_metric", "flush_metrics"):
                provider.__dict__.pop(name, None)
        if self._observer is not None:
            qbo_metrics.record_qbo_call = self._observer  # type: ignore[assignment]
            self._observer = None

    def record_qbo_call(self, call: Any) -> None:
        function = self._current() or "(outside a handler)"
        with self._lock:
            values = self.values[function]
            values["QboCalls"] += 1
            values["QboLatencyMs"] += round(float(call.seconds) * 1000, 3)
            if call.throttled:
                values["QboThrottled"] += 1

    def count_dynamodb_call(self, **_kwargs: Any) -> None:
        """boto3's ``before-call.dynamodb`` hook: one ``DynamoDBCalls`` for the running function."""
        function = self._current()
        if function is None:
            return  # the stack's own calls (resources, idle checks), not a handler's
        with self._lock:
            self.values[function]["DynamoDBCalls"] += 1

    def add_metric(self, name: str, unit: Any = None, value: float = 0.0, resolution: Any = 60) -> None:
        from aws_lambda_powertools.metrics.exceptions import MetricValueError

        del unit, resolution
        if not isinstance(value, int | float):
            raise MetricValueError(f"{value} is not a valid number")
        function = self._current() or "(outside a handler)"
        with self._lock:
            self.values[function][name.strip()] += float(value)

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        del raise_on_empty_metrics  # recorded as they come: nothing to flush

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {function: dict(values) for function, values in self.values.items()}


class Invoker:
    """Calls handlers, one at a time per function, and keeps counts and a bounded history."""

    def __init__(
        self, functions: Sequence[FunctionSpec], on_invocation: Callable[[Invocation], None] | None = None
    ) -> None:
        self.functions = {spec.name: spec for spec in functions}
        self._on_invocation = on_invocation
        self._locks = {spec.name: threading.Lock() for spec in functions}
        self._state = threading.Lock()
        self._active: dict[str, int] = defaultdict(int)
        self._counts: dict[str, dict[str, int]] = {
            name: defaultdict(int) for name in ("invocations", "errors", "batch_item_failures")
        }
        self._history: deque[Invocation] = deque(maxlen=MAX_HISTORY)
        self._local = threading.local()
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self.sink = _MetricsSink(lambda: getattr(self._local, "function", None))

    def load(self) -> dict[str, float]:
        """Import every handler now (its cold start): milliseconds per function."""
        took: dict[str, float] = {}
        for name, spec in self.functions.items():
            started = time.perf_counter()
            module = importlib.import_module(spec.handler.rsplit(".", 1)[0])
            self._handlers[name] = module.lambda_handler
            took[name] = (time.perf_counter() - started) * 1000
        return took

    def call(self, spec: FunctionSpec, event: dict[str, Any]) -> Call:
        handler = self._handlers.get(spec.name)
        if handler is None:
            module = importlib.import_module(spec.handler.rsplit(".", 1)[0])
            handler = self._handlers[spec.name] = module.lambda_handler
        with self._state:
            self._active[spec.name] += 1
        try:
            with self._locks[spec.name]:
                self._local.function = spec.name
                started_at = datetime.now(UTC)
                started = time.perf_counter()
                try:
                    result, error = handler(event, LocalContext(spec)), None
                except Exception as raised:  # the runtime reports any failure of the function
                    result, error = None, raised
                finally:
                    self._local.function = None
                duration_ms = (time.perf_counter() - started) * 1000
        finally:
            with self._state:
                self._active[spec.name] -= 1
        return Call(result, error, started_at, duration_ms)

    def record(
        self,
        spec: FunctionSpec,
        trigger: str,
        call: Call,
        outcome: str,
        *,
        ok: bool,
        batch_item_failures: int = 0,
        detail: dict[str, Any] | None = None,
    ) -> Invocation:
        invocation = Invocation(
            function=spec.name,
            trigger=trigger,
            started_at=call.started_at,
            duration_ms=call.duration_ms,
            outcome=outcome,
            ok=ok,
            error=call.error_text() or None,
            detail=dict(detail or {}),
            traceback=tuple(error_lines(call.error)) if call.error is not None else (),
        )
        with self._state:
            self._counts["invocations"][spec.name] += 1
            if call.failed:
                self._counts["errors"][spec.name] += 1
            self._counts["batch_item_failures"][spec.name] += batch_item_failures
            self._history.append(invocation)
        if self._on_invocation is not None:
            self._on_invocation(invocation)
        return invocation

    def busy(self) -> list[str]:
        with self._state:
            return [f"{name} running" for name, count in self._active.items() if count > 0]

    def counts(self) -> dict[str, dict[str, int]]:
        with self._state:
            return {
                kind: {name: values.get(name, 0) for name in self.functions}
                for kind, values in self._counts.items()
            }

    def history(self, function: str | None = None) -> list[Invocation]:
        with self._state:
            return [i for i in self._history if function is None or i.function == function]


def error_lines(error: BaseException) -> list[str]:
    """The traceback of a handler's exception, as Lambda would log it."""
    return "".join(traceback.format_exception(error)).rstrip().splitlines()
