"""The local stack's AWS changes, written down as they happen (``state_dir``): nothing accepted is lost.

moto keeps everything in memory.  With a state directory, every change that makes a request
"accepted" is appended to a journal file before moto answers the request that made it:

* a DynamoDB item's after-image (``item``: the whole item, or ``null`` once deleted) for each key a
  ``PutItem``, ``UpdateItem``, ``DeleteItem``, ``BatchWriteItem`` or ``TransactWriteItems`` wrote;
* an SQS message added to a queue (``send``: id, body, group and de-duplication id; a message
  moved to its DLQ by the redrive policy is the same id sent to the DLQ), a message deleted
  (``delete``), a queue purged (``purge``).

Each record is one line handed to the kernel with ``os.write`` before moto's answer leaves, so a
SIGKILL right after the answer cannot lose it (the kernel keeps the page).  ``sync`` fsyncs what
was written since the last ``sync`` (one fsync for every record written meanwhile): the gateway
calls it before each answer, so a 202 is on disk even if the machine loses power afterwards.

The hooks sit on moto's backends in this process (the local stack runs moto's server in its own
threads), below the HTTP layer: the records hold moto's own view of an item after the write, not
a replay of the request.  ``qbo_link_local.state`` replays a journal on top of the last snapshot.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qbo_link_local.resources import ACCOUNT_ID, REGION

_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


class Journal:
    """An append-only file of JSON lines; ``append`` is write-through, ``sync`` fsyncs (grouped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = 0  # records handed to the kernel
        self._synced = 0  # of which on disk
        self.records = 0
        self.fsyncs = 0

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]
            self._written += 1
            self.records += 1

    def sync(self) -> None:
        """Put every record appended before this call on disk (a no-op when nothing is new)."""
        wanted = self._written
        if self._synced >= wanted:
            return
        with self._sync_lock:
            if self._synced >= wanted:
                return  # another caller's fsync covered these records
            upto = self._written
            os.fsync(self._fd)
            self._synced = upto
            self.fsyncs += 1

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def read_journal(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a journal file in order; a torn last line (the process died mid-write) ends it."""
    if not path.exists():
        return
    with path.open("rb") as file:
        for line in file:
            if not line.endswith(b"\n"):
                return
            try:
                record = json.loads(line)
            except ValueError:
                return
            if isinstance(record, dict):
                yield record


def wire_item(item: Any) -> dict[str, Any]:
    """A moto item as DynamoDB's wire JSON (binary values base64), the form moto parses back."""
    return {name: _wire(value) for name, value in item.attrs.items()}


def _wire(value: Any) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if not isinstance(value, DynamoType):
        return value
    raw = value.value
    if isinstance(raw, dict):
        return {value.type: {k: _wire(v) for k, v in raw.items()}}
    if isinstance(raw, list):
        return {value.type: [_wire(v) for v in raw]}
    if isinstance(raw, bytes):
        return {value.type: base64.b64encode(raw).decode()}
    return {value.type: raw}


def _ours(backend: Any) -> bool:
    """The stack's account and region (moto's backends are global: leave any other alone)."""
    return bool(backend.account_id == ACCOUNT_ID and backend.region_name == REGION)


class _Recorder:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.lock = threading.RLock()  # every DynamoDB write, with its records: their order is the file's
        self.depth = threading.local()

    def item_keys(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """(table, key attributes) of each item a write names."""
        if name == "transact_write_items":
            items = kwargs.get("transact_items", args[0] if args else [])
            named = []
            for action in items:
                for operation, request in action.items():
                    source = request.get("Item") if operation == "Put" else request.get("Key")
                    if operation != "ConditionCheck" and isinstance(source, dict):
                        named.append((request.get("TableName"), source))
            return named
        table_name = kwargs.get("table_name", args[0] if args else None)
        source = kwargs.get("item_attrs" if name == "put_item" else "key", args[1] if len(args) > 1 else None)
        return [(table_name, source)] if isinstance(source, dict) else []

    def after_images(self, backend: Any, named: list[Any]) -> None:
        from moto.dynamodb.exceptions import MockValidationException

        for table_name, source in named:
            table = backend.tables.get(table_name)
            if table is None:
                continue
            try:
                hash_key, range_key = backend.get_keys_value(table, source)
            except (MockValidationException, TypeError):
                continue
            key = {table.hash_key_attr: source[table.hash_key_attr]}
            if table.range_key_attr:
                key[table.range_key_attr] = source[table.range_key_attr]
            item = table.get_item(hash_key, range_key)
            self.journal.append(
                {
                    "op": "item",
                    "table": table.name,
                    "key": key,
                    "item": None if item is None else wire_item(item),
                }
            )

    def dynamodb_write(self, name: str, original: Any) -> Any:
        def write(backend: Any, *args: Any, **kwargs: Any) -> Any:
            if not _ours(backend):
                return original(backend, *args, **kwargs)
            with self.lock:
                depth = getattr(self.depth, "n", 0)
                self.depth.n = depth + 1
                try:
                    result = original(backend, *args, **kwargs)
                finally:
                    self.depth.n = depth
                if depth == 0:  # a transaction's own puts are recorded once, by the transaction
                    self.after_images(backend, self.item_keys(name, args, kwargs))
                return result

        return write


@contextmanager
def recording(journal: Journal) -> Iterator[None]:
    """Append every change to moto's DynamoDB items and SQS messages to ``journal`` while the block runs."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.sqs.models import Queue, SQSBackend

    recorder = _Recorder(journal)
    dynamodb = {name: DynamoDBBackend.__dict__[name] for name in _DYNAMODB_WRITES}
    add_message, delete_message = Queue.add_message, Queue.delete_message
    purge_queue = SQSBackend.purge_queue

    def queue_ours(queue: Any) -> bool:
        return bool(queue.account_id == ACCOUNT_ID and queue.region == REGION)

    # A message's change and its record are one step under the recorder's lock, as an item's are:
    # a message received and deleted by another thread is never recorded as deleted before sent.
    def add(queue: Any, message: Any) -> None:
        with recorder.lock:
            add_message(queue, message)
            if not (queue_ours(queue) and any(m is message for m in queue._messages)):
                return  # another stack's queue, or a FIFO duplicate moto dropped
            journal.append(
                {
                    "op": "send",
                    "queue": queue.name,
                    "id": message.id,
                    "body": message.body,
                    "group": message.group_id,
                    "dedup": message.deduplication_id,
                }
            )

    def delete(queue: Any, receipt_handle: str) -> None:
        with recorder.lock:
            ids = [m.id for m in queue._messages if m.had_receipt_handle(receipt_handle)]
            delete_message(queue, receipt_handle)
            if queue_ours(queue) and ids:
                journal.append({"op": "delete", "queue": queue.name, "ids": ids})

    def purge(backend: Any, queue_name: str) -> None:
        with recorder.lock:
            purge_queue(backend, queue_name)
            if _ours(backend):
                journal.append({"op": "purge", "queue": queue_name})

    for name, method in dynamodb.items():
        setattr(DynamoDBBackend, name, recorder.dynamodb_write(name, method))
    setattr(Queue, "add_message", add)  # noqa: B010 - moto's methods, replaced while the block runs
    setattr(Queue, "delete_message", delete)  # noqa: B010
    setattr(SQSBackend, "purge_queue", purge)  # noqa: B010
    try:
        yield
    finally:
        for name, method in dynamodb.items():
            setattr(DynamoDBBackend, name, method)
        setattr(Queue, "add_message", add_message)  # noqa: B010
        setattr(Queue, "delete_message", delete_message)  # noqa: B010
        setattr(SQSBackend, "purge_queue", purge_queue)  # noqa: B010
