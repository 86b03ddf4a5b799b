"""The console's static files (functions/console/handler.py): content types, revalidation, no way out
of assets/, and the security headers on every answer, refusals included."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.console import handler
from shared.kernel.constants import CONSOLE_FRAME_ANCESTORS_ENV

CSP_START = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'"
)


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(CONSOLE_FRAME_ANCESTORS_ENV, raising=False)
    handler.forget()
    yield
    handler.forget()


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A console of known files, and a secret beside it that no path may reach."""
    root = tmp_path / "assets"
    (root / "js").mkdir(parents=True)
    (root / "img").mkdir()
    (root / "index.html").write_text("<!doctype html><title>c</title>")
    (root / "app.css").write_text("body{}")
    (root / "js" / "app.js").write_text("export {};")
    (root / "img" / "logo.svg").write_text("<svg/>")
    (root / "img" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    (root / "data.json").write_text("{}")
    (root / ".hidden.js").write_text("no")
    (root / "notes.md").write_text("not a servable type")
    (tmp_path / "secret.js").write_text("outside")
    monkeypatch.setattr(handler, "ASSETS_DIR", str(root))
    return root


def _get(path: str, headers: dict[str, str] | None = None, query: str = "") -> dict[str, Any]:
    event = {
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers or {},
        "requestContext": {"http": {"method": "GET", "path": path}},
    }
    return handler.lambda_handler(event, None)


def _assert_secure(answer: dict[str, Any]) -> None:
    headers = answer["headers"]
    assert headers["Content-Security-Policy"].startswith(CSP_START)
    assert "base-uri 'none'" in headers["Content-Security-Policy"]
    assert "form-action 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/index.html", "text/html; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
        ("/console/js/app.js", "text/javascript; charset=utf-8"),
        ("/console/img/logo.svg", "image/svg+xml"),
        ("/console/data.json", "application/json; charset=utf-8"),
    ],
)
def test_each_file_is_served_with_its_content_type(assets: Path, path: str, content_type: str) -> None:
    answer = _get(path)
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == content_type
    assert answer["isBase64Encoded"] is False
    relative = path.removeprefix("/console/") or "index.html"
    assert answer["body"] == (assets / relative).read_text()
    _assert_secure(answer)


def test_a_binary_file_travels_base64(assets: Path) -> None:
    answer = _get("/console/img/logo.png")
    assert answer["headers"]["Content-Type"] == "image/png"
    assert answer["isBase64Encoded"] is True
    assert base64.b64decode(answer["body"]) == (assets / "img" / "logo.png").read_bytes()


def test_the_bare_console_path_redirects_to_the_folder_keeping_the_query(assets: Path) -> None:
    answer = _get("/console", query="tenant=firm-1")
    assert answer["statusCode"] == 301
    assert answer["headers"]["Location"] == "/console/?tenant=firm-1"
    assert _get("/console")["headers"]["Location"] == "/console/"
    _assert_secure(answer)


def test_index_is_revalidated_and_the_rest_cached_briefly(assets: Path) -> None:
    assert _get("/console/")["headers"]["Cache-Control"] == "no-cache"
    assert _get("/console/app.css")["headers"]["Cache-Control"] == "public, max-age=300"


def test_an_etag_the_browser_holds_gives_a_304_without_a_body(assets: Path) -> None:
    first = _get("/console/js/app.js")
    etag = first["headers"]["ETag"]

    again = _get("/console/js/app.js", {"If-None-Match": etag})
    weak = _get("/console/js/app.js", {"if-none-match": f'"other", W/{etag}'})
    stale = _get("/console/js/app.js", {"If-None-Match": '"0000"'})

    assert (again["statusCode"], again["body"], again["headers"]["ETag"]) == (304, "", etag)
    assert weak["statusCode"] == 304
    assert stale["statusCode"] == 200
    _assert_secure(again)
    assert _get("/console/app.css")["headers"]["ETag"] != etag


@pytest.mark.parametrize(
    "path",
    [
        "/console/../secret.js",
        "/console/js/../../secret.js",
        "/console/%2e%2e/secret.js",
        "/console/..%2fsecret.js",
        "/console/js\\..\\..\\secret.js",
        "/console//etc/passwd",
        "/console/.hidden.js",
        "/console/notes.md",
        "/console/missing.js",
        "/console/js",
        "/console/js/",
        "/console/index.html\x00.js",
        "/consolex/index.html",
        "/console/...",
    ],
)
def test_nothing_outside_the_listing_is_served_and_the_404_has_the_apis_shape(
    assets: Path, path: str
) -> None:
    answer = _get(path)
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"]) == {
        "statusCode": 404,
        "detail": [{"loc": ["path"], "msg": "no such file", "type": "not_found"}],
    }
    _assert_secure(answer)


def test_the_handler_reads_the_variable_the_stack_sets() -> None:
    assert handler.FRAME_ANCESTORS_ENV == CONSOLE_FRAME_ANCESTORS_ENV


def test_frame_ancestors_are_self_by_default() -> None:
    policy = handler.security_headers()["Content-Security-Policy"]
    assert policy.endswith("frame-ancestors 'self'")


def test_frame_ancestors_take_the_configured_origins_and_only_well_formed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        CONSOLE_FRAME_ANCESTORS_ENV,
        "https://app.example.com https://admin.example.com:8443,http://plain.example.com "
        "https://*.example.com https://x.example.com;script-src * https://app.example.com",
    )
    policy = handler.security_headers()["Content-Security-Policy"]
    assert policy.endswith("frame-ancestors 'self' https://app.example.com https://admin.example.com:8443")
    assert policy.count(";") == 8  # no directive smuggled in


def test_the_shipped_console_has_an_index_a_style_and_a_script() -> None:
    listing = handler._listing()
    assert {"index.html", "app.css", "js/app.js"} <= set(listing)
    assert _get("/console/")["statusCode"] == 200
