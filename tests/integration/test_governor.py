"""The rate governor: spacing, slots, leases and fairness on a fake clock (DynamoDB through moto),
then the issue's bursts against the sandbox over real sockets."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx2
import pytest
from moto import mock_aws

from infra import tables
from qbo_sandbox.server import SandboxServer
from shared.kernel import constants
from shared.kernel.settings import GovernorLimits
from shared.qbo.client import QboClient
from shared.qbo.errors import QboError, ThrottledError
from shared.qbo.governor import (
    GovernorTimeoutError,
    GovernorUnavailableError,
    InProcessGovernor,
    Pacing,
    RateGovernor,
    budget_key,
)

REALM = "9341450000000001"
OTHER_REALM = "9341450000000002"
SMALL = GovernorLimits(requests_per_minute=30, requests_per_second=5, concurrent=2, batch_per_minute=6)


class FakeClock:
    """Time that moves only when someone sleeps: every spacing is exact and no test waits."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds) + self.stall
        self.stall = 0.0

    stall = 0.0  # added to the next sleep: the process was descheduled as it woke


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


@pytest.fixture
def table(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    name = tables.create_table(client, tables.RUNTIME, "qbo-link-runtime-test")
    return boto3.resource("dynamodb", region_name="us-east-1").Table(name)


Factory = Callable[..., Any]


@pytest.fixture(params=["in_process", "dynamodb"])
def make_governor(request: pytest.FixtureRequest) -> Factory:
    """Builds either implementation with the same arguments (RateGovernor on one moto table)."""
    if request.param == "in_process":
        return InProcessGovernor
    table = request.getfixturevalue("table")
    return lambda *args, **kwargs: RateGovernor(table, *args, **kwargs)


def starts_of(governor: Any, clock: FakeClock, count: int, **acquire: Any) -> list[float]:
    starts = []
    for _ in range(count):
        with governor.acquire(REALM, **acquire):
            starts.append(clock.t)
    return starts


# --- spacing (sliding windows) ----------------------------------------------------------------


def test_pacing_follows_the_tighter_limit() -> None:
    assert Pacing.from_limits(GovernorLimits()).interval == pytest.approx(60 / 450)
    assert Pacing.from_limits(GovernorLimits(requests_per_second=2)).interval == pytest.approx(0.5)
    scaled = Pacing.from_limits(GovernorLimits(), time_scale=20)
    assert scaled.interval / Pacing.from_limits(GovernorLimits()).interval == pytest.approx(1 / 20)
    assert Pacing.from_limits(GovernorLimits(batch_per_minute=30)).batch_interval == pytest.approx(2.0)


def test_starts_are_spaced_so_no_sliding_minute_exceeds_the_budget(make_governor: Factory) -> None:
    clock = FakeClock()
    governor = make_governor(SMALL, clock=clock, sleep=clock.sleep)
    starts = starts_of(governor, clock, 75)
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(starts)}
    assert gaps == {2.0}  # 60 s / 30
    for index, first in enumerate(starts):
        in_window = [s for s in starts[index:] if s < first + 60]
        assert len(in_window) <= SMALL.requests_per_minute


def test_the_per_second_limit_binds_when_it_is_tighter(make_governor: Factory) -> None:
    clock = FakeClock()
    limits = GovernorLimits(requests_per_minute=600, requests_per_second=4, concurrent=4)
    governor = make_governor(limits, clock=clock, sleep=clock.sleep)
    starts = starts_of(governor, clock, 12)
    assert starts[-1] - starts[0] == pytest.approx(11 * 0.25)


def test_an_idle_realm_starts_at_once(make_governor: Factory) -> None:
    clock = FakeClock()
    governor = make_governor(SMALL, clock=clock, sleep=clock.sleep)
    with governor.acquire(REALM):
        first = clock.t
    clock.sleep(30)  # longer than the interval: nothing owed
    with governor.acquire(REALM):
        second = clock.t
    assert second - first == 30


def test_batches_are_spaced_without_holding_back_other_requests(make_governor: Factory) -> None:
    clock = FakeClock()
    governor = make_governor(SMALL, clock=clock, sleep=clock.sleep, random=lambda: 0.0)
    begin = clock.t
    with governor.acquire(REALM, batch=True):
        batch_one = clock.t
    plain = starts_of(governor, clock, 2)
    with governor.acquire(REALM, batch=True):
        batch_two = clock.t
    assert batch_one == begin
    assert [p - begin for p in plain] == [2.0, 4.0]  # not pushed behind the batch budget
    assert batch_two - batch_one >= 60 / SMALL.batch_per_minute


def test_a_start_beyond_the_maximum_wait_is_refused_at_once(make_governor: Factory) -> None:
    clock = FakeClock()
    limits = GovernorLimits(requests_per_minute=1, requests_per_second=1, concurrent=2)
    governor = make_governor(limits, clock=clock, sleep=clock.sleep, max_wait_seconds=10)
    with governor.acquire(REALM):
        pass
    before = clock.t
    with pytest.raises(GovernorTimeoutError) as raised, governor.acquire(REALM):
        pytest.fail("the budget allows no start within 10 s")
    assert raised.value.realm_id == REALM
    assert clock.t == before  # refused without waiting
    clock.sleep(60)
    with governor.acquire(REALM):  # nothing was reserved by the refusal
        assert clock.t == before + 60


def test_a_caller_woken_late_queues_again_instead_of_bunching(make_governor: Factory) -> None:
    clock = FakeClock()
    governor = make_governor(SMALL, clock=clock, sleep=clock.sleep)
    begin = clock.t
    clock.stall = 5.0  # the first caller wakes 5 s after its start (2.5 intervals late)
    starts = starts_of(governor, clock, 3)
    assert [s - begin for s in starts] == [5.0, 7.0, 9.0]
    assert governor.stats()["late_starts"] == 1


# --- slots, leases, fairness ----------------------------------------------------------------------


def hold(governor: Any, stack: ExitStack, realm: str = REALM, count: int = 1) -> None:
    for _ in range(count):
        stack.enter_context(governor.acquire(realm))


def test_no_more_than_concurrent_in_flight_and_waiting_ends_in_timeout(make_governor: Factory) -> None:
    clock = FakeClock()
    governor = make_governor(SMALL, clock=clock, sleep=clock.sleep, max_wait_seconds=5)
    with ExitStack() as held:
        hold(governor, held, count=SMALL.concurrent)
        with pytest.raises(GovernorTimeoutError), governor.acquire(REALM):
            pytest.fail("a third request ran with two slots taken")
    # Released: a slot is free again.
    with governor.acquire(REALM):
        pass
    assert governor.stats()["waits"] > 0


def test_a_dead_workers_lease_expires(make_governor: Factory, request: pytest.FixtureRequest) -> None:
    clock = FakeClock()
    limits = GovernorLimits(requests_per_minute=600, requests_per_second=10, concurrent=1)
    governor = make_governor(limits, clock=clock, sleep=clock.sleep, lease_seconds=30, max_wait_seconds=120)
    crashed: AbstractContextManager[None] = governor.acquire(REALM)
    crashed.__enter__()  # a Lambda that died inside the block: it never leaves it
    request.addfinalizer(lambda: crashed.__exit__(None, None, None))
    died_at = clock.t
    # Another worker (for DynamoDB: another process with its own governor) gets the slot once the
    # lease has run out.
    survivor = (
        governor
        if isinstance(governor, InProcessGovernor)
        else make_governor(limits, clock=clock, sleep=clock.sleep, lease_seconds=30, max_wait_seconds=120)
    )
    with survivor.acquire(REALM):
        resumed_at = clock.t
    assert 30 <= resumed_at - died_at < 31


def test_budgets_are_per_realm(make_governor: Factory) -> None:
    clock = FakeClock()
    governor = make_governor(SMALL, clock=clock, sleep=clock.sleep, max_wait_seconds=10)
    with ExitStack() as held:
        hold(governor, held, REALM, count=SMALL.concurrent)  # one tenant takes every slot...
        with pytest.raises(GovernorTimeoutError), governor.acquire(REALM):
            pytest.fail("no slot is left for this realm")
        before = clock.t
        with governor.acquire(OTHER_REALM):  # ...and another is not held back at all
            assert clock.t == before


def test_in_process_slots_hold_under_real_threads() -> None:
    limits = GovernorLimits(requests_per_minute=100_000, requests_per_second=1000, concurrent=3)
    governor = InProcessGovernor(limits)
    in_flight = 0
    peak = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal in_flight, peak
        for _ in range(5):
            with governor.acquire(REALM):
                with guard:
                    in_flight += 1
                    peak = max(peak, in_flight)
                time.sleep(0.005)
                with guard:
                    in_flight -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3  # reached, never exceeded
    assert governor.stats()["acquires"] == 40


# --- DynamoDB specifics ---------------------------------------------------------------------------


def test_budget_item_key_ttl_and_lease_release(table: Any) -> None:
    clock = FakeClock()
    governor = RateGovernor(table, SMALL, clock=clock, sleep=clock.sleep, lease_seconds=150)
    with governor.acquire(REALM):
        item = table.get_item(Key=budget_key(REALM), ConsistentRead=True)["Item"]
        assert item[constants.PK] == f"GOVERNOR#{REALM}#BUDGET"
        assert len(item["leases"]) == 1
        assert int(item[constants.TTL_ATTRIBUTE]) >= clock.t + 150
    item = table.get_item(Key=budget_key(REALM), ConsistentRead=True)["Item"]
    assert item["leases"] == {}
    keys = [row[constants.PK] for row in table.scan()["Items"]]
    assert keys == [f"GOVERNOR#{REALM}#BUDGET"]


def test_dynamodb_calls_per_acquire_when_warm(table: Any) -> None:
    clock = FakeClock()
    governor = RateGovernor(table, SMALL, clock=clock, sleep=clock.sleep)
    starts_of(governor, clock, 10)
    stats = governor.stats()
    # One read to learn the item, then one conditional update to reserve and one to release.
    assert stats["dynamodb_calls"] == 1 + 10 * 2
    assert stats["conflicts"] == 0


def test_two_processes_share_one_budget(table: Any) -> None:
    clock = FakeClock()
    first = RateGovernor(table, SMALL, clock=clock, sleep=clock.sleep)
    second = RateGovernor(table, SMALL, clock=clock, sleep=clock.sleep)
    starts = []
    for governor in (first, second, first, second, first):
        with governor.acquire(REALM):
            starts.append(clock.t)
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(starts)}
    assert gaps == {2.0}  # one realm, one schedule, whichever process asks
    for governor in (first, second):
        stats = governor.stats()
        assert stats["conflicts"] >= 1  # the other process wrote since this one last looked
        assert stats["dynamodb_calls"] <= 3 * stats["acquires"]


def test_conflict_answer_is_used_without_another_read(table: Any) -> None:
    clock = FakeClock()
    first = RateGovernor(table, SMALL, clock=clock, sleep=clock.sleep)
    second = RateGovernor(table, SMALL, clock=clock, sleep=clock.sleep)
    with first.acquire(REALM):
        pass
    with second.acquire(REALM):
        pass
    calls_before = first.stats()["dynamodb_calls"]
    with first.acquire(REALM):  # its cached copy is stale
        pass
    # The refused update returns the item as it is: update (refused) + update + release.
    assert first.stats()["dynamodb_calls"] - calls_before == 3
    assert first.stats()["conflicts"] == 1


def test_dynamodb_failures_are_the_governors_own_error(aws: None) -> None:
    missing = boto3.resource("dynamodb", region_name="us-east-1").Table("no-such-table")
    governor = RateGovernor(missing, SMALL)
    with pytest.raises(GovernorUnavailableError), governor.acquire(REALM):
        pytest.fail("admitted without a budget table")


# --- bursts against the sandbox (over sockets) -----------------------------------------------------


class SandboxTokens:
    """Tokens from the sandbox's control API; a rejected token is replaced by a fresh one."""

    def __init__(self, server: SandboxServer, realm: str) -> None:
        self.server = server
        self.realm = realm
        self.token = self._fetch()

    def _fetch(self) -> str:
        answer = httpx2.post(f"{self.server.url}/_sandbox/oauth/tokens", json={"realm_id": self.realm})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def access_token(self) -> str:
        return self.token

    def token_rejected(self, token: str) -> None:
        if token == self.token:
            self.token = self._fetch()


def sandbox_control(server: SandboxServer, method: str, path: str, body: Any = None) -> Any:
    answer = httpx2.request(method, f"{server.url}/_sandbox/{path}", json=body)
    assert answer.status_code < 300, answer.text
    return answer.json()


def new_realm(server: SandboxServer) -> str:
    realm: str = sandbox_control(server, "POST", "companies", {"country": "US"})["realmId"]
    return realm


def burst(client: QboClient, workers: int, each: int, work: Callable[[QboClient, int], Any]) -> list[Any]:
    """``workers`` threads each calling ``work`` ``each`` times; returns every outcome."""
    outcomes: list[Any] = []
    guard = threading.Lock()

    def run(worker: int) -> None:
        for index in range(each):
            try:
                result: Any = work(client, worker * each + index)
            except QboError as error:
                result = error
            with guard:
                outcomes.append(result)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def read_customer(client: QboClient, _: int) -> Any:
    return client.read("Customer", "1")


@pytest.fixture
def client_for(sandbox_server: SandboxServer) -> Iterator[Callable[..., QboClient]]:
    """Builds clients of the sandbox's realms (each owning its connection pool, closed after)."""
    made: list[QboClient] = []

    def build(realm: str, **kwargs: Any) -> QboClient:
        tokens = SandboxTokens(sandbox_server, realm)
        client = QboClient(realm, f"{sandbox_server.url}/v3", tokens, timeout=10, **kwargs)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


@pytest.mark.slow
# 30 s alone; four xdist workers on a loaded 2-core machine have stretched it past the default 120 s.
@pytest.mark.timeout(480)
def test_burst_of_2000_from_4_workers_gets_no_429_at_default_limits(
    sandbox_server: SandboxServer, table: Any, client_for: Callable[..., QboClient]
) -> None:
    # Given the sandbox at Intuit's limits on a clock ten times faster (its minute lasts 6 s), and
    # one DynamoDB governor (moto) with the default budgets on the same scale, shared by 4 workers.
    # (Measured on this 2-core machine: ~27 s; moto costs ~2 ms of CPU per call, 2 calls a request.)
    scale = 10
    realm = new_realm(sandbox_server)
    sandbox_control(sandbox_server, "POST", "limits", {"time_scale": scale})
    governor = RateGovernor(table, GovernorLimits(), time_scale=scale)
    client = client_for(realm, governor=governor, max_attempts=1)
    # When they send 2,000 requests as fast as they can.
    began = time.monotonic()
    outcomes = burst(client, 4, 500, read_customer)
    elapsed = time.monotonic() - began
    # Then every request succeeds at its first attempt and the sandbox never throttled.
    assert len(outcomes) == 2000
    assert [o for o in outcomes if isinstance(o, QboError)] == []
    counters = sandbox_control(sandbox_server, "GET", f"counters?realm={realm}")
    assert counters["throttled"] == 0
    assert counters["requests"] == 2000
    # The governor, not luck, held the rate: 2,000 starts take at least 1,999 intervals...
    assert elapsed / (1999 * governor.pacing.interval) >= 0.99
    # ...at two DynamoDB calls each (reserve, release), read from the table only after a wait or a
    # lost race, never per request: a late start reserves again, a conflict writes and reads again,
    # a wait reads once.  How many starts come late depends on the machine's load (2.0 calls a
    # request alone, 3.1-5.1 with other suites beside it), so the bound counts them rather than
    # guessing a ratio; a governor that read the table on every reservation would exceed it.
    stats = governor.stats()
    assert stats["dynamodb_calls"] <= (
        2 * stats["acquires"] + stats["late_starts"] + 2 * stats["conflicts"] + stats["waits"] + 1
    ), stats


@pytest.mark.slow
def test_in_process_governor_keeps_a_burst_under_the_limits(
    sandbox_server: SandboxServer, client_for: Callable[..., QboClient]
) -> None:
    scale = 20
    realm = new_realm(sandbox_server)
    sandbox_control(sandbox_server, "POST", "limits", {"time_scale": scale})
    governor = InProcessGovernor(GovernorLimits(), time_scale=scale)
    client = client_for(realm, governor=governor, max_attempts=1)
    outcomes = burst(client, 4, 100, read_customer)
    assert [o for o in outcomes if isinstance(o, QboError)] == []
    assert sandbox_control(sandbox_server, "GET", f"counters?realm={realm}")["throttled"] == 0


@pytest.mark.slow
def test_burst_without_a_governor_is_throttled(
    sandbox_server: SandboxServer, client_for: Callable[..., QboClient]
) -> None:
    # The same burst ungoverned proves the tests above can fail.
    realm = new_realm(sandbox_server)
    sandbox_control(sandbox_server, "POST", "limits", {"time_scale": 10})
    client = client_for(realm, max_attempts=1)
    outcomes = burst(client, 4, 100, read_customer)
    assert any(isinstance(o, ThrottledError) for o in outcomes)
    assert sandbox_control(sandbox_server, "GET", f"counters?realm={realm}")["throttled"] > 0


@pytest.mark.slow
def test_with_lowered_limits_429s_are_absorbed_and_every_request_completes(
    sandbox_server: SandboxServer, client_for: Callable[..., QboClient]
) -> None:
    # Given a sandbox far stricter than the governor's budgets (another app shares the realm).
    scale = 10
    realm = new_realm(sandbox_server)
    sandbox_control(
        sandbox_server,
        "POST",
        "limits",
        {"time_scale": scale, "requests_per_second": 4, "concurrent": 2, "requests_per_minute": 200},
    )
    governor = InProcessGovernor(GovernorLimits(), time_scale=scale)
    client = client_for(realm, governor=governor, throttle_wait=0.02, max_backoff=0.5, max_attempts=30)

    def read_or_create(qbo: QboClient, index: int) -> Any:
        if index % 4:
            return qbo.read("Customer", "1")
        return qbo.create("Customer", {"DisplayName": f"Burst {index}"}, idempotency_key=f"burst-{index}")

    # When four workers send 200 requests.
    outcomes = burst(client, 4, 50, read_or_create)
    # Then QBO throttled some, and every request still completed, each write exactly once.
    assert [o for o in outcomes if isinstance(o, QboError)] == []
    counters = sandbox_control(sandbox_server, "GET", f"counters?realm={realm}")
    assert counters["throttled"] > 0
    assert counters["requests"] == 200 + counters["throttled"]
    rows = sandbox_control(sandbox_server, "GET", f"companies/{realm}/entities/customer")
    created = [row for row in rows["Customer"] if row.get("DisplayName", "").startswith("Burst ")]
    assert len(created) == 50
