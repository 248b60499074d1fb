"""Schedules: next runs per type, time zones across DST, the sun from astral, validity, EventBridge expressions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from astral import Observer
from astral.sun import sunrise, sunset
from pydantic import ValidationError

from chalicelib.core.automation.clock import Location
from chalicelib.core.automation.models import Schedule
from chalicelib.core.automation.schedules import (
    ScheduleError,
    aws_cron,
    fire_schedule,
    is_valid_at,
    next_run,
    next_runs,
    task_scheduler_expression,
    to_scheduler_expression,
    validity_bounds,
)
from chalicelib.core.model import Record

BERLIN = Location(latitude=52.52, longitude=13.405, name="Berlin", timezone="Europe/Berlin")
SVALBARD = Location(latitude=78.22, longitude=15.65, name="Longyearbyen", timezone="Arctic/Longyearbyen")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def schedule(kind: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "s", "type": kind, "spec": spec, **extra}


class NoLookup:
    def get_by_quick_id(self, quick_id: str) -> Record | None:
        return None

    def find_by_labels(self, kind: str, labels: Mapping[str, str]) -> list[Record]:
        return []


# --------------------------------------------------------------------------------------------- cron and DST


def test_daily_cron_in_berlin_skips_the_missing_hour_in_spring() -> None:
    at_half_past_two = schedule("cron", {"cronExpression": "0 30 2 * * *"}, timezone="Europe/Berlin")
    # 2024-03-31: clocks jump from 02:00 CET to 03:00 CEST, 02:30 does not exist that day.
    assert next_runs(at_half_past_two, utc(2024, 3, 29, 12), count=3) == [
        utc(2024, 3, 30, 1, 30),   # 02:30 CET
        utc(2024, 4, 1, 0, 30),    # 02:30 CEST, the 31st is skipped
        utc(2024, 4, 2, 0, 30),
    ]


def test_daily_cron_in_berlin_runs_once_when_the_hour_repeats_in_autumn() -> None:
    at_half_past_two = schedule("cron", {"cronExpression": "0 30 2 * * *"}, timezone="Europe/Berlin")
    # 2024-10-27: clocks go back from 03:00 CEST to 02:00 CET, 02:30 happens twice; it runs at the first.
    assert next_runs(at_half_past_two, utc(2024, 10, 26, 12), count=2) == [
        utc(2024, 10, 27, 0, 30),  # 02:30 CEST
        utc(2024, 10, 28, 1, 30),  # 02:30 CET
    ]
    # Asked from between the two 02:30s, the second one is not a run.
    assert next_run(at_half_past_two, utc(2024, 10, 27, 0, 45)) == utc(2024, 10, 28, 1, 30)


def test_hourly_cron_across_both_changes() -> None:
    hourly = schedule("cron", {"cronExpression": "0 0 * * * *"}, timezone="Europe/Berlin")
    assert next_runs(hourly, utc(2024, 3, 30, 23, 30), count=3) == [
        utc(2024, 3, 31, 0), utc(2024, 3, 31, 1), utc(2024, 3, 31, 2)]  # 01:00 CET, 03:00 CEST, 04:00 CEST
    assert next_runs(hourly, utc(2024, 10, 26, 23, 30), count=3) == [
        utc(2024, 10, 27, 0), utc(2024, 10, 27, 2), utc(2024, 10, 27, 3)]  # 02:00 CEST once, then 03:00 CET


def test_cron_with_seconds_and_short_forms() -> None:
    every_fifteen_seconds = schedule("cron", {"cronExpression": "*/15 * * * * *"})
    assert next_runs(every_fifteen_seconds, utc(2024, 1, 1, 0, 0, 7), count=3) == [
        utc(2024, 1, 1, 0, 0, 15), utc(2024, 1, 1, 0, 0, 30), utc(2024, 1, 1, 0, 0, 45)]
    five_fields = schedule("cron", {"cronExpression": "30 6 * * 1-5"})
    assert next_run(five_fields, utc(2024, 1, 6)) == utc(2024, 1, 8, 6, 30)  # Saturday → Monday
    assert next_run(schedule("cron", {"cronExpression": "@daily"}), utc(2024, 1, 1, 5)) == utc(2024, 1, 2)


# --------------------------------------------------------------------------------------------- repeat and simple


def test_repeat_counts_from_the_last_run_and_stops_at_the_count() -> None:
    fresh = schedule("repeat", {"interval": "90s", "repeatCount": 3})
    assert next_runs(fresh, utc(2024, 1, 1), count=5) == [
        utc(2024, 1, 1, 0, 1, 30), utc(2024, 1, 1, 0, 3), utc(2024, 1, 1, 0, 4, 30)]
    ran = schedule("repeat", {"interval": "1h"}, state={"lastRun": "2024-01-01T00:10:00.000Z", "executedCount": 1})
    assert next_run(ran, utc(2024, 1, 1, 3, 20)) == utc(2024, 1, 1, 4, 10)
    done = schedule("repeat", {"interval": "1h", "repeatCount": 2}, state={"executedCount": 2})
    assert next_run(done, utc(2024, 1, 1)) is None


def test_simple_daily_weekly_monthly_and_on_date() -> None:
    tz = {"timezone": "Europe/Berlin"}
    daily = schedule("simple", {"frequency": "daily", "time": "07:15"}, **tz)
    assert next_runs(daily, utc(2024, 7, 1, 6), count=2) == [utc(2024, 7, 2, 5, 15), utc(2024, 7, 3, 5, 15)]
    weekdays = schedule("simple", {"frequency": "daily", "dayOfWeek": "1-5", "time": "07:15"}, **tz)
    assert next_run(weekdays, utc(2024, 7, 5, 6)) == utc(2024, 7, 8, 5, 15)  # Friday after 07:15 → Monday
    weekly = schedule("simple", {"frequency": "weekly", "dayOfWeek": [0, 3], "time": "20:00:30"}, **tz)
    assert next_runs(weekly, utc(2024, 7, 1), count=2) == [utc(2024, 7, 3, 18, 0, 30), utc(2024, 7, 7, 18, 0, 30)]
    monthly = schedule("simple", {"frequency": "monthly", "dateOfMonth": 31, "time": "12:00"}, **tz)
    assert next_runs(monthly, utc(2024, 4, 1), count=2) == [utc(2024, 5, 31, 10), utc(2024, 7, 31, 10)]
    once = schedule("simple", {"frequency": "on_date", "date": "2024-12-24", "time": "18:00"}, **tz)
    assert next_runs(once, utc(2024, 1, 1), count=3) == [utc(2024, 12, 24, 17)]
    assert next_run(once, utc(2024, 12, 24, 17)) is None


# --------------------------------------------------------------------------------------------- sun


def test_sunrise_and_sunset_equal_astral_for_a_fixed_place_and_date() -> None:
    observer = Observer(latitude=BERLIN.latitude, longitude=BERLIN.longitude)
    expected_rise = sunrise(observer, date(2024, 6, 21), tzinfo=BERLIN.tz)
    expected_set = sunset(observer, date(2024, 6, 21), tzinfo=BERLIN.tz)
    rise = schedule("sunrise", {"frequency": "daily"})
    assert next_run(rise, utc(2024, 6, 20, 12), BERLIN) == expected_rise
    assert next_run(schedule("sunset", {}), utc(2024, 6, 21, 12), BERLIN) == expected_set
    early = schedule("sunrise", {"offset": "-30m"})
    assert next_run(early, utc(2024, 6, 20, 12), BERLIN) == expected_rise - timedelta(minutes=30)
    assert expected_rise.hour == 4 and expected_rise.minute == 43  # astral's number for Berlin, midsummer


def test_sun_schedules_need_a_location_and_skip_polar_days() -> None:
    with pytest.raises(ScheduleError, match="location"):
        next_run(schedule("sunrise", {}), utc(2024, 6, 21))
    midnight_sun = next_run(schedule("sunset", {}), utc(2024, 6, 21), SVALBARD)
    assert midnight_sun is not None and midnight_sun > utc(2024, 8, 1)  # no sunset there until late August
    weekly = schedule("sunset", {"frequency": "weekly", "dayOfWeek": "SAT"})
    assert next_run(weekly, utc(2024, 6, 17), BERLIN).astimezone(BERLIN.tz).date() == date(2024, 6, 22)  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------- validity


def test_validity_dates_and_everyday_time_window() -> None:
    window = schedule("repeat", {"interval": "1h"}, timezone="Europe/Berlin", validity={
        "date": {"from": "2024-07-01", "to": "2024-07-31"}, "time": {"from": "08:00", "to": "18:00"},
        "validateTimeEveryday": True})
    assert is_valid_at(window, utc(2024, 7, 10, 6))       # 08:00 local
    assert not is_valid_at(window, utc(2024, 7, 10, 5, 59))
    assert not is_valid_at(window, utc(2024, 7, 10, 16, 1))
    assert not is_valid_at(window, utc(2024, 6, 30, 10))
    assert is_valid_at(window, utc(2024, 7, 31, 15))
    assert not is_valid_at(window, utc(2024, 8, 1, 10))
    assert next_run(window, utc(2024, 7, 10, 17)) == utc(2024, 7, 11, 6)  # skips the night to the opening
    assert next_run(window, utc(2024, 8, 1)) is None
    assert validity_bounds(window) == (datetime(2024, 7, 1, tzinfo=BERLIN.tz),
                                       datetime(2024, 7, 31, 23, 59, 59, 999999, tzinfo=BERLIN.tz))


def test_validity_times_only_sharpen_the_date_ends_unless_everyday() -> None:
    ends = schedule("repeat", {"interval": "1h"}, validity={
        "date": {"from": "2024-07-01", "to": "2024-07-03"}, "time": {"from": "08:00", "to": "18:00"}})
    assert not is_valid_at(ends, utc(2024, 7, 1, 7))
    assert is_valid_at(ends, utc(2024, 7, 2, 3))            # the middle day is valid all day
    assert not is_valid_at(ends, utc(2024, 7, 3, 19))


def test_time_window_without_dates_applies_daily_and_may_wrap_midnight() -> None:
    night = schedule("cron", {"cronExpression": "0 0 * * * *"}, validity={"time": {"from": "22:00", "to": "06:00"}})
    assert is_valid_at(night, utc(2024, 1, 1, 23)) and is_valid_at(night, utc(2024, 1, 2, 5))
    assert not is_valid_at(night, utc(2024, 1, 2, 12))
    assert next_runs(night, utc(2024, 1, 2, 5, 30), count=2) == [utc(2024, 1, 2, 6), utc(2024, 1, 2, 22)]
    switched_off = {**night, "validity": {"enabled": False, "time": {"from": "22:00", "to": "06:00"}}}
    assert is_valid_at(switched_off, utc(2024, 1, 2, 12))


# --------------------------------------------------------------------------------------------- EventBridge


@pytest.mark.parametrize(("expression", "expected"), [
    ("0 30 2 * * *", "cron(30 2 * * ? *)"),
    ("0 */15 9-17 * * 1-5", "cron(0,15,30,45 9-17 ? * MON,TUE,WED,THU,FRI *)"),
    ("0 0 12 * * 0,7", "cron(0 12 ? * SUN *)"),
    ("0 0 12 1,15 * *", "cron(0 12 1,15 * ? *)"),
    ("0 0 6 L * *", "cron(0 6 L * ? *)"),
    ("0 0 9 * * 5#3", "cron(0 9 ? * 6#3 *)"),
    ("0 0 0 1 JAN-MAR *", "cron(0 0 1 1-3 ? *)"),
    ("30 0 2 * * *", None),        # seconds: not expressible
    ("0 0 2 1 * 1", None),         # both day fields restricted (cron ORs them)
])
def test_cron_to_eventbridge(expression: str, expected: str | None) -> None:
    assert aws_cron(expression) == expected


def test_scheduler_expressions_per_type() -> None:
    tz = {"timezone": "Europe/Berlin"}
    cron = to_scheduler_expression(schedule("cron", {"cronExpression": "0 30 2 * * *"}, **tz))
    assert cron == ("cron(30 2 * * ? *)", "Europe/Berlin") and not cron.one_shot
    assert to_scheduler_expression(schedule("repeat", {"interval": "1m"})) == ("rate(1 minute)", "UTC")
    assert to_scheduler_expression(schedule("repeat", {"interval": "2h"})).expression == "rate(2 hours)"
    assert to_scheduler_expression(schedule("repeat", {"interval": "48h"})).expression == "rate(2 days)"
    weekly = to_scheduler_expression(schedule("simple", {"frequency": "weekly", "dayOfWeek": "1,3", "time": "7:15"},
                                              **tz))
    assert weekly.expression == "cron(15 7 ? * MON,WED *)"
    monthly = schedule("simple", {"frequency": "monthly", "dateOfMonth": 5, "time": "12:00"})
    assert to_scheduler_expression(monthly).expression == "cron(0 12 5 * ? *)"


def test_one_shot_expressions_for_what_eventbridge_cannot_repeat() -> None:
    sub_minute = schedule("repeat", {"interval": "30s"})
    with pytest.raises(ScheduleError, match="after"):
        to_scheduler_expression(sub_minute)
    shot = to_scheduler_expression(sub_minute, after=utc(2024, 1, 1))
    assert shot == ("at(2024-01-01T00:00:30)", "UTC") and shot.one_shot
    rise = to_scheduler_expression(schedule("sunrise", {}), after=utc(2024, 6, 20, 12), location=BERLIN)
    assert rise == ("at(2024-06-21T04:43:34)", "Europe/Berlin")
    once = schedule("simple", {"frequency": "on_date", "date": "2024-12-24", "time": "18:00"},
                    timezone="Europe/Berlin")
    assert to_scheduler_expression(once, after=utc(2024, 1, 1)) == ("at(2024-12-24T18:00:00)", "Europe/Berlin")
    with pytest.raises(ScheduleError, match="no run"):
        to_scheduler_expression(once, after=utc(2025, 1, 1))
    seconds = to_scheduler_expression(schedule("cron", {"cronExpression": "*/20 * * * * *"}), after=utc(2024, 1, 1))
    assert seconds == ("at(2024-01-01T00:00:20)", "UTC")


def test_interval_tasks_map_to_rates() -> None:
    assert task_scheduler_expression({"id": "t"}) is None
    assert task_scheduler_expression({"id": "t", "executionInterval": "5m"}) == ("rate(5 minutes)", "UTC")
    assert task_scheduler_expression({"id": "t", "executionInterval": "20s"}, after=utc(2024, 1, 1)) == (
        "at(2024-01-01T00:00:20)", "UTC")


# --------------------------------------------------------------------------------------------- firing


def test_fire_schedule_renders_parameters_and_advances_state() -> None:
    spec = schedule("repeat", {"interval": "10m", "repeatCount": 2}, handlers=["notify"],
                    variables={"who": "{{ schedule.id }}"}, handlerParameters={"text": "{{ who }} at {{ now().hour }}"})
    first = fire_schedule(spec, utc(2024, 1, 1, 8), NoLookup())
    assert first.fired and first.enabled
    assert first.trigger_id == "s@2024-01-01T08:00:00.000Z"
    assert [(r.handler_id, r.parameters, r.source) for r in first.handler_requests] == [
        ("notify", {"text": "s at 8"}, "schedule:s")]
    assert first.new_state == {"lastRun": "2024-01-01T08:00:00.000Z", "lastStatus": True, "message": "",
                               "executedCount": 1}
    assert first.next_run == utc(2024, 1, 1, 8, 10)
    second = fire_schedule({**spec, "state": first.new_state}, utc(2024, 1, 1, 8, 10), NoLookup())
    assert second.fired and not second.enabled and second.next_run is None
    assert "disabled" in second.new_state["message"]


def test_fire_schedule_respects_validity_and_on_date() -> None:
    windowed = schedule("cron", {"cronExpression": "0 0 * * * *"}, validity={"time": {"from": "08:00", "to": "09:00"}})
    outside = fire_schedule(windowed, utc(2024, 1, 1, 12), NoLookup())
    assert not outside.fired and outside.new_state["executedCount"] == 0
    assert outside.next_run == utc(2024, 1, 2, 8)
    once = schedule("simple", {"frequency": "on_date", "date": "2024-12-24", "time": "18:00"})
    ran = fire_schedule(once, utc(2024, 12, 24, 18), NoLookup())
    assert ran.fired and not ran.enabled
    failing = schedule("cron", {"cronExpression": "@hourly"}, handlers=["h"],
                       variables={"x": {"type": "resource_by_quick_id", "quickId": "field:gw.1.1.V_TEMP"}})
    broken = fire_schedule(failing, utc(2024, 1, 1), NoLookup())
    assert broken.fired and not broken.handler_requests and broken.new_state["lastStatus"] is False
    assert "does not exist" in broken.new_state["message"]


# --------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("data", "location", "message"), [
    (schedule("cron", {"cronExpression": "0 61 * * * *"}), "spec", "cronExpression"),
    (schedule("cron", {"cronExpression": "* * *"}), "spec", "6 fields"),
    (schedule("repeat", {"interval": "0s"}), "spec", "interval"),
    (schedule("simple", {"frequency": "weekly"}), "spec", "dayOfWeek"),
    (schedule("simple", {"frequency": "daily", "time": "25:00"}), "spec", "time"),
    (schedule("sunset", {"offset": "soon"}), "spec", "offset"),
    (schedule("cron", {"cronExpression": "@hourly"}, timezone="Mars/Olympus"), "timezone", "time zone"),
    (schedule("cron", {"cronExpression": "@hourly"}, validity={"date": {"from": "2024-02-01", "to": "2024-01-01"}}),
     "validity", "after"),
    (schedule("weekly", {}), "type", "repeat"),
])
def test_invalid_schedules_are_refused_naming_the_field(data: dict[str, Any], location: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Schedule.model_validate(data)
    errors = caught.value.errors()
    assert any(".".join(map(str, e["loc"])).startswith(location) and message in str(e["msg"]) for e in errors), errors


@pytest.mark.parametrize("data", [
    schedule("repeat", {"interval": "1h30m", "repeatCount": 3}),
    schedule("cron", {"cronExpression": "0 30 2 * * *"}, timezone="Europe/Berlin"),
    schedule("simple", {"frequency": "weekly", "dayOfWeek": [1, 3], "time": "07:15"}),
    schedule("sunset", {"frequency": "daily", "offset": "-15m"}, validity={
        "date": {"from": "2024-01-01", "to": "2024-12-31"}, "time": {"from": "06:00"}, "validateTimeEveryday": True}),
])
def test_schedule_records_round_trip(data: dict[str, Any]) -> None:
    record = Schedule.model_validate(data).record()
    assert record["type"] == data["type"] and record["spec"].items() >= data["spec"].items()
    assert Schedule.model_validate(record).record() == record
