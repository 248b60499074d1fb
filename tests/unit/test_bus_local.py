"""The in-process event bus: pattern routing, both delivery modes, failing handlers, retries, drain and close."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from chalicelib.adapters.bus_local import BusClosedError, LocalEventBus
from chalicelib.core.event_pattern import PatternError
from chalicelib.core.model import event as domain_event
from chalicelib.core.ports import BusEvent, EventBus, bus_event


def field_event(field_id: str = "gw1.1.2.V_TEMP", value: Any = 21.5,
                kind: Literal["created", "updated", "deleted"] = "updated") -> BusEvent:
    return bus_event(domain_event(kind, "field", {"id": field_id, "current": {"value": value}}))


def node_event(node_id: str = "gw1.1") -> BusEvent:
    return bus_event(domain_event("updated", "node", {"id": node_id}))


@pytest.fixture(params=["sync", "thread"])
def bus(request: pytest.FixtureRequest) -> Iterator[LocalEventBus]:
    local = LocalEventBus(request.param, backoff_s=0)
    yield local
    local.close(timeout=5)


def settle(bus: LocalEventBus) -> None:
    assert bus.drain(timeout=5), "the bus did not drain"


def test_it_works_through_the_event_bus_port_alone() -> None:
    """Used only through ``EventBus``, as the core uses it: a subscription gets each matching event once (in sync
    mode before ``publish`` returns), others not; after ``close`` a publish is refused and delivers nothing."""
    port: EventBus = LocalEventBus("sync")
    got: list[BusEvent] = []
    port.subscribe("updates", {"detail-type": ["field.updated"]}, got.append)
    wanted = field_event()

    port.publish([wanted, node_event(), field_event(kind="deleted")])
    assert got == [wanted]

    port.close()
    with pytest.raises(BusClosedError):
        port.publish([field_event()])
    assert got == [wanted]


def test_events_reach_matching_subscriptions_only(bus: LocalEventBus) -> None:
    fields: list[BusEvent] = []
    hot: list[BusEvent] = []
    everything: list[BusEvent] = []
    bus.subscribe("fields", {"detail-type": [{"prefix": "field."}]}, fields.append)
    bus.subscribe("hot", {"detail": {"entity": {"current": {"value": [{"numeric": [">", 30]}]}}}}, hot.append)
    bus.subscribe("all", {"source": ["mycontroller"]}, everything.append)
    events = [field_event(value=20), node_event(), field_event("gw1.1.3.V_TEMP", 35)]
    bus.publish(events)
    settle(bus)
    assert fields == [events[0], events[2]]
    assert hot == [events[2]]
    assert everything == events  # in publish order
    assert (bus.published, bus.delivered, bus.failed) == (3, 6, 0)


def test_a_failing_handler_does_not_stop_the_others_or_the_worker(bus: LocalEventBus,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    received: list[str] = []

    def broken(event: BusEvent) -> None:
        raise RuntimeError(f"cannot handle {event.detail['entityId']}")

    bus.subscribe("broken", {"source": ["mycontroller"]}, broken)
    bus.subscribe("good", {"source": ["mycontroller"]}, lambda e: received.append(e.detail["entityId"]))
    with caplog.at_level(logging.WARNING, logger="chalicelib.adapters.bus_local"):
        bus.publish([field_event("gw.1.1.A")])
        bus.publish([field_event("gw.1.1.B")])
        settle(bus)
    assert received == ["gw.1.1.A", "gw.1.1.B"]
    assert bus.failed == 2 and bus.delivered == 2
    assert [(d.subscription, d.event.detail["entityId"], d.attempts) for d in bus.dead_letters] == [
        ("broken", "gw.1.1.A", 4), ("broken", "gw.1.1.B", 4)]
    assert "cannot handle gw.1.1.B" in bus.dead_letters[-1].error
    gave_up = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert len(gave_up) == 2 and "gw.1.1.A" in gave_up[0].getMessage()  # logged with the event
    assert gave_up[0].exc_info is not None


def test_a_flaky_handler_succeeds_on_retry(bus: LocalEventBus) -> None:
    calls: list[str] = []

    def flaky(event: BusEvent) -> None:
        calls.append(event.detail["entityId"])
        if len(calls) < 3:
            raise ConnectionError("websocket gone")

    bus.subscribe("flaky", {"detail-type": ["field.updated"]}, flaky)
    bus.publish([field_event("gw.1.1.A")])
    settle(bus)
    assert calls == ["gw.1.1.A"] * 3
    assert (bus.delivered, bus.failed, bus.retried, bus.dead_letters) == (1, 0, 2, [])


def test_retries_are_bounded_and_configurable() -> None:
    bus = LocalEventBus("sync", retries=1, backoff_s=0)
    attempts: list[int] = []

    def never(event: BusEvent) -> None:
        attempts.append(1)
        raise ZeroDivisionError("no")

    bus.subscribe("never", {"source": ["mycontroller"]}, never)
    bus.publish([field_event()])
    assert len(attempts) == 2 and bus.dead_letters[0].attempts == 2 and "ZeroDivisionError" in bus.dead_letters[0].error


def test_dead_letters_are_bounded_and_keep_the_latest() -> None:
    bus = LocalEventBus("sync", retries=0, max_dead_letters=3)

    def broken(event: BusEvent) -> None:
        raise ZeroDivisionError("no")

    bus.subscribe("broken", {"source": ["mycontroller"]}, broken)
    bus.publish([field_event(f"gw.1.1.F{i}") for i in range(10)])
    assert bus.failed == 10
    assert [d.event.detail["entityId"] for d in bus.dead_letters] == ["gw.1.1.F7", "gw.1.1.F8", "gw.1.1.F9"]


def test_sync_mode_delivers_before_publish_returns() -> None:
    bus = LocalEventBus("sync")
    seen: list[tuple[str, str]] = []
    bus.subscribe("s", {"source": ["mycontroller"]},
                  lambda e: seen.append((e.detail_type, threading.current_thread().name)))
    bus.publish([node_event()])
    assert seen == [("node.updated", threading.current_thread().name)]


def test_thread_mode_delivers_on_the_worker_and_publish_does_not_wait_for_handlers() -> None:
    bus = LocalEventBus("thread")
    release = threading.Event()
    seen: list[str] = []

    def slow(event: BusEvent) -> None:
        release.wait(5)
        seen.append(threading.current_thread().name)

    bus.subscribe("slow", {"source": ["mycontroller"]}, slow)
    bus.publish([node_event(), node_event()])  # returns although the handler is blocked
    assert bus.drain(timeout=0.01) is False
    release.set()
    settle(bus)
    assert seen == ["local-event-bus", "local-event-bus"]
    bus.close()


def test_a_full_queue_makes_publish_wait_and_nothing_is_dropped() -> None:
    bus = LocalEventBus("thread", max_queue=2)
    gate = threading.Event()
    received: list[str] = []

    def gated(event: BusEvent) -> None:
        gate.wait(5)
        received.append(event.detail["entityId"])

    bus.subscribe("gated", {"source": ["mycontroller"]}, gated)
    events = [field_event(f"gw.1.1.F{i}") for i in range(20)]
    publisher = threading.Thread(target=bus.publish, args=(events,))
    publisher.start()
    publisher.join(timeout=0.2)
    assert publisher.is_alive()  # blocked: one event in the handler, two queued, the rest waiting for room
    assert len(received) == 0
    gate.set()
    publisher.join(timeout=5)
    settle(bus)
    assert received == [e.detail["entityId"] for e in events]
    assert bus.published == bus.delivered == 20
    bus.close()


def test_handlers_may_publish_even_when_the_queue_is_full() -> None:
    """A handler runs on the worker, the only one emptying the queue: it must never wait for room."""
    bus = LocalEventBus("thread", max_queue=1)
    echoes: list[str] = []
    bus.subscribe("fanout", {"detail-type": ["field.updated"]},
                  lambda e: bus.publish([node_event(f"gw.{i}") for i in range(5)]))
    bus.subscribe("nodes", {"detail-type": ["node.updated"]}, lambda e: echoes.append(e.detail["entityId"]))
    bus.publish([field_event()])
    settle(bus)
    assert sorted(echoes) == [f"gw.{i}" for i in range(5)]
    bus.close()


def test_drain_waits_for_everything_published(bus: LocalEventBus) -> None:
    count = 0
    lock = threading.Lock()

    def counter(event: BusEvent) -> None:
        nonlocal count
        with lock:
            count += 1

    bus.subscribe("count", {"source": ["mycontroller"]}, counter)
    publishers = [threading.Thread(target=bus.publish, args=([field_event(f"g{t}.1.1.F{i}") for i in range(50)],))
                  for t in range(4)]
    for publisher in publishers:
        publisher.start()
    for publisher in publishers:
        publisher.join(5)
    settle(bus)
    assert count == 200 and bus.stats()["pending"] == 0 and bus.stats()["published"] == 200


def test_close_delivers_what_is_queued_then_refuses_new_events() -> None:
    bus = LocalEventBus("thread")
    received: list[BusEvent] = []
    bus.subscribe("r", {"source": ["mycontroller"]}, received.append)
    bus.publish([node_event(f"gw.{i}") for i in range(100)])
    bus.close(timeout=5)
    assert len(received) == 100
    with pytest.raises(BusClosedError):
        bus.publish([node_event()])
    bus.close()  # idempotent


def test_subscribing_again_under_a_name_replaces_and_unsubscribe_removes(bus: LocalEventBus) -> None:
    first: list[BusEvent] = []
    second: list[BusEvent] = []
    bus.subscribe("ws", {"source": ["mycontroller"]}, first.append)
    bus.subscribe("ws", {"detail-type": ["node.updated"]}, second.append)
    assert bus.subscriptions == ["ws"]
    bus.publish([field_event(), node_event()])
    settle(bus)
    assert first == [] and [e.detail_type for e in second] == ["node.updated"]
    assert bus.unsubscribe("ws") is True and bus.unsubscribe("ws") is False
    bus.publish([node_event()])
    settle(bus)
    assert len(second) == 1


def test_an_invalid_pattern_is_refused_at_subscription() -> None:
    bus = LocalEventBus("sync")
    with pytest.raises(PatternError, match="detail-type"):
        bus.subscribe("bad", {"detail-type": "field.updated"}, lambda e: None)
    assert bus.subscriptions == []


def test_a_subscription_sees_the_eventbridge_shape() -> None:
    """Patterns are written against ``source``/``detail-type``/``detail``, as rules in infra/ are."""
    bus = LocalEventBus("sync")
    got: list[BusEvent] = []
    bus.subscribe("p", {"source": ["mycontroller"], "detail-type": ["field.updated"],
                        "detail": {"entityQuickId": ["field:gw1.1.2.V_TEMP"], "type": ["updated"]}}, got.append)
    bus.publish([field_event(), field_event("gw1.1.2.V_HUM"), field_event(kind="deleted")])
    assert [e.detail["entityId"] for e in got] == ["gw1.1.2.V_TEMP"]


def test_invalid_construction_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        LocalEventBus("async")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_queue"):
        LocalEventBus("thread", max_queue=0)


def test_an_unused_thread_bus_starts_no_thread() -> None:
    before = threading.active_count()
    bus = LocalEventBus("thread")
    assert threading.active_count() == before
    bus.close()



def test_close_with_a_timeout_returns_even_if_a_handler_hangs(caplog: pytest.LogCaptureFixture) -> None:
    bus = LocalEventBus("thread")
    release = threading.Event()

    def stuck(event: BusEvent) -> None:
        release.wait(5)

    bus.subscribe("stuck", {"source": ["mycontroller"]}, stuck)
    bus.publish([node_event(), node_event()])
    with caplog.at_level(logging.WARNING, logger="chalicelib.adapters.bus_local"):
        bus.close(timeout=0.05)
    assert any("still undelivered" in r.getMessage() for r in caplog.records)
    release.set()  # let the worker finish what it holds
    assert bus.drain(timeout=5)
