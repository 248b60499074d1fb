"""Schedules, after MyController v2: when they run, when they may run, how EventBridge Scheduler runs them, and
what one run does.

* ``next_run(schedule, after, location)``: the first run strictly after ``after`` that is also inside the
  validity window, or ``None`` (a finished repeat count, a past date, a window that has closed).
* ``is_valid_at(schedule, when)``: the validity window. Dates are inclusive local dates; with
  ``validateTimeEveryday`` (or when no dates are given) ``time.from`` to ``time.to`` is a window every day
  (``from`` after ``to`` wraps midnight); otherwise the times only sharpen the two date ends, as in the reference.
* ``to_scheduler_expression(schedule)``: the EventBridge Scheduler expression and time zone.
* ``fire_schedule(schedule, now, lookup)``: one run, pure (state in, state out, handler requests).

Types: ``repeat`` (``interval``, ``repeatCount``; runs at ``lastRun + k·interval``, or ``after + interval`` for a
schedule that never ran), ``cron`` (6 fields with seconds first, or 5; ``@daily`` and friends), ``simple``
(``daily|weekly|monthly|on_date`` at ``time``; ``dayOfWeek`` also restricts ``daily``, as in the reference),
``sunrise``/``sunset`` (the simple spec's days, at the sun event plus ``offset``, from the location, astral).

**Time zones and DST.** Cron and simple schedules are read on the wall clock of the schedule's zone
(``timezone``, else the location's, else UTC), with EventBridge Scheduler's rules so that the local timer and
AWS agree: a wall time that does not exist (spring forward) is skipped, and a wall time that happens twice (fall
back) runs once, at its first occurrence. ``repeat`` is a fixed duration, unaffected by DST.

**EventBridge Scheduler mapping** (``to_scheduler_expression``; AWS runs with one-minute precision):

============================  ===================================================================
repeat, whole minutes         ``rate(N minutes|hours|days)`` (set ``StartDate`` to ``next_run``)
repeat, under / not a minute  ``at(...)`` of the next run, re-armed after each run
cron / simple, second 0       ``cron(min hour dom month dow year)``, day-of-week 1-7 from Sunday,
                              ``?`` in day-of-month or day-of-week
cron with other seconds, or   ``at(...)`` of the next run, re-armed after each run
both day fields restricted
simple on_date                ``at(date time)``; runs once, then the schedule disables itself
sunrise / sunset              ``at(...)`` of the next run, re-armed after each run and whenever
                              the location changes (the sun moves every day)
============================  ===================================================================

``SchedulerExpression.one_shot`` says which; one-shot expressions need ``after`` (and the location for sun
schedules) to be computed. ``validity_bounds`` gives ``StartDate``/``EndDate`` for the date window; each run
still checks ``is_valid_at``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Final, NamedTuple

from croniter import croniter

from ..errors import DomainError
from ..model import Record
from .clock import (
    Location,
    SunEvent,
    aware,
    from_iso,
    iso,
    parse_duration,
    parse_time_of_day,
    sun_event,
    zone,
    zone_name,
)
from .handlers import HandlerParameterError, render_parameters
from .javascript import limits_for, run_script
from .models import CronSpec, RepeatSpec, Schedule, SimpleSpec, Task, WebhookCall, day_of_week_field, normalize_cron
from .tasks import HandlerRequest, ResourceLookup, VariableError, WebhookResolver, resolve_variables
from .templates import ENGINE, TemplateEngine

MAX_STEPS: Final = 2_000
"""Candidate runs examined by one ``next_run`` before giving up (validity windows skip ahead, so this is slack)."""
SUN_HORIZON_DAYS: Final = 400
_TINY: Final = timedelta(microseconds=1)
_AWS_DAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class ScheduleError(DomainError, ValueError):
    """A schedule that cannot be computed (no location for a sun schedule, no ``after`` for a one-shot)."""


def _model(schedule: Schedule | Record) -> Schedule:
    return schedule if isinstance(schedule, Schedule) else Schedule.model_validate(schedule)


def schedule_zone(schedule: Schedule | Record, location: Location | None = None) -> tzinfo:
    """The zone a schedule's wall-clock times are read in: its own, else the location's, else UTC."""
    model = _model(schedule)
    if model.timezone:
        return zone(model.timezone)
    return location.tz if location is not None else UTC


def localize(naive: datetime, tz: tzinfo) -> datetime | None:
    """A wall-clock time in ``tz`` as an instant: ``None`` if it does not exist (spring forward); the first of
    two if it happens twice (fall back)."""
    candidate = naive.replace(tzinfo=tz, fold=0)
    if candidate.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return candidate


def _localize_forward(naive: datetime, tz: tzinfo) -> datetime:
    """Like ``localize``, but a time in a spring-forward gap becomes the first instant after the gap."""
    instant = localize(naive, tz)
    if instant is not None:
        return instant
    return naive.replace(tzinfo=tz, fold=1).astimezone(UTC).astimezone(tz)


# --------------------------------------------------------------------------------------------- validity


@dataclass(frozen=True, slots=True)
class _Window:
    start: datetime | None
    end: datetime | None
    daily_from: time | None
    daily_to: time | None

    @property
    def daily(self) -> bool:
        return self.daily_from is not None or self.daily_to is not None

    def in_day(self, moment: time) -> bool:
        low, high = self.daily_from, self.daily_to
        if low is not None and high is not None and low > high:  # wraps midnight
            return moment >= low or moment <= high
        return (low is None or moment >= low) and (high is None or moment <= high)


def _window(schedule: Schedule, tz: tzinfo) -> _Window | None:
    validity = schedule.validity
    if not validity.enabled:
        return None
    time_from = parse_time_of_day(validity.time.from_) if validity.time.from_ else None
    time_to = parse_time_of_day(validity.time.to) if validity.time.to else None
    has_dates = bool(validity.date.from_ or validity.date.to)
    daily = validity.validate_time_everyday or not has_dates
    start = end = None
    if validity.date.from_:
        start_time = time_from if time_from is not None and not daily else time(0, 0)
        start = _localize_forward(datetime.combine(date.fromisoformat(validity.date.from_), start_time), tz)
    if validity.date.to:
        end_time = time_to if time_to is not None and not daily else time(23, 59, 59, 999_999)
        end = _localize_forward(datetime.combine(date.fromisoformat(validity.date.to), end_time), tz)
    if start is None and end is None and not (daily and (time_from or time_to)):
        return None
    return _Window(start, end, time_from if daily else None, time_to if daily else None)


def is_valid_at(schedule: Schedule | Record, when: datetime, location: Location | None = None) -> bool:
    """Whether the schedule may run at ``when`` (its validity window; always, when validity is off)."""
    model = _model(schedule)
    tz = schedule_zone(model, location)
    window = _window(model, tz)
    if window is None:
        return True
    local = aware(when, "when").astimezone(tz)
    if window.start is not None and local < window.start:
        return False
    if window.end is not None and local > window.end:
        return False
    return not window.daily or window.in_day(local.time().replace(tzinfo=None))


def _next_valid_start(window: _Window, when: datetime, tz: tzinfo) -> datetime | None:
    """The earliest instant at or after ``when`` inside the window, or ``None`` if it has closed."""
    if window.end is not None and when > window.end:
        return None
    if window.start is not None and when < window.start:
        when = window.start
    if window.daily:
        local = when.astimezone(tz)
        if not window.in_day(local.time().replace(tzinfo=None)):
            opening = window.daily_from or time(0, 0)
            day = local.date() if local.time().replace(tzinfo=None) < opening else local.date() + timedelta(days=1)
            when = _localize_forward(datetime.combine(day, opening), tz)
    if window.end is not None and when > window.end:
        return None
    return when


def validity_bounds(schedule: Schedule | Record, location: Location | None = None) -> tuple[datetime | None,
                                                                                             datetime | None]:
    """The validity window's first and last instants (EventBridge Scheduler's ``StartDate``/``EndDate``)."""
    model = _model(schedule)
    window = _window(model, schedule_zone(model, location))
    return (window.start, window.end) if window is not None else (None, None)


# --------------------------------------------------------------------------------------------- candidates


def simple_cron(spec: SimpleSpec) -> str:
    """The 6-field cron of a ``daily``/``weekly``/``monthly`` simple spec (the reference's conversion)."""
    moment = spec.time_of_day
    prefix = f"{moment.second} {moment.minute} {moment.hour}"
    day_of_week = day_of_week_field(spec.day_of_week) if spec.day_of_week not in ("", []) else "*"
    if spec.frequency == "monthly":
        return f"{prefix} {spec.date_of_month} * *"
    if spec.frequency in ("daily", "weekly"):
        return f"{prefix} * * {day_of_week}"
    raise ScheduleError(f"frequency {spec.frequency!r} has no cron form")


def cron_next(expression: str, after: datetime, tz: tzinfo) -> datetime | None:
    """The first run of a cron expression strictly after ``after``, read on ``tz``'s wall clock (DST rules in the
    module docstring)."""
    normalized = normalize_cron(expression)
    start = after.astimezone(tz).replace(tzinfo=None)
    iterator = croniter(normalized, start, second_at_beginning=True)
    for _ in range(MAX_STEPS):
        try:
            naive = iterator.get_next(datetime)
        except (StopIteration, ValueError, OverflowError):  # no match within croniter's horizon
            return None
        instant = localize(naive, tz)
        if instant is not None and instant > after:
            return instant
    return None


@lru_cache(maxsize=256)
def _days_of_week(field_text: str) -> frozenset[int] | None:
    """The cron day numbers (0 = Sunday) a day-of-week field allows, ``None`` for all."""
    expanded = croniter.expand(f"0 0 0 * * {field_text}", second_at_beginning=True)[0][4]
    if expanded == ["*"]:
        return None
    return frozenset(int(day) % 7 for day in expanded)


def _day_allowed(spec: SimpleSpec, day: date) -> bool:
    if spec.frequency == "on_date":
        return day == date.fromisoformat(spec.date)
    if spec.frequency == "monthly":
        return day.day == spec.date_of_month
    if spec.day_of_week in ("", [], "*"):
        return True
    days = _days_of_week(day_of_week_field(spec.day_of_week))
    return days is None or (day.weekday() + 1) % 7 in days


def _sun_next(schedule: Schedule, spec: SimpleSpec, after: datetime, location: Location | None) -> datetime | None:
    if location is None:
        raise ScheduleError(f"{schedule.type} schedules need the system location (settings geoLocation)")
    offset = parse_duration(spec.offset) if spec.offset else timedelta(0)
    day = after.astimezone(location.tz).date() - timedelta(days=1)
    kind: SunEvent = "sunrise" if schedule.type == "sunrise" else "sunset"
    for _ in range(SUN_HORIZON_DAYS):
        if _day_allowed(spec, day):
            moment = sun_event(location, day, kind)
            if moment is not None and moment + offset > after:
                return (moment + offset).astimezone(UTC)
        day += timedelta(days=1)
    return None


def _repeat_next(schedule: Schedule, spec: RepeatSpec, after: datetime, anchor: datetime) -> datetime | None:
    if spec.repeat_count and schedule.state.executed_count >= spec.repeat_count:
        return None
    interval = parse_duration(spec.interval)
    base = from_iso(schedule.state.last_run) or anchor
    if after < base:
        return base + interval
    steps = math.floor((after - base) / interval) + 1
    return base + steps * interval


def _candidate(schedule: Schedule, after: datetime, anchor: datetime, tz: tzinfo,
               location: Location | None) -> datetime | None:
    spec = schedule.spec
    if isinstance(spec, RepeatSpec):
        return _repeat_next(schedule, spec, after, anchor)
    if isinstance(spec, CronSpec):
        return cron_next(spec.cron_expression, after, tz)
    if schedule.type in ("sunrise", "sunset"):
        return _sun_next(schedule, spec, after, location)
    if spec.frequency == "on_date":
        moment = localize(datetime.combine(date.fromisoformat(spec.date), spec.time_of_day), tz)
        return moment if moment is not None and moment > after else None
    return cron_next(simple_cron(spec), after, tz)


def next_run(schedule: Schedule | Record, after: datetime, location: Location | None = None) -> datetime | None:
    """The first run strictly after ``after`` inside the validity window (in UTC), or ``None``."""
    runs = next_runs(schedule, after, location, 1)
    return runs[0] if runs else None


def next_runs(schedule: Schedule | Record, after: datetime, location: Location | None = None,
              count: int = 5) -> list[datetime]:
    """The next ``count`` runs, in UTC (for the API's preview and for tests)."""
    model = _model(schedule)
    aware(after, "after")
    tz = schedule_zone(model, location)
    window = _window(model, tz)
    runs: list[datetime] = []
    cursor = after
    steps = 0
    while len(runs) < count and steps < MAX_STEPS:
        steps += 1
        candidate = _candidate(model, cursor, after, tz, location)
        if candidate is None:
            break
        if window is None or is_valid_at(model, candidate, location):
            runs.append(candidate.astimezone(UTC))
            cursor = candidate
            if isinstance(model.spec, RepeatSpec) and model.spec.repeat_count and \
                    model.state.executed_count + len(runs) >= model.spec.repeat_count:
                break
            continue
        opening = _next_valid_start(window, candidate, tz)
        if opening is None:
            break
        cursor = max(candidate, opening - _TINY)
    return runs


# --------------------------------------------------------------------------------------------- EventBridge


class SchedulerExpression(NamedTuple):
    """An EventBridge Scheduler ``ScheduleExpression`` and ``ScheduleExpressionTimezone``."""

    expression: str
    timezone: str

    @property
    def one_shot(self) -> bool:
        """An ``at(...)``: run once; re-arm with the next run afterwards (unless the schedule disabled itself)."""
        return self.expression.startswith("at(")


def rate_expression(interval: timedelta) -> str | None:
    """``rate(...)`` for a whole number of minutes (at least one), else ``None``."""
    seconds = interval.total_seconds()
    if seconds < 60 or seconds % 60:
        return None
    minutes = int(seconds // 60)
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes % size == 0:
            value = minutes // size
            return f"rate({value} {unit}{'s' if value != 1 else ''})"
    return None  # pragma: no cover - minutes always divide by 1


def at_expression(when: datetime, tz: tzinfo) -> str:
    """``at(yyyy-mm-ddThh:mm:ss)`` of an instant, on ``tz``'s wall clock."""
    return f"at({aware(when).astimezone(tz).strftime('%Y-%m-%dT%H:%M:%S')})"


def _compress(values: Iterable[int]) -> str:
    ordered = sorted(set(values))
    parts: list[str] = []
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[index], ordered[end]
        parts.append(str(first) if first == last else f"{first}-{last}" if last > first + 1 else f"{first},{last}")
        index = end + 1
    return ",".join(parts)


def aws_cron(expression: str) -> str | None:
    """A 6-field cron (seconds first) as EventBridge's ``cron(min hour dom month dow year)``, or ``None`` when it
    cannot say the same thing (seconds other than 0, both day fields restricted, ``L`` in day-of-week)."""
    fields, nth = croniter.expand(normalize_cron(expression), second_at_beginning=True)
    minutes, hours, days, months, weekdays, seconds = fields
    if seconds != [0]:
        return None
    day_restricted, weekday_restricted = days != ["*"], weekdays != ["*"]
    if day_restricted and weekday_restricted:
        return None

    def plain(values: list[int | str]) -> str:
        return "*" if values == ["*"] else _compress(int(v) for v in values)

    if days == ["l"]:
        day_text = "L"
    elif any(isinstance(v, str) for v in days if v != "*"):
        return None
    else:
        day_text = plain(days)
    if weekday_restricted:
        if any(isinstance(v, str) for v in weekdays):
            return None
        numbers = sorted({int(v) % 7 for v in weekdays})
        if nth:
            if len(numbers) != 1 or len(nth.get(numbers[0], nth.get(7, set()))) != 1:
                return None
            which = next(iter(nth.get(numbers[0], nth.get(7, set()))))
            weekday_text = f"{numbers[0] + 1}#{which}"
        else:
            weekday_text = ",".join(_AWS_DAYS[n] for n in numbers)
        day_text = "?"
    else:
        weekday_text = "?"
    return f"cron({plain(minutes)} {plain(hours)} {day_text} {plain(months)} {weekday_text} *)"


def to_scheduler_expression(schedule: Schedule | Record, *, after: datetime | None = None,
                            location: Location | None = None) -> SchedulerExpression:
    """The EventBridge Scheduler expression for a schedule (see the module docstring for the mapping).

    One-shot cases (``at(...)``) need ``after``; sun schedules also ``location``. ``ScheduleError`` otherwise,
    or when the schedule has no further run.
    """
    model = _model(schedule)
    tz = schedule_zone(model, location)
    name = zone_name(tz)
    spec = model.spec
    recurring: str | None = None
    if isinstance(spec, RepeatSpec):
        recurring = rate_expression(parse_duration(spec.interval))
    elif isinstance(spec, CronSpec):
        recurring = aws_cron(spec.cron_expression)
    elif model.type == "simple" and spec.frequency != "on_date":
        recurring = aws_cron(simple_cron(spec))
    if recurring is not None:
        return SchedulerExpression(recurring, name)
    if after is None:
        raise ScheduleError(f"schedule {model.id!r} runs as one-shot 'at(...)' schedules; pass 'after' to compute "
                            "the next one")
    upcoming = next_run(model, after, location)
    if upcoming is None:
        raise ScheduleError(f"schedule {model.id!r} has no run after {after.isoformat()}")
    return SchedulerExpression(at_expression(upcoming, tz), name)


def task_scheduler_expression(task: Task | Record, *, after: datetime | None = None) -> SchedulerExpression | None:
    """The EventBridge Scheduler expression of an interval task (``executionInterval``), ``None`` for event
    tasks. Intervals that are not whole minutes become one-shot ``at(after + interval)``, re-armed per run."""
    model = task if isinstance(task, Task) else Task.model_validate(task)
    if not model.execution_interval:
        return None
    interval = parse_duration(model.execution_interval)
    recurring = rate_expression(interval)
    if recurring is not None:
        return SchedulerExpression(recurring, "UTC")
    if after is None:
        raise ScheduleError(f"task {model.id!r} runs every {model.execution_interval}, under EventBridge's "
                            "one-minute rate; pass 'after' for the next one-shot run")
    return SchedulerExpression(at_expression(aware(after, "after") + interval, UTC), "UTC")


# --------------------------------------------------------------------------------------------- firing


@dataclass(slots=True)
class ScheduleOutcome:
    """What one run decided. Store ``enabled`` and ``new_state``; queue the requests; re-arm at ``next_run``."""

    fired: bool
    new_state: Record
    handler_requests: list[HandlerRequest] = field(default_factory=list)
    enabled: bool = True
    next_run: datetime | None = None
    trigger_id: str = ""
    error: str | None = None


def _custom_variables(model: Schedule, variables: dict[str, Any], now: datetime, location: Location | None,
                      webhooks: WebhookResolver | None, engine: TemplateEngine) -> dict[str, Any]:
    """MyController v2's custom variables: the object a script or a webhook answers (its keys join the variables;
    anything else is ignored). ``VariableError`` naming ``customVariableConfig`` when it fails."""
    config = model.custom_variable_config
    try:
        if model.custom_variable_type == "javascript":
            result = run_script(config.javascript, {**variables, "schedule": model.record()},
                                limits_for(model.labels))
        elif model.custom_variable_type == "webhook" and config.webhook is not None:
            if webhooks is None:
                raise VariableError("customVariableConfig.webhook: webhooks are not available here")
            call = config.webhook
            body = {**variables, "schedule": model.record()} if call.include_config else variables
            rendered = WebhookCall.model_validate(
                engine.render_value(call.model_dump(mode="json", exclude={"include_config"}), variables, now=now,
                                    location=location))
            result = webhooks.fetch("customVariables", rendered.model_copy(update={"body": rendered.body or body}),
                                    variables)
        else:
            return {}
    except VariableError:
        raise
    except Exception as error:  # a script's or a webhook's failure fails this run, with its reason
        raise VariableError(f"customVariableConfig: {error}") from None
    return {k: v for k, v in result.items() if isinstance(k, str)} if isinstance(result, dict) else {}


def fire_schedule(schedule: Schedule | Record, now: datetime, lookup: ResourceLookup, *,
                  location: Location | None = None, webhooks: WebhookResolver | None = None,
                  engine: TemplateEngine = ENGINE, trigger_id: str | None = None) -> ScheduleOutcome:
    """Run a schedule at ``now`` (pass the scheduled time, so a redelivered invocation has the same trigger id).

    Outside its validity window it does nothing. A ``repeat`` schedule that reached ``repeatCount`` and an
    ``on_date`` one disable themselves.
    """
    model = _model(schedule)
    aware(now, "now")
    state = model.state.model_dump(mode="json", by_alias=True)
    trigger = trigger_id or f"{model.id}@{iso(now)}"
    if not model.enabled:
        return ScheduleOutcome(False, state, enabled=False, trigger_id=trigger)
    if not is_valid_at(model, now, location):
        return ScheduleOutcome(False, state, next_run=next_run(model, now, location), trigger_id=trigger)
    state.update(lastRun=iso(now), executedCount=int(state.get("executedCount") or 0) + 1, lastStatus=True,
                 message="")
    outcome = ScheduleOutcome(True, state, trigger_id=trigger)
    base = {"event": None, "schedule": {"id": model.id, "description": model.description, "labels": model.labels}}
    try:
        variables = resolve_variables(model.variables, base, lookup, now=now, location=location, webhooks=webhooks,
                                      engine=engine)
        variables.update(_custom_variables(model, variables, now, location, webhooks, engine))
        parameters = render_parameters(model.handler_parameters, variables, now=now, location=location,
                                       engine=engine)
        outcome.handler_requests = [HandlerRequest(h, parameters, trigger, f"schedule:{model.id}")
                                    for h in model.handlers]
    except (VariableError, HandlerParameterError) as error:
        state.update(lastStatus=False, message=f"run failed: {error}")
        outcome.error = str(error)
    spec = model.spec
    finished = (isinstance(spec, RepeatSpec) and spec.repeat_count and state["executedCount"] >= spec.repeat_count) \
        or (isinstance(spec, SimpleSpec) and spec.frequency == "on_date")
    if finished:
        outcome.enabled = False
        state["message"] = (state["message"] + "; " if state["message"] else "") + "last run, disabled"
    else:
        advanced = model.model_copy(update={"state": type(model.state).model_validate(state)})
        outcome.next_run = next_run(advanced, now, location)
    return outcome
