"""The whole product on one machine: ``LocalStack`` runs the real handlers against moto and the sandbox.

What runs (docs/local.md has the operator's view):

* moto in server mode, with every resource of the deployment manifest (``infra.manifest``):
  tables, FIFO queues with their DLQs, the event bus and rules, the tokens' KMS key and alias, and
  the secrets filled with local values (``qbo_link_local.resources``).  boto3 finds it through
  ``AWS_ENDPOINT_URL``, as ``shared.wiring`` expects.
* the QBO sandbox in this process (or Intuit's own sandbox, by settings only).
* the gateway (``qbo_link_local.server``): API Gateway's HTTP API in front of the handlers.
* one SQS poller per queue source, one per event rule, and the outbound-event log.
* the scheduler for the manifest's ``rate(...)`` schedules.

The handlers run in this process's threads with the union of their environments
(``resources.process_environment``); the process environment is restored by ``stop``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infra import manifest as stack
from infra.manifest import FunctionSpec, Names
from qbo_link_local import resources as local_resources
from qbo_link_local.gateway import (
    UnauthorizedError,
    authorizer_for,
    http_api_event,
    lambda_response,
    match_route,
)
from qbo_link_local.logs import HandlerLogRouting, LogSink, invocation_line, note_line
from qbo_link_local.moto_dynamodb import atomic_dynamodb
from qbo_link_local.moto_server import fast_dispatch
from qbo_link_local.pollers import QueuePoller, lambda_record
from qbo_link_local.runtime import Call, Invocation, InvocationError, Invoker
from qbo_link_local.scheduler import ScheduledFunction, Scheduler, scheduled_functions, scheduler_event
from qbo_link_local.server import GatewayServer, api_gateway_error
from shared.kernel import constants

if TYPE_CHECKING:
    from qbo_link_local.gateway import Request, Response
    from qbo_link_local.journal import Journal
    from qbo_link_local.resources import LocalResources, QueueInfo, RuleTarget
    from qbo_sandbox.server import SandboxServer

REGION: Final = local_resources.REGION
API_GATEWAY_TIMEOUT_MS: Final = 30_000
WEBHOOK_PATH: Final = "/webhooks/qbo"
CALLBACK_PATH: Final = "/oauth/callback"
# Not a route of the manifest: a page of the local gateway where a connect flow may end when no
# host app is running yet (always in the return-URL allow-list locally).
LANDING_PATH: Final = "/_local/connected"
# Intuit batches webhook notices; locally a short window keeps a change's round trip well under a second.
WEBHOOK_WINDOW_SECONDS: Final = 0.25
MAX_EVENTS_KEPT: Final = 5_000
LOOPBACK_PREFIXES: Final = ("http://127.0.0.1", "http://localhost")
# The local-only variables settings.py falls back to: the stack never lets a handler read them, so
# secrets come through Secrets Manager exactly as in AWS.
LOCAL_ONLY_SECRET_VARIABLES: Final = (
    "QBO_LINK_CLIENT_ID",
    "QBO_LINK_CLIENT_SECRET",
    "QBO_LINK_STATE_SIGNING_KEY",
    "QBO_LINK_WEBHOOK_VERIFIER_TOKEN",
)


_running: list[LocalStack] = []  # at most one: the environment and Powertools' state are per process
_running_lock = threading.Lock()


class LocalStackError(RuntimeError):
    """The stack cannot start as configured; the message is one line saying what to change."""


class PortInUseError(LocalStackError):
    def __init__(self, component: str, host: str, port: int) -> None:
        super().__init__(f"port {port} on {host} is already in use ({component})")
        self.component = component
        self.host = host
        self.port = port


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


@dataclass(frozen=True)
class _Intuit:
    environment: str  # "local" or "sandbox"
    in_process: bool
    sandbox_url: str | None
    client_id: str
    client_secret: str
    verifier_token: str
    app_id: str


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
        self._moto: Any = None
        self._moto_dispatch: AbstractContextManager[None] | None = None
        self._boto: Any = None
        self._clients: dict[str, Any] = {}
        self._resources: LocalResources | None = None
        self._pollers: dict[str, QueuePoller] = {}
        self._scheduled: list[ScheduledFunction] = []
        self._scheduler: Scheduler | None = None
        self._intuit: _Intuit | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_session: Any = None
        self._session_swapped = False
        self._dynamodb_harness: AbstractContextManager[None] | None = None
        self._log_routing: HandlerLogRouting | None = None
        self._journal: Journal | None = None
        self._recording: AbstractContextManager[None] | None = None
        self._generation = 0
        self._state_lock: int | None = None  # the state directory's lock file, held while running
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS_KEPT)
        self._event_counts: Counter[str] = Counter()
        self._schedule_runs: Counter[str] = Counter()
        self._state = threading.Lock()
        self.api_url = ""
        self.moto_url = ""
        self.cold_start_ms: dict[str, float] = {}
        self._outer_env: dict[str, str] = dict(os.environ)
        self._saved_werkzeug_level = logging.NOTSET

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
        self._lock_state_dir()
        try:
            self._gateway = GatewayServer(host, config.port, self._answer)
        except OSError:
            raise PortInUseError("gateway", host, config.port) from None
        self.api_url = f"http://{public}:{self._gateway.port}"
        self._intuit = self._start_qbo(host)
        _ensure_free("moto", host, config.moto_port)
        self._start_moto(host, public)
        self._resources = local_resources.create_resources(self._clients, self._secret_values(self._intuit))
        self._restore_state()
        self._set_environment(self._intuit)
        self._log_routing = HandlerLogRouting(config.log, self._setting("POWERTOOLS_LOG_LEVEL"))
        self._log_routing.install()
        self._invoker.sink.install()
        self.cold_start_ms = self._invoker.load()
        self._warm_boto3()
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
            ("state", self._save_state),
            ("sandbox", self._stop_sandbox),
            ("state directory", self._release_state_dir),
            ("log routing", self._uninstall_log_routing),
            ("metrics", self._invoker.sink.uninstall),
            ("environment", self._restore_process),
            ("moto", self._stop_moto),
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
            self._reset_process_caches()
            self._restore_environment()
        if self._dynamodb_harness is not None:
            self._dynamodb_harness.__exit__(None, None, None)
            self._dynamodb_harness = None
        if self._session_swapped:
            import boto3

            boto3.DEFAULT_SESSION = self._saved_session
            self._session_swapped = False

    def _stop_moto(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.close()
        if self._moto is not None:
            with contextlib.suppress(Exception):
                self._reset_moto()  # frees what this run created
            self._moto.stop()
            self._moto = None
            logging.getLogger("werkzeug").setLevel(self._saved_werkzeug_level)
        dispatch, self._moto_dispatch = self._moto_dispatch, None
        if dispatch is not None:
            dispatch.__exit__(None, None, None)

    # --- state across restarts ---------------------------------------------------------------

    def _lock_state_dir(self) -> None:
        """Hold the state directory before anything reads it (the sandbox's file included)."""
        if self.config.state_dir is None:
            return
        from qbo_link_local import state

        try:
            self._state_lock = state.lock(Path(self.config.state_dir))
        except state.StateDirectoryBusyError as busy:
            raise LocalStackError(f"{busy}: stop it, or choose another --state-dir") from None

    def _release_state_dir(self) -> None:
        held, self._state_lock = self._state_lock, None
        if held is not None:
            os.close(held)  # the directory is free for the next stack

    def _restore_state(self) -> None:
        """Replay the state directory into the fresh resources, then journal every change (start)."""
        if self.config.state_dir is None or self._resources is None:
            return
        from qbo_link_local import journal, state

        directory = Path(self.config.state_dir)
        names = {q.logical_id: q.url.rsplit("/", 1)[1] for q in self._resources.queues.values()}
        counts = {"items": 0, "messages": 0, "records": 0}
        generation = 0
        try:
            saved = state.load(directory)
            if saved is not None:
                saved = state.upgrade(saved, names)
                generation = int(saved["generation"])
                records = list(journal.read_journal(state.journal_path(directory, generation)))
                key_id, restored = state.restore(
                    state.replay(saved, records, state.key_names()), self._resources.tokens_key_id
                )
                self._resources.tokens_key_id = key_id
                counts = {**restored, "records": len(records)}
            # One snapshot of what came back, and a new journal after it.
            generation += 1
            state.save(directory, state.snapshot(self._resources.tokens_key_id, generation))
            state.forget_journals(directory, keep=generation)
            self._journal = journal.Journal(state.journal_path(directory, generation))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LocalStackError(f"cannot restore {directory / state.STATE_FILE}: {error}") from error
        self._generation = generation
        self._recording = journal.recording(self._journal)
        self._recording.__enter__()
        if saved is not None:
            self._log(
                note_line(
                    datetime.now(UTC),
                    "state",
                    f"restored {counts['items']} item(s) and {counts['messages']} message(s) from {directory}"
                    f" ({counts['records']} journal record(s) replayed)",
                )
            )

    def _save_state(self) -> None:
        """Stop journaling and fold the journal into one snapshot (a clean stop)."""
        recording, self._recording = self._recording, None
        if recording is not None:
            recording.__exit__(None, None, None)
        log, self._journal = self._journal, None
        if log is None or self.config.state_dir is None or self._resources is None or self._moto is None:
            return  # nothing was restored: the directory stays as it was
        from qbo_link_local import state

        log.close()
        directory = Path(self.config.state_dir)
        try:
            path = state.save(directory, state.snapshot(self._resources.tokens_key_id, self._generation + 1))
            state.forget_journals(directory, keep=self._generation + 1)
        except Exception as error:  # stopping goes on: the journal still holds this run's changes
            self._log(
                note_line(datetime.now(UTC), "state", f"not compacted: {type(error).__name__}: {error}")
            )
            return
        self._log(note_line(datetime.now(UTC), "state", f"saved to {path}"))

    # --- the QBO side ------------------------------------------------------------------------

    def _setting(self, name: str) -> str:
        """A setting from ``config.env``, else from the environment the stack started in."""
        return self.config.env.get(name) or self._outer_env.get(name, "")

    def _start_qbo(self, host: str) -> _Intuit:
        environment = self._setting("QBO_LINK_INTUIT_ENVIRONMENT") or (
            "local" if self.config.sandbox else "sandbox"
        )
        if environment not in ("local", "sandbox"):
            raise LocalStackError(
                f"QBO_LINK_INTUIT_ENVIRONMENT={environment!r}: the local stack talks to the local sandbox "
                "or Intuit's sandbox ('local' or 'sandbox'), never to production"
            )
        if environment == "local" and self.config.sandbox:
            return self._start_sandbox(host)
        credentials = {name: self._setting(name) for name in LOCAL_ONLY_SECRET_VARIABLES[:2]}
        credentials["verifier"] = self._setting("QBO_LINK_WEBHOOK_VERIFIER_TOKEN")
        if environment == "local":
            url = self._setting("QBO_LINK_LOCAL_SANDBOX_URL")
            if not url:
                raise LocalStackError(
                    "set QBO_LINK_LOCAL_SANDBOX_URL to the running sandbox, or enable sandbox"
                )
            from qbo_sandbox.settings import SandboxSettings

            defaults = SandboxSettings()
            return _Intuit(
                "local",
                False,
                url.rstrip("/"),
                credentials["QBO_LINK_CLIENT_ID"] or defaults.client_id,
                credentials["QBO_LINK_CLIENT_SECRET"] or defaults.client_secret,
                credentials["verifier"] or defaults.verifier_token,
                self._setting("QBO_LINK_APP_ID") or defaults.app_id,
            )
        missing = [
            name
            for name, value in (
                ("QBO_LINK_CLIENT_ID", credentials["QBO_LINK_CLIENT_ID"]),
                ("QBO_LINK_CLIENT_SECRET", credentials["QBO_LINK_CLIENT_SECRET"]),
                ("QBO_LINK_WEBHOOK_VERIFIER_TOKEN", credentials["verifier"]),
            )
            if not value
        ]
        if missing:
            raise LocalStackError(
                f"Intuit's sandbox needs {', '.join(missing)} (your app's development keys)"
            )
        return _Intuit(
            "sandbox",
            False,
            None,
            credentials["QBO_LINK_CLIENT_ID"],
            credentials["QBO_LINK_CLIENT_SECRET"],
            credentials["verifier"],
            self._setting("QBO_LINK_APP_ID"),
        )

    def _start_sandbox(self, host: str) -> _Intuit:
        from qbo_sandbox.server import SandboxServer
        from qbo_sandbox.settings import SandboxSettings

        state_file = None
        if self.config.state_dir is not None:
            directory = Path(self.config.state_dir)
            directory.mkdir(parents=True, exist_ok=True)
            state_file = str(directory / "sandbox.json")
        callback = self._setting("QBO_LINK_REDIRECT_URI") or self.api_url + CALLBACK_PATH
        settings = SandboxSettings.from_env(
            host=host,
            port=self.config.sandbox_port,
            time_scale=self.config.time_scale,
            state_file=state_file,
            redirect_uris=[callback, *(prefix + "*" for prefix in LOOPBACK_PREFIXES)],
        )
        try:
            self._sandbox = SandboxServer(settings)
        except OSError:
            raise PortInUseError("sandbox", host, self.config.sandbox_port) from None
        self._sandbox.start()
        s = self._sandbox.sandbox.settings
        return _Intuit(
            "local", True, self._sandbox.url, s.client_id, s.client_secret, s.verifier_token, s.app_id
        )

    def _point_sandbox_webhooks(self) -> None:
        assert self._sandbox is not None
        self._sandbox.sandbox.webhooks.configure(
            {"endpoint_url": self.webhook_url, "batch_window_seconds": WEBHOOK_WINDOW_SECONDS}
        )

    @staticmethod
    def _secret_values(intuit: _Intuit) -> dict[str, dict[str, str]]:
        return {
            stack.INTUIT_APP_SECRET.logical_id: {
                "client_id": intuit.client_id,
                "client_secret": intuit.client_secret,
            },
            stack.WEBHOOK_SECRET.logical_id: {"verifier_token": intuit.verifier_token},
        }

    # --- the AWS side ------------------------------------------------------------------------

    def _start_moto(self, host: str, public: str) -> None:
        import boto3
        from botocore.config import Config
        from moto.server import ThreadedMotoServer

        # moto's server logs every request through werkzeug's logger: the stack logs invocations instead
        werkzeug = logging.getLogger("werkzeug")
        self._saved_werkzeug_level = werkzeug.level
        werkzeug.setLevel(logging.WARNING)
        self._moto_dispatch = fast_dispatch()
        self._moto_dispatch.__enter__()
        self._moto = ThreadedMotoServer(ip_address=host, port=self.config.moto_port, verbose=False)
        self._moto.start()
        self.moto_url = f"http://{public}:{self._moto.get_host_and_port()[1]}"
        self._reset_moto()  # moto's backends live in the process: start from nothing
        # one lock around moto's DynamoDB (a condition and its write are one step, as in DynamoDB:
        # the single-flight token refresh and the rate governor depend on it), cheap transactions
        self._dynamodb_harness = atomic_dynamodb()
        self._dynamodb_harness.__enter__()
        self._boto = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto's dummy credentials
            region_name=REGION,
        )
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        for service in ("dynamodb", "sqs", "events", "kms", "secretsmanager"):
            self._clients[service] = self._boto.client(service, endpoint_url=self.moto_url, config=config)

    def _reset_moto(self) -> None:
        import httpx2

        httpx2.post(f"{self.moto_url}/moto-api/reset", timeout=30).raise_for_status()

    def _environment(self, intuit: _Intuit) -> dict[str, str | None]:
        """What the process environment becomes (None: removed while the stack runs)."""
        env: dict[str, str | None] = dict(local_resources.process_environment(self.names))
        for name in os.environ:
            if name.startswith("AWS_ENDPOINT_URL_"):
                env[name] = None  # a service-specific endpoint would win over moto's
        # Entries match scheme, host and port exactly: the host app's own URL must be added.
        extra = [u for u in self._setting("QBO_LINK_RETURN_URL_ALLOWLIST").split(",") if u]
        allowlist = ",".join([self.landing_url, *extra])
        env.update(
            {
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": None,
                "AWS_PROFILE": None,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
                "POWERTOOLS_SERVICE_NAME": constants.SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": "QBOLink",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "QBO_LINK_INTUIT_ENVIRONMENT": intuit.environment,
                "QBO_LINK_LOCAL_SANDBOX_URL": intuit.sandbox_url or "",
                "QBO_LINK_REDIRECT_URI": self.callback_url,
                "QBO_LINK_RETURN_URL_ALLOWLIST": allowlist,
                "QBO_LINK_APP_ID": intuit.app_id,
            }
        )
        env.update(self.config.env)
        for name in LOCAL_ONLY_SECRET_VARIABLES:
            env[name] = None
        return env

    def _set_environment(self, intuit: _Intuit) -> None:
        wanted = self._environment(intuit)
        self._saved_env = {name: os.environ.get(name) for name in wanted}
        for name, value in wanted.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._reset_process_caches()
        if self._sandbox is not None:
            from shared import wiring

            # "101 days later" in the sandbox is 101 days later for the handlers too.
            wiring.override(clock=self._sandbox.sandbox.clock)

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    @staticmethod
    def _reset_process_caches() -> None:
        from aws_lambda_powertools.utilities import parameters

        from shared import wiring

        wiring.reset()
        parameters.clear_caches()  # type: ignore[no-untyped-call]

    def _warm_boto3(self) -> None:
        """boto3's default session is not safe to build from several threads at once: build it (and
        its first clients) here, before any handler runs."""
        import boto3

        self._saved_session, self._session_swapped = boto3.DEFAULT_SESSION, True
        boto3.DEFAULT_SESSION = None
        for service in ("sqs", "events", "kms", "secretsmanager"):
            boto3.client(service)
        boto3.resource("dynamodb")
        # Each DynamoDB call a handler makes is counted for its function (``stats()["metrics"]``).
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call.dynamodb", self._invoker.sink.count_dynamodb_call)

    # --- the gateway ---------------------------------------------------------------------------

    def _answer(self, request: Request) -> Response:
        answer = self._dispatch(request)
        log = self._journal
        if log is not None:
            log.sync()  # what this request changed is on disk before its answer leaves
        return answer

    def _dispatch(self, request: Request) -> Response:
        match = match_route(stack.FUNCTIONS, request.method, request.path)
        trigger = f"{request.method} {request.path}"
        if match is None and request.method == "GET" and request.path == LANDING_PATH:
            return landing_page(request.query)
        if match is None:
            self._log(note_line(datetime.now(UTC), "gateway", f"{trigger}  404 no route"))
            return api_gateway_error(404, "Not Found")
        try:
            authorizer = authorizer_for(match.route, request.headers)
        except UnauthorizedError as refused:
            self._log(note_line(datetime.now(UTC), "gateway", f"{trigger}  401 {refused}"))
            return api_gateway_error(401, "Unauthorized")
        host = next((v for k, v in request.headers if k.lower() == "host"), "localhost")
        event = http_api_event(
            dataclasses.replace(request, authorizer=authorizer), match, domain=host.split(":")[0]
        )
        if "request_id" in request.extra:  # the same id as the answer's apigw-requestid header
            event["requestContext"]["requestId"] = request.extra["request_id"]
        call = self._invoker.call(match.function, event)
        answer: Response
        if call.failed:
            answer = api_gateway_error(500, "Internal Server Error")
        else:
            try:
                answer = lambda_response(call.result)
            except (TypeError, ValueError):
                answer = api_gateway_error(500, "Internal Server Error")
        if call.duration_ms > API_GATEWAY_TIMEOUT_MS:
            answer = api_gateway_error(503, "Service Unavailable")
        self._invoker.record(
            match.function,
            trigger,
            call,
            str(answer.status),
            ok=not call.failed and answer.status < 500,
            detail={"route": match.route_key, "status": answer.status},
        )
        return answer

    # --- queues and rules ----------------------------------------------------------------------

    def _start_pollers(self) -> None:
        assert self._resources is not None
        queues = self._resources.queues
        sqs = self._clients["sqs"]
        delay = self.config.retry_delay
        for function in stack.FUNCTIONS:
            source = function.queue_source
            if source is None:
                continue
            queue = queues[source.queue.logical_id]
            self._pollers[queue.logical_id] = QueuePoller(
                queue,
                sqs,
                self._sqs_delivery(function, queue),
                batch_size=source.batch_size,
                retry_delay=delay,
                on_error=self._poller_error,
            )
        for target in self._resources.rules:
            self._pollers[target.queue.logical_id] = QueuePoller(
                target.queue,
                sqs,
                self._rule_delivery(target),
                batch_size=1,  # EventBridge invokes the function once per event
                retry_delay=delay,
                on_error=self._poller_error,
            )
        outbound = self._resources.outbound
        if outbound is not None:
            self._pollers[outbound.logical_id] = QueuePoller(
                outbound,
                sqs,
                self._record_events,
                batch_size=10,
                retry_delay=delay,
                on_error=self._poller_error,
            )
        for poller in self._pollers.values():
            poller.start()

    def _sqs_delivery(
        self, function: FunctionSpec, queue: QueueInfo
    ) -> Callable[[list[dict[str, Any]]], set[str]]:
        def deliver(messages: list[dict[str, Any]]) -> set[str]:
            records = [lambda_record(m, queue) for m in messages]
            ids = [r["messageId"] for r in records]
            call = self._invoker.call(function, {"Records": records})
            failed = set(ids) if call.failed else _batch_item_failures(call.result, ids)
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
            self._invoker.record(
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

    def _rule_delivery(self, target: RuleTarget) -> Callable[[list[dict[str, Any]]], set[str]]:
        def deliver(messages: list[dict[str, Any]]) -> set[str]:
            failed: set[str] = set()
            for message in messages:
                try:
                    event = json.loads(message["Body"])
                except ValueError:
                    failed.add(message["MessageId"])
                    continue
                call = self._invoker.call(target.function, event)
                if call.failed:
                    failed.add(message["MessageId"])
                self._invoker.record(
                    target.function,
                    target.rule.logical_id,
                    call,
                    "error" if call.failed else "ok",
                    ok=not call.failed,
                    detail={"detail-type": event.get("detail-type"), "id": event.get("id")},
                )
            return failed

        return deliver

    def _record_events(self, messages: list[dict[str, Any]]) -> set[str]:
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except ValueError:
                continue
            detail_type = str(event.get("detail-type", "?"))
            detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
            with self._state:
                self._events.append(event)
                self._event_counts[detail_type] += 1
            tenant = detail.get("tenantId", "") if isinstance(detail, dict) else ""
            self._log(note_line(datetime.now(UTC), "event", f"{detail_type}  tenant={tenant}"))
        return set()

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

    def _queue_depth(self, queue: QueueInfo) -> int:
        attributes = self._clients["sqs"].get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def _busy(self) -> list[str]:
        assert self._resources is not None
        busy = self._invoker.busy()
        busy += [f"{name} delivery in hand" for name, p in self._pollers.items() if p.busy()]
        for queue in self._resources.queues.values():
            if not queue.dead_letter and (depth := self._queue_depth(queue)):
                busy.append(f"{queue.logical_id}: {depth} message(s)")
        if self._resources.outbound is not None and (depth := self._queue_depth(self._resources.outbound)):
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
            {q.logical_id: self._queue_depth(q) for q in self._resources.queues.values()}
            if self._resources is not None and self._started
            else {}
        )
        with self._state:
            events, runs = dict(self._event_counts), dict(self._schedule_runs)
        return {
            "invocations": counts["invocations"],
            "failures": counts["errors"],
            "batch_item_failures": counts["batch_item_failures"],
            "queues": queues,
            "events": events,
            "schedules": runs,
            "metrics": self._invoker.sink.snapshot(),
            "state": self._state_counts(),
        }

    def _state_counts(self) -> dict[str, Any]:
        """With a state directory: the journal's records and fsyncs, the sandbox's state-file writes."""
        journal = self._journal
        if journal is None:
            return {}
        return {
            "journal": str(journal.path),
            "journal_records": journal.records,
            "journal_fsyncs": journal.fsyncs,
            "sandbox_writes": self._sandbox.sandbox.persists if self._sandbox is not None else 0,
        }

    def invocations(self, function: str | None = None) -> list[Invocation]:
        """The latest invocations (up to 10,000), oldest first; ``function`` is a folder name."""
        return self._invoker.history(function)

    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """The outbound events seen on the bus (EventBridge's shape), oldest first."""
        with self._state:
            return [
                dict(e) for e in self._events if detail_type is None or e.get("detail-type") == detail_type
            ]

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
        queue = self._resources.queues[queue_logical_id]
        answer = self._clients["sqs"].receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        )
        return [m["Body"] for m in answer.get("Messages") or []]

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


def landing_page(query: str) -> Response:
    """Where a local connect flow ends without a host app: what the callback told the app."""
    import html
    from urllib.parse import parse_qsl

    from qbo_link_local.gateway import Response

    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in parse_qsl(query, keep_blank_values=True)
    )
    body = (
        "<!doctype html><title>QBO Link (local)</title><h1>Back from QuickBooks</h1>"
        f"<p>The OAuth callback sent the browser here with:</p><table>{rows}</table>"
    )
    return Response(200, [("content-type", "text/html; charset=utf-8")], body.encode())


def _batch_item_failures(result: Any, ids: list[str]) -> set[str]:
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


__all__ = [
    "InvocationError",
    "LocalStack",
    "LocalStackConfig",
    "LocalStackError",
    "PortInUseError",
]
