"""SQS event source mappings, locally: a poller thread per queue.

Like Lambda's poller, each one long-polls its queue for up to ``batch_size`` messages with every
system attribute, hands them to ``deliver`` (which invokes the function with the SQS event) and
deletes the successes.  The failures (``batchItemFailures``, or all of them when the handler raised)
stay on the queue: SQS would make them visible again when their visibility timeout ends; locally
they are made visible after ``retry_delay`` seconds, so a retry is quick but real.  Their receive
count keeps growing, and moto moves a message to the DLQ once it reaches the queue's
``maxReceiveCount``, as SQS does.  FIFO order within a message group is SQS's (moto's) job: a group
with a message in flight is not delivered again until that message is deleted or visible.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from qbo_link_local.resources import ACCOUNT_ID, REGION, QueueInfo

WAIT_SECONDS: Final = 1  # long poll; also bounds how long a stop waits for a poller
SHORT_POLL_PAUSE: Final = 0.05
_SYSTEM_ATTRIBUTES: Final = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
)


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        import base64

        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


def lambda_record(message: dict[str, Any], queue: QueueInfo) -> dict[str, Any]:
    """The record Lambda's SQS event source builds from a received message."""
    received = message.get("Attributes", {})
    attributes = {name: str(received[name]) for name in _SYSTEM_ATTRIBUTES if name in received}
    attributes.setdefault("SenderId", ACCOUNT_ID)
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {
            name: _lambda_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": REGION,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


Deliver = Callable[[list[dict[str, Any]]], set[str]]  # received messages -> ids that failed


class QueuePoller:
    """One thread polling one queue; ``deliver`` returns the MessageIds to deliver again."""

    def __init__(
        self,
        queue: QueueInfo,
        client: Any,
        deliver: Deliver,
        *,
        batch_size: int,
        retry_delay: float,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self.queue = queue
        self._client = client
        self._deliver = deliver
        self._batch_size = batch_size
        self._retry_delay = retry_delay
        self._on_error = on_error
        self._stop = threading.Event()
        self._held = threading.Event()
        self._idle = threading.Event()  # set while held and not inside a delivery
        self._lock = threading.Lock()
        self._in_hand = 0  # received, neither deleted nor released yet
        self._releases: list[tuple[float, list[str]]] = []  # (when, receipt handles)
        self._thread = threading.Thread(
            target=self._run, name=f"qbo-link-local-{queue.logical_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop after its current round (``stop`` waits for it)."""
        self._stop.set()
        self._held.clear()

    def stop(self) -> None:
        self.request_stop()
        self._thread.join(timeout=WAIT_SECONDS + 10)
        self._release(everything=True)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No delivery starts while held (the one running finishes): messages pile up in the queue,
        and the next receive takes up to ``batch_size`` of them at once."""
        self._idle.clear()
        self._held.set()
        try:
            while not self._idle.wait(0.05) and self._thread.is_alive():
                pass
            yield
        finally:
            self._held.clear()

    def busy(self) -> int:
        with self._lock:
            return self._in_hand

    def _run(self) -> None:
        while not self._stop.is_set():
            self._release()
            if self._held.is_set():
                self._idle.set()
                self._stop.wait(0.02)
                continue
            try:
                # A long poll would not see a released message until it ends: while failures wait
                # for their release, poll briefly and often instead.
                with self._lock:
                    retrying = bool(self._releases)
                if not self._poll(0 if retrying else WAIT_SECONDS) and retrying:
                    self._stop.wait(SHORT_POLL_PAUSE)
            except Exception as error:  # a poller never dies of one bad round (moto restarting)
                self._on_error(self.queue.logical_id, error)
                self._stop.wait(0.5)

    def _poll(self, wait_seconds: int) -> bool:
        answer = self._client.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = answer.get("Messages") or []
        if not messages:
            return False
        with self._lock:
            self._in_hand += len(messages)
        try:
            failed = self._deliver(messages)
        except Exception:
            failed = {m["MessageId"] for m in messages}
            raise
        finally:
            done = [m for m in messages if m["MessageId"] not in failed]
            again = [m["ReceiptHandle"] for m in messages if m["MessageId"] in failed]
            self._delete(done)
            with self._lock:
                self._in_hand -= len(done)
                if again:
                    self._releases.append((time.monotonic() + self._retry_delay, again))
        return True

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            self._client.delete_message_batch(QueueUrl=self.queue.url, Entries=entries)

    def _release(self, *, everything: bool = False) -> None:
        """Make failed messages visible again once their delay is over."""
        now = time.monotonic()
        with self._lock:
            due = [handles for when, handles in self._releases if everything or when <= now]
            self._releases = [(when, h) for when, h in self._releases if not (everything or when <= now)]
        for handles in due:
            try:
                for start in range(0, len(handles), 10):
                    entries = [
                        {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                        for i, handle in enumerate(handles[start : start + 10])
                    ]
                    self._client.change_message_visibility_batch(QueueUrl=self.queue.url, Entries=entries)
            except Exception as error:  # the message stays invisible until its timeout: SQS's own way
                self._on_error(self.queue.logical_id, error)
            finally:
                with self._lock:
                    self._in_hand -= len(handles)
