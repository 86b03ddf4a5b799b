"""The AWS side of the local stack, created in moto FROM the deployment manifest.

Every table (``infra.tables.create_table``), queue, secret, the event bus, the tokens' KMS key and
alias, and the event rules come from ``infra.manifest`` and ``infra.tables``: the same definitions
the CDK stack synthesises, so the two cannot drift.  Two things exist only locally, because Lambda
does them without a visible resource in AWS:

* an event rule's target: EventBridge invokes the rule's function asynchronously.  Locally each rule
  targets an SQS queue (``qbo-link-local-<rule>``) that the stack polls and hands to the function;
  moto's own rule matching decides what reaches it.  Its DLQ stands for the rule target's retries
  (three, then the event is kept aside).
* the outbound log: a rule matching every event of ``constants.EVENT_SOURCE`` into a queue the
  stack reads, so a developer sees each event the host app would receive.

The delivery rule (every event onto the manifest's delivery queue, read by the deliverer) exists
only when the stack is given an endpoint for the events (``qbo-link dev --events-url``); in AWS it
is declared always and disabled without one.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from infra import manifest as stack
from infra import tables
from infra.manifest import EventRule, FunctionSpec, Names, QueueSpec
from shared.kernel import constants

ACCOUNT_ID: Final = "123456789012"  # moto's default account
REGION: Final = "us-east-1"
DAY: Final = 86_400
# The CDK stack's rule targets retry a failed invocation 3 times (infra/constructs/events.py,
# DELIVERY_RETRIES) and then keep the event in a DLQ: four deliveries, then the DLQ.
RULE_MAX_RECEIVE_COUNT: Final = 4
OUTBOUND_QUEUE: Final = "qbo-link-local-outbound"
OUTBOUND_RULE: Final = "qbo-link-local-outbound"
DELIVERY_RULE: Final = "qbo-link-local-delivery"


@dataclass(frozen=True)
class QueueInfo:
    logical_id: str
    url: str
    arn: str
    fifo: bool
    dead_letter: bool = False


@dataclass(frozen=True)
class RuleTarget:
    rule: EventRule
    function: FunctionSpec
    queue: QueueInfo
    dead_letter: QueueInfo


@dataclass
class LocalResources:
    names: Names
    queues: dict[str, QueueInfo] = field(default_factory=dict)  # logical id -> queue (incl. DLQs)
    rules: list[RuleTarget] = field(default_factory=list)
    outbound: QueueInfo | None = None
    tokens_key_id: str = ""


def _queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


def _create_queue(sqs: Any, name: str, attributes: Mapping[str, str]) -> str:
    url: str = sqs.create_queue(QueueName=name, Attributes=dict(attributes))["QueueUrl"]
    return url


def create_manifest_queue(sqs: Any, spec: QueueSpec) -> tuple[QueueInfo, QueueInfo]:
    """The queue and its DLQ as the manifest describes them (FIFO ones with no content-based
    de-duplication: producers set their own ids; redrive after ``max_receive_count`` deliveries)."""
    kind = {"FifoQueue": "true", "ContentBasedDeduplication": "false"} if spec.fifo else {}
    dlq_url = _create_queue(
        sqs,
        spec.dlq_default_name,
        {**kind, "MessageRetentionPeriod": str(spec.dlq_retention_days * DAY)},
    )
    dlq = QueueInfo(
        spec.dlq_logical_id, dlq_url, _queue_arn(spec.dlq_default_name), spec.fifo, dead_letter=True
    )
    redrive = {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": spec.max_receive_count}
    url = _create_queue(
        sqs,
        spec.default_name,
        {
            **kind,
            "VisibilityTimeout": str(spec.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(spec.retention_days * DAY),
            "RedrivePolicy": json.dumps(redrive),
        },
    )
    return QueueInfo(spec.logical_id, url, _queue_arn(spec.default_name), spec.fifo), dlq


def _rule_target(sqs: Any, events: Any, bus: str, function: FunctionSpec, rule: EventRule) -> RuleTarget:
    name = f"qbo-link-local-{rule.logical_id}"
    dlq_url = _create_queue(sqs, f"{name}-dlq", {"MessageRetentionPeriod": str(14 * DAY)})
    dlq = QueueInfo(f"{rule.logical_id}DeadLetter", dlq_url, _queue_arn(f"{name}-dlq"), False, True)
    redrive = {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": RULE_MAX_RECEIVE_COUNT}
    timeout = str(max(30, function.timeout_seconds * 6))
    url = _create_queue(sqs, name, {"VisibilityTimeout": timeout, "RedrivePolicy": json.dumps(redrive)})
    queue = QueueInfo(rule.logical_id, url, _queue_arn(name), False)
    pattern = {"source": [constants.EVENT_SOURCE], "detail-type": list(rule.detail_types)}
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": function.logical_id, "Arn": queue.arn}])
    return RuleTarget(rule, function, queue, dlq)


def _create_secrets(secretsmanager: Any, secret_values: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Each manifest secret with its given (or generated) fields; logical id -> ARN."""
    arns: dict[str, str] = {}
    for secret in stack.SECRETS:
        given = dict(secret_values.get(secret.logical_id, {}))
        if secret.generated_field and not given.get(secret.generated_field):
            given[secret.generated_field] = secrets.token_urlsafe(32)
        missing = [name for name in secret.fields if not given.get(name)]
        if missing:
            raise ValueError(f"secret {secret.logical_id} needs a value for {', '.join(missing)}")
        value = json.dumps({name: given[name] for name in secret.fields})
        created = secretsmanager.create_secret(
            Name=secret.default_name, SecretString=value, Description=secret.description
        )
        arns[secret.logical_id] = created["ARN"]
    return arns


def _outbound_queue(sqs: Any, events: Any, bus: str) -> QueueInfo:
    """A queue every event of the bus also goes to: the stack's log of outbound events."""
    outbound_url = _create_queue(sqs, OUTBOUND_QUEUE, {"MessageRetentionPeriod": str(DAY)})
    outbound = QueueInfo("OutboundEvents", outbound_url, _queue_arn(OUTBOUND_QUEUE), False)
    everything = {"source": [constants.EVENT_SOURCE]}
    events.put_rule(
        Name=OUTBOUND_RULE, EventBusName=bus, EventPattern=json.dumps(everything), State="ENABLED"
    )
    events.put_targets(Rule=OUTBOUND_RULE, EventBusName=bus, Targets=[{"Id": "log", "Arn": outbound.arn}])
    return outbound


def _delivery_rule(events: Any, bus: str, queue: QueueInfo) -> None:
    """Every event of the bus onto the delivery queue (``infra.constructs.events``'s delivery rule)."""
    everything = {"source": [constants.EVENT_SOURCE]}
    events.put_rule(
        Name=DELIVERY_RULE, EventBusName=bus, EventPattern=json.dumps(everything), State="ENABLED"
    )
    events.put_targets(
        Rule=DELIVERY_RULE, EventBusName=bus, Targets=[{"Id": queue.logical_id, "Arn": queue.arn}]
    )


def create_resources(
    clients: Mapping[str, Any],
    secret_values: Mapping[str, Mapping[str, str]],
    events_url: str | None = None,
) -> LocalResources:
    """Create everything the manifest declares; ``secret_values``: secret logical id -> fields.

    A secret's ``generated_field`` (the OAuth state key, the events' signing key) gets a fresh
    random value when not given.  ``events_url``: the endpoint the deliverer POSTs every event to
    (empty: no delivery rule).  ``clients`` holds boto3 clients for dynamodb, sqs, events, kms and
    secretsmanager.
    """
    dynamodb, sqs, events = clients["dynamodb"], clients["sqs"], clients["events"]
    kms, secretsmanager = clients["kms"], clients["secretsmanager"]

    table_names = {spec.logical_id: tables.create_table(dynamodb, spec) for spec in tables.TABLES}

    queues: dict[str, QueueInfo] = {}
    for spec in stack.QUEUES:
        queue, dlq = create_manifest_queue(sqs, spec)
        queues[queue.logical_id], queues[dlq.logical_id] = queue, dlq

    key_id: str = kms.create_key(
        Description="QBO Link tokens (local)", KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT"
    )["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=stack.TOKENS_KEY_ALIAS, TargetKeyId=key_id)

    arns = _create_secrets(secretsmanager, secret_values)

    bus = stack.EVENT_BUS_DEFAULT_NAME
    events.create_event_bus(Name=bus)
    rules = [
        _rule_target(sqs, events, bus, function, rule)
        for function in stack.FUNCTIONS
        for rule in function.event_rules
    ]
    for target in rules:
        queues[target.queue.logical_id] = target.queue
        queues[target.dead_letter.logical_id] = target.dead_letter

    outbound = _outbound_queue(sqs, events, bus)
    if events_url:
        _delivery_rule(events, bus, queues[stack.DELIVERY_QUEUE.logical_id])

    names = Names(
        tables=table_names,
        queue_urls={logical_id: queue.url for logical_id, queue in queues.items()},
        secret_arns=arns,
        tokens_key=stack.TOKENS_KEY_ALIAS,
        event_bus=bus,
        events_url=events_url or "",
    )
    return LocalResources(names, queues, rules, outbound, key_id)


def process_environment(names: Names) -> dict[str, str]:
    """The union of every function's environment (``infra.manifest.function_environment``).

    All handlers share this process, so they share one environment: least privilege is the
    deployed stack's job.  Two functions never disagree on a variable (names are per stack).
    """
    env: dict[str, str] = {}
    for function in stack.FUNCTIONS:
        for name, value in stack.function_environment(function, names).items():
            if env.setdefault(name, value) != value:
                raise ValueError(f"functions disagree on {name}")
    return env
