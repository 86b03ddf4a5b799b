"""What ``--state-dir`` costs the local stack: the same push with and without it, in one run.

    .venv/bin/python scripts/bench_local_state.py [--invoices 300 --workers 4 --rounds 2]

Each round starts the local stack twice (in memory, then with a fresh state directory), connects a
tenant through the OAuth flow and pushes the same invoices through the tenant API from ``workers``
threads (a host app's workers), then waits until every one is posted.  Reported per mode: the PUT
latency (p50, p95), the push's throughput (first PUT to idle), this process's CPU time per
document (the figure a shared machine blurs least), and with a state directory the
journal's records and fsyncs, the sandbox's state-file writes, the files' sizes, and how long the
next start takes to replay them.  The machine is shared: read the ratios, within one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qbo_link_local.stack import LocalStack, LocalStackConfig  # noqa: E402
from tests.e2e.local_fixtures import Host, client, invoice  # noqa: E402

TENANT = "bench-state"


def _connect(stack: LocalStack, http: httpx2.Client) -> None:
    """The tenant connected through the OAuth flow as the e2e tests do, its work code mapped, and
    the five clients its invoices bill."""
    host = Host(stack, http)
    host.connect(TENANT)
    stack.wait_idle(120)  # onboarding imported the company's lists
    host.prepare(TENANT)
    for n in range(5):
        host.ok("PUT", f"/tenants/{TENANT}/clients/c{n}", client(f"c{n}", f"State Bench {n}"))
    stack.wait_idle(120)


def _invoice(n: int) -> dict[str, Any]:
    return invoice(f"i{n}", f"c{n % 5}", f"{100 + n % 50}.00", number=f"SB-{n}")


def _push(stack: LocalStack, invoices: int, workers: int) -> dict[str, Any]:
    api = f"{stack.api_url}/tenants/{TENANT}"
    latencies: list[float] = []

    def put(numbers: range) -> None:
        with httpx2.Client(timeout=60) as http:
            for n in numbers:
                began = time.perf_counter()
                answer = http.put(f"{api}/invoices/i{n}", json=_invoice(n))
                latencies.append((time.perf_counter() - began) * 1000)
                if answer.status_code != 202:
                    raise RuntimeError(f"i{n}: {answer.status_code} {answer.text}")

    began, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, [range(w, invoices, workers) for w in range(workers)]))
    stack.wait_idle(1200)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    quantiles = statistics.quantiles(latencies, n=20)
    return {
        "put_p50_ms": statistics.median(latencies),
        "put_p95_ms": quantiles[18],
        "docs_per_s": invoices / seconds,
        # this process's CPU (the stack, the sandbox and the clients): what a busy machine blurs least
        "cpu_ms_per_doc": cpu * 1000 / invoices,
    }


def _round(invoices: int, workers: int, state_dir: Path | None) -> dict[str, Any]:
    config = LocalStackConfig(log=None, state_dir=state_dir, env={"POWERTOOLS_LOG_LEVEL": "WARNING"})
    with LocalStack(config) as stack, httpx2.Client(timeout=60) as http:
        _connect(stack, http)
        figures = _push(stack, invoices, workers)
        if state_dir is not None:
            kept = stack.stats()["state"]
            figures |= {
                "journal_records": kept["journal_records"],
                "journal_fsyncs": kept["journal_fsyncs"],
                "journal_mb": Path(kept["journal"]).stat().st_size / 1e6,
                "sandbox_writes": kept["sandbox_writes"],
                "sandbox_json_mb": (state_dir / "sandbox.json").stat().st_size / 1e6,
            }
            # what a SIGKILL now would leave: the start-up snapshot, the journal, the sandbox's file
            shutil.copytree(state_dir, state_dir.with_name(state_dir.name + "-killed"))
    if state_dir is not None:
        figures["aws_json_mb"] = (state_dir / "aws.json").stat().st_size / 1e6
        killed = state_dir.with_name(state_dir.name + "-killed")
        for name, directory in (("restart_after_stop_s", state_dir), ("restart_after_kill_s", killed)):
            began = time.perf_counter()
            with LocalStack(LocalStackConfig(log=None, state_dir=directory)):
                figures[name] = time.perf_counter() - began
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"memory": [], "state_dir": []}
    for _ in range(args.rounds):
        runs["memory"].append(_round(args.invoices, args.workers, None))
        with tempfile.TemporaryDirectory() as directory:
            runs["state_dir"].append(_round(args.invoices, args.workers, Path(directory) / "state"))
        print(json.dumps({mode: rounds[-1] for mode, rounds in runs.items()}), file=sys.stderr, flush=True)
    summary = {
        mode: {key: round(statistics.median(r[key] for r in rounds), 2) for key in rounds[0]}
        for mode, rounds in runs.items()
    }
    memory, kept = summary["memory"], summary["state_dir"]
    summary["ratios"] = {
        "put_p50": round(kept["put_p50_ms"] / memory["put_p50_ms"], 2),
        "put_p95": round(kept["put_p95_ms"] / memory["put_p95_ms"], 2),
        "throughput": round(kept["docs_per_s"] / memory["docs_per_s"], 2),
        "cpu_per_doc": round(kept["cpu_ms_per_doc"] / memory["cpu_ms_per_doc"], 2),
    }
    print(
        json.dumps(
            {"invoices": args.invoices, "workers": args.workers, "rounds": args.rounds, **summary}, indent=2
        )
    )


if __name__ == "__main__":
    main()
