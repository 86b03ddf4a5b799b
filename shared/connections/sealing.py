"""Tokens sealed with KMS: each ciphertext bound to its tenant and realm by the encryption context,
and the plaintext access token kept in memory per token version, so a Lambda decrypts it once per
refresh rather than once per QBO call.

``TokenVault`` (``shared.connections.vault``) decides when tokens are read, refreshed and replaced;
this module only turns them into ciphertexts and back.  Plaintext tokens exist only in memory and
are never logged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from shared.adapters.dynamo import aws_errors
from shared.connections.errors import TokenCryptoError
from shared.connections.store import Connection, StoredTokens
from shared.qbo.oauth import TokenSet

TOKEN_PURPOSE: Final = "qbo-oauth-token"  # noqa: S105 - the encryption-context purpose, not a secret


def encryption_context(tenant_id: str, realm_id: str) -> dict[str, str]:
    """The KMS encryption context binding a ciphertext to its tenant and realm."""
    return {"tenant_id": tenant_id, "realm_id": realm_id, "purpose": TOKEN_PURPOSE}


class TokenSealer:
    """Encrypts a token set for the connection store and decrypts what it holds (KMS), remembering
    each tenant's latest plaintext access token with its token version."""

    def __init__(self, kms_client: Any, kms_key_id: str) -> None:
        self._kms = kms_client
        self._key_id = kms_key_id
        self._lock = threading.Lock()
        # tenant -> (token_version, access token): saves a KMS call while the version is unchanged.
        self._plain: dict[str, tuple[int, str]] = {}

    # --- the plaintext access token ----------------------------------------------------------------

    def access_plain(self, connection: Connection) -> str:
        """The connection's access token in clear: remembered for its version, or decrypted."""
        with self._lock:
            cached = self._plain.get(connection.tenant_id)
        if cached is not None and cached[0] == connection.token_version:
            return cached[1]
        assert connection.access_token_ct is not None  # callers checked has_tokens
        token = self.decrypt(connection, connection.access_token_ct)
        self.remember(connection.tenant_id, connection.token_version, token)
        return token

    def remember(self, tenant_id: str, version: int, token: str) -> None:
        """Keep ``token`` as the tenant's access token at ``version`` unless a newer one is kept."""
        with self._lock:
            current = self._plain.get(tenant_id)
            if current is None or current[0] <= version:
                self._plain[tenant_id] = (version, token)

    def forget(self, tenant_id: str) -> None:
        with self._lock:
            self._plain.pop(tenant_id, None)

    # --- KMS ---------------------------------------------------------------------------------------

    def seal(self, tenant_id: str, realm_id: str, tokens: TokenSet) -> StoredTokens:
        return StoredTokens(
            access_token_ct=self._encrypt(tenant_id, realm_id, tokens.access_token.get_secret_value()),
            refresh_token_ct=self._encrypt(tenant_id, realm_id, tokens.refresh_token.get_secret_value()),
            access_expires_at=tokens.access_expires_at,
            refresh_expires_at=tokens.refresh_expires_at,
            hard_expires_at=tokens.hard_expires_at,
        )

    def _encrypt(self, tenant_id: str, realm_id: str, plaintext: str) -> bytes:
        with aws_errors(_crypto_failure(tenant_id, "encrypt"), cause=False):
            answer = self._kms.encrypt(
                KeyId=self._key_id,
                Plaintext=plaintext.encode(),
                EncryptionContext=encryption_context(tenant_id, realm_id),
            )
        return bytes(answer["CiphertextBlob"])

    def decrypt(self, connection: Connection, ciphertext: bytes) -> str:
        with aws_errors(_crypto_failure(connection.tenant_id, "decrypt"), cause=False):
            answer = self._kms.decrypt(
                KeyId=self._key_id,
                CiphertextBlob=ciphertext,
                EncryptionContext=encryption_context(connection.tenant_id, connection.realm_id),
            )
        return bytes(answer["Plaintext"]).decode()


def _crypto_failure(tenant_id: str, operation: str) -> Callable[[str, Exception], TokenCryptoError]:
    """What a refused KMS call becomes: the tenant, the operation and KMS's error code."""

    def failure(code: str, _error: Exception) -> TokenCryptoError:
        return TokenCryptoError(tenant_id, operation, code or "unknown")

    return failure
