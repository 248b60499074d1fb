"""The AWS resources beside the Chalice functions, as a CloudFormation fragment for ``chalice package``.

``python -m infra.template > build/resources.json`` writes it; ``chalice package --merge-template
build/resources.json build/`` merges it with the functions Chalice generates, so that one CloudFormation stack
holds everything (see "Deploying to AWS" in the README):

* the single DynamoDB table (its schema comes from the DynamoDB repository adapter, so they cannot drift),
* the ingest queue and its dead-letter queue (redrive after ``MAX_RECEIVE_COUNT`` deliveries),
* the event source mapping that feeds the ingest function up to ``INGEST_BATCH_PUBLISHES`` (100) records at a
  time, gathered for at most a second, with partial batch responses (``ReportBatchItemFailures``), so only
  failed records are retried,
* the IoT topic rule that forwards every edge publish (``mc/<edge>/up``) to the ingest queue, with an error
  action to the DLQ, and its role,
* the EventBridge bus for domain events, and its three consumers (``bus_consumer_resources``): each rule
  (``field.updated`` → forward payload, every event → tasks, every event → websocket notify) targets its own SQS
  queue (with a DLQ, and a queue policy that lets only that rule send), which feeds the function in batches with
  partial batch responses: one invocation per batch, not per event (``chalicelib/bus_consumers.py``),
* the IoT policy edge devices get: they connect as their thing name and publish only to their own topics,
* the EventBridge Scheduler schedule group, the role Scheduler assumes to invoke the ``scheduled`` function, and
  the ``SCHEDULER_*`` settings of the functions that keep schedules in step (the API, tasks and scheduled
  functions; merged into Chalice's definitions),
* the websocket connections table and the ``websocket_notify`` function's management endpoint (Chalice itself
  makes the websocket API and its three handlers).

moto does not fire IoT rules, so tests check this definition and call the ingest handler the rule would feed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from chalicelib.adapters.connections_dynamodb import connections_table_definition
from chalicelib.adapters.repository_dynamodb import table_definition
from chalicelib.core.envelope import INGEST_BATCH_PUBLISHES
from chalicelib.functions.automation import TASKS_PATTERN
from chalicelib.functions.forward import FORWARD_PATTERN
from chalicelib.services.websocket import NOTIFY_PATTERN
from infra import identity

TOPIC_PREFIX = "mc"
CONNECTIONS_TABLE = "mycontroller-connections"
"""The websocket connections table (``CONNECTIONS_TABLE``'s default, so the handlers need no setting)."""
MAX_RECEIVE_COUNT = 5
INGEST_VISIBILITY_TIMEOUT_S = 180
"""Six times the ingest function's timeout (30 s), as AWS advises for SQS event sources."""
UP_TOPIC_FILTER = f"{TOPIC_PREFIX}/+/up"
FORWARD_FUNCTION = "ForwardPayload"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="forward_payload")``."""
INGEST_FUNCTION = "Ingest"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="ingest")``."""
HANDLERS_FUNCTION = "Handlers"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="handlers")``."""
HANDLER_VISIBILITY_TIMEOUT_S = 360
"""Six times the handler function's timeout (60 s: a few webhook calls with their 10 s timeouts)."""
CONSUMER_TIMEOUT_S = 60
"""The bus consumers' function timeout: Chalice's default, as ``.chalice/config.json`` sets none for them."""
CONSUMER_BATCH_SIZE = 100
"""Events a tasks or forward payload invocation takes at most (SQS allows more than 10 only with a batching
window of at least one second)."""
CONSUMER_BATCHING_WINDOW_S = 1
NOTIFY_BATCH_SIZE = 10
"""Websocket notify waits for no batching window (a push is worth little late), and without one SQS allows at
most 10 records a batch; the long poll still hands over up to 10 events that are waiting."""
NOTIFY_BATCHING_WINDOW_S = 0


def handler_environment() -> dict[str, Any]:
    """What the functions that queue handler runs (and the handler function) need: the queue and the key that
    encrypts handler secrets at rest."""
    return {"HANDLER_QUEUE": "sqs", "HANDLER_QUEUE_URL": {"Ref": "HandlerQueue"},
            "SECRETS": "kms", "KMS_KEY_ID": {"Ref": "SecretsKey"}}
TASKS_FUNCTION = "Tasks"
SCHEDULED_FUNCTION = "Scheduled"
API_FUNCTION = "APIHandler"
SCHEDULE_GROUP = "mycontroller"
SCHEDULER_FUNCTIONS = (API_FUNCTION, TASKS_FUNCTION, SCHEDULED_FUNCTION)
"""The functions that put or delete EventBridge Scheduler schedules (they get the ``SCHEDULER_*`` settings)."""


SCHEDULED_FUNCTION_NAME: dict[str, Any] = {"Fn::Sub": "${AWS::StackName}-scheduled"}
SCHEDULED_FUNCTION_ARN: dict[str, Any] = {
    "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-scheduled"}
"""The scheduled function is named, not looked up (``Fn::GetAtt``): it needs its own ARN in its environment (it
re-arms one-shot schedules), and the Scheduler role names it, which would otherwise be circular."""


def scheduler_environment() -> dict[str, Any]:
    """The ``SCHEDULER_*`` variables, merged into the Chalice functions' ``Environment``."""
    return {"SCHEDULER": "eventbridge",
            "SCHEDULER_TARGET_ARN": SCHEDULED_FUNCTION_ARN,
            "SCHEDULER_ROLE_ARN": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
            "SCHEDULER_GROUP": {"Ref": "ScheduleGroup"}}


BLOB_BUCKET = "BlobBucket"
"""Firmware files and backups (the API function's ``BLOBS=s3``). CloudFormation names it
``<stack>-blobbucket-<random>``, which ``.chalice/policy-dev.json`` grants as ``*-blobbucket-*``."""


def blob_environment() -> dict[str, Any]:
    """The API function's blob store: the bucket, and archives up to 5 MB (Lambda's request and response payloads
    are 6 MB, base64 included: 4 MB is 5.3 MB encoded); larger ones only locally."""
    return {"BLOBS": "s3", "BLOB_BUCKET": {"Ref": BLOB_BUCKET}, "BACKUP_MAX_BYTES": "4000000",
            "FIRMWARE_MAX_BYTES": "4000000"}


def blob_bucket() -> dict[str, Any]:
    """Private (every public access blocked, owner-enforced objects), encrypted, TLS only, versioned with old versions
    expiring (a deleted backup can be recovered for 30 days)."""
    bucket_arn = {"Fn::GetAtt": [BLOB_BUCKET, "Arn"]}
    return {
        BLOB_BUCKET: {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]},
                "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                   "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "VersioningConfiguration": {"Status": "Enabled"},
                "LifecycleConfiguration": {"Rules": [{
                    "Id": "expire-old-versions", "Status": "Enabled",
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]},
            },
        },
        f"{BLOB_BUCKET}Policy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": BLOB_BUCKET}, "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                               "Resource": [bucket_arn, {"Fn::Sub": "${BlobBucket.Arn}/*"}],
                               "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}},
        },
    }


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


WEBSOCKET_NOTIFY_FUNCTION = "WebsocketNotify"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="websocket_notify")``."""
WEBSOCKET_MANAGEMENT_ENDPOINT: dict[str, Any] = {
    "Fn::Sub": "https://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${WebsocketAPIStage}"}
"""Where the notify function posts (``WebsocketAPI`` and its stage are Chalice's websocket API resources)."""


def bus_consumer_resources(name: str, function: str, pattern: dict[str, Any], *, batch_size: int,
                           window_s: int, retry_policy: dict[str, int]) -> dict[str, Any]:
    """One consumer of the bus: ``<name>Rule`` (the pattern) → ``<name>Queue`` (DLQ ``<name>DeadLetterQueue``
    after ``MAX_RECEIVE_COUNT`` deliveries; also where EventBridge puts what it could not deliver) → the function,
    through ``<name>EventSource`` in batches with partial batch responses. ``<name>QueuePolicy`` lets
    EventBridge send to the two queues for this rule only (``aws:SourceArn``)."""
    queue_arn = {"Fn::GetAtt": [f"{name}Queue", "Arn"]}
    dlq_arn = {"Fn::GetAtt": [f"{name}DeadLetterQueue", "Arn"]}
    return {
        f"{name}DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
        },
        f"{name}Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                # AWS: at least six times the function's timeout, plus the batching window
                "VisibilityTimeout": 6 * CONSUMER_TIMEOUT_S + window_s,
                "SqsManagedSseEnabled": True,
                "RedrivePolicy": {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT},
            },
        },
        f"{name}QueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": f"{name}Queue"}, {"Ref": f"{name}DeadLetterQueue"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Sid": "bus-rule", "Effect": "Allow",
                                   "Principal": {"Service": "events.amazonaws.com"},
                                   "Action": "sqs:SendMessage", "Resource": [queue_arn, dlq_arn],
                                   "Condition": {"ArnEquals": {
                                       "aws:SourceArn": {"Fn::GetAtt": [f"{name}Rule", "Arn"]}}}}],
                },
            },
        },
        f"{name}Rule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventBusName": {"Ref": "EventBus"},
                "EventPattern": pattern,
                "Targets": [{"Id": f"{name}Queue", "Arn": queue_arn, "RetryPolicy": retry_policy,
                             "DeadLetterConfig": {"Arn": dlq_arn}}],
            },
        },
        f"{name}EventSource": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": queue_arn,
                "FunctionName": {"Ref": function},
                "BatchSize": batch_size,
                "MaximumBatchingWindowInSeconds": window_s,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        },
    }


BUS_CONSUMERS: dict[str, dict[str, Any]] = {
    "ForwardPayload": {"function": FORWARD_FUNCTION, "pattern": FORWARD_PATTERN, "batch_size": CONSUMER_BATCH_SIZE,
                       "window_s": CONSUMER_BATCHING_WINDOW_S,
                       "retry_policy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}},
    "Tasks": {"function": TASKS_FUNCTION, "pattern": TASKS_PATTERN, "batch_size": CONSUMER_BATCH_SIZE,
              "window_s": CONSUMER_BATCHING_WINDOW_S,
              "retry_policy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}},
    # a push is worth little late: few delivery retries, short age
    "WebsocketNotify": {"function": WEBSOCKET_NOTIFY_FUNCTION, "pattern": NOTIFY_PATTERN,
                        "batch_size": NOTIFY_BATCH_SIZE, "window_s": NOTIFY_BATCHING_WINDOW_S,
                        "retry_policy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60}},
}
"""The bus's consumers by resource name prefix: their function, rule pattern (the same the local bus uses),
batching and EventBridge delivery retries. ``bench/cost.py`` counts invocations from this table."""


def websocket_resources() -> dict[str, Any]:
    """The connections table (TTL on ``expiresAt``) and the notify function's ``WEBSOCKET_ENDPOINT`` (merged into
    Chalice's definition); its rule and queue are in ``BUS_CONSUMERS``."""
    return {
        "ConnectionsTable": {"Type": "AWS::DynamoDB::Table",
                             "Properties": connections_table_definition(CONNECTIONS_TABLE)},
        WEBSOCKET_NOTIFY_FUNCTION: {"Properties": {"Environment": {"Variables": {
            "WEBSOCKET_ENDPOINT": WEBSOCKET_MANAGEMENT_ENDPOINT, "CONNECTIONS_TABLE": {"Ref": "ConnectionsTable"}}}}},
    }


SHADOW_NAME = "mycontroller"
"""The edge devices' named shadow holding their gateway configs (``SHADOW_NAME``'s default on both sides)."""
SHADOW_REPORTED_FUNCTION = "ShadowReported"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="shadow_reported")``."""
SHADOW_DOCUMENTS_FILTER = f"$aws/things/+/shadow/name/{SHADOW_NAME}/update/documents"


def shadow_rule_sql() -> str:
    """Every accepted update of an edge's shadow that holds a reported section, with the thing name added (the
    function skips documents whose reported section did not change: the cloud's own desired updates)."""
    return (f"SELECT *, topic(3) AS thing FROM '{SHADOW_DOCUMENTS_FILTER}' "
            "WHERE NOT isUndefined(current.state.reported)")


def shadow_resources() -> dict[str, Any]:
    """The IoT rule feeding the edges' reported state to the ``shadow_reported`` function (errors to the DLQ
    through the ingest rule's role), and the permission for IoT to invoke it."""
    role = {"Fn::GetAtt": ["IngestRuleRole", "Arn"]}
    return {
        "ShadowReportedTopicRule": {
            "Type": "AWS::IoT::TopicRule",
            "Properties": {"TopicRulePayload": {
                "Sql": shadow_rule_sql(),
                "AwsIotSqlVersion": "2016-03-23",
                "RuleDisabled": False,
                "Actions": [{"Lambda": {"FunctionArn": {"Fn::GetAtt": [SHADOW_REPORTED_FUNCTION, "Arn"]}}}],
                "ErrorAction": {"Sqs": {"QueueUrl": {"Ref": "IngestDeadLetterQueue"}, "RoleArn": role,
                                        "UseBase64": False}},
            }},
        },
        "ShadowReportedPermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": SHADOW_REPORTED_FUNCTION},
                "Principal": "iot.amazonaws.com",
                "SourceArn": {"Fn::GetAtt": ["ShadowReportedTopicRule", "Arn"]},
            },
        },
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
                        "Sql": identity.ingest_rule_sql(),
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
                    "BatchSize": INGEST_BATCH_PUBLISHES,  # (more than 10 needs a batching window of 1 s or more)
                    "MaximumBatchingWindowInSeconds": 1,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            },
            "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "mycontroller"}},
            **{resource: definition for name, consumer in BUS_CONSUMERS.items()
               for resource, definition in bus_consumer_resources(name, **consumer).items()},
            "ScheduleGroup": {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {"Name": SCHEDULE_GROUP}},
            "SchedulerRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"},
                                       "Action": "sts:AssumeRole",
                                       "Condition": {"StringEquals": {
                                           "aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}],
                    },
                    "Policies": [{
                        "PolicyName": "invoke-scheduled-function",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                           "Resource": [SCHEDULED_FUNCTION_ARN]}],
                        },
                    }],
                },
            },
            **{name: {"Properties": {"Environment": {"Variables": {**scheduler_environment(),
                                                                   **handler_environment(),
                                                                   **(blob_environment()
                                                                      if name == API_FUNCTION else {})}},
                                     **({"FunctionName": SCHEDULED_FUNCTION_NAME}
                                        if name == SCHEDULED_FUNCTION else {})}}
               for name in SCHEDULER_FUNCTIONS},
            "HandlerDeadLetterQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
            },
            "HandlerQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": HANDLER_VISIBILITY_TIMEOUT_S,
                    "SqsManagedSseEnabled": True,
                    "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["HandlerDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": MAX_RECEIVE_COUNT},
                },
            },
            "HandlerEventSource": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["HandlerQueue", "Arn"]},
                    "FunctionName": {"Ref": HANDLERS_FUNCTION},
                    "BatchSize": 10,
                    "MaximumBatchingWindowInSeconds": 1,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            },
            "SecretsKey": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "Description": "MyController: handler secrets at rest",
                    "EnableKeyRotation": True,
                    "KeyPolicy": {"Version": "2012-10-17", "Statement": [{
                        "Sid": "account", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
                        "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}}]},
                },
            },
            HANDLERS_FUNCTION: {"Properties": {"Timeout": 60, "Environment": {"Variables": {
                **scheduler_environment(), **handler_environment(), "EMAIL": "ses", "SMS": "sns"}}}},
            **websocket_resources(),
            **shadow_resources(),
            **blob_bucket(),
            "EdgePolicy": {"Type": "AWS::IoT::Policy",
                           "Properties": {"PolicyDocument": {"Fn::Sub": json.dumps(identity.edge_policy_document())}}},
        },
        "Outputs": {
            "TableName": {"Value": {"Ref": "ResourceTable"}},
            "IngestQueueArn": {"Value": queue_arn},
            "IngestDeadLetterQueueUrl": {"Value": {"Ref": "IngestDeadLetterQueue"}},
            "EventBusName": {"Value": {"Ref": "EventBus"}},
            "EdgePolicyName": {"Value": {"Ref": "EdgePolicy"}},
            "ConnectionsTableName": {"Value": {"Ref": "ConnectionsTable"}},
            "ScheduleGroupName": {"Value": {"Ref": "ScheduleGroup"}},
            "HandlerQueueUrl": {"Value": {"Ref": "HandlerQueue"}},
            "BlobBucketName": {"Value": {"Ref": BLOB_BUCKET}},
            "HandlerDeadLetterQueueUrl": {"Value": {"Ref": "HandlerDeadLetterQueue"}},
            **{f"{name}DeadLetterQueueUrl": {"Value": {"Ref": f"{name}DeadLetterQueue"}} for name in BUS_CONSUMERS},
        },
    }


def main() -> None:
    json.dump(build_resources(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
