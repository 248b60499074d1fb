"""Time helpers the automation modules share: durations, times of day and dates as text, time zones, instants as
text, the location and its sun.

Durations are written as the reference writes them (Go's ``time.ParseDuration``: ``90s``, ``1h30m``, ``500ms``,
``-30m``), plus ``d`` for days and a bare number for seconds, so that configurations exported from MyController
v2 keep working. Instants are timezone-aware ``datetime``s; a naive one is refused, because guessing its zone is
how schedules end up an hour off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from astral import Observer
from astral.sun import sunrise as _astral_sunrise
from astral.sun import sunset as _astral_sunset

from ..errors import DomainError
from ..model import iso_from_ms, ms_from_iso

_UNITS: Final[dict[str, float]] = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
}
_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")
_NUMBER: Final = re.compile(r"^\d+(?:\.\d*)?\Z|^\.\d+\Z")
MAX_DURATION: Final = timedelta(days=3660)
"""Longest duration accepted (ten years): longer ones are typos, and huge ones overflow datetime arithmetic."""


class DurationError(DomainError, ValueError):
    """A duration that cannot be read; the message quotes it."""


@lru_cache(maxsize=1024)
def parse_duration(text: str) -> timedelta:
    """``1h30m`` → ``timedelta(hours=1, minutes=30)``; sign allowed in front; a bare number is seconds."""
    if not isinstance(text, str):
        raise DurationError(f"duration must be text like '90s' or '1h30m', got {text!r}")
    raw = text.strip()
    body = raw[1:] if raw[:1] in "+-" else raw
    sign = -1.0 if raw[:1] == "-" else 1.0
    if not body:
        raise DurationError(f"duration must be text like '90s' or '1h30m', got {text!r}")
    if _NUMBER.match(body):
        seconds = float(body)
    else:
        seconds = 0.0
        position = 0
        for match in _PART.finditer(body):
            if match.start() != position:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            position = match.end()
        if position != len(body):
            raise DurationError(f"invalid duration {text!r}: use a number with a unit (ms, s, m, h, d), e.g. '1h30m'")
    if seconds > MAX_DURATION.total_seconds():
        raise DurationError(f"duration {text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=sign * seconds)


def format_duration(value: timedelta) -> str:
    """The short text form of a duration (``1h30m``), for messages and state."""
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 1:
        return f"{sign}{round(total * 1000)}ms"
    hours, rest = divmod(int(total), 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{seconds}s" if seconds else "")
    return sign + (text or "0s")


# --------------------------------------------------------------------------------------------- times of day and dates


_TIME_OF_DAY: Final = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\Z")


def parse_time_of_day(value: str, what: str = "time") -> time:
    """``H:MM``, ``HH:MM`` or ``HH:MM:SS[.ffffff]`` as a time of day (ValueError naming ``what``)."""
    match = _TIME_OF_DAY.match(value.strip())
    try:
        if match is None:
            raise ValueError
        hour, minute, second, fraction = match.groups()
        return time(int(hour), int(minute), int(second or 0), int((fraction or "0").ljust(6, "0")))
    except ValueError:
        raise ValueError(f"{what} must be a time of day 'HH:MM[:SS]', got {value!r}") from None


def parse_date(value: str, what: str = "date") -> date:
    """``YYYY-MM-DD`` as a date (ValueError naming ``what``)."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{what} must be a date 'YYYY-MM-DD', got {value!r}") from None


# --------------------------------------------------------------------------------------------- instants


def aware(when: datetime, what: str = "time") -> datetime:
    """``when`` itself, after checking it carries a time zone."""
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {when.isoformat()}")
    return when


def iso(when: datetime) -> str:
    """The fixed-width UTC text form records use (``2024-03-31T01:00:00.000Z``): string order is time order."""
    return iso_from_ms(int(aware(when).timestamp() * 1000))


def from_iso(text: str | None) -> datetime | None:
    """Parse a stored instant (any RFC 3339 offset); ``None`` or empty stays ``None``."""
    if not text:
        return None
    return datetime.fromtimestamp(ms_from_iso(text) / 1000, UTC)


@lru_cache(maxsize=256)
def zone(name: str | None) -> tzinfo:
    """The IANA time zone called ``name`` (``UTC`` when empty)."""
    if not name or name.strip().upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'") from None


def zone_name(tz: tzinfo) -> str:
    """The IANA name of a zone from ``zone`` (EventBridge Scheduler wants names, not offsets)."""
    return getattr(tz, "key", None) or "UTC"


# --------------------------------------------------------------------------------------------- location


@dataclass(frozen=True, slots=True)
class Location:
    """Where the installation is: the reference's ``geoLocation`` plus the time zone its schedules run in."""

    latitude: float
    longitude: float
    name: str = ""
    timezone: str = "UTC"
    elevation: float = 0.0

    def __post_init__(self) -> None:
        if not -90.0 <= self.latitude <= 90.0:
            raise ValueError(f"latitude must be within -90..90, got {self.latitude}")
        if not -180.0 <= self.longitude <= 180.0:
            raise ValueError(f"longitude must be within -180..180, got {self.longitude}")
        zone(self.timezone)

    @property
    def tz(self) -> tzinfo:
        return zone(self.timezone)


SunEvent = Literal["sunrise", "sunset"]


def sun_event(location: Location, day: date, event: SunEvent) -> datetime | None:
    """Sunrise or sunset at ``location`` on ``day`` (a local date), aware in the location's zone, from astral.

    ``None`` on days the sun does not rise or set there (polar day and night).
    """
    observer = Observer(latitude=location.latitude, longitude=location.longitude, elevation=location.elevation)
    compute = _astral_sunrise if event == "sunrise" else _astral_sunset
    try:
        return compute(observer, day, tzinfo=location.tz)
    except ValueError:
        return None
