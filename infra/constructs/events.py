"""The outbound event bus, the EventBridge Scheduler schedules and the rules on our own bus.

- The bus (``infra.manifest.EVENT_BUS_DEFAULT_NAME``, or the host app's own) carries QBO Link's
  outbound events (source ``qbo-link``) to the host app's subscribers and to our own rules.
- Each ``Schedule`` of a ``FunctionSpec`` becomes an EventBridge Scheduler schedule invoking that
  function through one role that may invoke exactly the scheduled functions; the schedule's own time is
  passed as ``scheduled_time`` (the sweep de-duplicates retries by it).
- Each ``EventRule`` becomes a rule on our bus (source ``qbo-link`` + the detail types) targeting the
  function; ``Connection Connected`` -> onboard.
- The delivery rule: every event of source ``qbo-link`` onto the delivery queue, whose consumer POSTs
  it to the host app's endpoint (docs/events.md).  Always declared, enabled only when the stack has an
  endpoint (``qbo-link:eventsUrl``): off, it is dormant and the queue stays empty.

Invocations that Scheduler or EventBridge cannot deliver land in the async-failures queue.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, CfnElement, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import manifest
from infra.constructs import lock_logical_id
from shared.kernel import constants

DELIVERY_RETRIES: Final = 3
DELIVERY_MAX_AGE: Final = Duration.hours(2)


def _cfn(function: lambda_.IFunction) -> CfnElement:
    resource = function.node.default_child
    if not isinstance(resource, CfnElement):
        raise TypeError(f"{function.node.path} has no CloudFormation resource")
    return resource


class Events(Construct):
    """``bus`` is a bus the host app brings (then none is created here), ``bus_name`` the name of the
    bus created otherwise."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus | None = None,
        bus_name: str = manifest.EVENT_BUS_DEFAULT_NAME,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus: events.IEventBus = bus or self._bus(bus_name)
        self.schedules: dict[str, scheduler.Schedule] = {}
        self.rules: dict[str, events.Rule] = {}
        self.scheduler_role: iam.Role | None = None
        self.delivery_rule: events.Rule | None = None

    def _bus(self, name: str) -> events.EventBus:
        bus = events.EventBus(
            self,
            manifest.EVENT_BUS_LOGICAL_ID,
            event_bus_name=name,
            description="QBO Link's outbound events (source qbo-link)",
        )
        lock_logical_id(bus, manifest.EVENT_BUS_LOGICAL_ID)
        return bus

    def add_triggers(self, functions: dict[str, lambda_.IFunction], failures: sqs.IQueue) -> None:
        """The manifest's schedules and event rules, targeting the functions that declare them."""
        self._add_schedules(functions, failures)
        self._add_rules(functions, failures)

    def _add_schedules(self, functions: dict[str, lambda_.IFunction], failures: sqs.IQueue) -> None:
        scheduled = [spec for spec in manifest.FUNCTIONS if spec.schedules]
        if not scheduled:
            return
        account = Stack.of(self).account
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": account}}
            ),
            description="EventBridge Scheduler: invoke QBO Link's scheduled functions, nothing else",
        )
        for spec in scheduled:
            for schedule in spec.schedules:
                target = scheduler_targets.LambdaInvoke(
                    functions[spec.name],
                    role=self.scheduler_role,
                    dead_letter_queue=failures,
                    retry_attempts=DELIVERY_RETRIES,
                    max_event_age=DELIVERY_MAX_AGE,
                    input=scheduler.ScheduleTargetInput.from_object(
                        {"scheduled_time": scheduler.ContextAttribute.scheduled_time}
                    ),
                )
                self.schedules[schedule.logical_id] = scheduler.Schedule(
                    self,
                    schedule.logical_id,
                    schedule=scheduler.ScheduleExpression.expression(schedule.expression),
                    target=target,
                    description=schedule.description,
                )
        stack = Stack.of(self)
        Validations.of(self.scheduler_role).acknowledge(
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(_cfn(functions[spec.name]))}.Arn>:*]",
                    reason=f"lambda:InvokeFunction on the {spec.name} function's versions and aliases "
                    "(the scheduler target's grant); no other function",
                )
                for spec in scheduled
            )
        )

    def _add_rules(self, functions: dict[str, lambda_.IFunction], failures: sqs.IQueue) -> None:
        for spec in manifest.FUNCTIONS:
            for rule in spec.event_rules:
                self.rules[rule.logical_id] = events.Rule(
                    self,
                    rule.logical_id,
                    event_bus=self.bus,
                    description=f"{', '.join(rule.detail_types)} -> {spec.name}",
                    event_pattern=events.EventPattern(
                        source=[constants.EVENT_SOURCE], detail_type=list(rule.detail_types)
                    ),
                    targets=[
                        targets.LambdaFunction(
                            functions[spec.name],
                            dead_letter_queue=failures,
                            retry_attempts=DELIVERY_RETRIES,
                            max_event_age=DELIVERY_MAX_AGE,
                        )
                    ],
                )

    def add_delivery_rule(self, queue: sqs.IQueue, failures: sqs.IQueue, *, enabled: bool) -> events.Rule:
        """Every event of our source onto ``queue`` (the delivery queue); dormant unless ``enabled``."""
        self.delivery_rule = events.Rule(
            self,
            manifest.DELIVERY_RULE_LOGICAL_ID,
            event_bus=self.bus,
            enabled=enabled,
            description="Every QBO Link event -> the delivery queue (the host app's HTTPS endpoint)",
            event_pattern=events.EventPattern(source=[constants.EVENT_SOURCE]),
            targets=[
                targets.SqsQueue(
                    queue,
                    dead_letter_queue=failures,
                    retry_attempts=DELIVERY_RETRIES,
                    max_event_age=DELIVERY_MAX_AGE,
                )
            ],
        )
        return self.delivery_rule
