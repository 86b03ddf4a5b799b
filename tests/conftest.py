"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qbo_link_local.moto_dynamodb import atomic_dynamodb
from qbo_link_local.moto_sqs import fast_queue_attributes
from qbo_sandbox.server import SandboxServer
from qbo_sandbox.settings import SandboxSettings
from tests.token_guard import TokenGuard, guarding


@pytest.fixture(scope="session", autouse=True)
def atomic_moto_dynamodb() -> Iterator[None]:
    with atomic_dynamodb(), fast_queue_attributes():
        yield


@pytest.fixture(scope="session", autouse=True)
def token_guard() -> Iterator[TokenGuard]:
    """Fails the run if any OAuth token reached a log record (the issue's "captured logs of the
    whole test run contain no token")."""
    with guarding() as guard:
        yield guard
        leaks = guard.leaks()
    assert not leaks, f"{len(leaks)} log record(s) contain an OAuth token, e.g. {leaks[0][:200]}"


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    """A fresh sandbox listening on a free loopback port, stopped after the test."""
    server = SandboxServer(SandboxSettings(port=0))
    server.start()
    try:
        yield server
    finally:
        server.stop()
