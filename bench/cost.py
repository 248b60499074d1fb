"""Serverless cost benchmark: what 1,000 device messages cost in AWS calls, through the real ingest function.

The same MySensors traffic as ``bench/ingest.py`` (100 nodes x 5 sensors), packed by the edge into publishes
of at most 5 KB, delivered by SQS ten publishes an invocation, run through the ingest function with the AWS
adapters under moto: DynamoDB repository, EventBridge bus, iot-data downlinks. The adapters count their calls.

Prints, as its last line:
``cost per 1000 msgs: <L> Lambda invocations, <W> DynamoDB write units (<P> put + <B> batch calls),
<E> EventBridge entries (<C> PutEvents calls), <D> iot-data publishes``
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
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
from chalicelib.core.processor import Processor
from chalicelib.ingest import Ingest


def sqs_event(bodies: list[str], batch: int) -> dict[str, object]:
    return {"Records": [{"messageId": f"b{batch}-{i}", "receiptHandle": f"b{batch}-{i}", "body": body,
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
        bus = EventBridgeBus("mycontroller", client=events)
        downlink = IotDataDownlink(client=boto3.client("iot-data"))
        ingest = Ingest(Processor(repository, NoMetricStore()), bus, downlink)
        t0 = int(time.time() * 1000)
        setup = pack(presentation_lines(args.nodes), "bench", t0, 1)
        for index in range(0, len(setup), PUBLISHES_PER_BATCH):
            ingest.handle(sqs_event(setup[index:index + PUBLISHES_PER_BATCH], -index - 1))
        for counter in (repository.calls, bus.calls, downlink.calls):
            counter.clear()
        lines = traffic_lines(args.nodes, args.messages, random.Random(2))
        publishes = pack(lines, "bench", t0 + 1_000_000, 1_000_000)
        invocations = 0
        for index in range(0, len(publishes), PUBLISHES_PER_BATCH):
            response = ingest.handle(sqs_event(publishes[index:index + PUBLISHES_PER_BATCH], index))
            assert response == {"batchItemFailures": []}, response
            invocations += 1
    per = 1000 / args.messages
    repo, ev, dl = repository.calls, bus.calls, downlink.calls
    print(f"messages {args.messages}, publishes {len(publishes)}, invocations {invocations}; "
          f"dynamodb {dict(repo)}; eventbridge {dict(ev)}; iot-data {dict(dl)}")
    print(f"cost per 1000 msgs: {invocations * per:.1f} Lambda invocations, "
          f"{repo['write_units'] * per:.0f} DynamoDB write units ({repo['put'] * per:.0f} put + "
          f"{repo['batch_write'] * per:.0f} batch calls), {ev['entries'] * per:.0f} EventBridge entries "
          f"({ev['put_events'] * per:.0f} PutEvents calls), {dl['publish'] * per:.1f} iot-data publishes")


if __name__ == "__main__":
    main()
