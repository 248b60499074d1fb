"""Least privilege, per function: what each Lambda function's code calls, and nothing else.

Each function has its own role (``infra.functions``); its policy is the union of the *capabilities* it uses
(``USES``), each capability being the IAM statements of one adapter's calls on the stack's own resources:

==========================  ==============================================================================
capability                  adapter and calls
==========================  ==============================================================================
``resources.read``          ``repository_dynamodb``: GetItem, BatchGetItem; Query on the two indexes
``resources.write``         ``repository_dynamodb``: PutItem (conditional writes too), BatchWriteItem
``idempotency``             Powertools' DynamoDB persistence (handler runs), on the resource table
``events``                  ``bus_eventbridge``: PutEvents on the stack's bus
``downlink``                ``downlink_iotdata``: iot:Publish on ``<prefix>/*/down`` only
``shadows``                 ``shadow_iotdata``: Get/UpdateThingShadow (edges are things named at run time)
``schedules``               ``schedules_eventbridge``: put and delete schedules of the stack's group; PassRole
                            of the scheduler role, to Scheduler only
``schedules.list``          ``schedules_eventbridge``: list them (reloading every trigger: the API only)
``handler_queue``           ``handler_queue_sqs``: SendMessage on the handler queue
``dead_letters.ingest``     ``dead_letters_sqs``: SendMessage on the ingest queue's DLQ (messages that fail for good)
``signing_secret.read``     ``signing_secret_ssm``: GetParameter on the stack's JWT key parameter
``signing_secret.create``   the same plus PutParameter: only the API function creates the key (first login)
``secrets.encrypt``         ``secrets_kms``: Encrypt with the stack's key (the API stores handler secrets)
``secrets.decrypt``         ``secrets_kms``: Decrypt (only the handler function reads them)
``blobs``                   ``blob_s3``: objects of the stack's bucket, and listing it
``firmware.read``           GetObject on the bucket's ``firmware/*``: what a presigned URL of a firmware file acts
                            with (an edge asking the ingest for a new one: ``ActionService.firmware_link``)
``admin_password``          ``admin_password_secretsmanager``: GetSecretValue on the stack's secret
``connections.*``           ``connections_dynamodb``: the calls of connect, subscribe, disconnect, notify, and
                            the publisher's look at who listens (``audience``: Scan)
``manage_connections``      ``notifier_apigw``: post_to_connection on the stack's websocket API stage
``close_connections``       ``notifier_apigw``: delete_connection (a revoked session's sockets are closed)
``sessions.read``           ``repository_dynamodb``: BatchGetItem only (``AuthService.session_problems``: users,
                            denylisted and service tokens of open connections, re-checked by notify)
``email`` / ``sms``         ``handler_email_ses`` (the account's verified identities), ``handler_sms_sns``
``mqtt``                    ``handler_mqtt`` through iot-data: topics handlers choose at run time, never a
                            device's uplink or AWS's reserved topics (an explicit deny)
==========================  ==============================================================================

Every function also writes its own log group and X-Ray segments, a function fed by a queue reads that queue only,
and one a bus rule invokes may put what failed in its own dead-letter queue. ``tests/unit/test_iam.py`` holds the
roles to a list of the calls each function makes, derived from the code, and refuses a wildcard where a resource
can be named.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from .fragments import ALL_FUNCTIONS
from .identity import TOPIC_PREFIX

Statement = dict[str, Any]

RESOURCE_INDEXES: Final = ("by_kind", "by_tree")
"""The resource table's indexes (``repository_dynamodb``): Query is allowed on these, by name."""
JWT_PARAMETER: Final[dict[str, Any]] = {"Fn::Sub": "/${AWS::StackName}/jwt-secret"}
"""The SSM parameter of the JWT signing key: one per stack, created by the API function on first use."""


def _arn(service: str, resource: str) -> dict[str, Any]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"}


def _allow(sid: str, actions: Iterable[str], resources: Any, condition: dict[str, Any] | None = None) -> Statement:
    statement: Statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


RESOURCE_TABLE_ARN: Final = {"Fn::GetAtt": ["ResourceTable", "Arn"]}
CONNECTIONS_TABLE_ARN: Final = {"Fn::GetAtt": ["ConnectionsTable", "Arn"]}


def _connections(sid: str, actions: Iterable[str]) -> list[Statement]:
    return [_allow(sid, actions, [CONNECTIONS_TABLE_ARN])]


CAPABILITIES: Final[dict[str, list[Statement]]] = {
    "resources.read": [
        _allow("ResourcesRead", ["dynamodb:GetItem", "dynamodb:BatchGetItem"], [RESOURCE_TABLE_ARN]),
        _allow("ResourceIndexes", ["dynamodb:Query"],
               [{"Fn::Sub": f"${{ResourceTable.Arn}}/index/{index}"} for index in RESOURCE_INDEXES]),
    ],
    "resources.write": [
        _allow("ResourcesWrite", ["dynamodb:PutItem", "dynamodb:BatchWriteItem"], [RESOURCE_TABLE_ARN]),
    ],
    "idempotency": [
        _allow("HandlerRuns", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                               "dynamodb:DeleteItem"], [RESOURCE_TABLE_ARN]),
    ],
    "events": [_allow("DomainEvents", ["events:PutEvents"], [{"Fn::GetAtt": ["EventBus", "Arn"]}])],
    "downlink": [_allow("Downlinks", ["iot:Publish"], [_arn("iot", f"topic/{TOPIC_PREFIX}/*/down")])],
    "shadows": [_allow("EdgeShadows", ["iot:GetThingShadow", "iot:UpdateThingShadow"], [_arn("iot", "thing/*")])],
    "schedules": [
        _allow("Schedules", ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
               [_arn("scheduler", "schedule/${ScheduleGroup}/*")]),
        _allow("PassSchedulerRole", ["iam:PassRole"], [{"Fn::GetAtt": ["SchedulerRole", "Arn"]}],
               {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}),
    ],
    "schedules.list": [_allow("ListSchedules", ["scheduler:ListSchedules"], ["*"])],  # no resource type: * only
    "handler_queue": [_allow("HandlerQueue", ["sqs:SendMessage"], [{"Fn::GetAtt": ["HandlerQueue", "Arn"]}])],
    "dead_letters.ingest": [_allow("IngestDeadLetters", ["sqs:SendMessage"],
                                   [{"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}])],
    "signing_secret.read": [
        _allow("SigningSecret", ["ssm:GetParameter"], [_arn("ssm", "parameter/${AWS::StackName}/jwt-secret")])],
    "signing_secret.create": [
        _allow("SigningSecret", ["ssm:GetParameter", "ssm:PutParameter"],
               [_arn("ssm", "parameter/${AWS::StackName}/jwt-secret")])],
    "secrets.encrypt": [_allow("HandlerSecrets", ["kms:Encrypt"], [{"Fn::GetAtt": ["SecretsKey", "Arn"]}])],
    "secrets.decrypt": [_allow("HandlerSecrets", ["kms:Decrypt"], [{"Fn::GetAtt": ["SecretsKey", "Arn"]}])],
    "blobs": [
        _allow("BlobObjects", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
               [{"Fn::Sub": "${BlobBucket.Arn}/*"}]),
        _allow("BlobList", ["s3:ListBucket"], [{"Fn::GetAtt": ["BlobBucket", "Arn"]}]),
    ],
    "firmware.read": [_allow("FirmwareFiles", ["s3:GetObject"], [{"Fn::Sub": "${BlobBucket.Arn}/firmware/*"}])],
    "admin_password": [_allow("AdminPassword", ["secretsmanager:GetSecretValue"], [{"Ref": "AdminPasswordSecret"}])],
    "connections.connect": _connections("Connections", ["dynamodb:PutItem"]),
    "connections.subscribe": _connections("Connections", ["dynamodb:GetItem", "dynamodb:UpdateItem"]),
    "connections.disconnect": _connections("Connections", ["dynamodb:DeleteItem"]),
    "connections.notify": _connections("Connections", ["dynamodb:Scan", "dynamodb:DeleteItem"]),
    "connections.audience": _connections("Connections", ["dynamodb:Scan"]),
    "manage_connections": [
        _allow("WebsocketPush", ["execute-api:ManageConnections"],
               [_arn("execute-api", "${WebsocketAPI}/${StageName}/POST/@connections/*")])],
    "close_connections": [
        _allow("WebsocketClose", ["execute-api:ManageConnections"],
               [_arn("execute-api", "${WebsocketAPI}/${StageName}/DELETE/@connections/*")])],
    "sessions.read": [_allow("SessionsRead", ["dynamodb:BatchGetItem"], [RESOURCE_TABLE_ARN])],
    "email": [_allow("Email", ["ses:SendEmail"], [_arn("ses", "identity/*")])],
    "sms": [_allow("Sms", ["sns:Publish"], ["*"])],  # SMS to a phone number has no resource to name
    "mqtt": [
        _allow("MqttHandlers", ["iot:Publish"], [_arn("iot", "topic/*")]),
        {"Sid": "NotAsADevice", "Effect": "Deny", "Action": ["iot:Publish"],
         "Resource": [_arn("iot", f"topic/{TOPIC_PREFIX}/*/up"), _arn("iot", "topic/$aws/*")]},
    ],
}

RESOURCES: Final = ("resources.read", "resources.write")
AUTOMATION: Final = (*RESOURCES, "events", "handler_queue", "schedules")
"""What ``functions.automation.Automation`` touches: the resources, events, queued handler runs and schedules."""

USES: Final[dict[str, tuple[str, ...]]] = {
    # REST API: every use case (records and events, actions, schedules kept in step, handler run-now, gateway
    # configs to edge shadows, handler secrets encrypted, firmware and backups, logins)
    "api_handler": (*AUTOMATION, "schedules.list", "downlink", "shadows", "signing_secret.create",
                    "secrets.encrypt", "blobs", "admin_password"),
    # batch processor: stored values, events, answers to devices; what fails for good to its DLQ; whether a
    # websocket wants its events
    # and a new URL of a node's firmware for its edge (MySensors OTA)
    "ingest": (*RESOURCES, "events", "downlink", "connections.audience", "dead_letters.ingest", "firmware.read"),
    "forward_payload": ("resources.read", "downlink"),  # mappings read, values sent as downlinks
    "handlers": (*AUTOMATION, "idempotency", "downlink", "secrets.decrypt", "email", "sms", "mqtt"),
    "shadow_reported": (*RESOURCES, "events"),  # reported gateway state into the gateway resources
    "tasks": AUTOMATION,
    "scheduled": (*AUTOMATION, "downlink"),  # schedules, task timers and the system jobs
    "websocket_notify": ("connections.notify", "manage_connections", "close_connections", "sessions.read"),
    "node_state_job": (*RESOURCES, "events"),
    "node_discover_job": ("resources.read", "downlink"),
    "sun_job": ("resources.read", "schedules"),  # sun schedules put again from the location
    "websocket_connect": ("resources.read", "signing_secret.read", "connections.connect"),
    "websocket_message": ("connections.subscribe", "manage_connections"),
    "websocket_disconnect": ("connections.disconnect",),
}
"""Chalice function name → the capabilities its code uses (see the module's table)."""


CALL_ACTIONS: Final[dict[str, str]] = {
    "iotdata:Publish": "iot:Publish", "iotdata:GetThingShadow": "iot:GetThingShadow",
    "iotdata:UpdateThingShadow": "iot:UpdateThingShadow",
    "execute-api:PostToConnection": "execute-api:ManageConnections",
    "s3:ListObjectsV2": "s3:ListBucket", "s3:DeleteObjects": "s3:DeleteObject",
    "sqs:SendMessageBatch": "sqs:SendMessage", "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
}
"""API calls (``<signing name>:<operation>``, as botocore names them) whose IAM action has another name."""


def iam_action(call: str) -> str:
    """The IAM action an API call needs: ``dynamodb:GetItem`` → itself, ``iotdata:Publish`` → ``iot:Publish``."""
    return CALL_ACTIONS.get(call, call)


def logs_statement(log_group: str) -> Statement:
    """Its own log group (created by the stack, so no CreateLogGroup)."""
    return _allow("OwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                  [_arn("logs", f"log-group:${{{log_group}}}:*")])


TRACING: Final = _allow("Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"])
"""X-Ray has no resource-level permissions: Resource must be ``*``."""


def queue_statement(queue: str) -> Statement:
    """What the Lambda poller does with the queue that feeds the function (``AWSLambdaSQSQueueExecutionRole``)."""
    return _allow("OwnQueue", ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                  [{"Fn::GetAtt": [queue, "Arn"]}])


def dead_letter_statement(queue: str) -> Statement:
    """Where Lambda puts an asynchronous invocation that failed every attempt (the function's ``DeadLetterConfig``:
    sent with the function's role)."""
    return _allow("OwnDeadLetters", ["sqs:SendMessage"], [{"Fn::GetAtt": [queue, "Arn"]}])


def _merge_statements(statements: Iterable[Statement]) -> list[Statement]:
    """Statements with one Sid merged (their actions joined: ``signing_secret.read`` within ``.create``)."""
    merged: dict[str, Statement] = {}
    for statement in statements:
        sid = statement["Sid"]
        if sid in merged and merged[sid]["Resource"] == statement["Resource"] and merged[sid]["Effect"] == "Allow":
            merged[sid] = {**merged[sid], "Action": sorted(set(merged[sid]["Action"]) | set(statement["Action"]))}
        elif sid in merged:
            merged[f"{sid}{len(merged)}"] = statement
        else:
            merged[sid] = statement
    return list(merged.values())


def function_statements(name: str, *, log_group: str, queue: str | None = None,
                        extra: dict[str, list[Statement]] | None = None, logical_id: str = "") -> list[Statement]:
    """Every statement of one function's role: its capabilities, its logs and tracing, its queue, and what
    contributors (``infra.fragments``) add for it or for every function."""
    statements = [logs_statement(log_group), TRACING]
    if queue:
        statements.append(queue_statement(queue))
    for capability in USES[name]:
        statements.extend(CAPABILITIES[capability])
    for key in (ALL_FUNCTIONS, logical_id):
        statements.extend((extra or {}).get(key, []))
    return _merge_statements(statements)
