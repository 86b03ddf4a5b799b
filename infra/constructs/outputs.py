"""The project's stack outputs: every URL the operator enters in Intuit's developer portal, and the
names they use to fill secrets, redrive queues and read or invoke functions (docs/deploy.md).

A host app's stack exports what it chooses from the ``QboLink`` construct's attributes; this is the
project's own stack's choice, with fixed output ids for ``aws cloudformation describe-stacks``.
"""

from __future__ import annotations

from aws_cdk import CfnOutput
from constructs import Construct

from infra import manifest
from infra.qbo_link import QboLink


class Outputs(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, qbo_link: QboLink) -> None:
        super().__init__(scope, construct_id)

        def output(name: str, value: str, description: str) -> None:
            # Stack-level output ids: stable names for `aws cloudformation describe-stacks` queries.
            CfnOutput(self, name, value=value, description=description).override_logical_id(name)

        output("ApiUrl", qbo_link.api_url, "Base URL of the tenant API (IAM, SigV4)")
        if qbo_link.jwt_api_url is not None:
            output("JwtApiUrl", qbo_link.jwt_api_url, "Base URL of the tenant API for JWT callers")
        output(
            "ConsoleUrl", qbo_link.console_url, "The administrator console (open it with a console session)"
        )
        output("RedirectUri", qbo_link.redirect_uri, "Intuit portal: Keys & OAuth > Redirect URIs")
        output("WebhookUrl", qbo_link.webhook_url, "Intuit portal: Webhooks > Endpoint URL")
        output("DisconnectUrl", qbo_link.disconnect_url, "Intuit portal: app settings > Disconnect URL")
        output("ReconnectUrl", qbo_link.reconnect_url, "Intuit portal: app settings > Launch/Reconnect URL")
        for secret in manifest.SECRETS:
            name = qbo_link.secrets[secret.logical_id].secret_name
            output(f"{secret.logical_id}Name", name, secret.description)
        for spec in manifest.QUEUES:
            dlq = qbo_link.dead_letter_queues[spec.logical_id]
            output(f"{spec.dlq_logical_id}Url", dlq.queue_url, f"DLQ of {spec.logical_id}")
            output(f"{spec.dlq_logical_id}Arn", dlq.queue_arn, f"DLQ of {spec.logical_id}")
        output(
            "AsyncFailureQueueUrl",
            qbo_link.async_failure_queue.queue_url,
            "Failed scheduled and event-driven runs",
        )
        bus_name = qbo_link.event_bus.event_bus_name
        output("EventBusName", bus_name, "Subscribe to QBO Link's events on this bus")
        for function in manifest.FUNCTIONS:
            output(
                f"{function.logical_id}Name",
                qbo_link.functions[function.name].function_name,
                function.description,
            )
