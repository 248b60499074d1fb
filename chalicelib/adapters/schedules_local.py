"""The schedule registry of the local stack: the entries in a dict, fired by a timer thread as EventBridge
Scheduler fires them in AWS.

Expressions are EventBridge Scheduler's, read in the entry's time zone:

* ``cron(min hour day-of-month month day-of-week year)``: converted back to a croniter expression (day-of-week
  1-7 from Sunday, names, ``N#k``; ``?`` is ``*``) and stepped with ``schedules.cron_next``, so the wall-clock
  and DST rules are the ones the core documents (a time skipped by spring-forward does not run; a repeated one
  runs once).
* ``rate(N minutes|hours|days)``: every N from the entry's ``start`` (or from when it was put).
* ``at(yyyy-mm-ddThh:mm:ss)``: once. The entry stays (as in AWS) but does not fire again.

``start``/``end`` bound every entry. The target is called with the entry's payload plus ``scheduledTime`` (the due
instant, ISO 8601 UTC), as EventBridge Scheduler's ``<aws.scheduler.scheduled-time>`` gives it. A run missed
while the stack was down or the thread was busy fires once, late, not once per missed period. The target runs
on the timer thread; an exception from it is logged and the timer goes on.

``run_due(now)`` fires whatever is due at ``now`` without the thread: tests drive it with a fake clock.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final

from ..core.automation.clock import iso, zone
from ..core.automation.schedules import cron_next
from .errors import AdapterError

log = logging.getLogger(__name__)

Target = Callable[[dict[str, Any]], Any]
_RATE: Final = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)\Z")
_AT: Final = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)\Z")
_CRON: Final = re.compile(r"^cron\((.+)\)\Z")
_UNIT_S: Final = {"minute": 60, "hour": 3600, "day": 86400}
_DAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MAX_WAIT_S: Final = 30.0
"""The thread re-reads the clock at least this often (a laptop's sleep, a changed system clock)."""


class ExpressionError(AdapterError, ValueError):
    """An expression the local timer cannot read; the message quotes it."""


def _aws_day(token: str) -> str:
    """One AWS day-of-week token as croniter's (0 = Sunday)."""
    if "#" in token:
        day, _, nth = token.partition("#")
        return f"{_aws_day(day)}#{nth}"
    if "-" in token:
        low, _, high = token.partition("-")
        return f"{_aws_day(low)}-{_aws_day(high)}"
    if token.isdigit():
        number = int(token)
        if not 1 <= number <= 7:
            raise ExpressionError(f"day-of-week {token!r} must be 1-7 (Sunday = 1)")
        return str(number - 1)
    if token.upper() in _DAY_NAMES or token in ("*", "L"):
        return token.lower() if token != "L" else token
    raise ExpressionError(f"day-of-week {token!r} is not a day")


def croniter_of(aws: str) -> str:
    """``cron(30 7 ? * MON-FRI *)`` → ``0 30 7 * * mon-fri`` (6 fields, seconds first)."""
    match = _CRON.match(aws.strip())
    if match is None:
        raise ExpressionError(f"not a cron expression: {aws!r}")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise ExpressionError(f"{aws!r} must have 6 fields (minute hour day-of-month month day-of-week year)")
    minute, hour, day, month, weekday, year = fields
    if year not in ("*", "?"):
        raise ExpressionError(f"{aws!r}: the local timer supports only '*' as the year")
    day = "*" if day == "?" else day
    weekday = "*" if weekday in ("?", "*") else ",".join(_aws_day(t) for t in weekday.split(","))
    return f"0 {minute} {hour} {day} {month} {weekday}"


@dataclass(slots=True)
class LocalSchedule:
    name: str
    expression: str
    timezone: str
    payload: dict[str, Any]
    start: datetime | None = None
    end: datetime | None = None
    put_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    next_due: datetime | None = None

    def following(self, after: datetime) -> datetime | None:
        """The first run strictly after ``after`` within ``start``/``end``, or ``None``."""
        tz: tzinfo = zone(self.timezone)
        text = self.expression.strip()
        floor = max(after, self.start - timedelta(microseconds=1)) if self.start is not None else after
        due: datetime | None
        if (match := _AT.match(text)) is not None:
            due = datetime.fromisoformat(match.group(1)).replace(tzinfo=tz)
            due = due if due > floor else None
        elif (match := _RATE.match(text)) is not None:
            step = timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2).rstrip("s")])
            if step <= timedelta(0):
                raise ExpressionError(f"{text!r}: the rate must be positive")
            anchor = self.start or self.put_at
            count = max(0, int((floor - anchor) / step) + 1) if floor >= anchor else 1
            due = anchor + count * step
            while due <= floor:
                due += step
        elif _CRON.match(text):
            due = cron_next(croniter_of(text), floor, tz)
        else:
            raise ExpressionError(f"unknown schedule expression {text!r}")
        if due is not None and self.end is not None and due > self.end:
            return None
        return due.astimezone(UTC) if due is not None else None


class LocalScheduleRegistry:
    """``ScheduleRegistry`` in memory (thread-safe), with a timer thread (``start``/``stop``). ``entries`` maps
    names to what was put."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self.entries: dict[str, LocalSchedule] = {}
        self._target: Target | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    def put(self, name: str, expression: str, timezone: str, payload: dict[str, Any],
            start: datetime | None, end: datetime | None) -> None:
        """Create or replace; an expression the timer cannot read raises ``ExpressionError`` (as AWS refuses it)."""
        entry = LocalSchedule(name, expression, timezone, dict(payload), start, end, put_at=self.clock())
        entry.next_due = entry.following(entry.put_at)
        with self._wake:
            self.entries[name] = entry
            self._wake.notify_all()

    def delete(self, name: str) -> None:
        with self._wake:
            self.entries.pop(name, None)
            self._wake.notify_all()

    def names(self) -> set[str]:
        with self._lock:
            return set(self.entries)

    def get(self, name: str) -> LocalSchedule | None:
        with self._lock:
            return self.entries.get(name)

    def next_due(self) -> datetime | None:
        """When the earliest entry is due next (tests step a fake clock to it)."""
        with self._lock:
            return min((e.next_due for e in self.entries.values() if e.next_due is not None), default=None)

    def run_due(self, now: datetime, target: Target | None = None) -> list[dict[str, Any]]:
        """Fire every entry due at ``now`` (each once) through ``target`` (default: the started one); returns
        the payloads sent."""
        target = target or self._target
        fired: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for entry in list(self.entries.values()):
                if entry.next_due is None or entry.next_due > now:
                    continue
                fired.append((entry.name, {**entry.payload, "scheduledTime": iso(entry.next_due)}))
                try:
                    entry.next_due = entry.following(max(now, entry.next_due))
                except ExpressionError:
                    entry.next_due = None
        for name, payload in fired:
            if target is None:
                continue
            try:
                target(payload)
            except Exception:  # one failing run must not stop the timer
                log.exception("scheduled run of %s failed", name)
        return [payload for _, payload in fired]

    def start(self, target: Target) -> None:
        """Fire entries on a thread from now on, calling ``target`` with each payload."""
        with self._lock:
            self._target = target
            self._stopping = False
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="schedule-timer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                now = self.clock()
                due = min((e.next_due for e in self.entries.values() if e.next_due is not None), default=None)
                if due is None or due > now:
                    wait = MAX_WAIT_S if due is None else min(MAX_WAIT_S, (due - now).total_seconds())
                    self._wake.wait(max(wait, 0.01))
                    continue
            self.run_due(self.clock())
