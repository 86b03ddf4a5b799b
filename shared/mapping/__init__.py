"""Mappings between the app's entities and QBO's (issue 5): automatch and its synthetic roster."""

from shared.mapping.automatch import (
    AppliedMatch,
    Candidate,
    HoldReason,
    MatchKind,
    MatchProposal,
    NameRisk,
    QboName,
    Suggestion,
    display_name_key,
    duplicate_name_risks,
    name_tokens,
    normalise_emails,
    normalise_name,
    propose,
)

__all__ = [
    "AppliedMatch",
    "Candidate",
    "HoldReason",
    "MatchKind",
    "MatchProposal",
    "NameRisk",
    "QboName",
    "Suggestion",
    "display_name_key",
    "duplicate_name_risks",
    "name_tokens",
    "normalise_emails",
    "normalise_name",
    "propose",
]
