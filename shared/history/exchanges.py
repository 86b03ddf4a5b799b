"""The exchange history (V2): every webhook batch, sweep, push run and recheck page of a tenant,
what ran and how it went.

Layout (``tables.RUNTIME``; docs/pull.md, "Exchange history"): ``pk = EXCHANGE#<tenant>``,
``sk = <started_at UTC ISO>#<exchange id>`` so a query in reverse gives the newest first, with
``expires_at`` (TTL, ``RETENTION`` after the start).  An exchange is written when it starts
(``outcome = running``) and rewritten when it finishes, so a run that crashed stays visible as
``running`` with its start time.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NamedTuple

from shared.adapters.dynamo import Key, decode_page_token, encode_page_token
from shared.kernel import constants
from shared.kernel.clock import Clock, SystemClock
from shared.mapping.links import check_limit

EXCHANGE_PREFIX: Final = "EXCHANGE#"
RETENTION: Final = timedelta(days=90)
_TENANT = re.compile(r"^[^#\x00-\x1f]{1,128}$")

# export / import: the administrator's list transfers (a match tab's Export to QBO, Import from QBO).
ExchangeSource = Literal["webhook", "sweep", "push", "recheck", "export", "import"]
Outcome = Literal["running", "succeeded", "failed"]


def exchange_pk(tenant_id: str) -> str:
    if not _TENANT.match(tenant_id):
        raise ValueError("tenant id must be 1-128 characters without '#'")
    return EXCHANGE_PREFIX + tenant_id


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass
class Exchange:
    """One run.  ``events``: events published by detail-type; ``ignored``: changes ignored, by QBO
    entity (unknown transaction types, Q4) or by reason (``echo``, ``unlinked``, ...)."""

    exchange_id: str
    tenant_id: str
    source: ExchangeSource
    started_at: datetime
    realm_id: str | None = None
    finished_at: datetime | None = None
    outcome: Outcome = "running"
    notices: int = 0
    reads: int = 0
    changes: int = 0
    echoes: int = 0  # our own writes recognised (notices and rows): no read, no event
    coalesced: int = 0  # notices an earlier read already covered: no read
    cache_refreshed: int = 0
    events: dict[str, int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    read_for: dict[str, int] = field(default_factory=dict)  # the notices that made it read QBO
    trigger: str | None = None  # what started it, when not a notice (a recheck's reason)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "exchange_id": self.exchange_id,
            "tenant_id": self.tenant_id,
            "realm_id": self.realm_id,
            "source": self.source,
            "started_at": _stamp(self.started_at),
            "finished_at": _stamp(self.finished_at) if self.finished_at else None,
            "outcome": self.outcome,
            "notices": self.notices,
            "reads": self.reads,
            "changes": self.changes,
            "echoes": self.echoes,
            "coalesced": self.coalesced,
            "cache_refreshed": self.cache_refreshed,
            "events": dict(self.events),
            "ignored": dict(self.ignored),
            "read_for": dict(self.read_for),
            "trigger": self.trigger,
            "error": self.error,
        }


class ExchangePage(NamedTuple):
    exchanges: list[Exchange]
    next_token: str | None


class ExchangeLog:
    """Records exchanges (a boto3 ``Table`` resource of ``tables.RUNTIME``)."""

    def __init__(self, table: Any, clock: Clock | None = None) -> None:
        self._table = table
        self._clock = clock or SystemClock()

    def start(self, tenant_id: str, source: ExchangeSource, *, realm_id: str | None = None) -> Exchange:
        exchange = Exchange(
            exchange_id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            source=source,
            started_at=self._clock.now(),
            realm_id=realm_id,
        )
        self._put(exchange)
        return exchange

    def finish(self, exchange: Exchange, outcome: Outcome, *, error: str | None = None) -> Exchange:
        exchange.outcome = outcome
        exchange.finished_at = self._clock.now()
        exchange.error = error[:500] if error else None
        self._put(exchange)
        return exchange

    def record(
        self,
        tenant_id: str,
        source: ExchangeSource,
        started_at: datetime,
        *,
        trigger: str,
        changes: int,
        events: dict[str, int],
    ) -> Exchange:
        """A run that is over already (one write): a list export or import, whose outcome per entity
        is in ``events`` (``created``, ``refused``, ...) and what it made in ``changes``."""
        exchange = Exchange(
            exchange_id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            source=source,
            started_at=started_at,
            finished_at=self._clock.now(),
            outcome="succeeded",
            changes=changes,
            events={name: count for name, count in events.items() if count},
            trigger=trigger,
        )
        self._put(exchange)
        return exchange

    def latest(self, tenant_id: str) -> Exchange | None:
        page = self.history(tenant_id, limit=1)
        return page.exchanges[0] if page.exchanges else None

    def history(self, tenant_id: str, limit: int = 50, page_token: str | None = None) -> ExchangePage:
        """Newest first; ``page_token`` from the previous page continues it."""
        pk = exchange_pk(tenant_id)
        request: dict[str, Any] = {
            "KeyConditionExpression": Key(constants.PK).eq(pk),
            "ScanIndexForward": False,
            "Limit": check_limit(limit),
            "ConsistentRead": True,
        }
        if page_token:
            request["ExclusiveStartKey"] = decode_page_token(
                page_token,
                {constants.PK: lambda value: value == pk, constants.SK: bool},
            )
        answer = self._table.query(**request)
        exchanges = [_exchange(item) for item in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        return ExchangePage(exchanges, encode_page_token(last) if last else None)

    def _put(self, exchange: Exchange) -> None:
        body = exchange.as_dict()
        item = {
            constants.PK: exchange_pk(exchange.tenant_id),
            constants.SK: f"{_stamp(exchange.started_at)}#{exchange.exchange_id}",
            "body": json.dumps(body, sort_keys=True),
            "outcome": exchange.outcome,
            constants.TTL_ATTRIBUTE: int((exchange.started_at + RETENTION).timestamp()),
        }
        self._table.put_item(Item=item)


def _exchange(item: dict[str, Any]) -> Exchange:
    body = json.loads(str(item["body"]))
    return Exchange(
        exchange_id=body["exchange_id"],
        tenant_id=body["tenant_id"],
        source=body["source"],
        started_at=datetime.fromisoformat(body["started_at"]),
        realm_id=body.get("realm_id"),
        finished_at=datetime.fromisoformat(body["finished_at"]) if body.get("finished_at") else None,
        outcome=body["outcome"],
        notices=int(body.get("notices", 0)),
        reads=int(body.get("reads", 0)),
        changes=int(body.get("changes", 0)),
        echoes=int(body.get("echoes", 0)),
        coalesced=int(body.get("coalesced", 0)),
        cache_refreshed=int(body.get("cache_refreshed", 0)),
        events={str(k): int(v) for k, v in (body.get("events") or {}).items()},
        ignored={str(k): int(v) for k, v in (body.get("ignored") or {}).items()},
        read_for={str(k): int(v) for k, v in (body.get("read_for") or {}).items()},
        trigger=body.get("trigger"),
        error=body.get("error"),
    )
