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
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2

from tests.e2e.dev_process import REPO, DevProcess, clean_env, dev
from tests.e2e.local_fixtures import QBO_ITEM, WORK_CODE, client, free_ports, invoice

__all__ = ["dev"]

TENANT = "firm-k"
INVOICES = 40
WAIT = 180.0  # generous: a loaded 2-core machine


def _start(dev: Callable[..., DevProcess], state_dir: Path) -> DevProcess:
    running = dev("--state-dir", str(state_dir))
    running.lines.until("Ready.", timeout=WAIT)
    return running


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


def _invoices(http: httpx2.Client, running: DevProcess, realm: str) -> list[dict[str, Any]]:
    rows = _ok(http, "GET", f"{running.sandbox}/companies/{realm}/entities/Invoice").get("Invoice", [])
    return [row for row in rows if str(row.get("DocNumber", "")).startswith("E2E-k-")]


def _connect(http: httpx2.Client, running: DevProcess) -> str:
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
    tmp_path: Path, dev: Callable[..., DevProcess]
) -> None:
    state_dir = tmp_path / "state"
    accepted: list[str] = []
    with httpx2.Client(timeout=30) as http:
        # Given a connected tenant whose client is posted
        first = _start(dev, state_dir)
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
        assert len(accepted) >= 10, first.lines.tail()

        # Then, restarted on the same state directory, it posts every accepted invoice exactly once
        second = _start(dev, state_dir)
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
        assert second.process.wait(60) == 0, second.lines.tail()


def test_a_state_directory_in_use_is_refused_in_one_line(tmp_path: Path) -> None:
    from qbo_link_local import state

    held = state.lock(tmp_path)  # as a running `qbo-link dev --state-dir` holds it
    try:
        api, qbo, aws = (str(p) for p in free_ports(3))
        flags = ["--port", api, "--sandbox-port", qbo, "--moto-port", aws, "--state-dir", str(tmp_path)]
        done = subprocess.run(
            [sys.executable, "-m", "qbo_link_cli.main", "dev", *flags],
            cwd=REPO,
            env=clean_env(),
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
