"""The sandbox's rate faults (docs/sandbox.md, "Faults on demand"): a rule with a ``probability`` hits
that share of the requests it matches, drawn from a generator seeded with ``seed``, so a run that
injects faults into "10% of QBO calls" can be repeated exactly."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from qbo_sandbox.server import SandboxServer
from qbo_sandbox.traffic import FaultInjector, FaultRule
from tests.qbo_helpers import Connection, connect


def fired(injector: FaultInjector, requests: int) -> list[int]:
    """Which of ``requests`` reads of an invoice got a fault (by position)."""
    hits = []
    for n in range(requests):
        if injector.take("GET", "/v3/company/1/invoice/1", "1", "invoice", "read") is not None:
            hits.append(n)
    return hits


def rate_injector(probability: float, seed: int | None, **extra: object) -> FaultInjector:
    injector = FaultInjector()
    injector.add(FaultRule(kind="status", probability=probability, seed=seed, **extra))  # type: ignore[arg-type]
    return injector


def test_a_rate_rule_hits_about_its_share_and_stays_armed() -> None:
    hits = fired(rate_injector(0.1, seed=11), 2000)
    assert 140 <= len(hits) <= 260  # 10% of 2,000 = 200; the bounds are ±6 standard deviations
    assert hits != list(range(len(hits)))  # spread over the run, not the first ones


def test_the_same_seed_hits_the_same_requests_and_another_seed_others() -> None:
    first = fired(rate_injector(0.1, seed=4), 500)
    assert fired(rate_injector(0.1, seed=4), 500) == first
    assert fired(rate_injector(0.1, seed=5), 500) != first


def test_a_rate_rule_counts_what_it_saw_and_what_it_did_and_count_caps_it() -> None:
    injector = rate_injector(0.5, seed=1, count=3)
    hits = fired(injector, 100)
    assert len(hits) == 3
    assert injector.rules() == []  # spent after its third fault
    watched = rate_injector(0.25, seed=2)
    fired(watched, 40)
    [rule] = watched.rules()
    assert rule["seen"] == 40
    assert rule["hits"] == len(fired(rate_injector(0.25, seed=2), 40))
    assert rule["probability"] == 0.25
    assert "_draw" not in rule


def test_a_rate_rule_that_does_not_fire_lets_the_next_rule_have_its_turn() -> None:
    injector = FaultInjector()
    injector.add(FaultRule(kind="status", status=500, probability=0.2, seed=9))
    injector.add(FaultRule(kind="drop", probability=1.0))
    kinds = [rule.kind for _ in range(200) if (rule := injector.take("GET", "/x", "1", "invoice", "read"))]
    assert len(kinds) == 200
    assert 20 <= kinds.count("status") <= 60
    assert kinds.count("drop") == 200 - kinds.count("status")


def test_a_plain_rule_is_still_one_use_and_a_probability_must_be_a_share() -> None:
    injector = FaultInjector()
    injector.add(FaultRule(kind="status", count=None))
    assert len(fired(injector, 5)) == 1
    for wrong in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="probability"):
            FaultRule(kind="status", probability=wrong)


# --- over the wire --------------------------------------------------------------------------------


@pytest.fixture
def realm(sandbox_server: SandboxServer) -> Iterator[Connection]:
    connection = connect(sandbox_server)
    try:
        yield connection
    finally:
        connection.close()


def test_the_control_api_arms_a_seeded_rate_and_qbo_calls_see_it(
    sandbox_server: SandboxServer, realm: Connection
) -> None:
    control = f"{sandbox_server.url}/_sandbox"
    limits_off = {"requests_per_minute": 0, "requests_per_second": 0, "concurrent": 0, "batch_per_minute": 0}
    assert httpx2.post(f"{control}/limits", json=limits_off).status_code == 200

    def run() -> list[int]:
        httpx2.delete(f"{control}/faults")
        httpx2.delete(f"{control}/counters")
        rule = {"kind": "status", "status": 500, "probability": 0.2, "seed": 21, "operation": "read"}
        armed = httpx2.post(f"{control}/faults", json=rule)
        assert armed.status_code == 201, armed.text
        assert armed.json()["probability"] == 0.2
        assert "count" not in armed.json()  # a rate without a count stays armed
        return [n for n in range(120) if realm.get("companyinfo/" + realm.realm).status_code == 500]

    failed = run()
    assert 8 <= len(failed) <= 45
    counters = httpx2.get(f"{control}/counters", params={"realm": realm.realm}).json()
    assert counters["faults_injected"] == len(failed)
    [rule] = httpx2.get(f"{control}/faults").json()["faults"]
    assert (rule["seen"], rule["hits"]) == (120, len(failed))
    assert run() == failed  # the same seed, the same requests
    refused = httpx2.post(f"{control}/faults", json={"kind": "drop", "probability": 2})
    assert refused.status_code == 400
