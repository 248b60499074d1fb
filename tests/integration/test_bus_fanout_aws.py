"""The bus fan-out as deployed, under moto: the ingest side's EventBridge adapter puts domain events on the bus, the
rules of ``infra/template.py`` (same patterns) deliver them to their SQS queues, and the messages Lambda would
receive are handed to the ``forward_payload``, ``tasks`` and ``websocket_notify`` entries as event source batches.
This checks the record bodies EventBridge really writes are what the consumers read."""

from __future__ import annotations

import json
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
from chalicelib.services.websocket import WebsocketService
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
    """The bus, and per consumer a queue with the rule of ``BUS_CONSUMERS`` targeting it: name → queue URL."""
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


def test_events_reach_each_consumer_through_its_queue(fanout: dict[str, str]) -> None:
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
    service = WebsocketService(MemoryConnectionStore(), posts, authenticate=lambda token: {"sub": token})
    container = Container(Settings(), repository=repository, metrics=NoMetricStore(), bus=LocalEventBus("sync"),
                          downlink=downlink, handler_queue=queue, schedules=None, websocket=service)
    assert service.connect("c1", query={"access_token": "t"}) is not None
    service.message("c1", json.dumps({"type": "subscribe", "id": "porch", "filter": {"quickIds": ["node:porch.1"]}}))
    posts.posted.clear()
    try:
        EventBridgeBus("mycontroller", client=boto3.client("events", region_name=REGION)).publish([
            bus_event(event("created", Kind.FIELD, field_record("porch.1.1.V_STATUS", False, 1))),
            bus_event(event("updated", Kind.FIELD, field_record("porch.1.1.V_STATUS", True, 2))),
            bus_event(event("updated", Kind.FIELD, field_record("porch.1.2.V_TEMP", 19.5, 3))),
        ])
        batches = {name: receive(url) for name, url in fanout.items()}
        assert {name: len(batch["Records"]) for name, batch in batches.items()} == {
            "ForwardPayload": 2, "Tasks": 3, "WebsocketNotify": 3}  # forward: field.updated only
        entries = LambdaEntries(container)
        answers = {name: getattr(entries, FUNCTIONS[name])(batch) for name, batch in batches.items()}
    finally:
        container.close()
    assert answers == {name: {"batchItemFailures": []} for name in FUNCTIONS}
    assert [(d.gateway_id, d.raw) for d in downlink.sent] == [("hall", "2;3;1;0;2;1")]
    assert [request["triggerId"].split("#")[0] for request in queue.sent] == ["porch-on"]
    assert sorted((m["data"]["type"], m["data"]["entityId"]) for _, m in posts.posted) == [
        ("created", "porch.1.1.V_STATUS"), ("updated", "porch.1.1.V_STATUS"), ("updated", "porch.1.2.V_TEMP")]
