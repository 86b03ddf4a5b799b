"""The e2e tier's view of the local stack: HTTP only, as a host app and a browser would use it.

``Host`` drives the tenant API (``httpx2``), follows Intuit's consent like a browser (the sandbox's
authorize URL redirects to the gateway's callback), and looks at QuickBooks through the sandbox's
control API.  Nothing here touches a table or a queue directly except where a test says so.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from qbo_link_local.stack import LocalStack, LocalStackConfig

WORK_CODE = "W1"
QBO_ITEM = "1"  # the US seed's first service item


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free a moment ago (for a ``qbo-link dev`` subprocess)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT (the local gateway decodes claims without verifying them)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def invoice(app_id: str, client_id: str, amount: str = "100.00", **extra: Any) -> dict[str, Any]:
    return {
        "id": app_id,
        "version": 1,
        "number": f"E2E-{app_id}",
        "date": "2026-11-20",
        "client_id": client_id,
        "lines": [
            {
                "line_id": "1",
                "kind": "work",
                "code": WORK_CODE,
                "description": "Advice",
                "quantity": "1",
                "rate": amount,
                "amount": amount,
                "taxable": False,
            }
        ],
        "tax_total": "0.00",
        "total": amount,
        **extra,
    }


def client(app_id: str, name: str | None = None) -> dict[str, Any]:
    return {"id": app_id, "version": 1, "type": "client", "company_name": name or f"E2E Client {app_id}"}


@dataclass
class Host:
    """The host app's backend and its users' browsers, against one local stack."""

    stack: LocalStack
    http: httpx2.Client
    realms: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.stack.api_url

    @property
    def sandbox_url(self) -> str:
        assert self.stack.sandbox_url is not None
        return self.stack.sandbox_url

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> httpx2.Response:
        content = None if body is None else json.dumps(body).encode()
        hdrs = {"content-type": "application/json", **headers} if content is not None else headers
        return self.http.request(method, self.api + path, content=content, headers=hdrs)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.call(method, path, body)
        assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def connect(self, tenant: str) -> str:
        """The whole consent: start, the browser at Intuit, the callback, back to the return URL."""
        started = self.ok("POST", f"/tenants/{tenant}/connection", {"return_url": self.stack.landing_url})
        consent = self.http.get(started["authorization_url"])
        assert consent.status_code == 302, consent.text
        callback = consent.headers["location"]
        assert callback.startswith(self.stack.callback_url), callback
        back = self.http.get(callback)
        assert back.status_code == 302, back.text
        assert back.headers["location"].startswith(self.stack.landing_url + "?status=connected")
        status = self.ok("GET", f"/tenants/{tenant}/connection")
        assert status["connected"] is True, status
        self.realms[tenant] = str(status["realm_id"])
        return self.realms[tenant]

    def prepare(self, tenant: str) -> None:
        """Customers created on demand, and the app's work code mapped to a QBO item."""
        self.ok("PUT", f"/tenants/{tenant}/settings", {"auto_create_customers": True})
        self.ok("PUT", f"/tenants/{tenant}/catalog/work_code/{WORK_CODE}", {"version": 1, "name": "Advice"})
        self.ok("PUT", f"/tenants/{tenant}/mappings/work_code/app/{WORK_CODE}", {"qbo_id": QBO_ITEM})

    # --- QuickBooks, through the sandbox's control API ---

    def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, f"{self.sandbox_url}/_sandbox{path}", json=body)
        assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text}"
        return json.loads(answer.text, parse_float=Decimal) if answer.content else None

    def entities(self, tenant: str, entity: str) -> list[dict[str, Any]]:
        data = self.sandbox("GET", f"/companies/{self.realms[tenant]}/entities/{entity}")
        rows = next((v for k, v in data.items() if isinstance(v, list) and k != "deleted"), [])
        return [row for row in rows if isinstance(row, dict)]

    def invoices_numbered(self, tenant: str, number: str) -> list[dict[str, Any]]:
        return [i for i in self.entities(tenant, "Invoice") if i.get("DocNumber") == number]

    def customer_named(self, tenant: str, name: str) -> dict[str, Any]:
        [found] = [c for c in self.entities(tenant, "Customer") if c.get("DisplayName") == name]
        return found


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    lines: list[str] = []
    with LocalStack(LocalStackConfig(retry_delay=0.1, log=lines.append)) as stack:
        yield stack


@pytest.fixture(scope="module")
def host(local_stack: LocalStack) -> Iterator[Host]:
    """Two tenants connected through the OAuth flow and ready to push."""
    with httpx2.Client(timeout=30) as http:
        connected = Host(local_stack, http)
        for tenant in ("firm-a", "firm-b"):
            connected.connect(tenant)
        local_stack.wait_idle(60)  # onboarding (an event rule) imports each company's lists
        for tenant in ("firm-a", "firm-b"):
            connected.prepare(tenant)
        yield connected
