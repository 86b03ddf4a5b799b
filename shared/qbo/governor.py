"""Per-realm budgets for calls to QBO, shared by every worker: Intuit's limits are per company
(https://developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles),
so every Lambda calling one realm must draw on one budget, and one realm's work never draws on
another realm's budget (each realm has its own item; a busy tenant only waits for itself).

How the budget is kept (one planning function, :func:`plan`, for both implementations):

* Rates are sliding windows, kept by spacing: a realm's requests get start times at least
  ``interval = max(60 s / requests_per_minute, 1 s / requests_per_second)`` apart, so no sliding
  minute (second) holds more than ``requests_per_minute`` (``requests_per_second``) starts and a
  steady flow runs at exactly the configured rate.  Intuit's windows slide (the sandbox's do), so
  fixed windows would let two windows' budgets meet at a boundary and earn a 429.  No burst above
  the sustained rate is offered: Intuit's 10/s is barely above its 500/min average, so none is
  worth having.  Batch requests are also spaced ``60 s / batch_per_minute`` apart.
* A caller reserves a start time and sleeps until it: no polling and no herd at window edges.
  Reserved times are exact, so they are not jittered.  A caller that wakes more than one interval
  late (its process stalled) reserves again rather than meet later requests in the same second;
  late by at most one interval, a request adds at most one start to any window, which is why the
  configured limits sit at least one below Intuit's (the defaults: 450/min and 9/s for 500 and 10).
* At most ``concurrent`` requests are in flight: a caller holds a lease from its reservation until
  it leaves the ``with`` block.  A lease ends by itself ``lease_seconds`` after its start, so a
  Lambda that dies mid-request frees its slot.  Leases held while waiting to start also bound how
  far ahead reservations can run.
* With every slot taken (or a batch waiting for the batch spacing) the caller pauses with jitter
  and looks again; past ``max_wait_seconds`` it raises :class:`GovernorTimeoutError`, so a Lambda
  can hand its message back to the queue instead of running out of time.

:class:`RateGovernor` keeps the state in DynamoDB, shared by every Lambda: one item per realm in the
runtime table (``pk = GOVERNOR#<realm>#BUDGET``), written with a condition on its version (see its
docstring for the calls per acquire).  :class:`InProcessGovernor` keeps it in memory for tests and
the local CLI.
"""

from __future__ import annotations

import random as _random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypedDict, Unpack

from shared.adapters.dynamo import ConditionFailedError, aws_errors
from shared.kernel import constants
from shared.kernel.clock import Clock, SystemClock
from shared.kernel.observability import logger
from shared.kernel.settings import GovernorLimits

# QBO ends a request after 120 s; a lease must outlive the longest request plus its wait to start.
DEFAULT_LEASE_SECONDS = 150.0
DEFAULT_MAX_WAIT_SECONDS = 60.0
# First pause when every slot is taken; doubled (with jitter) up to the maximum while it stays so.
POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 0.25
# The budget item outlives its last use by this much before DynamoDB's TTL may delete it.
STATE_RETENTION_SECONDS = 3600


class GovernorError(Exception):
    """The rate governor could not admit a request."""


class GovernorUnavailableError(GovernorError):
    """The governor's table could not be read or written (DynamoDB failed)."""


class GovernorTimeoutError(GovernorError):
    """The realm's budget did not allow the request within the governor's maximum wait."""

    def __init__(self, realm_id: str, waited: float) -> None:
        super().__init__(f"realm {realm_id}: no QBO budget within {waited:.1f} s")
        self.realm_id = realm_id
        self.waited = waited


@dataclass(frozen=True)
class Pacing:
    """Spacing between starts that keeps a realm inside its limits (see the module docstring)."""

    interval: float
    batch_interval: float
    concurrent: int

    @classmethod
    def from_limits(cls, limits: GovernorLimits, time_scale: float = 1.0) -> Pacing:
        """``time_scale`` shrinks the windows (60 makes a minute last a second), to match a sandbox
        running with the same ``time_scale``."""
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        minute, second = 60.0 / time_scale, 1.0 / time_scale
        return cls(
            interval=max(minute / limits.requests_per_minute, second / limits.requests_per_second),
            batch_interval=minute / limits.batch_per_minute,
            concurrent=limits.concurrent,
        )


@dataclass
class BudgetState:
    """A realm's budget: the next free start times and the leases in flight (epoch seconds)."""

    version: int = 0  # 0: no item stored yet
    next_at: float = 0.0
    next_batch_at: float = 0.0
    leases: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Reservation:
    start_at: float
    next_at: float
    next_batch_at: float
    expired: tuple[str, ...]  # leases to forget


@dataclass(frozen=True)
class Wait:
    until: float | None  # None: until a slot frees (unknown)


def plan(state: BudgetState, now: float, pacing: Pacing, *, batch: bool, own: str = "") -> Reservation | Wait:
    """What a caller may do now: reserve a start time, or wait.  ``own`` is the caller's lease when
    it reserves again (it does not compete with itself for a slot)."""
    live = [until for lease, until in state.leases.items() if until > now and lease != own]
    if len(live) >= pacing.concurrent:
        return Wait(None)
    start = max(now, state.next_at)
    if batch and state.next_batch_at > start:
        # Wait without reserving, so ordinary requests keep flowing while the batch budget refills.
        return Wait(state.next_batch_at)
    return Reservation(
        start_at=start,
        next_at=start + pacing.interval,
        next_batch_at=start + pacing.batch_interval if batch else state.next_batch_at,
        expired=tuple(lease for lease, until in state.leases.items() if until <= now and lease != own),
    )


class _Waiter:
    """Deadline and jittered pauses of one acquire."""

    def __init__(self, realm_id: str, now: float, max_wait: float, random: Callable[[], float]) -> None:
        self.realm_id = realm_id
        self.started = now
        self.deadline = now + max_wait
        self._random = random
        self._poll = POLL_SECONDS

    def check(self, now: float, until: float) -> None:
        if until > self.deadline:
            raise GovernorTimeoutError(self.realm_id, now - self.started)

    def pause(self, wait: Wait, now: float) -> float:
        """Seconds to pause before looking again (raises past the deadline)."""
        if now >= self.deadline:
            raise GovernorTimeoutError(self.realm_id, now - self.started)
        if wait.until is not None:
            # Several callers wait for the same moment: spread them a little.
            delay = max(0.0, wait.until - now) + self._poll * self._random()
        else:
            delay = self._poll / 2 + self._poll / 2 * self._random()
            self._poll = min(MAX_POLL_SECONDS, self._poll * 2)
        return min(delay, max(0.0, self.deadline - now))


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {
            "acquires": 0,
            "dynamodb_calls": 0,
            "conflicts": 0,
            "waits": 0,
            "late_starts": 0,
        }

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


class GovernorOptions(TypedDict, total=False):
    """How a governor keeps time (tests pass a clock, a sleep and a time scale; Lambdas none)."""

    clock: Clock | None
    sleep: Callable[[float], None]
    random: Callable[[], float]
    lease_seconds: float
    max_wait_seconds: float
    time_scale: float


class _Governor:
    """What both implementations share: the acquire protocol around their own reserve/release."""

    def __init__(self, limits: GovernorLimits | None, **options: Unpack[GovernorOptions]) -> None:
        self.pacing = Pacing.from_limits(limits or GovernorLimits(), options.get("time_scale", 1.0))
        self._clock: Clock = options.get("clock") or SystemClock()
        self._sleep = options.get("sleep", time.sleep)
        self._random = options.get("random", _random.random)
        self._lease_seconds = options.get("lease_seconds", DEFAULT_LEASE_SECONDS)
        self._max_wait = options.get("max_wait_seconds", DEFAULT_MAX_WAIT_SECONDS)
        self._stats = _Stats()

    def stats(self) -> dict[str, int]:
        """Counters since creation: acquires, waits, late starts, DynamoDB calls and conflicts."""
        return self._stats.snapshot()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    @contextmanager
    def acquire(self, realm_id: str, *, batch: bool = False) -> Iterator[None]:
        """Hold the caller until the realm's budget allows one request (a batch request when
        ``batch``), keep a slot for it until the block ends."""
        lease = uuid.uuid4().hex
        waiter = _Waiter(realm_id, self._now(), self._max_wait, self._random)
        start_at = self._reserve(realm_id, lease, waiter, batch=batch)
        self._stats.add("acquires")
        try:
            self._start_on_time(realm_id, lease, start_at, waiter)
            yield
        finally:
            self._release(realm_id, lease)

    def _start_on_time(self, realm_id: str, lease: str, start_at: float, waiter: _Waiter) -> None:
        """Sleep until the reserved start; a caller woken too late (a stalled process) reserves again.

        Were it to go anyway, it would meet the requests reserved after it inside one second, and a
        stall of a whole process would release all its callers as one burst.  A new reservation
        puts it back in line; the start it missed goes unused.
        """
        # Late by up to one interval, a request adds at most one start to any window (so the
        # configured limits must sit at least one below Intuit's, as the defaults do).
        tolerance = self.pacing.interval
        while True:
            self._sleep(max(0.0, start_at - self._now()))
            if self._now() - start_at <= tolerance:
                return
            self._stats.add("late_starts")
            # Only the rate start is taken again: the batch start already reserved lies behind us.
            start_at = self._reserve(realm_id, lease, waiter, batch=False)

    def _reserve(self, realm_id: str, lease: str, waiter: _Waiter, *, batch: bool) -> float:
        raise NotImplementedError

    def _release(self, realm_id: str, lease: str) -> None:
        raise NotImplementedError


# --- in memory --------------------------------------------------------------------------------


class InProcessGovernor(_Governor):
    """The same budgets in memory, for one process (tests, the local CLI)."""

    def __init__(self, limits: GovernorLimits | None = None, **options: Unpack[GovernorOptions]) -> None:
        super().__init__(limits, **options)
        self._lock = threading.Lock()
        self._states: dict[str, BudgetState] = {}

    def _reserve(self, realm_id: str, lease: str, waiter: _Waiter, *, batch: bool) -> float:
        while True:
            with self._lock:
                state = self._states.setdefault(realm_id, BudgetState())
                now = self._now()
                step = plan(state, now, self.pacing, batch=batch, own=lease)
                if isinstance(step, Reservation):
                    waiter.check(now, step.start_at)
                    for gone in step.expired:
                        state.leases.pop(gone, None)
                    state.leases[lease] = step.start_at + self._lease_seconds
                    state.next_at, state.next_batch_at = step.next_at, step.next_batch_at
                    state.version += 1
                    return step.start_at
            self._stats.add("waits")
            self._sleep(waiter.pause(step, now))

    def _release(self, realm_id: str, lease: str) -> None:
        with self._lock:
            self._states[realm_id].leases.pop(lease, None)


# --- DynamoDB -----------------------------------------------------------------------------------


class _ConflictError(Exception):
    """The budget item changed since it was read; ``current`` is what it holds now, if known."""

    def __init__(self, current: BudgetState | None) -> None:
        super().__init__("the governor item changed")
        self.current = current


def budget_key(realm_id: str) -> dict[str, str]:
    return {constants.PK: f"{constants.GOVERNOR_PREFIX}{realm_id}#BUDGET", constants.SK: "BUDGET"}


class RateGovernor(_Governor):
    """Per-realm budgets in the runtime table, shared by every process.

    ``table`` is a boto3 DynamoDB **Table resource** (``boto3.resource("dynamodb").Table(name)``):
    it carries its name and converts numbers to ``Decimal``.  Create it lazily (inside ``mock_aws``
    in tests); nothing here touches AWS before the first ``acquire``.  DynamoDB failures surface as
    :class:`GovernorUnavailableError`.

    DynamoDB calls per acquire: one conditional ``UpdateItem`` when this process's cached copy of
    the realm's item is current (a realm's work is serialised by its FIFO message group, so that is
    the usual case), one ``GetItem`` more when it is not, and a conflict (another process wrote
    first) costs one more ``UpdateItem``, since the refusal returns the item as it now is.  Leaving
    the block costs one ``UpdateItem`` (the lease is removed).  Threads of one process take turns on
    a realm's item (reserve and release alike), so they never conflict with each other, and moto,
    which is not thread-safe, is never entered twice at once for one item.  ``stats()`` counts the
    calls.
    """

    def __init__(
        self, table: Any, limits: GovernorLimits | None = None, **options: Unpack[GovernorOptions]
    ) -> None:
        super().__init__(limits, **options)
        self._table = table
        self._guard = threading.Lock()
        self._realm_locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, BudgetState] = {}

    def _realm_lock(self, realm_id: str) -> threading.Lock:
        with self._guard:
            return self._realm_locks.setdefault(realm_id, threading.Lock())

    def _reserve(self, realm_id: str, lease: str, waiter: _Waiter, *, batch: bool) -> float:
        lock = self._realm_lock(realm_id)
        while True:
            with lock:
                state = self._cache.get(realm_id)
                if state is None:
                    state = self._read(realm_id)
                now = self._now()
                step = plan(state, now, self.pacing, batch=batch, own=lease)
                if isinstance(step, Reservation):
                    waiter.check(now, step.start_at)
                    try:
                        self._cache[realm_id] = self._write(realm_id, state, step, lease, now)
                    except _ConflictError as conflict:
                        self._stats.add("conflicts")
                        if conflict.current is None:
                            self._cache.pop(realm_id, None)
                        else:
                            self._cache[realm_id] = conflict.current
                        continue
                    return step.start_at
                # Another process may free a slot: look at the table, not the cache, next time.
                self._cache.pop(realm_id, None)
            self._stats.add("waits")
            self._sleep(waiter.pause(step, now))

    def _read(self, realm_id: str) -> BudgetState:
        self._stats.add("dynamodb_calls")
        with aws_errors(_unavailable("read"), transport=True):
            answer = self._table.get_item(Key=budget_key(realm_id), ConsistentRead=True)
        item = answer.get("Item")
        return _state_of(item) if item else BudgetState()

    def _write(
        self, realm_id: str, state: BudgetState, step: Reservation, lease: str, now: float
    ) -> BudgetState:
        lease_until = step.start_at + self._lease_seconds
        keep_until = max(lease_until, step.next_at, step.next_batch_at) + STATE_RETENTION_SECONDS
        names = {"#v": "version", "#n": "next_at", "#b": "next_batch_at", "#l": "leases", "#x": "expires_at"}
        values: dict[str, Any] = {
            ":v1": state.version + 1,
            ":n": _number(step.next_at),
            ":b": _number(step.next_batch_at),
            ":x": int(keep_until),
        }
        if state.version == 0:
            values[":l"] = {lease: _number(lease_until)}
            expression = "SET #v = :v1, #n = :n, #b = :b, #l = :l, #x = :x"
            condition = "attribute_not_exists(#v)"
        else:
            names["#me"] = lease
            values[":until"] = _number(lease_until)
            values[":v0"] = state.version
            expression = "SET #v = :v1, #n = :n, #b = :b, #l.#me = :until, #x = :x"
            if step.expired:
                names.update({f"#e{i}": gone for i, gone in enumerate(step.expired)})
                expression += " REMOVE " + ", ".join(f"#l.#e{i}" for i in range(len(step.expired)))
            condition = "#v = :v0"
        self._stats.add("dynamodb_calls")
        try:
            with aws_errors(_unavailable("write"), conditions=True, transport=True):
                self._table.update_item(
                    Key=budget_key(realm_id),
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ConditionFailedError as failed:
            seen = failed.failed.get(0)
            raise _ConflictError(_state_of(seen) if seen else None) from failed
        leases = {k: v for k, v in state.leases.items() if k not in step.expired and v > now}
        leases[lease] = lease_until
        return BudgetState(state.version + 1, step.next_at, step.next_batch_at, leases)

    def _release(self, realm_id: str, lease: str) -> None:
        with self._realm_lock(realm_id):
            self._stats.add("dynamodb_calls")
            try:
                with aws_errors(_unavailable("release"), transport=True):
                    self._table.update_item(
                        Key=budget_key(realm_id),
                        UpdateExpression="REMOVE #l.#me",
                        ConditionExpression="attribute_exists(#l)",
                        ExpressionAttributeNames={"#l": "leases", "#me": lease},
                    )
            except GovernorUnavailableError as error:
                # The lease ends by itself; failing the caller's finished QBO call would be worse.
                cause = type(error.__cause__).__name__
                logger.warning("governor lease not released", extra={"realm_id": realm_id, "error": cause})
            # A release leaves the version as it is, so the cached copy stays usable without it.
            cached = self._cache.get(realm_id)
            if cached is not None:
                cached.leases.pop(lease, None)


def _number(value: float) -> Decimal:
    return Decimal(f"{value:.6f}")


def _state_of(item: Mapping[str, Any]) -> BudgetState:
    leases = item.get("leases") or {}
    return BudgetState(
        version=int(item.get("version", 0)),
        next_at=float(item.get("next_at", 0)),
        next_batch_at=float(item.get("next_batch_at", 0)),
        leases={str(k): float(v) for k, v in leases.items()},
    )


def _unavailable(operation: str) -> Callable[[str, Exception], GovernorUnavailableError]:
    """What a failed read or write of the budget becomes (named by the failure's type)."""

    def failure(_code: str, error: Exception) -> GovernorUnavailableError:
        return GovernorUnavailableError(f"governor {operation} failed: {type(error).__name__}")

    return failure
