"""The administrator console's static files (``assets/``), with strict security headers.

``GET /console`` is a 301 to ``/console/``; ``/console/`` is ``index.html``; ``/console/<path>`` is
that file of ``assets/``, found in a listing made once per process (so no request can name a file
outside it: no ``..``, no backslash, no percent escape, no hidden file is even looked up), else a
404 in the API's one error shape.  Every answer, refusals included, carries the console's
Content-Security-Policy (scripts, styles and data calls from this origin only; framed by this
origin and the origins of ``QBO_LINK_CONSOLE_FRAME_ANCESTORS``, the deployment setting
``qbo-link:consoleFrameAncestors``), ``nosniff``, no referrer.  ``ETag`` with ``If-None-Match``
gives a 304; ``index.html`` is revalidated on every load (``no-cache``), the rest kept 5 minutes.

The files hold no data and no tenant: the console's data calls go to ``/console/v1/...``, which the
api function authenticates (docs/console.md).  Kept to the standard library on purpose: its import
costs a few milliseconds (docs/packaging.md).
"""

from __future__ import annotations

import os

# typing, functools, re, json, hashlib and base64 are imported on first use, or not at all: this
# module's import is the function's whole cold start (docs/packaging.md).  mypy takes any
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any, Final

# shared.kernel.constants.CONSOLE_FRAME_ANCESTORS_ENV (a test holds them equal; importing the
# constants would import typing).
FRAME_ANCESTORS_ENV: Final = "QBO_LINK_CONSOLE_FRAME_ANCESTORS"
ASSETS_DIR: Final = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
PREFIX: Final = "/console"
INDEX: Final = "index.html"

_TYPES: Final = {  # suffix -> (Content-Type, binary)
    ".html": ("text/html; charset=utf-8", False),
    ".js": ("text/javascript; charset=utf-8", False),
    ".mjs": ("text/javascript; charset=utf-8", False),
    ".css": ("text/css; charset=utf-8", False),
    ".json": ("application/json; charset=utf-8", False),
    ".svg": ("image/svg+xml", False),
    ".txt": ("text/plain; charset=utf-8", False),
    ".png": ("image/png", True),
    ".ico": ("image/x-icon", True),
    ".woff2": ("font/woff2", True),
}
_SEGMENT: Final = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
_ORIGIN: Final = (
    r"^https://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$"
)


# What this process computed once: compiled patterns, the listing, the files read, the headers.
_patterns: dict[str, re.Pattern[str]] = {}
_listed: list[dict[str, tuple[str, str, bool]]] = []
_assets: dict[str, _Asset | None] = {}
_headers: list[dict[str, str]] = []


def forget() -> None:
    """Forget what the process computed (tests change the assets or the setting)."""
    _patterns.clear()
    _listed.clear()
    _assets.clear()
    _headers.clear()


def _pattern(source: str) -> re.Pattern[str]:
    if source not in _patterns:
        import re

        _patterns[source] = re.compile(source)
    return _patterns[source]


def _is_segment(name: str) -> bool:
    return _pattern(_SEGMENT).fullmatch(name) is not None


class _Asset:
    __slots__ = ("binary", "body", "content_type", "etag", "path")

    def __init__(self, path: str, content_type: str, binary: bool) -> None:
        import base64
        import hashlib

        self.path = path
        self.content_type = content_type
        self.binary = binary
        with open(path, "rb") as handle:
            data = handle.read()
        self.etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
        self.body = base64.b64encode(data).decode("ascii") if binary else data.decode("utf-8")


def _listing() -> dict[str, tuple[str, str, bool]]:
    """``relative/path`` -> (file, Content-Type, binary) for every servable file under ``assets/``."""
    if not _listed:
        _listed.append(_list_assets())
    return _listed[0]


def _list_assets() -> dict[str, tuple[str, str, bool]]:
    found: dict[str, tuple[str, str, bool]] = {}
    for directory, subdirs, files in os.walk(ASSETS_DIR):
        subdirs[:] = sorted(d for d in subdirs if _is_segment(d))
        relative_dir = os.path.relpath(directory, ASSETS_DIR).replace(os.sep, "/")
        for name in files:
            kind = _TYPES.get(os.path.splitext(name)[1].lower())
            full = os.path.join(directory, name)
            if kind is None or not _is_segment(name) or os.path.islink(full):
                continue
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            found[relative] = (full, *kind)
    return found


def _asset(relative: str) -> _Asset | None:
    if relative not in _assets:
        entry = _listing().get(relative)
        _assets[relative] = None if entry is None else _Asset(*entry)
    return _assets[relative]


def frame_ancestors(value: str) -> str:
    """``'self'`` and every well-formed https origin of ``value`` (comma- or space-separated); a
    malformed entry is left out (the deployment refuses it before: ``infra.settings``)."""
    import re

    origins = [o for o in re.split(r"[\s,]+", value.strip()) if o and _pattern(_ORIGIN).fullmatch(o)]
    return " ".join(["'self'", *dict.fromkeys(origins)])


def security_headers() -> dict[str, str]:
    if not _headers:
        _headers.append(_security_headers())
    return _headers[0]


def _security_headers() -> dict[str, str]:
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {frame_ancestors(os.environ.get(FRAME_ANCESTORS_ENV, ''))}"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin-allow-popups",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "Strict-Transport-Security": "max-age=31536000",
    }


def _answer(status: int, headers: dict[str, str], body: str = "", binary: bool = False) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**security_headers(), **headers},
        "body": body,
        "isBase64Encoded": binary,
    }


def _not_found() -> dict[str, Any]:
    import json

    detail = [{"loc": ["path"], "msg": "no such file", "type": "not_found"}]
    body = json.dumps({"statusCode": 404, "detail": detail})
    return _answer(404, {"Content-Type": "application/json", "Cache-Control": "no-cache"}, body)


def _relative(path: str) -> str | None:
    """The asset a request path names, or None when it names none (or tries to leave ``assets/``)."""
    if path in (f"{PREFIX}/", f"{PREFIX}/{INDEX}"):
        return INDEX
    rest = path.removeprefix(f"{PREFIX}/")
    if rest == path or not rest or "\\" in rest or "%" in rest or "\x00" in rest:
        return None
    segments = rest.split("/")
    if any(not _is_segment(s) or s.strip(".") == "" for s in segments):
        return None
    return rest


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    del context
    path = str(event.get("rawPath") or "")
    if path == PREFIX:
        query = str(event.get("rawQueryString") or "")
        location = f"{PREFIX}/" + (f"?{query}" if query else "")
        return _answer(301, {"Location": location, "Cache-Control": "no-cache"})
    relative = _relative(path)
    asset = _asset(relative) if relative is not None else None
    if asset is None:
        return _not_found()
    cache_control = "no-cache" if relative == INDEX else "public, max-age=300"
    headers = {"ETag": asset.etag, "Cache-Control": cache_control}
    request_headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    if _matches(request_headers.get("if-none-match", ""), asset.etag):
        return _answer(304, headers)
    head = str((event.get("requestContext") or {}).get("http", {}).get("method", "GET")).upper() == "HEAD"
    body = "" if head else asset.body
    return _answer(
        200, {**headers, "Content-Type": asset.content_type}, body, binary=asset.binary and not head
    )
