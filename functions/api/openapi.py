"""The API's contract: the OpenAPI 3.1 document of every ``/v1`` route, and its Swagger UI page.

Powertools describes the routes from their signatures (path and query parameters, the request
models it validates, the answers' models).  This module makes that the product's document:

- only the ``/v1`` routes (the unversioned aliases are deprecated: docs/api.md), each operation
  named after its route function (``put_invoice``: what a generated client calls it);
- the product's title and version, and the two ways in: SigV4 (IAM) for the host app's backend,
  the tenant's JWT where the stack has an issuer (``securitySchemes``); the contract routes are
  public;
- the one error body (``Error``, ``Problem``: ``functions.api.errors``) on every refusal, with an
  example, and the refusals every tenant route can give (403 another tenant, 404 an unknown one);
- the push documents' and settings' bodies: those routes read their JSON with ``Decimal`` numbers
  (money never passes through a float) and validate it with the push's own models
  (``shared.push.models``), so the document names those models, and answers' models where a route
  builds its answer by hand (``UpsertAnswer``).

Built on first use and kept for the container's life; ``document_json`` is what is served and what
``docs/openapi.json`` holds (``scripts/openapi.py --check`` and a test compare them).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from functions.api.paths import VERSION_PREFIX

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

TITLE: Final = "QBO Link API"
VERSION: Final = "1.0.0"  # the /v1 contract; additive changes bump the minor (docs/api.md)
DESCRIPTION: Final = (
    "The tenant API of QBO Link: connect a firm's QuickBooks Online company, map its lists, push "
    "clients, invoices, payments and credit memos exactly once, and read the posting log, reports and "
    "exchanges. The host app's backend signs every call with SigV4 (IAM); where the stack has a JWT "
    "issuer, a tenant-scoped token reaches its own tenant only. Every refusal has one shape (Error)."
)

SECURITY_SCHEMES: Final[dict[str, dict[str, Any]]] = {
    "sigv4": {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "AWS Signature Version 4 (API Gateway IAM authorisation, service execute-api): "
        "the host app's backend, any tenant.",
        "x-amazon-apigateway-authtype": "awsSigv4",
    },
    "tenantJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A token of the stack's JWT issuer carrying a tenant_id claim: that tenant's "
        "routes only (403 tenant_mismatch elsewhere). Only where the stack configures an issuer.",
    },
}

_PROBLEM: Final[dict[str, Any]] = {
    "title": "Problem",
    "type": "object",
    "required": ["loc", "msg", "type"],
    "properties": {
        "loc": {
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "description": "Where: body, path, query, qbo or queue, then the field.",
        },
        "msg": {"type": "string", "description": "What is wrong, in words."},
        "type": {"type": "string", "description": "A stable code (invalid_document, not_connected, ...)."},
    },
}
_ERROR: Final[dict[str, Any]] = {
    "title": "Error",
    "type": "object",
    "required": ["statusCode", "detail"],
    "properties": {
        "statusCode": {"type": "integer", "description": "The HTTP status, again."},
        "detail": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}, "minItems": 1},
    },
    "examples": [
        {
            "statusCode": 404,
            "detail": [
                {
                    "loc": ["path", "tenant_id"],
                    "msg": "tenant 'firm-9' has never connected a QBO company",
                    "type": "not_connected",
                }
            ],
        }
    ],
}
_RENAMED: Final = {"HTTPValidationError": "Error", "ValidationError": "Problem"}
_TENANT_REFUSALS: Final = {
    "403": "A tenant-scoped caller (JWT) reaching another tenant, or the tenant list",
    "404": "No such tenant (it never connected, nor gave settings or lists), or no such route",
}

# The push documents' routes: path segment -> the model that validates the body (shared.push.models).
_PUSH_DOCUMENTS: Final = {
    "clients": "AppClient",
    "invoices": "AppInvoice",
    "payments": "AppPayment",
    "credit-memos": "AppCreditMemo",
}
Body = tuple[type[Any], dict[str, str]]  # the body's model, {status: the answer's schema}


_TENANT: Final = f"{VERSION_PREFIX}/tenants/{{tenant_id}}"
# Answers built by hand (``functions.api.answers``): (method, path) -> {status: the answer's schema}.
_MAPPING: Final = f"{_TENANT}/mappings/{{kind}}"
_ANSWERS: Final = {
    ("get", f"{_TENANT}/jobs/{{job_id}}"): {"200": "JobStatus"},
    ("get", f"{VERSION_PREFIX}/tenants"): {"200": "TenantsPage"},
    ("get", f"{_TENANT}/connection"): {"200": "ConnectionStatus"},
    ("post", f"{_TENANT}/console-sessions"): {"201": "ConsoleSessionAnswer"},
    ("get", f"{_TENANT}/settings"): {"200": "TenantSettings"},
    ("get", f"{_TENANT}/postings"): {"200": "PostingsPage"},
    ("get", f"{_TENANT}/postings/summary"): {"200": "PostingsSummary"},
    ("get", f"{_TENANT}/postings/{{kind}}/{{app_id}}"): {"200": "PostingAnswer"},
    ("post", f"{_TENANT}/postings/{{kind}}/{{app_id}}/retry"): {"200": "UpsertAnswer", "202": "UpsertAnswer"},
    ("post", f"{_TENANT}/postings/recheck"): {"202": "RecheckAnswer"},
    ("get", f"{_TENANT}/reports/transactions"): {"200": "TransactionsReport"},
    ("get", f"{_TENANT}/exchanges"): {"200": "ExchangesPage"},
    ("get", f"{_TENANT}/exchanges/latest"): {"200": "LatestExchange"},
    ("put", f"{_TENANT}/catalog/{{kind}}/{{app_id}}"): {"200": "CatalogAnswer"},
    ("get", _MAPPING): {"200": "MappingsPage"},
    ("delete", _MAPPING): {"200": "Cleared"},
    ("get", f"{_MAPPING}/app/{{app_id}}"): {"200": "LinkView"},
    ("get", f"{_MAPPING}/qbo/{{qbo_id}}"): {"200": "LinkView"},
    ("put", f"{_MAPPING}/app/{{app_id}}"): {"200": "Link"},
    ("delete", f"{_MAPPING}/app/{{app_id}}"): {"200": "Unlinked"},
    ("post", f"{_MAPPING}/automatch"): {"200": "AutomatchAnswer"},
    ("get", f"{_MAPPING}/name-conflicts"): {"200": "NameConflicts"},
    ("post", f"{_MAPPING}/export"): {"200": "EntityResults"},
    ("post", f"{_MAPPING}/import"): {"200": "EntityResults"},
    ("post", f"{_TENANT}/mappings/refresh"): {"200": "Refreshed"},
    ("post", f"{_TENANT}/mappings/onboard"): {"200": "Onboarded"},
}


def _read_bodies() -> dict[tuple[str, str], Body]:
    """Routes whose body the route reads itself (``Decimal`` numbers) and a push model validates:
    (method, path) -> its body."""
    from functions.api import answers
    from shared.push import models

    tenant = _TENANT
    bulk = {"200": "BulkAnswer", "202": "BulkAnswer"}
    bodies: dict[tuple[str, str], Body] = {
        ("put", f"{tenant}/settings"): (models.TenantSettings, {"200": "TenantSettings"}),
        ("post", f"{tenant}/documents"): (answers.BulkRequest, bulk),
        ("patch", f"{tenant}/settings"): (answers.SettingsPatch, {"200": "TenantSettings"}),
    }
    upsert = {"200": "UpsertAnswer", "202": "UpsertAnswer"}
    for path, name in _PUSH_DOCUMENTS.items():
        bodies[("put", f"{tenant}/{path}/{{app_id}}")] = (getattr(models, name), upsert)
    return bodies


def _answer_models() -> list[type[Any]]:
    from functions.api import answers, connection_routes

    named = {name for statuses in _ANSWERS.values() for name in statuses.values()}
    models: list[type[Any]] = [answers.UpsertAnswer, answers.BulkAnswer, connection_routes.TenantsPage]
    models += [getattr(answers, n) for n in sorted(named) if hasattr(answers, n)]
    return models


def _walk_refs(node: Any, rename: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.rsplit("/", 1)[-1]
                out[key] = f"#/components/schemas/{rename.get(name, name)}"
            else:
                out[key] = _walk_refs(value, rename)
        return out
    if isinstance(node, list):
        return [_walk_refs(item, rename) for item in node]
    return node


def _referenced(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                _referenced(value, found)
    elif isinstance(node, list):
        for item in node:
            _referenced(item, found)


def _prune(schemas: dict[str, Any], roots: Any) -> dict[str, Any]:
    """Only the components something refers to (Powertools adds some no route uses)."""
    keep: set[str] = set()
    _referenced(roots, keep)
    pending = list(keep)
    while pending:
        inner: set[str] = set()
        _referenced(schemas.get(pending.pop(), {}), inner)
        pending.extend(inner - keep)
        keep |= inner
    return {name: schemas[name] for name in sorted(keep) if name in schemas}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json_of("Error")}


def _model_schemas(models: list[type[Any]], mode: str) -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema

    _, top = models_json_schema([(m, mode) for m in models], ref_template="#/components/schemas/{model}")  # type: ignore[misc]
    return dict(top.get("$defs", {}))


def _operation_id(operation_id: str) -> str:
    # Powertools: <function>_<path with _>_<method>; the route function's name is the operation's.
    return re.sub(r"_v1_.*$", "", operation_id)


def _operations(paths: dict[str, Any]) -> dict[str, Any]:
    bodies = _read_bodies()
    names: dict[str, str] = {}
    for path, methods in paths.items():
        for method, operation in methods.items():
            name = _operation_id(str(operation.get("operationId", "")))
            if name in names:
                raise ValueError(f"two operations named {name!r}: {names[name]} and {method} {path}")
            names[name] = f"{method} {path}"
            operation["operationId"] = name
            responses = operation.setdefault("responses", {})
            if path.startswith(f"{VERSION_PREFIX}/tenants"):
                for status, description in _TENANT_REFUSALS.items():
                    responses.setdefault(status, _error(description))
            else:
                operation["security"] = []  # the contract itself: public
                responses.pop("422", None)
                html = path.endswith("/docs")
                content = {"text/html": {"schema": {"type": "string"}}} if html else _ANY_OBJECT
                responses["200"] = {
                    "description": "Swagger UI" if html else "This document",
                    "content": content,
                }
            if not any(status.startswith("2") for status in responses):
                responses["200"] = {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            for status, answer in _ANSWERS.get((method, path), {}).items():
                responses.setdefault(status, {"description": "OK"})["content"] = _json_of(answer)
            body = bodies.get((method, path))
            if body is not None:
                model, answers = body
                operation["requestBody"] = {"required": True, "content": _json_of(model.__name__)}
                for status, answer in answers.items():
                    responses.setdefault(status, {"description": "OK"})["content"] = _json_of(answer)
    return paths


_ANY_OBJECT: Final = {"application/json": {"schema": {"type": "object"}}}


def _json_of(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


@cache
def document(app: APIGatewayHttpResolver) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s ``/v1`` routes (cached: treat it as read-only)."""
    raw = app.get_openapi_schema(title=TITLE, version=VERSION, description=DESCRIPTION)
    generated = raw.model_dump(by_alias=True, exclude_none=True, mode="json")
    document = _walk_refs(generated, _RENAMED)
    paths = {p: ops for p, ops in document["paths"].items() if p.startswith(f"{VERSION_PREFIX}/")}
    paths = _operations(paths)
    schemas = {_RENAMED.get(k, k): v for k, v in document.get("components", {}).get("schemas", {}).items()}
    schemas.update({"Error": _ERROR, "Problem": _PROBLEM})
    schemas.update(_model_schemas([m for m, _ in _read_bodies().values()], "validation"))
    schemas.update(_model_schemas(_answer_models(), "serialization"))
    return {
        "openapi": document["openapi"],
        "info": {**document["info"], "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": "/", "description": "The stack's API (its ApiUrl output)"}],
        "security": [{"sigv4": []}, {"tenantJwt": []}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": _prune(schemas, paths), "securitySchemes": SECURITY_SCHEMES},
    }


@cache
def document_json(app: APIGatewayHttpResolver) -> str:
    """The document as served and checked in: sorted keys, two-space indent, a final newline."""
    return json.dumps(document(app), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@cache
def swagger_html(app: APIGatewayHttpResolver) -> str:
    """Swagger UI with the document inline and Powertools' bundled assets (no CDN at runtime)."""
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as assets
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    folder = Path(assets.__file__).parent
    page = generate_swagger_html(
        spec=document_json(app),
        swagger_js=(folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        swagger_css=(folder / "swagger-ui.min.css").read_text(encoding="utf-8"),
        swagger_base_url="",
        oauth2_config=None,
    )
    return page.replace("<title>Swagger UI</title>", f"<title>{TITLE} {VERSION}</title>", 1)
