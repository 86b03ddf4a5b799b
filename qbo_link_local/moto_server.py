"""moto's server, made cheaper per request for the local stack (a context manager, re-entrant).

moto's dispatcher finds the backend of every request anew: ``get_backend_for_host`` lists moto's
package folders (a ``listdir`` and an ``isdir`` per service, about two hundred) and tries every
backend's URL patterns.  The answer depends on the host alone, so it is remembered per host: the
same requests reach the same backends.  Profiled on the two-way sync benchmark
(``scripts/bench_sync.py``), that listing took a few percent of the local stack's CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qbo_link_local.moto_dynamodb import held

_holders: list[object] = []


@contextmanager
def fast_dispatch() -> Iterator[None]:
    """Remember each host's backend while the block runs (nested uses share one patch)."""
    with held(_holders, _patched):
        yield


@contextmanager
def _patched() -> Iterator[None]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host

    def remembered(self: Any, host: str | None) -> Any:
        cache: dict[str | None, Any] = self.__dict__.setdefault("_qbo_link_backends", {})
        if host not in cache:
            cache[host] = original(self, host)
        return cache[host]

    DomainDispatcherApplication.get_backend_for_host = remembered  # type: ignore[method-assign]
    try:
        yield
    finally:
        DomainDispatcherApplication.get_backend_for_host = original  # type: ignore[method-assign]
