"""tests/unit refuse network sockets (tests/unit/conftest.py), and keep unix ones."""

from __future__ import annotations

import socket
import warnings

import pytest
from pytest_socket import SocketBlockedError


def test_a_network_socket_is_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytest-socket also warns, which the suite makes an error
        with pytest.raises(SocketBlockedError):
            socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with pytest.raises(SocketBlockedError):
            socket.getaddrinfo("localhost", 80)


def test_a_unix_socket_pair_is_allowed() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ok")
        assert right.recv(2) == b"ok"
