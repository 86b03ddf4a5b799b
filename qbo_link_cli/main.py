"""``qbo-link``: the command line of QBO Link.

Subcommands import what they need when they run, so ``qbo-link --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence


def _sandbox(args: argparse.Namespace) -> int:
    from qbo_sandbox.server import SandboxServer
    from qbo_sandbox.settings import SandboxSettings

    settings = SandboxSettings.from_env(
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        verifier_token=args.verifier_token,
        state_file=args.state_file,
        time_scale=args.time_scale,
        seed_realms=args.companies,
        redirect_uris=args.redirect_uri or None,
    )
    try:
        server = SandboxServer(settings)
    except OSError as exc:
        print(
            f"error: cannot listen on {settings.host}:{settings.port}: {exc.strerror}. "
            "Choose another --port.",
            file=sys.stderr,
        )
        return 2
    s = server.sandbox.settings
    print(f"QBO sandbox listening on {server.url}")
    print(f"  discovery document  {server.url}/.well-known/openid_configuration")
    print(f"  accounting API      {server.url}/v3/company/<realmId>/...")
    print(f"  control API         {server.url}/_sandbox/   (see docs/sandbox.md)")
    print(f"  client id           {s.client_id}")
    print(f"  client secret       {s.client_secret}")
    print(f"  webhook verifier    {s.verifier_token}")
    print(f"  redirect URIs       {', '.join(s.redirect_uris)}")
    for company in server.sandbox.companies.values():
        print(f"  company             {company.realm_id}  {company.name} ({company.country})")
    print("Press Ctrl-C to stop.", flush=True)

    def _stop(signum: int, frame: object) -> None:
        del signum, frame
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started in the background with SIGINT ignored
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from qbo_link_cli.demo import run_demo

    return run_demo(verbose=args.verbose, wide=args.wide, keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qbo-link", description="QBO Link: QuickBooks Online connector")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sandbox = commands.add_parser("sandbox", help="run the local QuickBooks Online sandbox")
    env = os.environ.get
    sandbox.add_argument("--host", default=env("QBO_SANDBOX_HOST", "127.0.0.1"))
    sandbox.add_argument("--port", type=int, default=int(env("QBO_SANDBOX_PORT", "8800")))
    sandbox.add_argument("--client-id", help="OAuth client id (env QBO_SANDBOX_CLIENT_ID)")
    sandbox.add_argument("--client-secret", help="OAuth client secret (env QBO_SANDBOX_CLIENT_SECRET)")
    sandbox.add_argument("--verifier-token", help="webhook verifier token (env QBO_SANDBOX_VERIFIER_TOKEN)")
    sandbox.add_argument(
        "--redirect-uri",
        action="append",
        help="registered redirect URI (repeatable; a trailing * matches by prefix)",
    )
    sandbox.add_argument("--state-file", help="keep state in this JSON file across restarts")
    sandbox.add_argument("--time-scale", type=float, help="speed of rate windows and webhook retries")
    sandbox.add_argument("--companies", type=int, default=1, help="seeded US companies to create at start")
    sandbox.set_defaults(func=_sandbox)

    demo = commands.add_parser("demo", help="boot the local stack and run the main job through it, checked")
    demo.add_argument("-v", "--verbose", action="store_true", help="also print the local stack's log")
    demo.add_argument(
        "--wide", action="store_true", help="print tables with full values (by default they fit the terminal)"
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the local stack running after the checks, until Ctrl-C (open the console it prints)",
    )
    demo.set_defaults(func=_demo)

    from qbo_link_local.cli import register_dev

    register_dev(commands)

    from qbo_link_cli import operator

    operator.register(parser, commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
