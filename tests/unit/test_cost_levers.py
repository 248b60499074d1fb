"""The cost levers of #17, each on its own (``docs/cost.md`` weighs them): events packed into few EventBridge
entries that rules still route by type, the notifier run only for what a live websocket watches, consumers that
take packs, metrics written once a minute, and the template's parameters (tracing, function alarms, the table's
capacity mode, the lastSeen interval)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.connections_memory import MemoryConnectionStore
from chalicelib.core.bus_packing import events_of, is_packed, pack_events, packed_pattern, selector, unpack
from chalicelib.core.event_pattern import matches
from chalicelib.core.model import FieldModel, Kind, event
from chalicelib.core.ports import BusEvent, bus_event
from chalicelib.observability import METRICS_FLUSH_S, MinuteMetrics
from chalicelib.services.websocket import CONNECTION_TTL_S, Audience


def field(field_id: str, value: Any = 21.5) -> BusEvent:
    gateway, node, source, key = field_id.split(".")
    record = FieldModel(gateway_id=gateway, node_id=node, source_id=source, field_id=key).record()
    record["current"] = {"value": value}
    return bus_event(event("updated", Kind.FIELD, record))


def document(pack: Any) -> dict[str, Any]:
    return {"source": pack.source, "detail-type": pack.detail_type, "detail": json.loads(pack.detail_json())}


# --------------------------------------------------------------------------------------------- packing


def test_a_batchs_events_share_one_pack_per_source_and_keep_their_order() -> None:
    node = bus_event(event("updated", Kind.NODE, {"id": "gw.1"}))
    revoked = BusEvent("mycontroller.auth", "session.revoked", {"entityType": "session", "type": "revoked"})
    events = [field("gw.1.1.V_TEMP", 1), node, revoked, field("gw.1.2.V_HUM", 2)]
    packs = pack_events(events, 200_000)
    assert [(p.source, len(p.events)) for p in packs] == [("mycontroller", 3), ("mycontroller.auth", 1)]
    detail = json.loads(packs[0].detail_json())
    assert detail["types"] == ["field.updated", "node.updated"] and detail["watched"] is True
    assert [d for _, d in unpack(detail)] == [events[0].detail, node.detail, events[3].detail]
    assert packs[0].detail_type == "events" and packs[1].detail_type == "session.revoked"  # one type: its own
    assert is_packed(detail) and not is_packed(events[0].detail)
    assert unpack(events[0].detail) == [(None, events[0].detail)]  # a single event stays readable


def test_packs_hold_at_most_their_budget() -> None:
    events = [field(f"gw.1.{i}.V_TEXT", "x" * 900) for i in range(100)]
    packs = pack_events(events, 20_000)
    assert len(packs) > 4 and sum(len(p.events) for p in packs) == 100
    assert all(len(p.detail_json().encode()) <= 20_000 for p in packs)
    [alone] = pack_events([field("gw.1.1.V_TEXT", "y" * 30_000)], 20_000)  # too big for any: a pack of its own
    assert len(alone.events) == 1


def test_rules_route_packs_by_type_and_consumers_take_exactly_their_events() -> None:
    forward = {"source": ["mycontroller"], "detail-type": ["field.updated"]}
    node = bus_event(event("updated", Kind.NODE, {"id": "gw.1"}))
    [mixed] = pack_events([node, field("gw.1.1.V_TEMP")], 200_000)
    [nodes_only] = pack_events([node], 200_000)
    rule = packed_pattern(forward)
    assert rule == {"source": ["mycontroller"], "detail": {"types": ["field.updated"]}}
    assert matches(rule, document(mixed)) and not matches(rule, document(nodes_only))
    taken = events_of(document(mixed), selector(forward))
    assert [d["entityId"] for d in taken] == ["gw.1.1.V_TEMP"]
    notify = packed_pattern({"source": ["mycontroller"]}, watched=True)
    [unwatched] = pack_events([field("gw.1.1.V_TEMP")], 200_000, lambda _detail: False)
    assert not matches(notify, document(unwatched)) and matches(notify, document(mixed))


def test_a_pack_is_watched_when_one_of_its_events_is() -> None:
    wanted = {"gw.1.2.V_HUM"}
    [pack] = pack_events([field("gw.1.1.V_TEMP"), field("gw.1.2.V_HUM")], 200_000,
                         lambda detail: detail.get("entityId") in wanted)
    assert json.loads(pack.detail_json())["watched"] is True
    [pack] = pack_events([field("gw.1.1.V_TEMP")], 200_000, lambda detail: detail.get("entityId") in wanted)
    assert json.loads(pack.detail_json())["watched"] is False


# --------------------------------------------------------------------------------------------- the audience


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def connection(connection_id: str, quick_ids: list[str], *, expires: int) -> dict[str, Any]:
    return {"connectionId": connection_id, "principal": {"sub": "u"}, "connectedAt": 0, "expiresAt": expires,
            "subscriptions": {"s": {"quickIds": quick_ids}}}


def test_nobody_connected_means_nobody_wants_an_event_but_revocations_always_go() -> None:
    clock = Clock()
    audience = Audience(MemoryConnectionStore(), ttl_s=1.0, clock=clock, monotonic=clock)
    assert audience(field("gw.1.1.V_TEMP").detail) is False
    assert audience({"entityType": "session", "type": "revoked"}) is True
    assert audience({"entityType": "backup", "type": "restored"}) is True


def test_a_subscription_is_seen_within_the_ttl_and_an_expired_connection_not_at_all() -> None:
    clock = Clock()
    store = MemoryConnectionStore()
    reads: list[int] = []
    listed = store.list_all

    def counted() -> list[dict[str, Any]]:
        reads.append(1)
        return listed()

    store.list_all = counted  # type: ignore[method-assign]
    audience = Audience(store, ttl_s=1.0, clock=clock, monotonic=clock)
    temperature = field("gw.1.1.V_TEMP").detail
    assert audience(temperature) is False
    store.put(connection("c1", ["node:gw.1"], expires=int(clock.now) + CONNECTION_TTL_S))
    assert audience(temperature) is False  # the index is trusted for its TTL: one read a second at most
    clock.now += 1.0
    assert audience(temperature) is True and audience(field("gw.2.1.V_TEMP").detail) is False
    assert len(reads) == 2
    store.put(connection("c1", ["node:gw.1"], expires=int(clock.now) - 1))
    clock.now += 1.0
    assert audience(temperature) is False


# --------------------------------------------------------------------------------------------- metrics


def test_metrics_are_written_at_most_once_a_minute(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    now = [100.0]
    monkeypatch.setattr("chalicelib.observability.time.monotonic", lambda: now[0])
    metrics = MinuteMetrics(namespace="Test", service="test")
    metrics.add_metric(name="MessagesProcessed", unit=MetricUnit.Count, value=5)
    metrics.flush_metrics()
    first = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(first) == 1  # the first goes at once (a cold start's figures are not held back)
    for value in (1, 2, 3):
        now[0] += 10
        metrics.add_metric(name="MessagesProcessed", unit=MetricUnit.Count, value=value)
        metrics.flush_metrics()
    assert '"_aws"' not in capsys.readouterr().out  # held: a line a minute, not one an invocation
    now[0] += METRICS_FLUSH_S
    metrics.flush_metrics()
    [line] = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert json.loads(line)["MessagesProcessed"] == [1.0, 2.0, 3.0]  # the minute's values together


# --------------------------------------------------------------------------------------------- the template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from infra.package import build_template

    return build_template()


def test_tracing_is_a_parameter_off_by_default(template: dict[str, Any]) -> None:
    assert template["Parameters"]["Tracing"]["Default"] == "PassThrough"
    assert set(template["Parameters"]["Tracing"]["AllowedValues"]) == {"PassThrough", "Active"}
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert functions and all(f["Properties"]["TracingConfig"] == {"Mode": {"Ref": "Tracing"}} for f in functions)


def test_the_table_is_on_demand_unless_provisioned_with_auto_scaling(template: dict[str, Any]) -> None:
    from bench.stack_model import StackModel

    assert template["Parameters"]["TableCapacity"]["Default"] == "on-demand"
    on_demand = StackModel(template)
    assert not on_demand.provisioned() and on_demand.provisioned_capacity() == (0.0, 0.0)
    assert not [r for r in on_demand.resources.values() if r["Type"].startswith("AWS::ApplicationAutoScaling")]
    provisioned = StackModel(template, {"TableCapacity": "provisioned", "TableWriteCapacity": 2,
                                        "TableReadCapacity": 3})
    assert provisioned.provisioned() and provisioned.table_minimum() == (2.0, 3.0)
    assert provisioned.provisioned_capacity() == (4.0, 5.0)  # the table's and each index's floor of 1
    targets = {name: r["Properties"] for name, r in provisioned.resources.items()
               if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"}
    assert len(targets) == 6  # read and write of the table and of its two indexes
    assert {t["ScalableDimension"] for t in targets.values()} == {
        "dynamodb:table:WriteCapacityUnits", "dynamodb:table:ReadCapacityUnits",
        "dynamodb:index:WriteCapacityUnits", "dynamodb:index:ReadCapacityUnits"}
    policies = [r["Properties"] for r in provisioned.resources.values()
                if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"]
    assert len(policies) == 6 and all(
        p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 70 for p in policies)


def test_last_seen_interval_reaches_the_processor(template: dict[str, Any]) -> None:
    from chalicelib.bootstrap import Container
    from chalicelib.settings import Settings

    assert template["Parameters"]["LastSeenInterval"]["Default"] == 300
    ingest = template["Resources"]["Ingest"]["Properties"]["Environment"]["Variables"]
    assert ingest["LAST_SEEN_INTERVAL_S"] == {"Ref": "LastSeenInterval"}
    container = Container(Settings.from_env({"STORAGE": "memory", "LAST_SEEN_INTERVAL_S": "300"}))
    try:
        assert container.ingest.processor.last_seen_resolution_ms == 300_000
    finally:
        container.close()


def test_only_a_subscribed_audience_gates_the_notifier(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters.bus_eventbridge import EventBridgeBus
    from chalicelib.bootstrap import Container
    from chalicelib.settings import Settings

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # clients are made, never called
    base = {"BUS": "eventbridge", "STORAGE": "dynamodb", "AWS_REGION": "us-east-1"}
    gated = Container(Settings.from_env({**base, "NOTIFY_AUDIENCE": "subscribed"}))
    plain = Container(Settings.from_env(base))
    try:
        assert isinstance(gated.bus, EventBridgeBus) and isinstance(gated.bus.audience, Audience)
        assert isinstance(plain.bus, EventBridgeBus) and plain.bus.audience is None
    finally:
        gated.close()
        plain.close()


def test_make_deploy_passes_every_cost_lever(template: dict[str, Any]) -> None:
    from infra.deploy import PARAMETER_VARIABLES

    assert set(PARAMETER_VARIABLES) <= set(template["Parameters"])
    levers = {"IngestBatchWindow": "INGEST_BATCH_WINDOW", "TableCapacity": "TABLE_CAPACITY",
              "LastSeenInterval": "LAST_SEEN_INTERVAL", "FunctionAlarms": "FUNCTION_ALARMS", "Tracing": "TRACING"}
    assert {name: PARAMETER_VARIABLES[name] for name in levers} == levers


def test_lambdas_own_lines_are_left_out_at_info(template: dict[str, Any]) -> None:
    from bench.stack_model import StackModel

    config = template["Resources"]["Ingest"]["Properties"]["LoggingConfig"]
    assert (config["LogFormat"], config["SystemLogLevel"]) == ("JSON", "WARN")
    for level, lambdas in (("INFO", "INFO"), ("DEBUG", "DEBUG"), ("WARNING", "WARN"), ("CRITICAL", "FATAL")):
        model = StackModel(template, {"LogLevel": level})
        assert model.properties("Ingest")["LoggingConfig"]["ApplicationLogLevel"] == lambdas
        assert not model.platform_logs("ingest")
