"""Least privilege, per function, read from the template ``make package`` writes.

Each Lambda function has a role of its own. What it may call is derived from that role's statements, and held to
``NEEDED``: the calls each function's code makes, written out here from the code (the adapters' boto3 calls and the
container parts each function's entry reaches), independently of ``infra/iam.py``. A function must be allowed every
call it makes and nothing else, and no statement may use a wildcard where the resource can be named (only the
patterns in ``WILDCARDS``, each with its reason, and ``*`` for the actions that have no resource to name).

Resources are compared symbolically: ``${X}`` is ``Ref: X``, ``${X.Attr}`` is ``Fn::GetAtt``, ``Fn::Sub`` strings
as written; IAM's ``*`` and ``?`` are the wildcards.
"""

from __future__ import annotations

import functools
import json
import re
from fnmatch import fnmatchcase
from typing import Any, Final

from infra.package import build_template

ARN: Final = "arn:${AWS::Partition}:{service}:${AWS::Region}:${AWS::AccountId}:{resource}"


def arn(service: str, resource: str) -> str:
    return ARN.replace("{service}", service).replace("{resource}", resource)


TABLE: Final = "${ResourceTable.Arn}"
INDEXES: Final = (f"{TABLE}/index/by_kind", f"{TABLE}/index/by_tree")
CONNECTIONS: Final = "${ConnectionsTable.Arn}"
DOWNLINK: Final = arn("iot", "topic/mc/pi-garage/down")
SCHEDULE: Final = arn("scheduler", "schedule/${ScheduleGroup}/task-t1.interval")
PUSH: Final = arn("execute-api", "${WebsocketAPI}/${StageName}/POST/@connections/Zx1c2v3b4n5=")
CLOSE: Final = arn("execute-api", "${WebsocketAPI}/${StageName}/DELETE/@connections/Zx1c2v3b4n5=")

READ: Final = {"dynamodb:GetItem": [TABLE], "dynamodb:BatchGetItem": [TABLE], "dynamodb:Query": list(INDEXES)}
"""``repository_dynamodb``: get, get_many/seen (batch_get_item), query and children (query on an index)."""
WRITE: Final = {"dynamodb:PutItem": [TABLE], "dynamodb:BatchWriteItem": [TABLE]}
"""``repository_dynamodb``: put and conditional puts (put_item), put_many/delete/mark_seen (batch_write_item)."""
EVENTS: Final = {"events:PutEvents": ["${EventBus.Arn}"]}
DOWNLINKS: Final = {"iot:Publish": [DOWNLINK]}
SCHEDULES: Final = {"scheduler:CreateSchedule": [SCHEDULE], "scheduler:UpdateSchedule": [SCHEDULE],
                    "scheduler:DeleteSchedule": [SCHEDULE], "iam:PassRole": ["${SchedulerRole.Arn}"]}
"""``schedules_eventbridge``: put (update, else create), delete; the target's role is passed to Scheduler."""
QUEUE_HANDLERS: Final = {"sqs:SendMessage": ["${HandlerQueue.Arn}"]}
AUTOMATION: Final = {**READ, **WRITE, **EVENTS, **QUEUE_HANDLERS, **SCHEDULES}
"""``functions.automation.Automation``: resources, events, queued handler runs, schedules kept in step."""
STAGED: Final = "${UploadBucket.Arn}/uploads/firmware/f1/0123456789abcdef0123456789abcdef"
"""A presigned upload staged in the upload bucket (infra/uploads.py)."""
METRICS_SECRETS: Final = ["${MetricsInfluxDBCredentials}",
                          arn("secretsmanager", "secret:${InfluxDBTokenSecret}-AbCdEf")]
"""The InfluxDB credentials (infra/metrics.py): the instance's the stack created, or an existing one by name."""


def fed_by(queue: str) -> dict[str, list[str]]:
    """What Lambda's poller does, as the function, with the queue feeding it."""
    return {action: [f"${{{queue}.Arn}}"] for action in
            ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")}


def dead_letters(consumer: str) -> dict[str, list[str]]:
    """A bus consumer's own dead-letter queue: Lambda puts a failed invocation there as the function, and the
    redrive mapping reads it back."""
    return {**fed_by(f"{consumer}DeadLetterQueue"), "sqs:SendMessage": [f"${{{consumer}DeadLetterQueue.Arn}}"]}


NEEDED: Final[dict[str, dict[str, list[str]]]] = {
    "APIHandler": {
        **AUTOMATION, **DOWNLINKS,  # CRUD and announcements, actions, run-now, schedules and tasks in step
        "scheduler:ListSchedules": ["*"],  # POST /api/{schedule,task}/reload, restore: reload_registry
        "iot:GetThingShadow": [arn("iot", "thing/pi-garage/mycontroller")],  # gateway_sync, shadow routes
        "iot:UpdateThingShadow": [arn("iot", "thing/pi-garage/mycontroller")],
        "ssm:GetParameter": [arn("ssm", "parameter/${AWS::StackName}/jwt-secret")],  # signing_secret_ssm
        "ssm:PutParameter": [arn("ssm", "parameter/${AWS::StackName}/jwt-secret")],  # created at first login
        "kms:Encrypt": ["${SecretsKey.Arn}"],  # handler specs' secrets, encrypted on upsert
        # blob_s3, and presigned transfers (services/uploads.py): the signer may do what its forms and URLs do;
        # staged uploads are taken, checked and discarded (a HeadObject is a GetObject)
        "s3:GetObject": ["${BlobBucket.Arn}/backups/b.zip", STAGED],
        "s3:PutObject": ["${BlobBucket.Arn}/firmware/f1", STAGED],
        "s3:DeleteObject": ["${BlobBucket.Arn}/firmware/f1", STAGED],
        "s3:ListBucket": ["${BlobBucket.Arn}", "${UploadBucket.Arn}"],
        "secretsmanager:GetSecretValue": ["${AdminPasswordSecret}", *METRICS_SECRETS],  # first admin; InfluxDB
    },
    "Ingest": {**READ, **WRITE, **EVENTS, **DOWNLINKS, **fed_by("IngestQueue"),
               "sqs:SendMessage": ["${IngestDeadLetterQueue.Arn}"],  # dead_letters_sqs: failed for good
               "dynamodb:Scan": [CONNECTIONS],  # whether a websocket wants its events (services.websocket.Audience)
               "secretsmanager:GetSecretValue": METRICS_SECRETS,  # metrics_influxdb's credentials
               "s3:GetObject": ["${BlobBucket.Arn}/firmware/f1"]},  # a new firmware URL for an edge (presigned)
    "ForwardPayload": {**READ, **DOWNLINKS, **dead_letters("ForwardPayload")},
    "Handlers": {
        **AUTOMATION, **DOWNLINKS, **fed_by("HandlerQueue"),  # resource handlers; delayed calls re-queued
        "dynamodb:UpdateItem": [TABLE], "dynamodb:DeleteItem": [TABLE],  # Powertools idempotency records
        "kms:Decrypt": ["${SecretsKey.Arn}"],
        "ses:SendEmail": [arn("ses", "identity/example.com")],
        "sns:Publish": ["*"],  # SMS to a phone number
        "iot:Publish": [DOWNLINK, arn("iot", "topic/home/lights/set")],  # MQTT handlers through iot-data
    },
    "ShadowReported": {**READ, **WRITE, **EVENTS},
    "Tasks": {**AUTOMATION, **dead_letters("Tasks")},
    "Scheduled": {**AUTOMATION, **DOWNLINKS},  # schedules, task timers, system jobs (discover sends downlinks)
    "WebsocketNotify": {"dynamodb:Scan": [CONNECTIONS], "dynamodb:DeleteItem": [CONNECTIONS],
                        "execute-api:ManageConnections": [PUSH, CLOSE],  # post; delete a revoked session's
                        "dynamodb:BatchGetItem": [TABLE],  # session_problems: users, revoked and service tokens
                        **dead_letters("WebsocketNotify")},
    "NodeStateJob": {**READ, **WRITE, **EVENTS},
    "NodeDiscoverJob": {**READ, **DOWNLINKS},
    "SunJob": {**READ, **SCHEDULES},
    "WebsocketConnect": {"dynamodb:GetItem": [TABLE], "dynamodb:BatchGetItem": [TABLE],
                         "dynamodb:Query": list(INDEXES), "dynamodb:PutItem": [CONNECTIONS],
                         "ssm:GetParameter": [arn("ssm", "parameter/${AWS::StackName}/jwt-secret")]},
    "WebsocketMessage": {"dynamodb:GetItem": [CONNECTIONS], "dynamodb:UpdateItem": [CONNECTIONS],
                         "execute-api:ManageConnections": [PUSH]},
    "WebsocketDisconnect": {"dynamodb:DeleteItem": [CONNECTIONS]},
}
"""Function → the calls its code makes → resources it makes them on (examples where the name is chosen at run
time). Every function also writes its own log streams and X-Ray segments (``every_function``). A template piece
that gives a function more (``infra/contributors.py``) adds the calls of its code here."""

NOT_ALLOWED: Final[dict[str, list[tuple[str, str]]]] = {
    "Handlers": [("iot:Publish", arn("iot", "topic/mc/pi-garage/up")),  # an MQTT handler posing as a device
                 ("iot:Publish", arn("iot", "topic/$aws/things/pi-garage/shadow/update"))],
}

NO_RESOURCE_TYPE: Final = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "scheduler:ListSchedules",
                           "sns:Publish"}
"""Actions that take ``Resource: *`` (no resource-level permission; ``sns:Publish`` to a phone number)."""

WILDCARDS: Final[dict[str, str]] = {
    arn("iot", "topic/mc/*/down"): "downlinks go to edges named at run time, only on their down topic",
    arn("iot", "thing/*"): "edge devices' shadows: things are provisioned after the stack",
    arn("iot", "topic/*"): "MQTT handlers publish where their users say (device topics denied)",
    arn("iot", "topic/mc/*/up"): "(deny) no handler may publish as a device",
    arn("iot", "topic/$aws/*"): "(deny) nor on AWS's reserved topics",
    arn("scheduler", "schedule/${ScheduleGroup}/*"): "schedules are named at run time, in the stack's group",
    arn("ses", "identity/*"): "e-mail senders are the account's verified identities, chosen per handler",
    arn("execute-api", "${WebsocketAPI}/${StageName}/POST/@connections/*"): "connection ids are per client",
    arn("execute-api", "${WebsocketAPI}/${StageName}/DELETE/@connections/*"): "connection ids are per client",
    "${BlobBucket.Arn}/*": "objects of the stack's bucket",
    "${BlobBucket.Arn}/firmware/*": "firmware files are named by their ids, at run time",
    "${UploadBucket.Arn}/uploads/*": "staged uploads are named at run time (uploads/<purpose>/<upload id>)",
    arn("secretsmanager", "secret:${InfluxDBTokenSecret}-??????"): "a secret named by a parameter: its ARN ends in "
                                                                 "six random characters",
}
"""The only resource patterns with a wildcard, and why the resource cannot be named."""
LOG_STREAMS: Final = re.compile(
    r"^arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:log-group:\$\{(\w+)LogGroup\}:\*$")


def symbols(value: Any) -> list[str]:
    """A resource expression as text: ``Ref`` → ``${X}``, ``Fn::GetAtt`` → ``${X.Attr}``, ``Fn::Sub`` as written;
    ``Fn::If`` → both branches (``AWS::NoValue`` dropped)."""
    if isinstance(value, str):
        return [value]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    if "Ref" in value:
        return [f"${{{value['Ref']}}}"]
    if "Fn::GetAtt" in value:
        return ["${" + ".".join(value["Fn::GetAtt"]) + "}"]
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return [str(value["Fn::Sub"])]
    if "Fn::If" in value:
        return [text for branch in value["Fn::If"][1:] for text in symbols(branch)]
    raise AssertionError(f"resource expression the test cannot read: {json.dumps(value)}")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@functools.cache
def template() -> dict[str, Any]:
    return build_template()


def functions() -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template()["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}


def statements(function: str) -> list[dict[str, Any]]:
    role = functions()[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in template()["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            found.append({**statement, "Action": _listed(statement["Action"]),
                          "Resource": [text for r in _listed(statement["Resource"]) for text in symbols(r)]})
    return found


def allows(function: str, action: str, resource: str) -> bool:
    """IAM's answer for one call (conditions aside): some Allow matches and no Deny does."""
    def matching(effect: str) -> bool:
        return any(statement["Effect"] == effect
                   and any(fnmatchcase(action, pattern) for pattern in statement["Action"])
                   and any(fnmatchcase(resource, pattern) for pattern in statement["Resource"])
                   for statement in statements(function))
    return matching("Allow") and not matching("Deny")


def every_function(function: str) -> dict[str, list[str]]:
    logs = arn("logs", f"log-group:${{{function}LogGroup}}:log-stream:2024/01/01/[$LATEST]abc")
    return {"logs:CreateLogStream": [logs], "logs:PutLogEvents": [logs], "xray:PutTraceSegments": ["*"],
            "xray:PutTelemetryRecords": ["*"]}


def test_every_function_has_a_role_of_its_own_that_only_lambda_assumes() -> None:
    roles = [function["Properties"]["Role"]["Fn::GetAtt"][0] for function in functions().values()]
    assert len(set(roles)) == len(roles) == len(NEEDED)
    assert set(functions()) == set(NEEDED)
    for role in roles:
        trust = template()["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                          "Action": "sts:AssumeRole"}]


def test_each_function_may_make_the_calls_its_code_makes() -> None:
    missing = [f"{function}: {action} on {resource}"
               for function, needed in NEEDED.items()
               for action, resources in {**needed, **every_function(function)}.items()
               for resource in resources if not allows(function, action, resource)]
    assert missing == []


def test_each_function_may_make_no_other_call() -> None:
    extra = {function: sorted({action for statement in statements(function) if statement["Effect"] == "Allow"
                               for action in statement["Action"]} - set(needed) - set(every_function(function)))
             for function, needed in NEEDED.items()}
    assert {function: actions for function, actions in extra.items() if actions} == {}


def test_what_no_function_may_do() -> None:
    for function, calls in NOT_ALLOWED.items():
        for action, resource in calls:
            assert not allows(function, action, resource), (function, action, resource)
    # the JWT key is created by the API only; only the scheduler role is passed, and only to Scheduler
    for function in functions():
        put = any("ssm:PutParameter" in s["Action"] for s in statements(function))
        assert put == (function == "APIHandler"), function
        for statement in statements(function):
            if "iam:PassRole" in statement["Action"]:
                assert statement["Resource"] == ["${SchedulerRole.Arn}"]
                assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    # downlinks on down topics only, where a function sends them; topic/* only for MQTT handlers
    publishers = {f for f in functions() if any("iot:Publish" in s["Action"] for s in statements(f))}
    assert publishers == {"APIHandler", "Ingest", "ForwardPayload", "Handlers", "Scheduled", "NodeDiscoverJob"}
    for function in publishers - {"Handlers"}:
        assert not allows(function, "iot:Publish", arn("iot", "topic/home/lights/set")), function
        assert not allows(function, "iot:Publish", arn("iot", "topic/mc/pi-garage/up")), function


def test_no_wildcard_where_a_resource_can_be_named() -> None:
    problems = []
    for function in functions():
        for statement in statements(function):
            for action in statement["Action"]:
                if "*" in action:
                    problems.append(f"{function}: action {action}")
            for resource in statement["Resource"]:
                if resource == "*":
                    if not set(statement["Action"]) <= NO_RESOURCE_TYPE:
                        problems.append(f"{function}: {statement['Action']} on *")
                    continue
                if resource.startswith("arn:") and "*" in ":".join(resource.split(":")[:5]):
                    problems.append(f"{function}: partition, service, region or account wildcard in {resource}")
                log_group = LOG_STREAMS.match(resource)
                if log_group:
                    assert log_group.group(1) == function, f"{function} writes {log_group.group(1)}'s logs"
                    continue
                if ("*" in resource or "?" in resource) and resource not in WILDCARDS:
                    problems.append(f"{function}: wildcard in {resource}")
    assert problems == []


def test_the_other_roles_are_narrow_too() -> None:
    """The roles services assume: IoT's rule role sends to the ingest queues only, Scheduler's invokes the
    scheduled function only."""
    resources = template()["Resources"]
    [rule] = resources["IngestRuleRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert rule["Action"] == "sqs:SendMessage"
    assert [t for r in rule["Resource"] for t in symbols(r)] == ["${IngestQueue.Arn}", "${IngestDeadLetterQueue.Arn}"]
    [scheduler] = resources["SchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert scheduler["Action"] == "lambda:InvokeFunction"
    assert [t for r in scheduler["Resource"] for t in symbols(r)] == [
        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-scheduled"]
    assert resources["Scheduled"]["Properties"]["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-scheduled"}
