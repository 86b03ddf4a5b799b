"""The whole emulated Intuit world: companies, OAuth, limits, faults, counters and webhooks."""

from __future__ import annotations

import json
import os
import secrets
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from qbo_sandbox import api, control
from qbo_sandbox import oauth as oauth_paths
from qbo_sandbox.clock import Clock
from qbo_sandbox.company import Change, Company
from qbo_sandbox.oauth import OAuthService
from qbo_sandbox.seed import SUPPORTED_COUNTRIES, seed_company
from qbo_sandbox.settings import SandboxSettings
from qbo_sandbox.traffic import Counters, FaultInjector, RateLimiter
from qbo_sandbox.webhooks import WebhookDispatcher
from qbo_sandbox.wire import Request, Response, Router, dumps

COUNTRY_NAMES = {
    "US": "Sandbox Company_US_{n}",
    "CA": "Sandbox Company_CA_{n}",
    "GB": "Sandbox Company_GB_{n}",
    "AU": "Sandbox Company_AU_{n}",
}


class Sandbox:
    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self.clock = Clock(time_scale=self.settings.time_scale)
        self.lock = threading.RLock()
        self.companies: dict[str, Company] = {}
        self.limiter = RateLimiter(self.settings.limits, self.clock)
        self.faults = FaultInjector()
        self.counters = Counters()
        self.base_url = f"http://{self.settings.host}:{self.settings.port}"
        self.oauth = OAuthService(self)
        self.webhooks = WebhookDispatcher(self)
        self.router = Router()
        # Write-through persistence (a state file): see ``handle`` and ``write_through``.
        self._persist_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._tmp_lock = threading.Lock()  # one writer of the temporary file at a time
        self._changes = 0  # requests that may have changed the state, counted as they end
        self._persisted = 0  # of which in the state file
        self.persists = 0
        self.oauth.register_routes(self.router)
        api.register_routes(self.router)
        control.register_routes(self.router)
        self.webhooks.register_routes(self.router)
        for _ in range(self.settings.seed_realms):
            self.create_company()

    # --- companies ----------------------------------------------------------------------------

    def create_company(
        self, country: str = "US", name: str | None = None, realm_id: str | None = None, seed: bool = True
    ) -> Company:
        country = country.upper()
        if country not in SUPPORTED_COUNTRIES:
            raise ValueError(f"country must be one of {sorted(SUPPORTED_COUNTRIES)}")
        with self.lock:
            realm = realm_id or self._new_realm_id()
            if realm in self.companies:
                raise ValueError(f"realm {realm} already exists")
            count = sum(1 for c in self.companies.values() if c.country == country) + 1
            company = Company(
                realm_id=realm,
                country=country,
                name=name or COUNTRY_NAMES[country].format(n=count),
                created_at=self.clock.now(),
            )
            if seed:
                seed_company(company, self.clock.now())
            company.listeners.append(self.webhooks.on_change)
            self.companies[realm] = company
            return company

    def company(self, realm_id: str) -> Company | None:
        with self.lock:
            return self.companies.get(realm_id)

    def _new_realm_id(self) -> str:
        while True:
            realm = "9341" + "".join(secrets.choice("0123456789") for _ in range(12))
            if realm not in self.companies:
                return realm

    # --- dispatch -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        response = self._route(request)
        # QuickBooks is durable: with a state file, what a request changed is on disk before its
        # answer leaves, so a process killed right after the answer forgets nothing it answered.
        # Reads change nothing; the consent page issues an authorization code.
        if request.method not in ("GET", "HEAD") or request.path == oauth_paths.AUTHORIZE_PATH:
            self.write_through()
        return response

    def _route(self, request: Request) -> Response:
        route, params = self.router.match(request.method, request.path)
        if route is not None:
            return route.handler(self, request, params)
        if params:
            return Response.json(
                {"error": "method_not_allowed", "allowed": params["allowed"]},
                status=405,
                headers={"Allow": params["allowed"]},
            )
        return api.not_found(self, request)

    # --- lifecycle ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every company, token, fault, counter and webhook delivery; keep the settings."""
        with self.lock:
            self.companies.clear()
            self.oauth.reset()
            self.faults.clear()
            self.counters.reset()
            self.limiter.reset()
            self.webhooks.reset()
            for _ in range(self.settings.seed_realms):
                self.create_company()

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "version": 1,
                "clock_offset": self.clock.offset,
                # Through the wire encoder so Decimal amounts become plain JSON numbers.
                "companies": json.loads(dumps([_dump_company(c) for c in self.companies.values()])),
                "oauth": self.oauth.dump(),
            }

    def load(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.reset()
            self.companies.clear()
            self.clock.advance(max(0.0, float(data.get("clock_offset", 0.0)) - self.clock.offset))
            for raw in data.get("companies", []):
                company = _load_company(raw)
                company.listeners.append(self.webhooks.on_change)
                self.companies[company.realm_id] = company
            self.oauth.load(data.get("oauth", {}))

    def write_through(self) -> None:
        """With a state file, put every change made before this call on disk: one write serves
        every request that ended while the previous one was being written."""
        if not self.settings.state_file:
            return
        with self._persist_lock:
            self._changes += 1
            wanted = self._changes
        with self._save_lock:
            if self._persisted >= wanted:
                return
            with self._persist_lock:
                upto = self._changes
            self.save()
            self._persisted = upto
            self.persists += 1

    def save(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        target = path or self.settings.state_file
        if not target:
            return None
        file = Path(target)
        tmp = file.with_suffix(file.suffix + ".tmp")
        data = dumps(self.dump())
        with self._tmp_lock, tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            tmp.replace(file)
        if os.name != "nt":  # POSIX: the rename itself survives a power loss
            directory = os.open(file.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return file

    def restore(self, path: str | os.PathLike[str] | None = None) -> bool:
        target = path or self.settings.state_file
        if not target or not Path(target).exists():
            return False
        self.load(json.loads(Path(target).read_text()))
        return True


def _dump_company(company: Company) -> dict[str, Any]:
    def change(c: Any) -> dict[str, Any]:
        return {
            "at": c.at.isoformat(),
            "entity": c.entity,
            "entity_id": c.entity_id,
            "operation": c.operation,
            "deleted_id": c.deleted_id,
        }

    return {
        "realm_id": company.realm_id,
        "country": company.country,
        "name": company.name,
        "created_at": company.created_at.isoformat(),
        "entities": company.entities,
        "tombstones": company.tombstones,
        "sequences": company.sequences,
        "journal": [change(c) for c in company.journal],
        "settings": {k: v for k, v in company.settings.items() if not k.startswith("_")},
    }


def _load_company(raw: dict[str, Any]) -> Company:
    entities = json.loads(json.dumps(raw["entities"]), parse_float=Decimal)
    return Company(
        realm_id=raw["realm_id"],
        country=raw["country"],
        name=raw["name"],
        created_at=datetime.fromisoformat(raw["created_at"]),
        entities=entities,
        tombstones=raw.get("tombstones", {}),
        sequences=raw.get("sequences", {}),
        journal=[
            Change(
                datetime.fromisoformat(c["at"]),
                c["entity"],
                c["entity_id"],
                c["operation"],
                c.get("deleted_id"),
            )
            for c in raw.get("journal", [])
        ],
        settings=raw.get("settings", {}),
    )
