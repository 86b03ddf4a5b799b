"""The browser tier: the console (``functions/console/assets``) in a real headless Chromium, driven by
Playwright, against the local stack over HTTP, as a firm's administrator uses it.

Chromium is Debian's ``chromium`` package (``dev.py test`` installs it when missing; ``QBO_LINK_CHROMIUM``
names another binary); Playwright only drives it and never downloads a browser.  Each test module
has its own local stack; ``demo_tenant`` is the demo's firm on it, under a tenant of the module's own
(lists told, connected through OAuth, onboarded, a month of work pushed, 4 documents waiting on the
work code QuickBooks has no item for).

Screenshots (``Console.shot``) go to ``$QBO_LINK_SCREENSHOTS`` when set (``make screenshots`` writes
the committed ones in ``docs/console/``), else to the session's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from qbo_link_cli.client import ApiClient
from qbo_link_cli.demo import prepare_tenant
from qbo_link_local.stack import LocalStack, LocalStackConfig

# Headless, as root on a machine whose only network is loopback: no sandbox, no GPU, and none of the
# background connections a closed network refuses.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
)
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 60_000  # generous: a loaded 2-core machine runs the stack and the browser at once
expect.set_options(timeout=30_000)  # an assertion on the page waits this long for it to hold


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A browser test may wait for its module's stack and the demo's firm (about 30 s alone, several
    times that on a loaded 2-core machine): 300 s instead of the suite's 120 s per test."""
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(300))


def chromium_binary() -> str:
    wanted = os.environ.get("QBO_LINK_CHROMIUM")
    found = (
        wanted
        if wanted and Path(wanted).exists()
        else shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if found is None:
        pytest.fail(
            "the browser tests need Chromium: `python3 dev.py test` installs Debian's chromium (as root)"
        )
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_binary(), args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("QBO_LINK_SCREENSHOTS") or tmp_path_factory.mktemp("console-screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser_stack() -> Iterator[LocalStack]:
    """A local stack per module: a process runs one stack at a time, and the e2e modules that may
    follow on the same worker start their own."""
    lines: list[str] = []
    with LocalStack(
        LocalStackConfig(port=0, sandbox_port=0, moto_port=0, retry_delay=0.1, log=lines.append)
    ) as stack:
        yield stack


class TenantApi:
    """The host app's backend on one tenant's routes (``/v1/tenants/<tenant>``), over HTTP."""

    def __init__(self, api_url: str, tenant: str) -> None:
        self._http = httpx2.Client(base_url=f"{api_url}/v1/tenants/{tenant}", timeout=60, trust_env=False)

    def _json(self, answer: httpx2.Response) -> Any:
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self._json(self._http.get(path, params=params or None))

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self._json(self._http.post(path, json=body, params=params or None))

    def put(self, path: str, body: Any) -> Any:
        return self._json(self._http.put(path, json=body))

    def patch(self, path: str, body: Any) -> Any:
        return self._json(self._http.patch(path, json=body))

    def delete(self, path: str, **params: Any) -> Any:
        return self._json(self._http.delete(path, params=params or None))

    def raw(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        return self._http.request(method, path, **kwargs)

    def close(self) -> None:
        self._http.close()


@dataclass
class Console:
    """One browser page on the console of one tenant."""

    page: Page
    stack: LocalStack
    tenant: str
    api: TenantApi
    screenshots: Path
    errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.stack.api_url}/console/?tenant={self.tenant}"

    def open(self, route: str) -> Page:
        """Shows the screen of ``route`` (``/match/client``, ``/postings?state=failed``) and waits until
        it has rendered (``main[data-rendered]``, set by the shell once the screen's data is on it)."""
        wanted = "#" + route
        if self.page.url.split("#")[0] == self.url:
            if self.page.evaluate("() => location.hash") == wanted:
                self.page.reload()
            else:
                self.page.evaluate("hash => { location.hash = hash; }", wanted)
        else:
            self.page.goto(self.url + wanted)
        self.wait_rendered(wanted)
        return self.page

    def wait_rendered(self, route_hash: str | None = None) -> None:
        self.page.wait_for_function(
            "wanted => { const m = document.querySelector('main'); return m.getAttribute('aria-busy')"
            " === 'false' && (!wanted || m.dataset.rendered === wanted); }",
            arg=route_hash,
            timeout=TIMEOUT_MS,
        )

    def shot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def _console(
    browser: Browser, stack: LocalStack, tenant: str, screenshots: Path, viewport: dict[str, int]
) -> Iterator[Console]:
    context = browser.new_context(viewport=viewport, accept_downloads=True)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    api = TenantApi(stack.api_url, tenant)
    console = Console(page, stack, tenant, api, screenshots)
    page.on("pageerror", lambda error: console.errors.append(str(error)))
    try:
        yield console
    finally:
        api.close()
        context.close()
    assert console.errors == [], f"the page threw: {console.errors}"


def _on_connection(consoles: Iterator[Console]) -> Iterator[Console]:
    for opened in consoles:
        opened.open("/connection")
        yield opened


@pytest.fixture(scope="module")
def demo_tenant(browser_stack: LocalStack, request: pytest.FixtureRequest) -> str:
    """The demo's firm, connected, under a tenant id of this module's own; busy with a month of work
    unless the module sets ``DEMO_DOCUMENTS = False`` (its screens need no documents)."""
    tenant = "console-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    with ApiClient(browser_stack.api_url) as api:
        prepare_tenant(browser_stack, api, tenant, push=getattr(request.module, "DEMO_DOCUMENTS", True))
    browser_stack.wait_idle(60)
    return str(tenant)


@pytest.fixture
def console(
    browser: Browser, browser_stack: LocalStack, demo_tenant: str, screenshots: Path
) -> Iterator[Console]:
    """A fresh page (1280×800) on the console of the demo's firm, showing its connection screen."""
    yield from _on_connection(_console(browser, browser_stack, demo_tenant, screenshots, WIDE))


@pytest.fixture
def phone_console(
    browser: Browser, browser_stack: LocalStack, demo_tenant: str, screenshots: Path
) -> Iterator[Console]:
    """The same console on a phone-sized screen (390×844)."""
    yield from _on_connection(_console(browser, browser_stack, demo_tenant, screenshots, PHONE))


@pytest.fixture
def new_tenant_console(
    browser: Browser, browser_stack: LocalStack, screenshots: Path, request: pytest.FixtureRequest
) -> Iterator[Console]:
    """The console of a firm whose app has told QBO Link its lists but that never connected QuickBooks."""
    tenant = "new-" + request.node.name.removeprefix("test_").replace("_", "-")[:40]
    with ApiClient(browser_stack.api_url) as api:
        prepare_tenant(browser_stack, api, tenant, connect=False)
    for opened in _console(browser, browser_stack, tenant, screenshots, WIDE):
        opened.page.goto(opened.url)
        opened.wait_rendered()
        yield opened
