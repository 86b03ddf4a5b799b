"""Every tenant API route refuses a body no parser can read safely with a 4xx in the API's one
error shape, before the route runs (no AWS is reachable in these tests: a route that ran would fail).
"""

from __future__ import annotations

import base64
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
        concrete = re.sub(
            r"\{[^}]+\}", "x1", path.replace("{tenant_id}", "firm-b").replace("{kind}", "client")
        )
        found += [(method.upper(), concrete) for method in operations if method in ("put", "post")]
    return sorted(found)


ROUTES = _routes()
NASTY: dict[str, tuple[bytes, str, int]] = {
    "deep-array": (b"[" * 5000 + b"]" * 5000, "application/json", 422),
    "deep-object": (b'{"a":' * 3000 + b"1" + b"}" * 3000, "application/json", 422),
    "huge-int": (b'{"version": ' + b"9" * 5000 + b"}", "application/json", 422),
    "nan": (b'{"version": NaN}', "application/json", 422),
    "not-utf8-json": (b'{"name": "\xff\xfe"}', "application/json", 400),
    "not-utf8-binary": (b"\x00\xff\xfe", "application/octet-stream", 400),
    "multipart-no-boundary": (b"--x\r\n\r\nhello\r\n--x--", "multipart/form-data", 415),
    "text": (b'{"version": 1}', "text/plain", 415),
    "json-suffix": (b'{"version": 1}', "application/merge-patch+json", 415),
}


def _call(method: str, path: str, body: bytes, content_type: str) -> dict[str, Any]:
    match = match_route(stack.FUNCTIONS, method, path)
    assert match is not None, path
    request = Request(method, path, headers=[("content-type", content_type)], body=body)
    event = http_api_event(request, match)
    if not event["isBase64Encoded"] and content_type.startswith("multipart"):
        event["body"] = base64.b64encode(body).decode()  # API Gateway's binary handling of multipart
        event["isBase64Encoded"] = True
    result: dict[str, Any] = handler.lambda_handler(event, LocalContext(stack.API))
    return result


def test_every_feature_has_routes_with_a_body() -> None:
    assert ("PUT", "/tenants/firm-b/invoices/x1") in ROUTES
    assert ("POST", "/tenants/firm-b/connection") in ROUTES
    assert ("PUT", "/tenants/firm-b/catalog/client/x1") in ROUTES


@pytest.mark.parametrize("nasty", sorted(NASTY))
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_body_no_parser_can_read_is_a_4xx_before_the_route(method: str, path: str, nasty: str) -> None:
    body, content_type, status = NASTY[nasty]
    answer = _call(method, path, body, content_type)
    assert answer["statusCode"] == status, answer
    refusal = json.loads(answer["body"])
    assert refusal["statusCode"] == status
    [detail] = refusal["detail"]
    assert set(detail) == {"loc", "msg", "type"}
    assert detail["loc"] == ["body"]


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[1].endswith(("/connection", "/export"))])
def test_no_body_under_a_content_type_other_than_json_is_a_415_in_the_api_shape(
    method: str, path: str
) -> None:
    answer = _call(method, path, b"", "text/plain")
    assert answer["statusCode"] == 415, answer
    assert json.loads(answer["body"])["detail"] == [
        {"loc": ["body"], "msg": "send application/json", "type": "unsupported_media_type"}
    ]


def test_a_json_content_type_in_capitals_is_json() -> None:
    answer = _call("POST", "/tenants/firm-b/connection", b"{}", "Application/JSON; charset=UTF-8")
    assert answer["statusCode"] == 422, answer  # validated: return_url is missing
    assert json.loads(answer["body"])["detail"][0]["loc"] == ["body", "return_url"]
