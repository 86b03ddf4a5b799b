"""The local stack's state directory: the journal of moto's changes, its replay, and the sandbox's
write-through state file (what makes a SIGKILL lose nothing that was answered)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx2
import pytest
from moto import mock_aws

from qbo_link_local import state
from qbo_link_local.journal import Journal, read_journal, recording
from qbo_link_local.resources import ACCOUNT_ID, REGION
from qbo_sandbox.sandbox import Sandbox
from qbo_sandbox.server import SandboxServer
from qbo_sandbox.settings import SandboxSettings
from tests.qbo_helpers import connect

TABLE = "journal-items"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        session = boto3.session.Session(
            aws_access_key_id="x",
            aws_secret_access_key="x",
            region_name=REGION,
        )
        clients = {s: session.client(s) for s in ("dynamodb", "sqs", "kms", "sts")}
        assert clients["sts"].get_caller_identity()["Account"] == ACCOUNT_ID
        clients["dynamodb"].create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = clients["sqs"]
        dlq = sqs.create_queue(QueueName="work-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        clients["work"] = sqs.create_queue(
            QueueName="work.fifo",
            Attributes={
                "FifoQueue": "true",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
            },
        )["QueueUrl"]
        clients["dlq"] = dlq
        clients["key_id"] = clients["kms"].create_key()["KeyMetadata"]["KeyId"]
        yield clients


def _item(pk: str, sk: str, **values: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, **values}


def _comparable(snapshot: dict[str, Any]) -> tuple[Any, Any]:
    tables = {
        name: sorted(json.dumps(i, sort_keys=True) for i in items)
        for name, items in snapshot["tables"].items()
    }
    queues = {name: messages for name, messages in snapshot["queues"].items() if messages}
    return tables, queues


def test_a_journal_replayed_on_its_snapshot_is_what_moto_holds(aws: dict[str, Any], tmp_path: Path) -> None:
    dynamodb, sqs = aws["dynamodb"], aws["sqs"]
    # Given a snapshot of a table with two items and a queue with one message
    dynamodb.put_item(TableName=TABLE, Item=_item("a", "1", n={"N": "1"}))
    dynamodb.put_item(TableName=TABLE, Item=_item("a", "2", blob={"B": b"\x00\xff"}))
    sqs.send_message(
        QueueUrl=aws["work"], MessageBody="before", MessageGroupId="g", MessageDeduplicationId="d0"
    )
    base = state.snapshot(aws["key_id"], 1)
    journal = Journal(tmp_path / "journal.jsonl")
    # When every kind of write happens while the journal records
    with recording(journal):
        dynamodb.put_item(TableName=TABLE, Item=_item("b", "1", m={"M": {"x": {"B": b"\x01"}}}))
        dynamodb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "a"}, "sk": {"S": "1"}},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"S": "2"}})
        with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):  # changes nothing
            dynamodb.put_item(
                TableName=TABLE, Item=_item("b", "1"), ConditionExpression="attribute_not_exists(pk)"
            )
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": _item("c", "1")}},
                {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
            ]
        )
        with pytest.raises(dynamodb.exceptions.TransactionCanceledException):  # rolled back: nothing
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": _item("d", "1")}},
                    {
                        "ConditionCheck": {
                            "TableName": TABLE,
                            "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        dynamodb.batch_write_item(
            RequestItems={TABLE: [{"PutRequest": {"Item": _item("e", str(n))}} for n in range(3)]}
        )
        for n in range(1, 4):
            sqs.send_message(
                QueueUrl=aws["work"],
                MessageBody=f"m{n}",
                MessageGroupId=f"g{n}",
                MessageDeduplicationId=f"d{n}",
            )
        received = sqs.receive_message(QueueUrl=aws["work"], MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in received] == ["before", "m1", "m2", "m3"]
        sqs.delete_message(QueueUrl=aws["work"], ReceiptHandle=received[1]["ReceiptHandle"])  # m1 done
        sqs.change_message_visibility(  # "before" fails: received once, so redriven to the DLQ
            QueueUrl=aws["work"], ReceiptHandle=received[0]["ReceiptHandle"], VisibilityTimeout=0
        )
        sqs.receive_message(QueueUrl=aws["work"], MaxNumberOfMessages=1, VisibilityTimeout=0)
        # m2 and m3 are still in flight (received, neither deleted nor visible)
    journal.close()
    # Then the snapshot plus the journal is exactly what moto holds now
    records = list(read_journal(journal.path))
    live = state.snapshot(aws["key_id"], 2)
    replayed = state.replay(base, records, state.key_names())
    assert _comparable(replayed) == _comparable(live)
    assert [m["body"] for m in live["queues"]["work.fifo"]] == ["m2", "m3"]
    assert [m["body"] for m in live["queues"]["work-dlq.fifo"]] == ["before"]
    assert sorted(i["pk"]["S"] + i["sk"]["S"] for i in live["tables"][TABLE]) == [
        "a1",
        "c1",
        "e0",
        "e1",
        "e2",
    ]
    # and the refused writes wrote no record: put, update, delete, transaction (2), batch (3)
    assert sum(1 for r in records if r["op"] == "item") == 8
    # and a restore into empty resources gives the same back
    dynamodb.delete_table(TableName=TABLE)
    for url in (aws["work"], aws["dlq"]):
        sqs.purge_queue(QueueUrl=url)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    fresh_key = aws["kms"].create_key()["KeyMetadata"]["KeyId"]
    key_id, counts = state.restore(replayed, fresh_key)
    assert key_id == aws["key_id"]
    assert counts == {"items": 5, "messages": 3}
    again = state.snapshot(key_id, 3)
    assert _comparable(again)[0] == _comparable(live)[0]
    assert {q: [m["body"] for m in ms] for q, ms in _comparable(again)[1].items()} == {
        "work.fifo": ["m2", "m3"],
        "work-dlq.fifo": ["before"],
    }


def test_a_purge_is_journaled(aws: dict[str, Any], tmp_path: Path) -> None:
    sqs = aws["sqs"]
    base = state.snapshot(aws["key_id"], 1)
    journal = Journal(tmp_path / "journal.jsonl")
    with recording(journal):
        sqs.send_message(
            QueueUrl=aws["work"], MessageBody="gone", MessageGroupId="g", MessageDeduplicationId="x"
        )
        sqs.purge_queue(QueueUrl=aws["work"])
    journal.close()
    replayed = state.replay(base, read_journal(journal.path), state.key_names())
    assert replayed["queues"] == {}


def test_a_torn_last_line_ends_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"op":"purge","queue":"a"}\n{"op":"purge","queue":"b"}\n{"op":"purge","qu')
    assert [r["queue"] for r in read_journal(path)] == ["a", "b"]
    path.write_bytes(b'{"op":"purge","queue":"a"}\nnot json\n{"op":"purge","queue":"c"}\n')
    assert [r["queue"] for r in read_journal(path)] == ["a"]


def test_one_fsync_covers_every_record_appended_before_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    for n in range(3):
        journal.append({"op": "purge", "queue": str(n)})
    journal.sync()
    journal.sync()  # nothing new: no second fsync
    assert journal.fsyncs == 1
    journal.append({"op": "purge", "queue": "3"})
    journal.sync()
    assert journal.fsyncs == 2
    journal.close()
    assert len(list(read_journal(journal.path))) == 4


def test_the_sandbox_writes_a_change_through_before_it_answers(tmp_path: Path) -> None:
    file = tmp_path / "sandbox.json"
    server = SandboxServer(SandboxSettings(port=0, state_file=str(file))).start()
    try:
        conn = connect(server)
        # A write is in the file as soon as it is answered (no clean stop needed)
        created = conn.post("customer", {"DisplayName": "Written Through"}).json()["Customer"]
        kept = Sandbox(SandboxSettings(state_file=str(file)))
        assert kept.restore()
        company = kept.company(conn.realm)
        assert company is not None
        assert company.get("Customer", created["Id"]) is not None
        # and one whose answer is held back (done, not yet answered) is in it before the answer
        httpx2.post(
            f"{server.url}/_sandbox/faults",
            json={"kind": "slow_response", "method": "POST", "realm": conn.realm, "latency_ms": 30_000},
        ).raise_for_status()

        def held() -> None:
            with (
                httpx2.Client(headers=conn.http.headers, timeout=60) as own,
                contextlib.suppress(httpx2.TransportError),
            ):
                own.post(
                    f"{server.url}{conn.base}/customer", json={"DisplayName": "Answer Held"}
                )  # stopped first

        conn.close()
        slow = threading.Thread(target=held, daemon=True)
        slow.start()

        def in_file() -> bool:
            data = json.loads(file.read_text())
            [realm] = [c for c in data["companies"] if c["realm_id"] == conn.realm]
            return any(c.get("DisplayName") == "Answer Held" for c in realm["entities"]["Customer"].values())

        deadline = time.monotonic() + 25
        while not in_file():
            assert time.monotonic() < deadline, "the held write never reached the state file"
            time.sleep(0.05)
        assert slow.is_alive()  # its answer is still held back
    finally:
        server.stop()


def test_reads_do_not_write_the_state_file(tmp_path: Path) -> None:
    file = tmp_path / "sandbox.json"
    server = SandboxServer(SandboxSettings(port=0, state_file=str(file))).start()
    try:
        conn = connect(server)
        writes = server.sandbox.persists
        for _ in range(3):
            assert conn.query("select * from Customer").status_code == 200
        assert server.sandbox.persists == writes
        conn.close()
    finally:
        server.stop()


def test_a_snapshot_of_the_first_format_is_read() -> None:
    # written by a clean stop before the journal existed: boto3's items, queues by logical id
    first = {
        "version": 1,
        "tables": {"t": [{"pk": {"S": "a"}, "token": {"B": b"\x00\xff"}, "l": {"L": [{"B": b"\x01"}]}}]},
        "queues": {"PushQueue": [{"body": "m", "group": "g", "dedup": "d"}], "Gone": [{"body": "x"}]},
        "tokens_key": {"id": "k", "material": b"key"},
    }
    upgraded = state.upgrade(first, {"PushQueue": "qbo-link-push.fifo"})
    assert upgraded["version"] == state.VERSION
    assert upgraded["generation"] == 0
    wire = {"pk": {"S": "a"}, "token": {"B": "AP8="}, "l": {"L": [{"B": "AQ=="}]}}  # base64, as moto reads it
    assert upgraded["tables"]["t"] == [wire]
    [message] = upgraded["queues"]["qbo-link-push.fifo"]
    assert (message["body"], message["group"], message["dedup"]) == ("m", "g", "d")
    assert set(upgraded["queues"]) == {"qbo-link-push.fifo"}
    assert upgraded["tokens_key"] == {"id": "k", "material": b"key"}  # the key's bytes stay bytes
    assert state.upgrade(upgraded, {}) is upgraded  # already in this format


def test_one_stack_at_a_time_holds_a_state_directory(tmp_path: Path) -> None:
    held = state.lock(tmp_path / "state")
    try:
        with pytest.raises(state.StateDirectoryBusyError, match="another local stack"):
            state.lock(tmp_path / "state")
    finally:
        os.close(held)
    os.close(state.lock(tmp_path / "state"))  # free again once the holder let go (or died)
