"""``QboLink`` in a host app's own CDK app: a stack of the host's, the host's event bus and KMS key
(imported by name and ARN, or created in the host's stack), the host's alarm topic and a name prefix.
Two synths, cdk-nag on each as a host app would add it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import manifest, tables
from shared.kernel import constants
from tests.infra.conftest import SYNTH_TIMEOUT_SECONDS
from tests.infra.synth import HOST_STACK_NAME, Synthesized, synthesize_host_app
from tests.infra.test_stack import _actions, _function_id, _role_id, _statements, _touching

pytestmark = pytest.mark.timeout(SYNTH_TIMEOUT_SECONDS)

HOST_BUS = "acme-events"
HOST_KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PREFIX = "acme-"
TOKEN_CALLERS = [f for f in manifest.FUNCTIONS if f.tokens]
CONNECTIONS_READERS = [f for f in manifest.FUNCTIONS if tables.CONNECTIONS in f.tables and not f.tokens]
LOCKED_IDS = (
    *(t.logical_id for t in tables.TABLES),
    *(q.logical_id for q in manifest.QUEUES),
    *(q.dlq_logical_id for q in manifest.QUEUES),
    *(s.logical_id for s in manifest.SECRETS),
)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The host's bus and key, imported by name and ARN; everything else QBO Link's own."""

    def compose(stack: Any) -> None:
        from aws_cdk import aws_events as events
        from aws_cdk import aws_kms as kms

        from infra import QboLink

        QboLink(
            stack,
            "QboLink",
            event_bus=events.EventBus.from_event_bus_name(stack, "HostBus", HOST_BUS),
            tokens_key=kms.Key.from_key_arn(stack, "HostKey", HOST_KEY_ARN),
        )

    return synthesize_host_app(tmp_path_factory.mktemp("cdk.out"), compose)


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A key and an alarm topic created in the host's stack, a name prefix and an alarm e-mail."""

    def compose(stack: Any) -> None:
        from aws_cdk import aws_kms as kms
        from aws_cdk import aws_sns as sns

        from infra import DeploymentSettings, QboLink

        key = kms.Key(stack, "HostKey", enable_key_rotation=True)
        topic = sns.Topic(stack, "HostAlarms", master_key=key, enforce_ssl=True)
        QboLink(
            stack,
            "QboLink",
            settings=DeploymentSettings(alarm_email="ops@example.com"),
            tokens_key=key,
            alarm_topic=topic,
            name_prefix=PREFIX,
        )

    return synthesize_host_app(tmp_path_factory.mktemp("cdk.out"), compose)


def _violations(s: Synthesized) -> list[Any]:
    acknowledged = [
        rule["id"]
        for resource in s.resources.values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert "AwsSolutions-L1" in acknowledged, "cdk-nag did not run on the host app"
    report = s.validation_report()
    return [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]


def _env(s: Synthesized, spec: manifest.FunctionSpec) -> dict[str, Any]:
    variables: dict[str, Any] = s.resources[_function_id(s, spec)]["Properties"]["Environment"]["Variables"]
    return variables


def _key_statements(s: Synthesized, spec: manifest.FunctionSpec, key: Any) -> list[dict[str, Any]]:
    """The statements of ``spec``'s role on ``key`` (an ARN, or the logical id of a key in the stack)."""
    statements = _statements(s, _role_id(s, spec))
    if isinstance(key, str) and key.startswith("arn:"):
        return [st for st in statements if st.get("Resource") == key]
    return _touching(statements, key)


def _assert_grants_on(s: Synthesized, key: Any) -> None:
    """Direct use (encrypt, decrypt, with the token context) for the functions that call QBO; use
    through DynamoDB for those that only read the connections table; nothing for the others."""
    for spec in manifest.FUNCTIONS:
        statements = _key_statements(s, spec, key)
        direct = [st for st in statements if "kms:ViaService" not in json.dumps(st.get("Condition", {}))]
        if spec.tokens:
            [grant] = direct
            assert sorted(_actions(grant)) == ["kms:Decrypt", "kms:Encrypt"]
            purpose = {"kms:EncryptionContext:purpose": "qbo-oauth-token"}
            assert grant["Condition"] == {"StringEquals": purpose}
        else:
            assert not direct, spec.name
        assert bool([st for st in statements if st not in direct]) == (tables.CONNECTIONS in spec.tables)


# --- the host's bus and key, imported --------------------------------------------------------------


def test_an_imported_bus_and_key_are_used_and_no_second_is_created(imported: Synthesized) -> None:
    assert not imported.of_type("AWS::Events::EventBus")
    assert not imported.of_type("AWS::KMS::Alias")
    [key_id] = imported.of_type("AWS::KMS::Key")  # the alarm topic's own, nothing for tokens
    [topic] = imported.of_type("AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    for table in tables.TABLES:
        sse = imported.resources[table.logical_id]["Properties"]["SSESpecification"]
        assert sse.get("KMSMasterKeyId") == (HOST_KEY_ARN if table.customer_managed_key else None)
    rules = imported.of_type("AWS::Events::Rule").values()
    assert len(rules) == 2  # onboarding's, and the events' delivery (dormant without an endpoint)
    for rule in rules:
        assert rule["Properties"]["EventBusName"] == HOST_BUS
    for spec in manifest.FUNCTIONS:
        env = _env(imported, spec)
        assert env.get(constants.EVENT_BUS_ENV) == (HOST_BUS if spec.puts_events else None), spec.name
        assert env.get(constants.KMS_KEY_ENV) == (HOST_KEY_ARN if spec.tokens else None), spec.name
        put_events = [
            st for st in _statements(imported, _role_id(imported, spec)) if "events:PutEvents" in _actions(st)
        ]
        assert bool(put_events) == spec.puts_events, spec.name
        assert all(f":event-bus/{HOST_BUS}" in json.dumps(st["Resource"]) for st in put_events)


def test_grants_on_the_imported_key_are_the_projects_own(imported: Synthesized) -> None:
    _assert_grants_on(imported, HOST_KEY_ARN)


def test_the_host_stack_keeps_the_manifests_logical_ids_and_makes_no_outputs(imported: Synthesized) -> None:
    assert imported.stack_name == HOST_STACK_NAME
    for logical_id in LOCKED_IDS:
        assert imported.resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
    assert len(imported.of_type("AWS::Lambda::Function")) == len(manifest.FUNCTIONS)
    assert not imported.template.get("Outputs"), "CfnOutputs are the host stack's business"


def test_cdk_nag_finds_nothing_in_the_host_app(imported: Synthesized) -> None:
    assert _violations(imported) == []


# --- the host's key and alarm topic, created in its stack, and a name prefix ----------------------


def test_a_host_key_created_in_the_stack_is_used_and_granted(prefixed: Synthesized) -> None:
    [key_id] = prefixed.of_type("AWS::KMS::Key")
    assert key_id.startswith("HostKey")
    assert not prefixed.of_type("AWS::KMS::Alias")
    connections = prefixed.resources[tables.CONNECTIONS.logical_id]["Properties"]["SSESpecification"]
    assert connections["KMSMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    for spec in TOKEN_CALLERS:
        assert _env(prefixed, spec)[constants.KMS_KEY_ENV] == {"Fn::GetAtt": [key_id, "Arn"]}
    _assert_grants_on(prefixed, key_id)


def test_alarms_notify_the_host_topic_and_no_other_is_created(prefixed: Synthesized) -> None:
    [topic_id] = prefixed.of_type("AWS::SNS::Topic")
    assert topic_id.startswith("HostAlarms")
    alarms = [a["Properties"] for a in prefixed.of_type("AWS::CloudWatch::Alarm").values()]
    assert alarms
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    [subscription] = prefixed.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["TopicArn"] == {"Ref": topic_id}
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"


def test_the_name_prefix_names_the_bus_and_the_dashboard(prefixed: Synthesized) -> None:
    [bus] = prefixed.of_type("AWS::Events::EventBus").values()
    assert bus["Properties"]["Name"] == f"{PREFIX}{manifest.EVENT_BUS_DEFAULT_NAME}"
    assert prefixed.resources[manifest.EVENT_BUS_LOGICAL_ID] == bus
    [dashboard] = prefixed.of_type("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"{PREFIX}{HOST_STACK_NAME}-overview"
    for spec in manifest.FUNCTIONS:
        if spec.puts_events:
            assert _env(prefixed, spec)[constants.EVENT_BUS_ENV] == {"Ref": manifest.EVENT_BUS_LOGICAL_ID}


def test_cdk_nag_finds_nothing_with_the_hosts_own_resources(prefixed: Synthesized) -> None:
    assert _violations(prefixed) == []


# --- without a synth --------------------------------------------------------------------------------


def test_names_put_the_prefix_before_each_name_and_refuse_other_characters() -> None:
    from infra import ResourceNames

    names = ResourceNames("acme_2-")
    assert names.event_bus == "acme_2-qbo-link"
    assert names.tokens_key_alias == "alias/acme_2-qbo-link-tokens"
    assert names.dashboard("Billing") == "acme_2-Billing-overview"
    assert ResourceNames().tokens_key_alias == manifest.TOKENS_KEY_ALIAS
    for wrong in ("acme qbo", "acme/", "a" * 65, "é"):
        with pytest.raises(ValueError, match="name_prefix"):
            ResourceNames(wrong)


def _empty_asset(tmp_path: Path) -> Any:
    from infra import CodeAsset

    for name in ("code", "layer"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "placeholder.txt").write_text(name)
    return CodeAsset(tmp_path / "code", tmp_path / "layer", "python3.13", "arm64")


def test_one_qbo_link_per_stack_and_a_refused_one_adds_nothing(tmp_path: Path) -> None:
    from aws_cdk import App, Stack

    from infra import QboLink

    asset = _empty_asset(tmp_path)
    app = App(outdir=str(tmp_path / "cdk.out"))
    first, second = Stack(app, "First"), Stack(app, "Second")
    QboLink(first, "QboLink", asset=asset)
    QboLink(second, "QboLink", asset=asset)  # another stack: its own logical ids

    with pytest.raises(ValueError, match="one per stack"):
        QboLink(first, "Again", asset=asset)
    with pytest.raises(ValueError, match="name_prefix"):
        QboLink(second, "Prefixed", asset=asset, name_prefix="not a name")
    assert first.node.try_find_child("Again") is None
    assert second.node.try_find_child("Prefixed") is None
