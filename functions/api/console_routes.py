"""Tenant API: console sessions, minted by the host app's backend for a firm's administrator
(docs/console.md, "Access and security"; the console's own way in: ``functions.api.console``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from functions.api.common import TenantId, error_response
from shared.kernel.observability import logger, metrics

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves Router.__init__ untyped

CONSOLE_PAGE: str = "/console/"


class ConsoleSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int = Field(
        default=3600, ge=60, le=43200, description="How long the session lasts: 1 minute to 12 hours."
    )


@router.post(
    "/tenants/<tenant_id>/console-sessions",
    status_code=201,
    summary="A console session for the tenant's administrator (the token goes in the URL fragment)",
    responses={
        201: {"description": "Session minted"},
        403: error_response("A tenant-scoped caller's other tenant, or a call from the console itself"),
    },
)
def create_console_session(tenant_id: TenantId, request: ConsoleSessionRequest) -> Response[Any]:
    from shared import wiring
    from shared.connections.oauth_state import epoch

    token, session = wiring.console_sessions().mint(
        tenant_id, epoch(wiring.clock().now()), request.ttl_seconds
    )
    metrics.add_metric(name="ConsoleSessionsMinted", unit=MetricUnit.Count, value=1)
    # The session id names it in the logs; the token never reaches them.
    logger.info("console session minted", tenant_id=tenant_id, session_id=session.session_id)
    body = {
        "token": token,
        "tenant_id": tenant_id,
        "expires_at": datetime.fromtimestamp(session.expires_at, UTC).isoformat().replace("+00:00", "Z"),
        "path": f"{CONSOLE_PAGE}#tenant={tenant_id}&session={token}",
    }
    return Response(201, content_types.APPLICATION_JSON, body)
