"""Accepting the app's documents: validate, log, judge readiness, queue (docs/push.md, "Push").

``PushService`` is what the tenant API calls.  A document goes through the posting log (the outbox:
its state is the truth, the queue only says "look at this one") and, when ready, a message
``{tenant, kind, app_id, version}`` goes on the push queue (SQS FIFO, message group = tenant, so one
worker at a time posts a tenant's documents, in order).

Documents waiting in ``needs_attention`` are judged again through the same queue: whatever can make
one ready (a mapping, a setting, a posting, a reconnect) calls ``schedule_recheck``, which puts one
``{tenant, recheck: {...}}`` message on the queue and answers at once; the push worker judges the
waiting documents a page per message (``shared.push.recheck``; docs/push.md, "Recheck").

Kinds of document: ``client``, ``invoice``, ``payment``, ``credit_memo``.  Every client, sites
included, is one posting-log document of kind ``client``; its link is of kind ``site`` when it has a
parent (a QBO sub-customer), ``client`` otherwise.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.adapters.sqs import FifoMessage, FifoSender, QueueSendError
from shared.connections.errors import NeverConnectedError
from shared.connections.health import Health
from shared.connections.store import Connection, ConnectionStore
from shared.kernel import constants
from shared.kernel.clock import Clock
from shared.mapping.catalog import QboCache, QboEntity
from shared.mapping.links import Link, LinkStore
from shared.push.errors import (
    CompanyFactsMissingError,
    DocumentInvalidError,
    InvalidReportRequestError,
    NotRetryableError,
    PostingNotFoundError,
    PushQueueError,
    SettingsInvalidError,
    TenantDisconnectedError,
    VersionConflictError,
)
from shared.push.errors import PushError as PushError  # noqa: PLC0414 - shared.push.worker imports it here
from shared.push.models import (
    AppClient,
    AppCreditApplication,
    AppCreditMemo,
    AppInvoice,
    AppPayment,
    LineKind,
    TenantSettings,
    validation_problems,
)
from shared.push.payloads import CompanyFacts, SalesTaxRate
from shared.push.posting_log import (
    AcceptOutcome,
    Judgement,
    Offered,
    PostingEntry,
    PostingLog,
    PostingPage,
    PostingState,
    Reason,
    StaleVersionError,
)
from shared.push.readiness import (
    NotReady,
    Readiness,
    Skipped,
    evaluate_client,
    evaluate_credit_application,
    evaluate_credit_memo,
    evaluate_invoice,
    evaluate_payment,
)
from shared.push.settings_store import TenantSettingsStore

DocumentKind = Literal["client", "invoice", "payment", "credit_memo"]
DOCUMENT_KINDS: Final[tuple[DocumentKind, ...]] = ("client", "invoice", "payment", "credit_memo")
AppDocument = AppClient | AppInvoice | AppPayment | AppCreditMemo | AppCreditApplication
MODELS: Final[Mapping[str, type[BaseModel]]] = {
    "client": AppClient,
    "invoice": AppInvoice,
    "payment": AppPayment,
    "credit_memo": AppCreditMemo,
    # Not sent by the app: derived from a credit memo's applications (``AppCreditApplication.of``).
    "credit_application": AppCreditApplication,
}
CREDIT_APPLICATION: Final = "credit_application"
ITEM_LINK_KINDS: Final[Mapping[str, str]] = {"work": "work_code", "expense": "expense_code"}
REPORT_KINDS: Final[tuple[str, ...]] = ("invoice", "payment", "credit_memo")
REPORT_PAGE_MAX: Final = constants.REPORT_PAGE_MAX

NOT_CONNECTED = "not_connected"
DEDUPLICATION_ID_MAX = 128  # SQS's limit

# Recheck (docs/push.md, "Recheck").  A queued recheck that has not started covers any change made
# before it starts, so while its marker is fresh a new change queues nothing; a marker older than
# this is taken for a lost message (or one stuck behind a long backlog) and another is queued.
RECHECK_STALE_AFTER: Final = timedelta(seconds=60)
RecheckScope = Literal["needs_attention", "failed"]
WAITING: Final[tuple[RecheckScope, ...]] = ("needs_attention",)
# A reconnect also brings back the documents that failed because the tenant had no connection.
AFTER_RECONNECT: Final[tuple[RecheckScope, ...]] = ("needs_attention", "failed")
# The links readiness reads (``StoreLookup``): a change to another kind (an employee, an account)
# cannot make a waiting document ready.
READINESS_LINK_KINDS: Final = frozenset({"client", "site", "work_code", "expense_code", "tax"})


# --- the queue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushMessage:
    """``{tenant, kind, app_id, version}``: "post this version of this document"."""

    tenant: str
    kind: str
    app_id: str
    version: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.tenant, self.kind, self.app_id)

    def body(self) -> str:
        return json.dumps(
            {"tenant": self.tenant, "kind": self.kind, "app_id": self.app_id, "version": self.version},
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def parse(cls, body: str) -> PushMessage:
        data = json.loads(body)
        return cls(str(data["tenant"]), str(data["kind"]), str(data["app_id"]), int(data["version"]))

    def deduplication_id(self, suffix: str = "") -> str:
        return _bounded(f"{self.tenant}:{self.kind}:{self.app_id}:{self.version}{suffix}")


class RecheckMessage(BaseModel):
    """``{tenant, recheck: {reason, chain, page, page_token, states}}``: "judge one page of this
    tenant's waiting documents again".

    ``states`` are what is judged, in order: ``needs_attention``, and after a reconnect ``failed``
    (only the documents that failed with ``not_connected``).  ``page_token`` continues the first of
    them; ``page`` counts the messages of one recheck (``chain``): the first (page 0) starts it,
    the others continue it.  ``reason`` says what asked for it (``export:work_code``, ``posted``, ...).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=100)
    chain: str = Field(pattern=r"^[0-9a-f]{32}$")
    page: int = Field(default=0, ge=0)
    page_token: str | None = Field(default=None, min_length=1, max_length=4096)
    states: tuple[RecheckScope, ...] = Field(default=WAITING, min_length=1, max_length=2)

    @classmethod
    def first(cls, tenant: str, reason: str, states: tuple[RecheckScope, ...] = WAITING) -> RecheckMessage:
        return cls(tenant=tenant, reason=reason[:100], chain=uuid.uuid4().hex, states=states)

    def next(self, page_token: str | None, states: tuple[RecheckScope, ...] | None = None) -> RecheckMessage:
        """The message that goes on where this one stops (continuations skip the debounce)."""
        changes = {"page": self.page + 1, "page_token": page_token, "states": states or self.states}
        return self.model_copy(update=changes)

    def body(self) -> str:
        recheck = self.model_dump(mode="json", exclude={"tenant"})
        return json.dumps({"tenant": self.tenant, "recheck": recheck}, separators=(",", ":"), sort_keys=True)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> RecheckMessage:
        """From a decoded body; a ``ValidationError`` (a ``ValueError``) if it is not one."""
        recheck = data.get("recheck")
        if set(data) != {"tenant", "recheck"} or not isinstance(recheck, Mapping):
            raise ValueError("a recheck message is {tenant, recheck: {...}}")
        return cls.model_validate({**recheck, "tenant": data["tenant"]})

    def deduplication_id(self) -> str:
        """Unique to the recheck and page: a redelivered page sends its continuation once."""
        return _bounded(f"{self.tenant}:recheck:{self.chain}:{self.page}")


QueueMessage = PushMessage | RecheckMessage


def _bounded(text: str) -> str:
    return text if len(text) <= DEDUPLICATION_ID_MAX else hashlib.sha256(text.encode()).hexdigest()


class PushQueue(Protocol):
    def send(self, message: QueueMessage, deduplication_id: str) -> None: ...

    def send_many(self, messages: Sequence[tuple[QueueMessage, str]]) -> None:
        """Several messages, in order (a recheck enqueues a page's ready documents at once)."""
        ...


class SqsPushQueue:
    """The FIFO push queue: group = tenant (one tenant's documents in order), explicit dedup id."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sender = FifoSender(client, queue_url)

    def send(self, message: QueueMessage, deduplication_id: str) -> None:
        try:
            self._sender.send(FifoMessage(message.body(), message.tenant, deduplication_id))
        except QueueSendError as error:
            raise PushQueueError(f"push queue send failed: {error.code}") from error

    def send_many(self, messages: Sequence[tuple[QueueMessage, str]]) -> None:
        """SendMessageBatch, ten at a time; any entry refused is a ``PushQueueError`` (the caller's
        retry sends the batch again: the deduplication ids drop what did arrive)."""
        fifo = [FifoMessage(message.body(), message.tenant, dedup) for message, dedup in messages]
        try:
            refused = self._sender.send_batch(fifo)
        except QueueSendError as error:
            raise PushQueueError(f"push queue send_many failed: {error.code}") from error
        if refused:
            raise PushQueueError(
                f"the push queue refused {len(refused)} of {len(messages)} messages: {refused[0][1]}"
            )


@dataclass
class InMemoryPushQueue:
    """A FIFO queue in a list, de-duplicating like SQS (for unit tests and the local stack)."""

    messages: list[QueueMessage] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def send(self, message: QueueMessage, deduplication_id: str) -> None:
        if deduplication_id in self.seen:
            return
        self.seen.add(deduplication_id)
        self.messages.append(message)

    def send_many(self, messages: Sequence[tuple[QueueMessage, str]]) -> None:
        for message, deduplication_id in messages:
            self.send(message, deduplication_id)

    def drain(self) -> list[QueueMessage]:
        taken, self.messages = self.messages, []
        return taken


# --- outcomes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitOutcome:
    """What became of an upsert: ``accepted`` (with its state now) or ``ignored`` (older/equal)."""

    status: Literal["accepted", "ignored"]
    kind: str
    app_id: str
    version: int
    state: PostingState | None
    reasons: tuple[Reason, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """As the API answers it (an upsert, or one item of a bulk request)."""
        return {
            "status": self.status,
            "kind": self.kind,
            "id": self.app_id,
            "version": self.version,
            "state": self.state.value if self.state else None,
            "reasons": [reason_dict(r) for r in self.reasons],
        }


@dataclass(frozen=True)
class ItemRefused:
    """One document of a bulk request refused on its own: what is wrong with it, per field."""

    kind: str
    app_id: str | None
    problems: tuple[dict[str, str], ...]


INTAKE_ORDER: Final = {"client": 0, "invoice": 1, "credit_memo": 1, "payment": 2}


def _given_id(payload: Mapping[str, Any]) -> str | None:
    given = payload.get("id")
    return given if isinstance(given, str) else None


class _Intake:
    """One request's intake of the app's documents (one upsert, or a bulk request): the tenant's
    connection and company facts read at once, its settings and the store lookups when the first
    newer version needs judging (an ignored one costs no more reads), prefetched for every document
    of the request; the messages of what is ready kept until ``flush`` sends them in one go."""

    def __init__(self, stores: PushStores, tenant_id: str, documents: Sequence[AppDocument]) -> None:
        self._stores = stores
        self._tenant = tenant_id
        self._documents = documents
        self._facts = company_facts(tenant_id, require_connection(stores.connection_store, tenant_id))
        self._settings: TenantSettings | None = None
        self._lookup: StoreLookup | None = None
        self._outbox: list[tuple[QueueMessage, str]] = []

    def _judge(self, document: AppDocument) -> Judgement:
        if self._settings is None:
            self._settings = self._stores.settings_store.get(self._tenant)
        if self._lookup is None:
            self._lookup = StoreLookup(self._tenant, self._stores.links, self._stores.posting_log)
            self._lookup.prefetch(self._documents)
        if not any(document is given for given in self._documents):
            self._lookup.prefetch([document])  # a derived credit application
        today = self._stores.clock.now().date()
        return judgement(evaluate(document, self._settings, self._facts, self._lookup, today))

    def _queue(self, kind: str, app_id: str, version: int) -> None:
        message = PushMessage(self._tenant, kind, app_id, version)
        self._outbox.append((message, message.deduplication_id()))

    def take(self, kind: str, document: AppDocument) -> SubmitOutcome:
        """Log this version of ``document`` (judged, when newer) and queue it when it is ready."""
        offer = self._offer(kind, document)
        accepted = self._stores.posting_log.accept(
            self._tenant,
            kind,
            document.id,
            document.version,
            offer.document,
            offer.txn_date,
            judge=offer.judge,
            normalise=offer.normalise,
        )
        return self._taken(kind, document, accepted)

    def take_many(
        self, taken: Sequence[tuple[str, AppDocument]]
    ) -> list[SubmitOutcome | VersionConflictError]:
        """``take`` for several documents in one go (``PostingLog.accept_many``: one read per 100,
        one transaction per 99 newer versions), in the order given; a conflict is the document's."""
        offers = [self._offer(kind, document) for kind, document in taken]
        answers = self._stores.posting_log.accept_many(self._tenant, offers)
        return [
            answer if isinstance(answer, VersionConflictError) else self._taken(kind, document, answer)
            for (kind, document), answer in zip(taken, answers, strict=True)
        ]

    def _offer(self, kind: str, document: AppDocument) -> Offered:
        def judge() -> Judgement:
            judged = self._judge(document)
            if isinstance(document, AppClient) and self._lookup is not None:
                self._lookup.client_taken(document)  # the request's later documents see it
            return judged

        return Offered(
            kind,
            document.id,
            document.version,
            document.model_dump(mode="json"),
            None if isinstance(document, AppClient) else document.date,
            judge=judge,
            normalise=lambda stored: as_validated(kind, stored),
        )

    def _taken(self, kind: str, document: AppDocument, accepted: AcceptOutcome) -> SubmitOutcome:
        if not accepted.accepted:
            if accepted.version == document.version and isinstance(document, AppCreditMemo):
                # The app's retry of this version: its application may be what the first try lost.
                self._derive_application(document)
            if accepted.version == document.version and accepted.previous_state is PostingState.QUEUED:
                # The same version again while it still waits in `queued`: the app may be retrying an
                # upsert whose enqueue failed after the log took it (a 5xx).  Send it again: the same
                # deduplication id (SQS drops it if the first send did land) and an exactly-once
                # worker make this harmless, and nothing the log accepted is left unsent.
                self._queue(kind, document.id, document.version)
            return SubmitOutcome("ignored", kind, document.id, accepted.version, accepted.previous_state)
        if accepted.state is PostingState.QUEUED:
            self._queue(kind, document.id, document.version)
        if isinstance(document, AppCreditMemo):
            self._derive_application(document)
        return SubmitOutcome(
            "accepted", kind, document.id, document.version, accepted.state, accepted.reasons
        )

    def _derive_application(self, memo: AppCreditMemo) -> None:
        """A credit memo naming applications also makes (or moves to this version) its
        ``credit_application`` document; a memo that had some and now has none (or is voided)
        moves it too, so the applications come back out of QBO."""
        log = self._stores.posting_log
        if not memo.applications and log.get(self._tenant, CREDIT_APPLICATION, memo.id) is None:
            return
        application = AppCreditApplication.of(memo)
        accepted = log.accept(
            self._tenant,
            CREDIT_APPLICATION,
            application.id,
            application.version,
            application.model_dump(mode="json"),
            application.date,
            judge=lambda: self._judge(application),
            normalise=lambda stored: as_validated(CREDIT_APPLICATION, stored),
        )
        if accepted.accepted and accepted.state is PostingState.QUEUED:
            self._queue(CREDIT_APPLICATION, application.id, application.version)

    def flush(self) -> None:
        """Send what is ready: one SendMessage for one document, batches of ten for more.  A send
        that fails raises (``PushQueueError``): the log keeps the documents ``queued`` and the app's
        retry of the same versions sends them again."""
        outbox, self._outbox = self._outbox, []
        if len(outbox) == 1:
            self._stores.queue.send(*outbox[0])
        elif outbox:
            self._stores.queue.send_many(outbox)


@dataclass(frozen=True)
class RecheckScheduled:
    """What ``schedule_recheck`` did: ``scheduled`` (a message is on the queue), ``pending`` (one
    queued before has not started and covers this change) or ``nothing_waiting``.  ``waiting`` is
    how many documents the recheck covers, as the summary counts them."""

    status: Literal["scheduled", "pending", "nothing_waiting"]
    waiting: int

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "waiting": self.waiting}


# --- mappings, from the links table and the posting log ---------------------------------------


class StoreLookup:
    """``readiness.MappingLookup`` over the links table (QBO ids and, for documents with
    ``tax_lines``, the cached tax codes' sales rates) and the posting log (the app's clients).
    Found links are cached for the lookup's life (one request, or one worker batch), and so are the
    misses of a ``prefetch``; other misses are read again.  ``forget`` after a change.  The QBO
    cache is the one in the links table unless ``cache`` is given."""

    def __init__(
        self, tenant_id: str, links: LinkStore, posting_log: PostingLog, cache: QboCache | None = None
    ) -> None:
        self._tenant = tenant_id
        self._links = links
        self._log = posting_log
        self._cache = cache if cache is not None else QboCache(links.table)
        self._found: dict[tuple[str, str], Link] = {}
        self._absent: set[tuple[str, str]] = set()  # unlinked when prefetched: not read again
        self._clients: dict[str, AppClient | None] = {}
        self._tax_codes: dict[str, QboEntity | None] = {}  # QBO tax code id -> cached code

    def link(self, kind: str, app_id: str) -> Link | None:
        cached = self._found.get((kind, app_id))
        if cached is not None:
            return cached
        if (kind, app_id) in self._absent:
            return None
        link = self._links.get_by_app(self._tenant, kind, app_id)
        if link is not None:
            self._found[(kind, app_id)] = link
        return link

    def prefetch(self, documents: Iterable[AppDocument]) -> None:
        """Read at once what judging and building ``documents`` will ask for: their clients (and
        sites' parents) from the posting log, and every link they name (client or site, line codes,
        taxes, paid invoices) from the links table: two BatchGetItem calls instead of a read each;
        a third reads the cached tax codes of the documents that carry ``tax_lines``."""
        client_ids: set[str] = set()
        wanted: set[tuple[str, str]] = set()
        rated: set[str] = set()  # the tax ids whose code's rates are needed
        for document in documents:
            if isinstance(document, AppClient):
                client_ids.update(i for i in (document.id, document.parent_id) if i)
                continue
            client_ids.add(document.client_id)
            wanted.add((_own_link_kind(document), document.id))
            if isinstance(document, AppCreditApplication):
                wanted.add(("credit_memo", document.id))
            if isinstance(document, AppPayment | AppCreditMemo | AppCreditApplication):
                wanted.update(("invoice", a.invoice_id) for a in document.applications)
            if isinstance(document, AppPayment | AppCreditApplication):
                continue
            for line in document.lines:
                wanted.add((ITEM_LINK_KINDS[line.kind], line.code))
                if line.tax_id is not None:
                    wanted.add(("tax", line.tax_id))
                    if document.tax_lines:
                        rated.add(line.tax_id)
        wanted.update((kind, c) for c in client_ids for kind in ("client", "site"))
        unread = sorted(c for c in client_ids if c not in self._clients)
        if unread:
            heads = self._log.get_many(self._tenant, (("client", c) for c in unread))
            for client_id in unread:
                head = heads.get(("client", client_id))
                self._clients[client_id] = AppClient.model_validate(head.document) if head else None
        missing = sorted(wanted - set(self._found))
        if missing:
            found = self._links.get_kinds(self._tenant, missing)
            self._found.update(found)
            self._absent.update(pair for pair in missing if pair not in found)
        codes = {code for tax_id in rated if (code := self.tax_code_for(tax_id)) is not None}
        unread_codes = sorted(codes - set(self._tax_codes))
        if unread_codes:
            cached = self._cache.get_many(self._tenant, "tax", unread_codes)
            self._tax_codes.update({code: cached.get(code) for code in unread_codes})

    def remember(self, link: Link) -> None:
        self._found[(link.kind, link.app_id)] = link

    def forget(self, kind: str, app_id: str) -> None:
        self._found.pop((kind, app_id), None)
        self._absent.discard((kind, app_id))

    def customer_link(self, client_id: str) -> Link | None:
        client = self.client(client_id)
        first, second = ("site", "client") if client is not None and client.parent_id else ("client", "site")
        return self.link(first, client_id) or self.link(second, client_id)

    def customer_for(self, client_id: str) -> str | None:
        link = self.customer_link(client_id)
        return link.qbo_id if link else None

    def item_for(self, kind: LineKind, code: str) -> str | None:
        link = self.link(ITEM_LINK_KINDS[kind], code)
        return link.qbo_id if link else None

    def tax_code_for(self, tax_id: str) -> str | None:
        link = self.link("tax", tax_id)
        return link.qbo_id if link else None

    def tax_rates_for(self, tax_id: str) -> tuple[SalesTaxRate, ...] | None:
        code = self.tax_code_for(tax_id)
        if code is None:
            return None
        if code not in self._tax_codes:
            self._tax_codes[code] = self._cache.get(self._tenant, "tax", code)
        cached = self._tax_codes[code]
        if cached is None or cached.rates is None:
            return None
        return tuple(SalesTaxRate(rate.id, rate.percent) for rate in cached.rates)

    def tax_code_rates(self, tax_ids: Iterable[str]) -> dict[str, tuple[SalesTaxRate, ...]]:
        """The known sales rates of the QBO tax codes of ``tax_ids``, by QBO tax code id (what
        ``ResolvedMappings.tax_code_rates`` holds); codes whose rates are unknown are absent."""
        found: dict[str, tuple[SalesTaxRate, ...]] = {}
        for tax_id in tax_ids:
            code, rates = self.tax_code_for(tax_id), self.tax_rates_for(tax_id)
            if code is not None and rates is not None:
                found[code] = rates
        return found

    def invoice_qbo_id(self, invoice_id: str) -> str | None:
        link = self.link("invoice", invoice_id)
        return link.qbo_id if link else None

    def credit_memo_qbo_id(self, credit_memo_id: str) -> str | None:
        link = self.link("credit_memo", credit_memo_id)
        return link.qbo_id if link else None

    def client(self, client_id: str) -> AppClient | None:
        if client_id not in self._clients:
            entry = self._log.get(self._tenant, "client", client_id)
            self._clients[client_id] = AppClient.model_validate(entry.document) if entry else None
        return self._clients[client_id]

    def client_changed(self, client_id: str) -> None:
        self._clients.pop(client_id, None)

    def client_taken(self, client: AppClient) -> None:
        """A newer version of a client the log just took (a bulk request's later documents see it)."""
        self._clients[client.id] = client


# --- helpers shared with the worker ------------------------------------------------------------


def _own_link_kind(document: AppDocument) -> str:
    """The link kind of the QBO entity a (non-client) document becomes."""
    if isinstance(document, AppPayment):
        return "payment"
    if isinstance(document, AppCreditMemo):
        return "credit_memo"
    if isinstance(document, AppCreditApplication):
        return CREDIT_APPLICATION
    return "invoice"


def company_facts(tenant_id: str, connection: Connection) -> CompanyFacts:
    company = connection.company
    if company is None or not company.country or not company.tax_model:
        raise CompanyFactsMissingError(tenant_id)
    return CompanyFacts(
        country=company.country, currency=company.currency or "USD", tax_model=company.tax_model
    )


def require_connection(store: ConnectionStore, tenant_id: str) -> Connection:
    connection = store.get(tenant_id)
    if connection is None:
        raise NeverConnectedError(tenant_id)
    if connection.health in (Health.DISCONNECTED, Health.REVOKED) or not connection.has_tokens:
        raise TenantDisconnectedError(tenant_id, connection.health.value if connection.health else None)
    return connection


def parse_document(kind: str, payload: Mapping[str, Any]) -> AppDocument:
    """The app's document as its model; ``DocumentInvalidError`` names every offending field."""
    model = MODELS.get(kind)
    if model is None:
        raise DocumentInvalidError([{"field": "kind", "message": f"unknown document kind {kind!r}"}])
    try:
        document = model.model_validate(dict(payload))
    except ValidationError as error:
        raise DocumentInvalidError(validation_problems(error)) from None
    assert isinstance(document, AppClient | AppInvoice | AppPayment | AppCreditMemo | AppCreditApplication)
    return document


def as_validated(kind: str, stored: Mapping[str, Any]) -> Mapping[str, Any]:
    """A stored document as its model reads it today, to compare with a new body of its version:
    a field added to the model since it was stored compares as its default.  One the model no
    longer takes is compared as stored (a body that validates cannot then be the same)."""
    try:
        return parse_document(kind, stored).model_dump(mode="json")
    except DocumentInvalidError:
        return stored


def evaluate(
    document: AppDocument,
    settings: TenantSettings,
    facts: CompanyFacts,
    lookup: StoreLookup,
    today: date,
) -> Readiness:
    if isinstance(document, AppClient):
        return evaluate_client(document, settings, lookup)
    if isinstance(document, AppInvoice):
        return evaluate_invoice(document, settings, facts, lookup, today=today)
    if isinstance(document, AppCreditMemo):
        return evaluate_credit_memo(document, settings, facts, lookup, today=today)
    if isinstance(document, AppCreditApplication):
        return evaluate_credit_application(document, settings, lookup, today=today)
    return evaluate_payment(document, settings, facts, lookup, today=today)


def judgement(readiness: Readiness) -> Judgement:
    """Where a judged document goes: ``queued``, ``needs_attention`` or ``skipped``, with reasons."""
    if isinstance(readiness, Skipped):
        return PostingState.SKIPPED, (reason_of(readiness.reason.code, readiness.reason.details),)
    if isinstance(readiness, NotReady):
        return PostingState.NEEDS_ATTENTION, tuple(reason_of(r.code, r.details) for r in readiness.reasons)
    return PostingState.QUEUED, ()


def reason_of(code: str, details: Mapping[str, str]) -> Reason:
    """A readiness reason as the posting log keeps it: ``detail`` is the details as JSON."""
    return Reason(code=code, detail=json.dumps(dict(details), sort_keys=True) if details else None)


def reason_dict(reason: Reason) -> dict[str, Any]:
    """A stored reason as the API shows it: ``{"code", "details"}``."""
    details: Any = {}
    if reason.detail:
        try:
            details = json.loads(reason.detail)
        except ValueError:
            details = {"text": reason.detail}
    return {"code": reason.code, "details": details}


# --- the service -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ReportQuery:
    """A transactions report's ranges, and which of the entries read it keeps."""

    txn_from: date | None
    txn_to: date | None
    posted_from: date | None
    posted_to: date | None
    include_unposted: bool

    @property
    def has_txn(self) -> bool:
        return self.txn_from is not None or self.txn_to is not None

    @property
    def has_posted(self) -> bool:
        return self.posted_from is not None or self.posted_to is not None

    def keeps(self, entry: PostingEntry) -> bool:
        """Posted documents (and the others with ``include_unposted``); with both ranges, the index
        gave the transaction dates, so the posting date is checked here."""
        if entry.state is not PostingState.POSTED:
            return self.include_unposted
        if self.has_txn and self.has_posted:
            day = entry.posted_at.astimezone(UTC).date() if entry.posted_at else None
            return (
                day is not None
                and (self.posted_from is None or day >= self.posted_from)
                and (self.posted_to is None or day <= self.posted_to)
            )
        return True


@dataclass(eq=False, repr=False)
class PushStores:
    """What the push service and the recheck it queues share: the stores, the queue and the clock
    (given positionally, in this order)."""

    posting_log: PostingLog
    links: LinkStore
    settings_store: TenantSettingsStore
    connection_store: ConnectionStore
    queue: PushQueue
    clock: Clock


@dataclass(eq=False, repr=False)
class PushService(PushStores):
    """Upserts, rechecks (queued), retry and reports; everything a tenant API route needs (docs/push.md)."""

    # told each tenant, reason and outcome of schedule_recheck (the function's metrics, from wiring)
    recheck_observer: Callable[[str, str, RecheckScheduled], None] | None = field(default=None, kw_only=True)

    def submit(self, tenant_id: str, kind: str, payload: Mapping[str, Any]) -> SubmitOutcome:
        """Validate, log and (when ready) queue one version of a document.

        An older version, or the same one with the same body (the app's retry), is ``ignored``;
        the same version with another body is refused with ``VersionConflictError`` and changes
        nothing (the log compares it with the head it reads anyway)."""
        document = parse_document(kind, payload)
        intake = _Intake(self, tenant_id, [document])
        outcome = intake.take(kind, document)
        intake.flush()
        return outcome

    def submit_many(
        self, tenant_id: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[SubmitOutcome | ItemRefused]:
        """Several documents of one tenant in one go (the bulk route): each validated, logged and
        judged on its own (``ItemRefused`` for one that is invalid, or repeats a (kind, id) of the
        request), in dependency order (clients, then invoices and credit memos, then payments:
        the order the push worker needs them in QBO), with the tenant's connection, settings and
        links read once for all, and every ready one queued in one batched send at the end.
        A refusal of the whole request (the tenant never connected or is disconnected, the queue
        down) raises as ``submit`` does; the answers are in the items' order."""
        results: list[SubmitOutcome | ItemRefused | None] = [None] * len(items)
        parsed: list[tuple[int, str, AppDocument]] = []
        seen: dict[tuple[str, str], int] = {}
        for index, (kind, payload) in enumerate(items):
            try:
                document = parse_document(kind, payload)
            except DocumentInvalidError as error:
                results[index] = ItemRefused(kind, _given_id(payload), tuple(error.problems))
                continue
            first = seen.setdefault((kind, document.id), index)
            if first != index:
                problem = {"field": "id", "message": f"item {first} of this request is the same {kind}"}
                results[index] = ItemRefused(kind, document.id, (problem,))
                continue
            parsed.append((index, kind, document))
        if parsed:
            intake = _Intake(self, tenant_id, [document for _, _, document in parsed])
            ordered = sorted(parsed, key=lambda p: (INTAKE_ORDER[p[1]], p[0]))
            taken = intake.take_many([(kind, document) for _, kind, document in ordered])
            for (index, kind, document), outcome in zip(ordered, taken, strict=True):
                if isinstance(outcome, VersionConflictError):  # this item's: the others go on
                    problem = {"field": "version", "message": str(outcome)}
                    results[index] = ItemRefused(kind, document.id, (problem,))
                else:
                    results[index] = outcome
            intake.flush()
        return [r for r in results if r is not None]

    def schedule_recheck(self, tenant_id: str, reason: str, *, reconnect: bool = False) -> RecheckScheduled:
        """Have the tenant's waiting documents judged again by the push worker, through the queue;
        answers at once, whatever their number (docs/push.md, "Recheck").

        One read of the summary says whether anything waits.  Then a marker on the summary
        (``PostingLog.mark_recheck``) debounces: while a recheck queued before has not started, it
        will see this change too, and nothing more is queued.  Otherwise one message goes on the
        push queue; if it cannot be sent the marker is taken back and the error raised, so the
        caller's retry queues it.  ``reconnect`` also covers the documents that failed for want of a
        connection, and is never debounced (a queued recheck may not cover them).
        """
        outcome = self._schedule_recheck(tenant_id, reason, reconnect=reconnect)
        if self.recheck_observer is not None:
            self.recheck_observer(tenant_id, reason, outcome)
        return outcome

    def _schedule_recheck(self, tenant_id: str, reason: str, *, reconnect: bool) -> RecheckScheduled:
        summary = self.posting_log.summary(tenant_id)
        states = AFTER_RECONNECT if reconnect else WAITING
        waiting = sum(summary.by_state[PostingState(state)] for state in states)
        if not waiting:
            return RecheckScheduled("nothing_waiting", 0)
        now = self.clock.now()
        stale_before = now - RECHECK_STALE_AFTER
        fresh = summary.recheck_pending is not None and summary.recheck_pending >= stale_before
        if fresh and not reconnect:  # seen on the read already: no write
            return RecheckScheduled("pending", waiting)
        marked = self.posting_log.mark_recheck(tenant_id, at=now, stale_before=stale_before)
        if marked is None and not reconnect:
            return RecheckScheduled("pending", waiting)
        message = RecheckMessage.first(tenant_id, reason, states)
        sent = False
        try:
            self.queue.send(message, message.deduplication_id())
            sent = True
        finally:
            if not sent and marked is not None:
                self.posting_log.clear_recheck(tenant_id, marked)
        return RecheckScheduled("scheduled", waiting)

    def patch_settings(self, tenant_id: str, patch: Mapping[str, Any]) -> TenantSettings:
        """``PATCH /settings``: apply a JSON merge patch (RFC 7386) to the tenant's settings: a key
        given replaces the setting, ``null`` resets it to its default, a key not given stays.  The
        result is validated as a PUT's body is (``SettingsInvalidError`` names every offending
        field, an unknown key included; nothing is written), stored, and a recheck is queued as
        after a PUT (documents waiting on a setting go by themselves)."""
        if not isinstance(patch, Mapping):
            raise SettingsInvalidError(
                [{"field": "(body)", "message": "a merge patch must be a JSON object"}]
            )
        try:
            settings = self.settings_store.patch(tenant_id, patch)
        except ValidationError as error:
            raise SettingsInvalidError(validation_problems(error)) from None
        # A retry after a failed send queues the recheck again: every trigger fires, changed or not.
        self.schedule_recheck(tenant_id, "settings")
        return settings

    def request_recheck(self, tenant_id: str) -> RecheckScheduled:
        """``POST /postings/recheck``: an unknown or disconnected tenant is refused as before; no
        document is judged in the request."""
        require_connection(self.connection_store, tenant_id)
        return self.schedule_recheck(tenant_id, "api")

    def mappings_changed(
        self, tenant_id: str, operation: str, kinds: Collection[str]
    ) -> RecheckScheduled | None:
        """The mapping service linked, exported, imported or automatched ``kinds``: a recheck when
        one of them is a link readiness reads (``shared.wiring.mappings_changed`` calls it)."""
        touched = sorted(READINESS_LINK_KINDS.intersection(kinds))
        if not touched:
            return None
        return self.schedule_recheck(tenant_id, f"{operation}:{','.join(touched)}")

    def retry(self, tenant_id: str, kind: str, app_id: str) -> SubmitOutcome:
        """Put a failed document back: judged again, queued when ready."""
        entry = self.posting_log.get(tenant_id, kind, app_id)
        if entry is None:
            raise PostingNotFoundError(tenant_id, kind, app_id)
        if entry.state is not PostingState.FAILED:
            raise NotRetryableError(kind, app_id, entry.state.value)
        connection = require_connection(self.connection_store, tenant_id)
        facts = company_facts(tenant_id, connection)
        settings = self.settings_store.get(tenant_id)
        lookup = StoreLookup(tenant_id, self.links, self.posting_log)
        document = parse_document(kind, entry.document)
        after = self._judge(tenant_id, kind, document, settings, facts, lookup, suffix=f":r{entry.attempts}")
        state = after.state if after else None
        return SubmitOutcome("accepted", kind, app_id, entry.version, state, after.reasons if after else ())

    def enqueue(self, tenant_id: str, kind: str, app_id: str, version: int, suffix: str = "") -> None:
        """One document on the push queue (``suffix``: another delivery of the same version)."""
        message = PushMessage(tenant_id, kind, app_id, version)
        self.queue.send(message, message.deduplication_id(suffix))

    def transactions_report(
        self,
        tenant_id: str,
        txn_from: date | None = None,
        txn_to: date | None = None,
        posted_from: date | None = None,
        posted_to: date | None = None,
        *,
        include_unposted: bool = False,
        page_token: str | None = None,
        limit: int = 100,
    ) -> TransactionsReport:
        """Invoices, payments and credit memos by transaction date and/or posting date (docs/push.md,
        "The transactions report"), from the posting log's indexes (never a Scan).

        A transaction-date range reads the by-txn-date index (and keeps, of the posted documents,
        those posted in the posting-date range when one is given too); a posting-date range alone
        reads the by-posted index.  Only ``posted`` documents unless ``include_unposted``.  The first
        page (no ``page_token``) carries ``totals`` per kind over the whole range; later pages don't.
        """
        query = _ReportQuery(txn_from, txn_to, posted_from, posted_to, include_unposted)
        if not query.has_txn and not query.has_posted:
            raise InvalidReportRequestError(
                "give a transaction-date range (txn_from/txn_to) and/or a posting-date range "
                "(posted_from/posted_to)"
            )
        if not 1 <= limit <= REPORT_PAGE_MAX:
            raise InvalidReportRequestError(f"limit must be between 1 and {REPORT_PAGE_MAX}")
        rows, next_token = self._report_page(tenant_id, query, page_token, limit)
        totals = self._report_totals(tenant_id, query, rows, next_token) if page_token is None else None
        return TransactionsReport(rows, next_token, totals)

    def _report_page(
        self, tenant_id: str, query: _ReportQuery, token: str | None, size: int
    ) -> tuple[list[ReportRow], str | None]:
        """One page of the report's rows: from the by-txn-date index when there is a transaction-date
        range, else from the by-posted index."""
        page: PostingPage
        if query.has_txn:
            page = self.posting_log.query_by_txn_date(
                tenant_id,
                query.txn_from,
                query.txn_to,
                kinds=REPORT_KINDS,
                states=None if query.include_unposted else (PostingState.POSTED,),
                page_token=token,
                limit=size,
            )
        else:
            page = self.posting_log.query_by_posted_date(
                tenant_id,
                query.posted_from,
                query.posted_to,
                kinds=REPORT_KINDS,
                page_token=token,
                limit=size,
            )
        return [report_row(e) for e in page.entries if query.keeps(e)], page.next_token

    def _report_totals(
        self, tenant_id: str, query: _ReportQuery, rows: list[ReportRow], token: str | None
    ) -> dict[str, ReportTotal]:
        """Totals per kind over the whole range: the first page's rows, then every further page."""
        totals = {kind: ReportTotal() for kind in REPORT_KINDS}
        more = rows
        while True:
            for row in more:
                totals[row.kind].add(row)
            if not token:
                return totals
            more, token = self._report_page(tenant_id, query, token, REPORT_PAGE_MAX)

    # --- helpers -----------------------------------------------------------------------------

    def _judge(  # noqa: PLR0917 - one decision needs all of it
        self,
        tenant_id: str,
        kind: str,
        document: AppDocument,
        settings: TenantSettings,
        facts: CompanyFacts,
        lookup: StoreLookup,
        *,
        suffix: str,
    ) -> PostingEntry | None:
        state, reasons = judgement(evaluate(document, settings, facts, lookup, self.clock.now().date()))
        try:
            entry = self.posting_log.transition(
                tenant_id,
                kind,
                document.id,
                expected_version=document.version,
                to_state=state,
                reasons=reasons,
            )
        except StaleVersionError:
            return None
        if state is PostingState.QUEUED:
            self.enqueue(tenant_id, kind, document.id, document.version, suffix)
        return entry


# --- the transactions report ------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One document of the transactions report (``total`` is the app's own total)."""

    kind: str
    app_id: str
    version: int
    number: str | None
    txn_date: date | None
    client_id: str | None
    total: Decimal | None
    state: PostingState
    qbo_id: str | None
    posted_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.app_id,
            "version": self.version,
            "number": self.number,
            "date": self.txn_date.isoformat() if self.txn_date else None,
            "client_id": self.client_id,
            "total": str(self.total) if self.total is not None else None,
            "state": self.state.value,
            "qbo_id": self.qbo_id,
            "posted_at": self.posted_at,
        }


@dataclass
class ReportTotal:
    """Per kind: how many documents, the sum of the app's totals, and of the posted ones."""

    count: int = 0
    total: Decimal = Decimal("0.00")
    posted_count: int = 0
    posted_total: Decimal = Decimal("0.00")

    def add(self, row: ReportRow) -> None:
        amount = row.total if row.total is not None else Decimal("0.00")
        self.count += 1
        self.total += amount
        if row.state is PostingState.POSTED:
            self.posted_count += 1
            self.posted_total += amount

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "total": str(self.total),
            "posted_count": self.posted_count,
            "posted_total": str(self.posted_total),
        }


@dataclass(frozen=True)
class TransactionsReport:
    rows: list[ReportRow]
    next_token: str | None
    totals: dict[str, ReportTotal] | None


def _money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def report_row(entry: PostingEntry) -> ReportRow:
    """The report's view of a posting-log head (invoices and credit memos: ``total``; payments:
    ``amount``; payments have no number, their ``reference`` stands in)."""
    document = entry.document
    amount = document.get("amount") if entry.kind == "payment" else document.get("total")
    number = document.get("reference") if entry.kind == "payment" else document.get("number")
    client_id = document.get("client_id")
    return ReportRow(
        kind=entry.kind,
        app_id=entry.app_id,
        version=entry.version,
        number=str(number) if number is not None else None,
        txn_date=entry.txn_date,
        client_id=str(client_id) if client_id is not None else None,
        total=_money(amount),
        state=entry.state,
        qbo_id=entry.qbo_id,
        posted_at=entry.posted_at.astimezone(UTC).isoformat() if entry.posted_at else None,
    )
