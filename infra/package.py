"""``make package``: the deployable stack in ``build/``, without touching AWS.

``python -m infra.package`` writes

* ``build/template.json``: the whole stack as plain CloudFormation (no ``Transform``), built from the Chalice app's
  description of its functions (``infra/functions.py``) and the resources beside them (``infra/template.py``);
* ``build/deployment.zip``: the code every function runs (``infra/bundle.py``); ``--template-only`` skips it.

``make deploy`` hands both to ``sam deploy`` (``infra/deploy.py``), which uploads the zip and deploys through a
change set.

The template's shape (what the cloud twin, ``infra/twin/``, runs)
-----------------------------------------------------------------

``Parameters``: ``AdminPassword`` (NoEcho, required on the first deploy), ``StageName`` (``v1``),
``LogRetentionDays`` (30), ``LogLevel`` (INFO), ``AlarmEmail`` (empty: no subscription), ``IotDataEndpoint`` (empty:
the region's default), ``IngestMaximumConcurrency`` (20), and the cost levers (``docs/cost.md``):
``IngestBatchWindow`` (0), ``TableCapacity`` (``on-demand``; ``provisioned``), ``TableWriteCapacity`` (5),
``TableReadCapacity`` (10), ``TableMaxCapacity`` (200), ``LastSeenInterval`` (300), ``FunctionAlarms`` (``false``),
``Tracing`` (``PassThrough``); contributors add theirs (``infra/contributors.py``).
``Conditions``: ``HasAlarmEmail``, ``HasIotDataEndpoint``, ``HasFunctionAlarms``, ``ProvisionedTable``,
``IngestWindowed``, ``LogDebug``, ``LogWarning``, ``LogError``, ``LogCritical``.

Functions (logical id ← Chalice name; ``FunctionName`` is ``${AWS::StackName}-<name>``):

=====================  ============================  =======================================================
logical id             ``Handler``                   trigger
=====================  ============================  =======================================================
``APIHandler``         ``app.app``                   ``RestAPI`` (proxy integrations of every route)
``Ingest``             ``app.ingest``                ``IngestTopicRule`` (Lambda action; windowed: ``IngestQueue``)
``ForwardPayload``     ``app.forward_payload``       ``ForwardPayloadRule`` (bus rule, Lambda target: packs)
``Handlers``           ``app.handlers``              ``HandlerEventSource`` ← ``HandlerQueue``
``ShadowReported``     ``app.shadow_reported``       ``ShadowReportedTopicRule`` (IoT rule, Lambda action)
``Tasks``              ``app.tasks``                 ``TasksRule`` (bus rule, Lambda target: packs)
``Scheduled``          ``app.scheduled``             EventBridge Scheduler (``SchedulerRole``), schedules made
                                                     at run time in ``ScheduleGroup``
``WebsocketNotify``    ``app.websocket_notify``      ``WebsocketNotifyRule`` (bus rule, Lambda target: watched
                                                     packs)
``NodeStateJob``,      ``app.node_state_job``, …     ``<Id>Schedule`` (``AWS::Events::Rule``, a rate or cron)
``NodeDiscoverJob``,                                 and ``<Id>SchedulePermission``
``SunJob``
``WebsocketConnect``,  ``app.websocket_connect``, …  ``WebsocketAPI`` routes ``$connect``, ``$default``,
``WebsocketMessage``,                                ``$disconnect``
``WebsocketDisconnect``
=====================  ============================  =======================================================

Each function (``AWS::Lambda::Function``): ``Runtime`` ``python3.12``, ``Architectures`` ``[arm64]``, ``Code``
``"deployment.zip"`` (a local path relative to the template, as ``sam deploy``/``aws cloudformation package`` take
it), ``Role`` ``{"Fn::GetAtt": ["<Id>Role", "Arn"]}`` (one ``AWS::IAM::Role`` per function, its statements inline in
``Policies[0]``), ``Timeout``, ``MemorySize``, ``TracingConfig.Mode`` ``{"Ref": "Tracing"}``, ``LoggingConfig``
(``LogGroup`` ``{"Ref": "<Id>LogGroup"}``, ``LogFormat`` JSON, ``ApplicationLogLevel`` an ``Fn::If`` chain on the
``Log*`` conditions, ``SystemLogLevel`` WARN), ``Environment.Variables`` (literal strings, ``Ref``, ``Fn::GetAtt``,
``Fn::Sub`` and one ``Fn::If`` on ``HasIotDataEndpoint`` that may be ``AWS::NoValue``); the bus consumers a
``DeadLetterConfig.TargetArn`` (their ``<Consumer>DeadLetterQueue``: failed asynchronous invocations).

Event sources: ``AWS::Lambda::EventSourceMapping`` (``EventSourceArn`` ``Fn::GetAtt`` of a queue, ``FunctionName``
``Ref`` of a function, ``BatchSize``, ``MaximumBatchingWindowInSeconds``, ``FunctionResponseTypes``
``[ReportBatchItemFailures]``; the ingest mapping's ``BatchSize`` an ``Fn::If`` on ``IngestWindowed`` (100, else
10), its window ``{"Ref": "IngestBatchWindow"}`` and ``ScalingConfig.MaximumConcurrency``; the bus consumers'
``<Consumer>Redrive`` mappings on their dead-letter queues ``Enabled: false``), ``AWS::IoT::TopicRule`` (SQS and
Lambda actions), ``AWS::Events::Rule`` on ``EventBus`` (Lambda targets with ``RetryPolicy`` and
``DeadLetterConfig``; patterns on ``source``, ``detail.types`` and ``detail.watched``: ``core/bus_packing.py``) and
on the default bus (schedules), ``AWS::Lambda::Permission`` for every service that invokes a function.

APIs: ``RestAPI`` (``AWS::ApiGateway::RestApi`` whose ``Body`` is Chalice's OpenAPI document, ``aws_proxy``
integrations with ``Fn::Sub`` URIs naming the function ``arn:…:function:${AWS::StackName}-api_handler``, so that
the API does not depend on the function), ``RestAPIDeployment<hash>`` (the id changes with
the body), ``RestAPIStage`` (``StageName`` parameter); the body's ``x-amazon-apigateway-gateway-responses`` answer
what API Gateway answers itself as ``{"status", "message", "field"}`` (an unknown path: 404 "Not found");
``WebsocketAPI`` (``AWS::ApiGatewayV2::Api``),
``<Id>APIIntegration``, ``<Id>Route``, ``WebsocketAPIStage`` (``AutoDeploy``).

Data and plumbing (stable ids): ``ResourceTable``, ``ConnectionsTable``, ``IngestQueue``/``IngestDeadLetterQueue``,
``HandlerQueue``/``HandlerDeadLetterQueue``, ``<Consumer>DeadLetterQueue``/``<Consumer>DeadLetterQueuePolicy``/
``<Consumer>Rule``/``<Consumer>Permission``/``<Consumer>Redrive`` for ``ForwardPayload``, ``Tasks``,
``WebsocketNotify``, ``EventBus``, ``ScheduleGroup``, ``SchedulerRole``, ``IngestRuleRole``, ``SecretsKey``,
``BlobBucket``(``Policy``), ``AdminPasswordSecret``, ``EdgePolicy``, ``AlarmTopic``, ``AlarmEmailSubscription``,
the alarms ``<Queue>DepthAlarm`` and (``HasFunctionAlarms``) ``<Id>ErrorsAlarm``, ``<Id>ThrottlesAlarm``, and
(``ProvisionedTable``) ``Table{Write,Read}Scaling``, ``IndexByKind{Write,Read}Scaling``,
``IndexByTree{Write,Read}Scaling`` (``AWS::ApplicationAutoScaling::ScalableTarget``) with their ``…Policy``.

``Outputs``: ``RestApiUrl``, ``WebsocketUrl``, ``IotDataEndpoint``, ``EdgePolicyName``, ``AlarmTopicArn``, the
tables, queues (every DLQ's URL and ARN, for redrives), bus, schedule group and bucket names.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

from .apis import api_outputs, rest_api_resources, websocket_resources
from .contributors import CONTRIBUTORS, Contributor
from .fragments import SECTIONS, merge
from .functions import API_FUNCTION_NAME, app_functions, event_source_queues, function_resources
from .monitoring import monitoring_outputs, monitoring_resources
from .template import build_resources, parameters

ROOT: Final = Path(__file__).resolve().parent.parent
BUILD_DIR: Final = ROOT / "build"
DESCRIPTION: Final = "MyController Serverless: an IoT controller (https://github.com/mycontroller-org, v2) on AWS"


def dead_letter_queues(resources: dict[str, Any]) -> list[str]:
    """Every queue another queue or a rule's target dead-letters to (each gets a depth alarm)."""
    found: set[str] = set()
    for resource in resources.values():
        targets: list[Any] = []
        if resource.get("Type") == "AWS::SQS::Queue":
            targets.append(((resource.get("Properties") or {}).get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        if resource.get("Type") == "AWS::Events::Rule":
            targets += [(target.get("DeadLetterConfig") or {}).get("Arn")
                        for target in resource["Properties"].get("Targets", [])]
        found.update(target["Fn::GetAtt"][0] for target in targets
                     if isinstance(target, dict) and "Fn::GetAtt" in target)
    return sorted(found)


def stack_outputs() -> dict[str, Any]:
    return {
        "IotDataEndpoint": {
            "Description": "Where edge devices connect (MQTT over TLS, port 8883)",
            "Value": {"Fn::If": ["HasIotDataEndpoint", {"Ref": "IotDataEndpoint"},
                                 {"Fn::Sub": "data-ats.iot.${AWS::Region}.${AWS::URLSuffix}"}]}},
    }


def build_template(app: Any = None, *, contributors: list[Contributor] | None = None,
                   build: dict[str, str] | None = None, measured: dict[str, float] | None = None) -> dict[str, Any]:
    """The whole stack: parameters, resources, functions, APIs, alarms and what contributors add."""
    if app is None:
        from app import app
    extra = merge(contributor() for contributor in (CONTRIBUTORS if contributors is None else contributors))
    base = merge([parameters(), build_resources(), {key: extra[key] for key in SECTIONS}])
    functions = app_functions(app)
    resources = base["Resources"]
    queues = dead_letter_queues(resources)
    api_function = next(f for f in functions if f.name == API_FUNCTION_NAME)
    whole = merge([
        base,
        {"Resources": function_resources(functions, queues=event_source_queues(resources),
                                         environment=extra["Environment"], policies=extra["Policies"],
                                         build=build, measured=measured)},
        {"Resources": {**rest_api_resources(app, api_function), **websocket_resources(functions)},
         "Outputs": api_outputs()},
        {"Resources": monitoring_resources([f.logical_id for f in functions], queues),
         "Outputs": monitoring_outputs()},
        {"Outputs": {**stack_outputs(),
                     **{f"{queue}Arn": {"Value": {"Fn::GetAtt": [queue, "Arn"]}} for queue in queues}}},
    ])
    return {"AWSTemplateFormatVersion": "2010-09-09", "Description": DESCRIPTION,
            **{section: whole[section] for section in ("Parameters", "Conditions", "Resources", "Outputs")}}


def build_info(root: Path = ROOT) -> dict[str, str]:
    """``GIT_COMMIT`` and ``BUILD_DATE`` (the commit's date: the same sources give the same template)."""
    done = subprocess.run(["git", "log", "-1", "--format=%H %cI"], cwd=root, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return {}
    commit, date = done.stdout.split()
    return {"GIT_COMMIT": commit[:12], "BUILD_DATE": date}


def write_template(template: dict[str, Any], destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(json.dumps(template, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    parser.add_argument("--template-only", action="store_true", help="write the template, not the code package")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    template = build_template(build=build_info())
    write_template(template, args.build_dir / "template.json")
    size = (args.build_dir / "template.json").stat().st_size
    print(f"{args.build_dir / 'template.json'}: {len(template['Resources'])} resources, {size // 1024} KB")
    if not args.template_only:
        from .bundle import build_bundle

        bundle = build_bundle(args.build_dir)
        print(f"{bundle}: {bundle.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
