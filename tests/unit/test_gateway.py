"""The local gateway's reading of API Gateway: route choice, the 2.0 event, the answer."""

from __future__ import annotations

import base64
import json

from infra import manifest as stack
from qbo_link_local.gateway import Request, http_api_event, lambda_response, match_route


def test_exact_public_routes_win_and_tenant_paths_go_to_the_api() -> None:
    callback = match_route(stack.FUNCTIONS, "GET", "/oauth/callback")
    assert callback is not None
    assert callback.function is stack.OAUTH
    tenant = match_route(stack.FUNCTIONS, "PUT", "/tenants/t1/invoices/i9")
    assert tenant is not None
    assert tenant.function is stack.API
    assert tenant.path_parameters == {"proxy": "t1/invoices/i9"}
    assert tenant.route_key == "ANY /tenants/{proxy+}"


def test_unknown_paths_and_wrong_methods_have_no_route() -> None:
    assert match_route(stack.FUNCTIONS, "GET", "/webhooks/qbo") is None
    assert match_route(stack.FUNCTIONS, "POST", "/tenants") is None
    assert match_route(stack.FUNCTIONS, "GET", "/nowhere") is None


def test_event_carries_query_headers_cookies_and_body() -> None:
    match = match_route(stack.FUNCTIONS, "POST", "/webhooks/qbo")
    assert match is not None
    request = Request(
        "POST",
        "/webhooks/qbo",
        "a=1&a=2&b=",
        [("Content-Type", "application/json"), ("X-Many", "1"), ("x-many", "2"), ("Cookie", "s=1; t=2")],
        b'{"x": 1}',
    )
    event = http_api_event(request, match)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /webhooks/qbo"
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"]["x-many"] == "1,2"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["body"] == '{"x": 1}'
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"


def test_binary_bodies_are_base64() -> None:
    match = match_route(stack.FUNCTIONS, "PUT", "/tenants/t/x")
    assert match is not None
    event = http_api_event(
        Request(
            "PUT", "/tenants/t/x", headers=[("content-type", "application/octet-stream")], body=b"\x00\xff"
        ),
        match,
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"


def test_a_text_body_that_is_not_utf8_travels_base64() -> None:
    match = match_route(stack.FUNCTIONS, "PUT", "/tenants/t/x")
    assert match is not None
    for content_type in ("application/json", "text/plain; charset=utf-8", ""):
        request = Request(
            "PUT", "/tenants/t/x", headers=[("content-type", content_type)], body=b'{"a":"\xff"}'
        )
        event = http_api_event(request, match)
        assert event["isBase64Encoded"] is True, content_type
        assert base64.b64decode(event["body"]) == b'{"a":"\xff"}'


def test_answers_full_and_shortcut() -> None:
    full = lambda_response(
        {"statusCode": 302, "headers": {"Location": "https://x"}, "cookies": ["a=b"], "body": ""}
    )
    assert full.status == 302
    assert ("location", "https://x") in full.headers
    assert ("set-cookie", "a=b") in full.headers
    short = lambda_response({"ok": True})
    assert short.status == 200
    assert json.loads(short.body) == {"ok": True}
    encoded = lambda_response(
        {"statusCode": 200, "body": base64.b64encode(b"hi").decode(), "isBase64Encoded": True}
    )
    assert encoded.body == b"hi"


def test_console_calls_are_trusted_locally_without_a_session_and_verified_with_one() -> None:
    from qbo_link_local.gateway import authorizer_for

    match = match_route(stack.FUNCTIONS, "GET", "/console/v1/tenants/firm-1/connection")
    assert match is not None
    assert match.function is stack.API

    trusted = authorizer_for(match.route, [], "/console/v1/tenants/firm-1/connection")
    with_session = authorizer_for(match.route, [("Authorization", "Bearer abc.def")], match.route.path)

    assert trusted == {"jwt": {"claims": {"tenant_id": "firm-1"}, "scopes": None}}
    assert with_session is None  # the api function verifies the session, as deployed


def test_the_console_files_go_to_the_console_function() -> None:
    for path in ("/console", "/console/", "/console/js/app.js"):
        match = match_route(stack.FUNCTIONS, "GET", path)
        assert match is not None, path
        assert match.function is stack.CONSOLE
    assert match_route(stack.FUNCTIONS, "POST", "/console/") is None
