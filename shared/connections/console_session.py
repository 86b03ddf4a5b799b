"""Console sessions: short-lived bearer tokens that let a firm's administrator's browser call its own
tenant's routes through ``/console/v1/...`` (docs/console.md, "Access and security").

The host app's backend mints one (``POST /v1/tenants/{tenant_id}/console-sessions``, IAM) and hands
the console URL to the signed-in administrator; the token travels in the URL's fragment, which a
browser never sends to a server, so no access log holds it.

A token is ``<payload>.<mac>``: the payload is base64url of ``1:<tenant id>:<expiry>:<session id>``
(version, tenant, epoch seconds, 96 random bits), the MAC is HMAC-SHA256 over the payload under a
key derived from the OAuth state key with its own label, so no state, PKCE verifier or code digest
can ever pass for a session and the reverse.  Nothing is stored: a session lives until its expiry
(at most ``MAX_TTL_SECONDS``) and ends early only when the state key is rotated.

Pure: no AWS, no clock of its own (the caller gives ``now``), no logging; a token is never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from shared.kernel.constants import TENANT_ID_PATTERN

MIN_TTL_SECONDS: Final = 60
MAX_TTL_SECONDS: Final = 12 * 3600
DEFAULT_TTL_SECONDS: Final = 3600
_VERSION: Final = "1"
_KEY_LABEL: Final = b"qbo-link console session key v1"
_MAC_CONTEXT: Final = b"qbo-link console session v1\x00"
_TOKEN: Final = re.compile(r"^([A-Za-z0-9_-]{8,200})\.([A-Za-z0-9_-]{43})$")
_TENANT: Final = re.compile(TENANT_ID_PATTERN)
_EXPIRY: Final = re.compile(r"^[0-9]{1,12}$")
_SESSION_ID: Final = re.compile(r"^[A-Za-z0-9_-]{16}$")


class ConsoleSessionError(Exception):
    """A token that opens no session; ``kind`` is ``invalid`` (malformed, forged, another key) or
    ``expired`` (ours, but past its expiry)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ConsoleSession:
    tenant_id: str
    expires_at: int  # epoch seconds; valid while now < expires_at
    session_id: str  # random; names the session (never the token) where one must be told apart


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ConsoleSessionCodec:
    """Mints and verifies console session tokens under a key derived from the OAuth state key."""

    def __init__(self, state_key: str) -> None:
        if len(state_key) < 16:
            raise ValueError("the OAuth state signing key must have at least 16 characters")
        self._key = hmac.new(state_key.encode(), _KEY_LABEL, hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, _MAC_CONTEXT + payload.encode("ascii"), hashlib.sha256).digest())

    def mint(
        self, tenant_id: str, now: int, ttl_seconds: int = DEFAULT_TTL_SECONDS
    ) -> tuple[str, ConsoleSession]:
        """A fresh ``(token, session)`` for ``tenant_id``, valid ``ttl_seconds`` from ``now``."""
        if not _TENANT.fullmatch(tenant_id):
            raise ValueError("not a tenant id")
        if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"ttl_seconds must be {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}")
        session = ConsoleSession(tenant_id, now + ttl_seconds, secrets.token_urlsafe(12))
        payload = _b64(f"{_VERSION}:{tenant_id}:{session.expires_at}:{session.session_id}".encode("ascii"))
        return f"{payload}.{self._mac(payload)}", session

    def verify(self, token: str, now: int) -> ConsoleSession:
        """The session ``token`` opens at ``now``, or ConsoleSessionError."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise ConsoleSessionError("invalid", "the console session is not valid")
        payload, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise ConsoleSessionError("invalid", "the console session is not valid")
        try:
            text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("ascii")
        except (binascii.Error, ValueError):
            raise ConsoleSessionError("invalid", "the console session is not valid") from None
        fields = text.split(":")
        if (
            len(fields) != 4
            or fields[0] != _VERSION
            or not _TENANT.fullmatch(fields[1])
            or not _EXPIRY.fullmatch(fields[2])
            or not _SESSION_ID.fullmatch(fields[3])
        ):
            raise ConsoleSessionError("invalid", "the console session is not valid")
        session = ConsoleSession(fields[1], int(fields[2]), fields[3])
        if now >= session.expires_at:
            raise ConsoleSessionError("expired", "the console session has expired; open the console again")
        if session.expires_at - now > MAX_TTL_SECONDS:
            # Only a holder of the key could mint it; refused all the same, as no mint does this.
            raise ConsoleSessionError("invalid", "the console session is not valid")
        return session
