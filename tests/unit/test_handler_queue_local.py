"""The local handler queue: SQS-shaped batches to its consumer, delays held back like ``DelaySeconds``."""

from __future__ import annotations

import json
import time
from typing import Any

from chalicelib.adapters.handler_queue_local import LocalHandlerQueue


def test_requests_arrive_as_sqs_records_and_delayed_ones_later() -> None:
    seen: list[tuple[float, dict[str, Any]]] = []

    def consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for record in event["Records"]:
            assert record["eventSource"] == "aws:sqs" and record["attributes"]["ApproximateReceiveCount"] == "1"
            seen.append((time.monotonic(), json.loads(record["body"])))
        return {"batchItemFailures": []}

    queue = LocalHandlerQueue(consumer)
    queue.start()
    try:
        started = time.monotonic()
        queue.send_delayed([{"handlerId": "later", "triggerId": "t"}], 0.6)
        queue.send([{"handlerId": "now", "triggerId": "t"}])
        assert queue.drain(5)
    finally:
        queue.stop(2)
    assert [body["handlerId"] for _, body in seen] == ["now", "later"]
    assert seen[1][0] - started >= 0.6
