"""The host app's side of the events' delivery, for tests: the verification snippet of
docs/events.md exactly as written there, and a loopback HTTP receiver that records each delivery
and answers as a test tells it to."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"
SECTION = "## Delivery to your HTTPS endpoint"

Verify = Callable[..., bool]


def documented_verify() -> Verify:
    """``verify(body, signature_header, key, now=None)`` from the first Python block of the section."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    found = re.search(r"```python\n(.*?)```", text[start : end if end != -1 else None], re.DOTALL)
    assert found, f"no Python block in {SECTION!r} of {DOC}"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), f"{DOC}:{SECTION}", "exec"), namespace)  # noqa: S102 - our own docs
    verify: Verify = namespace["verify"]
    return verify


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the receiver answered


Answer = Callable[[str, dict[str, str], bytes], int]  # path, headers, body -> status


class Receiver:
    """A loopback HTTP server: ``answer`` chooses each status (200 unless told otherwise)."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer: Answer = answer or (lambda *_: 200)
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.answer(self.path, headers, body)
                with receiver._lock:
                    receiver.deliveries.append(Delivery(self.path, headers, body, status))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                reply = b"" if status in (204, 304) else b"ok" if status < 300 else b"not this one"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/qbo-link/events"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self, where: Callable[[Delivery], bool] | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if where is None or where(d)]


def each(deliveries: list[Delivery]) -> Iterator[tuple[Delivery, dict[str, Any]]]:
    import json

    for delivery in deliveries:
        yield delivery, json.loads(delivery.body)
