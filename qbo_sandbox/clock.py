"""The sandbox's clock: real time plus an offset that tests and demos can move forward.

Token lifetimes, authorization-code expiry, CDC windows, MetaData timestamps and the requestid
cache all read :meth:`Clock.now`, so ``advance`` makes an hour or a hundred days pass at once.
Rate-limit windows and webhook retry delays run on real time divided by ``time_scale`` instead:
they measure how fast a client calls, which a jump of the virtual clock must not reset.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, offset_seconds: float = 0.0, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._offset = offset_seconds
        self._lock = threading.Lock()
        self.time_scale = time_scale

    def now(self) -> datetime:
        """Virtual wall-clock time, timezone-aware UTC."""
        with self._lock:
            offset = self._offset
        return datetime.now(UTC) + timedelta(seconds=offset)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def monotonic(self) -> float:
        """Scaled monotonic seconds for rate windows and retry schedules."""
        return time.monotonic() * self.time_scale

    def sleep(self, scaled_seconds: float) -> None:
        """Sleep for ``scaled_seconds`` of sandbox time (real seconds / time_scale)."""
        if scaled_seconds > 0:
            time.sleep(scaled_seconds / self.time_scale)
