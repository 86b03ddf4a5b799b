"""Every tenant API route refuses a JWT caller whose tenant claim is not the path's tenant, before
the route reads or changes anything (no AWS at all is reachable in these tests)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from functions.api import handler
from infra import manifest as stack
from qbo_link_local.gateway import LocalContext, Request, http_api_event, match_route


def _routes() -> list[tuple[str, str]]:
    schema = handler.app.get_openapi_schema().model_dump(by_alias=True, exclude_none=True)
    found = []
    for path, operations in schema["paths"].items():
        concrete = path.replace("{tenant_id}", "firm-b")
        concrete = re.sub(r"\{[^}]+\}", "x1", concrete)
        found += [(method.upper(), concrete) for method in operations]
    return sorted(found)


ROUTES = _routes()


def _call(method: str, path: str, claims: dict[str, Any] | None) -> dict[str, Any]:
    match = match_route(stack.FUNCTIONS, method, path)
    assert match is not None, path
    authorizer = {"jwt": {"claims": claims, "scopes": []}} if claims is not None else None
    body = b"{}" if method in ("PUT", "POST") else b""
    request = Request(
        method, path, headers=[("content-type", "application/json")], body=body, authorizer=authorizer
    )
    result: dict[str, Any] = handler.lambda_handler(http_api_event(request, match), LocalContext(stack.API))
    return result


def test_the_api_has_routes_of_every_feature() -> None:
    paths = {path for _, path in ROUTES}
    assert "/tenants/firm-b/connection" in paths
    assert "/tenants/firm-b/invoices/x1" in paths
    assert any("/mappings/" in p for p in paths)
    assert len(ROUTES) > 25


@pytest.mark.parametrize(
    ("method", "path"), [r for r in ROUTES if r[1].startswith(("/tenants/", "/v1/tenants/"))]
)
def test_another_tenants_route_is_refused_to_a_jwt_caller(method: str, path: str) -> None:
    answer = _call(method, path, {"tenant_id": "firm-a", "sub": "user-1"})
    assert answer["statusCode"] == 403
    detail = json.loads(answer["body"])["detail"][0]
    assert detail["type"] == "tenant_mismatch"
    assert detail["loc"] == ["path", "tenant_id"]


@pytest.mark.parametrize("claims", [{}, {"sub": "user-1"}, {"tenant_id": ""}])
def test_a_jwt_without_a_tenant_claim_reaches_no_tenant(claims: dict[str, Any]) -> None:
    assert _call("GET", "/tenants/firm-b/connection", claims)["statusCode"] == 403


@pytest.mark.parametrize("path", ["/v1/tenants", "/tenants"])
def test_the_tenant_list_is_refused_to_a_jwt_caller(path: str) -> None:
    answer = _call("GET", path, {"tenant_id": "firm-a"})
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["detail"][0]["type"] == "tenant_scoped_caller"
