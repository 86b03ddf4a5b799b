"""tests/unit refuse every socket (pytest-socket): a unit test reaches no server, not even loopback.

A test that needs a listening socket (the sandbox, the local stack, moto's server) belongs in
tests/integration.  Unix sockets stay allowed (asyncio's event loop opens a socketpair for itself).
pytest-socket restores the real socket after each test, so the other tiers sharing an xdist worker
are not affected.
"""

from __future__ import annotations

import pytest
from pytest_socket import disable_socket


@pytest.hookimpl(tryfirst=True)  # before fixtures are set up, so a fixture cannot open one either
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("enable_socket") or "socket_enabled" in getattr(item, "fixturenames", ()):
        pytest.fail(f"{item.nodeid} asks for sockets: move it to tests/integration", pytrace=False)
    disable_socket(allow_unix_socket=True)
