"""Serverless cost benchmark: what 1,000 device messages cost in AWS calls, through the real ingest function.

The same MySensors traffic as ``bench/ingest.py`` (100 nodes x 5 sensors), packed by the edge into publishes
of at most 5 KB, delivered by SQS ten publishes an invocation, run through the ingest function with the AWS
adapters under moto: DynamoDB repository, EventBridge bus, iot-data downlinks. The adapters count their calls.

The bus's consumers (forward payload, tasks, websocket notify) are counted from the events the ingest put on the
bus: each rule's pattern (``infra.template.BUS_CONSUMERS``, matched by ``core/event_pattern.py``) picks its events,
which its SQS queue hands to the function in batches of the mapping's ``BatchSize``: assumed full, as they are
when traffic fills the batching window (slower traffic means smaller batches, at worst one event each).

Prints, as its last line:
``cost per 1000 msgs: <L> Lambda invocations (ingest <I>, tasks <T>, forward <F>, websocket <N>), <W> DynamoDB
write units (<P> put + <B> batch calls), <E> EventBridge entries (<C> PutEvents calls), <S> SQS requests for the
bus fan-out (<SM> SendMessage + <R> ReceiveMessage + <DM> DeleteMessageBatch), <D> iot-data publishes``
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

import boto3
from moto import mock_aws

from bench.ingest import PUBLISHES_PER_BATCH, pack, presentation_lines, traffic_lines
from chalicelib.adapters.bus_eventbridge import EventBridgeBus
from chalicelib.adapters.downlink_iotdata import IotDataDownlink
from chalicelib.adapters.metrics_none import NoMetricStore
from chalicelib.adapters.repository_dynamodb import DynamoDBRepository, create_table
from chalicelib.core.event_pattern import compile_pattern
from chalicelib.core.identity import GatewayOwners, ingest_body
from chalicelib.core.ports import BusEvent
from chalicelib.core.processor import Processor
from chalicelib.functions.ingest import Ingest
from infra.template import BUS_CONSUMERS

CONSUMER_LABELS = {"Tasks": "tasks", "ForwardPayload": "forward", "WebsocketNotify": "websocket"}
SQS_MESSAGES_PER_CALL = 10
"""A ReceiveMessage returns, and a DeleteMessageBatch deletes, at most ten messages."""


class RecordingBus(EventBridgeBus):
    """The EventBridge adapter, keeping what was published so the rules' patterns can be applied to it."""

    def __init__(self, bus_name: str, client: object) -> None:
        super().__init__(bus_name, client=client)
        self.published: list[BusEvent] = []

    def publish(self, events: Sequence[BusEvent]) -> None:
        self.published.extend(events)
        super().publish(events)


@dataclass(slots=True)
class Fanout:
    """What one bus consumer costs for the events it matched: full batches (see the module docstring)."""

    events: int
    invocations: int
    receives: int
    deletes: int


def fanout(published: Sequence[BusEvent]) -> dict[str, Fanout]:
    """Per consumer: the events its rule matches, the batched invocations, and its queue's SQS calls (EventBridge
    sends each event with its own SendMessage; Lambda's pollers receive and delete ten at a time; idle long polls
    are a fixed cost per hour, not per message, and are not counted)."""
    documents = [{"source": e.source, "detail-type": e.detail_type, "detail": e.detail} for e in published]
    result = {}
    for name, consumer in BUS_CONSUMERS.items():
        matcher = compile_pattern(consumer["pattern"])
        matched = sum(1 for document in documents if matcher(document))
        batch_size = int(consumer["batch_size"])
        sizes = [min(batch_size, matched - start) for start in range(0, matched, batch_size)]
        calls = sum(math.ceil(size / SQS_MESSAGES_PER_CALL) for size in sizes)
        result[name] = Fanout(matched, len(sizes), calls, calls)
    return result


def sqs_event(bodies: list[str], batch: int) -> dict[str, object]:
    """The ingest queue's records of these publishes of edge ``bench-edge``, as the IoT rule writes them."""
    return {"Records": [{"messageId": f"b{batch}-{i}", "receiptHandle": f"b{batch}-{i}",
                         "body": ingest_body("bench-edge", body),
                         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
                         "awsRegion": "us-east-1"} for i, body in enumerate(bodies)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    with mock_aws(), tempfile.TemporaryDirectory():
        create_table("mycontroller-bench")
        events = boto3.client("events")
        events.create_event_bus(Name="mycontroller")
        repository = DynamoDBRepository("mycontroller-bench")
        bus = RecordingBus("mycontroller", client=events)
        owners = GatewayOwners(repository)
        downlink = IotDataDownlink(client=boto3.client("iot-data"), edges=owners.edges_of)
        ingest = Ingest(Processor(repository, NoMetricStore()), bus, downlink, owners)
        t0 = int(time.time() * 1000)
        setup = pack(presentation_lines(args.nodes), "bench", t0, 1)
        for index in range(0, len(setup), PUBLISHES_PER_BATCH):
            ingest.handle(sqs_event(setup[index:index + PUBLISHES_PER_BATCH], -index - 1))
        for counter in (repository.calls, bus.calls, downlink.calls):
            counter.clear()
        bus.published.clear()
        lines = traffic_lines(args.nodes, args.messages, random.Random(2))
        publishes = pack(lines, "bench", t0 + 1_000_000, 1_000_000)
        invocations = 0
        for index in range(0, len(publishes), PUBLISHES_PER_BATCH):
            response = ingest.handle(sqs_event(publishes[index:index + PUBLISHES_PER_BATCH], index))
            assert response == {"batchItemFailures": []}, response
            invocations += 1
    per = 1000 / args.messages
    repo, ev, dl = repository.calls, bus.calls, downlink.calls
    consumers = fanout(bus.published)
    print(f"messages {args.messages}, publishes {len(publishes)}, invocations {invocations}; "
          f"dynamodb {dict(repo)}; eventbridge {dict(ev)}; iot-data {dict(dl)}")
    print("bus consumers: " + "; ".join(
        f"{CONSUMER_LABELS.get(name, name)} {f.events} events in {f.invocations} batches of up to "
        f"{BUS_CONSUMERS[name]['batch_size']}" for name, f in consumers.items())
        + " (assumed full: at this traffic the batching window, or for websocket the messages waiting at each poll,"
        " fills them; slower traffic means smaller batches, at worst one event each)")
    ordered = sorted(consumers.items(), key=lambda item: list(CONSUMER_LABELS).index(item[0])
                     if item[0] in CONSUMER_LABELS else len(CONSUMER_LABELS))
    lambdas = invocations + sum(f.invocations for f in consumers.values())
    split = ", ".join([f"ingest {invocations * per:.1f}"]
                      + [f"{CONSUMER_LABELS.get(name, name)} {f.invocations * per:.1f}" for name, f in ordered])
    sends = sum(f.events for f in consumers.values())
    receives = sum(f.receives for f in consumers.values())
    deletes = sum(f.deletes for f in consumers.values())
    print(f"cost per 1000 msgs: {lambdas * per:.1f} Lambda invocations ({split}), "
          f"{repo['write_units'] * per:.0f} DynamoDB write units ({repo['put'] * per:.0f} put + "
          f"{repo['batch_write'] * per:.0f} batch calls), {ev['entries'] * per:.0f} EventBridge entries "
          f"({ev['put_events'] * per:.0f} PutEvents calls), {(sends + receives + deletes) * per:.0f} SQS requests "
          f"for the bus fan-out ({sends * per:.0f} SendMessage + {receives * per:.0f} ReceiveMessage + "
          f"{deletes * per:.0f} DeleteMessageBatch), {dl['publish'] * per:.1f} iot-data publishes")


if __name__ == "__main__":
    main()
