"""What the sandbox does to traffic: per-realm rate limits, injected faults, and counters."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from qbo_sandbox.clock import Clock
from qbo_sandbox.settings import Limits

# --- rate limits ------------------------------------------------------------------------------


class RateLimiter:
    """Intuit's limits per realm: requests per minute and second, requests in flight, batches.

    Windows are sliding and measured on the clock's scaled monotonic time, so a time scale of 60
    makes a "minute" last one real second.  A refused request is not counted against the window
    (QBO answers it with 429 before doing any work).
    """

    def __init__(self, limits: Limits, clock: Clock) -> None:
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._minute: dict[str, deque[float]] = {}
        self._second: dict[str, deque[float]] = {}
        self._batch: dict[str, deque[float]] = {}
        self._in_flight: Counter[str] = Counter()

    @staticmethod
    def _trim(window: deque[float], now: float, span: float) -> None:
        while window and window[0] <= now - span:
            window.popleft()

    @contextmanager
    def admit(self, realm: str, *, batch: bool = False) -> Iterator[bool]:
        """Yields True when the request may run (and holds its in-flight slot), False if throttled."""
        limits = self.limits
        now = self.clock.monotonic()
        with self._lock:
            minute = self._minute.setdefault(realm, deque())
            second = self._second.setdefault(realm, deque())
            batches = self._batch.setdefault(realm, deque())
            self._trim(minute, now, 60.0)
            self._trim(second, now, 1.0)
            self._trim(batches, now, 60.0)
            refused = (
                (limits.requests_per_minute and len(minute) >= limits.requests_per_minute)
                or (limits.requests_per_second and len(second) >= limits.requests_per_second)
                or (limits.concurrent and self._in_flight[realm] >= limits.concurrent)
                or (batch and limits.batch_per_minute and len(batches) >= limits.batch_per_minute)
            )
            if not refused:
                minute.append(now)
                second.append(now)
                if batch:
                    batches.append(now)
                self._in_flight[realm] += 1
        if refused:
            yield False
            return
        try:
            yield True
        finally:
            with self._lock:
                self._in_flight[realm] -= 1

    def reset(self) -> None:
        with self._lock:
            self._minute.clear()
            self._second.clear()
            self._batch.clear()


# --- fault injection --------------------------------------------------------------------------

FAULT_KINDS = frozenset({"status", "latency", "drop", "commit_then_fail", "slow_response"})


@dataclass
class FaultRule:
    """Applies to the next ``count`` requests that match; see docs/sandbox.md for every field.

    With a ``probability`` the rule is a rate: each matching request draws from the rule's own
    random generator (seeded with ``seed``, so a run can be repeated) and the fault happens only
    when the draw falls below it; ``count`` then caps how many times it happens (None: until the
    rule is cleared).  ``seen`` counts the matching requests, ``hits`` the faults injected.
    """

    kind: str
    count: int | None = None  # None: 1, or no cap for a rate
    method: str | None = None
    path: str | None = None  # regular expression searched in the path
    realm: str | None = None
    entity: str | None = None  # e.g. "invoice", "query", "batch", "tokens"
    operation: str | None = None  # create, update, delete, void, read, query, cdc, batch
    status: int = 500
    code: str | None = None  # a QBO fault code for the body (e.g. "6000"); default per status
    body: Any = None  # an exact body to send instead of QBO's
    content_type: str | None = None
    latency_ms: int = 0
    probability: float | None = None  # a rate: the share of matching requests that get the fault
    seed: int | None = None  # the rate's random generator (None: a fresh, unrepeatable one)
    rule_id: int = 0
    hits: int = 0
    seen: int = 0
    _draw: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {sorted(FAULT_KINDS)}")
        if self.probability is not None and not 0 < self.probability <= 1:
            raise ValueError("probability must be above 0 and at most 1")
        if self.count is None and self.probability is None:
            self.count = 1  # an unlimited rule would fail every request: only rates may omit count
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.path is not None:
            re.compile(self.path)
        self._draw = random.Random(self.seed)  # noqa: S311 - fault injection, not cryptography

    def fires(self) -> bool:
        """Called for a matching request: does the fault happen to it?"""
        self.seen += 1
        return self.probability is None or self._draw.random() < self.probability

    @property
    def spent(self) -> bool:
        return self.count is not None and self.hits >= self.count

    def matches(
        self, method: str, path: str, realm: str | None, entity: str | None, operation: str | None
    ) -> bool:
        return (
            (self.method is None or self.method.upper() == method.upper())
            and (self.path is None or re.search(self.path, path) is not None)
            and (self.realm is None or self.realm == realm)
            and (self.entity is None or (entity or "").lower() == self.entity.lower())
            and (self.operation is None or self.operation == operation)
        )

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and not k.startswith("_")}


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.rule_id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def take(
        self,
        method: str,
        path: str,
        realm: str | None = None,
        entity: str | None = None,
        operation: str | None = None,
    ) -> FaultRule | None:
        """The first armed rule that matches this request and fires, consuming one of its uses.

        A rate rule that matches but does not fire lets the next rules have their turn."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, realm, entity, operation) and rule.fires():
                    rule.hits += 1
                    if rule.spent:
                        self._rules.remove(rule)
                    return rule
        return None

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.public() for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()


# --- counters ---------------------------------------------------------------------------------


@dataclass
class RealmCounters:
    requests: int = 0
    metered_reads: int = 0  # CorePlus: reads, queries, CDC, batch queries
    writes: int = 0
    batch_requests: int = 0
    batch_operations: int = 0
    throttled: int = 0
    faults_injected: int = 0
    errors: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)

    def public(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["by_endpoint"] = dict(self.by_endpoint)
        return data


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._realms: dict[str, RealmCounters] = {}
        self.oauth: Counter[str] = Counter()

    def realm(self, realm: str) -> RealmCounters:
        with self._lock:
            return self._realms.setdefault(realm, RealmCounters())

    def bump(self, realm: str, **amounts: int) -> None:
        counters = self.realm(realm)
        with self._lock:
            for name, amount in amounts.items():
                setattr(counters, name, getattr(counters, name) + amount)

    def endpoint(self, realm: str, name: str) -> None:
        counters = self.realm(realm)
        with self._lock:
            counters.by_endpoint[name] += 1

    def public(self, realm: str | None = None) -> dict[str, Any]:
        with self._lock:
            if realm is not None:
                return self._realms.get(realm, RealmCounters()).public()
            return {
                "realms": {r: c.public() for r, c in self._realms.items()},
                "oauth": dict(self.oauth),
            }

    def reset(self) -> None:
        with self._lock:
            self._realms.clear()
            self.oauth.clear()
