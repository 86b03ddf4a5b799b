"""Markers: how QBO Link recognises its own documents in QBO.

Every entity QBO Link creates carries ``qbo-link:<kind>:<app id>`` in its ``PrivateNote`` (a
customer: in its notes). The push uses it to find a document whose creation had an uncertain
outcome (a timeout after QBO may have written it) instead of creating it twice; the pull uses it to
recognise a change to one of the app's documents. Pure: no AWS, no I/O.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple, get_args

MarkerKind = Literal[
    "client", "site", "invoice", "payment", "credit_memo", "credit_application", "journal_day"
]

MARKER_PREFIX = "qbo-link"
MARKER_KINDS: tuple[MarkerKind, ...] = get_args(MarkerKind)  # the posting kinds (constants.POSTING_KINDS)
_MARKER = re.compile(rf"(?:^|\s){MARKER_PREFIX}:({'|'.join(MARKER_KINDS)}):([A-Za-z0-9._:-]{{1,64}})(?=\s|$)")


class Marker(NamedTuple):
    kind: MarkerKind
    app_id: str


def marker(kind: MarkerKind, app_id: str) -> str:
    """``qbo-link:<kind>:<app id>``: the key that finds a document in QBO when an outcome is uncertain."""
    if kind not in MARKER_KINDS:
        raise ValueError(f"unknown marker kind {kind!r}")
    text = f"{MARKER_PREFIX}:{kind}:{app_id}"
    if _MARKER.fullmatch(text) is None:
        raise ValueError(f"app id {app_id!r} cannot be carried in a marker")
    return text


def parse_marker(private_note: str | None) -> Marker | None:
    """The marker in a ``PrivateNote`` (first one wins), wherever a bookkeeper may have moved it."""
    if not private_note:
        return None
    found = _MARKER.search(private_note)
    if found is None:
        return None
    kind = next(k for k in MARKER_KINDS if k == found.group(1))
    return Marker(kind, found.group(2))
