"""``qbo-link dev``: the local stack in the foreground, its URLs, then a readable log until Ctrl-C;
``qbo-link events``: the events of a running one (``qbo_link_local.tail``).

Only argparse is imported at module level, so ``qbo-link --help`` stays instant; the stack is
imported when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from typing import Any, Final

DEFAULT_PORT: Final = 8700
DEFAULT_SANDBOX_PORT: Final = 8800
DEFAULT_MOTO_PORT: Final = 8900
_PORT_FLAGS: Final = {"gateway": "--port", "sandbox": "--sandbox-port", "moto": "--moto-port"}


def register_dev(commands: Any) -> None:
    """Add the local stack's commands, ``dev`` and ``events``, to the ``qbo-link`` subcommands
    (``commands``: argparse's subparsers)."""
    env = os.environ.get
    dev = commands.add_parser(
        "dev",
        help="run the whole product locally: the real handlers, moto (AWS) and the QBO sandbox",
        description="Runs the real handlers against moto (AWS) and the QBO sandbox on this machine. "
        "See docs/local.md.",
    )
    dev.add_argument("--host", default=env("QBO_LINK_DEV_HOST", "127.0.0.1"), help="interface to listen on")
    dev.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the API gateway (default {DEFAULT_PORT})"
    )
    dev.add_argument(
        "--sandbox-port",
        type=int,
        default=DEFAULT_SANDBOX_PORT,
        help=f"the QBO sandbox ({DEFAULT_SANDBOX_PORT})",
    )
    dev.add_argument(
        "--moto-port", type=int, default=DEFAULT_MOTO_PORT, help=f"moto, the AWS APIs ({DEFAULT_MOTO_PORT})"
    )
    dev.add_argument(
        "--intuit-sandbox",
        action="store_true",
        help="use Intuit's sandbox instead of the local one (QBO_LINK_CLIENT_ID, QBO_LINK_CLIENT_SECRET "
        "and QBO_LINK_WEBHOOK_VERIFIER_TOKEN from the environment)",
    )
    dev.add_argument(
        "--return-url-prefix",
        action="append",
        default=[],
        help="allow connect flows to return to this URL prefix, e.g. http://localhost:3000/ (repeatable)",
    )
    dev.add_argument(
        "--state-dir",
        help="keep connections, postings, queued work and the sandbox's companies here, across restarts "
        "and crashes",
    )
    dev.add_argument(
        "--time-scale",
        type=float,
        help="run sandbox rate windows, webhook retries and schedules N times faster",
    )
    dev.add_argument(
        "--events-url",
        help="also deliver every event, signed, to this endpoint (http only to loopback; docs/events.md)",
    )
    dev.add_argument(
        "--log-level",
        default=env("POWERTOOLS_LOG_LEVEL", "WARNING"),
        help="level of the handlers' own log lines (default WARNING; INFO shows every step)",
    )
    dev.set_defaults(func=run_dev)

    from qbo_link_local.tail import register_events

    register_events(commands)


def _printer(line: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):  # stdout closed under us: nothing to tell
        print(line, flush=True)


def _banner(stack: Any) -> list[str]:
    from qbo_link_local.console import console_url, known_tenants
    from qbo_link_local.http_api import EVENTS_PATH

    api = stack.api_url
    qbo = (
        f"{stack.sandbox_url}   (control API {stack.sandbox_url}/_sandbox/, see docs/sandbox.md)"
        if stack.sandbox_url
        else "Intuit's sandbox (QBO_LINK_INTUIT_ENVIRONMENT=sandbox)"
    )
    connect = f'{{"return_url": "{stack.landing_url}"}}'
    try:
        tenants = known_tenants(stack)
    except Exception as error:  # a banner line is not worth failing the stack for
        tenants = []
        _printer(f"(could not list the known tenants: {type(error).__name__})")
    consoles = [f"  console          {console_url(api, t)}" for t in tenants] or [
        f"  console          {console_url(api)}?tenant=<tenant id>   (docs/console.md)"
    ]
    return [
        "QBO Link local stack: the real handlers, AWS in moto, QuickBooks in "
        + ("the local sandbox" if stack.sandbox_url else "Intuit's sandbox"),
        f"  tenant API       {api}/v1/tenants   (contract: {api}/v1/openapi.json, {api}/v1/docs)",
        *consoles,
        f"  connect (OAuth)  POST {api}/v1/tenants/<tenant_id>/connection  {connect}",
        f"  OAuth callback   {stack.callback_url}",
        f"  webhooks         {stack.webhook_url}",
        f"  QuickBooks       {qbo}",
        f"  moto (AWS)       {stack.moto_url}   (aws --endpoint-url {stack.moto_url} ...; any credentials)",
        f"  events           qbo-link events --api-url {api}   (GET {api}{EVENTS_PATH})",
        *(
            [
                f"  delivered to     {stack.config.events_url}   (signed, docs/events.md)",
                f"  signing key      {stack.events_signing_key}",
            ]
            if stack.config.events_url
            else []
        ),
        f"  try              curl -s -X POST {api}/v1/tenants/firm-1/connection "
        f"-H 'content-type: application/json' -d '{connect}'",
        "Ready. Press Ctrl-C to stop.",
    ]


def run_dev(args: argparse.Namespace) -> int:
    from qbo_link_local.stack import LocalStack, LocalStackConfig, LocalStackError, PortInUseError

    env: dict[str, str] = {"POWERTOOLS_LOG_LEVEL": str(args.log_level).upper()}
    if args.return_url_prefix:
        env["QBO_LINK_RETURN_URL_ALLOWLIST"] = ",".join(args.return_url_prefix)
    if args.intuit_sandbox:
        env["QBO_LINK_INTUIT_ENVIRONMENT"] = "sandbox"
    config = LocalStackConfig(
        host=args.host,
        port=args.port,
        sandbox=not args.intuit_sandbox,
        moto_port=args.moto_port,
        sandbox_port=args.sandbox_port,
        state_dir=args.state_dir,
        time_scale=args.time_scale,
        log=_printer,
        env=env,
        events_url=args.events_url,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        del signum, frame
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(config)
    try:
        try:
            stack.start()
        except PortInUseError as error:
            flag = _PORT_FLAGS.get(error.component, "--port")
            print(f"error: {error}: stop what uses it or choose another port with {flag}", file=sys.stderr)
            return 2
        except LocalStackError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        for line in _banner(stack):
            _printer(line)
        while not stop.wait(0.5):
            pass
        _printer("stopping...")
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _printer("stopped")
    return 0
