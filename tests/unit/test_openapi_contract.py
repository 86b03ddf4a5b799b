"""The API's contract: the served OpenAPI document, its checked-in copy, Swagger UI, the /v1 prefix
and the deprecated aliases (docs/api.md).  No AWS is reached: every call here is answered before a
route needs a store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from functions.api import handler, openapi
from infra import manifest as stack
from qbo_link_local.gateway import LocalContext, Request, http_api_event, match_route

ROOT = Path(__file__).resolve().parents[2]
TENANT = "/v1/tenants/{tenant_id}"
# Every operation that takes a JSON body (the others take none).
BODY_OPERATIONS = {
    ("post", f"{TENANT}/connection"),
    ("put", f"{TENANT}/settings"),
    ("patch", f"{TENANT}/settings"),
    ("put", f"{TENANT}/clients/{{app_id}}"),
    ("put", f"{TENANT}/invoices/{{app_id}}"),
    ("put", f"{TENANT}/payments/{{app_id}}"),
    ("put", f"{TENANT}/credit-memos/{{app_id}}"),
    ("put", f"{TENANT}/catalog/{{kind}}/{{app_id}}"),
    ("put", f"{TENANT}/mappings/{{kind}}/app/{{app_id}}"),
    ("post", f"{TENANT}/mappings/{{kind}}/export"),
    ("post", f"{TENANT}/mappings/{{kind}}/import"),
    ("post", f"{TENANT}/documents"),
    ("post", f"{TENANT}/console-sessions"),
}


def _call(method: str, path: str, claims: dict[str, Any] | None = None) -> dict[str, Any]:
    match = match_route(stack.FUNCTIONS, method, path)
    assert match is not None, path
    authorizer = {"jwt": {"claims": claims, "scopes": []}} if claims is not None else None
    request = Request(method, path, headers=[], body=b"", authorizer=authorizer)
    answer: dict[str, Any] = handler.lambda_handler(http_api_event(request, match), LocalContext(stack.API))
    return answer


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = openapi.document(handler.app)["paths"]
    return [(method, path, op) for path, ops in paths.items() for method, op in ops.items()]


def test_the_checked_in_document_is_the_one_served() -> None:
    held = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert held == openapi.document_json(handler.app), "docs/openapi.json is stale: run scripts/openapi.py"


def test_the_document_is_valid_openapi_3_1_with_the_products_title_and_security() -> None:
    document = openapi.document(handler.app)
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert (document["info"]["title"], document["info"]["version"]) == ("QBO Link API", openapi.VERSION)
    assert set(document["components"]["securitySchemes"]) == {"sigv4", "tenantJwt"}
    assert document["security"] == [{"sigv4": []}, {"tenantJwt": []}]


def test_every_route_is_under_v1_and_named_after_its_function() -> None:
    operations = _operations()
    assert len(operations) > 30
    assert all(path.startswith("/v1/") for _, path, _ in operations)
    names = [op["operationId"] for _, _, op in operations]
    assert len(names) == len(set(names))
    assert "put_invoice" in names
    assert "list_postings" in names


def test_every_route_with_a_body_has_its_schema() -> None:
    schemas = openapi.document(handler.app)["components"]["schemas"]
    with_body = {(m, p) for m, p, op in _operations() if "requestBody" in op}
    assert with_body == BODY_OPERATIONS
    for method, path, operation in _operations():
        if (method, path) in BODY_OPERATIONS:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[-1] in schemas, (method, path)
    invoice = schemas["AppInvoice"]
    assert {"id", "version", "client_id", "lines"} <= set(invoice["properties"])


def test_every_tenant_route_documents_its_refusals_in_the_one_error_shape() -> None:
    for method, path, operation in _operations():
        if not path.startswith("/v1/tenants"):
            assert operation["security"] == [], path  # the contract is public
            continue
        responses = operation["responses"]
        assert {"403", "404"} <= set(responses), (method, path)
        schema = responses["404"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}
        assert any(status.startswith("2") for status in responses), (method, path)
    error = openapi.document(handler.app)["components"]["schemas"]["Error"]
    assert error["examples"][0]["detail"][0]["type"] == "not_connected"


def test_every_tenant_routes_answer_is_typed() -> None:
    for method, path, operation in _operations():
        if not path.startswith("/v1/tenants"):
            continue
        for status, answer in operation["responses"].items():
            if status.startswith("2"):
                schema = answer["content"]["application/json"]["schema"]
                assert "$ref" in schema, (method, path, status, schema)


def test_the_upserts_answers_are_typed() -> None:
    put_invoice = openapi.document(handler.app)["paths"][f"{TENANT}/invoices/{{app_id}}"]["put"]
    for status in ("200", "202"):
        schema = put_invoice["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/UpsertAnswer"}


def test_the_document_is_served_at_v1_openapi_json() -> None:
    answer = _call("GET", "/v1/openapi.json")
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "application/json"
    assert answer["body"] == openapi.document_json(handler.app)
    assert "Deprecation" not in answer["headers"]
    assert "Deprecation" not in _call("GET", "/v1/tenants/firm-b/connection", {"tenant_id": "a"})["headers"]


def test_swagger_ui_is_served_whole_at_v1_docs() -> None:
    answer = _call("GET", "/v1/docs")
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"].startswith("text/html")
    page = answer["body"]
    assert "<title>QBO Link API" in page
    assert "SwaggerUIBundle" in page
    assert "<script src=" not in page  # no CDN: the assets are inline
    assert "<link rel='stylesheet'" not in page
    assert json.dumps(openapi.document(handler.app)["info"]["title"]) in page


@pytest.mark.parametrize("path", ["/tenants", "/tenants/firm-b/connection"])
def test_an_unversioned_route_answers_as_a_deprecated_alias(path: str) -> None:
    answer = _call("GET", path, {"tenant_id": "firm-a"})  # refused (403) before any store is read
    assert answer["statusCode"] == 403
    headers = answer["headers"]
    assert headers["Deprecation"].startswith("@")
    assert headers["Link"] == f'</v1{path}>; rel="successor-version"'


def test_every_v1_route_is_routed_by_the_stack_and_the_alias_too() -> None:
    for method, path, _ in _operations():
        concrete = path.replace("{tenant_id}", "firm-b").replace("{kind}", "client")
        concrete = concrete.replace("{app_id}", "x1").replace("{qbo_id}", "7")
        assert match_route(stack.FUNCTIONS, method.upper(), concrete) is not None, (method, concrete)
        if path.startswith("/v1/tenants"):
            alias = concrete.removeprefix("/v1")
            assert match_route(stack.FUNCTIONS, method.upper(), alias) is not None, (method, alias)
