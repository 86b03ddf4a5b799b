"""The push function's metrics, read from the EMF lines a handler run prints: QBO latency per call (with
the operation as a dimension) and throttling, beside the postings by outcome."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.push_fixtures import PushWorld, push_world
from tests.integration.test_push import TENANT, connected, invoice

__all__ = ["push_world"]


def emf_blobs(out: str) -> list[dict[str, Any]]:
    """Every CloudWatch embedded-metric-format object among the printed lines."""
    blobs: list[dict[str, Any]] = []
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        data = json.loads(line)
        if isinstance(data, dict) and "_aws" in data:
            blobs.append(data)
    return blobs


def metric_values(blobs: list[dict[str, Any]], name: str) -> list[tuple[dict[str, str], list[float]]]:
    """(dimensions, values) of every blob that carries ``name``."""
    found: list[tuple[dict[str, str], list[float]]] = []
    for blob in blobs:
        if name not in blob:
            continue
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        assert any(m["Name"] == name for m in directive["Metrics"])
        dimensions = {d: str(blob[d]) for group in directive["Dimensions"] for d in group}
        value = blob[name]
        found.append((dimensions, [float(v) for v in (value if isinstance(value, list) else [value])]))
    return found


def test_a_delivery_reports_qbo_latency_per_call_and_each_throttled_answer(
    push_world: PushWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a ready invoice whose create QBO throttles twice before taking it
    connected(push_world, c1_as="1")
    push_world.fault(kind="status", status=429, count=2, entity="invoice", operation="create")
    assert push_world.put(TENANT, "invoices", invoice()).status == 202
    capsys.readouterr()  # what the connection and the API printed
    # When the push function takes the delivery
    push_world.drain()
    blobs = emf_blobs(capsys.readouterr().out)
    # Then each of the three calls has its latency, as a create, in the service's namespace
    latency = metric_values(blobs, "QboLatency")
    assert [dims for dims, _ in latency] == [{"service": "qbo-link", "operation": "create"}] * 3
    assert all(value > 0 for _, values in latency for value in values)
    assert all(blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "QBOLink" for blob in blobs)
    for blob in blobs:
        if "QboLatency" in blob:
            [unit] = [m["Unit"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
            assert unit == "Milliseconds"
    # and the two 429s are counted with the delivery's own metrics
    throttled = metric_values(blobs, "QboThrottled")
    assert sum(sum(values) for _, values in throttled) == 2
    assert all("Postings_posted" in blob for blob in blobs if "QboThrottled" in blob)


def test_a_lost_answer_is_a_call_too_and_a_batch_is_one(
    push_world: PushWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three ready invoices, and QBO dropping the connection on the first batch request
    connected(push_world, c1_as="1")
    for n in range(3):
        push_world.put(TENANT, "invoices", invoice(f"i{n}"))
    push_world.fault(kind="drop", count=1, entity="batch")
    capsys.readouterr()
    # When they are pushed
    push_world.drain()
    blobs = emf_blobs(capsys.readouterr().out)
    # Then the dropped request and its retry are two batch calls, and nothing was throttled
    operations = [dims["operation"] for dims, _ in metric_values(blobs, "QboLatency")]
    assert operations == ["batch", "batch"], operations
    assert metric_values(blobs, "QboThrottled") == []
