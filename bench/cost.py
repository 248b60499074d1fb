"""Cost benchmark: what the stack costs on AWS, in dollars, at a fleet's load, at a home's trickle and idle.

The real functions run (ingest, the bus consumers, the websocket routes, the system jobs), each in a container of
its own as Lambda keeps them, with the AWS adapters over moto; ``bench/meter.py`` counts every call they make in
billed units. What AWS does between them is played from the template ``make package`` builds
(``bench/stack_model.py``): the edge's packing (``edge/uplink/packing.py``), the IoT rule (through IoT Basic
Ingest when the stack names it for the edge: no messaging charge), the ingest queue's
batching window and size, each bus rule's pattern and target (a queue and its mapping, or the function itself),
the functions' memory, tracing and log settings, and the fixed monthly items. ``bench/pricing.py`` prices it all
with its dated us-east-1 list prices; ``docs/cost.md`` explains every line.

Profiles:

* **fleet**: 1,000 gateways at load: every ingest batch full (100 publishes of ~50 messages, the traffic of
  ``bench/ingest.py``: a gateway's 500 fields each reporting about ten times a batch), no console open;
* **home**: 50 nodes of 5 sensors, 5 messages a second altogether (each node every 10 s), one message per serial
  line as the edge sees them, packed by the agent's default window for AWS IoT Core; one console open on a
  dashboard of 12 fields; three tasks (a threshold on a temperature each) and a forward payload (a switch's status);
* **idle**: the home's devices silent all month, the console open all month (API Gateway closes an idle socket
  after 10 minutes and the console reconnects).

Per million device messages = the month's bill (variable and fixed) over the month's messages. A managed metric
instance (``MetricStore=create``) is shown apart. ``--param Key=Value`` deploys with other stack parameters,
``--linger-ms`` packs with another window, ``--profile`` runs one profile, ``--prices`` prints the table.

Prints, as its last line:
``cost: fleet $<x> per million msgs, home $<y> per million msgs, idle $<z> per month``
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import io
import json
import logging
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


import boto3
from moto import mock_aws

from bench.ingest import SENSORS, presentation_lines, traffic_lines
from bench.meter import IOT_STEP, SQS_STEP, TABLE_MARK, AwsMeter
from bench.pricing import (
    HOURS_PER_MONTH,
    MINUTES_PER_MONTH,
    PRICES_AS_OF,
    SECONDS_PER_MONTH,
    Bill,
    Usage,
    chunks,
    price_table,
)
from bench.stack_model import TARGET_UTILIZATION, StackModel, Target
from chalicelib.core.event_pattern import compile_pattern
from chalicelib.core.identity import ingest_body
from edge.config import AWS_IOT_LINGER_MS
from edge.uplink.packing import publish_wait
from mycontroller_protocol.envelope import Envelope, encode_publish

REGION = "us-east-1"
STACK = "mc-cost"
ACCOUNT = "123456789012"
THING = "edge-home"
ADMIN_PASSWORD = "a cost benchmark's long password"
MAX_PUBLISH_BYTES = 5_000
"""The agent's default ``max_publish_bytes``: IoT Core bills per started 5 KB."""
LOG_EVENT_OVERHEAD = 26
"""Bytes CloudWatch Logs bills per log event beyond its text."""
PLATFORM_LOG_LINES = (("START RequestId: 3f1e2a7c-8b4d-4e0f-9a61-2c5d7e9b0a13 Version: $LATEST", 1),
                      ("END RequestId: 3f1e2a7c-8b4d-4e0f-9a61-2c5d7e9b0a13", 1),
                      ("REPORT RequestId: 3f1e2a7c-8b4d-4e0f-9a61-2c5d7e9b0a13\tDuration: 41.27 ms\tBilled Duration: "
                       "42 ms\tMemory Size: 1024 MB\tMax Memory Used: 118 MB\t", 1))
"""Lambda's own lines per invocation (text format), unless the system log level is WARN."""
XRAY_RATE = 0.05
"""Lambda's default sampling: the first request each second, then 5 %."""
COLD_START_EVERY_S = 2 * 3600
"""A busy function's instance is replaced about every two hours (AWS publishes no figure)."""
WARM_FOR_S = 600
"""A function idle longer than this starts cold (an estimate)."""
WS_IDLE_TIMEOUT_S = 600
"""API Gateway closes a websocket that carried nothing for 10 minutes; the console reconnects."""
WS_MAX_LIFETIME_S = 2 * 3600
JOBS = (("node_state_job", 300), ("node_discover_job", 3600), ("sun_job", 86400))
"""The system jobs and their periods (``app.py``'s schedules)."""
FLEET_GATEWAYS = 1000
FLEET_MSGS_PER_GATEWAY_S = 50.0
"""At load: a full 5 KB publish a second from every gateway."""
HOME_NODES = 50
HOME_RATE = 5.0
"""Messages a second, the whole house."""
DASHBOARD_FIELDS = 12
HOME_TASKS = 3
"""The home's tasks: each on one temperature (a threshold), so each wants one field of the 250."""
HOME_FORWARDS = 1
"""The home's forward payloads: one switch's status carried to another node."""
COLDSTART_FILE = Path(__file__).resolve().parent.parent / "infra" / "coldstart.json"


# --------------------------------------------------------------------------------------------- clocks and logs


class VirtualClock:
    """A function's monotonic clock in simulated seconds (TTL caches reload as often as they would in AWS)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingSink(io.TextIOBase):
    """Stands in for stdout while a function runs: counts the log events and bytes it writes, and the custom
    metrics of embedded-metric-format lines."""

    def __init__(self) -> None:
        self.bytes = 0
        self.events = 0
        self.metrics: set[tuple[str, str, str]] = set()

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if not line.strip():
                continue
            self.events += 1
            self.bytes += len(line.encode("utf-8"))
            if '"_aws"' in line:
                self._emf(line)
        return len(text)

    def _emf(self, line: str) -> None:
        try:
            blob = json.loads(line)
        except ValueError:
            return
        for directive in (blob.get("_aws") or {}).get("CloudWatchMetrics") or []:
            for dimensions in directive.get("Dimensions") or [[]]:
                dims = ",".join(f"{d}={blob.get(d)}" for d in dimensions)
                for metric in directive.get("Metrics") or []:
                    self.metrics.add((str(directive.get("Namespace")), str(metric.get("Name")), dims))


@contextlib.contextmanager
def captured(sink: CountingSink) -> Iterator[None]:
    """Every log handler's stream and stdout into ``sink`` for the duration."""
    loggers = [logging.root, *(item for item in logging.root.manager.loggerDict.values()
                               if isinstance(item, logging.Logger))]  # (getLogger would re-parent children)
    handlers = [h for item in loggers for h in item.handlers if isinstance(h, logging.StreamHandler)]
    streams = [(h, h.setStream(sink)) for h in handlers]
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        for handler, stream in streams:
            if stream is not None:
                handler.setStream(stream)


# --------------------------------------------------------------------------------------------- Lambda


@dataclass
class FunctionStats:
    invocations: int = 0
    duration_ms: float = 0.0
    first_at: float | None = None
    last_at: float | None = None
    sampled_second: int = -1
    metrics: set[tuple[str, str, str]] = field(default_factory=set)


class Context:
    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class Lambdas:
    """Runs a function's entry as Lambda would and bills it: the request, GB-seconds from the measured duration and
    the template's memory, the log events it writes (and Lambda's own), X-Ray traces when tracing is on. The
    duration is this machine's (a third of a laptop's speed) running the function and moto's stand-in for AWS's
    answers: an estimate, not Graviton's figure."""

    def __init__(self, model: StackModel, meter: AwsMeter) -> None:
        self.model = model
        self.meter = meter
        self.stats: dict[str, FunctionStats] = {}
        self.clocks: dict[str, VirtualClock] = {}
        self._platform_bytes = sum(len(line) + LOG_EVENT_OVERHEAD for line, _ in PLATFORM_LOG_LINES)

    def clock(self, name: str) -> VirtualClock:
        return self.clocks.setdefault(name, VirtualClock())

    def run(self, name: str, call: Callable[..., Any], event: Any, at: float, *, context: bool = True) -> Any:
        stats = self.stats.setdefault(name, FunctionStats())
        self.clock(name).now = at
        self.meter.line = name
        sink = CountingSink()
        with captured(sink):
            started, cpu = time.perf_counter(), time.process_time()
            result = call(event, Context()) if context else call(event)
            # the shorter of wall and process CPU time: neither a busy neighbour's time slices nor parallel
            # requests counted twice
            elapsed_ms = min(time.perf_counter() - started, time.process_time() - cpu) * 1000
        billed_ms = max(1, math.ceil(elapsed_ms))
        memory = self.model.memory_mb(name)
        self.meter.add("lambda.request", 1, name)
        self.meter.add("lambda.gb_second", billed_ms / 1000 * memory / 1024, name)
        log_bytes = sink.bytes + sink.events * LOG_EVENT_OVERHEAD
        if self.model.platform_logs(name):
            log_bytes += self._platform_bytes
        self.meter.add("logs.gb", log_bytes / 1e9, name)
        if self.model.traced(name):
            second = int(at)
            self.meter.add("xray.trace", 1 if second != stats.sampled_second else XRAY_RATE, name)
            stats.sampled_second = second
        stats.invocations += 1
        stats.duration_ms += elapsed_ms
        stats.first_at = at if stats.first_at is None else stats.first_at
        stats.last_at = at
        stats.metrics |= sink.metrics
        return result


def cold_start_seconds() -> dict[str, float]:
    """Each function's measured import time (``bench/coldstart.py``): the INIT phase Lambda bills."""
    try:
        data = json.loads(COLDSTART_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {name: float(entry.get("import_ms", 0)) / 1000 for name, entry in data.get("functions", {}).items()}


# --------------------------------------------------------------------------------------------- the stack under moto


def deployed_environment(model: StackModel, name: str) -> dict[str, str]:
    """A function's settings as the template gives them, with the stack's resources named as under moto."""
    environment = model.properties(model.function_logical(name)).get("Environment", {}).get("Variables", {})
    queues = {logical: queue_url(logical) for logical, r in model.resources.items() if r["Type"] == "AWS::SQS::Queue"}
    names = {"ResourceTable": STACK, "ConnectionsTable": f"{STACK}-connections", "EventBus": STACK, **queues,
             "ScheduleGroup": STACK, "SecretsKey": "alias/mc-cost", "BlobBucket": f"{STACK}-blobs",
             "UploadBucket": f"{STACK}-uploads", "AdminPasswordSecret": f"{STACK}-admin"}
    env: dict[str, str] = {}
    for key, value in environment.items():
        if isinstance(value, str):
            env[key] = value
        elif isinstance(value, dict) and "Ref" in value and value["Ref"] in names:
            env[key] = names[value["Ref"]]
        elif isinstance(value, dict) and "Ref" in value and value["Ref"] in model.values:
            env[key] = str(model.values[value["Ref"]])
        elif isinstance(value, int | float | bool):
            env[key] = str(value)
    env.update({"SCHEDULER_TARGET_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-scheduled",
                "SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/{STACK}-scheduler",
                "WEBSOCKET_ENDPOINT": f"https://abcdef1234.execute-api.{REGION}.amazonaws.com/v1",
                "SIGNING_SECRET_PARAMETER": f"/{STACK}/jwt-secret", "AWS_REGION": REGION})
    env.pop("IOT_DATA_ENDPOINT", None)
    env.pop("ADMIN_PASSWORD_SECRET", None)
    return env


def queue_url(logical: str) -> str:
    """A queue of the template as the bench creates it under moto."""
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-{logical}"


class Stack:
    """The stack's data resources in moto and one container per function (as Lambda keeps one per function)."""

    def __init__(self, model: StackModel, meter: AwsMeter, lambdas: Lambdas) -> None:
        from chalicelib.adapters.connections_dynamodb import connections_table_definition
        from chalicelib.adapters.repository_dynamodb import create_table

        self.model = model
        self.meter = meter
        self.lambdas = lambdas
        create_table(STACK, REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(TableName=f"{STACK}-connections", **{
            k: v for k, v in connections_table_definition().items() if k != "TimeToLiveSpecification"})
        boto3.client("events", region_name=REGION).create_event_bus(Name=STACK)
        sqs = boto3.client("sqs", region_name=REGION)
        for logical, resource in model.resources.items():
            if resource["Type"] == "AWS::SQS::Queue":
                sqs.create_queue(QueueName=f"{STACK}-{logical}")
        kms = boto3.client("kms", region_name=REGION)
        kms.create_alias(AliasName="alias/mc-cost", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
        self.dynamodb = dynamodb
        self._containers: dict[str, Any] = {}
        self._entries: dict[str, Any] = {}

    def container(self, name: str) -> Any:
        """The container of function ``name``: its own caches, its own virtual clock where they keep time."""
        if name not in self._containers:
            from chalicelib.bootstrap import Container
            from chalicelib.settings import Settings

            settings = Settings.from_env(deployed_environment(self.model, name))
            container = Container(settings, admin_password=lambda: ADMIN_PASSWORD, show_password=lambda _: None)
            self._containers[name] = container
            self._retime(name, container)
        return self._containers[name]

    def _retime(self, name: str, container: Any) -> None:
        clock = self.lambdas.clock(name)
        if name == "tasks":
            container.automation.monotonic = clock
            container.automation.settings.clock = clock
        elif name == "forward_payload":
            container.forward.clock = clock
        elif name in ("websocket_notify", "websocket_connect", "websocket_message", "websocket_disconnect"):
            container.websocket.monotonic = clock
        if name == "ingest":
            container.gateway_owners.clock = clock
            container.ingest.processor.monotonic = clock  # records kept between batches, in simulated time
            for gate in (getattr(container.bus, "audience", None), getattr(container.bus, "consumers", None)):
                if gate is not None:
                    gate.monotonic = clock

    def entries(self, name: str) -> Any:
        if name not in self._entries:
            from chalicelib.functions.entries import LambdaEntries

            self._entries[name] = LambdaEntries(self.container(name))
        return self._entries[name]

    def invoke(self, name: str, event: Any, at: float) -> Any:
        entries = self.entries(name)
        if name in ("websocket_connect", "websocket_message", "websocket_disconnect"):
            return self.lambdas.run(name, getattr(entries, name), event, at, context=False)
        if name.endswith("_job"):
            return self.lambdas.run(name, lambda _event: getattr(entries, name)(), event, at, context=False)
        return self.lambdas.run(name, getattr(entries, name), event, at)

    def token(self) -> str:
        """A console's login (the API's part is not billed here: it happens once a week)."""
        auth = self.container("api_handler").auth
        with captured(CountingSink()):  # the first admin's creation is announced; not a figure
            token, _claims, _role = auth.login("admin", ADMIN_PASSWORD, 7 * 86400)
        return str(token)

    def seed_meter(self) -> None:
        self.meter.seed(self.dynamodb, STACK)
        self.meter.seed(self.dynamodb, f"{STACK}-connections")


# --------------------------------------------------------------------------------------------- what AWS does between


@dataclass(order=True)
class Pending:
    at: float
    seq: int
    record: Any = field(compare=False)


class Pipeline:
    """IoT rule → ingest queue → ingest; the bus's rules → their queues (and mappings) or functions. Batches form in
    simulated time by each mapping's window and size; every function runs for real."""

    def __init__(self, stack: Stack, model: StackModel, meter: AwsMeter, thing: str = THING) -> None:
        self.stack = stack
        self.model = model
        self.meter = meter
        self.thing = thing
        self.rules = [(rule, compile_pattern(rule.pattern)) for rule in model.bus_rules()]
        self.queues: dict[str, list[Pending]] = {}
        self.direct: list[Pending] = []
        self._seq = 0
        self.ingest_batches = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    # ----------------------------------------------------------------------------------------- ingest

    def ingest(self, publishes: list[tuple[float, str]]) -> None:
        """Edge publishes at their times through the IoT rule into ingest: invoked with each (the rule's Lambda
        action), or through the ingest queue and its mapping's batches."""
        mapping = self.model.ingest_mapping()
        direct = self.model.ingest_direct()
        basic = self.model.basic_ingest()
        records: list[Pending] = []
        for at, body in publishes:
            size = len(body.encode())
            if not basic:  # IoT Basic Ingest skips the broker and its messaging charge, not the rule's
                self.meter.add("iot.message", chunks(size, IOT_STEP), "edge publishes")
            self.meter.add("iot.rule", chunks(size, IOT_STEP), "ingest rule")
            self.meter.add("iot.action", chunks(size, IOT_STEP), "ingest rule")
            record = ingest_body(self.thing, body)
            if not direct:
                self.meter.add("sqs.request", chunks(len(record), SQS_STEP), "ingest queue")
            records.append(Pending(at, self._next(), record))
        if direct:
            for pending in records:
                self._run_ingest(json.loads(pending.record), pending.at)
        else:
            assert mapping is not None, "the ingest rule sends to a queue no mapping drains"
            for at, batch in batches(records, mapping.batch_size, mapping.window_s):
                self._poll(batch, "ingest queue")
                self._run_ingest(sqs_event([p.record for p in batch], "ingest"), at)
        self.drain(until=math.inf)

    def _run_ingest(self, event: dict[str, Any], at: float) -> None:
        self.meter.entries.clear()
        response = self.stack.invoke("ingest", event, at)
        if response.get("batchItemFailures"):
            raise RuntimeError(f"ingest failed records: {response}")
        self.ingest_batches += 1
        self.route(list(self.meter.entries), at)
        self.drain(until=at)

    def _poll(self, batch: list[Pending], line: str) -> None:
        """Lambda's poller: a ReceiveMessage per ten records (and per 64 KB), a DeleteMessageBatch per ten."""
        for start in range(0, len(batch), 10):
            part = batch[start:start + 10]
            size = sum(len(str(p.record).encode()) for p in part)
            self.meter.add("sqs.request", chunks(size, SQS_STEP) + 1, line)

    # ----------------------------------------------------------------------------------------- the bus

    def route(self, entries: list[dict[str, Any]], at: float) -> None:
        """Each entry to every rule it matches: a queue target costs a SendMessage and waits for its mapping, a
        function target is invoked directly (asynchronously, free from EventBridge)."""
        for entry in entries:
            event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": entry.get("DetailType"),
                     "source": entry.get("Source"), "account": ACCOUNT,
                     "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "region": REGION, "resources": [], "detail": json.loads(entry.get("Detail") or "{}")}
            for rule, matcher in self.rules:
                if not matcher(event):
                    continue
                for target in rule.targets:
                    self._deliver(target, event, at)

    def _deliver(self, target: Target, event: dict[str, Any], at: float) -> None:
        if target.queue is None:
            self.direct.append(Pending(at, self._next(), (target.function, event)))
            return
        body = json.dumps(event, separators=(",", ":"))
        self.meter.add("sqs.request", chunks(len(body.encode()), SQS_STEP), f"{target.queue}")
        self.queues.setdefault(target.queue, []).append(Pending(at, self._next(), body))

    def drain(self, until: float) -> None:
        """Run what the bus delivered up to ``until`` (``math.inf``: everything)."""
        for queue, pending in list(self.queues.items()):
            mapping = self.model.mappings()[queue]
            ready = [p for p in pending if p.at <= until]
            if not ready:
                continue
            self.queues[queue] = [p for p in pending if p.at > until]
            for at, batch in batches(ready, mapping.batch_size, mapping.window_s):
                self._poll(batch, f"{queue}")
                self.stack.invoke(mapping.function, sqs_event([p.record for p in batch], mapping.function), at)
        ready = sorted(p for p in self.direct if p.at <= until)
        self.direct = [p for p in self.direct if p.at > until]
        for delivery in ready:
            function, event = delivery.record
            self.stack.invoke(function, event, delivery.at)


def batches(records: list[Pending], size: int, window_s: float) -> Iterator[tuple[float, list[Pending]]]:
    """An SQS event source mapping's batches: one opens at its first record and closes when full or when its
    window ends (without a window: what arrived at that moment, up to ten); yields (invocation time, records)."""
    queue = sorted(records)
    heapq.heapify(queue)
    while queue:
        first = heapq.heappop(queue)
        batch = [first]
        closes = first.at + window_s
        while queue and len(batch) < size and (queue[0].at <= closes if window_s else queue[0].at == first.at):
            batch.append(heapq.heappop(queue))
        at = batch[-1].at if len(batch) == size else closes
        yield at, batch


def sqs_event(bodies: list[str], function: str) -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now_ms},
        "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-{function}", "awsRegion": REGION}
        for body in bodies]}


# --------------------------------------------------------------------------------------------- the edge


@dataclass(frozen=True)
class Line:
    at: float
    raw: str
    urgent: bool = False


def edge_publishes(lines: list[Line], gateway: str, linger_s: float, *, stream: str,
                   budget: int = MAX_PUBLISH_BYTES) -> list[tuple[float, str]]:
    """The agent's publishes of these serial lines: envelopes packed by ``edge.uplink.packing``'s rule (the window
    from the oldest envelope, a full or urgent publish at once)."""
    publishes: list[tuple[float, str]] = []
    pending: list[Envelope] = []
    size = len(encode_publish([]))

    def flush(at: float) -> None:
        nonlocal pending, size
        if pending:
            publishes.append((at, encode_publish(pending)))
        pending, size = [], len(encode_publish([]))

    for sequence, line in enumerate(lines, start=1):
        if pending and publish_wait(pending[0].timestamp, line.at, linger_s, full=False, urgent=False) <= 0:
            flush(pending[0].timestamp / 1000 + linger_s)
        envelope = Envelope(gateway, "mysensors_v2", int(line.at * 1000), sequence, f"{stream}-{gateway}-{sequence}",
                            line.raw)
        item = len(json.dumps(envelope.to_wire(), separators=(",", ":"))) + 1
        if pending and size + item > budget:
            flush(line.at)
        pending.append(envelope)
        size += item
        if publish_wait(pending[0].timestamp, line.at, linger_s, full=size >= budget, urgent=line.urgent) <= 0:
            flush(line.at)
    if pending:
        flush(pending[0].timestamp / 1000 + linger_s)
    return publishes


def first_values(nodes: int, rng: random.Random) -> list[str]:
    """One value of every sensor of every node: what makes a site's fields."""
    return [f"{node};{child};1;0;{v_type};{generate(rng)}" for node in range(1, nodes + 1)
            for child, _, v_type, generate in SENSORS]


def home_lines(nodes: int, rate: float, seconds: float, rng: random.Random) -> list[Line]:
    """Each node sends one line every ``nodes / rate`` seconds (staggered), its sensors in turn."""
    period = nodes / rate
    lines = []
    for node in range(1, nodes + 1):
        offset = (node - 1) * period / nodes
        for index in range(int((seconds - offset) // period) + 1):
            at = offset + index * period
            if at >= seconds:
                break
            child, _, v_type, generate = SENSORS[(node + index) % len(SENSORS)]
            lines.append(Line(at, f"{node};{child};1;0;{v_type};{generate(rng)}"))
    return sorted(lines, key=lambda line: line.at)


# --------------------------------------------------------------------------------------------- profiles


def dashboard_fields(gateway: str, count: int) -> list[str]:
    """A dashboard's fields: the first sensors of the first nodes (field ids name the value type: ``V_TEMP``)."""
    from mycontroller_protocol.mysensors.protocol import Value

    fields = [f"{gateway}.{node}.{child}.{Value(v_type).name}" for node in range(1, HOME_NODES + 1)
              for child, _, v_type, _ in SENSORS]
    return fields[:count]


@dataclass
class Result:
    name: str
    usage: Usage
    """A month of it."""
    messages: float
    """Device messages a month."""
    counts: dict[str, float] = field(default_factory=dict)
    """Per 1,000 messages (fleet, home) or per month (idle): what drove the bill."""

    @property
    def bill(self) -> Bill:
        return Bill(self.usage)

    @property
    def per_million(self) -> float:
        return self.bill.total / self.messages * 1e6 if self.messages else math.nan


PROFILE_PARAMETERS: dict[str, dict[str, str]] = {
    "fleet": {"IngestBatchWindow": "1", "TableCapacity": "provisioned"},
    "home": {"TableCapacity": "provisioned"},
    "idle": {},
}
"""How each profile deploys (``make deploy`` variables, README): a fleet at load gathers full ingest batches and
provisions its steady capacity; a home sending all day provisions too; the defaults suit a quiet site."""


class Run:
    """The template under moto, driven through the profiles (each deployed with its parameters)."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str], linger_ms: int | None,
                 seconds: float) -> None:
        self.template = template
        self.parameters = parameters
        self.model = StackModel(template, parameters)
        self.linger_s = (AWS_IOT_LINGER_MS if linger_ms is None else linger_ms) / 1000
        self.seconds = seconds
        self.reference_console = False
        """The console is MyController v2's own: it never subscribes, so its socket gets every event (issue #18)."""

    def deploy(self, profile: str) -> dict[str, str]:
        """The profile's parameters (``--param`` wins); the model of the stack they make."""
        chosen = {**PROFILE_PARAMETERS[profile], **self.parameters}
        self.model = StackModel(self.template, chosen)
        return chosen

    def fresh(self) -> tuple[AwsMeter, Lambdas, Stack]:
        meter = AwsMeter()
        lambdas = Lambdas(self.model, meter)
        return meter, lambdas, Stack(self.model, meter, lambdas)

    # ----------------------------------------------------------------------------------------- pieces

    def present(self, stack: Stack, pipeline: Pipeline, gateway: str, nodes: int) -> None:
        """The devices present themselves and report every sensor once (not measured): a site's fields exist
        before the month is measured. A field is made at its first value, its two index entries paid then, once
        in its life; measured in a few minutes and scaled to a month they would be paid over and over."""
        lines = [Line(0.0, raw, urgent=True) for raw in presentation_lines(nodes)]
        pipeline.ingest(edge_publishes(lines, gateway, self.linger_s, stream="setup"))
        lines = [Line(1.0, raw, urgent=True) for raw in first_values(nodes, random.Random(1))]
        pipeline.ingest(edge_publishes(lines, gateway, self.linger_s, stream="setup-values"))

    def automate(self, stack: Stack, gateway: str) -> None:
        """The home's tasks and forward payloads, as the console would make them (not measured)."""
        from chalicelib.core.model import Kind

        repository = stack.container("api_handler").repository
        for node in range(1, HOME_TASKS + 1):
            repository.put(Kind.TASK, {
                "id": f"too-hot-{node}", "handlers": [],
                "eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"],
                                "filters": {"id": f"{gateway}.{node}.1.V_TEMP"}},
                "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
                    {"variable": "entity.current.value", "operator": "gt", "value": 30}]}}})
        for node in range(1, HOME_FORWARDS + 1):
            repository.put(Kind.FORWARD_PAYLOAD, {"id": f"follow-{node}",
                                                  "srcFieldId": f"field:{gateway}.{node}.4.V_STATUS",
                                                  "dstFieldId": f"field:{gateway}.{node + 1}.4.V_STATUS"})

    def console(self, stack: Stack, fields: list[str], at: float) -> str:
        """A console tab: connect with a token, subscribe to the dashboard's fields; the connection id."""
        token = stack.token()
        connection = f"conn-{uuid.uuid4().hex[:12]}="
        context = {"connectionId": connection, "apiId": "abcdef1234", "stage": "v1"}
        answer = stack.invoke("websocket_connect", {"requestContext": {**context, "eventType": "CONNECT"},
                                                    "queryStringParameters": {"access_token": token}}, at)
        if answer.get("statusCode") != 200:
            raise RuntimeError(f"the console was refused: {answer}")
        if self.reference_console:
            return connection  # the reference's stream: every event, from 2 s after the connect
        body = json.dumps({"type": "subscribe", "id": "dashboard",
                           "filter": {"quickIds": [f"field:{f}" for f in fields]}})
        stack.invoke("websocket_message", {"requestContext": {**context, "eventType": "MESSAGE"}, "body": body}, at)
        return connection

    def console_session(self, stack: Stack, fields: list[str]) -> Usage:
        """One reconnect of the console (connect, subscribe, and the old socket's disconnect), billed."""
        meter = stack.meter
        meter.reset()
        connection = self.console(stack, fields, 0.0)
        stack.invoke("websocket_disconnect", {"requestContext": {"connectionId": connection,
                                                                 "eventType": "DISCONNECT"}}, 0.0)
        if not self.reference_console:
            meter.add("apigw.ws_message", 1, "websocket_message")  # the subscribe it sent (the answer is a post)
        return meter.usage.scaled(1.0)

    def jobs(self, stack: Stack) -> Usage:
        """The system jobs a month: each run once here, billed as often as its schedule fires."""
        month = Usage()
        for name, period in JOBS:
            stack.meter.reset()
            stack.invoke(name, {}, 0.0)
            month.merge(stack.meter.usage, SECONDS_PER_MONTH / period)
        return month

    def cold_starts(self, lambdas: Lambdas, scale: float) -> Usage:
        """INIT phases a month: a busy function about every two hours, a rarely used one at each invocation."""
        usage = Usage()
        init = cold_start_seconds()
        for name, stats in lambdas.stats.items():
            if not stats.invocations or name not in init:
                continue
            per_month = stats.invocations * scale
            gap = SECONDS_PER_MONTH / per_month if per_month else math.inf
            starts = per_month if gap > WARM_FOR_S else min(per_month, SECONDS_PER_MONTH / COLD_START_EVERY_S)
            usage.add("lambda.gb_second", starts * init[name] * self.model.memory_mb(name) / 1024, name)
        return usage

    def custom_metrics(self, lambdas: Lambdas) -> Usage:
        """Custom metrics the functions' embedded-metric lines make, a month each (they report every hour)."""
        usage = Usage()
        for name, stats in lambdas.stats.items():
            usage.add("cloudwatch.metric_month", len(stats.metrics), name)
        return usage

    def standing(self, stack: Stack, edges: int, consoles: int, reconnect_s: float) -> Usage:
        """What runs all month whatever the messages: fixed items, the jobs, connected edges, open consoles."""
        month = self.model.fixed_monthly()
        month.merge(self.jobs(stack))
        month.add("iot.connection_minute", edges * MINUTES_PER_MONTH, "edge connections")
        if consoles:
            fields = dashboard_fields("home", DASHBOARD_FIELDS)
            session = self.console_session(stack, fields)
            month.merge(session, consoles * SECONDS_PER_MONTH / reconnect_s, "console reconnects")
            month.add("apigw.ws_minute", consoles * MINUTES_PER_MONTH, "console connection")
        month.merge(self.storage(stack))
        return month

    def capacity(self, month: Usage) -> Usage:
        """With ``TableCapacity=provisioned``: the resource table's month of units becomes capacity that auto
        scaling keeps at its target utilization (never below the minimum the fixed items already count)."""
        if not self.model.provisioned():
            return month
        wcu_min, rcu_min = self.model.table_minimum()
        result = Usage()
        used = {"write": 0.0, "read": 0.0}
        for (key, line), amount in month.units.items():
            kind = key.removeprefix("dynamodb.").removesuffix("_unit")
            if kind in used and line.endswith(f"{TABLE_MARK}{STACK}"):
                used[kind] += amount
                continue
            result.units[(key, line)] += amount
        for kind, price, floor in (("write", "dynamodb.wcu_hour", wcu_min), ("read", "dynamodb.rcu_hour", rcu_min)):
            needed = used[kind] / SECONDS_PER_MONTH / TARGET_UTILIZATION
            result.add(price, max(0.0, needed - floor) * HOURS_PER_MONTH, "provisioned capacity (auto scaled)")
        return result

    def storage(self, stack: Stack) -> Usage:
        """The tables' bytes a month, and their continuous backups."""
        usage = Usage()
        size = 0
        for table in (STACK, f"{STACK}-connections"):
            for page in stack.dynamodb.get_paginator("scan").paginate(TableName=table):
                size += sum(len(json.dumps(item)) for item in page.get("Items") or [])
        usage.add("dynamodb.gb_month", size / 1e9, "tables")
        usage.add("dynamodb.pitr_gb_month", size / 1e9, "tables")
        return usage

    # ----------------------------------------------------------------------------------------- profiles

    def fleet(self, messages: int) -> Result:
        self.deploy("fleet")
        with mock_aws():
            meter, lambdas, stack = self.fresh()
            with meter.installed():
                pipeline = Pipeline(stack, self.model, meter, thing="edge-fleet")
                self.present(stack, pipeline, "bench", 100)
                stack.seed_meter()
                meter.reset()
                lambdas.stats.clear()
                rate = FLEET_GATEWAYS * FLEET_MSGS_PER_GATEWAY_S  # the fleet's messages a second
                lines = [Line(10.0 + index / rate, raw)
                         for index, raw in enumerate(traffic_lines(100, messages, random.Random(2)))]
                pipeline.ingest(edge_publishes(lines, "bench", self.linger_s, stream=uuid.uuid4().hex[:8]))
                variable = meter.usage
                counts = self.counts(meter, lambdas, pipeline, messages)
                monthly = FLEET_GATEWAYS * FLEET_MSGS_PER_GATEWAY_S * SECONDS_PER_MONTH
                scale = monthly / messages
                month = variable.scaled(scale)
                month.merge(self.cold_starts(lambdas, scale))
                month.merge(self.custom_metrics(lambdas))
                month.merge(self.standing(stack, FLEET_GATEWAYS, 0, WS_MAX_LIFETIME_S))
        return Result("fleet", self.capacity(month), monthly, counts)

    def home(self, *, reference_console: bool = False) -> Result:
        self.deploy("home")
        self.reference_console = reference_console
        with mock_aws():
            meter, lambdas, stack = self.fresh()
            with meter.installed():
                pipeline = Pipeline(stack, self.model, meter)
                self.present(stack, pipeline, "home", HOME_NODES)
                self.automate(stack, "home")
                fields = dashboard_fields("home", DASHBOARD_FIELDS)
                self.console(stack, fields, 0.0)
                stack.seed_meter()
                meter.reset()
                lambdas.stats.clear()
                # a last seen interval of the home's traffic first (not measured), so that the nodes' and
                # sources' stored last seen times are spread as a running site's are, not all the warm-up's
                warm = float(self.model.values.get("LastSeenInterval") or 300)
                traffic = [Line(10.0 + line.at, line.raw, line.urgent)
                           for line in home_lines(HOME_NODES, HOME_RATE, warm + self.seconds, random.Random(3))]
                stream = uuid.uuid4().hex[:8]
                pipeline.ingest(edge_publishes([line for line in traffic if line.at < 10.0 + warm], "home",
                                               self.linger_s, stream=stream + "w"))
                meter.reset()
                lambdas.stats.clear()
                lines = [line for line in traffic if line.at >= 10.0 + warm]
                publishes = edge_publishes(lines, "home", self.linger_s, stream=stream)
                pipeline.ingest(publishes)
                messages = len(lines)
                variable = meter.usage
                counts = self.counts(meter, lambdas, pipeline, messages)
                counts["publishes"] = len(publishes) * 1000 / messages
                scale = SECONDS_PER_MONTH / self.seconds
                month = variable.scaled(scale)
                month.merge(self.cold_starts(lambdas, scale))
                month.merge(self.custom_metrics(lambdas))
                month.merge(self.standing(stack, 1, 1, WS_MAX_LIFETIME_S))
        self.reference_console = False
        name = "home, the reference's console" if reference_console else "home"
        return Result(name, self.capacity(month), HOME_RATE * SECONDS_PER_MONTH, counts)

    def idle(self) -> Result:
        self.deploy("idle")
        with mock_aws():
            meter, lambdas, stack = self.fresh()
            with meter.installed():
                pipeline = Pipeline(stack, self.model, meter)
                self.present(stack, pipeline, "home", HOME_NODES)
                stack.seed_meter()
                meter.reset()
                lambdas.stats.clear()
                month = self.standing(stack, 1, 1, WS_IDLE_TIMEOUT_S)
                month.merge(self.cold_starts(lambdas, 1.0))
        return Result("idle", self.capacity(month), 0.0, {})

    @staticmethod
    def counts(meter: AwsMeter, lambdas: Lambdas, pipeline: Pipeline, messages: int) -> dict[str, float]:
        per = 1000 / messages
        usage = meter.usage
        counts = {f"{name} invocations": stats.invocations * per for name, stats in sorted(lambdas.stats.items())}
        counts.update({
            "DynamoDB write units": usage.total("dynamodb.write_unit") * per,
            "DynamoDB read units": usage.total("dynamodb.read_unit") * per,
            "EventBridge events": usage.total("events.event") * per,
            "SQS requests": usage.total("sqs.request") * per,
            "websocket messages": usage.total("apigw.ws_message") * per,
            "IoT messages": usage.total("iot.message") * per,
            "log KB": usage.total("logs.gb") * 1e6 * per,
        })
        return counts


# --------------------------------------------------------------------------------------------- output


def show(result: Result, top: int = 8) -> None:
    bill = result.bill
    if result.messages:
        print(f"{result.name}: ${bill.total:,.2f} a month for {result.messages / 1e6:,.2f} million messages = "
              f"${result.per_million:.3f} per million")
    else:
        print(f"{result.name}: ${bill.total:.2f} a month")
    services = bill.by_service()
    print("  by service: " + ", ".join(f"{service} ${dollars:.3f}" for service, dollars in services.items()
                                       if dollars >= 0.0005))
    lines = sorted(bill.lines, key=lambda b: -b.dollars)[:top]
    print("  largest: " + "; ".join(f"{b.key} [{b.line}] ${b.dollars:.3f}" for b in lines))
    if result.counts:
        unit = "per 1000 msgs" if result.messages else "a month"
        print(f"  {unit}: " + ", ".join(f"{name} {value:.2f}" for name, value in result.counts.items()))
    if bill.apart:
        print(f"  apart: metric instance ${bill.apart:.2f} a month")


def load_template() -> dict[str, Any]:
    from infra.package import build_template

    return build_template()


def as_in_lambda() -> None:
    """The environment of a deployed function, before ``chalicelib.observability`` is imported: metrics are written
    (their log lines count), logs go out at INFO (the stack's ``LogLevel``), warnings through the root logger as
    Lambda's runtime sends them, against moto."""
    if "chalicelib.observability" in sys.modules:
        raise RuntimeError("bench/cost.py must set up its environment before chalicelib.observability is imported")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = "bench-cost"
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MyController/bench")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")


def main() -> None:
    as_in_lambda()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profile", choices=("fleet", "home", "idle", "home-reference"), action="append",
                        help="home-reference: the home with MyController v2's own console open (it never subscribes)")
    parser.add_argument("--messages", type=int, default=20_000, help="fleet messages driven")
    parser.add_argument("--seconds", type=float, default=300.0, help="home seconds driven")
    parser.add_argument("--linger-ms", type=int, help="the edge's packing window (default: the agent's for AWS IoT)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a stack parameter (as make deploy would give it)")
    parser.add_argument("--prices", action="store_true", help="print the price table first")
    parser.add_argument("--metric-store", action="store_true", help="show the managed metric instance's cost")
    args = parser.parse_args()
    if args.prices:
        print("\n".join(price_table()))
    parameters = dict(p.split("=", 1) for p in args.param)
    template = load_template()
    run = Run(template, parameters, args.linger_ms, args.seconds)
    profiles = args.profile or ["fleet", "home", "home-reference", "idle"]
    results: dict[str, Result] = {}
    for name in profiles:
        started = time.perf_counter()
        result = (run.fleet(args.messages) if name == "fleet" else run.home() if name == "home"
                  else run.home(reference_console=True) if name == "home-reference" else run.idle())
        results[name] = result
        deployed = run.deploy("home" if name == "home-reference" else name)
        print(f"{name}: deployed with {' '.join(f'{k}={v}' for k, v in deployed.items()) or 'defaults'}, "
              f"edge window {run.linger_s * 1000:.0f} ms")
        show(result)
        print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    if args.metric_store:
        apart = StackModel(template, {**parameters, "MetricStore": "create"}).fixed_monthly()
        print(f"metric store (MetricStore=create, shown apart): ${Bill(apart).apart:.2f} a month")
    print(f"prices: {REGION} list prices as of {PRICES_AS_OF}, free tiers not applied")
    parts = []
    if "fleet" in results:
        parts.append(f"fleet ${results['fleet'].per_million:.3f} per million msgs")
    if "home" in results:
        parts.append(f"home ${results['home'].per_million:.3f} per million msgs")
    if "idle" in results:
        parts.append(f"idle ${results['idle'].bill.total:.2f} per month")
    print("cost: " + ", ".join(parts))


if __name__ == "__main__":
    main()
