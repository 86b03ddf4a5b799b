"""The stack with its optional context: a JWT tenant API, an alarm e-mail, production, a shorter log
retention and an allowlist of return URLs (one synth for all of them)."""

from __future__ import annotations

import json

import pytest

from infra import manifest
from infra.manifest import Auth
from tests.infra.conftest import SYNTH_TIMEOUT_SECONDS
from tests.infra.synth import Synthesized, synthesize

pytestmark = pytest.mark.timeout(SYNTH_TIMEOUT_SECONDS)

ISSUER = "https://id.example.com/"
CONTEXT = {
    "qbo-link:intuitEnvironment": "production",
    "qbo-link:appId": "app-123",
    "qbo-link:returnUrlAllowlist": "https://app.example.com/qbo/,https://admin.example.com/",
    "qbo-link:jwtIssuer": ISSUER,
    "qbo-link:jwtAudience": "qbo-link,qbo-link-admin",
    "qbo-link:alarmEmail": "ops@example.com",
    "qbo-link:logRetentionDays": "14",
    "qbo-link:stackName": "QboLinkProd",
    "qbo-link:consoleFrameAncestors": "https://app.example.com,https://admin.example.com:8443",
}


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"), CONTEXT)


def test_context_reaches_every_functions_plain_settings(configured: Synthesized) -> None:
    assert configured.stack_name == "QboLinkProd"
    functions = configured.of_type("AWS::Lambda::Function").values()
    assert len(functions) == len(manifest.FUNCTIONS)
    for function in functions:
        env = function["Properties"]["Environment"]["Variables"]
        if "QBO_LINK_CONSOLE_FRAME_ANCESTORS" in env:  # the console's files read no QBO Link setting
            assert (
                env["QBO_LINK_CONSOLE_FRAME_ANCESTORS"]
                == "https://app.example.com https://admin.example.com:8443"
            )
            assert "QBO_LINK_RETURN_URL_ALLOWLIST" not in env
            continue
        assert env["QBO_LINK_INTUIT_ENVIRONMENT"] == "production"
        assert env["QBO_LINK_APP_ID"] == "app-123"
        assert (
            env["QBO_LINK_RETURN_URL_ALLOWLIST"] == "https://app.example.com/qbo/,https://admin.example.com/"
        )
    for group in configured.of_type("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 14


def test_the_jwt_api_serves_the_tenant_routes_only_behind_the_jwt_authorizer(configured: Synthesized) -> None:
    apis = configured.of_type("AWS::ApiGatewayV2::Api")
    assert len(apis) == 2
    [authorizer_id] = configured.of_type("AWS::ApiGatewayV2::Authorizer")
    authorizer = configured.resources[authorizer_id]["Properties"]
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["JwtConfiguration"] == {"Issuer": ISSUER, "Audience": ["qbo-link", "qbo-link-admin"]}
    jwt_api = authorizer["ApiId"]["Ref"]
    routes = [r["Properties"] for r in configured.of_type("AWS::ApiGatewayV2::Route").values()]
    jwt_routes = {r["RouteKey"]: r for r in routes if r["ApiId"] == {"Ref": jwt_api}}
    tenant_routes = {
        f"{r.method} {r.path}"
        for s in manifest.FUNCTIONS
        for r in s.routes
        if r.auth in (Auth.IAM, Auth.CONSOLE)
    }
    console_files = {f"{r.method} {r.path}" for r in manifest.CONSOLE.routes}
    assert set(jwt_routes) == tenant_routes | console_files
    assert "ANY /console/v1/tenants/{proxy+}" in tenant_routes
    for key, route in jwt_routes.items():
        if key in console_files:  # the console's files: public, as on the main API
            assert route["AuthorizationType"] == "NONE"
            continue
        assert route["AuthorizationType"] == "JWT"
        assert route["AuthorizerId"] == {"Ref": authorizer_id}
    tenant_routes -= {
        f"{r.method} {r.path}" for s in manifest.FUNCTIONS for r in s.routes if r.auth is Auth.CONSOLE
    }
    # the main API keeps IAM for the same routes
    iam_routes = {r["RouteKey"]: r for r in routes if r["ApiId"] != {"Ref": jwt_api}}
    for key in tenant_routes:
        assert iam_routes[key]["AuthorizationType"] == "AWS_IAM"
    stages = [s["Properties"] for s in configured.of_type("AWS::ApiGatewayV2::Stage").values()]
    assert len(stages) == 2
    for stage in stages:
        assert "AccessLogSettings" in stage
        assert "ThrottlingRateLimit" in stage["DefaultRouteSettings"]
    outputs = configured.template["Outputs"]
    assert outputs["JwtApiUrl"]["Value"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [jwt_api, "ApiEndpoint"]}, "/"]]
    }


def test_the_alarm_email_is_subscribed_to_the_alarm_topic(configured: Synthesized) -> None:
    [subscription] = configured.of_type("AWS::SNS::Subscription").values()
    [topic] = configured.of_type("AWS::SNS::Topic")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    assert subscription["Properties"]["TopicArn"] == {"Ref": topic}


def test_nag_stays_clean_with_every_option(configured: Synthesized) -> None:
    report = configured.validation_report()
    assert [v for p in report["pluginReports"] for v in p.get("violations", [])] == []
    assert json.loads(configured.template_file.read_text()) == configured.template
