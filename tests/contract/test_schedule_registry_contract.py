"""The schedule registry contract: named schedules are created, replaced and removed, and fire their payload.

What is registered is read back where each registry keeps it (the local timer's entries, EventBridge
Scheduler's ``get_schedule`` under moto); what the target receives is the local timer's call, or the schedule's
target input in AWS. Both carry the payload plus ``scheduledTime`` (the due instant locally; Scheduler's
``<aws.scheduler.scheduled-time>`` placeholder, which it fills in when it fires).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.contract.harnesses import ScheduleHarness

START = datetime(2030, 1, 1, tzinfo=UTC)
END = datetime(2031, 6, 30, 12, 0, tzinfo=UTC)


def test_a_new_registry_holds_no_schedule(schedules: ScheduleHarness) -> None:
    assert schedules.registry.names() == set()


def test_put_registers_the_schedule_as_given(schedules: ScheduleHarness) -> None:
    schedules.registry.put("schedule-wake", "cron(30 7 ? * MON-FRI *)", "Europe/Berlin",
                           {"kind": "schedule", "id": "wake"}, START, END)

    assert schedules.registry.names() == {"schedule-wake"}
    registered = schedules.registered("schedule-wake")
    assert (registered.expression, registered.timezone) == ("cron(30 7 ? * MON-FRI *)", "Europe/Berlin")
    assert (registered.start, registered.end) == (START, END)


def test_the_target_receives_the_payload_and_the_scheduled_time(schedules: ScheduleHarness) -> None:
    schedules.registry.put("task-poll", "rate(5 minutes)", "UTC", {"kind": "task", "id": "poll"}, None, None)

    received = schedules.target_input("task-poll")

    assert set(received) == {"kind", "id", "scheduledTime"}
    assert (received["kind"], received["id"]) == ("task", "poll")
    assert isinstance(received["scheduledTime"], str) and received["scheduledTime"]


def test_put_again_replaces_every_setting(schedules: ScheduleHarness) -> None:
    schedules.registry.put("task-poll", "rate(5 minutes)", "UTC", {"kind": "task", "id": "poll"}, START, END)
    schedules.registry.put("task-poll", "cron(0 6 * * ? *)", "America/New_York", {"kind": "task", "id": "poll2"},
                           None, None)

    assert schedules.registry.names() == {"task-poll"}
    registered = schedules.registered("task-poll")
    assert (registered.expression, registered.timezone) == ("cron(0 6 * * ? *)", "America/New_York")
    assert (registered.start, registered.end) == (None, None), "a replaced schedule keeps no old bound"
    received = schedules.target_input("task-poll")
    assert (received["kind"], received["id"]) == ("task", "poll2")


def test_delete_removes_only_the_named_schedule(schedules: ScheduleHarness) -> None:
    for name in ("a", "b", "c"):
        schedules.registry.put(name, "rate(1 hour)", "UTC", {"kind": "task", "id": name}, None, None)

    schedules.registry.delete("b")

    assert schedules.registry.names() == {"a", "c"}
    assert schedules.target_input("c")["id"] == "c"


def test_deleting_a_missing_schedule_is_not_an_error(schedules: ScheduleHarness) -> None:
    schedules.registry.put("a", "rate(1 hour)", "UTC", {}, None, None)

    schedules.registry.delete("never-was")
    schedules.registry.delete("a")
    schedules.registry.delete("a")

    assert schedules.registry.names() == set()


def test_names_lists_every_schedule_past_one_page(schedules: ScheduleHarness) -> None:
    names = {f"task-{i:03d}" for i in range(130)}  # list_schedules pages hold at most 100
    for name in names:
        schedules.registry.put(name, "rate(1 day)", "UTC", {"kind": "task", "id": name}, None, None)

    assert schedules.registry.names() == names


@pytest.mark.parametrize("expression", ["rate(10 minutes)", "rate(1 day)", "cron(0 12 L * ? *)",
                                        "cron(15 10 ? * 6#3 *)", "at(2030-05-01T08:00:00)"])
def test_every_kind_of_expression_is_accepted(schedules: ScheduleHarness, expression: str) -> None:
    schedules.registry.put("s", expression, "Europe/Paris", {"kind": "schedule", "id": "s"}, None, None)

    assert schedules.registered("s").expression == expression
    assert schedules.target_input("s")["id"] == "s"
