"""The local stack's state directory (``--state-dir``): held by one stack at a time, replayed into
fresh resources at start (snapshot, then journal), journalled while running, compacted at stop."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qbo_link_local.errors import LocalStackError
from qbo_link_local.logs import note_line

if TYPE_CHECKING:
    from qbo_link_local.journal import Journal
    from qbo_link_local.resources import LocalResources


class StateDirectory:
    """``directory`` None: nothing is kept and every method does nothing."""

    def __init__(self, directory: str | os.PathLike[str] | None, log: Callable[[str], None]) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.journal: Journal | None = None
        self._log = log
        self._lock: int | None = None  # the directory's lock file, held while running
        self._recording: AbstractContextManager[None] | None = None
        self._generation = 0

    def lock(self) -> None:
        """Hold the state directory before anything reads it (the sandbox's file included)."""
        if self.directory is None:
            return
        from qbo_link_local import state

        try:
            self._lock = state.lock(self.directory)
        except state.StateDirectoryBusyError as busy:
            raise LocalStackError(f"{busy}: stop it, or choose another --state-dir") from None

    def release(self) -> None:
        held, self._lock = self._lock, None
        if held is not None:
            os.close(held)  # the directory is free for the next stack

    def restore(self, resources: LocalResources) -> None:
        """Replay the state directory into the fresh resources, then journal every change (start)."""
        if self.directory is None:
            return
        from qbo_link_local import journal, state

        directory = self.directory
        names = {q.logical_id: q.url.rsplit("/", 1)[1] for q in resources.queues.values()}
        counts = {"items": 0, "messages": 0, "records": 0}
        generation = 0
        try:
            saved = state.load(directory)
            if saved is not None:
                saved = state.upgrade(saved, names)
                generation = int(saved["generation"])
                records = list(journal.read_journal(state.journal_path(directory, generation)))
                key_id, restored = state.restore(
                    state.replay(saved, records, state.key_names()), resources.tokens_key_id
                )
                resources.tokens_key_id = key_id
                counts = {**restored, "records": len(records)}
            # One snapshot of what came back, and a new journal after it.
            generation += 1
            state.save(directory, state.snapshot(resources.tokens_key_id, generation))
            state.forget_journals(directory, keep=generation)
            self.journal = journal.Journal(state.journal_path(directory, generation))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LocalStackError(f"cannot restore {directory / state.STATE_FILE}: {error}") from error
        self._generation = generation
        self._recording = journal.recording(self.journal)
        self._recording.__enter__()
        if saved is not None:
            self._log(
                note_line(
                    datetime.now(UTC),
                    "state",
                    f"restored {counts['items']} item(s) and {counts['messages']} message(s) from {directory}"
                    f" ({counts['records']} journal record(s) replayed)",
                )
            )

    def save(self, resources: LocalResources | None, *, moto_running: bool) -> None:
        """Stop journaling and fold the journal into one snapshot (a clean stop)."""
        recording, self._recording = self._recording, None
        if recording is not None:
            recording.__exit__(None, None, None)
        log, self.journal = self.journal, None
        if log is None or self.directory is None or resources is None or not moto_running:
            return  # nothing was restored: the directory stays as it was
        from qbo_link_local import state

        log.close()
        directory = self.directory
        try:
            path = state.save(directory, state.snapshot(resources.tokens_key_id, self._generation + 1))
            state.forget_journals(directory, keep=self._generation + 1)
        except Exception as error:  # stopping goes on: the journal still holds this run's changes
            self._log(
                note_line(datetime.now(UTC), "state", f"not compacted: {type(error).__name__}: {error}")
            )
            return
        self._log(note_line(datetime.now(UTC), "state", f"saved to {path}"))

    def counts(self, sandbox_writes: int) -> dict[str, Any]:
        """With a state directory: the journal's records and fsyncs, the sandbox's state-file writes."""
        journal = self.journal
        if journal is None:
            return {}
        return {
            "journal": str(journal.path),
            "journal_records": journal.records,
            "journal_fsyncs": journal.fsyncs,
            "sandbox_writes": sandbox_writes,
        }
