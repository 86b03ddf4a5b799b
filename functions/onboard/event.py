"""The ``Connection Connected`` event the onboarding function is the target of, as it validates it.

Its own module, imported by the handler on its first invocation: building a pydantic model is the
costliest part of importing pydantic, and the handler's import need not pay for it.  Only what the
function uses is checked; the whole detail is ``shared.kernel.event_models.ConnectionConnected``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ConnectedDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    tenant_id: str = Field(min_length=1)
    reconnected: bool = False  # the tenant had a connection to the same company before


class ConnectedEvent(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    source: str
    detail: ConnectedDetail
