"""The operator commands of ``qbo-link``: tenants, status, postings, report, push and retry.

They call the tenant API (``qbo_link_cli.client``) of a deployed stack (API URL + AWS credentials)
or of the local stack (``qbo-link dev``), print human tables with rich, fitted to the terminal's
width (the widest columns cut with an ellipsis; ``--wide`` prints full values:
``qbo_link_cli.tables``), or with ``--json`` the API's JSON answers for scripts.  Failures are one
line on stderr: exit 1 when the API (or a file's validation) refused, 2 for a wrong command line.

Only argparse is imported here at start-up; rich, httpx2 and the models load when a command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from qbo_link_cli import API_URL_ENV

if TYPE_CHECKING:
    import httpx2
    from rich.console import Console
    from rich.table import Table

    from qbo_link_cli.client import ApiClient

DEFAULT_API_URL: Final = "http://127.0.0.1:8700"  # `qbo-link dev`'s gateway
EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2
POSTING_STATES: Final = (
    "received",
    "needs_attention",
    "queued",
    "in_flight",
    "uncertain",
    "posted",
    "failed",
    "skipped",
    "voided",
)
POSTING_KINDS: Final = ("client", "invoice", "payment", "credit_memo", "credit_application")


class UsageError(Exception):
    """A command line that cannot work (exit 2)."""


# --- the command line ----------------------------------------------------------------------------


def _date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (yyyy-mm-dd)") from None


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``--api-url``, ``--region``, ``--json``, ``--wide``: before or after the subcommand.  On subcommands
    they default to SUPPRESS so that a value given before the subcommand is kept."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--api-url",
        default=default(os.environ.get(API_URL_ENV) or DEFAULT_API_URL),
        help=f"the tenant API (env {API_URL_ENV}; default {DEFAULT_API_URL}, `qbo-link dev`)",
    )
    parser.add_argument(
        "--region", default=default(None), help="AWS region to sign for (default: AWS_REGION or the URL's)"
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print the API's JSON instead of tables"
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        default=default(False),
        help="print tables with full values (by default they fit the terminal, cut with an ellipsis)",
    )


def register(
    parser: argparse.ArgumentParser, commands: argparse._SubParsersAction[argparse.ArgumentParser]
) -> None:
    """Add the global options to ``parser`` and the operator subcommands to ``commands``."""
    _global_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    paging = argparse.ArgumentParser(add_help=False)
    paging.add_argument("--limit", type=int, help="at most this many rows (the API's page size)")
    paging.add_argument("--page-token", help="continue from the previous answer's next page")

    def add(name: str, help_text: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, parents=[common, *parents])
        command.set_defaults(func=run)
        return command

    add("tenants", "every tenant's connection (operators)", paging)
    status = add("status", "a tenant's connection, posting counts and latest exchange")
    status.add_argument("tenant")

    postings = add("postings", "a tenant's posting log, by state or date range", paging)
    postings.add_argument("tenant")
    postings.add_argument("--state", choices=POSTING_STATES, help="only documents in this state")
    postings.add_argument("--from", dest="date_from", type=_date, help="transaction date from (yyyy-mm-dd)")
    postings.add_argument("--to", dest="date_to", type=_date, help="transaction date to (yyyy-mm-dd)")
    postings.add_argument("--posted-from", type=_date, help="posted on or after (UTC date)")
    postings.add_argument("--posted-to", type=_date, help="posted on or before (UTC date)")

    report = add("report", "the transactions report of a date range, with totals", paging)
    report.add_argument("tenant")
    report.add_argument("--from", dest="date_from", type=_date, required=True, help="from (yyyy-mm-dd)")
    report.add_argument("--to", dest="date_to", type=_date, required=True, help="to (yyyy-mm-dd)")
    report.add_argument(
        "--by",
        choices=("transaction", "posting"),
        default="transaction",
        help="which date the range applies to (default: transaction)",
    )
    report.add_argument("--unposted", action="store_true", help="also documents that are not posted")

    push = add("push", "validate a CSV or JSON file of documents, then send it (docs/cli.md)")
    push.add_argument("tenant")
    push.add_argument("file", type=Path)
    push.add_argument(
        "--wait",
        action="store_true",
        help="follow the documents to their final states; exit 1 if any is refused, failed or waits",
    )
    push.add_argument(
        "--timeout", type=float, default=900.0, help="with --wait: give up after this many seconds (900)"
    )

    retry = add("retry", "retry a failed document (POSTING is kind/id, e.g. invoice/INV-7)")
    retry.add_argument("tenant")
    retry.add_argument("posting")


def run(args: argparse.Namespace, *, transport: httpx2.BaseTransport | None = None) -> int:
    """Run the operator command in ``args``; ``transport`` replaces the network (tests)."""
    from rich.console import Console

    from qbo_link_cli.client import ApiClient, ApiError
    from qbo_link_cli.documents import DocumentFileError
    from qbo_link_cli.tables import output_width

    out = Console(soft_wrap=False, width=output_width(wide=args.wide))
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    command: Callable[[ApiClient, argparse.Namespace, Console], int] = _COMMANDS[args.command]
    try:
        if args.command == "push":  # validate the whole file before anything else
            args.documents = _read_push_file(args.file)
        with ApiClient(args.api_url, region=args.region, transport=transport) as client:
            return command(client, args, out)
    except DocumentFileError as error:
        for problem in error.problems:
            err.print(f"{error.path}: {problem}", markup=False)
        err.print(
            f"qbo-link: {len(error.problems)} problem(s) in {error.path}: nothing was sent", markup=False
        )
        return EXIT_REFUSED
    except UsageError as error:
        err.print(f"qbo-link {args.command}: {error}", markup=False)
        return EXIT_USAGE
    except ApiError as error:
        err.print(f"qbo-link: {error}", markup=False)
        return EXIT_REFUSED


def _read_push_file(path: Path) -> Any:
    from qbo_link_cli.documents import read_documents

    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    return read_documents(path)


# --- output helpers ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # it came as a JSON number; the API writes money as strings
    raise TypeError(type(value).__name__)


def print_json(value: Any) -> None:
    """The API's JSON as it came (numbers with a fraction were read as Decimal: written back as numbers)."""
    sys.stdout.write(json.dumps(value, indent=2, default=_plain) + "\n")
    sys.stdout.flush()


def _table(title: str | None, *columns: str, whole: Sequence[str] = ()) -> Table:
    """A table whose rows stay on one line, fitted to the output's width, the widest columns cut
    first (``whole``: the columns cut last; ``qbo_link_cli.tables``)."""
    from qbo_link_cli.tables import table

    return table(title, *columns, whole=whole)


def _when(value: Any) -> str:
    """An instant as ``YYYY-MM-DD HH:MM`` (UTC), a date as is, nothing as an empty cell."""
    if not value:
        return ""
    text = str(value)
    return text[:16].replace("T", " ") if "T" in text else text


def _reasons(entry: Mapping[str, Any]) -> str:
    parts = []
    for reason in entry.get("reasons") or ():
        details = reason.get("details") or {}
        shown = ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, "", [], {}))
        parts.append(f"{reason.get('code')}" + (f" ({shown})" if shown else ""))
    error = entry.get("last_error")
    if error and entry.get("state") == "failed":
        parts.append(f"QBO {error.get('code') or ''}: {error.get('message') or ''}".strip())
    return "; ".join(parts)


def _more(console: Console, answer: Mapping[str, Any], command: str) -> None:
    token = answer.get("next_page_token")
    if token:
        console.print(f"more: {command} --page-token {token}", markup=False, highlight=False)


# --- commands ------------------------------------------------------------------------------------


def _tenants(client: ApiClient, args: argparse.Namespace, out: Console) -> int:
    answer = client.get("/tenants", limit=args.limit, page_token=args.page_token)
    if args.json:
        print_json(answer)
        return 0
    table = _table(
        None,
        *("Tenant", "Realm", "Company", "Country", "Health", "Connected since", "Disconnected"),
        whole=("Tenant", "Health"),
    )
    for row in answer["tenants"]:
        health = row.get("health") or ""
        style = "green" if health == "healthy" else "yellow" if health == "refresh_failing" else "red"
        table.add_row(
            row["tenant_id"],
            row["realm_id"],
            row.get("company_name") or "",
            row.get("country") or "",
            f"[{style}]{health}[/]",
            _when(row.get("connected_at")),
            _when(row.get("disconnected_at")),
        )
    out.print(table)
    out.print(f"{len(answer['tenants'])} tenant(s)", highlight=False)
    _more(out, answer, "qbo-link tenants")
    return 0


def _status(client: ApiClient, args: argparse.Namespace, out: Console) -> int:
    tenant = args.tenant
    connection = client.get(f"/tenants/{tenant}/connection")
    summary = client.get(f"/tenants/{tenant}/postings/summary")
    latest = client.get(f"/tenants/{tenant}/exchanges/latest")
    if args.json:
        print_json({"connection": connection, "postings_summary": summary, "latest_exchange": latest})
        return 0
    facts = _table(f"Tenant {tenant}", "", "")
    facts.show_header = False
    if connection.get("realm_id") is None:
        facts.add_row("Connection", "[red]never connected[/]")
    else:
        state = "[green]connected[/]" if connection.get("connected") else "[red]not connected[/]"
        reason = f" ({connection['reason']})" if connection.get("reason") else ""
        facts.add_row("Connection", f"{state}, {connection.get('health')}{reason}")
        facts.add_row("Company", f"{connection.get('company_name') or ''} (realm {connection['realm_id']})")
        facts.add_row("Connected at", _when(connection.get("connected_at")))
        facts.add_row("Onboarding", onboarding_line(connection.get("onboarding")))
        if connection.get("disconnected_at"):
            facts.add_row("Disconnected at", _when(connection.get("disconnected_at")))
        facts.add_row("Last successful call", _when(connection.get("last_success_at")))
        facts.add_row("Refresh token expires", _when(connection.get("refresh_expires_at")))
        if connection.get("hard_expires_in_days") is not None:
            facts.add_row("Grant hard expiry", f"in {connection['hard_expires_in_days']} days")
        if connection.get("reconnect_url"):
            facts.add_row("Reconnect", str(connection["reconnect_url"]))
    out.print(facts)
    out.print(postings_summary_table(summary))
    out.print(exchange_line(latest.get("exchange")), highlight=False)
    return 0


def onboarding_line(onboarding: Mapping[str, Any] | None) -> str:
    """The connection status's ``onboarding`` in one line (docs/events.md, "Onboarding Finished")."""
    if not onboarding:
        return "not recorded"
    state = str(onboarding.get("state"))
    if state == "finished":
        read = sum((onboarding.get("read") or {}).values())
        linked = sum((onboarding.get("linked") or {}).values())
        when = _when(onboarding.get("finished_at"))
        return f"[green]finished[/] {when}: {read} QBO entities read, {linked} linked"
    if state == "failed":
        return f"[red]failed[/] {_when(onboarding.get('failed_at'))}: {onboarding.get('error')}"
    if state == "running":
        return f"[yellow]running[/] since {_when(onboarding.get('started_at'))}"
    return f"[yellow]{state}[/]"


def postings_summary_table(summary: Mapping[str, Any]) -> Table:
    """Documents per kind and state (``GET .../postings/summary``)."""
    by_state: Mapping[str, int] = summary.get("by_state") or {}
    states = [s for s in POSTING_STATES if by_state.get(s)]
    table = _table("Posting log", "Kind", *states, "Total")
    for kind, counts in sorted((summary.get("by_kind") or {}).items()):
        table.add_row(kind, *(str(counts.get(s, 0) or "") for s in states), str(sum(counts.values())))
    table.add_row(
        "all", *(str(by_state.get(s, 0)) for s in states), str(summary.get("total", 0)), style="bold"
    )
    return table


def exchange_line(exchange: Mapping[str, Any] | None) -> str:
    """The latest exchange in one line (``GET .../exchanges/latest``)."""
    if not exchange:
        return "Latest exchange: none yet"
    events = ", ".join(f"{k} {v}" for k, v in sorted((exchange.get("events") or {}).items()))
    ignored = ", ".join(f"{k} {v}" for k, v in sorted((exchange.get("ignored") or {}).items()))
    error = f" — {exchange['error']}" if exchange.get("error") else ""
    return (
        f"Latest exchange: {exchange.get('source')} {exchange.get('outcome')} at "
        f"{_when(exchange.get('finished_at') or exchange.get('started_at'))}: "
        f"{exchange.get('changes', 0)} change(s), {exchange.get('reads', 0)} read(s)"
        f"{' (' + events + ')' if events else ''}{'; ignored: ' + ignored if ignored else ''}{error}"
    )


def _postings(client: ApiClient, args: argparse.Namespace, out: Console) -> int:
    params = {
        "state": args.state,
        "from": args.date_from,
        "to": args.date_to,
        "posted_from": args.posted_from,
        "posted_to": args.posted_to,
        "limit": args.limit,
        "page_token": args.page_token,
    }
    answer = client.get(f"/tenants/{args.tenant}/postings", **params)
    if args.json:
        print_json(answer)
        return 0
    table = _table(
        None,
        *("Kind", "Id", "Ver", "State", "Date", "QBO id", "Tries", "Posted at", "Why"),
        whole=("Kind", "Ver", "State", "Date", "Tries"),
    )
    for entry in answer["entries"]:
        table.add_row(
            entry["kind"],
            entry["app_id"],
            str(entry["version"]),
            _state(entry["state"]),
            entry.get("txn_date") or "",
            entry.get("qbo_id") or "",
            str(entry.get("attempts", 0)),
            _when(entry.get("posted_at")),
            _reasons(entry),
        )
    out.print(table)
    out.print(f"{len(answer['entries'])} document(s)", highlight=False)
    _more(out, answer, f"qbo-link postings {args.tenant}")
    return 0


def _state(state: str) -> str:
    style = {"posted": "green", "needs_attention": "yellow", "failed": "red", "uncertain": "red"}.get(state)
    return f"[{style}]{state}[/]" if style else state


def _report(client: ApiClient, args: argparse.Namespace, out: Console) -> int:
    prefix = "txn" if args.by == "transaction" else "posted"
    params = {
        f"{prefix}_from": args.date_from,
        f"{prefix}_to": args.date_to,
        "include_unposted": True if args.unposted else None,
        "limit": args.limit,
        "page_token": args.page_token,
    }
    answer = client.get(f"/tenants/{args.tenant}/reports/transactions", **params)
    if args.json:
        print_json(answer)
        return 0
    table = _table(
        f"Transactions of {args.tenant}, {args.by} dates {args.date_from} to {args.date_to}",
        "Kind",
        "Id",
        "Number",
        "Date",
        "Client",
        "Total",
        "State",
        "QBO id",
        "Posted at",
        whole=("Kind", "Date", "Total", "State"),
    )
    for row in answer["documents"]:
        table.add_row(
            row["kind"],
            row["id"],
            row.get("number") or "",
            row.get("date") or "",
            row.get("client_id") or "",
            row.get("total") or "",
            _state(row["state"]),
            row.get("qbo_id") or "",
            _when(row.get("posted_at")),
        )
    out.print(table)
    totals = answer.get("totals")
    if totals is not None:
        summary = _table("Totals", "Kind", "Documents", "Total", "Posted", "Posted total")
        for kind, total in totals.items():
            summary.add_row(
                kind, str(total["count"]), total["total"], str(total["posted_count"]), total["posted_total"]
            )
        out.print(summary)
    _more(
        out,
        answer,
        f"qbo-link report {args.tenant} --from {args.date_from} --to {args.date_to} --by {args.by}",
    )
    return 0


BULK_LIMIT: Final = 500  # documents per request (the API's MAX_BULK_ITEMS)
FINAL_REFUSED: Final = frozenset({"refused", "failed", "needs_attention", "unknown"})


def send_documents(
    client: ApiClient, tenant: str, documents: Sequence[Any], console: Console, *, label: str = "sending"
) -> tuple[list[dict[str, Any]], list[str]]:
    """Send ``documents`` (``qbo_link_cli.documents.Document``, in sending order) through the bulk
    route, ``BULK_LIMIT`` a request, with a progress bar: each document's answer (``status``
    accepted, ignored or refused, its state and reasons, or its problems) and the job ids that
    follow them.  An ApiError (the whole request refused) stops the run and says how far it got."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qbo_link_cli.client import ApiError

    answers: list[dict[str, Any]] = []
    jobs: list[str] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label, total=len(documents))
        for start in range(0, len(documents), BULK_LIMIT):
            chunk = documents[start : start + BULK_LIMIT]
            body = {"documents": [{"kind": d.kind, "document": d.body} for d in chunk]}
            try:
                answer = _send_bulk(client, tenant, body)
            except ApiError as error:
                raise ApiError(
                    f"sent {len(answers)} of {len(documents)}; the next {len(chunk)} were refused: {error}",
                    status=error.status,
                    body=error.body,
                ) from None
            for document, result in zip(chunk, answer["results"], strict=True):
                answers.append({**result, "where": document.where})
            if answer.get("job_id"):
                jobs.append(str(answer["job_id"]))
            progress.advance(task, len(chunk))
    return answers, jobs


def _send_bulk(client: ApiClient, tenant: str, body: dict[str, Any], attempts: int = 3) -> Any:
    """One bulk request, sent again (up to ``attempts`` in all) when the API was unavailable (503)
    or did not answer in time: the same request again is harmless (the versions it already took
    come back ``ignored``, and the ``queued`` ones are sent to the queue again)."""
    import time

    from qbo_link_cli.client import ApiError

    for attempt in range(1, attempts + 1):
        try:
            return client.post(f"/tenants/{tenant}/documents", body)
        except ApiError as error:
            if attempt == attempts or error.status not in (None, 502, 503, 504):
                raise
            time.sleep(2.0 * attempt)
    raise AssertionError("unreachable")


def wait_for_jobs(
    client: ApiClient, tenant: str, jobs: Sequence[str], console: Console, *, timeout: float
) -> list[dict[str, Any]]:
    """Poll each job until every document of it is settled (``finished``); their final rows.
    A ``TimeoutError`` after ``timeout`` seconds says how many were still on their way."""
    import time

    deadline = time.monotonic() + timeout
    settled: dict[str, dict[str, Any]] = {}
    pause = 0.5
    with console.status("waiting for the documents' final states") as status:
        while True:
            waiting = 0
            for job in jobs:
                if job in settled:
                    continue
                answer = client.get(f"/tenants/{tenant}/jobs/{job}")
                if answer["finished"]:
                    settled[job] = answer
                else:
                    waiting += sum(n for state, n in answer["by_state"].items() if state in _ON_THEIR_WAY)
            if len(settled) == len(jobs):
                return [item for job in jobs for item in settled[job]["items"]]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{waiting} document(s) still on their way after {timeout:.0f} s")
            status.update(f"waiting for the documents' final states: {waiting} on their way")
            time.sleep(pause)
            pause = min(pause * 1.5, 5.0)


_ON_THEIR_WAY: Final = frozenset({"received", "queued", "in_flight", "uncertain"})


def _push(client: ApiClient, args: argparse.Namespace, out: Console) -> int:
    from rich.console import Console

    progress_console = Console(stderr=True) if args.json else out
    answers, jobs = send_documents(
        client, args.tenant, args.documents, progress_console, label=f"pushing {args.file.name}"
    )
    refused = [a for a in answers if a["status"] == "refused"]
    if args.wait:
        try:
            finals = wait_for_jobs(client, args.tenant, jobs, progress_console, timeout=args.timeout)
        except TimeoutError as late:
            progress_console.print(f"qbo-link: {late}", highlight=False)
            return 1
        rows = [*finals, *({**r, "state": "refused"} for r in refused)]
        if args.json:
            print_json(rows)
        else:
            _print_states(out, f"Final states of {len(rows)} document(s) of {args.tenant}", rows)
        return 1 if any(r["state"] in FINAL_REFUSED for r in rows) else 0
    if args.json:
        print_json(answers)
        return 1 if refused else 0
    rows = [{**a, "state": a["state"] or a["status"]} for a in answers]
    _print_states(out, f"Pushed {len(answers)} document(s) to {args.tenant}", rows)
    return 1 if refused else 0


def _print_states(out: Console, title: str, rows: Sequence[dict[str, Any]]) -> None:
    """Documents by kind and state, then those that did not get through, with why."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["kind"], row["state"])
        counts[key] = counts.get(key, 0) + 1
    table = _table(title, "Kind", "State", "Documents", whole=("Kind", "State"))
    order = {kind: n for n, kind in enumerate(POSTING_KINDS)}
    for (kind, state), number in sorted(counts.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])):
        table.add_row(kind, _state(state), str(number))
    out.print(table)
    attention = [r for r in rows if r.get("reasons") or r.get("problems") or r.get("last_error")]
    if attention:
        waiting = _table(
            "Not posted: waiting (they go by themselves once the cause is fixed), failed or refused",
            *("Kind", "Id", "State", "Why"),
            whole=("Kind", "State"),
        )
        for row in attention:
            waiting.add_row(str(row["kind"]), str(row["id"]), _state(row["state"]), _why(row))
        out.print(waiting)


def _why(row: dict[str, Any]) -> str:
    if row.get("problems"):
        return "; ".join(f"{p['field']}: {p['message']}" for p in row["problems"])
    return _reasons(row)


def _retry(client: ApiClient, args: argparse.Namespace, out: Console) -> int:
    kind, _, app_id = args.posting.partition("/")
    if not app_id or kind.replace("-", "_") not in POSTING_KINDS:
        raise UsageError(
            f"POSTING must be kind/id with kind one of {', '.join(POSTING_KINDS)}: {args.posting!r}"
        )
    answer = client.post(f"/tenants/{args.tenant}/postings/{kind.replace('-', '_')}/{app_id}/retry")
    if args.json:
        print_json(answer)
        return 0
    reasons = _reasons(answer)
    out.print(
        f"{answer['kind']} {answer['id']} v{answer['version']}: {_state(answer['state'] or answer['status'])}"
        + (f" — {reasons}" if reasons else ""),
        highlight=False,
    )
    return 0


_COMMANDS: Final[Mapping[str, Callable[[ApiClient, argparse.Namespace, Console], int]]] = {
    "tenants": _tenants,
    "status": _status,
    "postings": _postings,
    "report": _report,
    "push": _push,
    "retry": _retry,
}
