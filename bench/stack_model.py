"""The deployable template read as the cost model needs it: which functions, with what memory, fed how, and what the
stack holds that is paid by the month whatever the traffic.

``StackModel(template, parameters)`` evaluates the template's conditions for those parameter values (the defaults
otherwise) and answers: each function's memory, tracing and system log level; whether edge devices publish through
IoT Basic Ingest; whether the IoT rule invokes the ingest itself, or the ingest mapping's batch size and window; for
every rule on the bus, its pattern and targets (an SQS queue and the mapping that drains it, or a function invoked
directly); and the fixed monthly items (alarms, customer managed keys, secrets, event source mappings that poll,
provisioned capacity, a metric instance).
``bench/cost.py`` drives the functions through exactly that shape, so a lever changed in ``infra/`` changes the bill
without touching the bench.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.pricing import HOURS_PER_MONTH, Usage

TARGET_UTILIZATION = 0.7
"""What the template's auto scaling keeps provisioned capacity at (``infra.template.TARGET_UTILIZATION_PERCENT``)."""
ESM_IDLE_RECEIVES_PER_MONTH = 648_000
"""Empty receives of one SQS event source mapping a month: Lambda keeps about five pollers long-polling (20 s) a
queue with nothing in it, 5 times 3 a minute. AWS publishes no figure: this is the usual estimate."""


@dataclass(frozen=True)
class Mapping_:
    logical: str
    queue: str
    function: str
    """Chalice name of the function it invokes."""
    batch_size: int
    window_s: float


@dataclass(frozen=True)
class Target:
    rule: str
    function: str
    """Chalice name of the function the events reach."""
    queue: str | None
    """The queue between the rule and the function (``None``: the rule invokes the function itself)."""
    mapping: Mapping_ | None


@dataclass(frozen=True)
class BusRule:
    logical: str
    pattern: dict[str, Any]
    targets: tuple[Target, ...]


@dataclass
class StackModel:
    template: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = {name: spec.get("Default") for name, spec in (self.template.get("Parameters") or {}).items()}
        unknown = sorted(set(self.parameters) - set(values))
        if unknown:
            raise KeyError(f"the template has no parameter(s) {', '.join(unknown)}")
        values.update(self.parameters)
        self.values = values
        self._conditions: dict[str, bool] = {}
        self.resources = {logical: resource for logical, resource in (self.template.get("Resources") or {}).items()
                          if "Condition" not in resource or self.condition(resource["Condition"])}
        self.functions = {logical: r for logical, r in self.resources.items() if r["Type"] == "AWS::Lambda::Function"}

    # ----------------------------------------------------------------------------------------- evaluation

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def value(self, node: Any) -> Any:
        """A property with parameters, conditions and the intrinsics the cost needs resolved (others stay)."""
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref" and isinstance(arg, str) and arg in self.values:
                return self.values[arg]
            if key == "Fn::Equals":
                return str(self.value(arg[0])) == str(self.value(arg[1]))
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
        return {key: self.value(item) for key, item in node.items()}

    def properties(self, logical: str) -> dict[str, Any]:
        return dict(self.value(self.resources[logical].get("Properties") or {}))

    # ----------------------------------------------------------------------------------------- functions

    def chalice_name(self, logical: str) -> str:
        name = self.properties(logical)["FunctionName"]
        text = name.get("Fn::Sub", "") if isinstance(name, dict) else str(name)
        return text.rsplit("}-", 1)[-1]

    def function_logical(self, name: str) -> str:
        for logical in self.functions:
            if self.chalice_name(logical) == name:
                return logical
        raise KeyError(f"no function {name!r} in the template")

    def memory_mb(self, name: str) -> int:
        return int(self.properties(self.function_logical(name))["MemorySize"])

    def traced(self, name: str) -> bool:
        tracing = self.properties(self.function_logical(name)).get("TracingConfig") or {}
        return tracing.get("Mode") == "Active"

    def platform_logs(self, name: str) -> bool:
        """Whether Lambda writes its START/END/REPORT lines (not with a JSON log format at system level WARN)."""
        config = self.properties(self.function_logical(name)).get("LoggingConfig") or {}
        return config.get("SystemLogLevel") not in ("WARN", "ERROR", "FATAL")

    def _function_of(self, reference: Any) -> str | None:
        if isinstance(reference, dict):
            logical = reference.get("Ref") or (reference.get("Fn::GetAtt") or [None])[0]
            if logical in self.functions:
                return self.chalice_name(logical)
        return None

    def mappings(self) -> dict[str, Mapping_]:
        """Event source mappings by their queue's logical id."""
        found = {}
        for logical, resource in self.resources.items():
            if resource["Type"] != "AWS::Lambda::EventSourceMapping":
                continue
            props = self.properties(logical)
            if props.get("Enabled", True) is False:
                continue  # a redrive mapping, off until someone turns it on: it does not poll
            queue = props["EventSourceArn"]["Fn::GetAtt"][0]
            function = self._function_of(props["FunctionName"])
            if function is None:
                continue
            found[queue] = Mapping_(logical, queue, function, int(props.get("BatchSize", 10)),
                                    float(props.get("MaximumBatchingWindowInSeconds", 0)))
        return found

    def ingest_mapping(self) -> Mapping_ | None:
        """The mapping that feeds the ingest from its queue; ``None`` when the IoT rule invokes it directly."""
        return next((m for m in self.mappings().values() if m.function == "ingest"), None)

    def ingest_direct(self) -> bool:
        """Whether the ingest topic rule invokes the ingest function itself (no queue between)."""
        actions = self.properties("IngestTopicRule")["TopicRulePayload"].get("Actions") or []
        return any(self._function_of((action.get("Lambda") or {}).get("FunctionArn")) == "ingest"
                   for action in actions)

    def basic_ingest(self) -> bool:
        """Whether edge devices publish through IoT Basic Ingest (no messaging charge; the rule and its action are
        billed as before): the ingest rule has the fixed name ``infra.provision`` writes into their config, and the
        edge policy lets them publish to ``$aws/rules/<it>/…``."""
        rule = self.properties("IngestTopicRule")
        policy = self.properties("EdgePolicy").get("PolicyDocument")
        return bool(rule.get("RuleName")) and "$aws/rules/${IngestTopicRule}/" in str(policy)

    def bus_rules(self) -> list[BusRule]:
        """The rules on the stack's own bus (pattern rules; schedules are on the default bus)."""
        mappings = self.mappings()
        rules = []
        for logical, resource in self.resources.items():
            if resource["Type"] != "AWS::Events::Rule":
                continue
            props = self.properties(logical)
            if "EventPattern" not in props or props.get("EventBusName") != {"Ref": "EventBus"}:
                continue
            targets = []
            for target in props.get("Targets") or []:
                arn = target["Arn"]
                function = self._function_of(arn)
                if function is not None:
                    targets.append(Target(logical, function, None, None))
                    continue
                queue = arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else None
                if queue in mappings:
                    targets.append(Target(logical, mappings[queue].function, queue, mappings[queue]))
            rules.append(BusRule(logical, props["EventPattern"], tuple(targets)))
        return rules

    # ----------------------------------------------------------------------------------------- fixed items

    def count(self, kind: str) -> int:
        return sum(1 for r in self.resources.values() if r["Type"] == kind)

    def provisioned(self) -> bool:
        """Whether the resource table is provisioned (``TableCapacity=provisioned``)."""
        table = self.resources.get("ResourceTable")
        return bool(table) and self.properties("ResourceTable").get("BillingMode") == "PROVISIONED"

    def table_minimum(self) -> tuple[float, float]:
        """The resource table's own minimum WCU and RCU (its indexes apart)."""
        throughput = self.properties("ResourceTable").get("ProvisionedThroughput") or {}
        return float(throughput.get("WriteCapacityUnits", 0)), float(throughput.get("ReadCapacityUnits", 0))

    def provisioned_capacity(self) -> tuple[float, float]:
        """Minimum provisioned WCU and RCU of every table and index (0 for on-demand tables)."""
        wcu = rcu = 0.0
        for logical, resource in self.resources.items():
            if resource["Type"] != "AWS::DynamoDB::Table":
                continue
            props = self.properties(logical)
            if props.get("BillingMode", "PROVISIONED") == "PAY_PER_REQUEST":
                continue
            for throughput in [props.get("ProvisionedThroughput")] + [
                    index.get("ProvisionedThroughput") for index in props.get("GlobalSecondaryIndexes") or []]:
                if throughput:
                    wcu += float(throughput["WriteCapacityUnits"])
                    rcu += float(throughput["ReadCapacityUnits"])
        return wcu, rcu

    def fixed_monthly(self) -> Usage:
        """What the stack costs a month before any traffic (``docs/cost.md``, "Fixed monthly items")."""
        usage = Usage()
        usage.add("cloudwatch.alarm_month", self.count("AWS::CloudWatch::Alarm"), "alarms")
        usage.add("kms.key_month", self.count("AWS::KMS::Key"), "handler secrets key")
        usage.add("secrets.secret_month", self.count("AWS::SecretsManager::Secret"), "secrets")
        polls = len(self.mappings()) * ESM_IDLE_RECEIVES_PER_MONTH
        usage.add("sqs.request", polls, "queue pollers (idle long polls)")
        wcu, rcu = self.provisioned_capacity()
        usage.add("dynamodb.wcu_hour", wcu * HOURS_PER_MONTH, "provisioned capacity (minimum)")
        usage.add("dynamodb.rcu_hour", rcu * HOURS_PER_MONTH, "provisioned capacity (minimum)")
        for logical, resource in self.resources.items():
            if resource["Type"] == "AWS::Timestream::InfluxDBInstance":
                props = self.properties(logical)
                usage.add("influxdb.medium_hour", HOURS_PER_MONTH * _influx_size(str(props.get("DbInstanceType"))),
                          "metric instance")
                usage.add("influxdb.gb_month", float(props.get("AllocatedStorage", 20)), "metric instance")
        return usage


def _influx_size(instance_type: str) -> float:
    """Instance-hours of a medium that one hour of ``instance_type`` costs (the sizes double)."""
    order = ["db.influx.medium", "db.influx.large", "db.influx.xlarge", "db.influx.2xlarge", "db.influx.4xlarge"]
    return float(2 ** order.index(instance_type)) if instance_type in order else 1.0

