"""HTTP types of the sandbox: the parsed request, the answer, and the route table.

Handlers are plain functions ``handler(sandbox, request, params) -> Response``; each feature module
(OAuth, accounting API, webhooks, control API) registers its routes on a :class:`Router`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from qbo_sandbox.sandbox import Sandbox


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(obj: object) -> bytes:
    return json.dumps(obj, default=_json_default, separators=(",", ":")).encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client: str = ""

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON (numbers with a fraction become Decimal); ValueError if not JSON."""
        return json.loads(self.body.decode("utf-8"), parse_float=Decimal)

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering

    @classmethod
    def json(cls, obj: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json;charset=UTF-8"}
        h.update(headers or {})
        return cls(status, dumps(obj), h)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), {"Content-Type": f"{content_type};charset=UTF-8"})

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Response:
        return cls(status, b"", {"Location": location})


Handler = Callable[["Sandbox", Request, dict[str, str]], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    name: str


class Router:
    """Routes by method and path; ``{name}`` segments become params, ``{name:path}`` spans slashes."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, name: str | None = None) -> None:
        regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", template)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self.routes.append(Route(method.upper(), re.compile(f"^{regex}/?$"), handler, name or template))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        """The route and its params; (None, {"allowed": ...}) when only other methods serve the path,
        (None, {}) when nothing does."""
        allowed: list[str] = []
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            if route.method == method.upper():
                return route, found.groupdict()
            allowed.append(route.method)
        return None, ({"allowed": ",".join(sorted(set(allowed)))} if allowed else {})
