"""The local stack's record of the events it saw, as ``qbo-link events`` reads it: the numbered
pages of ``GET /_local/events`` and the one line printed per event."""

from __future__ import annotations

import json
from typing import Any

from qbo_link_local.deliveries import OutboundEvents
from qbo_link_local.http_api import events_page
from qbo_link_local.tail import LINE_WIDTH, event_line


def _message(n: int, tenant: str = "firm-1") -> dict[str, Any]:
    event: dict[str, Any] = {
        "detail-type": "Document Posted",
        "time": f"t{n}",
        "detail": {"tenant_id": tenant, "event_id": f"e{n}"},
    }
    return {"Body": json.dumps(event)}


def _page(outbound: OutboundEvents, query: str) -> tuple[int, dict[str, Any]]:
    answer = events_page(outbound, query)
    return answer.status, json.loads(answer.body)


def test_events_are_numbered_and_paged_from_a_number() -> None:
    outbound = OutboundEvents(kept=3, log=lambda _: None)
    status, empty = _page(outbound, "")
    assert (status, empty["events"], empty["next"]) == (200, [], 0)
    outbound.record([_message(n) for n in range(1, 5)] + [{"Body": "not json"}])
    _, page = _page(outbound, "after=0")
    assert [item["n"] for item in page["events"]] == [2, 3, 4]  # the latest 3 kept
    assert page["next"] == 4
    _, later = _page(outbound, "after=3")
    assert [item["event"]["detail"]["event_id"] for item in later["events"]] == ["e4"]
    _, last = _page(outbound, "last=2")
    assert [item["n"] for item in last["events"]] == [3, 4]
    assert last["run"] == page["run"] != OutboundEvents(kept=1, log=lambda _: None).run
    assert _page(outbound, "after=-1")[0] == 400
    assert _page(outbound, "last=x")[0] == 400


def test_one_line_per_event_with_its_plain_fields() -> None:
    event: dict[str, Any] = {
        "time": "2026-11-22T23:04:01Z",
        "detail-type": "Document Posted",
        "detail": {
            "appId": "i1",
            "event_id": "689d",
            "kind": "invoice",
            "qboId": "145",
            "tenant_id": "firm-1",
            "version": 3,
            "entity": {"nested": True},  # not a plain field: left out
            "error": None,
        },
    }
    assert event_line(event) == (
        "2026-11-22T23:04:01Z  Document Posted              tenant=firm-1  event_id=689d  "
        "appId=i1 kind=invoice qboId=145 version=3"
    )
    long = {**event, "detail": {**event["detail"], "appId": "x" * 500}}
    assert len(event_line(long)) == LINE_WIDTH
    assert event_line(long).endswith("…")
    assert event_line({}).startswith("  ?")
