"""The tier's event check (``tests/e2e/conftest.py``) refuses what a host app could not rely on."""

from __future__ import annotations

import json
from typing import Any

from shared.kernel.event_models import DocumentPosted
from shared.kernel.events import DOCUMENT_POSTED, make_event
from tests.e2e.conftest import EventCheck


def _event(**detail: Any) -> dict[str, Any]:
    posted = DocumentPosted(kind="invoice", app_id="i-1", document_version=2, qbo_id="7")
    entry = make_event(DOCUMENT_POSTED, "firm-1", posted, "invoice", "i-1", "2").entry("bus")
    body = {**json.loads(entry["Detail"]), **detail}
    return {"id": "e-1", "source": entry["Source"], "detail-type": entry["DetailType"], "detail": body}


def test_an_event_as_qbo_link_builds_it_passes() -> None:
    assert EventCheck().problems_of(_event()) == []


def test_a_detail_its_schema_refuses_is_reported_with_where_and_why() -> None:
    check = EventCheck()
    [renamed, *_] = check.problems_of(_event(appId="i-1"))
    assert renamed.startswith("Document Posted e-1: detail: Additional properties")
    assert any("version" in p for p in check.problems_of(_event(version=2)))
    assert any("the model refuses it" in p for p in check.problems_of(_event(document_version="two")))
    foreign = {**_event(), "source": "someone-else"}
    assert check.problems_of(foreign) == ["Document Posted e-1: source 'someone-else'"]
    unknown = {**_event(), "detail-type": "Document Lost"}
    assert check.problems_of(unknown) == ["Document Lost e-1: a detail-type of no catalogue entry"]


def test_inspected_problems_are_taken_once() -> None:
    check = EventCheck()
    check.inspect(json.dumps(_event(qboId="7")))
    check.inspect(json.dumps(_event()))
    check.inspect("not json")
    assert check.checked == 2
    assert len(check.take()) == 2  # the model and the schema each refuse qboId
    assert check.take() == []
