"""Judging a tenant's waiting documents again, one page per push-queue message (docs/push.md,
"Recheck").

``PushService.schedule_recheck`` puts the first message on the queue; the push worker hands each
recheck message to ``Rechecker.run``, which judges ONE page of the tenant's ``needs_attention``
documents (and, after a reconnect, of those that failed with ``not_connected``) and puts the next
page's message on the queue.  A page is bounded work (a few seconds at most), so the API answers at
once and no invocation runs into its timeout, whatever the number of waiting documents.

Per page: one Query of the by-state index, the documents' clients and links in two batched reads
(``StoreLookup.prefetch``), the ready documents' push messages in SendMessageBatch calls, their move
to ``queued`` in transactions of up to 99 (``PostingLog.transition_many``; one by one if one of them
changed meanwhile), and a write for a still-waiting document only when its reasons changed.

Order matters.  The first page clears the summary's marker before reading anything, so a change
made after that point queues another recheck (and one made before it is seen by this one).  The
ready documents' messages are sent BEFORE their move to ``queued``: the messages share the tenant's
FIFO message group with this one, so none is delivered before this page is done; if the page fails
half-way it is delivered again, finds the documents still waiting and sends the same messages again
(the same deduplication ids: SQS drops them).  Sent the other way round, a failure between the move
and the send would leave a document ``queued`` with no message and out of the index this reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from shared.connections.errors import NeverConnectedError
from shared.kernel.observability import logger
from shared.push.errors import DocumentInvalidError, PushError
from shared.push.posting_log import (
    ConcurrentChangeError,
    DocumentNotFoundError,
    InvalidTransitionError,
    PostingEntry,
    PostingState,
    Reason,
    StaleVersionError,
)
from shared.push.service import (
    NOT_CONNECTED,
    AppDocument,
    PushMessage,
    PushStores,
    QueueMessage,
    RecheckMessage,
    StoreLookup,
    company_facts,
    evaluate,
    judgement,
    parse_document,
    require_connection,
)

PAGE_SIZE: Final = 250
MOVE_CHUNK: Final = 99  # transition_many's limit: a transaction's 100 actions, less the summary


@dataclass
class RecheckReport:
    """What one page did: documents judged, moved to ``queued``, rewritten with new reasons (or
    ``skipped``), left as they were; whether another page follows; whether the tenant had no
    usable connection (nothing judged, no page follows: a reconnect rechecks)."""

    judged: int = 0
    queued: int = 0
    rewritten: int = 0
    unchanged: int = 0
    unreadable: int = 0
    continued: bool = False
    not_connected: bool = False

    def outcomes(self) -> dict[str, int]:
        """As the push worker's outcomes (metrics ``Postings_recheck_*``), zeros left out."""
        counts = {
            "recheck_judged": self.judged,
            "recheck_queued": self.queued,
            "recheck_rewritten": self.rewritten,
            "recheck_unchanged": self.unchanged,
            "recheck_unreadable": self.unreadable,
            "recheck_continued": int(self.continued),
            "recheck_not_connected": int(self.not_connected),
        }
        return {name: count for name, count in counts.items() if count}


@dataclass(eq=False, repr=False)
class Rechecker(PushStores):
    """One recheck message: judge a page, move and enqueue the ready documents, continue."""

    page_size: int = field(default=PAGE_SIZE, kw_only=True)

    def run(self, message: RecheckMessage) -> RecheckReport:
        tenant_id = message.tenant
        report = RecheckReport()
        if message.page == 0:
            self.posting_log.clear_recheck(tenant_id)  # from here on, a change queues another recheck
        scope = message.states[0]
        page = self.posting_log.query_by_state(
            tenant_id, scope, page_token=message.page_token, limit=self.page_size
        )
        # Of the failures, only those for want of a connection: the others wait for a retry.
        entries = [e for e in page.entries if scope != "failed" or _not_connected(e)]
        if entries and not self._judge(tenant_id, message, entries, report):
            return report
        if page.next_token:
            following: RecheckMessage | None = message.next(page.next_token)
        elif len(message.states) > 1:
            following = message.next(None, message.states[1:])
        else:
            following = None
        if following is not None:
            self.queue.send(following, following.deduplication_id())
            report.continued = True
        logger.info(
            "recheck page done",
            extra={
                "tenant_id": tenant_id,
                "reason": message.reason,
                "page": message.page,
                **report.outcomes(),
            },
        )
        return report

    def _judge(
        self, tenant_id: str, message: RecheckMessage, entries: list[PostingEntry], report: RecheckReport
    ) -> bool:
        """Judge ``entries``; False when the tenant has no usable connection (nothing done)."""
        try:
            connection = require_connection(self.connection_store, tenant_id)
            facts = company_facts(tenant_id, connection)
        except (PushError, NeverConnectedError) as error:
            # Disconnected since (or never usable): the documents keep waiting, and the recheck
            # stops here; the reconnect queues one that covers them.
            logger.info("recheck skipped", extra={"tenant_id": tenant_id, "why": str(error)})
            report.not_connected = True
            return False
        settings = self.settings_store.get(tenant_id)
        lookup = StoreLookup(tenant_id, self.links, self.posting_log)
        documents: list[tuple[PostingEntry, AppDocument]] = []
        for entry in entries:
            try:
                documents.append((entry, parse_document(entry.kind, entry.document)))
            except DocumentInvalidError:  # stored under an older model: the worker fails it if queued
                report.unreadable += 1
        lookup.prefetch(document for _, document in documents)
        today = self.clock.now().date()
        ready: list[PostingEntry] = []
        rewrites: list[tuple[PostingEntry, PostingState, Sequence[Reason]]] = []
        # Clients first, so the worker meets a client before the documents that name it.
        for entry, document in sorted(documents, key=lambda pair: pair[0].kind != "client"):
            report.judged += 1
            state, reasons = judgement(evaluate(document, settings, facts, lookup, today))
            if state is PostingState.QUEUED:
                ready.append(entry)
            elif state is entry.state and tuple(reasons) == entry.reasons:
                report.unchanged += 1  # the same reasons: nothing to write
            else:
                rewrites.append((entry, state, reasons))
        suffix = f":r{message.chain}"  # a later recheck of the same version must not be deduplicated
        sends: list[tuple[QueueMessage, str]] = []
        for entry in ready:
            push = PushMessage(tenant_id, entry.kind, entry.app_id, entry.version)
            sends.append((push, push.deduplication_id(suffix)))
        self.queue.send_many(sends)  # before the moves: see the module's docstring
        report.queued = self._move_ready(ready)
        for entry, state, reasons in rewrites:
            try:
                self.posting_log.advance(entry, state, reasons=reasons)
            except (StaleVersionError, InvalidTransitionError, DocumentNotFoundError):
                continue  # a newer version came meanwhile: it was judged when it was accepted
            report.rewritten += 1
        return True

    def _move_ready(self, ready: list[PostingEntry]) -> int:
        """``queued``, in transactions of up to 99; a chunk in which one changed meanwhile goes one
        by one, which leaves out what a newer version (or another move) took over."""
        moved = 0
        for start in range(0, len(ready), MOVE_CHUNK):
            chunk = ready[start : start + MOVE_CHUNK]
            try:
                moved += len(self.posting_log.transition_many(chunk, to_state=PostingState.QUEUED))
                continue
            except (ConcurrentChangeError, InvalidTransitionError):
                pass
            for entry in chunk:
                try:
                    self.posting_log.advance(entry, PostingState.QUEUED)
                except (StaleVersionError, InvalidTransitionError, DocumentNotFoundError):
                    continue
                moved += 1
        return moved


def _not_connected(entry: PostingEntry) -> bool:
    return entry.last_error is not None and entry.last_error.code == NOT_CONNECTED
