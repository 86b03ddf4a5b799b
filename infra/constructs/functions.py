"""The Lambda functions of ``infra.manifest.FUNCTIONS``, with the stack's Lambda defaults in one place.

Defaults (``LambdaDefaults``): one runtime and architecture (those the dependency layer is built for),
JSON logs into a log group with a retention, active X-Ray tracing, Powertools settings; memory, timeout
and reserved concurrency come from each ``FunctionSpec``.  Every function runs the same code asset
(``functions/`` + ``shared/``) over the same dependency layer, so the deployed handlers import exactly
what the tests import.

Access is only what the spec declares, each through a grant: the tables it reads or writes, the tokens
key if it calls QBO (``tokens``), its secrets, the queues it sends to, the event bus if it publishes,
the DLQ of its queue if it gives messages up itself (``paces_retries``).
Its environment is ``infra.manifest.function_environment`` (names of what it may touch, never a secret)
plus the plain settings every function that parses them reads (``shared.kernel.settings``; not the
console's static files, ``reads_settings``).

A function named in ``paused`` keeps its queue trigger disabled (the deliverer while the stack has no
endpoint for the events): what waits in its queue stays there until the trigger is enabled again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import manifest
from infra.constructs.data import Data
from infra.constructs.queues import Queues
from infra.constructs.secrets import Secrets
from infra.manifest import FunctionSpec, QueueSource

ASYNC_RETRY_ATTEMPTS: Final = 2  # Lambda's own retries of a scheduled or event-driven run
ASYNC_MAX_EVENT_AGE: Final = Duration.hours(6)


@dataclass(frozen=True)
class LambdaDefaults:
    """What every function shares; the one place to change a runtime, an architecture or a log level."""

    runtime_name: str  # e.g. python3.13: the dependency layer's target
    architecture_name: str  # arm64 or x86_64: the dependency layer's target
    log_retention: logs.RetentionDays
    log_level: str = "INFO"
    powertools: Mapping[str, str] = field(default_factory=dict)

    @property
    def runtime(self) -> lambda_.Runtime:
        return lambda_.Runtime(self.runtime_name, lambda_.RuntimeFamily.PYTHON)

    @property
    def architecture(self) -> lambda_.Architecture:
        return (
            lambda_.Architecture.ARM_64 if self.architecture_name == "arm64" else lambda_.Architecture.X86_64
        )


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        defaults: LambdaDefaults,
        code: lambda_.Code,
        dependencies: lambda_.ILayerVersion,
        data: Data,
        queues: Queues,
        secrets: Secrets,
        bus: events.IEventBus,
        settings_env: Mapping[str, str],
        events_url: str = "",
        console_frame_ancestors: tuple[str, ...] = (),
        paused: Collection[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self._defaults = defaults
        self._data = data
        self._queues = queues
        self._secrets = secrets
        self._bus = bus
        self._paused = frozenset(paused)
        names = manifest.Names(
            tables={logical_id: t.table_name for logical_id, t in data.tables.items()},
            queue_urls={
                **{logical_id: q.queue_url for logical_id, q in queues.queues.items()},
                **{spec.dlq_logical_id: queues.dead_letter_queue(spec).queue_url for spec in manifest.QUEUES},
            },
            secret_arns={logical_id: s.secret_arn for logical_id, s in secrets.secrets.items()},
            tokens_key=data.tokens_key.key_arn,
            event_bus=bus.event_bus_name,
            events_url=events_url,
            console_frame_ancestors=" ".join(console_frame_ancestors),
        )
        self.functions: dict[str, lambda_.Function] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        for spec in manifest.FUNCTIONS:
            environment = {
                **manifest.function_environment(spec, names),
                **(settings_env if spec.reads_settings else {}),
                **defaults.powertools,
                "POWERTOOLS_LOG_LEVEL": defaults.log_level,
            }
            self.functions[spec.name] = self._function(spec, code, dependencies, environment)

    def function(self, spec: FunctionSpec) -> lambda_.Function:
        return self.functions[spec.name]

    def _function(
        self,
        spec: FunctionSpec,
        code: lambda_.Code,
        dependencies: lambda_.ILayerVersion,
        environment: Mapping[str, str],
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{spec.logical_id}Logs",
            retention=self._defaults.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Our own role: no managed policy, logs only into the function's own group.
        role = iam.Role(
            self,
            f"{spec.logical_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"QBO Link {spec.name} function: only what infra/manifest.py declares",
        )
        log_group.grant_write(role)
        asynchronous = bool(spec.schedules or spec.event_rules)
        function = lambda_.Function(
            self,
            spec.logical_id,
            description=spec.description,
            code=code,
            handler=spec.handler,
            runtime=self._defaults.runtime,
            architecture=self._defaults.architecture,
            layers=[dependencies],
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            reserved_concurrent_executions=spec.reserved_concurrency,
            environment=dict(environment),
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel(self._defaults.log_level),
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            # Lambda's own segments only: the code has no X-Ray SDK (docs/packaging.md, "Cold start").
            tracing=lambda_.Tracing.ACTIVE,
            # Scheduled and event-driven runs are invoked asynchronously: retried by Lambda, then kept.
            retry_attempts=ASYNC_RETRY_ATTEMPTS if asynchronous else None,
            max_event_age=ASYNC_MAX_EVENT_AGE if asynchronous else None,
            on_failure=destinations.SqsDestination(self._queues.async_failures) if asynchronous else None,
        )
        self.log_groups[spec.name] = log_group
        self._grant(spec, function)
        self._acknowledge(spec, function, role)
        if spec.queue_source is not None:
            self._consume(spec, spec.queue_source, function)
        return function

    def _consume(self, spec: FunctionSpec, source: QueueSource, function: lambda_.Function) -> None:
        """Lambda's SQS trigger, reporting partial batch failures; disabled while ``spec`` is paused."""
        function.add_event_source(
            sources.SqsEventSource(
                self._queues.queue(source.queue),
                batch_size=source.batch_size,
                report_batch_item_failures=True,
                max_concurrency=source.max_concurrency,
                enabled=spec.name not in self._paused,
            )
        )

    def _grant(self, spec: FunctionSpec, function: lambda_.Function) -> None:
        for table in spec.tables:
            self._data.grant_table(function, table, write=table in spec.writes)
        if spec.tokens:
            self._data.grant_tokens(function)
        for secret in spec.secrets:
            self._secrets.secret(secret).grant_read(function)
        for queue in spec.sends_to:
            self._queues.queue(queue).grant_send_messages(function)
        if spec.queue_source is not None and spec.queue_source.paces_retries:
            self._queues.dead_letter_queue(spec.queue_source.queue).grant_send_messages(function)
        if spec.puts_events:
            self._bus.grant_put_events_to(function)

    def _acknowledge(self, spec: FunctionSpec, function: lambda_.Function, role: iam.Role) -> None:
        acknowledgments = [
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray's PutTraceSegments and PutTelemetryRecords (active tracing) take no resource: "
                "the only statement on '*' in this role",
            ),
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{table.logical_id}.Arn>/index/*]",
                    reason=f"Queries on {table.logical_id}'s own global secondary indexes "
                    "(infra/tables.py); the grant stays within that table",
                )
                for table in spec.tables
                if table.indexes
            ),
        ]
        Validations.of(role).acknowledge(*acknowledgments)
        Validations.of(function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason=f"{self._defaults.runtime_name} is the runtime the dependency layer is built for "
                "(infra/bundle.py LAMBDA_RUNTIME_NAME); the runtime moves with the layer, not alone",
            )
        )
