"""The local API Gateway: an HTTP/1.1 server that hands each request to a dispatch function.

The dispatch (``qbo_link_local.http_api.dispatch``) chooses the route from the manifest, builds the payload
2.0 event, invokes the handler and reads its answer (``qbo_link_local.gateway``); this module only
speaks HTTP: keep-alive, Content-Length and chunked bodies, API Gateway's 10 MB payload limit, and
a clean stop that also closes idle keep-alive connections.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import urlsplit

from qbo_link_local.gateway import Request, Response

MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024  # API Gateway HTTP API's request limit
IDLE_TIMEOUT_SECONDS: Final = 30.0
_HOP_BY_HOP: Final = {"connection", "keep-alive", "transfer-encoding", "content-length", "date"}


def api_gateway_error(status: int, message: str) -> Response:
    """API Gateway's own answers (no Lambda ran): ``{"message": ...}``."""
    body = json.dumps({"message": message}).encode()
    return Response(status, [("content-type", "application/json")], body)


class PayloadTooLargeError(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # the stack logs one line per invocation instead

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(IDLE_TIMEOUT_SECONDS)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(65_537)
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(65_537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                size += length
                if size > MAX_PAYLOAD_BYTES:
                    raise PayloadTooLargeError
                chunks.append(self.rfile.read(length))
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            raise PayloadTooLargeError
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        request_id = str(uuid.uuid4())
        try:
            body = self._body()
        except PayloadTooLargeError:
            self.close_connection = True
            self._send(api_gateway_error(413, "Request Entity Too Large"), request_id)
            return
        except ValueError:
            self.close_connection = True
            self._send(api_gateway_error(400, "Bad Request"), request_id)
            return
        target = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=target.path or "/",
            query=target.query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            extra={"request_id": request_id},
        )
        self._send(self.server.dispatch(request), request_id)

    def _send(self, response: Response, request_id: str) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Date", formatdate(usegmt=True))
        self.send_header("apigw-requestid", request_id)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], dispatch: Callable[[Request], Response]) -> None:
        self.dispatch = dispatch
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(connection)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class GatewayServer:
    """Binds at construction (so a taken port fails at once); serves after ``start``."""

    def __init__(self, host: str, port: int, dispatch: Callable[[Request], Response]) -> None:
        self._httpd = _Server((host, port), dispatch)
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="qbo-link-local-gateway",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.close_connections()
        self._httpd.server_close()
