"""In-process sandbox companies for the tests that drive ``qbo_sandbox`` without its HTTP server."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qbo_sandbox import seed
from qbo_sandbox.company import Company


def seeded_company(country: str, *, realm: str, name: str, now: datetime) -> Company:
    """A company of ``country`` with the seed's data (the seed's transaction hooks included)."""
    company = Company(realm_id=realm, country=country, name=name, created_at=now)
    seed.seed_company(company, now)
    return company


def must_get(co: Company, entity: str, entity_id: str) -> dict[str, Any]:
    """A stored entity that must exist."""
    stored = co.get(entity, entity_id)
    assert stored is not None, (entity, entity_id)
    return stored
