"""The local stack's errors: each message is one line saying what to change."""

from __future__ import annotations


class LocalStackError(RuntimeError):
    """The stack cannot start as configured; the message is one line saying what to change."""


class PortInUseError(LocalStackError):
    def __init__(self, component: str, host: str, port: int) -> None:
        super().__init__(f"port {port} on {host} is already in use ({component})")
        self.component = component
        self.host = host
        self.port = port
