"""The bus fan-out as deployed, under moto: the ingest side's EventBridge adapter puts domain events on the bus
packed, the rules of ``infra/template.py`` (same patterns) select the packs, and what EventBridge delivers is handed
to the ``forward_payload``, ``tasks`` and ``websocket_notify`` entries: as the rule invokes them (the event itself)
and as a dead-letter queue's redrive mapping does (an SQS record with the event as its body). The rule targets are
SQS queues here only to capture the events EventBridge really writes (moto runs no Lambda)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest

from chalicelib.adapters.bus_eventbridge import EventBridgeBus
from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.connections_memory import MemoryConnectionStore
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.adapters.metrics_none import NoMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.bootstrap import Container
from chalicelib.core.automation.models import ForwardPayload
from chalicelib.core.model import FieldModel, Gateway, Kind, MetricType, Record, event
from chalicelib.core.ports import bus_event
from chalicelib.functions.entries import LambdaEntries
from chalicelib.services.websocket import Audience, WebsocketService
from chalicelib.settings import Settings
from infra.template import BUS_CONSUMERS

REGION = "us-east-1"
FUNCTIONS = {"ForwardPayload": "forward_payload", "Tasks": "tasks", "WebsocketNotify": "websocket_notify"}


class Posts:
    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []

    def post(self, connection_id: str, data: bytes) -> None:
        self.posted.append((connection_id, json.loads(data)))


class Queue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, requests: Sequence[dict[str, Any]]) -> None:
        self.sent.extend(requests)


@pytest.fixture
def fanout(aws_mock: None) -> Iterator[dict[str, str]]:
    """The bus, and per consumer a capture queue the rule of ``BUS_CONSUMERS`` delivers to: name → queue URL."""
    events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name="mycontroller")
    urls = {}
    for name, consumer in BUS_CONSUMERS.items():
        url = sqs.create_queue(QueueName=f"fanout-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=f"{name}Rule", EventBusName="mycontroller", EventPattern=json.dumps(consumer["pattern"]))
        events.put_targets(Rule=f"{name}Rule", EventBusName="mycontroller", Targets=[{"Id": name, "Arn": arn}])
        urls[name] = url
    try:
        yield urls
    finally:
        for name, url in urls.items():
            events.remove_targets(Rule=f"{name}Rule", EventBusName="mycontroller", Ids=[name])
            events.delete_rule(Name=f"{name}Rule", EventBusName="mycontroller")
            sqs.delete_queue(QueueUrl=url)
        events.delete_event_bus(Name="mycontroller")


def receive(url: str) -> dict[str, Any]:
    """What the event source mapping would hand the function: every message waiting, as Lambda's SQS event."""
    sqs = boto3.client("sqs", region_name=REGION)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    records: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                          AttributeNames=["All"]).get("Messages"):
        records += [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                     "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                     "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION} for m in messages]
    return {"Records": records}


def field_record(field_id: str, value: Any, sequence: int) -> Record:
    gateway, node, source, key = field_id.split(".")
    record = FieldModel(gateway_id=gateway, node_id=node, source_id=source, field_id=key,
                        metric_type=MetricType.BINARY if key == "V_STATUS" else MetricType.GAUGE_FLOAT).record()
    record["current"] = {"value": value, "isReceived": True, "sequence": sequence,
                         "timestamp": f"2026-11-27T03:00:{sequence:02d}.000Z"}
    return record


def captured(url: str) -> list[dict[str, Any]]:
    """The EventBridge events a rule delivered, as its function would be invoked with them."""
    return [json.loads(record["body"]) for record in receive(url)["Records"]]


def as_redrive(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The same events as the redrive mapping of a dead-letter queue hands them over (one record each)."""
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": "r", "body": json.dumps(e),
                         "attributes": {"SentTimestamp": str(int(time.time() * 1000))}, "messageAttributes": {},
                         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:dlq",
                         "awsRegion": REGION} for i, e in enumerate(events)]}


@pytest.mark.parametrize("delivery", ["rule", "redrive"])
def test_events_reach_each_consumer_packed(fanout: dict[str, str], delivery: str) -> None:
    repository = MemoryRepository(None)
    for gateway in ("porch", "hall"):
        repository.put(Kind.GATEWAY, Gateway(id=gateway, provider={"type": "mysensors_v2"}).record())
    repository.put(Kind.FIELD, FieldModel(gateway_id="hall", node_id="2", source_id="3", field_id="V_STATUS",
                                          metric_type=MetricType.BINARY).record())
    repository.put(Kind.FORWARD_PAYLOAD, ForwardPayload(id="p2h", src_field_id="field:porch.1.1.V_STATUS",
                                                        dst_field_id="field:hall.2.3.V_STATUS").record())
    repository.put(Kind.TASK, {
        "id": "porch-on", "eventFilter": {"entityTypes": ["field"], "filters": {"id": "porch.1.1.V_STATUS"}},
        "evaluationConfig": {"rule": {"conditions": [
            {"variable": "entity.current.value", "operator": "eq", "value": True}]}},
        "handlers": ["hook"]})
    queue, posts, downlink = Queue(), Posts(), LocalDownlink()
    store = MemoryConnectionStore()
    service = WebsocketService(store, posts, authenticate=lambda token: {"sub": token})
    container = Container(Settings(), repository=repository, metrics=NoMetricStore(), bus=LocalEventBus("sync"),
                          downlink=downlink, handler_queue=queue, schedules=None, websocket=service)
    assert service.connect("c1", query={"access_token": "t"}) is not None
    service.message("c1", json.dumps({"type": "subscribe", "id": "porch", "filter": {"quickIds": ["node:porch.1"]}}))
    posts.posted.clear()
    bus = EventBridgeBus("mycontroller", client=boto3.client("events", region_name=REGION),
                         audience=Audience(store, ttl_s=0))
    try:
        bus.publish([bus_event(event("created", Kind.FIELD, field_record("porch.1.1.V_STATUS", False, 1))),
                     bus_event(event("updated", Kind.FIELD, field_record("porch.1.1.V_STATUS", True, 2))),
                     bus_event(event("updated", Kind.FIELD, field_record("porch.1.2.V_TEMP", 19.5, 3)))])
        bus.publish([bus_event(event("updated", Kind.FIELD, field_record("cellar.1.1.V_TEMP", 9.0, 4)))])  # unwatched
        delivered = {name: captured(url) for name, url in fanout.items()}
        # one pack per publish: forward and tasks get both, the notifier only the one a socket watches
        assert {name: len(events) for name, events in delivered.items()} == {
            "ForwardPayload": 2, "Tasks": 2, "WebsocketNotify": 1}
        assert bus.calls["entries"] == 2 and bus.calls["events"] == 4
        entries = LambdaEntries(container)
        answers: dict[str, Any] = {}
        for name, events in delivered.items():
            function = getattr(entries, FUNCTIONS[name])
            if delivery == "redrive":
                answers[name] = function(as_redrive(events))
            else:
                answers[name] = [function(e) for e in events]
    finally:
        container.close()
        bus.close()
    if delivery == "redrive":
        assert answers == {name: {"batchItemFailures": []} for name in FUNCTIONS}
    else:
        assert answers["ForwardPayload"] == [{"sent": 1, "failed": []}, {"sent": 0, "failed": []}]
        assert answers["WebsocketNotify"] == [{"posted": 3, "gone": [], "failed": 0}]
    assert [(d.gateway_id, d.raw) for d in downlink.sent] == [("hall", "2;3;1;0;2;1")]
    assert [request["triggerId"].split("#")[0] for request in queue.sent] == ["porch-on"]
    assert sorted((m["data"]["type"], m["data"]["entityId"]) for _, m in posts.posted) == [
        ("created", "porch.1.1.V_STATUS"), ("updated", "porch.1.1.V_STATUS"), ("updated", "porch.1.2.V_TEMP")]
