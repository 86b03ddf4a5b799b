"""EventBridge Scheduler, locally: the manifest's ``rate(...)`` schedules on a timer thread.

Each schedule first runs one interval after start-up, then every interval (divided by the stack's
``time_scale``, so ``rate(6 hours)`` at a scale of 21,600 runs every second).  ``cron(...)``
expressions are not interpreted locally: such a schedule runs only when asked
(``LocalStack.run_schedule``).  The payload is the CDK stack's target input (infra/constructs/
events.py): ``{"scheduled_time": "2026-11-22T06:00:00Z"}``, Scheduler's ``<aws.scheduler.scheduled-time>``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from infra.manifest import FunctionSpec, Schedule

_RATE: Final = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86_400}


class ScheduleExpressionError(ValueError):
    pass


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of a ``rate(...)`` expression; None for ``cron(...)``.

    EventBridge's rule: the unit is singular for a value of 1 and plural otherwise.
    """
    text = expression.strip()
    if text.startswith("cron(") and text.endswith(")"):
        return None
    match = _RATE.match(text)
    if match is None:
        raise ScheduleExpressionError(f"not a rate or cron expression: {expression!r}")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1 or (value == 1) != (not unit.endswith("s")):
        raise ScheduleExpressionError(f"invalid rate expression: {expression!r}")
    return float(value * _UNIT_SECONDS[unit.rstrip("s")])


def scheduler_event(at: datetime) -> dict[str, Any]:
    return {"scheduled_time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


@dataclass(frozen=True)
class ScheduledFunction:
    schedule: Schedule
    function: FunctionSpec
    interval_seconds: float | None  # real seconds, after the time scale; None: on demand only


def scheduled_functions(functions: Sequence[FunctionSpec], time_scale: float) -> list[ScheduledFunction]:
    found: list[ScheduledFunction] = []
    for function in functions:
        for schedule in function.schedules:
            seconds = rate_seconds(schedule.expression)
            interval = None if seconds is None else seconds / time_scale
            found.append(ScheduledFunction(schedule, function, interval))
    return found


class Scheduler:
    """Runs every timed schedule at its interval until stopped (``run`` does the invocation)."""

    def __init__(
        self, entries: Sequence[ScheduledFunction], run: Callable[[ScheduledFunction], None]
    ) -> None:
        self._entries = [e for e in entries if e.interval_seconds is not None]
        self._run = run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="qbo-link-local-scheduler", daemon=True)

    def start(self) -> None:
        if self._entries:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        started = time.monotonic()
        due = {e.schedule.logical_id: started + float(e.interval_seconds or 0) for e in self._entries}
        while not self._stop.is_set():
            entry = min(self._entries, key=lambda e: due[e.schedule.logical_id])
            wait = due[entry.schedule.logical_id] - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            # the next run is one interval after this one was due: no drift, no burst after a pause
            due[entry.schedule.logical_id] = max(
                due[entry.schedule.logical_id] + float(entry.interval_seconds or 0), time.monotonic()
            )
            self._run(entry)
