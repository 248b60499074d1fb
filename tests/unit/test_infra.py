"""The deployment definition: the IoT rule feeds the ingest queue, poison records end in the DLQ, devices publish
only to their own topics, and the table is the one the DynamoDB adapter uses. moto does not fire IoT rules, so the
rule is checked here and the ingest handler is called directly elsewhere."""

from __future__ import annotations

import json
import re

from cfnlint.api import ManualArgs, lint

from chalicelib.adapters.repository_dynamodb import table_definition
from chalicelib.core.envelope import up_topic
from infra.template import MAX_RECEIVE_COUNT, build_resources, edge_policy_document, ingest_rule_sql


def _topic_matches(topic_filter: str, topic: str) -> bool:
    pattern = "^" + re.escape(topic_filter).replace(r"\+", "[^/]+").replace("\\#", ".*") + "$"
    return re.match(pattern, topic) is not None


def test_rule_selects_every_edge_uplink_and_nothing_else() -> None:
    sql = ingest_rule_sql()
    topic_filter = re.search(r"FROM '([^']+)'", sql)
    assert topic_filter is not None and sql.startswith("SELECT * FROM")
    assert _topic_matches(topic_filter.group(1), up_topic("pi-livingroom"))
    assert not _topic_matches(topic_filter.group(1), "mc/gw1/down")
    assert not _topic_matches(topic_filter.group(1), "mc/a/b/up")


def test_rule_sends_to_the_ingest_queue_and_errors_to_the_dlq() -> None:
    resources = build_resources()["Resources"]
    payload = resources["IngestTopicRule"]["Properties"]["TopicRulePayload"]
    assert payload["Actions"] == [{"Sqs": {"QueueUrl": {"Ref": "IngestQueue"},
                                           "RoleArn": {"Fn::GetAtt": ["IngestRuleRole", "Arn"]},
                                           "UseBase64": False}}]
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


def test_table_is_the_adapters_table() -> None:
    assert build_resources()["Resources"]["ResourceTable"]["Properties"] == table_definition()


def test_template_passes_cfn_lint() -> None:
    fragment = build_resources()
    # What `chalice package` contributes and the fragment refers to: the ingest function.
    ingest_function = {"Type": "AWS::Lambda::Function", "Properties": {
        "Runtime": "python3.12", "Handler": "app.ingest", "Role": "arn:aws:iam::123456789012:role/ingest",
        "Code": {"ZipFile": "placeholder"}}}
    template = {"AWSTemplateFormatVersion": "2010-09-09",
                "Resources": {**fragment["Resources"], "Ingest": ingest_function, "ForwardPayload": ingest_function},
                "Outputs": fragment["Outputs"]}
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
    errors = [str(m) for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_ingest_function_reports_partial_batch_failures() -> None:
    mapping = build_resources()["Resources"]["IngestEventSource"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert mapping["BatchSize"] == 10


def test_ingest_function_is_the_one_chalice_packages() -> None:
    from app import app

    assert any(function.name == "ingest" for function in app.pure_lambda_functions)


def test_field_updates_on_the_bus_reach_the_forward_payload_function() -> None:
    from chalicelib.core.event_pattern import matches
    from chalicelib.core.model import FieldModel, Kind, event
    from chalicelib.core.ports import bus_event

    resources = build_resources()["Resources"]
    rule = resources["ForwardPayloadRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["ForwardPayload", "Arn"]}
    assert resources["ForwardPayloadPermission"]["Properties"]["Principal"] == "events.amazonaws.com"
    field = FieldModel(gateway_id="g", node_id="1", source_id="1", field_id="V_TEMP").record()
    for kind, wanted in (("updated", True), ("created", False)):
        published = bus_event(event(kind, Kind.FIELD, field))
        document = {"source": published.source, "detail-type": published.detail_type, "detail": published.detail}
        assert matches(rule["EventPattern"], document) is wanted
