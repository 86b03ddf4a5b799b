"""The API's paths: its version prefix, and the deprecated aliases without it (docs/api.md)."""

from __future__ import annotations

VERSION_PREFIX = "/v1"  # the API's version: every route is served under it (docs/api.md)
DEPRECATED_SINCE = "@1796601600"  # RFC 9745: the unversioned aliases, since 2026-12-07T00:00:00Z


def unversioned(path: str) -> str:
    """``path`` without the version prefix: ``/v1/tenants/x`` and its deprecated alias ``/tenants/x``
    are the same route to every gate."""
    if path == VERSION_PREFIX or path.startswith(f"{VERSION_PREFIX}/"):
        return path[len(VERSION_PREFIX) :] or "/"
    return path


def is_deprecated_alias(path: str) -> bool:
    """A tenant route called without the version prefix (answered, with a ``Deprecation`` header)."""
    return path == "/tenants" or path.startswith("/tenants/")
