"""The synthesized stack, asserted against the manifest (infra/manifest.py, infra/tables.py).

Every expectation is derived from the manifest, so a function, table, queue or secret added there is
checked here without a new test; the few literals are properties the issue asks for by name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra import manifest, tables
from infra.manifest import Auth, FunctionSpec
from shared.kernel import constants
from shared.kernel.events import CONNECTION_CONNECTED
from tests.infra.conftest import SYNTH_TIMEOUT_SECONDS
from tests.infra.synth import Synthesized

pytestmark = pytest.mark.timeout(SYNTH_TIMEOUT_SECONDS)

ROOT = Path(__file__).resolve().parents[2]
# cfn-lint findings we accept, each for a reason (docs/deploy.md, "Checks on every synth").
CFN_LINT_IGNORED = ("W3005",)  # CDK's explicit DependsOn on a role it also references by GetAtt


# --- helpers -------------------------------------------------------------------------------------


def _function_id(s: Synthesized, spec: FunctionSpec) -> str:
    """The logical id of ``spec``'s function (construct ids end with the manifest's logical id)."""
    found = [
        k
        for k, r in s.of_type("AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == spec.handler
    ]
    assert len(found) == 1, f"{spec.name}: {found}"
    return found[0]


def _role_id(s: Synthesized, spec: FunctionSpec) -> str:
    role = s.resources[_function_id(s, spec)]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])


def _statements(s: Synthesized, role_id: str) -> list[dict[str, Any]]:
    """Every statement of every policy attached to ``role_id`` (inline, managed policies refused)."""
    role = s.resources[role_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), f"{role_id} has managed policies"
    statements = [st for p in role.get("Policies", []) for st in p["PolicyDocument"]["Statement"]]
    for policy in s.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _references(value: Any) -> set[str]:
    """Logical ids a CloudFormation value refers to (Ref and GetAtt, however nested)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(str(value["Ref"]))
        if "Fn::GetAtt" in value:
            found.add(str(value["Fn::GetAtt"][0]))
        for inner in value.values():
            found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def _touching(statements: list[dict[str, Any]], logical_id: str) -> list[dict[str, Any]]:
    return [st for st in statements if logical_id in _references(st.get("Resource"))]


# --- stateful resources --------------------------------------------------------------------------


STATEFUL_IDS = (
    *(t.logical_id for t in tables.TABLES),
    manifest.TOKENS_KEY_LOGICAL_ID,
    *(q.logical_id for q in manifest.QUEUES),
    *(q.dlq_logical_id for q in manifest.QUEUES),
    *(s.logical_id for s in manifest.SECRETS),
)


@pytest.mark.parametrize("logical_id", STATEFUL_IDS)
def test_stateful_resources_keep_the_manifests_logical_ids_and_are_retained(
    synthesized: Synthesized, logical_id: str
) -> None:
    resource = synthesized.resources.get(logical_id)
    assert resource is not None, f"{logical_id} is not a logical id of the template: it would be replaced"
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


def test_the_event_bus_keeps_its_logical_id_and_name(synthesized: Synthesized) -> None:
    bus = synthesized.resources[manifest.EVENT_BUS_LOGICAL_ID]
    assert bus["Type"] == "AWS::Events::EventBus"
    assert bus["Properties"]["Name"] == manifest.EVENT_BUS_DEFAULT_NAME


@pytest.mark.parametrize("spec", tables.TABLES, ids=lambda t: t.logical_id)
def test_tables_follow_their_specs(synthesized: Synthesized, spec: tables.TableSpec) -> None:
    props = synthesized.resources[spec.logical_id]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    key_schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        key_schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    assert props["KeySchema"] == key_schema
    indexes = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {i.name for i in spec.indexes}
    for index in spec.indexes:
        schema = [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
        if index.sort_key:
            schema.append({"AttributeName": index.sort_key, "KeyType": "RANGE"})
        assert indexes[index.name]["KeySchema"] == schema
        assert indexes[index.name]["Projection"] == {"ProjectionType": "ALL"}
    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props
    sse = props["SSESpecification"]
    assert sse["SSEEnabled"] is True
    if spec.customer_managed_key:
        assert sse["SSEType"] == "KMS"
        assert sse["KMSMasterKeyId"] == {"Fn::GetAtt": [manifest.TOKENS_KEY_LOGICAL_ID, "Arn"]}
    else:
        assert "KMSMasterKeyId" not in sse


def test_the_tokens_key_rotates_and_has_the_manifests_alias(synthesized: Synthesized) -> None:
    key = synthesized.resources[manifest.TOKENS_KEY_LOGICAL_ID]["Properties"]
    assert key["EnableKeyRotation"] is True
    aliases = [
        a["Properties"]
        for a in synthesized.of_type("AWS::KMS::Alias").values()
        if a["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [manifest.TOKENS_KEY_LOGICAL_ID, "Arn"]}
    ]
    assert [a["AliasName"] for a in aliases] == [manifest.TOKENS_KEY_ALIAS]


@pytest.mark.parametrize("spec", manifest.QUEUES, ids=lambda q: q.logical_id)
def test_fifo_queues_have_a_dead_letter_queue_and_the_manifests_settings(
    synthesized: Synthesized, spec: manifest.QueueSpec
) -> None:
    queue = synthesized.resources[spec.logical_id]["Properties"]
    dlq = synthesized.resources[spec.dlq_logical_id]["Properties"]
    for props in (queue, dlq):
        if spec.fifo:
            assert props["FifoQueue"] is True
            assert props["ContentBasedDeduplication"] is False
        else:  # the events' delivery queue: standard, its DLQ too
            assert "FifoQueue" not in props
        assert props["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] == spec.visibility_timeout_seconds
    assert queue["MessageRetentionPeriod"] == spec.retention_days * 86400
    assert dlq["MessageRetentionPeriod"] == spec.dlq_retention_days * 86400
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [spec.dlq_logical_id, "Arn"]},
        "maxReceiveCount": spec.max_receive_count,
    }
    consumers = [f for f in manifest.FUNCTIONS if f.queue_source and f.queue_source.queue == spec]
    for consumer in consumers:  # AWS: visibility at least 6 x the consumer's timeout
        assert spec.visibility_timeout_seconds >= 6 * consumer.timeout_seconds


def test_every_queue_refuses_plain_http(synthesized: Synthesized) -> None:
    queues = set(synthesized.of_type("AWS::SQS::Queue"))
    protected: set[str] = set()
    for policy in synthesized.of_type("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                protected |= _references(policy["Properties"]["Queues"])
    assert queues <= protected, f"without a TLS-only policy: {sorted(queues - protected)}"


@pytest.mark.parametrize("spec", manifest.SECRETS, ids=lambda s: s.logical_id)
def test_secrets_are_created_with_placeholders_never_values(
    synthesized: Synthesized, spec: manifest.SecretSpec
) -> None:
    props = synthesized.resources[spec.logical_id]["Properties"]
    if spec.generated_field:
        generated = props["GenerateSecretString"]
        assert generated["GenerateStringKey"] == spec.generated_field
        template = json.loads(generated["SecretStringTemplate"])
        assert template == {f: "" for f in spec.fields if f != spec.generated_field}
        assert "SecretString" not in props
    else:
        assert json.loads(props["SecretString"]) == dict.fromkeys(spec.fields, "")


# --- functions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", manifest.FUNCTIONS, ids=lambda f: f.name)
def test_functions_share_the_lambda_defaults_and_size_from_the_manifest(
    synthesized: Synthesized, spec: FunctionSpec
) -> None:
    from infra import bundle

    props = synthesized.resources[_function_id(synthesized, spec)]["Properties"]
    assert props["Runtime"] == bundle.LAMBDA_RUNTIME_NAME
    assert props["Architectures"] == [bundle.ARCHITECTURE]
    assert props["MemorySize"] == spec.memory_mb
    assert props["Timeout"] == spec.timeout_seconds
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    log_group = synthesized.resources[props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
    assert log_group["RetentionInDays"] == 30
    assert len(props["Layers"]) == 1
    if spec.reserved_concurrency is None:
        assert "ReservedConcurrentExecutions" not in props
    else:
        assert props["ReservedConcurrentExecutions"] == spec.reserved_concurrency


def test_every_function_runs_one_code_asset_over_one_dependency_layer(synthesized: Synthesized) -> None:
    functions = synthesized.of_type("AWS::Lambda::Function").values()
    assert len({json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions}) == 1
    assert len({json.dumps(f["Properties"]["Layers"], sort_keys=True) for f in functions}) == 1
    layer = next(iter(synthesized.of_type("AWS::Lambda::LayerVersion").values()))["Properties"]
    from infra import bundle

    assert layer["CompatibleArchitectures"] == [bundle.ARCHITECTURE]
    assert layer["CompatibleRuntimes"] == [bundle.LAMBDA_RUNTIME_NAME]


@pytest.mark.parametrize("spec", manifest.FUNCTIONS, ids=lambda f: f.name)
def test_function_environment_is_the_manifests_plus_plain_settings(
    synthesized: Synthesized, spec: FunctionSpec
) -> None:
    env = synthesized.resources[_function_id(synthesized, spec)]["Properties"]["Environment"]["Variables"]
    names = manifest.Names(
        queue_urls={i: "q" for q in manifest.QUEUES for i in (q.logical_id, q.dlq_logical_id)},
        secret_arns={s.logical_id: "s" for s in manifest.SECRETS},
    )
    expected = set(manifest.function_environment(spec, names))
    plain = {
        "QBO_LINK_INTUIT_ENVIRONMENT",
        "QBO_LINK_REDIRECT_URI",
        "QBO_LINK_RETURN_URL_ALLOWLIST",
        "QBO_LINK_APP_ID",
    }
    if not spec.reads_settings:  # the console's files: no QBO Link setting at all
        plain = set()
    assert {k for k in env if not k.startswith("POWERTOOLS_")} == expected | plain
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    if not spec.reads_settings:
        return
    assert env["QBO_LINK_INTUIT_ENVIRONMENT"] == "sandbox"
    # names by reference to the stack's own resources, never a value typed into the template
    for table in spec.tables:
        assert env[table.env_var] == {"Ref": table.logical_id}
    for queue in spec.sends_to:
        assert env[queue.env_var] == {"Ref": queue.logical_id}
    for secret in spec.secrets:
        assert env[secret.env_var] == {"Ref": secret.logical_id}
    if spec.tokens:
        assert env[constants.KMS_KEY_ENV] == {"Fn::GetAtt": [manifest.TOKENS_KEY_LOGICAL_ID, "Arn"]}
    assert env["QBO_LINK_REDIRECT_URI"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [_api_id(synthesized), "ApiEndpoint"]}, "/oauth/callback"]]
    }


def test_settings_parse_from_a_deployed_functions_environment(synthesized: Synthesized) -> None:
    """The plain settings the stack sets are the ones ``shared.kernel.settings`` reads (no typo can hide)."""
    import inspect

    from shared.kernel import settings

    source = inspect.getsource(settings.settings_from_env)
    env = synthesized.resources[_function_id(synthesized, manifest.API)]["Properties"]["Environment"]
    for name in env["Variables"]:
        if name.startswith("QBO_LINK_"):
            assert f'"{name}"' in source, f"shared/kernel/settings.py does not read {name}"


# --- least privilege -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", manifest.FUNCTIONS, ids=lambda f: f.name)
def test_only_functions_that_call_qbo_can_decrypt_tokens(
    synthesized: Synthesized, spec: FunctionSpec
) -> None:
    statements = _touching(
        _statements(synthesized, _role_id(synthesized, spec)), manifest.TOKENS_KEY_LOGICAL_ID
    )
    direct = [st for st in statements if "kms:ViaService" not in json.dumps(st.get("Condition", {}))]
    if spec.tokens:
        assert direct, f"{spec.name} calls QBO but cannot decrypt tokens"
        for statement in direct:
            assert sorted(_actions(statement)) == ["kms:Decrypt", "kms:Encrypt"]
            assert statement["Condition"] == {
                "StringEquals": {"kms:EncryptionContext:purpose": "qbo-oauth-token"}
            }
    else:
        assert not direct, f"{spec.name} does not call QBO yet may use the tokens key directly"
    # the rest is DynamoDB's own use of the key for the connections table, and only for its readers
    via_dynamodb = [st for st in statements if st not in direct]
    reads_connections = tables.CONNECTIONS in spec.tables
    assert bool(via_dynamodb) == reads_connections


def test_the_webhook_function_has_no_way_to_tokens_nor_to_the_intuit_app_secret(
    synthesized: Synthesized,
) -> None:
    statements = _statements(synthesized, _role_id(synthesized, manifest.WEBHOOKS))
    assert not _touching(statements, manifest.TOKENS_KEY_LOGICAL_ID)
    assert not _touching(statements, tables.CONNECTIONS.logical_id)
    assert not _touching(statements, manifest.INTUIT_APP_SECRET.logical_id)
    assert not [st for st in statements if any(a.startswith("kms:") for a in _actions(st))]
    assert _touching(statements, manifest.WEBHOOK_SECRET.logical_id)  # it does read its own secret


@pytest.mark.parametrize("spec", manifest.FUNCTIONS, ids=lambda f: f.name)
def test_each_role_reaches_exactly_what_its_spec_declares(
    synthesized: Synthesized, spec: FunctionSpec
) -> None:
    statements = _statements(synthesized, _role_id(synthesized, spec))
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "*" not in _actions(statement)
        if statement.get("Resource") == "*":
            assert set(_actions(statement)) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}

    def reached(logical_ids: list[str]) -> set[str]:
        return {i for i in logical_ids if _touching(statements, i)}

    table_ids = [t.logical_id for t in tables.TABLES]
    assert reached(table_ids) == {t.logical_id for t in spec.tables}
    for table in spec.tables:
        actions = {
            a
            for st in _touching(statements, table.logical_id)
            for a in _actions(st)
            if a.startswith("dynamodb")
        }
        assert ("dynamodb:PutItem" in actions) == (table in spec.writes), table.logical_id
    assert reached([s.logical_id for s in manifest.SECRETS]) == {s.logical_id for s in spec.secrets}
    sends = {
        q.logical_id
        for q in manifest.QUEUES
        if any("sqs:SendMessage" in _actions(st) for st in _touching(statements, q.logical_id))
    }
    assert sends == {q.logical_id for q in spec.sends_to}
    assert bool(_touching(statements, manifest.EVENT_BUS_LOGICAL_ID)) == spec.puts_events


def test_the_console_function_may_write_its_logs_and_nothing_else(synthesized: Synthesized) -> None:
    statements = _statements(synthesized, _role_id(synthesized, manifest.CONSOLE))
    actions = {a for st in statements for a in _actions(st)}

    assert actions, "the console's role has no statement at all (not even its logs)"
    assert {a.split(":")[0] for a in actions} <= {"logs", "xray"}, sorted(actions)
    logical_ids = [t.logical_id for t in tables.TABLES] + [s.logical_id for s in manifest.SECRETS]
    logical_ids += [q.logical_id for q in manifest.QUEUES] + [manifest.TOKENS_KEY_LOGICAL_ID]
    assert not [i for i in logical_ids if _touching(statements, i)]


def test_the_console_function_gets_its_frame_ancestors_and_no_other_setting(synthesized: Synthesized) -> None:
    props = synthesized.resources[_function_id(synthesized, manifest.CONSOLE)]["Properties"]
    env = props["Environment"]["Variables"]

    assert env[constants.CONSOLE_FRAME_ANCESTORS_ENV] == ""  # 'self' only by default
    assert {k for k in env if not k.startswith("POWERTOOLS_")} == {constants.CONSOLE_FRAME_ANCESTORS_ENV}
    assert props["Handler"] == "functions.console.handler.lambda_handler"
    assert props["MemorySize"] == manifest.CONSOLE.memory_mb


def test_the_console_routes_reach_their_functions_without_an_authorizer(synthesized: Synthesized) -> None:
    resources = {
        r["Properties"]["RouteKey"]: r for r in synthesized.of_type("AWS::ApiGatewayV2::Route").values()
    }
    routes = {key: r["Properties"] for key, r in resources.items()}
    for key in ("GET /console", "GET /console/{proxy+}", "ANY /console/v1/tenants/{proxy+}"):
        assert routes[key]["AuthorizationType"] == "NONE", key
        acknowledged = resources[key]["Metadata"]["cdk_nag"]["rules_to_suppress"]
        assert [a["id"] for a in acknowledged] == ["AwsSolutions-APIG4"], key
    integrations = synthesized.of_type("AWS::ApiGatewayV2::Integration")

    def target(key: str) -> Any:
        return integrations[routes[key]["Target"]["Fn::Join"][1][1]["Ref"]]["Properties"]["IntegrationUri"]

    assert target("GET /console") == {"Fn::GetAtt": [_function_id(synthesized, manifest.CONSOLE), "Arn"]}
    assert target("ANY /console/v1/tenants/{proxy+}") == {
        "Fn::GetAtt": [_function_id(synthesized, manifest.API), "Arn"]
    }


# --- triggers ------------------------------------------------------------------------------------


def test_queue_consumers_report_partial_batch_failures(synthesized: Synthesized) -> None:
    mappings = synthesized.of_type("AWS::Lambda::EventSourceMapping")
    consumers = [f for f in manifest.FUNCTIONS if f.queue_source]
    assert len(mappings) == len(consumers)
    for mapping in mappings.values():
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for spec in consumers:
        assert spec.queue_source is not None
        [mapping] = [
            m["Properties"]
            for m in mappings.values()
            if m["Properties"]["FunctionName"] == {"Ref": _function_id(synthesized, spec)}
        ]
        assert mapping["EventSourceArn"] == {"Fn::GetAtt": [spec.queue_source.queue.logical_id, "Arn"]}
        assert mapping["BatchSize"] == spec.queue_source.batch_size


def test_schedules_invoke_their_functions_through_one_scheduler_role(synthesized: Synthesized) -> None:
    schedules = list(synthesized.of_type("AWS::Scheduler::Schedule").values())
    expected = [(f, s) for f in manifest.FUNCTIONS for s in f.schedules]
    assert len(schedules) == len(expected)
    roles = set()
    for spec, schedule in expected:
        [props] = [
            s["Properties"] for s in schedules if s["Properties"]["Description"] == schedule.description
        ]
        assert props["ScheduleExpression"] == schedule.expression
        target = props["Target"]
        assert target["Arn"] == {"Fn::GetAtt": [_function_id(synthesized, spec), "Arn"]}
        assert json.loads(target["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}}
        roles.add(target["RoleArn"]["Fn::GetAtt"][0])
    [role_id] = roles
    trust = synthesized.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [st["Principal"] for st in trust] == [{"Service": "scheduler.amazonaws.com"}]
    assert "aws:SourceAccount" in json.dumps(trust)
    invoked = {
        ref
        for st in _statements(synthesized, role_id)
        if "lambda:InvokeFunction" in _actions(st)
        for ref in _references(st["Resource"])
    }
    assert invoked == {_function_id(synthesized, spec) for spec, _ in expected}


def _delivery_rule_id(s: Synthesized) -> str:
    """The rule feeding the events' delivery queue (docs/events.md)."""
    [rule_id] = [
        k
        for k, r in s.of_type("AWS::Events::Rule").items()
        if _references(r["Properties"]["Targets"]) & {manifest.DELIVERY_QUEUE.logical_id}
    ]
    return rule_id


def test_connection_connected_events_reach_onboarding(synthesized: Synthesized) -> None:
    rules = synthesized.of_type("AWS::Events::Rule")
    rules.pop(_delivery_rule_id(synthesized))  # its target is a queue, not a function
    expected = [(f, r) for f in manifest.FUNCTIONS for r in f.event_rules]
    assert len(rules) == len(expected)
    for spec, rule in expected:
        [props] = [
            r["Properties"]
            for r in rules.values()
            if r["Properties"]["EventPattern"].get("detail-type") == list(rule.detail_types)
        ]
        assert props["EventBusName"] == {"Ref": manifest.EVENT_BUS_LOGICAL_ID}
        assert props["EventPattern"]["source"] == [constants.EVENT_SOURCE]
        [target] = props["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [_function_id(synthesized, spec), "Arn"]}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}}
    assert (manifest.ONBOARD, manifest.ONBOARD.event_rules[0]) in expected
    assert manifest.ONBOARD.event_rules[0].detail_types == (CONNECTION_CONNECTED,)


def test_without_an_endpoint_the_delivery_of_events_is_dormant(synthesized: Synthesized) -> None:
    """cdk.json's ``qbo-link:eventsUrl`` is empty: the rule is declared but disabled, the deliverer's
    trigger is paused and it has no endpoint; its secret is generated already, so the receiver can
    hold the key before the first event is delivered (tests/infra/test_delivery.py: switched on)."""
    rule = synthesized.resources[_delivery_rule_id(synthesized)]["Properties"]
    assert rule["State"] == "DISABLED"
    assert rule["EventPattern"] == {"source": [constants.EVENT_SOURCE]}
    [mapping] = [
        m["Properties"]
        for m in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": _function_id(synthesized, manifest.DELIVER)}
    ]
    assert mapping["Enabled"] is False
    deliverer = synthesized.resources[_function_id(synthesized, manifest.DELIVER)]["Properties"]
    assert deliverer["Environment"]["Variables"][constants.EVENTS_URL_ENV] == ""
    assert "GenerateSecretString" in synthesized.resources[manifest.EVENTS_SECRET.logical_id]["Properties"]
    for other in manifest.FUNCTIONS:
        if other is not manifest.DELIVER:
            mappings = [
                m["Properties"]
                for m in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
                if m["Properties"]["FunctionName"] == {"Ref": _function_id(synthesized, other)}
            ]
            assert all(m.get("Enabled", True) for m in mappings), other.name


def test_asynchronous_runs_that_keep_failing_are_kept_not_dropped(synthesized: Synthesized) -> None:
    configs = {
        c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
        for c in synthesized.of_type("AWS::Lambda::EventInvokeConfig").values()
    }
    asynchronous = [f for f in manifest.FUNCTIONS if f.schedules or f.event_rules]
    assert set(configs) == {_function_id(synthesized, f) for f in asynchronous}
    for config in configs.values():
        destination = config["DestinationConfig"]["OnFailure"]["Destination"]
        assert destination == {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}


# --- the HTTP API --------------------------------------------------------------------------------


def _api_id(s: Synthesized) -> str:
    [api_id] = s.of_type("AWS::ApiGatewayV2::Api")
    return api_id


def test_the_api_keeps_the_logical_id_it_had_before_the_construct(synthesized: Synthesized) -> None:
    """The stack holds ``QboLink`` under the id ``Default``, which CDK leaves out of logical ids, so no
    resource took a new one; a new one for the API would replace it, and its URL is in Intuit's portal."""
    assert _api_id(synthesized) == "ApiHttpApi4C294DC0"
    assert not [k for k in synthesized.resources if k.startswith(("Default", "QboLink"))]


def test_routes_are_the_manifests_with_their_authorization(synthesized: Synthesized) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in synthesized.of_type("AWS::ApiGatewayV2::Route").values()
    }
    expected = {
        f"{route.method} {route.path}": (spec, route) for spec in manifest.FUNCTIONS for route in spec.routes
    }
    assert set(routes) == set(expected)
    integrations = synthesized.of_type("AWS::ApiGatewayV2::Integration")
    for key, (spec, route) in expected.items():
        props = routes[key]
        # Public and console routes have no authorizer: their handlers authenticate (docs/console.md).
        assert props["AuthorizationType"] == ("AWS_IAM" if route.auth is Auth.IAM else "NONE"), key
        integration = integrations[props["Target"]["Fn::Join"][1][1]["Ref"]]["Properties"]
        assert integration["IntegrationUri"] == {"Fn::GetAtt": [_function_id(synthesized, spec), "Arn"]}
        assert integration["PayloadFormatVersion"] == "2.0"


def test_the_stage_logs_access_without_query_strings_and_throttles(synthesized: Synthesized) -> None:
    [stage] = synthesized.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50}
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert log_format["routeKey"] == "$context.routeKey"
    assert not [v for v in log_format.values() if "querystring" in v.lower() or "header" in v.lower()]
    log_group = synthesized.resources[props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]]
    assert log_group["Properties"]["RetentionInDays"] == 30


# --- monitoring ----------------------------------------------------------------------------------


def _alarms(s: Synthesized) -> list[dict[str, Any]]:
    return [a["Properties"] for a in s.of_type("AWS::CloudWatch::Alarm").values()]


def test_every_dead_letter_queue_is_alarmed(synthesized: Synthesized) -> None:
    watched = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in _alarms(synthesized)
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert watched == {q.dlq_logical_id for q in manifest.QUEUES} | {"AsyncFailureQueue"}
    for alarm in _alarms(synthesized):
        if alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            assert alarm["Threshold"] == 1
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_function_has_error_and_throttle_alarms(synthesized: Synthesized) -> None:
    for metric in ("Errors", "Throttles"):
        watched = {
            a["Dimensions"][0]["Value"]["Ref"]
            for a in _alarms(synthesized)
            if a.get("MetricName") == metric and a.get("Namespace") == "AWS/Lambda"
        }
        assert watched == {_function_id(synthesized, f) for f in manifest.FUNCTIONS}, metric


def _emitted_metric_names() -> set[str]:
    """Names the handlers pass to ``metrics.add_metric``: literals, and f-string prefixes completed by
    the values the code counts under them (``Postings_{outcome}`` with ``report.count("failed")``)."""
    names: set[str] = set()
    sources = "\n".join(p.read_text() for p in (ROOT / "functions").rglob("*.py"))
    sources_all = sources + "\n".join(p.read_text() for p in (ROOT / "shared").rglob("*.py"))
    strings = set(re.findall(r'"([A-Za-z_]+)"', sources_all))
    for literal in re.findall(r'add_metric\(name="([A-Za-z_]+)"', sources):
        names.add(literal)
    for prefix in re.findall(r'add_metric\(name=f"([A-Za-z]+_)\{', sources):
        names |= {prefix + value for value in strings}
    return names


def test_business_alarms_watch_metrics_the_code_emits(synthesized: Synthesized) -> None:
    from shared.kernel.observability import metrics

    business = {
        a["MetricName"]: a for a in _alarms(synthesized) if a.get("Namespace") == str(metrics.namespace)
    }
    assert {"KeepAlive_dead", "Postings_failed"} <= set(business)  # reconnects needed, posting failures
    emitted = _emitted_metric_names()
    for name, alarm in business.items():
        assert name in emitted, f"alarm on {name}, which no handler emits"
        assert alarm["Dimensions"] == [{"Name": "service", "Value": constants.SERVICE}]
    from infra.constructs.monitoring import BUSINESS_METRICS

    assert set(BUSINESS_METRICS) <= emitted, set(BUSINESS_METRICS) - emitted


def test_alarms_notify_an_encrypted_topic(synthesized: Synthesized) -> None:
    [topic_id] = synthesized.of_type("AWS::SNS::Topic")
    topic = synthesized.resources[topic_id]["Properties"]
    key = synthesized.resources[topic["KmsMasterKeyId"]["Fn::GetAtt"][0]]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert {"Service": "cloudwatch.amazonaws.com"} in [
        st["Principal"] for st in key["KeyPolicy"]["Statement"]
    ]
    for alarm in _alarms(synthesized):
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert synthesized.of_type("AWS::CloudWatch::Dashboard")


# --- outputs -------------------------------------------------------------------------------------


def test_outputs_give_every_url_for_intuits_portal_and_the_operators_names(synthesized: Synthesized) -> None:
    outputs = synthesized.template["Outputs"]
    api = _api_id(synthesized)
    public = {route.path for spec in manifest.FUNCTIONS for route in spec.routes if route.auth is Auth.PUBLIC}
    for name, path in (
        ("RedirectUri", "/oauth/callback"),
        ("WebhookUrl", "/webhooks/qbo"),
        ("DisconnectUrl", "/oauth/disconnect"),
        ("ReconnectUrl", "/oauth/reconnect"),
    ):
        assert path in public
        assert outputs[name]["Value"] == {"Fn::Join": ["", [{"Fn::GetAtt": [api, "ApiEndpoint"]}, path]]}
    assert outputs["ApiUrl"]["Value"] == {"Fn::Join": ["", [{"Fn::GetAtt": [api, "ApiEndpoint"]}, "/"]]}
    assert outputs["ConsoleUrl"]["Value"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [api, "ApiEndpoint"]}, "/console/"]]
    }
    for secret in manifest.SECRETS:
        assert secret.logical_id in _references(outputs[f"{secret.logical_id}Name"]["Value"])
    for queue in manifest.QUEUES:
        assert outputs[f"{queue.dlq_logical_id}Url"]["Value"] == {"Ref": queue.dlq_logical_id}
    for function in manifest.FUNCTIONS:
        assert outputs[f"{function.logical_id}Name"]["Value"] == {"Ref": _function_id(synthesized, function)}
    assert "JwtApiUrl" not in outputs  # the JWT API is off unless its context is given


# --- checks on every synth -----------------------------------------------------------------------


def test_cdk_nag_finds_nothing_unacknowledged_and_every_acknowledgement_says_why(
    synthesized: Synthesized,
) -> None:
    report = synthesized.validation_report()
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []
    acknowledged = [
        rule
        for resource in synthesized.resources.values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert acknowledged, "cdk-nag did not run: AwsSolutions writes its acknowledgements into the template"
    for rule in acknowledged:
        assert rule["id"].startswith("AwsSolutions-")
        assert len(rule["reason"]) >= 60, rule


def test_cfn_lint_passes_with_only_the_documented_exceptions(synthesized: Synthesized) -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(synthesized.template_file, ManualArgs(ignore_checks=list(CFN_LINT_IGNORED)))
    assert [str(m) for m in matches] == []


# --- the deployed environment is enough ----------------------------------------------------------


def test_the_sweep_runs_on_the_environment_the_stack_gives_it(
    synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Intuit app keys reach the sweep (least privilege); it must still fan out."""
    import os

    import boto3
    from moto import mock_aws

    from shared import wiring

    variables = synthesized.resources[_function_id(synthesized, manifest.SWEEP)]["Properties"]["Environment"]
    for name in [n for n in os.environ if n.startswith(("QBO_LINK_", "AWS_"))]:
        monkeypatch.delenv(name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        queue_url = boto3.client("sqs").create_queue(
            QueueName=manifest.CHANGES_QUEUE.default_name, Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        physical = {manifest.CHANGES_QUEUE.logical_id: queue_url}
        for spec in tables.TABLES:
            physical[spec.logical_id] = tables.create_table(dynamodb, spec, f"deployed-{spec.default_name}")
        for name, value in variables["Variables"].items():
            resolved = physical[value["Ref"]] if isinstance(value, dict) and "Ref" in value else value
            if isinstance(resolved, str):  # the API's URL stays unresolved: the sweep does not read it
                monkeypatch.setenv(name, resolved)
        wiring.reset()
        try:
            summary = wiring.sweep_fan_out().fan_out({})
        finally:
            wiring.reset()
    assert summary == {"tenants": 0, "enqueued": 0, "refused": 0}
