"""The session's token guard must actually see tokens that reach a log record."""

from __future__ import annotations

import logging

from qbo_sandbox.server import SandboxServer
from tests.qbo_helpers import connect
from tests.token_guard import guarding


def test_guard_flags_a_logged_token_and_ignores_clean_logs(sandbox_server: SandboxServer) -> None:
    # A logger of its own that does not propagate, so the deliberate leak below stays out of the
    # session-wide guard.
    probe = logging.getLogger("token-guard-self-test")
    probe.propagate = False
    with guarding(("token-guard-self-test",)) as guard:
        conn = connect(sandbox_server)
        conn.close()
        probe.warning("refreshed token for realm %s", conn.realm)
        assert guard.leaks() == []
        probe.warning("leaked %s", conn.refresh_token)
        probe.error("oops", extra={"token": conn.access_token})
        assert len(guard.leaks()) == 2
    assert conn.access_token in guard.issued
    assert conn.refresh_token in guard.issued
