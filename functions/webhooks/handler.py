"""Intuit's webhook deliveries: ``POST /webhooks/qbo`` (public route, no IAM).

Verify and enqueue, nothing else, within Intuit's 3-second deadline
(https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks/best-practices): 403 for
a missing or wrong signature, 200 for everything signed (a body we cannot read is kept and still
acknowledged, since a 4xx makes Intuit retry the whole batch), 500 only when the changes queue
refused messages or the runtime table could not say who owns the realms, so that Intuit's retry
brings them again.  Bodies never reach logs or traces.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.pull.notifications import NotificationIntake

app = APIGatewayHttpResolver()
_JSON = "application/json"


def intake() -> NotificationIntake:
    from shared import wiring

    return wiring.notification_intake()


def _raw_body() -> bytes:
    event = app.current_event
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b""  # cannot be what Intuit signed: the signature check refuses it
    return str(body).encode("utf-8")


@app.post("/webhooks/qbo")
def deliver() -> Response[str]:
    from shared.pull.notifications import IntakeStoreError, NotificationQueueError

    raw = _raw_body()
    headers = {str(k): str(v) for k, v in (app.current_event.get("headers") or {}).items()}
    try:
        result = intake().receive(raw, headers)
    except NotificationQueueError:
        logger.exception("webhook changes not enqueued", extra={"bytes": len(raw)})
        metrics.add_metric(name="WebhookEnqueueFailures", unit=MetricUnit.Count, value=1)
        return Response(500, _JSON, '{"error":"retry"}')
    except IntakeStoreError as error:  # its message names the operation and the code, no data
        logger.error("webhook realms not looked up", extra={"reason": str(error), "bytes": len(raw)})
        metrics.add_metric(name="WebhookLookupFailures", unit=MetricUnit.Count, value=1)
        return Response(500, _JSON, '{"error":"retry"}')
    if not result.signature_ok:
        signed = any(k.lower() == "intuit-signature" for k in headers)
        logger.warning(
            "webhook signature refused",
            extra={"reason": "mismatch" if signed else "missing", "bytes": len(raw)},
        )
        metrics.add_metric(name="WebhookSignatureRefused", unit=MetricUnit.Count, value=1)
        return Response(403, _JSON, '{"error":"forbidden"}')
    counts = {
        "received": result.received,
        "enqueued": result.enqueued,
        "duplicates": result.duplicates,
        "unknown_realm": result.unknown_realm,
        "unparseable": result.unparseable,
        "unrecorded": result.unrecorded,
    }
    for name, value in counts.items():
        if value:
            metrics.add_metric(name=f"Webhook_{name}", unit=MetricUnit.Count, value=value)
    if result.kept_as is not None:
        logger.warning("webhook body unparseable, kept", extra={"kept_as": result.kept_as, **counts})
    elif result.unrecorded:
        logger.warning("webhook changes enqueued, ledger not written", extra=counts)
    else:
        logger.info("webhook delivery taken in", extra={"tenants": len(result.tenants), **counts})
    return Response(200, _JSON, '{"ok":true}')


@app.not_found
def not_found(_error: Exception) -> Response[str]:
    return Response(404, _JSON, '{"error":"not found"}')


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
