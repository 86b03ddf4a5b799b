"""Intuit's OAuth 2.0 (https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0)
through authlib's httpx2 client: consent URL, code exchange, refresh, revoke.

Every token-endpoint call sends ``x-include-refresh-token-hard-expires-in: true`` so the 5-year
hard expiry is known.  Failures become three exceptions the vault can act on: the grant is dead
(``OAuthGrantError``), our app credentials are wrong (``OAuthClientError``), or anything else,
which is worth retrying (``OAuthServiceError``).  Token values never reach a log line, an
exception message or a repr.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, SecretStr

from shared.kernel.clock import Clock
from shared.kernel.observability import logger
from shared.kernel.settings import Settings, SettingsError
from shared.qbo.environment import IntuitEndpoints

if TYPE_CHECKING:  # authlib and httpx2: imported by the calls that use them (cold starts)
    import httpx2

ACCOUNTING_SCOPE: Final = "com.intuit.quickbooks.accounting"
HARD_EXPIRY_HEADER: Final = "x-include-refresh-token-hard-expires-in"
INTUIT_TID_HEADER: Final = "intuit_tid"
# HTTP Basic client authentication, as Intuit's SDKs send it (intuitlib/utils.py of https://github.com/intuit/oauth-pythonclient)
CLIENT_AUTH_METHOD: Final = "client_secret_basic"
# Intuit's documented rolling refresh-token life, used only if a response omits it.
DEFAULT_REFRESH_LIFETIME_SECONDS: Final = 8_726_400
_TOKEN_HEADERS: Final = {
    "Accept": "application/json",
    "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
    HARD_EXPIRY_HEADER: "true",
}


class TokenSet(BaseModel):
    """One token answer, with lifetimes turned into instants at the moment it was received."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr
    refresh_token: SecretStr
    access_expires_at: datetime
    refresh_expires_at: datetime
    hard_expires_at: datetime | None = None
    intuit_tid: str | None = None

    @classmethod
    def from_response(cls, body: Mapping[str, Any], now: datetime, intuit_tid: str | None = None) -> TokenSet:
        """Build from Intuit's JSON (``expires_in`` and friends are seconds from ``now``)."""
        access = body.get("access_token")
        refresh = body.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise OAuthServiceError("invalid_response", "token answer lacks a token", intuit_tid)
        try:
            expires_in = int(body.get("expires_in", 3600))
            refresh_in = int(body.get("x_refresh_token_expires_in", DEFAULT_REFRESH_LIFETIME_SECONDS))
            hard_raw = body.get("x_refresh_token_hard_expires_in")
            hard_in = int(hard_raw) if hard_raw is not None else None
        except (TypeError, ValueError) as error:
            raise OAuthServiceError(
                "invalid_response", "token lifetimes are not numbers", intuit_tid
            ) from error
        return cls(
            access_token=SecretStr(access),
            refresh_token=SecretStr(refresh),
            access_expires_at=now + timedelta(seconds=expires_in),
            refresh_expires_at=now + timedelta(seconds=refresh_in),
            hard_expires_at=now + timedelta(seconds=hard_in) if hard_in is not None else None,
            intuit_tid=intuit_tid,
        )


class OAuthFailureError(Exception):
    """Intuit refused or failed a token-endpoint call.  Carries no token value."""

    retryable = False

    def __init__(self, error: str, description: str | None = None, intuit_tid: str | None = None) -> None:
        self.error = error
        self.description = description
        self.intuit_tid = intuit_tid
        text = error if not description else f"{error}: {description}"
        super().__init__(text if not intuit_tid else f"{text} (intuit_tid {intuit_tid})")


class OAuthGrantError(OAuthFailureError):
    """``invalid_grant``: the refresh token is dead, or the authorization code was used or expired."""


class OAuthClientError(OAuthFailureError):
    """``invalid_client``: the app's client id or secret is wrong (configuration, not the tenant)."""


class OAuthServiceError(OAuthFailureError):
    """Anything else: network, 5xx, a body that is not Intuit's; retrying may succeed."""

    retryable = True


ClientFactory = Callable[..., Any]


class IntuitOAuth:
    """Token-endpoint calls for one app (client id/secret, redirect URI) and environment."""

    def __init__(
        self,
        settings: Settings,
        endpoints: IntuitEndpoints,
        *,
        clock: Clock,
        http_factory: ClientFactory | None = None,
    ) -> None:
        missing = [
            name
            for name, value in (
                ("client_id", settings.client_id),
                ("client_secret", settings.client_secret.get_secret_value()),
                ("redirect_uri", settings.redirect_uri),
            )
            if not value
        ]
        if missing:
            raise SettingsError(f"Intuit OAuth is not configured for this function: no {', '.join(missing)}")
        self._settings = settings
        self._endpoints = endpoints
        self._clock = clock
        if http_factory is None:
            from authlib.integrations.httpx_client import OAuth2Client

            http_factory = OAuth2Client
        # Called with OAuth2Client's keyword arguments; tests pass partial(OAuth2Client, transport=...).
        self._factory: ClientFactory = http_factory

    @property
    def endpoints(self) -> IntuitEndpoints:
        return self._endpoints

    def reconnect_url(self, realm_id: str) -> str:
        """Intuit's reconnect link for a realm (``environment.RECONNECT_URL_TEMPLATE``), shown when a
        connection must be renewed."""
        return self._endpoints.reconnect_url(self._settings.app_id, realm_id)

    def _client(self) -> Any:
        # One client per call: authlib keeps the last token on the client, so sharing one across
        # threads would mix tenants' tokens.
        return self._factory(
            client_id=self._settings.client_id,
            client_secret=self._settings.client_secret.get_secret_value(),
            token_endpoint_auth_method=CLIENT_AUTH_METHOD,
            revocation_endpoint_auth_method=CLIENT_AUTH_METHOD,
            redirect_uri=self._settings.redirect_uri,
            timeout=self._settings.http_timeout_seconds,
        )

    def authorization_url(self, state: str, code_challenge: str | None = None) -> str:
        """Intuit's consent URL; with ``code_challenge`` (RFC 7636, S256) the code it yields can only
        be exchanged with the matching verifier, where the server enforces PKCE."""
        extra = {"code_challenge": code_challenge, "code_challenge_method": "S256"} if code_challenge else {}
        with self._client() as client:
            url, _ = client.create_authorization_url(
                self._endpoints.authorization_endpoint, state=state, scope=ACCOUNTING_SCOPE, **extra
            )
        return str(url)

    def exchange_code(self, code: str, code_verifier: str | None = None) -> TokenSet:
        extra = {"code_verifier": code_verifier} if code_verifier else {}
        return self._token_call(
            "authorization_code",
            lambda client: client.fetch_token(
                self._endpoints.token_endpoint,
                grant_type="authorization_code",
                code=code,
                redirect_uri=self._settings.redirect_uri,
                headers=dict(_TOKEN_HEADERS),
                **extra,
            ),
            "access_token_response",
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token_call(
            "refresh_token",
            lambda client: client.refresh_token(
                self._endpoints.token_endpoint,
                refresh_token=refresh_token,
                headers=dict(_TOKEN_HEADERS),
            ),
            "refresh_token_response",
        )

    def revoke(self, token: str) -> None:
        """Revoke the grant ``token`` belongs to (Intuit revokes the whole grant).

        The body is JSON ``{"token": ...}`` as Intuit's documentation and Python SDK send it;
        only HTTP 200 is success, as Intuit's clients take it (intuitlib/client.py of
        https://github.com/intuit/oauth-pythonclient).
        """
        import httpx2

        with self._client() as client:
            try:
                response = client.post(
                    self._endpoints.revocation_endpoint,
                    json={"token": token},
                    headers={"Accept": "application/json"},
                    auth=client.client_auth(CLIENT_AUTH_METHOD),
                )
            except httpx2.HTTPError as error:
                raise OAuthServiceError("network_error", type(error).__name__) from None
        tid = response.headers.get(INTUIT_TID_HEADER)
        if response.status_code == 200:
            logger.info("intuit token revoked", intuit_tid=tid)
            return
        code, description = _error_fields(response)
        raise _classify(code or f"http_{response.status_code}", description, tid)

    def _token_call(self, grant: str, call: Callable[[Any], Any], hook: str) -> TokenSet:
        import httpx2
        from authlib.integrations.base_client import OAuthError

        seen: list[httpx2.Response] = []

        def capture(response: httpx2.Response) -> httpx2.Response:
            seen.append(response)
            return response

        with self._client() as client:
            client.register_compliance_hook(hook, capture)
            try:
                body = call(client)
            except OAuthError as error:
                tid = _tid(seen)
                logger.warning(
                    "intuit token call refused", grant_type=grant, error=error.error, intuit_tid=tid
                )
                raise _classify(str(error.error), error.description, tid) from None
            except httpx2.HTTPStatusError as error:
                tid = error.response.headers.get(INTUIT_TID_HEADER)
                status = error.response.status_code
                logger.warning("intuit token call failed", grant_type=grant, status=status, intuit_tid=tid)
                raise OAuthServiceError(f"http_{status}", "token endpoint failed", tid) from None
            except httpx2.HTTPError as error:
                logger.warning("intuit token call failed", grant_type=grant, error=type(error).__name__)
                raise OAuthServiceError("network_error", type(error).__name__) from None
            except ValueError:
                tid = _tid(seen)
                raise OAuthServiceError("invalid_response", "token answer is not JSON", tid) from None
        tid = _tid(seen)
        tokens = TokenSet.from_response(dict(body), self._clock.now(), tid)
        logger.info("intuit token call succeeded", grant_type=grant, intuit_tid=tid)
        return tokens


def _tid(seen: list[httpx2.Response]) -> str | None:
    return seen[-1].headers.get(INTUIT_TID_HEADER) if seen else None


def _error_fields(response: httpx2.Response) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error, description = body.get("error"), body.get("error_description")
    return (
        error if isinstance(error, str) else None,
        description if isinstance(description, str) else None,
    )


def _classify(error: str, description: str | None, intuit_tid: str | None) -> OAuthFailureError:
    if error == "invalid_grant":
        return OAuthGrantError(error, description, intuit_tid)
    if error == "invalid_client":
        return OAuthClientError(error, description, intuit_tid)
    return OAuthServiceError(error, description, intuit_tid)
