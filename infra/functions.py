"""The Lambda functions of the stack, from the Chalice app's own description of them.

``app_functions(app)`` reads what ``app.py`` declares (its REST routes → ``APIHandler``, ``app.pure_lambda_functions``,
``app.event_sources`` (schedules), ``app.websocket_handlers``); ``function_resources`` makes, for each:

* ``<Id>``: the ``AWS::Lambda::Function`` named ``<stack>-<name>``, handler ``app.<name>`` (``app.app`` for the
  REST API), Python 3.12 on arm64, the code ``deployment.zip`` beside the template (``sam deploy`` uploads it),
  its timeout, its memory (from the measured cold-start RSS, ``memory_mb``), X-Ray tracing as the ``Tracing``
  parameter says (off by default: ``docs/cost.md``), a dead-letter queue when a bus rule invokes it, and its
  environment:
  every adapter selected for AWS with the stack's resources by ``Ref``/``Fn::GetAtt``/``Fn::Sub`` (no literal
  names), plus what that function alone needs;
* ``<Id>Role``: its own role, with exactly what its code calls (``infra/iam.py``);
* ``<Id>LogGroup``: ``/aws/lambda/<stack>-<name>`` with the ``LogRetentionDays`` retention (the function logs there:
  ``LoggingConfig``, JSON at ``LogLevel``, Lambda's own START/END/REPORT lines only from WARN), so no role may
  create log groups;
* for a Chalice schedule, ``<Id>Schedule`` (an EventBridge rule) and ``<Id>SchedulePermission``.

The logical ids are Chalice's (``APIHandler``, ``Ingest``, ``ForwardPayload``…): the rest of the template and the
tests name the functions by them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .errors import InfraError
from .fragments import ALL_FUNCTIONS
from .iam import JWT_PARAMETER, Statement, dead_letter_statement, function_statements
from .identity import TOPIC_PREFIX
from .template import (
    BLOB_BUCKET,
    CONSUMER_TIMEOUT_S,
    HANDLER_TIMEOUT_S,
    INGEST_TIMEOUT_S,
    INGEST_WINDOWED,
    SHADOW_NAME,
    WEBSOCKET_MANAGEMENT_ENDPOINT,
    async_dead_letter_queues,
    blob_environment,
    handler_environment,
    scheduler_environment,
)

RUNTIME: Final = "python3.12"
ARCHITECTURE: Final = "arm64"
"""Graviton: a fifth cheaper per GB-second than x86_64; every dependency has manylinux aarch64 wheels."""
CODE: Final = "deployment.zip"
"""The code package, relative to the template (``build/``): ``sam deploy`` uploads it and puts its S3 location in
its place, as ``aws cloudformation package`` would."""
API_FUNCTION_NAME: Final = "api_handler"
API_TIMEOUT_S: Final = 29
"""API Gateway (REST and websocket) waits 29 s at most for a function."""
TIMEOUTS_S: Final[dict[str, int]] = {"api_handler": API_TIMEOUT_S, "ingest": INGEST_TIMEOUT_S,
                                     "handlers": HANDLER_TIMEOUT_S, "websocket_connect": API_TIMEOUT_S,
                                     "websocket_message": API_TIMEOUT_S, "websocket_disconnect": API_TIMEOUT_S}
"""The queues' visibility timeouts (``infra/template.py``) are six times their function's timeout."""
DEFAULT_TIMEOUT_S: Final = CONSUMER_TIMEOUT_S
COLDSTART_FILE: Final = Path(__file__).with_name("coldstart.json")
"""What ``bench/coldstart.py --write`` measured: each function's peak RSS after its first invocation."""
MEMORY_HEADROOM: Final = 1.5
"""Memory over the measured peak RSS: Lambda's runtime adds its own, and a batch or a backup needs more than a
cold start."""
MEMORY_FLOORS_MB: Final[dict[str, int]] = {"api_handler": 512, "ingest": 1024}
"""Memory buys CPU too: the API hashes passwords (bcrypt) and answers people; ingest parses batches of 100
publishes. Every other function gets what its RSS asks for, at least ``MIN_MEMORY_MB``."""
MIN_MEMORY_MB: Final = 256
DIRECT_INGEST_MEMORY_MB: Final = 512
"""The ingest's memory when the IoT rule invokes it with each publish (``IngestBatchWindow=0``, a home): one publish
of at most 5 KB an invocation, whose time goes to the table and the bus rather than to the CPU, so half the memory
is about half the GB-seconds (``docs/cost.md``). With a window it parses batches of 100: ``MEMORY_FLOORS_MB``."""


@dataclass(frozen=True)
class LambdaFunction:
    """One function ``app.py`` declares, as Chalice sees it."""

    name: str
    handler: str
    trigger: str
    """``rest``, ``function`` (a queue, rule or schedule of ``infra/`` invokes it), ``schedule`` or ``websocket``."""
    schedule: str | None = None
    route_key: str | None = None

    @property
    def logical_id(self) -> str:
        if self.name == API_FUNCTION_NAME:
            return "APIHandler"
        return "".join(part[:1].upper() + part[1:] for part in self.name.split("_"))

    @property
    def physical_name(self) -> dict[str, Any]:
        return {"Fn::Sub": f"${{AWS::StackName}}-{self.name}"}


def _expression(schedule: Any) -> str:
    return schedule if isinstance(schedule, str) else str(schedule.to_string())


def app_functions(app: Any) -> list[LambdaFunction]:
    """Every function of the Chalice ``app``, in Chalice's order (REST API, functions, schedules, websocket)."""
    from chalice.app import ScheduledEventConfig

    functions: list[LambdaFunction] = []
    if app.routes:
        functions.append(LambdaFunction(API_FUNCTION_NAME, "app.app", "rest"))
    functions += [LambdaFunction(f.name, f.handler_string, "function") for f in app.pure_lambda_functions]
    for source in app.event_sources:
        if not isinstance(source, ScheduledEventConfig):
            raise InfraError(f"{source.name}: {type(source).__name__} event sources are not in the template yet")
        functions.append(LambdaFunction(source.name, source.handler_string, "schedule",
                                        schedule=_expression(source.schedule_expression)))
    functions += [LambdaFunction(handler.name, handler.handler_string, "websocket", route_key=route_key)
                  for route_key, handler in app.websocket_handlers.items()]
    return functions


def measured_rss_mb() -> dict[str, float]:
    """Each function's peak RSS after its first invocation (``bench/coldstart.py --write``)."""
    try:
        data = json.loads(COLDSTART_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {name: float(entry["peak_rss_mb"]) for name, entry in data.get("functions", {}).items()}


def memory_mb(name: str, measured: dict[str, float]) -> int:
    """``MEMORY_HEADROOM`` times the measured RSS, in 64 MB steps, at least the function's floor."""
    floor = MEMORY_FLOORS_MB.get(name, MIN_MEMORY_MB)
    rss = measured.get(name)
    if rss is None:
        raise InfraError(f"no measured cold-start RSS for {name!r} in {COLDSTART_FILE.name}: "
                         "run `.venv/bin/python bench/coldstart.py --write`")
    return max(floor, 64 * math.ceil(rss * MEMORY_HEADROOM / 64))


def memory_size(name: str, measured: dict[str, float]) -> int | dict[str, Any]:
    """The function's ``MemorySize``: ``memory_mb``, but the ingest's depends on how it is fed (``INGEST_WINDOWED``)."""
    memory = memory_mb(name, measured)
    if name != "ingest":
        return memory
    direct = max(DIRECT_INGEST_MEMORY_MB, 64 * math.ceil(measured.get(name, 0) * MEMORY_HEADROOM / 64))
    return {"Fn::If": [INGEST_WINDOWED, memory, min(memory, direct)]}


def base_environment() -> dict[str, Any]:
    """Every function's settings: the AWS adapters and the stack's resources they use. A function never falls
    back to a local adapter (Lambda's disk is read-only); what it may call is its role's business."""
    return {
        "LOG_LEVEL": {"Ref": "LogLevel"},
        "POWERTOOLS_METRICS_NAMESPACE": {"Fn::Sub": "MyController/${AWS::StackName}"},
        "STORAGE": "dynamodb",
        "TABLE_NAME": {"Ref": "ResourceTable"},
        "CONNECTIONS_TABLE": {"Ref": "ConnectionsTable"},
        "METRICS": "none",
        "BUS": "eventbridge",
        "EVENT_BUS_NAME": {"Ref": "EventBus"},
        "DOWNLINK": "iotdata",
        "TOPIC_PREFIX": TOPIC_PREFIX,
        "IOT_DATA_ENDPOINT": {"Fn::If": ["HasIotDataEndpoint", {"Fn::Sub": "https://${IotDataEndpoint}"},
                                         {"Ref": "AWS::NoValue"}]},
        "SHADOW": "iotdata",
        "LAST_SEEN_INTERVAL_S": {"Ref": "LastSeenInterval"},
        "SHADOW_NAME": SHADOW_NAME,
        "SIGNING_SECRET": "ssm",
        "SIGNING_SECRET_PARAMETER": JWT_PARAMETER,
        **scheduler_environment(),
        **handler_environment(),
    }


def own_environment(function: LambdaFunction, build: dict[str, str]) -> dict[str, Any]:
    """What one function needs beside ``base_environment``."""
    own: dict[str, Any] = {"POWERTOOLS_SERVICE_NAME": f"mycontroller-{function.name}"}
    if function.name == API_FUNCTION_NAME:
        own.update(blob_environment())
        own["ADMIN_PASSWORD_SECRET"] = {"Ref": "AdminPasswordSecret"}
        own.update(build)  # GIT_COMMIT, BUILD_DATE for /api/version
    if function.name == "websocket_notify":
        own["WEBSOCKET_ENDPOINT"] = WEBSOCKET_MANAGEMENT_ENDPOINT
    if function.name == "ingest":
        own["NOTIFY_AUDIENCE"] = "subscribed"  # the bulk of the bus: the notifier runs only for what is watched
        own["CONSUMER_AUDIENCE"] = "interested"  # tasks and forward payload run only for what they act on
        own["UNCHANGED_VALUE_INTERVAL_S"] = {"Ref": "LastSeenInterval"}  # a repeated reading: written this often
        own["KEEP_RECORDS_S"] = {"Ref": "LastSeenInterval"}  # nodes and sources read once between lastSeen writes
    if function.name == "handlers":
        own.update({"EMAIL": "ses", "SMS": "sns"})
    if function.name == "ingest":  # messages that fail for good go to its DLQ at once, with the reason
        own.update({"INGEST_DEAD_LETTERS": "sqs", "INGEST_DEAD_LETTER_QUEUE_URL": {"Ref": "IngestDeadLetterQueue"}})
        # an edge whose firmware URL expired gets a new one, presigned by this function (firmware/* only)
        own.update({"BLOBS": "s3", "BLOB_BUCKET": {"Ref": BLOB_BUCKET}})
    return own


APPLICATION_LOG_LEVEL: Final[dict[str, Any]] = {"Fn::If": ["LogDebug", "DEBUG", {"Fn::If": [
    "LogWarning", "WARN", {"Fn::If": ["LogError", "ERROR", {"Fn::If": ["LogCritical", "FATAL", "INFO"]}]}]}]}
"""The ``LogLevel`` parameter in Lambda's names (its WARN and FATAL are Python's WARNING and CRITICAL)."""


def logging_config(log_group: str) -> dict[str, Any]:
    """The function's own log group, JSON lines (what Powertools writes anyway) at the stack's ``LogLevel``, and
    Lambda's own lines (START, END, REPORT: some 370 bytes an invocation, half of a home's log bill) only from
    WARN up; Lambda's metrics still give every invocation's duration and memory (``docs/cost.md``)."""
    return {"LogGroup": {"Ref": log_group}, "LogFormat": "JSON", "ApplicationLogLevel": APPLICATION_LOG_LEVEL,
            "SystemLogLevel": "WARN"}


def event_source_queues(resources: dict[str, Any]) -> dict[str, str]:
    """Function logical id → the queue whose event source mapping feeds it (its role reads that queue only)."""
    queues: dict[str, str] = {}
    for resource in resources.values():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        properties = resource["Properties"]
        function, source = properties["FunctionName"], properties["EventSourceArn"]
        if isinstance(function, dict) and "Ref" in function and "Fn::GetAtt" in source:
            queues[function["Ref"]] = source["Fn::GetAtt"][0]
    return queues


def function_resources(functions: list[LambdaFunction], *, queues: dict[str, str],
                       environment: dict[str, dict[str, Any]] | None = None,
                       policies: dict[str, list[Statement]] | None = None,
                       build: dict[str, str] | None = None,
                       measured: dict[str, float] | None = None) -> dict[str, Any]:
    """Each function with its role, log group and (for schedules) rule. ``environment`` and ``policies`` are the
    contributors' additions by logical id (or ``*``): their variables win over the base ones (``METRICS``)."""
    measured = measured_rss_mb() if measured is None else measured
    environment, policies = environment or {}, policies or {}
    resources: dict[str, Any] = {}
    for function in functions:
        logical = function.logical_id
        log_group = f"{logical}LogGroup"
        variables = {**base_environment(), **own_environment(function, build or {}),
                     **environment.get(ALL_FUNCTIONS, {}), **environment.get(logical, {})}
        statements = function_statements(function.name, log_group=log_group, queue=queues.get(logical),
                                         extra=policies, logical_id=logical)
        dead_letters = async_dead_letter_queues().get(logical)
        if dead_letters:
            statements.append(dead_letter_statement(dead_letters))
        resources[log_group] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{function.name}"},
                           "RetentionInDays": {"Ref": "LogRetentionDays"}},
        }
        resources[f"{logical}Role"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
                "Policies": [{"PolicyName": function.name,
                              "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}],
            },
        }
        resources[logical] = {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": function.physical_name,
                "Handler": function.handler,
                "Runtime": RUNTIME,
                "Architectures": [ARCHITECTURE],
                "Code": CODE,
                "Role": {"Fn::GetAtt": [f"{logical}Role", "Arn"]},
                "Timeout": TIMEOUTS_S.get(function.name, DEFAULT_TIMEOUT_S),
                "MemorySize": memory_size(function.name, measured),
                "Environment": {"Variables": variables},
                "TracingConfig": {"Mode": {"Ref": "Tracing"}},
                "LoggingConfig": logging_config(log_group),
            },
        }
        if dead_letters:  # what failed every asynchronous attempt (a bus rule's invocation) waits there
            resources[logical]["Properties"]["DeadLetterConfig"] = {"TargetArn": {"Fn::GetAtt": [dead_letters, "Arn"]}}
        if function.trigger == "schedule":
            resources[f"{logical}Schedule"] = {
                "Type": "AWS::Events::Rule",
                "Properties": {"ScheduleExpression": function.schedule, "State": "ENABLED",
                               "Targets": [{"Id": logical, "Arn": {"Fn::GetAtt": [logical, "Arn"]}}]},
            }
            resources[f"{logical}SchedulePermission"] = {
                "Type": "AWS::Lambda::Permission",
                "Properties": {"Action": "lambda:InvokeFunction", "FunctionName": {"Ref": logical},
                               "Principal": "events.amazonaws.com",
                               "SourceArn": {"Fn::GetAtt": [f"{logical}Schedule", "Arn"]}},
            }
    return resources
