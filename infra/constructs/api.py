"""The HTTP API (API Gateway v2): the manifest's routes, each to its function.

- Tenant routes (``Auth.IAM``): the host app's backend signs with SigV4 (IAM authorisation).
- Public routes (``Auth.PUBLIC``): Intuit's OAuth redirect, disconnect/reconnect URLs and webhooks
  cannot sign; the handlers verify what they receive (OAuth state, webhook HMAC signature).
- Console routes (``Auth.CONSOLE``): the console's data calls from a browser; no authorizer, since
  the api function verifies the console session itself (docs/console.md).
- Optionally (context ``qbo-link:jwtIssuer`` + ``qbo-link:jwtAudience``), a second HTTP API with the
  same tenant routes behind a JWT authorizer, for callers that hold a tenant-scoped token rather than
  AWS credentials; the API handler refuses a JWT whose ``tenant_id`` claim is not the path's tenant.
  It serves the console too (its files, and its data calls behind the same JWT authorizer), so a
  host app's own tenant JWT opens it.

Both stages keep an access log (JSON, no query string: the OAuth callback's code and state never reach
it) and a throttle.  The API exists before the functions (they need its callback URL in their
environment); ``add_routes`` wires the functions once they exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import jsii
from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import manifest
from infra.manifest import Auth, FunctionSpec, Route

# The public routes whose URLs the operator enters in Intuit's developer portal (docs/deploy.md).
CALLBACK_PATH: Final = "/oauth/callback"
DISCONNECT_PATH: Final = "/oauth/disconnect"
RECONNECT_PATH: Final = "/oauth/reconnect"
WEBHOOK_PATH: Final = "/webhooks/qbo"
CONSOLE_PATH: Final = "/console"  # the administrator console (docs/console.md)
INTUIT_PATHS: Final = (CALLBACK_PATH, DISCONNECT_PATH, RECONNECT_PATH, WEBHOOK_PATH)


def public_paths() -> frozenset[str]:
    return frozenset(route.path for spec in manifest.FUNCTIONS for route in spec.routes)


# $context variables of HTTP APIs; deliberately no query string and no headers.
ACCESS_LOG_FORMAT: Final = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.identity.userArn",
        "routeKey": "$context.routeKey",
        "path": "$context.path",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationStatus": "$context.integrationStatus",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)


@dataclass(frozen=True)
class ApiSettings:
    rate_limit: int  # steady requests per second, per stage
    burst_limit: int
    log_retention: logs.RetentionDays
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_issuer)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLog:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(ACCESS_LOG_FORMAT)


def _methods(route: Route) -> list[apigwv2.HttpMethod]:
    return [apigwv2.HttpMethod(route.method)]


class Api(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: ApiSettings) -> None:
        super().__init__(scope, construct_id)
        missing = set(INTUIT_PATHS) - public_paths()
        if missing:
            raise ValueError(f"infra/manifest.py has no route for {sorted(missing)}")
        self._settings = settings
        self.http_api, self.stage = self._api(
            "HttpApi", "QBO Link: tenant API (IAM), Intuit's OAuth and webhooks"
        )
        self.jwt_api: apigwv2.HttpApi | None = None
        self.jwt_stage: apigwv2.HttpStage | None = None
        if settings.jwt_enabled:
            self.jwt_api, self.jwt_stage = self._api("JwtHttpApi", "QBO Link: tenant API for JWT callers")

    def _api(self, construct_id: str, description: str) -> tuple[apigwv2.HttpApi, apigwv2.HttpStage]:
        api = apigwv2.HttpApi(self, construct_id, description=description, create_default_stage=False)
        access_logs = logs.LogGroup(
            self,
            f"{construct_id}AccessLogs",
            retention=self._settings.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        stage = apigwv2.HttpStage(
            self,
            f"{construct_id}DefaultStage",
            http_api=api,
            stage_name="$default",
            auto_deploy=True,
            access_log_settings=_AccessLog(access_logs),
            throttle=apigwv2.ThrottleSettings(
                rate_limit=self._settings.rate_limit, burst_limit=self._settings.burst_limit
            ),
        )
        return api, stage

    def url_of(self, path: str) -> str:
        """The public URL of one of the manifest's routes on the main API (no trailing slash)."""
        return f"{self.http_api.api_endpoint}{path}"

    @property
    def url(self) -> str:
        return f"{self.http_api.api_endpoint}/"

    @property
    def jwt_url(self) -> str | None:
        return f"{self.jwt_api.api_endpoint}/" if self.jwt_api is not None else None

    def add_routes(self, functions: Mapping[str, lambda_.IFunction]) -> None:
        """Every route of every function in the manifest, with the authorisation the manifest says."""
        iam = authorizers.HttpIamAuthorizer()
        jwt = (
            authorizers.HttpJwtAuthorizer(
                "TenantJwtAuthorizer",
                str(self._settings.jwt_issuer),
                jwt_audience=list(self._settings.jwt_audience),
            )
            if self.jwt_api is not None
            else None
        )
        for spec in manifest.FUNCTIONS:
            if not spec.routes:
                continue
            integration = integrations.HttpLambdaIntegration(
                f"{spec.logical_id}Integration", functions[spec.name]
            )
            # An integration belongs to one API: the JWT API gets its own, to the same function.
            jwt_integration = integrations.HttpLambdaIntegration(
                f"{spec.logical_id}JwtIntegration", functions[spec.name]
            )
            for route in spec.routes:
                on_jwt_api = route.auth is not Auth.PUBLIC or spec.serves_console
                if route.auth is Auth.IAM:
                    self.http_api.add_routes(
                        path=route.path, methods=_methods(route), integration=integration, authorizer=iam
                    )
                else:  # public, or the console's (its session checked by the function)
                    routes = self.http_api.add_routes(
                        path=route.path, methods=_methods(route), integration=integration
                    )
                    self._acknowledge_public(routes, spec, route)
                if on_jwt_api and self.jwt_api is not None and jwt is not None:
                    public = route.auth is Auth.PUBLIC
                    jwt_routes = self.jwt_api.add_routes(
                        path=route.path,
                        methods=_methods(route),
                        integration=jwt_integration,
                        authorizer=None if public else jwt,
                    )
                    if public:
                        self._acknowledge_public(jwt_routes, spec, route)

    @staticmethod
    def _acknowledge_public(routes: Sequence[apigwv2.HttpRoute], spec: FunctionSpec, route: Route) -> None:
        for public in routes:
            Validations.of(public).acknowledge(
                Acknowledgment(id="AwsSolutions-APIG4", reason=f"{spec.name}: {route.public_because}")
            )
