"""The ingest function driven as Lambda runs it: SQS events through the Chalice app, against moto.

DynamoDB repository, EventBridge bus, iot-data downlinks and the SQS dead-letter queue under moto (the AWS adapters),
and the same checks with the in-process adapters of the local stack.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from chalice import Chalice
from chalice.test import Client
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.identity import GatewayOwners, ingest_body, read_ingest_body
from chalicelib.core.model import Kind
from chalicelib.core.ports import DeadLetter, ListQuery
from chalicelib.core.publish_reader import decode_publish
from mycontroller_protocol.envelope import Envelope, decode_downlinks, down_topic, encode_publish

REGION = "us-east-1"
T0 = 1_767_225_600_000


@dataclass
class Stack:
    entries: Any
    services: Any
    sent_downlinks: Any
    bus_events: Any
    dead_letters: Any
    """() → [(body, reason)] of every message kept for good so far."""


class ListDeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def put(self, letters: Any) -> None:
        self.letters.extend(letters)


def publish(lines: list[str], gateway: str = "gw1", seq0: int = 1, t0: int = T0, thing: str = "edge1") -> str:
    """The ingest record of one publish of ``thing`` (as the IoT rule writes it)."""
    return ingest_body(thing, encode_publish([
        Envelope(gateway, "mysensors_v2", t0 + i, seq0 + i, f"{thing}-{gateway}-{seq0 + i}", line)
        for i, line in enumerate(lines)
    ]))


def _memory_services(tmp_path: Any) -> tuple[Any, Any, Any, Any]:
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.downlink_local import LocalDownlink
    from chalicelib.bootstrap import Container
    from chalicelib.settings import Settings

    bus = LocalEventBus(mode="sync")
    received: list[Any] = []
    bus.subscribe("test", {"source": ["mycontroller"]}, lambda e: received.append(
        {"source": e.source, "detail-type": e.detail_type, "detail": e.detail}))
    repository = MemoryRepository(None)
    owners = GatewayOwners(repository)
    downlink = LocalDownlink(edges=owners.edges_of)
    letters = ListDeadLetters()
    services = Container(
        Settings(),
        repository=repository,
        metrics=EmbeddedMetricStore(tmp_path / "metrics.sqlite"),
        bus=bus,
        downlink=downlink,
        gateway_owners=owners,
        ingest_dead_letters=letters,
    )

    def sent() -> list[tuple[str, str]]:
        return [(d.gateway_id, d.raw) for d in downlink.sent]

    return services, sent, lambda: received, lambda: [(item.body, item.reason) for item in letters.letters]


def _aws_services(tmp_path: Any) -> tuple[Any, Any, Any, Any]:
    from chalicelib.adapters.bus_eventbridge import EventBridgeBus
    from chalicelib.adapters.dead_letters_sqs import SqsDeadLetters
    from chalicelib.adapters.downlink_iotdata import IotDataDownlink
    from chalicelib.adapters.repository_dynamodb import DynamoDBRepository, create_table
    from chalicelib.bootstrap import Container
    from chalicelib.settings import Settings

    create_table("mycontroller-test", REGION)
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name="mycontroller")
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName="mycontroller", EventPattern=json.dumps({"source": ["mycontroller"]}))
    events.put_targets(Rule="tap", EventBusName="mycontroller", Targets=[{"Id": "q", "Arn": queue_arn}])
    dlq_url = sqs.create_queue(QueueName="mycontroller-ingest-dlq")["QueueUrl"]
    repository = DynamoDBRepository("mycontroller-test", REGION)
    owners = GatewayOwners(repository)
    services = Container(
        Settings(),
        repository=repository,
        metrics=EmbeddedMetricStore(tmp_path / "metrics.sqlite"),
        bus=EventBridgeBus("mycontroller", client=events),
        downlink=IotDataDownlink(client=boto3.client("iot-data", region_name=REGION), edges=owners.edges_of),
        gateway_owners=owners,
        ingest_dead_letters=SqsDeadLetters(dlq_url, client=sqs),
    )

    def sent() -> list[tuple[str, str]]:
        from moto.backends import get_backend

        backend = get_backend("iot-data")[DEFAULT_ACCOUNT_ID][REGION]
        out = []
        for topic, payload in backend.published_payloads:
            body = payload.decode() if isinstance(payload, bytes) else payload
            for downlink in decode_downlinks(body):
                assert topic == down_topic("edge1")  # the edge owning the gateway, which the downlink names
                out.append((downlink.gateway_id, downlink.raw))
        return out

    tapped: list[dict[str, Any]] = []

    def received() -> list[dict[str, Any]]:
        """Every event the rule delivered so far, out of their packs (read once from the tap queue, then kept)."""
        from chalicelib.core.bus_packing import unpack

        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return list(tapped)
            for body in (json.loads(m["Body"]) for m in got):
                tapped.extend({**body, "detail-type": detail_type or body["detail-type"], "detail": detail}
                              for detail_type, detail in unpack(body["detail"]))
            for message in got:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    letters: list[tuple[str, str]] = []

    def dead_letters() -> list[tuple[str, str]]:
        """What the dead-letter queue holds, with each message's ``reason`` attribute (read once, then kept)."""
        while True:
            got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10,
                                      MessageAttributeNames=["reason"]).get("Messages", [])
            if not got:
                return list(letters)
            for message in got:
                letters.append((message["Body"], message["MessageAttributes"]["reason"]["StringValue"]))
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])

    return services, sent, received, dead_letters


@pytest.fixture(params=["memory", "aws"])
def stack(request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "MyController")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    from chalicelib.functions.entries import LambdaEntries

    with mock_aws():
        if request.param == "memory":
            services, sent, received, letters = _memory_services(tmp_path)
        else:
            services, sent, received, letters = _aws_services(tmp_path)
        try:
            yield Stack(LambdaEntries(services), services, sent, received, letters)
        finally:
            services.close()
    os.environ.pop("AWS_ENDPOINT_URL", None)


def invoke(stack: Stack, bodies: list[str]) -> tuple[dict[str, Any], list[str]]:
    event = Client(Chalice("events")).events.generate_sqs_event(message_bodies=bodies, queue_name="mycontroller-ingest")
    for index, record in enumerate(event["Records"]):  # Chalice gives every generated record the same id
        record["messageId"] = record["receiptHandle"] = f"sqs-{index}-{time.monotonic_ns()}"
    ids = [record["messageId"] for record in event["Records"]]
    return stack.entries.ingest(event), ids


def everything(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    repo = stack.services.repository
    return {k.value: sorted(repo.query(k, ListQuery(limit=0)).data, key=lambda r: r["id"])
            for k in (Kind.GATEWAY, Kind.NODE, Kind.SOURCE, Kind.FIELD)}


GOOD = ["12;255;0;0;17;2.3.2", "12;1;0;0;6;Kitchen", "12;1;1;0;0;21.5", "12;1;1;0;0;22.0"]


def test_poison_record_is_dead_lettered_at_once_and_the_rest_applied(stack: Stack) -> None:
    bodies = [publish(GOOD), "this is not a publish", publish(["12;2;1;0;1;48"], seq0=10)]
    payload, _ids = invoke(stack, bodies)
    assert payload == {"batchItemFailures": []}, "a retry cannot make it readable: kept, not retried"
    [(body, reason)] = stack.dead_letters()
    assert body == "this is not a publish" and reason.startswith("poison record:")
    field = stack.services.repository.get(Kind.FIELD, "gw1.12.1.V_TEMP")
    assert field is not None and field["current"]["value"] == 22.0
    assert stack.services.repository.get(Kind.FIELD, "gw1.12.2.V_HUM") is not None


def test_bad_messages_are_dead_lettered_alone_with_their_reasons_and_their_neighbours_applied(stack: Stack) -> None:
    bodies = [publish(["12;3;1;0;2;1", "12;0;1;0;0;21.5;extra", "12;3;1;0;0;x"]), publish(GOOD, seq0=10)]
    payload, _ids = invoke(stack, bodies)
    assert payload == {"batchItemFailures": []}
    switch = stack.services.repository.get(Kind.FIELD, "gw1.12.3.V_STATUS")
    assert switch is not None and switch["current"]["value"] is True
    letters = stack.dead_letters()
    assert len(letters) == 2
    kept = {}
    for body, reason in letters:  # each an ingest record of the one envelope that failed, from its thing
        thing, raw = read_ingest_body(body)
        [envelope], bad = decode_publish(raw)
        assert thing == "edge1" and not bad and envelope.message_id in reason
        kept[envelope.raw] = reason
    assert set(kept) == {"12;0;1;0;0;21.5;extra", "12;3;1;0;0;x"}
    assert "gw1.12.3.V_TEMP" in kept["12;3;1;0;0;x"] and "not a finite number" in kept["12;3;1;0;0;x"]


def test_redelivered_batch_leaves_the_same_state(stack: Stack) -> None:
    bodies = [publish(GOOD), publish(["12;2;1;0;1;48", "12;255;3;0;0;90"], seq0=10)]
    first, _ = invoke(stack, bodies)
    assert first == {"batchItemFailures": []}
    state = everything(stack)
    events_before = len(stack.bus_events())
    again, _ = invoke(stack, bodies)
    assert again == {"batchItemFailures": []}
    assert everything(stack) == state
    assert len(stack.bus_events()) == events_before  # seen message ids are no-ops: nothing announced again


def test_events_reach_the_bus_and_replies_the_down_topic_of_the_gateways_edge(stack: Stack) -> None:
    payload, _ = invoke(stack, [publish([*GOOD, "12;255;3;0;6;0", "255;255;3;0;3;"])])
    assert payload == {"batchItemFailures": []}
    sent = stack.sent_downlinks()
    assert ("gw1", "12;255;3;0;6;M") in sent
    assert ("gw1", "255;255;3;0;4;1") in sent
    detail_types = {e["detail-type"] for e in stack.bus_events()}
    assert {"field.created", "node.created", "source.created", "gateway.created"} <= detail_types


def test_a_second_edge_cannot_speak_for_a_gateway_the_first_one_owns(stack: Stack) -> None:
    payload, _ = invoke(stack, [publish(GOOD, thing="site-a")])
    assert payload == {"batchItemFailures": []}
    gateway = stack.services.repository.get(Kind.GATEWAY, "gw1")
    assert gateway is not None and (gateway["edgeId"], gateway["cloudConfig"]) == ("site-a", False)

    forged = publish(["12;1;1;0;0;99.9"], seq0=50, t0=T0 + 1000, thing="site-b")
    theirs = publish(["12;1;1;0;0;23.5"], seq0=60, t0=T0 + 2000, thing="site-a")
    payload, _ = invoke(stack, [forged, theirs])

    assert payload == {"batchItemFailures": []}, "refused, not retried"
    field = stack.services.repository.get(Kind.FIELD, "gw1.12.1.V_TEMP")
    assert field is not None and field["current"]["value"] == 23.5
    assert (stack.services.repository.get(Kind.GATEWAY, "gw1") or {})["edgeId"] == "site-a"
    outcome = stack.services.ingest.run([{"messageId": "again", "body": forged}])
    assert outcome.refused_messages == 1 and outcome.refused[0].owner == "site-a" and not outcome.failed_records
