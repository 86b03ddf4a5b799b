"""Stack outputs: every URL the operator enters in Intuit's developer portal, and the names they use
to fill secrets, redrive queues and read or invoke functions (docs/deploy.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import CfnOutput
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import manifest
from infra.constructs.api import Api
from infra.constructs.events import Events
from infra.constructs.queues import Queues
from infra.constructs.secrets import Secrets

CALLBACK_PATH: Final = "/oauth/callback"
DISCONNECT_PATH: Final = "/oauth/disconnect"
RECONNECT_PATH: Final = "/oauth/reconnect"
WEBHOOK_PATH: Final = "/webhooks/qbo"


def public_paths() -> frozenset[str]:
    return frozenset(route.path for spec in manifest.FUNCTIONS for route in spec.routes)


class Outputs(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: Api,
        secrets: Secrets,
        queues: Queues,
        events: Events,
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        missing = {CALLBACK_PATH, DISCONNECT_PATH, RECONNECT_PATH, WEBHOOK_PATH} - public_paths()
        if missing:
            raise ValueError(f"infra/manifest.py has no route for {sorted(missing)}")

        def output(name: str, value: str, description: str) -> None:
            # Stack-level output ids: stable names for `aws cloudformation describe-stacks` queries.
            CfnOutput(self, name, value=value, description=description).override_logical_id(name)

        output("ApiUrl", api.url, "Base URL of the tenant API (IAM, SigV4)")
        if api.jwt_url is not None:
            output("JwtApiUrl", api.jwt_url, "Base URL of the tenant API for JWT callers")
        output("RedirectUri", api.url_of(CALLBACK_PATH), "Intuit portal: Keys & OAuth > Redirect URIs")
        output("WebhookUrl", api.url_of(WEBHOOK_PATH), "Intuit portal: Webhooks > Endpoint URL")
        output("DisconnectUrl", api.url_of(DISCONNECT_PATH), "Intuit portal: app settings > Disconnect URL")
        output(
            "ReconnectUrl", api.url_of(RECONNECT_PATH), "Intuit portal: app settings > Launch/Reconnect URL"
        )
        for secret in manifest.SECRETS:
            output(f"{secret.logical_id}Name", secrets.secret(secret).secret_name, secret.description)
        for spec in manifest.QUEUES:
            output(
                f"{spec.dlq_logical_id}Url",
                queues.dead_letter_queue(spec).queue_url,
                f"DLQ of {spec.logical_id}",
            )
            output(
                f"{spec.dlq_logical_id}Arn",
                queues.dead_letter_queue(spec).queue_arn,
                f"DLQ of {spec.logical_id}",
            )
        output(
            "AsyncFailureQueueUrl", queues.async_failures.queue_url, "Failed scheduled and event-driven runs"
        )
        output("EventBusName", events.bus.event_bus_name, "Subscribe to QBO Link's events on this bus")
        for function in manifest.FUNCTIONS:
            output(f"{function.logical_id}Name", functions[function.name].function_name, function.description)
