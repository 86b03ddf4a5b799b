"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from qbo_sandbox.server import SandboxServer
from qbo_sandbox.settings import SandboxSettings
from tests.token_guard import TokenGuard, guarding

_DYNAMODB_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "get_item",
    "query",
    "batch_get_item",
    "transact_get_items",
    "execute_transaction",
)


@pytest.fixture(scope="session", autouse=True)
def atomic_moto_dynamodb() -> Iterator[None]:
    """Make moto's DynamoDB as atomic as the real one.

    Real DynamoDB evaluates a condition and applies the write as one step per item (and a
    transaction as one step); moto checks and writes in Python without a lock, so two threads can
    both pass the same condition. The single-flight refresh and the rate governor rely on exactly
    that guarantee, so their concurrency tests would otherwise measure moto, not our code.
    """
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in _DYNAMODB_OPERATIONS}

    def atomic(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return wrapper

    for name, method in originals.items():
        setattr(DynamoDBBackend, name, atomic(method))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(DynamoDBBackend, name, method)


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
