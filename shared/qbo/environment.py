"""Where Intuit lives for each environment: OAuth endpoints from the discovery document, API base.

Intuit asks apps to read the OAuth endpoints from the discovery document rather than hard-code them
(https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-openid-discovery-doc).
The documented values stay here as the fallback for when the document cannot be fetched, so a
discovery outage does not stop token refreshes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from shared.kernel.observability import logger
from shared.kernel.settings import IntuitEnvironment, Settings

if TYPE_CHECKING:
    import httpx2

# Intuit's discovery documents (the host name Intuit's Python client uses: https://github.com/intuit/oauth-pythonclient).
PRODUCTION_DISCOVERY_URL: Final = "https://developer.intuit.com/.well-known/openid_configuration/"
SANDBOX_DISCOVERY_URL: Final = "https://developer.intuit.com/.well-known/openid_sandbox_configuration/"
LOCAL_DISCOVERY_PATH: Final = "/.well-known/openid_configuration"

# Documented endpoints (identical for production and Intuit's sandbox), used when discovery fails.
AUTHORIZATION_ENDPOINT: Final = "https://appcenter.intuit.com/connect/oauth2"
TOKEN_ENDPOINT: Final = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL
REVOCATION_ENDPOINT: Final = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"

# Accounting API roots (production, Intuit's sandbox companies); the client appends
# ``/v3/company/{realmId}/...``.
PRODUCTION_API_BASE_URL: Final = "https://quickbooks.api.intuit.com"
SANDBOX_API_BASE_URL: Final = "https://sandbox-quickbooks.api.intuit.com"

# Intuit's sample reconnect link, placeholders ``{app_id}`` and ``{realm_id}``
# (RefreshTokenHardExpirationService.java of https://github.com/IntuitDeveloper/SampleApp-Webhooks-Java-Cloudevents).
RECONNECT_URL_TEMPLATE: Final = (
    "https://appcenter.intuit.com/app/connect/oauth2/request?appId={app_id}&realmId={realm_id}&mode=reconnect"
)
# The local sandbox serves no reconnect page; the same path on its host keeps the shape testable.
LOCAL_RECONNECT_PATH: Final = "/app/connect/oauth2/request?appId={app_id}&realmId={realm_id}&mode=reconnect"

DISCOVERY_TIMEOUT_SECONDS: Final = 5.0
FALLBACK_TTL_SECONDS: Final = 300.0  # retry discovery after this long when it failed

# The sandbox's paths are Intuit's paths on another host (used only if its discovery fails).
_AUTHORIZE_PATH = "/connect/oauth2"
_TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL path
_REVOKE_PATH = "/v2/oauth2/tokens/revoke"


@dataclass(frozen=True)
class IntuitEndpoints:
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    api_base_url: str  # no trailing slash, no /v3
    reconnect_url_template: str  # format with app_id= and realm_id=
    discovered: bool = True  # False when the documented fallback is in use

    def reconnect_url(self, app_id: str, realm_id: str) -> str:
        return self.reconnect_url_template.format(app_id=app_id, realm_id=realm_id)


class DiscoveryError(RuntimeError):
    """The discovery document could not be fetched or lacks an endpoint."""


_cache: dict[tuple[str, str], tuple[IntuitEndpoints, float | None]] = {}
_cache_lock = threading.Lock()


def clear_endpoint_cache() -> None:
    with _cache_lock:
        _cache.clear()


def discovery_url(settings: Settings) -> str:
    if settings.intuit_environment is IntuitEnvironment.PRODUCTION:
        return PRODUCTION_DISCOVERY_URL
    if settings.intuit_environment is IntuitEnvironment.SANDBOX:
        return SANDBOX_DISCOVERY_URL
    return settings.local_sandbox_url.rstrip("/") + LOCAL_DISCOVERY_PATH


def endpoints_for(settings: Settings, http: httpx2.Client | None = None) -> IntuitEndpoints:
    """The endpoints of ``settings.intuit_environment``, cached per (environment, discovery URL).

    A discovered document is kept for the life of the process; a fallback only for
    FALLBACK_TTL_SECONDS, so a transient outage does not pin the documented values for ever.
    """
    url = discovery_url(settings)
    key = (settings.intuit_environment.value, url)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        endpoints, expires = cached
        if expires is None or time.monotonic() < expires:
            return endpoints
    try:
        document = _fetch(url, http)
        endpoints = _from_document(settings, document)
        expiry: float | None = None
    except DiscoveryError as error:
        logger.warning("intuit discovery failed, using documented endpoints", url=url, error=str(error))
        endpoints = _fallback(settings)
        expiry = time.monotonic() + FALLBACK_TTL_SECONDS
    with _cache_lock:
        _cache[key] = (endpoints, expiry)
    return endpoints


def _fetch(url: str, http: httpx2.Client | None) -> dict[str, Any]:
    import httpx2  # on first use: a cold start that never fetches does not pay for it

    try:
        if http is not None:
            response = http.get(url, headers={"Accept": "application/json"})
        else:
            with httpx2.Client(timeout=DISCOVERY_TIMEOUT_SECONDS) as client:
                response = client.get(url, headers={"Accept": "application/json"})
    except httpx2.HTTPError as error:
        raise DiscoveryError(f"{type(error).__name__} fetching the discovery document") from error
    if response.status_code != 200:
        raise DiscoveryError(f"discovery document answered HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError as error:
        raise DiscoveryError("discovery document is not JSON") from error
    if not isinstance(document, dict):
        raise DiscoveryError("discovery document is not a JSON object")
    return document


def _from_document(settings: Settings, document: dict[str, Any]) -> IntuitEndpoints:
    local = settings.intuit_environment is IntuitEnvironment.LOCAL
    schemes = ("https://", "http://") if local else ("https://",)
    found: dict[str, str] = {}
    for name in ("authorization_endpoint", "token_endpoint", "revocation_endpoint"):
        value = document.get(name)
        if not isinstance(value, str) or not value.startswith(schemes):
            raise DiscoveryError(f"discovery document has no usable {name}")
        found[name] = value
    return IntuitEndpoints(
        authorization_endpoint=found["authorization_endpoint"],
        token_endpoint=found["token_endpoint"],
        revocation_endpoint=found["revocation_endpoint"],
        api_base_url=_api_base(settings),
        reconnect_url_template=_reconnect_template(settings),
    )


def _fallback(settings: Settings) -> IntuitEndpoints:
    if settings.intuit_environment is IntuitEnvironment.LOCAL:
        base = settings.local_sandbox_url.rstrip("/")
        authorize, token, revoke = base + _AUTHORIZE_PATH, base + _TOKEN_PATH, base + _REVOKE_PATH
    else:
        authorize, token, revoke = AUTHORIZATION_ENDPOINT, TOKEN_ENDPOINT, REVOCATION_ENDPOINT
    return IntuitEndpoints(
        authorization_endpoint=authorize,
        token_endpoint=token,
        revocation_endpoint=revoke,
        api_base_url=_api_base(settings),
        reconnect_url_template=_reconnect_template(settings),
        discovered=False,
    )


def _api_base(settings: Settings) -> str:
    if settings.intuit_environment is IntuitEnvironment.PRODUCTION:
        return PRODUCTION_API_BASE_URL
    if settings.intuit_environment is IntuitEnvironment.SANDBOX:
        return SANDBOX_API_BASE_URL
    return settings.local_sandbox_url.rstrip("/")


def _reconnect_template(settings: Settings) -> str:
    if settings.intuit_environment is IntuitEnvironment.LOCAL:
        return settings.local_sandbox_url.rstrip("/") + LOCAL_RECONNECT_PATH
    return RECONNECT_URL_TEMPLATE
