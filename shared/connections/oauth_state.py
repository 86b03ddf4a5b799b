"""The OAuth state of a consent: the return-URL allow-list (no open redirect), the signed state and
what it binds (PKCE verifier, reconnect claim), and the runtime-table records of states, redeemed
codes and each tenant's last return URL.

The connection flows (``shared.connections.flows``) and Intuit's callback
(``shared.connections.callback``) build on these; the rules are in ``flows``' docstring.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from shared.adapters.dynamo import ConditionFailedError, failed_conditions
from shared.connections.errors import InvalidStateError, ReturnUrlError
from shared.kernel import constants

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


def epoch(at: datetime) -> int:
    """Epoch seconds, as the runtime table keeps a state's times and expiries."""
    return int(at.timestamp())
