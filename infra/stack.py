"""The QBO Link stack: one construct per feature, everything derived from ``infra/manifest.py`` and
``infra/tables.py``.

Deployment settings come from CDK context (``cdk.json`` or ``-c key=value``), never from the
environment of the machine that synthesizes:

===================================  ===========================================================
``qbo-link:intuitEnvironment``       ``sandbox`` (Intuit's sandbox companies) or ``production``
``qbo-link:appId``                   the Intuit app id (builds the reconnect URL); may stay empty
``qbo-link:returnUrlAllowlist``      comma-separated https prefixes a connect flow may return to
``qbo-link:jwtIssuer``               enables the JWT tenant API with this issuer ...
``qbo-link:jwtAudience``             ... and these comma-separated audiences
``qbo-link:alarmEmail``              subscribes this address to the alarm topic
``qbo-link:logRetentionDays``        retention of function and access logs (default 30)
``qbo-link:apiRateLimit``            HTTP API steady rate per stage, requests/s (default 50)
``qbo-link:apiBurstLimit``           HTTP API burst (default 100)
``qbo-link:eventsUrl``               the host app's https endpoint every event is also delivered to
                                     (docs/events.md); empty (default): delivery is off, dormant
===================================  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aws_cdk import Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import manifest
from shared.kernel import constants

if TYPE_CHECKING:
    from infra.constructs.functions import Functions
    from infra.constructs.monitoring import MonitoredQueue

CONTEXT_PREFIX: Final = "qbo-link:"
DEPLOYABLE_ENVIRONMENTS: Final = ("sandbox", "production")


class DeploymentSettingsError(ValueError):
    """A context value is missing or wrong; the message names it."""


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _items(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(_text(v) for v in value if _text(v))
    return tuple(item.strip() for item in _text(value).split(",") if item.strip())


@dataclass(frozen=True)
class DeploymentSettings:
    intuit_environment: str = "sandbox"
    app_id: str = ""
    return_url_allowlist: tuple[str, ...] = ()
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    alarm_email: str | None = None
    log_retention_days: int = 30
    api_rate_limit: int = 50
    api_burst_limit: int = 100
    events_url: str = ""  # the host app's endpoint for the events; "" = delivery off

    def __post_init__(self) -> None:
        if self.intuit_environment not in DEPLOYABLE_ENVIRONMENTS:
            raise DeploymentSettingsError(
                f"{CONTEXT_PREFIX}intuitEnvironment must be one of {DEPLOYABLE_ENVIRONMENTS}, "
                f"not {self.intuit_environment!r}"
            )
        for prefix in self.return_url_allowlist:
            if not prefix.startswith("https://"):
                raise DeploymentSettingsError(f"{CONTEXT_PREFIX}returnUrlAllowlist: {prefix!r} is not https")
        if self.jwt_issuer and not self.jwt_audience:
            raise DeploymentSettingsError(f"{CONTEXT_PREFIX}jwtIssuer needs {CONTEXT_PREFIX}jwtAudience")
        if self.log_retention_days not in _RETENTIONS:
            raise DeploymentSettingsError(
                f"{CONTEXT_PREFIX}logRetentionDays must be one of CloudWatch's {sorted(_RETENTIONS)}"
            )
        if self.api_rate_limit < 1 or self.api_burst_limit < 1:
            raise DeploymentSettingsError("the API's rate and burst limits must be positive")
        if self.events_url:
            from shared.delivery.endpoint import EndpointError, check_events_url

            try:
                check_events_url(self.events_url, loopback_http=False)
            except EndpointError as error:
                raise DeploymentSettingsError(f"{CONTEXT_PREFIX}eventsUrl: {error}") from None

    @classmethod
    def from_context(cls, get: Any) -> DeploymentSettings:
        """``get`` is ``node.try_get_context``: one lookup per ``qbo-link:`` key."""

        def value(name: str) -> Any:
            return get(CONTEXT_PREFIX + name)

        def number(name: str, default: int) -> int:
            raw = _text(value(name))
            try:
                return int(raw) if raw else default
            except ValueError:
                raise DeploymentSettingsError(f"{CONTEXT_PREFIX}{name} must be a whole number") from None

        return cls(
            intuit_environment=_text(value("intuitEnvironment")) or "sandbox",
            app_id=_text(value("appId")),
            return_url_allowlist=_items(value("returnUrlAllowlist")),
            jwt_issuer=_text(value("jwtIssuer")) or None,
            jwt_audience=_items(value("jwtAudience")),
            alarm_email=_text(value("alarmEmail")) or None,
            log_retention_days=number("logRetentionDays", 30),
            api_rate_limit=number("apiRateLimit", 50),
            api_burst_limit=number("apiBurstLimit", 100),
            events_url=_text(value("eventsUrl")),
        )

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTIONS[self.log_retention_days]


_RETENTIONS: Final = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


@dataclass(frozen=True)
class CodeAsset:
    """What the functions run: the staged handler code and the dependency layer (``infra.bundle``)."""

    code_dir: Path
    layer_dir: Path
    runtime_name: str
    architecture_name: str


class QboLinkStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        asset: CodeAsset,
        settings: DeploymentSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        from infra.constructs.api import Api, ApiSettings
        from infra.constructs.data import Data
        from infra.constructs.events import Events
        from infra.constructs.monitoring import Monitoring
        from infra.constructs.outputs import Outputs
        from infra.constructs.queues import Queues
        from infra.constructs.secrets import Secrets

        self.settings = settings
        self.data = Data(self, "Data")
        self.queues = Queues(self, "Queues")
        self.secrets = Secrets(self, "Secrets")
        self.events = Events(self, "Events")
        self.api = Api(
            self,
            "Api",
            settings=ApiSettings(
                rate_limit=settings.api_rate_limit,
                burst_limit=settings.api_burst_limit,
                log_retention=settings.log_retention,
                jwt_issuer=settings.jwt_issuer,
                jwt_audience=settings.jwt_audience,
            ),
        )
        self.functions = self._functions(asset, settings)
        self.api.add_routes(self.functions.functions)
        self.events.add_triggers(dict(self.functions.functions), self.queues.async_failures)
        self.events.add_delivery_rule(
            self.queues.queue(manifest.DELIVERY_QUEUE),
            self.queues.async_failures,
            enabled=bool(settings.events_url),
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            functions=self.functions.functions,
            queues=self._monitored_queues(),
            http_api=self.api.http_api,
            alarm_email=settings.alarm_email,
        )
        Outputs(
            self,
            "Outputs",
            api=self.api,
            secrets=self.secrets,
            queues=self.queues,
            events=self.events,
            functions=self.functions.functions,
        )

    def _functions(self, asset: CodeAsset, settings: DeploymentSettings) -> Functions:
        """The dependency layer and every function, all with the same Lambda defaults."""
        from infra.constructs.functions import Functions, LambdaDefaults
        from infra.constructs.monitoring import metrics_namespace
        from infra.constructs.outputs import CALLBACK_PATH

        # The one place for Lambda defaults: every function and the layer take them from here.
        defaults = LambdaDefaults(
            runtime_name=asset.runtime_name,
            architecture_name=asset.architecture_name,
            log_retention=settings.log_retention,
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
            data=self.data,
            queues=self.queues,
            secrets=self.secrets,
            bus=self.events.bus,
            settings_env={
                "QBO_LINK_INTUIT_ENVIRONMENT": settings.intuit_environment,
                "QBO_LINK_REDIRECT_URI": self.api.url_of(CALLBACK_PATH),
                "QBO_LINK_RETURN_URL_ALLOWLIST": ",".join(settings.return_url_allowlist),
                "QBO_LINK_APP_ID": settings.app_id,
            },
            # Delivery off: the deliverer's trigger is paused too (what waits stays in its queue).
            events_url=settings.events_url,
            paused=() if settings.events_url else (manifest.DELIVER.name,),
        )

    def _monitored_queues(self) -> list[MonitoredQueue]:
        """Every work queue (watched for age) and every dead-letter queue (watched for any message)."""
        from infra.constructs.monitoring import MonitoredQueue
        from infra.constructs.queues import ASYNC_FAILURES_LOGICAL_ID

        monitored = [
            MonitoredQueue(spec.logical_id, self.queues.queue(spec), dead_letter=False)
            for spec in manifest.QUEUES
        ]
        monitored += [
            MonitoredQueue(spec.dlq_logical_id, self.queues.dead_letter_queue(spec), dead_letter=True)
            for spec in manifest.QUEUES
        ]
        monitored.append(
            MonitoredQueue(ASYNC_FAILURES_LOGICAL_ID, self.queues.async_failures, dead_letter=True)
        )
        return monitored
