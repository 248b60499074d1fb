"""The cost model of ``bench/cost.py``: the dated price table and how units are rounded, what the meter counts of
the calls the functions make (DynamoDB units from item sizes, EventBridge 64 KB chunks, websocket 32 KB posts), what
the template's shape says is paid by the month, and the simulated AWS between the functions (the edge's packing,
a mapping's batches)."""

from __future__ import annotations

import json
import random
from typing import Any

import boto3
import pytest

from bench.meter import AwsMeter, attribute_size, item_size, write_units
from bench.pricing import PRICES, PRICES_AS_OF, Bill, Usage, chunks, price_table
from bench.stack_model import ESM_IDLE_RECEIVES_PER_MONTH, StackModel


def test_the_price_table_is_dated_and_every_price_positive() -> None:
    assert PRICES_AS_OF[:4].isdigit() and len(PRICES_AS_OF) == 10
    assert all(price.dollars > 0 and price.unit and price.rule for price in PRICES.values())
    assert PRICES["events.event"].dollars == PRICES["iot.message"].dollars == 1e-6
    assert price_table()[0].startswith("prices: us-east-1")


def test_payloads_are_billed_by_started_chunk() -> None:
    assert chunks(0, 65536) == chunks(1, 65536) == chunks(65536, 65536) == 1
    assert chunks(65537, 65536) == 2 and chunks(5121, 5120) == 2


def test_a_bill_groups_by_service_and_keeps_the_metric_instance_apart() -> None:
    usage = Usage()
    usage.add("lambda.request", 1_000_000, "ingest")
    usage.add("dynamodb.write_unit", 2_000_000, "ingest")
    usage.add("influxdb.medium_hour", 730, "metric instance")
    bill = Bill(usage)
    assert bill.by_service()["Lambda"] == pytest.approx(0.20)
    assert bill.by_service()["DynamoDB"] == pytest.approx(1.25)
    assert bill.total == pytest.approx(1.45) and bill.apart > 0
    with pytest.raises(KeyError):
        usage.add("no.such.price", 1)


def test_dynamodb_sizes_follow_its_rules() -> None:
    assert attribute_size({"S": "héllo"}) == 6 and attribute_size({"N": "12345"}) == 4
    item = {"pk": {"S": "field#gw.1.1.V_TEMP"}, "doc": {"S": "x" * 1000}}
    assert item_size(item) == 2 + 19 + 3 + 1000 and write_units(item) == 1
    assert write_units({"pk": {"S": "k"}, "doc": {"S": "x" * 1100}}) == 2


@pytest.mark.usefixtures("aws_mock")
def test_the_meter_counts_billed_units_of_the_calls_made() -> None:
    from chalicelib.adapters.repository_dynamodb import create_table

    create_table("meter-test", "us-east-1")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    events = boto3.client("events", region_name="us-east-1")
    events.create_event_bus(Name="meter-bus")
    meter = AwsMeter()
    with meter.installed():
        meter.line = "probe"
        item = {"pk": {"S": "field#gw.1.1.V_TEMP"}, "kk": {"S": "field#0"}, "tree": {"S": "gw"},
                "doc": {"S": "x" * 1500}}
        dynamodb.put_item(TableName="meter-test", Item=item)  # new: 2 units, and one for each index's entry
        dynamodb.put_item(TableName="meter-test", Item=item)  # known: its index entries are unchanged
        with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
            dynamodb.put_item(TableName="meter-test", Item=item, ConditionExpression="attribute_not_exists(pk)")
        dynamodb.batch_get_item(RequestItems={"meter-test": {"Keys": [{"pk": {"S": "field#gw.1.1.V_TEMP"}},
                                                                      {"pk": {"S": "missing"}}],
                                                             "ConsistentRead": True}})
        dynamodb.get_item(TableName="meter-test", Key={"pk": {"S": "missing"}})  # eventually consistent: half
        events.put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": json.dumps({"x": "y" * 70_000}),
                                    "EventBusName": "meter-bus"}])
    assert meter.usage.total("dynamodb.write_unit") == (2 + 2) + 2 + 2  # a failed condition is billed too
    assert meter.usage.total("dynamodb.read_unit") == 1 + 1 + 0.5
    assert meter.usage.total("events.event") == 2  # 70 KB: two 64 KB chunks
    assert meter.table_units[("meter-test", "write")] == 8
    assert ("dynamodb", "PutItem") in meter.calls and len(meter.entries) == 1
    assert {line for (_, line) in meter.usage.units} == {"probe @meter-test", "probe"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from infra.package import build_template

    return build_template()


def test_what_the_default_stack_pays_by_the_month(template: dict[str, Any]) -> None:
    model = StackModel(template)
    fixed = Bill(model.fixed_monthly()).by_key()
    assert fixed["cloudwatch.alarm_month"] == pytest.approx(0.50)  # the five dead-letter queues' alarms
    assert fixed["kms.key_month"] == 1.0 and fixed["secrets.secret_month"] == pytest.approx(0.40)
    # one queue is polled (handlers); the IoT rule invokes the ingest, the bus's rules their consumers: their queues'
    # redrive mappings are off (a fleet's ingest window polls the ingest queue)
    assert fixed["sqs.request"] == pytest.approx(ESM_IDLE_RECEIVES_PER_MONTH * 0.40e-6)
    windowed = Bill(StackModel(template, {"IngestBatchWindow": "1"}).fixed_monthly()).by_key()
    assert windowed["sqs.request"] == pytest.approx(2 * ESM_IDLE_RECEIVES_PER_MONTH * 0.40e-6)
    assert "dynamodb.wcu_hour" not in fixed and "influxdb.medium_hour" not in fixed
    alarms = StackModel(template, {"FunctionAlarms": "true"}).fixed_monthly()
    assert alarms.total("cloudwatch.alarm_month") == 5 + 2 * len(model.functions)
    metric = Bill(StackModel(template, {"MetricStore": "create"}).fixed_monthly())
    assert metric.apart > 0 and metric.total == pytest.approx(Bill(model.fixed_monthly()).total + 0.40)
    with pytest.raises(KeyError):
        StackModel(template, {"NoSuchParameter": "x"})


def test_the_model_reads_the_functions_and_the_bus_as_the_template_wires_them(template: dict[str, Any]) -> None:
    model = StackModel(template)
    assert model.memory_mb("ingest") == 512 and not model.traced("ingest")  # a publish an invocation
    assert StackModel(template, {"IngestBatchWindow": "1"}).memory_mb("ingest") >= 1024  # batches of 100
    assert not model.platform_logs("ingest")  # JSON, Lambda's own lines from WARN only
    assert StackModel(template, {"Tracing": "Active"}).traced("tasks")
    assert model.ingest_mapping() is None and model.ingest_direct()  # a home: the rule invokes it with each publish
    windowed = StackModel(template, {"IngestBatchWindow": "1"})
    fleet = windowed.ingest_mapping()
    assert fleet is not None and not windowed.ingest_direct()
    assert (fleet.function, fleet.batch_size, fleet.window_s) == ("ingest", 100, 1.0)
    rules = {rule.logical: rule for rule in model.bus_rules()}
    assert set(rules) == {"ForwardPayloadRule", "TasksRule", "WebsocketNotifyRule"}
    for rule in rules.values():  # each invokes its function directly: no queue, no mapping
        [target] = rule.targets
        assert target.queue is None and target.mapping is None
    assert rules["WebsocketNotifyRule"].pattern["detail"] == {"watched": [True]}
    assert rules["TasksRule"].pattern["detail"] == {"to": ["tasks"]}


def test_the_edge_packs_a_homes_trickle_by_its_window() -> None:
    from bench.cost import Line, edge_publishes
    from chalicelib.core.publish_reader import decode_publish

    lines = [Line(index * 0.2, f"1;1;1;0;0;{index}") for index in range(20)]  # 5 a second for 4 s
    publishes = edge_publishes(lines, "home", 1.0, stream="s")
    assert [len(decode_publish(body)[0]) for _, body in publishes] == [5, 5, 5, 5]
    assert [round(at, 1) for at, _ in publishes] == [1.0, 2.0, 3.0, 4.0]  # a window after the first of each
    urgent = [Line(0.0, "1;1;1;0;0;1"), Line(0.1, "1;3;1;1;2;1", urgent=True), Line(0.2, "1;1;1;0;0;2")]
    assert [(round(at, 1), len(decode_publish(body)[0])) for at, body in edge_publishes(urgent, "h", 1.0,
                                                                                         stream="s")] == [
        (0.1, 2), (1.2, 1)]
    every = edge_publishes(lines, "home", 0.0, stream="s")
    assert len(every) == 20  # no window: a publish a message


def test_a_mapping_batches_by_window_and_size() -> None:
    from bench.cost import Pending, batches

    records = [Pending(at, index, index) for index, at in enumerate([0.0, 0.4, 0.9, 1.2, 5.0])]
    assert [(at, [p.record for p in batch]) for at, batch in batches(records, 100, 1.0)] == [
        (1.0, [0, 1, 2]), (2.2, [3]), (6.0, [4])]
    assert [len(batch) for _, batch in batches(records, 2, 1.0)] == [2, 2, 1]
    same_moment = [Pending(1.0, index, index) for index in range(12)]
    assert [len(batch) for _, batch in batches(same_moment, 10, 0.0)] == [10, 2]


def test_the_bench_measures_a_running_site_not_its_first_minutes() -> None:
    """#17: a field's creation (its index entries) is paid once in its life, not every few minutes of a month."""
    from bench.cost import first_values
    from bench.ingest import SENSORS

    lines = first_values(3, random.Random(1))
    assert len(lines) == 3 * len(SENSORS)
    assert {tuple(line.split(";")[:2]) for line in lines} == {(str(node), str(child)) for node in (1, 2, 3)
                                                                for child, _, _, _ in SENSORS}


def test_edge_publishes_go_through_basic_ingest_without_the_messaging_charge(template: dict[str, Any]) -> None:
    """#17: the ingest rule has its fixed name and the edge policy lets devices publish to it by Basic Ingest (what
    ``infra.provision`` configures): the bench bills the rule and its action, not the broker's message."""
    assert StackModel(template).basic_ingest()
    properties = template["Resources"]["IngestTopicRule"]["Properties"]
    stripped = {**template, "Resources": {**template["Resources"], "IngestTopicRule": {
        **template["Resources"]["IngestTopicRule"],
        "Properties": {k: v for k, v in properties.items() if k != "RuleName"}}}}
    assert not StackModel(stripped).basic_ingest()
