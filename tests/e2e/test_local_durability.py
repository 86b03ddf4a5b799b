"""``qbo-link dev --state-dir`` killed with SIGKILL in the middle of a push keeps every document it
accepted: restarted on the same directory, it posts each of them to QuickBooks exactly once.

The stack runs as a real process (``python -m qbo_link_cli.main dev``), driven over HTTP only, as a
host app would.  QuickBooks' answers to the push are slowed (the sandbox's ``slow_response`` fault:
the work is done, the answer waits), so at the kill some accepted invoices are still queued and
some are in QuickBooks with their answer never received: both must come out right after the restart.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.local_fixtures import QBO_ITEM, WORK_CODE, client, free_ports, invoice

REPO = Path(__file__).resolve().parents[2]
TENANT = "firm-k"
INVOICES = 40
WAIT = 180.0  # generous: a loaded 2-core machine


class _Dev:
    """``qbo-link dev --state-dir DIR`` on free ports; its output kept for a failure's message."""

    def __init__(self, state_dir: Path) -> None:
        ports = free_ports(3)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "QBO_LINK_", "POWERTOOLS_"))}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qbo_link_cli.main",
                "dev",
                "--port",
                str(ports[0]),
                "--sandbox-port",
                str(ports[1]),
                "--moto-port",
                str(ports[2]),
                "--state-dir",
                str(state_dir),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.api = f"http://127.0.0.1:{ports[0]}"
        self.sandbox = f"http://127.0.0.1:{ports[1]}/_sandbox"
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def ready(self) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.output.append(line)
            if line.startswith("Ready."):
                return
        raise AssertionError("qbo-link dev did not start:\n" + self.log())

    def log(self) -> str:
        while not self._lines.empty():
            line = self._lines.get_nowait()
            if line is not None:
                self.output.append(line)
        return "\n".join(self.output[-60:])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        self._pump.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def dev() -> Iterator[Callable[[Path], _Dev]]:
    started: list[_Dev] = []

    def start(state_dir: Path) -> _Dev:
        started.append(_Dev(state_dir))
        started[-1].ready()
        return started[-1]

    try:
        yield start
    finally:
        for process in started:
            process.close()


def _ok(http: httpx2.Client, method: str, url: str, body: Any = None) -> Any:
    answer = http.request(method, url, json=body)
    assert answer.status_code < 300, f"{method} {url}: {answer.status_code} {answer.text}"
    return json.loads(answer.text, parse_float=Decimal) if answer.content else None


def _until(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout:g} s")
        time.sleep(0.2)


def _invoices(http: httpx2.Client, running: _Dev, realm: str) -> list[dict[str, Any]]:
    rows = _ok(http, "GET", f"{running.sandbox}/companies/{realm}/entities/Invoice").get("Invoice", [])
    return [row for row in rows if str(row.get("DocNumber", "")).startswith("E2E-k-")]


def _connect(http: httpx2.Client, running: _Dev) -> str:
    api = f"{running.api}/tenants/{TENANT}"
    landing = f"{running.api}/_local/connected"
    started = _ok(http, "POST", f"{api}/connection", {"return_url": landing})
    consent = http.get(started["authorization_url"])
    assert consent.status_code == 302, consent.text
    back = http.get(consent.headers["location"])
    assert back.headers["location"].startswith(landing + "?status=connected"), back.headers
    status = _ok(http, "GET", f"{api}/connection")
    assert status["connected"] is True, status
    _ok(http, "PUT", f"{api}/settings", {"auto_create_customers": True})
    _ok(http, "PUT", f"{api}/catalog/work_code/{WORK_CODE}", {"version": 1, "name": "Advice"})
    mapping = f"{api}/mappings/work_code/app/{WORK_CODE}"
    # the QBO item is known once onboarding (after the consent, by an event rule) imported the lists
    _until("onboarding", lambda: http.put(mapping, json={"qbo_id": QBO_ITEM}).status_code == 200)
    return str(status["realm_id"])


def _amount(n: int) -> str:
    return f"{100 + n}.{n % 100:02d}"


def test_a_sigkill_mid_push_loses_and_duplicates_no_accepted_document(
    tmp_path: Path, dev: Callable[[Path], _Dev]
) -> None:
    state_dir = tmp_path / "state"
    accepted: list[str] = []
    with httpx2.Client(timeout=30) as http:
        # Given a connected tenant whose client is posted
        first = dev(state_dir)
        api = f"{first.api}/tenants/{TENANT}"
        realm = _connect(http, first)
        assert http.put(f"{api}/clients/c-1", json=client("c-1")).status_code == 202
        _until(
            "the client posted", lambda: _ok(http, "GET", f"{api}/postings/client/c-1")["state"] == "posted"
        )
        # and QuickBooks slow to answer its writes (each is done at once, its answer waits 2 s)
        _ok(
            http,
            "POST",
            f"{first.sandbox}/faults",
            {"kind": "slow_response", "realm": realm, "method": "POST", "probability": 1, "latency_ms": 2000},
        )

        # When the host app pushes invoices one after another
        def push() -> None:
            with httpx2.Client(timeout=30) as pusher:
                for n in range(INVOICES):
                    app_id = f"k-{n}"
                    try:
                        answer = pusher.put(
                            f"{api}/invoices/{app_id}", json=invoice(app_id, "c-1", _amount(n))
                        )
                    except httpx2.TransportError:
                        return  # killed: this one's outcome is unknown to the host app
                    assert answer.status_code == 202, answer.text
                    accepted.append(app_id)

        pushing = threading.Thread(target=push, daemon=True)
        pushing.start()
        # and the stack is killed once QuickBooks holds some of them while the host app still pushes
        _until("the first invoices in QuickBooks", lambda: len(_invoices(http, first, realm)) >= 1)
        _until("ten invoices accepted", lambda: len(accepted) >= 10 or not pushing.is_alive())
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
        pushing.join(60)
        assert len(accepted) >= 10, first.log()

        # Then, restarted on the same state directory, it posts every accepted invoice exactly once
        second = dev(state_dir)
        api = f"{second.api}/tenants/{TENANT}"
        assert _ok(http, "GET", f"{api}/connection")["connected"] is True

        def all_posted() -> bool:
            states = [_ok(http, "GET", f"{api}/postings/invoice/{i}")["state"] for i in accepted]
            return all(state == "posted" for state in states)

        _until("every accepted invoice posted", all_posted)
        posted = _invoices(http, second, realm)
        numbers = [row["DocNumber"] for row in posted]
        assert len(numbers) == len(set(numbers)), sorted(numbers)  # no invoice twice
        assert {f"E2E-{i}" for i in accepted} <= set(numbers)
        # (the one whose PUT the kill cut short may be there too, once)
        assert len(numbers) <= len(accepted) + 1
        amounts = {row["DocNumber"]: row["TotalAmt"] for row in posted}
        for app_id in accepted:
            n = int(app_id.removeprefix("k-"))
            assert amounts[f"E2E-{app_id}"] == Decimal(_amount(n))
            entry = _ok(http, "GET", f"{api}/postings/invoice/{app_id}")
            assert entry["qbo_id"] in {row["Id"] for row in posted if row["DocNumber"] == f"E2E-{app_id}"}
        # and it stops cleanly
        second.process.send_signal(signal.SIGINT)
        assert second.process.wait(60) == 0, second.log()


def test_a_state_directory_in_use_is_refused_in_one_line(tmp_path: Path) -> None:
    from qbo_link_local import state

    held = state.lock(tmp_path)  # as a running `qbo-link dev --state-dir` holds it
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "QBO_LINK_", "POWERTOOLS_"))}
        api, qbo, aws = (str(p) for p in free_ports(3))
        flags = ["--port", api, "--sandbox-port", qbo, "--moto-port", aws, "--state-dir", str(tmp_path)]
        done = subprocess.run(
            [sys.executable, "-m", "qbo_link_cli.main", "dev", *flags],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(held)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: another local stack is using")
    assert "--state-dir" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock"]  # nothing read, nothing written
