"""The AWS resources beside the Chalice functions, as a CloudFormation fragment for ``chalice package``.

``python -m infra.template > build/resources.json`` writes it; ``chalice package --merge-template
build/resources.json build/`` merges it with the functions Chalice generates, so that one CloudFormation stack
holds everything (see ``infra/README.md``):

* the single DynamoDB table (its schema comes from the DynamoDB repository adapter, so they cannot drift),
* the ingest queue and its dead-letter queue (redrive after ``MAX_RECEIVE_COUNT`` deliveries),
* the event source mapping that feeds the ingest function ten records at a time with partial batch
  responses (``ReportBatchItemFailures``), so only failed records are retried,
* the IoT topic rule that forwards every edge publish (``mc/<edge>/up``) to the ingest queue, with an error
  action to the DLQ, and its role,
* the EventBridge bus for domain events, and the rule that sends ``field.updated`` to the forward payload
  function (retries, then the dead-letter queue),
* the IoT policy edge devices get: they connect as their thing name and publish only to their own topics.

moto does not fire IoT rules, so tests check this definition and call the ingest handler the rule would feed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from chalicelib.adapters.repository_dynamodb import table_definition
from chalicelib.automation_functions import FORWARD_PATTERN

TOPIC_PREFIX = "mc"
MAX_RECEIVE_COUNT = 5
INGEST_VISIBILITY_TIMEOUT_S = 180
"""Six times the ingest function's timeout (30 s), as AWS advises for SQS event sources."""
UP_TOPIC_FILTER = f"{TOPIC_PREFIX}/+/up"
FORWARD_FUNCTION = "ForwardPayload"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="forward_payload")``."""
INGEST_FUNCTION = "Ingest"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="ingest")``."""


def ingest_rule_sql() -> str:
    """The rule passes the publish through untouched: the body is the envelope batch the ingest function reads."""
    return f"SELECT * FROM '{UP_TOPIC_FILTER}'"


def edge_policy_document() -> dict[str, Any]:
    """What an edge device may do: connect as its thing, publish its own uplink and shadow, read its downlinks.

    The document is an ``Fn::Sub`` template: ``${!iot:Connection.Thing.ThingName}`` becomes the IoT policy
    variable ``${iot:Connection.Thing.ThingName}``, which pins every topic to the certificate's thing, so a
    device can never publish as another one.
    """
    arn = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}"
    thing = "${!iot:Connection.Thing.ThingName}"  # "${!" keeps the IoT policy variable through Fn::Sub
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}",
             "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": [
                f"{arn}:topic/{TOPIC_PREFIX}/{thing}/up",
                f"{arn}:topic/$aws/things/{thing}/shadow/*",
            ]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
                f"{arn}:topicfilter/{TOPIC_PREFIX}/{thing}/*",
                f"{arn}:topicfilter/{TOPIC_PREFIX}/+/down",
                f"{arn}:topicfilter/$aws/things/{thing}/shadow/*",
            ]},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": [
                f"{arn}:topic/{TOPIC_PREFIX}/{thing}/*",
                f"{arn}:topic/{TOPIC_PREFIX}/*/down",
                f"{arn}:topic/$aws/things/{thing}/shadow/*",
            ]},
        ],
    }


def build_resources() -> dict[str, Any]:
    """The CloudFormation fragment (``Resources`` and ``Outputs``) merged into Chalice's template."""
    queue_arn = {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    dlq_arn = {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    return {
        "Resources": {
            "ResourceTable": {"Type": "AWS::DynamoDB::Table", "Properties": table_definition()},
            "IngestDeadLetterQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
            },
            "IngestQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": INGEST_VISIBILITY_TIMEOUT_S,
                    "SqsManagedSseEnabled": True,
                    "RedrivePolicy": {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT},
                },
            },
            "IngestRuleRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"},
                                       "Action": "sts:AssumeRole"}],
                    },
                    "Policies": [{
                        "PolicyName": "send-to-ingest-queue",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage",
                                           "Resource": [queue_arn, dlq_arn]}],
                        },
                    }],
                },
            },
            "IngestTopicRule": {
                "Type": "AWS::IoT::TopicRule",
                "Properties": {
                    "TopicRulePayload": {
                        "Sql": ingest_rule_sql(),
                        "AwsIotSqlVersion": "2016-03-23",
                        "RuleDisabled": False,
                        "Actions": [{"Sqs": {"QueueUrl": {"Ref": "IngestQueue"},
                                             "RoleArn": {"Fn::GetAtt": ["IngestRuleRole", "Arn"]},
                                             "UseBase64": False}}],
                        "ErrorAction": {"Sqs": {"QueueUrl": {"Ref": "IngestDeadLetterQueue"},
                                                "RoleArn": {"Fn::GetAtt": ["IngestRuleRole", "Arn"]},
                                                "UseBase64": False}},
                    },
                },
            },
            "IngestEventSource": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": queue_arn,
                    "FunctionName": {"Ref": INGEST_FUNCTION},
                    "BatchSize": 10,
                    "MaximumBatchingWindowInSeconds": 1,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            },
            "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "mycontroller"}},
            "ForwardPayloadRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventBusName": {"Ref": "EventBus"},
                    "EventPattern": FORWARD_PATTERN,
                    "Targets": [{"Id": "forward-payload", "Arn": {"Fn::GetAtt": [FORWARD_FUNCTION, "Arn"]},
                                 "RetryPolicy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600},
                                 "DeadLetterConfig": {"Arn": dlq_arn}}],
                },
            },
            "ForwardPayloadPermission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Ref": FORWARD_FUNCTION},
                    "Principal": "events.amazonaws.com",
                    "SourceArn": {"Fn::GetAtt": ["ForwardPayloadRule", "Arn"]},
                },
            },
            "EdgePolicy": {"Type": "AWS::IoT::Policy",
                           "Properties": {"PolicyDocument": {"Fn::Sub": json.dumps(edge_policy_document())}}},
        },
        "Outputs": {
            "TableName": {"Value": {"Ref": "ResourceTable"}},
            "IngestQueueArn": {"Value": queue_arn},
            "IngestDeadLetterQueueUrl": {"Value": {"Ref": "IngestDeadLetterQueue"}},
            "EventBusName": {"Value": {"Ref": "EventBus"}},
            "EdgePolicyName": {"Value": {"Ref": "EdgePolicy"}},
        },
    }


def main() -> None:
    json.dump(build_resources(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
