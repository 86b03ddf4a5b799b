"""The connections' errors, apart from the flows, the store and the vault that raise them.

The tenant API registers a handler for several of them when it is imported; here they cost nothing
to import, where ``shared.connections.flows`` (with the store, the vault and their models) would
cost a cold start more than the API's own routes (docs/packaging.md, "Cold start").  ``flows`` and
``vault`` raise them; ``vault`` re-exports its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.connections.health import Health


class NeverConnectedError(LookupError):
    """The tenant has never connected a QBO company: QBO Link holds no connection item for it (a
    disconnected tenant keeps its item).  The one exception for it, whoever finds out (the store,
    the vault, the flows, the push); the tenant API answers it 404 ``not_connected``."""

    def __init__(self, tenant_id: str, message: str | None = None) -> None:
        super().__init__(message or f"tenant {tenant_id!r} has never connected a QBO company")
        self.tenant_id = tenant_id


# --- the connection flows -------------------------------------------------------------------------


class ConnectionFlowError(Exception):
    """A connection request the flows refuse; the message is safe to show to the caller."""


class InvalidTenantIdError(ConnectionFlowError, ValueError):
    pass


class ReturnUrlError(ConnectionFlowError, ValueError):
    """The return URL is malformed or outside the allow-list (the message says which)."""


class MappingsAlreadyRemovedError(ConnectionFlowError):
    """A disconnect asked to keep mappings after an earlier one removed them."""


class InvalidStateError(ConnectionFlowError):
    """The callback's state is forged, unknown or expired (``reason`` says which)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- the token vault ------------------------------------------------------------------------------


class VaultError(Exception):
    pass


class ConnectionDeadError(VaultError):
    """The connection cannot get tokens any more: the tenant must reconnect (or has disconnected)."""

    def __init__(self, tenant_id: str, health: Health | None, reason: str | None) -> None:
        super().__init__(f"connection of tenant {tenant_id} is {health}: {reason}")
        self.tenant_id = tenant_id
        self.health = health
        self.reason = reason


class TokenRefreshError(VaultError):
    """A refresh failed in a way that may pass (Intuit or the network); retry later."""

    def __init__(
        self,
        tenant_id: str,
        error: str,
        description: str | None = None,
        intuit_tid: str | None = None,
    ) -> None:
        super().__init__(f"token refresh for tenant {tenant_id} failed: {error}")
        self.tenant_id = tenant_id
        self.error = error
        self.description = description
        self.intuit_tid = intuit_tid


class TokenCryptoError(VaultError):
    """KMS refused to encrypt or decrypt (wrong key, wrong encryption context, KMS unavailable)."""

    def __init__(self, tenant_id: str, operation: str, code: str) -> None:
        super().__init__(f"KMS {operation} for tenant {tenant_id} failed: {code}")
        self.tenant_id = tenant_id
        self.code = code
