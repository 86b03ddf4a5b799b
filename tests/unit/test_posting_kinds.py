"""The ``kind`` filter of ``GET .../postings`` names exactly the posting log's kinds: the route's
``Literal`` (which the OpenAPI document and the validation read) cannot drift from the constants."""

from __future__ import annotations

from typing import get_args

from functions.api.push_routes import PostingKind
from shared.kernel import constants


def test_the_kind_filter_offers_exactly_the_posting_logs_kinds() -> None:
    assert get_args(PostingKind) == constants.POSTING_KINDS
