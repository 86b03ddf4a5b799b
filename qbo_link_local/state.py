"""Keeping the AWS side of the local stack across restarts and crashes (``state_dir``).

moto keeps everything in memory.  With a state directory the stack keeps two files:

* ``aws.json``, a snapshot: every table's items (DynamoDB's wire JSON), the messages in every queue
  (in order, with their ids, group and de-duplication ids, DLQs and messages in flight included),
  the tokens' KMS key, and the number of the journal that continues it (``generation``);
* ``aws-journal-<generation>.jsonl``, every change since that snapshot (``qbo_link_local.journal``),
  written before moto answers the request that made it.

At start the snapshot and its journal are replayed (``replay``) into the fresh resources
(``restore``), then written back as one new snapshot with a new, empty journal (``compact``); a
clean stop compacts too.  A crash between the two steps of a compaction leaves either the old
snapshot with its journal or the new one with none: never a journal replayed twice.

The key matters: the tokens in the connections table are encrypted with it, and moto has no way to
import a key under a given id, so its id and material are put back into moto's own key store.  The
sandbox keeps its companies and grants in ``sandbox.json`` in the same directory (its own state
file), so both sides of a connection survive together.

The files hold the local KMS key next to the ciphertexts it protects: a developer's convenience,
as secret as the tokens in them.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from qbo_link_local.journal import wire_item
from qbo_link_local.resources import ACCOUNT_ID, REGION

STATE_FILE: Final = "aws.json"
LOCK_FILE: Final = "lock"
VERSION: Final = 2
_BYTES: Final = "$b64"


class StateDirectoryBusyError(RuntimeError):
    """Another running local stack holds the state directory."""


def lock(directory: Path) -> int:
    """Hold the directory for this process (a file descriptor to close when done).

    Two stacks on one directory would interleave their journals and overwrite each other's
    snapshots.  The lock is the kernel's (``flock``): a killed process drops it with its files."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, one stack per directory is the user's to keep
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateDirectoryBusyError(f"another local stack is using {directory}") from None
    return fd


def journal_path(directory: Path, generation: int) -> Path:
    return directory / f"aws-journal-{generation}.jsonl"


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {_BYTES: base64.b64encode(bytes(value)).decode()}
    raise TypeError(f"cannot keep {type(value).__name__}")


def _decode(value: dict[str, Any]) -> Any:
    if set(value) == {_BYTES}:
        return base64.b64decode(value[_BYTES])
    return value


def _dynamodb() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT_ID][REGION]


def _sqs() -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[ACCOUNT_ID][REGION]


def _key_store() -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[ACCOUNT_ID][REGION].keys


def _key_of(item: dict[str, Any], attributes: Iterable[str]) -> str:
    return json.dumps({name: item.get(name) for name in attributes}, sort_keys=True)


def snapshot(tokens_key_id: str, generation: int) -> dict[str, Any]:
    """Everything the next start needs, read from moto's backends in this process.

    Consistent when nothing writes meanwhile: at start (before the pollers and the gateway run)
    and at a clean stop (after they stopped)."""
    tables = {
        name: [wire_item(item) for item in table.all_items()] for name, table in _dynamodb().tables.items()
    }
    queues = {
        name: [
            {"id": m.id, "body": m.body, "group": m.group_id, "dedup": m.deduplication_id}
            for m in list(queue._messages)
        ]
        for name, queue in _sqs().queues.items()
    }
    key = _key_store()[tokens_key_id]
    return {
        "version": VERSION,
        "generation": generation,
        "tables": tables,
        "queues": queues,
        "tokens_key": {"id": key.id, "material": bytes(key.key_material)},
    }


def key_names() -> dict[str, list[str]]:
    """Each table's key attributes (hash, then range), from the tables this start created."""
    return {
        name: [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        for name, table in _dynamodb().tables.items()
    }


def replay(
    state: dict[str, Any], records: Iterable[dict[str, Any]], key_names: dict[str, list[str]]
) -> dict[str, Any]:
    """The snapshot with a journal's changes applied, in the snapshot's shape (tables without a
    key in ``key_names`` no longer exist and are left out)."""
    if state.get("version") != VERSION:
        raise ValueError(f"state version {state.get('version')!r} is not {VERSION}")
    tables: dict[str, dict[str, dict[str, Any] | None]] = {}
    for name, items in state["tables"].items():
        attributes = key_names.get(name)
        if attributes is not None:
            tables[name] = {_key_of(item, attributes): item for item in items}
    messages: dict[str, dict[str, Any]] = {}  # id -> message with its queue, in the order sent
    for name, queued in state["queues"].items():
        for message in queued:
            messages[message["id"]] = {**message, "queue": name}
    for record in records:
        op = record.get("op")
        if op == "item" and record.get("table") in tables:
            attributes = key_names[record["table"]]
            tables[record["table"]][_key_of(record["key"], attributes)] = record["item"]
        elif op == "send":
            messages.pop(record["id"], None)  # sent again under the same id: moved to its DLQ
            messages[record["id"]] = {k: record.get(k) for k in ("id", "body", "group", "dedup", "queue")}
        elif op == "delete":
            for message_id in record.get("ids", []):
                messages.pop(message_id, None)
        elif op == "purge":
            messages = {i: m for i, m in messages.items() if m["queue"] != record.get("queue")}
    queues: dict[str, list[dict[str, Any]]] = {}
    for message in messages.values():
        queue = message.pop("queue")
        queues.setdefault(queue, []).append(message)
    return {
        **state,
        "tables": {name: [i for i in items.values() if i is not None] for name, items in tables.items()},
        "queues": queues,
    }


def restore(state: dict[str, Any], tokens_key_id: str) -> tuple[str, dict[str, int]]:
    """Put a (replayed) snapshot into freshly created resources (``tokens_key_id``: the key this
    start created, which takes the saved key's id and material): the key's id and counts."""
    dynamodb, sqs = _dynamodb(), _sqs()
    restored = {"items": 0, "messages": 0}
    for name, items in state["tables"].items():
        if name not in dynamodb.tables:
            continue
        for item in items:
            dynamodb.put_item(name, item)
        restored["items"] += len(items)
    for name, messages in state["queues"].items():
        if name not in sqs.queues:
            continue
        fifo = sqs.queues[name].fifo_queue
        for message in messages:
            sqs.send_message(
                name,
                message["body"],
                deduplication_id=message["dedup"] if fifo else None,
                group_id=message["group"] if fifo else None,
            )
        restored["messages"] += len(messages)
    # The same key, under its old id: ciphertexts name the key they were made with.
    saved = state["tokens_key"]
    keys = _key_store()
    key = keys.pop(tokens_key_id)
    key.arn = key.arn.replace(key.id, saved["id"])
    key.id = saved["id"]
    key.key_material = saved["material"]
    keys[key.id] = key
    return key.id, restored


def save(directory: Path, state: dict[str, Any]) -> Path:
    """Write the snapshot atomically and durably (the file, then the directory entry)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    partial = path.with_suffix(".json.partial")
    with partial.open("w") as file:
        json.dump(state, file, default=_encode)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
    _sync_directory(directory)
    return path


def _sync_directory(directory: Path) -> None:
    """Make the rename itself survive a power loss (POSIX; Windows cannot open a directory)."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(directory: Path) -> dict[str, Any] | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(), object_hook=_decode)
    return data


def upgrade(state: dict[str, Any], queue_names: dict[str, str]) -> dict[str, Any]:
    """A snapshot of the first format (written only at a clean stop: items as boto3 returns them,
    queues by logical id, messages without ids) in this one's shape."""
    if state.get("version") != 1:
        return state

    def wire(value: Any) -> Any:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, dict):
            return {k: wire(v) for k, v in value.items()}
        if isinstance(value, list):
            return [wire(v) for v in value]
        return value

    queues = {
        queue_names[logical_id]: [{**m, "id": f"v1-{logical_id}-{n}"} for n, m in enumerate(messages)]
        for logical_id, messages in state["queues"].items()
        if logical_id in queue_names
    }
    return {**state, "version": VERSION, "generation": 0, "tables": wire(state["tables"]), "queues": queues}


def forget_journals(directory: Path, keep: int) -> None:
    """Delete the journals a newer snapshot already holds."""
    for path in directory.glob("aws-journal-*.jsonl"):
        if path != journal_path(directory, keep):
            path.unlink(missing_ok=True)
