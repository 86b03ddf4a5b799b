"""The console as a whole, in Chromium: small and self-contained (every byte from the stack, at most
200 kB of script a screen), labelled and keyboard usable, readable on a phone, and confined to the
one tenant of its session (the token travels in the fragment, never in a URL a server logs)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Request, expect

from tests.browser.conftest import Console

pytestmark = pytest.mark.slow

SCREENS = ("/connection", "/match/client", "/attention", "/postings", "/report", "/exchanges", "/settings")
SCRIPT_BUDGET = 200 * 1024


def test_every_screen_is_served_by_the_stack_within_the_script_budget(console: Console) -> None:
    page = console.page
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(console.stack.api_url))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for route in SCREENS:
        page.goto("about:blank")
        page.goto(f"{console.url}#{route}")
        console.wait_rendered("#" + route)
        script = page.evaluate(
            "() => performance.getEntriesByType('resource')"
            ".filter(e => e.initiatorType === 'script' || e.name.endsWith('.js'))"
            ".reduce((sum, e) => sum + e.decodedBodySize, 0)"
        )
        assert 0 < script <= SCRIPT_BUDGET, f"{route}: {script} bytes of script"
    foreign = [url for url in requested if not url.startswith((origin, "data:", "blob:"))]
    assert foreign == [], f"requests outside the stack: {foreign}"


def test_the_page_is_served_with_a_strict_content_security_policy(console: Console) -> None:
    answer = console.page.goto(console.url)
    assert answer is not None
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert answer.headers["x-content-type-options"] == "nosniff"


def unlabelled(console: Console) -> list[str]:
    return list(
        console.page.evaluate(
            """() => [...document.querySelectorAll('main input, main select, main textarea, main button')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                             && !e.getAttribute('aria-labelledby') && !(e.textContent || '').trim()
                             && e.type !== 'hidden')
                .map(e => e.outerHTML.slice(0, 120))"""
        )
    )


def test_every_control_is_labelled_and_the_keyboard_reaches_the_screens(console: Console) -> None:
    for route in SCREENS:
        console.open(route)
        assert unlabelled(console) == [], route
    page = console.open("/connection")
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    for _ in range(20):  # Tab through the navigation to Settings, then Enter
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == "Settings":
            break
    page.keyboard.press("Enter")
    console.wait_rendered("#/settings")
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    expect(page.locator('#nav a[aria-current="page"]')).to_have_text("Settings")


def test_readable_on_a_phone(phone_console: Console) -> None:
    for route, name in (("/connection", "phone-connection"), ("/attention", "phone-attention")):
        page = phone_console.open(route)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{route} scrolls sideways by {overflow} px"
        phone_console.shot(name)


def mint(console: Console) -> dict[str, str]:
    """A console session for the tenant, minted by the host app's backend (the IAM route)."""
    answer = console.api.raw("POST", "/console-sessions", json={"ttl_seconds": 600})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_a_minted_session_opens_the_console_and_never_shows_in_a_url(console: Console) -> None:
    session = mint(console)
    token = session["token"]
    assert session["path"].startswith("/console/#")
    page = console.page
    calls: list[Request] = []
    page.on("request", lambda request: calls.append(request) if "/console/v1/" in request.url else None)
    page.goto("about:blank")
    page.goto(console.stack.api_url + session["path"])
    console.wait_rendered("#/connection")
    expect(page.locator("#health")).to_have_text("Connected")
    assert token not in page.url  # the fragment is wiped at once
    assert calls
    assert all(token not in call.url for call in calls)
    assert all(call.headers.get("authorization") == f"Bearer {token}" for call in calls)
    # The session is this tab's (sessionStorage): navigating between screens keeps it.
    console.open("/postings")
    expect(page.locator("main .error")).to_have_count(0)


def test_a_session_for_one_tenant_never_shows_another(console: Console) -> None:
    other = mint(console)["token"]
    page = console.page
    page.goto("about:blank")
    # The same browser, the token of this tenant, the id of another tenant in the fragment.
    page.goto(f"{console.stack.api_url}/console/#tenant=someone-else&session={other}")
    console.wait_rendered()
    expect(page.locator("main .error")).to_contain_text(re.compile("not authorized for this tenant"))
    expect(page.locator("#company")).not_to_contain_text("Sandbox Company")


def test_an_invalid_session_is_refused_in_plain_words(console: Console) -> None:
    page = console.page
    page.goto("about:blank")
    page.goto(f"{console.stack.api_url}/console/#tenant={console.tenant}&session=forged.token.value")
    console.wait_rendered()
    expect(page.locator("main .error")).to_be_visible()
    expect(page.locator("#company")).to_have_text("Session ended")
