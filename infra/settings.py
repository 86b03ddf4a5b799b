"""The deployment's settings: what a deployment of QBO Link chooses, checked once.

The project's own app reads them from CDK context (``cdk.json`` or ``-c key=value``, never from the
environment of the machine that synthesizes; ``DeploymentSettings.from_context``); a host app that
composes ``infra.QboLink`` into its own CDK app builds them directly (``DeploymentSettings(...)``).

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
``qbo-link:consoleFrameAncestors``   comma-separated https origins that may frame the console
                                     (its CSP's frame-ancestors, besides itself; docs/console.md)
===================================  ===========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import aws_logs as logs

CONTEXT_PREFIX: Final = "qbo-link:"
# An origin a browser compares with a frame's ancestors: what the console's CSP may name.
_ORIGIN: Final = re.compile(
    r"^https://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$"
)
DEPLOYABLE_ENVIRONMENTS: Final = ("sandbox", "production")


class DeploymentSettingsError(ValueError):
    """A setting is missing or wrong; the message names its context key."""


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _items(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(_text(v) for v in value if _text(v))
    return tuple(item.strip() for item in _text(value).split(",") if item.strip())


@dataclass(frozen=True)
class DeploymentSettings:
    """What one deployment chooses; every field has the default of the context key of the same name.

    - ``intuit_environment``: ``sandbox`` or ``production`` (``local`` is the local stack's alone);
    - ``app_id``: the Intuit app id, for the reconnect URL (may stay empty);
    - ``return_url_allowlist``: ``https://`` prefixes a connect flow may send the browser back to;
    - ``jwt_issuer`` with ``jwt_audience``: a second HTTP API with the tenant routes behind a JWT
      authorizer;
    - ``alarm_email``: an address subscribed to the alarm topic;
    - ``log_retention_days``: function and access logs (one of CloudWatch's values);
    - ``api_rate_limit``, ``api_burst_limit``: the HTTP API's throttle per stage;
    - ``events_url``: the host app's ``https://`` endpoint every event is also POSTed to, signed
      (docs/events.md); empty: delivery is off (its rule disabled, its function's trigger paused);
    - ``console_frame_ancestors``: ``https://`` origins (scheme, host, optional port; no path, no
      wildcard) allowed to frame the console besides the console itself (docs/console.md).

    A wrong value raises ``DeploymentSettingsError`` naming the context key.
    """

    intuit_environment: str = "sandbox"
    app_id: str = ""
    return_url_allowlist: tuple[str, ...] = ()
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    alarm_email: str | None = None
    log_retention_days: int = 30
    api_rate_limit: int = 50
    api_burst_limit: int = 100
    events_url: str = ""
    console_frame_ancestors: tuple[str, ...] = ()

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

        for origin in self.console_frame_ancestors:
            if not _ORIGIN.fullmatch(origin):
                raise DeploymentSettingsError(
                    f"{CONTEXT_PREFIX}consoleFrameAncestors: {origin!r} is not an https origin "
                    "(https://host or https://host:port, lower case, no path, no wildcard)"
                )

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
            console_frame_ancestors=_items(value("consoleFrameAncestors")),
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
