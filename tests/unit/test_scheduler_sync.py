"""scheduler_sync against the in-memory registry: what is put, what is deleted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.schedules_local import LocalScheduleRegistry
from chalicelib.core.automation.clock import Location
from chalicelib.core.automation.scheduler_sync import registry_name, remove, sync_schedule, sync_task

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
CRON: dict[str, Any] = {"id": "s1", "type": "cron", "spec": {"cronExpression": "0 30 7 * * *"},
                        "timezone": "Europe/Paris"}


def test_enabled_cron_schedule_is_put() -> None:
    registry = LocalScheduleRegistry()
    assert sync_schedule(registry, CRON, now=NOW) is True
    entry = registry.get("schedule-s1")
    assert entry is not None
    assert (entry.expression, entry.timezone) == ("cron(30 7 * * ? *)", "Europe/Paris")
    assert entry.payload == {"kind": "schedule", "id": "s1"}
    assert (entry.start, entry.end) == (None, None)


def test_disabled_schedule_is_deleted() -> None:
    registry = LocalScheduleRegistry()
    sync_schedule(registry, CRON, now=NOW)
    assert sync_schedule(registry, {**CRON, "enabled": False}, now=NOW) is False
    assert registry.names() == set()


def test_past_on_date_and_sun_without_location_are_deleted() -> None:
    registry = LocalScheduleRegistry()
    past = {"id": "s2", "type": "simple", "spec": {"frequency": "on_date", "date": "2020-01-01", "time": "08:00"}}
    registry.put("schedule-s2", "at(2020-01-01T08:00:00)", "UTC", {}, None, None)
    assert sync_schedule(registry, past, now=NOW) is False
    assert sync_schedule(registry, {"id": "s3", "type": "sunset", "spec": {}}, now=NOW) is False
    assert registry.names() == set()


def test_sun_schedule_is_a_one_shot() -> None:
    registry = LocalScheduleRegistry()
    location = Location(48.8566, 2.3522, "Paris", "Europe/Paris")
    assert sync_schedule(registry, {"id": "s4", "type": "sunrise", "spec": {}}, now=NOW, location=location)
    entry = registry.get("schedule-s4")
    assert entry is not None and entry.expression.startswith("at(2030-06-02T05:")
    assert entry.timezone == "Europe/Paris"


def test_interval_task_put_and_others_deleted() -> None:
    registry = LocalScheduleRegistry()
    assert sync_task(registry, {"id": "t1", "executionInterval": "15m"}, now=NOW) is True
    entry = registry.get("task-t1")
    assert entry is not None and (entry.expression, entry.timezone) == ("rate(15 minutes)", "UTC")
    assert entry.payload == {"kind": "task", "id": "t1"}
    assert sync_task(registry, {"id": "t1", "executionInterval": "15m", "enabled": False}, now=NOW) is False
    assert registry.names() == set()
    sync_task(registry, {"id": "t1", "executionInterval": "15m"}, now=NOW)
    assert sync_task(registry, {"id": "t1"}, now=NOW) is False
    assert registry.names() == set()


def test_sub_minute_interval_is_a_one_shot() -> None:
    registry = LocalScheduleRegistry()
    sync_task(registry, {"id": "t2", "executionInterval": "30s"}, now=NOW)
    entry = registry.get("task-t2")
    assert entry is not None and entry.expression == "at(2030-06-01T12:00:30)"


def test_remove_and_names() -> None:
    registry = LocalScheduleRegistry()
    sync_schedule(registry, CRON, now=NOW)
    sync_task(registry, {"id": "t1", "executionInterval": "1h"}, now=NOW)
    assert registry.names() == {"schedule-s1", "task-t1"}
    remove(registry, "schedule", "s1")
    remove(registry, "schedule", "s1")  # already gone: fine
    assert registry.names() == {"task-t1"}
    with pytest.raises(ValueError):
        registry_name("handler", "h1")  # type: ignore[arg-type]


def test_registry_names_are_valid_eventbridge_scheduler_names_and_distinct() -> None:
    import re

    ids = ["plain", "with:colon", "with.dot", "with@at+plus~tilde", "x" * 128, "x" * 127 + "y", "with_colon"]
    names = [registry_name("schedule", i) for i in ids]
    assert names[0] == "schedule-plain"
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"[0-9A-Za-z_-]{1,55}", name), name  # room for a ``.reenable`` suffix within 64
