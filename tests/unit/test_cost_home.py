"""The home's cost levers (#17, ``docs/cost.md``): the ingest puts on the bus only what a consumer wants (an
enabled task's filter, a forward payload's source field, a watched subscription), addressing each pack to the
consumers that want it; three ingest metrics instead of nine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from chalicelib.adapters.bus_eventbridge import EventBridgeBus
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.bus_packing import AUTOMATION_CONSUMERS, pack_events, packed_pattern
from chalicelib.core.event_pattern import matches
from chalicelib.core.model import FieldModel, Kind, event
from chalicelib.core.ports import BusEvent, bus_event
from chalicelib.functions.automation import mark_automation_changed
from chalicelib.functions.interest import EVERYONE, ConsumerInterest


def field(field_id: str, value: Any = 21.5, kind: Literal["created", "updated"] = "updated") -> BusEvent:
    gateway, node, source, key = field_id.split(".")
    record = FieldModel(gateway_id=gateway, node_id=node, source_id=source, field_id=key).record()
    record["current"] = {"value": value}
    return bus_event(event(kind, Kind.FIELD, record))


def task(task_id: str, field_id: str, **overrides: Any) -> dict[str, Any]:
    return {"id": task_id, "eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"],
                                           "filters": {"id": field_id}},
            "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
                {"variable": "entity.current.value", "operator": "gt", "value": 25}]}},
            "handlers": ["hook"], **overrides}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Events:
    """An EventBridge client keeping the entries it was given."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i, _ in enumerate(Entries)]}


def document(entry: dict[str, Any]) -> dict[str, Any]:
    return {"source": entry["Source"], "detail-type": entry["DetailType"], "detail": json.loads(entry["Detail"])}


@pytest.fixture
def site() -> Iterator[tuple[MemoryRepository, Clock, ConsumerInterest, Events, EventBridgeBus]]:
    repository = MemoryRepository(None)
    clock = Clock()
    interest = ConsumerInterest(repository, ttl_s=5.0, monotonic=clock)
    client = Events()
    bus = EventBridgeBus("bus", client, consumers=interest, audience=lambda _detail: False)
    yield repository, clock, interest, client, bus
    bus.close()


# --------------------------------------------------------------------------------------------- packing


def test_a_pack_is_addressed_to_the_consumers_its_events_are_for_and_the_unwanted_are_left_out() -> None:
    wants = {"gw.1.1.V_TEMP": {"tasks"}, "gw.1.2.V_HUM": {"forward_payload"}}
    events = [field("gw.1.1.V_TEMP"), field("gw.1.3.V_LIGHT"), field("gw.1.2.V_HUM")]
    [pack] = pack_events(events, 200_000, lambda _detail: False, lambda e: wants.get(e.detail["entityId"], ()))
    assert [e.detail["entityId"] for e in pack.events] == ["gw.1.1.V_TEMP", "gw.1.2.V_HUM"]
    assert json.loads(pack.detail_json())["to"] == ["forward_payload", "tasks"]
    assert pack_events(events[1:2], 200_000, lambda _detail: False, lambda _e: ()) == []
    [watched] = pack_events(events[1:2], 200_000, lambda _detail: True, lambda _e: ())  # the notifier wants it
    assert json.loads(watched.detail_json())["to"] == []
    [everyone] = pack_events(events[1:2], 200_000)  # a publisher that does not ask: every consumer
    assert json.loads(everyone.detail_json())["to"] == sorted(AUTOMATION_CONSUMERS)


def test_the_consumers_rules_take_the_packs_addressed_to_them(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    tasks_rule = resources["TasksRule"]["Properties"]["EventPattern"]
    forward_rule = resources["ForwardPayloadRule"]["Properties"]["EventPattern"]
    assert tasks_rule == packed_pattern({"source": ["mycontroller"]}, to="tasks")
    assert resources["Ingest"]["Properties"]["Environment"]["Variables"]["CONSUMER_AUDIENCE"] == "interested"
    [for_tasks] = pack_events([field("gw.1.1.V_TEMP")], 200_000, None, lambda _e: {"tasks"})
    [for_nobody] = pack_events([field("gw.1.1.V_TEMP")], 200_000, None, lambda _e: ())  # (watched)
    [for_all] = pack_events([field("gw.1.1.V_TEMP")], 200_000)
    docs = [{"source": p.source, "detail-type": p.detail_type, "detail": json.loads(p.detail_json())}
            for p in (for_tasks, for_nobody, for_all)]
    assert [matches(tasks_rule, d) for d in docs] == [True, False, True]
    assert [matches(forward_rule, d) for d in docs] == [False, False, True]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from infra.package import build_template

    return build_template()


# --------------------------------------------------------------------------------------------- interest


def test_no_task_and_no_mapping_means_no_consumer_wants_a_field_update(site: Any) -> None:
    _repository, _clock, interest, client, bus = site
    assert interest(field("gw.1.1.V_TEMP")) == frozenset()
    bus.publish([field("gw.1.1.V_TEMP"), field("gw.1.2.V_HUM")])
    assert client.entries == [] and bus.calls["unwanted"] == 2 and bus.calls["put_events"] == 0


def test_a_task_created_makes_the_next_matching_pack_go(site: Any) -> None:
    repository, clock, interest, client, bus = site
    bus.publish([field("gw.1.1.V_TEMP")])
    repository.put(Kind.TASK, task("too-hot", "gw.1.1.V_TEMP"))
    bus.publish([field("gw.1.1.V_TEMP")])
    assert client.entries == []  # written without the stamp (by hand): the tasks read are trusted for their TTL
    mark_automation_changed(repository)  # what the API does after it saved a task or a forward payload
    bus.publish([field("gw.1.1.V_TEMP"), field("gw.1.2.V_HUM")])
    [entry] = client.entries
    detail = json.loads(entry["Detail"])
    assert detail["to"] == ["tasks"] and [e["detail"]["entityId"] for e in detail["events"]] == ["gw.1.1.V_TEMP"]
    assert interest(field("gw.1.1.V_TEMP", kind="created")) == frozenset()  # the task's filter: updates only
    repository.put(Kind.TASK, task("too-hot", "gw.1.1.V_TEMP", enabled=False))
    assert interest(field("gw.1.1.V_TEMP")) == frozenset({"tasks"})
    clock.now += 5.0  # a change made without the stamp: within the TTL
    assert interest(field("gw.1.1.V_TEMP")) == frozenset()  # a disabled task wants nothing


def test_the_api_and_a_tasks_own_enabling_move_the_stamp() -> None:
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.functions.automation import AUTOMATION_STAMP_ID, Automation

    repository = MemoryRepository(None)
    automation = Automation(repository, LocalEventBus("sync"))
    assert repository.get_versioned(Kind.SETTINGS, AUTOMATION_STAMP_ID)[1] == 0
    automation.announce(Kind.TASK, task("t", "gw.1.1.V_TEMP"))
    _, first = repository.get_versioned(Kind.SETTINGS, AUTOMATION_STAMP_ID)
    automation.announce(Kind.SCHEDULE, {"id": "s"})  # a schedule changes nothing publishers weigh
    assert repository.get_versioned(Kind.SETTINGS, AUTOMATION_STAMP_ID)[1] == first != 0
    source = (Path(__file__).parents[2] / "chalicelib" / "api" / "automation.py").read_text()
    assert "mark_automation_changed(container.repository)" in source  # _tasks_changed: tasks and forward payloads


def test_a_forward_payload_wants_its_source_fields_updates(site: Any) -> None:
    repository, _clock, interest, client, bus = site
    repository.put(Kind.FORWARD_PAYLOAD, {"id": "m1", "srcFieldId": "field:gw.1.2.V_STATUS",
                                          "dstFieldId": "field:gw.2.1.V_STATUS"})
    assert interest(field("gw.1.2.V_STATUS")) == frozenset({"forward_payload"})
    assert interest(field("gw.1.2.V_STATUS", kind="created")) == frozenset()  # forward payload acts on updates
    assert interest(field("gw.1.3.V_STATUS")) == frozenset()
    repository.put(Kind.TASK, task("t", "gw.1.2.V_STATUS"))
    mark_automation_changed(repository)
    interest.refresh()
    assert interest(field("gw.1.2.V_STATUS")) == frozenset({"tasks", "forward_payload"})
    bus.publish([field("gw.1.2.V_STATUS")])
    assert json.loads(client.entries[0]["Detail"])["to"] == ["forward_payload", "tasks"]


def test_events_it_cannot_judge_go_to_every_consumer(site: Any) -> None:
    _repository, _clock, interest, _client, _bus = site
    assert interest(bus_event(event("updated", Kind.TASK, {"id": "t"}))) == EVERYONE  # refreshes the index
    assert interest(BusEvent("mycontroller.auth", "session.revoked", {"entityType": "session"})) == EVERYONE


def test_a_node_task_wants_its_nodes_events(site: Any) -> None:
    repository, _clock, interest, _client, _bus = site
    repository.put(Kind.TASK, {"id": "n", "eventFilter": {"entityTypes": ["node"], "filters": {"id": "gw.1"}},
                               "handlers": ["hook"]})
    assert interest(bus_event(event("updated", Kind.NODE, {"id": "gw.1", "gatewayId": "gw", "nodeId": "1"}))) \
        == frozenset({"tasks"})
    assert interest(bus_event(event("updated", Kind.NODE, {"id": "gw.2", "gatewayId": "gw", "nodeId": "2"}))) \
        == frozenset()


def test_when_the_tasks_cannot_be_read_every_consumer_gets_the_pack() -> None:
    class Broken(MemoryRepository):
        def query(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("the table is out of reach")

    client = Events()
    bus = EventBridgeBus("bus", client, consumers=ConsumerInterest(Broken(None)), audience=lambda _detail: False)
    try:
        bus.publish([field("gw.1.1.V_TEMP")])
    finally:
        bus.close()
    assert json.loads(client.entries[0]["Detail"])["to"] == sorted(AUTOMATION_CONSUMERS)


def test_only_an_interested_audience_filters_the_consumers(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.bootstrap import Container
    from chalicelib.settings import Settings

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # clients are made, never called
    base = {"BUS": "eventbridge", "STORAGE": "dynamodb", "AWS_REGION": "us-east-1"}
    gated = Container(Settings.from_env({**base, "CONSUMER_AUDIENCE": "interested"}))
    plain = Container(Settings.from_env(base))
    try:
        assert isinstance(gated.bus, EventBridgeBus) and isinstance(gated.bus.consumers, ConsumerInterest)
        assert isinstance(plain.bus, EventBridgeBus) and plain.bus.consumers is None
    finally:
        gated.close()
        plain.close()


# --------------------------------------------------------------------------------------------- metrics


def test_the_ingest_writes_its_failure_metrics_only_when_something_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.downlink_local import LocalDownlink
    from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
    from chalicelib.core.identity import ingest_body
    from chalicelib.core.processor import Processor
    from chalicelib.core.providers import default_interpreters
    from chalicelib.functions import ingest as module
    from mycontroller_protocol.envelope import Envelope, encode_publish

    names: list[str] = []
    monkeypatch.setattr(module, "IN_LAMBDA", True)
    monkeypatch.setattr(module.metrics, "add_metric", lambda name, unit, value: names.append(name))
    monkeypatch.setattr(module.metrics, "flush_metrics", lambda: None)
    processor = Processor(MemoryRepository(None), EmbeddedMetricStore(":memory:"), default_interpreters(),
                          clock=lambda: 1_767_225_600_000)
    ingest = module.Ingest(processor, LocalEventBus(mode="sync"), LocalDownlink())
    envelope = Envelope("gw", "mysensors_v2", 1_767_225_600_000, 1, "gw-1", "1;1;1;0;0;21.5")
    ingest.handle({"Records": [{"messageId": "r1", "body": ingest_body("edge-1", encode_publish([envelope]))}]})
    assert names == ["MessagesProcessed"]  # no failure, no refusal: those two are not written (#17)
    names.clear()
    bad = Envelope("gw", "mysensors_v2", 1_767_225_600_000, 2, "gw-2", "1;1;1;0;0;not a number")
    ingest.handle({"Records": [{"messageId": "r2", "body": ingest_body("edge-1", encode_publish([bad]))}]})
    assert names == ["MessagesProcessed", "MessagesFailed"]


# --------------------------------------------------------------------------------------------- direct ingest


def test_a_publish_the_rule_hands_over_itself_is_a_batch_of_one() -> None:
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.downlink_local import LocalDownlink
    from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
    from chalicelib.core.identity import ingest_body
    from chalicelib.core.processor import Processor
    from chalicelib.core.providers import default_interpreters
    from chalicelib.functions.ingest import Ingest, RecordFailed, is_direct
    from mycontroller_protocol.envelope import Envelope, encode_publish

    class Letters:
        def __init__(self) -> None:
            self.letters: list[Any] = []

        def put(self, letters: Any) -> None:
            self.letters.extend(letters)

    t0 = 1_767_225_600_000
    repository = MemoryRepository(None)
    processor = Processor(repository, EmbeddedMetricStore(":memory:"), default_interpreters(), clock=lambda: t0)
    letters = Letters()
    ingest = Ingest(processor, LocalEventBus(mode="sync"), LocalDownlink(), dead_letters=letters)

    class Context:
        aws_request_id = "req-1"

    good = json.loads(ingest_body("edge-1", encode_publish([Envelope("gw", "mysensors_v2", t0, 1, "gw-1",
                                                                     "1;1;1;0;0;21.5")])))
    assert is_direct(good) and not is_direct({"Records": []})
    assert ingest.handle(good, Context()) == {"messages": 1, "deadLettered": 0}
    assert repository.get(Kind.FIELD, "gw.1.1.V_TEMP")["current"]["value"] == 21.5  # type: ignore[index]
    poison = json.loads(ingest_body("edge-1", "not an envelope batch"))
    assert ingest.handle(poison, Context())["deadLettered"] == 1  # kept with its reason, not retried
    assert letters.letters[0].reason.startswith("poison record")

    def down(envelopes: Any) -> Any:
        raise ConnectionError("the table is out of reach")

    processor.process = down  # type: ignore[method-assign]
    with pytest.raises((RecordFailed, ConnectionError)):  # Lambda retries the invocation, then keeps it in the DLQ
        ingest.handle(good, Context())


# --------------------------------------------------------------------------------------------- reads


def test_the_processor_reads_eventually_consistent_and_a_stale_read_loses_nothing() -> None:
    from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
    from chalicelib.core.processor import Processor
    from chalicelib.core.providers import default_interpreters
    from mycontroller_protocol.envelope import Envelope

    class Lagging(MemoryRepository):
        """Eventually consistent reads answer from a snapshot taken before the last writes (``lag``)."""

        def __init__(self) -> None:
            super().__init__(None)
            self.snapshot: dict[str, tuple[Any, int]] | None = None
            self.modes: list[bool] = []

        def get_many_versioned(self, kind: Kind, ids: Any, *, consistent: bool = True) -> dict[str, Any]:
            ids = list(ids)
            self.modes.append(consistent)
            if not consistent and self.snapshot is not None and kind is Kind.FIELD:
                return {i: self.snapshot[i] for i in ids if i in self.snapshot}
            return super().get_many_versioned(kind, ids)

    t0 = 1_767_225_600_000
    repository = Lagging()
    processor = Processor(repository, EmbeddedMetricStore(":memory:"), default_interpreters(), clock=lambda: t0)
    processor.process([Envelope("gw", "mysensors_v2", t0, 1, "gw-1", "1;1;1;0;0;21.5")])
    assert repository.modes and not any(repository.modes)  # the batch's reads: all eventually consistent
    repository.snapshot = dict(super(Lagging, repository).get_many_versioned(Kind.FIELD, ["gw.1.1.V_TEMP"]))
    edited = {**repository.get(Kind.FIELD, "gw.1.1.V_TEMP"), "labels": {"room": "kitchen"}}  # type: ignore[dict-item]
    repository.put(Kind.FIELD, edited)  # an API edit the lagging read does not show yet
    repository.modes.clear()
    processor.process([Envelope("gw", "mysensors_v2", t0 + 1000, 2, "gw-2", "1;1;1;0;0;22.5")])
    stored = repository.get(Kind.FIELD, "gw.1.1.V_TEMP")
    assert stored is not None and stored["current"]["value"] == 22.5 and stored["labels"] == {"room": "kitchen"}
    assert True in repository.modes  # the failed conditional write read again, consistently


def test_a_clean_batch_is_logged_at_debug_and_a_troubled_one_at_info(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.downlink_local import LocalDownlink
    from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
    from chalicelib.core.identity import ingest_body
    from chalicelib.core.processor import Processor
    from chalicelib.core.providers import default_interpreters
    from chalicelib.functions import ingest as module
    from mycontroller_protocol.envelope import Envelope, encode_publish

    lines: list[tuple[str, str]] = []
    monkeypatch.setattr(module.logger, "info", lambda message, **_: lines.append(("info", message)))
    monkeypatch.setattr(module.logger, "debug", lambda message, **_: lines.append(("debug", message)))
    t0 = 1_767_225_600_000
    processor = Processor(MemoryRepository(None), EmbeddedMetricStore(":memory:"), default_interpreters(),
                          clock=lambda: t0)
    ingest = module.Ingest(processor, LocalEventBus(mode="sync"), LocalDownlink())
    good = ingest_body("edge-1", encode_publish([Envelope("gw", "mysensors_v2", t0, 1, "gw-1", "1;1;1;0;0;21.5")]))
    ingest.run([{"messageId": "r1", "body": good}])
    ingest.run([{"messageId": "r2", "body": ingest_body("edge-1", "not an envelope batch")}])
    assert [level for level, message in lines if message == "batch processed"] == ["debug", "info"]
