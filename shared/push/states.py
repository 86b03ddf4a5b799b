"""The states a document goes through in the posting log (docs/push.md, "States").

Apart from the posting rules so that what only names a state (the API's ``state`` filter, a report)
does not import the rules and their models.
"""

from __future__ import annotations

from enum import StrEnum


class PostingState(StrEnum):
    RECEIVED = "received"  # accepted from the app, not yet checked
    NEEDS_ATTENTION = "needs_attention"  # not ready (reasons say why); goes by itself once fixed
    QUEUED = "queued"  # ready, waiting for the push worker
    IN_FLIGHT = "in_flight"  # a worker is calling QBO
    UNCERTAIN = "uncertain"  # the call may have reached QBO: look it up before re-creating
    POSTED = "posted"  # in QBO (qbo_id, sync_token)
    FAILED = "failed"  # QBO refused it (last_error) or it was poison; retry puts it back in the queue
    SKIPPED = "skipped"  # not pushed on purpose (before go-live, type not synced, push switched off)
    VOIDED = "voided"  # voided in QBO (void propagation)
