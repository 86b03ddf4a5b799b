"""Benchmark: how fast the sandbox seeds a company and queries thousands of rows in process, and
how many simple reads per second it serves over HTTP (not a test; prints figures).

The sandbox runs in its own process (as ``qbo-link sandbox``), limits switched off; client
threads in this process reuse keep-alive connections.  Usage:

    .venv/bin/python scripts/bench_sandbox.py [--seconds 5] [--threads 4]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _connect(url: str) -> tuple[str, str]:
    settings = httpx2.get(f"{url}/_sandbox/settings").json()
    answer = httpx2.get(
        f"{url}/connect/oauth2",
        params={
            "client_id": settings["clientId"],
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": "http://127.0.0.1:9/cb",
            "state": "bench",
        },
    )
    callback = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    tokens = httpx2.post(
        f"{url}/oauth2/v1/tokens/bearer",
        auth=(settings["clientId"], "bench-secret"),
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": "http://127.0.0.1:9/cb",
        },
    ).json()
    return callback["realmId"], tokens["access_token"]


def _run(url: str, path: str, token: str, seconds: float, threads: int) -> tuple[float, list[float]]:
    stop = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def worker(bucket: list[float]) -> None:
        with httpx2.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
        ) as http:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                answer = http.get(path)
                bucket.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    raise SystemExit(f"unexpected {answer.status_code}: {answer.text[:200]}")

    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(b,)) for b in latencies]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    flat = [x for b in latencies for x in b]
    return len(flat) / elapsed, flat


def _in_process() -> None:
    """Seeding a company (the best of 5 per country) and three queries over 4,000 customers."""
    from datetime import UTC, datetime

    from qbo_sandbox import seed
    from qbo_sandbox.company import Company
    from qbo_sandbox.query import run_query

    now = datetime(2026, 5, 5, 3, 0, tzinfo=UTC)
    for country in sorted(seed.SUPPORTED_COUNTRIES):
        timings = []
        for _ in range(5):
            company = Company(realm_id="1", country=country, name="Sandbox Company", created_at=now)
            start = time.perf_counter()
            seed.seed_company(company, now)
            timings.append(time.perf_counter() - start)
        print(f"seed a {country} company (best of 5){'':22s} {min(timings) * 1000:8.2f} ms")
    big = Company(realm_id="2", country="US", name="Big", created_at=now)
    for n in range(4000):
        big.insert("Customer", {"DisplayName": f"Customer {n:04d}", "Active": n % 10 != 0, "Balance": n}, now)
    statements = [
        "SELECT * FROM Customer WHERE DisplayName LIKE '%7%' ORDERBY DisplayName DESC MAXRESULTS 10",
        "SELECT * FROM Customer WHERE Balance > 1000 AND MetaData.LastUpdatedTime > '2026-01-01' "
        "MAXRESULTS 10",
        "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)",
    ]
    start = time.perf_counter()
    for _ in range(10):
        for statement in statements:
            run_query(big, statement)
    per_query = (time.perf_counter() - start) / (10 * len(statements))
    print(f"query over 4,000 customers (mean of 30){'':7s} {per_query * 1000:8.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    _in_process()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "QBO_SANDBOX_CLIENT_SECRET": "bench-secret"}
    server = subprocess.Popen(
        [sys.executable, "-m", "qbo_link_cli.main", "sandbox", "--port", str(port), "--companies", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                httpx2.get(f"{url}/_sandbox/health")
                break
            except httpx2.TransportError:
                time.sleep(0.05)
        httpx2.post(
            f"{url}/_sandbox/limits",
            json={"requests_per_minute": 0, "requests_per_second": 0, "concurrent": 0},
        )
        realm, token = _connect(url)
        print(
            f"sandbox pid {server.pid} on {url}; {args.threads} client threads, {args.seconds:.0f} s each;"
            f" {os.cpu_count()} cores"
        )
        cases = [
            ("GET customer/1 (entity read)", f"/v3/company/{realm}/customer/1?minorversion=75"),
            (
                "GET query SELECT * FROM Customer (29 rows)",
                f"/v3/company/{realm}/query?query=SELECT%20*%20FROM%20Customer&minorversion=75",
            ),
        ]
        for name, path in cases:
            rate, latencies = _run(url, path, token, args.seconds, args.threads)
            q = statistics.quantiles(latencies, n=100)
            print(f"{name:45s} {rate:8.0f} req/s   p50 {q[49] * 1000:6.2f} ms   p99 {q[98] * 1000:6.2f} ms")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
