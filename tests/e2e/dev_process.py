"""``qbo-link dev`` as a real process on free ports, its output read line by line (the e2e tests
that start, stop, kill and restart the local stack as a developer would)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.delivery_receiver import Receiver
from tests.e2e.local_fixtures import free_ports

if TYPE_CHECKING:
    from tests.e2e.conftest import EventCheck

REPO = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    """This process's environment without what a test's own stack set (the child makes its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "QBO_LINK_", "POWERTOOLS_"))}


class Lines:
    """A process's output, pumped by a thread; ``until`` waits for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout

        def pump() -> None:
            for line in stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        self.thread = threading.Thread(target=pump, daemon=True)
        self.thread.start()

    def until(self, *needles: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if all(n in line for n in needles):
                return line
        raise AssertionError(f"no line with {needles!r}; output so far:\n" + self.tail(40))

    def tail(self, count: int = 60) -> str:
        """The last ``count`` lines, including those not yet waited for (a failure's message)."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return "\n".join(self.seen[-count:])


class DevProcess:
    """``qbo-link dev`` on three free ports (API, sandbox, moto)."""

    def __init__(self, *extra: str, env: dict[str, str] | None = None) -> None:
        self.ports = free_ports(3)
        ports = ["--port", str(self.ports[0]), "--sandbox-port", str(self.ports[1])]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qbo_link_cli.main",
                "dev",
                *ports,
                "--moto-port",
                str(self.ports[2]),
                *extra,
            ],
            cwd=REPO,
            env={**clean_env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = Lines(self.process)
        self.api = f"http://127.0.0.1:{self.ports[0]}"
        self.sandbox = f"http://127.0.0.1:{self.ports[1]}/_sandbox"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        self.lines.thread.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def dev(event_check: EventCheck) -> Iterator[Callable[..., DevProcess]]:
    """Starts ``qbo-link dev`` with the given options; every process started is stopped after.

    Each process delivers its events (``--events-url``, unless the test gives its own) to a
    loopback receiver of this test that hands them to the session's event check
    (``tests/e2e/conftest.py``): the events of a stack run as a subprocess are validated against
    their schemas like those of the stacks in this process."""
    started: list[DevProcess] = []

    def checked(_path: str, _headers: dict[str, str], body: bytes) -> int:
        event_check.inspect(body.decode("utf-8", "replace"))
        return 200

    def start(*extra: str, env: dict[str, str] | None = None) -> DevProcess:
        own = "--events-url" in extra
        started.append(DevProcess(*extra, *(() if own else ("--events-url", receiver.url)), env=env))
        return started[-1]

    with Receiver(checked) as receiver:
        try:
            yield start
        finally:
            for process in started:
                process.close()
