"""A reason: a stable code and a human detail, for why a document waits, was skipped or changed.

The posting log keeps them on each document (``reasons`` while it waits, ``notes`` for what happened
to it); the pull adds notes for what QBO did by itself (a credit QBO applied on its own).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Reason(BaseModel):
    """Why a document waits or was skipped: a stable code and a human detail."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str = Field(min_length=1, max_length=100)
    detail: str | None = Field(default=None, max_length=2000)
