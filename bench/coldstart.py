"""Cold starts: each Lambda function's first invocation, in a fresh process, against moto.

For every function of the template (``infra.package.build_template``) a new Python process gets that function's
environment (the template's ``Environment.Variables``, every ``Ref``/``Fn::GetAtt``/``Fn::Sub`` resolved to the
resources created here in a moto server), imports ``app.py`` as Lambda does and invokes the function's handler once
with a typical event. It reports the import time, the first invocation's time and the process's peak RSS, which
sets each function's ``MemorySize`` (``--write`` keeps the figures in ``infra/coldstart.json``;
``infra.functions.memory_mb`` turns them into memory sizes). The process may reach only the loopback interface:
nothing here can call AWS.

Each process also records the AWS calls it made: a call its role (in the template) does not allow is printed
as ``NOT ALLOWED`` (the function would fail in AWS).

Prints one line per function, then ``coldstart: <n> functions, import p50 <ms> ms, peak RSS max <MB> MB``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REGION = "eu-west-1"
ACCOUNT = "123456789012"
STACK = "mc-bench"
ADMIN_PASSWORD = "bench-admin-password"
MARKER = "COLDSTART "
FAKE_TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"


# --------------------------------------------------------------------------------------------- the child


def _loopback_only() -> None:
    """Refuse every connection that does not stay on this machine (a real AWS endpoint, above all)."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise ConnectionRefusedError(f"coldstart bench: no connection to {host} (loopback only)")
        real_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]


def _record_calls(calls: set[str]) -> None:
    import botocore.client

    real = botocore.client.BaseClient._make_api_call

    def make_api_call(self: Any, operation: str, params: Any) -> Any:
        calls.add(f"{self.meta.service_model.signing_name}:{operation}")
        return real(self, operation, params)

    botocore.client.BaseClient._make_api_call = make_api_call


def _peak_rss_kb() -> int:
    """This process's peak RSS (``VmHWM``: unlike ``ru_maxrss``, not inherited from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class Context:
    """What Lambda hands a handler as its context."""

    def __init__(self, name: str, memory_mb: int) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self.aws_request_id = "00000000-0000-4000-8000-000000000000"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def child(handler: str, event_path: str) -> None:
    started = time.perf_counter()
    _loopback_only()
    calls: set[str] = set()
    _record_calls(calls)
    import importlib

    module = importlib.import_module(handler.split(".")[0])
    imported = time.perf_counter()
    import_kb = _peak_rss_kb()
    event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    function = getattr(module, handler.split(".", 1)[1])
    error = None
    try:
        result = function(event, Context(os.environ["AWS_LAMBDA_FUNCTION_NAME"], 1024))
    except Exception as raised:  # reported, not fatal: the cold start was still paid
        result, error = None, f"{type(raised).__name__}: {raised}"
    invoked = time.perf_counter()
    peak_kb = _peak_rss_kb()
    print(MARKER + json.dumps({"import_ms": (imported - started) * 1000, "invoke_ms": (invoked - imported) * 1000,
                               "peak_rss_mb": peak_kb / 1024, "import_rss_mb": import_kb / 1024,
                               "calls": sorted(calls), "error": error,
                               "status": (result or {}).get("statusCode") if isinstance(result, dict) else None}),
          flush=True)


# --------------------------------------------------------------------------------------------- the parent


def resolve(value: Any, names: dict[str, Any]) -> Any:
    """A template value with ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` and ``Fn::If`` replaced from ``names``
    (``"X"`` → ``Ref``, ``"X.Attr"`` → ``Fn::GetAtt``; conditions as booleans); ``None`` for ``AWS::NoValue``."""
    if isinstance(value, list):
        return [resolve(item, names) for item in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return names[value["Ref"]]
    if "Fn::GetAtt" in value:
        return names[".".join(value["Fn::GetAtt"])]
    if "Fn::If" in value:
        condition, yes, no = value["Fn::If"]
        return resolve(yes if names[condition] else no, names)
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        return re.sub(r"\$\{([^}!][^}]*)\}", lambda match: str(names[match.group(1)]), text)
    return {key: resolve(item, names) for key, item in value.items()}


def create_resources(endpoint: str) -> dict[str, Any]:
    """The stack's stateful resources in moto, and the values ``Ref``/``Fn::GetAtt`` give for them."""
    import boto3

    from chalicelib.adapters.connections_dynamodb import DynamoDBConnectionStore
    from chalicelib.adapters.repository_dynamodb import create_table

    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=endpoint)

    names: dict[str, Any] = {"AWS::StackName": STACK, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                             "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None,
                             "LogLevel": "INFO", "StageName": "v1", "IotDataEndpoint": "",
                             "HasIotDataEndpoint": False, "HasAlarmEmail": False}
    table, connections = f"{STACK}-ResourceTable", f"{STACK}-ConnectionsTable"
    create_table(table, REGION, endpoint)
    DynamoDBConnectionStore(connections, REGION, endpoint).create_table()
    for logical, name in (("ResourceTable", table), ("ConnectionsTable", connections)):
        names[logical], names[f"{logical}.Arn"] = name, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    bus = client("events").create_event_bus(Name=STACK)
    names["EventBus"], names["EventBus.Arn"] = STACK, bus["EventBusArn"]
    for queue in ("HandlerQueue", "IngestQueue"):
        url = client("sqs").create_queue(QueueName=f"{STACK}-{queue}")["QueueUrl"]
        names[queue], names[f"{queue}.Arn"] = url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-{queue}"
    key = client("kms").create_key(Description="bench")["KeyMetadata"]
    names["SecretsKey"], names["SecretsKey.Arn"] = key["KeyId"], key["Arn"]
    client("s3").create_bucket(Bucket=f"{STACK}-blobs", CreateBucketConfiguration={"LocationConstraint": REGION})
    names["BlobBucket"], names["BlobBucket.Arn"] = f"{STACK}-blobs", f"arn:aws:s3:::{STACK}-blobs"
    secret = client("secretsmanager").create_secret(Name=f"{STACK}-admin-password", SecretString=ADMIN_PASSWORD)
    names["AdminPasswordSecret"] = secret["ARN"]
    client("scheduler").create_schedule_group(Name=STACK)
    names["ScheduleGroup"] = STACK
    role = client("iam").create_role(RoleName=f"{STACK}-scheduler", AssumeRolePolicyDocument="{}")["Role"]
    names["SchedulerRole.Arn"] = role["Arn"]
    names["WebsocketAPI"], names["WebsocketAPIStage"] = "bench", "v1"
    return names


def create_queues(endpoint: str, template: dict[str, Any], names: dict[str, Any]) -> None:
    """Every other queue of the template (dead-letter queues…) in moto, so the functions' variables resolve."""
    import boto3

    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    for logical, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::SQS::Queue" and logical not in names:
            name = f"{STACK}-{logical}"
            names[logical] = sqs.create_queue(QueueName=name)["QueueUrl"]
            names[f"{logical}.Arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            names[f"{logical}.QueueName"] = name


def sqs_event(bodies: list[str], queue: str = "queue") -> dict[str, Any]:
    return {"Records": [{
        "messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "md5OfBody": "",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
                       "SenderId": "bench", "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": REGION,
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"} for i, body in enumerate(bodies)]}


def websocket_event(route: str, body: str | None = None) -> dict[str, Any]:
    return {"requestContext": {"routeKey": route, "connectionId": "bench-connection", "apiId": "bench",
                               "stage": "v1", "domainName": "bench.execute-api.eu-west-1.amazonaws.com",
                               "eventType": route.strip("$").upper(), "requestId": "bench"},
            "queryStringParameters": {"access_token": "not-a-token"}, "headers": {}, "body": body,
            "isBase64Encoded": False}


def events() -> dict[str, dict[str, Any]]:
    """A typical first event of each function (Chalice name → event)."""
    from chalicelib.core.identity import ingest_body
    from chalicelib.core.model import FieldModel, Kind, event
    from chalicelib.core.ports import bus_event
    from mycontroller_protocol.envelope import Envelope, encode_publish

    now = int(time.time() * 1000)
    publish = encode_publish([Envelope("bench-gw", "mysensors_v2", now + i, i + 1, f"bench-gw:{i + 1}",
                                       f"1;{i};1;0;0;{20 + i}.5") for i in range(20)])
    field = FieldModel(gateway_id="bench-gw", node_id="1", source_id="1", field_id="V_TEMP").record()
    published = bus_event(event("updated", Kind.FIELD, field))
    bus_body = json.dumps({"version": "0", "id": "e1", "source": published.source, "detail-type": published.detail_type,
                           "account": ACCOUNT, "region": REGION, "time": "2024-01-01T00:00:00Z", "resources": [],
                           "detail": published.detail})
    scheduled = {"version": "0", "id": "s1", "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": ACCOUNT, "time": "2024-01-01T00:00:00Z", "region": REGION, "resources": [], "detail": {}}
    login = json.dumps({"username": "admin", "password": ADMIN_PASSWORD})
    return {
        "api_handler": {
            "resource": "/api/user/login", "path": "/api/user/login", "httpMethod": "POST",
            "headers": {"content-type": "application/json"},
            "multiValueHeaders": {"content-type": ["application/json"]},
            "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
            "stageVariables": None, "body": login, "isBase64Encoded": False,
            "requestContext": {"resourcePath": "/api/user/login", "httpMethod": "POST", "stage": "v1",
                               "path": "/v1/api/user/login", "requestId": "bench", "apiId": "bench",
                               "identity": {"sourceIp": "127.0.0.1"}}},
        "ingest": sqs_event([ingest_body("bench-edge", publish)]),
        "forward_payload": sqs_event([bus_body]),
        "tasks": sqs_event([bus_body]),
        "websocket_notify": sqs_event([bus_body]),
        "handlers": sqs_event([json.dumps({"handlerId": "bench", "triggerId": "bench-1", "kind": "task",
                                           "parameters": {}})]),
        "shadow_reported": {"thing": "bench-edge", "previous": {"state": {"reported": {}}},
                            "current": {"state": {"reported": {"gateways": {}}}, "version": 2}},
        "scheduled": {"kind": "system", "job": "node_state", "scheduledTime": "2024-01-01T00:00:00Z"},
        "node_state_job": scheduled,
        "node_discover_job": scheduled,
        "sun_job": scheduled,
        "websocket_connect": websocket_event("$connect"),
        "websocket_message": websocket_event("$default", '{"type":"ping"}'),
        "websocket_disconnect": websocket_event("$disconnect"),
    }


def allowed_actions(template: dict[str, Any], logical: str) -> list[str]:
    role = template["Resources"][f"{logical}Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return [action for statement in role if statement["Effect"] == "Allow" for action in statement["Action"]]


def run(write: bool, only: list[str]) -> int:
    import logging

    from moto.server import ThreadedMotoServer

    from infra.functions import app_functions, base_environment, own_environment
    from infra.iam import iam_action
    from infra.package import build_template

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION})
    names = create_resources(endpoint)
    from app import app

    functions = [f for f in app_functions(app) if not only or f.name in only]
    template = build_template(app, contributors=[], measured=dict.fromkeys((f.name for f in app_functions(app)), 0.0))
    for key, parameter in template.get("Parameters", {}).items():
        names.setdefault(key, parameter.get("Default"))  # a parameter the stack is deployed with by default
    create_queues(endpoint, template, names)
    samples = events()
    results: dict[str, dict[str, Any]] = {}
    event_dir = ROOT / "build" / "coldstart"
    event_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for function in functions:
        variables = {**base_environment(), **own_environment(function, {})}
        resolved = {key: resolve(value, names) for key, value in variables.items()}
        env = {key: str(value) for key, value in resolved.items() if value is not None}
        if "WEBSOCKET_ENDPOINT" in env or function.trigger == "websocket":
            env["WEBSOCKET_ENDPOINT"] = endpoint  # the management API is moto's, not execute-api's
        env.update({
            "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": f"{STACK}-{function.name}", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "_X_AMZN_TRACE_ID": FAKE_TRACE,
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR", "PYTHONDONTWRITEBYTECODE": "1", "LAMBDA_TASK_ROOT": str(ROOT),
        })
        event_path = event_dir / f"{function.name}.json"
        event_path.write_text(json.dumps(samples[function.name]), encoding="utf-8")
        done = subprocess.run([sys.executable, __file__, "--child", function.handler, str(event_path)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        line = next((line for line in done.stdout.splitlines() if line.startswith(MARKER)), None)
        if line is None:
            print(f"{function.name}: the process failed\n{done.stderr[-3000:]}")
            failures += 1
            continue
        result = json.loads(line[len(MARKER):])
        allowed = allowed_actions(template, function.logical_id)
        refused = [call for call in result["calls"]
                   if not any(fnmatchcase(iam_action(call), pattern) for pattern in allowed)]
        results[function.name] = result
        print(f"{function.name:22} import {result['import_ms']:7.0f} ms  first call {result['invoke_ms']:6.0f} ms  "
              f"RSS {result['import_rss_mb']:5.1f}/{result['peak_rss_mb']:5.1f} MB  "
              f"calls {','.join(result['calls']) or '-'}"
              + (f"  NOT ALLOWED {','.join(refused)}" if refused else "")
              + (f"  ({result['error']})" if result["error"] else ""))
        failures += bool(refused)
    server.stop()
    if results:
        imports = [r["import_ms"] for r in results.values()]
        print(f"coldstart: {len(results)} functions, import p50 {statistics.median(imports):.0f} ms, "
              f"peak RSS max {max(r['peak_rss_mb'] for r in results.values()):.1f} MB")
    if write and results and not only:
        (ROOT / "infra" / "coldstart.json").write_text(json.dumps({
            "measured": "bench/coldstart.py: peak RSS of a fresh process after importing app.py and one invocation",
            "python": sys.version.split()[0], "machine": os.uname().machine,
            "functions": {name: {"peak_rss_mb": round(r["peak_rss_mb"], 1), "import_ms": round(r["import_ms"]),
                                 "first_invocation_ms": round(r["invoke_ms"])} for name, r in sorted(results.items())},
        }, indent=2) + "\n", encoding="utf-8")
        print("written to infra/coldstart.json")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="keep the figures in infra/coldstart.json")
    parser.add_argument("--only", action="append", default=[], help="only this function (Chalice name)")
    parser.add_argument("--child", nargs=2, metavar=("HANDLER", "EVENT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    return run(args.write, args.only)


if __name__ == "__main__":
    sys.exit(main())
