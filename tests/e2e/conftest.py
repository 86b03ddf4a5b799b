"""The e2e tier's contract check of the events: every event a local stack of this process sees on
its bus is validated against its checked-in JSON Schema (docs/events/schemas/) and its model
(``shared.kernel.event_models``).  One that does not validate fails the test during which it
arrived (or, arriving between tests, the next one; the session fails on any left at its end).

The local stack records its outbound events in ``qbo_link_local.deliveries.OutboundEvents.record``
(a rule on source ``qbo-link`` feeds the queue it polls); the check wraps that method for the whole
session, so it sees the events of every ``LocalStack`` started in this process, whichever fixture
or test started it.  A stack run as a subprocess (``qbo-link dev``) is not seen.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from qbo_link_local.deliveries import OutboundEvents
from shared.kernel import constants, event_models
from shared.kernel.events import CATALOGUE, DetailType

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events" / "schemas"


class EventCheck:
    """Validates each event's detail against its schema file and its model; keeps what failed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._problems: list[str] = []
        self.checked = 0
        self.active = False  # only while an e2e module runs: other tiers feed the recorder fakes
        self._validators = {
            detail_type: jsonschema.Draft202012Validator(
                json.loads((SCHEMAS / f"{event_models.slug(detail_type)}.json").read_text(encoding="utf-8")),
                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
            )
            for detail_type in CATALOGUE
        }

    def inspect(self, body: str) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            return  # not an event: the recorder drops it too
        found = self.problems_of(event)
        with self._lock:
            self.checked += 1
            self._problems += found

    def problems_of(self, event: Any) -> list[str]:
        if not isinstance(event, dict):
            return [f"not an EventBridge event: {event!r:.200}"]
        detail_type, detail = event.get("detail-type"), event.get("detail")
        where = f"{detail_type} {event.get('id')}"
        if event.get("source") != constants.EVENT_SOURCE:
            return [f"{where}: source {event.get('source')!r}"]
        if not isinstance(detail_type, str) or DetailType(detail_type) not in self._validators:
            return [f"{where}: a detail-type of no catalogue entry"]
        validator = self._validators[DetailType(detail_type)]
        found = [
            f"{where}: {'/'.join(map(str, error.absolute_path)) or 'detail'}: {error.message}"
            for error in validator.iter_errors(detail)
        ]
        try:
            event_models.detail_adapter(DetailType(detail_type)).validate_python(detail)
        except ValidationError as error:
            found.append(f"{where}: the model refuses it: {error}")
        return found

    def take(self) -> list[str]:
        with self._lock:
            taken, self._problems = self._problems, []
        return taken


@pytest.fixture(scope="session", autouse=True)
def event_check() -> Iterator[EventCheck]:
    check = EventCheck()
    record = OutboundEvents.record

    def checked_record(self: OutboundEvents, messages: list[dict[str, Any]]) -> set[str]:
        if check.active:  # an e2e module runs (a worker may run other tiers' modules after it)
            for message in messages:
                check.inspect(str(message.get("Body", "")))
        return record(self, messages)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(OutboundEvents, "record", checked_record)
        yield check
    left = check.take()
    assert not left, "events that do not match their schema:\n" + "\n".join(left)


@pytest.fixture(scope="module", autouse=True)
def events_checked_in_this_module(event_check: EventCheck) -> Iterator[None]:
    """The check is on for the whole of an e2e module, its module fixtures' setup included (the
    tenants they connect), and off after it: a worker may run other tiers' modules next, whose
    tests feed the recorder fakes."""
    event_check.active = True
    try:
        yield
    finally:
        event_check.active = False


@pytest.fixture(autouse=True)
def events_match_their_schemas(event_check: EventCheck) -> Iterator[None]:
    yield
    problems = event_check.take()
    assert not problems, "events that do not match their schema:\n" + "\n".join(problems)
