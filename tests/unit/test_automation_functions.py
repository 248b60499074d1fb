"""The task, schedule and timer functions over real adapters (memory repository, synchronous bus, the local
schedule registry driven by a fake clock), with a list-collecting handler queue."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from astral import Observer
from astral.sun import sunrise, sunset

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.adapters.schedules_local import LocalScheduleRegistry, croniter_of
from chalicelib.core.automation.clock import Location
from chalicelib.core.automation.scheduler_sync import sync_schedule
from chalicelib.core.model import FieldModel, Gateway, Kind, Record, event
from chalicelib.core.ports import BusEvent, bus_event
from chalicelib.core.settings import SETTINGS_ID
from chalicelib.functions.automation import Automation, SettingsCache
from chalicelib.functions.jobs import SystemJobs
from chalicelib.functions.scheduled import ScheduledFunction
from chalicelib.functions.schedules import ScheduleFunction, reload_registry
from chalicelib.functions.tasks import TaskFunction

T0 = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
TEMP_ID = "gw.1.1.V_TEMP"
_SEQUENCE = itertools.count(1)


class ListQueue:
    """A ``HandlerQueue`` that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, requests: Sequence[dict[str, Any]]) -> None:
        self.sent.extend(requests)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Harness:
    def __init__(self, start: datetime = T0) -> None:
        self.clock = Clock(start)
        self.repository = MemoryRepository(None)
        self.bus = LocalEventBus("sync")
        self.events: list[BusEvent] = []
        self.bus.subscribe("tap", {"source": ["mycontroller"]}, self.events.append)
        self.queue = ListQueue()
        self.registry = LocalScheduleRegistry(clock=self.clock)
        self.monotonic = itertools.count(0, 100)  # every read is past the TTL: changes apply at once
        self.automation = Automation(self.repository, self.bus, self.queue, self.registry, None,
                                     SettingsCache(self.repository, clock=lambda: float(next(self.monotonic))),
                                     now=self.clock, monotonic=lambda: float(next(self.monotonic)))
        self.tasks = TaskFunction(self.automation)
        self.schedules = ScheduleFunction(self.automation)
        self.jobs = SystemJobs(self.automation, LocalDownlink())
        self.scheduled = ScheduledFunction(self.automation, self.tasks, self.schedules, self.jobs)
        self.tasks.subscribe(self.bus)

    def temperature(self, value: float) -> None:
        """A field update as the processor stores and announces it."""
        record = FieldModel.model_validate({
            "gatewayId": "gw", "nodeId": "1", "sourceId": "1", "fieldId": "V_TEMP", "metricType": "gauge_float",
            "current": {"value": value, "timestamp": self.clock.now.isoformat().replace("+00:00", "Z"),
                        "sequence": next(_SEQUENCE)}}).record()
        self.repository.put(Kind.FIELD, record)
        self.bus.publish([bus_event(event("updated", Kind.FIELD, record))])

    def task(self, task_id: str = "too-hot") -> Record:
        found = self.repository.get(Kind.TASK, task_id)
        assert found is not None
        return found

    def advance_to(self, when: datetime) -> list[dict[str, Any]]:
        """Move the clock to ``when``, firing every registry entry due on the way, in order."""
        fired: list[dict[str, Any]] = []
        while (due := self.registry.next_due()) is not None and due <= when:
            self.clock.now = due
            fired += self.registry.run_due(due, self.scheduled.handle)
        self.clock.now = when
        return fired


def threshold_task(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "too-hot",
        "eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"], "filters": {"id": TEMP_ID}},
        "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
            {"variable": "entity.current.value", "operator": "gt", "value": 25}]}},
        "handlers": ["hook"],
        "handlerParameters": {"alert": {"type": "webhook",
                                        "body": {"text": "{{ entity.fieldId }} is {{ entity.current.value }}"}}},
        **overrides,
    }


def test_a_temperature_crossing_the_threshold_queues_the_handler_with_rendered_parameters() -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, threshold_task(ignoreDuplicate=True))
    harness.temperature(21.0)
    assert harness.queue.sent == []
    harness.temperature(27.5)
    assert len(harness.queue.sent) == 1
    request = harness.queue.sent[0]
    assert request["handlerId"] == "hook" and request["source"] == "task:too-hot"
    assert request["parameters"]["alert"]["body"] == {"text": "V_TEMP is 27.5"}
    assert request["triggerId"].startswith("too-hot#")
    harness.temperature(28.0)  # still above: ignoreDuplicate notifies only on the rise
    assert len(harness.queue.sent) == 1
    state = harness.task()["state"]
    assert state["executedCount"] == 3 and state["lastStatus"] is True
    assert [item["triggered"] for item in state["executionsHistory"]] == [False, True, True]
    # state writes publish nothing, so nothing here could re-trigger a task
    assert [e.detail_type for e in harness.events] == ["field.updated"] * 3


def test_a_redelivered_event_is_not_evaluated_twice() -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, threshold_task())
    harness.temperature(30.0)
    redelivered = harness.events[-1]
    harness.bus.publish([redelivered])
    assert len(harness.queue.sent) == 1
    assert harness.task()["state"]["executedCount"] == 1


def test_a_task_written_by_another_function_applies_at_its_event_not_after_the_index_ttl() -> None:
    """In Lambda the API's function writes the task; the task function's cached index learns of it from the task's
    own bus event, so a reading a second later already meets it."""
    harness = Harness()
    harness.automation.monotonic = lambda: 0.0  # the clock stands still: the index TTL never runs out
    harness.temperature(30.0)  # loads the (empty) index
    assert harness.queue.sent == []
    record = threshold_task()
    harness.repository.put(Kind.TASK, record)  # as another function's repository would
    harness.bus.publish([bus_event(event("created", Kind.TASK, record))])
    harness.temperature(31.0)
    assert [r["handlerId"] for r in harness.queue.sent] == ["hook"]


def test_events_about_automation_resources_reach_only_tasks_that_ask_for_them() -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, {"id": "any", "handlers": ["hook"]})  # no filter: every event type
    harness.repository.put(Kind.TASK, {"id": "watch-tasks", "handlers": ["hook"],
                                       "eventFilter": {"entityTypes": ["task"]}})
    record = harness.task("any")
    harness.bus.publish([bus_event(event("updated", Kind.TASK, record))])
    assert [r["source"] for r in harness.queue.sent] == ["task:watch-tasks"]
    harness.temperature(20.0)
    assert [r["source"] for r in harness.queue.sent] == ["task:watch-tasks", "task:any"]


@pytest.mark.parametrize(("dampening", "values", "fired_at"), [
    ({"type": "none"}, [30, 20, 30], [0, 2]),
    ({"type": "consecutive", "occurrences": 2}, [30, 20, 30, 30, 30], [3, 4]),
    ({"type": "evaluation", "occurrences": 2, "evaluation": 3}, [30, 20, 20, 30, 20, 30], [5]),
])
def test_each_counting_dampening_through_the_function(dampening: dict[str, Any], values: list[float],
                                                      fired_at: list[int]) -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, threshold_task(dampening=dampening))
    fired = []
    for index, value in enumerate(values):
        before = len(harness.queue.sent)
        harness.clock.now = T0 + timedelta(seconds=index)
        harness.temperature(value)
        if len(harness.queue.sent) > before:
            fired.append(index)
    assert fired == fired_at


def test_active_duration_fires_from_the_recheck_timer_when_no_event_comes() -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, threshold_task(dampening={"type": "active_duration", "activeDuration": "2m"}))
    harness.temperature(30.0)
    assert harness.queue.sent == []
    entry = harness.registry.get("task-too-hot.recheck")
    assert entry is not None and entry.expression == "at(2026-03-27T12:02:00)"
    fired = harness.advance_to(T0 + timedelta(minutes=5))
    assert [p.get("action") for p in fired] == ["recheck"]
    assert len(harness.queue.sent) == 1
    assert harness.queue.sent[0]["parameters"]["alert"]["body"] == {"text": "V_TEMP is 30.0"}
    assert "task-too-hot.recheck" not in harness.registry.names()


def test_active_duration_does_not_fire_when_the_value_fell_back_before_the_recheck() -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, threshold_task(dampening={"type": "active_duration", "activeDuration": "2m"}))
    harness.temperature(30.0)
    harness.clock.now = T0 + timedelta(minutes=1)
    harness.temperature(20.0)
    harness.advance_to(T0 + timedelta(minutes=5))
    assert harness.queue.sent == []


def test_auto_disable_then_re_enable_after_the_duration() -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, threshold_task(autoDisable=True, reEnable=True, reEnableDuration="10m"))
    harness.temperature(30.0)
    assert len(harness.queue.sent) == 1
    assert harness.task()["enabled"] is False
    assert harness.events[-1].detail_type == "task.updated"  # the enabled change is announced
    harness.clock.now = T0 + timedelta(minutes=1)
    harness.temperature(31.0)  # disabled: not evaluated
    assert len(harness.queue.sent) == 1
    fired = harness.advance_to(T0 + timedelta(minutes=11))
    assert [p.get("action") for p in fired] == ["reenable"]
    task = harness.task()
    assert task["enabled"] is True and task["state"]["executionsHistory"] == []
    harness.temperature(32.0)
    assert len(harness.queue.sent) == 2


def test_an_interval_task_fires_from_the_registry_and_re_arms() -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, {"id": "tick", "executionInterval": "30s", "handlers": ["hook"],
                                       "handlerParameters": {"at": "{{ now().isoformat() }}"}})
    assert reload_registry(harness.automation) == {"schedules": 0, "tasks": 1, "removed": 0}
    fired = harness.advance_to(T0 + timedelta(seconds=95))
    assert [p["scheduledTime"] for p in fired] == ["2026-03-27T12:00:30.000Z", "2026-03-27T12:01:00.000Z",
                                                   "2026-03-27T12:01:30.000Z"]
    assert [r["triggerId"] for r in harness.queue.sent] == [
        "tick@2026-03-27T12:00:30.000Z", "tick@2026-03-27T12:01:00.000Z", "tick@2026-03-27T12:01:30.000Z"]
    # the same invocation delivered again is recognised
    harness.scheduled.handle(fired[-1])
    assert len(harness.queue.sent) == 3


def test_a_whole_minute_interval_task_runs_on_a_rate() -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, {"id": "tick", "executionInterval": "2m", "handlers": ["hook"]})
    reload_registry(harness.automation)
    entry = harness.registry.get("task-tick")
    assert entry is not None and entry.expression == "rate(2 minutes)"
    harness.advance_to(T0 + timedelta(minutes=7))
    assert len(harness.queue.sent) == 3


def berlin_cron(schedule_id: str, cron: str) -> dict[str, Any]:
    return {"id": schedule_id, "type": "cron", "spec": {"cronExpression": cron}, "timezone": "Europe/Berlin",
            "handlers": ["hook"]}


@pytest.mark.parametrize(("start", "cron", "expected"), [
    # spring forward, 2026-03-29: 02:30 does not exist that night; 09:00 moves from 08:00Z to 07:00Z
    (datetime(2026, 3, 27, 12, tzinfo=UTC), "0 30 2 * * *",
     ["2026-03-28T01:30:00.000Z", "2026-03-30T00:30:00.000Z", "2026-03-31T00:30:00.000Z"]),
    (datetime(2026, 3, 27, 12, tzinfo=UTC), "0 0 9 * * *",
     ["2026-03-28T08:00:00.000Z", "2026-03-29T07:00:00.000Z", "2026-03-30T07:00:00.000Z"]),
    # fall back, 2026-10-25: 02:30 happens twice and runs once, at the first
    (datetime(2026, 10, 23, 12, tzinfo=UTC), "0 30 2 * * *",
     ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]),
])
def test_a_berlin_cron_schedule_fires_at_the_right_instants_across_dst(start: datetime, cron: str,
                                                                        expected: list[str]) -> None:
    harness = Harness(start)
    harness.repository.put(Kind.SCHEDULE, berlin_cron("morning", cron))
    assert reload_registry(harness.automation)["schedules"] == 1
    fired = harness.advance_to(start + timedelta(days=4))
    assert [p["scheduledTime"] for p in fired][:3] == expected
    assert [r["triggerId"] for r in harness.queue.sent][:3] == [f"morning@{t}" for t in expected]
    stored = harness.repository.get(Kind.SCHEDULE, "morning")
    assert stored is not None and stored["state"]["lastRun"] == fired[-1]["scheduledTime"]
    harness.scheduled.handle(fired[-1])  # a redelivery of the last run does nothing
    assert len(harness.queue.sent) == len(fired)


def test_the_timer_reads_eventbridge_cron_back() -> None:
    assert croniter_of("cron(30 7 ? * MON,TUE,WED *)") == "0 30 7 * * mon,tue,wed"
    assert croniter_of("cron(0 8 ? * 2#1 *)") == "0 0 8 * * 1#1"
    assert croniter_of("cron(0 8 L * ? *)") == "0 0 8 L * *"


BERLIN = {"latitude": 52.52, "longitude": 13.405, "locationName": "Berlin", "timezone": "Europe/Berlin"}


@pytest.mark.parametrize("kind", ["sunrise", "sunset"])
def test_sun_schedules_follow_the_settings_location_and_match_astral(kind: str) -> None:
    harness = Harness(datetime(2026, 6, 20, 0, 0, tzinfo=UTC))
    harness.repository.put(Kind.SETTINGS, {"id": SETTINGS_ID, "geoLocation": BERLIN})
    harness.repository.put(Kind.SCHEDULE, {"id": "sun", "type": kind, "spec": {"frequency": "daily"},
                                           "handlers": ["hook"]})
    reload_registry(harness.automation)
    observer = Observer(latitude=52.52, longitude=13.405)
    compute = sunrise if kind == "sunrise" else sunset
    day = date(2026, 6, 20)
    for offset in range(2):
        expected = compute(observer, day + timedelta(days=offset), tzinfo=UTC)
        due = harness.registry.next_due()
        assert due is not None and abs((due - expected).total_seconds()) < 1, (due, expected)
        harness.advance_to(due)  # fires, then re-arms with the next day's event
    assert len(harness.queue.sent) == 2


def test_moving_the_location_moves_the_sun_schedule() -> None:
    harness = Harness(datetime(2026, 6, 20, 0, 0, tzinfo=UTC))
    harness.repository.put(Kind.SETTINGS, {"id": SETTINGS_ID, "geoLocation": BERLIN})
    harness.repository.put(Kind.SCHEDULE, {"id": "sun", "type": "sunrise", "spec": {"frequency": "daily"}})
    reload_registry(harness.automation)
    berlin = harness.registry.next_due()
    harness.repository.put(Kind.SETTINGS, {"id": SETTINGS_ID, "geoLocation": {
        "latitude": 40.4168, "longitude": -3.7038, "timezone": "Europe/Madrid"}})
    assert harness.jobs.run("sun") == 1
    madrid = harness.registry.next_due()
    assert berlin is not None and madrid is not None and madrid - berlin > timedelta(hours=1)


def test_schedule_run_now_queues_even_when_disabled_and_keeps_it_disabled() -> None:
    harness = Harness()
    harness.repository.put(Kind.SCHEDULE, {**berlin_cron("morning", "0 0 9 * * *"), "enabled": False})
    runs = harness.schedules.run_now(["morning"])
    assert runs[0].to_dict()["queued"] == ["hook"]
    stored = harness.repository.get(Kind.SCHEDULE, "morning")
    assert stored is not None and stored["enabled"] is False and stored["state"]["executedCount"] == 1


def test_node_state_job_uses_the_settings_default_and_discovery_reaches_mysensors_gateways() -> None:
    harness = Harness()
    harness.repository.put(Kind.SETTINGS, {"id": SETTINGS_ID, "nodeStateJob": {"inactiveDuration": "1h"}})
    harness.repository.put(Kind.NODE, {"id": "gw.1", "gatewayId": "gw", "nodeId": "1", "labels": {},
                                       "lastSeen": "2026-03-27T11:30:00.000Z", "state": {"status": "up"}})
    assert harness.jobs.run("node_state") == []  # 30 min silent, 1 h allowed
    harness.clock.now = T0 + timedelta(hours=1)
    assert harness.jobs.run("node_state") == ["gw.1"]

    downlink = LocalDownlink()
    jobs = SystemJobs(harness.automation, downlink)
    for gateway_id, provider, enabled in (("ms", "mysensors_v2", True), ("off", "mysensors_v2", False),
                                          ("tas", "tasmota", True)):
        harness.repository.put(Kind.GATEWAY, {**Gateway(id=gateway_id, provider={"type": provider}).record(),
                                              "enabled": enabled})
    assert jobs.run("node_discover") == ["ms"]
    assert [d.raw for d in downlink.sent] == ["255;255;3;0;20;"]


def test_bad_scheduler_payloads_are_answered_not_raised() -> None:
    harness = Harness()
    assert "error" in harness.scheduled.handle({"kind": "schedule"})
    assert "error" in harness.scheduled.handle({"kind": "nope", "id": "x"})
    assert harness.scheduled.handle({"kind": "schedule", "id": "gone"})["message"] == "schedule not found"


def test_sync_and_timer_agree_on_a_schedule_put_through_the_core() -> None:
    harness = Harness()
    sync_schedule(harness.registry, berlin_cron("s", "0 0 9 * * MON-FRI"), now=T0,
                  location=Location(52.52, 13.405, "Berlin", "Europe/Berlin"))
    due = harness.registry.next_due()
    assert due == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # Friday 27th 09:00 passed; next is Monday (CEST)


def test_an_overdue_re_enable_fires_right_after_a_restart() -> None:
    harness = Harness()
    harness.repository.put(Kind.TASK, {**threshold_task(autoDisable=True, reEnable=True, reEnableDuration="5m"),
                                       "enabled": False, "state": {"reEnableAt": "2026-03-27T11:00:00.000Z"}})
    reload_registry(harness.automation)  # what the local stack does at start
    fired = harness.advance_to(T0 + timedelta(seconds=5))
    assert [p.get("action") for p in fired] == ["reenable"]
    assert harness.task()["enabled"] is True


def test_the_timer_thread_fires_entries_on_its_own() -> None:
    fired: list[dict[str, Any]] = []
    timers = LocalScheduleRegistry()
    now = datetime.now(UTC)
    timers.put("soon", f"at({(now + timedelta(seconds=2)).strftime('%Y-%m-%dT%H:%M:%S')})", "UTC",
               {"kind": "task", "id": "x"}, None, None)
    timers.start(fired.append)
    try:
        deadline = now + timedelta(seconds=6)
        while not fired and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    finally:
        timers.stop()
    assert [p["id"] for p in fired] == ["x"] and fired[0]["scheduledTime"].endswith("Z")
    assert timers.next_due() is None  # at(...) runs once
