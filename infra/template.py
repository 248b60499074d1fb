"""The AWS resources beside the Lambda functions: the data, queues, bus, IoT rules, scheduler, keys and bucket.

``build_resources()`` is the template's fragment of them (``Resources`` and ``Outputs``); ``infra/package.py`` adds
the parameters, the functions (``infra/functions.py``), the APIs (``infra/apis.py``), the alarms
(``infra/monitoring.py``) and the contributors' pieces (``infra/contributors.py``), and writes the whole template
(``make package``; see "Deploying to AWS" in the README and ``docs/deploy.md``):

* the single DynamoDB table (its schema comes from the DynamoDB repository adapter, so they cannot drift) and the
  websocket connections table, both kept when the stack goes (``DeletionPolicy: Retain``) and with point-in-time
  recovery,
* the ingest queue and its dead-letter queue (redrive after ``MAX_RECEIVE_COUNT`` deliveries),
* the event source mapping that feeds the ingest function up to ``INGEST_BATCH_PUBLISHES`` (100) records at a
  time, gathered for at most a second, with partial batch responses (``ReportBatchItemFailures``), so only
  failed records are retried, and at most ``IngestMaximumConcurrency`` invocations at once (the mapping holds
  the rest back; reserved concurrency would throttle them into the DLQ),
* the IoT topic rule that forwards every edge publish (``mc/<edge>/up``) to the ingest queue, with an error
  action to the DLQ, and its role,
* the EventBridge bus for domain events, and its three consumers (``bus_consumer_resources``): each rule
  (``field.updated`` → forward payload, every event → tasks, every event → websocket notify) targets its own SQS
  queue (with a DLQ, and a queue policy that lets only that rule send), which feeds the function in batches with
  partial batch responses: one invocation per batch, not per event (``chalicelib/bus_consumers.py``),
* the IoT policy edge devices get: they connect as their thing name and publish only to their own topics,
* the EventBridge Scheduler schedule group and the role Scheduler assumes to invoke the ``scheduled`` function,
* the handler queue (and its DLQ), the KMS key for handler secrets, the blob bucket, and the Secrets Manager secret
  holding the first admin's password (the ``AdminPassword`` parameter).

Every physical name derives from the stack's name (or is CloudFormation's ``<stack>-<logical id>-<suffix>``), so
two stacks live side by side in one account and region.

moto does not fire IoT rules, so tests check this definition and call the ingest handler the rule would feed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from chalicelib.adapters.connections_dynamodb import connections_table_definition
from chalicelib.adapters.repository_dynamodb import table_definition
from chalicelib.core.auth import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS
from chalicelib.core.envelope import INGEST_BATCH_PUBLISHES
from chalicelib.functions.automation import TASKS_PATTERN
from chalicelib.functions.forward import FORWARD_PATTERN
from chalicelib.services.websocket import NOTIFY_PATTERN
from infra import identity

MAX_RECEIVE_COUNT = 5
INGEST_TIMEOUT_S = 30
"""The ingest function's timeout (``infra/functions.py``): a batch of 100 publishes takes well under a second."""
BATCHING_WINDOW_S = 1
"""How long the ingest and handler mappings gather a batch (more than 10 records need at least a second)."""
INGEST_VISIBILITY_TIMEOUT_S = 6 * INGEST_TIMEOUT_S + BATCHING_WINDOW_S
"""Six times the function's timeout plus the batching window, as AWS advises for SQS event sources."""
FORWARD_FUNCTION = "ForwardPayload"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="forward_payload")``."""
INGEST_FUNCTION = "Ingest"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="ingest")``."""
HANDLERS_FUNCTION = "Handlers"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="handlers")``."""
HANDLER_TIMEOUT_S = 60
"""The handler function's timeout: a few webhook calls with their 10 s timeouts."""
HANDLER_VISIBILITY_TIMEOUT_S = 6 * HANDLER_TIMEOUT_S + BATCHING_WINDOW_S
CONSUMER_TIMEOUT_S = 60
"""The timeout of the bus consumers (and of every function without one of its own, ``infra/functions.py``)."""
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
API_FUNCTION = "APIHandler"
SCHEDULE_GROUP: dict[str, Any] = {"Fn::Sub": "${AWS::StackName}"}
"""The schedule group is named after the stack (its schedules are named by the functions, inside it)."""


SCHEDULED_FUNCTION_ARN: dict[str, Any] = {
    "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-scheduled"}
"""The scheduled function is named, not looked up (``Fn::GetAtt``): it needs its own ARN in its environment (it
re-arms one-shot schedules), and the Scheduler role names it, which would otherwise be circular."""


def scheduler_environment() -> dict[str, Any]:
    """The ``SCHEDULER_*`` variables of the functions (``infra/functions.py``)."""
    return {"SCHEDULER": "eventbridge",
            "SCHEDULER_TARGET_ARN": SCHEDULED_FUNCTION_ARN,
            "SCHEDULER_ROLE_ARN": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
            "SCHEDULER_GROUP": {"Ref": "ScheduleGroup"}}


BLOB_BUCKET = "BlobBucket"
"""Firmware files and backups (the API function's ``BLOBS=s3``). CloudFormation names it
``<stack>-blobbucket-<random>``; the API function's role names it by ``Fn::GetAtt``."""


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


RETAINED: dict[str, str] = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
"""What holds data stays when the stack is deleted or the resource replaced (``make destroy PURGE=1`` removes it)."""
POINT_IN_TIME_RECOVERY: dict[str, Any] = {"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}}


def table(properties: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB table that is kept and can be restored to any second of the last 35 days."""
    return {"Type": "AWS::DynamoDB::Table", **RETAINED, "Properties": {**properties, **POINT_IN_TIME_RECOVERY}}


def websocket_resources() -> dict[str, Any]:
    """The connections table (TTL on ``expiresAt``); the notify function's rule and queue are in
    ``BUS_CONSUMERS``, its ``WEBSOCKET_ENDPOINT`` in ``infra/functions.py``."""
    return {"ConnectionsTable": table(connections_table_definition())}


ADMIN_PASSWORD_LENGTH = 24


def admin_password_resources() -> dict[str, Any]:
    """The ``AdminPassword`` parameter (``NoEcho``) kept in Secrets Manager, or a password Secrets Manager
    generates when it is empty; only the API function's role reads it (``ADMIN_PASSWORD_SECRET``): never an
    environment value, never an output (the secret's ARN is, for whoever may read it)."""
    no_value = {"Ref": "AWS::NoValue"}
    return {"AdminPasswordSecret": {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "Description": {"Fn::Sub": "${AWS::StackName}: the first admin user's password"},
            "SecretString": {"Fn::If": ["HasAdminPassword", {"Ref": "AdminPassword"}, no_value]},
            "GenerateSecretString": {"Fn::If": ["HasAdminPassword", no_value, {
                "PasswordLength": ADMIN_PASSWORD_LENGTH, "ExcludePunctuation": True}]},
        },
    }}



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


LOG_RETENTION_DAYS: tuple[int, ...] = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                                      2192, 2557, 2922, 3288, 3653)
"""What CloudWatch Logs accepts as a retention."""
DEFAULT_STAGE = "v1"
"""The API stage: the REST API's URL is ``https://<id>.execute-api.<region>.amazonaws.com/v1`` and its routes keep
their ``/api/...`` paths under it (``…/v1/api/status``): a stage named ``api`` would make every URL ``/api/api/…``."""


def parameters() -> dict[str, Any]:
    """The stack's parameters (``docs/deploy.md`` explains each) and the conditions on them."""
    return {
        "Parameters": {
            "AdminPassword": {
                "Type": "String", "NoEcho": True, "Default": "",
                "AllowedPattern": f"^$|^.{{{MIN_PASSWORD_CHARS},{MAX_PASSWORD_BYTES}}}$",
                "ConstraintDescription": f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} characters (or empty)",
                "Description": "The first admin user's password, kept in Secrets Manager (empty: generated there); "
                               "read when no user exists yet, so a later change does not change an existing "
                               "admin's password"},
            "StageName": {"Type": "String", "Default": DEFAULT_STAGE, "AllowedPattern": "^[A-Za-z0-9_]{1,64}$",
                          "Description": "The API stage: URLs are https://<api>/<stage>/api/..."},
            "LogRetentionDays": {"Type": "Number", "Default": 30, "AllowedValues": list(LOG_RETENTION_DAYS),
                                 "Description": "Days each function's log group keeps its logs"},
            "LogLevel": {"Type": "String", "Default": "INFO",
                         "AllowedValues": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                         "Description": "The functions' log level"},
            "AlarmEmail": {"Type": "String", "Default": "",
                           "AllowedPattern": "^$|^[^@\\s]+@[^@\\s]+$",
                           "Description": "Where alarms are e-mailed (a subscription to confirm); empty: none"},
            "IotDataEndpoint": {"Type": "String", "Default": "", "AllowedPattern": "^[A-Za-z0-9.-]*$",
                                "Description": "The account's IoT data endpoint (iot:Data-ATS; make deploy looks it "
                                               "up); empty: the region's default"},
            "IngestMaximumConcurrency": {"Type": "Number", "Default": 20, "MinValue": 2, "MaxValue": 1000,
                                         "Description": "Ingest invocations at most at once (the queue holds the "
                                                        "rest back)"},
        },
        "Conditions": {
            "HasAdminPassword": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AdminPassword"}, ""]}]},
            "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
            "HasIotDataEndpoint": {"Fn::Not": [{"Fn::Equals": [{"Ref": "IotDataEndpoint"}, ""]}]},
        },
    }


def build_resources() -> dict[str, Any]:
    """The CloudFormation fragment (``Resources`` and ``Outputs``) merged into Chalice's template."""
    queue_arn = {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    dlq_arn = {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    return {
        "Resources": {
            "ResourceTable": table(table_definition()),
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
                    "MaximumBatchingWindowInSeconds": BATCHING_WINDOW_S,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "ScalingConfig": {"MaximumConcurrency": {"Ref": "IngestMaximumConcurrency"}},
                },
            },
            "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": {"Fn::Sub": "${AWS::StackName}"}}},
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
                    "MaximumBatchingWindowInSeconds": BATCHING_WINDOW_S,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            },
            "SecretsKey": {
                "Type": "AWS::KMS::Key",
                **RETAINED,  # handler secrets stored in the table are unreadable without it
                "Properties": {
                    "Description": "MyController: handler secrets at rest",
                    "EnableKeyRotation": True,
                    "KeyPolicy": {"Version": "2012-10-17", "Statement": [{
                        "Sid": "account", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
                        "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}}]},
                },
            },
            **websocket_resources(),
            **admin_password_resources(),
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
            "AdminPasswordSecretArn": {"Description": "The first admin's password (aws secretsmanager "
                                                      "get-secret-value)", "Value": {"Ref": "AdminPasswordSecret"}},
            "HandlerDeadLetterQueueUrl": {"Value": {"Ref": "HandlerDeadLetterQueue"}},
            **{f"{name}DeadLetterQueueUrl": {"Value": {"Ref": f"{name}DeadLetterQueue"}} for name in BUS_CONSUMERS},
        },
    }


def main() -> None:
    """The whole template on stdout (``make package`` writes it to ``build/template.json``)."""
    from .package import build_template

    json.dump(build_template(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
