"""Metric queries in pure Python: time and duration parsing, function names, window aggregation.

Shared by the metric store adapters so that every store answers the same query the same way: the embedded
store aggregates here what SQL cannot (median, percentiles), the InfluxDB adapter validates and types its rows
here, and tests use ``aggregate`` as the reference the stores are held to.

Conventions (the port's ``MetricQuery``):

* A query covers ``[start_ms, stop_ms)``; windows start at epoch multiples of ``window_ms`` (the first window may
  begin before ``start_ms``, only points inside the range count) and windows without points are omitted.
* Raw rows are ``{"time": iso, "value": v}``; aggregated rows ``{"time": <window start iso>, "<fn>": v, ...}``.
* Values keep their metric type: binary as 0/1, gauge and counter as int when integral, gauge_float as float,
  string and geo as text. ``mean``, ``median`` and percentiles are floats, ``count`` an int.
* Text metrics (string, geo) aggregate only with ``count``, ``first`` and ``last``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from mycontroller_protocol.values import to_binary

from .errors import DomainError
from .model import iso_from_ms, ms_from_iso

if TYPE_CHECKING:
    from .ports import MetricPoint

Series = tuple["MetricPoint", Sequence[int], Sequence[Any]]
"""A field's values at once: a point naming the field, its tags and metric type (its value and time unused),
the timestamps, and the converted values."""


class SeriesWriter(Protocol):
    """What a metric store may offer beside ``write``: the processor's values a field at a time, without a
    ``MetricPoint`` per value. Stores without it get points."""

    def write_series(self, series: Sequence[Series]) -> None: ...

Row = dict[str, Any]


class MetricQueryError(DomainError, ValueError):
    """A metric query that cannot be answered; the message names the bad function, duration or time."""


# --------------------------------------------------------------------------------------------- types

NUMERIC_TYPES: Final = frozenset({"binary", "gauge", "gauge_float", "counter"})
TEXT_TYPES: Final = frozenset({"string", "geo"})
STORED_TYPES: Final = NUMERIC_TYPES | TEXT_TYPES
"""Metric types a store keeps; ``none`` is never written."""
INTEGRAL_TYPES: Final = frozenset({"binary", "gauge", "counter"})


def is_text(metric_type: str) -> bool:
    return metric_type in TEXT_TYPES


def stored_number(value: Any, metric_type: str) -> float | None:
    """The float a numeric metric stores (binary → 0/1); None when the value is not a number of that type."""
    if value is None:
        return None
    if metric_type == "binary":
        try:
            return 1.0 if to_binary(value) else 0.0
        except ValueError:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def typed_value(value: Any, metric_type: str) -> Any:
    """A stored value as the port hands it out: integral numbers of gauge, counter and binary as int."""
    if value is None:
        return None
    if metric_type in TEXT_TYPES:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, bool):
        return int(value)
    if metric_type in INTEGRAL_TYPES and isinstance(value, float) and value.is_integer():
        return int(value)
    if metric_type == "gauge_float" and isinstance(value, int):
        return float(value)
    return value


# --------------------------------------------------------------------------------------------- durations and times

_UNITS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | int) -> int:
    """``"5m"`` → 300000 ms; parts add up (``"1h30m"``); a bare integer is milliseconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise MetricQueryError(f"duration {text!r} is negative")
        return text
    compact = str(text).strip().lower()
    if compact.isdigit():
        return int(compact)
    if not compact or _DURATION_PART.sub("", compact):
        raise MetricQueryError(f"duration {text!r} is not like 500ms, 30s, 5m, 1h, 1d, 1w or 1h30m")
    return round(sum(float(number) * _UNITS[unit] for number, unit in _DURATION_PART.findall(compact)))


def parse_time(value: str | int | None, now_ms: int, default_ms: int | None = None) -> int:
    """A point in time as the reference API takes it: ``-1h`` (relative to now), ``now``, RFC 3339 or epoch ms."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if default_ms is None:
            raise MetricQueryError("time not supplied")
        return default_ms
    if isinstance(value, bool):
        raise MetricQueryError(f"time {value!r} is not -<duration>, now, RFC 3339 or epoch milliseconds")
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.lower() == "now":
        return now_ms
    if text.isdigit():
        return int(text)
    if text[0] in "+-":
        offset = parse_duration(text[1:])
        return now_ms - offset if text[0] == "-" else now_ms + offset
    try:
        return ms_from_iso(text)
    except (ValueError, OverflowError, OSError):
        raise MetricQueryError(f"time {text!r} is not -<duration>, now, RFC 3339 or epoch milliseconds") from None


def parse_range(start: str | int | None, stop: str | int | None, now_ms: int,
                default_start: str = "-1h") -> tuple[int, int]:
    """``(start_ms, stop_ms)`` from API parameters; start defaults to an hour ago, stop to now."""
    start_ms = parse_time(start, now_ms, parse_time(default_start, now_ms))
    stop_ms = parse_time(stop, now_ms, now_ms)
    if start_ms >= stop_ms:
        raise MetricQueryError(f"time range is empty: start {iso_from_ms(start_ms)} is not before stop "
                               f"{iso_from_ms(stop_ms)}")
    return start_ms, stop_ms


# --------------------------------------------------------------------------------------------- functions

SIMPLE_FUNCTIONS: Final = ("mean", "min", "max", "sum", "count", "first", "last")
FUNCTIONS: Final = (*SIMPLE_FUNCTIONS, "median")
TEXT_FUNCTIONS: Final = frozenset({"count", "first", "last"})
_PERCENTILE: Final = re.compile(r"^percentile_([1-9][0-9]?)\Z")


def percentile_of(function: str) -> float | None:
    """The percentile a function asks for (``median`` → 50, ``percentile_90`` → 90), None for others."""
    if function == "median":
        return 50.0
    match = _PERCENTILE.match(function)
    return float(match.group(1)) if match else None


def validate_functions(functions: Iterable[str] | None, metric_type: str = "gauge_float") -> list[str]:
    """Normalised, de-duplicated function names (default ``mean``); an error naming the first bad one."""
    result: list[str] = []
    for raw in functions or ():
        for part in str(raw).split(","):
            function = part.strip().lower()
            if not function:
                continue
            if function not in FUNCTIONS and not _PERCENTILE.match(function):
                raise MetricQueryError(f"unknown function {part.strip()!r}; use {', '.join(FUNCTIONS)} or "
                                       "percentile_NN with NN from 1 to 99")
            if metric_type in TEXT_TYPES and function not in TEXT_FUNCTIONS:
                raise MetricQueryError(f"function {function!r} needs numbers; a {metric_type} metric aggregates "
                                       "only with count, first and last")
            if function not in result:
                result.append(function)
    if not result:
        if metric_type in TEXT_TYPES:
            raise MetricQueryError(f"a {metric_type} metric aggregates only with count, first and last; "
                                   "name one of them")
        result.append("mean")
    return result


def percentile(ordered: Sequence[float], q: float) -> float:
    """Percentile ``q`` (0..100) of sorted values with linear interpolation between closest ranks (numpy's
    default): rank ``q/100 * (n-1)``."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = q / 100.0 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    lower = float(ordered[low])
    return lower + (float(ordered[high]) - lower) * fraction if fraction else lower


def window_start(ts_ms: int, window_ms: int) -> int:
    """The epoch-aligned start of the window holding ``ts_ms`` (floor, also before 1970)."""
    return ts_ms - ts_ms % window_ms


def _summary(values: list[Any], functions: Sequence[str], metric_type: str) -> Row:
    """One window's functions over its values in time order."""
    row: Row = {}
    numbers: list[float] | None = None
    ordered: list[float] | None = None
    for function in functions:
        if function == "count":
            row[function] = len(values)
        elif function == "first":
            row[function] = typed_value(values[0], metric_type)
        elif function == "last":
            row[function] = typed_value(values[-1], metric_type)
        else:
            if numbers is None:
                numbers = [float(v) for v in values]
            if function == "mean":
                row[function] = math.fsum(numbers) / len(numbers)
            elif function == "sum":
                row[function] = typed_value(math.fsum(numbers), metric_type)
            elif function == "min":
                row[function] = typed_value(min(numbers), metric_type)
            elif function == "max":
                row[function] = typed_value(max(numbers), metric_type)
            else:
                q = percentile_of(function)
                if q is None:
                    raise MetricQueryError(f"unknown function {function!r}")
                if ordered is None:
                    ordered = sorted(numbers)
                row[function] = percentile(ordered, q)
    return row


def aggregate(points: Iterable[tuple[int, Any]], start_ms: int, stop_ms: int, window_ms: int,
              functions: Sequence[str], metric_type: str = "gauge_float") -> list[Row]:
    """Rows per epoch-aligned window over ``(timestamp_ms, value)`` points inside ``[start_ms, stop_ms)``.

    Points need not be sorted; at equal timestamps the later one in ``points`` counts as later for first/last.
    Numeric types take numbers (binary as 0/1 or bool); text types take strings and only count/first/last.
    """
    if window_ms <= 0:
        raise MetricQueryError(f"window must be longer than 0 ms, got {window_ms}")
    checked = validate_functions(functions, metric_type)
    windows: dict[int, list[tuple[int, Any]]] = {}
    for ts, value in points:
        if start_ms <= ts < stop_ms and value is not None:
            if metric_type in NUMERIC_TYPES:
                value = stored_number(value, metric_type)
                if value is None:
                    continue
            windows.setdefault(window_start(ts, window_ms), []).append((ts, value))
    rows: list[Row] = []
    for start in sorted(windows):
        in_window = sorted(windows[start], key=lambda point: point[0])
        rows.append({"time": iso_from_ms(start),
                     **_summary([value for _ts, value in in_window], checked, metric_type)})
    return rows


def raw_rows(points: Iterable[tuple[int, Any]], metric_type: str) -> list[Row]:
    """``{"time", "value"}`` rows from time-ordered ``(timestamp_ms, value)`` points, values typed."""
    return [{"time": iso_from_ms(ts), "value": typed_value(value, metric_type)}
            for ts, value in points if value is not None]


def aggregate_sorted(points: Sequence[tuple[int, Any]], window_ms: int, functions: Sequence[str],
                     metric_type: str = "gauge_float") -> list[Row]:
    """``aggregate`` for points a store has already filtered: inside the range, in time order, one per
    timestamp, stored values (numbers for numeric types, text for text types). One pass, no re-sorting.

    ``functions`` must come from ``validate_functions``."""
    if window_ms <= 0:
        raise MetricQueryError(f"window must be longer than 0 ms, got {window_ms}")
    rows: list[Row] = []
    current = 0
    values: list[Any] = []
    for ts, value in points:
        start = ts - ts % window_ms
        if start != current or not values:
            if values:
                rows.append({"time": iso_from_ms(current), **_summary(values, functions, metric_type)})
            current, values = start, []
        values.append(value)
    if values:
        rows.append({"time": iso_from_ms(current), **_summary(values, functions, metric_type)})
    return rows
