"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qbo_sandbox.server import SandboxServer
from qbo_sandbox.settings import SandboxSettings


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    """A fresh sandbox listening on a free loopback port, stopped after the test."""
    server = SandboxServer(SandboxSettings(port=0))
    server.start()
    try:
        yield server
    finally:
        server.stop()
