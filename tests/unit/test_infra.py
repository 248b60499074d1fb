"""The deployment definition: the IoT rule feeds the ingest queue, poison records end in the DLQ, devices publish
only to their own topics, and the tables are the ones written out below, in the template and as the DynamoDB
adapters create them; the whole template (``infra.package.build_template``, what ``make package`` writes) passes
cfn-lint. moto does not fire IoT rules, so the rule is checked here and the ingest handler is called directly
elsewhere."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Final

import boto3
import pytest
from cfnlint.api import ManualArgs, lint

from chalicelib.core.publish_reader import INGEST_BATCH_PUBLISHES
from infra.identity import edge_policy_document, ingest_rule_name, ingest_rule_sql
from infra.package import build_info, build_template, write_template
from infra.template import (
    HANDLERS_FUNCTION,
    INGEST_FUNCTION,
    MAX_RECEIVE_COUNT,
    SCHEDULED_FUNCTION_ARN,
    build_resources,
)
from mycontroller_protocol.envelope import up_topic


@functools.cache
def _template() -> dict[str, Any]:
    """The whole template, as ``make package`` writes it (without contributors' pieces of other features)."""
    return build_template()


def _functions() -> dict[str, dict[str, Any]]:
    return {logical: resource for logical, resource in _template()["Resources"].items()
            if resource["Type"] == "AWS::Lambda::Function"}


def _topic_matches(topic_filter: str, topic: str) -> bool:
    pattern = "^" + re.escape(topic_filter).replace(r"\+", "[^/]+").replace("\\#", ".*") + "$"
    return re.match(pattern, topic) is not None


def test_rule_selects_every_edge_uplink_and_nothing_else() -> None:
    sql = ingest_rule_sql()
    topic_filter = re.search(r"FROM '([^']+)'", sql)
    assert topic_filter is not None and sql.startswith("SELECT topic(2) AS thing, encode(*, 'base64') AS publish FROM")
    resources = build_resources()["Resources"]
    assert resources["IngestTopicRule"]["Properties"]["TopicRulePayload"]["Sql"] == sql
    assert resources["EdgePolicy"]["Properties"]["PolicyDocument"] == {"Fn::Sub": json.dumps(edge_policy_document())}
    assert _topic_matches(topic_filter.group(1), up_topic("pi-livingroom"))
    assert not _topic_matches(topic_filter.group(1), "mc/gw1/down")
    assert not _topic_matches(topic_filter.group(1), "mc/a/b/up")


def test_rule_invokes_the_ingest_or_sends_to_its_queue_and_errors_to_the_dlq() -> None:
    resources = build_resources()["Resources"]
    payload = resources["IngestTopicRule"]["Properties"]["TopicRulePayload"]
    # without a window (the default) the rule invokes the function with each publish; with one, the queue gathers
    assert payload["Actions"] == [{"Fn::If": ["IngestWindowed", {"Sqs": {
        "QueueUrl": {"Ref": "IngestQueue"}, "RoleArn": {"Fn::GetAtt": ["IngestRuleRole", "Arn"]}, "UseBase64": False}},
        {"Lambda": {"FunctionArn": {"Fn::GetAtt": ["Ingest", "Arn"]}}}]}]
    permission = resources["IngestPermission"]
    assert permission["Condition"] == "IngestDirect" and permission["Properties"]["Principal"] == "iot.amazonaws.com"
    assert permission["Properties"]["SourceArn"] == {"Fn::GetAtt": ["IngestTopicRule", "Arn"]}
    assert resources["IngestEventSource"]["Properties"]["Enabled"] == {"Fn::If": ["IngestWindowed", True, False]}
    assert _template()["Resources"]["Ingest"]["Properties"]["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}}  # what failed every async attempt
    assert payload["ErrorAction"]["Sqs"]["QueueUrl"] == {"Ref": "IngestDeadLetterQueue"}
    redrive = resources["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]},
                       "maxReceiveCount": MAX_RECEIVE_COUNT}
    allowed = resources["IngestRuleRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert allowed["Action"] == "sqs:SendMessage"


def test_edge_devices_publish_only_to_their_own_topics() -> None:
    statements = edge_policy_document()["Statement"]
    publish = next(s for s in statements if s["Action"] == "iot:Publish")
    for resource in publish["Resource"]:
        assert "${!iot:Connection.Thing.ThingName}" in resource
        assert "+" not in resource and not resource.endswith("/#")
    connect = next(s for s in statements if s["Action"] == "iot:Connect")
    assert connect["Resource"].endswith("client/${!iot:Connection.Thing.ThingName}")


RESOURCE_TABLE: Final[dict[str, Any]] = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "kk", "AttributeType": "S"},
        {"AttributeName": "tree", "AttributeType": "S"},
    ],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "GlobalSecondaryIndexes": [
        {"IndexName": "by_kind",
         "KeySchema": [{"AttributeName": "kk", "KeyType": "HASH"}, {"AttributeName": "pk", "KeyType": "RANGE"}],
         "Projection": {"ProjectionType": "KEYS_ONLY"}},
        {"IndexName": "by_tree",
         "KeySchema": [{"AttributeName": "tree", "KeyType": "HASH"}, {"AttributeName": "pk", "KeyType": "RANGE"}],
         "Projection": {"ProjectionType": "KEYS_ONLY"}},
    ],
    "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
}
"""The resource table, written out: items by ``pk`` (``<kind>#<id>``); a kind's ids through ``by_kind`` (``kk``,
``<kind>#<shard>``) and a gateway tree's through ``by_tree``, keys only (reads then get the items by key);
on demand; seen-id items expire through ``ttl``. A change here is a change of the deployed table."""

CONNECTIONS_TABLE: Final[dict[str, Any]] = {
    "AttributeDefinitions": [{"AttributeName": "connectionId", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "connectionId", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
    "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
}
"""The websocket connections table, written out: one item per connection id, expired through ``expiresAt``."""
DEPLOYMENT_ONLY: Final = ("PointInTimeRecoverySpecification", "ProvisionedThroughput")
"""Table properties of the deployed tables that are not their shape (the adapters' tables have none)."""
ON_DEMAND: Final = {"Fn::If": ["ProvisionedTable", "PROVISIONED", "PAY_PER_REQUEST"]}
"""The resource table's billing mode: on demand unless ``TableCapacity=provisioned``."""


def _canonical(table: dict[str, Any]) -> dict[str, Any]:
    """A table's definition with its unordered lists (attributes, indexes) in name order; key schemas keep theirs."""
    return {**table,
            "AttributeDefinitions": sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            **({"GlobalSecondaryIndexes": sorted(table["GlobalSecondaryIndexes"], key=lambda i: i["IndexName"])}
               if "GlobalSecondaryIndexes" in table else {})}


def _described(name: str) -> dict[str, Any]:
    """What DynamoDB (moto) says of a table, in the shape of its CloudFormation properties."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    table = client.describe_table(TableName=name)["Table"]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    described: dict[str, Any] = {
        "BillingMode": table["BillingModeSummary"]["BillingMode"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "KeySchema": table["KeySchema"],
        "TimeToLiveSpecification": {"AttributeName": ttl.get("AttributeName"),
                                    "Enabled": ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")},
    }
    if table.get("GlobalSecondaryIndexes"):
        described["GlobalSecondaryIndexes"] = [
            {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"], "Projection": index["Projection"]}
            for index in table["GlobalSecondaryIndexes"]]
    return described


def _shape(properties: dict[str, Any]) -> dict[str, Any]:
    """A deployed table's shape: its capacity mode as the default parameters make it (on demand)."""
    shape = {key: value for key, value in properties.items() if key not in DEPLOYMENT_ONLY}
    if shape.get("BillingMode") == ON_DEMAND:
        shape["BillingMode"] = "PAY_PER_REQUEST"
    if "GlobalSecondaryIndexes" in shape:
        shape["GlobalSecondaryIndexes"] = [{k: v for k, v in index.items() if k not in DEPLOYMENT_ONLY}
                                           for index in shape["GlobalSecondaryIndexes"]]
    return shape


def test_the_templates_tables_are_the_written_out_ones() -> None:
    resources = build_resources()["Resources"]
    assert resources["ResourceTable"]["Type"] == resources["ConnectionsTable"]["Type"] == "AWS::DynamoDB::Table"
    assert _canonical(_shape(resources["ResourceTable"]["Properties"])) == _canonical(RESOURCE_TABLE)
    assert _canonical(_shape(resources["ConnectionsTable"]["Properties"])) == _canonical(CONNECTIONS_TABLE)


def test_data_outlives_the_stack_and_tables_recover_to_any_second() -> None:
    resources = _template()["Resources"]
    for name in ("ResourceTable", "ConnectionsTable", "SecretsKey", "BlobBucket"):
        assert (resources[name]["DeletionPolicy"], resources[name]["UpdateReplacePolicy"]) == ("Retain", "Retain")
    for name in ("ResourceTable", "ConnectionsTable"):
        assert resources[name]["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True}
    retained = {name for name, resource in resources.items() if resource.get("DeletionPolicy") == "Retain"}
    # the metric store the stack creates when asked (infra/metrics.py): the instance, its admin credentials and
    # the security group it stays in
    created_metrics = {"MetricsInfluxDB", "MetricsInfluxDBCredentials", "MetricsInfluxDBSecurityGroup"}
    assert retained == {"ResourceTable", "ConnectionsTable", "SecretsKey", "BlobBucket", *created_metrics}
    assert all(resources[name]["Condition"] == "MetricsCreate" for name in created_metrics)


@pytest.mark.usefixtures("aws_mock")
def test_the_adapters_create_the_written_out_tables() -> None:
    """The tables the adapters make for tests and DynamoDB Local are the deployed ones (what their queries use)."""
    from chalicelib.adapters.connections_dynamodb import DynamoDBConnectionStore
    from chalicelib.adapters.repository_dynamodb import DynamoDBRepository

    repository = DynamoDBRepository("infra-resources")
    repository.create_table()
    repository.close()
    DynamoDBConnectionStore("infra-connections", region="us-east-1").create_table()
    assert _canonical(_described("infra-resources")) == _canonical(RESOURCE_TABLE)
    assert _canonical(_described("infra-connections")) == _canonical(CONNECTIONS_TABLE)


def test_the_whole_template_passes_cfn_lint(tmp_path: Path) -> None:
    """``build/template.json`` as ``make package`` writes it: no error, and no warning but the one about the code
    being a local path (``sam deploy`` uploads it)."""
    destination = tmp_path / "template.json"
    write_template(build_template(build=build_info()), destination)
    template = json.loads(destination.read_text())
    assert "Transform" not in template
    matches = lint(destination.read_text(), config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches if m.rule.id != "W3002"] == []


def test_ingest_function_reports_partial_batch_failures() -> None:
    mapping = build_resources()["Resources"]["IngestEventSource"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    # the batch the processor coalesces over: each publish at once by default (up to 10 waiting), up to 100 within
    # IngestBatchWindow seconds (AWS takes more than 10 only with a batching window of 1 s or more)
    assert mapping["BatchSize"] == {"Fn::If": ["IngestWindowed", INGEST_BATCH_PUBLISHES, 10]}
    assert INGEST_BATCH_PUBLISHES == 100
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "IngestBatchWindow"}
    parameter = _template()["Parameters"]["IngestBatchWindow"]
    assert (parameter["Default"], parameter["MinValue"]) == (0, 0)
    assert _template()["Conditions"]["IngestWindowed"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "IngestBatchWindow"}, "0"]}]}
    # a burst waits in the queue instead of being throttled into the DLQ
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "IngestMaximumConcurrency"}}
    assert all("ReservedConcurrentExecutions" not in function["Properties"] for function in _functions().values())


def test_ingest_function_is_the_one_chalice_packages() -> None:
    from app import app

    assert any(function.name == "ingest" for function in app.pure_lambda_functions)


def _packed(*events: Any) -> dict[str, Any]:
    """The EventBridge event of a pack of these bus events, as the adapter puts it and a rule matches it."""
    from chalicelib.core.bus_packing import pack_events

    [pack] = pack_events(list(events), 200_000)
    return {"source": pack.source, "detail-type": pack.detail_type, "detail": json.loads(pack.detail_json())}


def test_field_updates_on_the_bus_reach_the_forward_payload_function() -> None:
    from chalicelib.core.event_pattern import matches
    from chalicelib.core.model import FieldModel, Kind, event
    from chalicelib.core.ports import bus_event

    resources = build_resources()["Resources"]
    rule = resources["ForwardPayloadRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["ForwardPayload", "Arn"]}
    field = FieldModel(gateway_id="g", node_id="1", source_id="1", field_id="V_TEMP").record()
    node = bus_event(event("updated", Kind.NODE, {"id": "g.1"}))
    for kind, wanted in (("updated", True), ("created", False)):
        published = bus_event(event(kind, Kind.FIELD, field))
        assert matches(rule["EventPattern"], _packed(published)) is wanted
        assert matches(rule["EventPattern"], _packed(node, published)) is wanted  # a pack with one is enough


def test_every_domain_event_reaches_the_tasks_function() -> None:
    from chalicelib.core.event_pattern import matches
    from chalicelib.core.model import FieldModel, Kind, event
    from chalicelib.core.ports import bus_event

    resources = build_resources()["Resources"]
    rule = resources["TasksRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["Tasks", "Arn"]}
    field = FieldModel(gateway_id="g", node_id="1", source_id="1", field_id="V_TEMP").record()
    for kind in ("updated", "created", "deleted"):
        published = bus_event(event(kind, Kind.FIELD, field))
        assert matches(rule["EventPattern"], _packed(published))


def test_scheduler_invokes_only_the_scheduled_function_and_the_functions_know_where() -> None:
    from app import app

    resources = _template()["Resources"]
    role = resources["SchedulerRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    statement = role["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == [SCHEDULED_FUNCTION_ARN]
    assert resources["Scheduled"]["Properties"]["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-scheduled"}
    assert SCHEDULED_FUNCTION_ARN["Fn::Sub"].endswith(":function:${AWS::StackName}-scheduled")
    assert resources["ScheduleGroup"]["Type"] == "AWS::Scheduler::ScheduleGroup"
    for name in ("APIHandler", "Tasks", "Scheduled", "Handlers", "SunJob"):  # those that put schedules
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["SCHEDULER"] == "eventbridge"
        assert variables["SCHEDULER_TARGET_ARN"] == SCHEDULED_FUNCTION_ARN
        assert variables["SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
        assert variables["SCHEDULER_GROUP"] == {"Ref": "ScheduleGroup"}
    names = {function.name for function in app.pure_lambda_functions}
    assert {"tasks", "scheduled"} <= names


def test_handler_queue_feeds_the_handler_function_with_partial_failures_and_a_dlq() -> None:
    from app import app

    resources = _template()["Resources"]
    queue = resources["HandlerQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["HandlerDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": MAX_RECEIVE_COUNT}
    timeout = resources[HANDLERS_FUNCTION]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    mapping = resources["HandlerEventSource"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["HandlerQueue", "Arn"]}
    assert mapping["FunctionName"] == {"Ref": HANDLERS_FUNCTION}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and mapping["BatchSize"] == 10
    assert any(function.name == "handlers" for function in app.pure_lambda_functions)
    # Whoever queues handler runs (API run-now, tasks, schedules) and the handler function itself (delayed
    # resource calls) knows the queue; secrets are encrypted with the stack's KMS key.
    for name in ("APIHandler", "Tasks", "Scheduled", HANDLERS_FUNCTION):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["HANDLER_QUEUE"] == "sqs" and variables["HANDLER_QUEUE_URL"] == {"Ref": "HandlerQueue"}
        assert variables["SECRETS"] == "kms" and variables["KMS_KEY_ID"] == {"Ref": "SecretsKey"}
    assert resources["SecretsKey"]["Type"] == "AWS::KMS::Key"
    assert resources["SecretsKey"]["Properties"]["EnableKeyRotation"] is True


def test_watched_domain_events_and_revocations_reach_the_websocket_notify_function() -> None:
    from app import app
    from chalicelib.core.bus_packing import pack_events
    from chalicelib.core.event_pattern import matches
    from chalicelib.core.model import FieldModel, Kind, event
    from chalicelib.core.ports import BusEvent, bus_event
    from chalicelib.services.auth import REVOCATION_SOURCE

    resources = _template()["Resources"]
    rule = resources["WebsocketNotifyRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["WebsocketNotify", "Arn"]}
    field = FieldModel(gateway_id="g", node_id="1", source_id="1", field_id="V_TEMP").record()
    for kind in ("updated", "created", "deleted"):
        published = bus_event(event(kind, Kind.FIELD, field))
        for watched in (True, False):
            [pack] = pack_events([published], 200_000, lambda _detail, w=watched: w)
            document = {"source": pack.source, "detail-type": pack.detail_type,
                        "detail": json.loads(pack.detail_json())}
            assert matches(rule["EventPattern"], document) is watched  # nobody listens: the notifier does not run
    revoked = BusEvent(REVOCATION_SOURCE, "session.revoked", {"entityType": "session", "type": "revoked"})
    [pack] = pack_events([revoked], 200_000, lambda _detail: True)
    assert matches(rule["EventPattern"], {"source": pack.source, "detail-type": pack.detail_type,
                                          "detail": json.loads(pack.detail_json())})
    variables = resources["WebsocketNotify"]["Properties"]["Environment"]["Variables"]
    assert variables["WEBSOCKET_ENDPOINT"]["Fn::Sub"].startswith("https://${WebsocketAPI}.execute-api.")
    assert variables["CONNECTIONS_TABLE"] == {"Ref": "ConnectionsTable"}
    assert resources["Ingest"]["Properties"]["Environment"]["Variables"]["NOTIFY_AUDIENCE"] == "subscribed"
    assert "websocket_notify" in {function.name for function in app.pure_lambda_functions}
    assert {"$connect", "$disconnect", "$default"} <= set(app.websocket_handlers)


def test_edges_reported_shadow_state_reaches_the_shadow_reported_function() -> None:
    from app import app
    from infra.template import SHADOW_NAME, shadow_rule_sql
    from mycontroller_protocol.shadow import shadow_topic

    sql = shadow_rule_sql()
    topic_filter = re.search(r"FROM '([^']+)'", sql)
    assert topic_filter is not None and "topic(3) AS thing" in sql and "current.state.reported" in sql
    assert _topic_matches(topic_filter.group(1), shadow_topic("pi-garage", "update/documents", SHADOW_NAME))
    assert shadow_topic("pi-garage", "update/documents", SHADOW_NAME).split("/")[2] == "pi-garage"  # topic(3)
    assert not _topic_matches(topic_filter.group(1), shadow_topic("pi-garage", "update/delta", SHADOW_NAME))
    assert not _topic_matches(topic_filter.group(1), shadow_topic("pi-garage", "update/documents", ""))
    resources = build_resources()["Resources"]
    rule = resources["ShadowReportedTopicRule"]["Properties"]["TopicRulePayload"]
    assert rule["Actions"] == [{"Lambda": {"FunctionArn": {"Fn::GetAtt": ["ShadowReported", "Arn"]}}}]
    permission = resources["ShadowReportedPermission"]["Properties"]
    assert permission["Principal"] == "iot.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["ShadowReportedTopicRule", "Arn"]}
    assert any(function.name == "shadow_reported" for function in app.pure_lambda_functions)


def test_edge_devices_reach_only_their_own_shadow() -> None:
    statements = edge_policy_document()["Statement"]
    for action in ("iot:Publish", "iot:Subscribe", "iot:Receive"):
        resources = next(s for s in statements if s["Action"] == action)["Resource"]
        shadow = [r for r in resources if "$aws/things/" in r]
        assert shadow and all("$aws/things/${!iot:Connection.Thing.ThingName}/shadow/" in r for r in shadow)


CONSUMERS = {"ForwardPayload": "forward_payload", "Tasks": "tasks", "WebsocketNotify": "websocket_notify"}
"""The bus consumers: resource name prefix → the Chalice function (its logical id is the prefix)."""


def test_bus_rules_invoke_their_function_with_retries_and_a_dead_letter_queue() -> None:
    """No queue between a rule and its function (no requests per event, no pollers): EventBridge retries a
    delivery and dead-letters what it cannot deliver; Lambda retries a failed invocation and dead-letters it."""
    from app import app

    resources = _template()["Resources"]
    for name in CONSUMERS:
        dlq = {"Fn::GetAtt": [f"{name}DeadLetterQueue", "Arn"]}
        [target] = resources[f"{name}Rule"]["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [name, "Arn"]} and target["DeadLetterConfig"] == {"Arn": dlq}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 2
        permission = resources[f"{name}Permission"]["Properties"]
        assert (permission["Principal"], permission["FunctionName"]) == ("events.amazonaws.com", {"Ref": name})
        assert permission["SourceArn"] == {"Fn::GetAtt": [f"{name}Rule", "Arn"]}
        assert resources[name]["Properties"]["DeadLetterConfig"] == {"TargetArn": dlq}
        assert f"{name}Queue" not in resources and f"{name}EventSource" not in resources
        redrive = resources[f"{name}Redrive"]["Properties"]  # off until an operator hands the dead letters back
        assert (redrive["EventSourceArn"], redrive["FunctionName"], redrive["Enabled"]) == (dlq, {"Ref": name}, False)
        assert redrive["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert set(CONSUMERS.values()) <= {function.name for function in app.pure_lambda_functions}


def test_dead_letter_queue_policies_let_only_their_rule_send() -> None:
    resources = build_resources()["Resources"]
    for name in CONSUMERS:
        policy = resources[f"{name}DeadLetterQueuePolicy"]
        assert policy["Type"] == "AWS::SQS::QueuePolicy"
        assert policy["Properties"]["Queues"] == [{"Ref": f"{name}DeadLetterQueue"}]
        [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Action"] == "sqs:SendMessage"
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Resource"] == [{"Fn::GetAtt": [f"{name}DeadLetterQueue", "Arn"]}]
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [f"{name}Rule", "Arn"]}}}


def test_every_mapping_takes_batches_with_partial_failures() -> None:
    resources = build_resources()["Resources"]
    mappings = {name: r["Properties"] for name, r in resources.items()
                if r.get("Type") == "AWS::Lambda::EventSourceMapping"}
    assert set(mappings) == {"IngestEventSource", "HandlerEventSource", *(f"{name}Redrive" for name in CONSUMERS)}
    for properties in mappings.values():
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        # SQS refuses a batch above 10 without a batching window
        if isinstance(properties["BatchSize"], dict):  # the ingest's: 100 only when IngestBatchWindow > 0
            condition, _windowed, immediate = properties["BatchSize"]["Fn::If"]
            assert condition == "IngestWindowed" and immediate <= 10
            continue
        assert properties["BatchSize"] <= 10 or properties.get("MaximumBatchingWindowInSeconds", 0) >= 1


def test_blob_bucket_is_private_encrypted_and_only_the_api_function_uses_it() -> None:
    """(And the ingest function reads firmware files: it signs a new URL of one for an edge whose URL expired.)"""
    from infra.template import API_FUNCTION, BLOB_BUCKET

    resources = _template()["Resources"]
    bucket = resources[BLOB_BUCKET]
    assert bucket["Type"] == "AWS::S3::Bucket"
    properties = bucket["Properties"]
    assert all(properties["PublicAccessBlockConfiguration"][key] for key in
               ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    rule = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    statement = resources[f"{BLOB_BUCKET}Policy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    variables = resources[API_FUNCTION]["Properties"]["Environment"]["Variables"]
    assert variables["BLOBS"] == "s3" and variables["BLOB_BUCKET"] == {"Ref": BLOB_BUCKET}
    # a body the API takes itself fits Lambda's payload; larger files go through presigned URLs (infra/uploads.py)
    assert int(variables["DIRECT_UPLOAD_MAX_BYTES"]) * 4 / 3 < 6 * 1024 * 1024
    assert "BLOBS" not in resources[HANDLERS_FUNCTION]["Properties"]["Environment"]["Variables"]
    # only the API function's role reaches the bucket, by its own ARN
    for name, function in _functions().items():
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        s3 = [statement for statement in statements if any(a.startswith("s3:") for a in statement["Action"])]
        if name == INGEST_FUNCTION:
            assert s3 == [{"Sid": "FirmwareFiles", "Effect": "Allow", "Action": ["s3:GetObject"],
                           "Resource": [{"Fn::Sub": "${BlobBucket.Arn}/firmware/*"}]}]
            variables = function["Properties"]["Environment"]["Variables"]
            assert variables["BLOBS"] == "s3" and variables["BLOB_BUCKET"] == {"Ref": BLOB_BUCKET}
            continue
        if name != API_FUNCTION:
            assert s3 == [], name
            continue
        assert {a for statement in s3 for a in statement["Action"]} == {
            "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"}
        assert {json.dumps(r) for statement in s3 for r in statement["Resource"]} == {
            json.dumps({"Fn::GetAtt": [BLOB_BUCKET, "Arn"]}), json.dumps({"Fn::Sub": "${BlobBucket.Arn}/*"}),
            # presigned uploads, staged in a bucket of their own (infra/uploads.py)
            json.dumps({"Fn::GetAtt": ["UploadBucket", "Arn"]}),
            json.dumps({"Fn::Sub": "${UploadBucket.Arn}/uploads/*"})}


def test_every_queue_outlasts_six_runs_of_the_function_it_feeds() -> None:
    """AWS's advice for SQS event sources: a message is not handed out again while its batch may still run."""
    resources = _template()["Resources"]
    mappings = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 5
    for mapping in mappings:
        queue = resources[mapping["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
        function = resources[mapping["FunctionName"]["Ref"]]["Properties"]
        window = mapping.get("MaximumBatchingWindowInSeconds", 0)
        if window == {"Ref": "IngestBatchWindow"}:
            window = _template()["Parameters"]["IngestBatchWindow"]["MaxValue"]
        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"] + window


NAMED: Final = {"AWS::Lambda::Function": "FunctionName", "AWS::Logs::LogGroup": "LogGroupName",
                "AWS::DynamoDB::Table": "TableName", "AWS::SQS::Queue": "QueueName", "AWS::S3::Bucket": "BucketName",
                "AWS::IAM::Role": "RoleName", "AWS::SNS::Topic": "TopicName", "AWS::Events::EventBus": "Name",
                "AWS::Events::Rule": "Name", "AWS::Scheduler::ScheduleGroup": "Name",
                "AWS::ApiGateway::RestApi": "Name", "AWS::ApiGatewayV2::Api": "Name",
                "AWS::SecretsManager::Secret": "Name", "AWS::IoT::Policy": "PolicyName",
                "AWS::IoT::TopicRule": "RuleName", "AWS::KMS::Alias": "AliasName"}
"""The property that gives a resource of each type its physical name (absent: CloudFormation makes one)."""


def test_every_physical_name_derives_from_the_stack_name() -> None:
    """Two stacks side by side in one account and region: a name is CloudFormation's own or holds the stack's."""
    for logical, resource in _template()["Resources"].items():
        value = (resource.get("Properties") or {}).get(NAMED.get(resource["Type"], ""))
        if value is not None:
            assert isinstance(value, dict) and ("${AWS::StackName}" in value.get("Fn::Sub", "")
                                                or value == ingest_rule_name()), logical  # (no '-' in a rule name)
    assert "mycontroller-connections" not in json.dumps(_template()["Resources"])


RESOURCE_VARIABLES: Final = re.compile(r"_(TABLE|TABLE_NAME|BUS_NAME|URL|ARN|BUCKET|GROUP|PARAMETER|SECRET|ENDPOINT|"
                                       r"KEY_ID)$")
SELECTORS: Final = {"SIGNING_SECRET"}
"""Variables that choose an adapter rather than name a resource."""


def test_the_functions_environment_names_resources_by_reference() -> None:
    for logical, function in _functions().items():
        variables = function["Properties"]["Environment"]["Variables"]
        for name, value in variables.items():
            if RESOURCE_VARIABLES.search(name) and name not in SELECTORS:
                assert isinstance(value, dict), f"{logical}: {name} is a literal ({value!r})"
        assert "MC_ADMIN_PASSWORD" not in variables and "INFLUXDB_TOKEN" not in variables
    assert _functions()["APIHandler"]["Properties"]["Environment"]["Variables"]["ADMIN_PASSWORD_SECRET"] == {
        "Ref": "AdminPasswordSecret"}
    assert [name for name, f in _functions().items()
            if "ADMIN_PASSWORD_SECRET" in f["Properties"]["Environment"]["Variables"]] == ["APIHandler"]


def test_every_function_logs_to_its_own_group_with_the_retention_asked() -> None:
    resources = _template()["Resources"]
    for function in _functions().values():
        properties = function["Properties"]
        group = resources[properties["LoggingConfig"]["LogGroup"]["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        name = properties["FunctionName"]["Fn::Sub"]
        assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{name}"}
        assert (properties["Runtime"], properties["Handler"].split(".")[0]) == ("python3.12", "app")
        assert properties["Code"] == "deployment.zip"


def test_alarms_watch_every_dead_letter_queue_and_every_function_when_asked() -> None:
    resources = _template()["Resources"]
    alarms = {name: r for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert all(alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for alarm in alarms.values())
    watched = {(a["Properties"]["MetricName"], json.dumps(a["Properties"]["Dimensions"][0]["Value"])):
               a.get("Condition") for a in alarms.values()}
    dead_letter_queues = [name for name, r in resources.items()
                          if r["Type"] == "AWS::SQS::Queue" and name.endswith("DeadLetterQueue")]
    assert len(dead_letter_queues) == 5
    for queue in dead_letter_queues:  # always: a dead letter is data waiting for someone
        assert watched[("ApproximateNumberOfMessagesVisible", json.dumps({"Fn::GetAtt": [queue, "QueueName"]}))] \
            is None
    for function in _functions():  # two alarms a function ($0.10 each a month) with FunctionAlarms=true
        for metric in ("Errors", "Throttles"):
            assert watched[(metric, json.dumps({"Ref": function}))] == "HasFunctionAlarms"
    assert _template()["Conditions"]["HasFunctionAlarms"] == {"Fn::Equals": [{"Ref": "FunctionAlarms"}, "true"]}
    assert _template()["Parameters"]["FunctionAlarms"]["Default"] == "false"
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_memory_comes_from_the_measured_cold_start() -> None:
    from infra.functions import MEMORY_HEADROOM, measured_rss_mb

    measured = measured_rss_mb()
    for logical, function in _functions().items():
        name = function["Properties"]["FunctionName"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        memory = function["Properties"]["MemorySize"]
        sizes = memory["Fn::If"][1:] if isinstance(memory, dict) else [memory]  # the ingest's: by how it is fed
        assert all(size >= measured[name] * MEMORY_HEADROOM for size in sizes), logical


def test_urls_are_clean_and_gateway_errors_are_the_projects_json() -> None:
    from app import app
    from chalicelib.api.errors import ERROR_SCHEMA

    template = _template()
    assert template["Parameters"]["StageName"]["Default"] != "api"  # <stage>/api/status, never /api/api
    assert all(path.startswith("/api/") or path == "/api" for path in app.routes)
    assert template["Outputs"]["RestApiUrl"]["Value"]["Fn::Sub"].endswith("/${RestAPIStage}")
    body = template["Resources"]["RestAPI"]["Properties"]["Body"]
    assert set(body["paths"]) == set(app.routes)
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == 404  # an unknown path
    for kind, response in responses.items():
        rendered = response["responseTemplates"]["application/json"].replace(
            "$context.error.messageString", '"Forbidden"')
        error = json.loads(rendered)
        assert set(error) == set(ERROR_SCHEMA["properties"]) and error["status"] == response["statusCode"], kind
        assert response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
