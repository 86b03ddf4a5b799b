"""Session-wide guard: no OAuth token issued by any sandbox in the run may appear in a log record.

The sandbox only keeps digests of the tokens it issues, so the guard records the plaintext values
as they are minted (test-only wrapper) and a logging handler keeps every record emitted by the
project's loggers; at the end of the session both are compared.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from qbo_sandbox.oauth import OAuthService

WATCHED_LOGGERS = ("qbo-link", "qbo_sandbox", "shared", "functions", "httpx2", "authlib", "")


class TokenGuard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.issued: set[str] = set()
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        with self._guard:
            self.lines.append(f"{record.name} {text} {extras!r}")

    def remember(self, *tokens: str) -> None:
        with self._guard:
            self.issued.update(t for t in tokens if t)

    def leaks(self) -> list[str]:
        """Log lines that contain an issued token (or its first 24 characters)."""
        with self._guard:
            needles = {t[:24] for t in self.issued}
            return [line for line in self.lines if any(n in line for n in needles)]


_STANDARD = set(logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__) | {"message", "asctime"}


@contextmanager
def guarding(watched: tuple[str, ...] = WATCHED_LOGGERS) -> Iterator[TokenGuard]:
    guard = TokenGuard()
    original: Callable[..., dict[str, Any]] = OAuthService._issue_tokens

    def recording(self: OAuthService, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = original(self, *args, **kwargs)
        guard.remember(answer.get("access_token", ""), answer.get("refresh_token", ""))
        return answer

    OAuthService._issue_tokens = recording  # type: ignore[method-assign]
    loggers = [logging.getLogger(name) for name in watched]
    for logger in loggers:
        logger.addHandler(guard)
    try:
        yield guard
    finally:
        OAuthService._issue_tokens = original  # type: ignore[method-assign]
        for logger in loggers:
            logger.removeHandler(guard)
