"""Keeping the AWS side of the local stack across restarts (``state_dir``).

moto keeps everything in memory.  With a state directory, the stack writes ``aws.json`` when it
stops and reads it when it starts: every table's items, the messages waiting in the queues (in
order, with their group and de-duplication ids), and the tokens' KMS key.  The key matters: the
tokens in the connections table are encrypted with it, and moto has no way to import a key under a
given id, so its id and material are put back into moto's own key store.  The sandbox keeps its
companies and grants in ``sandbox.json`` in the same directory (its own state file), so both sides
of a connection survive together.

The file holds the local KMS key next to the ciphertexts it protects: it is a developer's
convenience, as secret as the tokens in it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any, Final

from qbo_link_local.resources import ACCOUNT_ID, REGION, LocalResources

STATE_FILE: Final = "aws.json"
VERSION: Final = 1
_BYTES: Final = "$b64"


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {_BYTES: base64.b64encode(bytes(value)).decode()}
    raise TypeError(f"cannot keep {type(value).__name__}")


def _decode(value: dict[str, Any]) -> Any:
    if set(value) == {_BYTES}:
        return base64.b64decode(value[_BYTES])
    return value


def _table_items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += page.get("Items", [])
    return items


def _key_store() -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[ACCOUNT_ID][REGION].keys


def _queue_messages(queue_name: str) -> list[dict[str, Any]]:
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT_ID][REGION].queues[queue_name]
    return [
        {
            "body": m.body,
            "group": m.group_id,
            "dedup": m.deduplication_id,
        }
        for m in list(queue._messages)
    ]


def snapshot(clients: dict[str, Any], resources: LocalResources) -> dict[str, Any]:
    """Everything the next start needs (call with the pollers and handlers stopped)."""
    key = _key_store()[resources.tokens_key_id]
    return {
        "version": VERSION,
        "tables": {name: _table_items(clients["dynamodb"], name) for name in resources.names.tables.values()},
        "queues": {q.logical_id: _queue_messages(q.url.rsplit("/", 1)[1]) for q in resources.queues.values()},
        "tokens_key": {"id": key.id, "material": bytes(key.key_material)},
    }


def restore(clients: dict[str, Any], resources: LocalResources, state: dict[str, Any]) -> dict[str, int]:
    """Put a snapshot back into freshly created resources; counts of what came back."""
    if state.get("version") != VERSION:
        raise ValueError(f"state version {state.get('version')!r} is not {VERSION}")
    dynamodb, sqs = clients["dynamodb"], clients["sqs"]
    restored = {"items": 0, "messages": 0}
    for table, items in state["tables"].items():
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending: dict[str, Any] = {table: requests}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        restored["items"] += len(items)
    for logical_id, messages in state["queues"].items():
        queue = resources.queues.get(logical_id)
        if queue is None:
            continue
        for message in messages:
            request: dict[str, Any] = {"QueueUrl": queue.url, "MessageBody": message["body"]}
            if queue.fifo:
                request["MessageGroupId"] = message["group"]
                request["MessageDeduplicationId"] = message["dedup"]
            sqs.send_message(**request)
        restored["messages"] += len(messages)
    # The same key, under its old id: ciphertexts name the key they were made with.
    saved = state["tokens_key"]
    keys = _key_store()
    key = keys.pop(resources.tokens_key_id)
    key.arn = key.arn.replace(key.id, saved["id"])
    key.id = saved["id"]
    key.key_material = saved["material"]
    keys[key.id] = key
    resources.tokens_key_id = key.id
    return restored


def save(directory: Path, state: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(state, default=_encode))
    os.replace(partial, path)
    return path


def load(directory: Path) -> dict[str, Any] | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(), object_hook=_decode)
    return data
