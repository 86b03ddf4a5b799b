"""EventBridge target of ``Connection Connected``: onboard the tenant's mappings.

Right after a connection, QBO Link reads the company's lists and links every unambiguous match,
so the first match tab a firm sees is mostly mapped. It runs here, off the OAuth callback, so the
browser's redirect never waits for QBO's lists; the connection status shows its state and
``Onboarding Finished`` announces its end, once per connection (``shared.connections.onboarding``).

A reconnect (``reconnected`` in the event) first queues a recheck that also brings back the
documents that failed for want of a connection; the automatch then queues its own for the
documents its links release (docs/push.md, "Recheck").  Both are here rather than in the callback,
so the public OAuth function needs no access to the posting log or the push queue, and a failure
is retried by the event rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.kernel import constants, events
from shared.kernel.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from functions.onboard.event import ConnectedEvent  # pydantic on first use: a cold start's import
    from shared import wiring

    del context  # the decorators use it
    parsed = ConnectedEvent.model_validate(event)
    if parsed.source != constants.EVENT_SOURCE or parsed.detail_type != events.CONNECTION_CONNECTED:
        metrics.add_metric(name="OnboardingEventsRejected", unit=MetricUnit.Count, value=1)
        raise ValueError(f"unexpected event {parsed.source}/{parsed.detail_type}")
    tenant_id = parsed.detail.tenant_id
    if parsed.detail.reconnected:
        rechecked = wiring.push_service().schedule_recheck(tenant_id, "reconnect", reconnect=True)
        logger.info("recheck after reconnect", tenant_id=tenant_id, status=rechecked.status)
    try:
        outcome = wiring.onboarder().onboard(tenant_id)
    except Exception:
        metrics.add_metric(name="OnboardingFailures", unit=MetricUnit.Count, value=1)
        raise  # recorded as failed; the event rule retries
    onboarding = outcome.onboarding
    linked = dict(onboarding.linked) if onboarding is not None else {}
    made = 0 if outcome.repeated else sum(linked.values())  # a repeat linked nothing
    metrics.add_metric(name="OnboardingLinks", unit=MetricUnit.Count, value=made)
    logger.info("tenant onboarded", tenant_id=tenant_id, linked=made, repeated=outcome.repeated)
    return {
        "tenant_id": tenant_id,
        "state": onboarding.state if onboarding is not None else None,
        "linked": linked,
        "unmatched": dict(onboarding.unmatched) if onboarding is not None else {},
        "repeated": outcome.repeated,
        "event_id": outcome.event.event_id if outcome.event is not None else None,
    }
