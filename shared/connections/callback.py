"""Intuit's callback after consent: the rules of the module docstring of
``shared.connections.flows`` (single-use state, a code exchanged once ever, PKCE, the realm proved
before it is claimed, reconnect states), and what the browser is answered.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final, Protocol

from shared.connections.company import company_record
from shared.connections.errors import InvalidStateError, ReturnUrlError
from shared.connections.oauth_state import (
    CODE_RECORD_SECONDS,
    CodeAlreadyUsedError,
    OAuthState,
    OAuthStateStore,
    ReconnectClaim,
    StateAlreadyUsedError,
    StateCodec,
    StateExpiredError,
    StateNotFoundError,
    UsedCode,
    check_return_url,
    epoch,
    with_params,
)
from shared.connections.store import ConnectionStore, RealmTakenError
from shared.connections.vault import TokenProvider, TokenVault
from shared.kernel.clock import Clock
from shared.kernel.events import CONNECTION_CONNECTED, OutboundEvent, make_event
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

REALM_ID_PATTERN: Final = r"^[0-9]{1,32}$"  # Intuit's realm ids are decimal strings
REALM_ID = re.compile(REALM_ID_PATTERN)
_CODE = re.compile(r"^[\x21-\x7e]{1,512}$")  # Intuit: a code is at most 512 characters
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

# --- results ---------------------------------------------------------------------------------------


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


RECONNECT_TITLE: Final = "Reconnect QuickBooks Online"
_RECONNECT_INCOMPLETE_PAGE: Final = Page(
    400,
    RECONNECT_TITLE,
    "QuickBooks Online was not reconnected. Open the app and reconnect from its QuickBooks settings.",
)


def _reconnect_incomplete(reason: str, tenant_id: str | None = None) -> CallbackOutcome:
    """Every reconnect that did not connect ends on the same page, whatever the realm."""
    logger.warning("reconnect callback refused", reason=reason, tenant_id=tenant_id)
    return CallbackOutcome(
        CallbackResult.ERROR, _RECONNECT_INCOMPLETE_PAGE, reason=reason, tenant_id=tenant_id
    )


class OAuthCallback:
    """Intuit's redirect after consent (``ConnectionFlows.complete_connection``): the state checked
    and consumed once, the code recorded then exchanged once ever, the realm proved with the fresh
    tokens and claimed, the tokens handed to the vault; a replayed callback repeats the first one's
    outcome.  Also the callback of a consent started by Intuit's reconnect URL."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: ConnectionStore,
        vault: TokenVault,
        oauth: IntuitOAuth,
        states: OAuthStateStore,
        clock: Clock,
        qbo_client: QboClientFactory,
        codec: StateCodec,
        publish: Callable[[OutboundEvent], None],
        sleep: Callable[[float], None],
        replay_wait_seconds: float,
    ) -> None:
        self._settings = settings
        self._store = store
        self._vault = vault
        self._oauth = oauth
        self._states = states
        self._clock = clock
        self._qbo_client = qbo_client
        self._codec = codec
        self._publish = publish
        self._sleep = sleep
        self._replay_wait = replay_wait_seconds

    def complete(self, params: CallbackParams) -> CallbackOutcome:
        """Intuit's redirect after consent (rules: the module docstring)."""
        try:
            claim = self._codec.reconnect_claim(params.state)
            if claim is not None:
                return self._complete_reconnect(claim, params)
            state_id = self._codec.verify(params.state)
        except InvalidStateError as error:
            return self._invalid_state(error)
        try:
            state = self._states.consume(state_id, epoch(self._clock.now()), self._settings.state_ttl_seconds)
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
        if not realm_id or not REALM_ID.fullmatch(realm_id):
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
        now = epoch(self._clock.now())
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
        if epoch(self._clock.now()) >= claim.expires_at:
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
            tenant_id, state.return_url, epoch(now) + RETURN_URL_RETENTION_SECONDS
        )
        from shared.kernel.event_models import ConnectionConnected

        detail = ConnectionConnected(
            realm_id=realm_id,
            company_name=company.name,
            country=company.country,
            currency=company.currency,
            tax_model=company.tax_model,
            reconnected=previous is not None and previous.realm_id == realm_id,
            connected_at=now.isoformat(),
        )
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
        realm_id = params.realm_id if params.realm_id and REALM_ID.fullmatch(params.realm_id) else None
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
