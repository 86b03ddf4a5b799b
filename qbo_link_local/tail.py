"""``qbo-link events``: the events a running local stack saw on its bus, one line each, as they come.

It polls the gateway's ``GET /_local/events`` (``qbo_link_local.http_api.events_page``): first the
last ``--last`` events already seen, then every new one, until Ctrl-C (or SIGTERM), which stops it
cleanly with exit code 0.  ``--json`` prints each event as EventBridge delivers it (one JSON object
per line).  A stack that goes away is waited for; one that restarted is followed from its start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import httpx2

DEFAULT_API_URL: Final = "http://127.0.0.1:8700"  # `qbo-link dev`'s gateway
API_URL_ENV: Final = "QBO_LINK_API_URL"
EVENTS_PATH: Final = "/_local/events"
LINE_WIDTH: Final = 200
_LEFT_OUT: Final = frozenset({"tenant_id", "event_id"})


def register_events(commands: Any) -> None:
    """Add ``events`` to the ``qbo-link`` subcommands (``commands``: argparse's subparsers)."""
    events = commands.add_parser(
        "events",
        help="print the events of a running local stack (qbo-link dev) as they come; Ctrl-C stops",
        description="Prints the events the local stack saw on its bus, one line each, then every new "
        "one until Ctrl-C. See docs/local.md.",
    )
    # SUPPRESS: a value given before the subcommand (qbo-link --api-url ... events) is kept.
    events.add_argument(
        "--api-url",
        default=argparse.SUPPRESS,
        help=f"the local stack's gateway (env {API_URL_ENV}; default {DEFAULT_API_URL})",
    )
    events.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print each event as JSON, one a line"
    )
    events.add_argument(
        "--last", type=int, default=10, help="events already seen to print first (default 10)"
    )
    events.add_argument("--type", action="append", default=[], help="only this detail-type (repeatable)")
    events.add_argument("--tenant", help="only this tenant's events")
    events.add_argument("--interval", type=float, default=0.5, help="seconds between polls (default 0.5)")
    events.set_defaults(func=run_events)


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    detail = event.get("detail")
    return detail if isinstance(detail, dict) else {}


def event_line(event: dict[str, Any]) -> str:
    """``time  detail-type  tenant=...  event_id=...  field=value ...`` (scalar fields of the detail)."""
    detail = _detail(event)
    fields = " ".join(
        f"{name}={value}"
        for name, value in sorted(detail.items())
        if name not in _LEFT_OUT and isinstance(value, str | int | float | bool) and value != ""
    )
    line = (
        f"{event.get('time', '')}  {event.get('detail-type', '?'):<28} tenant={detail.get('tenant_id', '')}"
        f"  event_id={detail.get('event_id', '')}  {fields}"
    ).rstrip()
    return line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 1] + "…"


class _Tail:
    def __init__(self, args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]):
        self.url = (getattr(args, "api_url", None) or os.environ.get(API_URL_ENV) or DEFAULT_API_URL).rstrip(
            "/"
        )
        self.as_json = bool(getattr(args, "json", False))
        self.types = set(args.type or ())
        self.tenant = args.tenant
        self.out = out
        self.err = err
        self.run: str | None = None
        self.after = 0

    def wanted(self, event: dict[str, Any]) -> bool:
        detail = _detail(event)
        if self.types and event.get("detail-type") not in self.types:
            return False
        return self.tenant is None or detail.get("tenant_id") == self.tenant

    def show(self, page: dict[str, Any]) -> None:
        for item in page.get("events") or []:
            event = item.get("event") if isinstance(item, dict) else None
            if isinstance(event, dict) and self.wanted(event):
                self.out(json.dumps(event, sort_keys=True) if self.as_json else event_line(event))

    def poll(self, http: httpx2.Client, params: dict[str, int]) -> dict[str, Any]:
        answer = http.get(self.url + EVENTS_PATH, params=params)
        if answer.status_code == 404:
            raise LookupError(
                f"{self.url} has no {EVENTS_PATH}: `qbo-link events` reads a local stack (`qbo-link dev`)"
            )
        answer.raise_for_status()
        page: dict[str, Any] = answer.json()
        return page

    def step(self, http: httpx2.Client, last: int | None) -> None:
        params = {"after": self.after} if self.run is not None else {"last": max(0, last or 0)}
        page = self.poll(http, params)
        if self.run is not None and page.get("run") != self.run:
            self.err("qbo-link events: the local stack restarted; following it from its start")
            self.after = 0
            page = self.poll(http, {"after": 0})
        self.run = str(page.get("run"))
        self.show(page)
        self.after = int(page.get("next") or 0)


def _follow(tail: _Tail, http: httpx2.Client, args: argparse.Namespace, stop: threading.Event) -> int:
    import httpx2

    lost = False
    while not stop.is_set():
        try:
            tail.step(http, args.last)
            if lost:
                tail.err("qbo-link events: the local stack is back")
            lost = False
        except httpx2.TransportError:
            if tail.run is None:
                tail.err(f"qbo-link events: cannot reach {tail.url}: is `qbo-link dev` running?")
                return 1
            if not lost:
                tail.err(f"qbo-link events: lost {tail.url}; waiting for it (Ctrl-C stops)")
            lost = True
        stop.wait(max(0.05, args.interval))
    return 0


def run_events(args: argparse.Namespace) -> int:
    import httpx2

    def out(line: str) -> None:
        print(line, flush=True)

    def err(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        del signum, frame
        stop.set()

    tail = _Tail(args, out, err)
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with httpx2.Client(timeout=5.0) as http:
            return _follow(tail, http, args, stop)
    except LookupError as error:
        err(f"qbo-link events: {error}")
        return 1
    except httpx2.HTTPStatusError as error:
        err(f"qbo-link events: {tail.url} answered {error.response.status_code}")
        return 1
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        with contextlib.suppress(OSError):
            sys.stdout.close()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
