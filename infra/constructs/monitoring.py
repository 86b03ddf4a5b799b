"""Alarms, a dashboard and an encrypted SNS topic the alarms notify.

Alarms (each on ``AlarmTopic``, or on the host app's own topic; optionally e-mailed, context
``qbo-link:alarmEmail``):

- a message in any dead-letter queue or in the async-failures queue (work that needs a person);
- work waiting too long in a FIFO queue (a stuck tenant or consumer);
- any function error or throttle;
- 5xx answers of the HTTP API;
- connections needing reconnect: the keep-alive's ``KeepAlive_dead`` (invalid_grant at Intuit);
- posting failures: the push worker's ``Postings_failed`` (QBO refused a document; the posting log
  says why) and webhook deliveries the changes queue refused (``WebhookEnqueueFailures``).

The business metrics are the ones the code emits with Powertools (``metrics.add_metric``, namespace and
``service`` dimension of ``shared.kernel.observability``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import manifest
from shared.kernel import constants

# Metric names as the handlers emit them (functions/*/handler.py).
METRIC_CONNECTIONS_DEAD: Final = "KeepAlive_dead"
METRIC_KEEP_ALIVE_FAILED: Final = "KeepAlive_failed"
METRIC_POSTINGS_FAILED: Final = "Postings_failed"
METRIC_WEBHOOK_ENQUEUE_FAILURES: Final = "WebhookEnqueueFailures"
BUSINESS_METRICS: Final = (
    "Postings_posted",
    METRIC_POSTINGS_FAILED,
    "Postings_needs_attention",
    "PushDeliveries",
    "ChangeNotices",
    "ChangeNoticesFailed",
    "Webhook_received",
    "Webhook_enqueued",
    "WebhookSignatureRefused",
    METRIC_WEBHOOK_ENQUEUE_FAILURES,
    "SweepTenants",
    "KeepAlive_refreshed",
    METRIC_KEEP_ALIVE_FAILED,
    METRIC_CONNECTIONS_DEAD,
)
QUEUE_AGE_ALARM_SECONDS: Final = 3600  # an hour of waiting: a tenant is stuck, not merely throttled


@dataclass(frozen=True)
class MonitoredQueue:
    logical_id: str
    queue: sqs.IQueue
    dead_letter: bool


def metrics_namespace() -> str:
    from shared.kernel.observability import metrics

    return str(metrics.namespace)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        queues: list[MonitoredQueue],
        http_api: apigwv2.IHttpApi,
        dashboard_name: str,
        alarm_topic: sns.ITopic | None = None,
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic_key: kms.Key | None = None
        self.topic: sns.ITopic
        if alarm_topic is None:
            self.topic_key, self.topic = self._alarm_topic()
        else:
            self.topic = alarm_topic
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._namespace = metrics_namespace()
        self._queue_alarms(queues)
        self._function_alarms(functions)
        self._service_alarms(http_api)
        self.dashboard = self._dashboard(dashboard_name, functions, queues, http_api)

    def _alarm_topic(self) -> tuple[kms.Key, sns.Topic]:
        # CloudWatch cannot publish to a topic under the AWS-managed SNS key: ours, with CloudWatch allowed.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="QBO Link: alarm notifications",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,  # encrypts only notifications in flight
            pending_window=Duration.days(7),
        )
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey")
        topic = sns.Topic(
            self, "AlarmTopic", display_name="QBO Link alarms", master_key=key, enforce_ssl=True
        )
        return key, topic

    def _queue_alarms(self, queues: list[MonitoredQueue]) -> None:
        for monitored in queues:
            if monitored.dead_letter:
                self._alarm(
                    f"{monitored.logical_id}NotEmpty",
                    monitored.queue.metric_approximate_number_of_messages_visible(
                        period=Duration.minutes(1), statistic="Maximum"
                    ),
                    threshold=1,
                    description=f"{monitored.logical_id} holds messages that failed every retry: "
                    "read them, fix the cause, redrive (docs/deploy.md)",
                )
            else:
                self._alarm(
                    f"{monitored.logical_id}OldestMessageAge",
                    monitored.queue.metric_approximate_age_of_oldest_message(
                        period=Duration.minutes(5), statistic="Maximum"
                    ),
                    threshold=QUEUE_AGE_ALARM_SECONDS,
                    description=f"{monitored.logical_id} has work waiting for over an hour",
                )

    def _function_alarms(self, functions: Mapping[str, lambda_.IFunction]) -> None:
        for spec in manifest.FUNCTIONS:
            function = functions[spec.name]
            self._alarm(
                f"{spec.logical_id}Errors",
                function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                description=f"The {spec.name} function failed (see its log group)",
            )
            self._alarm(
                f"{spec.logical_id}Throttles",
                function.metric_throttles(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                description=f"The {spec.name} function was throttled",
            )

    def _service_alarms(self, http_api: apigwv2.IHttpApi) -> None:
        """The API's 5xx and the business metrics a person must act on."""
        self._alarm(
            "ApiServerErrors",
            http_api.metric_server_error(period=Duration.minutes(5), statistic="Sum"),
            threshold=5,
            description="The HTTP API answered 5xx",
        )
        self._alarm(
            "ConnectionsNeedReconnect",
            self.business_metric(METRIC_CONNECTIONS_DEAD, Duration.hours(1)),
            threshold=1,
            description="The keep-alive found connections whose grant Intuit revoked: "
            "those tenants must reconnect",
        )
        self._alarm(
            "PostingFailures",
            self.business_metric(METRIC_POSTINGS_FAILED, Duration.minutes(5)),
            threshold=1,
            description="QBO refused documents: the posting log holds QBO's message for each",
        )
        self._alarm(
            "WebhookEnqueueFailures",
            self.business_metric(METRIC_WEBHOOK_ENQUEUE_FAILURES, Duration.minutes(5)),
            threshold=1,
            description="Webhook notices the changes queue refused (Intuit retries them)",
        )

    def business_metric(self, name: str, period: Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self._namespace,
            metric_name=name,
            dimensions_map={"service": constants.SERVICE},
            statistic="Sum",
            period=period,
        )

    def _alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, *, threshold: float, description: str
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        action = cloudwatch_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[construct_id] = alarm

    def _dashboard(
        self,
        name: str,
        functions: Mapping[str, lambda_.IFunction],
        queues: list[MonitoredQueue],
        http_api: apigwv2.IHttpApi,
    ) -> cloudwatch.Dashboard:
        """One row of alarms, then rows of two graphs each."""
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=name)
        period = Duration.minutes(5)
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=24, height=4
            )
        )
        dashboard.add_widgets(*self._api_widgets(http_api, period))
        dashboard.add_widgets(*self._function_widgets(functions, period))
        dashboard.add_widgets(*self._queue_widgets(queues, period))
        return dashboard

    def _api_widgets(self, http_api: apigwv2.IHttpApi, period: Duration) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.GraphWidget(
                title="HTTP API",
                left=[http_api.metric_count(period=period), http_api.metric_server_error(period=period)],
                right=[http_api.metric_latency(period=period, statistic="p90")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Postings",
                left=[
                    self.business_metric(name, period)
                    for name in BUSINESS_METRICS
                    if name.startswith("Postings_")
                ],
                width=12,
            ),
        ]

    @staticmethod
    def _function_widgets(
        functions: Mapping[str, lambda_.IFunction], period: Duration
    ) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[
                    functions[s.name].metric_errors(period=period, label=s.name) for s in manifest.FUNCTIONS
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function duration (p90)",
                left=[
                    functions[s.name].metric_duration(period=period, statistic="p90", label=s.name)
                    for s in manifest.FUNCTIONS
                ],
                width=12,
            ),
        ]

    def _queue_widgets(self, queues: list[MonitoredQueue], period: Duration) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.GraphWidget(
                title="Queues: visible messages",
                left=[
                    q.queue.metric_approximate_number_of_messages_visible(period=period, label=q.logical_id)
                    for q in queues
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Pull, webhooks, keep-alive",
                left=[
                    self.business_metric(name, period)
                    for name in BUSINESS_METRICS
                    if not name.startswith("Postings_")
                ],
                width=12,
            ),
        ]
