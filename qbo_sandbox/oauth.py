"""Intuit's OAuth 2.0 server, emulated: discovery, consent, the token and revoke endpoints.

One consent makes a *grant*: the connection of this app to one realm.  A grant owns every access
and refresh token minted from it, so revoking any of its tokens (or reusing the code that created
it) kills them all, as Intuit's disconnect does.  Lifetimes follow Intuit's: the access token 1 hour, the
refresh token 100 days rolling (https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/faq),
a replaced one 24 hours more (the README of https://github.com/intuit/oauth-jsclient), a 5-year cap
(https://blogs.a.intuit.com/2025/11/12/important-changes-to-refresh-token-policy).  They run on
the sandbox's virtual clock, so tests make hours or years pass with ``sandbox.clock.advance``.

Token values are never stored: state keeps a SHA-256 digest of each one, so ``dump()`` (and the
state file) holds nothing a client could replay against the sandbox.  Errors on the OAuth
endpoints use RFC 6749's ``{"error": ..., "error_description": ...}`` bodies, as Intuit does; only
the Accounting API answers with QBO's gateway faults (see :meth:`OAuthService.authenticate`).

Behaviour Intuit does not document is marked UNCONFIRMED where it is chosen; docs/sandbox.md
lists every such choice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from qbo_sandbox import faults
from qbo_sandbox.seed import SUPPORTED_COUNTRIES
from qbo_sandbox.wire import Request, Response, Router

if TYPE_CHECKING:
    from qbo_sandbox.sandbox import Sandbox

ACCESS_TOKEN_LIFETIME = timedelta(seconds=3600)
# Intuit says "100 days"; its sample token response says 8,726,400 s (101 days).  The sandbox uses
# the wire value so clients see exactly what Intuit sends.
REFRESH_TOKEN_LIFETIME = timedelta(seconds=8_726_400)
ROTATION_GRACE = timedelta(hours=24)
HARD_LIFETIME = timedelta(seconds=157_680_000)  # 5 x 365 days, from the original connection
CODE_LIFETIME = timedelta(minutes=10)  # UNCONFIRMED: Intuit does not publish it
# Codes and access tokens dead for longer than this are forgotten, so a long-running sandbox does
# not grow without bound; refresh tokens are kept for the grants listing.
RETENTION = timedelta(days=7)

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
SUPPORTED_SCOPES = (ACCOUNTING_SCOPE, "com.intuit.quickbooks.payment")
OPENID_SCOPES = frozenset({"openid", "profile", "email", "phone", "address"})
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"
GRANT_TYPES = ("authorization_code", "refresh_token")

DISCOVERY_PATHS = (
    "/.well-known/openid_configuration",
    "/.well-known/openid-configuration",
    "/.well-known/openid_sandbox_configuration",
    "/.well-known/openid-sandbox-configuration",
)
AUTHORIZE_PATH = "/connect/oauth2"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL path, not a secret
REVOKE_PATH = "/v2/oauth2/tokens/revoke"
ISSUER_PATH = "/op/v1"
JWKS_PATH = "/op/v1/jwks"
USERINFO_PATH = "/v1/openid_connect/userinfo"
CONTROL_PREFIX = "/_sandbox/oauth"

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# The protected header of Intuit's access tokens ({"enc":"A128CBC-HS256","alg":"dir"}), so values
# look like the compact JWEs Intuit issues; the remaining parts are random.
_JWE_HEADER = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0"
_ALNUM = string.ascii_letters + string.digits


# --- state ------------------------------------------------------------------------------------


@dataclass
class AuthCode:
    key: str  # digest of the code value
    client_id: str
    redirect_uri: str
    realm_id: str
    scopes: list[str]
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    grant_id: str | None = None
    code_challenge: str | None = None  # RFC 7636, kept as S256 whatever method the client used


@dataclass
class Grant:
    grant_id: str
    client_id: str
    realm_id: str
    scopes: list[str]
    created_at: datetime
    hard_expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None


@dataclass
class AccessToken:
    key: str
    grant_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass
class RefreshToken:
    key: str
    grant_id: str
    issued_at: datetime
    expires_at: datetime  # the rolling 100-day limit, capped at the grant's hard expiry
    rotated_at: datetime | None = None  # first time it was exchanged for a newer one

    def valid_until(self) -> datetime:
        if self.rotated_at is None:
            return self.expires_at
        return min(self.expires_at, self.rotated_at + ROTATION_GRACE)


_Record = TypeVar("_Record", AuthCode, Grant, AccessToken, RefreshToken)


def _encode(record: AuthCode | Grant | AccessToken | RefreshToken) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        out[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _decode(cls: type[_Record], raw: dict[str, Any]) -> _Record:
    # Every datetime field of the records is named *_at, which is all the schema loading needs.
    values: dict[str, Any] = {
        f.name: (
            datetime.fromisoformat(raw[f.name])
            if f.name.endswith("_at") and raw.get(f.name)
            else raw.get(f.name)
        )
        for f in fields(cls)
    }
    return cls(**values)


_PKCE_VALUE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1 and §4.2


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _pkce_challenge(request: Request) -> str | None:
    """The authorization request's PKCE challenge as S256 (RFC 7636 §4.3), or None without one."""
    for name in ("code_challenge", "code_challenge_method"):
        if len(request.query.get(name, [])) > 1:
            raise _ConsentRefused("invalid_request", f"parameter {name} is repeated")
    challenge = request.param("code_challenge")
    method = request.param("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise _ConsentRefused("invalid_request", "code_challenge_method without code_challenge")
        return None
    if not _PKCE_VALUE.fullmatch(challenge):
        raise _ConsentRefused("invalid_request", "code_challenge must be 43 to 128 unreserved characters")
    if method in (None, "plain"):  # RFC 7636 §4.3: plain is the default
        return _s256(challenge)
    if method != "S256":
        raise _ConsentRefused("invalid_request", "code_challenge_method must be S256 or plain")
    return challenge


def _pkce_verified(challenge: str | None, verifier: str | None) -> bool:
    """RFC 7636 §4.6; a verifier for a code issued without a challenge is refused too (a downgrade)."""
    if challenge is None:
        return verifier is None
    if verifier is None or not _PKCE_VALUE.fullmatch(verifier):
        return False
    return hmac.compare_digest(_s256(verifier), challenge)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _public_id(key: str) -> str:
    return key[:16]


def _seconds(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds()))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- errors -----------------------------------------------------------------------------------


class OAuthProtocolError(Exception):
    """An RFC 6749 error answered as ``{"error", "error_description"}`` JSON."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> Response:
        headers = dict(NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="Intuit"'
        return Response.json(
            {"error": self.error, "error_description": self.description}, self.status, headers
        )


def _invalid_client(description: str) -> OAuthProtocolError:
    return OAuthProtocolError("invalid_client", description, status=401)


def _invalid_request(description: str) -> OAuthProtocolError:
    return OAuthProtocolError("invalid_request", description)


def _invalid_grant(description: str) -> OAuthProtocolError:
    return OAuthProtocolError("invalid_grant", description)


class ControlInputError(Exception):
    """A control API request the sandbox refuses; ``status`` is 400 or 404."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _ConsentRefused(Exception):
    """The authorize request is refused after its redirect_uri was verified: answer by redirect."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


# --- the service ------------------------------------------------------------------------------


class OAuthService:
    """The HTTP endpoints that hand out one sandbox's codes and tokens (kept in ``state``); the
    sandbox's levers on them are ``controls``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.state = OAuthState()
        self.controls = OAuthControls(self)

    # --- routes -------------------------------------------------------------------------------

    def register_routes(self, router: Router) -> None:
        for path in DISCOVERY_PATHS:
            router.add("GET", path, self._discovery_handler, name="oauth.discovery")
        router.add("GET", AUTHORIZE_PATH, self._authorize_handler, name="oauth.authorize")
        router.add("POST", TOKEN_PATH, self._token_handler, name="oauth.token")
        router.add("POST", REVOKE_PATH, self._revoke_handler, name="oauth.revoke")
        router.add("GET", JWKS_PATH, self._jwks_handler, name="oauth.jwks")
        router.add("GET", USERINFO_PATH, self._userinfo_handler, name="oauth.userinfo")
        self.controls.register_routes(router)

    # --- discovery ----------------------------------------------------------------------------

    def discovery_document(self) -> dict[str, Any]:
        """Intuit's discovery fields, pointing at this sandbox."""
        base = self.sandbox.base_url
        return {
            "issuer": base + ISSUER_PATH,
            "authorization_endpoint": base + AUTHORIZE_PATH,
            "token_endpoint": base + TOKEN_PATH,
            "userinfo_endpoint": base + USERINFO_PATH,
            "revocation_endpoint": base + REVOKE_PATH,
            "jwks_uri": base + JWKS_PATH,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            # Intuit lists only the OpenID scopes here; the sandbox lists what it actually grants.
            "scopes_supported": list(SUPPORTED_SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        }

    def _discovery_handler(self, _sandbox: Sandbox, _request: Request, _params: dict[str, str]) -> Response:
        return Response.json(self.discovery_document())

    def _jwks_handler(self, _sandbox: Sandbox, _request: Request, _params: dict[str, str]) -> Response:
        # No id_token is ever signed, so there is no key to publish.
        return Response.json({"keys": []})

    def _userinfo_handler(self, _sandbox: Sandbox, _request: Request, _params: dict[str, str]) -> Response:
        return Response.json(
            {
                "error": "insufficient_scope",
                "error_description": "the sandbox does not emulate OpenID Connect (no openid scope)",
            },
            status=403,
        )

    # --- authorize ----------------------------------------------------------------------------

    def _authorize_handler(self, _sandbox: Sandbox, request: Request, _params: dict[str, str]) -> Response:
        settings = self.sandbox.settings
        client_id = _single(request, "client_id")
        if client_id is None or not _equal(client_id, settings.client_id):
            return _error_page("The client_id is missing or is not registered with this sandbox.")
        redirect_uri = _single(request, "redirect_uri")
        if redirect_uri is None or not self.redirect_uri_registered(redirect_uri):
            # RFC 6749 §4.1.2.1: never redirect to a URI that was not verified.
            return _error_page("The redirect_uri is missing or is not registered for this app.")
        state = request.param("state")
        try:
            challenge = _pkce_challenge(request)
            scopes, realm_id = self._consent(request)
        except _ConsentRefused as refused:
            return Response.redirect(
                _with_params(
                    redirect_uri,
                    {
                        "error": refused.error,
                        "error_description": refused.description,
                        "state": state,
                    },
                )
            )
        code = self._issue_code(client_id, redirect_uri, realm_id, scopes, challenge)
        return Response.redirect(
            _with_params(redirect_uri, {"code": code, "state": state, "realmId": realm_id})
        )

    def redirect_uri_registered(self, uri: str) -> bool:
        if "#" in uri:  # RFC 6749 §3.1.2: a redirection endpoint has no fragment
            return False
        for entry in self.sandbox.settings.redirect_uris:
            if entry.endswith("*"):
                if uri.startswith(entry[:-1]):
                    return True
            elif uri == entry:
                return True
        return False

    def _consent(self, request: Request) -> tuple[list[str], str]:
        """The scopes granted and the realm chosen, or _ConsentRefused."""
        for name in ("response_type", "scope", "state", "realmId", "sandbox_country", "sandbox_consent"):
            if len(request.query.get(name, [])) > 1:
                raise _ConsentRefused("invalid_request", f"parameter {name} is repeated")
        response_type = request.param("response_type")
        if not response_type:
            raise _ConsentRefused("invalid_request", "response_type is required")
        if response_type != "code":
            raise _ConsentRefused("unsupported_response_type", "only response_type=code is supported")
        scopes = _parse_scopes(request.param("scope") or "")
        consent = request.param("sandbox_consent", "allow")
        if consent not in ("allow", "deny"):
            raise _ConsentRefused("invalid_request", "sandbox_consent must be allow or deny")
        realm_id = request.param("realmId")
        country = request.param("sandbox_country")
        if realm_id is not None and country is not None:
            raise _ConsentRefused("invalid_request", "give realmId or sandbox_country, not both")
        if realm_id is not None and self.sandbox.company(realm_id) is None:
            raise _ConsentRefused("invalid_request", f"realmId {realm_id} is not a sandbox company")
        if country is not None and country.upper() not in SUPPORTED_COUNTRIES:
            raise _ConsentRefused(
                "invalid_request", f"sandbox_country must be one of {', '.join(sorted(SUPPORTED_COUNTRIES))}"
            )
        with self.state.lock:
            denied = consent == "deny" or self.state.deny_next > 0
            if consent != "deny" and self.state.deny_next > 0:
                self.state.deny_next -= 1
        if denied:
            # UNCONFIRMED: Intuit's denial redirect is not documented; this is RFC 6749 §4.1.2.1.
            raise _ConsentRefused("access_denied", "The user denied the authorization request")
        if realm_id is None:
            try:
                realm_id = self.sandbox.create_company(country=country or "US").realm_id
            except ValueError as exc:
                raise _ConsentRefused("invalid_request", f"sandbox_country: {exc}") from exc
        return scopes, realm_id

    def _issue_code(
        self, client_id: str, redirect_uri: str, realm_id: str, scopes: list[str], challenge: str | None
    ) -> str:
        now = self.sandbox.clock.now()
        value = _opaque_value(now + CODE_LIFETIME)
        with self.state.lock:
            self.state.purge(now)
            self.state.codes[_digest(value)] = AuthCode(
                key=_digest(value),
                client_id=client_id,
                redirect_uri=redirect_uri,
                realm_id=realm_id,
                scopes=scopes,
                issued_at=now,
                expires_at=now + CODE_LIFETIME,
                code_challenge=challenge,
            )
        return value

    # --- token endpoint -----------------------------------------------------------------------

    def _token_handler(self, _sandbox: Sandbox, request: Request, _params: dict[str, str]) -> Response:
        try:
            form = _token_form(request)
        except OAuthProtocolError as error:
            self._count("other")
            return error.response()
        grant_type = form.get("grant_type")
        self._count(grant_type if grant_type in GRANT_TYPES else "other")
        include_hard = (request.header(HARD_EXPIRY_HEADER) or "").strip().lower() == "true"
        try:
            client_id = self._authenticate_client(request, form)
            if not grant_type:
                raise _invalid_request("grant_type is required")
            if grant_type == "authorization_code":
                body = self._exchange_code(client_id, form, include_hard)
            elif grant_type == "refresh_token":
                body = self._refresh_grant(client_id, form, include_hard)
            else:
                raise OAuthProtocolError(
                    "unsupported_grant_type", f"grant_type {grant_type} is not supported"
                )
        except OAuthProtocolError as error:
            return error.response()
        return Response.json(body, headers=NO_STORE)

    def _count(self, key: str) -> None:
        with self.state.lock:
            self.sandbox.counters.oauth[key] += 1

    def _authenticate_client(self, request: Request, form: dict[str, str]) -> str:
        """client_secret_basic or client_secret_post; the client_id on success."""
        settings = self.sandbox.settings
        header = request.header("authorization")
        if header is not None:
            if form.get("client_secret") is not None:
                raise _invalid_request("use one client authentication method, not two")
            client_id, secret = _basic_credentials(header)
        elif form.get("client_secret") is not None:
            client_id, secret = form.get("client_id") or "", form["client_secret"]
        else:
            raise _invalid_client("client authentication is required")
        if not (_same(client_id, settings.client_id) and _same(secret, settings.client_secret)):
            raise _invalid_client("client authentication failed")
        return settings.client_id

    def _exchange_code(self, client_id: str, form: dict[str, str], include_hard: bool) -> dict[str, Any]:
        code = form.get("code")
        redirect_uri = form.get("redirect_uri")
        if not code:
            raise _invalid_request("code is required")
        if not redirect_uri:
            raise _invalid_request("redirect_uri is required")
        now = self.sandbox.clock.now()
        with self.state.lock:
            record = self.state.codes.get(_digest(code))
            if record is None or record.client_id != client_id:
                raise _invalid_grant("Invalid authorization code")
            if record.used_at is not None:
                # RFC 6749 §4.1.2: a replayed code revokes what it produced; an app whose callback
                # runs twice loses the first pair this way: https://github.com/intuit/oauth-jsclient/issues/173
                if record.grant_id is not None:
                    self.state.revoke_grant(record.grant_id, now, "authorization code reused")
                raise _invalid_grant("Authorization code has already been used")
            if now >= record.expires_at:
                raise _invalid_grant("Authorization code expired")
            if not _pkce_verified(record.code_challenge, form.get("code_verifier")):
                # The code stays unused: whoever holds the right verifier may still redeem it.
                raise _invalid_grant("PKCE verification failed")
            if record.redirect_uri != redirect_uri:
                raise _invalid_grant("redirect_uri does not match the authorization request")
            grant = self.state.new_grant(client_id, record.realm_id, record.scopes, now)
            record.used_at = now
            record.grant_id = grant.grant_id
            return self._issue_tokens(grant, now, include_hard)

    def _refresh_grant(self, client_id: str, form: dict[str, str], include_hard: bool) -> dict[str, Any]:
        value = form.get("refresh_token")
        if not value:
            raise _invalid_request("refresh_token is required")
        # A scope parameter on refresh is ignored: the grant keeps the scopes of its consent.
        now = self.sandbox.clock.now()
        with self.state.lock:
            token = self.state.refresh_tokens.get(_digest(value))
            grant = self.state.grants.get(token.grant_id) if token is not None else None
            if token is None or grant is None or grant.client_id != client_id:
                raise _invalid_grant("Token invalid")
            if grant.revoked_at is not None:
                raise _invalid_grant("Token revoked")
            if now >= grant.hard_expires_at:
                raise _invalid_grant("Token expired: the refresh token reached its 5-year maximum life")
            if now >= token.valid_until():
                raise _invalid_grant("Token expired")
            if token.rotated_at is None:
                token.rotated_at = now
            return self._issue_tokens(grant, now, include_hard)

    def _issue_tokens(self, grant: Grant, now: datetime, include_hard: bool) -> dict[str, Any]:
        """A fresh access and refresh token for ``grant``; the caller holds the lock."""
        self.state.purge(now)
        refresh_expires = min(now + REFRESH_TOKEN_LIFETIME, grant.hard_expires_at)
        access_value = _access_token_value()
        refresh_value = _opaque_value(refresh_expires)
        self.state.access_tokens[_digest(access_value)] = AccessToken(
            key=_digest(access_value),
            grant_id=grant.grant_id,
            issued_at=now,
            expires_at=now + ACCESS_TOKEN_LIFETIME,
        )
        self.state.refresh_tokens[_digest(refresh_value)] = RefreshToken(
            key=_digest(refresh_value),
            grant_id=grant.grant_id,
            issued_at=now,
            expires_at=refresh_expires,
        )
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": _seconds(ACCESS_TOKEN_LIFETIME),
            "refresh_token": refresh_value,
            "x_refresh_token_expires_in": _seconds(refresh_expires - now),
            "access_token": access_value,
        }
        if include_hard:
            body["x_refresh_token_hard_expires_in"] = _seconds(grant.hard_expires_at - now)
        return body

    # --- revoke -------------------------------------------------------------------------------

    def _revoke_handler(self, _sandbox: Sandbox, request: Request, _params: dict[str, str]) -> Response:
        self._count("revoke")
        try:
            fields_ = _revoke_fields(request)
            client_id = self._authenticate_client(request, fields_)
            token = fields_.get("token")
            if not token:
                raise _invalid_request("token is required")
        except OAuthProtocolError as error:
            return error.response()
        now = self.sandbox.clock.now()
        with self.state.lock:
            grant = self.state.grant_of_token(token)
            # RFC 7009 §2.2: an unknown token is not an error (UNCONFIRMED for Intuit), which also
            # keeps a client's disconnect idempotent.
            if grant is not None and grant.client_id == client_id:
                self.state.revoke_grant(grant.grant_id, now, "revoked by the app")
        return Response(200, b"", dict(NO_STORE))

    # --- the Accounting API's gate ------------------------------------------------------------

    def authenticate(self, request: Request, realm_id: str) -> None:
        """Admit a ``/v3/company/{realm_id}`` call, or raise QBO's 401 (3200) or 403 (3100) fault.

        The ``detail`` texts are the sandbox's own (UNCONFIRMED): Intuit's wording varies.
        """
        header = (request.header("authorization") or "").strip()
        if not header:
            raise faults.authentication_failed("Authorization header is missing")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise faults.authentication_failed("Authorization header must carry a Bearer token")
        now = self.sandbox.clock.now()
        with self.state.lock:
            token = self.state.access_tokens.get(_digest(value))
            grant = self.state.grants.get(token.grant_id) if token is not None else None
            if token is None or grant is None:
                raise faults.authentication_failed("Token invalid")
            if grant.revoked_at is not None:
                raise faults.authentication_failed("Token revoked")
            if now >= token.expires_at:
                raise faults.authentication_failed("Token expired")
            if grant.realm_id != realm_id:
                raise faults.authorization_failed()

    # --- lifecycle ----------------------------------------------------------------------------

    def reset(self) -> None:
        self.state.reset()

    def dump(self) -> dict[str, Any]:
        return self.state.dump()

    def load(self, data: dict[str, Any]) -> None:
        """Replace the state with a :meth:`dump`; an empty dict means no state."""
        self.state.load(data)


class OAuthState:
    """Codes, grants and tokens of one sandbox (digests of the values only), under one lock.

    Every method but ``reset``, ``dump`` and ``load`` expects the caller to hold ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.deny_next = 0

    def purge(self, now: datetime) -> None:
        horizon = now - RETENTION
        for key in [k for k, c in self.codes.items() if c.expires_at < horizon]:
            del self.codes[key]
        for key in [k for k, t in self.access_tokens.items() if t.expires_at < horizon]:
            del self.access_tokens[key]

    def grant_of_token(self, value: str) -> Grant | None:
        key = _digest(value)
        owner = self.refresh_tokens.get(key) or self.access_tokens.get(key)
        return self.grants.get(owner.grant_id) if owner is not None else None

    def revoke_grant(self, grant_id: str, now: datetime, reason: str) -> bool:
        grant = self.grants.get(grant_id)
        if grant is None or grant.revoked_at is not None:
            return False
        grant.revoked_at = now
        grant.revoked_reason = reason
        return True

    def new_grant(self, client_id: str, realm_id: str, scopes: list[str], now: datetime) -> Grant:
        grant = Grant(
            grant_id="grant-" + secrets.token_hex(8),
            client_id=client_id,
            realm_id=realm_id,
            scopes=list(scopes),
            created_at=now,
            hard_expires_at=now + HARD_LIFETIME,
        )
        self.grants[grant.grant_id] = grant
        return grant

    def grant_view(self, grant: Grant, now: datetime) -> dict[str, Any]:
        revoked = grant.revoked_at is not None
        hard_passed = now >= grant.hard_expires_at

        def refresh_status(token: RefreshToken) -> str:
            if revoked:
                return "revoked"
            if hard_passed or now >= token.valid_until():
                return "expired"
            return "active" if token.rotated_at is None else "grace"

        def access_status(token: AccessToken) -> str:
            if revoked:
                return "revoked"
            return "expired" if now >= token.expires_at else "active"

        access = sorted(
            (t for t in self.access_tokens.values() if t.grant_id == grant.grant_id),
            key=lambda t: t.issued_at,
        )
        refresh = sorted(
            (t for t in self.refresh_tokens.values() if t.grant_id == grant.grant_id),
            key=lambda t: t.issued_at,
        )
        return {
            "grant_id": grant.grant_id,
            "realm_id": grant.realm_id,
            "client_id": grant.client_id,
            "scopes": list(grant.scopes),
            "created_at": _iso(grant.created_at),
            "hard_expires_at": _iso(grant.hard_expires_at),
            "hard_expires_in": _seconds(grant.hard_expires_at - now),
            "revoked": revoked,
            "revoked_at": _iso(grant.revoked_at),
            "revoked_reason": grant.revoked_reason,
            "access_tokens": [
                {
                    "id": _public_id(t.key),
                    "issued_at": _iso(t.issued_at),
                    "expires_at": _iso(t.expires_at),
                    "status": access_status(t),
                }
                for t in access
            ],
            "refresh_tokens": [
                {
                    "id": _public_id(t.key),
                    "issued_at": _iso(t.issued_at),
                    "expires_at": _iso(t.expires_at),
                    "rotated_at": _iso(t.rotated_at),
                    "valid_until": _iso(t.valid_until()),
                    "expires_in": _seconds(t.valid_until() - now),
                    "status": refresh_status(t),
                }
                for t in refresh
            ],
        }

    def reset(self) -> None:
        with self.lock:
            self.codes.clear()
            self.grants.clear()
            self.access_tokens.clear()
            self.refresh_tokens.clear()
            self.deny_next = 0

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "version": 1,
                "deny_next": self.deny_next,
                "codes": [_encode(c) for c in self.codes.values()],
                "grants": [_encode(g) for g in self.grants.values()],
                "access_tokens": [_encode(t) for t in self.access_tokens.values()],
                "refresh_tokens": [_encode(t) for t in self.refresh_tokens.values()],
            }

    def load(self, data: dict[str, Any]) -> None:
        """Replace the state with a :meth:`dump`; an empty dict means no state."""
        version = data.get("version", 1)
        if version != 1:
            raise ValueError(f"unsupported oauth state version {version}")
        codes = [_decode(AuthCode, raw) for raw in data.get("codes", [])]
        grants = [_decode(Grant, raw) for raw in data.get("grants", [])]
        access = [_decode(AccessToken, raw) for raw in data.get("access_tokens", [])]
        refresh = [_decode(RefreshToken, raw) for raw in data.get("refresh_tokens", [])]
        with self.lock:
            self.codes = {c.key: c for c in codes}
            self.grants = {g.grant_id: g for g in grants}
            self.access_tokens = {t.key: t for t in access}
            self.refresh_tokens = {t.key: t for t in refresh}
            self.deny_next = int(data.get("deny_next", 0))


class OAuthControls:
    """The sandbox's levers on its OAuth server, also under ``/_sandbox/oauth/``: deny the next
    consents, expire or revoke tokens, set a refresh token's remaining life, list the grants, and
    connect a realm without the browser flow."""

    def __init__(self, service: OAuthService) -> None:
        self._service = service
        self._state = service.state

    @property
    def _sandbox(self) -> Sandbox:
        return self._service.sandbox

    def register_routes(self, router: Router) -> None:
        controls: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("POST", "/deny-consents", self._control_deny),
            ("POST", "/expire-access-tokens", self._control_expire),
            ("POST", "/revoke", self._control_revoke),
            ("POST", "/refresh-token-life", self._control_refresh_life),
            ("GET", "/grants", self._control_grants),
            ("POST", "/tokens", self._control_tokens),
        ]
        for method, suffix, handler in controls:
            router.add(
                method,
                CONTROL_PREFIX + suffix,
                _control_route(handler),
                name="oauth.control" + suffix.replace("/", "."),
            )

    def deny_next_consents(self, count: int) -> int:
        """The next ``count`` consents are denied (0 cancels); returns the number armed."""
        if count < 0:
            raise ControlInputError("count must be a non-negative integer")
        with self._state.lock:
            self._state.deny_next = count
            return self._state.deny_next

    def expire_access_tokens(self, realm_id: str | None = None) -> int:
        """Expire every live access token (of one realm, or all); returns how many."""
        if realm_id is not None:
            self._require_realm(realm_id)
        now = self._sandbox.clock.now()
        expired = 0
        with self._state.lock:
            for token in self._state.access_tokens.values():
                grant = self._state.grants.get(token.grant_id)
                if grant is None or (realm_id is not None and grant.realm_id != realm_id):
                    continue
                if token.expires_at > now:
                    token.expires_at = now
                    expired += 1
        return expired

    def revoke_realm(self, realm_id: str, reason: str = "disconnected by the user in QuickBooks") -> int:
        """Revoke every grant of a realm, as when the user disconnects the app; returns how many."""
        self._require_realm(realm_id)
        now = self._sandbox.clock.now()
        with self._state.lock:
            return sum(
                self._state.revoke_grant(g.grant_id, now, reason)
                for g in list(self._state.grants.values())
                if g.realm_id == realm_id
            )

    def set_refresh_token_life(
        self,
        *,
        refresh_token: str | None = None,
        grant_id: str | None = None,
        expires_in: int | None = None,
        hard_expires_in: int | None = None,
    ) -> dict[str, Any]:
        """Set the remaining life of one refresh token (or of every live one of a grant).

        ``expires_in`` replaces the rolling limit; ``hard_expires_in`` moves the grant's 5-year
        limit.  Returns the grant as :meth:`grants` lists it.
        """
        if (refresh_token is None) == (grant_id is None):
            raise ControlInputError("give exactly one of refresh_token and grant_id")
        if expires_in is None and hard_expires_in is None:
            raise ControlInputError("give expires_in, hard_expires_in or both")
        if expires_in is not None and not 0 <= expires_in <= _seconds(REFRESH_TOKEN_LIFETIME):
            raise ControlInputError(f"expires_in must be between 0 and {_seconds(REFRESH_TOKEN_LIFETIME)}")
        if hard_expires_in is not None and not 0 <= hard_expires_in <= _seconds(HARD_LIFETIME):
            raise ControlInputError(f"hard_expires_in must be between 0 and {_seconds(HARD_LIFETIME)}")
        now = self._sandbox.clock.now()
        with self._state.lock:
            if refresh_token is not None:
                token = self._state.refresh_tokens.get(_digest(refresh_token))
                if token is None:
                    raise ControlInputError("unknown refresh_token", status=404)
                targets = [token]
                grant = self._state.grants[token.grant_id]
            else:
                found = self._state.grants.get(grant_id or "")
                if found is None:
                    raise ControlInputError(f"unknown grant_id {grant_id}", status=404)
                grant = found
                targets = [
                    t
                    for t in self._state.refresh_tokens.values()
                    if t.grant_id == grant.grant_id and t.valid_until() > now
                ]
            if expires_in is not None:
                for token in targets:
                    token.expires_at = now + timedelta(seconds=expires_in)
            if hard_expires_in is not None:
                grant.hard_expires_at = now + timedelta(seconds=hard_expires_in)
            return self._state.grant_view(grant, now)

    def grants(self, realm_id: str | None = None) -> list[dict[str, Any]]:
        """Grants (of one realm, or all) with their tokens' ids and lifetimes, never their values."""
        now = self._sandbox.clock.now()
        with self._state.lock:
            return [
                self._state.grant_view(g, now)
                for g in self._state.grants.values()
                if realm_id is None or g.realm_id == realm_id
            ]

    def issue_tokens(
        self, realm_id: str, *, scopes: list[str] | None = None, include_hard_expiry: bool = False
    ) -> dict[str, Any]:
        """Connect this app to a realm without the browser flow; returns the token response."""
        self._require_realm(realm_id)
        granted = scopes if scopes is not None else [ACCOUNTING_SCOPE]
        try:
            granted = _parse_scopes(" ".join(granted))
        except _ConsentRefused as refused:
            raise ControlInputError(refused.description) from refused
        now = self._sandbox.clock.now()
        with self._state.lock:
            grant = self._state.new_grant(self._sandbox.settings.client_id, realm_id, granted, now)
            return self._service._issue_tokens(grant, now, include_hard_expiry)

    def _require_realm(self, realm_id: str) -> None:
        if self._sandbox.company(realm_id) is not None:
            return
        with self._state.lock:
            if any(g.realm_id == realm_id for g in self._state.grants.values()):
                return
        raise ControlInputError(f"unknown realm {realm_id}", status=404)

    # --- control HTTP handlers ----------------------------------------------------------------

    def _control_deny(self, request: Request) -> Response:
        body = _control_body(request, allowed={"count"})
        count = _int_field(body, "count", required=True)
        assert count is not None
        return Response.json({"deny_next": self.deny_next_consents(count)})

    def _control_expire(self, request: Request) -> Response:
        body = _control_body(request, allowed={"realm_id"})
        return Response.json({"expired": self.expire_access_tokens(_str_field(body, "realm_id"))})

    def _control_revoke(self, request: Request) -> Response:
        body = _control_body(request, allowed={"realm_id"})
        realm_id = _str_field(body, "realm_id", required=True)
        assert realm_id is not None
        return Response.json({"revoked": self.revoke_realm(realm_id)})

    def _control_refresh_life(self, request: Request) -> Response:
        body = _control_body(request, allowed={"refresh_token", "grant_id", "expires_in", "hard_expires_in"})
        grant = self.set_refresh_token_life(
            refresh_token=_str_field(body, "refresh_token"),
            grant_id=_str_field(body, "grant_id"),
            expires_in=_int_field(body, "expires_in"),
            hard_expires_in=_int_field(body, "hard_expires_in"),
        )
        return Response.json({"grant": grant})

    def _control_grants(self, request: Request) -> Response:
        unknown = sorted(set(request.query) - {"realm_id", "realmId"})
        if unknown:
            raise ControlInputError(f"unknown query parameter(s): {', '.join(unknown)}")
        realm_id = request.param("realm_id") or request.param("realmId")
        if realm_id is not None:
            self._require_realm(realm_id)
        return Response.json({"grants": self.grants(realm_id)})

    def _control_tokens(self, request: Request) -> Response:
        body = _control_body(request, allowed={"realm_id", "scope", "include_hard_expiry"})
        realm_id = _str_field(body, "realm_id", required=True)
        assert realm_id is not None
        scope = _str_field(body, "scope")
        include_hard = body.get("include_hard_expiry", False)
        if not isinstance(include_hard, bool):
            raise ControlInputError("include_hard_expiry must be true or false")
        tokens = self.issue_tokens(
            realm_id, scopes=scope.split() if scope is not None else None, include_hard_expiry=include_hard
        )
        return Response.json(tokens, headers=NO_STORE)


# --- helpers ----------------------------------------------------------------------------------


def _control_route(
    handler: Callable[[Request], Response],
) -> Callable[[Sandbox, Request, dict[str, str]], Response]:
    def route(_sandbox: Sandbox, request: Request, _params: dict[str, str]) -> Response:
        try:
            return handler(request)
        except ControlInputError as error:
            return Response.json({"error": error.message}, status=error.status)

    return route


def _control_body(request: Request, allowed: set[str]) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        body = json.loads(request.body.decode("utf-8"))
    except ValueError as exc:  # includes UnicodeDecodeError
        raise ControlInputError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlInputError("body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ControlInputError(
            f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return body


def _int_field(body: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ControlInputError(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ControlInputError(f"{name} must be a non-negative integer")
    return value


def _str_field(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ControlInputError(f"{name} is required")
        return None
    if not isinstance(value, str) or not value:
        raise ControlInputError(f"{name} must be a non-empty string")
    return value


def _single(request: Request, name: str) -> str | None:
    """A parameter sent exactly once; a repeated one counts as missing (RFC 6749 §3.1)."""
    values = request.query.get(name, [])
    return values[0] if len(values) == 1 and values[0] else None


def _parse_scopes(text: str) -> list[str]:
    scopes = list(dict.fromkeys(text.split()))
    if not scopes:
        raise _ConsentRefused("invalid_scope", "scope is required")
    openid = [s for s in scopes if s in OPENID_SCOPES]
    if openid:
        # Refused loudly rather than granted without an id_token the app would wait for.
        raise _ConsentRefused(
            "invalid_scope", f"the sandbox does not emulate OpenID Connect scopes: {' '.join(openid)}"
        )
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
    if unknown:
        raise _ConsentRefused("invalid_scope", f"unknown scope(s): {' '.join(unknown)}")
    if ACCOUNTING_SCOPE not in scopes:
        raise _ConsentRefused("invalid_scope", f"scope must include {ACCOUNTING_SCOPE}")
    return scopes


def _with_params(uri: str, params: dict[str, str | None]) -> str:
    """``uri`` with ``params`` added to whatever query it already has (RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params.items() if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _error_page(message: str) -> Response:
    page = (
        "<!DOCTYPE html><html><head><title>Authorization error</title></head><body>"
        f"<h1>Authorization error</h1><p>{html.escape(message)}</p></body></html>"
    )
    response = Response.text(page, status=400, content_type="text/html")
    response.headers.update(NO_STORE)
    return response


def _token_form(request: Request) -> dict[str, str]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise _invalid_request("the body must be application/x-www-form-urlencoded")
    return _strict_form(request.body)


def _revoke_fields(request: Request) -> dict[str, str]:
    """The revoke body: Intuit's JSON ``{"token": ...}`` or the form its Java SDK sends."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body.decode("utf-8"))
        except ValueError as exc:
            raise _invalid_request("the body is not valid JSON") from exc
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise _invalid_request("the body must be a JSON object of strings")
        return body
    if request.content_type == "application/x-www-form-urlencoded":
        return _strict_form(request.body)
    raise _invalid_request("the body must be application/json or application/x-www-form-urlencoded")


def _strict_form(raw: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except ValueError as exc:  # includes UnicodeDecodeError
        raise _invalid_request("the body is not a valid form") from exc
    repeated = sorted(k for k, v in parsed.items() if len(v) > 1)
    if repeated:
        raise _invalid_request(f"parameter(s) repeated: {', '.join(repeated)}")
    return {k: v[0] for k, v in parsed.items()}


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client("the Authorization header must use the Basic scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid_client("the Basic credentials are not valid base64") from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client("the Basic credentials must be client_id:client_secret")
    return client_id, secret


def _equal(given: str, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str and a client may send anything.
    return hmac.compare_digest(given.encode(), expected.encode())


def _same(given: str, expected: str) -> bool:
    # RFC 6749 §2.3.1 form-encodes both parts before Basic; Intuit's SDKs send them raw.
    return _equal(given, expected) or _equal(unquote(given), expected)


def _opaque_value(expires_at: datetime) -> str:
    """Codes and refresh tokens: Intuit-like ``AB11<epoch><random>``, 50 characters."""
    stamp = str(int(expires_at.timestamp()))
    return "AB11" + stamp + "".join(secrets.choice(_ALNUM) for _ in range(46 - len(stamp)))


def _access_token_value() -> str:
    return ".".join(
        [_JWE_HEADER, "", secrets.token_urlsafe(16), secrets.token_urlsafe(640), secrets.token_urlsafe(16)]
    )
