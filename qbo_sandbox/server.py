"""The sandbox on a socket: a threaded HTTP/1.1 server around :class:`Sandbox`.

A thread per connection (keep-alive supported) lets the sandbox see real concurrency, which its
10-requests-in-flight limit needs, and gives full control of the wire: exact bytes, XML bodies,
dropped connections.  ``SandboxServer(...).start()`` runs it in a background thread on a free port
for tests; ``serve_forever`` runs it in the foreground for the CLI.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from qbo_sandbox.sandbox import Sandbox
from qbo_sandbox.settings import SandboxSettings
from qbo_sandbox.wire import Request, Response

log = logging.getLogger("qbo_sandbox")
MAX_BODY = 10 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered: headers and body leave in one segment when handle_one_request flushes.
    wbufsize = 64 * 1024
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(Response.json({"error": "payload too large"}, status=413))
            return
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client=self.client_address[0],
        )
        response = self.server.sandbox.handle(request)
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(response)

    def setup(self) -> None:
        super().setup()
        # Answers go out in one write; without TCP_NODELAY, Nagle plus the client's delayed ACK
        # would add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        headers = {"intuit_tid": str(uuid.uuid4()), **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    sandbox: Sandbox

    def __init__(self, address: tuple[str, int], sandbox: Sandbox | None) -> None:
        if sandbox is not None:
            self.sandbox = sandbox
        super().__init__(address, _Handler)


class SandboxServer:
    """Owns a :class:`Sandbox` and the socket it listens on."""

    def __init__(self, settings: SandboxSettings | None = None, *, port: int | None = None) -> None:
        settings = settings or SandboxSettings()
        if port is not None:
            settings.port = port
        self._httpd = _Server((settings.host, settings.port), None)
        settings.port = self._httpd.server_address[1]
        self.sandbox = Sandbox(settings)
        self._httpd.sandbox = self.sandbox
        self.sandbox.restore()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.sandbox.base_url

    def start(self) -> SandboxServer:
        """Serve in a background thread (tests, the local stack)."""
        self.sandbox.webhooks.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="qbo-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.sandbox.webhooks.start()
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self.stop()

    def stop(self) -> None:
        self.sandbox.webhooks.stop()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        self.sandbox.save()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
