"""Forward payload end to end: a device's new value travels to a field on another gateway as a downlink.

Once as Lambda runs it (the ``forward_payload`` function invoked with an EventBridge event through the Chalice
test client) and once as the local stack runs it (ingest → processor → in-process bus → the same function).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.adapters.metrics_none import NoMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.bootstrap import Container
from chalicelib.core.automation.models import ForwardPayload
from chalicelib.core.identity import ingest_body
from chalicelib.core.model import FieldModel, Gateway, Kind, MetricType, event
from chalicelib.core.ports import bus_event
from chalicelib.core.processor import Processor
from chalicelib.functions.entries import LambdaEntries
from chalicelib.functions.forward import ForwardPayloadFunction
from chalicelib.functions.ingest import Ingest
from chalicelib.settings import Settings
from mycontroller_protocol.envelope import Envelope, encode_publish

T0 = 1_767_225_600_000


def seed(repository: MemoryRepository) -> None:
    for gateway in ("porch", "hall"):
        repository.put(Kind.GATEWAY, Gateway(id=gateway, provider={"type": "mysensors_v2"}).record())
    destination = FieldModel(gateway_id="hall", node_id="2", source_id="3", field_id="V_STATUS",
                             metric_type=MetricType.BINARY).record()
    repository.put(Kind.FIELD, destination)
    mapping = ForwardPayload(id="porch-to-hall", src_field_id="field:porch.1.1.V_STATUS",
                             dst_field_id="field:hall.2.3.V_STATUS")
    repository.put(Kind.FORWARD_PAYLOAD, mapping.record())
    disabled = ForwardPayload(id="off", enabled=False, src_field_id="field:porch.1.1.V_STATUS",
                              dst_field_id="field:hall.2.3.V_STATUS")
    repository.put(Kind.FORWARD_PAYLOAD, disabled.record())


@pytest.fixture
def services() -> Iterator[Container]:
    repository = MemoryRepository(None)
    seed(repository)
    container = Container(Settings(), repository=repository, metrics=NoMetricStore(), bus=LocalEventBus("sync"),
                          downlink=LocalDownlink())
    try:
        yield container
    finally:
        container.close()


def switched_on_event() -> dict[str, Any]:
    source = FieldModel(gateway_id="porch", node_id="1", source_id="1", field_id="V_STATUS",
                        metric_type=MetricType.BINARY).record()
    source["current"] = {"value": True, "isReceived": True, "timestamp": "2026-01-01T00:00:00.000Z", "sequence": 1}
    domain_event = bus_event(event("updated", Kind.FIELD, source))
    return {"source": domain_event.source, "detail-type": domain_event.detail_type, "detail": domain_event.detail}


def test_lambda_forwards_a_field_update_to_the_destination_gateway(services: Container) -> None:
    response = LambdaEntries(services).forward_payload(switched_on_event())
    assert response == {"sent": 1, "failed": []}
    downlink = services.downlink
    assert isinstance(downlink, LocalDownlink)
    assert [(d.gateway_id, d.raw) for d in downlink.sent] == [("hall", "2;3;1;0;2;1")]


def test_other_events_forward_nothing(services: Container) -> None:
    function = ForwardPayloadFunction(services.repository, services.downlink)
    detail = switched_on_event()["detail"]
    assert function.handle({**detail, "entityId": "porch.9.9.V_TEMP"}).downlinks == []
    assert function.handle({**detail, "type": "created"}).downlinks == []


def test_local_stack_path_from_device_message_to_downlink(services: Container) -> None:
    ForwardPayloadFunction(services.repository, services.downlink).subscribe(services.bus)
    ingest = Ingest(Processor(services.repository, services.metrics), services.bus, services.downlink)
    body = ingest_body("local", encode_publish([
        Envelope("porch", "mysensors_v2", T0, 1, "porch-1", "1;1;0;0;3;Porch light"),
        Envelope("porch", "mysensors_v2", T0 + 1, 2, "porch-2", "1;1;1;0;2;0"),
    ]))
    ingest.handle({"Records": [{"messageId": "m1", "body": body}]})  # created: nothing forwarded yet
    body = ingest_body("local", encode_publish([Envelope("porch", "mysensors_v2", T0 + 1000, 3, "porch-3",
                                                         "1;1;1;0;2;1")]))
    response = ingest.handle({"Records": [{"messageId": "m2", "body": body}]})
    assert response == {"batchItemFailures": []}
    downlink = services.downlink
    assert isinstance(downlink, LocalDownlink)
    assert [(d.gateway_id, d.raw) for d in downlink.sent] == [("hall", "2;3;1;0;2;1")]
