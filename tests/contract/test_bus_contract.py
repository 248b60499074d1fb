"""The event bus contract: what a publisher may rely on, whichever bus carries the events.

Events reach every subscriber whose EventBridge-style pattern matches them, with their source, detail-type and
JSON detail intact, and nobody else; a publish of many events delivers each of them. Subscribers are the local
bus's subscriptions or, in AWS, EventBridge rules (here with an SQS target, as ``infra/`` declares them), so
the same patterns are matched by ``core.event_pattern`` locally and by EventBridge (moto) in AWS.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core.model import event as domain_event
from chalicelib.core.ports import EVENT_SOURCE, BusEvent, bus_event
from tests.contract.harnesses import BusHarness


def field_updated(field_id: str, value: Any, **entity: Any) -> BusEvent:
    return bus_event(domain_event("updated", "field", {"id": field_id, "current": {"value": value}, **entity}))


def entity_ids(documents: list[dict[str, Any]]) -> list[str]:
    return sorted(document["detail"]["entityId"] for document in documents)


def test_a_published_event_reaches_a_subscriber_intact(bus: BusHarness) -> None:
    received = bus.tap({"source": [EVENT_SOURCE]})
    event = field_updated("gw1.1.2.V_TEMP", 21.5, unit="°C", labels={"room": "attic", "tags": [1, None, "x"]})

    bus.bus.publish([event])

    assert received() == [{"source": EVENT_SOURCE, "detail-type": "field.updated", "detail": event.detail}]
    assert event.detail["entity"]["unit"] == "°C"  # non-ASCII text travels as it is


def test_publishing_nothing_delivers_nothing(bus: BusHarness) -> None:
    received = bus.tap({"source": [EVENT_SOURCE]})

    bus.bus.publish([])

    assert received() == []


def test_every_event_of_a_large_publish_is_delivered_once(bus: BusHarness) -> None:
    received = bus.tap({"source": [EVENT_SOURCE]})
    events = [field_updated(f"gw1.1.{i}.V_TEMP", i) for i in range(37)]  # several PutEvents requests in AWS

    bus.bus.publish(events)

    assert entity_ids(received()) == sorted(f"gw1.1.{i}.V_TEMP" for i in range(37))


def test_each_subscriber_gets_its_own_copy(bus: BusHarness) -> None:
    everything = bus.tap({"source": [EVENT_SOURCE]})
    fields = bus.tap({"detail-type": ["field.updated"]})

    bus.bus.publish([field_updated("gw1.1.1.a", 1), bus_event(domain_event("updated", "node", {"id": "gw1.1"}))])

    assert entity_ids(everything()) == ["gw1.1", "gw1.1.1.a"]
    assert entity_ids(fields()) == ["gw1.1.1.a"]


NODE = bus_event(domain_event("updated", "node", {"id": "gw1.7", "labels": {"room": "kitchen"}}))
DELETED = bus_event(domain_event("deleted", "field", {"id": "gw1.7.1.V_HUM"}))
WARM = field_updated("gw1.7.1.V_TEMP", 25.5, labels={"room": "kitchen"})
COLD = field_updated("gw2.3.1.V_TEMP", -4, labels={"room": "garden"})
TEXT = field_updated("gw2.3.2.V_TEXT", "on")
FOREIGN = BusEvent("someone.else", "field.updated", {"entityId": "gw9.9.9.x", "entity": {"id": "gw9.9.9.x"}})
ALL = [NODE, DELETED, WARM, COLD, TEXT, FOREIGN]


@pytest.mark.parametrize(("pattern", "expected"), [
    ({"source": [EVENT_SOURCE]}, ["gw1.7", "gw1.7.1.V_HUM", "gw1.7.1.V_TEMP", "gw2.3.1.V_TEMP", "gw2.3.2.V_TEXT"]),
    ({"source": ["someone.else"]}, ["gw9.9.9.x"]),
    ({"detail-type": ["field.updated"], "source": [EVENT_SOURCE]},
     ["gw1.7.1.V_TEMP", "gw2.3.1.V_TEMP", "gw2.3.2.V_TEXT"]),
    ({"detail-type": ["field.deleted", "node.updated"]}, ["gw1.7", "gw1.7.1.V_HUM"]),
    ({"detail-type": [{"prefix": "field."}], "source": [EVENT_SOURCE]},
     ["gw1.7.1.V_HUM", "gw1.7.1.V_TEMP", "gw2.3.1.V_TEMP", "gw2.3.2.V_TEXT"]),
    ({"detail": {"entityId": [{"prefix": "gw2."}]}}, ["gw2.3.1.V_TEMP", "gw2.3.2.V_TEXT"]),
    ({"detail": {"entity": {"labels": {"room": ["kitchen"]}}}}, ["gw1.7", "gw1.7.1.V_TEMP"]),
    ({"detail-type": ["field.updated"], "detail": {"entity": {"current": {"value": [{"numeric": [">", 0]}]}}}},
     ["gw1.7.1.V_TEMP"]),
    ({"detail": {"entity": {"current": {"value": [{"numeric": ["<=", 0]}]}}}}, ["gw2.3.1.V_TEMP"]),
    ({"detail": {"entity": {"current": {"value": ["on", 25.5]}}}}, ["gw1.7.1.V_TEMP", "gw2.3.2.V_TEXT"]),
    ({"source": [EVENT_SOURCE], "detail-type": [{"anything-but": ["field.updated"]}]}, ["gw1.7", "gw1.7.1.V_HUM"]),
    ({"detail": {"entity": {"labels": {"room": [{"exists": True}]}}}}, ["gw1.7", "gw1.7.1.V_TEMP", "gw2.3.1.V_TEMP"]),
    ({"source": [EVENT_SOURCE], "detail": {"entity": {"labels": {"room": [{"exists": False}]}}}},
     ["gw1.7.1.V_HUM", "gw2.3.2.V_TEXT"]),
    ({"detail-type": ["gateway.updated"]}, []),
])
def test_patterns_select_the_events_eventbridge_would(bus: BusHarness, pattern: dict[str, Any],
                                                      expected: list[str]) -> None:
    received = bus.tap(pattern)

    bus.bus.publish(ALL)

    assert entity_ids(received()) == expected


def test_close_is_idempotent(bus: BusHarness) -> None:
    received = bus.tap({"source": [EVENT_SOURCE]})
    bus.bus.publish([field_updated("gw1.1.1.a", 1)])
    assert entity_ids(received()) == ["gw1.1.1.a"]

    bus.bus.close()
    bus.bus.close()
