"""The process's collaborators, built on first use from ``get_settings()`` and boto3, then cached.

Nothing happens at import: a Lambda (or a test inside ``mock_aws``) pays for a client only when a
handler first asks for it, so clients bind to whatever AWS the process sees at that moment. Endpoint
URLs come from boto3's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` support, which is
how the local stack points every client at moto's server.

``override()`` lets the local stack and tests swap the clock, the event publisher, the settings,
the HTTP clients, the push queue or the push worker's QBO clients before first use; ``reset()``
forgets everything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import httpx2

    from shared.adapters.sqs import FifoSender
    from shared.connections.console_session import ConsoleSessionCodec
    from shared.connections.flows import ConnectionFlows
    from shared.connections.oauth_state import OAuthStateStore
    from shared.connections.onboarding import Onboarder
    from shared.connections.store import Connection, ConnectionStore
    from shared.connections.vault import TokenProvider, TokenVault
    from shared.delivery.deliverer import EventDeliverer
    from shared.delivery.settings import DeliverySettings
    from shared.history.exchanges import ExchangeLog
    from shared.kernel.clock import Clock
    from shared.kernel.events import EventPublisher
    from shared.kernel.settings import Settings, WebhookSettings
    from shared.mapping.catalog import AppCatalog, QboCache
    from shared.mapping.links import LinkStore
    from shared.mapping.service import MappingService, OnboardOutcome
    from shared.mapping.versions import VersionLedger
    from shared.pull.changes import ApplyReport, PullService
    from shared.pull.notifications import NotificationIntake
    from shared.pull.sweep import SweepFanOut
    from shared.push.bulk import BulkJobStore
    from shared.push.posting_log import PostingLog
    from shared.push.service import PushQueue, PushService, QueueMessage, RecheckScheduled
    from shared.push.settings_store import TenantSettingsStore
    from shared.push.worker import PushWorker
    from shared.qbo.client import QboCall, QboClient
    from shared.qbo.environment import IntuitEndpoints
    from shared.qbo.governor import RateGovernor
    from shared.qbo.oauth import IntuitOAuth

_T = TypeVar("_T")
_lock = threading.RLock()
_built: dict[str, Any] = {}
_overrides: dict[str, Any] = {}


def override(
    *,
    settings: Settings | None = None,
    clock: Clock | None = None,
    events: EventPublisher | None = None,
    oauth_http_factory: Callable[..., Any] | None = None,
    qbo_http: httpx2.Client | None = None,
    push_queue: PushQueue | None = None,
    push_qbo_client: Callable[[Connection], QboClient] | None = None,
) -> None:
    """Replace collaborators before first use (the local stack, tests); ``None`` leaves one alone.

    ``push_queue`` stands in for the SQS push queue; ``push_qbo_client`` builds the push worker's
    QBO client for a connection (tests use it for a client without Intuit's minute-long waits).
    """
    given = {
        "settings": settings,
        "clock": clock,
        "events": events,
        "oauth_http_factory": oauth_http_factory,
        "qbo_http": qbo_http,
        "push_queue": push_queue,
        "push_qbo_client": push_qbo_client,
    }
    with _lock:
        _forget_built()
        _overrides.update({name: value for name, value in given.items() if value is not None})


def reset() -> None:
    """Forget every built collaborator and override, and the cached settings and endpoints."""
    from shared.kernel.settings import get_settings
    from shared.qbo.environment import clear_endpoint_cache

    with _lock:
        _forget_built()
        _overrides.clear()
    get_settings.cache_clear()
    clear_endpoint_cache()


def _forget_built() -> None:
    http = _built.get("qbo_http")
    if http is not None and http is not _overrides.get("qbo_http"):
        http.close()  # ours: the pool would otherwise leak its sockets
    delivery_http = _built.get("delivery_http")
    if delivery_http is not None:
        delivery_http.close()
    _built.clear()


def _once(name: str, build: Callable[[], _T]) -> _T:
    with _lock:
        if name not in _built:
            _built[name] = _overrides[name] if name in _overrides else build()
        value: _T = _built[name]
        return value


def settings() -> Settings:
    from shared.kernel.settings import get_settings

    return _once("settings", get_settings)


def webhook_settings() -> WebhookSettings:
    """The webhooks function's own settings (it holds no OAuth client or state key)."""
    import os

    from shared.kernel.settings import webhook_settings_from_env

    return _once("webhook_settings", lambda: webhook_settings_from_env(os.environ))


def clock() -> Clock:
    from shared.kernel.clock import SystemClock

    return _once("clock", SystemClock)


def dynamodb() -> Any:
    import boto3

    return _once("dynamodb", lambda: boto3.resource("dynamodb"))


def kms() -> Any:
    import boto3

    return _once("kms", lambda: boto3.client("kms"))


def events() -> EventPublisher:
    def build() -> EventPublisher:
        import boto3

        from shared.kernel.events import EventBridgePublisher

        return EventBridgePublisher(boto3.client("events"), settings().event_bus_name)

    return _once("events", build)


def endpoints() -> IntuitEndpoints:
    from shared.qbo.environment import endpoints_for

    return _once("endpoints", lambda: endpoints_for(settings()))


def oauth() -> IntuitOAuth:
    def build() -> IntuitOAuth:
        from shared.qbo.oauth import IntuitOAuth

        factory = _overrides.get("oauth_http_factory")
        return IntuitOAuth(settings(), endpoints(), clock=clock(), http_factory=factory)

    return _once("oauth", build)


def store() -> ConnectionStore:
    from shared.connections.store import ConnectionStore

    return _once(
        "store",
        lambda: ConnectionStore(
            dynamodb().Table(settings().connections_table), dynamodb().Table(settings().runtime_table)
        ),
    )


def states() -> OAuthStateStore:
    from shared.connections.oauth_state import OAuthStateStore

    return _once("states", lambda: OAuthStateStore(dynamodb().Table(settings().runtime_table)))


def console_sessions() -> ConsoleSessionCodec:
    """The console's session tokens, under a key derived from the OAuth state key (docs/console.md)."""
    from shared.connections.console_session import ConsoleSessionCodec

    return _once(
        "console_sessions", lambda: ConsoleSessionCodec(settings().state_signing_key.get_secret_value())
    )


def vault() -> TokenVault:
    def build() -> TokenVault:
        from shared.connections.vault import TokenVault

        # The lease must outlive one call to Intuit's token endpoint, or a slow answer lets a second
        # worker refresh too (harmless thanks to the conditional commit, but a wasted rotation).
        lease = int(settings().http_timeout_seconds) + 15
        return TokenVault(
            store(), kms(), settings().kms_key_id, oauth(), events(), clock(), lease_seconds=lease
        )

    return _once("vault", build)


def qbo_http() -> httpx2.Client:
    """One HTTP client (connection pool) for every realm's QBO calls in this process."""

    def build() -> httpx2.Client:
        import httpx2

        return httpx2.Client(timeout=settings().http_timeout_seconds)

    return _once("qbo_http", build)


def governor() -> RateGovernor:
    """The per-realm budgets every Lambda shares (runtime table); real time, never the test clock."""
    from shared.qbo.governor import RateGovernor

    return _once(
        "governor", lambda: RateGovernor(dynamodb().Table(settings().runtime_table), settings().governor)
    )


def pull_observer() -> Callable[[ApplyReport], None]:
    """What the change worker reports each delivery and sweep to: the function's metrics."""
    from shared.pull.metrics import record_pull

    return record_pull


def recheck_observer() -> Callable[[str, str, RecheckScheduled], None]:
    """What the push service reports each recheck it was asked for to: the function's metrics."""
    from shared.push.metrics import record_recheck

    return record_recheck


def qbo_call_observer() -> Callable[[QboCall], None]:
    """What every QBO client reports each call to: the function's metrics (latency, throttling)."""
    from shared.qbo.metrics import record_qbo_call

    return record_qbo_call


def qbo_client(realm_id: str, tokens: TokenProvider) -> QboClient:
    """A QBO client for one realm; tokens from the vault (or, at the callback, a fresh exchange)."""
    from shared.qbo.client import QboClient

    return QboClient(
        realm_id,
        endpoints().api_base_url + "/v3",  # IntuitEndpoints gives the host root, the client wants /v3
        tokens,
        governor=governor(),
        http=qbo_http(),
        minor_version=settings().minor_version,
        clock=clock(),
        observer=qbo_call_observer(),
    )


def connections() -> ConnectionFlows:
    def build() -> ConnectionFlows:
        from shared.connections.flows import ConnectionFlows

        return ConnectionFlows(
            settings=settings(),
            store=store(),
            vault=vault(),
            oauth=oauth(),
            states=states(),
            events=events(),
            clock=clock(),
            qbo_client=qbo_client,
            forget_mappings=forget_mappings,
        )

    return _once("connections", build)


def onboarder() -> Onboarder:
    """The onboarding after a connection (the onboard function): the mapping service's ``onboard``,
    recorded on the connection item and announced once (docs/events.md, "Onboarding Finished")."""

    def build() -> Onboarder:
        from shared.connections.onboarding import Onboarder

        return Onboarder(store(), _onboard_mappings, events(), clock())

    return _once("onboarder", build)


def _onboard_mappings(tenant_id: str) -> OnboardOutcome:
    return mappings().onboard(tenant_id)


def app_catalog() -> AppCatalog:
    from shared.mapping.catalog import AppCatalog

    return _once("app_catalog", lambda: AppCatalog(dynamodb().Table(settings().links_table), clock()))


def qbo_cache() -> QboCache:
    """QBO's lists as QBO Link last read them (links table): what mapping and pull both use."""
    from shared.mapping.catalog import QboCache

    return _once("qbo_cache", lambda: QboCache(dynamodb().Table(settings().links_table), clock()))


def exchange_log() -> ExchangeLog:
    """The exchange history (runtime table) that push and pull both write."""
    from shared.history.exchanges import ExchangeLog

    return _once("exchange_log", lambda: ExchangeLog(dynamodb().Table(settings().runtime_table), clock()))


def bulk_jobs() -> BulkJobStore:
    """The bulk requests' jobs (runtime table): what ``GET .../jobs/{id}`` follows."""
    from shared.push.bulk import BulkJobStore

    return _once("bulk_jobs", lambda: BulkJobStore(dynamodb().Table(settings().runtime_table), clock()))


def mappings() -> MappingService:
    def build() -> MappingService:
        from shared.mapping.service import MappingService

        return MappingService(
            app_catalog(),
            qbo_cache(),
            link_store(),
            tenant_qbo_client,
            events(),
            clock(),
            tenant_settings=push_settings_store().get,
            mappings_changed=mappings_changed,
            versions=version_ledger(),
        )

    return _once("mappings", build)


def mappings_changed(tenant_id: str, operation: str, kinds: Collection[str]) -> None:
    """What the mapping service calls after a link, an export, an import or an automatch: the
    documents waiting for such a link are judged again through the push queue (docs/push.md)."""
    push_service().mappings_changed(tenant_id, operation, kinds)


# --- push (docs/push.md) ---------------------------------------------------------------------------


def posting_log() -> PostingLog:
    from shared.push.posting_log import PostingLog

    return _once("posting_log", lambda: PostingLog(dynamodb().Table(settings().posting_log_table), clock()))


def link_store() -> LinkStore:
    from shared.mapping.links import LinkStore

    return _once("link_store", lambda: LinkStore(dynamodb().Table(settings().links_table), clock()))


def push_settings_store() -> TenantSettingsStore:
    """The tenants' push settings (beside their connection, in the connections table)."""
    from shared.push.settings_store import TenantSettingsStore

    return _once(
        "push_settings_store",
        lambda: TenantSettingsStore(dynamodb().Table(settings().connections_table), clock()),
    )


def push_queue() -> PushQueue:
    """The SQS FIFO push queue (``settings().push_queue_url``; only the functions that enqueue have it)."""

    def build() -> PushQueue:
        import boto3

        from shared.kernel import constants
        from shared.kernel.settings import SettingsError
        from shared.push.service import SqsPushQueue

        url = settings().push_queue_url
        if not url:
            raise SettingsError(f"{constants.PUSH_QUEUE_URL_ENV} is not set: this function cannot push")
        return SqsPushQueue(boto3.client("sqs"), url)

    return _once("push_queue", build)


def push_qbo_client(connection: Connection) -> QboClient:
    """The push worker's QBO client for a tenant's connection (tokens from the vault)."""
    factory = _overrides.get("push_qbo_client")
    if factory is not None:
        client: QboClient = factory(connection)
        return client
    return qbo_client(connection.realm_id, vault().provider(connection.tenant_id))


def push_service() -> PushService:
    """Upserts, recheck, retry and reports: what the tenant API's push routes call."""

    def build() -> PushService:
        from shared.kernel.settings import SettingsError
        from shared.push.service import PushService

        queue: PushQueue
        try:
            queue = push_queue()
        except SettingsError as missing:  # reads still work; the first send says what is missing
            queue = _NoPushQueue(str(missing))
        return PushService(
            posting_log(),
            link_store(),
            push_settings_store(),
            store(),
            queue,
            clock(),
            recheck_observer=recheck_observer(),
        )

    return _once("push_service", build)


class _NoPushQueue:
    """The push queue of a function that has none (``PUSH_QUEUE_URL`` unset): the push service can
    still read (a recheck with nothing waiting sends nothing), and any send raises ``SettingsError``
    naming the variable."""

    def __init__(self, why: str) -> None:
        self._why = why

    def send(self, message: QueueMessage, deduplication_id: str) -> None:
        del message, deduplication_id
        self._refuse()

    def send_many(self, messages: Sequence[tuple[QueueMessage, str]]) -> None:
        del messages
        self._refuse()

    def _refuse(self) -> None:
        from shared.kernel.settings import SettingsError

        raise SettingsError(self._why)


def push_worker() -> PushWorker:
    """The push queue's consumer: posts to each tenant's QBO company, records exchanges."""

    def build() -> PushWorker:
        from shared.push.worker import PushWorker

        return PushWorker(
            posting_log(),
            link_store(),
            push_settings_store(),
            store(),
            push_qbo_client,
            events(),
            clock(),
            service=push_service(),
            exchanges=exchange_log(),
            versions=version_ledger(),
        )

    return _once("push_worker", build)


def tenant_qbo_client(tenant_id: str) -> QboClient:
    """A QBO client for a tenant's connected company; NeverConnectedError if it never connected."""
    from shared.connections.errors import NeverConnectedError

    connection = store().get(tenant_id)
    if connection is None:
        raise NeverConnectedError(tenant_id, f"tenant {tenant_id} has never connected a QBO company")
    return qbo_client(connection.realm_id, vault().provider(tenant_id))


def version_ledger() -> VersionLedger:
    """What QBO Link knows of each QBO entity: written by the push, applied by the pull."""
    from shared.mapping.versions import VersionLedger

    return _once("version_ledger", lambda: VersionLedger(dynamodb().Table(settings().links_table), clock()))


def pull_service() -> PullService:
    """The change worker's service: webhook deliveries and sweeps (docs/pull.md)."""

    def build() -> PullService:
        from datetime import timedelta

        from shared.connections.company import CompanyPreferences
        from shared.pull.changes import ChangeApplier, PullService, PullTiming
        from shared.pull.cursors import CursorStore

        config = settings()
        applier = ChangeApplier(
            link_store(), qbo_cache(), events(), clock(), version_ledger(), postings=posting_log()
        )
        return PullService(
            applier=applier,
            cursors=CursorStore(dynamodb().Table(config.links_table), clock()),
            exchanges=exchange_log(),
            events=events(),
            clock=clock(),
            client_for=tenant_qbo_client,
            realm_of=_live_realm_of,
            versions=version_ledger(),
            cache=qbo_cache(),
            connected_at_of=_connected_at_of,
            timing=PullTiming(
                min_read_interval=timedelta(seconds=config.pull_min_read_interval_seconds),
                gather=timedelta(seconds=config.pull_gather_seconds),
                skew=timedelta(seconds=config.pull_skew_seconds),
            ),
            company=CompanyPreferences(store()),
            observer=pull_observer(),
        )

    return _once("pull_service", build)


def _live_realm_of(tenant_id: str) -> str | None:
    """The realm of a tenant's live connection; ``None`` if it never connected or disconnected."""
    connection = store().get(tenant_id)
    if connection is None or connection.disconnected_at is not None:
        return None
    return connection.realm_id


def _connected_at_of(tenant_id: str) -> datetime | None:
    connection = store().get(tenant_id)
    return connection.connected_at if connection is not None else None


def changes_queue() -> FifoSender:
    """The changes SQS FIFO queue (``settings().changes_queue_url``): the sweep fan-out's target."""

    def build() -> FifoSender:
        import boto3

        from shared.adapters.sqs import FifoSender
        from shared.kernel import constants
        from shared.kernel.settings import SettingsError

        url = settings().changes_queue_url
        if not url:
            raise SettingsError(f"{constants.CHANGES_QUEUE_URL_ENV} is not configured")
        return FifoSender(boto3.client("sqs"), url)

    return _once("changes_queue", build)


def sweep_fan_out() -> SweepFanOut:
    """The sweep schedule's fan-out: a sweep request per healthy connection (docs/pull.md)."""
    from shared.pull.sweep import SweepFanOut

    return _once("sweep_fan_out", lambda: SweepFanOut(store(), changes_queue(), clock()))


def forget_mappings(tenant_id: str) -> int:
    """Disconnect with "remove mappings": links, the app catalog and the QBO cache of the tenant."""
    removed = link_store().clear_tenant(tenant_id)
    removed += app_catalog().clear_tenant(tenant_id)
    removed += qbo_cache().clear_tenant(tenant_id)
    return removed


def notification_intake() -> NotificationIntake:
    """The webhook intake: verifier token, realm lookup, de-duplication ledger and changes queue."""

    def build() -> NotificationIntake:
        import boto3

        from shared.pull.notifications import (
            NotificationIntake,
            RuntimeIntakeStore,
            RuntimeUnparseableStore,
            SqsChangeQueue,
        )

        config = webhook_settings()
        # The runtime table (realm directory, ledger) and the changes queue: no access to the
        # connections table, which holds the tokens.
        runtime = dynamodb().Table(config.runtime_table)
        return NotificationIntake(
            verifier_token=config.verifier_token.get_secret_value(),
            store=RuntimeIntakeStore(runtime),
            queue=SqsChangeQueue(boto3.client("sqs"), config.changes_queue_url),
            unparseable=RuntimeUnparseableStore(runtime),
            now=clock().now,
        )

    return _once("notification_intake", build)


# --- delivery of the events to the host app's endpoint (docs/events.md) ----------------------------


def delivery_settings() -> DeliverySettings:
    """The deliverer's own settings (endpoint, signing secret, its queue and DLQ; nothing else)."""
    import os

    from shared.delivery.settings import delivery_settings_from_env

    return _once("delivery_settings", lambda: delivery_settings_from_env(os.environ))


def event_deliverer() -> EventDeliverer:
    """The delivery queue's consumer: signs and POSTs each event, paces retries, gives up to the DLQ."""

    def build() -> EventDeliverer:
        import boto3
        import httpx2

        from shared.adapters.sqs import PacedQueue
        from shared.delivery.deliverer import USER_AGENT, EventDeliverer
        from shared.delivery.settings import signing_key

        config = delivery_settings()
        http = _once(
            "delivery_http",
            lambda: httpx2.Client(
                timeout=httpx2.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
                follow_redirects=False,  # a signed event goes where it was configured to, nowhere else
                headers={"User-Agent": USER_AGENT},
            ),
        )
        return EventDeliverer(
            url=config.url,
            signing_key=lambda: signing_key(config.secret_arn),
            http=http,
            queue=PacedQueue(boto3.client("sqs"), config.queue_url, config.dead_letter_url),
            timeout_seconds=config.timeout_seconds,
        )

    return _once("event_deliverer", build)
