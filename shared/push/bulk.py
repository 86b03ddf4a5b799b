"""Bulk intake (``POST /v1/tenants/{tenant}/documents``): the job a bulk request becomes, and its status.

A bulk request carries up to ``MAX_BULK_ITEMS`` documents of mixed kinds; ``PushService.submit_many``
takes them in.  The documents it took (accepted or ignored as an older or equal version) become one
job, remembered so the host app can follow them to their final states
(``GET /v1/tenants/{tenant}/jobs/{job_id}``): the job holds which (kind, id, version) each item was,
and its status reads their posting-log entries (BatchGetItem, 100 a call), never QBO.

Layout (``tables.RUNTIME``): ``pk = BULK#<tenant>``, ``sk = <job id>`` (time-ordered, 32 hex
characters), the items as JSON, ``expires_at`` (TTL) ``RETENTION`` after the request.  500 items
take about 40 kB, far below DynamoDB's 400 KB item limit.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shared.kernel import constants
from shared.kernel.clock import Clock
from shared.push.errors import BulkJobNotFoundError
from shared.push.posting_rules import PostingEntry
from shared.push.service import reason_dict
from shared.push.states import PostingState

MAX_BULK_ITEMS: Final = 500
BULK_PREFIX: Final = "BULK#"
RETENTION: Final = timedelta(days=14)
JOB_ID_PATTERN: Final = r"^[0-9a-f]{32}$"
# What a document of a job still waits on: it is neither in QBO, nor refused by it, nor waiting
# for someone to fix something (needs_attention goes by itself once the mapping or setting is
# fixed, but nothing happens until then).
IN_PROGRESS: Final = frozenset(
    {PostingState.RECEIVED, PostingState.QUEUED, PostingState.IN_FLIGHT, PostingState.UNCERTAIN}
)
_TENANT = re.compile(r"^[^#\x00-\x1f]{1,128}$")


@dataclass(frozen=True)
class JobItem:
    index: int  # its place in the request
    kind: str
    app_id: str
    version: int  # the version the request carried


@dataclass(frozen=True)
class BulkJob:
    job_id: str
    tenant_id: str
    created_at: datetime
    items: tuple[JobItem, ...]


def bulk_pk(tenant_id: str) -> str:
    if not _TENANT.match(tenant_id):
        raise ValueError("tenant id must be 1-128 characters without '#'")
    return BULK_PREFIX + tenant_id


def new_job_id(at: datetime) -> str:
    """Time-ordered: 12 hex digits of milliseconds, then 20 random ones."""
    return f"{int(at.timestamp() * 1000):012x}{uuid.uuid4().hex[:20]}"


class BulkJobStore:
    """Bulk jobs (a boto3 ``Table`` resource of ``tables.RUNTIME``)."""

    def __init__(self, table: Any, clock: Clock) -> None:
        self._table = table
        self._clock = clock

    def create(self, tenant_id: str, items: Sequence[JobItem]) -> BulkJob:
        now = self._clock.now()
        job = BulkJob(new_job_id(now), tenant_id, now, tuple(items))
        rows = [[i.index, i.kind, i.app_id, i.version] for i in job.items]
        self._table.put_item(
            Item={
                constants.PK: bulk_pk(tenant_id),
                constants.SK: job.job_id,
                "created_at": now.astimezone(UTC).isoformat(timespec="microseconds"),
                "items": json.dumps(rows, separators=(",", ":")),
                constants.TTL_ATTRIBUTE: int((now + RETENTION).timestamp()),
            }
        )
        return job

    def get(self, tenant_id: str, job_id: str) -> BulkJob:
        """The job, or ``BulkJobNotFoundError`` (a malformed id is never looked up)."""
        if not re.fullmatch(JOB_ID_PATTERN, job_id):
            raise BulkJobNotFoundError(tenant_id, job_id)
        key = {constants.PK: bulk_pk(tenant_id), constants.SK: job_id}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        if item is None:
            raise BulkJobNotFoundError(tenant_id, job_id)
        rows = json.loads(str(item["items"]))
        items = tuple(JobItem(int(i), str(k), str(a), int(v)) for i, k, a, v in rows)
        return BulkJob(job_id, tenant_id, datetime.fromisoformat(str(item["created_at"])), items)


def _fault(entry: PostingEntry | None) -> dict[str, Any] | None:
    if entry is None or entry.last_error is None:
        return None
    return entry.last_error.model_dump(mode="json", exclude_none=True)


def job_status(
    job: BulkJob, entries: Mapping[tuple[str, str], PostingEntry], *, recheck_pending: bool
) -> dict[str, Any]:
    """What became of a job's documents, from their posting-log entries: each item's state now
    (``superseded`` when a later version replaced the job's), counts by state, and ``finished``
    once none is still on its way (``IN_PROGRESS``) and, when some wait in ``needs_attention``, no
    recheck of the tenant is pending (a document waiting on another one of the job, its client or
    the invoice it pays, goes by itself once that one is posted: the push worker's recheck)."""
    counts: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for item in job.items:
        entry = entries.get((item.kind, item.app_id))
        state = entry.state.value if entry is not None else "unknown"
        counts[state] = counts.get(state, 0) + 1
        rows.append(
            {
                "index": item.index,
                "kind": item.kind,
                "id": item.app_id,
                "version": item.version,
                "state": state,
                "superseded": entry is not None and entry.version > item.version,
                "qbo_id": entry.qbo_id if entry is not None else None,
                "last_error": _fault(entry),
                "reasons": [reason_dict(r) for r in entry.reasons] if entry is not None else [],
            }
        )
    waiting = sum(n for state, n in counts.items() if state in IN_PROGRESS)
    if counts.get(PostingState.NEEDS_ATTENTION.value) and recheck_pending:
        waiting += counts[PostingState.NEEDS_ATTENTION.value]
    return {
        "job_id": job.job_id,
        "tenant_id": job.tenant_id,
        "created_at": job.created_at.isoformat(),
        "total": len(job.items),
        "by_state": dict(sorted(counts.items())),
        "finished": waiting == 0,
        "items": rows,
    }
