"""The AWS resources beside the Lambda functions: the data, queues, bus, IoT rules, scheduler, keys and bucket.

``build_resources()`` is the template's fragment of them (``Resources`` and ``Outputs``); ``infra/package.py`` adds
the parameters, the functions (``infra/functions.py``), the APIs (``infra/apis.py``), the alarms
(``infra/monitoring.py``) and the contributors' pieces (``infra/contributors.py``), and writes the whole template
(``make package``; see "Deploying to AWS" in the README and ``docs/deploy.md``):

* the single DynamoDB table (its schema comes from the DynamoDB repository adapter, so they cannot drift) and the
  websocket connections table, both kept when the stack goes (``DeletionPolicy: Retain``) and with point-in-time
  recovery,
* the ingest queue and its dead-letter queue (redrive after ``MAX_RECEIVE_COUNT`` deliveries),
* the ingest function's feed: by default (``IngestBatchWindow=0``, a home) the IoT topic rule invokes it with each
  edge publish (``mc/<edge>/up``, or ``$aws/rules/<stack>_ingest/mc/<edge>/up`` through IoT Basic Ingest, which the
  provisioned edge uses: no messaging charge; the rule's name is fixed for it) itself, asynchronously: no queue, no
  poller; a failed invocation is retried by Lambda twice and then kept in the DLQ (``INGEST_DIRECT``); the edge
  already packs a second of messages a publish, and a window here would double the device-to-console latency.
  With ``IngestBatchWindow`` of a second or more the rule sends each publish to the ingest queue, whose event
  source mapping hands the function up to
  ``INGEST_BATCH_PUBLISHES`` (100) gathered for that long (a fleet at load: writes and events per message fall
  with the batch), with partial batch responses (``ReportBatchItemFailures``), so only failed records are
  retried, and at most ``IngestMaximumConcurrency`` invocations at once (the mapping holds the rest back; reserved
  concurrency would throttle them into the DLQ); without a window that mapping stays, disabled, as a redrive. The
  rule's error action sends to the DLQ, through its role,
* the EventBridge bus for domain events, and its three consumers (``bus_consumer_resources``): each rule
  (packs addressed to forward payload → it, packs addressed to tasks → them, packs a live websocket wants →
  websocket notify) invokes its function directly, one invocation per pack of events (``core/bus_packing.py``),
  with retries and a dead-letter queue (and a disabled mapping that redrives it): no queue, no poller
  (``chalicelib/functions/bus_consumers.py``),
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
from typing import Any, Final

from chalicelib.adapters.connections_dynamodb import connections_table_definition
from chalicelib.adapters.repository_dynamodb import table_definition
from chalicelib.core.auth import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS
from chalicelib.core.bus_packing import AUTOMATION_CONSUMERS, packed_pattern
from chalicelib.core.publish_reader import INGEST_BATCH_PUBLISHES
from chalicelib.functions.automation import TASKS_PATTERN
from chalicelib.functions.forward import FORWARD_PATTERN
from chalicelib.services.websocket import NOTIFY_PATTERN
from infra import identity
from infra.buckets import bucket_policy, private_bucket

MAX_RECEIVE_COUNT = 5
INGEST_TIMEOUT_S = 30
"""The ingest function's timeout (``infra/functions.py``): a batch of 100 publishes takes well under a second."""
BATCHING_WINDOW_S = 1
"""How long the handler mapping gathers a batch (more than 10 records need at least a second)."""
IMMEDIATE_BATCH_PUBLISHES = 10
"""The ingest batch without a window: what SQS allows (more than 10 records need a window of a second or more)."""
MAX_INGEST_WINDOW_S = 5
"""The longest ``IngestBatchWindow`` the stack takes."""
INGEST_WINDOWED: Final = "IngestWindowed"
"""The condition of ``IngestBatchWindow`` above 0."""
INGEST_DIRECT: Final = "IngestDirect"
"""``IngestBatchWindow=0``: the IoT rule invokes the ingest function with each publish itself (asynchronously:
Lambda's retries, then ``IngestDeadLetterQueue``), no queue between (no SQS requests, no poller); the ingest queue's
mapping stays, disabled, to hand back what is put there. With a window the rule sends to the queue, whose mapping
gathers the publishes."""
INGEST_VISIBILITY_TIMEOUT_S = 6 * INGEST_TIMEOUT_S + MAX_INGEST_WINDOW_S
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
    return {
        **private_bucket(
            BLOB_BUCKET, retain=True,
            VersioningConfiguration={"Status": "Enabled"},
            LifecycleConfiguration={"Rules": [{
                "Id": "expire-old-versions", "Status": "Enabled",
                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}),
        **bucket_policy(BLOB_BUCKET),
    }


WEBSOCKET_NOTIFY_FUNCTION = "WebsocketNotify"
"""The logical id ``chalice package`` gives ``@app.lambda_function(name="websocket_notify")``."""
WEBSOCKET_MANAGEMENT_ENDPOINT: dict[str, Any] = {
    "Fn::Sub": "https://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${WebsocketAPIStage}"}
"""Where the notify function posts (``WebsocketAPI`` and its stage are Chalice's websocket API resources)."""


def bus_consumer_resources(name: str, function: str, pattern: dict[str, Any], *,
                           retry_policy: dict[str, int]) -> dict[str, Any]:
    """One consumer of the bus: ``<name>Rule`` (its pattern over packs of events) invokes the function directly
    (``<name>Permission``), EventBridge retrying a delivery that fails (``retry_policy``) and putting what it could
    not deliver in ``<name>DeadLetterQueue``; Lambda retries a failed invocation twice and then puts the event in
    the same queue (the function's ``DeadLetterConfig``, ``infra/functions.py``). No queue sits between the rule
    and the function: no SQS requests per event and no pollers on an idle stack. ``<name>Redrive`` is an event
    source mapping from the dead-letter queue to the function, created disabled: enabling it hands the dead
    letters back (``docs/deploy.md``). ``<name>DeadLetterQueuePolicy`` lets EventBridge send there for this rule
    only (``aws:SourceArn``)."""
    dlq_arn = {"Fn::GetAtt": [f"{name}DeadLetterQueue", "Arn"]}
    rule_arn = {"Fn::GetAtt": [f"{name}Rule", "Arn"]}
    return {
        f"{name}DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True,
                           "VisibilityTimeout": 6 * CONSUMER_TIMEOUT_S},
        },
        f"{name}DeadLetterQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": f"{name}DeadLetterQueue"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Sid": "bus-rule", "Effect": "Allow",
                                   "Principal": {"Service": "events.amazonaws.com"},
                                   "Action": "sqs:SendMessage", "Resource": [dlq_arn],
                                   "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}],
                },
            },
        },
        f"{name}Rule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventBusName": {"Ref": "EventBus"},
                "EventPattern": pattern,
                "Targets": [{"Id": function, "Arn": {"Fn::GetAtt": [function, "Arn"]}, "RetryPolicy": retry_policy,
                             "DeadLetterConfig": {"Arn": dlq_arn}}],
            },
        },
        f"{name}Permission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {"Action": "lambda:InvokeFunction", "FunctionName": {"Ref": function},
                           "Principal": "events.amazonaws.com", "SourceArn": rule_arn},
        },
        f"{name}Redrive": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": dlq_arn,
                "FunctionName": {"Ref": function},
                "Enabled": False,
                "BatchSize": REDRIVE_BATCH_SIZE,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        },
    }


FORWARD_CONSUMER, TASKS_CONSUMER = AUTOMATION_CONSUMERS
"""The names packs address these consumers by (``detail.to``): the ingest addresses a pack to a consumer only when
an enabled forward payload or task acts on one of its events (``functions/interest.py``)."""
REDRIVE_BATCH_SIZE = 10
"""Dead letters a redrive invocation takes (each is one pack of events)."""
BUS_CONSUMERS: dict[str, dict[str, Any]] = {
    "ForwardPayload": {"function": FORWARD_FUNCTION,
                       "pattern": packed_pattern(FORWARD_PATTERN, to=FORWARD_CONSUMER),
                       "retry_policy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}},
    "Tasks": {"function": TASKS_FUNCTION, "pattern": packed_pattern(TASKS_PATTERN, to=TASKS_CONSUMER),
              "retry_policy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}},
    # a push is worth little late: few delivery retries, short age; only packs a live websocket wants
    "WebsocketNotify": {"function": WEBSOCKET_NOTIFY_FUNCTION, "pattern": packed_pattern(NOTIFY_PATTERN, watched=True),
                        "retry_policy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60}},
}
"""The bus's consumers by resource name prefix: their function, rule pattern (the local bus's per-event pattern,
as packs carry it: ``core/bus_packing.py``) and EventBridge's delivery retries. ``bench/cost.py`` reads the
template they make."""


def async_dead_letter_queues() -> dict[str, str]:
    """Function logical id → the queue Lambda puts its failed asynchronous invocations in (the ingest's: a publish
    the IoT rule handed it directly, ``IngestBatchWindow=0``, that failed every attempt, kept as an ingest record
    beside the letters the function puts there itself)."""
    return {**{consumer["function"]: f"{name}DeadLetterQueue" for name, consumer in BUS_CONSUMERS.items()},
            INGEST_FUNCTION: "IngestDeadLetterQueue"}


RETAINED: dict[str, str] = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
"""What holds data stays when the stack is deleted or the resource replaced (``make destroy PURGE=1`` removes it)."""
POINT_IN_TIME_RECOVERY: dict[str, Any] = {"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}}


PROVISIONED: Final = "ProvisionedTable"
"""The condition of ``TableCapacity=provisioned``."""
TARGET_UTILIZATION_PERCENT: Final = 70
INDEX_MIN_CAPACITY: Final = 1
"""An index's floor: its keys change only when a device or resource is made, so it is written and read rarely."""


def capacity_mode(properties: dict[str, Any]) -> dict[str, Any]:
    """The resource table on demand (the default: pay per request, nothing while idle) or, with
    ``TableCapacity=provisioned``, with capacity that auto scaling keeps at ``TARGET_UTILIZATION_PERCENT`` of what is
    used, from ``TableWriteCapacity``/``TableReadCapacity`` up to ``TableMaxCapacity``: a small site sending all day
    pays for its steady rate at about 40 % of the on-demand price (``docs/cost.md``)."""
    no_value = {"Ref": "AWS::NoValue"}
    index_capacity = {"ReadCapacityUnits": INDEX_MIN_CAPACITY, "WriteCapacityUnits": INDEX_MIN_CAPACITY}
    return {
        **properties,
        "BillingMode": {"Fn::If": [PROVISIONED, "PROVISIONED", "PAY_PER_REQUEST"]},
        "ProvisionedThroughput": {"Fn::If": [PROVISIONED, {"ReadCapacityUnits": {"Ref": "TableReadCapacity"},
                                                           "WriteCapacityUnits": {"Ref": "TableWriteCapacity"}},
                                             no_value]},
        "GlobalSecondaryIndexes": [{**index, "ProvisionedThroughput": {"Fn::If": [PROVISIONED, index_capacity,
                                                                                  no_value]}}
                                   for index in properties["GlobalSecondaryIndexes"]],
    }


def autoscaling_resources() -> dict[str, Any]:
    """Target tracking of the table's and its indexes' read and write capacity (``TableCapacity=provisioned``
    only), through Application Auto Scaling's service-linked role."""
    resources: dict[str, Any] = {}
    scopes: list[tuple[str, str, dict[str, str], int | None]] = [
        ("Table", "table", {"Fn::Sub": "table/${ResourceTable}"}, None)]
    scopes += [(f"Index{index['IndexName'].title().replace('_', '')}", "index",
                {"Fn::Sub": f"table/${{ResourceTable}}/index/{index['IndexName']}"}, INDEX_MIN_CAPACITY)
               for index in table_definition()["GlobalSecondaryIndexes"]]
    for name, scope, resource_id, floor in scopes:
        for kind in ("Write", "Read"):
            target = f"{name}{kind}Scaling"
            minimum: Any = floor if floor is not None else {"Ref": f"Table{kind}Capacity"}
            resources[target] = {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Condition": PROVISIONED,
                "Properties": {"ServiceNamespace": "dynamodb", "ResourceId": resource_id,
                               "ScalableDimension": f"dynamodb:{scope}:{kind}CapacityUnits",
                               "MinCapacity": minimum, "MaxCapacity": {"Ref": "TableMaxCapacity"}},
            }
            resources[f"{target}Policy"] = {
                "Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Condition": PROVISIONED,
                "Properties": {
                    "PolicyName": {"Fn::Sub": f"${{AWS::StackName}}-{target}"},
                    "PolicyType": "TargetTrackingScaling", "ScalingTargetId": {"Ref": target},
                    "TargetTrackingScalingPolicyConfiguration": {
                        "TargetValue": TARGET_UTILIZATION_PERCENT,
                        "PredefinedMetricSpecification": {
                            "PredefinedMetricType": f"DynamoDB{kind}CapacityUtilization"}},
                },
            }
    return resources


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
            "IngestBatchWindow": {"Type": "Number", "Default": 0, "MinValue": 0, "MaxValue": MAX_INGEST_WINDOW_S,
                                  "Description": "Seconds the ingest queue gathers publishes for one invocation: 0 "
                                                 "has the IoT rule invoke the ingest with each publish (no queue); "
                                                 "1 or more up to 100 (a fleet at load: fewer writes and events "
                                                 "per message)"},
            "Tracing": {"Type": "String", "Default": "PassThrough", "AllowedValues": ["PassThrough", "Active"],
                        "Description": "X-Ray tracing of the functions: Active samples the first request each "
                                       "second and 5 % of the rest, at $5 per million traces (docs/cost.md)"},
            "FunctionAlarms": {"Type": "String", "Default": "false", "AllowedValues": ["false", "true"],
                               "Description": "Alarms on every function's errors and throttles besides the "
                                              "dead-letter queues' (two alarms a function, $0.10 each a month)"},
            "TableCapacity": {"Type": "String", "Default": "on-demand", "AllowedValues": ["on-demand", "provisioned"],
                              "Description": "The resource table's capacity: on demand (per request), or provisioned "
                                             "with auto scaling (cheaper for a site sending all day)"},
            "TableWriteCapacity": {"Type": "Number", "Default": 5, "MinValue": 1, "MaxValue": 40000,
                                   "Description": "Provisioned: the write capacity auto scaling never goes below"},
            "TableReadCapacity": {"Type": "Number", "Default": 10, "MinValue": 1, "MaxValue": 40000,
                                  "Description": "Provisioned: the read capacity auto scaling never goes below"},
            "TableMaxCapacity": {"Type": "Number", "Default": 200, "MinValue": 1, "MaxValue": 40000,
                                 "Description": "Provisioned: the most read or write capacity auto scaling sets"},
            "LastSeenInterval": {"Type": "Number", "Default": 300, "MinValue": 10, "MaxValue": 600,
                                 "Description": "Seconds between writes of a reporting node's and source's "
                                                "lastSeen (its fields are written with every value)"},
        },
        "Conditions": {
            "HasAdminPassword": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AdminPassword"}, ""]}]},
            "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
            "HasIotDataEndpoint": {"Fn::Not": [{"Fn::Equals": [{"Ref": "IotDataEndpoint"}, ""]}]},
            "HasFunctionAlarms": {"Fn::Equals": [{"Ref": "FunctionAlarms"}, "true"]},
            **{f"Log{level.title()}": {"Fn::Equals": [{"Ref": "LogLevel"}, level]}
               for level in ("DEBUG", "WARNING", "ERROR", "CRITICAL")},
            # (parameters reach conditions as strings: "0", as CloudFormation and the twin give them)
            INGEST_WINDOWED: {"Fn::Not": [{"Fn::Equals": [{"Ref": "IngestBatchWindow"}, "0"]}]},
            INGEST_DIRECT: {"Fn::Equals": [{"Ref": "IngestBatchWindow"}, "0"]},
            PROVISIONED: {"Fn::Equals": [{"Ref": "TableCapacity"}, "provisioned"]},
        },
    }


def build_resources() -> dict[str, Any]:
    """The CloudFormation fragment (``Resources`` and ``Outputs``) merged into Chalice's template."""
    queue_arn = {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    dlq_arn = {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    return {
        "Resources": {
            "ResourceTable": table(capacity_mode(table_definition())),
            **autoscaling_resources(),
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
                    "RuleName": identity.ingest_rule_name(),  # fixed: devices publish to it by Basic Ingest
                    "TopicRulePayload": {
                        "Sql": identity.ingest_rule_sql(),
                        "AwsIotSqlVersion": "2016-03-23",
                        "RuleDisabled": False,
                        "Actions": [{"Fn::If": [INGEST_WINDOWED, {"Sqs": {
                            "QueueUrl": {"Ref": "IngestQueue"}, "RoleArn": {"Fn::GetAtt": ["IngestRuleRole", "Arn"]},
                            "UseBase64": False}},
                            {"Lambda": {"FunctionArn": {"Fn::GetAtt": [INGEST_FUNCTION, "Arn"]}}}]}],
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
                    "Enabled": {"Fn::If": [INGEST_WINDOWED, True, False]},  # direct: a redrive, off until needed
                    "BatchSize": {"Fn::If": [INGEST_WINDOWED, INGEST_BATCH_PUBLISHES, IMMEDIATE_BATCH_PUBLISHES]},
                    "MaximumBatchingWindowInSeconds": {"Ref": "IngestBatchWindow"},
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "ScalingConfig": {"MaximumConcurrency": {"Ref": "IngestMaximumConcurrency"}},
                },
            },
            "IngestPermission": {
                "Type": "AWS::Lambda::Permission", "Condition": INGEST_DIRECT,
                "Properties": {"Action": "lambda:InvokeFunction", "FunctionName": {"Ref": INGEST_FUNCTION},
                               "Principal": "iot.amazonaws.com",
                               "SourceArn": {"Fn::GetAtt": ["IngestTopicRule", "Arn"]}},
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
            "IngestRuleName": {"Description": "Edge devices publish to $aws/rules/<it>/mc/<thing>/up (IoT Basic "
                                              "Ingest: no messaging charge); infra.provision writes it",
                               "Value": {"Ref": "IngestTopicRule"}},
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
