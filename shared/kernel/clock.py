"""Time as a port: production reads the system clock, tests and the local stack may use the QBO
sandbox's movable clock so "101 days later" takes no time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
