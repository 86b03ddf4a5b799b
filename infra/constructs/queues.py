"""The SQS work queues with their dead-letter queues, and the queue of failed asynchronous runs.

Each queue comes from ``infra.manifest.QUEUES``: FIFO ones with no content-based de-duplication
(producers set a deterministic de-duplication id); the manifest's visibility timeout and retention,
SQS-managed encryption, TLS only, and a dead-letter queue of the same kind after the manifest's
``max_receive_count``.  Nothing is dropped: a message that keeps failing waits in its DLQ (alarmed,
redriven by hand, docs/deploy.md).  The one standard queue is the events' delivery queue.

The schedules, the EventBridge rule and Lambda's own asynchronous retries have no queue of their own; a
run they finally give up on lands in the async-failures queue, alarmed like the DLQs.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import manifest
from infra.constructs import lock_logical_id
from infra.manifest import QueueSpec

ASYNC_FAILURES_LOGICAL_ID: Final = "AsyncFailureQueue"
ASYNC_FAILURES_RETENTION_DAYS: Final = 14  # SQS's maximum: two weeks to notice and replay a run


class Queues(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for spec in manifest.QUEUES:
            self._queue(spec)
        self.async_failures = sqs.Queue(
            self,
            ASYNC_FAILURES_LOGICAL_ID,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(ASYNC_FAILURES_RETENTION_DAYS),
            removal_policy=RemovalPolicy.RETAIN,
        )
        lock_logical_id(self.async_failures, ASYNC_FAILURES_LOGICAL_ID)
        Validations.of(self.async_failures).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="It is itself the dead-letter destination of the schedules, the EventBridge rule and "
                "Lambda's asynchronous retries; its depth is alarmed like the DLQs'",
            )
        )

    def _queue(self, spec: QueueSpec) -> None:
        fifo = True if spec.fifo else None
        deduplication = False if spec.fifo else None
        dlq = sqs.Queue(
            self,
            spec.dlq_logical_id,
            fifo=fifo,
            content_based_deduplication=deduplication,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(spec.dlq_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        lock_logical_id(dlq, spec.dlq_logical_id)
        queue = sqs.Queue(
            self,
            spec.logical_id,
            fifo=fifo,
            content_based_deduplication=deduplication,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(spec.visibility_timeout_seconds),
            retention_period=Duration.days(spec.retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=spec.max_receive_count),
            removal_policy=RemovalPolicy.RETAIN,
        )
        lock_logical_id(queue, spec.logical_id)
        self.queues[spec.logical_id] = queue
        self.dead_letter_queues[spec.logical_id] = dlq

    def queue(self, spec: QueueSpec) -> sqs.Queue:
        return self.queues[spec.logical_id]

    def dead_letter_queue(self, spec: QueueSpec) -> sqs.Queue:
        return self.dead_letter_queues[spec.logical_id]
