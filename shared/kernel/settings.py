"""Settings of a deployed (or local) QBO Link, parsed once per process.

Plain configuration comes from environment variables set by the CDK stack or ``qbo-link dev``;
secrets (Intuit's client secret, the OAuth-state signing key) come from Secrets Manager when an ARN
is configured, and only in the local stack from environment variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from shared.kernel import constants


class IntuitEnvironment(StrEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"  # Intuit's own sandbox companies
    LOCAL = "local"  # qbo_sandbox on loopback


class SettingsError(ValueError):
    """The configuration is missing or wrong; the message names the setting."""


class GovernorLimits(BaseModel):
    """Per-realm budgets the rate governor keeps below Intuit's limits:
    https://developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: int = Field(default=450, ge=1)
    concurrent: int = Field(default=8, ge=1)
    batch_per_minute: int = Field(default=36, ge=1)
    requests_per_second: int = Field(default=9, ge=1)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    intuit_environment: IntuitEnvironment = IntuitEnvironment.LOCAL
    local_sandbox_url: str = "http://127.0.0.1:8800"
    # The Intuit app's keys and our OAuth callback: only the functions that call Intuit's token
    # endpoint are given them (infra/manifest.py); IntuitOAuth refuses to start without them.
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    redirect_uri: str = ""  # our OAuth callback, registered at Intuit
    return_url_allowlist: tuple[str, ...] = ()  # prefixes a connect flow may send the browser back to
    app_id: str = ""  # Intuit app id, for the reconnect URL
    # Only the functions that sign OAuth states have it (api, oauth); StateCodec refuses an empty key.
    state_signing_key: SecretStr = SecretStr("")
    state_ttl_seconds: int = Field(default=600, ge=30, le=3600)
    # PKCE (RFC 7636, S256) on every consent: Intuit does not document it, and RFC 6749 §3.1 has a
    # server ignore parameters it does not know; QBO_LINK_OAUTH_PKCE=false turns it off should
    # Intuit ever refuse them (docs/connections.md).
    oauth_pkce: bool = True
    minor_version: int = Field(default=75, ge=75)
    connections_table: str = "qbo-link-connections"
    runtime_table: str = "qbo-link-runtime"
    links_table: str = "qbo-link-links"
    posting_log_table: str = "qbo-link-posting-log"
    push_queue_url: str = ""  # the push FIFO queue; only the functions that enqueue pushes have it
    changes_queue_url: str = ""  # the changes FIFO queue; the sweep enqueues its requests there
    kms_key_id: str = "alias/qbo-link-tokens"
    event_bus_name: str = "qbo-link"
    governor: GovernorLimits = GovernorLimits()
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    # The change worker's pacing (shared.pull.changes.PullTiming): at most one CDC read of a tenant
    # per interval; a read waits until its oldest notice is ``gather`` old (one read for a burst of
    # changes, our own postings recorded meanwhile); the clock margin between QBO's stamps and ours.
    pull_min_read_interval_seconds: float = Field(default=8.0, ge=0, le=60)
    pull_gather_seconds: float = Field(default=6.0, ge=0, le=60)
    pull_skew_seconds: float = Field(default=0.5, ge=0, le=300)

    @field_validator("return_url_allowlist")
    @classmethod
    def _absolute(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            if not prefix.startswith(("https://", "http://127.0.0.1", "http://localhost")):
                raise ValueError(f"return URL prefix must be https (or loopback http): {prefix}")
        return value


_PULL_TIMING_ENV = {
    "pull_min_read_interval_seconds": "QBO_LINK_PULL_MIN_READ_INTERVAL",
    "pull_gather_seconds": "QBO_LINK_PULL_GATHER",
    "pull_skew_seconds": "QBO_LINK_PULL_SKEW",
}


def _secret_json(arn: str) -> dict[str, Any]:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(arn, max_age=300)
    data = json.loads(value) if isinstance(value, str) else value
    if not isinstance(data, dict):
        raise SettingsError(f"secret {arn} must hold a JSON object")
    return data


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Build settings from environment variables (``QBO_LINK_*`` and the table/queue names)."""
    raw: dict[str, Any] = {
        "intuit_environment": env.get("QBO_LINK_INTUIT_ENVIRONMENT", "local"),
        "local_sandbox_url": env.get("QBO_LINK_LOCAL_SANDBOX_URL", "http://127.0.0.1:8800"),
        "redirect_uri": env.get("QBO_LINK_REDIRECT_URI", ""),
        "return_url_allowlist": tuple(
            u for u in env.get("QBO_LINK_RETURN_URL_ALLOWLIST", "").split(",") if u
        ),
        "app_id": env.get("QBO_LINK_APP_ID", ""),
        "connections_table": env.get(constants.CONNECTIONS_TABLE_ENV, "qbo-link-connections"),
        "runtime_table": env.get(constants.RUNTIME_TABLE_ENV, "qbo-link-runtime"),
        "links_table": env.get(constants.LINKS_TABLE_ENV, "qbo-link-links"),
        "posting_log_table": env.get(constants.POSTING_LOG_TABLE_ENV, "qbo-link-posting-log"),
        "push_queue_url": env.get(constants.PUSH_QUEUE_URL_ENV, ""),
        "changes_queue_url": env.get(constants.CHANGES_QUEUE_URL_ENV, ""),
        "kms_key_id": env.get(constants.KMS_KEY_ENV, "alias/qbo-link-tokens"),
        "event_bus_name": env.get(constants.EVENT_BUS_ENV, "qbo-link"),
    }
    if env.get("QBO_LINK_OAUTH_PKCE"):
        raw["oauth_pkce"] = env["QBO_LINK_OAUTH_PKCE"]
    for setting, variable in _PULL_TIMING_ENV.items():
        if env.get(variable):
            raw[setting] = env[variable]
    intuit_arn = env.get(constants.INTUIT_SECRET_ARN_ENV)
    if intuit_arn:
        secret = _secret_json(intuit_arn)
        raw["client_id"] = secret.get("client_id", "")
        raw["client_secret"] = secret.get("client_secret", "")
    else:  # the local stack only
        raw["client_id"] = env.get("QBO_LINK_CLIENT_ID", "")
        raw["client_secret"] = env.get("QBO_LINK_CLIENT_SECRET", "")
    state_arn = env.get(constants.STATE_SECRET_ARN_ENV)
    if state_arn:
        raw["state_signing_key"] = _secret_json(state_arn).get("key", "")
    else:
        raw["state_signing_key"] = env.get("QBO_LINK_STATE_SIGNING_KEY", "")
    try:
        return Settings.model_validate(raw)
    except ValueError as exc:
        raise SettingsError(f"invalid QBO Link configuration: {exc}") from exc


@cache
def get_settings() -> Settings:
    """The process's settings, parsed on first use (never at import)."""
    return settings_from_env(os.environ)


# --- the webhooks function ----------------------------------------------------------------------


class WebhookSettings(BaseModel):
    """What the webhooks function needs, and nothing more (no OAuth client or state key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verifier_token: SecretStr
    changes_queue_url: str = Field(min_length=1)
    runtime_table: str = "qbo-link-runtime"


def webhook_settings_from_env(env: Mapping[str, str]) -> WebhookSettings:
    """The verifier token from the webhook secret (``verifier_token``) when its ARN is set, else
    (the local stack) from ``QBO_LINK_WEBHOOK_VERIFIER_TOKEN``; an empty token is an error."""
    arn = env.get(constants.WEBHOOK_SECRET_ARN_ENV) or env.get(constants.INTUIT_SECRET_ARN_ENV)
    if arn:
        from aws_lambda_powertools.utilities import parameters

        secret = parameters.get_secret(arn, max_age=300, transform="json")
        token = str(secret.get("verifier_token", "")) if isinstance(secret, dict) else ""
    else:
        token = env.get(constants.VERIFIER_TOKEN_ENV, "")
    if not token:
        raise SettingsError("the webhook verifier token is not configured")
    try:
        return WebhookSettings(
            verifier_token=SecretStr(token),
            changes_queue_url=env.get(constants.CHANGES_QUEUE_URL_ENV, ""),
            runtime_table=env.get(constants.RUNTIME_TABLE_ENV, "qbo-link-runtime"),
        )
    except ValueError as exc:
        raise SettingsError(f"invalid webhook configuration: {exc}") from exc
