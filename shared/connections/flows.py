"""The connection flows: start, Intuit's callback, disconnect, status, and Intuit's own disconnect and
reconnect URLs.

Pure of Lambda types: ``functions/oauth`` and ``functions/api`` parse events and call these. Every
collaborator (connection store, token vault, OAuth client, runtime table, QBO client factory, event
publisher, clock) is injected, so the flows run the same in Lambda, in the local stack and in tests.

Security choices, in one place (docs/connections.md repeats them):

- The OAuth ``state`` is ``<random id>.<HMAC-SHA256(signing key, id)>``: a forged or mangled state is
  refused before any database read. The id names a runtime-table item (tenant, return URL, expiry)
  that is consumed by one conditional update: single use, and its expiry is checked by us (DynamoDB
  TTL is lazy). A consumed item is kept for one more TTL so a replayed callback is recognised.
- A code is exchanged at most once, ever: a keyed digest of it is written with a conditional put
  *before* the exchange (a second redemption makes Intuit revoke the grant). A replayed callback
  repeats the first callback's outcome; a used code under another state changes nothing.
- Each consent carries a PKCE challenge (RFC 7636, S256) whose verifier is derived from its state,
  so a code only turns into tokens under the state it was issued with (where the server enforces
  PKCE; Intuit does not document it, the local sandbox does).
- Intuit's public reconnect URL mints a signed, stateless state naming its realm: no read or write
  per anonymous call, the same answer for connected and unknown realms, and at the callback it only
  reconnects the tenant holding that realm, with a code for that realm.
- The ``realmId`` of a callback is a URL parameter, so it is checked before it is trusted: the fresh
  tokens must be able to read that company's CompanyInfo before the realm is claimed.
- One realm, one tenant (the realm-owner item), and one company per tenant: while a tenant holds its
  realm (connected, or disconnected with "keep mappings"), a consent for another company is refused.
- Return URLs must match the allow-list by scheme, host, port and path boundary; no user info, no
  backslash, no dot segments, no control characters: no open redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Final, NamedTuple, Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from shared.adapters.dynamo import ConditionFailedError, failed_conditions
from shared.connections.errors import (
    InvalidStateError,
    InvalidTenantIdError,
    MappingsAlreadyRemovedError,
    NeverConnectedError,
    ReturnUrlError,
)
from shared.connections.health import Health, HealthChange, HealthReason
from shared.connections.store import CompanyRecord, ConnectionStore, RealmTakenError, TaxModel
from shared.connections.vault import ConnectionDeadError, TokenProvider, TokenVault, VaultError
from shared.kernel import constants
from shared.kernel.clock import Clock
from shared.kernel.events import (
    CONNECTION_CONNECTED,
    CONNECTION_DISCONNECTED,
    EventPublisher,
    EventPublishError,
    OutboundEvent,
    make_event,
)
from shared.kernel.observability import logger
from shared.kernel.settings import Settings
from shared.qbo.errors import AuthenticationError, AuthorizationError, QboError
from shared.qbo.oauth import (
    IntuitOAuth,
    OAuthClientError,
    OAuthFailureError,
    OAuthGrantError,
    OAuthServiceError,
    TokenSet,
)

TENANT_ID_PATTERN: Final = constants.TENANT_ID_PATTERN
REALM_ID_PATTERN: Final = r"^[0-9]{1,32}$"  # Intuit's realm ids are decimal strings
_TENANT_ID = re.compile(TENANT_ID_PATTERN)
_REALM_ID = re.compile(REALM_ID_PATTERN)
_CODE = re.compile(r"^[\x21-\x7e]{1,512}$")  # Intuit: a code is at most 512 characters

STATE_SK: Final = "STATE"
RETURN_URL_SK: Final = "RETURN_URL"
CODE_SK: Final = "CODE"
# Intuit does not publish how long a code lives (minutes in practice); its record outlives it by far.
CODE_RECORD_SECONDS: Final = 30 * 86_400
_TENANT_RETURN_PREFIX: Final = "TENANT#"  # OAUTHSTATE#TENANT#<id>: state ids never contain '#'

MAX_RETURN_URL_LENGTH: Final = constants.MAX_RETURN_URL_LENGTH
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_STATE_MAC_CONTEXT: Final = b"qbo-link oauth state v1\x00"
_STATE_FORMAT = re.compile(r"^[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{43}$")
_RECONNECT_MAC_CONTEXT: Final = b"qbo-link reconnect state v1\x00"
_RECONNECT_FORMAT = re.compile(r"^R([0-9]{1,32})_([0-9]{1,12})_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
_PKCE_CONTEXT: Final = b"qbo-link pkce verifier v1\x00"
_CODE_CONTEXT: Final = b"qbo-link authorization code v1\x00"
# Error codes of RFC 6749 §4.1.2.1 passed through as the redirect's reason; anything else is generic.
_AUTHORIZATION_ERRORS: Final = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    }
)
# fmt: off
_MONTHS: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
# fmt: on


# --- tenant ids (the errors are in shared.connections.errors) ------------------------------------


def check_tenant_id(tenant_id: str) -> str:
    if not _TENANT_ID.fullmatch(tenant_id):
        raise InvalidTenantIdError(
            "tenant_id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return tenant_id


# --- return URLs ----------------------------------------------------------------------------------


class _UrlParts(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str


def _url_parts(url: str, what: str) -> _UrlParts:
    if not url or len(url) > MAX_RETURN_URL_LENGTH:
        raise ReturnUrlError(f"{what} must be 1 to {MAX_RETURN_URL_LENGTH} characters")
    # urlsplit silently drops tabs and newlines (WHATWG), so they are refused before parsing.
    if not url.isascii() or any(ch <= " " or ch == "\x7f" for ch in url):
        raise ReturnUrlError(f"{what} must be ASCII without spaces or control characters")
    if "\\" in url:
        raise ReturnUrlError(f"{what} must not contain a backslash")
    split = urlsplit(url)
    if split.scheme not in _DEFAULT_PORTS:
        raise ReturnUrlError(f"{what} must be an absolute http(s) URL")
    if not split.netloc or "@" in split.netloc or not split.hostname:
        raise ReturnUrlError(f"{what} must name a host, without user info")
    try:
        port = split.port
    except ValueError as error:
        raise ReturnUrlError(f"{what} has an invalid port") from error
    path = split.path or "/"
    if any(segment in {".", ".."} for segment in unquote(path).split("/")) or "\\" in unquote(path):
        raise ReturnUrlError(f"{what} must not contain dot segments")
    return _UrlParts(split.scheme, split.hostname.lower(), port or _DEFAULT_PORTS[split.scheme], path)


def _within(path: str, prefix: str) -> bool:
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


def check_return_url(url: str, allowlist: Sequence[str]) -> str:
    """``url`` if it lies under an allow-list entry (same scheme, host and port; path on a segment
    boundary), else ReturnUrlError. Query and fragment are kept; our parameters are added later."""
    target = _url_parts(url, "return_url")
    for entry in allowlist:
        allowed = _url_parts(entry, "allow-list entry")
        if target[:3] == allowed[:3] and _within(target.path, allowed.path):
            return url
    raise ReturnUrlError("return_url is not under any allowed return URL prefix")


def with_params(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` in its query, replacing any parameter of the same name."""
    split = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(split.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(split._replace(query=urlencode(query)))


# --- OAuth state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconnectClaim:
    """A stateless state minted by Intuit's reconnect URL: it names the realm it may reconnect and
    when it expires, signed, so the public route writes nothing and reads nothing."""

    realm_id: str
    expires_at: int
    nonce: str

    @property
    def state_id(self) -> str:
        return f"R{self.realm_id}_{self.expires_at}_{self.nonce}"


class StateCodec:
    """Signs and verifies OAuth states, and derives what is bound to one.

    Two shapes: ``<32-char random id>.<43-char HMAC>`` names a stored state (a connect started by the
    tenant API); ``R<realm>_<expires>_<nonce>.<HMAC>`` is a reconnect state that carries its own
    facts. Each state also fixes its PKCE verifier (RFC 7636), derived from the state under the
    key, so nothing more is stored per consent.
    """

    def __init__(self, key: str) -> None:
        if len(key) < 16:
            raise ValueError("the OAuth state signing key must have at least 16 characters")
        self._key = key.encode()

    def _digest(self, context: bytes, value: str) -> str:
        digest = hmac.new(self._key, context + value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _mac(self, state_id: str) -> str:
        return self._digest(_STATE_MAC_CONTEXT, state_id)

    def new(self) -> tuple[str, str]:
        """A fresh ``(state_id, state)``; 192 random bits make the id unguessable."""
        state_id = secrets.token_urlsafe(24)
        return state_id, f"{state_id}.{self._mac(state_id)}"

    def new_reconnect(self, realm_id: str, expires_at: int) -> str:
        claim = ReconnectClaim(realm_id, expires_at, secrets.token_hex(8))
        return f"{claim.state_id}.{self._digest(_RECONNECT_MAC_CONTEXT, claim.state_id)}"

    def verify(self, state: str | None) -> str:
        """The state's id, or InvalidStateError when it is missing, malformed or not ours."""
        if not state:
            raise InvalidStateError("state_missing", "The sign-in link is incomplete (no state).")
        if not _STATE_FORMAT.fullmatch(state):
            raise InvalidStateError("state_invalid", "The sign-in link is not valid.")
        state_id, mac = state.split(".")
        if not hmac.compare_digest(mac, self._mac(state_id)):
            raise InvalidStateError("state_invalid", "The sign-in link is not valid.")
        return state_id

    def reconnect_claim(self, state: str | None) -> ReconnectClaim | None:
        """The claim of a reconnect state; None when ``state`` does not have that shape;
        InvalidStateError when it has it but is not ours."""
        match = _RECONNECT_FORMAT.fullmatch(state or "")
        if match is None:
            return None
        realm_id, expires_at, nonce, mac = match.groups()
        claim = ReconnectClaim(realm_id, int(expires_at), nonce)
        if not hmac.compare_digest(mac, self._digest(_RECONNECT_MAC_CONTEXT, claim.state_id)):
            raise InvalidStateError("state_invalid", "The sign-in link is not valid.")
        return claim

    def code_verifier(self, state: str) -> str:
        """The PKCE verifier of the consent that carries ``state``: 43 characters of base64url."""
        return self._digest(_PKCE_CONTEXT, state)

    def code_challenge(self, state: str) -> str:
        """RFC 7636 §4.2, S256: BASE64URL(SHA256(ASCII(code_verifier)))."""
        digest = hashlib.sha256(self.code_verifier(state).encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def code_digest(self, code: str) -> str:
        """What the code ledger keeps of an authorization code: a keyed digest, never the code."""
        return self._digest(_CODE_CONTEXT, code)


@dataclass(frozen=True)
class OAuthState:
    """One connection attempt, from start to callback (runtime table)."""

    state_id: str
    tenant_id: str
    return_url: str
    created_at: int
    expires_at: int  # epoch seconds; valid while now < expires_at
    consumed_at: int | None = None
    result: str | None = None  # the callback's outcome, for replays: connected | denied | error
    reason: str | None = None
    realm_id: str | None = None


class StateNotFoundError(Exception):
    pass


class StateExpiredError(Exception):
    pass


class StateAlreadyUsedError(Exception):
    def __init__(self, state: OAuthState) -> None:
        super().__init__("state already used")
        self.state = state


@dataclass(frozen=True)
class UsedCode:
    """The ledger's record of an authorization code presented to the token endpoint once."""

    tenant_id: str
    realm_id: str
    used_at: int
    result: str | None = None  # the outcome of the callback that used it, once known


class CodeAlreadyUsedError(Exception):
    def __init__(self, used: UsedCode) -> None:
        super().__init__("authorization code already used")
        self.used = used


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


class OAuthStateStore:
    """OAuth states in the runtime table: ``pk = OAUTHSTATE#<id>``, ``sk = STATE``, TTL ``expires_at``."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @staticmethod
    def _key(state_id: str) -> dict[str, str]:
        return {constants.PK: constants.OAUTH_STATE_PREFIX + state_id, constants.SK: STATE_SK}

    def put(self, state: OAuthState) -> None:
        self._table.put_item(
            Item={
                **self._key(state.state_id),
                "tenant_id": state.tenant_id,
                "return_url": state.return_url,
                "created_at": state.created_at,
                constants.TTL_ATTRIBUTE: state.expires_at,
            },
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": constants.PK},
        )

    def get(self, state_id: str) -> OAuthState | None:
        item = self._table.get_item(Key=self._key(state_id), ConsistentRead=True).get("Item")
        return None if item is None else self._from_item(state_id, item)

    def consume(self, state_id: str, now: int, keep_seconds: int) -> OAuthState:
        """Mark the state used, once: StateNotFoundError, StateExpiredError or StateAlreadyUsedError
        otherwise. The used item lives ``keep_seconds`` more so that a replay is recognised."""
        try:
            with failed_conditions():
                answer = self._table.update_item(
                    Key=self._key(state_id),
                    UpdateExpression="SET consumed_at = :now, #ttl = :keep",
                    ConditionExpression=(
                        "attribute_exists(#pk) AND attribute_not_exists(consumed_at) AND #ttl > :now"
                    ),
                    ExpressionAttributeNames={"#pk": constants.PK, "#ttl": constants.TTL_ATTRIBUTE},
                    ExpressionAttributeValues={":now": now, ":keep": now + keep_seconds},
                    ReturnValues="ALL_OLD",
                )
        except ConditionFailedError:
            current = self.get(state_id)
            if current is None:
                raise StateNotFoundError(state_id) from None
            if current.consumed_at is not None:
                raise StateAlreadyUsedError(current) from None
            raise StateExpiredError(state_id) from None
        return self._from_item(state_id, {**answer["Attributes"], "consumed_at": now})

    def record_outcome(self, state_id: str, result: str, reason: str | None, realm_id: str | None) -> None:
        values = {":result": result, ":reason": reason or "", ":realm": realm_id or ""}
        self._table.update_item(
            Key=self._key(state_id),
            UpdateExpression="SET #result = :result, #reason = :reason, realm_id = :realm",
            ConditionExpression="attribute_exists(consumed_at)",
            ExpressionAttributeNames={"#result": "result", "#reason": "reason"},
            ExpressionAttributeValues=values,
        )

    @staticmethod
    def _code_key(code_digest: str) -> dict[str, str]:
        return {constants.PK: constants.OAUTH_CODE_PREFIX + code_digest, constants.SK: CODE_SK}

    def claim_code(self, code_digest: str, tenant_id: str, realm_id: str, now: int, keep_until: int) -> None:
        """Record that a code is about to be exchanged, once ever: CodeAlreadyUsedError when it was
        recorded before (by this callback's twin, a replay, or an attacker's second try)."""
        try:
            with failed_conditions():
                self._table.put_item(
                    Item={
                        **self._code_key(code_digest),
                        "tenant_id": tenant_id,
                        "realm_id": realm_id,
                        "used_at": now,
                        constants.TTL_ATTRIBUTE: keep_until,
                    },
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": constants.PK},
                )
        except ConditionFailedError:
            # Kept past its TTL by DynamoDB's lazy deletion or not, a recorded code stays used.
            raise CodeAlreadyUsedError(self.used_code(code_digest) or UsedCode("", "", now)) from None

    def used_code(self, code_digest: str) -> UsedCode | None:
        item = self._table.get_item(Key=self._code_key(code_digest), ConsistentRead=True).get("Item")
        if item is None:
            return None
        return UsedCode(
            tenant_id=str(item.get("tenant_id", "")),
            realm_id=str(item.get("realm_id", "")),
            used_at=int(item.get("used_at", 0)),
            result=item.get("result") or None,
        )

    def record_code_result(self, code_digest: str, result: str) -> None:
        self._table.update_item(
            Key=self._code_key(code_digest),
            UpdateExpression="SET #result = :result",
            ConditionExpression="attribute_exists(#pk)",
            ExpressionAttributeNames={"#result": "result", "#pk": constants.PK},
            ExpressionAttributeValues={":result": result},
        )

    def remember_return_url(self, tenant_id: str, return_url: str, expires_at: int) -> None:
        """The tenant's last return URL, where Intuit's reconnect link lands later."""
        self._table.put_item(
            Item={
                **self._return_key(tenant_id),
                "tenant_id": tenant_id,
                "return_url": return_url,
                constants.TTL_ATTRIBUTE: expires_at,
            }
        )

    def last_return_url(self, tenant_id: str) -> str | None:
        item = self._table.get_item(Key=self._return_key(tenant_id), ConsistentRead=True).get("Item")
        return str(item["return_url"]) if item else None

    @staticmethod
    def _return_key(tenant_id: str) -> dict[str, str]:
        pk = constants.OAUTH_STATE_PREFIX + _TENANT_RETURN_PREFIX + tenant_id
        return {constants.PK: pk, constants.SK: RETURN_URL_SK}

    @staticmethod
    def _from_item(state_id: str, item: Mapping[str, Any]) -> OAuthState:
        return OAuthState(
            state_id=state_id,
            tenant_id=str(item["tenant_id"]),
            return_url=str(item["return_url"]),
            created_at=int(item["created_at"]),
            expires_at=int(item[constants.TTL_ATTRIBUTE]),
            consumed_at=_int_or_none(item.get("consumed_at")),
            result=item.get("result") or None,
            reason=item.get("reason") or None,
            realm_id=item.get("realm_id") or None,
        )


# --- company facts --------------------------------------------------------------------------------


def _month_number(value: Any) -> int | None:
    if isinstance(value, str) and value.capitalize() in _MONTHS:
        return _MONTHS.index(value.capitalize()) + 1
    return None


def _section(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = body.get(name)
    return value if isinstance(value, Mapping) else {}


def company_record(info: Mapping[str, Any], preferences: Mapping[str, Any]) -> CompanyRecord:
    """What QBO Link keeps of a company, from its CompanyInfo and Preferences entities.

    Tax model: a US company with automated sales tax (``PartnerTaxEnabled``) lets QBO compute the
    tax (``us_automated``); any other US company sends a transaction-level code (``us_manual``);
    everywhere else VAT/GST codes go on every line (``per_line``).
    """
    country = str(info.get("Country") or "").upper()
    partner_tax = _section(preferences, "TaxPrefs").get("PartnerTaxEnabled") is True
    us_model: TaxModel = "us_automated" if partner_tax else "us_manual"
    tax_model: TaxModel = us_model if country == "US" else "per_line"
    currency = _section(_section(preferences, "CurrencyPrefs"), "HomeCurrency").get("value")
    month = _month_number(info.get("FiscalYearStartMonth"))
    if month is None:
        month = _month_number(_section(preferences, "AccountingInfoPrefs").get("FirstMonthOfFiscalYear"))
    name = info.get("CompanyName")
    legal_name = info.get("LegalName") or name
    return CompanyRecord(
        name=str(name) if name else None,
        legal_name=str(legal_name) if legal_name else None,
        country=country or None,
        currency=str(currency) if currency else None,
        tax_model=tax_model,
        fiscal_year_start_month=month,
        auto_apply_credit=auto_apply_credit(preferences),
    )


def auto_apply_credit(preferences: Mapping[str, Any]) -> bool | None:
    """``SalesFormsPrefs.AutoApplyCredit`` of a Preferences entity (None when QBO does not say)."""
    value = _section(preferences, "SalesFormsPrefs").get("AutoApplyCredit")
    return value if isinstance(value, bool) else None


AUTO_APPLY_CREDIT_WARNING: Final = {
    "code": "auto_apply_credit_on",
    "message": (
        "QuickBooks applies open credits to new invoices by itself (Account and settings > Sales > "
        "Automatically apply credits is on). Credits can then land on other invoices than the app "
        "says, and payments the app applies are posted only for what is left open. Turn it off in "
        "QuickBooks so credit memos are applied as the app says."
    ),
}


class CompanyPreferences:
    """Keeps the connection's company record in step with QBO's Preferences after the connect (the
    change worker hands it a fresh Preferences entity when QBO says they changed)."""

    def __init__(self, store: ConnectionStore) -> None:
        self._store = store

    def preferences_changed(self, tenant_id: str, preferences: Mapping[str, Any]) -> bool:
        """Store what changed; True when something did."""
        current = self._store.get(tenant_id)
        if current is None or current.company is None:
            return False
        wanted = auto_apply_credit(preferences)
        if wanted is None or wanted == current.company.auto_apply_credit:
            return False
        self._store.update_company(
            tenant_id, current.company.model_copy(update={"auto_apply_credit": wanted})
        )
        logger.info("company preferences changed", tenant_id=tenant_id, auto_apply_credit=wanted)
        return True


def company_warnings(company: CompanyRecord | None) -> list[dict[str, str]]:
    """What the firm should change in its QuickBooks company for the sync to follow the app."""
    if company is not None and company.auto_apply_credit:
        return [dict(AUTO_APPLY_CREDIT_WARNING)]
    return []


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedConnection:
    authorization_url: str
    state_expires_at: datetime


@dataclass(frozen=True)
class Redirect:
    """Send the browser to ``url`` (HTTP 302)."""

    url: str


@dataclass(frozen=True)
class Page:
    """A small HTML page for the browser (when there is nowhere safe to redirect to)."""

    status_code: int
    title: str
    message: str

    def html(self) -> str:
        title, message = html.escape(self.title), html.escape(self.message)
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{title}</title></head><body><h1>{title}</h1><p>{message}</p></body></html>"
        )


class CallbackResult(StrEnum):
    CONNECTED = "connected"
    DENIED = "denied"
    ERROR = "error"
    INVALID_STATE = "invalid_state"


@dataclass(frozen=True)
class CallbackOutcome:
    result: CallbackResult
    answer: Redirect | Page
    reason: str | None = None
    tenant_id: str | None = None
    realm_id: str | None = None
    replayed: bool = False

    @property
    def redirect_url(self) -> str | None:
        return self.answer.url if isinstance(self.answer, Redirect) else None


@dataclass(frozen=True)
class CallbackParams:
    """The query of Intuit's redirect to our callback; every field may be missing or hostile."""

    QUERY_NAMES: ClassVar[tuple[str, ...]] = ("code", "state", "realmId", "error", "error_description")

    code: str | None = None
    state: str | None = None
    realm_id: str | None = None
    error: str | None = None
    error_description: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str | None]) -> CallbackParams:
        return cls(
            code=query.get("code"),
            state=query.get("state"),
            realm_id=query.get("realmId"),
            error=query.get("error"),
            error_description=query.get("error_description"),
        )


@dataclass(frozen=True)
class DisconnectOutcome:
    tenant_id: str
    realm_id: str
    keep_mappings: bool
    disconnected_at: datetime
    already_disconnected: bool


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


class CompanyReader(Protocol):
    """What the flows need of a QBO client."""

    def company_info(self) -> Mapping[str, Any]: ...

    def preferences(self) -> Mapping[str, Any]: ...


class _FreshTokens:
    """The tokens of a code exchange before the vault holds them: used to prove the realm."""

    def __init__(self, tokens: TokenSet) -> None:
        self._tokens = tokens

    def access_token(self) -> str:
        return self._tokens.access_token.get_secret_value()

    def token_rejected(self, token: str) -> None:
        """A brand-new token refused by QBO needs no refresh: the realm is not this grant's."""


QboClientFactory = Callable[[str, TokenProvider], CompanyReader]

# Keep a tenant's last return URL as long as a grant can live (5 years) plus a margin.
RETURN_URL_RETENTION_SECONDS: Final = (5 * 365 + 30) * 86_400
_NEUTRAL_DISCONNECT_PAGE: Final = Page(
    200,
    "QuickBooks Online disconnected",
    "If you disconnected QuickBooks Online, the app now shows the connection as disconnected. "
    "You can reconnect from the app at any time.",
)


_RECONNECT_TITLE: Final = "Reconnect QuickBooks Online"
_RECONNECT_INCOMPLETE_PAGE: Final = Page(
    400,
    _RECONNECT_TITLE,
    "QuickBooks Online was not reconnected. Open the app and reconnect from its QuickBooks settings.",
)


def _reconnect_incomplete(reason: str, tenant_id: str | None = None) -> CallbackOutcome:
    """Every reconnect that did not connect ends on the same page, whatever the realm."""
    logger.warning("reconnect callback refused", reason=reason, tenant_id=tenant_id)
    return CallbackOutcome(
        CallbackResult.ERROR, _RECONNECT_INCOMPLETE_PAGE, reason=reason, tenant_id=tenant_id
    )


class ConnectionFlows:
    """Start, complete, inspect and end a tenant's QBO connection."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: ConnectionStore,
        vault: TokenVault,
        oauth: IntuitOAuth,
        states: OAuthStateStore,
        events: EventPublisher,
        clock: Clock,
        qbo_client: QboClientFactory,
        forget_mappings: Callable[[str], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        replay_wait_seconds: float = 5.0,
    ) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault
        self._oauth = oauth
        self._states = states
        self._events = events
        self._clock = clock
        self._qbo_client = qbo_client
        self._forget_mappings = forget_mappings
        self._sleep = sleep
        self._replay_wait = replay_wait_seconds
        self._codec = StateCodec(settings.state_signing_key.get_secret_value())

    # --- start ------------------------------------------------------------------------------------

    def start_connection(self, tenant_id: str, return_url: str) -> StartedConnection:
        """An Intuit consent URL whose state is bound to ``tenant_id`` and ``return_url``.

        A tenant that is already connected may start again: the consent renews its grant for the
        same company. Another company is refused at the callback while the tenant holds its realm.
        """
        check_tenant_id(tenant_id)
        check_return_url(return_url, self._settings.return_url_allowlist)
        now = _epoch(self._clock.now())
        state_id, state = self._codec.new()
        expires_at = now + self._settings.state_ttl_seconds
        self._states.put(OAuthState(state_id, tenant_id, return_url, created_at=now, expires_at=expires_at))
        logger.info("connection started", tenant_id=tenant_id)
        return StartedConnection(self._consent_url(state), datetime.fromtimestamp(expires_at, UTC))

    def _consent_url(self, state: str) -> str:
        challenge = self._codec.code_challenge(state) if self._settings.oauth_pkce else None
        return self._oauth.authorization_url(state, code_challenge=challenge)

    # --- callback ---------------------------------------------------------------------------------

    def complete_connection(self, params: CallbackParams) -> CallbackOutcome:
        """Intuit's redirect after consent (rules: the module docstring)."""
        try:
            claim = self._codec.reconnect_claim(params.state)
            if claim is not None:
                return self._complete_reconnect(claim, params)
            state_id = self._codec.verify(params.state)
        except InvalidStateError as error:
            return self._invalid_state(error)
        try:
            state = self._states.consume(
                state_id, _epoch(self._clock.now()), self._settings.state_ttl_seconds
            )
        except StateAlreadyUsedError as used:
            return self._replayed(used.state, params)
        except StateNotFoundError:
            return self._invalid_state(
                InvalidStateError(
                    "state_unknown", "This sign-in link is not known. Start again from the app."
                )
            )
        except StateExpiredError:
            return self._invalid_state(
                InvalidStateError("state_expired", "This sign-in link has expired. Start again from the app.")
            )
        outcome = self._complete(state, params)
        self._states.record_outcome(state_id, outcome.result.value, outcome.reason, outcome.realm_id)
        logger.info(
            "connection callback completed",
            tenant_id=state.tenant_id,
            realm_id=outcome.realm_id,
            result=outcome.result.value,
            reason=outcome.reason,
        )
        return outcome

    def _complete(self, state: OAuthState, params: CallbackParams) -> CallbackOutcome:
        if params.error is not None:
            reason = params.error if params.error in _AUTHORIZATION_ERRORS else "authorization_failed"
            result = CallbackResult.DENIED if params.error == "access_denied" else CallbackResult.ERROR
            return self._back(state, result, reason)
        if not params.code or not _CODE.fullmatch(params.code):
            return self._back(state, CallbackResult.ERROR, "missing_code")
        realm_id = params.realm_id
        if not realm_id or not _REALM_ID.fullmatch(realm_id):
            return self._back(state, CallbackResult.ERROR, "missing_realm")
        # Refusals that need no token come first: no grant is created for a company we refuse.
        refusal = self._refusal(state.tenant_id, realm_id)
        if refusal is not None:
            return self._back(state, CallbackResult.ERROR, refusal, realm_id)
        return self._exchange(state, params.code, params.state or "", realm_id)

    def _exchange(self, state: OAuthState, code: str, raw_state: str, realm_id: str) -> CallbackOutcome:
        """Record the code as used, then exchange it (once ever) and adopt the grant.

        The record comes first, so a concurrent or later replay of the code is refused without
        calling Intuit, where a second redemption would revoke the grant the first one made. When the
        exchange then fails the code is spent: a code is single-use at Intuit too, so the user starts
        the consent again.
        """
        digest = self._codec.code_digest(code)
        now = _epoch(self._clock.now())
        try:
            self._states.claim_code(digest, state.tenant_id, realm_id, now, now + CODE_RECORD_SECONDS)
        except CodeAlreadyUsedError as replay:
            return self._code_replayed(state, realm_id, digest, replay.used)
        outcome = self._exchange_and_adopt(state, code, raw_state, realm_id)
        self._states.record_code_result(digest, outcome.result.value)
        return outcome

    def _exchange_and_adopt(
        self, state: OAuthState, code: str, raw_state: str, realm_id: str
    ) -> CallbackOutcome:
        try:
            verifier = self._codec.code_verifier(raw_state) if self._settings.oauth_pkce else None
            tokens = self._oauth.exchange_code(code, code_verifier=verifier)
        except OAuthGrantError:
            return self._back(state, CallbackResult.ERROR, "authorization_expired", realm_id)
        except OAuthClientError:
            logger.error("intuit refused our client credentials", tenant_id=state.tenant_id)
            return self._back(state, CallbackResult.ERROR, "intuit_configuration", realm_id)
        except OAuthServiceError:
            return self._back(state, CallbackResult.ERROR, "intuit_unavailable", realm_id)
        return self._adopt(state, realm_id, tokens)

    def _code_replayed(
        self, state: OAuthState, realm_id: str, digest: str, used: UsedCode
    ) -> CallbackOutcome:
        """A code presented again: never exchanged again. When its first use connected this very
        tenant to this realm, and still does, the browser simply lands connected (waiting a little
        for a first callback still running, as a double click makes)."""
        logger.warning("authorization code replayed", tenant_id=state.tenant_id, realm_id=realm_id)
        deadline = time.monotonic() + self._replay_wait
        while used.result is None and time.monotonic() < deadline:
            self._sleep(0.2)
            used = self._states.used_code(digest) or used
        if (
            used.result == CallbackResult.CONNECTED
            and (used.tenant_id, used.realm_id) == (state.tenant_id, realm_id)
            and self._connected_to(state.tenant_id, realm_id)
        ):
            return self._back(state, CallbackResult.CONNECTED, None, realm_id, replayed=True)
        return self._back(state, CallbackResult.ERROR, "authorization_code_used", realm_id, replayed=True)

    def _complete_reconnect(self, claim: ReconnectClaim, params: CallbackParams) -> CallbackOutcome:
        """The callback of a consent started by Intuit's reconnect URL.

        The claim names a realm, not a tenant: the tenant is whoever holds that realm now, and the
        browser lands on that tenant's return URL only once a real code for that realm has connected
        it. Until then every answer is the same page, so a stranger holding a reconnect state learns
        nothing about which realms are connected.
        """
        if _epoch(self._clock.now()) >= claim.expires_at:
            return self._invalid_state(
                InvalidStateError("state_expired", "This sign-in link has expired. Start again from the app.")
            )
        state = self._reconnect_state(claim, params)
        if state is None or params.code is None:
            return _reconnect_incomplete("reconnect_refused")
        outcome = self._exchange(state, params.code, params.state or "", claim.realm_id)
        if outcome.result is not CallbackResult.CONNECTED:
            return _reconnect_incomplete(outcome.reason or "reconnect_failed", outcome.tenant_id)
        logger.info("connection reconnected", tenant_id=state.tenant_id, realm_id=claim.realm_id)
        return outcome

    def _reconnect_state(self, claim: ReconnectClaim, params: CallbackParams) -> OAuthState | None:
        """The connect attempt a reconnect claim stands for, when the callback fits it: no error, a
        code, the claim's realm, a tenant holding that realm and a return URL for it."""
        if params.error is not None or params.realm_id != claim.realm_id:
            return None
        if not params.code or not _CODE.fullmatch(params.code):
            return None
        tenant_id = self._store.owner_of(claim.realm_id)
        if tenant_id is None or self._refusal(tenant_id, claim.realm_id) is not None:
            return None
        return_url = self._return_url_of(tenant_id)
        if return_url is None:
            return None
        created_at = claim.expires_at - self._settings.state_ttl_seconds
        return OAuthState(claim.state_id, tenant_id, return_url, created_at, claim.expires_at)

    def _return_url_of(self, tenant_id: str) -> str | None:
        """The tenant's last return URL, else the first allow-list entry, if still allowed."""
        for return_url in (self._states.last_return_url(tenant_id), *self._settings.return_url_allowlist[:1]):
            if return_url is None:
                continue
            try:
                return check_return_url(return_url, self._settings.return_url_allowlist)
            except ReturnUrlError:
                continue  # the allow-list changed since: try the default
        return None

    def _refusal(self, tenant_id: str, realm_id: str) -> str | None:
        owner = self._store.owner_of(realm_id)
        if owner is not None and owner != tenant_id:
            return "realm_already_connected"
        current = self._store.get(tenant_id)
        if (
            current is not None
            and current.realm_id != realm_id
            and self._store.owner_of(current.realm_id) == tenant_id
        ):
            return "tenant_connected_to_another_company"
        return None

    def _adopt(self, state: OAuthState, realm_id: str, tokens: TokenSet) -> CallbackOutcome:
        """Prove the realm with the fresh tokens, claim it, hand the tokens to the vault; any refusal
        or failure before the vault holds them revokes the fresh grant at Intuit."""
        tenant_id = state.tenant_id
        saved = False
        try:
            client = self._qbo_client(realm_id, _FreshTokens(tokens))
            try:
                company = company_record(client.company_info(), client.preferences())
            except (AuthenticationError, AuthorizationError):
                logger.warning("callback realm is not the grant's", tenant_id=tenant_id, realm_id=realm_id)
                return self._back(state, CallbackResult.ERROR, "realm_mismatch", realm_id)
            except QboError as error:
                logger.warning(
                    "company facts unavailable", tenant_id=tenant_id, realm_id=realm_id, error=str(error)
                )
                return self._back(state, CallbackResult.ERROR, "intuit_unavailable", realm_id)
            try:
                self._store.claim_realm(realm_id, tenant_id, at=self._clock.now())
            except RealmTakenError:
                return self._back(state, CallbackResult.ERROR, "realm_already_connected", realm_id)
            previous = self._store.get(tenant_id)
            self._vault.save_new_tokens(tenant_id, realm_id, tokens)
            saved = True
        finally:
            if not saved:
                self._revoke_quietly(tokens, tenant_id, realm_id)
        now = self._clock.now()
        self._store.put_connection(tenant_id, realm_id, connected_at=now, company=company)
        self._vault.record_success(tenant_id, now)  # the company reads above were calls that worked
        self._states.remember_return_url(
            tenant_id, state.return_url, _epoch(now) + RETURN_URL_RETENTION_SECONDS
        )
        detail = {
            "realmId": realm_id,
            "companyName": company.name,
            "country": company.country,
            "currency": company.currency,
            "taxModel": company.tax_model,
            "reconnected": previous is not None and previous.realm_id == realm_id,
            "connectedAt": now.isoformat(),
        }
        self._publish(make_event(CONNECTION_CONNECTED, tenant_id, detail, realm_id, state.state_id))
        return self._back(state, CallbackResult.CONNECTED, None, realm_id)

    def _revoke_quietly(self, tokens: TokenSet, tenant_id: str, realm_id: str) -> None:
        try:
            self._oauth.revoke(tokens.refresh_token.get_secret_value())
        except OAuthFailureError as error:
            # Nothing else holds these tokens; unused, the grant dies after 100 days.
            logger.warning(
                "revoking a refused grant failed", tenant_id=tenant_id, realm_id=realm_id, error=error.error
            )

    def _back(
        self,
        state: OAuthState,
        result: CallbackResult,
        reason: str | None,
        realm_id: str | None = None,
        *,
        replayed: bool = False,
    ) -> CallbackOutcome:
        params = {"status": result.value}
        if reason:
            params["reason"] = reason
        if result is CallbackResult.CONNECTED and realm_id:
            params["realmId"] = realm_id
        return CallbackOutcome(
            result=result,
            answer=Redirect(with_params(state.return_url, params)),
            reason=reason,
            tenant_id=state.tenant_id,
            realm_id=realm_id,
            replayed=replayed,
        )

    @staticmethod
    def _invalid_state(error: InvalidStateError) -> CallbackOutcome:
        logger.warning("connection callback refused", reason=error.reason)
        page = Page(400, "QuickBooks Online connection failed", str(error))
        return CallbackOutcome(CallbackResult.INVALID_STATE, page, reason=error.reason)

    def _replayed(self, state: OAuthState, params: CallbackParams) -> CallbackOutcome:
        """The same callback again (double click, browser retry): the code is never exchanged twice.

        While the first callback still runs, wait a little for its outcome, then repeat it.
        """
        deadline = time.monotonic() + self._replay_wait
        while state.result is None and time.monotonic() < deadline:
            self._sleep(0.2)
            state = self._states.get(state.state_id) or state
        realm_id = params.realm_id if params.realm_id and _REALM_ID.fullmatch(params.realm_id) else None
        logger.info("connection callback replayed", tenant_id=state.tenant_id, first_result=state.result)
        if realm_id is not None and self._connected_to(state.tenant_id, realm_id):
            return self._back(state, CallbackResult.CONNECTED, None, realm_id, replayed=True)
        if state.result in {CallbackResult.DENIED, CallbackResult.ERROR} and state.reason:
            return self._back(
                state, CallbackResult(state.result), state.reason, state.realm_id, replayed=True
            )
        return self._back(state, CallbackResult.ERROR, "state_already_used", realm_id, replayed=True)

    def _connected_to(self, tenant_id: str, realm_id: str) -> bool:
        current = self._store.get(tenant_id)
        return current is not None and current.realm_id == realm_id and current.refreshable

    # --- disconnect -------------------------------------------------------------------------------

    def disconnect(self, tenant_id: str, keep_mappings: bool) -> DisconnectOutcome:
        """Revoke at Intuit, delete the tokens, mark the connection disconnected; idempotent.

        ``keep_mappings``: the tenant keeps its realm, so a later consent for the same company
        carries on with every mapping (and no other tenant can take the company meanwhile).
        Otherwise the realm is released (another tenant may connect it) and the event tells the
        mapping owners to clear the tenant's mappings. A repeat does no new work and publishes the
        same event again (same id), so a crash between the steps loses nothing. "Keep" may become
        "remove" later; "remove" cannot become "keep" (MappingsAlreadyRemovedError).
        """
        check_tenant_id(tenant_id)
        current = self._store.get(tenant_id)
        if current is None:
            raise NeverConnectedError(tenant_id, f"tenant {tenant_id} has no QuickBooks Online connection")
        repeat = current.health is Health.DISCONNECTED and current.keep_mappings in {keep_mappings, None}
        if current.health is Health.DISCONNECTED and current.keep_mappings is False and keep_mappings:
            raise MappingsAlreadyRemovedError(
                "this connection was disconnected with its mappings removed; they cannot be kept now"
            )
        self._vault.revoke_and_delete(tenant_id)
        if not keep_mappings:
            self._store.release_realm(current.realm_id, tenant_id)
            if self._forget_mappings is not None:
                # Idempotent: a repeated "remove" (or a retry after a crash) clears what is left.
                self._forget_mappings(tenant_id)
        if repeat and current.disconnected_at is not None:
            at = current.disconnected_at
        else:
            at = self._clock.now().replace(microsecond=0)  # as stored: a repeat answers the same
            previous = self._store.mark_disconnected(tenant_id, keep_mappings, at)
            if previous is not None and previous is not Health.DISCONNECTED:
                reason = HealthReason.DISCONNECTED_BY_TENANT
                change = HealthChange(tenant_id, current.realm_id, previous, Health.DISCONNECTED, reason, at)
                self._publish(change.event())
        mode = "keep" if keep_mappings else "remove"
        detail = {
            "realmId": current.realm_id,
            "keepMappings": keep_mappings,
            "disconnectedAt": at.isoformat(),
        }
        self._publish(
            make_event(
                CONNECTION_DISCONNECTED,
                tenant_id,
                detail,
                current.realm_id,
                str(_epoch(at)),
                mode,
            )
        )
        logger.info("connection disconnected", tenant_id=tenant_id, realm_id=current.realm_id, mappings=mode)
        return DisconnectOutcome(tenant_id, current.realm_id, keep_mappings, at, already_disconnected=repeat)

    # --- status -----------------------------------------------------------------------------------

    def connection_status(self, tenant_id: str) -> dict[str, Any]:
        """Connected or not, realm, company, health, token expiries, last successful call; no token."""
        check_tenant_id(tenant_id)
        answer: dict[str, Any] = dict.fromkeys(_STATUS_FIELDS)
        answer.update(self._vault.status(tenant_id))
        current = self._store.get(tenant_id)
        if current is not None:
            company = current.company
            answer["company"] = company.model_dump() if company is not None else None
            answer["company_name"] = company.name if company is not None else None
            answer["keep_mappings"] = current.keep_mappings
            answer["warnings"] = company_warnings(company)
        answer["warnings"] = answer["warnings"] or []
        answer["connected"] = bool(answer["connected"])
        return answer

    # --- Intuit's disconnect and reconnect URLs -----------------------------------------------------

    def intuit_disconnected(self, realm_id: str | None) -> Page:
        """Intuit sends the user here after they disconnected the app in QuickBooks.

        The request proves nothing (anyone can call it), so the grant itself is asked: a QBO call
        with the tenant's tokens. Only when Intuit refuses them (refresh says invalid_grant) is
        the connection marked revoked. The page is the same whatever happened, so the URL tells a
        stranger nothing about which companies are connected.
        """
        if not realm_id or not _REALM_ID.fullmatch(realm_id):
            return _NEUTRAL_DISCONNECT_PAGE
        tenant_id = self._store.owner_of(realm_id)
        current = self._store.get(tenant_id) if tenant_id is not None else None
        if tenant_id is None or current is None or current.realm_id != realm_id or not current.refreshable:
            return _NEUTRAL_DISCONNECT_PAGE
        try:
            self._qbo_client(realm_id, self._vault.provider(tenant_id)).company_info()
        except ConnectionDeadError:
            self._vault.mark_revoked(tenant_id)
            logger.info("intuit disconnect confirmed", tenant_id=tenant_id, realm_id=realm_id)
        except (VaultError, QboError) as error:  # Intuit or KMS failing now: no verdict, no change
            logger.warning("intuit disconnect not verifiable now", tenant_id=tenant_id, error=str(error))
        else:
            logger.info("intuit disconnect notice not confirmed: the grant works", tenant_id=tenant_id)
        return _NEUTRAL_DISCONNECT_PAGE

    def intuit_reconnect(self, realm_id: str | None) -> Redirect | Page:
        """Intuit's reconnect link (public, anonymous): a consent whose signed state names the realm.

        The answer is the same redirect for every well-formed realm id, connected or not, and costs
        no database read or write: the state carries its realm and expiry under our key. At the
        callback it reconnects the tenant holding that realm, and only with a code for that realm.
        """
        if not realm_id or not _REALM_ID.fullmatch(realm_id):
            return Page(400, _RECONNECT_TITLE, "This reconnect link is incomplete: it names no company.")
        expires_at = _epoch(self._clock.now()) + self._settings.state_ttl_seconds
        return Redirect(self._consent_url(self._codec.new_reconnect(realm_id, expires_at)))

    def _publish(self, event: OutboundEvent) -> None:
        try:
            self._events.publish(event)
        except EventPublishError as error:
            # The connection change is stored; a lost notification must not undo it.
            logger.error("event publish failed", detail_type=event.detail_type, error=str(error))


_STATUS_FIELDS: Final = (
    "tenant_id",
    "connected",
    "realm_id",
    "company_name",
    "company",
    "health",
    "reason",
    "health_changed_at",
    "access_expires_at",
    "refresh_expires_at",
    "hard_expires_at",
    "hard_expires_in_days",
    "last_refresh_at",
    "last_success_at",
    "refresh_failures",
    "connected_at",
    "disconnected_at",
    "keep_mappings",
    "warnings",
)
