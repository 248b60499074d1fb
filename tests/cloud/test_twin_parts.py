"""The twin's own logic, without starting it: IoT SQL, IAM evaluation, IoT policies as broker ACLs, schedules."""

from __future__ import annotations

import base64
import datetime
import json

import pytest

from infra.twin.broker import aws_topic_to_mqtt, grants_for
from infra.twin.iam import Policy, Request, target, wildcard_match
from infra.twin.iotsql import Message, SqlError, Statement, topic_matches
from infra.twin.sources import aws_cron_to_croniter, next_time
from infra.twin.template import Template, Unresolved

ARN = "arn:aws:iot:us-east-1:123456789012"


def test_iot_sql_select_topic_encode_and_where() -> None:
    ingest = Statement("SELECT topic(2) AS thing, encode(*, 'base64') AS publish FROM 'mc/+/up'")
    assert topic_matches(ingest.topic_filter, "mc/pi/up") and not topic_matches(ingest.topic_filter, "mc/pi/down")
    out = json.loads(ingest.evaluate(Message("mc/pi/up", b"not json")) or b"")
    assert out == {"thing": "pi", "publish": base64.b64encode(b"not json").decode()}
    shadow = Statement("SELECT *, topic(3) AS thing FROM '$aws/things/+/shadow/name/mycontroller/update/documents' "
                       "WHERE NOT isUndefined(current.state.reported)")
    topic = "$aws/things/pi/shadow/name/mycontroller/update/documents"
    assert not topic_matches("#", topic) and topic_matches(shadow.topic_filter, topic)
    reported = {"current": {"state": {"reported": {"a": 1}}}}
    assert json.loads(shadow.evaluate(Message(topic, json.dumps(reported).encode())) or b"") == {**reported,
                                                                                                "thing": "pi"}
    assert shadow.evaluate(Message(topic, json.dumps({"current": {"state": {"desired": {}}}}).encode())) is None
    assert Statement("SELECT a.b[1] AS x FROM 't' WHERE a.c > 2 AND a.c < 5").evaluate(
        Message("t", b'{"a": {"b": [1, 2], "c": 3}}')) == b'{"x":2}'
    with pytest.raises(SqlError, match="nosuch"):
        Statement("SELECT nosuch() FROM 't'")


def test_iam_evaluation_as_aws_does_it() -> None:
    policy = Policy([{"Statement": [
        {"Effect": "Allow", "Action": "dynamodb:*Item", "Resource": "arn:aws:dynamodb:*:*:table/t"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/r",
         "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}},
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringEquals": {
            "s3:ExistingObjectTag/x": "y"}}},
    ]}])
    table = "arn:aws:dynamodb:us-east-1:1:table/t"
    assert policy.decide(Request("dynamodb:GetItem", table)).allowed
    assert not policy.decide(Request("dynamodb:GetItem", table + "2")).allowed
    assert "explicitly denied" in policy.decide(Request("dynamodb:DeleteItem", table)).reason
    assert policy.decide(Request("iam:PassRole", "arn:aws:iam::1:role/r",
                                 (("iam:passedtoservice", "scheduler.amazonaws.com"),))).allowed
    assert not policy.decide(Request("iam:PassRole", "arn:aws:iam::1:role/r",
                                     (("iam:passedtoservice", "lambda.amazonaws.com"),))).allowed
    unknown = policy.decide(Request("s3:GetObject", "arn:aws:s3:::b/k"))
    assert unknown.allowed and unknown.unevaluated == ["statement 3: StringEquals s3:ExistingObjectTag/x"]
    assert wildcard_match("mc/*/down", "mc/a/b/down") and not wildcard_match("mc/?/down", "mc/ab/down")


def test_calls_become_the_authorizations_aws_checks() -> None:
    where = {"region": "us-east-1", "account": "1"}
    transact = target("dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "t"}}, {"ConditionCheck": {"TableName": "u"}}]}, **where)
    assert [(r.action, r.resource) for r in transact] == [
        ("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/t"),
        ("dynamodb:ConditionCheckItem", "arn:aws:dynamodb:us-east-1:1:table/u")]
    schedule = target("scheduler", "CreateSchedule", {"Name": "s", "GroupName": "g",
                                                      "Target": {"RoleArn": "arn:aws:iam::1:role/r"}}, **where)
    assert [r.action for r in schedule] == ["scheduler:CreateSchedule", "iam:PassRole"]
    assert target("iot-data", "Publish", {"topic": "mc/pi/down"}, **where)[0] == Request(
        "iot:Publish", "arn:aws:iot:us-east-1:1:topic/mc/pi/down")
    post = target("apigatewaymanagementapi", "PostToConnection", {"ConnectionId": "c="}, **where,
                  url="https://abc.execute-api.us-east-1.amazonaws.com/v1/@connections/c%3D")
    assert post[0].resource == "arn:aws:execute-api:us-east-1:1:abc/v1/POST/@connections/c="
    assert target("sts", "GetCallerIdentity", {}, **where) == []


def test_an_edge_policy_becomes_each_things_acl() -> None:
    thing = "${iot:Connection.Thing.ThingName}"
    document = {"Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{thing}"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": [f"{ARN}:topic/mc/{thing}/up",
                                                                  f"{ARN}:topic/$aws/things/{thing}/shadow/*"]},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [f"{ARN}:topicfilter/mc/{thing}/down"]},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": [f"{ARN}:topic/mc/{thing}/down",
                                                                  f"{ARN}:topic/mc/x*/odd"]},
    ]}
    grants = grants_for([document], "pi", "us-east-1", "123456789012")
    assert grants.connect
    assert grants.allow == {"publishClientSend": {"mc/pi/up", "$aws/things/pi/shadow/#"},
                            "publishClientReceive": {"mc/pi/down"}, "subscribeLiteral": {"mc/pi/down"}}
    assert any("inside a topic level" in note for note in grants.notes)
    assert not grants_for([document], "pi", "us-east-1", "999999999999").connect
    assert aws_topic_to_mqtt("a/*/b/*") == "a/+/b/#" and aws_topic_to_mqtt("a/b*") is None


def test_schedule_expressions() -> None:
    assert aws_cron_to_croniter("5 0 * * ? *") == "5 0 * * *"
    assert aws_cron_to_croniter("0 8 ? * 2-6 *") == "0 8 * * 1-5"  # AWS: 1 = Sunday
    now = datetime.datetime(2026, 1, 1, 12, 0, 30, tzinfo=datetime.UTC)
    assert next_time("cron(5 0 * * ? *)", now) == datetime.datetime(2026, 1, 2, 0, 5, tzinfo=datetime.UTC)
    assert next_time("rate(5 minutes)", now, start=now) == now + datetime.timedelta(minutes=5)
    assert next_time("at(2026-01-01T14:00:00)", now, "Europe/Paris") == datetime.datetime(
        2026, 1, 1, 13, 0, tzinfo=datetime.UTC)
    assert next_time("at(2026-01-01T12:00:00)", now) is None


def test_template_intrinsics() -> None:
    template = Template({"Parameters": {"Stage": {"Type": "String", "Default": "v1"}},
                         "Conditions": {"Prod": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
                         "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}, "st")
    template.parameters = {"Stage": "v1"}
    template.physical["Q"] = "https://q"
    template.attributes["Q"] = {"Arn": "arn:q"}
    assert template.resolve({"Fn::Sub": "${AWS::StackName}-${Stage}-${Q.Arn}-${!Literal}"}) == "st-v1-arn:q-${Literal}"
    assert template.resolve({"A": {"Fn::If": ["Prod", 1, {"Ref": "AWS::NoValue"}]}, "B": {
        "Fn::Select": [1, {"Fn::Split": [",", "a,b"]}]}}) == {"B": "b"}
    with pytest.raises(Unresolved, match="Nope"):
        template.resolve({"Ref": "Nope"})


def test_basic_ingest_names_the_rule_and_the_topic_it_sees() -> None:
    """#17: ``$aws/rules/<rule>/<topic>`` reaches the rule of that name alone, as ``<topic>``; the stack's ingest
    rule is named after the stack (``-`` is no rule name's letter)."""
    from infra.identity import ingest_rule_name
    from mycontroller_protocol.envelope import read_basic_ingest_topic as basic_ingest

    assert basic_ingest("$aws/rules/mc_home_ingest/mc/pi/up") == ("mc_home_ingest", "mc/pi/up")
    assert basic_ingest("mc/pi/up") is None and basic_ingest("$aws/rules/x") is None
    assert basic_ingest("$aws/things/pi/shadow/update") is None
    template = Template({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}, "mc-home-2")
    assert template.resolve(ingest_rule_name()) == "mc_home_2_ingest"


def test_a_queue_policy_lets_only_its_rule_send() -> None:
    from infra.twin.iam import service_statements

    queue = "arn:aws:sqs:us-east-1:1:q"
    document = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                               "Action": "sqs:SendMessage", "Resource": queue,
                               "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/b/r"}}}]}
    policy = Policy([service_statements(document, "events.amazonaws.com")])
    rule = "arn:aws:events:us-east-1:1:rule/b/"
    assert policy.decide(Request("sqs:SendMessage", queue, (("aws:sourcearn", rule + "r"),))).allowed
    assert not policy.decide(Request("sqs:SendMessage", queue, (("aws:sourcearn", rule + "x"),))).allowed
    assert not Policy([service_statements(document, "iot.amazonaws.com")]).decide(Request("sqs:SendMessage",
                                                                                         queue)).allowed
