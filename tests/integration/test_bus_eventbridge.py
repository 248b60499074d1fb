"""The EventBridge bus under moto: events reach a rule's SQS target, chunking, trimming and per-entry retries
(each event its own entry: ``pack_bytes=0``), and packing: a publish's events in few entries that the rules of
``core/bus_packing.py``'s patterns still route by type, and the notifier's only when a websocket wants them.

moto 5 runs ``PutEvents`` through the bus's rules and delivers matches to SQS targets, so the events can be read
back as a rule target would receive them.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.bus_eventbridge import (
    MAX_ENTRIES_PER_CALL,
    MAX_REQUEST_BYTES,
    PACK_BYTES,
    BusPublishError,
    EventBridgeBus,
    entry_size,
)
from chalicelib.core.bus_packing import events_of, packed_pattern, selector
from chalicelib.core.model import event as domain_event
from chalicelib.core.ports import BusEvent, bus_event

pytestmark = pytest.mark.integration

REGION = "us-east-1"
_names = itertools.count(1)


@dataclass
class Aws:
    events: Any
    sqs: Any


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    """One moto mock and one client per service for the module (clients are slow to build); each test gets
    its own bus."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            yield Aws(boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION))


@pytest.fixture
def bus_name(aws: Aws) -> str:
    name = f"mycontroller-{next(_names)}"
    aws.events.create_event_bus(Name=name)
    return name


@pytest.fixture
def events_client(aws: Aws) -> Any:
    return aws.events


@pytest.fixture
def tap(aws: Aws, bus_name: str) -> TapFactory:
    return lambda pattern: Tap(aws, bus_name, pattern)


class Tap:
    """A rule on the bus with an SQS queue as its target: what a subscriber in AWS would receive."""

    def __init__(self, aws: Aws, bus_name: str, pattern: dict[str, Any]) -> None:
        name = f"{bus_name}-tap"
        self.sqs = aws.sqs
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        aws.events.put_rule(Name=name, EventBusName=bus_name, EventPattern=json.dumps(pattern))
        aws.events.put_targets(Rule=name, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": arn}])

    def received(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return messages
            messages += [json.loads(m["Body"]) for m in got]
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])


TapFactory = Callable[[dict[str, Any]], Tap]


class FlakyClient:
    """Wraps the real (moto) client; the first ``put_events`` reports chosen entries as failed, unsent."""

    def __init__(self, client: Any, fail_indexes: set[int], code: str = "ThrottlingException",
                 times: int = 1) -> None:
        self.client = client
        self.fail_indexes = fail_indexes
        self.code = code
        self.times = times
        self.requests: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # boto3 names it so
        self.requests.append(Entries)
        if self.times <= 0:
            return dict(self.client.put_events(Entries=Entries))
        self.times -= 1
        passed = [e for i, e in enumerate(Entries) if i not in self.fail_indexes]
        real = iter(self.client.put_events(Entries=passed)["Entries"] if passed else [])
        results = [{"ErrorCode": self.code, "ErrorMessage": "Rate exceeded"} if i in self.fail_indexes
                   else next(real) for i in range(len(Entries))]
        return {"FailedEntryCount": len(self.fail_indexes & set(range(len(Entries)))), "Entries": results}


def field_event(field_id: str, value: Any = 21.5, **entity: Any) -> BusEvent:
    return bus_event(domain_event("updated", "field", {"id": field_id, "current": {"value": value}, **entity}))


def no_sleep(_seconds: float) -> None:
    """Backoff is exercised, not waited for."""


# --------------------------------------------------------------------------------------------- delivery


def test_events_reach_a_rule_target_with_their_detail_type_and_detail(events_client: Any, bus_name: str,
                                                                      tap: TapFactory) -> None:
    target = tap({"source": ["mycontroller"], "detail-type": [{"prefix": "field."}]})
    bus = EventBridgeBus(bus_name, pack_bytes=0, client=events_client)
    published = [field_event("gw1.1.2.V_TEMP", 21.5), field_event("gw1.1.3.V_HUM", 40),
                 bus_event(domain_event("updated", "node", {"id": "gw1.1"}))]
    bus.publish(published)
    got = target.received()
    assert sorted((m["source"], m["detail-type"], m["detail"]["entityId"]) for m in got) == [
        ("mycontroller", "field.updated", "gw1.1.2.V_TEMP"), ("mycontroller", "field.updated", "gw1.1.3.V_HUM")]
    by_id = {m["detail"]["entityId"]: m["detail"] for m in got}
    assert by_id["gw1.1.2.V_TEMP"] == published[0].detail  # the detail survives the trip unchanged
    assert by_id["gw1.1.3.V_HUM"]["entity"]["current"] == {"value": 40}
    assert bus.calls["put_events"] == 1 and bus.calls["entries"] == 3


def test_publish_goes_in_requests_of_ten_entries(events_client: Any, bus_name: str, tap: TapFactory) -> None:
    target = tap({"source": ["mycontroller"]})
    client = FlakyClient(events_client, set(), times=0)
    bus = EventBridgeBus(bus_name, pack_bytes=0, client=client)
    bus.publish([field_event(f"gw1.1.{i}.V_TEMP", i) for i in range(25)])
    assert sorted(len(r) for r in client.requests) == [5, 10, 10]  # (sent side by side: in any order)
    assert bus.calls["put_events"] == 3 and bus.calls["entries"] == 25
    assert all(entry["EventBusName"] == bus_name for request in client.requests for entry in request)
    assert sorted(m["detail"]["entity"]["current"]["value"] for m in target.received()) == list(range(25))


def test_requests_stay_under_the_size_limit(events_client: Any, bus_name: str) -> None:
    client = FlakyClient(events_client, set(), times=0)
    bus = EventBridgeBus(bus_name, pack_bytes=0, client=client)
    # five entries of ~100 KB each: at most two fit in 256 KB
    bus.publish([field_event(f"gw1.1.{i}.V_TEXT", "x" * 100_000) for i in range(5)])
    assert sorted(len(r) for r in client.requests) == [1, 2, 2]
    assert all(sum(entry_size(e) for e in request) <= MAX_REQUEST_BYTES for request in client.requests)
    assert bus.calls["truncated"] == 0


def test_an_oversized_event_keeps_its_ids_and_says_so(events_client: Any, bus_name: str, tap: TapFactory) -> None:
    target = tap({"source": ["mycontroller"]})
    bus = EventBridgeBus(bus_name, pack_bytes=0, client=events_client)
    huge = field_event("gw1.1.2.V_TEXT", "x" * (MAX_REQUEST_BYTES + 10), gatewayId="gw1", nodeId="1",
                       labels={"room": "kitchen"})
    small = field_event("gw1.1.3.V_TEMP", 20)
    bus.publish([huge, small])
    got = {m["detail"]["entityId"]: m["detail"] for m in target.received()}
    assert got["gw1.1.2.V_TEXT"]["truncated"] is True
    assert got["gw1.1.2.V_TEXT"]["entity"] == {"id": "gw1.1.2.V_TEXT", "gatewayId": "gw1", "nodeId": "1"}
    assert got["gw1.1.2.V_TEXT"]["entityQuickId"] == "field:gw1.1.2.V_TEXT"
    assert "truncated" not in got["gw1.1.3.V_TEMP"] and got["gw1.1.3.V_TEMP"] == small.detail
    assert huge.detail["entity"]["current"]["value"].startswith("x")  # the caller's event is left alone
    assert bus.calls["truncated"] == 1


def test_an_event_too_big_even_trimmed_fails_alone(events_client: Any, bus_name: str, tap: TapFactory) -> None:
    target = tap({"source": ["mycontroller"]})
    bus = EventBridgeBus(bus_name, pack_bytes=0, client=events_client)
    hopeless = BusEvent("mycontroller", "field.updated", {"entityId": "big", "note": "y" * (MAX_REQUEST_BYTES + 1)})
    with pytest.raises(BusPublishError) as raised:
        bus.publish([hopeless, field_event("gw1.1.3.V_TEMP")])
    assert [(f.event.detail["entityId"], f.code) for f in raised.value.failed] == [("big", "EntryTooLarge")]
    assert [m["detail"]["entityId"] for m in target.received()] == ["gw1.1.3.V_TEMP"]


# --------------------------------------------------------------------------------------------- failures


def test_failed_entries_are_retried_until_they_pass(events_client: Any, bus_name: str, tap: TapFactory) -> None:
    target = tap({"source": ["mycontroller"]})
    client = FlakyClient(events_client, fail_indexes={1, 3})
    sleeps: list[float] = []
    bus = EventBridgeBus(bus_name, pack_bytes=0, client=client, sleep=sleeps.append, base_delay_s=0.1)
    events = [field_event(f"gw1.1.{i}.V_TEMP", i) for i in range(5)]
    bus.publish(events)
    assert [len(r) for r in client.requests] == [5, 2]  # only the failed entries are sent again
    assert [json.loads(e["Detail"])["entityId"] for e in client.requests[1]] == ["gw1.1.1.V_TEMP", "gw1.1.3.V_TEMP"]
    values = sorted(m["detail"]["entity"]["current"]["value"] for m in target.received())
    assert values == [0, 1, 2, 3, 4]  # every event delivered exactly once
    assert len(sleeps) == 1 and 0.05 <= sleeps[0] <= 0.1  # jittered within half to all of the base delay
    assert bus.calls["failed_entries"] == 2 and bus.calls["retried_entries"] == 2 and bus.calls["put_events"] == 2


def test_entries_failing_every_attempt_raise_after_the_rest_went_through(events_client: Any, bus_name: str,
                                                                         tap: TapFactory) -> None:
    target = tap({"source": ["mycontroller"]})
    client = FlakyClient(events_client, fail_indexes={0}, code="InternalFailure", times=100)
    sleeps: list[float] = []
    bus = EventBridgeBus(bus_name, pack_bytes=0, client=client, max_attempts=4, sleep=sleeps.append, base_delay_s=0.1,
                         max_delay_s=0.3)
    events = [field_event(f"gw1.1.{i}.V_TEMP", i) for i in range(3)]
    with pytest.raises(BusPublishError) as raised:
        bus.publish(events)
    assert [(f.event, f.code) for f in raised.value.failed] == [(events[0], "InternalFailure")]
    assert "1 event(s) not put on the bus" in str(raised.value) and "gw1.1.0.V_TEMP" in str(raised.value)
    assert len(client.requests) == 4  # the attempts
    assert len(sleeps) == 3 and all(0 < s <= 0.3 for s in sleeps)
    assert sleeps[2] >= 0.15  # the backoff grew to its cap: 0.1, 0.2, then 0.3 (each jittered to half or more)
    assert sorted(m["detail"]["entity"]["current"]["value"] for m in target.received()) == [1, 2]


def test_entries_rejected_for_good_are_not_retried(events_client: Any, bus_name: str) -> None:
    client = FlakyClient(events_client, fail_indexes={0}, code="MalformedDetail", times=100)
    bus = EventBridgeBus(bus_name, pack_bytes=0, client=client, sleep=no_sleep)
    with pytest.raises(BusPublishError) as raised:
        bus.publish([field_event("gw1.1.0.V_TEMP"), field_event("gw1.1.1.V_TEMP")])
    assert [f.code for f in raised.value.failed] == ["MalformedDetail"]
    assert len(client.requests) == 1


def test_a_missing_bus_fails_the_publish_with_the_reason(events_client: Any) -> None:
    bus = EventBridgeBus("no-such-bus", pack_bytes=0, client=events_client)
    with pytest.raises(BusPublishError) as raised:
        bus.publish([field_event("gw1.1.0.V_TEMP")])
    assert [f.code for f in raised.value.failed] == ["ResourceNotFoundException"]
    assert "field.updated field:gw1.1.0.V_TEMP: ResourceNotFoundException" in str(raised.value)
    assert bus.calls["put_events"] == 1  # a request error is not retried


def test_throttled_calls_are_retried(events_client: Any, bus_name: str, tap: TapFactory) -> None:
    from botocore.exceptions import ClientError

    class Throttled:
        def __init__(self) -> None:
            self.calls = 0

        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutEvents")
            return dict(events_client.put_events(Entries=Entries))

    target = tap({"source": ["mycontroller"]})
    client = Throttled()
    bus = EventBridgeBus(bus_name, pack_bytes=0, client=client, sleep=no_sleep)
    bus.publish([field_event("gw1.1.0.V_TEMP")])
    assert client.calls == 2 and len(target.received()) == 1


def test_nothing_to_publish_makes_no_call(events_client: Any, bus_name: str) -> None:
    client = FlakyClient(events_client, set(), times=0)
    EventBridgeBus(bus_name, pack_bytes=0, client=client).publish([])
    assert client.requests == []


def test_subscriptions_live_in_infra_not_code(events_client: Any, bus_name: str) -> None:
    with pytest.raises(NotImplementedError, match=r"EventBridge rules .* infra/"):
        EventBridgeBus(bus_name, client=events_client).subscribe("ws", {"source": ["mycontroller"]}, lambda e: None)


def test_chunk_limit_is_what_eventbridge_allows() -> None:
    assert MAX_ENTRIES_PER_CALL == 10 and MAX_REQUEST_BYTES == 262_144


def test_the_requests_of_a_big_publish_go_side_by_side(events_client: Any, bus_name: str, tap: TapFactory) -> None:
    """A 100-publish ingest batch brings hundreds of events: their requests overlap (up to ``put_concurrency``)
    instead of queueing one behind another, and a failure in one request still fails only its entries."""
    import threading
    import time as clock

    target = tap({"source": ["mycontroller"]})
    lock = threading.Lock()
    active = {"now": 0, "most": 0}

    class Slow:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # boto3 names it so
            with lock:
                active["now"] += 1
                active["most"] = max(active["most"], active["now"])
            try:
                clock.sleep(0.02)  # the round trip
                if any(json.loads(e["Detail"])["entityId"] == "gw1.1.7.V_TEMP" for e in Entries):
                    return {"FailedEntryCount": len(Entries), "Entries": [
                        {"ErrorCode": "MalformedDetail", "ErrorMessage": "no"} for _ in Entries]}
                return dict(events_client.put_events(Entries=Entries))
            finally:
                with lock:
                    active["now"] -= 1

    bus = EventBridgeBus(bus_name, pack_bytes=0, client=Slow(), put_concurrency=4, sleep=no_sleep)
    try:
        with pytest.raises(BusPublishError) as raised:
            bus.publish([field_event(f"gw1.1.{i}.V_TEMP", i) for i in range(80)])
    finally:
        bus.close()
    assert 2 <= active["most"] <= 4
    assert sorted(f.event.detail["entityId"] for f in raised.value.failed) == [f"gw1.1.{i}.V_TEMP" for i in range(10)]
    assert sorted(m["detail"]["entity"]["current"]["value"] for m in target.received()) == list(range(10, 80))
    assert bus.calls["put_events"] == 8 and bus.calls["entries"] == 80


# --------------------------------------------------------------------------------------------- packing


def unpacked(messages: list[dict[str, Any]], pattern: dict[str, Any]) -> list[dict[str, Any]]:
    """The events a consumer with this per-event pattern takes from the packs its rule received."""
    wanted = selector(pattern)
    return [detail for message in messages for detail in events_of(message, wanted)]


def test_a_publish_travels_packed_and_rules_still_route_by_type(events_client: Any, bus_name: str,
                                                                tap: TapFactory) -> None:
    forward = {"source": ["mycontroller"], "detail-type": ["field.updated"]}
    target = tap(packed_pattern(forward))
    bus = EventBridgeBus(bus_name, client=events_client)
    published = [field_event(f"gw1.1.{i}.V_TEMP", i) for i in range(30)]
    published.append(bus_event(domain_event("updated", "node", {"id": "gw1.1"})))
    bus.publish(published)
    got = target.received()
    assert len(got) == 1 and bus.calls["entries"] == 1 and bus.calls["events"] == 31 and bus.calls["billed"] == 1
    assert got[0]["detail"]["types"] == ["field.updated", "node.updated"] and got[0]["detail-type"] == "events"
    assert unpacked(got, forward) == [e.detail for e in published[:30]]  # in order, unchanged, the node left out


def test_only_node_events_do_not_reach_a_field_rule(events_client: Any, bus_name: str, tap: TapFactory) -> None:
    target = tap(packed_pattern({"source": ["mycontroller"], "detail-type": ["field.updated"]}))
    bus = EventBridgeBus(bus_name, client=events_client)
    bus.publish([bus_event(domain_event("updated", "node", {"id": "gw1.1"}))])
    assert target.received() == [] and bus.calls["entries"] == 1


def test_packs_stay_within_their_budget_and_are_billed_by_64_kb(events_client: Any, bus_name: str,
                                                                tap: TapFactory) -> None:
    target = tap(packed_pattern({"source": ["mycontroller"]}))
    client = FlakyClient(events_client, set(), times=0)
    bus = EventBridgeBus(bus_name, client=client)
    bus.publish([field_event(f"gw1.1.{i}.V_TEXT", "x" * 20_000) for i in range(40)])  # ~800 KB of events
    entries = [entry for request in client.requests for entry in request]
    assert len(entries) == 4 and all(entry_size(e) <= PACK_BYTES + 200 for e in entries)
    assert bus.calls["billed"] == sum(math.ceil(entry_size(e) / 65536) for e in entries) <= 14
    values = sorted(d["entityId"] for d in unpacked(target.received(), {"source": ["mycontroller"]}))
    assert values == sorted(f"gw1.1.{i}.V_TEXT" for i in range(40))


def test_the_notifier_gets_only_what_a_websocket_wants(events_client: Any, aws: Aws, bus_name: str) -> None:
    notify = Tap(aws, bus_name, packed_pattern({"source": ["mycontroller"]}, watched=True))
    wanted = {"gw1.1.3.V_TEMP"}
    bus = EventBridgeBus(bus_name, client=events_client, audience=lambda detail: detail.get("entityId") in wanted)
    bus.publish([field_event("gw1.1.1.V_TEMP"), field_event("gw1.1.2.V_TEMP")])  # nobody listens
    assert notify.received() == [] and bus.calls["entries"] == 1
    bus.publish([field_event("gw1.1.2.V_TEMP"), field_event("gw1.1.3.V_TEMP")])
    got = notify.received()
    assert len(got) == 1 and got[0]["detail"]["watched"] is True
    assert [d["entityId"] for d in unpacked(got, {"source": ["mycontroller"]})] == ["gw1.1.2.V_TEMP", "gw1.1.3.V_TEMP"]


def test_an_audience_that_cannot_tell_sends_to_the_notifier(events_client: Any, aws: Aws, bus_name: str) -> None:
    notify = Tap(aws, bus_name, packed_pattern({"source": ["mycontroller"]}, watched=True))

    def failing(_detail: Any) -> bool:
        raise RuntimeError("connections table unreachable")

    EventBridgeBus(bus_name, client=events_client, audience=failing).publish([field_event("gw1.1.1.V_TEMP")])
    assert len(notify.received()) == 1


def test_an_event_no_pack_can_hold_is_trimmed_alone(events_client: Any, bus_name: str, tap: TapFactory) -> None:
    target = tap(packed_pattern({"source": ["mycontroller"]}))
    bus = EventBridgeBus(bus_name, client=events_client)
    huge = field_event("gw1.1.2.V_TEXT", "x" * (MAX_REQUEST_BYTES + 10), gatewayId="gw1")
    bus.publish([field_event("gw1.1.1.V_TEMP", 1), huge, field_event("gw1.1.3.V_TEMP", 3)])
    got = {d["entityId"]: d for d in unpacked(target.received(), {"source": ["mycontroller"]})}
    assert got["gw1.1.2.V_TEXT"]["truncated"] is True and got["gw1.1.2.V_TEXT"]["entity"]["gatewayId"] == "gw1"
    assert got["gw1.1.1.V_TEMP"]["entity"]["current"]["value"] == 1 and "gw1.1.3.V_TEMP" in got
    assert bus.calls["truncated"] == 1


def test_a_pack_that_fails_names_every_event_it_carried(events_client: Any, bus_name: str) -> None:
    client = FlakyClient(events_client, fail_indexes={0}, code="MalformedDetail", times=100)
    bus = EventBridgeBus(bus_name, client=client, sleep=no_sleep)
    events = [field_event("gw1.1.0.V_TEMP"), field_event("gw1.1.1.V_TEMP")]
    with pytest.raises(BusPublishError) as raised:
        bus.publish(events)
    assert [f.event for f in raised.value.failed] == events and len(client.requests) == 1
