"""core.metrics: the parsing, function names and aggregation every metric store shares."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core.metrics import (
    MetricQueryError,
    aggregate,
    parse_duration,
    parse_range,
    parse_time,
    percentile,
    percentile_of,
    raw_rows,
    typed_value,
    validate_functions,
    window_start,
)
from chalicelib.core.model import iso_from_ms

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NOW = T0 + 7_200_000


@pytest.mark.parametrize(("text", "ms"), [
    ("5m", 300_000), ("30s", 30_000), ("1h", 3_600_000), ("1d", 86_400_000), ("1w", 604_800_000),
    ("250ms", 250), ("1h30m", 5_400_000), ("1.5s", 1500), (" 2H ", 7_200_000), ("1500", 1500), (42, 42),
])
def test_parse_duration(text: str | int, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "5 minutes", "m", "-5m", "5x", "1h 30m", "1y"])
def test_bad_durations_name_themselves(text: str) -> None:
    with pytest.raises(MetricQueryError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("value", "ms"), [
    ("-1h", NOW - 3_600_000), ("-30m", NOW - 1_800_000), ("+5m", NOW + 300_000), ("now", NOW), (" NOW ", NOW),
    ("2024-01-01T00:00:00Z", T0), ("2024-01-01T00:00:00.250Z", T0 + 250), ("2024-01-01T01:00:00+01:00", T0),
    ("2024-01-01T00:00:00", T0), (str(T0), T0), (T0, T0),
])
def test_parse_time(value: str | int, ms: int) -> None:
    assert parse_time(value, NOW) == ms


def test_parse_time_defaults_and_errors() -> None:
    assert parse_time(None, NOW, 7) == 7
    assert parse_time("  ", NOW, 7) == 7
    with pytest.raises(MetricQueryError, match="not supplied"):
        parse_time(None, NOW)
    with pytest.raises(MetricQueryError, match="yesterday"):
        parse_time("yesterday", NOW)
    with pytest.raises(MetricQueryError, match="duration"):
        parse_time("-1 hour", NOW)


def test_parse_range() -> None:
    assert parse_range(None, None, NOW) == (NOW - 3_600_000, NOW)
    assert parse_range("-1d", "-1h", NOW) == (NOW - 86_400_000, NOW - 3_600_000)
    assert parse_range(None, None, NOW, default_start="-5m") == (NOW - 300_000, NOW)
    with pytest.raises(MetricQueryError, match="range is empty"):
        parse_range("now", "-1h", NOW)
    with pytest.raises(MetricQueryError, match="range is empty"):
        parse_range(T0, T0, NOW)


def test_validate_functions() -> None:
    assert validate_functions(None) == ["mean"]
    assert validate_functions([]) == ["mean"]
    assert validate_functions(["MAX", " mean", "max", "min,percentile_95"]) == ["max", "mean", "min", "percentile_95"]
    assert validate_functions(["count", "first", "last"], "string") == ["count", "first", "last"]
    with pytest.raises(MetricQueryError, match="'avg'"):
        validate_functions(["mean", "avg"])
    for bad in ("percentile_0", "percentile_100", "percentile_05", "percentile_x"):
        with pytest.raises(MetricQueryError, match=bad):
            validate_functions([bad])
    with pytest.raises(MetricQueryError, match=r"'mean'.*geo"):
        validate_functions(["mean"], "geo")
    with pytest.raises(MetricQueryError, match="count, first and last"):
        validate_functions([], "string")


def test_percentile_of() -> None:
    assert [percentile_of(f) for f in ("median", "percentile_1", "percentile_90", "mean")] == [50.0, 1.0, 90.0, None]


def test_percentile_interpolates_linearly() -> None:
    assert percentile([10, 20, 30, 40], 90) == pytest.approx(37.0)
    assert percentile([10, 20, 30, 40], 50) == 25.0
    assert percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=2, max_size=50),
       st.integers(min_value=1, max_value=99))
def test_percentile_matches_statistics_inclusive_quantiles(values: list[float], q: int) -> None:
    expected = statistics.quantiles(values, n=100, method="inclusive")[q - 1]
    assert percentile(sorted(values), q) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert percentile(sorted(values), 50) == pytest.approx(statistics.median(values), rel=1e-9, abs=1e-6)


def test_window_start_floors_to_epoch_multiples() -> None:
    assert window_start(T0 + 59_999, 60_000) == T0
    assert window_start(T0 + 60_000, 60_000) == T0 + 60_000
    assert window_start(-1, 60_000) == -60_000


def test_aggregate_windows_are_aligned_and_empty_ones_omitted() -> None:
    points = [(T0 + 130_000, 7.0), (T0 + 10_000, 1.0), (T0 + 70_000, 5.0), (T0 + 20_000, 3.0), (T0 + 240_000, 9.0)]

    rows = aggregate(points, T0 + 5_000, T0 + 240_000, 60_000, ["first", "last", "count", "mean", "median"])

    assert rows == [
        {"time": iso_from_ms(T0), "first": 1.0, "last": 3.0, "count": 2, "mean": 2.0, "median": 2.0},
        {"time": iso_from_ms(T0 + 60_000), "first": 5.0, "last": 5.0, "count": 1, "mean": 5.0, "median": 5.0},
        {"time": iso_from_ms(T0 + 120_000), "first": 7.0, "last": 7.0, "count": 1, "mean": 7.0, "median": 7.0},
    ]


def test_aggregate_types() -> None:
    binary = aggregate([(T0, True), (T0 + 1, False), (T0 + 2, True)], T0, T0 + 3, 60_000,
                       ["mean", "sum", "max", "last"], "binary")
    assert binary == [{"time": iso_from_ms(T0), "mean": pytest.approx(2 / 3), "sum": 2, "max": 1, "last": 1}]
    assert type(binary[0]["sum"]) is int

    text = aggregate([(T0 + 1, "b"), (T0, "a")], T0, T0 + 3, 60_000, ["count", "first", "last"], "string")
    assert text == [{"time": iso_from_ms(T0), "count": 2, "first": "a", "last": "b"}]

    with pytest.raises(MetricQueryError, match=r"'max'.*string"):
        aggregate([(T0, "a")], T0, T0 + 1, 60_000, ["max"], "string")
    with pytest.raises(MetricQueryError, match="window"):
        aggregate([(T0, 1.0)], T0, T0 + 1, 0, ["mean"])


def test_raw_rows_and_typed_values() -> None:
    assert raw_rows([(T0, 1.0), (T0 + 1, None), (T0 + 2, 2.5)], "gauge") == [
        {"time": "2024-01-01T00:00:00.000Z", "value": 1}, {"time": "2024-01-01T00:00:00.002Z", "value": 2.5}]
    assert [typed_value(v, t) for v, t in ((True, "binary"), (0.0, "binary"), (3, "gauge_float"), (4.0, "counter"),
                                           (5, "string"), ("x", "geo"), (None, "gauge"))] == [
        1, 0, 3.0, 4, "5", "x", None]
