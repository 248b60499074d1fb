"""The bus consumers as Lambda runs them behind their SQS queues: the ``forward_payload``, ``tasks`` and
``websocket_notify`` entries (``LambdaEntries``, what ``app.py`` hands each trigger to) invoked with SQS batches
whose record bodies are the EventBridge events the rules deliver, over real in-memory adapters. A malformed record
fails alone; the direct EventBridge form still answers as before."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

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
from mycontroller_protocol.envelope import Downlink

TEMP_ID = "gw.1.1.V_TEMP"


class ListQueue:
    """A ``HandlerQueue`` that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = False

    def send(self, requests: Sequence[dict[str, Any]]) -> None:
        if self.fail:
            raise ConnectionError("handler queue unavailable")
        self.sent.extend(requests)


class CountingStore(MemoryConnectionStore):
    """Counts reads of all connections (what notify does once per index build); can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.fail = False

    def list_all(self) -> list[dict[str, Any]]:
        self.reads += 1
        if self.fail:
            raise ConnectionError("connections table unavailable")
        return super().list_all()


class Posts:
    """A ``Notifier`` that keeps what it posted."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []

    def post(self, connection_id: str, data: bytes) -> None:
        self.posted.append((connection_id, json.loads(data)))


class Stack:
    def __init__(self, services: Container, queue: ListQueue, store: CountingStore, posts: Posts) -> None:
        self.entries = LambdaEntries(services)
        self.services = services
        self.queue = queue
        self.store = store
        self.posts = posts

    def invoke(self, name: str, payload: Any) -> Any:
        return getattr(self.entries, name)(payload)

    @property
    def downlinks(self) -> list[Downlink]:
        downlink = self.services.downlink
        assert isinstance(downlink, LocalDownlink)
        return downlink.sent


@pytest.fixture
def stack() -> Iterator[Stack]:
    repository = MemoryRepository(None)
    for gateway in ("porch", "hall", "gw"):
        repository.put(Kind.GATEWAY, Gateway(id=gateway, provider={"type": "mysensors_v2"}).record())
    repository.put(Kind.FIELD, FieldModel(gateway_id="hall", node_id="2", source_id="3", field_id="V_STATUS",
                                          metric_type=MetricType.BINARY).record())
    repository.put(Kind.FORWARD_PAYLOAD, ForwardPayload(id="porch-to-hall", src_field_id="field:porch.1.1.V_STATUS",
                                                        dst_field_id="field:hall.2.3.V_STATUS").record())
    repository.put(Kind.TASK, threshold_task())
    queue = ListQueue()
    store, posts = CountingStore(), Posts()
    services = Container(Settings(), repository=repository, metrics=NoMetricStore(), bus=LocalEventBus("sync"),
                         downlink=LocalDownlink(), handler_queue=queue, schedules=None,
                         websocket=WebsocketService(store, posts, authenticate=lambda token: {"sub": token}))
    try:
        yield Stack(services, queue, store, posts)
    finally:
        services.close()


def threshold_task() -> Record:
    return {
        "id": "too-hot", "ignoreDuplicate": True,
        "eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"], "filters": {"id": TEMP_ID}},
        "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
            {"variable": "entity.current.value", "operator": "gt", "value": 25}]}},
        "handlers": ["hook"],
        "handlerParameters": {"alert": {"type": "webhook", "body": {"text": "{{ entity.current.value }}"}}},
    }


_sequence = iter(range(1, 1_000_000))


def field_event(field_id: str, value: Any) -> dict[str, Any]:
    """A field event as the EventBridge rule delivers it (the body of the queue's SQS record)."""
    gateway, node, source, key = field_id.split(".")
    record = FieldModel(gateway_id=gateway, node_id=node, source_id=source, field_id=key,
                        metric_type=MetricType.BINARY if key == "V_STATUS" else MetricType.GAUGE_FLOAT).record()
    record["current"] = {"value": value, "isReceived": True, "sequence": next(_sequence),
                         "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    published = bus_event(event("updated", Kind.FIELD, record))
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": published.detail_type,
            "source": published.source, "account": "123456789012",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [], "detail": published.detail}


def sqs_batch(*bodies: dict[str, Any] | str, age_s: float = 0.0) -> dict[str, Any]:
    """An SQS event source batch; record ``m<i>`` carries the i-th body (a string is sent as it is), put on the
    queue ``age_s`` ago."""
    sent = str(int((time.time() - age_s) * 1000))
    return {"Records": [{
        "messageId": f"m{index}", "receiptHandle": f"r{index}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:mycontroller-TasksQueue", "awsRegion": "us-east-1",
    } for index, body in enumerate(bodies)]}


def failed(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


# --------------------------------------------------------------------------------------------- forward payload


def test_forward_payload_handles_a_batch_and_fails_only_the_malformed_record(stack: Stack) -> None:
    response = stack.invoke("forward_payload", sqs_batch(
        field_event("porch.1.1.V_STATUS", True), "{not json", {"source": "mycontroller", "detail": "text"},
        field_event("porch.1.1.V_STATUS", False), field_event("gw.1.1.V_TEMP", 20.5)))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert [(d.gateway_id, d.raw) for d in stack.downlinks] == [("hall", "2;3;1;0;2;1"), ("hall", "2;3;1;0;2;0")]


def test_forward_payload_fails_only_the_record_whose_downlink_failed(stack: Stack,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    downlink = stack.services.downlink
    assert isinstance(downlink, LocalDownlink)
    send = downlink.send
    calls = iter(range(100))

    def flaky(downlinks: Sequence[Downlink]) -> None:
        if next(calls) == 1:
            raise ConnectionError("iot-data unavailable")
        send(downlinks)

    monkeypatch.setattr(downlink, "send", flaky)
    response = stack.invoke("forward_payload", sqs_batch(*(field_event("porch.1.1.V_STATUS", v) for v in (1, 0, 1))))
    assert failed(response) == ["m1"]
    assert [d.raw for d in stack.downlinks] == ["2;3;1;0;2;1", "2;3;1;0;2;1"]


def test_forward_payload_still_takes_a_single_eventbridge_event(stack: Stack) -> None:
    assert stack.invoke("forward_payload", field_event("porch.1.1.V_STATUS", True)) == {"sent": 1, "failed": []}
    assert stack.invoke("forward_payload", {"detail": "not an object"}) == {"sent": 0, "failed": []}


# --------------------------------------------------------------------------------------------- tasks


def test_tasks_evaluate_a_batch_in_its_order_and_fail_only_the_malformed_record(stack: Stack) -> None:
    batch = sqs_batch(field_event(TEMP_ID, 21.0), {"source": "mycontroller", "detail-type": "field.updated"},
                      field_event(TEMP_ID, 27.5), field_event(TEMP_ID, 28.0), field_event("gw.1.1.V_HUM", 99))
    response = stack.invoke("tasks", batch)
    assert failed(response) == ["m1"]
    task = stack.services.repository.get(Kind.TASK, "too-hot")
    assert task is not None
    # in order: below, the rise (notifies), still above (ignoreDuplicate: no second notification)
    assert [item["triggered"] for item in task["state"]["executionsHistory"]] == [False, True, True]
    assert [request["parameters"]["alert"]["body"] for request in stack.queue.sent] == [{"text": "27.5"}]
    # SQS redelivers the whole batch: trigger ids derive from the events, so nothing runs twice
    assert failed(stack.invoke("tasks", batch)) == ["m1"]
    task = stack.services.repository.get(Kind.TASK, "too-hot")
    assert task is not None and task["state"]["executedCount"] == 3 and len(stack.queue.sent) == 1


def test_tasks_retry_a_record_whose_evaluation_failed(stack: Stack) -> None:
    stack.queue.fail = True
    hot = field_event(TEMP_ID, 30.0)
    response = stack.invoke("tasks", sqs_batch(field_event(TEMP_ID, 20.0), hot))
    assert failed(response) == ["m1"]  # 20.0 queues nothing; 30.0 could not queue its handler
    assert stack.services.automation.handler_queue is stack.queue and stack.queue.sent == []
    stack.queue.fail = False
    assert failed(stack.invoke("tasks", sqs_batch(hot))) == []  # the retry
    assert [request["parameters"]["alert"]["body"] for request in stack.queue.sent] == [{"text": "30.0"}]


def test_tasks_still_take_a_single_eventbridge_event(stack: Stack) -> None:
    assert stack.invoke("tasks", field_event(TEMP_ID, 26.0)) == {"evaluated": ["too-hot"]}
    assert len(stack.queue.sent) == 1
    assert stack.invoke("tasks", {}) == {"evaluated": []}


# --------------------------------------------------------------------------------------------- websocket notify


def subscribe(stack: Stack, connection_id: str, quick_id: str) -> None:
    service = stack.services.websocket
    assert service.connect(connection_id, query={"access_token": connection_id}) is not None
    assert service.message(connection_id, json.dumps({"type": "subscribe", "id": "s",
                                                      "filter": {"quickIds": [quick_id]}}))["type"] == "subscribed"


def test_websocket_notify_pushes_a_batch_with_one_connections_read(stack: Stack) -> None:
    subscribe(stack, "c-temp", f"field:{TEMP_ID}")
    subscribe(stack, "c-node", "node:gw.1")
    stack.posts.posted.clear()
    reads = stack.store.reads
    response = stack.invoke("websocket_notify", sqs_batch(
        field_event(TEMP_ID, 21.0), "[]", field_event("gw.1.1.V_HUM", 40), field_event(TEMP_ID, 22.0),
        field_event("gw.2.1.V_TEMP", 5)))
    assert failed(response) == ["m1"]
    assert stack.store.reads == reads + 1  # one read of the connections for the whole batch
    pushed = [(c, m["data"]["entityId"], m["data"]["entity"]["current"]["value"]) for c, m in stack.posts.posted]
    assert sorted(pushed) == sorted([("c-temp", TEMP_ID, 21.0), ("c-node", TEMP_ID, 21.0),
                                     ("c-node", "gw.1.1.V_HUM", 40), ("c-temp", TEMP_ID, 22.0),
                                     ("c-node", TEMP_ID, 22.0)])
    assert [value for c, _, value in pushed if c == "c-temp"] == [21.0, 22.0]  # batch order per client


def test_websocket_notify_retries_the_whole_batch_when_the_connections_cannot_be_read(stack: Stack) -> None:
    subscribe(stack, "c-temp", f"field:{TEMP_ID}")
    stack.store.fail = True
    response = stack.invoke("websocket_notify", sqs_batch(field_event(TEMP_ID, 1.0), "oops",
                                                          field_event(TEMP_ID, 2.0)))
    assert failed(response) == ["m0", "m1", "m2"]
    stack.store.fail = False
    assert failed(stack.invoke("websocket_notify", sqs_batch(field_event(TEMP_ID, 3.0)))) == []
    assert [m["data"]["entity"]["current"]["value"] for _, m in stack.posts.posted if m["type"] == "event"] == [3.0]


def test_websocket_notify_drops_events_too_old_to_push(stack: Stack) -> None:
    subscribe(stack, "c-temp", f"field:{TEMP_ID}")
    stale = sqs_batch(field_event(TEMP_ID, 1.0), age_s=361)  # redelivered after a failed batch's visibility timeout
    assert failed(stack.invoke("websocket_notify", stale)) == []  # acknowledged, not pushed late
    assert failed(stack.invoke("websocket_notify", sqs_batch(field_event(TEMP_ID, 2.0), age_s=5))) == []
    assert [m["data"]["entity"]["current"]["value"] for _, m in stack.posts.posted if m["type"] == "event"] == [2.0]


def test_websocket_notify_still_takes_a_single_eventbridge_event(stack: Stack) -> None:
    subscribe(stack, "c-temp", f"field:{TEMP_ID}")
    assert stack.invoke("websocket_notify", field_event(TEMP_ID, 23.0)) == {"posted": 1, "gone": [], "failed": 0}
    assert stack.invoke("websocket_notify", {"detail": "not an object"})["posted"] == 0


def test_an_empty_batch_is_answered(stack: Stack) -> None:
    for name in ("forward_payload", "tasks", "websocket_notify"):
        assert stack.invoke(name, {"Records": []}) == {"batchItemFailures": []}


# --------------------------------------------------------------------------------------------- packs, as rules invoke


def packed(*events: dict[str, Any], age_s: float = 0.0) -> dict[str, Any]:
    """The EventBridge event a rule invokes its function with: the events' details in one pack."""
    from chalicelib.core.bus_packing import pack_events
    from chalicelib.core.ports import BusEvent

    [pack] = pack_events([BusEvent(e["source"], e["detail-type"], e["detail"]) for e in events], 200_000)
    put = datetime.fromtimestamp(time.time() - age_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": pack.detail_type, "source": pack.source,
            "account": "123456789012", "time": put, "region": "us-east-1", "resources": [],
            "detail": json.loads(pack.detail_json())}


def node_event() -> dict[str, Any]:
    published = bus_event(event("updated", Kind.NODE, {"id": "gw.1", "gatewayId": "gw", "nodeId": "1"}))
    return {"source": published.source, "detail-type": published.detail_type, "detail": published.detail}


def test_a_pack_reaches_each_consumer_as_the_events_its_pattern_takes(stack: Stack) -> None:
    subscribe(stack, "c-node", "node:gw.1")
    stack.posts.posted.clear()
    pack = packed(node_event(), field_event("porch.1.1.V_STATUS", True), field_event(TEMP_ID, 26.0))
    assert stack.invoke("forward_payload", pack) == {"sent": 1, "failed": []}  # the field updates only
    assert [(d.gateway_id, d.raw) for d in stack.downlinks] == [("hall", "2;3;1;0;2;1")]
    assert stack.invoke("tasks", pack) == {"evaluated": ["too-hot"]}
    assert len(stack.queue.sent) == 1
    assert stack.invoke("websocket_notify", pack) == {"posted": 2, "gone": [], "failed": 0}
    assert sorted(m["data"]["entityId"] for _, m in stack.posts.posted) == ["gw.1", TEMP_ID]


def test_a_pack_whose_evaluation_failed_raises_so_lambda_retries_it(stack: Stack) -> None:
    from chalicelib.functions.bus_consumers import RetryRecord

    stack.queue.fail = True
    with pytest.raises(RetryRecord):
        stack.invoke("tasks", packed(field_event(TEMP_ID, 20.0), field_event(TEMP_ID, 30.0)))
    stack.queue.fail = False
    assert stack.invoke("tasks", packed(field_event(TEMP_ID, 30.0))) == {"evaluated": ["too-hot"]}  # the retry
    assert [request["parameters"]["alert"]["body"] for request in stack.queue.sent] == [{"text": "30.0"}]


def test_a_retried_pack_too_old_to_push_is_dropped(stack: Stack) -> None:
    subscribe(stack, "c-temp", f"field:{TEMP_ID}")
    stack.posts.posted.clear()
    assert stack.invoke("websocket_notify", packed(field_event(TEMP_ID, 1.0), age_s=120))["posted"] == 0
    assert stack.invoke("websocket_notify", packed(field_event(TEMP_ID, 2.0), age_s=5))["posted"] == 1
    assert [m["data"]["entity"]["current"]["value"] for _, m in stack.posts.posted] == [2.0]


def test_a_dead_letter_redriven_as_an_sqs_record_is_a_pack_too(stack: Stack) -> None:
    pack = packed(node_event(), field_event("porch.1.1.V_STATUS", False))
    assert failed(stack.invoke("forward_payload", sqs_batch(pack, "not json"))) == ["m1"]
    assert [d.raw for d in stack.downlinks] == ["2;3;1;0;2;0"]
