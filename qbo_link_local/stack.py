"""The whole product on one machine: ``LocalStack`` runs the real handlers against moto and the sandbox.

What runs (docs/local.md has the operator's view):

* moto in server mode, with every resource of the deployment manifest (``infra.manifest``):
  tables, FIFO queues with their DLQs, the event bus and rules, the tokens' KMS key and alias, and
  the secrets filled with local values (``qbo_link_local.resources``).  boto3 finds it through
  ``AWS_ENDPOINT_URL``, as ``shared.wiring`` expects.
* the QBO sandbox in this process (or Intuit's own sandbox, by settings only).
* the gateway (``qbo_link_local.server``): API Gateway's HTTP API in front of the handlers.
* one SQS poller per queue source, one per event rule, and the outbound-event log.
* with ``events_url``, the delivery of every event to that endpoint, signed, by the real deliverer
  (the delivery rule feeds its queue; the signing key is generated, or kept in the state directory).
* the scheduler for the manifest's ``rate(...)`` schedules.

The handlers run in this process's threads with the union of their environments
(``resources.process_environment``); the process environment is restored by ``stop``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from infra import manifest as stack
from infra.manifest import Names
from qbo_link_local import console, endpoint, environment, http_api
from qbo_link_local import intuit as intuit_side
from qbo_link_local import resources as local_resources
from qbo_link_local.aws import LocalAws
from qbo_link_local.deliveries import OutboundEvents, build_pollers
from qbo_link_local.errors import LocalStackError, PortInUseError
from qbo_link_local.http_api import LANDING_PATH
from qbo_link_local.intuit import Intuit
from qbo_link_local.logs import HandlerLogRouting, LogSink, invocation_line, note_line
from qbo_link_local.persistence import StateDirectory
from qbo_link_local.pollers import QueuePoller
from qbo_link_local.runtime import Call, Invocation, InvocationError, Invoker
from qbo_link_local.scheduler import ScheduledFunction, Scheduler, scheduled_functions, scheduler_event
from qbo_link_local.server import GatewayServer

if TYPE_CHECKING:
    from qbo_link_local.gateway import Request, Response
    from qbo_link_local.resources import LocalResources
    from qbo_sandbox.server import SandboxServer

WEBHOOK_PATH: Final = "/webhooks/qbo"
CALLBACK_PATH: Final = "/oauth/callback"
# Intuit batches webhook notices; locally a short window keeps a change's round trip well under a second.
WEBHOOK_WINDOW_SECONDS: Final = 0.25
MAX_EVENTS_KEPT: Final = 5_000


_running: list[LocalStack] = []  # at most one: the environment and Powertools' state are per process
_running_lock = threading.Lock()


@dataclass
class LocalStackConfig:
    host: str = "127.0.0.1"
    port: int = 0  # the gateway (0: a free port)
    sandbox: bool = True  # run the QBO sandbox in this process
    moto_port: int = 0
    sandbox_port: int = 0
    state_dir: str | os.PathLike[str] | None = None  # keeps tables, queues, key and sandbox across restarts
    time_scale: float | None = None  # sandbox rate windows, webhook retries and the schedules
    log: LogSink | None = None  # one readable line at a time
    env: dict[str, str] = field(default_factory=dict)  # overrides of the handlers' environment
    retry_delay: float = 0.5  # seconds before a failed SQS message is visible again
    events_url: str | None = None  # deliver every event there too, signed (http only to loopback)


def _public_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - a comparison


def _ensure_free(component: str, host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise PortInUseError(component, host, port) from None


class LocalStack:
    """``with LocalStack(LocalStackConfig()) as stack: ...`` (or ``start()`` / ``stop()``)."""

    def __init__(self, config: LocalStackConfig | None = None) -> None:
        self.config = config or LocalStackConfig()
        self._log_lock = threading.Lock()
        self._invoker = Invoker(stack.FUNCTIONS, self._logged_invocation)
        self._started = False
        self._gateway: GatewayServer | None = None
        self._sandbox: SandboxServer | None = None
        self._aws = LocalAws()
        self._resources: LocalResources | None = None
        self._pollers: dict[str, QueuePoller] = {}
        self._scheduled: list[ScheduledFunction] = []
        self._scheduler: Scheduler | None = None
        self._intuit: Intuit | None = None
        self._saved_env: dict[str, str | None] = {}
        self._log_routing: HandlerLogRouting | None = None
        self._persisted = StateDirectory(None, self._log)
        self._outbound = OutboundEvents(MAX_EVENTS_KEPT, self._log)
        self._schedule_runs: Counter[str] = Counter()
        self._state = threading.Lock()
        self.api_url = ""
        self.events_signing_key = ""  # the key the deliverer signs with (the receiver's to check)
        self.cold_start_ms: dict[str, float] = {}
        self._outer_env: dict[str, str] = dict(os.environ)

    # --- public view -------------------------------------------------------------------------

    @property
    def sandbox(self) -> SandboxServer | None:
        return self._sandbox

    @property
    def sandbox_url(self) -> str | None:
        return self._intuit.sandbox_url if self._intuit and self._intuit.in_process else None

    @property
    def intuit_environment(self) -> str:
        return self._intuit.environment if self._intuit else ""

    @property
    def moto_url(self) -> str:
        return self._aws.url

    @property
    def names(self) -> Names:
        if self._resources is None:
            raise LocalStackError("the local stack is not started")
        return self._resources.names

    @property
    def callback_url(self) -> str:
        return self._setting("QBO_LINK_REDIRECT_URI") or self.api_url + CALLBACK_PATH

    @property
    def webhook_url(self) -> str:
        return self.api_url + WEBHOOK_PATH

    @property
    def landing_url(self) -> str:
        """A return URL every local connect flow may use (the gateway shows the outcome)."""
        return self.api_url + LANDING_PATH

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start everything; returns when the gateway, the pollers and the scheduler are running."""
        if self._started:
            return self
        with _running_lock:
            if _running:
                raise LocalStackError(
                    "another local stack runs in this process (they would share one environment)"
                )
            _running.append(self)
        self._started = True
        self._outer_env = dict(os.environ)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        config = self.config
        host, public = config.host, _public_host(config.host)
        if config.retry_delay < 0:
            raise LocalStackError("retry_delay cannot be negative")
        if config.time_scale is not None and config.time_scale <= 0:
            raise LocalStackError("time_scale must be positive")
        self._persisted = StateDirectory(config.state_dir, self._log)
        self._persisted.lock()
        self.events_signing_key = endpoint.signing_key(config.events_url, config.state_dir, self._setting)
        try:
            self._gateway = GatewayServer(host, config.port, self._answer)
        except OSError:
            raise PortInUseError("gateway", host, config.port) from None
        self.api_url = f"http://{public}:{self._gateway.port}"
        self._intuit = self._start_qbo(host)
        _ensure_free("moto", host, config.moto_port)
        self._aws.start(host, public, config.moto_port)
        secrets = endpoint.secret_values(self._intuit, self.events_signing_key)
        self._resources = local_resources.create_resources(self._aws.clients, secrets, config.events_url)
        self._persisted.restore(self._resources)
        self._set_environment(self._intuit)
        self._log_routing = HandlerLogRouting(config.log, self._setting("POWERTOOLS_LOG_LEVEL"))
        self._log_routing.install()
        self._invoker.sink.install()
        self.cold_start_ms = self._invoker.load()
        self._aws.warm_boto3(self._invoker.sink.count_dynamodb_call)
        self._gateway.start()
        self._start_pollers()
        self._scheduled = scheduled_functions(stack.FUNCTIONS, config.time_scale or 1.0)
        self._scheduler = Scheduler(self._scheduled, self._scheduled_run)
        self._scheduler.start()
        if self._intuit.in_process:
            self._point_sandbox_webhooks()

    def stop(self) -> None:
        """Stop every thread and server this stack started and restore the process environment.

        Every step runs even when an earlier one fails (each failure is logged), so a broken part
        never leaves the others running."""
        if not self._started:
            return
        self._started = False
        steps: list[tuple[str, Callable[[], None]]] = [
            ("scheduler", self._stop_scheduler),
            ("pollers", self._stop_pollers),
            ("sandbox webhooks", self._stop_sandbox_webhooks),
            ("handlers", lambda: self._wait_for_handlers(10.0)),
            ("gateway", self._stop_gateway),
            ("state", lambda: self._persisted.save(self._resources, moto_running=self._aws.running)),
            ("sandbox", self._stop_sandbox),
            ("state directory", self._persisted.release),
            ("log routing", self._uninstall_log_routing),
            ("metrics", self._invoker.sink.uninstall),
            ("environment", self._restore_process),
            ("moto", self._aws.stop),
        ]
        for name, step in steps:
            try:
                step()
            except Exception as error:  # the remaining steps must still run
                self._log(note_line(datetime.now(UTC), "stop", f"{name}: {type(error).__name__}: {error}"))
        with _running_lock:
            if self in _running:
                _running.remove(self)

    def _stop_scheduler(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()

    def _stop_pollers(self) -> None:
        pollers, self._pollers = self._pollers, {}
        for poller in pollers.values():
            poller.request_stop()
        for poller in pollers.values():
            poller.stop()

    def _stop_sandbox_webhooks(self) -> None:
        if self._sandbox is not None:
            self._sandbox.sandbox.webhooks.stop()

    def _stop_gateway(self) -> None:
        if self._gateway is not None:
            self._gateway.stop()

    def _stop_sandbox(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()

    def _uninstall_log_routing(self) -> None:
        if self._log_routing is not None:
            self._log_routing.uninstall()

    def _restore_process(self) -> None:
        if self._saved_env:
            environment.reset_process_caches()
            saved, self._saved_env = self._saved_env, {}
            environment.apply(saved)
        self._aws.release_process()

    # --- the QBO side ------------------------------------------------------------------------

    def _setting(self, name: str) -> str:
        """A setting from ``config.env``, else from the environment the stack started in."""
        return self.config.env.get(name) or self._outer_env.get(name, "")

    def _start_qbo(self, host: str) -> Intuit:
        which = intuit_side.intuit_environment(self._setting, sandbox=self.config.sandbox)
        if which != "local" or not self.config.sandbox:
            return intuit_side.elsewhere(which, self._setting)
        self._sandbox = intuit_side.build_sandbox(
            host,
            self.config.sandbox_port,
            time_scale=self.config.time_scale,
            state_dir=self.config.state_dir,
            callback_url=self.callback_url,
        )
        self._sandbox.start()
        return intuit_side.in_process(self._sandbox)

    def _point_sandbox_webhooks(self) -> None:
        assert self._sandbox is not None
        self._sandbox.sandbox.webhooks.configure(
            {"endpoint_url": self.webhook_url, "batch_window_seconds": WEBHOOK_WINDOW_SECONDS}
        )

    # --- the process environment -------------------------------------------------------------

    def _set_environment(self, intuit: Intuit) -> None:
        self._saved_env = environment.apply(
            environment.handler_environment(
                self.names,
                intuit,
                moto_url=self.moto_url,
                callback_url=self.callback_url,
                return_urls=(self.landing_url, console.console_url(self.api_url)),
                setting=self._setting,
                overrides=self.config.env,
            )
        )
        environment.reset_process_caches()
        if self._sandbox is not None:
            from shared import wiring

            # "101 days later" in the sandbox is 101 days later for the handlers too.
            wiring.override(clock=self._sandbox.sandbox.clock)

    # --- the gateway ---------------------------------------------------------------------------

    def _answer(self, request: Request) -> Response:
        if request.method == "GET" and request.path == http_api.EVENTS_PATH:
            return http_api.events_page(self._outbound, request.query)
        answer = http_api.dispatch(request, self._invoker, self._log)
        log = self._persisted.journal
        if log is not None:
            log.sync()  # what this request changed is on disk before its answer leaves
        return answer

    # --- queues and rules ----------------------------------------------------------------------

    def _start_pollers(self) -> None:
        assert self._resources is not None
        self._pollers = build_pollers(
            self._resources,
            self._aws.clients["sqs"],
            self._invoker,
            self._outbound,
            retry_delay=self.config.retry_delay,
            on_error=self._poller_error,
        )
        for poller in self._pollers.values():
            poller.start()

    def _poller_error(self, queue: str, error: BaseException) -> None:
        if self._started:
            self._log(note_line(datetime.now(UTC), "poller", f"{queue}: {type(error).__name__}: {error}"))

    # --- schedules -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._sandbox.sandbox.clock.now() if self._sandbox is not None else datetime.now(UTC)

    def _run(self, entry: ScheduledFunction) -> Call:
        event = scheduler_event(self._now())
        call = self._invoker.call(entry.function, event)
        with self._state:
            self._schedule_runs[entry.schedule.logical_id] += 1
        self._invoker.record(
            entry.function,
            entry.schedule.logical_id,
            call,
            "error" if call.failed else "ok",
            ok=not call.failed,
            detail={"result": call.result if isinstance(call.result, dict) else None},
        )
        return call

    def _scheduled_run(self, entry: ScheduledFunction) -> None:
        self._run(entry)  # a failure is logged; EventBridge Scheduler's retries are not emulated

    def run_schedule(self, logical_id: str) -> Any:
        """Run a scheduled function now (a logical id of the manifest's schedules); its answer."""
        entry = next((e for e in self._scheduled if e.schedule.logical_id == logical_id), None)
        if entry is None:
            known = ", ".join(e.schedule.logical_id for e in self._scheduled) or "none"
            raise KeyError(f"no schedule {logical_id!r} (the manifest has: {known})")
        call = self._run(entry)
        if call.error is not None:
            raise InvocationError(f"{entry.function.name} failed: {call.error_text()}") from call.error
        return call.result

    # --- waiting and looking -------------------------------------------------------------------

    def _busy(self) -> list[str]:
        assert self._resources is not None
        busy = self._invoker.busy()
        busy += [f"{name} delivery in hand" for name, p in self._pollers.items() if p.busy()]
        for queue in self._resources.queues.values():
            if not queue.dead_letter and (depth := self._aws.queue_depth(queue)):
                busy.append(f"{queue.logical_id}: {depth} message(s)")
        if self._resources.outbound is not None and (
            depth := self._aws.queue_depth(self._resources.outbound)
        ):
            busy.append(f"outbound events: {depth} pending")
        if self._sandbox is not None:
            queue = self._sandbox.sandbox.webhooks.status()["queue"]
            if queue["pending_events"] or queue["held_batch"]:
                busy.append(f"sandbox webhooks: {queue['pending_events']} event(s) pending")
        return busy

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Return once the queues are empty, no handler runs and no event or webhook is pending."""
        if not self._started:
            raise LocalStackError("the local stack is not started")
        deadline = time.monotonic() + timeout
        quiet = 0
        while True:
            busy = self._busy()
            quiet = 0 if busy else quiet + 1
            if quiet >= 2:  # twice in a row: a hand-over between two parts is not idleness
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the local stack is still busy after {timeout:g} s: {'; '.join(busy)}")
            time.sleep(0.05)

    def _wait_for_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._invoker.busy() and time.monotonic() < deadline:
            time.sleep(0.02)

    def stats(self) -> dict[str, Any]:
        """Invocations, failures (handler errors) and batch item failures per function, messages per
        queue (DLQs included), outbound events per detail-type, schedule runs, metrics per function,
        and what the state directory wrote (``state``, empty without one)."""
        counts = self._invoker.counts()
        queues = (
            {q.logical_id: self._aws.queue_depth(q) for q in self._resources.queues.values()}
            if self._resources is not None and self._started
            else {}
        )
        events = self._outbound.counts()
        with self._state:
            runs = dict(self._schedule_runs)
        return {
            "invocations": counts["invocations"],
            "failures": counts["errors"],
            "batch_item_failures": counts["batch_item_failures"],
            "queues": queues,
            "events": events,
            "schedules": runs,
            "metrics": self._invoker.sink.snapshot(),
            "state": self._persisted.counts(self._sandbox.sandbox.persists if self._sandbox else 0),
        }

    def invocations(self, function: str | None = None) -> list[Invocation]:
        """The latest invocations (up to 10,000), oldest first; ``function`` is a folder name."""
        return self._invoker.history(function)

    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """The outbound events seen on the bus (EventBridge's shape), oldest first."""
        return self._outbound.events(detail_type)

    @contextlib.contextmanager
    def hold(self, queue_logical_id: str) -> Iterator[None]:
        """Pause a queue's poller: messages sent meanwhile are delivered together afterwards."""
        poller = self._pollers.get(queue_logical_id)
        if poller is None:
            raise KeyError(f"no poller for {queue_logical_id!r} (polled: {', '.join(self._pollers)})")
        with poller.held():
            yield

    def dead_letters(self, queue_logical_id: str) -> list[str]:
        """The bodies waiting in a dead-letter queue (left there)."""
        assert self._resources is not None
        return self._aws.peek(self._resources.queues[queue_logical_id])

    # --- the log -------------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        sink = self.config.log
        if sink is not None:
            # a failing log sink must not take a poller or the gateway down with it
            with self._log_lock, contextlib.suppress(Exception):
                sink(line)

    def _logged_invocation(self, invocation: Invocation) -> None:
        self._log(invocation_line(invocation))
        for line in invocation.traceback:
            self._log(f"    {line}")


__all__ = [
    "InvocationError",
    "LocalStack",
    "LocalStackConfig",
    "LocalStackError",
    "PortInUseError",
]
