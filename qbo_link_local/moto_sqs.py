"""moto's SQS queue attributes read one at a time, so a send costs what SQS's does, not the queue's depth.

moto builds a queue's whole attribute map (``Queue.attributes``) to read one attribute: every
``SendMessage`` asks it for ``ContentBasedDeduplication``, and the map includes the approximate
message counts, each a pass over every message of the queue.  A send into a queue holding N
messages then costs three passes over N, so sending N messages costs N² (2,000 documents pushed
through the local stack spent minutes there).  ``fast_queue_attributes`` makes the map lazy: each
attribute is computed when it is read, with the same values and keys as moto's own
(``tests/integration/test_push_moto_harness.py`` compares them).  Used wherever
``atomic_dynamodb`` is: every test, the local stack, the push benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from qbo_link_local.moto_dynamodb import held


class LazyQueueAttributes(Mapping[str, Any]):
    """One queue's attributes as moto's ``Queue.attributes`` gives them, each computed on reading."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def _names(self) -> list[str]:
        queue = self._queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        if queue.policy:
            names.append("Policy")
        if queue.redrive_policy:
            names.append("RedrivePolicy")
        return names

    def __getitem__(self, name: str) -> Any:
        from moto.core.utils import camelcase_to_underscores

        if name not in self._names():
            raise KeyError(name)
        if name == "Policy":
            return self._queue.policy
        if name == "RedrivePolicy":
            return json.dumps(self._queue.redrive_policy)
        value = getattr(self._queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


_holders: list[object] = []
_mocos: list[property] = []  # moto's own property while the patch is in place


def mocos_attributes(queue: Any) -> dict[str, Any]:
    """The attributes as moto itself computes them (the harness test compares the two)."""
    from moto.sqs.models import Queue

    own = _mocos[0] if _mocos else Queue.__dict__["attributes"]
    assert own.fget is not None
    return dict(own.fget(queue))


@contextmanager
def _patched() -> Iterator[None]:
    from moto.sqs.models import Queue

    original = Queue.__dict__["attributes"]
    _mocos.append(original)
    Queue.attributes = property(LazyQueueAttributes)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        Queue.attributes = original  # type: ignore[method-assign]
        _mocos.remove(original)


@contextmanager
def fast_queue_attributes() -> Iterator[None]:
    """moto's queue attributes computed when read (re-entrant, like ``atomic_dynamodb``)."""
    with held(_holders, _patched):
        yield
