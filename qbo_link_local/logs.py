"""The local stack's readable log: one line per invocation, event and schedule run.

``invocation_line`` renders what Lambda's REPORT line and API Gateway's access log would say
together: time, function, route or queue, outcome, duration.  ``HandlerLogRouting`` sends the
handlers' own Powertools log records (JSON, one object per line) to the same log as short lines,
``level message key=value ...``, without Powertools' Lambda context keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TextIO

from qbo_link_local.runtime import Invocation

LogSink = Callable[[str], None]
_CONTEXT_KEYS: Final = {
    "level",
    "location",
    "message",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "sampling_rate",
    "xray_trace_id",
}


def clock_text(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S.%f")[:-3]


def invocation_line(invocation: Invocation) -> str:
    outcome = invocation.outcome if invocation.ok else f"{invocation.outcome} ✘"
    return (
        f"{clock_text(invocation.started_at)}  {invocation.function:<9} {invocation.trigger:<44} "
        f"{outcome:<16} {invocation.duration_ms:8.1f} ms"
    )


def note_line(at: datetime, source: str, text: str) -> str:
    return f"{clock_text(at)}  {source:<9} {text}"


def handler_record_line(raw: str) -> str | None:
    """A Powertools JSON log line as ``    LEVEL message key=value``; None for an empty line."""
    text = raw.strip()
    if not text:
        return None
    try:
        record: Any = json.loads(text)
    except ValueError:
        return f"    {text}"
    if not isinstance(record, dict):
        return f"    {text}"
    extras = " ".join(
        f"{key}={json.dumps(value) if not isinstance(value, str) else value}"
        for key, value in record.items()
        if key not in _CONTEXT_KEYS and key != "exception"
    )
    line = f"    {record.get('level', 'INFO'):<7} {record.get('message', '')}"
    if extras:
        line += f"  {extras}"
    exception = record.get("exception")
    if isinstance(exception, str) and exception:
        line += "\n" + "\n".join(f"      {part}" for part in exception.splitlines())
    return line


class _LineStream:
    """A file-like object for a logging.StreamHandler: every written line goes to the sink."""

    def __init__(self, sink: LogSink) -> None:
        self._sink = sink
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            rendered = handler_record_line(line)
            if rendered is not None:
                self._sink(rendered)
        return len(text)

    def flush(self) -> None:
        pass


class HandlerLogRouting:
    """While installed, the handlers' Powertools logger writes to ``sink`` (and at ``level``)."""

    def __init__(self, sink: LogSink | None, level: str | None) -> None:
        self._sink = sink
        self._level = level
        self._saved_stream: TextIO | None = None
        self._saved_level: int | None = None
        self._handler: logging.StreamHandler[Any] | None = None

    def install(self) -> None:
        from shared.kernel.observability import logger

        if self._level:
            self._saved_level = logger.log_level
            logger.setLevel(self._level.upper())
        handler = logger.registered_handler
        if self._sink is not None and isinstance(handler, logging.StreamHandler):
            self._handler = handler
            self._saved_stream = handler.setStream(_LineStream(self._sink))

    def uninstall(self) -> None:
        from shared.kernel.observability import logger

        if self._handler is not None and self._saved_stream is not None:
            self._handler.setStream(self._saved_stream)
        self._handler = self._saved_stream = None
        if self._saved_level is not None:
            logger.setLevel(self._saved_level)
            self._saved_level = None
