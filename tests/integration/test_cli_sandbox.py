"""`qbo-link sandbox` in its own process: prints what a user must enter, serves, stops on a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx2
import pytest

COMMAND = [sys.executable, "-m", "qbo_link_cli.main", "sandbox"]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_sandbox_command_prints_its_settings_serves_and_stops(stop_signal: int) -> None:
    env = {**os.environ, "QBO_SANDBOX_VERIFIER_TOKEN": "verifier-from-env"}
    args = [
        *COMMAND,
        "--port",
        "0",
        "--client-id",
        "my-client",
        "--client-secret",
        "my-secret",
        "--companies",
        "2",
    ]
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None
            lines: list[str] = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("Press Ctrl-C"):
                    break
            text = "".join(lines)
            url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text)
            assert url, text
            assert "my-client" in text
            assert "my-secret" in text
            assert "verifier-from-env" in text
            assert len(re.findall(r"company\s+\d{16}", text)) == 2
            health = httpx2.get(f"{url.group(1)}/_sandbox/health").json()
            assert health["companies"] == 2
            process.send_signal(stop_signal)
            assert process.wait(timeout=10) == 0
            assert "stopped" in process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()


def test_sandbox_command_reports_a_busy_port_in_one_line() -> None:
    with subprocess.Popen(
        [*COMMAND, "--port", "0", "--companies", "0"], stdout=subprocess.PIPE, text=True
    ) as first:
        try:
            assert first.stdout is not None
            port = re.search(r":(\d+)", first.stdout.readline())
            assert port
            second = subprocess.run(
                [*COMMAND, "--port", port.group(1)], capture_output=True, text=True, timeout=30, check=False
            )
            assert second.returncode == 2
            assert second.stderr.startswith("error: cannot listen on")
            assert "Traceback" not in second.stderr
        finally:
            first.terminate()
