"""The handler queue contract: what tasks and schedules put on the queue reaches its consumer, as sent.

Observed where the handler function reads it: the local queue's consumer (the SQS-shaped event it is called
with), or the SQS queue in AWS (moto, received as the event source mapping would). Delivery is at least once
and unordered in SQS, so requests are compared as collections; a delayed request stays invisible until due.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.core.automation.tasks import HandlerRequest
from tests.contract.harnesses import QueueHarness


def request(handler: str, trigger: str, **parameters: Any) -> dict[str, Any]:
    return HandlerRequest(handler, parameters, trigger, "task:t1").to_dict()


def by_trigger(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(requests, key=lambda item: (item["triggerId"], item["handlerId"]))


def test_a_request_arrives_as_it_was_sent(handler_queue: QueueHarness) -> None:
    sent = request("webhook", "trigger-1", text="Grüße, \"quoted\"\n", nested={"list": [1, 2.5, None, True]})

    handler_queue.queue.send([sent])

    assert handler_queue.received(1, 5.0) == [sent]
    assert set(sent) >= {"handlerId", "parameters", "triggerId", "source"}


def test_every_request_of_a_large_send_arrives(handler_queue: QueueHarness) -> None:
    sent = [request(f"h{i % 3}", f"trigger-{i:02d}", i=i) for i in range(23)]  # more than one SQS batch of ten

    handler_queue.queue.send(sent)

    assert by_trigger(handler_queue.received(23, 5.0)) == by_trigger(sent)


def test_sending_nothing_queues_nothing(handler_queue: QueueHarness) -> None:
    handler_queue.queue.send([])

    assert handler_queue.received(1, 0.3) == []


def test_a_delayed_request_arrives_only_when_due(handler_queue: QueueHarness) -> None:
    later = request("resource", "trigger-later", payload="disable")
    now = request("resource", "trigger-now", payload="enable")
    sent_at = time.monotonic()

    handler_queue.queue.send_delayed([later], 1.0)  # SQS counts whole seconds
    handler_queue.queue.send([now])

    assert handler_queue.received(2, 0.4) == [now], "the delayed request must not arrive early"
    assert by_trigger(handler_queue.received(2, 5.0)) == by_trigger([later, now])
    assert time.monotonic() - sent_at >= 0.9
