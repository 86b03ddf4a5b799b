"""QBO Link as one CDK construct, ``QboLink``: in the project's own stack (``infra.stack``) or in any
stack of a host app's own CDK app (docs/deploy.md, "In your own CDK app")::

    from infra import DeploymentSettings, QboLink

    qbo = QboLink(
        stack,
        "QboLink",
        settings=DeploymentSettings(intuit_environment="production"),
        event_bus=events.EventBus.from_event_bus_name(stack, "Bus", "my-app"),  # else one is created
        tokens_key=kms.Key.from_key_arn(stack, "Key", key_arn),  # else one is created
        alarm_topic=sns.Topic.from_topic_arn(stack, "Alarms", topic_arn),  # else one is created
        name_prefix="acme-",  # acme-qbo-link, alias/acme-qbo-link-tokens, acme-<stack>-overview
    )
    qbo.redirect_uri, qbo.webhook_url, qbo.api_url, qbo.event_bus, ...

Everything it builds comes from the deployment manifest (``infra.manifest``, ``infra.tables``), one
construct per feature (``infra.constructs``).  The stateful resources (tables, the tokens key, queues,
secrets, the bus) keep the manifest's logical ids wherever the construct sits in the tree, so moving
it never replaces them; hence one ``QboLink`` per stack.  It makes no ``CfnOutput``: its outputs are
attributes, and the stack decides what to export (``infra.constructs.outputs`` for the project's own).
cdk-nag's acknowledgements travel with the resources they concern, so a host app that runs cdk-nag
(``Validations.of(app).add_plugins(AwsSolutionsChecks(app))``) gets no finding from QBO Link's side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aws_cdk import Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import bundle, manifest
from infra.constructs.api import (
    CALLBACK_PATH,
    CONSOLE_PATH,
    DISCONNECT_PATH,
    RECONNECT_PATH,
    WEBHOOK_PATH,
    Api,
    ApiSettings,
)
from infra.constructs.data import Data
from infra.constructs.events import Events
from infra.constructs.functions import Functions, LambdaDefaults
from infra.constructs.monitoring import MonitoredQueue, Monitoring, metrics_namespace
from infra.constructs.queues import ASYNC_FAILURES_LOGICAL_ID, Queues
from infra.constructs.secrets import Secrets
from infra.settings import DeploymentSettings
from shared.kernel import constants

# What a prefix may hold: the characters every named resource accepts (an event bus, a KMS alias, a
# CloudWatch dashboard).
_NAME_PREFIX: Final = re.compile(r"[A-Za-z0-9_-]{0,64}")


@dataclass(frozen=True)
class CodeAsset:
    """What the functions run: the staged handler code and the dependency layer (``infra.bundle``)."""

    code_dir: Path
    layer_dir: Path
    runtime_name: str
    architecture_name: str


def bundled_asset(*, build_dir: Path | None = None) -> CodeAsset:
    """The code asset and the dependency layer of the QBO Link this interpreter imports (a checkout,
    or the installed package), built by ``infra.bundle`` into ``build_dir`` (default: the checkout's
    ``.build/``, or ``~/.cache/qbo-link`` for an installed package; ``bundle.default_build_dir``)."""
    return CodeAsset(
        code_dir=bundle.code_dir(build_dir=build_dir),
        layer_dir=bundle.dependency_layer_dir(build_dir=build_dir),
        runtime_name=bundle.LAMBDA_RUNTIME_NAME,
        architecture_name=bundle.ARCHITECTURE,
    )


@dataclass(frozen=True)
class ResourceNames:
    """The physical names QBO Link gives, each ``prefix`` followed by the project's own name: the
    event bus (``qbo-link``), the tokens key's alias (``alias/qbo-link-tokens``) and the dashboard
    (``<stack name>-overview``).  Everything else is named by CloudFormation."""

    prefix: str = ""

    def __post_init__(self) -> None:
        if not _NAME_PREFIX.fullmatch(self.prefix):
            raise ValueError(
                f"name_prefix {self.prefix!r}: at most 64 letters, digits, '-' or '_' "
                "(what an event bus, a KMS alias and a dashboard name all accept)"
            )

    @property
    def event_bus(self) -> str:
        return self.prefix + manifest.EVENT_BUS_DEFAULT_NAME

    @property
    def tokens_key_alias(self) -> str:
        return "alias/" + self.prefix + manifest.TOKENS_KEY_ALIAS.removeprefix("alias/")

    def dashboard(self, stack_name: str) -> str:
        return f"{self.prefix}{stack_name}-overview"


class QboLink(Construct):
    """The whole of QBO Link: tables, tokens key, queues, secrets, functions, HTTP API(s), event bus,
    schedules, alarms and dashboard.

    Keyword arguments, all optional:

    - ``settings``: the deployment's choices (``infra.settings.DeploymentSettings``; default: Intuit's
      sandbox, no JWT API, no alarm e-mail, 30 days of logs);
    - ``event_bus``: the bus QBO Link publishes its events to (source ``qbo-link``, docs/events.md) and
      where its onboarding rule listens; default: a new bus named ``<name_prefix>qbo-link``;
    - ``tokens_key``: the KMS key that encrypts the OAuth tokens and the connections table; default: a
      new key with yearly rotation, retained, aliased ``alias/<name_prefix>qbo-link-tokens``.  A key
      brought here must let IAM policies of its account grant its use (a CDK key's default policy
      does); only the functions that call QBO may use it directly, with the token encryption context;
    - ``alarm_topic``: the SNS topic every alarm notifies (if it is encrypted, its key must let
      CloudWatch use it); default: a new topic under its own key;
    - ``name_prefix``: put before each name QBO Link gives (``ResourceNames``), for a second
      deployment in the same account and region; default none;
    - ``asset``: the code and the dependency layer (``CodeAsset``); default ``bundled_asset()``.

    Its outputs are the attributes below (tokens until deployment, like any CDK attribute).
    """

    settings: DeploymentSettings
    names: ResourceNames
    api_url: str  # the tenant API's base URL (IAM, SigV4), with a trailing slash
    jwt_api_url: str | None  # the JWT tenant API's, when the settings ask for it
    redirect_uri: str  # Intuit's portal: Keys & OAuth > Redirect URIs (the OAuth callback)
    webhook_url: str  # Intuit's portal: Webhooks > Endpoint URL
    disconnect_url: str  # Intuit's portal: app settings > Disconnect URL
    reconnect_url: str  # Intuit's portal: app settings > Launch/Reconnect URL
    console_url: str  # the administrator console on the tenant API (docs/console.md), trailing slash
    http_api: apigwv2.HttpApi
    jwt_http_api: apigwv2.HttpApi | None
    event_bus: events.IEventBus  # where QBO Link's events go (source qbo-link), given or created
    tokens_key: kms.IKey  # given or created
    alarm_topic: sns.ITopic  # given or created
    functions: Mapping[str, lambda_.Function]  # by manifest name: api, oauth, webhooks, push, ...
    tables: Mapping[str, dynamodb.Table]  # by the manifest's logical id: ConnectionsTable, ...
    secrets: Mapping[str, secretsmanager.Secret]  # by logical id: IntuitAppSecret, ...
    queues: Mapping[str, sqs.Queue]  # the work queues by logical id: PushQueue, ChangesQueue, DeliveryQueue
    dead_letter_queues: Mapping[str, sqs.Queue]  # by the logical id of their work queue
    async_failure_queue: sqs.Queue  # failed scheduled and event-driven runs
    alarms: Mapping[str, cloudwatch.Alarm]
    dashboard: cloudwatch.Dashboard

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploymentSettings | None = None,
        event_bus: events.IEventBus | None = None,
        tokens_key: kms.IKey | None = None,
        alarm_topic: sns.ITopic | None = None,
        name_prefix: str = "",
        asset: CodeAsset | None = None,
    ) -> None:
        # Refused before anything joins the tree.
        names = ResourceNames(name_prefix)
        stack = Stack.of(scope)
        _refuse_a_second_in(stack)
        super().__init__(scope, construct_id)
        self.names = names
        self.settings = settings or DeploymentSettings()
        data = Data(self, "Data", tokens_key=tokens_key, key_alias=self.names.tokens_key_alias)
        queues = Queues(self, "Queues")
        secrets = Secrets(self, "Secrets")
        triggers = Events(self, "Events", bus=event_bus, bus_name=self.names.event_bus)
        api = Api(self, "Api", settings=self._api_settings())
        functions = self._functions(
            asset or bundled_asset(), data=data, queues=queues, secrets=secrets, triggers=triggers, api=api
        )
        api.add_routes(functions.functions)
        triggers.add_triggers(dict(functions.functions), queues.async_failures)
        delivering = bool(self.settings.events_url)  # else the rule and the deliverer stay dormant
        triggers.add_delivery_rule(
            queues.queue(manifest.DELIVERY_QUEUE), queues.async_failures, enabled=delivering
        )
        monitoring = Monitoring(
            self,
            "Monitoring",
            functions=functions.functions,
            queues=_monitored(queues),
            http_api=api.http_api,
            dashboard_name=self.names.dashboard(stack.stack_name),
            alarm_topic=alarm_topic,
            alarm_email=self.settings.alarm_email,
        )
        self._expose(
            api,
            data=data,
            queues=queues,
            secrets=secrets,
            triggers=triggers,
            functions=functions,
            monitoring=monitoring,
        )

    def _api_settings(self) -> ApiSettings:
        return ApiSettings(
            rate_limit=self.settings.api_rate_limit,
            burst_limit=self.settings.api_burst_limit,
            log_retention=self.settings.log_retention,
            jwt_issuer=self.settings.jwt_issuer,
            jwt_audience=self.settings.jwt_audience,
        )

    def _expose(
        self,
        api: Api,
        *,
        data: Data,
        queues: Queues,
        secrets: Secrets,
        triggers: Events,
        functions: Functions,
        monitoring: Monitoring,
    ) -> None:
        """The attributes a stack reads (the class lists them)."""
        self.api_url = api.url
        self.jwt_api_url = api.jwt_url
        self.redirect_uri = api.url_of(CALLBACK_PATH)
        self.webhook_url = api.url_of(WEBHOOK_PATH)
        self.disconnect_url = api.url_of(DISCONNECT_PATH)
        self.reconnect_url = api.url_of(RECONNECT_PATH)
        self.console_url = api.url_of(CONSOLE_PATH) + "/"
        self.http_api = api.http_api
        self.jwt_http_api = api.jwt_api
        self.event_bus = triggers.bus
        self.tokens_key = data.tokens_key
        self.alarm_topic = monitoring.topic
        self.functions = dict(functions.functions)
        self.tables = dict(data.tables)
        self.secrets = dict(secrets.secrets)
        self.queues = dict(queues.queues)
        self.dead_letter_queues = dict(queues.dead_letter_queues)
        self.async_failure_queue = queues.async_failures
        self.alarms = dict(monitoring.alarms)
        self.dashboard = monitoring.dashboard

    def _functions(
        self, asset: CodeAsset, *, data: Data, queues: Queues, secrets: Secrets, triggers: Events, api: Api
    ) -> Functions:
        """The dependency layer and every function, all with the same Lambda defaults."""
        # The one place for Lambda defaults: every function and the layer take them from here.
        defaults = LambdaDefaults(
            runtime_name=asset.runtime_name,
            architecture_name=asset.architecture_name,
            log_retention=self.settings.log_retention,
            powertools={
                "POWERTOOLS_SERVICE_NAME": constants.SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace(),
                # Tokens and QBO data must not reach traces, whatever a decorator says.
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
                "POWERTOOLS_LOGGER_LOG_EVENT": "false",
            },
        )
        dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(asset.layer_dir)),
            compatible_runtimes=[defaults.runtime],
            compatible_architectures=[defaults.architecture],
            description="QBO Link's third-party Python packages",
        )
        return Functions(
            self,
            "Functions",
            defaults=defaults,
            code=lambda_.Code.from_asset(str(asset.code_dir)),
            dependencies=dependencies,
            data=data,
            queues=queues,
            secrets=secrets,
            bus=triggers.bus,
            settings_env={
                "QBO_LINK_INTUIT_ENVIRONMENT": self.settings.intuit_environment,
                "QBO_LINK_REDIRECT_URI": api.url_of(CALLBACK_PATH),
                "QBO_LINK_RETURN_URL_ALLOWLIST": ",".join(self.settings.return_url_allowlist),
                "QBO_LINK_APP_ID": self.settings.app_id,
            },
            # Delivery off: the deliverer's trigger is paused too (what waits stays in its queue).
            events_url=self.settings.events_url,
            console_frame_ancestors=self.settings.console_frame_ancestors,
            paused=() if self.settings.events_url else (manifest.DELIVER.name,),
        )


def _refuse_a_second_in(stack: Stack) -> None:
    """The manifest's logical ids are fixed, so two in one stack would claim the same ones."""
    for other in stack.node.find_all():
        if isinstance(other, QboLink) and Stack.of(other).node.path == stack.node.path:
            raise ValueError(
                f"{stack.node.path} already holds QBO Link ({other.node.path}): one per stack, since "
                "its tables, key, queues and secrets keep the manifest's logical ids"
            )


def _monitored(queues: Queues) -> list[MonitoredQueue]:
    """Every work queue (watched for age) and every dead-letter queue (watched for any message)."""
    monitored = [
        MonitoredQueue(spec.logical_id, queues.queue(spec), dead_letter=False) for spec in manifest.QUEUES
    ]
    monitored += [
        MonitoredQueue(spec.dlq_logical_id, queues.dead_letter_queue(spec), dead_letter=True)
        for spec in manifest.QUEUES
    ]
    monitored.append(MonitoredQueue(ASYNC_FAILURES_LOGICAL_ID, queues.async_failures, dead_letter=True))
    return monitored
