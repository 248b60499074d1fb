"""The metric store contract: what every ``MetricStore`` answers, whichever adapter is behind it.

Raw ranges are ``[start, stop)`` and time-ordered; windows are epoch-aligned, labelled by their start and
omitted when empty; rewriting a point replaces it; values keep their metric type.

Expected values are worked out by hand here (the arithmetic in comments), or, for the generated cases, by a
plain restatement of the definitions over the standard library's ``statistics``: never by ``core.metrics``,
whose summary code the embedded store shares. The stores under contract are the embedded one (file and memory)
and the InfluxDB adapter against a stand-in InfluxDB 2 server (``metric_fixtures.INFLUXDB_STORE``).
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.metrics_none import NoMetricStore
from chalicelib.core.metrics import MetricQueryError
from chalicelib.core.ports import MetricStore
from tests.contract.metric_fixtures import (
    HOUR,
    MINUTE,
    SECOND,
    T0,
    at,
    point,
    raw,
    series,
    windowed,
)

TEMP = "gw1.1.1.temp"
TEMP_VALUES = {T0: 10.0, T0 + 10 * SECOND: 20.0, T0 + 20 * SECOND: 30.0, T0 + 50 * SECOND: 40.0,
               T0 + 60 * SECOND: 5.0, T0 + 90 * SECOND: 7.0, T0 + 3 * MINUTE + SECOND: 100.0}
"""Minute 0: 10 20 30 40; minute 1: 5 7; minute 2: nothing; minute 3: 100."""
ALL_FUNCTIONS = ("mean", "min", "max", "sum", "count", "first", "last", "median", "percentile_90")


@pytest.fixture
def temps(store: MetricStore) -> MetricStore:
    """The store with TEMP's points, written out of time order in two batches."""
    points = series(TEMP, "gauge_float", TEMP_VALUES)
    random.Random(7).shuffle(points)
    store.write(points[:4])
    store.write(points[4:])
    return store


# --------------------------------------------------------------------------------------------- raw


def test_raw_range_is_time_ordered_and_half_open(temps: MetricStore) -> None:
    rows = temps.query(raw(TEMP, "gauge_float", T0 + 10 * SECOND, T0 + 60 * SECOND))

    assert rows == [{"time": at(T0 + 10 * SECOND), "value": 20.0},
                    {"time": at(T0 + 20 * SECOND), "value": 30.0},
                    {"time": at(T0 + 50 * SECOND), "value": 40.0}]
    assert rows[0]["time"] == "2024-01-01T00:00:10.000Z"
    assert all(type(row["value"]) is float for row in rows)


def test_raw_whole_range_returns_every_point(temps: MetricStore) -> None:
    rows = temps.query(raw(TEMP, "gauge_float", T0, T0 + HOUR))

    assert [row["value"] for row in rows] == [TEMP_VALUES[ts] for ts in sorted(TEMP_VALUES)]


def test_empty_ranges_and_unknown_fields_return_no_rows(temps: MetricStore) -> None:
    assert temps.query(raw(TEMP, "gauge_float", T0 + 100 * SECOND, T0 + 180 * SECOND)) == []
    assert temps.query(raw(TEMP, "gauge_float", T0 + HOUR, T0 + HOUR)) == []
    assert temps.query(raw(TEMP, "gauge_float", T0 + HOUR, T0)) == []
    assert temps.query(windowed(TEMP, "gauge_float", T0 + 2 * MINUTE, T0 + 3 * MINUTE, MINUTE, "mean")) == []
    assert temps.query(raw("gw1.1.1.unknown", "gauge_float", T0, T0 + HOUR)) == []
    assert temps.query(windowed("gw1.1.1.unknown", "gauge_float", T0, T0 + HOUR, MINUTE, "count")) == []


def test_fields_do_not_mix_even_when_ids_share_a_prefix(store: MetricStore) -> None:
    store.write([point("gw1.1.1.t", "gauge_float", 1.0, T0), point("gw1.1.1.t2", "gauge_float", 2.0, T0),
                 point("gw1.1.10.t", "gauge_float", 3.0, T0), point("gw1.1.1.t", "gauge_float", 4.0, T0 + 1)])

    assert [r["value"] for r in store.query(raw("gw1.1.1.t", "gauge_float", T0, T0 + HOUR))] == [1.0, 4.0]
    assert [r["value"] for r in store.query(raw("gw1.1.1.t2", "gauge_float", T0, T0 + HOUR))] == [2.0]
    assert [r["value"] for r in store.query(raw("gw1.1.10.t", "gauge_float", T0, T0 + HOUR))] == [3.0]


# --------------------------------------------------------------------------------------------- idempotence


def test_rewriting_a_point_keeps_one_with_the_latest_value(store: MetricStore) -> None:
    store.write([point(TEMP, "gauge_float", 21.0, T0)])
    store.write([point(TEMP, "gauge_float", 21.0, T0)])
    store.write([point(TEMP, "gauge_float", 22.5, T0)])

    assert store.query(raw(TEMP, "gauge_float", T0, T0 + 1)) == [{"time": at(T0), "value": 22.5}]
    assert store.query(windowed(TEMP, "gauge_float", T0, T0 + MINUTE, MINUTE, "count")) == [
        {"time": at(T0), "count": 1}]


def test_duplicates_inside_one_batch_keep_the_last(store: MetricStore) -> None:
    store.write([point(TEMP, "gauge_float", 1.0, T0), point(TEMP, "gauge_float", 2.0, T0),
                 point(TEMP, "gauge_float", 3.0, T0 + 1)])

    assert [r["value"] for r in store.query(raw(TEMP, "gauge_float", T0, T0 + 2))] == [2.0, 3.0]


def test_a_large_batch_is_stored_whole(store: MetricStore) -> None:
    store.write([point(TEMP, "gauge_float", float(i), T0 + i) for i in range(5000)])
    store.flush()

    [row] = store.query(windowed(TEMP, "gauge_float", T0, T0 + HOUR, HOUR, "count", "sum", "first", "last"))
    assert row == {"time": at(T0), "count": 5000, "sum": float(sum(range(5000))), "first": 0.0, "last": 4999.0}


# --------------------------------------------------------------------------------------------- windows


def test_every_function_per_window(temps: MetricStore) -> None:
    rows = temps.query(windowed(TEMP, "gauge_float", T0, T0 + 4 * MINUTE, MINUTE, *ALL_FUNCTIONS))

    assert rows == [
        {"time": at(T0), "mean": 25.0, "min": 10.0, "max": 40.0, "sum": 100.0, "count": 4, "first": 10.0,
         "last": 40.0, "median": 25.0, "percentile_90": pytest.approx(37.0)},
        {"time": at(T0 + MINUTE), "mean": 6.0, "min": 5.0, "max": 7.0, "sum": 12.0, "count": 2, "first": 5.0,
         "last": 7.0, "median": 6.0, "percentile_90": pytest.approx(6.8)},
        {"time": at(T0 + 3 * MINUTE), "mean": 100.0, "min": 100.0, "max": 100.0, "sum": 100.0, "count": 1,
         "first": 100.0, "last": 100.0, "median": 100.0, "percentile_90": 100.0},
    ]
    assert [list(row) for row in rows] == [["time", *ALL_FUNCTIONS]] * 3, "columns follow the asked order"


@pytest.mark.parametrize(("function", "expected"), [
    ("mean", [25.0, 6.0, 100.0]),
    ("min", [10.0, 5.0, 100.0]),
    ("max", [40.0, 7.0, 100.0]),
    ("sum", [100.0, 12.0, 100.0]),
    ("count", [4, 2, 1]),
    ("first", [10.0, 5.0, 100.0]),
    ("last", [40.0, 7.0, 100.0]),
    ("median", [25.0, 6.0, 100.0]),
    ("percentile_90", [37.0, 6.8, 100.0]),
    ("percentile_50", [25.0, 6.0, 100.0]),
    ("percentile_1", [10.3, 5.02, 100.0]),
    ("percentile_99", [39.7, 6.98, 100.0]),
])
def test_each_function_alone(temps: MetricStore, function: str, expected: list[float]) -> None:
    rows = temps.query(windowed(TEMP, "gauge_float", T0, T0 + 4 * MINUTE, MINUTE, function))

    assert [row["time"] for row in rows] == [at(T0), at(T0 + MINUTE), at(T0 + 3 * MINUTE)]
    assert [row[function] for row in rows] == pytest.approx(expected)
    assert all(set(row) == {"time", function} for row in rows)


def test_windows_are_epoch_aligned_and_only_count_points_in_range(temps: MetricStore) -> None:
    rows = temps.query(windowed(TEMP, "gauge_float", T0 + 15 * SECOND, T0 + 75 * SECOND, MINUTE,
                                "count", "first", "last", "mean"))

    assert rows == [{"time": at(T0), "count": 2, "first": 30.0, "last": 40.0, "mean": 35.0},
                    {"time": at(T0 + MINUTE), "count": 1, "first": 5.0, "last": 5.0, "mean": 5.0}]


def test_a_window_wider_than_the_range_gives_one_row(temps: MetricStore) -> None:
    rows = temps.query(windowed(TEMP, "gauge_float", T0, T0 + 4 * MINUTE, 24 * HOUR, "count", "max"))

    assert rows == [{"time": at(T0), "count": 7, "max": 100.0}]


def test_functions_default_to_mean_and_are_normalised(temps: MetricStore) -> None:
    default = temps.query(windowed(TEMP, "gauge_float", T0, T0 + MINUTE, MINUTE))
    spelled = temps.query(windowed(TEMP, "gauge_float", T0, T0 + MINUTE, MINUTE, " Mean", "MAX", "mean"))

    assert default == [{"time": at(T0), "mean": 25.0}]
    assert spelled == [{"time": at(T0), "mean": 25.0, "max": 40.0}]


@pytest.mark.parametrize("function", ["avg", "percentile_0", "percentile_100", "percentile_", "p90", "stddev"])
def test_unknown_functions_are_an_error_naming_them(temps: MetricStore, function: str) -> None:
    with pytest.raises(MetricQueryError, match=function):
        temps.query(windowed(TEMP, "gauge_float", T0, T0 + MINUTE, MINUTE, "mean", function))


def test_a_window_must_be_positive(temps: MetricStore) -> None:
    with pytest.raises(MetricQueryError, match="window"):
        temps.query(windowed(TEMP, "gauge_float", T0, T0 + MINUTE, 0, "mean"))


# --------------------------------------------------------------------------------------------- metric types


def test_integer_gauges_and_counters_stay_integers(store: MetricStore) -> None:
    store.write(series("gw1.1.1.level", "gauge", {T0: 3, T0 + 1: 5, T0 + 2: 21.5}))
    store.write(series("gw1.1.1.pulses", "counter", {T0: 100, T0 + 1: 150}))

    level = store.query(raw("gw1.1.1.level", "gauge", T0, T0 + 3))
    assert level == [{"time": at(T0), "value": 3}, {"time": at(T0 + 1), "value": 5},
                     {"time": at(T0 + 2), "value": 21.5}]
    assert [type(row["value"]) for row in level] == [int, int, float]
    [pulses] = store.query(windowed("gw1.1.1.pulses", "counter", T0, T0 + 2, MINUTE, "sum", "max", "mean"))
    assert pulses == {"time": at(T0), "sum": 250, "max": 150, "mean": 125.0}
    assert (type(pulses["sum"]), type(pulses["max"]), type(pulses["mean"])) == (int, int, float)


def test_gauge_float_values_come_back_as_floats(store: MetricStore) -> None:
    store.write([point(TEMP, "gauge_float", 21, T0)])

    [row] = store.query(raw(TEMP, "gauge_float", T0, T0 + 1))
    assert row == {"time": at(T0), "value": 21.0} and type(row["value"]) is float


def test_binary_values_are_zero_and_one(store: MetricStore) -> None:
    door = "gw1.1.2.door"
    store.write(series(door, "binary", {T0: True, T0 + SECOND: False, T0 + 2 * SECOND: True, T0 + 3 * SECOND: 1}))

    rows = store.query(raw(door, "binary", T0, T0 + MINUTE))
    assert [row["value"] for row in rows] == [1, 0, 1, 1]
    assert all(type(row["value"]) is int for row in rows)
    assert store.query(windowed(door, "binary", T0, T0 + MINUTE, MINUTE, "mean", "sum", "min", "max", "last")) == [
        {"time": at(T0), "mean": 0.75, "sum": 3, "min": 0, "max": 1, "last": 1}]


def test_string_values_come_back_as_text(store: MetricStore) -> None:
    mode = "gw1.1.3.mode"
    store.write(series(mode, "string", {T0: "heat", T0 + SECOND: "off", T0 + MINUTE: 'say "hi", a\\b = c'}))

    assert store.query(raw(mode, "string", T0, T0 + HOUR)) == [
        {"time": at(T0), "value": "heat"}, {"time": at(T0 + SECOND), "value": "off"},
        {"time": at(T0 + MINUTE), "value": 'say "hi", a\\b = c'}]
    assert store.query(windowed(mode, "string", T0, T0 + HOUR, MINUTE, "count", "first", "last")) == [
        {"time": at(T0), "count": 2, "first": "heat", "last": "off"},
        {"time": at(T0 + MINUTE), "count": 1, "first": 'say "hi", a\\b = c', "last": 'say "hi", a\\b = c'}]


@pytest.mark.parametrize("function", ["mean", "sum", "min", "max", "median", "percentile_90"])
def test_numeric_functions_on_text_metrics_are_an_error(store: MetricStore, function: str) -> None:
    store.write([point("gw1.1.3.mode", "string", "heat", T0)])

    with pytest.raises(MetricQueryError, match=f"{function}.*string"):
        store.query(windowed("gw1.1.3.mode", "string", T0, T0 + HOUR, MINUTE, "count", function))


def test_geo_values_come_back_as_text(store: MetricStore) -> None:
    where = "gw1.1.4.position"
    store.write(series(where, "geo", {T0: "52.52;13.405;34", T0 + 1: "48.8566;2.3522"}))

    assert store.query(raw(where, "geo", T0, T0 + 2)) == [
        {"time": at(T0), "value": "52.52;13.405;34"}, {"time": at(T0 + 1), "value": "48.8566;2.3522"}]
    assert store.query(windowed(where, "geo", T0, T0 + 2, MINUTE, "last", "count")) == [
        {"time": at(T0), "last": "48.8566;2.3522", "count": 2}]


def test_metric_type_none_and_missing_values_are_not_stored(store: MetricStore) -> None:
    store.write([point("gw1.1.5.x", "none", "whatever", T0), point("gw1.1.5.y", "string", None, T0),
                 point("gw1.1.5.z", "gauge_float", None, T0)])

    assert store.query(raw("gw1.1.5.x", "none", T0, T0 + 1)) == []
    assert store.query(raw("gw1.1.5.x", "string", T0, T0 + 1)) == []
    assert store.query(raw("gw1.1.5.y", "string", T0, T0 + 1)) == []
    assert store.query(raw("gw1.1.5.z", "gauge_float", T0, T0 + 1)) == []


def test_unconverted_values_are_converted_or_skipped(store: MetricStore) -> None:
    store.write([point("gw1.1.6.door", "binary", "off", T0), point("gw1.1.6.door", "binary", "open", T0 + 1),
                 point("gw1.1.6.door", "binary", "maybe", T0 + 2), point("gw1.1.6.t", "gauge_float", "21.5", T0),
                 point("gw1.1.6.t", "gauge_float", float("inf"), T0 + 1),
                 point("gw1.1.6.t", "gauge_float", float("nan"), T0 + 2), point("gw1.1.6.t", "gauge", "x", T0 + 3)])

    assert store.query(raw("gw1.1.6.door", "binary", T0, T0 + 3)) == [
        {"time": at(T0), "value": 0}, {"time": at(T0 + 1), "value": 1}]
    assert store.query(raw("gw1.1.6.t", "gauge_float", T0, T0 + 4)) == [{"time": at(T0), "value": 21.5}]

# --------------------------------------------------------------------------------------------- worked by hand

SEVEN_S = 7 * SECOND
UNALIGNED = {T0: 4.0, T0 + 1000: 8.0, T0 + 3999: 1.0, T0 + 4000: 10.0, T0 + 10_999: 2.0, T0 + 11_000: 6.0,
             T0 + 12_000: 3.0, T0 + 13_000: 9.0, T0 + 14_000: 12.0, T0 + 20_999: 5.0, T0 + 21_000: 100.0}
"""Seven-second windows are aligned to the epoch, not to T0 nor to the range: T0 = 1_704_067_200_000 ms and
1_704_067_200_000 mod 7_000 = 3_000 (243_438_171 * 7_000 = 1_704_067_197_000), so the windows near T0 are
[T0-3 s, T0+4 s), [T0+4 s, T0+11 s), [T0+11 s, T0+18 s), [T0+18 s, T0+25 s)."""


def test_unaligned_windows_worked_by_hand(store: MetricStore) -> None:
    store.write(series(TEMP, "gauge_float", UNALIGNED))

    # the range [T0+1 s, T0+21 s) leaves out T0 (4.0, before the start) and T0+21 s (100.0, the stop is open)
    rows = store.query(windowed(TEMP, "gauge_float", T0 + SECOND, T0 + 21 * SECOND, SEVEN_S, *ALL_FUNCTIONS,
                                "percentile_25"))

    assert rows == [
        # [T0-3 s, T0+4 s), cut by the range start but labelled by its own start: 8, 1 (time order)
        # sorted 1, 8; p90 rank 0.9 * (2-1) = 0.9 → 1 + 0.9 * 7 = 7.3; p25 rank 0.25 → 1 + 0.25 * 7 = 2.75
        {"time": at(T0 - 3 * SECOND), "mean": 4.5, "min": 1.0, "max": 8.0, "sum": 9.0, "count": 2, "first": 8.0,
         "last": 1.0, "median": 4.5, "percentile_90": pytest.approx(7.3), "percentile_25": pytest.approx(2.75)},
        # [T0+4 s, T0+11 s): 10, 2; sorted 2, 10; p90 2 + 0.9 * 8 = 9.2; p25 2 + 0.25 * 8 = 4
        {"time": at(T0 + 4 * SECOND), "mean": 6.0, "min": 2.0, "max": 10.0, "sum": 12.0, "count": 2, "first": 10.0,
         "last": 2.0, "median": 6.0, "percentile_90": pytest.approx(9.2), "percentile_25": pytest.approx(4.0)},
        # [T0+11 s, T0+18 s): 6, 3, 9, 12; sum 30, mean 7.5; sorted 3, 6, 9, 12: median (6 + 9) / 2 = 7.5;
        # p90 rank 0.9 * 3 = 2.7 → 9 + 0.7 * 3 = 11.1; p25 rank 0.75 → 3 + 0.75 * 3 = 5.25
        {"time": at(T0 + 11 * SECOND), "mean": 7.5, "min": 3.0, "max": 12.0, "sum": 30.0, "count": 4, "first": 6.0,
         "last": 12.0, "median": 7.5, "percentile_90": pytest.approx(11.1), "percentile_25": pytest.approx(5.25)},
        # [T0+18 s, T0+25 s), cut by the range stop: 5 alone
        {"time": at(T0 + 18 * SECOND), "mean": 5.0, "min": 5.0, "max": 5.0, "sum": 5.0, "count": 1, "first": 5.0,
         "last": 5.0, "median": 5.0, "percentile_90": 5.0, "percentile_25": 5.0},
    ]
    assert rows[0]["time"] == "2023-12-31T23:59:57.000Z"


def test_a_window_of_one_millisecond_holds_single_points(store: MetricStore) -> None:
    store.write(series(TEMP, "gauge_float", {T0 + 1: 1.5, T0 + 2: 2.5, T0 + 4: -3.0}))

    # every point is its own window; the empty millisecond T0+3 has no row
    assert store.query(windowed(TEMP, "gauge_float", T0, T0 + 5, 1, "count", "sum", "first")) == [
        {"time": at(T0 + 1), "count": 1, "sum": 1.5, "first": 1.5},
        {"time": at(T0 + 2), "count": 1, "sum": 2.5, "first": 2.5},
        {"time": at(T0 + 4), "count": 1, "sum": -3.0, "first": -3.0}]


# --------------------------------------------------------------------------------------------- properties

_fields = itertools.count()


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile with linear interpolation between closest ranks, as the standard library states it
    (``statistics.quantiles(..., method="inclusive")``); one value is its own percentile."""
    return values[0] if len(values) == 1 else statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def expected_windows(points: dict[int, float], start: int, stop: int, window: int) -> list[dict[str, Any]]:
    """The port's definition written out plainly: the points of ``[start, stop)`` in time order, grouped into
    epoch-aligned windows labelled by their start, empty windows left out."""
    windows: dict[int, list[float]] = {}
    for ts in sorted(points):
        if start <= ts < stop:
            windows.setdefault(ts - ts % window, []).append(points[ts])
    return [{"time": at(label), "mean": statistics.fmean(values), "min": min(values), "max": max(values),
             "sum": math.fsum(values), "count": len(values), "first": values[0], "last": values[-1],
             "median": statistics.median(values), "percentile_90": percentile(values, 90)}
            for label, values in sorted(windows.items())]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.dictionaries(st.integers(min_value=0, max_value=10 * MINUTE),
                              st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32),
                              min_size=1, max_size=40),
       start=st.integers(min_value=0, max_value=5 * MINUTE),
       span=st.integers(min_value=1, max_value=10 * MINUTE),
       window=st.sampled_from([1, 7 * SECOND, MINUTE, 90 * SECOND, HOUR]))
def test_windows_agree_with_the_definitions(store: MetricStore, values: dict[int, float], start: int, span: int,
                                            window: int) -> None:
    field_id = f"gw1.9.9.f{next(_fields)}"
    points = {T0 + ts: value for ts, value in values.items()}
    store.write(series(field_id, "gauge_float", points))

    query = windowed(field_id, "gauge_float", T0 + start, T0 + start + span, window, *ALL_FUNCTIONS)
    expected = expected_windows(points, query.start_ms, query.stop_ms, window)
    rows = store.query(query)
    assert [row["time"] for row in rows] == [row["time"] for row in expected]
    for got, want in zip(rows, expected, strict=True):
        assert got == {key: pytest.approx(value, rel=1e-9, abs=1e-6) if isinstance(value, float) else value
                       for key, value in want.items()}
    assert store.query(raw(field_id, "gauge_float", query.start_ms, query.stop_ms)) == [
        {"time": at(T0 + ts), "value": values[ts]} for ts in sorted(values) if start <= ts < start + span]


# --------------------------------------------------------------------------------------------- concurrency


def test_concurrent_writers_and_readers_lose_nothing(store: MetricStore) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for batch in range(20):
                store.write([point(f"gw1.2.{n}.v", "gauge_float", float(i), T0 + batch * 100 + i) for i in range(100)])
                store.query(windowed(f"gw1.2.{n}.v", "gauge_float", T0, T0 + HOUR, MINUTE, "count", "last"))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for n in range(6):
        assert store.query(windowed(f"gw1.2.{n}.v", "gauge_float", T0, T0 + HOUR, HOUR, "count")) == [
            {"time": at(T0), "count": 2000}]


# --------------------------------------------------------------------------------------------- embedded specifics


def test_embedded_store_keeps_points_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sqlite3"
    first = EmbeddedMetricStore(path, retention_days=36_500)
    first.write([point("gw1.1.1.a", "gauge_float", 1.0, T0), point("gw1.1.1.b", "string", "x", T0)])
    first.close()

    second = EmbeddedMetricStore(path, retention_days=36_500)
    second.write([point("gw1.1.1.c", "gauge_float", 3.0, T0), point("gw1.1.1.a", "gauge_float", 2.0, T0 + 1)])
    try:
        assert [r["value"] for r in second.query(raw("gw1.1.1.a", "gauge_float", T0, T0 + 2))] == [1.0, 2.0]
        assert second.query(raw("gw1.1.1.b", "string", T0, T0 + 1)) == [{"time": at(T0), "value": "x"}]
        assert second.query(raw("gw1.1.1.c", "gauge_float", T0, T0 + 1)) == [{"time": at(T0), "value": 3.0}]
    finally:
        second.close()


def test_embedded_store_uses_wal_and_a_compact_schema(tmp_path: Path) -> None:
    import sqlite3

    store = EmbeddedMetricStore(tmp_path / "m.sqlite3", retention_days=36_500)
    store.write([point(TEMP, "gauge_float", 1.0, T0)])
    store.close()

    db = sqlite3.connect(tmp_path / "m.sqlite3")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        [(sid, t0, t1, n, ts, vals)] = db.execute("SELECT series, t0, t1, n, ts, vals FROM chunks").fetchall()
        assert (sid, t0, t1, n) == (1, T0, T0, 1)
        assert struct.unpack("<q", ts) == (T0,) and struct.unpack("<d", vals) == (1.0,)  # little-endian arrays
        assert db.execute("SELECT id, field_id FROM series").fetchall() == [(1, TEMP)]
    finally:
        db.close()


def test_embedded_retention_deletes_old_points_at_most_once_a_minute(tmp_path: Path) -> None:
    now = [T0 + 10 * 86_400_000]
    store = EmbeddedMetricStore(tmp_path / "m.sqlite3", retention_days=2, clock=lambda: now[0])
    old, recent = now[0] - 3 * 86_400_000, now[0] - 86_400_000
    try:
        store.write([point(TEMP, "gauge_float", 1.0, old), point(TEMP, "gauge_float", 2.0, recent)])
        # retention ran on open and does not run again within the minute: the old point is still there
        assert [r["value"] for r in store.query(raw(TEMP, "gauge_float", old, now[0]))] == [1.0, 2.0]

        now[0] += MINUTE
        store.write([point(TEMP, "gauge_float", 3.0, now[0])])
        assert [r["value"] for r in store.query(raw(TEMP, "gauge_float", old, now[0] + 1))] == [2.0, 3.0]

        now[0] += 2 * 86_400_000
        assert store.prune() == 1
        assert [r["value"] for r in store.query(raw(TEMP, "gauge_float", old, now[0] + 1))] == [3.0]
    finally:
        store.close()


def test_embedded_retention_runs_on_open(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    keep = EmbeddedMetricStore(path, retention_days=36_500)
    keep.write([point(TEMP, "gauge_float", 1.0, T0), point(TEMP, "gauge_float", 2.0, T0 + 5 * 86_400_000)])
    keep.close()

    reopened = EmbeddedMetricStore(path, retention_days=1, clock=lambda: T0 + 5 * 86_400_000 + 1)
    try:
        assert [r["value"] for r in reopened.query(raw(TEMP, "gauge_float", 0, T0 + 10 * 86_400_000))] == [2.0]
    finally:
        reopened.close()


def test_embedded_store_refuses_use_after_close(tmp_path: Path) -> None:
    store = EmbeddedMetricStore(tmp_path / "m.sqlite3")
    store.close()
    store.close()  # idempotent
    store.flush()  # nothing to do

    with pytest.raises(RuntimeError, match="closed"):
        store.write([point(TEMP, "gauge_float", 1.0, T0)])
    with pytest.raises(RuntimeError, match="closed"):
        store.query(raw(TEMP, "gauge_float", T0, T0 + 1))


# --------------------------------------------------------------------------------------------- the none store


def test_none_store_accepts_writes_and_answers_nothing() -> None:
    nothing: MetricStore = NoMetricStore()
    nothing.write([point(TEMP, "gauge_float", 1.0, T0)])
    nothing.write([])
    nothing.flush()

    assert nothing.query(raw(TEMP, "gauge_float", T0, T0 + HOUR)) == []
    assert nothing.query(windowed(TEMP, "gauge_float", T0, T0 + HOUR, MINUTE, "mean", "percentile_90")) == []
    nothing.close()

