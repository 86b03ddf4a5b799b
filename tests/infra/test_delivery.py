"""The stack with an endpoint for the events (``qbo-link:eventsUrl``): the rule, the queue and its
DLQ, the DLQ's alarm and the deliverer with access to its secret and its queue, nothing else.  The
stack without one (the rule dormant, the trigger paused) is checked in test_stack.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import manifest, tables
from shared.delivery import policy
from shared.kernel import constants
from tests.infra.conftest import SYNTH_TIMEOUT_SECONDS
from tests.infra.synth import Synthesized, synthesize
from tests.infra.test_stack import (
    CFN_LINT_IGNORED,
    _actions,
    _delivery_rule_id,
    _function_id,
    _references,
    _role_id,
    _statements,
)

pytestmark = pytest.mark.timeout(SYNTH_TIMEOUT_SECONDS)

URL = "https://app.example.com/qbo-link/events"
QUEUE = manifest.DELIVERY_QUEUE


@pytest.fixture(scope="module")
def delivering(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"), {"qbo-link:eventsUrl": URL})


def test_every_event_of_the_bus_goes_to_the_delivery_queue(delivering: Synthesized) -> None:
    rule = delivering.resources[_delivery_rule_id(delivering)]["Properties"]
    assert rule["State"] == "ENABLED"
    assert rule["EventBusName"] == {"Ref": manifest.EVENT_BUS_LOGICAL_ID}
    assert rule["EventPattern"] == {"source": [constants.EVENT_SOURCE]}  # every detail-type
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [QUEUE.logical_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    # only this rule may send to the queue
    [policy_doc] = [
        p["Properties"]["PolicyDocument"]
        for p in delivering.of_type("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": QUEUE.logical_id}]
    ]
    [allow] = [st for st in policy_doc["Statement"] if st["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert "sqs:SendMessage" in _actions(allow)
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [_delivery_rule_id(delivering), "Arn"]}}
    }


def test_the_queue_is_standard_with_a_dlq_after_the_policys_attempts(delivering: Synthesized) -> None:
    queue = delivering.resources[QUEUE.logical_id]
    dlq = delivering.resources[QUEUE.dlq_logical_id]
    for resource in (queue, dlq):
        assert resource["Type"] == "AWS::SQS::Queue"
        assert "FifoQueue" not in resource["Properties"]
        assert resource["Properties"]["SqsManagedSseEnabled"] is True
        assert resource["DeletionPolicy"] == "Retain"
    assert queue["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [QUEUE.dlq_logical_id, "Arn"]},
        "maxReceiveCount": policy.MAX_ATTEMPTS,
    }
    # a message is kept long after its last retry, and the deliverer's batch fits its visibility
    assert queue["Properties"]["MessageRetentionPeriod"] > 2 * 12 * 3600
    assert QUEUE.visibility_timeout_seconds >= 6 * manifest.DELIVER.timeout_seconds


def test_the_dlq_is_alarmed(delivering: Synthesized) -> None:
    [alarm] = [
        a["Properties"]
        for a in delivering.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [QUEUE.dlq_logical_id, "QueueName"]}
    ]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    [topic] = delivering.of_type("AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic}]
    outputs = delivering.template["Outputs"]
    assert outputs[f"{QUEUE.dlq_logical_id}Url"]["Value"] == {"Ref": QUEUE.dlq_logical_id}
    assert manifest.EVENTS_SECRET.logical_id in _references(
        outputs[f"{manifest.EVENTS_SECRET.logical_id}Name"]["Value"]
    )


def test_the_deliverer_consumes_the_queue_with_its_endpoint(delivering: Synthesized) -> None:
    function_id = _function_id(delivering, manifest.DELIVER)
    [mapping] = [
        m["Properties"]
        for m in delivering.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert mapping["Enabled"] is True
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [QUEUE.logical_id, "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}  # at most 5 requests at once to the host
    env = delivering.resources[function_id]["Properties"]["Environment"]["Variables"]
    assert env[constants.EVENTS_URL_ENV] == URL
    assert env[constants.EVENTS_SECRET_ARN_ENV] == {"Ref": manifest.EVENTS_SECRET.logical_id}
    assert env[constants.DELIVERY_QUEUE_URL_ENV] == {"Ref": QUEUE.logical_id}
    assert env[constants.DELIVERY_DLQ_URL_ENV] == {"Ref": QUEUE.dlq_logical_id}
    for other in manifest.FUNCTIONS:  # no other function knows the endpoint or the key
        if other is not manifest.DELIVER:
            variables = delivering.resources[_function_id(delivering, other)]["Properties"]["Environment"]
            assert constants.EVENTS_URL_ENV not in variables["Variables"], other.name
            assert constants.EVENTS_SECRET_ARN_ENV not in variables["Variables"], other.name


def _resource_ids(statement: dict[str, Any]) -> set[str]:
    return _references(statement["Resource"]) if statement["Resource"] != "*" else {"*"}


def test_the_deliverer_reaches_its_secret_and_its_queue_and_nothing_else(delivering: Synthesized) -> None:
    statements = _statements(delivering, _role_id(delivering, manifest.DELIVER))
    log_group = delivering.resources[_function_id(delivering, manifest.DELIVER)]["Properties"][
        "LoggingConfig"
    ]
    reached: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for resource in _resource_ids(statement):
            reached.setdefault(resource, set()).update(_actions(statement))
    assert reached == {
        log_group["LogGroup"]["Ref"]: {"logs:CreateLogStream", "logs:PutLogEvents"},
        "*": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
        manifest.EVENTS_SECRET.logical_id: {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"},
        QUEUE.logical_id: {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",  # its own backoff
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        },
        QUEUE.dlq_logical_id: {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
    }
    assert not {t.logical_id for t in tables.TABLES} & set(reached)
    assert manifest.TOKENS_KEY_LOGICAL_ID not in reached


def test_no_other_role_can_read_the_signing_key(delivering: Synthesized) -> None:
    readers = {
        role_id
        for role_id in delivering.of_type("AWS::IAM::Role")
        for statement in _statements(delivering, role_id)
        if manifest.EVENTS_SECRET.logical_id in _references(statement.get("Resource"))
    }
    assert readers == {_role_id(delivering, manifest.DELIVER)}


def test_nag_and_cfn_lint_stay_clean_with_delivery_on(delivering: Synthesized) -> None:
    from cfnlint.api import ManualArgs, lint_file

    report = delivering.validation_report()
    assert [v for p in report["pluginReports"] for v in p.get("violations", [])] == []
    assert json.loads(delivering.template_file.read_text()) == delivering.template
    matches = lint_file(delivering.template_file, ManualArgs(ignore_checks=list(CFN_LINT_IGNORED)))
    assert [str(m) for m in matches] == []
