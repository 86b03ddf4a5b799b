"""The deliverer's settings, from its environment (``infra.manifest.function_environment``).

The endpoint (``EVENTS_URL``, empty when delivery is off), the signing secret's ARN, and the URLs of
the delivery queue and its DLQ.  The signing key itself is read from Secrets Manager when a batch
needs it and kept 5 minutes, so a rotated key is in use within 5 minutes without a deployment.
No pydantic here: the deliverer's cold start imports only this and the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from shared.delivery.endpoint import EndpointError, check_events_url
from shared.kernel import constants

REQUEST_TIMEOUT_SECONDS: Final = 10.0  # the whole exchange with the endpoint
CONNECT_TIMEOUT_SECONDS: Final = 5.0
SECRET_MAX_AGE_SECONDS: Final = 300
SIGNING_KEY_FIELD: Final = "key"


class DeliverySettingsError(ValueError):
    """The deliverer's configuration is missing or wrong; the message names the setting."""


@dataclass(frozen=True)
class DeliverySettings:
    url: str  # "" when delivery is off
    secret_arn: str
    queue_url: str
    dead_letter_url: str
    timeout_seconds: float = REQUEST_TIMEOUT_SECONDS
    connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS

    @property
    def enabled(self) -> bool:
        return bool(self.url)


def delivery_settings_from_env(env: Mapping[str, str]) -> DeliverySettings:
    url = env.get(constants.EVENTS_URL_ENV, "").strip()
    if url:
        try:
            check_events_url(url, loopback_http=True)
        except EndpointError as error:
            raise DeliverySettingsError(f"{constants.EVENTS_URL_ENV}: {error}") from None
    settings = DeliverySettings(
        url=url,
        secret_arn=env.get(constants.EVENTS_SECRET_ARN_ENV, ""),
        queue_url=env.get(constants.DELIVERY_QUEUE_URL_ENV, ""),
        dead_letter_url=env.get(constants.DELIVERY_DLQ_URL_ENV, ""),
    )
    if settings.enabled:
        missing = [
            name
            for name, value in (
                (constants.EVENTS_SECRET_ARN_ENV, settings.secret_arn),
                (constants.DELIVERY_QUEUE_URL_ENV, settings.queue_url),
                (constants.DELIVERY_DLQ_URL_ENV, settings.dead_letter_url),
            )
            if not value
        ]
        if missing:
            raise DeliverySettingsError(f"event delivery needs {', '.join(missing)}")
    return settings


def signing_key(secret_arn: str) -> str:
    """The ``key`` of the signing secret (Secrets Manager, cached ``SECRET_MAX_AGE_SECONDS``)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
    data = json.loads(value) if isinstance(value, str) else value
    key = data.get(SIGNING_KEY_FIELD) if isinstance(data, dict) else None
    if not isinstance(key, str) or not key:
        raise DeliverySettingsError(f"the signing secret {secret_arn} has no {SIGNING_KEY_FIELD!r}")
    return key
