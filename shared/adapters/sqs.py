"""The SQS FIFO sender: the one place that speaks ``SendMessage`` / ``SendMessageBatch`` and turns
boto3's failures into ``QueueSendError``.

Every queue QBO Link writes is FIFO with explicit deduplication ids: the push queue (group = tenant,
id = document version), the changes queue (group = tenant, id = event id) and the sweep fan-out onto
the changes queue (id = tenant + schedule bucket). A batch goes out ten entries at a time (SQS's
limit); an entry SQS refuses inside an accepted batch is reported back by its index, so each caller
decides what a refusal means (retry the delivery, fail the schedule, answer 503).

One queue is standard rather than FIFO: the events' delivery queue, fed by an EventBridge rule, whose
consumer paces its retries and dead-letters by itself (``PacedQueue``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

SQS_BATCH: Final = 10  # SendMessageBatch takes at most ten entries


class QueueSendError(RuntimeError):
    """SQS did not take the call at all (the whole call failed: nothing of it is known to be sent)."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"{operation} failed: {code}")
        self.operation = operation
        self.code = code


@dataclass(frozen=True, slots=True)
class FifoMessage:
    """One message: its body, its message group (the order it keeps) and its deduplication id."""

    body: str
    group: str
    deduplication_id: str


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "")) or "unknown error"
        raise QueueSendError(operation, code) from error
    except BotoCoreError as error:
        raise QueueSendError(operation, type(error).__name__) from error


class FifoSender:
    """Sends to one FIFO queue through a boto3 SQS client."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, message: FifoMessage) -> None:
        with _translated("SendMessage"):
            self._client.send_message(
                QueueUrl=self._url,
                MessageBody=message.body,
                MessageGroupId=message.group,
                MessageDeduplicationId=message.deduplication_id,
            )

    def send_batch(self, messages: Sequence[FifoMessage]) -> list[tuple[int, str]]:
        """Send in batches of ten; returns ``(index in messages, SQS's code)`` of each entry refused.

        A call that fails as a whole raises ``QueueSendError`` and the batches after it are not sent;
        the batches before it were (a retry sends them again and SQS drops them by deduplication id).
        """
        refused: list[tuple[int, str]] = []
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start : start + SQS_BATCH]
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": message.body,
                    "MessageGroupId": message.group,
                    "MessageDeduplicationId": message.deduplication_id,
                }
                for index, message in enumerate(chunk)
            ]
            with _translated("SendMessageBatch"):
                answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            refused += [
                (start + int(failed["Id"]), str(failed.get("Code") or "unknown error"))
                for failed in answer.get("Failed") or []
            ]
        return refused


class PacedQueue:
    """A standard queue whose consumer paces its own retries (the events' delivery queue): it hides a
    received message until its next attempt (``ChangeMessageVisibility``) and gives a message up by
    sending it to the queue's DLQ itself, with why as message attributes."""

    def __init__(self, client: Any, queue_url: str, dead_letter_url: str) -> None:
        self._client = client
        self._url = queue_url
        self._dead_letter_url = dead_letter_url

    def hide(self, receipt_handle: str, seconds: int) -> None:
        """The received message comes back in ``seconds`` (at most 12 hours, SQS's limit)."""
        with _translated("ChangeMessageVisibility"):
            self._client.change_message_visibility(
                QueueUrl=self._url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(seconds, 43_200)),
            )

    def dead_letter(self, body: str, attributes: Mapping[str, str]) -> None:
        """``body`` unchanged into the DLQ (a redrive delivers it as it was), ``attributes`` beside it."""
        with _translated("SendMessage"):
            self._client.send_message(
                QueueUrl=self._dead_letter_url,
                MessageBody=body,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in attributes.items()
                    if value
                },
            )
