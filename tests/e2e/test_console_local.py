"""The administrator console on the local stack, over HTTP as a browser and the host's backend use it:
its files with their CSP, a session minted over the IAM route and used on the console's data path,
confined to its tenant, and the local stack's trust of a console call without a session."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from qbo_link_local.console import console_url
from tests.e2e.local_fixtures import Host, host, local_stack

__all__ = ["host", "local_stack"]


def _fragment(path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path).fragment).items()}


def _mint(host: Host, tenant: str, **body: Any) -> dict[str, Any]:
    answer = host.call("POST", f"/v1/tenants/{tenant}/console-sessions", body)
    assert answer.status_code == 201, answer.text
    minted: dict[str, Any] = answer.json()
    return minted


def test_the_console_page_is_served_with_its_security_headers(host: Host) -> None:
    bare = host.http.get(f"{host.api}/console", follow_redirects=False)
    page = host.http.get(f"{host.api}/console/")

    assert bare.status_code == 301
    assert bare.headers["location"] == "/console/"
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<html" in page.text.lower()
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    again = host.http.get(f"{host.api}/console/", headers={"if-none-match": page.headers["etag"]})
    assert again.status_code == 304
    assert host.http.get(f"{host.api}/console/../oauth/callback").status_code in (400, 404)
    assert host.http.get(f"{host.api}/console/nothing.js").status_code == 404


def test_a_minted_session_opens_its_tenant_and_no_other(host: Host) -> None:
    minted = _mint(host, "firm-a", ttl_seconds=300)
    assert _fragment(minted["path"]) == {"tenant": "firm-a", "session": minted["token"]}
    bearer = {"authorization": f"Bearer {minted['token']}"}

    own = host.call("GET", "/console/v1/tenants/firm-a/connection", **bearer)
    other = host.call("GET", "/console/v1/tenants/firm-b/connection", **bearer)
    forged = host.call(
        "GET", "/console/v1/tenants/firm-a/connection", authorization=f"Bearer {minted['token'][:-3]}AAA"
    )

    assert own.status_code == 200, own.text
    assert own.json()["connected"] is True
    assert own.headers["cache-control"] == "no-store"
    assert other.status_code == 403
    assert other.json()["detail"][0]["type"] == "tenant_mismatch"
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"].startswith("Bearer")
    assert forged.json()["detail"][0]["type"] == "session_invalid"


def test_locally_a_console_call_without_a_session_is_trusted_for_its_path_tenant(host: Host) -> None:
    answer = host.call("GET", "/console/v1/tenants/firm-b/connection")
    assert answer.status_code == 200, answer.text
    assert answer.json()["connected"] is True


def test_a_connect_started_from_the_console_may_return_to_the_console(host: Host) -> None:
    back_to = console_url(host.api, "firm-a")
    started = host.call("POST", "/console/v1/tenants/firm-a/connection", {"return_url": back_to})
    elsewhere = host.call(
        "POST", "/console/v1/tenants/firm-a/connection", {"return_url": "https://evil.example/console/"}
    )

    assert started.status_code == 201, started.text
    assert elsewhere.status_code == 422


def test_the_dev_banner_names_one_console_per_known_tenant(host: Host) -> None:
    from qbo_link_local.cli import _banner
    from qbo_link_local.console import known_tenants

    assert {"firm-a", "firm-b"} <= set(known_tenants(host.stack))
    banner = _banner(host.stack)
    assert f"  console          {host.api}/console/?tenant=firm-a" in banner
    assert f"  console          {host.api}/console/?tenant=firm-b" in banner
