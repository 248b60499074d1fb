"""IAM policy evaluation for the twin: does a function's role (as the template writes it) allow a boto3 call?

``target(...)`` turns one SDK call into the IAM actions and resource ARNs AWS authorizes it as (a
``TransactWriteItems`` is one action per item and table, ``CreateSchedule`` also needs ``iam:PassRole`` on the
target's role, iot-data ``Publish`` is ``iot:Publish`` on ``topic/<topic>``, ``PostToConnection`` is
``execute-api:ManageConnections`` on the connection...). ``Policy.decide`` evaluates the role's statements as
AWS does for identity policies: an explicit ``Deny`` wins, then an ``Allow`` whose action, resource and
condition match, else the implicit deny. Wildcards (``*``, ``?``) in actions (case-insensitive) and resources;
``NotAction``/``NotResource``; conditions over the keys the twin knows (``iam:PassedToService``,
``aws:SecureTransport``, ``aws:RequestedRegion``, ``aws:PrincipalAccount``...). A condition on a key the twin
cannot know is taken as met and reported (``Decision.unevaluated``), never silently.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

IAM_PREFIX = {"iot-data": "iot", "apigatewaymanagementapi": "execute-api", "cloudwatch": "cloudwatch",
              "sesv2": "ses", "stepfunctions": "states", "elbv2": "elasticloadbalancing"}
FREE_CALLS = {("sts", "GetCallerIdentity")}
"""Calls that need no permission in AWS."""
S3_ACTIONS = {"HeadObject": "GetObject", "GetObjectAttributes": "GetObject", "CreateMultipartUpload": "PutObject",
              "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject",
              "AbortMultipartUpload": "AbortMultipartUpload", "DeleteObjects": "DeleteObject",
              "ListObjects": "ListBucket", "ListObjectsV2": "ListBucket", "HeadBucket": "ListBucket",
              "ListObjectVersions": "ListBucketVersions", "GetObjectVersion": "GetObjectVersion"}
SQS_BATCH = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
             "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
TRANSACT_ITEM = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                 "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
IOT_DATA_ACTIONS = {"Publish": "Publish", "GetThingShadow": "GetThingShadow", "UpdateThingShadow": "UpdateThingShadow",
                    "DeleteThingShadow": "DeleteThingShadow", "ListNamedShadowsForThing": "ListNamedShadowsForThing",
                    "GetRetainedMessage": "GetRetainedMessage"}
CONNECTION_METHOD = {"PostToConnection": "POST", "GetConnection": "GET", "DeleteConnection": "DELETE"}
KNOWN_CONDITION_KEYS = {"iam:passedtoservice", "aws:securetransport", "aws:requestedregion", "aws:principalaccount",
                        "aws:principalarn", "aws:sourceaccount", "aws:sourcearn"}


@dataclass(frozen=True)
class Request:
    """One authorization: an IAM action on a resource, with the condition keys the call gives."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass
class Decision:
    allowed: bool
    reason: str
    unevaluated: list[str] = field(default_factory=list)


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _queue_arn(url: str, region: str, account: str) -> str:
    parts = urlsplit(url).path.strip("/").split("/")
    name = parts[-1] if parts else url
    owner = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else account
    return _arn("sqs", region, owner, name)


def _table_arn(name: str, region: str, account: str) -> str:
    return name if name.startswith("arn:") else _arn("dynamodb", region, account, f"table/{name}")


def _kms_arn(key: str, region: str, account: str) -> str:
    if key.startswith("arn:"):
        return key
    return _arn("kms", region, account, key if key.startswith("alias/") else f"key/{key}")


@dataclass(frozen=True)
class _Call:
    """One SDK call as the per-service target functions read it (``one`` is ``<prefix>:<operation>``)."""

    operation: str
    one: str
    params: Mapping[str, Any]
    region: str
    account: str
    url: str

    def arn(self, service: str, resource: str) -> str:
        return _arn(service, self.region, self.account, resource)

    def table_arn(self, name: str) -> str:
        return _table_arn(name, self.region, self.account)


def _dynamodb_target(call: _Call) -> list[Request]:
    params = call.params
    if call.operation in ("BatchGetItem", "BatchWriteItem"):
        return [Request(call.one, call.table_arn(t)) for t in params.get("RequestItems") or {}]
    if call.operation in ("TransactWriteItems", "TransactGetItems"):
        return [Request(f"dynamodb:{TRANSACT_ITEM.get(kind, kind)}", call.table_arn(body.get("TableName", "")))
                for item in params.get("TransactItems") or [] for kind, body in item.items()]
    table = str(params.get("TableName") or params.get("ResourceArn") or "*")
    resource = call.table_arn(table) if table != "*" else "*"
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return [Request(call.one, resource)]


def _sqs_target(call: _Call) -> list[Request]:
    action = f"sqs:{SQS_BATCH.get(call.operation, call.operation)}"
    if "QueueUrl" in call.params:
        return [Request(action, _queue_arn(str(call.params["QueueUrl"]), call.region, call.account))]
    if "QueueName" in call.params:
        return [Request(action, call.arn("sqs", str(call.params["QueueName"])))]
    return [Request(action, "*")]


def _events_target(call: _Call) -> list[Request]:
    if call.operation != "PutEvents":
        return [Request(call.one, "*")]
    buses = {str(e.get("EventBusName") or "default") for e in call.params.get("Entries") or []} or {"default"}
    return [Request(call.one, b if b.startswith("arn:") else call.arn("events", f"event-bus/{b}"))
            for b in sorted(buses)]


def _scheduler_target(call: _Call) -> list[Request]:
    params = call.params
    group = str(params.get("GroupName") or "default")
    found = [Request(call.one, call.arn("scheduler", f"schedule/{group}/{params['Name']}")
                     if "Name" in params else "*")]
    role = (params.get("Target") or {}).get("RoleArn")
    if role and call.operation in ("CreateSchedule", "UpdateSchedule"):
        found.append(Request("iam:PassRole", str(role), (("iam:passedtoservice", "scheduler.amazonaws.com"),)))
    return found


def _kms_target(call: _Call) -> list[Request]:
    key = call.params.get("KeyId")
    return [Request(call.one, _kms_arn(str(key), call.region, call.account) if key else "*")]


def _ssm_target(call: _Call) -> list[Request]:
    names = call.params.get("Names") or ([call.params["Name"]] if "Name" in call.params else [])
    return [Request(call.one, call.arn("ssm", "parameter/" + str(n).lstrip("/")))
            for n in names] or [Request(call.one, "*")]


def _s3_target(call: _Call) -> list[Request]:
    params = call.params
    bucket = str(params.get("Bucket", "*"))
    action = f"s3:{S3_ACTIONS.get(call.operation, call.operation)}"
    if "Key" in params:
        return [Request(action, f"arn:aws:s3:::{bucket}/{params['Key']}")]
    if call.operation == "DeleteObjects":
        return [Request(action, f"arn:aws:s3:::{bucket}/{o['Key']}")
                for o in (params.get("Delete") or {}).get("Objects") or []]
    return [Request(action, f"arn:aws:s3:::{bucket}")]


def _iot_data_target(call: _Call) -> list[Request]:
    action = f"iot:{IOT_DATA_ACTIONS.get(call.operation, call.operation)}"
    if call.operation == "Publish":
        return [Request(action, call.arn("iot", f"topic/{call.params.get('topic', '')}"))]
    thing = str(call.params.get("thingName", "*"))
    shadow = call.params.get("shadowName")
    return [Request(action, call.arn("iot", f"thing/{thing}" + (f"/{shadow}" if shadow else "")))]


def _connections_target(call: _Call) -> list[Request]:
    parts = urlsplit(call.url)
    api_id = parts.hostname.split(".", 1)[0] if parts.hostname else "*"
    stage = unquote(parts.path).strip("/").split("/@connections", 1)[0] or "*"
    method = CONNECTION_METHOD.get(call.operation, "POST")
    connection = call.params.get("ConnectionId", "*")
    return [Request("execute-api:ManageConnections",
                    call.arn("execute-api", f"{api_id}/{stage}/{method}/@connections/{connection}"))]


def _lambda_target(call: _Call) -> list[Request]:
    if "FunctionName" not in call.params:
        return [Request(call.one, "*")]
    name = str(call.params["FunctionName"])
    action = "lambda:InvokeFunction" if call.operation in ("Invoke", "InvokeAsync") else call.one
    return [Request(action, name if name.startswith("arn:") else call.arn("lambda", f"function:{name}"))]


def _sns_target(call: _Call) -> list[Request]:
    topic = call.params.get("TopicArn") or call.params.get("TargetArn")
    return [Request(call.one, str(topic) if topic else "*")]


def _ses_identity(call: _Call) -> str:
    source = str(call.params.get("Source") or call.params.get("FromEmailAddress") or "*")
    match = re.search(r"<([^>]+)>", source)
    return call.arn("ses", f"identity/{match.group(1) if match else source}")


def _ses_target(call: _Call) -> list[Request]:
    return [Request(call.one, _ses_identity(call))]


def _sesv2_target(call: _Call) -> list[Request]:
    action = "ses:SendEmail" if call.operation in ("SendEmail", "SendRawEmail") else call.one
    return [Request(action, _ses_identity(call))]


def _secretsmanager_target(call: _Call) -> list[Request]:
    if "SecretId" not in call.params:
        return [Request(call.one, "*")]
    secret = str(call.params["SecretId"])
    return [Request(call.one, secret if secret.startswith("arn:") else call.arn("secretsmanager",
                                                                                f"secret:{secret}-twin00"))]


def _logs_target(call: _Call) -> list[Request]:
    if "logGroupName" not in call.params:
        return [Request(call.one, "*")]
    return [Request(call.one, call.arn("logs", f"log-group:{call.params['logGroupName']}:*"))]


SERVICE_TARGETS: dict[str, Callable[[_Call], list[Request]]] = {
    "dynamodb": _dynamodb_target, "sqs": _sqs_target, "events": _events_target, "scheduler": _scheduler_target,
    "kms": _kms_target, "ssm": _ssm_target, "s3": _s3_target, "iot-data": _iot_data_target,
    "apigatewaymanagementapi": _connections_target, "lambda": _lambda_target, "sns": _sns_target,
    "ses": _ses_target, "sesv2": _sesv2_target, "secretsmanager": _secretsmanager_target, "logs": _logs_target}
"""Per service, how its calls map to resource ARNs; a service not listed is its action on ``*``."""


def target(service: str, operation: str, params: Mapping[str, Any], *, region: str, account: str,
           url: str = "") -> list[Request]:
    """The authorizations AWS checks for one call (``service`` is botocore's service name)."""
    if (service, operation) in FREE_CALLS:
        return []
    one = f"{IAM_PREFIX.get(service, service)}:{operation}"
    per_service = SERVICE_TARGETS.get(service)
    if per_service is None:
        return [Request(one, "*")]
    return per_service(_Call(operation, one, params, region, account, url))


@lru_cache(maxsize=4096)
def _pattern(pattern: str, case: bool) -> re.Pattern[str]:
    translated = fnmatch.translate(pattern).replace("(?s:", "(?s:", 1)
    return re.compile(translated, 0 if case else re.IGNORECASE)


def wildcard_match(pattern: str, value: str, *, case: bool = True) -> bool:
    """IAM's matching: ``*`` any run of characters (``/`` included), ``?`` one; no character classes."""
    escaped = pattern.replace("[", "[[]")
    return bool(_pattern(escaped, case).match(value))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Policy:
    """The identity policies of one role (the template's inline and managed documents, resolved)."""

    def __init__(self, documents: Iterable[Mapping[str, Any]], *, principal_arn: str = "", account: str = "",
                 region: str = "") -> None:
        self.statements: list[dict[str, Any]] = []
        for document in documents:
            self.statements.extend(dict(s) for s in _as_list(document.get("Statement")))
        self.base_context = {"aws:securetransport": "true", "aws:requestedregion": region,
                             "aws:principalaccount": account, "aws:principalarn": principal_arn}

    def decide(self, request: Request) -> Decision:
        context = {**self.base_context, **dict(request.context)}
        allowed_by: str | None = None
        unevaluated: list[str] = []
        for index, statement in enumerate(self.statements):
            if not self._applies(statement, request):
                continue
            met, unknown = self._condition(statement.get("Condition") or {}, context)
            name = statement.get("Sid") or f"statement {index}"
            if unknown:
                unevaluated.extend(f"{name}: {key}" for key in unknown)
            if not met:
                continue
            if statement.get("Effect") == "Deny":
                return Decision(False, f"explicitly denied by {name}", unevaluated)
            if statement.get("Effect") == "Allow" and allowed_by is None:
                allowed_by = str(name)
        if allowed_by is not None:
            return Decision(True, f"allowed by {allowed_by}", unevaluated)
        return Decision(False, f"no identity-based policy allows the {request.action} action", unevaluated)

    @staticmethod
    def _applies(statement: Mapping[str, Any], request: Request) -> bool:
        if "Action" in statement:
            if not any(wildcard_match(str(a), request.action, case=False) for a in _as_list(statement["Action"])):
                return False
        elif "NotAction" in statement:
            if any(wildcard_match(str(a), request.action, case=False) for a in _as_list(statement["NotAction"])):
                return False
        else:
            return False
        if "Resource" in statement:
            return any(wildcard_match(str(r), request.resource) or r == "*" for r in _as_list(statement["Resource"]))
        if "NotResource" in statement:
            return not any(wildcard_match(str(r), request.resource) for r in _as_list(statement["NotResource"]))
        return False

    @staticmethod
    def _condition(block: Mapping[str, Any], context: Mapping[str, str]) -> tuple[bool, list[str]]:
        """All operators must hold; a key the twin does not know counts as holding and is reported."""
        unknown: list[str] = []
        for operator, tests in block.items():
            op = str(operator)
            if_exists = op.endswith("IfExists")
            base = op.removesuffix("IfExists").split(":")[-1]
            for key, expected in (tests or {}).items():
                lowered = str(key).lower()
                if lowered not in KNOWN_CONDITION_KEYS:
                    unknown.append(f"{op} {key}")
                    continue
                actual = context.get(lowered) or None
                if base == "Null":
                    if (actual is None) != (str(_as_list(expected)[0]).lower() == "true"):
                        return False, unknown
                    continue
                if actual is None:
                    if if_exists:
                        continue
                    return False, unknown
                if not _compare(base, actual, [str(v) for v in _as_list(expected)]):
                    return False, unknown
        return True, unknown


def service_statements(document: Mapping[str, Any], service: str) -> dict[str, Any]:
    """The statements of a resource policy (a queue's, a bucket's) whose principal is ``service`` (or anyone),
    as an identity policy ``Policy`` can evaluate for that service's requests."""
    statements = _as_list(document.get("Statement"))
    chosen = []
    for statement in statements:
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if principal == "*" or service in services or (isinstance(principal, dict) and principal.get("AWS") == "*"):
            chosen.append(statement)
    return {"Statement": chosen}


def _compare(operator: str, actual: str, expected: list[str]) -> bool:
    negate = "Not" in operator
    plain = operator.replace("Not", "")
    if plain in ("StringEquals", "ArnEquals"):
        result = actual in expected
    elif plain == "StringEqualsIgnoreCase":
        result = actual.lower() in [e.lower() for e in expected]
    elif plain in ("StringLike", "ArnLike"):
        result = any(wildcard_match(e, actual) for e in expected)
    elif plain == "Bool":
        result = actual.lower() in [e.lower() for e in expected]
    else:
        return True  # an operator on a known key the twin does not model: lenient
    return not result if negate else result
