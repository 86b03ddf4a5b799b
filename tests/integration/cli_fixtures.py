"""Helpers for the CLI tests: an httpx2 transport that is API Gateway in front of the real handlers,
and a way to run ``qbo-link`` in process against it.

``Gateway`` turns each request into the payload 2.0 event API Gateway's HTTP API would send
(``qbo_link_local.gateway``: the route chosen from the stack manifest), invokes the real Lambda
handler of that route (under moto and the sandbox, set up by ``push_fixtures.push_environment``)
and turns its answer back into HTTP.  It records every request, so a test can look at what the
CLI sent (signatures included).
"""

from __future__ import annotations

import importlib
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest

from infra.manifest import FUNCTIONS
from qbo_link_local.gateway import LocalContext, Request, http_api_event, lambda_response, match_route


@contextmanager
def _quiet_handlers() -> Iterator[None]:
    from shared.kernel.observability import logger

    stream = logger.registered_handler
    assert isinstance(stream, logging.StreamHandler)
    sink = io.StringIO()
    previous = stream.setStream(sink)
    try:
        with redirect_stdout(sink):
            yield
    finally:
        stream.setStream(previous)


@dataclass
class Gateway:
    """API Gateway (HTTP API) over the real handlers; ``claims`` makes every caller a JWT caller."""

    claims: dict[str, str] | None = None
    requests: list[httpx2.Request] = field(default_factory=list)
    lost: int = 0  # answer this many requests 503 after the handler ran (a timed-out Lambda)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.lost:
            self.lost -= 1
            self._answer(request)
            return httpx2.Response(503, json={"message": "Service Unavailable"})
        return self._answer(request)

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        match = match_route(FUNCTIONS, request.method, request.url.path)
        if match is None:
            return httpx2.Response(404, json={"message": "Not Found"})
        authorizer: dict[str, Any] | None = None
        if self.claims is not None:
            authorizer = {"jwt": {"claims": dict(self.claims), "scopes": []}}
        event = http_api_event(
            Request(
                method=request.method,
                path=request.url.path,
                query=request.url.query.decode(),
                headers=list(request.headers.multi_items()),
                body=request.content,
                authorizer=authorizer,
            ),
            match,
        )
        handler = importlib.import_module(f"functions.{match.function.name}.handler")
        with _quiet_handlers():  # their JSON logs and metrics would mix with the CLI's output
            result = handler.lambda_handler(event, LocalContext(match.function))
        answer = lambda_response(result)
        return httpx2.Response(answer.status, headers=answer.headers, content=answer.body)

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(
    argv: list[str], transport: httpx2.BaseTransport, capsys: pytest.CaptureFixture[str]
) -> CliResult:
    """``qbo-link argv`` in process, its network replaced by ``transport``."""
    from qbo_link_cli import operator
    from qbo_link_cli.main import build_parser

    capsys.readouterr()
    args = build_parser().parse_args(argv)
    code = operator.run(args, transport=transport)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)
