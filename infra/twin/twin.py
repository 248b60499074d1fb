"""The cloud twin: one deployed template run on this machine (``make twin``; ``python -m infra.twin``).

``Twin.start`` reads the template, starts moto (the AWS APIs, ``aws.py``) and creates the template's resources in
it (``resources.py``), starts mosquitto as IoT Core's data plane (``broker.py``) with the twin's shadow service and
rules engine (``iot.py``), the functions' workers (``functions.py``), the event source mappings, EventBridge rules
and Scheduler (``sources.py``) and API Gateway with the console (``gateway.py``); then writes ``twin.json``. The
twin only connects these parts as the template says; every refusal (a function's call its role does not allow, a
rule's action its role cannot do, an invocation no permission allows) is logged and kept in ``refusals.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from .aws import Endpoint, Hooks
from .broker import Broker, endpoint_address
from .functions import Functions, FunctionSpec, InvokeError, function_specs, role_documents
from .gateway import Behavior, Gateway, RestApi, WebsocketApi, function_of
from .iam import Policy, Request, service_statements, wildcard_match
from .iot import IotCore, build_rules
from .pki import Authority, common_name
from .resources import Creator
from .sources import EventRules, QueueMapping, Schedules, mapping_specs
from .template import ACCOUNT_ID, StackTemplateError, Template, Unresolved

log = logging.getLogger("twin")
ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "twin", "AWS_SECRET_ACCESS_KEY": "twin", "AWS_SESSION_TOKEN": "twin"}


@dataclass
class Options:
    template: Path
    stack: str = "mycontroller"
    region: str = "us-east-1"
    state_dir: Path = ROOT / "build" / "twin"
    info_path: Path = ROOT / "build" / "twin.json"
    parameters: dict[str, str] = field(default_factory=dict)
    admin_password: str | None = None
    host: str = "127.0.0.1"
    api_port: int = 0
    aws_port: int = 0
    iot_host: str | None = None
    concurrency: int = 1
    retry_after_s: float | None = None
    """Tests only: failed SQS records come back after this instead of the queue's visibility timeout."""
    static_dir: Path = ROOT / "frontend" / "dist"


def admin_password_parameter(body: dict[str, Any]) -> str | None:
    """The template's admin password parameter: the one named like it."""
    for name in body.get("Parameters") or {}:
        if re.search(r"admin", name, re.I) and re.search(r"password", name, re.I):
            return str(name)
    return None


class Twin:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.refusals: list[dict[str, Any]] = []
        self.unevaluated: set[str] = set()
        self.actions: dict[str, set[str]] = {}
        """Per function, the IAM actions its calls needed (what its role must allow, seen at work)."""
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._async = ThreadPoolExecutor(max_workers=16, thread_name_prefix="invoke-async")
        self.mappings: list[QueueMapping] = []
        self.info: dict[str, Any] = {}
        self._session = boto3.session.Session()
        self._clients: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------- clients

    def client(self, service: str, *, shared: bool = True) -> Any:
        """A boto3 client on the twin's own endpoint (one per service unless ``shared=False``: a poller's own)."""
        if shared and service in self._clients:
            return self._clients[service]
        client = self._session.client(service, region_name=self.options.region, endpoint_url=self.aws_endpoint,
                                      aws_access_key_id="twin", aws_secret_access_key="twin",
                                      config=Config(retries={"max_attempts": 2}, read_timeout=30,
                                                    max_pool_connections=32))
        if shared:
            self._clients[service] = client
        return client

    # ------------------------------------------------------------------------------------------- start

    def start(self) -> dict[str, Any]:
        options = self.options
        started = time.perf_counter()
        if options.state_dir.exists():
            shutil.rmtree(options.state_dir)
        options.state_dir.mkdir(parents=True)
        self._refusal_log = (options.state_dir / "refusals.jsonl").open("a", buffering=1)
        self._calls_log = (options.state_dir / "calls.jsonl").open("a", buffering=1)
        self.template = template = Template.load(options.template, options.stack, options.region,
                                                 self._parameter_overrides())

        self.hooks = Hooks()
        self.endpoint = Endpoint(self.hooks)
        self.aws_endpoint = f"http://{options.host}:{self.endpoint.serve(options.host, options.aws_port)}"
        self.authority = Authority(options.state_dir / "pki")
        self.broker = Broker(options.state_dir / "broker", self.authority, endpoint_address(options.iot_host))
        self.broker.start()
        self.hooks.endpoint_address = lambda: self.broker.host
        self.hooks.issue_certificate = self._issue_certificate
        self.hooks.iot_changed = self.refresh_acl

        creator = Creator(template, self.client)
        self.created = creator.create_all()
        self.outputs = creator.register_stack()

        base_env = {**CREDENTIALS, "AWS_REGION": options.region, "AWS_DEFAULT_REGION": options.region,
                    "AWS_ENDPOINT_URL": self.aws_endpoint}
        specs = function_specs(template)
        for spec in specs.values():
            for problem in spec.problems:
                self.problem(f"function {spec.logical}: {problem}")
        self.functions = Functions(specs, base_env=base_env, policy_dir=options.state_dir / "policies",
                                   on_calls=self._on_calls, function_log=options.state_dir / "functions.log",
                                   concurrency=options.concurrency)
        self._permissions = [template.resolve(r.get("Properties") or {})
                             for logical, r in template.of_type("AWS::Lambda::Permission")
                             if logical in template.physical]
        self._role_policies = self._roles()

        self.iot = IotCore("127.0.0.1", self.broker.internal_port, self.broker.internal_user,
                           self.broker.internal_password, build_rules(template), sqs=lambda: self._sqs,
                           invoke_async=self.invoke_async, role_policy=self._role_policies.get,
                           lambda_allowed=lambda arn, source: self.lambda_allowed(arn, source, "iot.amazonaws.com"),
                           on_refusal=self.refuse)
        self._sqs = self.client("sqs")
        self.hooks.iot_publish = lambda topic, payload, qos, retain: self.iot.publish(topic, payload, qos, retain)
        self.hooks.shadows = self.iot.shadows

        specs_, problems = mapping_specs(template, self.functions)
        for problem in problems:
            self.problem(problem)
        self.mappings = [QueueMapping(spec, self.client("sqs", shared=False), self.functions.invoke, options.region,
                                      options.retry_after_s) for spec in specs_]
        self.event_rules = EventRules(template, self.functions, self.invoke_async, self.lambda_allowed, self.refuse)
        self.hooks.put_events = self.event_rules.put_events
        self.schedules = Schedules(self.client("scheduler", shared=False), self.invoke_async,
                                   self._role_policies.get, self.refuse)
        self.hooks.schedules_changed = self.schedules.changed
        self.hooks.control = self.control

        rest_api, websocket_api = self._rest_api(), self._websocket_api()
        self.gateway_ids = {"rest": rest_api.api_id if rest_api else "",
                            "websocket": websocket_api.api_id if websocket_api else ""}
        self.gateway = Gateway(rest=rest_api, websocket=websocket_api, invoke=self.functions.invoke,
                               allowed=self.lambda_allowed, on_refusal=self.refuse, region=options.region,
                               static_dir=options.static_dir, behaviors=self._console_behaviors())
        self.hooks.connections = self.gateway.connections
        port = self.gateway.serve(options.host, options.api_port)
        for mapping in self.mappings:
            mapping.start()
        self.event_rules.start()
        self.schedules.start()
        self.refresh_acl()
        self._check_rule_queues()
        self._report_start()
        self.info = self._info(port, started)
        options.info_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = options.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info, indent=2) + "\n")
        tmp.replace(options.info_path)
        return self.info

    def _parameter_overrides(self) -> dict[str, str]:
        """The options' template parameters, with MC_ADMIN_PASSWORD as the template's admin password parameter."""
        options = self.options
        overrides = dict(options.parameters)
        password_parameter = admin_password_parameter(json.loads(options.template.read_text(encoding="utf-8")))
        if options.admin_password is None and password_parameter and password_parameter not in overrides:
            raise StackTemplateError(f"the template's {password_parameter} parameter has no value: set "
                                     "MC_ADMIN_PASSWORD (the first admin's password)")
        if options.admin_password is not None:
            if password_parameter:
                overrides.setdefault(password_parameter, options.admin_password)
            else:
                self.problem("MC_ADMIN_PASSWORD is set but the template has no admin password parameter")
        return overrides

    def _info(self, port: int, started: float) -> dict[str, Any]:
        """What the twin tells its clients: its local URLs (API, websocket, console), endpoints and outputs."""
        options = self.options
        base = f"http://{options.host}:{port}"
        rest = self.gateway.rest
        websocket = self.gateway.websocket
        return {
            "api": self._local_url(self.outputs, "https", base) or (f"{base}/{rest.stage}" if rest else None),
            "ws": self._local_url(self.outputs, "wss", base.replace("http", "ws", 1))
            or (f"ws://{options.host}:{port}/{websocket.stage}" if websocket else None),
            "console": self._local_url(self.outputs, "https", base, cloudfront=True) or f"{base}/",
            "aws_endpoint": self.aws_endpoint,
            "iot_endpoint": self.broker.host,
            "iot_port": self.broker.port,
            "iot_ca": str(self.authority.ca_path),
            "stack": options.stack,
            "region": options.region,
            "outputs": self.outputs,
            "state_dir": str(options.state_dir),
            "started_s": round(time.perf_counter() - started, 2),
            "pid": os.getpid(),
        }

    @staticmethod
    def _local_url(outputs: dict[str, str], scheme: str, base: str, cloudfront: bool = False) -> str | None:
        """An output URL of API Gateway (``https://<id>.execute-api...``) or CloudFront on the twin's port."""
        host = r"[^/]+\.cloudfront\.net" if cloudfront else r"[^/]+\.execute-api\.[^/]+\.amazonaws\.com"
        for name, value in sorted(outputs.items()):
            match = re.fullmatch(rf"{scheme}://{host}(/.*)?", value)
            if match and cloudfront:
                return base + (match.group(1) or "/")
            if match and ("websocket" in name.lower()) == (scheme == "wss"):
                return base + (match.group(1) or "/").rstrip("/")
        return None

    def _roles(self) -> dict[str, Policy]:
        policies = {}
        for logical, _ in self.template.of_type("AWS::IAM::Role"):
            if logical not in self.template.physical:
                continue
            arn = self.template.attributes[logical]["Arn"]
            documents, problems = role_documents(self.template, logical)
            for problem in problems:
                self.problem(f"role {logical}: {problem}")
            policies[arn] = Policy(documents, principal_arn=arn, account=ACCOUNT_ID, region=self.options.region)
        return policies

    def _rest_api(self) -> RestApi | None:
        template = self.template
        apis = [(logical, r) for logical, r in template.of_type("AWS::ApiGateway::RestApi")
                if logical in template.physical]
        if not apis:
            return None
        if len(apis) > 1:
            self.problem(f"{len(apis)} REST APIs: the twin serves {apis[0][0]} only")
        logical, resource = apis[0]
        props = template.resolve(resource.get("Properties") or {})
        if not props.get("Body"):
            self.problem(f"REST API {logical} has no Body (OpenAPI): its routes are not served")
        stage = None
        for kind in ("AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment"):
            for _, other in template.of_type(kind):
                other_props = other.get("Properties") or {}
                if other_props.get("RestApiId") == {"Ref": logical} and other_props.get("StageName"):
                    stage = stage or template.resolve(other_props["StageName"])
        responses = {}
        for _, other in template.of_type("AWS::ApiGateway::GatewayResponse"):
            other_props = template.resolve(other.get("Properties") or {})
            if other_props.get("RestApiId") == template.physical[logical]:
                responses[other_props["ResponseType"]] = other_props
        return RestApi(template.physical[logical], str(stage or "api"), props.get("Body") or {}, responses)

    def _websocket_api(self) -> WebsocketApi | None:
        template = self.template
        apis = [(logical, r) for logical, r in template.of_type("AWS::ApiGatewayV2::Api")
                if logical in template.physical and (r.get("Properties") or {}).get("ProtocolType") == "WEBSOCKET"]
        if not apis:
            return None
        logical, resource = apis[0]
        api_id = template.physical[logical]
        props = template.resolve(resource.get("Properties") or {})
        integrations = {template.physical[i]: function_of(template.resolve(r["Properties"].get("IntegrationUri")))
                        for i, r in template.of_type("AWS::ApiGatewayV2::Integration") if i in template.physical}
        routes: dict[str, str] = {}
        for _, route in template.of_type("AWS::ApiGatewayV2::Route"):
            route_props = template.resolve(route.get("Properties") or {})
            if route_props.get("ApiId") != api_id:
                continue
            target = str(route_props.get("Target", "")).removeprefix("integrations/")
            function = integrations.get(target)
            if function:
                routes[route_props["RouteKey"]] = function
            else:
                self.problem(f"websocket route {route_props.get('RouteKey')}: target {target} is no Lambda integration")
        stage = None
        for _, other in template.of_type("AWS::ApiGatewayV2::Stage"):
            other_props = template.resolve(other.get("Properties") or {})
            if other_props.get("ApiId") == api_id:
                stage = other_props.get("StageName")
        return WebsocketApi(api_id, str(stage or "api"), str(props.get("RouteSelectionExpression", "")), routes)

    def _check_rule_queues(self) -> None:
        """EventBridge delivers to a queue only if the queue's policy lets events.amazonaws.com send from that rule
        (moto delivers regardless): each rule's SQS targets are checked against the template's queue policies."""
        template = self.template
        policies: dict[str, list[dict[str, Any]]] = {}
        for logical, resource in template.of_type("AWS::SQS::QueuePolicy"):
            if logical not in template.physical:
                continue
            props = template.resolve(resource.get("Properties") or {})
            for url in props.get("Queues") or []:
                policies.setdefault(str(url), []).append(service_statements(props["PolicyDocument"],
                                                                            "events.amazonaws.com"))
        arns = {template.attributes[q]["Arn"]: template.physical[q] for q, _ in template.of_type("AWS::SQS::Queue")
                if q in template.physical}
        for logical, resource in template.of_type("AWS::Events::Rule"):
            if logical not in template.physical:
                continue
            props = template.resolve(resource.get("Properties") or {})
            rule_arn = template.attributes[logical]["Arn"]
            for target in props.get("Targets") or []:
                for queue_arn in [target.get("Arn"), (target.get("DeadLetterConfig") or {}).get("Arn")]:
                    if not queue_arn or ":sqs:" not in str(queue_arn):
                        continue
                    policy = Policy(policies.get(arns.get(str(queue_arn), ""), []))
                    decision = policy.decide(Request("sqs:SendMessage", str(queue_arn),
                                                     (("aws:sourcearn", rule_arn),)))
                    if not decision.allowed:
                        self.refuse(f"rule {template.physical[logical]} (events.amazonaws.com)",
                                    f"sqs:SendMessage on {queue_arn}: the queue's policy does not let the rule send "
                                    f"({decision.reason})")

    def _console_behaviors(self) -> list[Behavior]:
        """The cache behaviours of the template's CloudFront distribution, their origins recognised as the console
        bucket, the REST API (with its origin path: the stage) or the websocket API."""
        template = self.template
        rest_id = self.gateway_ids["rest"]
        ws_id = self.gateway_ids["websocket"]
        buckets = set()
        for bucket, _ in template.of_type("AWS::S3::Bucket"):
            attributes = template.attributes.get(bucket) or {}
            buckets |= {str(attributes.get("DomainName")), str(attributes.get("RegionalDomainName"))}
        for logical, resource in template.of_type("AWS::CloudFront::Distribution"):
            try:
                config = template.resolve((resource.get("Properties") or {}).get("DistributionConfig") or {})
            except Unresolved as error:
                self.problem(f"distribution {logical}: {error}")
                continue
            origins: dict[str, tuple[str, str]] = {}
            for origin in config.get("Origins") or []:
                domain = str(origin.get("DomainName", ""))
                api = domain.split(".execute-api.", 1)[0] if ".execute-api." in domain else None
                kind = "s3" if domain in buckets else "rest" if api and api == rest_id else \
                    "websocket" if api and api == ws_id else "other"
                if kind == "other":
                    self.problem(f"distribution {logical}: origin {origin.get('Id')} ({domain}) is none of the "
                                 "stack's buckets or APIs")
                origins[str(origin.get("Id"))] = (kind, str(origin.get("OriginPath") or ""))
            behaviors = [Behavior(str(b["PathPattern"]), *origins.get(str(b["TargetOriginId"]), ("other", "")))
                         for b in config.get("CacheBehaviors") or []]
            default = config.get("DefaultCacheBehavior") or {}
            behaviors.append(Behavior("*", *origins.get(str(default.get("TargetOriginId")), ("other", ""))))
            return behaviors
        return []

    # ------------------------------------------------------------------------------------------- wiring

    def lambda_allowed(self, function_arn: str, source_arn: str, principal: str) -> bool:
        """Whether a resource-based permission of the template lets ``principal`` invoke the function from there."""
        spec = self.functions.find(function_arn)
        if spec is None:
            return False
        for permission in self._permissions:
            target = str(permission.get("FunctionName", ""))
            if self.functions.find(target) is not spec:
                continue
            if permission.get("Principal") != principal:
                continue
            if not wildcard_match(str(permission.get("Action", "")), "lambda:InvokeFunction", case=False):
                continue
            source = permission.get("SourceArn")
            if source and not wildcard_match(str(source), source_arn):
                continue
            return True
        return False

    def invoke_async(self, function: str, payload: Any) -> None:
        def run() -> None:
            try:
                self.functions.invoke(function, payload)
            except InvokeError as error:
                log.error("async invocation failed: %s", error)

        self._async.submit(run)

    def _issue_certificate(self, active: bool) -> dict[str, Any]:
        from moto.iot.models import iot_backends

        issued = self.authority.device_certificate()
        backend = iot_backends[ACCOUNT_ID][self.options.region]
        cert = backend.register_certificate_without_ca(issued.certificate_pem, "ACTIVE" if active else "INACTIVE")
        self.refresh_acl()
        return {"certificateArn": cert.arn, "certificateId": cert.certificate_id,
                "certificatePem": issued.certificate_pem,
                "keyPair": {"PublicKey": issued.public_key_pem, "PrivateKey": issued.private_key_pem}}

    def refresh_acl(self) -> None:
        from moto.iot.models import iot_backends

        backend = iot_backends[ACCOUNT_ID][self.options.region]
        certificates = []
        with self._lock:
            for cert in list(backend.certificates.values()):
                documents = []
                for policy in backend.list_attached_policies(cert.arn):
                    document = policy.document
                    documents.append(json.loads(document) if isinstance(document, str) else document)
                certificates.append({"username": common_name(cert.certificate_pem), "status": cert.status,
                                     "things": backend.list_principal_things(cert.arn), "documents": documents})
            self.broker.write_acl(certificates, self.options.region, ACCOUNT_ID)

    # ------------------------------------------------------------------------------------------- records

    def problem(self, text: str) -> None:
        self.problems.append(text)
        log.warning("template: %s", text)

    def refuse(self, who: str, what: str) -> None:
        entry = {"time": time.time(), "who": who, "what": what}
        with self._lock:
            self.refusals.append(entry)
        self._refusal_log.write(json.dumps(entry) + "\n")
        log.error("REFUSED %s: %s", who, what)

    def _on_calls(self, spec: FunctionSpec, calls: list[dict[str, Any]]) -> None:
        for call in calls:
            call["function"] = spec.logical
            if call.get("action"):
                self.actions.setdefault(spec.logical, set()).add(call["action"])
            self._calls_log.write(json.dumps(call) + "\n")
            for condition in call.get("unevaluated") or []:
                if condition not in self.unevaluated:
                    self.unevaluated.add(condition)
                    log.warning("condition not evaluated by the twin (taken as met): %s (%s)", condition, spec.logical)
            if not call["allowed"]:
                self.refuse(f"function {spec.logical} (role {spec.role_arn})",
                            f"{call['action']} on {call['resource']}: {call['reason']}")

    def _report_start(self) -> None:
        created = self.created
        log.info("stack %s: %d resources created in moto, %d played by the twin, %d not created",
                 self.options.stack, len(created.created), len(created.kept), len(created.skipped))
        for logical, reason in sorted(created.skipped.items()):
            if "condition" in reason and reason.endswith("is false"):
                log.info("skipped %s: %s", logical, reason)
            else:
                log.warning("NOT CREATED %s: %s", logical, reason)
        for logical, reason in sorted(created.kept.items()):
            log.info("twin plays %s: %s", logical, reason)

    def status(self) -> dict[str, Any]:
        return {
            "functions": self.functions.stats, "mappings": {m.spec.logical: m.stats for m in self.mappings},
            "iot": self.iot.counts, "rules_fired": self.event_rules.fired, "schedules_fired": self.schedules.fired,
            "refusals": self.refusals, "unevaluated_conditions": sorted(self.unevaluated),
            "not_created": self.created.skipped, "played_by_twin": self.created.kept, "problems": self.problems,
            "websocket_posts": self.gateway.connections.posts, "broker_notes": self.broker.notes,
            "actions_used": {name: sorted(actions) for name, actions in sorted(self.actions.items())},
        }

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """``/_twin/...`` on the AWS endpoint: ``GET status``, ``POST rules/<name>/fire``."""
        if method == "GET" and path == "/_twin/status":
            return 200, self.status()
        fire = re.fullmatch(r"/_twin/rules/([^/]+)/fire", path)
        if method == "POST" and fire:
            name = fire.group(1)
            prefix = f"{self.options.stack}-{name}"
            matches = [n for n in self.event_rules.scheduled if n == name or n.startswith(prefix)]
            return (200, {"fired": matches}) if matches and all(self.event_rules.fire(n) for n in matches) else (
                404, {"message": f"no scheduled rule {name}"})
        return 404, {"message": f"no {method} {path}"}

    def stop(self) -> None:
        for mapping in self.mappings:
            mapping.stop()
        for part in ("event_rules", "schedules"):
            if hasattr(self, part):
                getattr(self, part).stop()
        if hasattr(self, "gateway"):
            self.gateway.stop()
        if hasattr(self, "iot"):
            self.iot.close()
        if hasattr(self, "functions"):
            self.functions.close()
        if hasattr(self, "broker"):
            self.broker.stop()
        if hasattr(self, "endpoint"):
            self.endpoint.stop()
        self._async.shutdown(wait=False, cancel_futures=True)
